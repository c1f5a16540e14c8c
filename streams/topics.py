"""Topic names and their creation (kafka-python's admin client), one place for both."""

from __future__ import annotations

from monitor.config import KafkaConfig
from monitor.errors import ConfigError

__all__ = ["INPUT_TOPICS", "TOPICS", "create_topics", "topic_names"]

VERDICTS = "verdicts"
FEEDBACK = "feedback"
AGG = "agg"
DRIFT_EVENTS = "drift-events"
ALERTS = "alerts"
DLQ = "dlq"
TOPICS = (VERDICTS, FEEDBACK, AGG, DRIFT_EVENTS, ALERTS, DLQ)
INPUT_TOPICS = (VERDICTS, FEEDBACK)


def topic_names(k: KafkaConfig) -> dict[str, str]:
    return {t: k.topic(t) for t in TOPICS}


def create_topics(k: KafkaConfig) -> list[str]:
    """Create every topic with its configured partition count; returns those created.

    verdicts and feedback share a partition count and are keyed by request id, so a
    verdict and its feedback land on the same partition number (the join is local).
    """
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    parts = {VERDICTS: k.partitions, FEEDBACK: k.partitions, DLQ: k.partitions}
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=k.bootstrap, client_id="filterwatch-admin", request_timeout_ms=15000
        )
    except KafkaError as exc:
        raise ConfigError(
            f"cannot reach Kafka at {k.bootstrap} ({type(exc).__name__}); "
            "start it (scripts/kafka-local start) or set KAFKA_BOOTSTRAP"
        ) from None
    created = []
    try:
        existing = set(admin.list_topics())
        for t, name in topic_names(k).items():
            if name in existing:
                continue
            try:
                admin.create_topics([NewTopic(name, parts.get(t, k.agg_partitions), k.replication)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
    return created
