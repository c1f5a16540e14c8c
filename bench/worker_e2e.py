"""End-to-end throughput of one streaming worker over the real broker.

Pre-fills the verdicts/feedback topics with N simulated events, starts one worker and
times how long it takes until every event is stored (the worker's /health counters).
Baseline in the same run: raw aiokafka consumption of the same topics (getmany, no
decoding beyond bytes): the client's own limit on this machine.

    python bench/worker_e2e.py [--quick] [--events N] [--json]

Needs a broker: KAFKA_BOOTSTRAP, or it starts scripts/kafka-local on port 29192.
Writes bench/results/worker_e2e.json.
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

from tests.streaming.workers import KafkaTestEnv  # noqa: E402


async def raw_consume(bootstrap: str, topics: list[str], n: int) -> float:
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
    try:
        while got < n:
            batch = await c.getmany(timeout_ms=1000, max_records=10_000)
            got += sum(len(v) for v in batch.values())
    finally:
        await c.stop()
    return got / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--events", type=int, default=600_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    n_target = 100_000 if args.quick else args.events
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP")
    started = False
    env_vars = {**os.environ, "KAFKA_PORT": "29192", "KAFKA_CONTROLLER_PORT": "29193"}
    if not bootstrap:
        subprocess.run([str(ROOT / "scripts/kafka-local"), "start"], env=env_vars, check=True)
        bootstrap, started = "127.0.0.1:29192", True
    tmp = Path(tempfile.mkdtemp(prefix="fw-bench-e2e-"))
    env = KafkaTestEnv(bootstrap, tmp, uuid.uuid4().hex[:8])
    try:
        rate = 2000.0
        truth = env.simulate("none", rate=rate, duration=n_target / rate, onset=n_target / rate / 2)
        n = truth["counts"]["verdicts"] + truth["counts"]["feedback"]
        raw_eps = asyncio.run(
            raw_consume(bootstrap, [f"{env.prefix}verdicts", f"{env.prefix}feedback"], n)
        )
        w = env.worker("bench").start()
        w.wait(lambda h: True, timeout=120, what="worker up")
        t0 = time.perf_counter()
        samples = []
        w.wait(
            lambda h: (
                samples.append((time.perf_counter() - t0, h["verdicts"] + h["feedback"], h["lag"]))
                or h["verdicts"] + h["feedback"] >= n
            ),
            timeout=1800,
        )
        eps = n / (time.perf_counter() - t0)
        w.stop()
    finally:
        env.close()
        if started:
            subprocess.run([str(ROOT / "scripts/kafka-local"), "stop", "--wipe"], env=env_vars)
    out = {
        "events": n,
        "partitions": env.partitions,
        "events_per_s": round(eps),
        "baseline_events_per_s": round(raw_eps),
        "ratio": round(eps / raw_eps, 3),
        "lag_curve": [
            (round(t, 1), done, lag) for t, done, lag in samples[:: max(1, len(samples) // 40)]
        ],
        "note": "time from worker start (after group join) until every event is stored",
    }
    dest = ROOT / "bench/results" / ("worker_e2e-quick.json" if args.quick else "worker_e2e.json")
    dest.write_text(json.dumps(out, indent=2))
    print(
        json.dumps(out)
        if args.json
        else f"one worker: {out['events_per_s']:,} events/s end to end over {n:,} events "
        f"({env.partitions} partitions); raw aiokafka {out['baseline_events_per_s']:,} "
        f"events/s; ratio {out['ratio']}; wrote {dest}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
