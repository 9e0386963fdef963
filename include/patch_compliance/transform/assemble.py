"""``assemble_tables``: the run's report tables from every shard's staged tables (+ the previous snapshot).

What needs the whole run happens here: one document per target (a retried or re-planned shard may have collected
a target twice), first_seen carried from the previous snapshot with age and SLA, compliance and coverage with the
report's clock, SLA breaches per node, the accounts rollup and the delta. Each staged table is read with only the
columns the report tables need. The result equals ``build_tables`` on the same raw documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.patch_compliance.transform.build import check_run_args
from include.patch_compliance.transform.cves import cve_rows
from include.patch_compliance.transform.delta import NODE_KEY, delta_rows
from include.patch_compliance.transform.keys import composite
from include.patch_compliance.transform.nodes import classify_nodes
from include.patch_compliance.transform.patches import check_sla_days, date_patches
from include.patch_compliance.transform.rollups import account_rows
from include.patch_compliance.transform.schema import I64, conform
from include.patch_compliance.transform.snapshot import PreviousSnapshot
from include.patch_compliance.transform.staging import DOC, STAGED, StagedRun
from include.patch_compliance.transform.tags import run_tables, with_tag_columns


def _frame(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _columns(name: str) -> list[str]:
    """A staged table's columns without ``_doc``: what the report tables are built from."""
    return [n for n in STAGED[name].names if n != DOC]


def assemble_tables(
    staged: StagedRun,
    previous: PreviousSnapshot | None,
    *,
    run_id: str,
    dag_id: str,
    snapshot_date: date,
    now: datetime,
    sla_days: dict[str, int],
    stale_after_days: int,
    group_by_tags: Sequence[str] = (),
) -> dict[str, pd.DataFrame]:
    """All per-run tables (nodes, patches, accounts, commands, compliance_items, delta, cves), each conformed to
    ``transform/schema.py``, from the staged shards. Pure: the same staged tables give the same frames."""
    check_run_args(run_id, dag_id, snapshot_date, now, stale_after_days)
    check_sla_days(sla_days)
    targets, docs = staged.one_doc_per_target()
    patches = date_patches(
        _frame(staged.table("patches", _columns("patches"), docs)), previous, now=now, sla_days=sla_days
    )
    nodes = _frame(staged.table("nodes", _columns("nodes"), docs))
    nodes["sla_breaches"] = node_breaches(nodes, patches)
    nodes = classify_nodes(nodes, pd.Timestamp(now).tz_convert("UTC"), stale_after_days)
    tables = {
        "nodes": with_tag_columns(nodes, group_by_tags),
        "patches": patches,
        "accounts": account_rows(nodes, patches, targets),
        "commands": _frame(staged.table("commands")),
        "compliance_items": _frame(staged.table("compliance_items", _columns("compliance_items"), docs)),
        "delta": delta_rows(nodes, patches, previous),
        "cves": cve_rows(patches),
    }
    out = {}
    for name, schema in run_tables(group_by_tags).items():
        frame = tables.pop(name).assign(run_id=run_id, dag_id=dag_id, snapshot_date=snapshot_date)
        out[name] = conform(frame, schema)
    return out


def node_breaches(nodes: pd.DataFrame, patches: pd.DataFrame) -> pd.Series:
    """Patches past their SLA per node: the sum over its patch rows; 0 for a node with a patch state and no
    non-compliant patch, null where nothing is known (``non_compliant_patches`` is null exactly there)."""
    known = pa.array(nodes["non_compliant_patches"]).cast(I64)
    if len(patches) and len(nodes):
        per_patch = pa.table({"k": composite(patches, NODE_KEY), "b": pa.array(patches["sla_breached"]).cast(I64)})
        sums = per_patch.group_by("k").aggregate([("b", "sum")])
        found = pc.take(sums.column("b_sum"), pc.index_in(composite(nodes, NODE_KEY), value_set=sums.column("k")))
    else:
        found = pa.nulls(len(nodes), type=I64)
    breaches = pc.if_else(pc.is_null(known), pa.scalar(None, I64), pc.coalesce(found, 0))
    return pd.Series(breaches, index=nodes.index, dtype=pd.ArrowDtype(I64))
