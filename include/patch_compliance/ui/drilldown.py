"""What the page's node list and CVE route show, read from the selected run's Parquet tables (``ui/tables.py``).

Each request reads only the columns it shows and keeps one batch and one page in memory: the node list is
filtered by the scanner, the missing patches are read for the nodes of the page only, a CVE's exposure keeps the
matching patch rows only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from include.patch_compliance.ui.filters import COLUMN_FILTERS, TAG_PREFIX, NodeQuery, check_tags
from include.patch_compliance.ui.source import ReportStore
from include.patch_compliance.ui.tables import Table, batches, distinct, open_table, rows_page
from include.patch_compliance.vocab import SEVERITIES

NODE_COLUMNS = [
    "account_id",
    "account_name",
    "region",
    "ou_path",
    "instance_id",
    "instance_name",
    "platform_name",
    "compliance_status",
    "coverage_status",
    "highest_missing_severity",
    "non_compliant_patches",
    "sla_breaches",
    "last_scan_time",
]
PATCH_COLUMNS = ["account_id", "region", "instance_id", "kb_id", "title", "severity", "cve_ids", "first_seen"]
PATCH_COLUMNS += ["age_days", "sla_breached"]
MENU_COLUMNS = ["ou_path", "account_id", "region"]
MAX_EXPOSED = 500  # nodes listed for one CVE (the count above the list is exact)
INDEX_SIZE = 50

_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def node_key(row: dict[str, Any]) -> tuple[str, str, str]:
    return (row.get("account_id") or "", row.get("region") or "", row.get("instance_id") or "")


def _by_severity(row: dict[str, Any]) -> tuple[int, str]:
    return (_RANK.get(row.get("severity") or "", len(SEVERITIES)), row.get("kb_id") or row.get("title") or "")


@dataclass
class NodePage:
    total: int
    rows: list[dict[str, Any]]
    options: dict[str, list[str]]  # filter parameter -> values in this run
    tag_columns: list[str]
    query: NodeQuery
    read: dict[str, int] = field(default_factory=dict)  # S3 requests and bytes this page took

    @property
    def first(self) -> int:
        return self.query.offset + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.query.offset + len(self.rows)

    @property
    def pages(self) -> int:
        return max((self.total + self.query.per_page - 1) // self.query.per_page, 1)


def _read(*tables: Table | None) -> dict[str, int]:
    opened = [t for t in tables if t is not None]
    return {
        "requests": sum(t.file.requests for t in opened),
        "bytes": sum(t.file.bytes_read for t in opened),
    }


def _exposed_ids(patches: Table, severity: str) -> list[str]:
    """Nodes missing at least one patch of ``severity``."""
    ids: set[str] = set()
    for batch in batches(patches, ["instance_id"], ds.field("severity") == severity):
        ids.update(v for v in batch.column("instance_id").unique().to_pylist() if v)
    return sorted(ids)


def patches_of(patches: Table | None, keys: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], list]:
    """The missing patches of the given nodes, most severe first."""
    wanted = set(keys)
    out: dict[tuple[str, str, str], list[dict[str, Any]]] = {k: [] for k in wanted}
    if patches is None or not wanted:
        return out
    ids = pa.array(sorted({k[2] for k in wanted}))
    for batch in batches(patches, PATCH_COLUMNS, ds.field("instance_id").isin(ids)):
        for row in batch.to_pylist():
            if node_key(row) in out:
                out[node_key(row)].append(row)
    for rows in out.values():
        rows.sort(key=_by_severity)
    return out


def node_page(store: ReportStore, tables: dict[str, str], query: NodeQuery) -> NodePage | None:
    """One page of the run's nodes matching ``query``, each with its missing patches and their CVEs; None when
    the run published no nodes table (an older producer)."""
    nodes = open_table(store, tables, "nodes")
    if nodes is None:
        return None
    tag_columns = sorted(c for c in nodes.columns if c.startswith(TAG_PREFIX))
    check_tags(query, nodes.columns)
    patches = open_table(store, tables, "patches")
    where = query.where()
    if query.severity is not None:
        ids = _exposed_ids(patches, query.severity) if patches is not None else []
        where = where & ds.field("instance_id").isin(pa.array(ids, pa.string()))
    total, rows = rows_page(nodes, NODE_COLUMNS + tag_columns, where, offset=query.offset, limit=query.per_page)
    missing = patches_of(patches, [node_key(r) for r in rows])
    for row in rows:
        row["patches"] = missing.get(node_key(row), [])
        row["cves"] = sorted({c for p in row["patches"] for c in (p.get("cve_ids") or [])})
    menus = distinct(nodes, MENU_COLUMNS + tag_columns, ds.field("instance_id").is_valid())
    param_of = {column: param for param, column in COLUMN_FILTERS.items()}
    options = {param_of.get(column, column): values for column, values in menus.items()}
    return NodePage(total, rows, options, tag_columns, query, _read(nodes, patches))


@dataclass
class CveExposure:
    cve_id: str
    nodes: list[dict[str, Any]]  # at most MAX_EXPOSED, each with the patches that fix the CVE
    node_count: int
    accounts: int
    patch_rows: int
    sla_breaches: int  # of those patch rows
    first_seen: Any
    severity: str | None
    read: dict[str, int] = field(default_factory=dict)


def _rows_naming(batch: pa.RecordBatch, cve_id: str) -> pa.RecordBatch:
    """The rows of ``batch`` whose ``cve_ids`` list holds ``cve_id``."""
    lists = batch.column("cve_ids")
    hit = pc.equal(pc.list_flatten(lists), cve_id)
    parents = pc.unique(pc.filter(pc.list_parent_indices(lists), hit))
    return batch.take(parents)


def cve_exposure(store: ReportStore, tables: dict[str, str], cve_id: str) -> CveExposure | None:
    """Every node of the run missing a patch that names ``cve_id`` (the ``patches`` table's ``cve_ids``)."""
    patches = open_table(store, tables, "patches")
    if patches is None:
        return None
    found: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for batch in batches(patches, PATCH_COLUMNS, ds.field("cve_ids").is_valid()):
        for row in _rows_naming(batch, cve_id).to_pylist():
            found.setdefault(node_key(row), []).append(row)
    rows = [r for group in found.values() for r in group]
    keys = sorted(found)
    nodes = open_table(store, tables, "nodes")
    info: dict[tuple[str, str, str], dict[str, Any]] = {}
    shown = keys[:MAX_EXPOSED]
    if nodes is not None and shown:
        ids = pa.array(sorted({k[2] for k in shown}))
        for batch in batches(nodes, NODE_COLUMNS, ds.field("instance_id").isin(ids)):
            info.update((node_key(r), r) for r in batch.to_pylist())
    listed = []
    for key in shown:
        base = info.get(key) or {"account_id": key[0], "region": key[1], "instance_id": key[2]}
        listed.append({**base, "patches": sorted(found[key], key=_by_severity)})
    seen = [r["first_seen"] for r in rows if r.get("first_seen") is not None]
    severities = sorted((str(r["severity"]) for r in rows if r.get("severity")), key=lambda s: _RANK.get(s, 99))
    return CveExposure(
        cve_id=cve_id,
        nodes=listed,
        node_count=len(keys),
        accounts=len({k[0] for k in keys}),
        patch_rows=len(rows),
        sla_breaches=sum(1 for r in rows if r.get("sla_breached")),
        first_seen=min(seen) if seen else None,
        severity=severities[0] if severities else None,
        read=_read(patches, nodes),
    )


def cve_index(store: ReportStore, tables: dict[str, str], top_cves: list[dict[str, Any]]) -> tuple[str, list]:
    """(source, rows) of the CVE index, most exposed first: the run's ``cves`` table when it has one, else the
    summary's ``top_cves``, else counted from the ``patches`` table (older producers)."""
    cves = open_table(store, tables, "cves")
    if cves is not None:
        columns = ["cve_id", "severity", "nodes", "accounts", "first_seen", "sla_breaches", "kb_ids"]
        rows = [r for b in batches(cves, columns) for r in b.to_pylist()]
        rows.sort(key=lambda r: (-(r.get("nodes") or 0), r.get("cve_id") or ""))
        return "cves table", rows[:INDEX_SIZE]
    if top_cves:
        return "summary.json top_cves", top_cves[:INDEX_SIZE]
    patches = open_table(store, tables, "patches")
    if patches is None:
        return "none", []
    return "patches table", _count_cves(patches)


def _count_cves(patches: Table) -> list[dict[str, Any]]:
    """Exposed nodes, accounts, max severity and SLA-breached rows per CVE, from the patches rows that name one."""
    acc: dict[str, dict[str, Any]] = {}
    columns = ["account_id", "region", "instance_id", "kb_id", "severity", "cve_ids", "first_seen", "sla_breached"]
    for batch in batches(patches, columns, ds.field("cve_ids").is_valid()):
        lists = batch.column("cve_ids")
        rows = batch.take(pc.list_parent_indices(lists)).drop_columns(["cve_ids"]).to_pylist()
        for cve, row in zip(pc.list_flatten(lists).to_pylist(), rows, strict=True):
            item = acc.setdefault(
                cve, {"nodes": set(), "accounts": set(), "kb_ids": set(), "sev": [], "seen": [], "breaches": 0}
            )
            item["nodes"].add(node_key(row))
            item["accounts"].add(row["account_id"])
            item["kb_ids"].update([row["kb_id"]] if row.get("kb_id") else [])
            item["sev"].append(row.get("severity"))
            item["seen"].append(row.get("first_seen"))
            item["breaches"] += 1 if row.get("sla_breached") else 0
    out = []
    for cve, item in acc.items():
        sev = sorted((s for s in item["sev"] if s), key=lambda s: _RANK.get(s, 99))
        seen = [s for s in item["seen"] if s is not None]
        out.append(
            {
                "cve_id": cve,
                "severity": sev[0] if sev else None,
                "nodes": len(item["nodes"]),
                "accounts": len(item["accounts"]),
                "first_seen": min(seen) if seen else None,
                "sla_breaches": item["breaches"],
                "kb_ids": sorted(item["kb_ids"]),
            }
        )
    out.sort(key=lambda r: (-r["nodes"], r["cve_id"]))
    return out[:INDEX_SIZE]
