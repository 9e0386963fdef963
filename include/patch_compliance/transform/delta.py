"""The ``delta`` table: what changed since the previous snapshot of the same DAG.

- NEWLY_NON_COMPLIANT: node NON_COMPLIANT now and not before (including nodes new to the fleet);
- REMEDIATED: node NON_COMPLIANT before and COMPLIANT now (a node that became UNKNOWN is not remediated);
- NEW_MISSING_PATCH: a (node, KBId, Title) non-compliant now and not before (current_status = its state);
- CLOSED_PATCH: a non-compliant patch of the previous snapshot that is gone now, on a node whose compliance is
  known now (a node we could not read this time closes nothing; previous_status = its old state).
"""

from __future__ import annotations

import pandas as pd

from include.patch_compliance.transform.patches import PATCH_KEY
from include.patch_compliance.transform.snapshot import PreviousSnapshot

NODE_KEY = ["account_id", "region", "instance_id"]
_TARGET = ["ou_id", "ou_path", "account_id", "account_name", "region"]


def delta_rows(nodes: pd.DataFrame, patches: pd.DataFrame, previous: PreviousSnapshot | None) -> pd.DataFrame:
    if previous is None:
        columns = ["previous_run_id", "change", *_TARGET, "instance_id", "kb_id", "title", "severity"]
        return pd.DataFrame(columns=[*columns, "previous_status", "current_status"])
    now_nodes = nodes[nodes["instance_id"].notna()][[*_TARGET, "instance_id", "compliance_status"]]
    before = previous.nodes[previous.nodes["instance_id"].notna()][[*NODE_KEY, "compliance_status"]]
    joined = now_nodes.merge(
        before.rename(columns={"compliance_status": "previous_status"}), on=NODE_KEY, how="left"
    ).rename(columns={"compliance_status": "current_status"})
    is_nc = joined["current_status"] == "NON_COMPLIANT"
    was_nc = (joined["previous_status"] == "NON_COMPLIANT").fillna(False).astype(bool)
    newly = joined[is_nc & ~was_nc].assign(change="NEWLY_NON_COMPLIANT")
    remediated = joined[was_nc & (joined["current_status"] == "COMPLIANT")].assign(change="REMEDIATED")

    current = patches[[*_TARGET, "instance_id", "kb_id", "title", "severity", "state"]].rename(
        columns={"state": "current_status"}
    )
    earlier = previous.patches[[*_TARGET, "instance_id", "kb_id", "title", "severity", "state"]].rename(
        columns={"state": "previous_status"}
    )
    marker_now = current[PATCH_KEY].assign(_now=True)
    marker_before = earlier[PATCH_KEY].assign(_before=True)
    new_missing = current.merge(marker_before, on=PATCH_KEY, how="left")
    new_missing = new_missing[new_missing["_before"].isna()].drop(columns="_before").assign(change="NEW_MISSING_PATCH")
    known_now = now_nodes[now_nodes["compliance_status"] != "UNKNOWN"][NODE_KEY].assign(_known=True)
    closed = earlier.merge(marker_now, on=PATCH_KEY, how="left")
    closed = closed[closed["_now"].isna()].drop(columns="_now").merge(known_now, on=NODE_KEY, how="inner")
    closed = closed.drop(columns="_known").assign(change="CLOSED_PATCH")

    frame = pd.concat([newly, remediated, new_missing, closed], ignore_index=True)
    frame["previous_run_id"] = previous.run_id
    for name in ("kb_id", "title", "severity", "previous_status", "current_status"):
        if name not in frame:
            frame[name] = None
    return frame
