"""The ``delta`` table: what changed since the previous snapshot of the same DAG.

- NEWLY_NON_COMPLIANT: node NON_COMPLIANT now and not before (including nodes new to the fleet);
- REMEDIATED: node NON_COMPLIANT before and COMPLIANT now (a node that became UNKNOWN is not remediated);
- NEW_MISSING_PATCH: a (node, KBId, Title) non-compliant now and not before (current_status = its state);
- CLOSED_PATCH: a non-compliant patch of the previous snapshot that is gone now, on a node whose compliance is
  known now (a node we could not read this time closes nothing; previous_status = its old state).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.patch_compliance.transform.keys import lookup, present
from include.patch_compliance.transform.patches import PREVIOUS_ROW
from include.patch_compliance.transform.snapshot import PreviousSnapshot

NODE_KEY = ["account_id", "region", "instance_id"]
_TARGET = ["ou_id", "ou_path", "account_id", "account_name", "region"]


def delta_rows(nodes: pd.DataFrame, patches: pd.DataFrame, previous: PreviousSnapshot | None) -> pd.DataFrame:
    """The delta of ``nodes`` and ``patches`` (as ``date_patches`` dated them against ``previous``)."""
    if previous is None:
        columns = ["previous_run_id", "change", *_TARGET, "instance_id", "kb_id", "title", "severity"]
        return pd.DataFrame(columns=[*columns, "previous_status", "current_status"])
    now_nodes = nodes[nodes["instance_id"].notna()][[*_TARGET, "instance_id", "compliance_status"]]
    before = previous.nodes[previous.nodes["instance_id"].notna()]
    joined = now_nodes.rename(columns={"compliance_status": "current_status"})
    joined["previous_status"] = pd.Series(
        lookup(joined, before, NODE_KEY, "compliance_status"), index=joined.index, dtype=pd.ArrowDtype(pa.string())
    )
    is_nc = (joined["current_status"] == "NON_COMPLIANT").to_numpy(dtype=bool, na_value=False)
    was_nc = (joined["previous_status"] == "NON_COMPLIANT").to_numpy(dtype=bool, na_value=False)
    now_c = (joined["current_status"] == "COMPLIANT").to_numpy(dtype=bool, na_value=False)
    newly = joined[is_nc & ~was_nc].assign(change="NEWLY_NON_COMPLIANT")
    remediated = joined[was_nc & now_c].assign(change="REMEDIATED")

    cols = [*_TARGET, "instance_id", "kb_id", "title", "severity", "state"]
    current = patches[cols].rename(columns={"state": "current_status"})
    earlier = previous.patches[cols].rename(columns={"state": "previous_status"})
    # date_patches matched every row to the previous snapshot already (published patch keys are unique).
    position = pa.array(patches[PREVIOUS_ROW]) if len(patches) else pa.array([], type=pa.int32())
    is_new = pc.is_null(position).to_numpy(zero_copy_only=False)
    is_gone = np.ones(len(earlier), dtype=bool)
    is_gone[pc.drop_null(position).to_numpy()] = False
    new_missing = current[is_new].assign(change="NEW_MISSING_PATCH")
    known_now = now_nodes[now_nodes["compliance_status"] != "UNKNOWN"]
    gone = earlier[is_gone]
    closed = gone[present(gone, known_now, NODE_KEY)].assign(change="CLOSED_PATCH")

    frame = pd.concat([newly, remediated, new_missing, closed], ignore_index=True)
    frame["previous_run_id"] = previous.run_id
    for name in ("kb_id", "title", "severity", "previous_status", "current_status"):
        if name not in frame:
            frame[name] = None
    return frame
