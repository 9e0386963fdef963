"""The previous snapshot of the same DAG: what delta and first_seen carry forward from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from include.patch_compliance.transform.schema import NODES, PATCHES, conform


@dataclass(frozen=True)
class PreviousSnapshot:
    """The nodes and patches tables of an earlier run (as published), with its run id and date."""

    run_id: str
    snapshot_date: date
    nodes: pd.DataFrame
    patches: pd.DataFrame

    def __post_init__(self) -> None:
        # Conform on the way in: older files may lack newer columns only if the schema grew, which is a
        # migration question; fail loudly rather than silently mis-joining. Not sorted: the previous snapshot is
        # only looked up in, and every table built from it is sorted when it is conformed itself.
        object.__setattr__(self, "nodes", conform(self.nodes, NODES, sort=False))
        object.__setattr__(self, "patches", conform(self.patches, PATCHES, sort=False))
