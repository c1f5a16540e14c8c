"""An evaluation set replayed as traffic: verdict events, and analyst labels as feedback.

Each evaluated page becomes one ``verdict/1`` (source ``replay``): its predicted
categories are those whose score reaches the decision threshold (the same rule as the
model card), its decision follows a tenant policy. Each labelled page then gets one
``feedback/1`` from an ``analyst`` a little later: ``confirm`` when the prediction was
right, ``relabel`` when not, carrying the true categories. Relabels and confirmations are
labels, not over/under-blocking evidence, so a fully labelled replay does not inflate the
unblock or report rate signals; it does give the online metrics a complete, unbiased
label sample, which is why replaying an evaluation set reproduces its model card online.

Event times: a file whose rows all carry ``ts`` keeps them (sorted); otherwise, or with
``retime``, rows are stamped ``rate`` per second of event time ending now.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from monitor.errors import InputError
from monitor.evalset import EvalRow, EvalSet
from monitor.events import FEEDBACK_SCHEMA, VERDICT_SCHEMA
from monitor.taxonomy import POLICIES, category

__all__ = ["EvalReplay", "EvalReplayConfig", "predicted_categories"]


def predicted_categories(
    scores: dict[str, float], thresholds: dict[str, float] | None = None
) -> tuple[str, ...]:
    """Categories whose score reaches their threshold, in score order (highest first)."""
    thr = thresholds or {}
    hits = [(s, c) for c, s in scores.items() if s >= thr.get(c, category(c).threshold)]
    return tuple(c for _s, c in sorted(hits, key=lambda h: (-h[0], h[1])))


@dataclass(frozen=True)
class EvalReplayConfig:
    policy: str = "standard"
    thresholds: dict[str, float] | None = None
    rate: float = 50.0  # rows per second of event time, when rows are restamped
    retime: bool = False
    label_fraction: float = 1.0  # share of rows whose analyst label is replayed
    label_delay_s: float = 2.0
    seed: int = 0
    rollup_retention_days: int = 400
    now: float | None = None  # wall clock, injectable for tests

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise InputError(
                f"--policy {self.policy!r} is not a policy; use one of {', '.join(POLICIES)}"
            )
        if not self.rate > 0:
            raise InputError("--rate must be a positive number of rows per second")
        if not 0 <= self.label_fraction <= 1:
            raise InputError("--label-fraction must lie in [0, 1]")
        if self.label_delay_s < 0:
            raise InputError("--label-delay must be >= 0 seconds")


@dataclass
class _Counts:
    verdicts: int = 0
    blocked: int = 0
    labels: int = 0


class EvalReplay:
    """The events of one evaluation set, in event-time order, and what they should add up to."""

    def __init__(self, evalset: EvalSet, config: EvalReplayConfig | None = None):
        self.evalset = evalset
        self.config = config or EvalReplayConfig()
        self.blockset = POLICIES[self.config.policy]
        self._times = self._stamp()
        rng = np.random.default_rng(self.config.seed)
        self._labelled = rng.random(len(evalset.rows)) < self.config.label_fraction
        self.expected = self._expect()

    # -- timing -----------------------------------------------------------------------
    def _stamp(self) -> list[float]:
        rows, cfg = self.evalset.rows, self.config
        now = time.time() if cfg.now is None else cfg.now
        if not cfg.retime and all(r.ts is not None for r in rows):
            times = [float(r.ts) for r in rows]
            oldest = min(times)
            if oldest < now - cfg.rollup_retention_days * 86400:
                raise InputError(
                    f"{self.evalset.path}: rows date from "
                    f"{time.strftime('%Y-%m-%d', time.gmtime(oldest))}, older than the "
                    f"{cfg.rollup_retention_days}-day rollup retention; pass --retime"
                )
            return times
        start = now - len(rows) / cfg.rate
        return [start + i / cfg.rate for i in range(len(rows))]

    # -- events -----------------------------------------------------------------------
    def verdict(self, row: EvalRow, ts: float) -> dict:
        predicted = predicted_categories(row.scores, self.config.thresholds)
        block = any(c in self.blockset for c in predicted)
        return {
            "schema": VERDICT_SCHEMA,
            "request_id": row.page_id,
            "ts": round(ts, 3),
            "tenant_id": row.tenant_id or "eval",
            "url": row.url,
            "model_version": row.model_version,
            "scores": row.scores,
            "categories": list(predicted),
            "decision": "block" if block else "allow",
            "policy": self.config.policy,
            "latency_ms": 0.0,
            "source": "replay",
        }

    def label(self, row: EvalRow, ts: float, predicted: list[str]) -> dict:
        true = sorted(row.true)
        return {
            "schema": FEEDBACK_SCHEMA,
            "feedback_id": f"label:{row.page_id}",
            "request_id": row.page_id,
            "ts": round(ts + self.config.label_delay_s, 3),
            "tenant_id": row.tenant_id or "eval",
            "actor": "analyst",
            "action": "confirm" if set(true) == set(predicted) else "relabel",
            "categories": true,
        }

    def events(self) -> Iterator[dict]:
        """Verdicts and labels merged in event-time order (a label follows its verdict)."""
        order = sorted(range(len(self.evalset.rows)), key=lambda i: (self._times[i], i))
        pending: list[tuple[float, int, dict]] = []
        for i in order:
            row, ts = self.evalset.rows[i], self._times[i]
            while pending and pending[0][0] <= ts:
                yield heapq.heappop(pending)[2]
            v = self.verdict(row, ts)
            yield v
            if self._labelled[i]:
                fb = self.label(row, ts, v["categories"])
                heapq.heappush(pending, (fb["ts"], i, fb))
        while pending:
            yield heapq.heappop(pending)[2]

    def _expect(self) -> dict:
        """What the store must hold after the replay: requests, blocks, labels, per category."""
        c = _Counts()
        predicted: dict[str, int] = {}
        for i, row in enumerate(self.evalset.rows):
            pred = predicted_categories(row.scores, self.config.thresholds)
            c.verdicts += 1
            c.blocked += any(p in self.blockset for p in pred)
            c.labels += bool(self._labelled[i])
            for p in pred:
                predicted[p] = predicted.get(p, 0) + 1
        return {
            "verdicts": c.verdicts,
            "blocked": c.blocked,
            "labels": c.labels,
            "predicted": dict(sorted(predicted.items())),
            "first_ts": min(self._times),
            "last_ts": max(self._times),
        }
