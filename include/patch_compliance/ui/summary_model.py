"""The summary.json contract (docs/architecture.md) as the page reads it: validated, so a bad file gives a message
naming the field instead of a template error. Unknown keys are ignored (newer producers may add some)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from include.patch_compliance.palette import run_time

Count = Annotated[int, Field(ge=0)]
NonEmpty = Annotated[str, Field(min_length=1)]
# compliant_pct is a percentage 0..100; null when there is nothing to divide by (no nodes).
Pct = Annotated[float, Field(ge=0, le=100)] | None


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Totals(_Model):
    nodes: Count
    compliant: Count
    non_compliant: Count
    unknown: Count
    compliant_pct: Pct
    unreachable_targets: Count
    targets: Count
    sla_breaches: Count
    coverage: dict[str, Count]
    severity: dict[str, Count]
    # Newer producers: the node split and what compliant_pct is taken over.
    managed: Count | None = None
    unmanaged: Count | None = None
    compliant_pct_of: str | None = None

    @property
    def split(self) -> tuple[int, int]:
        """(managed, unmanaged) nodes; from the UNMANAGED coverage count when the summary has no split."""
        unmanaged = self.unmanaged if self.unmanaged is not None else self.coverage.get("UNMANAGED", 0)
        managed = self.managed if self.managed is not None else self.nodes - unmanaged
        return managed, unmanaged


class OuRow(_Model):
    ou_id: str | None = None
    ou_path: str
    nodes: Count
    compliant: Count
    non_compliant: Count
    compliant_pct: Pct


class AccountRow(_Model):
    account_id: str
    account_name: str | None = None
    ou_path: str | None = None
    region: str | None = None
    nodes: Count
    non_compliant: Count
    compliant_pct: Pct


class TrendRow(_Model):
    run_id: NonEmpty
    snapshot_date: str
    nodes: Count
    compliant_pct: Pct
    generated_at: str | None = None

    @property
    def when(self) -> str:
        return run_time(self.run_id, self.snapshot_date, self.generated_at)


class CveRow(_Model):
    cve_id: NonEmpty
    severity: str | None = None
    nodes: Count
    accounts: Count = 0
    first_seen: str | None = None
    sla_breaches: Count = 0
    kb_ids: list[str] = Field(default_factory=list)
    titles: list[str] = Field(default_factory=list)


class TagRow(_Model):
    value: str | None = None
    nodes: Count
    compliant: Count
    non_compliant: Count
    unknown: Count = 0
    compliant_pct: Pct


class UnreachableRow(_Model):
    account_id: str
    account_name: str | None = None
    ou_path: str | None = None
    region: str | None = None
    wave: str | None = None
    stage: str | None = None
    error_code: str | None = None


class SkippedRow(_Model):
    account_id: str
    account_name: str | None = None
    ou_path: str | None = None
    reason: str | None = None


class SecurityHubCounts(_Model):
    created: Count = 0
    updated: Count = 0
    resolved: Count = 0
    failed: Count = 0


class Summary(_Model):
    run_id: NonEmpty
    dag_id: str
    snapshot_date: str
    generated_at: str
    report_url: str | None = None
    totals: Totals
    by_ou: list[OuRow]
    worst_accounts: list[AccountRow]
    trend: list[TrendRow]
    # Older producers wrote neither list: empty then.
    unreachable: list[UnreachableRow] = Field(default_factory=list)
    skipped: list[SkippedRow] = Field(default_factory=list)
    security_hub: SecurityHubCounts | None = None
    tables: dict[str, str] = Field(default_factory=dict)
    # Newer producers (issue 14): optional, empty for older summaries.
    top_cves: list[CveRow] = Field(default_factory=list)
    by_tag: dict[str, list[TagRow]] = Field(default_factory=dict)

    @property
    def node_coverage(self) -> dict[str, int]:
        """Nodes by coverage status. UNREACHABLE counts account-regions (one row each, no node), so it is left
        out here and shown with the unreachable targets."""
        return {status: n for status, n in self.totals.coverage.items() if status != "UNREACHABLE"}

    @property
    def coverage_gaps(self) -> int:
        """Nodes without a fresh scan: every node coverage status except SCANNED."""
        return sum(n for status, n in self.node_coverage.items() if status != "SCANNED")

    @property
    def runs(self) -> list[TrendRow]:
        """Recent runs, newest first, always including this run (a producer may leave it out of the trend)."""
        rows = list(self.trend)
        if all(r.run_id != self.run_id for r in rows):
            rows.append(
                TrendRow(
                    run_id=self.run_id,
                    snapshot_date=self.snapshot_date,
                    nodes=self.totals.nodes,
                    compliant_pct=self.totals.compliant_pct,
                    generated_at=self.generated_at,
                )
            )
        return sorted(rows, key=lambda r: (r.snapshot_date, r.when, r.run_id), reverse=True)


class InvalidSummary(ValueError):
    """summary.json does not follow the contract; the message names each bad field."""


def parse_summary(data: Any) -> Summary:
    try:
        return Summary.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()[:8]
        )
        raise InvalidSummary(f"summary.json does not follow the contract in docs/architecture.md: {problems}") from None
