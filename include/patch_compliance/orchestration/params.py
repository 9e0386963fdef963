"""What every DAG of the project shares: default args, tags and the trigger-form params."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param

from include.patch_compliance.vocab import OU_REF_PATTERN, REGION_PATTERN

# Every AWS-calling task retries with exponential backoff; throttling inside a call is botocore's job.
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "platform-ops",
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
}
TAGS = ["patch-compliance", "aws", "ssm"]


def run_params(with_operation: bool) -> dict[str, Param]:
    """Trigger-form params (JSON-schema validated by Airflow before the run starts). The UI marks a param
    required unless its type allows null; these may stay empty ("use the config"), so they all allow it."""
    params = {
        "ou_ids": Param(
            [],
            type=["null", "array"],
            items={"type": "string", "pattern": OU_REF_PATTERN},
            title="OUs",
            description="Scan only these OUs (id ou-xxxx-xxxxxxxx or path Root/Workloads/Prod); empty = config.",
        ),
        "regions": Param(
            [],
            type=["null", "array"],
            items={"type": "string", "pattern": REGION_PATTERN},
            title="Regions",
            description="Scan only these regions; empty = the config's regions.",
        ),
        "dry_run": Param(
            False, type=["null", "boolean"], title="Dry run", description="Discover and plan only; send nothing."
        ),
    }
    if with_operation:
        params["operation"] = Param(
            "Scan",
            enum=["Scan", "Install"],
            title="Operation",
            description="Install patches only if the config also has scan.allow_install: true.",
            values_display={"Scan": "Scan (read-only)", "Install": "Install (changes nodes)"},
        )
    return params
