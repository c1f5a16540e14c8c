"""Memory of the detector bank at fleet scale: 60,000 tenant segments and more.

Builds the bank a large district fleet gives: 20 categories x 1,000 tenants, each
(category, tenant) segment with its three rate signals (block, unblock, report) from a
stored profile, which is 60,000 tenant detectors, plus the fleet and per-version
segments that live traffic creates. It then feeds simulated windows through it.

Reports resident memory before and after, the bank's checkpoint size (what goes into
the changelog topic), both per segment, and the cost of one window's update over all
segments. Baseline in the same run: the same bank with tenant segments switched off,
so the per-segment figures are the tenant segments' own.

    python bench/memory.py [--quick] [--tenants N] [--json]

Writes bench/results/memory.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detectors.bank import ALL, BankConfig, DetectorBank  # noqa: E402
from monitor.aggregate import WindowAggregator  # noqa: E402
from monitor.events import Verdict  # noqa: E402
from monitor.simulator import SimConfig, Simulator  # noqa: E402
from monitor.taxonomy import CATEGORY_NAMES  # noqa: E402
from monitor.validation import Validator  # noqa: E402

SIGNALS = ("block_rate", "unblock_rate", "report_rate")


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def tenant_profile(tenants: list[str]) -> list[dict]:
    """A stored profile with every (category, tenant) segment warmed up."""
    rows = []
    for t in tenants:
        for cat in sorted(CATEGORY_NAMES):
            for signal in SIGNALS:
                k, n = (4.0, 900.0) if signal != "unblock_rate" else (1.0, 4.0)
                rows.append({
                    "signal": signal, "category": cat, "model_version": ALL, "tenant_id": t,
                    "change": "up", "detector": "RateCUSUM",
                    "reference": {"k": k, "n": n, "windows": 18},
                })  # fmt: skip
    return rows


def windows(tenants: int, count: int, seed: int):
    """Closed window aggregates of simulated traffic over ``tenants`` districts."""
    rate = 3000.0
    duration = count * 5.0 + 10
    sim = Simulator(SimConfig(scenario="none", rate=rate, duration_s=duration,
                              onset_s=duration / 2, seed=seed, tenants=tenants))  # fmt: skip
    v = Validator()
    agg = WindowAggregator(5.0, 1)
    out = []
    for chunk in sim.chunks():
        vs = [e for e in v.validate_many(chunk) if isinstance(e, Verdict)]
        out += agg.add_verdicts(vs)
        if len(out) >= count:
            break
    return out[:count]


def measure(bank: DetectorBank, wins, profile_rows: list[dict] | None) -> dict:
    gc.collect()
    before = rss_bytes()
    if profile_rows is not None:
        bank.load_references(profile_rows)
    t_update = []
    for w in wins:
        t = time.perf_counter()
        bank.update(w)
        t_update.append(time.perf_counter() - t)
    gc.collect()
    after = rss_bytes()
    state = bank.to_bytes()
    return {
        "segments": bank.segment_count,
        "tenant_segments": sum(
            n for k, n in bank.segment_counts().items() if k.startswith("tenant_")
        ),
        "rss_delta_bytes": after - before,
        "checkpoint_bytes": len(state),
        "update_ms_median": sorted(t_update)[len(t_update) // 2] * 1000,
        "update_ms_last": t_update[-1] * 1000,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 tenants (CI size)")
    ap.add_argument("--tenants", type=int, default=1000)
    ap.add_argument("--windows", type=int, default=24)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="results file (default: bench/results)")
    args = ap.parse_args()
    n_tenants = 100 if args.quick else args.tenants
    tenants = [f"district-{i:04d}" for i in range(n_tenants)]
    wins = windows(n_tenants, args.windows, seed=5)
    rss_start = rss_bytes()
    base = measure(DetectorBank(BankConfig(tenant_segments=False)), wins, None)
    rows = tenant_profile(tenants)
    full = measure(DetectorBank(BankConfig()), wins, rows)
    del rows
    tenant_segments = full["tenant_segments"]
    rss_per = (full["rss_delta_bytes"] - base["rss_delta_bytes"]) / tenant_segments
    ckpt_per = (full["checkpoint_bytes"] - base["checkpoint_bytes"]) / tenant_segments
    result = {
        "tenants": n_tenants,
        "categories": len(CATEGORY_NAMES),
        "tenant_segments": tenant_segments,
        "segments_total": full["segments"],
        "rss_start_bytes": rss_start,
        "rss_end_bytes": rss_bytes(),
        "resident_bytes_per_segment": round(rss_per),
        "checkpoint_bytes_per_segment": round(ckpt_per),
        "window_update_ms": round(full["update_ms_median"], 1),
        "baseline": "same bank without tenant segments",
        "baseline_segments": base["segments"],
        "baseline_window_update_ms": round(base["update_ms_median"], 1),
        "update_us_per_segment": round(full["update_ms_median"] * 1000 / full["segments"], 2),
        "full": full,
        "without_tenants": base,
    }
    out = args.out or ROOT / "bench" / "results" / (
        "memory-quick.json" if args.quick else "memory.json"
    )
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{tenant_segments:,} tenant segments ({full['segments']:,} in all): "
            f"{rss_per:,.0f} B resident and {ckpt_per:,.0f} B checkpointed per segment; "
            f"RSS {rss_start / 2**20:,.0f} -> {result['rss_end_bytes'] / 2**20:,.0f} MiB"
        )
        print(
            f"one window's update: {full['update_ms_median']:.1f} ms over all segments "
            f"({result['update_us_per_segment']} us/segment); without tenant segments "
            f"({base['segments']:,}): {base['update_ms_median']:.1f} ms"
        )
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
