"""How well label-free estimates track the truth, before and after injected shifts.

A calibration is fitted on a uniformly labelled sample of clean simulated traffic (the
offline evaluation set's role). Label-free estimates of per-category precision, recall
and FNR are then computed on *other* traffic whose labels are held back, clean and under
each scenario from its start, and compared with the truth the simulator knows:

* absolute error of precision and recall, per category and on average;
* coverage: how often the 95% interval holds the true value;
* which calibration-drift flags fire (they should fire where the estimate goes wrong).

Baseline in the same run: the *naive* label-free reading, which takes the predicted
share as precision 1 and recall 1 (what a dashboard of block rates implies).

    python bench/label_free.py [--quick] [--rate 2000] [--duration 300] [--labels 20000]

Writes bench/results/label_free.{json,txt}.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.calibration import fit_calibration
from monitor.label_free import (
    estimate_all,
    histogram_from_scores,
    reference_from_windows,
    under_blocking,
    worst_fnr,
)
from monitor.simulator import SimConfig
from monitor.taxonomy import CATEGORIES, SeverityClass
from monitor.truthframe import NAMES, simulate_frame

SCENARIOS = (
    "none",
    "selfharm-underblock",
    "score-shift",
    "category-mix-shift",
    "overblock-after-deploy",
)
WORLD = 11
CIPA = [c.name for c in CATEGORIES if c.severity_class is SeverityClass.CIPA]


WINDOW = 60.0  # seconds: the reference and the under-blocking checks use windows this long


def _windows(frame, start: float, count: int) -> list[np.ndarray]:
    return [
        np.nonzero((frame.ts >= start + k * WINDOW) & (frame.ts < start + (k + 1) * WINDOW))[0]
        for k in range(count)
    ]


def _hists(frame, rows=None) -> dict:
    rows = np.arange(len(frame)) if rows is None else rows
    return {
        c: histogram_from_scores(frame.scores[rows, j], frame.predicted[rows, j])
        for j, c in enumerate(NAMES)
    }


def reference(cal, frame, start: float, duration: float) -> dict:
    """Per category: reference prevalence and FNR, label-free, from clean windows."""
    wins = _windows(frame, start, int(duration // WINDOW))
    return reference_from_windows([estimate_all(cal.categories, _hists(frame, w)) for w in wins])


def window_findings(cal, frame, ref, start: float, duration: float) -> tuple[int, list[str]]:
    """(windows checked, CIPA categories found under-blocking per window)."""
    wins = _windows(frame, start, int(duration // WINDOW))
    found = []
    for w in wins:
        est = estimate_all(cal.categories, _hists(frame, w), ref)
        found += [c for c in CIPA if c in est and under_blocking(est[c], ref[c][1])]
    return len(wins), found


def evaluate(cal, frame, ref: dict, min_true: int = 30) -> list[dict]:
    out = []
    ests = estimate_all(cal.categories, _hists(frame), ref)
    for j, c in enumerate(NAMES):
        k = cal.categories.get(c)
        if k is None or frame.truth[:, j].sum() < min_true:
            continue
        e = ests[c]
        tp_, tr_ = frame.true_metrics(j)
        worst = worst_fnr(e)
        out.append(
            {
                "category": c,
                "true_precision": tp_,
                "true_recall": tr_,
                "est_precision": e.precision.value,
                "est_recall": e.recall.value,
                "precision_ci": [e.precision.low, e.precision.high],
                "recall_ci": [e.recall.low, e.recall.high],
                "precision_covered": bool(e.precision.low <= tp_ <= e.precision.high),
                "recall_covered": bool(e.recall.low <= tr_ <= e.recall.high),
                "true_fnr": 1 - tr_,
                "fnr_prevalence": e.fnr_prevalence.value,
                "worst_fnr": [worst.value, worst.low, worst.high],
                "under_blocking": bool(c in CIPA and under_blocking(e, ref[c][1])),
                "flags": e.flags,
                "psi": e.psi,
                "uncovered": e.uncovered,
                "method": e.method,
            }
        )
    return out


def summarise(rows: list[dict]) -> dict:
    ep = [abs(r["est_precision"] - r["true_precision"]) for r in rows]
    er = [abs(r["est_recall"] - r["true_recall"]) for r in rows]
    naive_p = [abs(1 - r["true_precision"]) for r in rows]
    naive_r = [abs(1 - r["true_recall"]) for r in rows]
    return {
        "categories": len(rows),
        "mae_precision": float(np.mean(ep)),
        "max_err_precision": float(np.max(ep)),
        "mae_recall": float(np.mean(er)),
        "max_err_recall": float(np.max(er)),
        "naive_mae_precision": float(np.mean(naive_p)),
        "naive_mae_recall": float(np.mean(naive_r)),
        "coverage_precision": float(np.mean([r["precision_covered"] for r in rows])),
        "coverage_recall": float(np.mean([r["recall_covered"] for r in rows])),
        "flagged": [r["category"] for r in rows if r["flags"]],
        "under_blocking": [r["category"] for r in rows if r["under_blocking"]],
    }


def run(
    rate: float,
    duration: float,
    labels: int,
    seed: int = 1,
    fa_rate: float = 1000.0,
    fa_duration: float = 1800.0,
) -> dict:
    base = simulate_frame(
        SimConfig(
            "none",
            rate=rate,
            duration_s=duration,
            onset_s=0,
            seed=seed,
            world_seed=WORLD,
            start=1.7e9,
        )
    )
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(base), size=min(labels, len(base)), replace=False)
    cal = fit_calibration("sim", NAMES, base.scores[idx], base.truth[idx], seed=seed)
    ref = reference(cal, base, 1.7e9, duration)
    results = {
        "labels": len(idx),
        "methods": {c: k.method for c, k in cal.categories.items()},
        "scenarios": {},
    }
    for i, scen in enumerate(SCENARIOS):
        frame = simulate_frame(
            SimConfig(
                scen,
                rate=rate,
                duration_s=duration,
                onset_s=0,
                seed=seed + 100 + i,
                world_seed=WORLD,
                start=1.7e9 + 86400,
            )
        )
        # The whole run is tested against a reference of whole runs' length: the base run.
        ref_run = reference_from_windows([estimate_all(cal.categories, _hists(base))])
        rows = evaluate(cal, frame, ref_run)
        checked, found = window_findings(cal, frame, ref, 1.7e9 + 86400, duration)
        summary = summarise(rows)
        summary["windows_checked"] = checked
        summary["window_findings"] = dict(collections.Counter(found))
        results["scenarios"][scen] = {"summary": summary, "categories": rows}
    # False alarms: a long clean run (another seed, same world), window by window.
    fa = simulate_frame(
        SimConfig(
            "none",
            rate=fa_rate,
            duration_s=fa_duration,
            onset_s=0,
            seed=seed + 999,
            world_seed=WORLD,
            start=1.7e9 + 2 * 86400,
        ),
        keep_verdicts=False,
    )
    checked, found = window_findings(cal, fa, ref, 1.7e9 + 2 * 86400, fa_duration)
    results["false_alarms"] = {
        "windows": checked,
        "category_windows": checked * len(CIPA),
        "findings": dict(collections.Counter(found)),
        "rate": fa_rate,
        "duration_s": fa_duration,
    }
    return results


def render(res: dict) -> str:
    lines = [
        f"calibration labels: {res['labels']:,}; methods: "
        + ", ".join(f"{c}={m}" for c, m in res["methods"].items()),
        "",
        f"{'scenario':<24}{'cats':>5}{'MAE P':>8}{'max':>7}{'MAE R':>8}{'max':>7}"
        f"{'naive P':>9}{'naive R':>9}{'cov P':>7}{'cov R':>7}  flagged | under-blocking",
    ]
    for scen, r in res["scenarios"].items():
        s = r["summary"]
        lines.append(
            f"{scen:<24}{s['categories']:>5}{s['mae_precision']:>8.3f}{s['max_err_precision']:>7.3f}"
            f"{s['mae_recall']:>8.3f}{s['max_err_recall']:>7.3f}{s['naive_mae_precision']:>9.3f}"
            f"{s['naive_mae_recall']:>9.3f}{s['coverage_precision']:>7.2f}"
            f"{s['coverage_recall']:>7.2f}  {', '.join(s['flagged']) or '-'} | "
            f"{', '.join(s['under_blocking']) or '-'}"
        )
    lines.append("")
    lines.append(
        f"Per {WINDOW:.0f}-s window (reference: the clean run's windows), CIPA "
        "categories found under-blocking:"
    )
    for scen, r in res["scenarios"].items():
        s = r["summary"]
        lines.append(
            f"  {scen:<24} {s['windows_checked']} windows: {s['window_findings'] or 'none'}"
        )
    fa = res["false_alarms"]
    lines.append(
        f"  clean run ({fa['rate']:.0f}/s, {fa['duration_s']:.0f} s): "
        f"{fa['windows']} windows x {len(CIPA)} CIPA categories = "
        f"{fa['category_windows']} checks, findings: {fa['findings'] or 'none'}"
    )
    lines.append("")
    for scen, r in res["scenarios"].items():
        lines.append(
            f"[{scen}] category: true P / est P [95%] | true R / est R [95%] | "
            "true FNR / worst label-free FNR [95%] flags"
        )
        for c in r["categories"]:
            lines.append(
                f"  {c['category']:<16}{c['true_precision']:.3f} / {c['est_precision']:.3f} "
                f"[{c['precision_ci'][0]:.3f}, {c['precision_ci'][1]:.3f}] | "
                f"{c['true_recall']:.3f} / {c['est_recall']:.3f} "
                f"[{c['recall_ci'][0]:.3f}, {c['recall_ci'][1]:.3f}] | {c['true_fnr']:.3f} / "
                f"{c['worst_fnr'][0]:.3f} [{c['worst_fnr'][1]:.3f}, {c['worst_fnr'][2]:.3f}] "
                f"{','.join(c['flags'])}{' UNDER-BLOCKING' if c['under_blocking'] else ''}"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None, help="Write the JSON here (default with --quick: none).")
    ap.add_argument("--rate", type=float, default=2000.0)
    ap.add_argument("--duration", type=float, default=300.0)
    ap.add_argument("--labels", type=int, default=20000)
    ap.add_argument(
        "--fa-duration",
        type=float,
        default=1800.0,
        help="Seconds of clean traffic (1,000/s) checked for false findings.",
    )
    args = ap.parse_args()
    if args.quick:
        args.rate, args.duration, args.labels = 500.0, 120.0, 8000
        args.fa_duration = 300.0
    res = run(args.rate, args.duration, args.labels, fa_duration=args.fa_duration)
    text = render(res)
    print(text)
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1, default=str))
    elif not args.quick:
        out = Path(__file__).parent / "results"
        (out / "label_free.json").write_text(json.dumps(res, indent=1, default=str))
        (out / "label_free.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
