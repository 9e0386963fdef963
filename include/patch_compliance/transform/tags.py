"""Owner tags: the nodes table's ``tags`` map (EC2 tags of an instance, SSM tags of a hybrid ``mi-`` node), the
per-tag columns for ``reports.group_by_tags`` and the summary's ``by_tag`` rollups (docs/data-contract.md,
"Tag columns").

The static schema (``transform/schema.py``, the committed Athena DDL) has ``tags``; the ``tag_<key>`` columns
depend on the configuration, so they are added after the static columns, in config order, by the table builders
(``build_tables``/``assemble_tables``) and written with ``nodes_table(keys)``; ``scripts/generate_athena.py
--group-by-tags`` writes the DDL with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.patch_compliance.naming import tag_column
from include.patch_compliance.transform.keys import composite
from include.patch_compliance.transform.rollups import compliant_pct
from include.patch_compliance.transform.schema import NODES, RUN_TABLES, STR, STR_MAP, TableSchema

_NODE = ["t", "instance_id"]


def nodes_table(group_by_tags: Sequence[str] = ()) -> TableSchema:
    """The nodes table with one string column per configured tag key after the static columns, in config order."""
    if not group_by_tags:
        return NODES
    extra = tuple((tag_column(k), STR) for k in group_by_tags)
    return TableSchema(NODES.name, NODES.columns + extra, NODES.sort_by, NODES.description)


def run_tables(group_by_tags: Sequence[str] = ()) -> dict[str, TableSchema]:
    """RUN_TABLES with the nodes table of these tag keys (what the builders return and publish writes)."""
    return {**RUN_TABLES, NODES.name: nodes_table(group_by_tags)}


def tag_maps(items: pa.Table) -> pa.Table:
    """``t``, ``instance_id`` and a ``tags`` map per node from a table of (t, instance_id, Tags list<Key, Value>):
    pairs with a null key are dropped, keys are sorted (stable bytes whatever order AWS listed them in)."""
    lists = items.column("Tags").combine_chunks()
    flat = pc.list_flatten(lists)
    parent = pc.list_parent_indices(lists)
    pairs = pa.table({"p": parent, "k": pc.struct_field(flat, "Key"), "v": pc.struct_field(flat, "Value")})
    pairs = pairs.filter(pc.is_valid(pairs.column("k"))).sort_by([("p", "ascending"), ("k", "ascending")])
    counts = (
        np.bincount(pairs.column("p").to_numpy(), minlength=len(items))
        if pairs.num_rows
        else np.zeros(len(items), dtype=np.int64)
    )
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    maps = pa.MapArray.from_arrays(
        offsets, pairs.column("k").combine_chunks(), pairs.column("v").combine_chunks(), type=STR_MAP
    )
    return pa.table({"t": items.column("t"), "instance_id": items.column("instance_id"), "tags": maps})


def node_tags(frame: pd.DataFrame, sources: Sequence[pa.Table]) -> pd.Series:
    """The ``tags`` column of the nodes frame (columns t, instance_id) from ``tag_maps`` tables, the first source
    holding a node winning; an empty map for a node without tags, null on a row without a node."""
    source = pa.concat_tables(sources) if sources else None
    empty = pa.MapArray.from_arrays(pa.array([0, 0], pa.int32()), pa.array([], STR), pa.array([], STR), type=STR_MAP)
    if source is None or not source.num_rows or not len(frame):
        values, index = empty, pa.nulls(len(frame), pa.int64())
    else:
        source_frame = source.select(_NODE).to_pandas(types_mapper=pd.ArrowDtype)
        values = pa.concat_arrays([source.column("tags").combine_chunks(), empty])
        index = pc.index_in(composite(frame, _NODE), value_set=composite(source_frame, _NODE)).cast(pa.int64())
    is_node = pa.array(frame["instance_id"].notna().to_numpy())
    index = pc.if_else(is_node, pc.fill_null(index, len(values) - 1), pa.scalar(None, pa.int64()))
    return pd.Series(pc.take(values, index), index=frame.index, dtype=pd.ArrowDtype(STR_MAP))


def with_tag_columns(nodes: pd.DataFrame, group_by_tags: Sequence[str]) -> pd.DataFrame:
    """The nodes frame with a ``tag_<key>`` column per configured key: the node's tag value, null without it."""
    if not group_by_tags:
        return nodes
    tags = pa.array(nodes["tags"], type=STR_MAP) if len(nodes) else pa.array([], type=STR_MAP)
    for key in group_by_tags:
        nodes[tag_column(key)] = pd.Series(
            pc.map_lookup(tags, pa.scalar(key, STR), "first"), index=nodes.index, dtype=pd.ArrowDtype(STR)
        )
    return nodes


def by_tag(nodes: pd.DataFrame, group_by_tags: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """summary.json ``by_tag``: per configured key, one entry per tag value (sorted; nodes without the tag last,
    under value null) with node counts by compliance and the compliant % of those nodes."""
    is_node = nodes["instance_id"].notna()
    out: dict[str, list[dict[str, Any]]] = {}
    for key in group_by_tags:
        if not is_node.any():
            out[key] = []
            continue
        values = nodes.loc[is_node, tag_column(key)]
        part = pd.DataFrame(
            {
                "missing": values.isna().to_numpy(),
                "value": values.astype(object).fillna("").to_numpy(),
                "status": nodes.loc[is_node, "compliance_status"].astype(object).to_numpy(),
            }
        )
        # (missing, value) sorts tagged values first, by value, and the nodes without the tag last.
        counts = part.groupby(["missing", "value", "status"]).size().unstack("status", fill_value=0)
        counts = counts.reindex(columns=["COMPLIANT", "NON_COMPLIANT", "UNKNOWN"], fill_value=0).sort_index()
        rows = []
        for (missing, value), c in counts.iterrows():  # one row per distinct tag value
            total = int(c.sum())
            rows.append(
                {
                    "value": None if missing else value,
                    "nodes": total,
                    "compliant": int(c["COMPLIANT"]),
                    "non_compliant": int(c["NON_COMPLIANT"]),
                    "unknown": int(c["UNKNOWN"]),
                    "compliant_pct": float(compliant_pct([c["COMPLIANT"]], [total])[0]),
                }
            )
        out[key] = rows
    return out
