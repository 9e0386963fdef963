"""Publish a remediation run: the ``remediation`` table, the selection, report.html with a Remediation section and
summary.json with a ``remediation`` block, then ``latest/<dag_id>/summary.json`` last.

The global ``latest/summary.json`` is never written here: a remediation run sees only the account-regions it
patched, and the page's fleet view must stay the last full scan's. No history entry either, so trends and the next
scan's delta keep comparing full scans.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from include.patch_compliance.aws import AwsContext
from include.patch_compliance.config import ReportsConfig
from include.patch_compliance.publish.report_files import (
    csv_bytes,
    json_bytes,
    latest_keys,
    parquet_bytes,
    run_key,
    table_key,
)
from include.patch_compliance.publish.report_html import render_html
from include.patch_compliance.publish.reports import PARQUET
from include.patch_compliance.storage import put_bytes, s3_uri
from include.patch_compliance.transform.schema import REMEDIATION

_SECTION = """<h2 id="remediation">Remediation</h2>
<p>Install (<code>RebootOption={{ r.reboot_option }}</code>) on the {{ r.selected }} nodes selected from scan run
<code>{{ r.source_run_id }}</code>{% if r.dry_run %} (dry run: nothing was sent){% endif %}: {{ r.sent }} sent,
{{ r.patches_installed }} patches installed, {{ r.reboot_needed }} nodes need a reboot, {{ r.rescanned }} rescanned.</p>
<table><tr><th></th><th>Non-compliant</th><th>Missing</th><th>Failed</th><th>Pending reboot</th><th>Rejected</th></tr>
<tr><th>Before</th><td id="rem-before-nc">{{ r.before.non_compliant }}</td><td>{{ r.before.missing }}</td>
<td>{{ r.before.failed }}</td><td>{{ r.before.pending_reboot }}</td><td>{{ r.before.rejected }}</td></tr>
<tr><th>After</th><td id="rem-after-nc">{{ r.after.non_compliant }}</td><td>{{ r.after.missing }}</td>
<td>{{ r.after.failed }}</td><td>{{ r.after.pending_reboot }}</td><td>{{ r.after.rejected }}</td></tr></table>
<h3>Results</h3>
<table><tr>{% for k in r.results %}<th>{{ k }}</th>{% endfor %}</tr>
<tr>{% for v in r.results.values() %}<td>{{ v }}</td>{% endfor %}</tr></table>
<h3>Waves</h3>
<table><tr><th>Wave</th><th>Nodes</th><th>Failed</th><th>Gate</th></tr>
{% for w in r.waves %}<tr><td>{{ w.wave }}</td><td>{{ w.nodes }}</td><td>{{ w.failed }}</td>
<td>{{ 'held: ' ~ w.reason if w.held else 'released' }}</td></tr>{% endfor %}</table>
<h3>Nodes (first {{ r.nodes_shown }})</h3>
<table><tr><th>Account</th><th>Region</th><th>Node</th><th>Wave</th><th>Outcome</th><th>Result</th><th>Missing</th>
<th>Failed</th><th>Installed</th><th>Reboot</th><th>Note</th></tr>
{% for n in r.nodes %}<tr data-node="{{ n.instance_id }}"><td>{{ n.account_id }}</td><td>{{ n.region }}</td>
<td>{{ n.instance_name or n.instance_id }}</td><td>{{ n.wave }}</td><td>{{ n.outcome }}</td><td>{{ n.result }}</td>
<td>{{ n.missing_before }} &rarr; {{ n.missing_after }}</td><td>{{ n.failed_before }} &rarr; {{ n.failed_after }}</td>
<td>{{ n.patches_installed }}</td><td>{{ 'yes' if n.reboot_needed else '' }}</td><td>{{ n.error or '' }}</td></tr>
{% else %}<tr><td colspan="11">No node was selected.</td></tr>{% endfor %}</table>
"""


def remediation_section(block: dict[str, Any]) -> Markup:
    """The report's Remediation section for a summary's ``remediation`` block."""
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    return Markup(env.from_string(_SECTION).render(r=block))  # noqa: S704 - rendered with autoescape on


def publish_selection(ctx: AwsContext, reports: ReportsConfig, selection: dict[str, Any], *, run_id: str) -> str:
    """``runs/<run>/selection.json``: the chosen nodes and every left-out node with its reason."""
    key = run_key(reports.prefix, run_id, "selection.json")
    body = json_bytes(selection)
    return put_bytes(ctx, reports.bucket, key, body, content_type="application/json", kms_key_id=reports.kms_key_id)


def publish_remediation(
    ctx: AwsContext,
    reports: ReportsConfig,
    table: pd.DataFrame,
    summary: dict[str, Any],
    tables: dict[str, pd.DataFrame],
    *,
    run_id: str,
    dag_id: str,
    snapshot_date: date,
) -> dict[str, str]:
    """Write the table (Parquet, CSV), report.html, summary.json, then the per-DAG latest pointer. ``tables``
    are the verification's report tables (the touched account-regions after the Install) for the report page."""

    def put(key: str, body: bytes, content_type: str) -> str:
        return put_bytes(ctx, reports.bucket, key, body, content_type=content_type, kms_key_id=reports.kms_key_id)

    table_uri = s3_uri(reports.bucket, table_key(reports.prefix, REMEDIATION.name, snapshot_date, run_id))
    report_uri = s3_uri(reports.bucket, run_key(reports.prefix, run_id, "report.html"))
    summary = {**summary, "report_url": report_uri, "tables": {REMEDIATION.name: table_uri}}
    written = {
        REMEDIATION.name: put(
            table_key(reports.prefix, REMEDIATION.name, snapshot_date, run_id),
            parquet_bytes(table, REMEDIATION),
            PARQUET,
        ),
        "remediation.csv": put(run_key(reports.prefix, run_id, "remediation.csv"), csv_bytes(table), "text/csv"),
    }
    section = remediation_section(summary["remediation"])
    html = render_html(summary, tables, sections=[section])
    written["report.html"] = put(run_key(reports.prefix, run_id, "report.html"), html, "text/html; charset=utf-8")
    body = json_bytes(summary)
    written["summary.json"] = put(run_key(reports.prefix, run_id, "summary.json"), body, "application/json")
    per_dag, _ = latest_keys(reports.prefix, dag_id)  # the per-DAG pointer only, see the module docstring
    written["latest/" + dag_id] = put(per_dag, body, "application/json")
    return written
