"""The page's Remediation section and its own routes: the latest ``patch_compliance_remediate`` run, read from
``latest/patch_compliance_remediate/summary.json`` (its ``remediation`` block, docs/remediation.md).

Kept apart from ``app.py``: the section is one template block on the page (``_remediation.html``), the full list of
nodes is ``GET /remediation`` and the JSON is ``GET /api/remediation``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from include.patch_compliance.ui.source import SAFE_RUN_ID, Problem, ReportStore, ReportUnavailable

REMEDIATION_SUMMARY = "latest/patch_compliance_remediate/summary.json"
NO_STORE = {"Cache-Control": "no-store"}
Count = Annotated[int, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Figures(_Model):
    non_compliant: Count = 0
    compliant: Count = 0
    missing: Count = 0
    failed: Count = 0
    pending_reboot: Count = 0
    rejected: Count = 0


class WaveRow(_Model):
    wave: str
    nodes: Count
    invocations: Count = 0
    failed: Count = 0
    held: bool = False
    reason: str | None = None


class NodeRow(_Model):
    account_id: str
    region: str
    instance_id: str
    instance_name: str | None = None
    wave: str | None = None
    outcome: str | None = None
    result: str
    missing_before: int | None = None
    missing_after: int | None = None
    failed_before: int | None = None
    failed_after: int | None = None
    patches_installed: int | None = None
    reboot_needed: bool | None = None
    rescanned: bool = False
    error: str | None = None


class Remediation(_Model):
    source_run_id: str
    reboot_option: str
    selected: Count
    sent: Count
    before: Figures
    after: Figures
    results: dict[str, Count]
    patches_installed: Count = 0
    reboot_needed: Count = 0
    rescanned: Count = 0
    waves: list[WaveRow] = Field(default_factory=list)
    nodes: list[NodeRow] = Field(default_factory=list)
    nodes_shown: Count = 0
    left_out: dict[str, Count] = Field(default_factory=dict)

    @property
    def held(self) -> list[WaveRow]:
        return [w for w in self.waves if w.held]


class RemediationRun(_Model):
    run_id: str = Field(min_length=1)
    dag_id: str
    snapshot_date: str
    generated_at: str
    report_url: str | None = None
    remediation: Remediation

    @property
    def report_id(self) -> str | None:
        """The run's report folder (``runs/<safe run id>/report.html``), read through the page's report route."""
        if not self.report_url or not self.report_url.endswith("/report.html"):
            return None
        candidate = self.report_url.rsplit("/", 2)[-2]
        return candidate if SAFE_RUN_ID.match(candidate) else None


def load_remediation(store: ReportStore) -> tuple[RemediationRun | None, Problem | None]:
    """The latest remediation run, None when there is none yet, or the problem that kept it from being read."""
    try:
        raw = store.json_object(REMEDIATION_SUMMARY)
    except ReportUnavailable as exc:
        return None, exc.problem
    if raw is None:
        return None, None
    try:
        return RemediationRun.model_validate(raw), None
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:8])
        return None, store.invalid(store.key(REMEDIATION_SUMMARY), f"not a remediation summary: {fields}")


def register(app: FastAPI, templates: Jinja2Templates, open_store: Callable[[], tuple[Any, Problem | None]]) -> None:
    """``GET /remediation`` (every node of the latest remediation run) and ``GET /api/remediation``."""

    @app.get("/remediation", response_class=HTMLResponse, name="remediation")
    def remediation_page(request: Request) -> Response:
        store, problem = open_store()
        run = None
        if store is not None:
            run, problem = load_remediation(store)
        context = {"run": run, "problem": problem, "store": store, "summary_key": REMEDIATION_SUMMARY}
        status = 503 if problem is not None else 200
        return templates.TemplateResponse(request, "remediation.html", context, status_code=status, headers=NO_STORE)

    @app.get("/api/remediation", name="api_remediation")
    def api_remediation() -> JSONResponse:
        store, problem = open_store()
        run = None
        if store is not None:
            run, problem = load_remediation(store)
        if problem is not None:
            return JSONResponse({"status": "error", "problem": problem.as_dict()}, status_code=503, headers=NO_STORE)
        if run is None:
            body = {"status": "no_remediation", "key": store.key(REMEDIATION_SUMMARY)}
            return JSONResponse(body, status_code=404, headers=NO_STORE)
        return JSONResponse({"status": "ok", "remediation": run.model_dump()}, headers=NO_STORE)
