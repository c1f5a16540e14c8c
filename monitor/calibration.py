"""Score calibration per category: what a score of 0.37 means as a probability.

Label-free performance estimation (:mod:`monitor.label_free`) turns every unlabelled
verdict into an expected share of a true positive, so it is only as good as the map from
score to probability. Three maps are fitted per category and the one with the lowest
cross-validated log loss wins:

* **isotonic** — a monotone step function (pool-adjacent-violators); no shape assumed,
  needs data everywhere it is used; each step's probability is its Jeffreys posterior;
* **Platt** — logistic regression on the score's logit; two parameters, smooth, but
  symmetric, which scores piled up at 0 and 1 rarely are;
* **beta** — logistic regression on ``ln s`` and ``-ln(1 - s)`` (Kull et al. 2017); it
  contains Platt's family and fits asymmetric score distributions.

Fits use the sampling weights of the labels (an annotation queue oversamples the
uncertain verdicts; unweighted, a fit would learn the queue's mix, not production's).

Beside the map, a calibration keeps what the estimator needs to stay honest:

* the calibrated probability at each of the 100 score-bin centres, for the fit and for
  ``BOOTSTRAPS`` refits on resampled labels (the estimator's interval comes from them);
* the score histogram of the labelled data (its *validity*: production scores far from
  it are extrapolation) and how many labels fell in each bin;
* out-of-fold reliability diagrams and metrics of every method, for the model card.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.isotonic import IsotonicRegression

from monitor.errors import FilterwatchError

__all__ = [
    "BINS",
    "BOOTSTRAPS",
    "CalibrationError",
    "CalibrationSet",
    "CategoryCalibration",
    "bin_of",
    "fit_calibration",
    "load_calibration",
]

BINS = 100  # score bins of the estimation rollup: 0.01 wide, so thresholds fall on edges
BOOTSTRAPS = 100
FOLDS = 5
METHODS = ("isotonic", "platt", "beta")
RELIABILITY_BINS = 10
_EPS = 1e-4
CENTRES = (np.arange(BINS) + 0.5) / BINS


class CalibrationError(FilterwatchError):
    """A calibration that cannot be fitted or read."""


def bin_of(scores: np.ndarray) -> np.ndarray:
    """The estimation rollup's bin of each score: the SQL view's rule, which multiplies the
    stored Float32 score in Float64 (so 0.45 lands in bin 44, as it does there)."""
    s = np.asarray(scores, dtype=np.float32).astype(np.float64)
    return np.clip(np.floor(s * BINS), 0, BINS - 1).astype(np.int64)


def _features(s: np.ndarray, method: str) -> np.ndarray:
    s = np.clip(np.asarray(s, dtype=float), _EPS, 1 - _EPS)
    if method == "platt":
        return np.log(s / (1 - s))[:, None]
    return np.stack([np.log(s), -np.log(1 - s)], axis=1)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))


def _logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = 1e-4) -> np.ndarray:
    """Weighted logistic regression by Newton's method: (intercept, coefficients).

    Two or three parameters, fitted ~115 times per category (cross-validation and the
    bootstrap): scikit-learn's solver costs ~3 ms a fit in set-up alone, this ~0.2 ms.
    A small ridge term keeps separable data (a category the scores split perfectly)
    finite; the result matches ``LogisticRegression(C=1e4)`` (checked in the tests).
    """
    xa = np.column_stack([np.ones(len(x)), x])
    w = w / w.mean()
    beta = np.zeros(xa.shape[1])
    ridge = l2 * np.eye(xa.shape[1])
    ridge[0, 0] = 0.0
    for _ in range(100):
        p = _sigmoid(xa @ beta)
        grad = xa.T @ (w * (p - y)) + ridge @ beta
        hess = (xa * (w * p * (1 - p))[:, None]).T @ xa + ridge + 1e-9 * np.eye(len(beta))
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return beta


class _Fitted:
    """One fitted map; ``predict`` is what cross-validation needs, ``at_centres`` and
    ``draws`` what the estimator needs."""

    def __init__(self, method: str, s: np.ndarray, y: np.ndarray, w: np.ndarray):
        self.method = method
        self._s, self._y, self._w = s, y, w
        if method == "isotonic":
            self.model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            self.model.fit(s, y, sample_weight=w)
        elif len(np.unique(y)) < 2:
            self.model = float(np.average(y, weights=w))  # one class: a constant
        else:
            self.model = _logistic(_features(s, method), y, w)

    def predict(self, s: np.ndarray) -> np.ndarray:
        if isinstance(self.model, float):
            return np.full(len(s), self.model)
        if self.method == "isotonic":
            return self._steps(np.asarray(s, dtype=float))
        x = _features(s, self.method)
        return _sigmoid(x @ self.model[1:] + self.model[0])

    def _steps(self, x: np.ndarray) -> np.ndarray:
        """Isotonic: the Jeffreys posterior mean of the block each score falls in, so a
        block without a positive says "rare", not "never" (times a billion pages, "never"
        would hide every false negative there)."""
        if not hasattr(self, "_lo"):
            lo, n, k = self.blocks()
            self._lo, self._p = lo, (k + 0.5) / (n + 1.0)
        idx = np.clip(np.searchsorted(self._lo, x, side="right") - 1, 0, len(self._lo) - 1)
        return self._p[idx]

    def blocks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Isotonic only: each pooled block's lowest score, effective labels and positives.

        Weighted counts are scaled to the effective sample size (Kish), so a block of a
        few heavily weighted labels is not mistaken for a big one."""
        order = np.argsort(self._s, kind="stable")
        s, y, w = self._s[order], self._y[order], self._w[order]
        f = self.model.predict(s)
        starts = np.r_[0, np.nonzero(np.diff(f))[0] + 1]
        wsum = np.add.reduceat(w, starts)
        w2 = np.add.reduceat(w * w, starts)
        neff = wsum**2 / w2
        share = np.add.reduceat(w * y, starts) / wsum
        return s[starts], neff, share * neff

    def at_centres(self) -> np.ndarray:
        return self.predict(CENTRES)

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One plausible map at the bin centres. Isotonic: each block's share drawn from
        its Jeffreys posterior and rearranged to stay monotone, because a bootstrap alone
        cannot see past a block with no positive (every resample of it is zero too)."""
        if self.method != "isotonic":
            return self.predict(CENTRES)
        lo, n, k = self.blocks()
        idx = np.clip(np.searchsorted(lo, CENTRES, side="right") - 1, 0, len(lo) - 1)
        return np.sort(rng.beta(k + 0.5, n - k + 0.5))[idx]

    def draws(self, rng: np.random.Generator, count: int) -> list[list[float]]:
        """``count`` plausible maps: refits on bootstrap resamples (the shape's
        uncertainty), each drawn from its own posterior (the steps' uncertainty)."""
        out = []
        s, y, w = self._s, self._y, self._w
        for _ in range(count):
            i = rng.integers(0, len(s), len(s))
            out.append(_Fitted(self.method, s[i], y[i], w[i]).draw(rng).tolist())
        return out


def _reliability(p: np.ndarray, y: np.ndarray, w: np.ndarray) -> list[dict]:
    """Weighted reliability diagram: mean predicted vs observed per predicted-probability bin."""
    idx = np.minimum(RELIABILITY_BINS - 1, (p * RELIABILITY_BINS).astype(int))
    out = []
    for b in range(RELIABILITY_BINS):
        m = idx == b
        if not m.any():
            continue
        ww = w[m]
        out.append(
            {
                "bin": b,
                "predicted": float(np.average(p[m], weights=ww)),
                "observed": float(np.average(y[m], weights=ww)),
                "labels": int(m.sum()),
            }
        )
    return out


def _metrics(p: np.ndarray, y: np.ndarray, w: np.ndarray) -> dict:
    pc = np.clip(p, 1e-6, 1 - 1e-6)
    brier = float(np.average((p - y) ** 2, weights=w))
    logloss = float(np.average(-(y * np.log(pc) + (1 - y) * np.log(1 - pc)), weights=w))
    rel = _reliability(p, y, w)
    tot = sum(r["labels"] for r in rel) or 1
    ece = sum(r["labels"] / tot * abs(r["predicted"] - r["observed"]) for r in rel)
    return {"brier": brier, "log_loss": logloss, "ece": float(ece)}


@dataclass
class CategoryCalibration:
    """The chosen map of one category and the evidence for it."""

    category: str
    method: str
    labels: int
    positives: float  # weighted
    at_centres: list[float]  # calibrated probability at each bin centre
    bootstrap: list[list[float]]  # BOOTSTRAPS rows of the same, from refits
    label_hist: list[int]  # labelled pages per score bin (where the map has support)
    ref_hist: list[float]  # the same, weighted: the score distribution the map was fit on
    cv: dict[str, dict]  # method -> out-of-fold metrics
    reliability: list[dict]  # out-of-fold, chosen method

    def probability(self, bins: np.ndarray) -> np.ndarray:
        return np.asarray(self.at_centres)[bins]

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["at_centres"] = [round(x, 6) for x in self.at_centres]
        d["bootstrap"] = [[round(x, 5) for x in row] for row in self.bootstrap]
        d["ref_hist"] = [round(x, 3) for x in self.ref_hist]
        return d


@dataclass
class CalibrationSet:
    """Calibrations of one model version, with where their labels came from."""

    model_version: str
    categories: dict[str, CategoryCalibration] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    seed: int = 0

    def to_json(self) -> dict:
        return {
            "format": "filterwatch-calibration/1",
            "model_version": self.model_version,
            "bins": BINS,
            "seed": self.seed,
            "sources": self.sources,
            "categories": {c: k.to_json() for c, k in self.categories.items()},
        }

    def save(self, path: Path) -> str:
        text = json.dumps(self.to_json(), separators=(",", ":"))
        path.write_text(text, encoding="utf-8")
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_calibration(path: Path) -> CalibrationSet:
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CalibrationError(
            f"{path}: no such calibration file; fit one with `filterwatch calibrate`"
        ) from None
    except (OSError, ValueError) as e:
        raise CalibrationError(f"{path}: not a calibration file ({e}); refit it") from None
    if d.get("format") != "filterwatch-calibration/1" or d.get("bins") != BINS:
        raise CalibrationError(f"{path}: unknown calibration format; refit it")
    cats = {c: CategoryCalibration(**k) for c, k in d["categories"].items()}
    return CalibrationSet(d["model_version"], cats, d.get("sources", []), d.get("seed", 0))


def _folds(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n) % FOLDS)


def _kish(w: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(effective labels, effective positives) of weighted labels."""
    if len(w) == 0:
        return 0.0, 0.0
    n = w.sum() ** 2 / (w * w).sum()
    return n, float(np.average(y, weights=w)) * n


def _fit_category(
    name: str, s: np.ndarray, y: np.ndarray, w: np.ndarray, rng: np.random.Generator
) -> CategoryCalibration:
    # Two parts. Scores under 0.01 are "not scored" by the event contract, and most pages
    # sit there: their probability is one number, the Jeffreys posterior of those labels.
    # The maps are fitted to the scored pages only; fitted to both, a smooth map bends its
    # low tail to the pile at zero and says 1e-3 where the truth is 1e-5 (measured: recall
    # of a rare category estimated 0.81 against a true 0.99).
    zero = bin_of(s) == 0
    folds = _folds(len(s), rng)
    oof = {m: np.zeros(len(s)) for m in METHODS}
    for k in range(FOLDS):
        test, train = folds == k, folds != k
        n0, k0 = _kish(w[train & zero], y[train & zero])
        fit_on = train & ~zero
        for m in METHODS:
            oof[m][test & zero] = (k0 + 0.5) / (n0 + 1.0)
            if (test & ~zero).any():
                oof[m][test & ~zero] = _Fitted(m, s[fit_on], y[fit_on], w[fit_on]).predict(
                    s[test & ~zero]
                )
    cv = {m: _metrics(oof[m], y, w) for m in METHODS}
    # Log loss, not Brier: the estimate multiplies small probabilities by huge page counts,
    # and Brier barely notices a map that says 0.1 where the truth is 0.001.
    method = min(METHODS, key=lambda m: cv[m]["log_loss"])
    n0, k0 = _kish(w[zero], y[zero])
    fitted = _Fitted(method, s[~zero], y[~zero], w[~zero])
    at = fitted.at_centres()
    at[0] = (k0 + 0.5) / (n0 + 1.0)
    boots = np.asarray(fitted.draws(rng, BOOTSTRAPS))
    boots[:, 0] = rng.beta(k0 + 0.5, n0 - k0 + 0.5, size=BOOTSTRAPS)
    bins = bin_of(s)
    hist = np.bincount(bins, minlength=BINS)
    ref = np.bincount(bins, weights=w, minlength=BINS)
    return CategoryCalibration(
        category=name,
        method=method,
        labels=len(s),
        positives=float((w * y).sum()),
        at_centres=at.tolist(),
        bootstrap=boots.tolist(),
        label_hist=hist.astype(int).tolist(),
        ref_hist=ref.tolist(),
        cv=cv,
        reliability=_reliability(oof[method], y, w),
    )


def fit_calibration(
    model_version: str,
    categories: list[str],
    scores: np.ndarray,
    y_true: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    sources: list[str] | None = None,
    seed: int = 0,
    min_positives: int = 5,
) -> CalibrationSet:
    """Fit every category with enough positives and negatives (others are left out and
    the estimator reports them as not estimable rather than guessing)."""
    n = scores.shape[0]
    if n < FOLDS * 2:
        raise CalibrationError(
            f"{n} labelled pages are too few to calibrate; label at least {FOLDS * 2}"
        )
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if not (np.all(np.isfinite(w)) and np.all(w > 0)):
        raise CalibrationError("sampling weights must be positive and finite")
    rng = np.random.default_rng(seed)
    out = CalibrationSet(model_version, sources=list(sources or []), seed=seed)
    for j, c in enumerate(categories):
        y = y_true[:, j].astype(float)
        pos = int(y.sum())
        if pos < min_positives or n - pos < min_positives:
            continue
        s = np.clip(scores[:, j].astype(float), 0.0, 1.0)
        out.categories[c] = _fit_category(c, s, y, w, rng)
    if not out.categories:
        raise CalibrationError(
            f"no category has {min_positives} positive and negative labels; label more pages"
        )
    return out


def psi(expected: np.ndarray, actual: np.ndarray, coarse: int = 20) -> float:
    """Population stability index of two score histograms, on ``coarse`` bins."""
    e = np.asarray(expected, dtype=float).reshape(coarse, -1).sum(axis=1)
    a = np.asarray(actual, dtype=float).reshape(coarse, -1).sum(axis=1)
    if e.sum() <= 0 or a.sum() <= 0:
        return 0.0
    e = (e + 0.5) / (e.sum() + 0.5 * coarse)
    a = (a + 0.5) / (a.sum() + 0.5 * coarse)
    return float(np.sum((a - e) * np.log(a / e)))
