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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from alerts.dispatch import AlertDispatcher
from alerts.model import Alert
from alerts.notify import Notifier
from detectors.bank import DetectorBank
from detectors.drift_event import DriftEvent
from monitor.config import Config
from monitor.core import CoreBatch, DetectionCore
from monitor.events import Verdict
from monitor.join import JoinedFeedback
from monitor.storage import Store, dead_letter_row, dedup_token, drift_event_row
from monitor.validation import Rejection

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
    """Feed raw events (dicts, JSON bytes or str) with :meth:`process` or
    :meth:`process_batch`; call :meth:`finish` at the end of input.

    :meth:`process` buffers up to ``_BATCH`` events and runs them through the
    :class:`DetectionCore` together (the fast path needs batches); :meth:`flush` and
    :meth:`finish` drain the buffer, so nothing waits past the end of input.
    """

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
        if bank is None:
            bank = DetectorBank(config.detect)
            if config.detect.profile:
                from monitor.profile import load_profile_rows

                bank.load_references(load_profile_rows(store, config.detect.profile))
        self.core = DetectionCore(config, bank)
        self.bank = bank
        self.dispatcher = AlertDispatcher(store, notifier, config.alerts, config.detect.window_s)
        self.on_alert = on_alert
        self.summary = RunSummary()
        self._pending: list = []
        self._pending_pos: list[int] = []
        self._verdicts: list[Verdict] = []
        self._verdict_pos: list[int] = []
        self._feedback: list[JoinedFeedback] = []
        self._feedback_pos: list[int] = []
        self._dead: list[tuple] = []
        self._position = 0
        self._t0 = time.perf_counter()
        self._batch_rows = config.store.batch_rows

    # -- input ------------------------------------------------------------------------------
    def process(self, raw: bytes | str | dict, position: int | None = None) -> None:
        pos = self._position if position is None else position
        self._position = pos + 1
        self._pending.append(raw)
        self._pending_pos.append(pos)
        if len(self._pending) >= _BATCH:
            self._drain()

    def process_batch(
        self, raws: Sequence[bytes | str | dict], positions: Sequence[int] | None = None
    ) -> None:
        """Run a batch (positions: where each came from; default: a running count)."""
        self._drain()
        if positions is None:
            positions = range(self._position, self._position + len(raws))
        if len(raws):
            self._position = positions[-1] + 1
        self._run(raws, positions)

    def run(self, events: Iterable, progress: Callable[[int], None] | None = None) -> RunSummary:
        batch: list = []
        for raw in events:
            batch.append(raw)
            if len(batch) == _BATCH:
                self.process_batch(batch)
                if progress is not None:
                    progress(len(batch))
                batch = []
        self.process_batch(batch)
        if progress is not None and batch:
            progress(len(batch))
        return self.finish()

    def _drain(self) -> None:
        if self._pending:
            raws, pos = self._pending, self._pending_pos
            self._pending, self._pending_pos = [], []
            self._run(raws, pos)

    def _run(self, raws: Sequence, positions: Sequence[int]) -> None:
        out = self.core.process(raws)
        s = self.summary
        s.events += len(raws)
        s.verdicts += len(out.verdicts)
        s.feedback += len(out.feedback)
        if out.verdicts:
            self._verdicts += out.verdicts
            self._verdict_pos += [positions[i] for i in out.verdict_index]
        for j, i in zip(out.feedback, out.feedback_index, strict=True):
            if not j.found:
                s.feedback_unjoined += 1
            self._feedback.append(j)
            self._feedback_pos.append(positions[i])
        for i, rej in out.rejected:
            self._reject(rej, raws[i], positions[i])
        if out.first_ts is not None:
            if s.first_ts is None:
                s.first_ts = out.first_ts
            s.last_ts = out.last_ts if s.last_ts is None else max(s.last_ts, out.last_ts)
        self._after_windows(out)
        if len(self._verdicts) >= self._batch_rows:
            self._flush_verdicts()
        if len(self._feedback) >= self._batch_rows:
            self._flush_feedback()

    def _reject(self, rej: Rejection, raw, pos: int) -> None:
        s = self.summary
        s.rejected += 1
        s.rejected_by_reason[rej.reason] += 1
        self._dead.append(dead_letter_row(self.origin, pos, rej, raw))
        if len(self._dead) >= 10_000:
            self._flush_dead()

    # -- detection results ------------------------------------------------------------------
    def _after_windows(self, out: CoreBatch) -> None:
        for res in out.windows:
            self.summary.windows += 1
            if res.drift:
                self._record_drift(res.drift)
            self._fire(res.incidents)
            self._notify(res.window.end)

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
        self._drain()
        self._flush_verdicts()
        self._flush_feedback()
        self._flush_dead()

    def finish(self) -> RunSummary:
        """End of input: close all windows, run detection on them, flush everything."""
        self._drain()
        self._after_windows(self.core.finish())
        last = self.summary.last_ts or 0.0
        self._fire(self.core.flush_rules(last))
        self._notify(last, final=True)
        self.flush()
        s = self.summary
        s.late_events = self.core.aggregator.late_events
        s.segments = self.bank.segment_count
        s.elapsed_s = time.perf_counter() - self._t0
        return s


_BATCH = 4096  # events the core takes at once: large enough to amortise, small for latency
