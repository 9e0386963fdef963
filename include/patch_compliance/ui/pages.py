"""The page's HTML routes: ``/`` (a run's figures, charts, filters and paged node list) and ``/cves`` (the CVE
index, and the nodes exposed to one CVE). Both sit on the app built by ``app.create_app``, so they run behind
the same DAG-permission dependencies (``ui/access.py``) as every other data route."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from include.patch_compliance import charts, palette
from include.patch_compliance.ui import drilldown, remediation
from include.patch_compliance.ui.filters import BadQuery, parse, parse_cve, parse_run
from include.patch_compliance.ui.source import Problem, ReportStore, ReportUnavailable
from include.patch_compliance.ui.summary_model import InvalidSummary, Summary, parse_summary
from include.patch_compliance.vocab import COMPLIANCE_STATUSES, SEVERITIES

NO_STORE = {"Cache-Control": "no-store"}
Loaded = tuple[ReportStore | None, Summary | None, dict[str, Any] | None, Problem | None]


def _svg(chart: charts.BarChart | charts.TrendChart) -> Markup:
    return Markup(charts.svg(chart))  # noqa: S704 - charts.svg escapes every text it draws


def chart_context(summary: Summary, latest: Summary) -> dict[str, Markup | dict[str, Markup]]:
    """The page's charts: the selected run's figures, and the trend of the latest run's history (per run)."""
    by_tag = {
        key: _svg(charts.share_bars([r.model_dump() for r in rows], label_key="value", title=f"Compliance by {key}"))
        for key, rows in summary.by_tag.items()
    }
    return {
        "ou_chart": _svg(
            charts.share_bars([r.model_dump() for r in summary.by_ou], label_key="ou_path", title="Compliance by OU")
        ),
        "severity_chart": _svg(
            charts.count_bars(summary.totals.severity, SEVERITIES, title="Missing patches by severity")
        ),
        "coverage_chart": _svg(
            charts.count_bars(
                summary.node_coverage, palette.COVERAGE_ORDER, title="Scan coverage of nodes", label_width=170
            )
        ),
        "trend_chart": _svg(charts.trend([r.model_dump() for r in latest.runs], title="Compliant percentage per run")),
        "tag_charts": by_tag,
    }


def register(
    app: FastAPI,
    templates: Jinja2Templates,
    load: Callable[[], Loaded],
    run_links: Callable[[Summary, ReportStore], dict[str, str]],
) -> None:
    templates.env.globals.update(
        label=palette.label,
        colour=palette.colour,
        css_vars=palette.css_variables(),
        pct_of_label=palette.pct_of_label,
        compliance_values=COMPLIANCE_STATUSES,
        coverage_values=[c for c in palette.COVERAGE_ORDER if c != "UNREACHABLE"],  # node rows only
        severity_values=SEVERITIES,
    )

    def message(request: Request, status: int, title: str, text: str) -> Response:
        return templates.TemplateResponse(
            request, "message.html", {"title": title, "text": text}, status_code=status, headers=NO_STORE
        )

    def selected_run(store: ReportStore, latest: Summary, run: str | None, links: dict[str, str]) -> Summary | None:
        """The run the request asks for (``run=<safe run id>``), the latest when none; None when it has no
        summary.json. Raises ReportUnavailable for an unreadable or invalid one."""
        if run is None or run == links.get(latest.run_id):
            return latest
        raw = store.run_summary(run)
        if raw is None:
            return None
        try:
            return parse_summary(raw)
        except InvalidSummary as exc:
            raise ReportUnavailable(store.invalid(store.key(f"runs/{run}/summary.json"), str(exc))) from exc

    def resolve(request: Request, run: str | None) -> tuple[Response | None, dict[str, Any]]:
        """Shared by both routes: (an early response, or None) and the template context."""
        store, latest, _, problem = load()
        context: dict[str, Any] = {"problem": problem, "summary": latest, "store": store}
        if problem is not None:
            status = 503
            return templates.TemplateResponse(request, "page.html", context, status_code=status), context
        assert store is not None  # load() names a problem whenever it has no store
        if latest is None:
            return templates.TemplateResponse(request, "page.html", context, headers=NO_STORE), context
        links = run_links(latest, store)
        try:
            summary = selected_run(store, latest, run, links)
        except ReportUnavailable as exc:
            context["problem"] = exc.problem
            return templates.TemplateResponse(request, "page.html", context, status_code=503), context
        if summary is None:
            key = store.key(f"runs/{run}/summary.json")
            return message(request, 404, "No such run", f"s3://{store.bucket}/{key} does not exist."), context
        context.update(summary=summary, latest=latest, run_links=links, runs=latest.runs, run=run)
        return None, context

    @app.get("/", response_class=HTMLResponse, name="page")
    def page(request: Request) -> Response:
        try:
            query = parse(request.query_params)
        except BadQuery as exc:
            return message(request, 400, "Bad filter", str(exc))
        early, context = resolve(request, query.run)
        if early is not None:
            return early
        summary, store = context["summary"], context["store"]
        context.update(chart_context(summary, context["latest"]), query=query, nodes=None, nodes_problem=None)
        try:
            context["nodes"] = drilldown.node_page(store, summary.tables, query)
        except BadQuery as exc:
            return message(request, 400, "Bad filter", str(exc))
        except ReportUnavailable as exc:
            context["nodes_problem"] = exc.problem
        context["remediation"], context["remediation_problem"] = remediation.load_remediation(store)
        return templates.TemplateResponse(request, "page.html", context, headers=NO_STORE)

    @app.get("/cves", response_class=HTMLResponse, name="cves")
    def cves(request: Request) -> Response:
        try:
            run, cve_id = parse_run(request.query_params), parse_cve(request.query_params)
        except BadQuery as exc:
            return message(request, 400, "Bad CVE query", str(exc))
        early, context = resolve(request, run)
        if early is not None:
            return early
        summary, store = context["summary"], context["store"]
        context.update(cve_id=cve_id, exposure=None, index=[], index_source="", cve_problem=None)
        summary_row = next((c for c in summary.top_cves if c.cve_id == cve_id), None)
        try:
            if cve_id:
                context["exposure"] = drilldown.cve_exposure(store, summary.tables, cve_id)
                context["summary_row"] = summary_row
            else:
                top = [c.model_dump() for c in summary.top_cves]
                context["index_source"], context["index"] = drilldown.cve_index(store, summary.tables, top)
        except ReportUnavailable as exc:
            context["cve_problem"] = exc.problem
        return templates.TemplateResponse(request, "cves.html", context, headers=NO_STORE)
