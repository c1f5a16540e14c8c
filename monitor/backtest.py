"""The backtest harness: recall, detection delay and false alarms on known change points.

Suites:

- ``incidents``: every simulator incident scenario, for several seeds and magnitudes,
  through the window-level twin (:mod:`monitor.twin`) at 12,700 events/s. Each run has
  ``onset_s`` of clean traffic after warm-up, then the incident for ``horizon_s``.
- ``clean``: scenario ``none`` for ``clean_hours`` of traffic on the school-day volume
  curve, for false alarms per day per 1,000 segments.
- ``synthetic``: river's synthetic drift streams and change-point series
  (:mod:`monitor.synthetic`).

Every method (filterwatch's detectors, a naive fixed-threshold rule, river at default
parameters; :mod:`detectors.baselines`) runs in its own detector bank on the *same*
windows, so the comparison is paired.

Scoring, per run and per signal: a detection is a *hit* if it names the scenario's
category (or one the scenario lists as also acceptable; any segment for latency), its
signal is one the scenario expects, and it comes after the onset; the delay is
``detected_at - onset`` in seconds of traffic (and events, at the run's rate). Any
detection in a clean run, or before the onset of an incident run, is a false alarm.
The ``alerts`` row scores filterwatch's alert rules end to end: right category and
direction.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from alerts.rules import AlertRules
from detectors.bank import ALL, BankConfig, DetectorBank
from detectors.baselines import factories
from monitor.config import AlertsConfig
from monitor.scenarios import SCENARIOS
from monitor.simulator import DEFAULT_RATE, SimConfig
from monitor.twin import TrafficTwin, TwinConfig

__all__ = ["BacktestConfig", "run_backtest"]

SUITES = ("incidents", "synthetic", "all")
METHODS = ("filterwatch", "naive", "river-default")
_START = 1_767_225_600.0  # 2026-01-01T00:00:00Z: the clean day starts at midnight


@dataclass(frozen=True)
class BacktestConfig:
    suite: str = "all"
    seeds: int = 5
    magnitudes: tuple[float, ...] = (0.5, 1.0)
    rate: float = DEFAULT_RATE
    onset_s: float = 600.0
    horizon_s: float = 600.0
    clean_hours: float = 24.0
    clean_seeds: int = 2
    pool_seconds: int = 30
    profile_s: float = 1800.0  # clean traffic each method's reference profile is built from
    workers: int = 0  # 0: one per CPU
    methods: tuple[str, ...] = ("filterwatch", "naive", "river-default")

    def __post_init__(self) -> None:
        from monitor.errors import ConfigError

        if self.suite not in (*SUITES, "clean"):
            raise ConfigError(f"--suite must be one of: {', '.join(SUITES)}")
        if self.seeds < 1:
            raise ConfigError("--seeds must be >= 1")
        if self.clean_hours <= 0:
            raise ConfigError("--clean-hours must be > 0")


@dataclass
class RunResult:
    """One stream, one method: the detections that matter for scoring."""

    suite: str
    scenario: str
    seed: int
    magnitude: float
    method: str
    onset: float | None
    rate: float
    traffic_s: float  # scored seconds of traffic (after warm-up)
    first_hit: dict[str, float] = field(default_factory=dict)  # signal -> delay s
    false_alarms: Counter = field(default_factory=Counter)  # signal family -> count
    segments: Counter = field(default_factory=Counter)  # signal family -> segments
    alert_delay: float | None = None
    alert_false: int = 0
    elapsed_s: float = 0.0


def _family(e) -> str:
    return f"tenant_{e.signal}" if e.tenant != ALL else e.signal


def _is_hit(e, scenario) -> bool:
    signal = e.signal.removeprefix("canary_") if e.signal.startswith("canary_") else e.signal
    if signal not in scenario.expected_signals:
        return False
    if scenario.expected_category == "*":
        return True
    return e.category in (scenario.expected_category, *scenario.also_acceptable)


def run_stream(job: tuple) -> list[RunResult]:
    """Run every method over one twin stream (a worker-process entry point)."""
    suite, scenario_name, seed, magnitude, cfg = job
    t0 = time.perf_counter()
    scenario = SCENARIOS[scenario_name]
    bank_cfg = BankConfig()
    warm = 0.0  # banks start from a reference profile (see _profiled_banks)
    if scenario_name == "none":
        duration = cfg.clean_hours * 3600.0
        sim = SimConfig(
            scenario="none",
            rate=cfg.rate,
            duration_s=duration,
            onset_s=duration,
            seed=seed,
            start=_START,
        )
        twin_cfg = TwinConfig(pool_seconds=cfg.pool_seconds, diurnal=True)
        onset = None
    else:
        duration = warm + cfg.onset_s + cfg.horizon_s
        sim = SimConfig(
            scenario=scenario_name,
            rate=cfg.rate,
            duration_s=duration,
            onset_s=warm + cfg.onset_s,
            seed=seed,
            magnitude=magnitude,
            start=_START + 9 * 3600.0,  # mid-morning
        )
        twin_cfg = TwinConfig(pool_seconds=cfg.pool_seconds)
        onset = _START + 9 * 3600.0 + warm + cfg.onset_s
    twin = TrafficTwin(sim, twin_cfg)
    all_f = factories(bank_cfg)
    banks = _profiled_banks(twin, bank_cfg, all_f, cfg)
    rules = AlertRules(AlertsConfig())
    results = {
        m: RunResult(suite, scenario_name, seed, magnitude, m, onset, cfg.rate, duration - warm)
        for m in cfg.methods
    }
    scored_from = twin.start + warm
    for agg in twin.windows():
        for m, bank in banks.items():
            events = bank.update(agg)
            recoveries = bank.take_recoveries()
            r = results[m]
            for e in events:
                if e.detected_at <= scored_from:
                    continue
                if onset is None or e.detected_at <= onset:
                    r.false_alarms[_family(e)] += 1
                elif _is_hit(e, scenario) and e.detected_at - onset <= cfg.horizon_s:
                    key = _family(e)
                    if key not in r.first_hit:
                        r.first_hit[key] = e.detected_at - onset
            if m == "filterwatch":
                for inc in rules.observe(events, agg.end, recoveries):
                    if inc.status == "firing":  # a resolve is not a second alert
                        _score_alert(r, inc, onset, scenario, scored_from, cfg.horizon_s)
    fw = results.get("filterwatch")
    if fw is not None:
        for inc in rules.flush(twin.end):
            _score_alert(fw, inc, onset, scenario, scored_from, cfg.horizon_s)
    elapsed = time.perf_counter() - t0
    for m, bank in banks.items():
        results[m].segments = bank.segment_counts()
        results[m].elapsed_s = elapsed
    return list(results.values())


def _profiled_banks(twin: TrafficTwin, bank_cfg: BankConfig, all_f, cfg) -> dict:
    """Each method's bank, started from a reference profile of clean traffic.

    This is the production flow: a profile built from earlier traffic of the same world
    (``filterwatch baseline``), exported as rows, loaded by the bank at start.
    """
    windows = math.ceil(cfg.profile_s / bank_cfg.window_s)
    learn_cfg = replace(bank_cfg, reference_windows=windows)
    learn_f = factories(learn_cfg)
    learners = {m: DetectorBank(learn_cfg, factory=learn_f[m]) for m in cfg.methods}
    for agg in twin.profile_windows(cfg.profile_s):
        for bank in learners.values():
            bank.update(agg)
    first = int(twin.start // bank_cfg.window_s)
    banks = {}
    for m, learner in learners.items():
        bank = DetectorBank(bank_cfg, factory=all_f[m])
        bank.load_references(learner.export_references(), window=first)
        banks[m] = bank
    return banks


def _score_alert(r: RunResult, inc, onset, scenario, scored_from, horizon) -> None:
    if inc.fired_at <= scored_from:
        return
    if onset is None or inc.fired_at <= onset:
        r.alert_false += 1
        return
    cats = (scenario.expected_category, *scenario.also_acceptable)
    right = inc.direction == scenario.expected_direction and (
        scenario.expected_category == "*" or inc.category in cats
    )
    if right and r.alert_delay is None and inc.fired_at - onset <= horizon:
        r.alert_delay = inc.fired_at - onset


# -- the suites ---------------------------------------------------------------------------
def _jobs(cfg: BacktestConfig) -> list[tuple]:
    jobs = []
    if cfg.suite in ("incidents", "all"):
        for name in SCENARIOS:
            if name == "none":
                continue
            for mag in cfg.magnitudes:
                for seed in range(1, cfg.seeds + 1):
                    jobs.append(("incidents", name, seed, mag, cfg))
    if cfg.suite in ("incidents", "all", "clean"):
        # Baselines' false alarms are orders of magnitude above filterwatch's: one clean
        # day measures them well; filterwatch's need every clean day there is.
        for i, seed in enumerate(range(101, 101 + cfg.clean_seeds)):
            job_cfg = cfg if i == 0 else replace(cfg, methods=("filterwatch",))
            if "filterwatch" in job_cfg.methods:
                jobs.append(("clean", "none", seed, 0.0, job_cfg))
    # Longest first, so the pool stays busy.
    jobs.sort(key=lambda j: j[1] != "none")
    return jobs


def run_backtest(cfg: BacktestConfig, progress: Callable[[str], None] | None = None) -> dict:
    """Run the configured suites; returns the report (see :func:`summarise`)."""
    t0 = time.perf_counter()
    results: list[RunResult] = []
    jobs = _jobs(cfg)
    workers = cfg.workers or max(1, os.cpu_count() or 1)
    if jobs:
        if workers == 1:
            for j in jobs:
                results += run_stream(j)
                if progress:
                    progress(f"{j[0]} {j[1]} seed={j[2]} magnitude={j[3]}")
        else:
            with ProcessPoolExecutor(workers) as pool:
                for j, out in zip(jobs, pool.map(run_stream, jobs), strict=True):
                    results += out
                    if progress:
                        progress(f"{j[0]} {j[1]} seed={j[2]} magnitude={j[3]}")
    synthetic_rows: list[dict] = []
    if cfg.suite in ("synthetic", "all"):
        from monitor.synthetic import run_synthetic

        synthetic_rows = run_synthetic(seeds=cfg.seeds, progress=progress)
    report = summarise(results, cfg)
    report["rows"] += synthetic_rows
    report["elapsed_s"] = round(time.perf_counter() - t0, 1)
    return report


def _pct(xs: list[float], q: float) -> float | None:
    return float(np.percentile(xs, q)) if xs else None


def _poisson_upper(k: int, conf: float = 0.95) -> float:
    """Upper confidence bound of a Poisson mean after observing ``k`` events."""
    from scipy.stats import chi2

    return float(chi2.ppf(conf, 2 * (k + 1)) / 2)


def summarise(results: list[RunResult], cfg: BacktestConfig) -> dict:
    """Rows per (suite, scenario, method, detector) with the keys the README documents."""
    rows: list[dict] = []
    incidents = [r for r in results if r.suite == "incidents"]
    clean = [r for r in results if r.suite == "clean"]
    # False alarms per signal family and method, from clean runs.
    fa: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
    alert_fa: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for r in clean:
        days = r.traffic_s / 86400.0
        for fam, n in r.segments.items():
            acc = fa[(r.method, fam)]
            acc[0] += r.false_alarms.get(fam, 0)
            acc[1] += n * days
        tot = fa[(r.method, "*")]
        tot[0] += sum(r.false_alarms.values())
        tot[1] += sum(r.segments.values()) * days
        if r.method == "filterwatch":
            alert_fa["filterwatch"][0] += r.alert_false
            alert_fa["filterwatch"][1] += days

    def fa_rate(method: str, fam: str) -> tuple[float | None, float | None, int]:
        k, seg_days = fa.get((method, fam), (0, 0.0))
        if seg_days <= 0:
            return None, None, 0
        return 1000 * k / seg_days, 1000 * _poisson_upper(int(k)) / seg_days, int(k)

    # Incident rows: per scenario x magnitude x method x signal, plus "any" and alerts.
    groups: dict[tuple, list[RunResult]] = defaultdict(list)
    for r in incidents:
        groups[(r.scenario, r.magnitude, r.method)].append(r)
    for (scen, mag, method), runs in sorted(groups.items()):
        sc = SCENARIOS[scen]
        fams = sorted({f for r in runs for f in r.first_hit} | set(sc.expected_signals))
        detectors = [*fams, "any"] + (["alerts"] if method == "filterwatch" else [])
        for det in detectors:
            if det == "any":
                delays = [min(r.first_hit.values()) for r in runs if r.first_hit]
            elif det == "alerts":
                delays = [r.alert_delay for r in runs if r.alert_delay is not None]
            else:
                delays = [r.first_hit[det] for r in runs if det in r.first_hit]
            fam = "*" if det in ("any", "alerts") else det
            rate, upper, k = fa_rate(method, fam)
            if det == "alerts":
                ak, adays = alert_fa.get("filterwatch", (0, 0.0))
                rate = ak / adays if adays else None
                upper = _poisson_upper(int(ak)) / adays if adays else None
                k = int(ak)
            rows.append(
                _row(
                    "incidents",
                    scen,
                    mag,
                    method,
                    det,
                    len(runs),
                    delays,
                    runs[0].rate,
                    rate,
                    upper,
                    k,
                    per_day=det == "alerts",
                )
            )
    # Clean rows: one per method x signal family.
    for (method, fam), (k, seg_days) in sorted(fa.items()):
        days = sum(r.traffic_s for r in clean if r.method == method) / 86400.0
        segs = seg_days / days if days else 0.0
        rows.append(
            {
                "suite": "clean",
                "scenario": "none",
                "method": method,
                "detector": "any" if fam == "*" else fam,
                "segments": round(segs),
                "traffic_days": round(days, 3),
                "false_alarms": int(k),
                "false_alarms_per_day_per_1k_segments": _r(1000 * k / seg_days),
                "false_alarms_per_day_per_1k_segments_upper95": _r(
                    1000 * _poisson_upper(int(k)) / seg_days
                ),
                "recall": None,
                "delay_median_s": None,
                "delay_p95_s": None,
            }
        )
    if clean:
        ak, adays = alert_fa.get("filterwatch", (0, 0.0))
        if adays:
            rows.append(
                {
                    "suite": "clean",
                    "scenario": "none",
                    "method": "filterwatch",
                    "detector": "alerts",
                    "traffic_days": round(adays, 3),
                    "false_alarms": int(ak),
                    "alerts_per_day": _r(ak / adays),
                    "alerts_per_day_upper95": _r(_poisson_upper(int(ak)) / adays),
                    "false_alarms_per_day_per_1k_segments": None,
                    "recall": None,
                    "delay_median_s": None,
                    "delay_p95_s": None,
                }
            )
    return {"config": _config_dict(cfg), "rows": rows, "summary": _headline(rows, results)}


def _row(suite, scen, mag, method, det, runs, delays, rate, fa, fa_upper, fa_k, per_day=False):
    return {
        "suite": suite,
        "scenario": scen,
        "magnitude": mag,
        "method": method,
        "detector": det,
        "runs": runs,
        "recall": _r(len(delays) / runs),
        "delay_median_s": _r(_pct(delays, 50)),
        "delay_p95_s": _r(_pct(delays, 95)),
        "delay_median_events": None if not delays else round(_pct(delays, 50) * rate),
        "delay_p95_events": None if not delays else round(_pct(delays, 95) * rate),
        "false_alarms_per_day_per_1k_segments": None if per_day else _r(fa),
        "false_alarms_per_day_per_1k_segments_upper95": None if per_day else _r(fa_upper),
        "false_alarms_per_day": _r(fa) if per_day else None,
    }


def _headline(rows: list[dict], results: list[RunResult]) -> dict:
    """Per method over the whole incident suite: recall and delays of the 'any' rows."""
    out = {}
    all_delays: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        if r.suite != "incidents":
            continue
        if r.first_hit:
            all_delays[r.method]["any"].append(min(r.first_hit.values()))
        if r.alert_delay is not None:
            all_delays[r.method]["alerts"].append(r.alert_delay)
    for method in sorted({r["method"] for r in rows if r["suite"] == "incidents"}):
        for det in ("any", "alerts"):
            rs = [
                r
                for r in rows
                if r["suite"] == "incidents" and r["method"] == method and r["detector"] == det
            ]
            if not rs:
                continue
            runs = sum(r["runs"] for r in rs)
            hits = sum(round(r["recall"] * r["runs"]) for r in rs)
            med = [r["delay_median_s"] for r in rs if r["delay_median_s"] is not None]
            clean = [
                r
                for r in rows
                if r["suite"] == "clean" and r["method"] == method and r["detector"] == det
            ]
            delays = all_delays[method][det]
            out[f"{method}/{det}"] = {
                "recall": _r(hits / runs) if runs else None,
                "runs": runs,
                "delay_median_s": _r(_pct(delays, 50)),
                "delay_p95_s": _r(_pct(delays, 95)),
                "median_of_median_delays_s": _r(float(np.median(med))) if med else None,
                "worst_median_delay_s": _r(max(med)) if med else None,
                "clean": clean[0] if clean else None,
            }
    return out


def _r(x):
    if x is None:
        return None
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return round(float(x), 3)


def _config_dict(cfg: BacktestConfig) -> dict:
    d = asdict(cfg)
    d["magnitudes"] = list(cfg.magnitudes)
    d["methods"] = list(cfg.methods)
    return d


# -- printing -----------------------------------------------------------------------------
def format_table(report: dict) -> str:
    """The human table: incidents per scenario/detector/method, then clean, then synthetic."""
    lines = []
    rows = report["rows"]
    inc = [r for r in rows if r["suite"] == "incidents"]
    if inc:
        lines.append(
            f"{'scenario':<24}{'mag':>5} {'detector':<22}{'method':<15}"
            f"{'recall':>7}{'med s':>8}{'p95 s':>8}{'med events':>12}{'FA/d/1k':>12}"
        )
        for r in inc:
            lines.append(
                f"{r['scenario']:<24}{r['magnitude']:>5} {r['detector']:<22}{r['method']:<15}"
                f"{_f(r['recall'], 2):>7}{_f(r['delay_median_s'], 0):>8}"
                f"{_f(r['delay_p95_s'], 0):>8}{_f(r['delay_median_events'], 0):>12}"
                f"{_f(_fa_of(r), 2):>12}"
            )
    cl = [r for r in rows if r["suite"] == "clean"]
    if cl:
        lines.append("")
        lines.append(
            f"{'clean traffic':<24}{'detector':<22}{'method':<15}{'segments':>9}"
            f"{'days':>7}{'FAs':>6}{'FA/d/1k':>12}{'upper95':>12}"
        )
        for r in cl:
            if r["detector"] == "alerts":
                lines.append(
                    f"{'':<24}{'alerts':<22}{r['method']:<15}{'':>9}{r['traffic_days']:>7}"
                    f"{r['false_alarms']:>6}{_f(r['alerts_per_day'], 2):>12}"
                    f"{_f(r['alerts_per_day_upper95'], 2):>12}  (alerts/day)"
                )
                continue
            lines.append(
                f"{'':<24}{r['detector']:<22}{r['method']:<15}{r['segments']:>9}"
                f"{r['traffic_days']:>7}{r['false_alarms']:>6}"
                f"{_f(r['false_alarms_per_day_per_1k_segments'], 2):>12}"
                f"{_f(r['false_alarms_per_day_per_1k_segments_upper95'], 2):>12}"
            )
    syn = [r for r in rows if r["suite"] == "synthetic"]
    if syn:
        lines.append("")
        lines.append(
            f"{'synthetic stream':<34}{'method':<26}{'recall':>7}{'med':>8}{'p95':>8}"
            f"{'FA/1k':>8}  (delays and FAs in samples)"
        )
        for r in syn:
            lines.append(
                f"{r['scenario']:<34}{r['method']:<26}{_f(r['recall'], 2):>7}"
                f"{_f(r['delay_median_samples'], 0):>8}{_f(r['delay_p95_samples'], 0):>8}"
                f"{_f(r['false_alarms_per_1k_samples'], 2):>8}"
            )
    lines.append("")
    for k, v in report["summary"].items():
        clean = v.get("clean") or {}
        if k.endswith("/alerts"):
            fa = clean.get("alerts_per_day")
        else:
            fa = clean.get("false_alarms_per_day_per_1k_segments")
        lines.append(
            f"{k}: recall {v['recall']} of {v['runs']} runs, delay median {v['delay_median_s']} s"
            f" / p95 {v['delay_p95_s']} s, worst scenario median {v['worst_median_delay_s']} s"
            f"; clean: {fa if fa is not None else '-'}"
            + (" alerts/day" if k.endswith("/alerts") else " FA/day/1k segments")
        )
    return "\n".join(lines)


def _fa_of(row: dict):
    if row["detector"] == "alerts":
        return row["false_alarms_per_day"]
    return row["false_alarms_per_day_per_1k_segments"]


def _f(x, digits: int) -> str:
    if x is None:
        return "-"
    return f"{x:.{digits}f}"
