"""report.html: one self-contained page (inline SVG charts drawn by matplotlib, no external URLs).

SVGs are deterministic: a fixed ``svg.hashsalt`` for element ids and no Date metadata, so re-rendering the
same run gives the same bytes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from jinja2 import Environment, select_autoescape  # noqa: E402
from markupsafe import Markup  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from include.patch_compliance.transform.schema import SEVERITIES  # noqa: E402

_COLOURS = {"COMPLIANT": "#2e7d32", "NON_COMPLIANT": "#c62828", "UNKNOWN": "#9e9e9e"}
_SEV_COLOURS = ["#7b1fa2", "#c62828", "#ef6c00", "#f9a825", "#1565c0", "#757575"]
_RC = {"svg.hashsalt": "patch-compliance", "svg.fonttype": "none", "font.size": 9}


def _svg(fig: plt.Figure) -> Markup:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE (an external DTD URL) for inline use
    return Markup(re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S))  # noqa: S704 - our own matplotlib SVG


def _empty(message: str) -> Markup:
    return Markup('<p class="empty">{}</p>').format(message)


def ou_chart(by_ou: list[dict[str, Any]]) -> Markup:
    if not by_ou:
        return _empty("No OUs in this run.")
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(by_ou) + 1.2))
        labels = [row["ou_path"] for row in by_ou]
        left = [0] * len(by_ou)
        for status, key in (("COMPLIANT", "compliant"), ("NON_COMPLIANT", "non_compliant"), ("UNKNOWN", None)):
            if key:
                values = [row[key] for row in by_ou]
            else:
                values = [row["nodes"] - row["compliant"] - row["non_compliant"] for row in by_ou]
            ax.barh(labels, values, left=left, color=_COLOURS[status], label=status.replace("_", " ").lower())
            left = [a + b for a, b in zip(left, values, strict=True)]
        ax.invert_yaxis()
        ax.set_xlabel("nodes")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=3, frameon=False)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title("Compliance by OU")
        return _svg(fig)


def severity_chart(severity: dict[str, int]) -> Markup:
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(6, 2.8))
        values = [severity.get(s, 0) for s in SEVERITIES]
        ax.bar(list(SEVERITIES), values, color=_SEV_COLOURS)
        ax.set_ylabel("non-compliant patches")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title("Missing patches by severity")
        ax.tick_params(axis="x", labelrotation=20)
        return _svg(fig)


def top_patches_chart(top: pd.DataFrame) -> Markup:
    if top.empty:
        return _empty("No missing patches.")
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(7, 0.35 * len(top) + 1.2))
        ax.barh(top["label"].tolist(), top["nodes"].tolist(), color="#c62828")
        ax.invert_yaxis()
        ax.set_xlabel("nodes missing it")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title("Top missing patches")
        return _svg(fig)


def trend_chart(trend: list[dict[str, Any]]) -> Markup:
    points = [p for p in trend if p.get("compliant_pct") is not None]
    if not points:
        return _empty("No trend yet.")
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(7, 2.8))
        xs = list(range(len(points)))
        ax.plot(xs, [p["compliant_pct"] for p in points], marker="o", color="#2e7d32")
        ax.set_xticks(xs, [p["snapshot_date"] for p in points], rotation=30, ha="right")
        ax.set_ylim(0, 100)
        ax.set_ylabel("compliant %")
        ax.set_title("Compliance over recent runs")
        return _svg(fig)


def top_missing(patches: pd.DataFrame, limit: int = 10) -> pd.DataFrame:
    if patches.empty:
        return pd.DataFrame({"label": [], "nodes": []})
    counts = (
        patches.groupby(["kb_id", "title", "severity"], dropna=False, observed=True)
        .size()
        .reset_index(name="nodes")
        .sort_values(["nodes", "kb_id", "title"], ascending=[False, True, True])
        .head(limit)
    )
    counts["label"] = [
        f"{t or k} ({s})" for k, t, s in zip(counts["kb_id"], counts["title"], counts["severity"], strict=True)
    ]
    return counts


def sla_breaches(patches: pd.DataFrame, limit: int = 50) -> list[dict[str, Any]]:
    breached = patches[patches["sla_breached"].fillna(False).astype(bool)]
    breached = breached.sort_values(
        ["age_days", "account_id", "instance_id", "kb_id"], ascending=[False, True, True, True]
    )
    cols = ["account_id", "region", "instance_id", "kb_id", "title", "severity", "age_days", "sla_days"]
    return breached.head(limit)[cols].astype(object).where(breached.head(limit)[cols].notna(), None).to_dict("records")


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Patch compliance - {{ s.dag_id }} - {{ s.snapshot_date }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#212121}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:28px}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px}
.card b{display:block;font-size:1.4em}table{border-collapse:collapse;font-size:.9em}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}th{background:#f5f5f5}
.charts{display:flex;flex-wrap:wrap;gap:16px}.empty{color:#757575}
</style></head><body>
<h1>Patch compliance report</h1>
<p>Run <code>{{ s.run_id }}</code> of <code>{{ s.dag_id }}</code>, snapshot {{ s.snapshot_date }},
generated {{ s.generated_at }}.</p>
<div class="cards">
<div class="card" id="nodes">Nodes<b>{{ t.nodes }}</b></div>
<div class="card" id="compliant">Compliant<b>{{ t.compliant }}</b></div>
<div class="card" id="non-compliant">Non-compliant<b>{{ t.non_compliant }}</b></div>
<div class="card" id="unknown">Unknown<b>{{ t.unknown }}</b></div>
<div class="card" id="compliant-pct">Compliant %<b>{{ pct(t.compliant_pct) }}</b></div>
<div class="card" id="sla-breaches">SLA breaches<b>{{ t.sla_breaches }}</b></div>
<div class="card" id="targets">Targets<b>{{ t.targets }}</b></div>
<div class="card" id="unreachable">Unreachable targets<b>{{ t.unreachable_targets }}</b></div>
</div>
<h2>Coverage</h2>
<table><tr>{% for k in t.coverage %}<th>{{ k }}</th>{% endfor %}</tr>
<tr>{% for v in t.coverage.values() %}<td>{{ v }}</td>{% endfor %}</tr></table>
<h2>Charts</h2>
<div class="charts">
<figure id="chart-ou">{{ charts.ou }}</figure>
<figure id="chart-severity">{{ charts.severity }}</figure>
<figure id="chart-top-patches">{{ charts.top }}</figure>
<figure id="chart-trend">{{ charts.trend }}</figure>
</div>
<h2>Compliance by OU</h2>
<table><tr><th>OU</th><th>Nodes</th><th>Compliant</th><th>Non-compliant</th><th>Compliant %</th></tr>
{% for r in s.by_ou %}<tr><td>{{ r.ou_path }}</td><td>{{ r.nodes }}</td><td>{{ r.compliant }}</td>
<td>{{ r.non_compliant }}</td><td>{{ pct(r.compliant_pct) }}</td></tr>{% endfor %}</table>
<h2>Worst accounts</h2>
<table><tr><th>Account</th><th>Name</th><th>OU</th><th>Region</th><th>Nodes</th><th>Non-compliant</th>
<th>Compliant %</th></tr>
{% for r in s.worst_accounts %}<tr><td>{{ r.account_id }}</td><td>{{ r.account_name }}</td><td>{{ r.ou_path }}</td>
<td>{{ r.region }}</td><td>{{ r.nodes }}</td><td>{{ r.non_compliant }}</td><td>{{ pct(r.compliant_pct) }}</td></tr>
{% else %}<tr><td colspan="7">No accounts with nodes.</td></tr>{% endfor %}</table>
<h2 id="unreachable-list">Unreachable account-regions ({{ s.unreachable|length }})</h2>
<table><tr><th>Account</th><th>Name</th><th>OU</th><th>Region</th><th>Wave</th><th>Stage</th><th>Error code</th></tr>
{% for r in s.unreachable %}<tr><td>{{ r.account_id }}</td><td>{{ r.account_name }}</td><td>{{ r.ou_path }}</td>
<td>{{ r.region }}</td><td>{{ r.wave }}</td><td>{{ r.stage }}</td><td>{{ r.error_code }}</td></tr>
{% else %}<tr><td colspan="7">Every account-region was read.</td></tr>{% endfor %}</table>
<h2 id="skipped-list">Skipped accounts ({{ s.skipped|length }})</h2>
<table><tr><th>Account</th><th>Name</th><th>OU</th><th>Reason</th></tr>
{% for r in s.skipped %}<tr><td>{{ r.account_id }}</td><td>{{ r.account_name }}</td><td>{{ r.ou_path }}</td>
<td>{{ r.reason }}</td></tr>{% else %}<tr><td colspan="4">No account was left out.</td></tr>{% endfor %}</table>
<h2 id="unrecognised">Unrecognised API values</h2>
{% if s.unrecognised %}<p>AWS sent values this version does not know. The rows are kept: the column shows UNKNOWN
(UNSPECIFIED for a vendor severity) and the row's <code>unrecognised</code> list holds the value as sent.</p>
<table><tr><th>Field</th><th>Value</th><th>Rows</th></tr>
{% for field, values in s.unrecognised.items() %}{% for value, n in values.items() %}<tr><td>{{ field }}</td>
<td>{{ value }}</td><td>{{ n }}</td></tr>{% endfor %}{% endfor %}</table>
{% else %}<p class="empty">None: every value was one the API documents.</p>{% endif %}
<h2>SLA breaches (oldest {{ breaches|length }})</h2>
<table><tr><th>Account</th><th>Region</th><th>Node</th><th>KB</th><th>Title</th><th>Severity</th><th>Age (days)</th>
<th>SLA (days)</th></tr>
{% for r in breaches %}<tr><td>{{ r.account_id }}</td><td>{{ r.region }}</td><td>{{ r.instance_id }}</td>
<td>{{ r.kb_id }}</td><td>{{ r.title }}</td><td>{{ r.severity }}</td><td>{{ r.age_days }}</td><td>{{ r.sla_days }}</td>
</tr>{% else %}<tr><td colspan="8">No SLA breaches.</td></tr>{% endfor %}</table>
{% for section in sections %}{{ section }}{% endfor %}
</body></html>
"""


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def render_html(summary: dict[str, Any], tables: dict[str, pd.DataFrame], sections: Sequence[Markup] = ()) -> bytes:
    """The page; ``sections`` are further rendered blocks appended at the end (e.g. a remediation run's)."""
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = env.from_string(_TEMPLATE)
    patches = tables["patches"]
    charts = {
        "ou": ou_chart(summary["by_ou"]),
        "severity": severity_chart(summary["totals"]["severity"]),
        "top": top_patches_chart(top_missing(patches)),
        "trend": trend_chart(summary["trend"]),
    }
    html = template.render(
        s=summary, t=summary["totals"], charts=charts, breaches=sla_breaches(patches), pct=_pct, sections=sections
    )
    return html.encode()
