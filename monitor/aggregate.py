"""Stage 1: event-time window aggregation, per model version and category.

A window's aggregate holds exactly the sufficient statistics the detectors need, so the
detection stage never sees single events: per model version (requests, blocks, latency
sum and count) and per (category, model version) the predicted count, the blocked
count, attributed unblocks and reports, and a 10-bin histogram of the category's scores
where the model reported one. Aggregates from several partitions merge by addition,
which is what lets stage 1 run per Kafka partition and stage 2 per segment.

Per tenant it holds (requests, blocks) and per (tenant, category) the blocks, unblocks
and reports, so a district's own over- or under-blocking is testable; and the counts of
predicted label *sets* (``"adult+dating"``), so a change in how categories co-occur is
visible even when each category's share is stable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from monitor.columnar import VerdictColumns
from monitor.events import Verdict
from monitor.join import BLOCKABLE, VerdictCache

__all__ = [
    "COLUMNAR_MIN",
    "HIST_BINS",
    "WindowAggregate",
    "WindowAggregator",
    "remember_and_count",
]

HIST_BINS = 10
_CELL_LEN = 4 + HIST_BINS  # predicted, blocked, unblocks, reports, hist...
_ALL = "*"
COLUMNAR_MIN = 64  # below this a batch is cheaper event by event
_NO_WINDOW = -(1 << 62)


@dataclass(slots=True)
class WindowAggregate:
    index: int  # floor(ts / window_s)
    start: float
    end: float
    # mv -> [requests, blocked, latency sum, latency n, requests with a predicted category]
    versions: dict[str, list] = field(default_factory=dict)
    cells: dict[tuple[str, str], list] = field(default_factory=dict)  # (cat, mv) -> cell
    tenants: dict[str, list] = field(default_factory=dict)  # tenant -> [requests, blocks]
    # (tenant, cat) -> [blocks, unblocks, reports]
    tenant_cells: dict[tuple[str, str], list] = field(default_factory=dict)
    labelsets: dict[str, int] = field(default_factory=dict)  # "a+b" -> verdicts predicted so

    def category_totals(self) -> dict[tuple[str, str], list]:
        """``cells`` plus one all-versions cell per category under model version ``"*"``."""
        out = dict(self.cells)
        for (cat, _mv), cell in self.cells.items():
            tot = out.get((cat, _ALL))
            if tot is None:
                out[(cat, _ALL)] = list(cell)
            else:
                for i, x in enumerate(cell):
                    tot[i] += x
        return out

    def merge(self, other: WindowAggregate) -> None:
        """Add another partial aggregate of the same window into this one."""
        if other.index != self.index:
            raise ValueError("can only merge aggregates of the same window")
        for mv, v in other.versions.items():
            mine = self.versions.setdefault(mv, [0, 0, 0.0, 0, 0])
            for i, x in enumerate(v):
                mine[i] += x
        for key, cell in other.cells.items():
            mine = self.cells.setdefault(key, [0] * _CELL_LEN)
            for i, x in enumerate(cell):
                mine[i] += x
        for t, v in other.tenants.items():
            mine = self.tenants.setdefault(t, [0, 0])
            mine[0] += v[0]
            mine[1] += v[1]
        for key, v in other.tenant_cells.items():
            mine = self.tenant_cells.setdefault(key, [0, 0, 0])
            for i, x in enumerate(v):
                mine[i] += x
        for ls, n in other.labelsets.items():
            self.labelsets[ls] = self.labelsets.get(ls, 0) + n

    @property
    def requests(self) -> int:
        return sum(v[0] for v in self.versions.values())

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "start": self.start,
            "end": self.end,
            "versions": self.versions,
            "cells": [[c, mv, cell] for (c, mv), cell in self.cells.items()],
            "tenants": self.tenants,
            "tenant_cells": [[t, c, v] for (t, c), v in self.tenant_cells.items()],
            "labelsets": self.labelsets,
        }

    @staticmethod
    def from_dict(d: dict) -> WindowAggregate:
        return WindowAggregate(
            d["index"],
            d["start"],
            d["end"],
            {k: [*v, 0][:5] if len(v) == 4 else list(v) for k, v in d["versions"].items()},
            {(c, mv): list(cell) for c, mv, cell in d["cells"]},
            {t: list(v) for t, v in d.get("tenants", {}).items()},
            {(t, c): list(v) for t, c, v in d.get("tenant_cells", [])},
            dict(d.get("labelsets", {})),
        )


class WindowAggregator:
    """Assigns events to tumbling event-time windows and emits windows as they close.

    A window closes once an event ``lateness`` windows past it arrives; events older
    than the oldest open window are *late*: counted, stored, but not fed to detection.
    """

    def __init__(self, window_s: float = 5.0, lateness: int = 1):
        if window_s <= 0:
            raise ValueError("window_s must be > 0")
        if lateness < 0:
            raise ValueError("lateness must be >= 0")
        self.window_s = window_s
        self.lateness = lateness
        self._open: dict[int, WindowAggregate] = {}
        self._watermark: int | None = None
        self._closed_upto = -1  # every window index <= this is closed
        self.late_events = 0

    def _window(self, ts: float) -> tuple[WindowAggregate | None, list[WindowAggregate]]:
        idx = int(ts // self.window_s)
        closed: list[WindowAggregate] = []
        if idx <= self._closed_upto:
            self.late_events += 1
            return None, closed
        if self._watermark is None or idx > self._watermark:
            self._watermark = idx
            closed = self._close_before(idx - self.lateness)
        agg = self._open.get(idx)
        if agg is None:
            agg = WindowAggregate(idx, idx * self.window_s, (idx + 1) * self.window_s)
            self._open[idx] = agg
        return agg, closed

    def _close_before(self, idx: int) -> list[WindowAggregate]:
        ready = sorted(i for i in self._open if i < idx)
        out = [self._open.pop(i) for i in ready]
        if idx - 1 > self._closed_upto:
            self._closed_upto = idx - 1
        return out

    def add_verdict(self, v: Verdict) -> list[WindowAggregate]:
        agg, closed = self._window(v.ts)
        if agg is None:
            return closed
        mv = v.model_version
        ver = agg.versions.get(mv)
        if ver is None:
            ver = agg.versions[mv] = [0, 0, 0.0, 0, 0]
        blocked = v.decision == "block"
        ver[0] += 1
        ver[2] += v.latency_ms
        ver[3] += 1
        ten = agg.tenants.get(v.tenant_id)
        if ten is None:
            ten = agg.tenants[v.tenant_id] = [0, 0]
        ten[0] += 1
        predicted = v.categories
        if blocked:
            ver[1] += 1
            ten[1] += 1
            tcells = agg.tenant_cells
            for cat in predicted:
                tc = tcells.get((v.tenant_id, cat))
                if tc is None:
                    tc = tcells[(v.tenant_id, cat)] = [0, 0, 0]
                tc[0] += 1
        if predicted:
            ver[4] += 1
            ls = "+".join(sorted(predicted)) if len(predicted) > 1 else predicted[0]
            agg.labelsets[ls] = agg.labelsets.get(ls, 0) + 1
        cells = agg.cells
        for cat, s in v.scores.items():
            key = (cat, mv)
            cell = cells.get(key)
            if cell is None:
                cell = cells[key] = [0] * _CELL_LEN
            b = int(s * HIST_BINS)
            cell[4 + (b if b < HIST_BINS else HIST_BINS - 1)] += 1
            if cat in predicted:
                cell[0] += 1
                if blocked:
                    cell[1] += 1
        return closed

    def add_verdicts(
        self, verdicts: Sequence[Verdict], cols: VerdictColumns | None = None
    ) -> list[WindowAggregate]:
        """:meth:`add_verdict` of each, in order, counted column-wise (same result).

        Lateness is decided per event as the sequential path would: an event is late
        when its window closed before it arrived, i.e. when it lies ``lateness`` windows
        behind the running maximum of the window indices seen before it.
        """
        n = len(verdicts)
        if cols is None and n < COLUMNAR_MIN:
            closed: list[WindowAggregate] = []
            for v in verdicts:
                closed += self.add_verdict(v)
            return closed
        if cols is None:
            cols = VerdictColumns(verdicts, HIST_BINS)
        idx = cols.window_index(self.window_s)
        start = self._watermark if self._watermark is not None else _NO_WINDOW
        running = np.maximum(np.maximum.accumulate(idx), start)
        closed_after = np.maximum(running - self.lateness - 1, self._closed_upto)
        closed_before = np.empty_like(closed_after)
        closed_before[0] = self._closed_upto
        closed_before[1:] = closed_after[:-1]
        on_time = idx > closed_before
        self.late_events += int(n - on_time.sum())
        ws = self.window_s
        for w in np.unique(idx[on_time]).tolist():
            agg = self._open.get(w)
            if agg is None:
                agg = self._open[w] = WindowAggregate(w, w * ws, (w + 1) * ws)
            cols.add_into(agg, on_time & (idx == w))
        top = int(running[-1])
        if self._watermark is None or top > self._watermark:
            self._watermark = top
            return self._close_before(top - self.lateness)
        return []

    def add_feedback(
        self,
        ts: float,
        model_version: str,
        attributed: tuple[str, ...],
        action: str,
        tenant: str | None = None,
    ) -> list[WindowAggregate]:
        """Count one feedback event as evidence for each attributed category."""
        if action == "unblock":
            slot = 2
        elif action in ("report", "block"):
            slot = 3
        else:
            return []
        agg, closed = self._window(ts)
        if agg is None:
            return closed
        for cat in attributed:
            key = (cat, model_version)
            cell = agg.cells.get(key)
            if cell is None:
                cell = agg.cells[key] = [0] * _CELL_LEN
            cell[slot] += 1
            if tenant is not None:
                tc = agg.tenant_cells.get((tenant, cat))
                if tc is None:
                    tc = agg.tenant_cells[(tenant, cat)] = [0, 0, 0]
                tc[slot - 1] += 1
        return closed

    def flush(self) -> list[WindowAggregate]:
        """Close every open window (end of input)."""
        out = [self._open.pop(i) for i in sorted(self._open)]
        if out:
            self._closed_upto = max(self._closed_upto, out[-1].index)
        return out


def remember_and_count(
    run: Sequence[Verdict], cache: VerdictCache, aggregator: WindowAggregator, stored: int = 0
) -> list[WindowAggregate]:
    """A run of verdicts into the join cache (all of them) and the window aggregate (all
    but the first ``stored``, already counted before a restart); returns closed windows.

    Both take the run column-wise when it is long enough: the cache's admission test
    (blocked, or scored in a blockable category) and the counts share one set of columns.
    """
    fresh = run[stored:] if stored else run
    if len(run) < COLUMNAR_MIN:
        cache.add_many(run)
        return aggregator.add_verdicts(fresh) if fresh else []
    cols = VerdictColumns(run, HIST_BINS)
    cache.add_many(run, (cols.blocked | cols.any_score(cache.min_score, BLOCKABLE)).tolist())
    if not fresh:
        return []
    return aggregator.add_verdicts(fresh, cols if not stored else None)
