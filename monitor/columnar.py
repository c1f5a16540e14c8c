"""Columnar window aggregation: a batch of verdicts counted with numpy, not per event.

:meth:`monitor.aggregate.WindowAggregator.add_verdict` spends ~2.5 us of Python on each
verdict (a dozen dict look-ups and list updates). Here the batch's fields are pulled out
once into arrays (C-level ``map``/``fromiter`` passes), keys are factorised, and every
count of a window is one ``np.bincount``. The Python work left is per *key* (a few
hundred tenants and cells a window), not per event.

The result is exactly what the per-event path builds, including the order in which
keys first appear in each dict and the summation order of the latency sums (bincount
adds in input order, after the window's existing sum), so a bank fed either way makes
the same decisions; ``tests/unit/test_columnar.py`` checks this on simulated traffic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import chain, compress
from operator import attrgetter

import numpy as np
import pandas as pd

from monitor.events import Verdict
from monitor.taxonomy import CATEGORY_NAMES

__all__ = ["VerdictColumns"]

_CATS = tuple(sorted(CATEGORY_NAMES))
_CAT_CODE = {c: i for i, c in enumerate(_CATS)}
_NCAT = len(_CATS)

_ts = attrgetter("ts")
_mv = attrgetter("model_version")
_tenant = attrgetter("tenant_id")
_decision = attrgetter("decision")
_latency = attrgetter("latency_ms")
_cats = attrgetter("categories")
_scores = attrgetter("scores")
_is_block = "block".__eq__


def _factorize(values: list) -> tuple[np.ndarray, np.ndarray]:
    """Codes in first-seen order and the distinct values (hash-based, in C)."""
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    codes, uniques = pd.factorize(arr)
    return codes, uniques


def _first_seen(keys: np.ndarray) -> np.ndarray:
    """Distinct ``keys`` in the order they first occur."""
    uniq, first = np.unique(keys, return_index=True)
    return uniq[np.argsort(first, kind="stable")]


class VerdictColumns:
    """One batch of verdicts as arrays, ready to be added into window aggregates."""

    def __init__(self, verdicts: Sequence[Verdict], hist_bins: int):
        n = len(verdicts)
        self.n = n
        self.hist_bins = hist_bins
        self.ts = np.fromiter(map(_ts, verdicts), np.float64, n)
        self.mv_codes, self.mvs = _factorize(list(map(_mv, verdicts)))
        self.tenant_codes, self.tenants = _factorize(list(map(_tenant, verdicts)))
        self.blocked = np.fromiter(map(_is_block, map(_decision, verdicts)), np.bool_, n)
        self.latency = np.fromiter(map(_latency, verdicts), np.float64, n)
        cats = list(map(_cats, verdicts))
        self.categories = cats
        n_pred = np.fromiter(map(len, cats), np.int64, n)
        self.has_pred = n_pred > 0
        event = np.arange(n)
        # one row per predicted (event, category); duplicates kept, as the per-event path
        self.pred_event = np.repeat(event, n_pred)
        self.pred_cat = np.fromiter(
            map(_CAT_CODE.__getitem__, chain.from_iterable(cats)), np.int64, len(self.pred_event)
        )
        scores = list(map(_scores, verdicts))
        n_sc = np.fromiter(map(len, scores), np.int64, n)
        self.score_event = np.repeat(event, n_sc)
        m = len(self.score_event)
        self.score_cat = np.fromiter(
            map(_CAT_CODE.__getitem__, chain.from_iterable(scores)), np.int64, m
        )
        values = np.fromiter(chain.from_iterable(map(dict.values, scores)), np.float64, m)
        self.score_values = values
        self.score_bin = np.minimum((values * hist_bins).astype(np.int64), hist_bins - 1)
        # A scored category counts as predicted once, however often it is listed.
        pred_keys = np.unique(self.pred_event * _NCAT + self.pred_cat)
        self.score_pred = np.isin(self.score_event * _NCAT + self.score_cat, pred_keys)

    def any_score(self, min_score: float, categories: frozenset[str]) -> np.ndarray:
        """Per verdict: does it score at least ``min_score`` in one of ``categories``?"""
        wanted = np.array([c in categories for c in _CATS])
        hit = (self.score_values >= min_score) & wanted[self.score_cat]
        return np.bincount(self.score_event[hit], minlength=self.n) > 0

    def window_index(self, window_s: float) -> np.ndarray:
        return np.floor_divide(self.ts, window_s).astype(np.int64)

    def add_into(self, agg, sel: np.ndarray) -> None:
        """Add the events where ``sel`` is true into the window aggregate ``agg``."""
        self._versions(agg, sel)
        self._tenants(agg, sel)
        self._cells(agg, sel)
        self._labelsets(agg, sel)

    def _versions(self, agg, sel: np.ndarray) -> None:
        codes = self.mv_codes[sel]
        k = len(self.mvs)
        order = _first_seen(codes)
        req = np.bincount(codes, minlength=k)
        blk = np.bincount(codes, weights=self.blocked[sel], minlength=k)
        pred = np.bincount(codes, weights=self.has_pred[sel], minlength=k)
        # Latency sums start from each version's existing sum, then add in event order:
        # the same float additions, in the same order, as the per-event path.
        start = np.zeros(k)
        for c in order:
            ver = agg.versions.get(self.mvs[c])
            if ver is not None:
                start[c] = ver[2]
        lat = np.bincount(
            np.concatenate([np.arange(k), codes]),
            weights=np.concatenate([start, self.latency[sel]]),
            minlength=k,
        )
        for c in order:
            mv = self.mvs[c]
            ver = agg.versions.get(mv)
            if ver is None:
                ver = agg.versions[mv] = [0, 0, 0.0, 0, 0]
            r = int(req[c])
            ver[0] += r
            ver[1] += int(blk[c])
            ver[2] = float(lat[c])
            ver[3] += r
            ver[4] += int(pred[c])

    def _tenants(self, agg, sel: np.ndarray) -> None:
        codes = self.tenant_codes[sel]
        k = len(self.tenants)
        req = np.bincount(codes, minlength=k).tolist()
        blk = np.bincount(codes, weights=self.blocked[sel], minlength=k).astype(np.int64).tolist()
        names = self.tenants.tolist()
        tenants = agg.tenants
        get = tenants.get
        for c in _first_seen(codes).tolist():
            t = names[c]
            row = get(t)
            if row is None:
                tenants[t] = [req[c], blk[c]]
            else:
                row[0] += req[c]
                row[1] += blk[c]
        # blocks per (tenant, predicted category) of blocked verdicts
        ev = self.pred_event
        keep = sel[ev] & self.blocked[ev]
        if not keep.any():
            return
        keys = self.tenant_codes[ev[keep]] * _NCAT + self.pred_cat[keep]
        uniq, counts = _count_first_seen(keys)
        tcells = agg.tenant_cells
        tget = tcells.get
        cats = _CATS
        for key, n in zip(uniq.tolist(), counts.tolist(), strict=True):
            tk = (names[key // _NCAT], cats[key % _NCAT])
            tc = tget(tk)
            if tc is None:
                tcells[tk] = [n, 0, 0]
            else:
                tc[0] += n

    def _cells(self, agg, sel: np.ndarray) -> None:
        ev = self.score_event
        keep = sel[ev]
        if not keep.any():
            return
        nmv = len(self.mvs)
        keys = self.score_cat[keep] * nmv + self.mv_codes[ev[keep]]
        bins = self.hist_bins
        uniq, first, inv = np.unique(keys, return_index=True, return_inverse=True)
        k = len(uniq)
        hist = np.bincount(inv * bins + self.score_bin[keep], minlength=k * bins)
        hist = hist.reshape(k, bins).tolist()
        pred = self.score_pred[keep]
        npred = np.bincount(inv, weights=pred, minlength=k).tolist()
        nblk = np.bincount(inv, weights=pred & self.blocked[ev[keep]], minlength=k).tolist()
        uniq = uniq.tolist()
        cells = agg.cells
        width = 4 + bins
        for s in np.argsort(first, kind="stable").tolist():
            key = uniq[s]
            ck = (_CATS[key // nmv], self.mvs[key % nmv])
            cell = cells.get(ck)
            if cell is None:
                cell = cells[ck] = [0] * width
            cell[0] += int(npred[s])
            cell[1] += int(nblk[s])
            h = hist[s]
            for b in range(bins):
                cell[4 + b] += h[b]

    def _labelsets(self, agg, sel: np.ndarray) -> None:
        counts = Counter(compress(self.categories, (sel & self.has_pred).tolist()))
        labelsets = agg.labelsets
        for cats, n in counts.items():
            ls = "+".join(sorted(cats)) if len(cats) > 1 else cats[0]
            labelsets[ls] = labelsets.get(ls, 0) + n


def _count_first_seen(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys in first-seen order, with how often each occurs."""
    uniq, first, counts = np.unique(keys, return_index=True, return_counts=True)
    order = np.argsort(first, kind="stable")
    return uniq[order], counts[order]
