"""How honest the online precision/recall is: coverage and error against simulated truth.

The simulator knows every page's true categories, so per run and model version the true
per-category precision and recall are known. Each run goes through the in-process
pipeline into chDB; the online estimate is then read back from the store and compared:

* coverage — how often the 95% interval holds the true value (should be >= ~0.95);
* mean absolute error of the estimate's value vs the naive metric (every labelled
  verdict taken as a sample), the baseline this corrects;
* the share of categories with a value at all (a stratum without audits gives bounds).

    python bench/online_metrics.py [--seeds 3] [--audit-rate 0.01] [--json]

Writes bench/results/online_metrics.{json,txt}.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.config import Config, StoreConfig
from monitor.online_metrics import online_metrics
from monitor.pipeline import Pipeline
from monitor.simulator import SimConfig, Simulator
from monitor.storage import Store

SCENARIOS = ("none", "overblock-after-deploy", "selfharm-underblock", "unblock-doubling")


def _truth_stream(sim, truth):
    for ev in sim.events():
        true = ev.pop("_true", None)
        if true is not None:
            pred, true = set(ev["categories"]), set(true)
            for c in pred | true:
                kind = "tp" if c in pred and c in true else "fp" if c in pred else "fn"
                truth[(ev["model_version"], c)][kind] += 1
        yield ev


def _run(root: Store, scenario: str, seed: int, args) -> list[dict]:
    store = root.with_database(f"b_{scenario.replace('-', '_')}_{seed}")
    store.init_schema()
    try:
        sim = Simulator(SimConfig(scenario=scenario, rate=args.rate, duration_s=args.duration,
                                  onset_s=0, seed=seed, audit_rate=args.audit_rate))  # fmt: skip
        sim.emit_truth = True
        truth: dict = collections.defaultdict(collections.Counter)
        Pipeline(Config(store=store.config), store, origin="bench").run(_truth_stream(sim, truth))
        out = []
        for version in sorted({k[0] for k in truth}):
            for c, e in online_metrics(store, version).items():
                t = truth[(version, c)]
                if t["tp"] + t["fp"] + t["fn"] < 20:
                    continue
                p = t["tp"] / (t["tp"] + t["fp"]) if t["tp"] + t["fp"] else 0.0
                r = t["tp"] / (t["tp"] + t["fn"]) if t["tp"] + t["fn"] else 0.0
                out.append({
                    "scenario": scenario, "seed": seed, "version": version, "category": c,
                    "p": p, "r": r, "p_est": e.precision.value, "r_est": e.recall.value,
                    "p_cover": e.precision.low <= p <= e.precision.high,
                    "r_cover": e.recall.low <= r <= e.recall.high,
                    "p_width": e.precision.high - e.precision.low,
                    "r_width": e.recall.high - e.recall.low,
                    "p_naive": e.naive_precision, "r_naive": e.naive_recall,
                })  # fmt: skip
        return out
    finally:
        store.command(f"DROP DATABASE IF EXISTS {store.db}")


def _mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else float("nan")


def summarise(rows: list[dict]) -> dict:
    by = collections.defaultdict(list)
    for r in rows:
        by[r["scenario"]].append(r)
    by["all"] = rows
    out = {}
    for name, rs in by.items():
        pv = [r for r in rs if r["p_est"] is not None]
        rv = [r for r in rs if r["r_est"] is not None]
        out[name] = {
            "segments": len(rs),
            "p_coverage": _mean(r["p_cover"] for r in rs),
            "r_coverage": _mean(r["r_cover"] for r in rs),
            "p_with_value": len(pv) / len(rs),
            "r_with_value": len(rv) / len(rs),
            "p_mae_estimate": _mean(abs(r["p_est"] - r["p"]) for r in pv),
            "p_mae_naive": _mean(abs(r["p_naive"] - r["p"]) for r in pv),
            "r_mae_estimate": _mean(abs(r["r_est"] - r["r"]) for r in rv),
            "r_mae_naive": _mean(abs(r["r_naive"] - r["r"]) for r in rv),
            "p_width_median": sorted(r["p_width"] for r in rs)[len(rs) // 2],
            "r_width_median": sorted(r["r_width"] for r in rs)[len(rs) // 2],
        }
    return out


def format_table(summary: dict, args) -> str:
    lines = [
        f"online precision/recall vs simulated truth: {args.rate:.0f} verdicts/s x "
        f"{args.duration:.0f} s, audit rate {args.audit_rate}, seeds {args.seeds}",
        f"{'scenario':24s} {'segs':>5s} {'P cov':>6s} {'R cov':>6s} {'P MAE est/naive':>16s} "
        f"{'R MAE est/naive':>16s} {'P w50':>6s} {'R w50':>6s} {'valued':>6s}",
    ]
    for name, s in summary.items():
        lines.append(
            f"{name:24s} {s['segments']:5d} {s['p_coverage']:6.2f} {s['r_coverage']:6.2f} "
            f"{s['p_mae_estimate']:7.3f}/{s['p_mae_naive']:<8.3f} "
            f"{s['r_mae_estimate']:7.3f}/{s['r_mae_naive']:<8.3f} "
            f"{s['p_width_median']:6.3f} {s['r_width_median']:6.3f} {s['r_with_value']:6.2f}"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--duration", type=float, default=240.0)
    ap.add_argument("--audit-rate", type=float, default=0.01)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="fw-bench-online-")
    root = Store.open(StoreConfig(path=tmp, database="bench_root"))
    rows = []
    try:
        for scenario in SCENARIOS:
            for seed in range(1, args.seeds + 1):
                rows += _run(root, scenario, seed, args)
                print(f"  done: {scenario} seed {seed}", file=sys.stderr)
    finally:
        root.close()
        shutil.rmtree(tmp, ignore_errors=True)
    summary = summarise(rows)
    table = format_table(summary, args)
    res = Path(__file__).parent / "results"
    res.mkdir(exist_ok=True)
    (res / "online_metrics.json").write_text(json.dumps({"summary": summary}, indent=1) + "\n")
    (res / "online_metrics.txt").write_text(table + "\n")
    print(json.dumps(summary) if args.json else table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
