"""A test auth manager: Airflow's simple auth manager, except that the user ``outsider`` (role viewer) may not read
the patch-compliance DAGs. The simple auth manager itself has no per-DAG permissions (docs/aws-behaviours.md §33),
so "a viewer without access to the DAGs" needs an auth manager that can say no, as FAB or Keycloak would."""

from __future__ import annotations

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

from include.patch_compliance.vocab import FLEET_DAG_IDS

OUTSIDER = "outsider"


class DagDenyingAuthManager(SimpleAuthManager):
    def is_authorized_dag(self, *, method, user, access_entity=None, details=None) -> bool:
        if user.get_name() == OUTSIDER and (details is None or details.id in FLEET_DAG_IDS):
            return False
        return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
