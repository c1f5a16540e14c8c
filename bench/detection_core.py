"""Detection-core throughput: decode -> validate -> scrub -> aggregate -> banks -> rules.

Simulated verdicts (20 categories, multi-label, Zipf tenants, three model versions, an
under-blocking incident half-way) are encoded to JSON bytes batch by batch, as they
would arrive from Kafka, and only the core's work on them is timed. In the same run:

- ``per_event``: the path filterwatch had before the batched core (orjson + the
  per-field validator + per-event window aggregation, same banks and rules): the
  before/after of this optimisation;
- ``naive``: a per-event loop that does the detection with river detectors per event
  (ADWIN on each category's block indicator for every category, category x version and
  category x tenant segment; PageHinkley on latency per version): the baseline the
  issue asks for. It is slow, so it runs on a prefix of the stream and its rate is
  per event, comparable with the others.

    python bench/detection_core.py [--quick] [--events N] [--json]

Writes bench/results/detection_core.json. The machine's speed is printed as the time
of a plain Python loop iteration, so figures from different machines can be compared.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.aggregate import WindowAggregator  # noqa: E402
from monitor.config import Config  # noqa: E402
from monitor.core import DetectionCore  # noqa: E402
from monitor.events import Feedback, Verdict  # noqa: E402
from monitor.simulator import SimConfig, Simulator  # noqa: E402
from monitor.taxonomy import CATEGORY_NAMES  # noqa: E402
from monitor.validation import Validator  # noqa: E402

BATCH = 4096


def encoded_batches(n: int, rate: float, tenants: int, seed: int):
    """Yield lists of JSON-encoded events, ``BATCH`` at a time, ``n`` in all."""
    duration = n / rate * 1.02 + 2
    sim = Simulator(
        SimConfig(
            scenario="selfharm-underblock",
            rate=rate,
            duration_s=duration,
            onset_s=duration / 2,
            seed=seed,
            tenants=tenants,
        )
    )
    buf: list[dict] = []
    sent = 0
    for chunk in sim.chunks():
        buf += chunk
        while len(buf) >= BATCH and sent < n:
            take = min(BATCH, n - sent)
            yield [orjson.dumps(e) for e in buf[:take]]
            buf = buf[take:]
            sent += take
        if sent >= n:
            return
    if buf and sent < n:
        yield [orjson.dumps(e) for e in buf[: n - sent]]


def machine_loop_ns() -> float:
    t = time.perf_counter()
    s = 0
    for i in range(2_000_000):
        s += i
    return (time.perf_counter() - t) / 2_000_000 * 1e9


class CoreRun:
    """The batched detection core (what filterwatch runs)."""

    def __init__(self, cfg: Config):
        self.core = DetectionCore(cfg)
        self.windows = self.drift = self.incidents = self.rejected = 0
        self.first_incident: str | None = None

    def feed(self, raws: list[bytes]) -> None:
        self._count(self.core.process(raws))

    def finish(self) -> None:
        self._count(self.core.finish())

    def _count(self, out) -> None:
        self.rejected += len(out.rejected)
        for w in out.windows:
            self.windows += 1
            self.drift += len(w.drift)
            self.incidents += len(w.incidents)
            if w.incidents and self.first_incident is None:
                inc = w.incidents[0]
                self.first_incident = f"{inc.category} {inc.direction} at window {w.window.index}"


class StagesRun:
    """Validation (decode + checks + scrub) and aggregation alone, to split the time."""

    def __init__(self, cfg: Config):
        self.validator = Validator.from_config(cfg)
        self.agg = WindowAggregator(cfg.detect.window_s, cfg.ingest.lateness_windows)
        self.t_validate = self.t_aggregate = 0.0

    def feed(self, raws: list[bytes]) -> None:
        t = time.perf_counter()
        out = self.validator.validate_many(raws)
        t1 = time.perf_counter()
        self.agg.add_verdicts([e for e in out if isinstance(e, Verdict)])
        t2 = time.perf_counter()
        self.t_validate += t1 - t
        self.t_aggregate += t2 - t1


class PerEventRun:
    """The previous path: one event at a time through the same stages."""

    def __init__(self, cfg: Config):
        core = DetectionCore(cfg)
        self.v, self.agg, self.cache = core.validator, core.aggregator, core.cache
        self.bank, self.rules = core.bank, core.rules

    def feed(self, raws: list[bytes]) -> None:
        v, agg, cache, bank, rules = self.v, self.agg, self.cache, self.bank, self.rules
        for raw in raws:
            ev = v.validate(raw)
            if isinstance(ev, Verdict):
                cache.add(ev)
                closed = agg.add_verdict(ev)
            elif isinstance(ev, Feedback):
                j = cache.join(ev)
                closed = agg.add_feedback(ev.ts, j.model_version, j.attributed, ev.action)
            else:
                continue
            for w in closed:
                rules.observe(bank.update(w), w.end, bank.take_recoveries())


class NaiveRun:
    """Per-event river detection on the same segments (the issue's naive baseline)."""

    def __init__(self) -> None:
        from river.drift import ADWIN, PageHinkley

        self.adwin, self.ph = ADWIN, PageHinkley
        self.cats = sorted(CATEGORY_NAMES)
        self.detectors: dict[tuple, object] = {}
        self.detections = 0

    def _det(self, key, kind):
        d = self.detectors.get(key)
        if d is None:
            d = self.detectors[key] = self.adwin() if kind == "rate" else self.ph()
        return d

    def feed(self, raws: list[bytes]) -> None:
        det = self._det
        for raw in raws:
            e = orjson.loads(raw)
            if e.get("schema") != "verdict/1":
                continue
            blocked = e["decision"] == "block"
            predicted = set(e["categories"])
            mv, tenant = e["model_version"], e["tenant_id"]
            for c in self.cats:
                x = 1.0 if blocked and c in predicted else 0.0
                for key in ((c, "*"), (c, mv), (c, tenant)):
                    d = det(key, "rate")
                    d.update(x)
                    self.detections += d.drift_detected
            d = det(("latency", mv), "latency")
            d.update(e["latency_ms"])
            self.detections += d.drift_detected


def timed(fn, raws) -> float:
    t = time.perf_counter()
    fn(raws)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100,000 events (CI size)")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--naive-events", type=int, default=100_000)
    ap.add_argument("--rate", type=float, default=4_000.0, help="simulated events/s")
    ap.add_argument("--tenants", type=int, default=1_000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="results file (default: bench/results)")
    args = ap.parse_args()
    n = 100_000 if args.quick else args.events
    n_naive = min(n, 20_000 if args.quick else args.naive_events)
    gc.set_threshold(200_000, 50, 1000)  # as the CLI does (see monitor/cli.py main)
    cfg = Config()

    loop_ns = machine_loop_ns()
    core, stages, before, naive = CoreRun(cfg), StagesRun(cfg), PerEventRun(cfg), NaiveRun()
    # Interleaved batch by batch, so the machine's speed swings hit every method alike.
    busy = {"core": 0.0, "before": 0.0, "naive": 0.0}
    n_seen = n_naive_seen = 0
    for raws in encoded_batches(n, args.rate, args.tenants, seed=11):
        busy["core"] += timed(core.feed, raws)
        stages.feed(raws)
        busy["before"] += timed(before.feed, raws)
        if n_naive_seen < n_naive:
            busy["naive"] += timed(naive.feed, raws)
            n_naive_seen += len(raws)
        n_seen += len(raws)
    busy["core"] += timed(lambda _: core.finish(), None)
    eps = {
        "core": n_seen / busy["core"],
        "before": n_seen / busy["before"],
        "naive": n_naive_seen / busy["naive"],
    }
    val_us = stages.t_validate / n_seen * 1e6
    agg_us = stages.t_aggregate / n_seen * 1e6
    result = {
        "events": n_seen,
        "simulated_rate": args.rate,
        "tenants": args.tenants,
        "categories": len(CATEGORY_NAMES),
        "batch": BATCH,
        "machine_python_loop_ns": round(loop_ns, 1),
        "events_per_s": round(eps["core"]),
        "baseline": "naive per-event loop with river detectors (ADWIN/PageHinkley)",
        "baseline_events": n_naive_seen,
        "baseline_events_per_s": round(eps["naive"]),
        "ratio": round(eps["core"] / eps["naive"], 1),
        "before_events_per_s": round(eps["before"]),
        "ratio_to_before": round(eps["core"] / eps["before"], 2),
        "us_per_event": round(1e6 / eps["core"], 2),
        "stages_us_per_event": {
            "validate_decode_scrub": round(val_us, 2),
            "aggregate": round(agg_us, 2),
            "cache_bank_rules_rest": round(1e6 / eps["core"] - val_us - agg_us, 2),
        },
        "segments": core.core.bank.segment_count,
        "windows": core.windows,
        "drift_events": core.drift,
        "incidents": core.incidents,
        "first_incident": core.first_incident,
        "rejected": core.rejected,
        "naive_detectors": len(naive.detectors),
        "naive_detections": naive.detections,
    }
    name = "detection_core-quick.json" if args.quick else "detection_core.json"
    out = args.out or ROOT / "bench" / "results" / name
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"machine: {loop_ns:.0f} ns per Python loop iteration")
        print(
            f"detection core : {eps['core']:>10,.0f} events/s ({1e6 / eps['core']:.2f} us/event; "
            f"{result['segments']:,} segments, {core.windows} windows, "
            f"first incident: {core.first_incident})"
        )
        print(f"  validate+decode+scrub {val_us:.2f} us/event, aggregate {agg_us:.2f} us/event")
        print(f"per-event path : {eps['before']:>10,.0f} events/s (before)")
        print(
            f"naive river    : {eps['naive']:>10,.0f} events/s "
            f"({len(naive.detectors):,} detectors, {n_naive_seen:,} events)"
        )
        print(f"ratio to naive: {result['ratio']}x; to the per-event path: "
              f"{result['ratio_to_before']}x")  # fmt: skip
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
