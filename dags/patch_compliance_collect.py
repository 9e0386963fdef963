"""
### Patch compliance: collect only (no command sent)

For organizations where Quick Setup patch policies, Explorer or maintenance windows already scan
(`AWS-RunPatchBaselineAssociation` is Scan-only and reports through `AWS:ComplianceItem`): the same discovery
and collection as `patch_compliance_scan`, but **no SSM command is sent**.

1. **discover** walks the organization and writes the plan (account-region shards) to S3.
2. **collect** (mapped, one per shard, labelled OU / accounts / regions) reads patch states, non-compliant
   patches, compliance items (Patch and Association), managed-node and EC2 information.
3. **report**, **security_hub**, **final_gate** and **alert** as in the scan DAG: what was collected is
   published (never an empty run: a failed discover or a run that read nothing publishes nothing and fails); the
   gate fails the run afterwards when too many account-regions were unreachable.

A failed `collect` means the step itself broke (S3 or credentials); an unreachable account is data, recorded in
the report. Configuration: the YAML file named by `$PATCH_COMPLIANCE_CONFIG`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from include.patch_compliance.dag_layout import dag_layout
from include.patch_compliance.orchestration import airflow_tasks
from include.patch_compliance.orchestration.dag_wiring import collect_only
from include.patch_compliance.orchestration.params import DEFAULT_ARGS, TAGS, run_params

# Manual unless orchestration.collect_schedule is set (it must not fire with the scan DAG: same run ids).
SCHEDULE = dag_layout().collect_schedule


@dag(
    dag_id="patch_compliance_collect",
    schedule=SCHEDULE,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "collect"],
    params=run_params(with_operation=False),
    doc_md=__doc__,
)
def patch_compliance_collect():
    collect_only(airflow_tasks.discover())


patch_compliance_collect()
