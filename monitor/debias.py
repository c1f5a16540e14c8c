"""Precision, recall and FNR from the annotation queue's labels, de-biased by design.

The queue oversamples uncertain, CIPA and alerting verdicts, so the labelled set is not
production's mix: a plain average over it overstates the errors. Each stratum ``s`` of
the queue had ``N_s`` verdicts of which ``m_s`` came back labelled, so every label
stands for ``N_s / m_s`` verdicts (Horvitz-Thompson under stratified simple random
sampling; labels that never came back are taken as missing at random within their
stratum). TP, FP and FN totals are weighted sums, precision and recall their ratios.

Variance: the stratified variance of the linearised ratio, ``sum_s N_s^2 (1 - m_s/N_s)
var_s(z) / m_s`` with ``z = y - R x``; a stratum with a single label borrows the
variance of its (focus, band) parent (collapsed strata, conservative). The 95% interval
is a Wilson interval on the design's effective sample size, so a ratio at 0 or 1 (a
clean category: all sampled blocks were right) still gets an honest width.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass

import numpy as np

from monitor.storage import Store
from monitor.taxonomy import CATEGORIES

__all__ = ["DebiasedEstimate", "Unit", "debiased", "fetch_queue_units", "wilson"]

Z = 1.959964


@dataclass(frozen=True)
class Unit:
    """One labelled verdict of a queue."""

    stratum: str
    parent: str  # focus|band: where a single-label stratum borrows its variance
    predicted: frozenset[str]
    truth: frozenset[str]


@dataclass
class DebiasedEstimate:
    category: str
    precision: tuple[float, float, float]  # value, low, high
    recall: tuple[float, float, float]
    fnr: tuple[float, float, float]
    tp: float
    fp: float
    fn: float
    labels: int
    population: int
    covered: float  # share of the population in strata with at least one label
    naive_precision: float  # unweighted, over the labels: the biased number
    naive_recall: float

    def to_json(self) -> dict:
        return asdict(self)


def wilson(p: float, n_eff: float) -> tuple[float, float]:
    if n_eff <= 0:
        return 0.0, 1.0
    d = 1 + Z * Z / n_eff
    centre = (p + Z * Z / (2 * n_eff)) / d
    half = Z * math.sqrt(p * (1 - p) / n_eff + Z * Z / (4 * n_eff * n_eff)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


def _ratio(
    strata: dict[str, tuple[int, list[tuple[float, float]], str]],
) -> tuple[float, float, float, float, float]:
    """(R, low, high, Y, X) of sum y / sum x over stratified samples."""
    y_tot = x_tot = 0.0
    for size, pairs, _ in strata.values():
        if pairs:
            w = size / len(pairs)
            y_tot += w * sum(p[0] for p in pairs)
            x_tot += w * sum(p[1] for p in pairs)
    if x_tot <= 0:
        return 0.0, 0.0, 1.0, y_tot, x_tot
    r = y_tot / x_tot
    parent_z: dict[str, list[float]] = defaultdict(list)
    for _size, pairs, parent in strata.values():
        parent_z[parent] += [y - r * x for y, x in pairs]
    var = 0.0
    for size, pairs, parent in strata.values():
        m = len(pairs)
        if m == 0:
            continue
        z = [y - r * x for y, x in pairs]
        zz = z if m >= 2 else parent_z[parent]
        s2 = float(np.var(zz, ddof=1)) if len(zz) >= 2 else 0.25
        var += size * size * (1 - m / size) * s2 / m
    var /= x_tot * x_tot
    # Effective sample size of the design: what a simple random sample would need for
    # the same variance; at R in {0, 1} (no variance to read) the count of x-units.
    n_x = sum(sum(1 for p in pairs if p[1]) for _, pairs, _ in strata.values())
    n_eff = r * (1 - r) / var if var > 0 and 0 < r < 1 else n_x
    n_eff = min(n_eff, n_x) if n_x else n_eff
    lo, hi = wilson(r, n_eff)
    return r, min(lo, r), max(hi, r), y_tot, x_tot


def debiased(
    units: list[Unit], strata_sizes: dict[str, tuple[int, str]], categories: list[str]
) -> dict[str, DebiasedEstimate]:
    """Per category; ``strata_sizes``: stratum -> (verdicts in it, parent) (pure)."""
    population = sum(n for n, _ in strata_sizes.values())
    by_stratum: dict[str, list[Unit]] = defaultdict(list)
    for u in units:
        by_stratum[u.stratum].append(u)
    covered = sum(n for s, (n, _) in strata_sizes.items() if by_stratum.get(s)) / max(population, 1)
    out = {}

    def pairs(c: str, denominator: str) -> dict:
        """Per stratum: (size, [(is TP, is in the denominator) per label], parent)."""
        return {
            s: (
                n,
                [
                    (float(c in u.predicted and c in u.truth), float(c in getattr(u, denominator)))
                    for u in by_stratum.get(s, [])
                ],
                parent,
            )
            for s, (n, parent) in strata_sizes.items()
        }

    for c in categories:
        prec = _ratio(pairs(c, "predicted"))
        rec = _ratio(pairs(c, "truth"))
        tp, pred, pos = prec[3], prec[4], rec[4]
        n_tp = sum(1 for u in units if c in u.predicted and c in u.truth)
        n_pred = sum(1 for u in units if c in u.predicted)
        n_pos = sum(1 for u in units if c in u.truth)
        out[c] = DebiasedEstimate(
            category=c,
            precision=prec[:3],
            recall=rec[:3],
            fnr=(1 - rec[0], 1 - rec[2], 1 - rec[1]),
            tp=tp,
            fp=pred - tp,
            fn=pos - tp,
            labels=len(units),
            population=population,
            covered=covered,
            naive_precision=n_tp / n_pred if n_pred else 0.0,
            naive_recall=n_tp / n_pos if n_pos else 0.0,
        )
    return out


def fetch_queue_units(store: Store, queue_id: str) -> tuple[list[Unit], dict[str, tuple[int, str]]]:
    """The queue's strata and its labelled verdicts (the analysts' consensus per verdict)."""
    from monitor.estimate_store import _consensus

    db = store.db
    strata = {
        s: (int(n), f"{f}|{b}")
        for s, f, b, n in store.rows(
            f"SELECT stratum, any(focus), any(band), any(stratum_size) FROM {db}.label_strata "
            "WHERE queue_id = {q:String} GROUP BY stratum",
            {"q": queue_id},
        )
    }
    labels: dict[str, list[list[str]]] = defaultdict(list)
    for rid, cats in store.rows(
        f"SELECT l.request_id, l.categories FROM {db}.labels AS l "
        f"WHERE l.request_id IN (SELECT request_id FROM {db}.label_queue "
        "WHERE queue_id = {q:String})",
        {"q": queue_id},
    ):
        labels[rid].append(list(cats))
    units = []
    for rid, stratum, focus, band, pred in store.rows(
        f"SELECT request_id, any(stratum), any(focus), any(band), any(predicted) "
        f"FROM {db}.label_queue WHERE queue_id = {{q:String}} GROUP BY request_id",
        {"q": queue_id},
    ):
        if rid in labels:
            units.append(
                Unit(
                    stratum, f"{focus}|{band}", frozenset(pred), frozenset(_consensus(labels[rid]))
                )
            )
    return units, strata


def latest_queue(store: Store) -> str | None:
    """The queue the newest imported labels answer (else the newest queue with a label)."""
    db = store.db
    answered = store.scalar(
        f"SELECT queue_id FROM {db}.labels WHERE queue_id != '' "
        "ORDER BY imported_at DESC, labeled_at DESC LIMIT 1"
    )
    if answered:
        return answered
    return store.scalar(
        f"SELECT queue_id FROM {db}.label_queue GROUP BY queue_id "
        f"ORDER BY countIf(request_id IN (SELECT request_id FROM {db}.labels)) > 0 DESC, "
        "max(created_at) DESC LIMIT 1"
    )


ALL_CATEGORIES = [c.name for c in CATEGORIES]
