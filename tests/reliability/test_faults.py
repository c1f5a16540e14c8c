"""Fault scenarios with exact accounting: a known stream, a real fault, and at the end
ClickHouse totals, DLQ counts and alerts checked against the stream's ground truth.

Each worker is a real ``filterwatch worker`` process on the real broker with its own
embedded ClickHouse store. ``FW_RELIABILITY_FULL=1`` runs the outages at full length.
"""

from __future__ import annotations

import time

import pytest

from monitor.config import KafkaConfig
from tests.reliability.faults import outage_s, unwritable
from tests.streaming.workers import settled, totals

pytestmark = [pytest.mark.kafka, pytest.mark.integration]


def exact(got: dict, truth: dict, alerts: int = 0) -> None:
    """0 events lost, 0 double-counted (raw rows and rollups), no alert beyond ``alerts``."""
    c = truth["counts"]
    assert got["verdicts"] == c["verdicts"], ("raw verdicts", got, c)
    assert got["rollup_requests"] == c["verdicts"], ("rollup requests", got, c)
    assert got["feedback"] == c["feedback"], ("feedback", got, c)
    assert got["alerts"] == alerts, ("alerts", got)


def test_sigkill_mid_stream_then_resume_exactly(kafka_env):
    """SIGKILL while events are arriving, then restart: the ledger skips what was stored,
    the detector state comes back from its changelog, no alert from a re-warm-up."""
    truth, producer = kafka_env.simulate(
        "none", rate=800, duration=200, onset=100, seed=10, send_rate=3000
    )
    w = kafka_env.worker("a").start()
    w.wait(lambda h: h["windows"] >= 21 * 20, what="warm detectors")
    w.kill()  # SIGKILL while events are still arriving
    assert producer.poll() is None, "the stream ended before the crash; slow the producer"
    w.start()
    assert producer.wait(timeout=300) == 0
    h = settled(w)
    assert h["restored"] > 0  # detector state came back from the changelog table
    w.stop()
    got = totals(w)
    assert got["verdicts"] == truth["counts"]["verdicts"]
    assert got["rollup_requests"] == truth["counts"]["verdicts"]
    assert got["feedback"] == truth["counts"]["feedback"]
    assert got["alerts"] == 0  # no re-warm-up, no spurious alert


def test_store_unwritable_pauses_then_catches_up_exactly(kafka_env):
    """The store cannot be written for a while (60 s at full length): the worker pauses
    consumption, keeps its batch, and catches up when it can write again."""
    truth, producer = kafka_env.simulate(
        "none", rate=800, duration=100, onset=50, seed=11, send_rate=3000
    )
    w = kafka_env.worker("a").start()
    w.wait(lambda h: h["verdicts"] > 20_000, what="ingest under way")
    with unwritable(w.store):
        down = w.wait(lambda h: h["status"] == "store-unavailable", timeout=60, what="outage seen")
        t_end = time.time() + outage_s(60)
        while time.time() < t_end:
            h = w.wait(lambda h: True)
            # nothing is counted as stored while nothing can be stored
            assert h["verdicts"] + h["feedback"] <= down["verdicts"] + down["feedback"] + 10_000
            time.sleep(1)
        during = w.wait(lambda h: True)
    assert during["store_errors"] > 0 and during["status"] == "store-unavailable"
    assert during["verdicts"] + during["feedback"] == down["verdicts"] + down["feedback"]
    back = time.time()
    w.wait(lambda h: h["status"] == "ok", timeout=120, what="store back")
    assert producer.wait(timeout=300) == 0
    h = settled(w)
    print(
        f"store outage {outage_s(60):.0f} s: {during['store_errors']} failed writes, lag "
        f"{during['lag']} messages at its end, settled {time.time() - back:.0f} s after"
    )
    metrics = w.metrics()
    w.stop()
    exact(totals(w), truth)
    assert "filterwatch_store_available 1" in metrics


def test_broker_stopped_then_restarted_exactly(kafka_env, kafka_broker):
    """The broker goes away for a while (30 s at full length) in mid-stream: producer and
    worker ride it out; nothing is lost or counted twice."""
    if kafka_broker is None:
        pytest.fail("KAFKA_BOOTSTRAP names an outside broker; this scenario stops its own")
    truth, producer = kafka_env.simulate(
        "none", rate=800, duration=100, onset=50, seed=12, send_rate=3000
    )
    w = kafka_env.worker("a").start()
    w.wait(lambda h: h["verdicts"] > 20_000, what="ingest under way")
    kafka_broker.stop()
    try:
        time.sleep(outage_s(30))
        assert w.proc.poll() is None, "the worker exited while the broker was down"
    finally:
        kafka_broker.start()
    back = time.time()
    assert producer.wait(timeout=400) == 0
    h = settled(w, timeout=400)
    assert h["status"] == "ok"
    print(f"broker outage {outage_s(30):.0f} s: settled {time.time() - back:.0f} s after restart")
    w.stop()
    exact(totals(w), truth)


def _positions(worker) -> list[tuple[str, int]]:
    rows = worker.sql("SELECT src, src_offset FROM filterwatch.verdicts")
    return [(r["src"], int(r["src_offset"])) for r in rows]


def test_two_workers_one_killed_rebalance_loses_nothing(kafka_env):
    """Two workers in one group; one is SIGKILLed mid-stream and its partitions move to
    the other, then it comes back and the group rebalances again."""
    a, b = kafka_env.worker("a").start(), kafka_env.worker("b").start()
    for w in (a, b):
        w.wait(lambda h: h is not None, what="worker up")
    time.sleep(12)  # let the group settle on two members before traffic arrives
    truth, producer = kafka_env.simulate(
        "none", rate=800, duration=100, onset=50, seed=13, send_rate=3000
    )
    b.wait(lambda h: h["verdicts"] > 10_000, what="b has work")
    assert a.health()["verdicts"] > 0  # the group really split the partitions
    b.kill()
    a.wait(lambda h: h["verdicts"] > 40_000, timeout=240, what="a took over b's partitions")
    b.start()
    assert producer.wait(timeout=300) == 0
    for w in (a, b):
        settled(w, timeout=300)
    a.stop()
    b.stop()
    pa, pb = _positions(a), _positions(b)
    # within each store nothing is counted twice, raw rows and rollups alike
    for w, pos in ((a, pa), (b, pb)):
        assert len(pos) == len(set(pos)), f"worker {w.name} stored an offset twice"
        got = totals(w)
        assert got["rollup_requests"] == got["verdicts"] == len(pos)
        assert got["alerts"] == 0
    # nothing lost: every verdict the stream carried is in one store or the other
    union = set(pa) | set(pb)
    assert len(union) == truth["counts"]["verdicts"]
    feedback = totals(a)["feedback"] + totals(b)["feedback"]
    assert feedback >= truth["counts"]["feedback"]
    # Stored by one worker but not yet committed when its partitions moved, then stored
    # again by the next owner from the committed offset: per-worker embedded stores cannot
    # see each other's ledger (a shared ClickHouse drops these by the ledger and insert
    # tokens). Each of the two moves (b killed, b back) can catch the batch whose commit
    # is in flight and the one being inserted beside it: at most two batches a move.
    # Measured: 0 and 0 (by hand), 1,655 (by hand), 12,248 and 16,956 (clean-clone CI).
    overlap = len(set(pa) & set(pb))
    print(f"rebalance overlap between the two embedded stores: {overlap} verdicts")
    assert overlap <= 4 * KafkaConfig().batch_max
