"""Detection delay per incident scenario and in-process pipeline throughput.

Runs every simulator scenario through the full in-process pipeline (validation, scrub,
chDB storage with rollups, detector bank, alert rules, RCA queries) and reports, per
scenario: the delay from the true onset to the first alert of the expected direction,
the change-point error, collateral alerts, and events/s. Baseline in the same run: the
same events through validation alone (the floor any pipeline pays), so the ratio shows
what storage + detection cost on this machine.

    python bench/scenarios.py [--quick] [--rate 12700] [--json]

Writes bench/results/scenarios.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.config import Config, StoreConfig
from monitor.pipeline import Pipeline
from monitor.scenarios import SCENARIOS
from monitor.simulator import SimConfig, Simulator
from monitor.storage import Store
from monitor.validation import Validator


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2,000 events/s, 5 minutes")
    ap.add_argument("--rate", type=float, default=12_700.0)
    ap.add_argument("--duration", type=float, default=300.0)
    ap.add_argument("--onset", type=float, default=150.0)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--scenario", action="append", help="run only these (repeatable)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    gc.set_threshold(200_000, 50, 1000)  # as the CLI does (see monitor/cli.py main)
    if args.quick:
        args.rate = 2000.0
    root = tempfile.mkdtemp(prefix="fw-bench-")
    base = Store.open(StoreConfig(path=root, database="bench"))
    rows = []
    try:
        for seed in range(7, 7 + args.seeds):
            for name, sc in SCENARIOS.items():
                if args.scenario and name not in args.scenario:
                    continue
                sim_cfg = SimConfig(
                    scenario=name,
                    rate=args.rate,
                    duration_s=args.duration,
                    onset_s=args.onset,
                    seed=seed,
                )
                events = list(Simulator(sim_cfg).events())
                # baseline: validation only
                v = Validator()
                t0 = time.perf_counter()
                for e in events:
                    v.validate(e)
                base_eps = len(events) / (time.perf_counter() - t0)
                store = base.with_database(f"b_{name.replace('-', '_')}_{seed}")
                store.command(f"DROP DATABASE IF EXISTS {store.db}")
                store.init_schema()
                sim = Simulator(sim_cfg)  # same seed: identical stream, fresh truth
                pipe = Pipeline(Config(store=store.config), store, origin=f"bench:{name}")
                t0 = time.perf_counter()
                summary = pipe.run(sim.events())
                eps = summary.events / (time.perf_counter() - t0)
                allowed = {sc.expected_category, *sc.also_acceptable}
                hits = [
                    a
                    for a in summary.alerts
                    if a.direction == sc.expected_direction and a.category in allowed
                ]
                first = min(hits, key=lambda a: a.incident.fired_at) if hits else None
                rows.append(
                    {
                        "scenario": name,
                        "seed": seed,
                        "rate": args.rate,
                        "events": summary.events,
                        "alerts": len(summary.alerts),
                        "expected": f"{sc.expected_direction} {sc.expected_category}"
                        if sc.expected_category
                        else "none",
                        "detected": bool(first) if sc.expected_category else not summary.alerts,
                        "delay_s": round(first.incident.fired_at - sim.onset_ts, 1)
                        if first
                        else None,
                        "onset_error_s": round(first.incident.onset - sim.onset_ts, 1)
                        if first
                        else None,
                        "first_alert": first.title if first else None,
                        "all_alerts": [a.title for a in summary.alerts],
                        "collateral_alerts": sum(
                            1 for a in summary.alerts if a.category not in allowed
                        ),
                        "drift_events": summary.drift_events,
                        "events_per_s": round(eps),
                        "baseline_events_per_s": round(base_eps),
                        "ratio": round(eps / base_eps, 3),
                    }
                )
                store.command(f"DROP DATABASE IF EXISTS {store.db}")
                r = rows[-1]
                if not args.json:
                    print(
                        f"{name:24s} seed {seed}  detected={r['detected']!s:5s} "
                        f"delay={r['delay_s']!s:>6} s  onset_err={r['onset_error_s']!s:>6} s  "
                        f"alerts={r['alerts']}  collateral={r['collateral_alerts']}  "
                        f"{r['events_per_s']:>7,} ev/s (validate-only "
                        f"{r['baseline_events_per_s']:,}"
                        f", ratio {r['ratio']})",
                        flush=True,
                    )
    finally:
        base.close()
        shutil.rmtree(root, ignore_errors=True)
    out = {
        "rate": args.rate,
        "duration_s": args.duration,
        "onset_s": args.onset,
        "rows": rows,
        "events_per_s": round(sum(r["events_per_s"] for r in rows) / len(rows)),
        "baseline_events_per_s": round(sum(r["baseline_events_per_s"] for r in rows) / len(rows)),
    }
    out["ratio"] = round(out["events_per_s"] / out["baseline_events_per_s"], 3)
    name = "scenarios-quick" if args.quick else "scenarios"
    if args.scenario:
        name += "-" + "-".join(sorted(args.scenario))
    dest = Path(__file__).parent / "results" / f"{name}.json"
    dest.write_text(json.dumps(out, indent=2))
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"mean pipeline {out['events_per_s']:,} ev/s vs validate-only "
            f"{out['baseline_events_per_s']:,} ev/s (ratio {out['ratio']}); wrote {dest}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
