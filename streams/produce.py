"""Producing events into Kafka (``--to-kafka``) with kafka-python, keyed by request id.

Framing: by default one event per Kafka message. With ``lines_per_message > 1`` events
travel as JSON lines, up to that many per message, with the header ``fw-framing: lines``
(what a classifier fleet's producer does at high rates: the broker and the consumer pay
per message, not per byte). Lines are grouped by the partition their request id hashes
to, exactly as a keyed message would be placed, so a verdict and its feedback still meet
in one partition. Bytes that are not a JSON object with a request id (a malformed line
replayed on purpose) are sent on their own, unframed, so they reach the DLQ as they are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import orjson

from monitor.config import KafkaConfig
from monitor.errors import ConfigError, FilterwatchError
from streams.topics import FEEDBACK, VERDICTS

__all__ = ["FRAMING_HEADER", "LINES", "produce"]

FRAMING_HEADER = "fw-framing"
LINES = b"lines"
_LINGER_S = 0.1  # a partly filled frame is sent after this long


def produce(
    k: KafkaConfig,
    events: Iterable[dict | bytes],
    *,
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
    lines_per_message: int = 1,
) -> int:
    """Send events to the verdicts/feedback topics; returns how many were sent.

    Dicts are routed by their ``schema``; raw bytes (a replayed line) are parsed only to
    find topic and key, and sent as they are, so malformed input reaches the DLQ intact.
    ``rate`` limits events per second of wall time.
    """
    from kafka import KafkaProducer
    from kafka.errors import KafkaError
    from kafka.partitioner.default import murmur2

    if lines_per_message < 1:
        raise ConfigError("--lines-per-message must be >= 1")

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
    # The producer retries through broker outages (idempotent, up to its delivery
    # timeout); what still fails is counted, and the run fails rather than report
    # events as sent that Kafka never took.
    failed: list[BaseException] = []

    def _failed(exc: BaseException) -> None:
        failed.append(exc)

    t0 = time.perf_counter()
    frames: dict[tuple[str, int], list[bytes]] = {}
    started: dict[tuple[str, int], float] = {}
    n_parts: dict[str, int] = {}

    def partition_of(topic: str, key: bytes) -> int:
        n = n_parts.get(topic)
        if n is None:
            n = n_parts[topic] = len(producer.partitions_for(topic))
        return (murmur2(key) & 0x7FFFFFFF) % n

    def send_frame(slot: tuple[str, int]) -> None:
        lines = frames.pop(slot)
        started.pop(slot, None)
        producer.send(slot[0], value=b"\n".join(lines), partition=slot[1],
                      headers=[(FRAMING_HEADER, LINES)]).add_errback(_failed)  # fmt: skip

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
            if lines_per_message > 1 and key is not None and b"\n" not in value:
                slot = (topic, partition_of(topic, key))
                frame = frames.setdefault(slot, [])
                frame.append(value)
                now = time.perf_counter()
                started.setdefault(slot, now)
                if len(frame) >= lines_per_message:
                    send_frame(slot)
                if sent % 1024 == 0:
                    for old in [s for s, t in started.items() if now - t > _LINGER_S]:
                        send_frame(old)
            else:
                producer.send(topic, key=key, value=value).add_errback(_failed)
            sent += 1
            if progress is not None and sent % 8192 == 0:
                progress(8192)
            if rate and sent % 256 == 0:
                ahead = sent / rate - (time.perf_counter() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        for slot in list(frames):
            send_frame(slot)
        producer.flush()
    finally:
        producer.close()
    if failed:
        raise FilterwatchError(
            f"Kafka did not accept {len(failed)} messages ({type(failed[0]).__name__}: "
            f"{failed[0]}) within the producer's 120 s delivery timeout; check the broker"
        )
    if progress is not None:
        progress(sent % 8192)
    return sent
