"""Model-card metrics from an evaluation set: per-category P/R/F1, averages, confusion.

Multi-label: a page is predicted in every category whose score reaches the category's
decision threshold (the taxonomy's, or ``--thresholds FILE``). Per category the counts
are a one-vs-rest confusion matrix ``[[tn, fp], [fn, tp]]`` (scikit-learn's
``multilabel_confusion_matrix`` layout); precision, recall and F1 follow scikit-learn's
``precision_recall_fscore_support`` with ``zero_division=0``: a category with no
predictions has precision 0, one with no positives recall 0. Averages: *micro* pools the
counts, *macro* is the unweighted mean over categories, *weighted* weighs by support.
The cross-category table counts, for each true label (or "safe"), the pages predicted in
each category (or none): where the misclassifications go.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.evalset import EvalSet
from monitor.taxonomy import CATEGORIES, SeverityClass, category

__all__ = ["ModelCardMetrics", "compute_metrics", "label_matrices"]

SAFE = "(safe)"


def label_matrices(
    evalset: EvalSet, categories: list[str], thresholds: dict[str, float] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y_true, y_pred, scores) as (rows x categories) arrays."""
    thr = np.array([(thresholds or {}).get(c, category(c).threshold) for c in categories])
    n, k = len(evalset.rows), len(categories)
    y_true = np.zeros((n, k), dtype=np.int8)
    scores = np.zeros((n, k), dtype=np.float64)
    col = {c: j for j, c in enumerate(categories)}
    for i, r in enumerate(evalset.rows):
        for c in r.true:
            if c in col:
                y_true[i, col[c]] = 1
        for c, s in r.scores.items():
            if c in col:
                scores[i, col[c]] = s
    y_pred = (scores >= thr).astype(np.int8)
    return y_true, y_pred, scores


def _prf(tp, fp, fn):
    p = np.divide(tp, tp + fp, out=np.zeros_like(tp, dtype=float), where=(tp + fp) > 0)
    r = np.divide(tp, tp + fn, out=np.zeros_like(tp, dtype=float), where=(tp + fn) > 0)
    f = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp, dtype=float),
                  where=(2 * tp + fp + fn) > 0)  # fmt: skip
    return p, r, f


@dataclass
class ModelCardMetrics:
    categories: list[str]
    confusion: np.ndarray  # (k, 2, 2): [[tn, fp], [fn, tp]] per category
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    averages: dict[str, dict[str, float]]
    cross: dict[str, dict[str, int]]  # true label -> predicted label -> pages
    rows: int

    def to_json(self) -> dict:
        cats = {
            c: {
                "precision": float(self.precision[j]),
                "recall": float(self.recall[j]),
                "f1": float(self.f1[j]),
                "support": int(self.support[j]),
                "confusion": self.confusion[j].astype(int).tolist(),
                "false_negative_rate": float(1 - self.recall[j]) if self.support[j] else 0.0,
            }
            for j, c in enumerate(self.categories)
        }
        return {"rows": self.rows, "categories": cats, **self.averages, "cross": self.cross}

    def cipa_false_negative_rates(self) -> dict[str, float]:
        cipa = {c.name for c in CATEGORIES if c.severity_class is SeverityClass.CIPA}
        return {
            c: float(1 - self.recall[j])
            for j, c in enumerate(self.categories)
            if c in cipa and self.support[j]
        }


def compute_metrics(
    evalset: EvalSet, thresholds: dict[str, float] | None = None
) -> ModelCardMetrics:
    cats = evalset.categories
    y_true, y_pred, _ = label_matrices(evalset, cats, thresholds)
    tp = (y_true & y_pred).sum(axis=0).astype(float)
    fp = ((1 - y_true) & y_pred).sum(axis=0).astype(float)
    fn = (y_true & (1 - y_pred)).sum(axis=0).astype(float)
    tn = len(y_true) - tp - fp - fn
    conf = np.stack([np.stack([tn, fp], axis=1), np.stack([fn, tp], axis=1)], axis=1)
    p, r, f = _prf(tp, fp, fn)
    support = tp + fn
    mp, mr, mf = _prf(np.array([tp.sum()]), np.array([fp.sum()]), np.array([fn.sum()]))
    total = support.sum()
    w = support / total if total else np.zeros_like(support)
    averages = {
        "micro": {"precision": float(mp[0]), "recall": float(mr[0]), "f1": float(mf[0]),
                  "support": int(total)},
        "macro": {"precision": float(p.mean()), "recall": float(r.mean()), "f1": float(f.mean()),
                  "support": int(total)},
        "weighted": {"precision": float((p * w).sum()), "recall": float((r * w).sum()),
                     "f1": float((f * w).sum()), "support": int(total)},
    }  # fmt: skip
    cross: dict[str, dict[str, int]] = {}
    for i in range(len(y_true)):
        trues = [cats[j] for j in np.nonzero(y_true[i])[0]] or [SAFE]
        preds = [cats[j] for j in np.nonzero(y_pred[i])[0]] or [SAFE]
        for t in trues:
            row = cross.setdefault(t, {})
            for pr in preds:
                row[pr] = row.get(pr, 0) + 1
    return ModelCardMetrics(cats, conf, p, r, f, support, averages, cross, len(y_true))
