"""The ``compliance_items`` table from ListComplianceItems (Patch and Association types, docs/aws-behaviours.md §10)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.patch_compliance.transform.normalise import (
    blank_to_null,
    normalise_enum,
    parse_time_strings,
    patch_state,
    split_cves,
    take_targets,
    unrecognised_list,
)
from include.patch_compliance.transform.raw import COMPLIANCE_ITEM, TARGET_FIELDS, keyed_items
from include.patch_compliance.transform.schema import (
    COMPLIANCE_ITEM_STATUSES,
    COMPLIANCE_SEVERITIES,
    PATCH_STATES,
    UNRECOGNISED,
)


def _upper(value: str) -> str:
    return value.upper()


def compliance_item_rows(raw_docs: list[dict], targets: pd.DataFrame) -> pd.DataFrame:
    table = keyed_items(raw_docs, "compliance_items", COMPLIANCE_ITEM).flatten()

    def col(name: str) -> pd.Series:
        return pd.Series(blank_to_null(table.column(name)), dtype=pd.ArrowDtype(pa.string()))

    # Status '' is a Windows not-applicable item (docs/aws-behaviours.md §10): null. Values outside the enums are
    # UNKNOWN, the raw value in the row's unrecognised list.
    status, raw_status = normalise_enum(table.column("Status"), COMPLIANCE_ITEM_STATUSES, _upper)
    severity, raw_severity = normalise_enum(table.column("Severity"), COMPLIANCE_SEVERITIES, _upper)
    state, raw_state = normalise_enum(table.column("Details.PatchState"), PATCH_STATES, patch_state)
    unrecognised = unrecognised_list(
        table.num_rows, {"status": raw_status, "severity": raw_severity, "patch_state": raw_state}
    )
    frame = pd.DataFrame(
        {
            "t": table.column("t").to_numpy(),
            # The dict key is the node we asked about; ResourceId repeats it and wins only if the key is blank.
            "instance_id": pd.Series(
                pc.coalesce(blank_to_null(table.column("instance_id")), blank_to_null(table.column("ResourceId"))),
                dtype=pd.ArrowDtype(pa.string()),
            ),
            "compliance_type": col("ComplianceType"),
            "item_id": col("Id"),
            "title": col("Title"),
            "status": pd.Series(status, dtype=pd.ArrowDtype(pa.string())),
            "severity": pd.Series(severity, dtype=pd.ArrowDtype(pa.string())),
            "patch_state": pd.Series(state, dtype=pd.ArrowDtype(pa.string())),
            "classification": col("Details.Classification"),
            "patch_severity": col("Details.PatchSeverity"),
            "patch_baseline_id": col("Details.PatchBaselineId"),
            "patch_group": col("Details.PatchGroup"),
            "document_name": col("Details.DocumentName"),
            "cve_ids": pd.Series(
                split_cves(table.column("Details.CVEIds")), dtype=pd.ArrowDtype(pa.list_(pa.string()))
            ),
            "installed_time": pd.Series(
                parse_time_strings(table.column("Details.InstalledTime"), "compliance_items[].Details.InstalledTime"),
                dtype=pd.ArrowDtype(pa.timestamp("us", "UTC")),
            ),
            "execution_id": col("ExecutionSummary.ExecutionId"),
            "execution_type": col("ExecutionSummary.ExecutionType"),
            "execution_time": pd.Series(
                parse_time_strings(
                    table.column("ExecutionSummary.ExecutionTime"), "compliance_items[].ExecutionSummary.ExecutionTime"
                ),
                dtype=pd.ArrowDtype(pa.timestamp("us", "UTC")),
            ),
            UNRECOGNISED: pd.Series(unrecognised, dtype=pd.ArrowDtype(unrecognised.type)),
        }
    )
    for name, column in take_targets(targets, frame["t"].to_numpy(), list(TARGET_FIELDS)).items():
        frame[name] = column.array
    return frame
