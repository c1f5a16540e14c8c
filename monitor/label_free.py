"""Label-free performance estimation: precision, recall and FNR of unlabelled traffic.

Feedback labels a tiny, biased slice of verdicts, and nobody reports the harmful page
they were allowed to see. Confidence-based performance estimation (CBPE, as in
NannyML) reads the rest from the scores: with a calibrated probability ``p(s)`` that a
page scored ``s`` is truly in the category, every predicted page contributes ``p`` of a
true positive and ``1 - p`` of a false positive, every unpredicted one ``p`` of a false
negative. Summed over a window's score histogram (predicted and unpredicted apart):

    TP = sum_pred n_b p_b     FP = sum_pred n_b (1 - p_b)     FN = sum_unpred n_b p_b

The interval combines the two uncertainties: the calibration's (each bootstrap refit of
it gives one estimate) and the traffic's own (given ``p``, TP is a sum of Bernoulli
draws; its normal approximation is added to each bootstrap estimate). 95% percentiles.

The estimate assumes ``p(y | s)`` is the same in production as in the labels it was
learned from. Two checks say when it is not, and every estimate carries their flags:

* ``score-drift``: production scores moved away from the labelled ones (PSI > 0.25 on
  20 bins), or more than 5% of the estimated positives sit in 0.05-wide score bins
  without a single label (the map is extrapolating there);
* ``calibration-error``: fresh labels (analyst labels of the same window) disagree with
  the map: observed positives differ from the expected ones by more than 3 standard
  errors.

CBPE cannot see a model that turns confidently wrong: when self-harm pages start
scoring 0.35, the map (learned when 0.35 meant "probably a health page") calls them
negatives, and the estimated recall stays high (measured in ``bench/label_free.py``:
0.96 estimated against a true 0.41). A second label-free reading anchors on prevalence
instead: if the share of truly-``c`` pages is what it was in a reference period, the
positives the model no longer finds are false negatives:

    FN_prev = max(0, prevalence_ref x N - TP)

It assumes the opposite (stable prevalence, the scores may change meaning), so the two
bracket the truth from both sides, and their disagreement is itself a flag
(``prevalence-drop``: the estimated positives fell below the reference range, widened by
the window's own Poisson noise, and by over 10%). "Stable" is relative to the traffic
mix: when a new app takes 8% of all requests, every category's share falls by 8% and
nothing was missed (measured: 12 false under-blocking findings before this). So the
reference prevalence is scaled by the median change of the estimated positives' share
over all categories (:func:`estimate_all`); one category falling alone is not explained
away. The reference comes from windows as long as the tested ones
(:func:`reference_from_windows`). For an always-block category the under-blocking check
takes the worse of the two readings: a missed self-harm block costs more than a false
alarm during a quiet week.

Neither sees a page that is confidently wrong *and* as common as before (health pages
scored as adult at 0.9 look like adult pages); only labels see that, which is what the
annotation queue (:mod:`monitor.labelqueue`) is for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from monitor.calibration import BINS, CategoryCalibration, psi

__all__ = [
    "UNDERBLOCK_MARGIN",
    "FreshLabels",
    "Histogram",
    "LabelFreeEstimate",
    "Range",
    "estimate_all",
    "estimate_category",
    "reference_from_windows",
    "under_blocking",
    "worst_fnr",
]

PSI_LIMIT = 0.25
UNCOVERED_LIMIT = 0.05
COARSE = 20
FRESH_Z = 3.0
_Z_DRAWS_SEED = 20261204
UNDERBLOCK_MARGIN = 0.05  # FNR above the reference's upper end by this much: under-blocking


@dataclass(frozen=True)
class Histogram:
    """Verdicts of one category by score bin, predicted and not (unscored pages count in
    bin 0 of ``unpredicted``: a category absent from the scores scored below 0.01)."""

    predicted: np.ndarray  # (BINS,)
    unpredicted: np.ndarray  # (BINS,)

    @property
    def total(self) -> np.ndarray:
        return self.predicted + self.unpredicted


@dataclass(frozen=True)
class FreshLabels:
    """Labelled verdicts of the window for one category: score bins, truth, weights."""

    bins: np.ndarray
    truth: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class Range:
    value: float
    low: float
    high: float


@dataclass
class LabelFreeEstimate:
    category: str
    requests: int
    predicted: int
    method: str
    tp: Range
    fp: Range
    fn: Range
    precision: Range
    recall: Range
    fnr: Range
    psi: float
    uncovered: float  # share of estimated positives in coarse bins without a label
    positives: Range | None = None  # estimated truly-c pages (TP + FN), CBPE
    fn_prevalence: Range | None = None  # FN anchored on the reference prevalence
    fnr_prevalence: Range | None = None
    fresh_labels: float = 0.0  # weighted
    fresh_expected: float = 0.0
    fresh_observed: float = 0.0
    fresh_z: float = 0.0
    flags: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=float), where=b > 0)


def _range(point: float, draws: np.ndarray) -> Range:
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return Range(float(point), float(min(lo, point)), float(max(hi, point)))


def estimate_category(
    cal: CategoryCalibration,
    hist: Histogram,
    fresh: FreshLabels | None = None,
    reference_prevalence: Range | None = None,
) -> LabelFreeEstimate:
    """The CBPE estimate of one category over one histogram (pure); with a reference
    prevalence (truly-c pages per request in a reference period), the prevalence-anchored
    false negatives too."""
    pred = np.asarray(hist.predicted, dtype=float)
    unpred = np.asarray(hist.unpredicted, dtype=float)
    p = np.asarray(cal.at_centres)
    boots = np.asarray(cal.bootstrap)  # (B, BINS)
    tp, fp, fn = pred @ p, pred @ (1 - p), unpred @ p
    # Bootstrap draws of the calibration, each with the traffic's own Bernoulli noise.
    rng = np.random.default_rng(_Z_DRAWS_SEED)
    tp_b = boots @ pred + rng.standard_normal(len(boots)) * np.sqrt((boots * (1 - boots)) @ pred)
    fn_b = boots @ unpred + rng.standard_normal(len(boots)) * np.sqrt(
        (boots * (1 - boots)) @ unpred
    )
    npred = pred.sum()
    tp_b = np.clip(tp_b, 0, npred)
    fn_b = np.clip(fn_b, 0, None)
    fp_b = npred - tp_b
    prec_b, rec_b = _ratio(tp_b, tp_b + fp_b), _ratio(tp_b, tp_b + fn_b)
    precision = tp / npred if npred else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    total = pred + unpred
    positives = (total * p).reshape(COARSE, -1).sum(axis=1)
    thin = np.asarray(cal.label_hist).reshape(COARSE, -1).sum(axis=1) == 0
    uncovered = float(positives[thin].sum() / positives.sum()) if positives.sum() else 0.0
    drift = psi(np.asarray(cal.ref_hist), total)
    est = LabelFreeEstimate(
        category=cal.category,
        requests=int(total.sum()),
        predicted=int(npred),
        method=cal.method,
        tp=_range(tp, tp_b),
        fp=_range(fp, fp_b),
        fn=_range(fn, fn_b),
        precision=_range(precision, prec_b),
        recall=_range(recall, rec_b),
        fnr=_range(1 - recall if tp + fn else 0.0, 1 - rec_b),
        psi=drift,
        uncovered=uncovered,
    )
    pos_b = tp_b + fn_b
    est.positives = _range(tp + fn, pos_b)
    n = total.sum()
    if reference_prevalence is not None and n > 0:
        ref = reference_prevalence
        expected = ref.value * n
        fnp = max(0.0, expected - tp)
        # Interval: the reference's ends, widened by this window's own Poisson noise in
        # the count of truly-c pages, against this window's TP ends (conservative corner).
        k_lo = ref.low * n - 1.96 * np.sqrt(ref.low * n)
        k_hi = ref.high * n + 1.96 * np.sqrt(ref.high * n)
        lo = max(0.0, k_lo - est.tp.high)
        hi = max(0.0, k_hi - est.tp.low)
        est.fn_prevalence = Range(fnp, min(lo, fnp), max(hi, fnp))
        est.fnr_prevalence = Range(
            fnp / (tp + fnp) if tp + fnp else 0.0,
            lo / (est.tp.high + lo) if est.tp.high + lo else 0.0,
            hi / (est.tp.low + hi) if est.tp.low + hi else 0.0,
        )
        if est.positives.high < k_lo and est.positives.value < 0.9 * expected:
            est.flags.append("prevalence-drop")
    if drift > PSI_LIMIT or uncovered > UNCOVERED_LIMIT:
        est.flags.append("score-drift")
    if fresh is not None and len(fresh.bins):
        w = np.asarray(fresh.weights, dtype=float)
        pf = p[np.asarray(fresh.bins)]
        est.fresh_labels = float(w.sum())
        est.fresh_expected = float(w @ pf)
        est.fresh_observed = float(w @ np.asarray(fresh.truth, dtype=float))
        # Design-effect-aware: Var(sum w y) = sum w^2 p (1 - p) under the map.
        sd = float(np.sqrt((w**2) @ (pf * (1 - pf))))
        est.fresh_z = (est.fresh_observed - est.fresh_expected) / max(sd, 0.5)
        if abs(est.fresh_z) > FRESH_Z:
            est.flags.append("calibration-error")
    return est


def histogram_from_scores(
    scores: np.ndarray, predicted: np.ndarray, weights: np.ndarray | None = None
) -> Histogram:
    """Histogram of one category from per-verdict scores and predictions (tests, benches,
    the model card); ``weights``: pages each row stands for (an enriched evaluation set)."""
    from monitor.calibration import bin_of

    b = bin_of(scores)
    pred = np.asarray(predicted, dtype=bool)
    w = np.ones(len(b)) if weights is None else np.asarray(weights, dtype=float)
    return Histogram(
        np.bincount(b[pred], weights=w[pred], minlength=BINS),
        np.bincount(b[~pred], weights=w[~pred], minlength=BINS),
    )


def worst_fnr(est: LabelFreeEstimate) -> Range:
    """The higher of the two label-free FNR readings (for always-block categories)."""
    if est.fnr_prevalence is None or est.fnr_prevalence.value <= est.fnr.value:
        return est.fnr
    return est.fnr_prevalence


def under_blocking(est: LabelFreeEstimate, reference_fnr: Range) -> bool:
    """Is the estimated FNR's lower end above the reference's upper end plus a margin?"""
    return worst_fnr(est).low > reference_fnr.high + UNDERBLOCK_MARGIN


def estimate_all(
    cals: dict[str, CategoryCalibration],
    hists: dict[str, Histogram],
    reference: dict[str, tuple[Range, Range]] | None = None,
    fresh: dict[str, FreshLabels] | None = None,
) -> dict[str, LabelFreeEstimate]:
    """Every calibrated category; ``reference``: category -> (prevalence, FNR) of a clean
    period, the prevalence scaled by the traffic mix's dilution (median share change)."""
    fresh = fresh or {}
    first = {c: estimate_category(cals[c], h, fresh.get(c)) for c, h in hists.items() if c in cals}
    if not reference:
        return first
    ratios = []
    for c, e in first.items():
        ref = reference.get(c)
        if ref is not None and ref[0].value > 0 and e.requests:
            ratios.append(e.positives.value / e.requests / ref[0].value)
    scale = float(np.median(ratios)) if len(ratios) >= 3 else 1.0
    scale = min(scale, 1.0)  # only dilution explains a drop; a surge elsewhere does not
    out = {}
    for c, e in first.items():
        ref = reference.get(c)
        if ref is None:
            out[c] = e
            continue
        prev = Range(ref[0].value * scale, ref[0].low * scale, ref[0].high * scale)
        out[c] = estimate_category(cals[c], hists[c], fresh.get(c), prev)
    return out


def reference_from_windows(
    windows: list[dict[str, LabelFreeEstimate]],
) -> dict[str, tuple[Range, Range]]:
    """Reference (prevalence, FNR) per category from a clean period cut into windows as
    long as the ones that will be tested. The range is the windows' 2.5-97.5% spread (or
    the pooled interval, if wider): a category's share of traffic wanders from window to
    window far more than any one window's estimate is unsure (measured: dating's share
    moved 11% between two 2-minute windows of clean traffic, a false finding with the
    pooled interval alone)."""
    out = {}
    cats = {c for w in windows for c in w}
    for c in sorted(cats):
        ests = [w[c] for w in windows if c in w and w[c].requests]
        if not ests:
            continue
        n = sum(e.requests for e in ests)
        pos = sum(e.positives.value for e in ests)
        prev = np.array([e.positives.value / e.requests for e in ests])
        fnr = np.array([e.fnr.value for e in ests])
        pooled_lo = sum(e.positives.low for e in ests) / n
        pooled_hi = sum(e.positives.high for e in ests) / n
        if len(ests) >= 2:
            q_lo, q_hi = np.percentile(prev, [2.5, 97.5])
            f_lo, f_hi = np.percentile(fnr, [2.5, 97.5])
        else:
            q_lo = q_hi = prev[0]
            f_lo = f_hi = fnr[0]
        fnr_pooled = (
            ests[0].fnr
            if len(ests) == 1
            else Range(
                float(np.median(fnr)),
                float(min(f_lo, min(e.fnr.low for e in ests))),
                float(max(f_hi, np.median([e.fnr.high for e in ests]))),
            )
        )
        out[c] = (
            Range(pos / n, float(min(q_lo, pooled_lo)), float(max(q_hi, pooled_hi))),
            fnr_pooled,
        )
    return out
