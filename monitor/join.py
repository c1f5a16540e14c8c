"""Joins feedback to the verdict it is about, within a bounded event-time horizon.

Feedback names a request id; the detectors need the verdict's model version and the
categories it was blocked for (an unblock is evidence *against those categories*, not
against the corrected ones). We remember only verdicts that can draw feedback that
matters: every block, and allows that scored some blockable category (possible
under-blocks). Entries expire by event time, so memory is bounded by rate x horizon.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress

from monitor.events import Feedback, Verdict
from monitor.taxonomy import CATEGORIES, SeverityClass

__all__ = ["BLOCKABLE", "JoinedFeedback", "VerdictCache", "attribute"]

BLOCKABLE = frozenset(
    c.name for c in CATEGORIES if c.severity_class is not SeverityClass.OFTEN_OVERBLOCKED
)
_BUCKET_S = 10.0


@dataclass(slots=True)
class JoinedFeedback:
    feedback: Feedback
    found: bool
    verdict_ts: float | None
    model_version: str
    domain: str
    url: str
    decision: str
    predicted: tuple[str, ...]
    attributed: tuple[str, ...]


class VerdictCache:
    """Recent verdicts by request id, expiring ``horizon_s`` of event time after they were seen."""

    def __init__(self, horizon_s: float = 300.0, min_score: float = 0.05):
        if horizon_s <= 0:
            raise ValueError("horizon_s must be > 0")
        self.horizon_s = horizon_s
        self.min_score = min_score
        self._buckets: deque[tuple[int, dict]] = deque()
        self.size = 0

    def add(self, v: Verdict) -> None:
        if v.decision != "block":
            ms = self.min_score
            if not any(s >= ms and c in BLOCKABLE for c, s in v.scores.items()):
                return
        b = int(v.ts // _BUCKET_S)
        if not self._buckets or self._buckets[-1][0] < b:
            self._buckets.append((b, {}))
            self._expire(b)
        bucket = self._buckets[-1][1] if self._buckets[-1][0] == b else self._find(b)
        if bucket is None:
            return
        bucket[v.request_id] = (v.ts, v.model_version, v.domain, v.url, v.decision, v.categories)
        self.size += 1

    def add_many(self, verdicts: Sequence[Verdict], wanted: Sequence[bool] | None = None) -> None:
        """:meth:`add` for each, in order. ``wanted`` (if known, e.g. computed column-wise
        by :meth:`monitor.columnar.VerdictColumns.any_score`) marks the verdicts worth
        remembering; the rest (safe allows, most traffic) are skipped without a look."""
        if wanted is None:
            for v in verdicts:
                self.add(v)
            return
        cur_b, cur = None, None
        for v in compress(verdicts, wanted):
            b = int(v.ts // _BUCKET_S)
            if b == cur_b:
                cur[v.request_id] = (v.ts, v.model_version, v.domain, v.url, v.decision,
                                     v.categories)  # fmt: skip
                self.size += 1
                continue
            self.add(v)
            last_b, last = self._buckets[-1]
            cur_b, cur = (last_b, last) if last_b == b else (None, None)

    def _find(self, b: int) -> dict | None:
        for idx, d in reversed(self._buckets):
            if idx == b:
                return d
            if idx < b:
                return None
        return None

    def _expire(self, newest: int) -> None:
        keep_from = newest - int(self.horizon_s // _BUCKET_S) - 1
        while self._buckets and self._buckets[0][0] < keep_from:
            _, d = self._buckets.popleft()
            self.size -= len(d)

    def get(self, request_id: str):
        for _, d in reversed(self._buckets):
            hit = d.get(request_id)
            if hit is not None:
                return hit
        return None

    def join(self, f: Feedback) -> JoinedFeedback:
        hit = self.get(f.request_id) if f.request_id is not None else None
        if hit is None:
            return JoinedFeedback(
                f, False, None, "unknown", "", f.url or "", "unknown", (), attribute(f, None)
            )
        ts, mv, domain, url, decision, predicted = hit
        return JoinedFeedback(
            f, True, ts, mv, domain, url, decision, predicted, attribute(f, predicted, decision)
        )


def attribute(
    f: Feedback, predicted: tuple[str, ...] | None, decision: str | None = None
) -> tuple[str, ...]:
    """Which categories a feedback event is evidence about.

    An unblock disputes the categories the page was blocked for; it needs the verdict.
    A report or block request names the categories the page should have been blocked as.
    Relabels and confirmations are labels, not evidence for a rate signal.
    """
    if f.action == "unblock":
        return tuple(predicted) if predicted and decision == "block" else ()
    if f.action in ("report", "block"):
        return f.categories
    return ()
