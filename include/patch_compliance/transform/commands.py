"""The ``commands`` table (one row per invocation outcome) and each node's invocation in this run."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.patch_compliance.transform.normalise import (
    blank_to_null,
    normalise_enum,
    parse_time_strings,
    patch_state,
    unrecognised_list,
)
from include.patch_compliance.transform.raw import command_records
from include.patch_compliance.transform.schema import (
    COMMAND_STATUSES,
    INVOCATION_STATUSES,
    UNKNOWN_VALUE,
    UNRECOGNISED,
)

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
# Every invocation StatusDetails / Status the command status model documents (docs/aws-behaviours.md §3), spelt
# as outcomes; anything else is UNKNOWN and listed in the row's unrecognised values.
OUTCOMES = (
    "PENDING",
    "IN_PROGRESS",
    "DELAYED",
    "SUCCESS",
    "CANCELLING",
    *OFFLINE_OUTCOMES,
    *SCAN_FAILED_OUTCOMES,
)


def outcome_label(value: str) -> str | None:
    """'Delivery Timed Out' / 'DeliveryTimedOut' -> DELIVERY_TIMED_OUT ('Canceled' is the user-guide spelling)."""
    label = patch_state(value)
    return "CANCELLED" if label == "CANCELED" else label


def commands_frame(records: list[dict]) -> pd.DataFrame:
    """Command records -> commands table columns (without run columns). ``outcome`` is the invocation's
    StatusDetails (falling back to Status) in UPPER_SNAKE; a record without an instance is NOT_SENT. Statuses and
    details outside the documented values are UNKNOWN, kept raw in the row's ``unrecognised`` list."""
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
            "command_status_details",
            "instance_id",
            "status_details",
            "error",
        )
    }
    strings["command_status"], raw_command_status = normalise_enum(table.column("command_status"), COMMAND_STATUSES)
    strings["status"], raw_status = normalise_enum(table.column("status"), INVOCATION_STATUSES)
    detail = pc.coalesce(strings["status_details"], blank_to_null(table.column("status")))
    outcome, raw_outcome = normalise_enum(detail, OUTCOMES, outcome_label)
    sent = pc.is_valid(strings["instance_id"])
    outcome = pc.if_else(sent, outcome, pa.scalar("NOT_SENT"))
    raw_outcome = pc.if_else(sent, raw_outcome, pa.scalar(None, pa.string()))
    unrecognised = unrecognised_list(
        table.num_rows, {"command_status": raw_command_status, "status": raw_status, "outcome": raw_outcome}
    )
    frame = pd.DataFrame(
        {
            **{k: pd.Series(v, dtype=pd.ArrowDtype(pa.string())) for k, v in strings.items()},
            "outcome": pd.Series(pc.fill_null(outcome, UNKNOWN_VALUE), dtype=pd.ArrowDtype(pa.string())),
            "response_code": pd.Series(table.column("response_code").combine_chunks(), dtype=pd.ArrowDtype(pa.int64())),
            **{
                name: pd.Series(
                    parse_time_strings(table.column(name), f"command_records[].{name}"),
                    dtype=pd.ArrowDtype(pa.timestamp("us", "UTC")),
                )
                for name in ("requested_at", "started_at", "finished_at")
            },
            UNRECOGNISED: pd.Series(unrecognised, dtype=pd.ArrowDtype(unrecognised.type)),
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
