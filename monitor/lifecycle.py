"""Backtest of the alert lifecycle: incidents that start *and end* at known times.

The detection backtest (:mod:`monitor.backtest`) scores how fast a change is found. This
one scores what on-call lives with afterwards, on the same window-level twin at the
production rate, each run starting from a reference profile:

- **fired**: an alert of the scenario's category and direction after the onset, and its
  delay;
- **premature resolves**: that alert resolved while the incident was still on (a flap,
  the failure the return-to-baseline test exists to prevent);
- **resolve delay**: seconds from the incident's end to the resolve (unresolved at the
  end of the run counts as a miss);
- **alerts and notifications**: firing alerts of any key after the onset, and the grouped
  notifications the manager sends for them (grouping compression), including reminders.

The model-version label used for grouping is read from the events (one version carrying
every version-level detection), an approximation of the RCA context's, which needs
ClickHouse.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

from alerts.manager import AlertManager
from alerts.model import Alert, RcaContext
from alerts.rules import AlertRules
from detectors.bank import BankConfig
from detectors.baselines import factories
from monitor.config import AlertsConfig
from monitor.scenarios import SCENARIOS
from monitor.simulator import DEFAULT_RATE, SimConfig
from monitor.twin import TrafficTwin, TwinConfig

__all__ = ["LifecycleConfig", "format_lifecycle", "run_lifecycle"]

_START = 1_767_225_600.0 + 9 * 3600.0  # a school morning


@dataclass(frozen=True)
class LifecycleConfig:
    seeds: int = 5
    rate: float = DEFAULT_RATE
    onset_s: float = 600.0
    incident_s: float = 900.0
    after_s: float = 1800.0
    profile_s: float = 1800.0
    pool_seconds: int = 30
    workers: int = 0
    methods: tuple[str, ...] = ("filterwatch",)  # what _profiled_banks builds


@dataclass
class LifecycleRun:
    scenario: str
    seed: int
    fired_delay_s: float | None = None
    premature_resolves: int = 0
    resolve_delay_s: float | None = None
    alerts_after_onset: int = 0
    off_target: int = 0  # alerts after the onset naming another category or direction
    alerts_before_onset: int = 0
    notifications: int = 0
    reminders: int = 0
    resolved_notifications: int = 0
    segments: list[str] = field(default_factory=list)
    timeline: list[tuple] = field(default_factory=list)  # (category, direction, fired, resolved)


def _scope(inc) -> str | None:
    versions = {e.model_version for e in inc.events if e.model_version != "*"}
    return versions.pop() if len(versions) == 1 else None


def run_one(job: tuple) -> LifecycleRun:
    from monitor.backtest import _profiled_banks

    scenario_name, seed, cfg = job
    sc = SCENARIOS[scenario_name]
    duration = cfg.onset_s + cfg.incident_s + cfg.after_s
    sim = SimConfig(
        scenario=scenario_name,
        rate=cfg.rate,
        duration_s=duration,
        onset_s=cfg.onset_s,
        recover_s=cfg.onset_s + cfg.incident_s,
        seed=seed,
        start=_START,
    )
    twin = TrafficTwin(sim, TwinConfig(pool_seconds=cfg.pool_seconds))
    bank_cfg = BankConfig()
    bank = _profiled_banks(twin, bank_cfg, factories(bank_cfg), cfg)["filterwatch"]
    alerts_cfg = AlertsConfig()
    rules = AlertRules(alerts_cfg)
    manager = AlertManager(alerts_cfg)
    onset, recover = twin.onset, twin.recover
    cats = (sc.expected_category, *sc.also_acceptable)
    run = LifecycleRun(scenario_name, seed)
    alerts: dict[str, Alert] = {}

    def right(inc) -> bool:
        return inc.direction == sc.expected_direction and (
            sc.expected_category == "*" or inc.category in cats
        )

    def handle(incs, now) -> None:
        for inc in incs:
            if inc.status == "firing":
                inc.scope_model_version = _scope(inc)
                if inc.fired_at <= onset:
                    run.alerts_before_onset += 1
                else:
                    run.alerts_after_onset += 1
                    run.off_target += not right(inc)
                if right(inc) and inc.fired_at > onset and run.fired_delay_s is None:
                    run.fired_delay_s = inc.fired_at - onset
            elif right(inc):
                if inc.resolved_at < recover:
                    run.premature_resolves += 1
                else:
                    run.resolve_delay_s = inc.resolved_at - recover
            a = alerts.get(inc.incident_id)
            if a is None:
                a = Alert(f"fw-{inc.incident_id}", "fp", inc, RcaContext(0, 0), "-", now)
                alerts[inc.incident_id] = a
            manager.add(a, now)
        for n in manager.tick(now, wall=now):
            run.notifications += 1
            run.reminders += n.kind == "repeat"
            run.resolved_notifications += n.kind == "resolved"

    for agg in twin.windows():
        events = bank.update(agg)
        handle(rules.observe(events, agg.end, bank.take_recoveries()), agg.end)
    still = [i for i in rules.firing if right(i)]
    if still:
        run.resolve_delay_s = None  # the run ended with it still firing
    run.segments = sorted({s for a in alerts.values() for s in a.incident.affected_segments})[:20]
    for a in alerts.values():
        i = a.incident
        res = None if i.resolved_at is None else round(i.resolved_at - onset)
        run.timeline.append((i.category, i.direction, round(i.fired_at - onset), res))
    return run


def run_lifecycle(cfg: LifecycleConfig, progress=None) -> dict:
    jobs = [
        (name, seed, cfg)
        for name in SCENARIOS
        if name != "none"
        for seed in range(1, cfg.seeds + 1)
    ]
    workers = cfg.workers or os.cpu_count() or 1
    runs: list[LifecycleRun] = []
    if workers == 1:
        for j in jobs:
            runs.append(run_one(j))
            if progress:
                progress(f"{j[0]} seed {j[1]}")
    else:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            for r in ex.map(run_one, jobs):
                runs.append(r)
                if progress:
                    progress(f"{r.scenario} seed {r.seed}")
    return summarise(runs, cfg)


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


def summarise(runs: list[LifecycleRun], cfg: LifecycleConfig) -> dict:
    rows = []
    for name in sorted({r.scenario for r in runs}):
        rs = [r for r in runs if r.scenario == name]
        fired = [r.fired_delay_s for r in rs if r.fired_delay_s is not None]
        resolved = [r.resolve_delay_s for r in rs if r.resolve_delay_s is not None]
        rows.append(
            {
                "scenario": name,
                "runs": len(rs),
                "fired": len(fired),
                "fire_delay_median_s": _pct(fired, 0.5),
                "premature_resolves": sum(r.premature_resolves for r in rs),
                "resolved": len(resolved),
                "resolve_delay_median_s": _pct(resolved, 0.5),
                "resolve_delay_max_s": max(resolved) if resolved else None,
                "alerts_per_run": sum(r.alerts_after_onset for r in rs) / len(rs),
                "off_target_per_run": sum(r.off_target for r in rs) / len(rs),
                "off_target": sorted(
                    {f"{c} {d}" for r in rs for c, d, *_ in r.timeline}
                    - {
                        f"{c} {sc}"
                        for c in (
                            SCENARIOS[name].expected_category,
                            *SCENARIOS[name].also_acceptable,
                        )
                        for sc in (SCENARIOS[name].expected_direction,)
                    }
                ),
                "alerts_before_onset": sum(r.alerts_before_onset for r in rs),
                "notifications_per_run": sum(r.notifications for r in rs) / len(rs),
                "reminders": sum(r.reminders for r in rs),
            }
        )
    total = {
        "runs": len(runs),
        "fired": sum(r["fired"] for r in rows),
        "premature_resolves": sum(r["premature_resolves"] for r in rows),
        "resolved": sum(r["resolved"] for r in rows),
        "alerts": sum(r.alerts_after_onset for r in runs),
        "off_target": sum(r.off_target for r in runs),
        "notifications": sum(r.notifications for r in runs),
        "alerts_before_onset": sum(r["alerts_before_onset"] for r in rows),
    }
    return {"config": asdict(cfg), "rows": rows, "total": total}


def format_lifecycle(report: dict) -> str:
    lines = [
        f"{'scenario':<24}{'runs':>5}{'fired':>6}{'med fire s':>11}{'premature':>10}"
        f"{'resolved':>9}{'med res s':>10}{'max res s':>10}{'alerts':>8}{'off':>6}{'notif':>7}"
    ]
    for r in report["rows"]:
        lines.append(
            f"{r['scenario']:<24}{r['runs']:>5}{r['fired']:>6}{_f(r['fire_delay_median_s']):>11}"
            f"{r['premature_resolves']:>10}{r['resolved']:>9}{_f(r['resolve_delay_median_s']):>10}"
            f"{_f(r['resolve_delay_max_s']):>10}{r['alerts_per_run']:>8.1f}"
            f"{r['off_target_per_run']:>6.1f}"
            f"{r['notifications_per_run']:>7.1f}"
        )
    t = report["total"]
    c = report["config"]
    lines.append(
        f"\nincident {c['incident_s']:.0f} s, then {c['after_s']:.0f} s of clean traffic; "
        f"{t['runs']} runs: fired {t['fired']}, premature resolves {t['premature_resolves']}, "
        f"resolved {t['resolved']}, {t['alerts']} alerts ({t['off_target']} off-target) -> "
        f"{t['notifications']} notifications, {t['alerts_before_onset']} alerts before an onset"
    )
    for r in report["rows"]:
        if r["off_target"]:
            lines.append(f"  off-target in {r['scenario']}: {', '.join(r['off_target'])}")
    return "\n".join(lines)


def _f(x) -> str:
    return "-" if x is None else f"{x:.0f}"
