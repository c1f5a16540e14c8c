"""The model card's calibration and estimated-vs-measured sections.

On the evaluation set itself the label-free estimate is *cross-fitted*: the set is split
in two halves by a seeded permutation, each half is estimated with the calibration fitted
on the other, and the two estimates are summed. So the card shows how far the estimate
lands from the measured counts on data the calibration did not see, which is what it
will do in production, and not the trivial agreement on its own training labels.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from detectors.stats import clopper_pearson
from monitor.calibration import CalibrationError, CalibrationSet, fit_calibration
from monitor.evalset import EvalSet
from monitor.label_free import estimate_category, histogram_from_scores
from monitor.modelcard import ModelCardMetrics, label_matrices

__all__ = ["calibration_rows", "cross_fitted_rows", "fit_from_evalset", "plot_reliability"]

Z = 1.959964


def fit_from_evalset(es: EvalSet, seed: int = 0) -> CalibrationSet:
    cats = es.categories
    y, _, s = label_matrices(es, cats)
    w = np.array([r.weight for r in es.rows])
    return fit_calibration(
        es.model_versions[0], cats, s, y.astype(bool), w, sources=[Path(es.path).name], seed=seed
    )


def calibration_rows(cal: CalibrationSet) -> list[list[str]]:
    head = [
        "category",
        "chosen",
        "labels",
        "positives",
        "log loss isotonic",
        "log loss Platt",
        "log loss beta",
        "ECE (chosen, out of fold)",
    ]
    out = [head]
    for c, k in cal.categories.items():
        cv = k.cv
        out.append(
            [
                c,
                k.method,
                f"{k.labels:,}",
                f"{k.positives:,.0f}",
                *(f"{cv[m]['log_loss']:.5f}" for m in ("isotonic", "platt", "beta")),
                f"{cv[k.method]['ece']:.4f}",
            ]
        )
    return out


def plot_reliability(cal: CalibrationSet, path: Path) -> None:
    from monitor.plots import small_multiples

    def draw(ax, c: str) -> str:
        k = cal.categories[c]
        pts = k.reliability
        ax.plot([0, 1], [0, 1], color="#999", lw=0.8, ls="--")
        predicted = [p["predicted"] for p in pts]
        observed = [p["observed"] for p in pts]
        # Area by labels (log): a bin of 2 labels at (0.5, 1.0) is noise, not miscalibration.
        sizes = [6 + 18 * math.log10(1 + p["labels"]) for p in pts]
        ax.plot(predicted, observed, color="#1f4e79", lw=0.5, alpha=0.4)
        ax.scatter(predicted, observed, s=sizes, color="#1f4e79", alpha=0.8)
        return f"{c} ({k.method})"

    small_multiples(
        list(cal.categories), draw, path, "calibrated probability (out of fold)", "observed share"
    )


def cross_fitted_rows(
    es: EvalSet, m: ModelCardMetrics, thresholds=None, seed: int = 0
) -> list[list[str]]:
    """Measured FP/FN (counts, rates with Clopper-Pearson intervals) beside the cross-
    fitted label-free estimate with its interval, per category."""
    cats = m.categories
    y, pred, s = label_matrices(es, cats, thresholds)
    w = np.array([r.weight for r in es.rows])
    half = np.random.default_rng(seed).permutation(len(es.rows)) % 2 == 0
    cals = []
    for part in (half, ~half):
        try:
            cals.append(
                fit_calibration("cv", cats, s[part], y[part].astype(bool), w[part], seed=seed)
            )
        except CalibrationError:  # a half too small to calibrate: no estimate to show
            return []
    head = [
        "category",
        "measured FP",
        "estimated FP [95%]",
        "measured FN",
        "estimated FN [95%]",
        "measured FNR [95%]",
        "estimated FNR [95%]",
    ]
    out = [head]
    for j, c in enumerate(cats):
        parts = []
        for cal, rows in ((cals[1], half), (cals[0], ~half)):
            k = cal.categories.get(c)
            if k is None:
                break
            # Weighted rows: an enriched set's safe pages stand for 1 / fraction each.
            h = histogram_from_scores(s[rows, j], pred[rows, j].astype(bool), w[rows])
            parts.append(estimate_category(k, h))
        if len(parts) < 2:
            continue
        fp = sum(p.fp.value for p in parts)
        fn = sum(p.fn.value for p in parts)
        fp_lo, fp_hi = sum(p.fp.low for p in parts), sum(p.fp.high for p in parts)
        fn_lo, fn_hi = sum(p.fn.low for p in parts), sum(p.fn.high for p in parts)
        tp = sum(p.tp.value for p in parts)
        yt, pt = y[:, j].astype(bool), pred[:, j].astype(bool)
        m_fp = float(w[pt & ~yt].sum())
        m_fn = float(w[~pt & yt].sum())
        m_tp = float(w[pt & yt].sum())
        lo, hi = clopper_pearson(m_fn, m_fn + m_tp)
        fnr = fn / (fn + tp) if fn + tp else 0.0
        fnr_lo = fn_lo / (fn_lo + tp) if fn_lo + tp else 0.0
        fnr_hi = fn_hi / (fn_hi + tp) if fn_hi + tp else 0.0
        out.append(
            [
                c,
                f"{m_fp:,.0f}",
                f"{fp:,.1f} [{fp_lo:,.1f}, {fp_hi:,.1f}]",
                f"{m_fn:,.0f}",
                f"{fn:,.1f} [{fn_lo:,.1f}, {fn_hi:,.1f}]",
                f"{m_fn / max(m_fn + m_tp, 1e-9):.3f} [{lo:.3f}, {hi:.3f}]",
                f"{fnr:.3f} [{fnr_lo:.3f}, {fnr_hi:.3f}]",
            ]
        )
    return out
