"""The ``commands`` table (one row per invocation outcome) and each node's invocation in this run."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.patch_compliance.transform.normalise import blank_to_null, map_distinct, parse_time_strings, patch_state
from include.patch_compliance.transform.raw import command_records

# Terminal invocation outcomes that mean this run's scan did not produce fresh data (docs/aws-behaviours.md §3).
# UNDELIVERABLE is not here: it means the node is not reachable and maps to coverage OFFLINE.
SCAN_FAILED_OUTCOMES = (
    "FAILED",
    "TIMED_OUT",
    "EXECUTION_TIMED_OUT",
    "DELIVERY_TIMED_OUT",
    "CANCELLED",
    "TERMINATED",
    "INVALID_PLATFORM",
    "ACCESS_DENIED",
)
OFFLINE_OUTCOMES = ("UNDELIVERABLE",)


def outcome_label(value: str) -> str | None:
    """'Delivery Timed Out' / 'DeliveryTimedOut' -> DELIVERY_TIMED_OUT ('Canceled' is the user-guide spelling)."""
    label = patch_state(value)
    return "CANCELLED" if label == "CANCELED" else label


def commands_frame(records: list[dict]) -> pd.DataFrame:
    """Command records -> commands table columns (without run columns). ``outcome`` is the invocation's
    StatusDetails (falling back to Status) in UPPER_SNAKE; a record without an instance is NOT_SENT."""
    table = command_records(records)
    strings = {
        name: blank_to_null(table.column(name))
        for name in (
            "ou_id",
            "ou_path",
            "account_id",
            "account_name",
            "region",
            "wave",
            "command_id",
            "command_status",
            "command_status_details",
            "instance_id",
            "status",
            "status_details",
            "error",
        )
    }
    detail = pc.coalesce(strings["status_details"], strings["status"])
    outcome = map_distinct(detail, outcome_label)
    outcome = pc.if_else(pc.is_null(strings["instance_id"]), pa.scalar("NOT_SENT"), outcome)
    frame = pd.DataFrame(
        {
            **{k: pd.Series(v, dtype=pd.ArrowDtype(pa.string())) for k, v in strings.items()},
            "outcome": pd.Series(pc.fill_null(outcome, "UNKNOWN"), dtype=pd.ArrowDtype(pa.string())),
            "response_code": pd.Series(table.column("response_code").combine_chunks(), dtype=pd.ArrowDtype(pa.int64())),
            **{
                name: pd.Series(
                    parse_time_strings(table.column(name), f"command_records[].{name}"),
                    dtype=pd.ArrowDtype(pa.timestamp("us", "UTC")),
                )
                for name in ("requested_at", "started_at", "finished_at")
            },
        }
    )
    return frame


def node_invocations(commands: pd.DataFrame) -> pd.DataFrame:
    """This run's invocation per (account_id, region, instance_id): the latest requested one (a retried scan
    task may have sent twice; the newest reflects the node's state)."""
    per_node = commands[commands["instance_id"].notna()]
    per_node = per_node.sort_values(["account_id", "region", "instance_id", "requested_at", "command_id"])
    latest = per_node.drop_duplicates(["account_id", "region", "instance_id"], keep="last")
    return latest[["account_id", "region", "instance_id", "command_id", "status", "status_details", "outcome"]].rename(
        columns={"status": "invocation_status", "status_details": "invocation_status_details"}
    )
