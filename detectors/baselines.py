"""What filterwatch is measured against: a naive threshold rule and river at defaults.

Both plug into :class:`~detectors.bank.DetectorBank` through a factory, so they see the
same segments and windows as filterwatch's detectors and are scored by the same
backtest. Each turns a segment's window into one number (a rate ``k / n``, a mean score,
a label-set JS distance, a mean latency, a version/fleet rate ratio):

- ``naive``: what a dashboard alert rule does. Pool the last minute; fire when the
  value is 1.5x the warm-up value (2x for feedback rates, 0.6x for drops; a mean score
  0.05 off; a label-set JS distance of 0.1; latency +20%), with at least 5 events.
- ``river``: the number per window into ``river.drift.ADWIN()`` (rates, scores,
  label sets, canaries) or ``river.drift.PageHinkley()`` (latency) at their default
  parameters; a detection counts in the direction the value moved.

Per-event river detectors would cost one Python call per request (12,700/s per segment,
for thousands of segments); per-window values are how river can be run at this scale.
"""

from __future__ import annotations

import math
from collections import deque

from river.drift import ADWIN, PageHinkley

from detectors.bank import BankConfig, DetectorFactory
from detectors.base import WindowDetector
from detectors.stats import js_distance

__all__ = ["NaiveFactory", "RiverFactory"]

_CENTRES = [(i + 0.5) / 10 for i in range(10)]


class _SeriesBaseline(WindowDetector):
    """Shared plumbing: window -> additive sums -> value; warm-up; evidence."""

    def __init__(self, kind: str, change: str, warmup: int):
        self.kind = kind  # rate | hist | labelset | latency | canary
        self.change = change
        self.warmup = warmup
        self._ref_sums: list[float] | None = None
        self._ref_windows = 0
        self.reference: float | None = None
        self._ref_vec: list[float] | None = None
        self.last_value = 0.0
        super().__init__()

    def _reset(self) -> None:
        super()._reset()
        self.change_index: int | None = None

    @property
    def warmed_up(self) -> bool:
        return self.reference is not None

    def export_reference(self) -> dict | None:
        if self._ref_sums is None or self.reference is None:
            return None
        return {"sums": list(self._ref_sums), "windows": self._ref_windows}

    def load_reference(self, ref: dict) -> None:
        if "sums" in ref:
            self._ref_sums = [float(x) for x in ref["sums"]]
        elif "k" in ref:  # a RateCUSUM reference (tenant segments, deploy guard)
            self._ref_sums = [float(ref["k"]), float(ref["n"])]
        elif "counts" in ref:
            self._ref_sums = [float(x) for x in ref["counts"]]
        elif "mean" in ref:
            self._ref_sums = [float(ref["mean"]), 1.0]
        else:
            return
        self._ref_windows = int(ref.get("windows", self.warmup))
        self._set_reference()

    def _set_reference(self) -> None:
        if self.kind == "labelset":
            self._ref_vec = list(self._ref_sums)
            self.reference = 0.0
        else:
            self.reference = self._value(self._ref_sums)

    def _sums(self, args) -> list[float] | None:
        """Additive sums of one window (plain floats: this runs for every segment)."""
        k = self.kind
        if k == "rate":
            kk, n = args
            return [kk, n] if n > 0 else None
        if k == "hist":
            h = args[0]
            tot = sum(h)
            if tot <= 0:
                return None
            return [sum(c * x for c, x in zip(_CENTRES, h, strict=True)), tot]
        if k == "labelset":
            h = [float(x) for x in args[0]]
            return h if sum(h) > 0 else None
        if k == "latency":
            mean, n = args
            return [mean * n, n] if n > 0 and math.isfinite(mean) else None
        kv, nv, kr, nr = args
        return [kv, nv, kr, nr] if nv > 0 and nr > 0 else None

    def _value(self, s) -> float:
        k = self.kind
        if k == "labelset":
            return js_distance(self._ref_vec, s) if self._ref_vec is not None else 0.0
        if k == "canary":
            rv = s[0] / s[1] if s[1] else 0.0
            rr = s[2] / s[3] if s[3] else 0.0
            return rv / rr if rr > 0 else (2.0 if rv > 0 else 1.0)
        return s[0] / s[1] if s[1] else 0.0

    def update(self, *args) -> None:
        if self._drift_detected:
            self._reset()
            self._after_detection()
        idx = self.windows_seen
        self.windows_seen += 1
        s = self._sums(args)
        if self.reference is None and self.kind != "canary":
            if s is not None:
                if self._ref_sums is None:
                    self._ref_sums = list(s)
                else:
                    self._ref_sums = [a + b for a, b in zip(self._ref_sums, s, strict=True)]
            self._ref_windows += 1
            if self._ref_windows >= self.warmup and self._ref_sums is not None:
                self._set_reference()
            return
        if self.kind == "canary":
            self.reference = 1.0
        if s is None:
            return
        if self._step(s, idx):
            self._drift_detected = True

    def _after_detection(self) -> None:
        pass

    def _step(self, s, idx: int) -> bool:
        raise NotImplementedError

    def evidence(self) -> dict:
        base = self.reference or 0.0
        cur = self.last_value
        return {
            "change": self.change,
            "baseline": base,
            "current": cur,
            "ci_low": cur,
            "ci_high": cur,
            "successes": 0.0,
            "trials": 0.0,
            "statistic": cur,
            "threshold": 0.0,
            "effect": cur / base if base else 0.0,
        }


class NaiveThreshold(_SeriesBaseline):
    """Fires when the last minute's pooled value crosses a fixed multiple of the reference."""

    def __init__(self, kind: str, change: str, warmup: int, ratio: float, pool: int = 12):
        self.ratio = ratio
        self.pool = pool
        self._recent: deque = deque(maxlen=pool)
        self._pooled: list[float] | None = None
        super().__init__(kind, change, warmup)

    def _after_detection(self) -> None:
        self._recent.clear()
        self._pooled = None

    def _step(self, s, idx: int) -> bool:
        pooled = self._pooled
        if pooled is None:
            pooled = self._pooled = [0.0] * len(s)
        if len(self._recent) == self.pool:
            for i, x in enumerate(self._recent[0][1]):
                pooled[i] -= x
        self._recent.append((idx, s))
        for i, x in enumerate(s):
            pooled[i] += x
        v = self._value(pooled)
        self.last_value = v
        ref = self.reference or 0.0
        k = self.kind
        if k == "rate":
            if self.change == "up":
                fire = pooled[0] >= 5 and v >= self.ratio * ref
            else:
                fire = pooled[1] * ref >= 10 and v <= self.ratio * ref
        elif k == "hist":
            fire = pooled[1] >= 50 and abs(v - ref) >= 0.05
        elif k == "labelset":
            fire = sum(pooled) >= 200 and v >= 0.1
        elif k == "latency":
            fire = v >= 1.2 * ref
        else:  # canary: version rate / rest rate
            fire = pooled[0] >= 5 and (v >= 1.5 if self.change == "up" else v <= 1 / 1.5)
        if fire:
            self.change_index = self._recent[0][0]
        return bool(fire)


class RiverDefault(_SeriesBaseline):
    """river's ADWIN (or PageHinkley for latency) at default parameters on window values."""

    def __init__(self, kind: str, change: str, warmup: int):
        super().__init__(kind, change, warmup)
        self._det = PageHinkley() if kind == "latency" else ADWIN()
        self._recent: deque = deque(maxlen=12)

    def _step(self, s, idx: int) -> bool:
        v = self._value(s)
        self.last_value = v
        self._recent.append(v)
        self._det.update(v)
        if not self._det.drift_detected:
            return False
        ref = self.reference or 0.0
        recent = sum(self._recent) / len(self._recent)
        if self.kind == "canary":
            moved_up = recent > 1.0
        elif self.kind == "labelset":
            moved_up = True
        else:
            moved_up = recent > ref
        want_up = self.change in ("up", "shift")
        hit = True if self.kind in ("hist", "labelset") else moved_up == want_up
        if hit:
            self.change_index = idx
        return hit


def _kind(signal: str) -> str:
    if signal == "score":
        return "hist"
    if signal in ("labelset", "latency"):
        return signal
    if signal.startswith("canary_"):
        return "canary"
    return "rate"


class NaiveFactory(DetectorFactory):
    name = "naive"

    def make(self, signal: str, change: str, critical: bool, tenant: bool = False):
        ratio = 2.0 if signal in ("unblock_rate", "report_rate") else 1.5 if change == "up" else 0.6
        return NaiveThreshold(_kind(signal), change, self.config.warmup_windows, ratio)


class RiverFactory(DetectorFactory):
    name = "river-default"

    def make(self, signal: str, change: str, critical: bool, tenant: bool = False):
        return RiverDefault(_kind(signal), change, self.config.warmup_windows)


def factories(config: BankConfig) -> dict[str, DetectorFactory]:
    """The methods a backtest compares, by name."""
    return {
        "filterwatch": DetectorFactory(config),
        "naive": NaiveFactory(config),
        "river-default": RiverFactory(config),
    }
