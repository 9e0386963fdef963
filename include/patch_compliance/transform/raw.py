"""Raw collection documents (docs/architecture.md) -> flat Arrow tables, one per AWS item kind.

Each flat table carries ``t``, the index of its raw document, so target columns (OU, account, region) are
joined on once per table instead of being copied into every item. Items are converted by Arrow in C++ with an
explicit struct type (keys we do not use are ignored); a per-item Python pass runs only when an item does not fit
the documented shape (e.g. a time given as epoch seconds instead of an ISO string).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

S = pa.string()
I = pa.int64()  # noqa: E741 - short aliases keep the shapes readable

INSTANCE_INFORMATION = pa.struct(
    [
        ("InstanceId", S),
        ("PingStatus", S),
        ("LastPingDateTime", S),
        ("AgentVersion", S),
        ("PlatformType", S),
        ("PlatformName", S),
        ("PlatformVersion", S),
        ("ResourceType", S),
        ("ComputerName", S),
        ("Name", S),
    ]
)
TAG_LIST = pa.list_(pa.struct([("Key", S), ("Value", S)]))
EC2_INSTANCE = pa.struct(
    [
        ("InstanceId", S),
        ("State", pa.struct([("Name", S)])),
        ("PlatformDetails", S),
        ("Tags", TAG_LIST),
    ]
)
# A patch baseline's setting as collect records it (GetPatchBaseline, once per baseline per account-region).
BASELINE = pa.struct([("BaselineId", S), ("AvailableSecurityUpdatesComplianceStatus", S)])
# The SSM tags of a hybrid node (ListTagsForResource ResourceType ManagedInstance), as collect records them.
NODE_TAGS = pa.struct([("InstanceId", S), ("Tags", TAG_LIST)])
PATCH_STATE = pa.struct(
    [
        ("InstanceId", S),
        ("PatchGroup", S),
        ("BaselineId", S),
        ("InstalledCount", I),
        ("InstalledOtherCount", I),
        ("InstalledPendingRebootCount", I),
        ("InstalledRejectedCount", I),
        ("MissingCount", I),
        ("FailedCount", I),
        ("NotApplicableCount", I),
        ("AvailableSecurityUpdateCount", I),
        ("CriticalNonCompliantCount", I),
        ("SecurityNonCompliantCount", I),
        ("OtherNonCompliantCount", I),
        ("OperationStartTime", S),
        ("OperationEndTime", S),
        ("Operation", S),
    ]
)
PATCH = pa.struct(
    [
        ("Title", S),
        ("KBId", S),
        ("Classification", S),
        ("Severity", S),
        ("State", S),
        ("InstalledTime", S),
        ("CVEIds", S),
    ]
)
COMPLIANCE_DETAILS = pa.struct(
    [
        ("PatchState", S),
        ("Classification", S),
        ("PatchSeverity", S),
        ("PatchBaselineId", S),
        ("PatchGroup", S),
        ("DocumentName", S),
        ("InstalledTime", S),
        ("CVEIds", S),
    ]
)
COMPLIANCE_ITEM = pa.struct(
    [
        ("ComplianceType", S),
        ("ResourceId", S),
        ("Id", S),
        ("Title", S),
        ("Status", S),
        ("Severity", S),
        ("ExecutionSummary", pa.struct([("ExecutionTime", S), ("ExecutionId", S), ("ExecutionType", S)])),
        ("Details", COMPLIANCE_DETAILS),
    ]
)
COMMAND_RECORD = pa.struct(
    [
        ("account_id", S),
        ("region", S),
        ("ou_id", S),
        ("ou_path", S),
        ("account_name", S),
        ("wave", S),
        ("command_id", S),
        ("command_status", S),
        ("command_status_details", S),
        ("instance_id", S),
        ("status", S),
        ("status_details", S),
        ("response_code", I),
        ("requested_at", S),
        ("started_at", S),
        ("finished_at", S),
        ("error", S),
    ]
)
TARGET_FIELDS = ("ou_id", "ou_path", "account_id", "account_name", "region")
RAW_STATUSES = ("OK", "UNREACHABLE")


class RawDataError(ValueError):
    """A raw document or command record that does not have the documented shape; names the item and field."""


def targets_frame(raw_docs: list[dict]) -> pd.DataFrame:
    """One row per raw document: target columns, wave, target_status, target_error; index = ``t``."""
    rows = []
    for i, doc in enumerate(raw_docs):
        if not isinstance(doc, Mapping):
            raise RawDataError(f"raw_docs[{i}] must be a mapping (a raw collection document), got {type(doc).__name__}")
        target = doc.get("target")
        if not isinstance(target, Mapping):
            raise RawDataError(f"raw_docs[{i}].target is missing; collect must copy the plan's target into each doc")
        for name in TARGET_FIELDS:
            if not isinstance(target.get(name), str) or not target.get(name):
                raise RawDataError(f"raw_docs[{i}].target.{name} must be a non-empty string, got {target.get(name)!r}")
        status = doc.get("status")
        if status not in RAW_STATUSES:
            raise RawDataError(f"raw_docs[{i}].status must be one of {', '.join(RAW_STATUSES)}, got {status!r}")
        error = doc.get("error") or {}
        rows.append(
            {
                **{name: target[name] for name in TARGET_FIELDS},
                "wave": target.get("wave"),
                "target_status": status,
                "target_error": error.get("code") if isinstance(error, Mapping) else str(error),
            }
        )
    frame = pd.DataFrame(rows, columns=[*TARGET_FIELDS, "wave", "target_status", "target_error"])
    return frame.astype(pd.ArrowDtype(pa.string()))


def _check_container(raw_docs: list[dict], key: str, kind: type) -> None:
    for i, doc in enumerate(raw_docs):
        value = doc.get(key)
        if value is not None and not isinstance(value, kind):
            raise RawDataError(f"raw_docs[{i}].{key} must be a {kind.__name__}, got {type(value).__name__}")


def list_items(raw_docs: list[dict], key: str, typ: pa.StructType) -> pa.Table:
    """Items of a list-valued key (instance_information, ec2_instances, patch_states), with ``t``."""
    _check_container(raw_docs, key, list)
    lists = [doc.get(key) or [] for doc in raw_docs]
    counts = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    items = list(itertools.chain.from_iterable(lists))
    table = pa.Table.from_struct_array(struct_array(items, typ, key))
    return table.append_column("t", pa.array(np.repeat(np.arange(len(lists)), counts)))


def keyed_items(raw_docs: list[dict], key: str, typ: pa.StructType) -> pa.Table:
    """Items of an ``{instance_id: [items]}`` key (patches, compliance_items), with ``t`` and ``instance_id``."""
    _check_container(raw_docs, key, dict)
    t_index: list[int] = []
    instance_ids: list[str] = []
    lists: list[list] = []
    for i, doc in enumerate(raw_docs):
        for instance_id, items in (doc.get(key) or {}).items():
            if not isinstance(items, list):
                raise RawDataError(f"raw_docs[{i}].{key}[{instance_id!r}] must be a list, got {type(items).__name__}")
            t_index.append(i)
            instance_ids.append(instance_id)
            lists.append(items)
    counts = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    items = list(itertools.chain.from_iterable(lists))
    table = pa.Table.from_struct_array(struct_array(items, typ, key))
    table = table.append_column("t", pa.array(np.repeat(np.asarray(t_index, dtype=np.int64), counts)))
    owner = pa.DictionaryArray.from_arrays(
        pa.array(np.repeat(np.arange(len(lists)), counts), type=pa.int32()), pa.array(instance_ids, type=S)
    )
    return table.append_column("instance_id", owner.cast(S))


def struct_array(items: list[Any], typ: pa.StructType, where: str) -> pa.StructArray:
    try:
        arr = pa.array(items, type=typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = pa.array([_coerce(item, typ, f"{where}[{n}]") for n, item in enumerate(items)], type=typ)
    return arr


def _coerce(value: Any, typ: pa.DataType, where: str) -> Any:
    """Slow path for one value that does not fit ``typ``: numbers/datetimes where strings are expected (times as
    epoch seconds, ids as ints), numeric strings where ints are expected. Anything else is an error."""
    if value is None:
        return None
    if pa.types.is_struct(typ):
        if not isinstance(value, Mapping):
            raise RawDataError(f"{where} must be an object, got {type(value).__name__}")
        return {f.name: _coerce(value.get(f.name), f.type, f"{where}.{f.name}") for f in typ}
    if pa.types.is_list(typ):
        if not isinstance(value, list):
            raise RawDataError(f"{where} must be a list, got {type(value).__name__}")
        return [_coerce(v, typ.value_type, f"{where}[{n}]") for n, v in enumerate(value)]
    if pa.types.is_string(typ):
        if isinstance(value, str):
            return value
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, int | float) and not isinstance(value, bool):
            # Times that arrive as epoch seconds (botocore's raw form) become ISO strings.
            return datetime.fromtimestamp(value, tz=UTC).isoformat() if _is_time(where) else str(value)
        raise RawDataError(f"{where} must be a string, got {type(value).__name__}")
    if pa.types.is_integer(typ):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise RawDataError(f"{where} must be an integer, got {type(value).__name__}")
        try:
            return int(value)
        except ValueError:
            raise RawDataError(f"{where} must be an integer, got {value!r}") from None
    raise RawDataError(f"{where}: unsupported type {typ}")


def _is_time(where: str) -> bool:
    last = where.rsplit(".", 1)[-1]
    return last.endswith(("Time", "DateTime", "_at"))


def command_records(records: Iterable[dict]) -> pa.Table:
    records = list(records)
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise RawDataError(f"command_records[{i}] must be a mapping, got {type(rec).__name__}")
        for name in ("account_id", "region"):
            if not isinstance(rec.get(name), str) or not rec.get(name):
                raise RawDataError(f"command_records[{i}].{name} must be a non-empty string, got {rec.get(name)!r}")
    return pa.Table.from_struct_array(struct_array(records, COMMAND_RECORD, "command_records"))
