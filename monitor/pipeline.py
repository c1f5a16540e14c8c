"""The in-process pipeline: validate -> scrub -> store + aggregate -> detect -> alert.

These are the same stages the Faust workers run, wired together in one process for the
embedded default, for replay and simulation, for tests and for backtests. Every event
either becomes a stored verdict/feedback row or a dead letter with its reason; nothing
is dropped silently. Batches carry deterministic dedup tokens derived from the input's
origin and positions, so replaying the same input is idempotent in ClickHouse.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from alerts.dispatch import AlertDispatcher
from alerts.model import Alert
from alerts.notify import Notifier
from alerts.rules import AlertRules
from detectors.bank import DetectorBank
from detectors.drift_event import DriftEvent
from monitor.aggregate import WindowAggregate, WindowAggregator
from monitor.config import Config
from monitor.events import Feedback, Verdict
from monitor.join import JoinedFeedback, VerdictCache
from monitor.storage import Store, dead_letter_row, dedup_token, drift_event_row
from monitor.validation import Rejection, Validator

__all__ = ["Pipeline", "RunSummary"]


@dataclass
class RunSummary:
    events: int = 0
    verdicts: int = 0
    feedback: int = 0
    rejected: int = 0
    rejected_by_reason: Counter = field(default_factory=Counter)
    feedback_unjoined: int = 0
    late_events: int = 0
    windows: int = 0
    segments: int = 0
    drift_events: int = 0
    alerts: list[Alert] = field(default_factory=list)  # one per alert (latest state)
    notifications: list = field(default_factory=list)  # grouped messages, in order
    elapsed_s: float = 0.0
    first_ts: float | None = None
    last_ts: float | None = None

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "events": self.events,
            "verdicts": self.verdicts,
            "feedback": self.feedback,
            "rejected": self.rejected,
            "rejected_by_reason": dict(self.rejected_by_reason),
            "feedback_unjoined": self.feedback_unjoined,
            "late_events": self.late_events,
            "windows": self.windows,
            "segments": self.segments,
            "drift_events": self.drift_events,
            "alerts": [a.summary_dict() for a in self.alerts],
            "notifications": [
                {
                    "notification_id": n.notification_id,
                    "kind": n.kind,
                    "severity": n.severity,
                    "title": n.title,
                    "alert_ids": [a.alert_id for a in n.alerts],
                    "silenced": [a.alert_id for a, _ in n.silenced],
                    "at": n.created_at,
                }
                for n in self.notifications
            ],
            "elapsed_s": round(self.elapsed_s, 3),
            "events_per_s": round(self.events_per_s, 1),
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
        }


class Pipeline:
    """Feed raw events (dicts, JSON bytes or str) with :meth:`process`; call :meth:`finish`."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        origin: str = "stream",
        notifier: Notifier | None = None,
        on_alert: Callable[[Alert], None] | None = None,
        bank: DetectorBank | None = None,
    ):
        self.config = config
        self.store = store
        self.origin = origin
        ing = config.ingest
        self.validator = Validator.from_config(config)
        self.aggregator = WindowAggregator(config.detect.window_s, ing.lateness_windows)
        self.cache = VerdictCache(ing.join_horizon_s)
        if bank is None:
            bank = DetectorBank(config.detect)
            if config.detect.profile:
                from monitor.profile import load_profile_rows

                bank.load_references(load_profile_rows(store, config.detect.profile))
        self.bank = bank
        self.rules = AlertRules(config.alerts)
        self.dispatcher = AlertDispatcher(store, notifier, config.alerts, config.detect.window_s)
        self.on_alert = on_alert
        self.summary = RunSummary()
        self._verdicts: list[Verdict] = []
        self._verdict_pos: list[int] = []
        self._feedback: list[JoinedFeedback] = []
        self._feedback_pos: list[int] = []
        self._dead: list[tuple] = []
        self._position = 0
        self._t0 = time.perf_counter()
        self._batch_rows = config.store.batch_rows

    # -- per event ------------------------------------------------------------------------
    def process(self, raw: bytes | str | dict, position: int | None = None) -> None:
        pos = self._position if position is None else position
        self._position = pos + 1
        s = self.summary
        s.events += 1
        ev = self.validator.validate(raw)
        if isinstance(ev, Verdict):
            s.verdicts += 1
            self._verdicts.append(ev)
            self._verdict_pos.append(pos)
            self.cache.add(ev)
            closed = self.aggregator.add_verdict(ev)
            if len(self._verdicts) >= self._batch_rows:
                self._flush_verdicts()
        elif isinstance(ev, Feedback):
            s.feedback += 1
            j = self.cache.join(ev)
            if not j.found:
                s.feedback_unjoined += 1
            self._feedback.append(j)
            self._feedback_pos.append(pos)
            closed = self.aggregator.add_feedback(
                ev.ts, j.model_version, j.attributed, ev.action, ev.tenant_id
            )
            if len(self._feedback) >= self._batch_rows:
                self._flush_feedback()
        else:
            self._reject(ev, raw, pos)
            return
        if s.first_ts is None:
            s.first_ts = ev.ts
        s.last_ts = ev.ts if s.last_ts is None else max(s.last_ts, ev.ts)
        if closed:
            self._detect(closed)

    def run(self, events: Iterable, progress: Callable[[int], None] | None = None) -> RunSummary:
        for i, raw in enumerate(events):
            self.process(raw)
            if progress is not None and (i & 8191) == 8191:
                progress(8192)
        if progress is not None:
            progress(self.summary.events & 8191)
        return self.finish()

    def _reject(self, rej: Rejection, raw, pos: int) -> None:
        s = self.summary
        s.rejected += 1
        s.rejected_by_reason[rej.reason] += 1
        self._dead.append(dead_letter_row(self.origin, pos, rej, raw))
        if len(self._dead) >= 10_000:
            self._flush_dead()

    # -- detection ------------------------------------------------------------------------
    def _detect(self, closed: list[WindowAggregate]) -> None:
        for agg in closed:
            self.summary.windows += 1
            events = self.bank.update(agg)
            if events:
                self._record_drift(events)
            incidents = self.rules.observe(events, agg.end, self.bank.take_recoveries())
            self._fire(incidents)
            self._notify(agg.end)

    def _fire(self, incidents) -> None:
        if not incidents:
            return
        self.flush()  # the RCA queries must see every event up to the detection
        known = {a.alert_id for a in self.summary.alerts}
        for inc in incidents:
            alert = self.dispatcher.dispatch(inc)
            if alert.alert_id not in known:
                self.summary.alerts.append(alert)
            if self.on_alert is not None:
                self.on_alert(alert)

    def _notify(self, now: float, final: bool = False) -> None:
        self.summary.notifications += self.dispatcher.tick(now, final=final)

    def _record_drift(self, events: list[DriftEvent]) -> None:
        self.summary.drift_events += len(events)
        rows = [drift_event_row(e) for e in events]
        self.store.insert_rows("drift_events", rows)

    # -- flushing -------------------------------------------------------------------------
    def _flush_verdicts(self) -> None:
        if not self._verdicts:
            return
        b = self._verdicts
        tok = dedup_token(self.origin, "verdicts", b[0].request_id, b[-1].request_id, len(b))
        self.store.insert_verdicts(b, tok, self.origin, self._verdict_pos)
        self._verdicts, self._verdict_pos = [], []

    def _flush_feedback(self) -> None:
        if not self._feedback:
            return
        self._flush_verdicts()  # feedback late-joins to verdicts in the store
        b = self._feedback
        tok = dedup_token(
            self.origin, "feedback", b[0].feedback.feedback_id, b[-1].feedback.feedback_id, len(b)
        )
        self.summary.feedback_unjoined -= self.store.insert_feedback(
            b, tok, self.origin, self._feedback_pos
        )
        self._feedback, self._feedback_pos = [], []

    def _flush_dead(self) -> None:
        if not self._dead:
            return
        b = self._dead
        tok = dedup_token(self.origin, "dead", b[0][2], b[-1][2], len(b))
        self.store.insert_dead_letters(b, tok)
        self._dead = []

    def flush(self) -> None:
        self._flush_verdicts()
        self._flush_feedback()
        self._flush_dead()

    def finish(self) -> RunSummary:
        """End of input: close all windows, run detection on them, flush everything."""
        closed = self.aggregator.flush()
        if closed:
            self._detect(closed)
        last = self.summary.last_ts or 0.0
        self._fire(self.rules.flush(last))
        self._notify(last, final=True)
        self.flush()
        s = self.summary
        s.late_events = self.aggregator.late_events
        s.segments = self.bank.segment_count
        s.elapsed_s = time.perf_counter() - self._t0
        return s
