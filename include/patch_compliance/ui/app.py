"""The "Patch compliance" page: a FastAPI app the plugin mounts at ``/patch-compliance``.

Routes: ``/`` and ``/cves`` (``pages.py``), ``/api/summary``, ``/runs/<id>/report``, ``/remediation``. Why
server-rendered FastAPI + Jinja with inline SVG (not a React plugin): ``react_apps`` is still experimental in
Airflow 3.1+, and a React bundle needs a Node toolchain and a build step in the image. This page has no interactivity
beyond links, renders in the Airflow nav iframe without JavaScript, and is tested by plain HTTP (TestClient) as well as
in a browser. The full HTML report for a run is streamed from S3 by this app, since report objects are not public.

Nothing here touches AWS or reads the config at import time: each request loads the config and builds the S3 client.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from include.patch_compliance.ui import pages, remediation
from include.patch_compliance.ui.source import SAFE_RUN_ID, Problem, ReportStore, ReportUnavailable
from include.patch_compliance.ui.summary_model import InvalidSummary, Summary, parse_summary

HERE = Path(__file__).resolve().parent
# The report is our own generated HTML, but it is served from the Airflow origin: forbid scripts and any fetch, and
# give it an opaque origin (CSP sandbox) so it can never act with the viewer's Airflow session.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; sandbox"
NO_STORE = {"Cache-Control": "no-store"}

StoreFactory = Callable[[], ReportStore]


def store_from_config() -> ReportStore:
    """The configured reports bucket, read through the Airflow AWS connection (``aws/`` module)."""
    from include.patch_compliance.aws import context_from_connection
    from include.patch_compliance.config import load_config

    cfg = load_config()
    ctx = context_from_connection(cfg.access.aws_conn_id, max_attempts=3)
    return ReportStore(ctx.client("s3"), cfg.reports.bucket, cfg.reports.prefix, cfg.access.aws_conn_id or "")


def _setup_problem(exc: Exception) -> Problem:
    """The config or the connection could not be loaded: nothing was read from S3 yet."""
    from include.patch_compliance.config import ConfigError
    from include.patch_compliance.vocab import CONFIG_ENV

    if isinstance(exc, ConfigError):
        return Problem("", "", "ConfigError", str(exc), f"Fix the file named above (or set {CONFIG_ENV}).")
    return Problem(
        "", "", type(exc).__name__, str(exc), "Check the Airflow AWS connection named by access.aws_conn_id."
    )


def _safe_id_from_report_url(report_url: str | None, store: ReportStore) -> str | None:
    """``s3://<bucket>/<prefix>/runs/<safe id>/report.html`` -> safe id, only inside the configured bucket/prefix."""
    expected = f"s3://{store.bucket}/{store.key('runs/')}"
    if not report_url or not report_url.startswith(expected) or not report_url.endswith("/report.html"):
        return None
    safe_id = report_url[len(expected) : -len("/report.html")]
    return safe_id if SAFE_RUN_ID.match(safe_id) else None


def _run_links(summary: Summary, store: ReportStore) -> dict[str, str]:
    """run_id -> safe id of its report folder (runs/<safe_run_id>/, docs/architecture.md)."""
    from include.patch_compliance.storage import safe_run_id

    links = {row.run_id: safe_run_id(row.run_id) for row in summary.runs}
    latest = _safe_id_from_report_url(summary.report_url, store)
    links[summary.run_id] = latest or safe_run_id(summary.run_id)
    return links


def create_app(store_factory: StoreFactory = store_from_config, *, dependencies: Sequence[Any] = ()) -> FastAPI:
    """``dependencies``: FastAPI dependencies run for every route (the plugin passes Airflow's login check)."""
    app = FastAPI(
        title="Patch compliance",
        dependencies=[Depends(d) for d in dependencies],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    # Mounted sub-apps skip the app's dependencies: the CSS and the nav icon are public (they hold no data).
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")

    def open_store() -> tuple[ReportStore | None, Problem | None]:
        try:
            return store_factory(), None
        except Exception as exc:  # noqa: BLE001 - any setup failure is shown on the page, not as a 500
            return None, _setup_problem(exc)

    def load() -> tuple[ReportStore | None, Summary | None, dict[str, Any] | None, Problem | None]:
        store, problem = open_store()
        if store is None:
            return None, None, None, problem
        try:
            raw = store.latest_summary()
            if raw is None:
                return store, None, None, None
            return store, parse_summary(raw), raw, None
        except ReportUnavailable as exc:
            return store, None, None, exc.problem
        except InvalidSummary as exc:
            return store, None, None, store.invalid(store.key("latest/summary.json"), str(exc))

    @app.get("/api/summary", name="api_summary")
    def api_summary() -> JSONResponse:
        store, summary, raw, problem = load()
        if problem is not None:
            return JSONResponse({"status": "error", "problem": problem.as_dict()}, status_code=503, headers=NO_STORE)
        assert store is not None  # load() names a problem whenever it has no store
        if summary is None:
            body = {"status": "no_report", "bucket": store.bucket, "key": store.key("latest/summary.json")}
            return JSONResponse(body, status_code=404, headers=NO_STORE)
        return JSONResponse({"status": "ok", "summary": raw}, headers=NO_STORE)

    @app.get("/runs/{safe_run_id}/report", response_class=HTMLResponse, name="run_report")
    def run_report(request: Request, safe_run_id: str) -> Response:
        if not SAFE_RUN_ID.match(safe_run_id):
            return _message(request, templates, 400, "Not a run id", f"{safe_run_id!r} is not a published run id.")
        store, problem = open_store()
        if store is not None:
            try:
                body = store.report_html(safe_run_id)
            except ReportUnavailable as exc:
                problem = exc.problem
            else:
                if body is None:
                    key = store.key(f"runs/{safe_run_id}/report.html")
                    text = f"s3://{store.bucket}/{key} does not exist (the run may not have reached publish)."
                    return _message(request, templates, 404, "No report for this run", text)
                return Response(
                    body,
                    media_type="text/html; charset=utf-8",
                    headers={**NO_STORE, "Content-Security-Policy": REPORT_CSP},
                )
        return templates.TemplateResponse(
            request, "page.html", {"problem": problem, "summary": None, "store": store}, status_code=503
        )

    pages.register(app, templates, load, _run_links)
    remediation.register(app, templates, open_store)
    return app


def _message(request: Request, templates: Jinja2Templates, status: int, title: str, text: str) -> Response:
    return templates.TemplateResponse(
        request, "message.html", {"title": title, "text": text}, status_code=status, headers=NO_STORE
    )
