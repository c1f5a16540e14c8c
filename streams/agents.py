"""Faust agents: thin adapters that decode, call a stage from ``monitor/``, and send.

- ``ingest`` consumes ``verdicts`` + ``feedback`` (co-partitioned by request id) in
  batches (``take_events``), runs :class:`monitor.ingest.IngestStage`, sends partial
  aggregates to ``agg`` keyed by category and refused messages to ``dlq`` (original
  bytes, reason and source position in the headers), and waits for delivery before the
  batch is acknowledged.
- ``detect`` consumes ``agg``; each key (a category, or ``*`` for latency) is owned by
  one worker. Its :class:`monitor.detect.SegmentDetector` is checkpointed in a
  changelog-backed table after every closed window, so a crash or a rebalance resumes
  it without a new warm-up. Drift events go to ClickHouse and ``drift-events``; alerts
  through the dispatcher (ClickHouse + apprise) and ``alerts``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from functools import partial

import faust
import orjson

from alerts.dispatch import AlertDispatcher
from alerts.notify import Notifier
from monitor.config import Config
from monitor.detect import SegmentDetector
from monitor.errors import StorageError
from monitor.ingest import IngestStage, Message
from monitor.storage import Store, drift_event_row
from streams.app import create_app
from streams.produce import FRAMING_HEADER, LINES
from streams.topics import AGG, ALERTS, DLQ, DRIFT_EVENTS, FEEDBACK, VERDICTS, topic_names

__all__ = ["Metrics", "StoreGuard", "build_worker_app", "is_framed"]


def _load_profile(store: Store, config: Config) -> list[dict] | None:
    """The configured reference profile, loaded once; segments without state start from it."""
    if not config.detect.profile:
        return None
    from monitor.profile import load_profile_rows

    return load_profile_rows(store, config.detect.profile)


log = logging.getLogger("filterwatch.worker")


class Metrics:
    """Counters exposed at /metrics in the Prometheus text format."""

    def __init__(self) -> None:
        self.c: Counter = Counter()
        self.dlq_by_reason: Counter = Counter()
        self.alerts_by_status: Counter = Counter()
        self.detectors = 0
        self.lag = 0
        self.store_down_since: float | None = None  # monotonic time of the first failure

    def render(self) -> str:
        c = self.c
        series = [
            (
                "filterwatch_events_in_total",
                "counter",
                [
                    (f'kind="{k}"', c[n])
                    for k, n in (
                        ("verdict", "verdicts"),
                        ("feedback", "feedback"),
                        ("rejected", "rejected"),
                    )
                ],
            ),
            ("filterwatch_redelivered_skipped_total", "counter", [("", c["skipped"])]),
            (
                "filterwatch_dlq_total",
                "counter",
                [(f'reason="{r}"', n) for r, n in sorted(self.dlq_by_reason.items())],
            ),
            ("filterwatch_partials_sent_total", "counter", [("", c["partials"])]),
            ("filterwatch_windows_closed_total", "counter", [("", c["windows"])]),
            ("filterwatch_drift_events_total", "counter", [("", c["drift_events"])]),
            (
                "filterwatch_alerts_total",
                "counter",
                [(f'status="{s}"', n) for s, n in sorted(self.alerts_by_status.items())],
            ),
            ("filterwatch_detector_states_restored_total", "counter", [("", c["restored"])]),
            ("filterwatch_store_errors_total", "counter", [("", c["store_errors"])]),
            ("filterwatch_store_available", "gauge", [("", int(self.store_down_since is None))]),
            ("filterwatch_detectors", "gauge", [("", self.detectors)]),
            ("filterwatch_consumer_lag", "gauge", [("", self.lag)]),
        ]
        lines = []
        for name, kind, samples in series:
            lines.append(f"# TYPE {name} {kind}")
            lines += [
                f"{name}{{{labels}}} {v}" if labels else f"{name} {v}" for labels, v in samples
            ]
        return "\n".join(lines) + "\n"


class StoreGuard:
    """Run a store write until it lands: ClickHouse down or the store unwritable pauses
    the agent instead of crashing it or dropping the batch.

    While an agent waits here it takes nothing more from its stream, so Faust's buffer
    fills and the consumer stops fetching (back-pressure), the group membership stays
    alive (heartbeats run on their own), and nothing is acknowledged: the offsets stay
    where the last stored batch left them. Every write retried here is idempotent (dedup
    tokens on inserts, ledger marks restored on failure), so a retry cannot count twice.
    """

    def __init__(self, metrics: Metrics, max_backoff_s: float = 5.0):
        self.metrics = metrics
        self.max_backoff_s = max_backoff_s

    async def run(self, fn, what: str):
        delay = 0.25
        while True:
            try:
                result = fn()
            except StorageError as exc:
                m = self.metrics
                m.c["store_errors"] += 1
                if m.store_down_since is None:
                    m.store_down_since = time.monotonic()
                    log.warning("store unavailable while %s: %s; retrying", what, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
                continue
            self.recovered()
            return result

    def recovered(self) -> None:
        m = self.metrics
        if m.store_down_since is not None:
            log.warning("store available again after %.1f s", time.monotonic() - m.store_down_since)
            m.store_down_since = None


def is_framed(headers) -> bool:
    """The message carries JSON lines (``fw-framing: lines``, see streams/produce.py)."""
    if not headers:
        return False
    items = headers.items() if isinstance(headers, dict) else headers
    return any(k == FRAMING_HEADER and v == LINES for k, v in items)


def build_worker_app(config: Config, store: Store) -> tuple[faust.App, Metrics]:
    app = create_app(config)
    k = config.kafka
    names = topic_names(k)
    metrics = Metrics()
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    inputs = app.topic(names[VERDICTS], names[FEEDBACK], **raw)
    agg_topic = app.topic(names[AGG], partitions=k.agg_partitions, **raw)
    dlq_topic = app.topic(names[DLQ], **raw)
    drift_topic = app.topic(names[DRIFT_EVENTS], **raw)
    alerts_topic = app.topic(names[ALERTS], **raw)
    state = app.Table("detector-state", default=None, partitions=k.agg_partitions)
    # Faust derives table serializers from key/value *model* types (json otherwise);
    # the checkpoints are opaque bytes, so the changelog carries them raw.
    state.key_serializer = state.value_serializer = "raw"
    state.changelog_topic = state._new_changelog_topic()  # rebuilt with the raw serializers
    stage = IngestStage(config, store)
    notifier = (
        Notifier(config.notify, config.alerts.apprise_config)
        if config.notify or config.alerts.apprise_config
        else None
    )
    dispatcher = AlertDispatcher(store, notifier, config.alerts, config.detect.window_s)
    live: dict[str, SegmentDetector] = {}
    profile = _load_profile(store, config)
    guard = StoreGuard(metrics)

    @app.agent(inputs)
    async def ingest(stream):
        async for events in stream.take_events(k.batch_max, within=k.batch_within_s):
            # Events of partitions revoked while they sat in the buffer belong to the new
            # owner now (it starts from the committed offset); storing them here too
            # would count them twice across workers.
            assigned = app.consumer.assignment()
            events = [e for e in events if e.message.tp in assigned]
            if not events:
                continue
            msgs = [
                Message(m.topic, m.partition, m.offset, m.value, is_framed(m.headers))
                for m in (e.message for e in events)
            ]
            out = await guard.run(partial(stage.process, msgs), "storing a batch")
            futs = [
                await agg_topic.send(key=key.encode(), value=payload)
                for key, payload in out.partials
            ]
            futs += [await dlq_topic.send(value=d.value, headers=d.headers()) for d in out.dead]
            if futs:
                await asyncio.gather(*futs)
            metrics.c.update(
                verdicts=out.verdicts,
                feedback=out.feedback,
                rejected=len(out.dead),
                skipped=out.skipped,
                partials=len(out.partials),
            )
            metrics.dlq_by_reason.update(out.rejected_by_reason)
            await _commit_stored(stream, events)

    async def _commit_stored(stream, events) -> None:
        """Acknowledge a stored batch and commit its offsets now rather than on Faust's
        interval: after a crash or a rebalance the next owner starts where this store
        ends, instead of up to an interval (and a batch) earlier."""
        for e in events:
            await stream.ack(e)
        try:
            await app.consumer.commit()
        except Exception as exc:  # a failed commit only widens the redelivery window
            log.info("offset commit deferred: %s", exc)

    @app.agent(agg_topic)
    async def detect(stream):
        async for event in stream.events():
            key = event.key.decode() if event.key else "*"
            det = live.get(key)
            if det is None:
                saved = state.get(key.encode())
                det = (
                    SegmentDetector.from_bytes(saved)
                    if saved
                    else SegmentDetector(
                        key,
                        config.detect,
                        config.alerts,
                        clock_prefix=names[VERDICTS] + ":",
                        expected=tuple(f"{names[VERDICTS]}:{p}" for p in range(k.partitions)),
                        idle_s=k.idle_s,
                        profile=profile,
                    )
                )
                live[key] = det
                if saved:
                    metrics.c["restored"] += 1
            drift, incidents, closed = det.add(event.value)
            if drift:
                rows = [drift_event_row(e) for e in drift]
                await guard.run(partial(store.insert_rows, "drift_events", rows), "recording drift")
                for e in drift:
                    await drift_topic.send(key=key.encode(), value=orjson.dumps(e.to_dict()))
                metrics.c["drift_events"] += len(drift)
            for inc in incidents:
                alert = await guard.run(partial(dispatcher.dispatch, inc), "recording an alert")
                await alerts_topic.send(
                    key=alert.fingerprint.encode(), value=orjson.dumps(alert.summary_dict())
                )
            if incidents:
                _deliver()
            if closed:
                metrics.c["windows"] += closed
                state[key.encode()] = det.to_bytes()

    def _deliver() -> None:
        """Group, write and send what is due; the outbox keeps what could not be sent.

        With the store down this is skipped (the dispatcher keeps what it could not
        write) and the 2-second timer tries again."""
        try:
            dispatcher.tick(time.time())
        except StorageError as exc:
            metrics.c["store_errors"] += 1
            log.warning("alert delivery waits for the store: %s", exc)
            return
        metrics.alerts_by_status = Counter(a.delivery_status for a in dispatcher.recent.values())

    @app.timer(interval=2.0)
    async def _notify_timer() -> None:
        _deliver()

    @app.on_partitions_revoked.connect
    async def _forget(app_, revoked, **kwargs) -> None:
        live.clear()  # the new owner restores from the changelog-backed table
        stage.forget_marks()

    @app.timer(interval=2.0)
    async def _gauges() -> None:
        metrics.detectors = sum(d.bank.segment_count for d in live.values())
        consumer = app.consumer
        total = 0
        try:
            for tp in consumer.assignment():
                hw = consumer.highwater(tp)
                pos = consumer._read_offset.get(tp)
                if hw is not None and pos is not None:
                    total += max(0, hw - pos - 1)
        except Exception:  # lag is best-effort telemetry, never a reason to crash
            return
        metrics.lag = total

    @app.page("/metrics")
    async def _metrics(web, request):
        return web.text(metrics.render(), content_type="text/plain; version=0.0.4")

    def _status() -> dict:
        from dashboards.status import status_snapshot

        states: dict[str, dict] = {}
        for det in live.values():
            states.update(det.bank.category_states())
        counts = ("verdicts", "feedback", "rejected", "windows")
        return status_snapshot(
            store, states, {"lag": metrics.lag, **{c: metrics.c[c] for c in counts}}
        )

    @app.page("/status")
    async def _status_page(web, request):
        from dashboards.status import refresh_from_query, render_status_html

        refresh = refresh_from_query(request.query_string)
        return web.html(render_status_html(_status(), refresh))

    @app.page("/status.json")
    async def _status_json(web, request):
        return web.json(_status())

    @app.page("/health")
    async def _health(web, request):
        counts = ("verdicts", "feedback", "rejected", "skipped", "restored", "windows")
        counts += ("store_errors",)
        status = "ok" if metrics.store_down_since is None else "store-unavailable"
        body = {"status": status, "lag": metrics.lag, **{c: metrics.c[c] for c in counts}}
        return web.json(body)

    return app, metrics
