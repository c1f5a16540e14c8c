"""End-to-end throughput of streaming workers over the real broker.

Pre-fills the verdicts/feedback topics with N simulated events, starts the workers (one
consumer group) and times how long it takes until every event is validated, stored in
ClickHouse (raw + rollups) and aggregated into partials (the workers' /health counters).
Baseline in the same run: raw aiokafka consumption of the same topics (getmany and JSON
decoding of every event, nothing else): the client's own limit on this machine.

Framing: ``--lines-per-message 1`` is one event per Kafka message; ``N > 1`` sends JSON
lines, N events a message (``fw-framing: lines``), which is how a fleet producer at
12,700 events/s would send them. The default run measures both.

    python bench/worker_e2e.py [--quick] [--events N] [--workers 1|2]
                               [--lines-per-message N] [--json]

Needs a broker: KAFKA_BOOTSTRAP, or it starts scripts/kafka-local on port 29192.
Writes bench/results/worker_e2e[-quick][-2workers].json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.produce import FRAMING_HEADER, LINES  # noqa: E402
from tests.streaming.workers import KafkaTestEnv  # noqa: E402


async def raw_consume(bootstrap: str, topics: list[str], n: int) -> float:
    """Events/s of getmany + decoding every event (frames split into lines)."""
    import orjson
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await c.start()
    got, t0 = 0, time.perf_counter()
    loads = orjson.loads
    try:
        while got < n:
            batch = await c.getmany(timeout_ms=1000, max_records=10_000)
            for records in batch.values():
                for r in records:
                    if r.headers and (FRAMING_HEADER, LINES) in r.headers:
                        lines = r.value.split(b"\n")
                        got += len([loads(x) for x in lines])
                    else:
                        loads(r.value)
                        got += 1
    finally:
        await c.stop()
    return got / (time.perf_counter() - t0)


def run(bootstrap: str, n_target: int, workers: int, lines: int, batch_max: int | None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="fw-bench-e2e-"))
    env = KafkaTestEnv(bootstrap, tmp, uuid.uuid4().hex[:8], partitions=4)
    if batch_max:
        env.kafka_overrides["batch_max"] = batch_max
    if os.environ.get("FW_BENCH_WITHIN"):
        env.kafka_overrides["batch_within_s"] = float(os.environ["FW_BENCH_WITHIN"])
    try:
        rate = 2000.0
        duration = n_target / rate
        truth = env.simulate(
            "none", rate=rate, duration=duration, onset=duration / 2, lines_per_message=lines
        )
        n = truth["counts"]["verdicts"] + truth["counts"]["feedback"]
        raw_eps = asyncio.run(
            raw_consume(bootstrap, [f"{env.prefix}verdicts", f"{env.prefix}feedback"], n)
        )
        ws = [env.worker(f"bench{i}").start() for i in range(workers)]
        for w in ws:
            w.wait(lambda h: True, timeout=120, what="worker up")
        t0 = time.perf_counter()
        samples = []
        while True:
            hs = [w.health() or {} for w in ws]
            done = sum(h.get("verdicts", 0) + h.get("feedback", 0) for h in hs)
            samples.append((time.perf_counter() - t0, done, sum(h.get("lag", 0) for h in hs)))
            if done >= n:
                break
            if time.perf_counter() - t0 > 1800:
                raise TimeoutError(f"only {done} of {n} events stored after 30 min")
            time.sleep(0.5)
        elapsed = time.perf_counter() - t0
        per_worker = [h.get("verdicts", 0) + h.get("feedback", 0) for h in hs]
        for w in ws:
            w.stop()
    finally:
        env.close()
    eps = n / elapsed
    # Steady state: from the first stored event to the last (group join and the first
    # fetch excluded), which is what a long-running worker sustains.
    first = next((t for t, done, _ in samples if done > 0), 0.0)
    # too few samples after the first stored event (a quick run) give no steady rate
    steady = n / (elapsed - first) if elapsed - first >= 2.0 else None
    return {
        "events": n,
        "workers": workers,
        "lines_per_message": lines,
        "partitions": env.partitions,
        "events_per_s": round(eps),
        "events_per_s_per_worker": round(eps / workers),
        "steady_events_per_s": round(steady) if steady else None,
        "startup_s": round(first, 1),
        "events_per_worker": per_worker,
        "baseline_events_per_s": round(raw_eps),
        "ratio": round(eps / raw_eps, 3),
        "lag_curve": [
            (round(t, 1), done, lag) for t, done, lag in samples[:: max(1, len(samples) // 40)]
        ],
        "note": "time from worker start (after group join) until every event is stored",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100k events, framed only")
    ap.add_argument("--events", type=int, default=600_000)
    ap.add_argument("--workers", type=int, default=1, choices=(1, 2))
    ap.add_argument(
        "--lines-per-message",
        type=int,
        default=None,
        help="only this framing (default: 1 on a quarter of the events, then 100)",
    )
    ap.add_argument("--batch-max", type=int, default=None, help="kafka.batch_max (messages)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    n_target = 100_000 if args.quick else args.events
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP")
    started = False
    env_vars = {**os.environ, "KAFKA_PORT": "29192", "KAFKA_CONTROLLER_PORT": "29193"}
    if not bootstrap:
        subprocess.run([str(ROOT / "scripts/kafka-local"), "start"], env=env_vars, check=True)
        bootstrap, started = "127.0.0.1:29192", True
    try:
        if args.lines_per_message is not None:
            plans = [(n_target, args.lines_per_message)]
        elif args.quick:
            plans = [(n_target, 100)]
        else:
            plans = [(n_target // 4, 1), (n_target, 100)]
        runs = [run(bootstrap, n, args.workers, lines, args.batch_max) for n, lines in plans]
    finally:
        if started:
            subprocess.run([str(ROOT / "scripts/kafka-local"), "stop", "--wipe"], env=env_vars)
    out = {**runs[-1], "runs": runs}
    name = "worker_e2e" + ("-quick" if args.quick else "")
    name += "-2workers" if args.workers == 2 else ""
    dest = ROOT / "bench/results" / f"{name}.json"
    dest.write_text(json.dumps(out, indent=2) + "\n")
    if args.json:
        print(json.dumps(out))
    else:
        for r in runs:
            print(
                f"{r['workers']} worker(s), {r['lines_per_message']} event(s)/message: "
                f"{r['events_per_s']:,} events/s end to end over {r['events']:,} events "
                f"({r['events_per_s_per_worker']:,}/worker; steady state "
                f"{r['steady_events_per_s'] or 0:,}/s after {r['startup_s']} s of group join); "
                f"raw aiokafka "
                f"{r['baseline_events_per_s']:,} events/s; ratio {r['ratio']}"
            )
        print(f"wrote {dest.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
