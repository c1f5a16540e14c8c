"""Renderers: the same alert as plain text (pager/SMS) and markdown (chat)."""

from __future__ import annotations

from datetime import UTC, datetime

from alerts.model import Alert

__all__ = ["format_rate", "render_markdown", "render_text", "title"]

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
    return f"[{inc.severity.upper()}] {inc.direction}: {where} ({scope})"


def _lines(alert: Alert) -> list[tuple[str, str]]:
    inc = alert.incident
    h = inc.headline()
    ctx = alert.context
    sig = _SIGNAL_NAMES.get(h.signal, h.signal)
    ratio = f", {h.current / h.baseline:.2f}x" if h.baseline else ""
    rows = [
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
