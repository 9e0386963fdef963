"""Who may read the page: a user the Airflow auth manager lets read the runs of every DAG whose data it shows.

A login alone is not enough: the page, its JSON and the run reports show the whole fleet that the scan and collect
DAGs produced, so each route asks the auth manager (``is_authorized_dag``, method GET, entity RUN) for both DAGs
and answers 403 otherwise. Airflow's own ``requires_access_dag`` does the asking (it uses the global auth manager,
which is what a plugin's mounted sub-app must use, docs/aws-behaviours.md §33).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from include.patch_compliance.vocab import FLEET_DAG_IDS


def fleet_access() -> list[Callable[..., Any]]:
    """FastAPI dependencies for every data route: 401 without a login, 403 without read access to a DAG."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    return [requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=dag_id) for dag_id in FLEET_DAG_IDS]
