"""Producing events into Kafka (``--to-kafka``) with kafka-python, keyed by request id."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import orjson

from monitor.config import KafkaConfig
from monitor.errors import ConfigError
from streams.topics import FEEDBACK, VERDICTS

__all__ = ["produce"]


def produce(
    k: KafkaConfig,
    events: Iterable[dict | bytes],
    *,
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Send events to the verdicts/feedback topics; returns how many were sent.

    Dicts are routed by their ``schema``; raw bytes (a replayed line) are parsed only to
    find topic and key, and sent as they are, so malformed input reaches the DLQ intact.
    ``rate`` limits events per second of wall time.
    """
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        producer = KafkaProducer(
            bootstrap_servers=k.bootstrap,
            acks="all",
            linger_ms=20,
            batch_size=512 * 1024,
            max_request_size=4 * 1024 * 1024,
            client_id="filterwatch-producer",
        )
    except KafkaError as exc:
        raise ConfigError(
            f"cannot reach Kafka at {k.bootstrap} ({type(exc).__name__}); "
            "start it (scripts/kafka-local start) or set KAFKA_BOOTSTRAP"
        ) from None
    t_verdicts, t_feedback = k.topic(VERDICTS), k.topic(FEEDBACK)
    sent = 0
    t0 = time.perf_counter()
    try:
        for e in events:
            if isinstance(e, dict):
                value, obj = orjson.dumps(e), e
            else:
                value = e
                try:
                    obj = orjson.loads(e)
                except orjson.JSONDecodeError:
                    obj = None
            if not isinstance(obj, dict):
                obj = {}
            topic = t_feedback if obj.get("schema", "").startswith("feedback") else t_verdicts
            rid = obj.get("request_id")
            key = str(rid).encode() if rid is not None else None
            producer.send(topic, key=key, value=value)
            sent += 1
            if progress is not None and sent % 8192 == 0:
                progress(8192)
            if rate and sent % 256 == 0:
                ahead = sent / rate - (time.perf_counter() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        producer.flush()
    finally:
        producer.close()
    if progress is not None:
        progress(sent % 8192)
    return sent
