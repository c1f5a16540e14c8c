"""Reads what label-free estimation needs from the store: histograms, labels, references.

Thin on purpose: the statistics are in :mod:`monitor.label_free` (histograms in,
estimates out) and :mod:`monitor.calibration`; this module only aggregates inside
ClickHouse and reshapes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from monitor.calibration import BINS, bin_of
from monitor.label_free import FreshLabels, Histogram
from monitor.storage import Store
from monitor.taxonomy import CATEGORIES

__all__ = ["Labelled", "fetch_histograms", "fetch_labelled", "fetch_series", "model_versions"]

NAMES = [c.name for c in CATEGORIES]
STEP = 300  # the rollup's period


def _align(t: float) -> int:
    return int(t // STEP * STEP)


def model_versions(store: Store, since: float, until: float) -> list[str]:
    return [
        r[0]
        for r in store.rows(
            f"SELECT model_version, sum(requests) AS n FROM {store.db}.traffic_fleet_1m "
            "WHERE minute >= toDateTime({a:Int64}) AND minute < toDateTime({b:Int64}) "
            "GROUP BY model_version ORDER BY n DESC",
            {"a": _align(since), "b": _align(until)},
        )
    ]


def fetch_series(
    store: Store, model_version: str, since: float, until: float, step_s: int = STEP
) -> list[tuple[float, dict[str, Histogram]]]:
    """Histograms per window of ``step_s`` (a multiple of 5 minutes), oldest first."""
    step = max(STEP, int(step_s) // STEP * STEP)
    p = {"mv": model_version, "a": _align(since), "b": _align(until), "step": step}
    win = "toUnixTimestamp(toStartOfInterval({col}, INTERVAL {{step:UInt32}} SECOND))"
    requests = dict(
        store.rows(
            f"SELECT {win.format(col='minute')} AS w, sum(requests) "
            f"FROM {store.db}.traffic_fleet_1m WHERE model_version = {{mv:String}} "
            "AND minute >= toDateTime({a:Int64}) AND minute < toDateTime({b:Int64}) GROUP BY w",
            p,
        )
    )
    cells: dict[int, dict[str, list[np.ndarray]]] = {}
    for w, cat, pred, b, pages in store.rows(
        f"SELECT {win.format(col='period')} AS w, category, predicted, bin, sum(pages) "
        f"FROM {store.db}.score_cal_5m WHERE model_version = {{mv:String}} "
        "AND period >= toDateTime({a:Int64}) AND period < toDateTime({b:Int64}) "
        "GROUP BY w, category, predicted, bin",
        p,
    ):
        per = cells.setdefault(int(w), {})
        h = per.setdefault(cat, [np.zeros(BINS), np.zeros(BINS)])
        h[0 if pred else 1][b] += pages
    out = []
    for w in sorted(requests):
        n = float(requests[w])
        hists = {}
        for c in NAMES:
            pred, unpred = cells.get(w, {}).get(c, [np.zeros(BINS), np.zeros(BINS)])
            unpred = unpred.copy()
            unpred[0] += max(0.0, n - pred.sum() - unpred.sum())  # unscored pages
            hists[c] = Histogram(pred, unpred)
        out.append((float(w), hists))
    return out


def fetch_histograms(
    store: Store, model_version: str, since: float, until: float
) -> dict[str, Histogram]:
    """One histogram per category over the whole range."""
    total: dict[str, Histogram] = {}
    span = max(STEP, _align(until) - _align(since) + STEP)
    for _, hists in fetch_series(store, model_version, since, until, span):
        for c, h in hists.items():
            t = total.get(c)
            total[c] = (
                h
                if t is None
                else Histogram(t.predicted + h.predicted, t.unpredicted + h.unpredicted)
            )
    return total


@dataclass
class Labelled:
    """Labelled verdicts of one model version with their scores and sampling weights."""

    request_ids: list[str]
    scores: np.ndarray  # (n, k)
    truth: np.ndarray  # (n, k) bool
    weights: np.ndarray  # 1 / inclusion for queued labels (mean 1), 1 for random audits
    annotations: int  # labels behind them (several annotators: several)

    def fresh(self) -> dict[str, FreshLabels]:
        bins = bin_of(self.scores)
        return {
            c: FreshLabels(bins[:, j], self.truth[:, j], self.weights) for j, c in enumerate(NAMES)
        }


def _consensus(sets: list[list[str]]) -> set[str]:
    """Majority per category; a tie counts as present (a missed harm costs more)."""
    votes = Counter(c for s in sets for c in set(s))
    return {c for c, v in votes.items() if 2 * v >= len(sets)}


def fetch_labelled(store: Store, model_version: str, since: float, until: float) -> Labelled:
    """Analyst labels (audits and imported labels, which travel as audits) of verdicts in
    [since, until), with the verdict's scores (the queue's copy, else the raw verdict)."""
    db = store.db
    p = {"mv": model_version, "a": int(since * 1000), "b": int(until * 1000)}
    latest = {
        rid: list(cats)
        for rid, cats in store.rows(
            f"SELECT request_id, argMax(categories, ts) FROM {db}.feedback "
            "WHERE actor = 'analyst' AND action IN ('confirm', 'relabel') AND joined = 1 "
            "AND model_version = {mv:String} "
            "AND verdict_ts >= fromUnixTimestamp64Milli({a:Int64}) "
            "AND verdict_ts < fromUnixTimestamp64Milli({b:Int64}) GROUP BY request_id",
            p,
        )
    }
    if not latest:
        k = len(NAMES)
        return Labelled([], np.zeros((0, k)), np.zeros((0, k), bool), np.zeros(0), 0)
    ids = sorted(latest)
    sets: dict[str, list[list[str]]] = {}
    for rid, cats in store.rows(
        f"SELECT request_id, categories FROM {db}.labels WHERE request_id IN {{ids:Array(String)}}",
        {"ids": ids},
    ):
        sets.setdefault(rid, []).append(list(cats))
    scores: dict[str, dict] = {}
    weight: dict[str, float] = {}
    for rid, sc, inc in store.rows(
        f"SELECT request_id, argMax(scores, created_at), argMax(inclusion, created_at) "
        f"FROM {db}.label_queue WHERE request_id IN {{ids:Array(String)}} GROUP BY request_id",
        {"ids": ids},
    ):
        scores[rid], weight[rid] = dict(sc), 1.0 / inc if inc > 0 else 1.0
    missing = [r for r in ids if r not in scores]
    if missing:
        for rid, sc in store.rows(
            f"SELECT request_id, any(scores) FROM {db}.verdicts "
            "WHERE request_id IN {ids:Array(String)} GROUP BY request_id",
            {"ids": missing},
        ):
            scores[rid] = dict(sc)
    ids = [r for r in ids if r in scores]
    col = {c: j for j, c in enumerate(NAMES)}
    s = np.zeros((len(ids), len(NAMES)))
    t = np.zeros((len(ids), len(NAMES)), dtype=bool)
    w = np.ones(len(ids))
    queued = np.zeros(len(ids), dtype=bool)
    for i, rid in enumerate(ids):
        for c, v in scores[rid].items():
            if c in col:
                s[i, col[c]] = v
        truth = _consensus(sets[rid]) if rid in sets else set(latest[rid])
        for c in truth:
            if c in col:
                t[i, col[c]] = True
        if rid in weight:
            w[i], queued[i] = weight[rid], True
    if queued.any():
        w[queued] /= w[queued].mean()  # queued labels keep their relative weights
    return Labelled(ids, s, t, w, sum(len(v) for v in sets.values()) or len(ids))
