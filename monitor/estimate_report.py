"""Estimated and measured FP/FN side by side: what ``estimate``, the weekly report and the
model card show.

Three readings per category, each with its own assumptions and interval:

* **label-free** (:mod:`monitor.label_free`) — CBPE from the scores, and the
  prevalence-anchored FN against a reference period;
* **override-based** — unblocks per block and reports per request from feedback, the
  numbers the detectors alert on; biased (disputes land on errors), no interval;
* **measured** — the audit-based estimate (:mod:`monitor.online_metrics`): analysts'
  random audits and disputes, bias-corrected, with a Clopper-Pearson interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from detectors.drift_event import DriftEvent
from monitor.calibration import CalibrationSet
from monitor.estimate_store import fetch_histograms, fetch_labelled, fetch_series
from monitor.label_free import (
    LabelFreeEstimate,
    Range,
    estimate_all,
    reference_from_windows,
    under_blocking,
    worst_fnr,
)
from monitor.storage import Store, drift_event_row
from monitor.taxonomy import CATEGORIES, SeverityClass

__all__ = [
    "EstimateReport",
    "alert_findings",
    "build_report",
    "finding_events",
    "record_findings",
    "render_table",
    "series_findings",
]

CIPA = {c.name for c in CATEGORIES if c.severity_class is SeverityClass.CIPA}


@dataclass
class EstimateReport:
    model_version: str
    calibration_version: str
    since: float
    until: float
    estimates: dict[str, LabelFreeEstimate]
    reference: dict[str, tuple[Range, Range]] = field(default_factory=dict)
    reference_since: float = 0.0
    overrides: dict[str, dict] = field(default_factory=dict)
    measured: dict[str, dict] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "model_version": self.model_version,
            "calibration_model_version": self.calibration_version,
            "since": self.since,
            "until": self.until,
            "categories": {
                c: {
                    "label_free": e.to_json(),
                    "reference": None
                    if c not in self.reference
                    else {
                        "prevalence": self.reference[c][0].__dict__,
                        "fnr": self.reference[c][1].__dict__,
                    },
                    "overrides": self.overrides.get(c, {}),
                    "measured": self.measured.get(c),
                }
                for c, e in self.estimates.items()
            },
        }


def _reference(store, cal, version, since, ref_s, step) -> dict[str, tuple[Range, Range]]:
    """From the ``ref_s`` before ``since``, cut into windows of ``step``: the same length
    as the windows it will be compared with (see :func:`reference_from_windows`)."""
    if ref_s <= 0:
        return {}
    series = fetch_series(store, version, since - ref_s, since, int(step))
    windows = [estimate_all(cal.categories, hists) for _, hists in series]
    return reference_from_windows([w for w in windows if w])


def _overrides(store: Store, version: str, since: float, until: float) -> dict[str, dict]:
    p = {"mv": version, "a": int(since), "b": int(until)}
    rng = "minute >= toDateTime({a:Int64}) AND minute < toDateTime({b:Int64})"
    blocked = dict(
        store.rows(
            f"SELECT category, sum(blocked) FROM {store.db}.category_fleet_1m "
            f"WHERE model_version = {{mv:String}} AND {rng} GROUP BY category",
            p,
        )
    )
    requests = (
        store.scalar(
            f"SELECT sum(requests) FROM {store.db}.traffic_fleet_1m "
            f"WHERE model_version = {{mv:String}} AND {rng}",
            p,
        )
        or 0
    )
    fb: dict[str, dict[str, int]] = {}
    for cat, action, n in store.rows(
        f"SELECT category, action, sum(events) FROM {store.db}.feedback_1m "
        f"WHERE model_version = {{mv:String}} AND {rng} GROUP BY category, action",
        p,
    ):
        fb.setdefault(cat, {})[action] = int(n)
    out = {}
    for c in CATEGORIES:
        b = int(blocked.get(c.name, 0))
        f = fb.get(c.name, {})
        out[c.name] = {
            "blocked": b,
            "unblocks": f.get("unblock", 0),
            "reports": f.get("report", 0) + f.get("block", 0),
            "unblock_rate": f.get("unblock", 0) / b if b else 0.0,
            "report_rate": (f.get("report", 0) + f.get("block", 0)) / requests if requests else 0.0,
        }
    return out


def _measured(store, version, since, until, cats) -> dict[str, dict]:
    from monitor.online_metrics import online_metrics

    out = {}
    for c, e in online_metrics(store, version, cats, since, until).items():
        if e.labelled == 0:
            continue
        r = e.recall
        out[c] = {
            "precision": None
            if e.precision.value is None
            else [e.precision.value, e.precision.low, e.precision.high],
            "recall": None if r.value is None else [r.value, r.low, r.high],
            "fnr": None if r.value is None else [1 - r.value, 1 - r.high, 1 - r.low],
            "labelled": e.labelled,
        }
    return out


def build_report(
    store: Store, cal: CalibrationSet, version: str, since: float, until: float, ref_s: float
) -> EstimateReport:
    hists = fetch_histograms(store, version, since, until)
    reference = _reference(store, cal, version, since, ref_s, max(300.0, until - since))
    fresh = fetch_labelled(store, version, since, until).fresh()
    ests = estimate_all(cal.categories, hists, reference, fresh) if hists else {}
    ests = {c: e for c, e in ests.items() if e.requests}
    return EstimateReport(
        version,
        cal.model_version,
        since,
        until,
        ests,
        reference,
        since - ref_s,
        _overrides(store, version, since, until),
        _measured(store, version, since, until, list(ests)),
    )


def series_findings(
    store: Store, cal, version: str, since: float, until: float, step: int, rep: EstimateReport
) -> list[dict]:
    """Windows whose label-free FNR of an always-block category is above the reference's:
    under-blocking that nobody reported."""
    ref_s = rep.since - rep.reference_since
    reference = _reference(store, cal, version, since, ref_s, step)
    if not reference:
        return []
    out = []
    for start, hists in fetch_series(store, version, since, until, step):
        for c, e in estimate_all(cal.categories, hists, reference).items():
            if c not in CIPA or c not in reference or not e.requests:
                continue
            ref_fnr = reference[c][1]
            if under_blocking(e, ref_fnr):
                w = worst_fnr(e)
                fn = e.fn_prevalence if w is e.fnr_prevalence else e.fn
                out.append(
                    {
                        "category": c,
                        "model_version": version,
                        "window_start": datetime.fromtimestamp(start, UTC).strftime(
                            "%Y-%m-%d %H:%M"
                        ),
                        "start": start,
                        "end": start + step,
                        "fnr": w.value,
                        "fnr_low": w.low,
                        "fnr_high": w.high,
                        "reference_fnr": ref_fnr.value,
                        "reference_fnr_high": ref_fnr.high,
                        "missed": fn.value,
                        "requests": e.requests,
                        "flags": e.flags,
                        "reading": "prevalence-anchored" if w is e.fnr_prevalence else "CBPE",
                    }
                )
    return out


def finding_events(findings: list[dict]) -> list[DriftEvent]:
    """Findings as drift events (signal ``est_fnr``): what the alert rules and the drift
    timeline take. ``successes``/``trials``: estimated missed pages of the window's
    requests; ``statistic`` the FNR's lower end, ``threshold`` the reference's upper."""
    return [
        DriftEvent(
            signal="est_fnr",
            category=f["category"],
            model_version=f["model_version"],
            change="up",
            onset=float(f["start"]),
            detected_at=float(f["end"]),
            baseline=f["reference_fnr"],
            current=f["fnr"],
            ci_low=f["fnr_low"],
            ci_high=f["fnr_high"],
            successes=f["missed"],
            trials=float(f["requests"]),
            trials_of="requests",
            statistic=f["fnr_low"],
            threshold=f["reference_fnr_high"],
            effect=f["fnr"] - f["reference_fnr"],
            detector="label_free",
            detail=f["reading"],
        )
        for f in findings
    ]


def record_findings(store: Store, findings: list[dict]) -> None:
    """Store the findings as drift events (the id is stable per window: a rerun replaces)."""
    store.insert_rows("drift_events", [drift_event_row(e) for e in finding_events(findings)])


def alert_findings(store: Store, config, findings: list[dict]) -> list:
    """Page on the findings through the alert pipeline (rules, RCA context, grouping,
    silences, the outbox): under-blocking of an always-block category is critical.

    One run is one episode: the rules see the findings in window order and fire what is
    pending at the end, so the alert id is stable for the same first window (a rerun
    over the same range is not paged twice: the outbox knows its notifications)."""
    from alerts.dispatch import AlertDispatcher
    from alerts.notify import Notifier
    from alerts.rules import AlertRules

    events = sorted(finding_events(findings), key=lambda e: e.detected_at)
    if not events:
        return []
    rules = AlertRules(config.alerts)
    incidents = []
    for at in sorted({e.detected_at for e in events}):
        incidents += rules.observe([e for e in events if e.detected_at == at], at)
    end = events[-1].detected_at
    incidents += rules.flush(end)
    notifier = Notifier(config.notify) if config.notify else None
    dispatcher = AlertDispatcher(store, notifier, config.alerts)
    alerts = [dispatcher.dispatch(inc, end) for inc in incidents]
    dispatcher.tick(end, final=True)
    return alerts


def rows(rep: EstimateReport) -> list[list[str]]:
    """The side-by-side table (header first)."""
    head = [
        "category",
        "label-free P [95%]",
        "label-free R [95%]",
        "label-free FNR [95%]",
        "prevalence FNR [95%]",
        "est. FP",
        "est. FN",
        "unblocks/block",
        "reports/req",
        "measured P [95%]",
        "measured FNR [95%]",
        "flags",
    ]
    out = [head]

    def fmt3(t) -> str:
        return "-" if t is None else f"{t[0]:.3f} [{t[1]:.3f}, {t[2]:.3f}]"

    def fr(r) -> str:
        return "-" if r is None else f"{r.value:.3f} [{r.low:.3f}, {r.high:.3f}]"

    for c, e in rep.estimates.items():
        o = rep.overrides.get(c, {})
        m = rep.measured.get(c) or {}
        out.append(
            [
                c,
                fr(e.precision),
                fr(e.recall),
                fr(e.fnr),
                fr(e.fnr_prevalence),
                f"{e.fp.value:,.0f} [{e.fp.low:,.0f}, {e.fp.high:,.0f}]",
                f"{e.fn.value:,.0f} [{e.fn.low:,.0f}, {e.fn.high:,.0f}]",
                f"{o.get('unblock_rate', 0):.4f}",
                f"{o.get('report_rate', 0):.2e}",
                fmt3(m.get("precision")),
                fmt3(m.get("fnr")),
                ",".join(e.flags) or "-",
            ]
        )
    return out


def render_table(rep: EstimateReport) -> str:
    t = rows(rep)
    widths = [max(len(r[i]) for r in t) for i in range(len(t[0]))]
    lines = [
        f"model version {rep.model_version} (calibration of {rep.calibration_version}), "
        f"{datetime.fromtimestamp(rep.since, UTC):%Y-%m-%d %H:%M}.."
        f"{datetime.fromtimestamp(rep.until, UTC):%Y-%m-%d %H:%M} UTC"
    ]
    for r in t:
        lines.append("  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)
