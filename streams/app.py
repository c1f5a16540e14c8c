"""The Faust app, built from filterwatch's config (the app module only builds the App)."""

from __future__ import annotations

import faust

from monitor.config import Config

__all__ = ["create_app"]


def create_app(config: Config) -> faust.App:
    k = config.kafka
    return faust.App(
        k.app_id,
        broker=[f"kafka://{hp.strip()}" for hp in k.bootstrap.split(",")],
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        topic_partitions=k.agg_partitions,
        topic_replication_factor=k.replication,
        topic_allow_declare=True,
        web_enabled=True,
        web_host="127.0.0.1",
        web_port=k.web_port,
        web_in_thread=False,
        broker_session_timeout=k.session_timeout_s,
        broker_heartbeat_interval=max(1.0, k.session_timeout_s / 4),
        broker_commit_every=10_000,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        producer_max_request_size=4 * 1024 * 1024,
        table_standby_replicas=0,
        stream_wait_empty=False,
        # take_events(batch_max) only fills up when the stream buffer can hold a whole
        # batch; with Faust's default (4,096) every batch waited out batch_within_s.
        stream_buffer_maxsize=max(4096, 4 * k.batch_max),
    )
