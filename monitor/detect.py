"""Stage 2 of the streaming shape: merge partials per window, detect, decide alerts.

One :class:`SegmentDetector` owns one key of the ``agg`` topic (a category, or ``"*"``
for latency), so each segment's detectors live on exactly one worker. Partials arrive
from every source partition, possibly twice after a restart upstream; they are merged
per window, deduplicated by (source, batch, window), and a window closes when every
verdict partition is past it (see :class:`WindowMerger` for idle partitions).

The whole object pickles: the worker checkpoints it after every closed window, so a
crash or a rebalance resumes the same detectors without a new warm-up.
"""

from __future__ import annotations

import pickle
import time

import orjson

from alerts.model import Incident
from alerts.rules import AlertRules
from detectors.bank import BankConfig, DetectorBank
from detectors.drift_event import DriftEvent
from monitor.aggregate import WindowAggregate
from monitor.config import AlertsConfig
from monitor.ingest import LATENCY_KEY

__all__ = ["SegmentDetector", "WindowMerger"]


class WindowMerger:
    """Merges partial aggregates per window and decides when a window is complete.

    *Clock* sources are the verdict partitions (``clock_prefix``): a window closes when
    every expected clock source has reported a later window. A clock source silent for
    ``idle_s`` of wall time (an idle or dead partition) stops being waited for; during a
    backlog catch-up partitions drift apart in event time but keep reporting, so nothing
    is closed early. Feedback partials are not clocks (feedback is sparse); one that
    arrives after its window closed counts in the oldest open window instead, since a
    few seconds' misplacement matters less to a rate than losing the evidence.
    """

    def __init__(
        self,
        window_s: float,
        *,
        clock_prefix: str = "",
        expected: tuple[str, ...] = (),
        idle_s: float = 30.0,
        max_open: int = 720,
        clock=time.time,
    ):
        self.window_s = window_s
        self.clock_prefix = clock_prefix
        self.expected = set(expected)
        self.idle_s = idle_s
        self.max_open = max_open
        self._clock = clock
        self._born = clock()
        self._open: dict[int, WindowAggregate] = {}
        self._seen: set[tuple[str, int, int]] = set()
        self._progress: dict[str, int] = {}
        self._last_seen: dict[str, float] = {}
        self.closed_upto = -1
        self.late = 0
        self.late_feedback = 0
        self.duplicates = 0

    def _is_clock(self, src: str) -> bool:
        return src.startswith(self.clock_prefix) if self.clock_prefix else True

    def add(self, partial: dict) -> list[WindowAggregate]:
        w, src = int(partial["w"]), partial["src"]
        ident = (src, int(partial["batch"][0]), w)
        if ident in self._seen:
            self.duplicates += 1
            return self._ready()
        self._seen.add(ident)
        clock_src = self._is_clock(src)
        if clock_src:
            self._progress[src] = max(self._progress.get(src, -1), w)
            self._last_seen[src] = self._clock()
        if w <= self.closed_upto:
            if clock_src:
                self.late += 1
                return self._ready()
            self.late_feedback += 1
            w = self.closed_upto + 1
        agg = WindowAggregate(
            w,
            w * self.window_s,
            (w + 1) * self.window_s,
            {k: list(v) for k, v in partial["versions"].items()} if clock_src else {},
            {(c, mv): list(cell) for c, mv, cell in partial["cells"]},
            {t: list(v) for t, v in partial.get("tenants", {}).items()} if clock_src else {},
            {(t, c): list(v) for t, c, v in partial.get("tenant_cells", [])},
            dict(partial.get("labelsets", {})) if clock_src else {},
        )
        mine = self._open.get(w)
        if mine is None:
            self._open[w] = agg
        else:
            mine.merge(agg)
        return self._ready()

    def _ready(self) -> list[WindowAggregate]:
        if not self._open:
            return []
        now = self._clock()
        required = []
        for src in self.expected | set(self._progress):
            seen = self._last_seen.get(src, self._born)
            if now - seen <= self.idle_s:
                required.append(src)
        if required and all(src in self._progress for src in required):
            limit = min(self._progress[src] for src in required) - 1
        elif required:
            limit = -1
        else:
            limit = max(self._progress.values(), default=-1)
        if len(self._open) > self.max_open:  # memory bound, whatever a source does
            limit = max(limit, sorted(self._open)[len(self._open) - self.max_open])
        ready = sorted(w for w in self._open if w <= limit)
        out = [self._open.pop(w) for w in ready]
        if out:
            self.closed_upto = max(self.closed_upto, out[-1].index)
            keep_from = self.closed_upto - 50
            self._seen = {s for s in self._seen if s[2] > keep_from}
        return out


class SegmentDetector:
    """Merger + detector bank + alert rules for one agg key."""

    def __init__(
        self,
        key: str,
        bank_config: BankConfig,
        alerts_config: AlertsConfig,
        *,
        clock_prefix: str = "",
        expected: tuple[str, ...] = (),
        idle_s: float = 30.0,
        profile: list[dict] | None = None,
    ):
        self.key = key
        self.merger = WindowMerger(
            bank_config.window_s, clock_prefix=clock_prefix, expected=expected, idle_s=idle_s
        )
        if key == LATENCY_KEY:
            self.bank = DetectorBank(bank_config, categories=(), latency=True)
        else:
            self.bank = DetectorBank(bank_config, categories=(key,), latency=False)
        if profile:
            self.bank.load_references(profile)
        self.rules = AlertRules(alerts_config)

    def add(self, payload: bytes) -> tuple[list[DriftEvent], list[Incident], int]:
        """Merge one partial; returns (drift events, incidents, windows closed)."""
        closed = self.merger.add(orjson.loads(payload))
        events: list[DriftEvent] = []
        incidents: list[Incident] = []
        for agg in closed:
            evs = self.bank.update(agg)
            events += evs
            incidents += self.rules.observe(evs, agg.end, self.bank.take_recoveries())
        return events, incidents, len(closed)

    def to_bytes(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def from_bytes(data: bytes) -> SegmentDetector:
        obj = pickle.loads(data)
        if not isinstance(obj, SegmentDetector):
            raise TypeError("not a SegmentDetector state")
        return obj
