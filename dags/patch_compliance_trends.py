"""
### Patch compliance: daily trends

Scheduled on the `nodes` table Asset: runs after every published scan or collect run. Rebuilds `fleet_daily`
(one row per day and OU: nodes, compliant %, SLA breaches) from the published run history and writes it as
Parquet under `<prefix>/fleet_daily/`, for dashboards (Athena DDL in `include/athena/`).

A failure here never touches the scan results; it only leaves `fleet_daily` one run behind. Re-running it is
safe: the table is rebuilt from the history each time.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from include.patch_compliance.orchestration.airflow_tasks import fleet_daily
from include.patch_compliance.orchestration.assets import nodes_asset
from include.patch_compliance.orchestration.params import DEFAULT_ARGS, TAGS


@dag(
    dag_id="patch_compliance_trends",
    schedule=[nodes_asset()],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "trends"],
    doc_md=__doc__,
)
def patch_compliance_trends():
    fleet_daily()


patch_compliance_trends()
