"""Canary comparison: one model version against the rest of the fleet, window by window.

While two versions serve side by side on randomly split traffic, the cleanest test of
"does the new version behave differently?" compares them *on the same windows*: any
change of the traffic itself (time of day, a viral site, a holiday) hits both alike and
cancels. Given the window's total count ``k = k_v + k_rest`` of, say, blocks, the
version's share ``k_v`` is binomial with probability ``n_v / (n_v + n_rest)`` if the
two versions block at the same rate, and ``r n_v / (r n_v + n_rest)`` if the version's
rate is ``r`` times the rest's. Page's CUSUM on that conditional likelihood ratio needs
no reference and no warm-up, so it is live from the version's first window.
"""

from __future__ import annotations

import math

from detectors.base import WindowDetector
from detectors.stats import rate_evidence

__all__ = ["VersionDelta"]


class VersionDelta(WindowDetector):
    """CUSUM of one version's rate relative to the rest of the fleet, on shared windows.

    Parameters
    ----------
    direction
        ``"up"``: the version's rate is higher than the rest's; ``"down"``: lower.
    ratio
        Rate ratio (version / rest) worth detecting fast: > 1 for up, < 1 for down.
    threshold
        CUSUM decision threshold in log-likelihood units.

    Examples
    --------
    A canary at 40% of traffic blocking 2.5% against the fleet's 2%:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> det = VersionDelta("up", ratio=1.3, threshold=12.0)
    >>> for i in range(200):
    ...     det.update(int(rng.binomial(4000, 0.025)), 4000, int(rng.binomial(6000, 0.02)), 6000)
    ...     if det.drift_detected:
    ...         break
    >>> det.drift_detected, i < 40
    (True, True)
    """

    def __init__(self, direction: str = "up", *, ratio: float = 1.3, threshold: float = 12.0):
        if direction not in ("up", "down"):
            raise ValueError("direction must be 'up' or 'down'")
        if (direction == "up" and not ratio > 1) or (direction == "down" and not 0 < ratio < 1):
            raise ValueError("ratio must be > 1 for 'up' and in (0, 1) for 'down'")
        if threshold <= 0:
            raise ValueError("threshold must be > 0")
        self.direction = direction
        self.ratio = ratio
        self.threshold = threshold
        super().__init__()

    def _reset(self) -> None:
        super()._reset()
        self.statistic = 0.0
        self.change_index: int | None = None
        self._run_start: int | None = None
        self._run = [0.0, 0.0, 0.0, 0.0]  # k_v, n_v, k_rest, n_rest since the run began

    @property
    def warmed_up(self) -> bool:
        return True

    def export_reference(self) -> dict | None:
        return None  # compares against concurrent traffic; nothing to remember

    def load_reference(self, ref: dict) -> None:
        return None

    def update(self, k_v: float, n_v: float, k_rest: float, n_rest: float) -> None:
        if self._drift_detected:
            self._reset()
        idx = self.windows_seen
        self.windows_seen += 1
        k = k_v + k_rest
        if n_v <= 0 or n_rest <= 0 or k <= 0:
            return
        pi0 = n_v / (n_v + n_rest)
        pi1 = self.ratio * n_v / (self.ratio * n_v + n_rest)
        llr = k_v * math.log(pi1 / pi0) + k_rest * math.log((1 - pi1) / (1 - pi0))
        new = self.statistic + llr
        if new <= 0:
            self.statistic = 0.0
            self._run_start = None
            self._run = [0.0, 0.0, 0.0, 0.0]
            return
        if self._run_start is None:
            self._run_start = idx
        self.statistic = new
        r = self._run
        r[0] += k_v
        r[1] += n_v
        r[2] += k_rest
        r[3] += n_rest
        if new > self.threshold:
            self._drift_detected = True
            self.change_index = self._run_start

    def evidence(self) -> dict:
        k_v, n_v, k_r, n_r = self._run
        base = k_r / n_r if n_r else 0.0
        return rate_evidence(self.direction, k_v, n_v, base, self.statistic, self.threshold)
