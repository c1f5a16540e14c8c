"""Score-distribution shift: two-sample chi-square with a materiality floor.

Why this test: score histograms per window are count vectors, and "has the distribution
moved" is exactly the chi-square test of homogeneity between the recent windows and the
reference. With tens of thousands of scores a day, significance alone flags differences
nobody cares about, so a detection also needs a Jensen-Shannon distance of at least
``min_js`` (a materiality floor, in the spirit of PSI's 0.1/0.25 conventions) and must
persist for ``persistence`` consecutive evaluations. KSWIN would cost a KS test per
*event* (~0.7 ms each) and cannot use counts; PSI has no null distribution, so its
thresholds say nothing about false alarms at a given sample size.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from scipy.stats import chi2

from detectors.base import WindowDetector
from detectors.stats import js_distance

__all__ = ["HistogramShift", "psi"]

_MIN_EXPECTED = 5.0


def psi(reference, current, eps: float = 1e-4) -> float:
    """Population stability index between two count vectors (reported, not tested on).

    >>> round(psi([50, 50], [50, 50]), 6)
    0.0
    """
    r = np.asarray(reference, dtype=float)
    c = np.asarray(current, dtype=float)
    r = np.clip(r / max(r.sum(), 1.0), eps, None)
    c = np.clip(c / max(c.sum(), 1.0), eps, None)
    return float(np.sum((c - r) * np.log(c / r)))


class HistogramShift(WindowDetector):
    """Detects a shift of a histogram (e.g. a category's scores) against a reference.

    Parameters
    ----------
    window
        Number of most recent windows pooled into the tested histogram.
    alpha
        Significance level of each chi-square test (small: many segments are tested).
    min_js
        Smallest Jensen-Shannon distance that counts as a material change.
    persistence
        Consecutive significant-and-material evaluations needed to fire.
    warmup
        Windows pooled into the reference when none is given.
    min_count
        Fewest observations in the pooled window for a test to run at all.

    Examples
    --------
    Scores ~ Beta(8, 1.6) that move to 0.5 + 0.5 * Beta(2.5, 2.5) at window 40:

    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> edges = np.linspace(0, 1, 11)
    >>> det = HistogramShift(window=4, warmup=20)
    >>> for i in range(80):
    ...     s = rng.beta(8, 1.6, 300) if i < 40 else 0.5 + 0.5 * rng.beta(2.5, 2.5, 300)
    ...     det.update(np.histogram(s, edges)[0])
    ...     if det.drift_detected:
    ...         print(f"detected at window {i}, onset estimate {det.change_index}")
    ...         break
    detected at window 41, onset estimate 40
    """

    def __init__(
        self,
        *,
        window: int = 6,
        alpha: float = 1e-7,
        min_js: float = 0.08,
        persistence: int = 2,
        warmup: int = 18,
        min_count: int = 200,
        reference_windows: int | None = None,
    ):
        if window < 1:
            raise ValueError("window must be >= 1")
        if not 0 < alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        if not 0 <= min_js <= 1:
            raise ValueError("min_js must be in [0, 1]")
        if persistence < 1:
            raise ValueError("persistence must be >= 1")
        if warmup < 1:
            raise ValueError("warmup must be >= 1")
        self.window = window
        self.alpha = alpha
        self.min_js = min_js
        self.persistence = persistence
        self.warmup = warmup
        # Windows the reference keeps absorbing after warm-up (profile building).
        self.reference_windows = max(warmup, reference_windows or warmup)
        self.min_count = min_count
        self.reference: np.ndarray | None = None
        self._ref_acc: np.ndarray | None = None
        self._ref_windows = 0
        self._recent: deque[tuple[int, np.ndarray]] = deque(maxlen=window)
        self._critical: dict[int, float] = {}
        super().__init__()

    def _reset(self) -> None:
        super()._reset()
        self._hits = 0
        self.change_index: int | None = None
        self.statistic = 0.0
        self.dof = 0
        self._sum: np.ndarray | None = None
        self.js = 0.0
        self.current: np.ndarray | None = None

    @property
    def warmed_up(self) -> bool:
        return self.reference is not None

    def set_reference(self, counts) -> None:
        self.reference = np.asarray(counts, dtype=float).copy()

    def export_reference(self) -> dict | None:
        if self.reference is None:
            return None
        return {"counts": self.reference.tolist(), "windows": self._ref_windows}

    def load_reference(self, ref: dict) -> None:
        self.set_reference(ref["counts"])
        self._ref_windows = int(ref.get("windows", self.warmup))

    def critical(self, dof: int) -> float:
        crit = self._critical.get(dof)
        if crit is None:
            crit = self._critical[dof] = float(chi2.isf(self.alpha, dof))
        return crit

    @property
    def p_value(self) -> float:
        return float(chi2.sf(self.statistic, self.dof)) if self.dof > 0 else 1.0

    def evidence(self) -> dict:
        """Chi-square evidence; the bank adds the signal-specific baseline/current."""
        total = float(self.current.sum()) if self.current is not None else 0.0
        return {
            "change": "shift",
            "baseline": 0.0,
            "current": 0.0,
            "ci_low": 0.0,
            "ci_high": 0.0,
            "successes": total,
            "trials": total,
            "statistic": self.statistic,
            "threshold": self.critical(self.dof) if self.dof > 0 else 0.0,
            "effect": self.js,
        }

    def update(self, counts) -> None:
        if self._drift_detected:
            self._reset()
            self._recent.clear()
        idx = self.windows_seen
        self.windows_seen += 1
        h = np.asarray(counts, dtype=float)
        if self.reference is None:
            self._ref_acc = h.copy() if self._ref_acc is None else self._ref_acc + h
            self._ref_windows += 1
            if self._ref_windows >= self.warmup:
                self.reference = self._ref_acc
            return
        if self._ref_windows < self.reference_windows:
            self.reference = self.reference + h
            self._ref_windows += 1
        if self._sum is None:
            self._sum = np.zeros_like(h)
        if len(self._recent) == self.window:
            self._sum -= self._recent[0][1]
        self._recent.append((idx, h))
        self._sum += h
        cur = self._sum.copy()
        if cur.sum() < self.min_count or self.reference.sum() < self.min_count:
            self._hits = 0
            return
        stat, dof = _chi2_homogeneity(self.reference, cur)
        self.statistic, self.dof, self.current = stat, dof, cur
        # Compare against a cached critical value rather than computing a p-value per
        # update: chi2.sf costs more than the whole test, and only detections need it.
        if dof > 0 and stat > self.critical(dof):
            self.js = js_distance(self.reference, cur)
            material = self.js >= self.min_js
        else:
            self.js, material = 0.0, False
        self._hits = self._hits + 1 if material else 0
        if self._hits >= self.persistence:
            self._drift_detected = True
            self.change_index = self._estimate_onset()

    def _estimate_onset(self) -> int:
        """Earliest recent window that on its own already looks materially shifted."""
        for i, h in self._recent:
            if h.sum() > 0 and js_distance(self.reference, h) >= self.min_js:
                return i
        return self._recent[-1][0]


def _chi2_homogeneity(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """Chi-square statistic of a 2 x B table, merging bins with small expected counts."""
    total = a + b
    keep = total > 0
    a, b, total = a[keep], b[keep], total[keep]
    na, nb = a.sum(), b.sum()
    n = na + nb
    # Merge sparse bins (expected < 5 in either row) into one pooled bin.
    exp_min = np.minimum(total * na / n, total * nb / n)
    sparse = exp_min < _MIN_EXPECTED
    if sparse.any():
        a = np.append(a[~sparse], a[sparse].sum())
        b = np.append(b[~sparse], b[sparse].sum())
        total = a + b
        keep = total > 0
        a, b, total = a[keep], b[keep], total[keep]
    if len(total) < 2:
        return 0.0, 0
    ea = total * na / n
    eb = total * nb / n
    stat = float(np.sum((a - ea) ** 2 / ea) + np.sum((b - eb) ** 2 / eb))
    return stat, len(total) - 1
