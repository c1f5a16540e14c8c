"""The weekly drift report: an HTML page with plots, an evidently report, a one-page summary.

``build_weekly_report`` reads the week (``weekly_data``), the bias-corrected production
precision/recall (``monitor.online_metrics``) and, given the evaluation file, the
offline model card of the same model version, then lays them out. Plots are plotly
figures sharing one local ``plotly.min.js`` (the page must render without a network).
The executive summary is plain markdown: five sentences, a traffic light per CIPA
category, the alerts and their outcomes, the precision/recall trade-off in words.

Traffic-light rule (stated in the summary): red — an under-blocking alert for the
category this week, or its online recall interval lies wholly (by 0.02) below the offline
recall;
amber — any other alert for it, or its block rate moved more than 25% from the
reference; green — none of these.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from dashboards.weekly_data import WeekData, fetch_week, resolve_week
from monitor.storage import Store
from monitor.taxonomy import CATEGORIES, SeverityClass

__all__ = ["WeeklyReport", "build_weekly_report"]

CIPA = [c.name for c in CATEGORIES if c.severity_class is SeverityClass.CIPA]
_LIGHTS = {"red": "🔴", "amber": "🟠", "green": "🟢"}
RECALL_GAP = 0.02  # online recall's upper end this far below the card's turns a light red
INFORMATIVE = 0.3  # an interval narrower than this is worth a sentence


@dataclass
class WeeklyReport:
    html: Path
    summary: Path
    evidently: Path | None
    lights: dict[str, str]
    data: dict


def _t(ts) -> str:
    if isinstance(ts, (int, float)):
        ts = datetime.fromtimestamp(ts, UTC)
    return pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M")


def _rate_table(d: WeekData) -> pd.DataFrame:
    """Per category: predicted share and block rate of requests, this period vs reference."""
    rows = [
        {
            "category": c.name,
            "share_now": d.mix_now.get(c.name, 0.0),
            "share_ref": d.mix_ref.get(c.name, 0.0),
            "block_rate": d.block_now.get(c.name, 0.0),
            "block_ref": d.block_ref.get(c.name, 0.0),
        }
        for c in CATEGORIES
    ]
    return pd.DataFrame(rows)


def _quality(store: Store, d: WeekData, evalset) -> dict:
    from monitor.online_metrics import online_metrics

    out = {}
    for version in d.versions["model_version"].head(2):
        online = online_metrics(store, version, since=d.period.start, until=d.period.end)
        offline = None
        if evalset is not None and version in evalset.model_versions:
            from monitor.modelcard import compute_metrics

            m = compute_metrics(evalset.only(version))
            offline = {
                c: (float(m.precision[j]), float(m.recall[j])) for j, c in enumerate(m.categories)
            }
        out[version] = {"online": online, "offline": offline}
        out[version].update(_label_free(store, d, evalset, version))
    return out


def _label_free(store: Store, d: WeekData, evalset, version: str) -> dict:
    """The week's label-free estimate (calibrated on the evaluation set's rows of the
    version) and hourly under-blocking findings; empty without a usable calibration."""
    if evalset is None or version not in evalset.model_versions:
        return {}
    from monitor.calibration import CalibrationError
    from monitor.estimate_report import build_report, series_findings
    from monitor.modelcard_estimates import fit_from_evalset

    try:
        cal = fit_from_evalset(evalset.only(version))
    except CalibrationError:
        return {}
    week = d.period.end - d.period.start
    rep = build_report(store, cal, version, d.period.start, d.period.end, week)
    step = 3600 if week > 6 * 3600 else 300
    return {"label_free": rep,
            "findings": series_findings(store, cal, version, d.period.start, d.period.end,
                                        step, rep)}  # fmt: skip


def _lights(d: WeekData, rates: pd.DataFrame, quality: dict) -> dict[str, tuple[str, str]]:
    out = {}
    for c in CIPA:
        a = d.alerts[d.alerts["category"] == c] if len(d.alerts) else d.alerts
        why = []
        colour = "green"
        if len(a) and (a["direction"] == "under-blocking").any():
            colour, why = "red", ["under-blocking alert"]
        for version, q in quality.items():
            e, off = q["online"].get(c), (q["offline"] or {}).get(c)
            if e is not None and off is not None and e.recall.high < off[1] - RECALL_GAP:
                colour = "red"
                why.append(f"{version} online recall {e.recall.high:.2f} at most vs {off[1]:.2f}")
            hits = [f for f in q.get("findings", []) if f["category"] == c]
            if hits:
                colour = "red"
                why.append(f"{version} label-free FNR above reference in {len(hits)} window(s), "
                           f"up to {max(f['fnr'] for f in hits):.2f}")  # fmt: skip
        if colour != "red":
            if len(a):
                colour, why = "amber", [f"{len(a)} alert(s)"]
            now, ref = d.block_now.get(c, 0.0), d.block_ref.get(c, 0.0)
            if ref > 0 and abs(now - ref) / ref > 0.25:
                colour = "amber"
                why.append(f"block rate {now:.3%} vs {ref:.3%}")
        out[c] = (colour, "; ".join(why) or "no alert, block rate steady")
    return out


# -- figures ---------------------------------------------------------------------------
def _figures(d: WeekData, rates: pd.DataFrame, quality: dict) -> list[tuple[str, str, object]]:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figs = []
    # 1. score distributions, top categories by pages, this period vs reference
    if len(d.scores_now):
        top = d.scores_now.groupby("category")["pages"].sum().sort_values(ascending=False)
        # the CIPA categories first (where a shift is a safety question), then the busiest
        cats = [c for c in CIPA if c in top.index] + [c for c in top.index if c not in CIPA]
        cats = cats[:12]
        fig = make_subplots(rows=-(-len(cats) // 4), cols=4, subplot_titles=cats)
        for i, c in enumerate(cats):
            for df, name, colour in (
                (d.scores_now, "this period", "#1f4e79"),
                (d.scores_ref, "reference", "#bbbbbb"),
            ):
                s = df[df.category == c]
                tot = s["pages"].sum() or 1
                fig.add_trace(
                    go.Bar(
                        x=(s["bin"] + 0.5) / 20,
                        y=s["pages"] / tot,
                        name=name,
                        marker_color=colour,
                        showlegend=i == 0,
                        legendgroup=name,
                    ),
                    row=i // 4 + 1,
                    col=i % 4 + 1,
                )
        fig.update_layout(barmode="group", height=260 * -(-len(cats) // 4), margin={"t": 40})
        figs.append(
            (
                "Score distribution per category",
                f"Share of scored pages per score bin, this period vs {d.reference_label}.",
                fig,
            )
        )
    # 2. category mix
    r = rates[(rates.share_now > 0) | (rates.share_ref > 0)].sort_values("share_now")
    fig = go.Figure(
        [
            go.Bar(
                y=r.category,
                x=r.share_ref,
                orientation="h",
                name="reference",
                marker_color="#bbbbbb",
            ),
            go.Bar(
                y=r.category,
                x=r.share_now,
                orientation="h",
                name="this period",
                marker_color="#1f4e79",
            ),
        ]
    )
    fig.update_layout(barmode="group", height=max(300, 26 * len(r)), xaxis_tickformat=".1%")
    figs.append(
        (
            "Category mix",
            f"Share of requests predicted in each category, vs "
            f"{d.reference_label}; JS distance {_js(d.mix_now, d.mix_ref):.3f}.",
            fig,
        )
    )
    # 3. block and override rates with alerts marked
    if len(d.traffic):
        fig = make_subplots(specs=[[{"secondary_y": True}]])
        t = d.traffic
        fig.add_trace(
            go.Scatter(
                x=t.bucket, y=t.blocked / t.requests, name="block rate", line={"color": "#1f4e79"}
            )
        )
        for action, colour in (("unblock", "#c55a11"), ("report", "#7030a0")):
            f = d.feedback[d.feedback.action == action].groupby("bucket")["events"].sum()
            per = f.reindex(t.bucket, fill_value=0).values / np.maximum(t.blocked.values, 1)
            if action == "report":
                per = f.reindex(t.bucket, fill_value=0).values / np.maximum(t.requests.values, 1)
            fig.add_trace(
                go.Scatter(
                    x=t.bucket,
                    y=per,
                    name=f"{action}s per {'block' if action == 'unblock' else 'request'}",
                    line={"color": colour},
                ),
                secondary_y=True,
            )
        for _, a in d.alerts.iterrows():
            fig.add_vline(
                x=pd.Timestamp(a.detected_at).to_pydatetime(), line_dash="dot", line_color="#c00000"
            )
            fig.add_annotation(
                x=pd.Timestamp(a.detected_at).to_pydatetime(),
                y=1,
                yref="paper",
                text=f"{a.category} {a.direction}",
                showarrow=False,
                textangle=-90,
                font={"size": 9, "color": "#c00000"},
            )
        fig.update_layout(height=380, yaxis_tickformat=".1%")
        figs.append(
            (
                f"Block and override rates per {d.period.bucket_name}",
                "Red dotted lines: alerts (detection time).",
                fig,
            )
        )
    # 4. precision / recall, offline vs online
    for version, q in quality.items():
        on = q["online"]
        cats = [c for c in on if on[c].precision.value is not None][:12]
        if not cats:
            continue
        fig = make_subplots(rows=1, cols=2, subplot_titles=["precision", "recall"])
        for col, attr in ((1, "precision"), (2, "recall")):
            vals = [getattr(on[c], attr) for c in cats]
            y = [v.value if v.value is not None else np.nan for v in vals]
            fig.add_trace(
                go.Bar(
                    x=cats,
                    y=y,
                    name="online (corrected)",
                    marker_color="#1f4e79",
                    showlegend=col == 1,
                    legendgroup="on",
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": [v.high - (v.value or 0) for v in vals],
                        "arrayminus": [(v.value or 0) - v.low for v in vals],
                    },
                ),
                row=1,
                col=col,
            )
            naive = [getattr(on[c], f"naive_{attr}") for c in cats]
            fig.add_trace(
                go.Scatter(
                    x=cats,
                    y=naive,
                    mode="markers",
                    name="naive (biased)",
                    marker={"color": "#c55a11", "symbol": "x"},
                    showlegend=col == 1,
                    legendgroup="naive",
                ),
                row=1,
                col=col,
            )
            if q["offline"]:
                k = 0 if attr == "precision" else 1
                off = [q["offline"].get(c, (np.nan, np.nan))[k] for c in cats]
                fig.add_trace(
                    go.Scatter(
                        x=cats,
                        y=off,
                        mode="markers",
                        name="offline card",
                        marker={"color": "#2e7d32", "symbol": "diamond"},
                        showlegend=col == 1,
                        legendgroup="off",
                    ),
                    row=1,
                    col=col,
                )
        fig.update_layout(height=380, yaxis_range=[0, 1.05], yaxis2_range=[0, 1.05])
        figs.append(
            (
                f"Precision and recall from feedback labels: {version}",
                "Bars: audit-corrected online estimate with 95% interval; x: naive "
                "figure over all labelled verdicts; diamonds: offline model card.",
                fig,
            )
        )
    # 5. latency
    if len(d.traffic):
        t = d.traffic
        fig = go.Figure([go.Scatter(x=t.bucket, y=t[q], name=q) for q in ("p50", "p95", "p99")])
        fig.update_layout(height=320, yaxis_title="ms")
        figs.append((f"Classification latency per {d.period.bucket_name}", "", fig))
    return figs


def _js(p: dict, q: dict) -> float:
    from detectors.stats import js_distance

    keys = sorted(set(p) | set(q))
    if not keys:
        return 0.0
    return float(js_distance([p.get(k, 0.0) for k in keys], [q.get(k, 0.0) for k in keys]))


# -- page and summary --------------------------------------------------------------------
def _table(df: pd.DataFrame) -> str:
    if not len(df):
        return "<p class='empty'>none this period</p>"
    return df.to_html(index=False, border=0, classes="t", escape=True)


def _summary_md(d: WeekData, rates, quality, lights, ev: dict | None) -> str:
    p = d.period
    req = int(d.traffic["requests"].sum())
    blk = int(d.traffic["blocked"].sum())
    a = d.alerts
    n_under = int((a.direction == "under-blocking").sum()) if len(a) else 0
    n_over = int((a.direction == "over-blocking").sum()) if len(a) else 0
    resolved = int((a.status == "resolved").sum()) if len(a) else 0
    unblocks = int(d.feedback[d.feedback.action == "unblock"]["events"].sum())
    reports = int(d.feedback[d.feedback.action.isin(["report", "block"])]["events"].sum())
    moves = sorted(
        (
            (abs(r.block_rate - r.block_ref), r.category, r.block_rate, r.block_ref)
            for r in rates.itertuples()
            if r.block_rate or r.block_ref
        ),
        reverse=True,
    )
    s = [
        f"In {p.label} filterwatch watched {req:,} verdicts ({blk / max(req, 1):.2%} blocked) "
        f"from {len(d.versions)} model version(s).",
        f"{len(a)} alert(s) fired — {n_under} under-blocking, {n_over} over-blocking, "
        f"{len(a) - n_under - n_over} drift or latency — and {resolved} of them resolved.",
    ]
    if moves:
        _, c, now, ref = moves[0]
        s.append(
            f"The largest block-rate move was {c}: {now:.3%} of requests against "
            f"{ref:.3%} in {d.reference_label}."
        )
    else:
        s.append("No category blocked any request.")
    worst = None
    for version, q in quality.items():
        for c in CIPA:
            e = q["online"].get(c)
            usable = (
                e is not None
                and e.recall.value is not None
                and e.recall.high - e.recall.low < INFORMATIVE
            )
            if usable and (worst is None or e.recall.low < worst[2].recall.low):
                worst = (version, c, e)
    if worst:
        v, c, e = worst
        s.append(
            f"The weakest CIPA recall in production is {c} on {v}: "
            f"{e.recall.value:.2f} (95% interval {e.recall.low:.2f}–{e.recall.high:.2f}), "
            f"from {e.counts.audit_pred + e.counts.audit_unpred:,} audits and "
            f"{e.counts.disputed_pred + e.counts.disputed_unpred:,} disputes."
        )
    else:
        s.append(
            "Analyst audits this period were too few to pin any CIPA category's production "
            f"recall within ±{INFORMATIVE / 2:.2f}."
        )
    top_over = d.over_domains.iloc[0].domain if len(d.over_domains) else None
    s.append(
        f"Users asked for {unblocks:,} unblocks and sent {reports:,} reports"
        + (f"; the most disputed domain was {top_over}." if top_over else ".")
    )
    md = [
        f"# filterwatch weekly summary — {p.label}",
        "",
        " ".join(s),
        "",
        "## CIPA categories",
        "",
        "| category | light | why |",
        "|---|---|---|",
    ]
    md += [f"| {c} | {_LIGHTS[col]} {col} | {why} |" for c, (col, why) in lights.items()]
    md += [
        "",
        "Red: an under-blocking alert, or online recall wholly below the offline card. "
        "Amber: another alert, or the block rate moved more than 25%. Green: neither.",
        "",
        "## Alerts and outcomes",
        "",
    ]
    if len(a):
        md += ["| detected | category | direction | severity | outcome |", "|---|---|---|---|---|"]
        for r in a.itertuples():
            end = f"resolved {_t(r.resolved_at)}" if pd.notna(r.resolved_at) else r.status
            md.append(
                f"| {_t(r.detected_at)} | {r.category} | {r.direction} | {r.severity} | {end} |"
            )
    else:
        md.append("No alerts this period.")
    md += _estimates_md(quality)
    md += ["", "## Precision and recall in plain words", ""]
    md += _plain_words(quality) or ["No model version had enough labels to say."]
    if ev:
        md += [
            "",
            f"Evidently drift on a stratified sample: {ev.get('drifted_columns')} of "
            f"{len(ev.get('columns', {}))} columns drifted ({ev['rows_now']:,} rows vs "
            f"{ev['rows_ref']:,}).",
        ]
    return "\n".join(md) + "\n"


def _estimates_md(quality: dict) -> list[str]:
    from monitor.estimate_report import rows

    md = []
    for version, q in quality.items():
        rep = q.get("label_free")
        if rep is None or not rep.estimates:
            continue
        t = rows(rep)
        md += ["", f"## Estimated vs measured FP/FN — {version}", "",
               "| " + " | ".join(t[0]) + " |", "|" + "---|" * len(t[0])]  # fmt: skip
        md += ["| " + " | ".join(r) + " |" for r in t[1:]]
        md += ["", ESTIMATE_NOTE]
        for f in q.get("findings", []):
            md.append(f"- label-free under-blocking: {f['category']} at {f['window_start']} UTC, "
                      f"FNR {f['fnr']:.2f} [{f['fnr_low']:.2f}, {f['fnr_high']:.2f}] vs "
                      f"reference {f['reference_fnr']:.2f} ({f['reading']}), "
                      f"~{f['missed']:.0f} pages")  # fmt: skip
    return md


ESTIMATE_NOTE = (
    "Label-free: from scores alone (CBPE with a calibration fitted on the evaluation set), "
    "95% intervals; prevalence FNR assumes the category's share of traffic is what it was "
    "the week before (scaled for mix changes). Measured: analysts' audits and disputes, "
    "bias-corrected (Clopper-Pearson). Override rates: unblocks per block, reports per "
    "request (biased: disputes land on errors). Flags: score-drift (calibration outside "
    "its data), calibration-error (fresh labels disagree), prevalence-drop."
)


def _plain_words(quality: dict) -> list[str]:
    """Per CIPA category of each version: the card's trade-off, and production's when the
    audits pin it down (an interval narrower than INFORMATIVE)."""
    lines = []
    for version, q in quality.items():
        for c in CIPA:
            e, off = q["online"].get(c), (q["offline"] or {}).get(c)
            said = []
            if off is not None:
                said.append(
                    f"offline, of every 100 pages blocked as {c} about {100 * off[0]:.0f} "
                    f"really are, and of every 100 {c} pages about {100 * off[1]:.0f} are caught"
                )
            if e is not None and e.precision.value is not None and e.recall.value is not None:
                p, r = e.precision, e.recall
                if p.high - p.low < INFORMATIVE and r.high - r.low < INFORMATIVE:
                    said.append(
                        f"in production this week {100 * p.low:.0f}–{100 * p.high:.0f} of 100 "
                        f"blocks were right and {100 * r.low:.0f}–{100 * r.high:.0f} of 100 {c} "
                        f"pages were caught"
                    )
                elif off is not None:
                    said.append("production labels were too few to confirm it")
            if said:
                lines.append(
                    f"- **{c}** ({version}): " + "; ".join(said) + f". Catching more {c} pages "
                    f"means blocking more that are not; fewer wrong blocks means missing more."
                )
    return lines


_CSS = """body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1200px;color:#222}
h1{font-size:26px}h2{margin-top:34px;border-bottom:1px solid #ddd}table.t{border-collapse:
collapse;font-size:13px}table.t td,table.t th{border:1px solid #ddd;padding:3px 8px}
.light{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;margin:2px}
.red{background:#c00000}.amber{background:#d98c00}.green{background:#2e7d32}
.summary{background:#f6f8fa;padding:12px 16px;border-radius:6px;line-height:1.5}"""


def build_weekly_report(
    store: Store, week: str | None, out_dir: Path, evalset=None
) -> WeeklyReport:
    import plotly.offline

    period = resolve_week(store, week)
    d = fetch_week(store, period)
    rates = _rate_table(d)
    quality = _quality(store, d, evalset)
    lights = _lights(d, rates, quality)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "plotly.min.js").write_text(plotly.offline.get_plotlyjs(), encoding="utf-8")
    from dashboards.weekly_evidently import evidently_report

    ev = evidently_report(
        store,
        (period.start, period.end),
        d.reference,
        period.bucket_s,
        out_dir / "evidently_drift.html",
    )
    md = _summary_md(d, rates, quality, lights, ev)
    summary_path = out_dir / "summary.md"
    summary_path.write_text(md, encoding="utf-8")
    figs = _figures(d, rates, quality)
    body = [
        f"<h1>filterwatch weekly drift report — {html.escape(period.label)}</h1>",
        f"<p>Data {_t(d.traffic.bucket.min())} to {_t(d.traffic.bucket.max())} UTC, "
        f"per {period.bucket_name}; reference: {html.escape(d.reference_label)}.</p>",
        "<h2>Executive summary</h2><div class='summary'>",
        html.escape(md.split("\n\n", 2)[1]),
        "</div><p>",
    ]
    body += [
        f"<span class='light {col}' title='{html.escape(why)}'>{c}</span>"
        for c, (col, why) in lights.items()
    ]
    body.append("</p>")
    for i, (title, note, fig) in enumerate(figs):
        body.append(f"<h2>{html.escape(title)}</h2><p>{html.escape(note)}</p>")
        body.append(fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig{i}"))
    for version, q in quality.items():
        rep = q.get("label_free")
        if rep is not None and rep.estimates:
            from monitor.estimate_report import rows

            t = rows(rep)
            body.append(f"<h2>Estimated vs measured FP/FN — {html.escape(version)}</h2>")
            body.append(_table(pd.DataFrame(t[1:], columns=t[0])))
            body.append(f"<p>{html.escape(ESTIMATE_NOTE)}</p>")
    body += ["<h2>Alerts this period</h2>", _table(d.alerts.drop(columns=["title"]))]
    body += ["<h2>Top over-blocked domains (unblock requests)</h2>", _table(d.over_domains)]
    body += ["<h2>Top under-blocked domains (reports)</h2>", _table(d.under_domains)]
    if ev:
        body += [
            "<h2>Evidently: drift on a stratified sample</h2>",
            f"<p>{ev['rows_now']:,} rows this period vs {ev['rows_ref']:,} in the reference"
            f" (Wasserstein for scores, Jensen-Shannon for categories): "
            f"{ev['drifted_columns']} column(s) drifted. "
            f"<a href='{ev['path']}'>Open the evidently report</a>"
            + (
                f" · <a href='{ev['quality_path']}'>classification quality on "
                f"{ev['audits']:,} audits</a>"
                if "quality_path" in ev
                else ""
            )
            + "</p>",
        ]
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>filterwatch weekly "
        f"{html.escape(period.label)}</title><style>{_CSS}</style>"
        "<script src='plotly.min.js'></script></head><body>" + "\n".join(body) + "</body></html>"
    )
    html_path = out_dir / "weekly_report.html"
    html_path.write_text(page, encoding="utf-8")
    data = {
        "week": period.label,
        "requests": int(d.traffic["requests"].sum()),
        "alerts": len(d.alerts),
        "lights": {c: col for c, (col, _) in lights.items()},
        "evidently": ev,
        "figures": [t for t, _, _ in figs],
        "label_free": {
            v: {
                "findings": q.get("findings", []),
                "estimates": q["label_free"].to_json()["categories"],
            }
            for v, q in quality.items()
            if q.get("label_free") is not None
        },
    }
    (out_dir / "weekly_report.json").write_text(json.dumps(data, indent=1, default=str))
    return WeeklyReport(
        html_path,
        summary_path,
        out_dir / "evidently_drift.html" if ev else None,
        {c: col for c, (col, _) in lights.items()},
        data,
    )
