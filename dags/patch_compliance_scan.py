"""
### Patch compliance: org-wide scan

Scans every managed node of the AWS Organization with SSM Patch Manager (`AWS-RunPatchBaseline`,
`Operation=Scan`; `Install` only when the config has `scan.allow_install: true` **and** the run asks for it),
then collects both result channels and publishes the reports.

1. **discover**: walks the organization (root → OUs → ACTIVE accounts), applies include/exclude lists and writes
   the fleet plan (account-region targets, waves, shards) to S3.
2. **wave_&lt;name&gt;** (one task group per configured wave, in order): each shard of account-regions is
   **scan**ned (assume the member role, send the command, or reuse this run's earlier one on retry), **wait**ed on
   (deferrable: no worker slot while SSM works) and **collect**ed. An Install wave starts only when the previous
   wave's failure ratio is under `scan.install_max_failure_ratio`.
3. **report** builds the pandas tables and publishes Parquet/CSV/HTML to S3; **security_hub** imports one
   finding per non-compliant node; **final_gate** fails the run, *after* everything is published, when too many
   account-regions were unreachable or a wave was held back. **report** runs when a wave failed (what was
   collected is published), but publishes nothing, and fails saying why, when discover was refused or failed or
   no account-region could be read: the dashboard and the next run's delta keep the last good run.
4. **alert** (beside final_gate, runs whatever happened): sends the digest of what changed since the last
   published run through the notifiers of `alerts:` (SNS, Slack), always when the run failed (docs/alerts.md).

A failed node (Failed, Undeliverable, timed out) does **not** fail the run: it is data in the report.
Configuration: the YAML file named by `$PATCH_COMPLIANCE_CONFIG` (see `config.example.yaml`).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from include.patch_compliance.dag_layout import dag_layout
from include.patch_compliance.orchestration import airflow_tasks
from include.patch_compliance.orchestration.dag_wiring import publish_chain, scan_waves
from include.patch_compliance.orchestration.params import DEFAULT_ARGS, TAGS, run_params

LAYOUT = dag_layout()


@dag(
    dag_id="patch_compliance_scan",
    schedule=LAYOUT.schedule,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "scan"],
    params=run_params(with_operation=True),
    doc_md=__doc__,
)
def patch_compliance_scan():
    plan = airflow_tasks.discover()
    publish_chain(scan_waves(plan, LAYOUT.waves))


patch_compliance_scan()
