"""What the weekly drift report shows, read from ClickHouse rollups.

Everything here is an aggregate query over the per-minute/per-hour rollups, the alerts
and the (fully kept) feedback table — never raw events pulled into memory — so the same
report works at a billion verdicts a day. The only raw rows read are the bounded,
stratified sample for the evidently report (``weekly_evidently``).

The report period is an ISO week; a store whose data spans less (the demo's simulated
minutes) gets the span of its data in that week, with plot buckets sized to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pandas as pd

from monitor.errors import InputError
from monitor.storage import Store

__all__ = ["Period", "WeekData", "fetch_week", "reference_window", "resolve_week"]

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True)
class Period:
    label: str  # "2026-W48"
    start: float  # epoch seconds, inclusive
    end: float  # exclusive
    bucket_s: int  # plot bucket: a day, an hour or five minutes

    @property
    def bucket_name(self) -> str:
        return {86400: "day", 3600: "hour"}.get(self.bucket_s, f"{self.bucket_s // 60} min")


def _week_bounds(label: str) -> tuple[float, float]:
    m = _WEEK.match(label)
    if not m:
        raise InputError(f"--week {label!r}: use an ISO week like 2026-W48")
    try:
        monday = date.fromisocalendar(int(m[1]), int(m[2]), 1)
    except ValueError:
        raise InputError(f"--week {label!r}: {m[1]} has no week {m[2]}") from None
    start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
    return start.timestamp(), (start + timedelta(days=7)).timestamp()


def resolve_week(store: Store, label: str | None) -> Period:
    """The ISO week ``label`` (default: the week of the newest data), cut to its data."""
    db = store.db
    newest = store.scalar(f"SELECT toUnixTimestamp(max(minute)) FROM {db}.traffic_fleet_1m")
    if not newest:
        raise InputError(f"the store ({db}) holds no traffic yet; run the demo or a replay first")
    if label is None:
        y, w, _ = datetime.fromtimestamp(newest, UTC).isocalendar()
        label = f"{y}-W{w:02d}"
    start, end = _week_bounds(label)
    lo, hi = store.rows(
        f"SELECT toUnixTimestamp(min(minute)), toUnixTimestamp(max(minute)) "
        f"FROM {db}.traffic_fleet_1m WHERE minute >= toDateTime({{s:UInt32}}) "
        f"AND minute < toDateTime({{e:UInt32}})",
        {"s": int(start), "e": int(end)},
    )[0]
    if not hi:
        raise InputError(f"the store ({db}) has no traffic in {label}")
    span = hi + 60 - lo
    bucket = (
        86400 if span >= 2 * 86400 else 3600 if span >= 3 * 3600 else 300 if span >= 1800 else 60
    )
    return Period(label, start, end, bucket)


@dataclass
class WeekData:
    period: Period
    reference_label: str
    traffic: pd.DataFrame  # bucket, requests, blocked, p50, p95, p99
    categories: pd.DataFrame  # bucket, category, predicted, blocked
    feedback: pd.DataFrame  # bucket, category, action, events
    alerts: pd.DataFrame
    scores_now: pd.DataFrame  # category, bin, pages
    scores_ref: pd.DataFrame
    over_domains: pd.DataFrame
    under_domains: pd.DataFrame
    versions: pd.DataFrame  # model_version, requests
    reference: tuple[float, float] = (0.0, 0.0)  # epoch seconds [start, end)
    mix_now: dict[str, float] = field(default_factory=dict)  # predicted share of requests
    mix_ref: dict[str, float] = field(default_factory=dict)
    block_now: dict[str, float] = field(default_factory=dict)  # blocked share of requests
    block_ref: dict[str, float] = field(default_factory=dict)


def _df(store: Store, sql: str, params: dict, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(store.rows(sql, params), columns=columns)


def reference_window(store: Store, p: Period) -> tuple[float, float, str]:
    """The previous week when it has traffic; else the first fifth of this period's data."""
    db = store.db
    prev = store.scalar(
        f"SELECT count() FROM {db}.traffic_fleet_1m WHERE minute >= toDateTime({{s:UInt32}}) "
        f"AND minute < toDateTime({{e:UInt32}})",
        {"s": int(p.start - 7 * 86400), "e": int(p.start)},
    )
    if prev:
        return p.start - 7 * 86400, p.start, "the previous week"
    lo, hi = store.rows(
        f"SELECT toUnixTimestamp(min(minute)), toUnixTimestamp(max(minute)) + 60 "
        f"FROM {db}.traffic_fleet_1m WHERE minute >= toDateTime({{s:UInt32}}) "
        f"AND minute < toDateTime({{e:UInt32}})",
        {"s": int(p.start), "e": int(p.end)},
    )[0]
    cut = lo + max(60, (hi - lo) // 5)
    return float(lo), float(cut), "the first fifth of this period (no earlier data)"


def fetch_week(store: Store, p: Period) -> WeekData:
    db = store.db
    prm = {"s": int(p.start), "e": int(p.end), "b": p.bucket_s}
    rng = "minute >= toDateTime({s:UInt32}) AND minute < toDateTime({e:UInt32})"
    bucket = "toStartOfInterval(minute, toIntervalSecond({b:UInt32}))"
    traffic = _df(
        store,
        f"SELECT {bucket} AS b, sum(requests), sum(blocked), "
        f"quantilesMerge(0.5, 0.95, 0.99)(latency_q) AS q, sum(latency_sum) "
        f"FROM {db}.traffic_fleet_1m WHERE {rng} GROUP BY b ORDER BY b",
        prm,
        ["bucket", "requests", "blocked", "q", "latency_sum"],
    )
    if len(traffic):
        traffic[["p50", "p95", "p99"]] = pd.DataFrame(traffic.pop("q").tolist())
    cats = _df(
        store,
        f"SELECT {bucket} AS b, category, sum(predicted), sum(blocked) "
        f"FROM {db}.category_fleet_1m WHERE {rng} GROUP BY b, category ORDER BY b",
        prm,
        ["bucket", "category", "predicted", "blocked"],
    )
    fb = _df(
        store,
        f"SELECT {bucket} AS b, category, action, sum(events) "
        f"FROM {db}.feedback_1m WHERE {rng} GROUP BY b, category, action ORDER BY b",
        prm,
        ["bucket", "category", "action", "events"],
    )
    alerts = _df(
        store,
        f"SELECT alert_id, detected_at, category, direction, severity, status, resolved_at, "
        f"model_version, title, delivery_status FROM {db}.alerts FINAL "
        f"WHERE detected_at >= toDateTime({{s:UInt32}}) AND detected_at < toDateTime({{e:UInt32}}) "
        f"ORDER BY detected_at",
        prm,
        [
            "alert_id",
            "detected_at",
            "category",
            "direction",
            "severity",
            "status",
            "resolved_at",
            "model_version",
            "title",
            "delivery_status",
        ],
    )
    r0, r1, ref_label = reference_window(store, p)
    hist_sql = (
        f"SELECT category, bin, sum(pages) FROM {db}.score_hist_1m "
        f"WHERE minute >= toDateTime({{s:UInt32}}) AND minute < toDateTime({{e:UInt32}}) "
        f"GROUP BY category, bin ORDER BY category, bin"
    )
    cols = ["category", "bin", "pages"]
    scores_now = _df(store, hist_sql, prm, cols)
    scores_ref = _df(store, hist_sql, {"s": int(r0), "e": int(r1)}, cols)
    dom_sql = (
        f"SELECT domain, count() AS n, uniqExact(tenant_id) AS tenants, "
        f"arrayStringConcat(groupUniqArray(3)(model_version), ', ') AS versions, "
        f"arrayStringConcat(arrayDistinct(arrayFlatten(groupArray(attributed))), ', ') AS cats "
        f"FROM {db}.feedback WHERE action IN {{acts:Array(String)}} "
        f"AND ts >= toDateTime64({{s:UInt32}}, 3) AND ts < toDateTime64({{e:UInt32}}, 3) "
        f"AND domain != '' GROUP BY domain ORDER BY n DESC LIMIT 10"
    )
    dcols = ["domain", "events", "tenants", "model_versions", "categories"]
    over = _df(store, dom_sql, {**prm, "acts": ["unblock"]}, dcols)
    under = _df(store, dom_sql, {**prm, "acts": ["report", "block"]}, dcols)
    versions = _df(
        store,
        f"SELECT model_version, sum(requests) AS n FROM {db}.traffic_fleet_1m WHERE {rng} "
        f"GROUP BY model_version ORDER BY n DESC",
        prm,
        ["model_version", "requests"],
    )
    mix_sql = (
        f"SELECT category, sum(predicted) / t, sum(blocked) / t FROM {db}.category_fleet_1m "
        f"CROSS JOIN (SELECT sum(requests) AS t FROM {db}.traffic_fleet_1m WHERE {rng}) AS tot "
        f"WHERE {rng} GROUP BY category, t"
    )
    now = store.rows(mix_sql, prm)
    ref = store.rows(mix_sql, {"s": int(r0), "e": int(r1)})
    return WeekData(
        p,
        ref_label,
        traffic,
        cats,
        fb,
        alerts,
        scores_now,
        scores_ref,
        over,
        under,
        versions,
        (r0, r1),
        {c: m for c, m, _ in now},
        {c: m for c, m, _ in ref},
        {c: b for c, _, b in now},
        {c: b for c, _, b in ref},
    )
