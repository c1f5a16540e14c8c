"""Stage 1 of the streaming shape: a batch of raw messages -> storage, dead letters, partials.

Free of Kafka: the Faust agent hands in (topic, partition, offset, value) and sends out
what this returns. Each batch is stored with deterministic dedup tokens and the source
offsets of its rows; on the first batch of a source partition after a (re)start the
stage reads how far each table already holds that partition (``Store.stored_upto``) and
drops redelivered messages below the mark, so at-least-once delivery from Kafka never
double-counts in ClickHouse, whatever the batch boundaries were before the crash.

Window aggregation here is per batch and per source partition: the stage keeps no open
windows that a crash could lose. Every (window, category) slice of the batch goes out as
a *partial* keyed by category; stage 2 (:mod:`monitor.detect`) merges them per window.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import orjson

from monitor.aggregate import WindowAggregator, remember_and_count
from monitor.config import Config
from monitor.events import Feedback, Verdict
from monitor.join import VerdictCache
from monitor.scrub import scrub_text
from monitor.storage import Store, dead_letter_row, dedup_token
from monitor.taxonomy import CATEGORY_NAMES
from monitor.validation import Rejection, Validator

__all__ = ["LATENCY_KEY", "DeadLetter", "IngestOutput", "IngestStage", "Message"]

LATENCY_KEY = "*"


@dataclass(frozen=True, slots=True)
class Message:
    """One Kafka message, or one line of a framed one (``framed``: JSON lines inside)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    framed: bool = False
    line: int = 0

    def lines(self) -> list[Message]:
        """A framed message as one message per line (at the same offset); else itself."""
        if not self.framed or self.value is None:
            return [self]
        t, p, o = self.topic, self.partition, self.offset
        return [Message(t, p, o, v, False, i) for i, v in enumerate(self.value.split(b"\n"))]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A refused message: the original bytes plus where it came from and why."""

    value: bytes
    reason: str
    field: str
    detail: str
    topic: str
    partition: int
    offset: int
    line: int = 0

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            ("fw-reason", self.reason.encode()),
            ("fw-field", self.field.encode()),
            ("fw-detail", scrub_text(self.detail, 300).encode()),
            ("fw-source-topic", self.topic.encode()),
            ("fw-source-partition", str(self.partition).encode()),
            ("fw-source-offset", str(self.offset).encode()),
            ("fw-source-line", str(self.line).encode()),
        ]


@dataclass
class IngestOutput:
    partials: list[tuple[str, bytes]] = field(default_factory=list)  # (key, JSON payload)
    dead: list[DeadLetter] = field(default_factory=list)
    verdicts: int = 0
    feedback: int = 0
    skipped: int = 0  # redelivered and already stored
    rejected_by_reason: Counter = field(default_factory=Counter)


@dataclass
class _SourceBatch:
    """One source partition's share of a batch, between the stage's phases."""

    src: str
    msgs: list[Message]
    raws: list[bytes]
    results: list
    segments: list[tuple[int, int]]
    mark_v: int
    verdicts: list[Verdict] = field(default_factory=list)
    v_off: list[int] = field(default_factory=list)
    feedback: list = field(default_factory=list)
    f_off: list[int] = field(default_factory=list)
    dead_rows: list[tuple] = field(default_factory=list)
    agg: WindowAggregator | None = None


def _position(m: Message) -> tuple[int, int]:
    return m.offset, m.line


class IngestStage:
    def __init__(self, config: Config, store: Store):
        self.config = config
        self.store = store
        ing = config.ingest
        self.validator = Validator.from_config(config)
        self.cache = VerdictCache(ing.join_horizon_s)
        self.window_s = config.detect.window_s
        self._marks: dict[str, dict[str, int]] = {}  # source -> table -> stored offset
        self.totals = Counter()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fw-insert")

    def forget_marks(self) -> None:
        """After a rebalance: a partition that comes back may have been stored meanwhile
        by another worker (a shared ClickHouse server), so its marks are read again."""
        self._marks.clear()

    def _mark(self, src: str) -> dict[str, int]:
        m = self._marks.get(src)
        if m is None:
            m = self._marks[src] = self.store.stored_upto(src)
        return m

    def _cache_and_count(self, run, msgs, mark_v: int, agg, out: IngestOutput) -> None:
        """A run of verdicts: all feed the join cache, the new ones the aggregate."""
        stored = bisect_right([m.offset for m in msgs], mark_v)  # offsets ascend
        out.skipped += stored
        remember_and_count(run, self.cache, agg, stored)

    def process(self, messages: list[Message]) -> IngestOutput:
        """Store, dead-letter and aggregate one batch (any mix of source partitions).

        All sources' new verdicts go into ClickHouse as *one* insert (each row keeps its
        own source and offset, the ledger): with the rollup views an insert costs ~40 ms
        however small (measured), so one per partition per batch capped a worker at a
        few thousand events/s. The insert runs in a thread (chDB releases the GIL) while
        this one caches and aggregates the batch.
        """
        by_src: dict[str, list[Message]] = {}
        for m in messages:
            by_src.setdefault(f"{m.topic}:{m.partition}", []).extend(m.lines())
        saved = {src: dict(self._mark(src)) for src in by_src}
        try:
            return self._process(by_src)
        except BaseException:
            # All or nothing: a failed insert (ClickHouse down, store unwritable) leaves
            # the ledger marks as they were, so the caller can retry the same batch; the
            # inserts that did land carry dedup tokens and are dropped the second time.
            self._marks.update(saved)
            raise

    def _process(self, by_src: dict[str, list[Message]]) -> IngestOutput:
        out = IngestOutput()
        parts = []
        for src, msgs in by_src.items():
            msgs.sort(key=_position)
            unique = [
                m for i, m in enumerate(msgs) if i == 0 or _position(m) != _position(msgs[i - 1])
            ]
            out.skipped += len(msgs) - len(unique)  # one offset delivered twice in a batch
            parts.append(self._split(src, unique))
        rows = [v for p in parts for v in p.verdicts]
        pending = None
        if rows:
            ranges = [(p.src, p.v_off[0], p.v_off[-1], len(p.v_off)) for p in parts if p.verdicts]
            token = dedup_token("v", *(x for r in ranges for x in r))
            srcs = [p.src for p in parts for _ in p.verdicts]
            offsets = [o for p in parts for o in p.v_off]
            pending = self._pool.submit(self.store.insert_verdicts, rows, token, srcs, offsets)
        try:
            for p in parts:
                self._count(p, out)
        finally:
            if pending is not None:
                pending.result()  # the insert's StorageError surfaces here, in the agent
        for p in parts:
            if p.verdicts:
                self._marks[p.src]["verdicts"] = p.v_off[-1]
            self._finish(p, out)
        for k in ("verdicts", "feedback", "skipped"):
            self.totals[k] += getattr(out, k)
        self.totals["rejected"] += len(out.dead)
        return out

    def _split(self, src: str, msgs: list[Message]) -> _SourceBatch:
        """Validate one source's messages; pick out the verdicts not stored before."""
        marks = self._mark(src)
        raws = [m.value if m.value is not None else b"" for m in msgs]
        slow: list[int] = []
        results = self.validator.validate_many(raws, slow=slow)
        # Segments in message order: runs of fast-path verdicts, and single slow items.
        segments: list[tuple[int, int]] = []
        start = 0
        for i in [*slow, len(msgs)]:
            if i > start:
                segments.append((start, i))
            if i < len(msgs):
                segments.append((i, i + 1))
            start = i + 1
        # Offsets at or below a table's mark were stored before a restart: skip them
        # there, but let stored verdicts still feed the join cache.
        mark_v = marks["verdicts"]
        p = _SourceBatch(src, msgs, raws, results, segments, mark_v)
        p.agg = WindowAggregator(self.window_s, lateness=10**9)
        for a, b in segments:
            if isinstance(results[a], Verdict):
                p.verdicts += [v for v, m in zip(results[a:b], msgs[a:b], strict=True)
                               if m.offset > mark_v]  # fmt: skip
                p.v_off += [m.offset for m in msgs[a:b] if m.offset > mark_v]
        return p

    def _count(self, p: _SourceBatch, out: IngestOutput) -> None:
        """Join cache, window aggregate, feedback joins and refusals, in message order."""
        marks, results, msgs = self._marks[p.src], p.results, p.msgs
        for a, b in p.segments:
            ev, m = results[a], msgs[a]
            if isinstance(ev, Verdict):
                self._cache_and_count(results[a:b], msgs[a:b], p.mark_v, p.agg, out)
            elif isinstance(ev, Feedback):
                if m.offset <= marks["feedback"]:
                    out.skipped += 1
                    continue
                j = self.cache.join(ev)
                p.feedback.append(j)
                p.f_off.append(m.offset)
                p.agg.add_feedback(ev.ts, j.model_version, j.attributed, ev.action, ev.tenant_id)
            else:
                assert isinstance(ev, Rejection)
                if m.offset <= marks["dead_letters"]:
                    out.skipped += 1
                    continue
                out.rejected_by_reason[ev.reason] += 1
                raw = p.raws[a]
                out.dead.append(DeadLetter(raw, ev.reason, ev.field or "", ev.detail,
                                           m.topic, m.partition, m.offset, m.line))  # fmt: skip
                p.dead_rows.append(dead_letter_row(p.src, m.offset, ev, raw))

    def _finish(self, p: _SourceBatch, out: IngestOutput) -> None:
        """Feedback and dead letters (after the verdicts: feedback late-joins to them),
        then the window partials."""
        src, msgs, marks = p.src, p.msgs, self._marks[p.src]
        feedback, f_off, dead_rows, agg, verdicts = (
            p.feedback, p.f_off, p.dead_rows, p.agg, p.verdicts
        )  # fmt: skip
        first, last = msgs[0].offset, msgs[-1].offset
        if feedback:
            self.store.insert_feedback(
                feedback, dedup_token(src, "f", f_off[0], f_off[-1], len(feedback)), src, f_off
            )
            marks["feedback"] = f_off[-1]
        if dead_rows:
            self.store.insert_dead_letters(
                dead_rows, dedup_token(src, "d", dead_rows[0][2], dead_rows[-1][2], len(dead_rows))
            )
            marks["dead_letters"] = dead_rows[-1][2]
        out.verdicts += len(verdicts)
        out.feedback += len(feedback)
        for w in agg.flush():
            base = {
                "w": w.index,
                "src": src,
                "batch": [first, last],
                "versions": w.versions,
                "tenants": w.tenants,
            }
            by_cat: dict[str, list] = {c: [] for c in CATEGORY_NAMES}
            tenant_by_cat: dict[str, list] = {c: [] for c in CATEGORY_NAMES}
            for (cat, mv), cell in w.cells.items():
                if cat in by_cat:
                    by_cat[cat].append([cat, mv, cell])
            for (tenant, cat), tcell in w.tenant_cells.items():
                if cat in tenant_by_cat:
                    tenant_by_cat[cat].append([tenant, cat, tcell])
            for cat, cells in by_cat.items():
                payload = {**base, "cells": cells, "tenant_cells": tenant_by_cat[cat]}
                out.partials.append((cat, orjson.dumps(payload)))
            fleet = {**base, "cells": [], "tenants": {}, "labelsets": w.labelsets}
            out.partials.append((LATENCY_KEY, orjson.dumps(fleet)))
