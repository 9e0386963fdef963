"""
### Patch compliance: targeted remediation

Patches **exactly the nodes the last scan found non-compliant**, canary first, then proves the fix. Runs only when
the config has `scan.allow_install: true` **and** `remediation.enabled: true`; **`dry_run` is on by default**
(select and plan, send nothing). Manual unless `remediation.schedule` is set.

1. **select** reads the latest published `nodes` and `patches` tables of `patch_compliance_scan` (through
   `latest/`), keeps NON_COMPLIANT, reachable nodes (not OFFLINE, UNMANAGED, UNREACHABLE) with something to
   install that match the params (OUs, accounts, regions, minimum severity, classifications, CVE ids, tags,
   `max_nodes`), and writes the selection with the reason every other node was left out to
   `runs/<run>/selection.json` and the log. It refuses (nothing sent) without both opt-ins, above
   `remediation.max_nodes`, or outside `remediation.change_window`. Then it plans: a canary wave
   (`remediation.canary`), then the config's waves, batches of ≤ 50 InstanceIds per account-region.
2. **wave_&lt;name&gt;**: the gate holds the wave (and every later one) when the previous wave's Install failure
   ratio is above `remediation.max_failure_ratio`; **install** sends `AWS-RunPatchBaseline Operation=Install`
   (`RebootOption` = `scan.reboot_option`) to the selected InstanceIds only, and a retry reuses its command;
   **wait** follows the invocations (deferrable).
3. **rescan** scans the nodes whose patch state is older than their Install; **verify** collects every touched
   account-region; **report** publishes the `remediation` table (before/after per node), report.html and
   summary.json with a Remediation section; **security_hub** resolves fixed nodes' findings; **final_gate** fails
   the run, after publishing, when a wave was held.

A failed node does not fail the run: it is a row of the remediation table. Configuration: `$PATCH_COMPLIANCE_CONFIG`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from include.patch_compliance.dag_layout import dag_layout
from include.patch_compliance.orchestration.params import DEFAULT_ARGS, TAGS, remediation_params
from include.patch_compliance.orchestration.remediation_wiring import remediation_pipeline

LAYOUT = dag_layout()


@dag(
    dag_id="patch_compliance_remediate",
    schedule=LAYOUT.remediation_schedule,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "remediate"],
    params=remediation_params(),
    doc_md=__doc__,
)
def patch_compliance_remediate():
    remediation_pipeline(LAYOUT.waves)


patch_compliance_remediate()
