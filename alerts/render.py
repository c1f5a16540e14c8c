"""Renderers: the same alert as plain text (pager/SMS) and markdown (chat)."""

from __future__ import annotations

from datetime import UTC, datetime

from alerts.model import Alert

__all__ = [
    "format_rate",
    "group_title",
    "render_group_markdown",
    "render_group_text",
    "render_markdown",
    "render_text",
    "title",
]

# SMS and pager services cut messages short; the text body lists at most this many
# alerts and stays under this many characters (the rest is one `filterwatch rca` away).
_TEXT_MAX_ALERTS = 8
_TEXT_MAX_CHARS = 1200

_SIGNAL_NAMES = {
    "block_rate": "block rate",
    "predicted_rate": "share of requests predicted",
    "unblock_rate": "unblock requests per block",
    "report_rate": "reports of allowed harmful pages",
    "score": "mean score",
    "latency": "mean latency",
    "canary_block_rate": "block rate of this version (vs the rest of the fleet as baseline)",
    "canary_unblock_rate": "unblock requests per block of this version (vs the rest)",
    "labelset": "share of predicted requests with this label set",
    "est_fnr": "label-free estimated false-negative rate (no feedback needed)",
}


def _t(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def format_rate(signal: str, value: float) -> str:
    signal = signal.removeprefix("canary_")
    if signal == "latency":
        return f"{value:.1f} ms"
    if signal == "score":
        return f"{value:.3f}"
    if signal == "report_rate":
        return f"{value * 1e6:.1f} per million requests"
    if signal == "unblock_rate":
        return f"{value * 1000:.2f} per 1,000 blocks"
    return f"{value * 100:.3f}%"


def title(alert: Alert) -> str:
    inc = alert.incident
    where = "all categories" if inc.category == "*" else inc.category
    mv = inc.scope_model_version
    scope = f"model version {mv}" if mv else "all model versions"
    tag = "RESOLVED" if inc.status == "resolved" else inc.severity.upper()
    return f"[{tag}] {inc.direction}: {where} ({scope})"


def _resolved_line(alert: Alert) -> str:
    inc = alert.incident
    lasted = (inc.resolved_at or inc.fired_at) - inc.onset
    return (
        f"resolved {_t(inc.resolved_at or inc.fired_at)} UTC: every affected segment is back "
        f"at its reference (lasted {lasted / 60:.0f} min from the change point)"
    )


def _lines(alert: Alert) -> list[tuple[str, str]]:
    inc = alert.incident
    h = inc.headline()
    ctx = alert.context
    sig = _SIGNAL_NAMES.get(h.signal, h.signal)
    ratio = f", {h.current / h.baseline:.2f}x" if h.baseline else ""
    rows = []
    if inc.status == "resolved":
        rows.append(("Resolved", _resolved_line(alert)))
    rows += [
        (
            "What",
            f"{sig} {format_rate(h.signal, h.current)} now vs "
            f"{format_rate(h.signal, h.baseline)} baseline "
            f"(95% CI {format_rate(h.signal, h.ci_low)} to {format_rate(h.signal, h.ci_high)}"
            f"{ratio})",
        ),
        (
            "When",
            f"since {_t(inc.onset)} UTC (change point), detected {_t(inc.detected_at)} UTC "
            f"({inc.detected_at - inc.onset:.0f} s later)",
        ),
        ("Segment", f"{inc.segment}; signals: {', '.join(inc.signals)}"),
    ]
    affected = inc.affected_segments
    if len(affected) > 1:
        shown = "; ".join(affected[:12]) + (
            f"; and {len(affected) - 12} more" if len(affected) > 12 else ""
        )
        rows.append((f"Affected segments ({len(affected)})", shown))
    if h.tenant != "*" or h.detail:
        rows.append(("Evidence from", ", ".join(x for x in (h.segment, h.detail) if x)))
    if ctx.top_domains:
        rows.append(("Top domains", _shares(ctx.top_domains)))
    if ctx.top_tenants:
        rows.append(("Top tenants", _shares(ctx.top_tenants)))
    if ctx.top_model_versions:
        rows.append(("Model versions", _shares(ctx.top_model_versions)))
    for hint in ctx.hints:
        rows.append(("Hint", hint))
    return rows


def _shares(items: list[dict]) -> str:
    return ", ".join(f"{d['key']} {d['share_of_excess']:.0%}" for d in items[:5])


def render_text(alert: Alert) -> str:
    """Plain text; the first two lines fit a pager."""
    out = [title(alert)]
    out += [f"{k}: {v}" for k, v in _lines(alert)]
    if alert.context.examples:
        out.append("Examples:")
        for ex in alert.context.examples:
            out.append(
                f"  {ex['request_id']}  {ex['url']}  ({ex['tenant_id']}, {ex['model_version']})"
            )
    out.append(f"Runbook: {alert.runbook}")
    out.append(f"Alert id: {alert.alert_id}")
    out.append("SQL:")
    out.append(alert.context.sql)
    return "\n".join(out)


def render_markdown(alert: Alert) -> str:
    out = [f"**{title(alert)}**", ""]
    out += [f"- **{k}:** {v}" for k, v in _lines(alert)]
    if alert.context.examples:
        out += ["", "**Examples**", ""]
        for ex in alert.context.examples:
            out.append(
                f"- `{ex['request_id']}` {ex['url']} ({ex['tenant_id']}, {ex['model_version']})"
            )
    out += ["", f"**Runbook:** {alert.runbook}  ", f"**Alert id:** `{alert.alert_id}`", ""]
    out += ["```sql", alert.context.sql, "```"]
    return "\n".join(out)


# -- grouped notifications ------------------------------------------------------------------
def _count(n: int, word: str) -> str:
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


def group_title(n) -> str:
    """One line for the whole group: how many alerts, which direction, which scope."""
    alerts = n.alerts
    if len(alerts) == 1:
        t = title(alerts[0])
        return f"[REMINDER] {t}" if n.kind == "repeat" else t
    firing = [a for a in alerts if a.incident.status == "firing"]
    directions = sorted({a.direction for a in alerts})
    mvs = sorted({a.incident.scope_model_version or "*" for a in alerts})
    scope = f"model version {mvs[0]}" if mvs != ["*"] and len(mvs) == 1 else "all model versions"
    cats = sorted({a.category for a in alerts})
    tag = (
        "RESOLVED"
        if not firing
        else ("REMINDER " if n.kind == "repeat" else "") + n.severity.upper()
    )
    what = "/".join(directions)
    return f"[{tag}] {what}: {_count(len(cats), 'category')} ({scope}): {', '.join(cats[:6])}" + (
        ", ..." if len(cats) > 6 else ""
    )


def _group_summary(n) -> list[str]:
    out = []
    for a in n.alerts:
        h = a.incident.headline()
        state = "resolved" if a.incident.status == "resolved" else "firing"
        out.append(
            f"{a.category} {a.direction} ({a.severity}, {state}): "
            f"{_SIGNAL_NAMES.get(h.signal, h.signal)} {format_rate(h.signal, h.current)} vs "
            f"{format_rate(h.signal, h.baseline)}, since {_t(a.incident.onset)} UTC; "
            f"id {a.alert_id}"
        )
    return out


def render_group_markdown(n) -> str:
    """Chat body: the group's list, then the first (most severe) alert in full."""
    if len(n.alerts) == 1:
        body = render_markdown(n.alerts[0])
    else:
        lines = [
            f"**{group_title(n)}**",
            "",
            f"{_count(len(n.alerts), 'alert')} in this group:",
            "",
        ]
        lines += [f"- {x}" for x in _group_summary(n)]
        lines += ["", "---", "", "Most severe, in full:", "", render_markdown(n.alerts[0])]
        body = "\n".join(lines)
    if n.silenced:
        body += f"\n\n_{_count(len(n.silenced), 'more alert')} of this group silenced._"
    return body


def render_group_text(n) -> str:
    """Pager/SMS body: title, the first alert's key lines, one line per other alert."""
    first = n.alerts[0]
    out = [group_title(n)]
    out += [f"{k}: {v}" for k, v in _lines(first) if k in ("Resolved", "What", "When", "Hint")]
    if len(n.alerts) > 1:
        rest = _group_summary(n)[1:]
        out += rest[: _TEXT_MAX_ALERTS - 1]
        if len(rest) > _TEXT_MAX_ALERTS - 1:
            out.append(f"and {len(rest) - _TEXT_MAX_ALERTS + 1} more")
    tail = [f"Runbook: {first.runbook}", f"Alert id: {first.alert_id}"]
    body = "\n".join(out)
    room = _TEXT_MAX_CHARS - sum(len(t) + 1 for t in tail)
    if len(body) > room:
        body = body[: max(room - 2, 0)].rstrip() + " …"
    return "\n".join([body, *tail])
