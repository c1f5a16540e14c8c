"""Streaming against a real Kafka broker: Faust workers in their own processes.

Each worker holds its own embedded ClickHouse store (chDB allows one process per
store); totals across workers are the sum of their stores.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

import orjson
import pytest

from monitor.simulator import SimConfig, Simulator
from tests.browser import dom
from tests.integration.receiver import Receiver
from tests.streaming.workers import FW, _env, free_port, settled, totals

pytestmark = [pytest.mark.kafka, pytest.mark.integration]

SECRET, TOKEN = "pw-5e4d3c2b1a", "tok-0f9e8d7c"


def test_incident_end_to_end_alert_delivered_after_notifier_outage(kafka_env):
    """The incident is detected while the notification endpoint is down: the alert waits
    in the outbox and reaches the endpoint exactly once when it is back."""
    port = free_port()  # nothing listens here until the receiver starts
    w = kafka_env.worker("a")
    w.config = kafka_env.write_config(
        "a",
        w.store,
        w.port,
        notify=[{"url": f"json://fw:{SECRET}@127.0.0.1:{port}/hook/{TOKEN}"}],
        alerts={"retry_backoff_s": 1.0, "retry_backoff_max_s": 4.0, "max_attempts": 1000},
    )
    # Cold start at 800/s: the self-harm drop is detected ~100 s after the onset, so
    # the stream runs on past that (a detection in the last windows waits for idle
    # partitions to close them, which is a timing race, not what this test is about).
    truth = kafka_env.simulate("selfharm-underblock", rate=800, duration=280, onset=100)
    w.start()
    n = truth["counts"]["verdicts"] + truth["counts"]["feedback"]
    w.wait(lambda h: h["verdicts"] + h["feedback"] >= n, what="all events ingested")
    w.wait(lambda h: 'status="retry"' in w.metrics(), what="delivery failing while down")
    time.sleep(5)  # a few more failed attempts
    with Receiver(port) as rx:
        w.wait(lambda h: 'status="sent"' in w.metrics(), what="an alert sent")
        settled(w)
        # the worker's live status page: the incident firing, the banks' own state
        base = f"http://127.0.0.1:{w.port}"
        status = json.loads(urllib.request.urlopen(f"{base}/status.json", timeout=10).read())
        assert status["source"] == "worker" and "lag" in status["ingest"]
        assert any(a["category"] == "self_harm" for a in status["firing"])
        cats = {c["category"]: c for c in status["categories"]}
        assert cats["self_harm"]["state"] == "firing" and cats["self_harm"]["segments"] > 0
        html = dom(f"{base}/status?refresh=0")
        assert "closest to firing" in html and '<td class="firing">firing</td>' in html
        w.stop()
    got = totals(w)
    assert got["rollup_requests"] == got["verdicts"] == truth["counts"]["verdicts"]
    assert got["feedback"] == truth["counts"]["feedback"]
    alerts = w.sql(
        "SELECT category, direction, severity, delivery_status FROM filterwatch.alerts FINAL"
    )
    assert {
        "category": "self_harm",
        "direction": "under-blocking",
        "severity": "critical",
        "delivery_status": "sent",
    } in alerts
    assert all(a["category"] == "self_harm" for a in alerts)
    assert any("under-blocking" in m["title"] for m in rx.messages)
    # exactly once: one message per notification the outbox recorded as sent
    sent = w.sql(
        "SELECT n.title AS title, d.attempts AS attempts FROM (SELECT notification_id, "
        "argMax(status, version) AS s, argMax(attempts, version) AS attempts "
        "FROM filterwatch.deliveries GROUP BY notification_id, target) AS d "
        "INNER JOIN (SELECT * FROM filterwatch.notifications FINAL) AS n USING notification_id "
        "WHERE d.s = 'sent'"
    )
    assert sorted(m["title"] for m in rx.messages) == sorted(r["title"] for r in sent)
    assert any(int(r["attempts"]) > 1 for r in sent)  # it did fail first
    assert rx.paths and all(p == f"/hook/{TOKEN}" for p in rx.paths)
    # the worker's own log: no notification credentials, no student data
    log = w.log.read_text(errors="replace")
    for needle in (SECRET, TOKEN, "student_id=", "@school.org"):
        assert needle not in log, needle


def test_clean_stream_raises_nothing(kafka_env):
    # framed: 50 events a Kafka message, as a fleet producer sends them at high rates
    truth = kafka_env.simulate(
        "none", rate=800, duration=200, onset=100, seed=8, lines_per_message=50
    )
    w = kafka_env.worker("a").start()
    n = truth["counts"]["verdicts"] + truth["counts"]["feedback"]
    w.wait(lambda h: h["verdicts"] + h["feedback"] >= n, what="all events ingested")
    h = settled(w)
    assert h["windows"] > 21 * 30  # detection really ran: 21 keys x most of 40 windows
    w.stop()
    assert totals(w)["alerts"] == 0
    assert w.sql("SELECT count() AS n FROM filterwatch.drift_events")[0]["n"] == 0


def test_bad_input_lands_in_dlq_and_good_events_flow(kafka_env):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    cfg = kafka_env.producer_config()
    subprocess.run(
        [*FW, "--config", str(cfg), "topics", "create"],
        check=True,
        env=_env(),
        capture_output=True,
        timeout=60,
    )
    good = [
        e
        for e in Simulator(
            SimConfig(scenario="none", rate=200, duration_s=5, onset_s=2, seed=3)
        ).events()
    ]
    ok = orjson.loads(orjson.dumps(good[0]))
    bad = {
        "bad_json": b'{"schema": "verdict/1", "request_id": ',
        "unknown_schema_version": orjson.dumps({**ok, "schema": "verdict/9"}),
        "score_out_of_range": orjson.dumps({**ok, "scores": {"adult": 2.0}, "categories": []}),
        "missing_field": orjson.dumps({k: v for k, v in ok.items() if k != "tenant_id"}),
        "oversize": orjson.dumps({**ok, "url": "https://a.org/" + "x" * 9000}),
        "not_an_object": b"[1, 2, 3]",
    }
    p = KafkaProducer(bootstrap_servers=kafka_env.bootstrap)
    topic = f"{kafka_env.prefix}verdicts"
    half = len(good) // 2
    for e in good[:half]:
        p.send(
            f"{kafka_env.prefix}{'feedback' if e['schema'].startswith('feedback') else 'verdicts'}",
            key=e["request_id"].encode(),
            value=orjson.dumps(e),
        )
    for raw in bad.values():
        p.send(topic, key=b"bad", value=raw)
    # a framed message (JSON lines): two good verdicts around two bad lines
    extra = [e for e in good if e["schema"] == "verdict/1"][:2]
    framed_bad = {"bad_json": b"{not json", "missing_field": bad["missing_field"]}
    frame = [
        orjson.dumps({**extra[0], "request_id": "framed-1"}),
        framed_bad["bad_json"],
        framed_bad["missing_field"],
        orjson.dumps({**extra[1], "request_id": "framed-2"}),
    ]
    p.send(topic, key=b"frame", value=b"\n".join(frame), headers=[("fw-framing", b"lines")])
    for e in good[half:]:
        p.send(
            f"{kafka_env.prefix}{'feedback' if e['schema'].startswith('feedback') else 'verdicts'}",
            key=e["request_id"].encode(),
            value=orjson.dumps(e),
        )
    p.flush()
    p.close()
    w = kafka_env.worker("a").start()
    w.wait(
        lambda h: h["verdicts"] + h["feedback"] >= len(good) + 2 and h["rejected"] >= len(bad) + 2,
        what="good events stored and bad ones refused",
    )
    metrics = w.metrics()
    w.stop()
    for reason in bad:
        n = 1 + (reason in framed_bad)
        assert f'filterwatch_dlq_total{{reason="{reason}"}} {n}' in metrics
    c = KafkaConsumer(
        bootstrap_servers=kafka_env.bootstrap, enable_auto_commit=False, consumer_timeout_ms=5000
    )
    tps = [TopicPartition(f"{kafka_env.prefix}dlq", i) for i in range(kafka_env.partitions)]
    c.assign(tps)
    c.seek_to_beginning()
    dead = list(c)
    c.close()
    lines = [m for m in dead if dict(m.headers)["fw-source-line"] != b"0"]
    assert sorted((int(dict(m.headers)["fw-source-line"]), m.value) for m in lines) == [
        (1, framed_bad["bad_json"]), (2, framed_bad["missing_field"])
    ]  # fmt: skip
    dead = [m for m in dead if dict(m.headers)["fw-source-line"] == b"0"]
    by_reason = {dict(m.headers)["fw-reason"].decode(): m for m in dead}
    assert set(by_reason) == set(bad)
    for reason, raw in bad.items():
        m = by_reason[reason]
        assert m.value == raw  # original bytes, untouched
        h = dict(m.headers)
        assert h["fw-source-topic"].decode() == topic
        assert int(h["fw-source-offset"]) >= 0
    assert totals(w)["verdicts"] == sum(1 for e in good if e["schema"] == "verdict/1") + 2
    framed = w.sql("SELECT request_id FROM filterwatch.verdicts WHERE request_id LIKE 'framed-%'")
    assert sorted(r["request_id"] for r in framed) == ["framed-1", "framed-2"]


def test_eval_set_replayed_into_kafka_lands_exactly(kafka_env):
    """``replay EVAL_FILE --to-kafka``: every page and label reaches the worker's store."""
    from pathlib import Path

    from monitor.evalreplay import EvalReplay
    from monitor.evalset import read_evalset

    sample = Path(__file__).resolve().parents[2] / "docs" / "sample" / "eval_sample.jsonl.gz"
    expected = EvalReplay(read_evalset(sample)).expected
    subprocess.run(
        [*FW, "--config", str(kafka_env.producer_config()), "replay", str(sample),
         "--to-kafka", "--rate", "4000", "--quiet"],
        check=True, env=_env(), capture_output=True, timeout=300,
    )  # fmt: skip
    w = kafka_env.worker("a").start()
    n = expected["verdicts"] + expected["labels"]
    w.wait(lambda h: h["verdicts"] + h["feedback"] >= n, what="all pages and labels ingested")
    settled(w)
    w.stop()
    got = totals(w)
    assert got["rollup_requests"] == got["verdicts"] == expected["verdicts"]
    assert got["feedback"] == expected["labels"]
    (row,) = w.sql(
        "SELECT sum(blocked) AS blocked, (SELECT count() FROM filterwatch.dead_letters) AS dead "
        "FROM filterwatch.traffic_1m"
    )
    assert int(row["blocked"]) == expected["blocked"] and int(row["dead"]) == 0
    predicted = w.sql(
        "SELECT category, sum(predicted) AS n FROM filterwatch.category_1m GROUP BY category "
        "HAVING n > 0"
    )
    assert {r["category"]: int(r["n"]) for r in predicted} == expected["predicted"]
