"""The records that pass between steps (plan → scan → wait → collect → transform), defined once.

Steps never import each other; what two of them exchange is declared here, at the bottom of the dependency order
(docs/architecture.md, "Shared contracts").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Target:
    """One account-region of the plan, in one wave."""

    ou_id: str
    ou_path: str
    account_id: str
    account_name: str
    region: str
    wave: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)
