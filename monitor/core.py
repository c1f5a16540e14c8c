"""The detection core: validate -> scrub -> window aggregate -> detector bank -> alert rules.

Pure and free of I/O: a batch of raw messages goes in; out come the accepted events
(for storage), the refusals with their reasons (for the dead-letter sink), and per
closed window the drift events and alert state changes (for dispatch). The in-process
pipeline wraps it with storage and delivery; ``bench/detection_core.py`` measures it
alone, which is the number that says how many cores a given request rate needs.

Well-formed verdicts travel in runs: a run is decoded, checked and scrubbed in one C
pass (:mod:`monitor.fastdecode`) and counted column-wise (:mod:`monitor.columnar`).
Feedback and refused messages break runs and are handled one at a time, in order, so
every result equals what the event-by-event path gives.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from alerts.model import Incident
from alerts.rules import AlertRules
from detectors.bank import DetectorBank
from detectors.drift_event import DriftEvent
from monitor.aggregate import WindowAggregate, WindowAggregator, remember_and_count
from monitor.config import Config
from monitor.events import Feedback, Verdict
from monitor.join import JoinedFeedback, VerdictCache
from monitor.validation import Rejection, Validator

__all__ = ["CoreBatch", "DetectionCore", "WindowResult"]

_ts = attrgetter("ts")


@dataclass(slots=True)
class WindowResult:
    """What one closed window caused."""

    window: WindowAggregate
    drift: list[DriftEvent]
    incidents: list[Incident]


@dataclass
class CoreBatch:
    """One batch through the core; indices point into the batch that went in."""

    verdicts: list[Verdict] = field(default_factory=list)
    verdict_index: list[int] = field(default_factory=list)
    feedback: list[JoinedFeedback] = field(default_factory=list)
    feedback_index: list[int] = field(default_factory=list)
    rejected: list[tuple[int, Rejection]] = field(default_factory=list)
    windows: list[WindowResult] = field(default_factory=list)
    first_ts: float | None = None
    last_ts: float | None = None


class DetectionCore:
    """Holds the stream state (open windows, join cache, detectors, alert tracks)."""

    def __init__(self, config: Config, bank: DetectorBank | None = None):
        ing = config.ingest
        self.validator = Validator.from_config(config)
        self.aggregator = WindowAggregator(config.detect.window_s, ing.lateness_windows)
        self.cache = VerdictCache(ing.join_horizon_s)
        self.bank = bank if bank is not None else DetectorBank(config.detect)
        self.rules = AlertRules(config.alerts)
        self.rejected_by_reason: Counter = Counter()
        self.unjoined = 0

    def process(self, raws: Sequence[bytes | str | dict]) -> CoreBatch:
        out = CoreBatch()
        slow: list[int] = []
        results = self.validator.validate_many(raws, slow=slow)
        start = 0
        for i in slow:
            if i > start:
                self._verdict_run(results, start, i, out)
            ev = results[i]
            if isinstance(ev, Verdict):
                self._verdict_run(results, i, i + 1, out)
            elif isinstance(ev, Feedback):
                self._feedback(ev, i, out)
            else:
                self.rejected_by_reason[ev.reason] += 1
                out.rejected.append((i, ev))
            start = i + 1
        if start < len(results):
            self._verdict_run(results, start, len(results), out)
        return out

    def finish(self) -> CoreBatch:
        """End of input: close every window, and fire what is still pending."""
        out = CoreBatch()
        self._detect(self.aggregator.flush(), out)
        return out

    def flush_rules(self, now: float) -> list[Incident]:
        return self.rules.flush(now)

    # -- stages -----------------------------------------------------------------------------
    def _verdict_run(self, results: list, a: int, b: int, out: CoreBatch) -> None:
        run = results[a:b]
        out.verdicts += run
        out.verdict_index += range(a, b)
        if out.first_ts is None:
            out.first_ts = run[0].ts
        top = max(map(_ts, run))
        closed = remember_and_count(run, self.cache, self.aggregator)
        out.last_ts = top if out.last_ts is None else max(out.last_ts, top)
        self._detect(closed, out)

    def _feedback(self, ev: Feedback, i: int, out: CoreBatch) -> None:
        j = self.cache.join(ev)
        if not j.found:
            self.unjoined += 1
        out.feedback.append(j)
        out.feedback_index.append(i)
        if out.first_ts is None:
            out.first_ts = ev.ts
        out.last_ts = ev.ts if out.last_ts is None else max(out.last_ts, ev.ts)
        closed = self.aggregator.add_feedback(
            ev.ts, j.model_version, j.attributed, ev.action, ev.tenant_id
        )
        self._detect(closed, out)

    def _detect(self, closed: list[WindowAggregate], out: CoreBatch) -> None:
        for agg in closed:
            drift = self.bank.update(agg)
            incidents = self.rules.observe(drift, agg.end, self.bank.take_recoveries())
            out.windows.append(WindowResult(agg, drift, incidents))
