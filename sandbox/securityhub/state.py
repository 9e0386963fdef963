"""Security Hub emulator: stored findings and hubs, how an import creates or updates one, and the per-finding
results and customer updates BatchImportFindings / BatchUpdateFindings answer with."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from sandbox.securityhub.model import (
    CUSTOMER_ONLY_FIELDS,
    LABEL_NORMALIZED,
    PROVIDER_FIELDS,
    SEVERITY_LABELS,
    VERIFICATION_STATES,
    WORKFLOW_STATUSES,
    _invalid_input,
    parse_timestamp,
)


@dataclass
class _Stored:
    seq: int  # creation order: the stable order GetFindings pages through
    finding: dict
    customer_set: set[str] = field(default_factory=set)  # top-level provider fields changed by a customer


@dataclass
class _Hub:
    subscribed_at: str
    enabled: bool = True
    subscriptions: dict[str, str] = field(default_factory=dict)  # subscription ARN -> product ARN
    findings: dict[tuple[str, str], _Stored] = field(default_factory=dict)  # (ProductArn, Id)
    seq: int = 0


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) else value


def _failure(finding_id: str, code: str, message: str) -> dict:
    return {"Id": finding_id, "ErrorCode": code, "ErrorMessage": message}


def _unprocessed(identifier: dict, code: str, message: str) -> dict:
    return {"FindingIdentifier": identifier, "ErrorCode": code, "ErrorMessage": message}


def _customer_changes(params: dict, now: str) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if "Workflow" in params:
        status = (params["Workflow"] or {}).get("Status")
        if status not in WORKFLOW_STATUSES:
            raise _invalid_input(f"Workflow.Status {status!r} is not one of {', '.join(WORKFLOW_STATUSES)}")
        changes["Workflow"] = {"Status": status}
    if "Note" in params:
        note = params["Note"] or {}
        text, by = note.get("Text"), note.get("UpdatedBy")
        if not isinstance(text, str) or not 1 <= len(text) <= 512 or not by:
            raise _invalid_input("Note needs Text (1..512 characters) and UpdatedBy")
        changes["Note"] = {"Text": text, "UpdatedBy": by, "UpdatedAt": now}
    if "VerificationState" in params:
        if params["VerificationState"] not in VERIFICATION_STATES:
            raise _invalid_input(f"VerificationState must be one of {', '.join(VERIFICATION_STATES)}")
        changes["VerificationState"] = params["VerificationState"]
    if "Severity" in params:
        label = (params["Severity"] or {}).get("Label")
        if label is not None and label not in SEVERITY_LABELS:
            raise _invalid_input(f"Severity.Label must be one of {', '.join(SEVERITY_LABELS)}")
        severity = dict(params["Severity"])
        if label:
            severity.setdefault("Normalized", LABEL_NORMALIZED[label])
        changes["Severity"] = severity
    for name in ("Confidence", "Criticality"):
        if name in params:
            if not isinstance(params[name], int) or not 0 <= params[name] <= 100:
                raise _invalid_input(f"{name} must be an integer 0..100")
            changes[name] = params[name]
    for name in ("Types", "UserDefinedFields", "RelatedFindings"):
        if name in params:
            changes[name] = params[name]
    if not changes:
        raise _invalid_input("BatchUpdateFindings needs at least one field to update (Workflow, Note, Severity, ...)")
    return changes


def store_finding(hub: _Hub, finding: dict, region: str, processed_at: str) -> None:
    """Create or update one finding the way BatchImportFindings does (docs/aws-behaviours.md §16)."""
    key = (finding["ProductArn"], finding["Id"])
    existing = hub.findings.get(key)
    if existing is not None:
        # Same Id + ProductArn: an update only when UpdatedAt is later; otherwise silently ignored and still
        # counted as a success (docs/aws-behaviours.md §16).
        if parse_timestamp(finding["UpdatedAt"]) <= parse_timestamp(existing.finding["UpdatedAt"]):
            return
    new = copy.deepcopy(finding)
    provider = new.setdefault("FindingProviderFields", {})
    for name in PROVIDER_FIELDS:
        if name in provider:
            new[name] = copy.deepcopy(provider[name])
        elif name in new:
            provider[name] = copy.deepcopy(new[name])
    if "Severity" in new and "Label" in new["Severity"]:
        new["Severity"].setdefault("Normalized", LABEL_NORMALIZED[new["Severity"]["Label"]])
    new.setdefault("RecordState", "ACTIVE")
    new.setdefault("Workflow", {"Status": "NEW"})
    new.setdefault("CompanyName", "Personal")
    new.setdefault("ProductName", "Default")
    new["Region"] = region
    new["ProcessedAt"] = processed_at
    product_fields = new.setdefault("ProductFields", {})
    product_fields["aws/securityhub/FindingId"] = f"{new['ProductArn']}/{new['Id']}"
    product_fields["aws/securityhub/ProductName"] = new["ProductName"]
    product_fields["aws/securityhub/CompanyName"] = new["CompanyName"]
    if existing is None:
        hub.seq += 1
        new["WorkflowState"] = new["Workflow"]["Status"]
        hub.findings[key] = _Stored(seq=hub.seq, finding=new)
        return
    old = existing.finding
    for name in CUSTOMER_ONLY_FIELDS:
        new.pop(name, None)
        if name in old:
            new[name] = copy.deepcopy(old[name])
    for name in existing.customer_set:
        new[name] = copy.deepcopy(old[name])
    # Workflow goes back to NEW from NOTIFIED/RESOLVED when the record is re-activated or compliance fails
    # again after PASSED (model WorkflowUpdate doc; finding-workflow-status.md).
    reactivated = old.get("RecordState") == "ARCHIVED" and new["RecordState"] == "ACTIVE"
    failed_again = old.get("Compliance", {}).get("Status") == "PASSED" and new.get("Compliance", {}).get("Status") in (
        "FAILED",
        "WARNING",
        "NOT_AVAILABLE",
    )
    if new["Workflow"].get("Status") in ("NOTIFIED", "RESOLVED") and (reactivated or failed_again):
        new["Workflow"] = {"Status": "NEW"}
    new["WorkflowState"] = new["Workflow"]["Status"]
    existing.finding = new
