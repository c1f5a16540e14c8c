"""Latency regressions: river's PageHinkley on standardised window means.

A window's mean latency is a continuous signal whose noise we can estimate from the
warm-up, which is exactly what Page-Hinkley assumes, so river's implementation fits
here. We standardise by the warm-up's window-to-window spread, floored at
``min_rel_shift`` of the mean: at high volume the spread of a mean is microseconds and
any harmless drift would otherwise look enormous; the floor says how big a latency shift
is worth an alert.
"""

from __future__ import annotations

import math

from river.drift import PageHinkley

from detectors.base import WindowDetector

__all__ = ["LatencyShift"]


class LatencyShift(WindowDetector):
    """Detects an increase of mean latency.

    Parameters
    ----------
    warmup
        Windows used to learn the reference mean and spread.
    min_rel_shift
        Floor of the standard deviation, as a fraction of the reference mean.
    delta, threshold
        PageHinkley's slack and threshold, in standardised units.

    Examples
    --------
    Mean latency 32 ms that rises by 60% at window 50:

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> det = LatencyShift(warmup=20)
    >>> for i in range(100):
    ...     det.update(float(rng.normal(32 if i < 50 else 51, 0.5)), 1000)
    ...     if det.drift_detected:
    ...         print(f"detected at window {i}")
    ...         break
    detected at window 52
    """

    def __init__(
        self,
        *,
        warmup: int = 18,
        min_rel_shift: float = 0.05,
        delta: float = 0.5,
        threshold: float = 25.0,
        reference_windows: int | None = None,
    ):
        if warmup < 2:
            raise ValueError("warmup must be >= 2 windows")
        if not 0 < min_rel_shift < 1:
            raise ValueError("min_rel_shift must be in (0, 1)")
        self.warmup = warmup
        self.reference_windows = max(warmup, reference_windows or warmup)
        self.min_rel_shift = min_rel_shift
        self.delta = delta
        self.threshold = threshold
        self._warm: list[float] = []
        self._ref_done = False
        self._rec_streak = 0
        self.mean: float | None = None
        self.sd: float | None = None
        super().__init__()

    def _reset(self) -> None:
        super()._reset()
        self._ph = PageHinkley(
            min_instances=1, delta=self.delta, threshold=self.threshold, alpha=1.0, mode="up"
        )
        self.change_index: int | None = None
        self._run_start: int | None = None
        self._run_sum = 0.0
        self._run_n = 0
        self.last = 0.0

    @property
    def warmed_up(self) -> bool:
        return self.mean is not None

    def set_reference(self, mean: float, sd: float) -> None:
        self.mean = mean
        self.sd = max(sd, self.min_rel_shift * mean, 1e-9)

    # -- return to baseline ------------------------------------------------------------
    # PageHinkley restarts from the shifted level after a detection, so it never says
    # "still shifted" or "back". The return is tested directly: ``recover_windows``
    # consecutive windows within ``back_z`` reference spreads of the reference mean.
    recover_windows = 6
    back_z = 1.0

    @property
    def recovery_rate(self) -> float:
        return self.last

    def update(self, value: float, n: float = 1) -> None:
        self._recovered = False
        if self._drift_detected:
            self._reset()
            self._rec_active, self._rec_streak = True, 0
        idx = self.windows_seen
        self.windows_seen += 1
        if n <= 0 or not math.isfinite(value):
            return
        if not self._ref_done:
            # Learning the reference (warm-up, or a profile build): no testing meanwhile.
            self._warm.append(value)
            if len(self._warm) >= self.warmup:
                m = sum(self._warm) / len(self._warm)
                var = sum((x - m) ** 2 for x in self._warm) / (len(self._warm) - 1)
                self.set_reference(m, math.sqrt(var))
                self._ref_done = len(self._warm) >= self.reference_windows
            return
        z = (value - self.mean) / self.sd
        self.last = value
        if self._rec_active:
            self._rec_streak = self._rec_streak + 1 if z <= self.back_z else 0
            if self._rec_streak >= self.recover_windows:
                self._rec_active, self._recovered = False, True
        if z > self.delta:
            if self._run_start is None:
                self._run_start = idx
            self._run_sum += value
            self._run_n += 1
        else:
            self._run_start, self._run_sum, self._run_n = None, 0.0, 0
        self._ph.update(z)
        if self._ph.drift_detected:
            self._drift_detected = True
            self.change_index = self._run_start if self._run_start is not None else idx

    def export_reference(self) -> dict | None:
        return None if self.mean is None else {"mean": self.mean, "sd": self.sd}

    def load_reference(self, ref: dict) -> None:
        self.set_reference(ref["mean"], ref["sd"])
        self._ref_done = True

    def run_mean(self) -> float:
        return self._run_sum / self._run_n if self._run_n else self.last

    def evidence(self) -> dict:
        current = self.run_mean()
        base = self.mean or 0.0
        sd = self.sd or 0.0
        return {
            "change": "up",
            "baseline": base,
            "current": current,
            "ci_low": current - sd,
            "ci_high": current + sd,
            "successes": 0.0,
            "trials": float(self._run_n),
            "statistic": float(self._ph._sum_increase - self._ph._min_increase),
            "threshold": self.threshold,
            "effect": current / base - 1 if base else 0.0,
        }
