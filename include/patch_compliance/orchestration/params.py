"""What every DAG of the project shares: default args, tags and the trigger-form params."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param

from include.patch_compliance.vocab import ACCOUNT_ID_PATTERN, OU_REF_PATTERN, REGION_PATTERN, SEVERITIES

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


def remediation_params() -> dict[str, Param]:
    """The remediation DAG's trigger form: which of the last scan's non-compliant nodes to patch. Empty = no
    restriction; ``dry_run`` defaults to true (plan and show the selection, send nothing)."""

    def strings(title: str, description: str, pattern: str | None = None) -> Param:
        items: dict[str, Any] = {"type": "string", **({"pattern": pattern} if pattern else {})}
        return Param([], type=["null", "array"], items=items, title=title, description=description)

    return {
        "dry_run": Param(
            True,
            type=["null", "boolean"],
            title="Dry run",
            description="Select and plan only, send nothing (the default). Set false to install.",
        ),
        "ou_ids": strings("OUs", "Only nodes under these OUs (id or path, descendants included).", OU_REF_PATTERN),
        "accounts": strings("Accounts", "Only nodes of these account ids.", ACCOUNT_ID_PATTERN),
        "regions": strings("Regions", "Only nodes in these regions.", REGION_PATTERN),
        "min_severity": Param(
            None,
            type=["null", "string"],
            enum=[None, *SEVERITIES],
            title="Minimum severity",
            description="Only nodes missing a patch of at least this severity.",
        ),
        "classifications": strings("Classifications", "Only nodes missing a patch of these (e.g. Security)."),
        "cve_ids": strings("CVE ids", "Only nodes missing a patch for one of these CVEs.", r"^CVE-\d{4}-\d{4,}$"),
        "tags": Param(
            None,
            type=["null", "object"],
            additionalProperties={"type": "array", "items": {"type": "string"}},
            title="Tags",
            description='Only nodes with these tags, e.g. {"Patch": ["true"]} (needs tags in the report).',
        ),
        "max_nodes": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Max nodes",
            description="Take at most this many nodes, most urgent first (remediation.max_nodes still caps).",
        ),
    }
