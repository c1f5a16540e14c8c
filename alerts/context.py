"""RCA context for an alert, queried from ClickHouse at the moment it fires.

For the signal that carries the alert we compare the evidence rows after the onset with
an equally long stretch before it, per domain, tenant and model version. The *excess*
(after minus before, scaled to equal length) says who contributes to the change, and
its share of the total excess is what the alert lists. Hints are computed from the same
numbers: a model version that carries most of the excess and first served traffic near
the onset, one tenant carrying most of it, domains that were not there before.
"""

from __future__ import annotations

from datetime import UTC, datetime

from alerts.model import Incident, RcaContext
from monitor.storage import Store

__all__ = ["build_context", "evidence_source"]

_MIN_BASELINE_S = 60.0


def evidence_source(signal: str) -> tuple[str, str, str]:
    """(table, predicate, time column) selecting the rows that are evidence for a signal."""
    signal = signal.removeprefix("canary_")  # a version vs the fleet: the same evidence
    if signal == "labelset":
        return "verdicts", "arrayStringConcat(arraySort(categories), '+') = {ls:String}", "ts"
    if signal == "block_rate":
        return "verdicts", "has(categories, {cat:String}) AND decision = 'block'", "ts"
    if signal == "predicted_rate":
        return "verdicts", "has(categories, {cat:String})", "ts"
    if signal == "score":
        return "verdicts", "mapContains(scores, {cat:String})", "ts"
    if signal == "unblock_rate":
        return "feedback", "action = 'unblock' AND has(attributed, {cat:String})", "ts"
    if signal == "report_rate":
        return "feedback", "action IN ('report', 'block') AND has(attributed, {cat:String})", "ts"
    if signal == "latency":
        return "verdicts", "latency_ms > {lat:Float64}", "ts"
    if signal == "est_fnr":  # allowed for the category though the model scored it
        return (
            "verdicts",
            "mapContains(scores, {cat:String}) AND NOT has(categories, {cat:String})",
            "ts",
        )
    raise KeyError(signal)


def _ms(ts: float) -> int:
    return int(ts * 1000)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def build_context(
    store: Store, incident: Incident, *, top_n: int = 5, examples: int = 5, window_s: float = 5.0
) -> RcaContext:
    h = incident.headline()
    onset = h.onset
    end = max(incident.fired_at, h.detected_at)
    after_len = max(end - onset, window_s)
    before_len = max(after_len, _MIN_BASELINE_S)
    start = onset - before_len
    table, pred, tcol = evidence_source(h.signal)
    params = {
        "cat": incident.category,
        "onset": _ms(onset),
        "start": _ms(start),
        "end": _ms(end),
        "lat": float(h.baseline * 1.25) if h.signal == "latency" else 0.0,
        "ls": _labelset_of(h.detail),
    }
    db = store.db
    where = (
        f"{tcol} >= fromUnixTimestamp64Milli({{start:Int64}}, 'UTC') "
        f"AND {tcol} < fromUnixTimestamp64Milli({{end:Int64}}, 'UTC') AND {pred}"
    )
    scale = after_len / before_len
    ctx = RcaContext(window_start=start, window_end=end)
    for dim, target in (
        ("domain", ctx.top_domains),
        ("tenant_id", ctx.top_tenants),
        ("model_version", ctx.top_model_versions),
    ):
        rows = store.rows(
            f"SELECT {dim} AS key, "
            f"countIf({tcol} >= fromUnixTimestamp64Milli({{onset:Int64}}, 'UTC')) AS after, "
            f"countIf({tcol} < fromUnixTimestamp64Milli({{onset:Int64}}, 'UTC')) AS before "
            f"FROM {db}.{table} WHERE {where} GROUP BY key",
            params,
        )
        target.extend(_excess(rows, scale, top_n, down=h.change == "down"))
        if dim == "model_version":
            ctx.version_ratios = {
                key: (after / (before * scale) if before else float("inf"), after + before)
                for key, after, before in rows
            }
    if examples:
        ex_cols = (
            "request_id, url, domain, tenant_id, model_version"
            if table == "verdicts"
            else "request_id, url, domain, tenant_id, model_version, actor, action"
        )
        rows = store.rows(
            f"SELECT {ex_cols}, toUnixTimestamp64Milli({tcol}) AS t FROM {db}.{table} "
            f"WHERE {where} AND {tcol} >= fromUnixTimestamp64Milli({{onset:Int64}}, 'UTC') "
            f"ORDER BY has({{top:Array(String)}}, domain) DESC, "
            f"has({{mvs:Array(String)}}, model_version) DESC, {tcol} LIMIT {int(examples)}",
            {
                **params,
                "top": [d["key"] for d in ctx.top_domains],
                "mvs": [d["key"] for d in ctx.top_model_versions[:1]],
            },
        )
        names = [c.strip() for c in ex_cols.split(",")] + ["ts"]
        for r in rows:
            d = dict(zip(names, r, strict=True))
            d["ts"] = d["ts"] / 1000.0
            ctx.examples.append(d)
    ctx.hints = _hints(store, incident, ctx, onset, window_s)
    ctx.sql = _analyst_sql(
        db, table, tcol, pred, incident.category, start, onset, end, params["lat"], params["ls"]
    )
    return ctx


def _labelset_of(detail: str) -> str:
    """The label set a label-set event names, if it is made of known category names."""
    from monitor.taxonomy import CATEGORY_NAMES

    ls = detail.removeprefix("labelset=") if detail.startswith("labelset=") else ""
    return ls if ls and all(c in CATEGORY_NAMES for c in ls.split("+")) else ""


def _excess(rows, scale: float, top_n: int, down: bool = False) -> list[dict]:
    """Top contributors to the change; for a drop, the excess is the shortfall."""
    items = []
    sign = -1.0 if down else 1.0
    for key, after, before in rows:
        items.append((key, int(after), int(before), sign * (after - before * scale)))
    total = sum(x[3] for x in items if x[3] > 0)
    items.sort(key=lambda x: x[3], reverse=True)
    out = []
    for key, after, before, excess in items[:top_n]:
        if excess <= 0 and out:
            break
        out.append(
            {
                "key": key,
                "after": after,
                "before": before,
                "excess": round(excess, 1),
                "share_of_excess": round(excess / total, 3) if total > 0 and excess > 0 else 0.0,
            }
        )
    return out


def _hints(
    store: Store, incident: Incident, ctx: RcaContext, onset: float, window_s: float
) -> list[str]:
    hints: list[str] = []
    focus = ctx.concentrated_version()
    if ctx.top_model_versions and focus is not None:
        top = next((d for d in ctx.top_model_versions if d["key"] == focus), None)
        if top is not None:
            first = store.scalar(
                f"SELECT toUnixTimestamp64Milli(min(ts)) FROM {store.db}.verdicts "
                "WHERE model_version = {mv:String}",
                {"mv": top["key"]},
            )
            first_s = (first or 0) / 1000.0
            if first and abs(first_s - onset) <= max(6 * window_s, 60.0):
                hints.append(
                    f"Onset coincides with the rollout of model version {top['key']} "
                    f"(first request {_iso(first_s)} UTC, {first_s - onset:+.0f} s from onset); "
                    f"it carries {top['share_of_excess']:.0%} of the excess."
                )
            else:
                hints.append(
                    f"The change is concentrated in model version {top['key']} "
                    f"({top['share_of_excess']:.0%} of the excess); other versions did not move."
                )
    if ctx.top_tenants and ctx.top_tenants[0]["share_of_excess"] >= 0.5:
        t = ctx.top_tenants[0]
        hints.append(
            f"One tenant carries most of the excess: {t['key']} ({t['share_of_excess']:.0%})."
        )
    new = [d["key"] for d in ctx.top_domains if d["before"] == 0 and d["share_of_excess"] >= 0.1]
    if new:
        hints.append(f"Domains not seen before the onset: {', '.join(new)}.")
    if incident.direction == "over-blocking" and any(
        e.signal == "block_rate" and e.category in ("health", "mental_health", "lgbtq_resources")
        for e in incident.events
    ):
        hints.append("Pages of an often over-blocked category are being blocked.")
    return hints


def _analyst_sql(db, table, tcol, pred, cat, start, onset, end, lat, ls="") -> str:
    """The same evidence query with literals, ready to paste (category and label set are
    known names, checked before they get here)."""
    literal_pred = (
        pred.replace("{cat:String}", f"'{cat}'")
        .replace("{lat:Float64}", f"{lat:.1f}")
        .replace("{ls:String}", f"'{ls}'")
    )
    return (
        f"SELECT domain, tenant_id, model_version,\n"
        f"       countIf({tcol} >= toDateTime64('{_iso(onset)}', 3, 'UTC')) AS after_onset,\n"
        f"       countIf({tcol} <  toDateTime64('{_iso(onset)}', 3, 'UTC')) AS before_onset\n"
        f"FROM {db}.{table}\n"
        f"WHERE {tcol} BETWEEN toDateTime64('{_iso(start)}', 3, 'UTC') "
        f"AND toDateTime64('{_iso(end)}', 3, 'UTC')\n"
        f"  AND {literal_pred}\n"
        f"GROUP BY domain, tenant_id, model_version\n"
        f"ORDER BY after_onset - before_onset DESC\n"
        f"LIMIT 20"
    )
