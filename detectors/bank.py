"""The detector bank: every (signal, category, model_version) segment and its detector.

Segments are hierarchical: each category across all model versions (``model_version =
"*"``), and each category x model_version. A version's segments are tested against the
*fleet* reference of the category (learned across versions during warm-up), which is
what answers "does this new version behave like production did?". A version first seen
after warm-up is therefore tested from its first window, without a warm-up of its own
that would otherwise learn the incident as normal.

Signals, and why each is where it is:

============== ===================== ======================================================
signal         trials                detector
============== ===================== ======================================================
block_rate     requests              RateCUSUM up (all categories), down (CIPA only: a
                                     drop in an always-block category is under-blocking)
predicted_rate requests              RateCUSUM up/down, non-CIPA categories (category mix;
                                     for CIPA categories it duplicates block_rate)
unblock_rate   blocks of category    RateCUSUM up: unblocks per block, so a surge of
                                     correct blocks does not look like over-blocking
report_rate    requests              RateCUSUM up: reports of harmful pages allowed
score          scored requests       HistogramShift on the category's score histogram
latency        requests              LatencyShift (river PageHinkley) per version and fleet
============== ===================== ======================================================
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2

from detectors.drift_event import DriftEvent
from detectors.histogram_shift import HistogramShift
from detectors.latency_shift import LatencyShift
from detectors.rate_cusum import RateCUSUM
from monitor.aggregate import HIST_BINS, WindowAggregate
from monitor.taxonomy import CATEGORIES, SeverityClass

__all__ = ["BankConfig", "DetectorBank"]

ALL = "*"
_BIN_CENTRES = (np.arange(HIST_BINS) + 0.5) / HIST_BINS


@dataclass(frozen=True)
class BankConfig:
    """Detector parameters, chosen from measurements on simulated incidents (see README)."""

    window_s: float = 5.0
    warmup_windows: int = 18
    cusum_threshold: float = 14.0
    rate_up_ratio: float = 1.5
    rate_down_ratio: float = 0.6
    feedback_up_ratio: float = 2.0
    reference_z: float = 2.33
    hist_window: int = 6
    hist_alpha: float = 1e-7
    hist_min_js: float = 0.08
    hist_persistence: int = 2
    latency_min_rel_shift: float = 0.05
    latency_threshold: float = 25.0

    def __post_init__(self) -> None:
        if self.window_s <= 0:
            raise ValueError("window_s must be > 0")
        if self.warmup_windows < 2:
            raise ValueError("warmup_windows must be >= 2")


class _Slot:
    """A detector plus the global window index of its first update."""

    __slots__ = ("detector", "first_window", "kind")

    def __init__(self, detector, first_window: int, kind: str):
        self.detector = detector
        self.first_window = first_window
        self.kind = kind


class DetectorBank:
    """Feeds window aggregates to all segment detectors and returns drift events."""

    def __init__(
        self,
        config: BankConfig | None = None,
        *,
        categories: tuple[str, ...] | None = None,
        latency: bool = True,
    ):
        """``categories``/``latency`` restrict the bank to a slice of the segments, so a
        streaming worker can own one category's detectors (keyed partitioning)."""
        self.config = config or BankConfig()
        self.categories = (
            tuple(c.name for c in CATEGORIES) if categories is None else tuple(categories)
        )
        self.latency = latency
        self._slots: dict[tuple[str, str, str, str], _Slot] = {}
        self._cipa = {c.name for c in CATEGORIES if c.severity_class is SeverityClass.CIPA}
        self.windows = 0
        self.last_window: int | None = None

    # -- construction ---------------------------------------------------------------------
    def _signals_for(self, cat: str) -> list[tuple[str, str]]:
        sigs = [("block_rate", "up"), ("unblock_rate", "up"), ("report_rate", "up")]
        if cat in self._cipa:
            sigs.append(("block_rate", "down"))
        else:
            sigs += [("predicted_rate", "up"), ("predicted_rate", "down")]
        sigs.append(("score", "shift"))
        return sigs

    def _new_detector(self, signal: str, change: str):
        c = self.config
        if signal == "score":
            return HistogramShift(
                window=c.hist_window,
                alpha=c.hist_alpha,
                min_js=c.hist_min_js,
                persistence=c.hist_persistence,
                warmup=c.warmup_windows,
            )
        if signal == "latency":
            return LatencyShift(
                warmup=c.warmup_windows,
                min_rel_shift=c.latency_min_rel_shift,
                threshold=c.latency_threshold,
            )
        if signal in ("unblock_rate", "report_rate"):
            ratio = c.feedback_up_ratio
        else:
            ratio = c.rate_up_ratio if change == "up" else c.rate_down_ratio
        return RateCUSUM(
            change,
            ratio=ratio,
            threshold=c.cusum_threshold,
            warmup=c.warmup_windows,
            z=c.reference_z,
        )

    def _slot(self, key: tuple[str, str, str, str], window: int) -> _Slot | None:
        slot = self._slots.get(key)
        if slot is not None:
            return slot
        signal, cat, mv, change = key
        det = self._new_detector(signal, change)
        if mv != ALL:
            fleet = self._slots.get((signal, cat, ALL, change))
            if fleet is None or not fleet.detector.warmed_up:
                return None  # versions are tested against the fleet reference only
            _copy_reference(fleet.detector, det)
        slot = _Slot(det, window, signal)
        self._slots[key] = slot
        return slot

    # -- the work ---------------------------------------------------------------------------
    def update(self, agg: WindowAggregate) -> list[DriftEvent]:
        """Feed one closed window (all segments) and return the detections it caused."""
        self.windows += 1
        self.last_window = agg.index
        w = agg.index
        events: list[DriftEvent] = []
        fleet_requests = sum(v[0] for v in agg.versions.values())
        fleet_lat_sum = sum(v[2] for v in agg.versions.values())
        fleet_lat_n = sum(v[3] for v in agg.versions.values())
        cells = agg.category_totals()  # (cat, mv) including mv == "*"
        versions = [ALL, *sorted(agg.versions)]
        # Make sure every known segment gets an update each window (zeros if silent), so
        # window indices stay aligned; new segments are created on first sight.
        for cat in self.categories:
            for mv in versions:
                self._ensure(cat, mv, w)
        if self.latency:
            for mv in versions:
                self._slot(("latency", ALL, mv, "up"), w)
        for (signal, cat, mv, change), slot in list(self._slots.items()):
            if signal == "latency":
                if mv == ALL:
                    n, lat_sum, lat_n = fleet_requests, fleet_lat_sum, fleet_lat_n
                else:
                    v = agg.versions.get(mv)
                    n, lat_sum, lat_n = (v[0], v[2], v[3]) if v else (0, 0.0, 0)
                mean = lat_sum / lat_n if lat_n else float("nan")
                slot.detector.update(mean, n)
            else:
                requests = fleet_requests if mv == ALL else agg.versions.get(mv, (0,))[0]
                cell = cells.get((cat, mv))
                if signal == "score":
                    hist = cell[4:] if cell else [0] * HIST_BINS
                    slot.detector.update(hist)
                else:
                    k, n = _counts(signal, cell, requests)
                    slot.detector.update(k, n)
            if slot.detector.drift_detected:
                events.append(self._event(signal, cat, mv, change, slot, agg))
        return events

    def _ensure(self, cat: str, mv: str, w: int) -> None:
        for signal, change in self._signals_for(cat):
            self._slot((signal, cat, mv, change), w)

    def _event(self, signal, cat, mv, change, slot: _Slot, agg: WindowAggregate) -> DriftEvent:
        det = slot.detector
        ws = self.config.window_s
        onset_idx = slot.first_window + (det.change_index or 0)
        onset = onset_idx * ws
        detected_at = agg.end
        name = type(det).__name__
        if isinstance(det, RateCUSUM):
            k, n, lo, hi = det.run_rate()
            current = k / n if n else 0.0
            base = det.p_ref or 0.0
            return DriftEvent(
                signal,
                cat,
                mv,
                change,
                onset,
                detected_at,
                base,
                current,
                lo,
                hi,
                k,
                n,
                _TRIALS_OF[signal],
                det.statistic,
                det.threshold,
                current / base if base > 0 else float("inf"),
                name,
            )
        if isinstance(det, HistogramShift):
            ref, cur = det.reference, det.current
            base = float(np.dot(ref, _BIN_CENTRES) / max(ref.sum(), 1))
            current = float(np.dot(cur, _BIN_CENTRES) / max(cur.sum(), 1))
            sd = float(np.sqrt(np.dot(cur, (_BIN_CENTRES - current) ** 2) / max(cur.sum(), 1)))
            half = 1.96 * sd / max(np.sqrt(cur.sum()), 1.0)
            crit = float(chi2.isf(det.alpha, HIST_BINS - 1))
            return DriftEvent(
                signal,
                cat,
                mv,
                "up" if current > base else "down",
                onset,
                detected_at,
                base,
                current,
                current - half,
                current + half,
                float(cur.sum()),
                float(cur.sum()),
                "scored requests",
                det.statistic,
                crit,
                det.js,
                name,
            )
        assert isinstance(det, LatencyShift)
        current = det.run_mean()
        base = det.mean or 0.0
        return DriftEvent(
            signal,
            cat,
            mv,
            "up",
            onset,
            detected_at,
            base,
            current,
            current - det.sd,
            current + det.sd,
            0.0,
            0.0,
            "requests",
            float(det._ph._sum_increase - det._ph._min_increase),
            det.threshold,
            current / base - 1 if base else 0.0,
            name,
        )

    # -- state ------------------------------------------------------------------------------
    @property
    def segment_count(self) -> int:
        return len(self._slots)

    def to_bytes(self) -> bytes:
        """Serialized state; :meth:`from_bytes` resumes exactly where this left off."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def from_bytes(data: bytes) -> DetectorBank:
        bank = pickle.loads(data)
        if not isinstance(bank, DetectorBank):
            raise TypeError("not a DetectorBank state")
        return bank


_TRIALS_OF = {
    "block_rate": "requests",
    "predicted_rate": "requests",
    "unblock_rate": "blocks",
    "report_rate": "requests",
}


def _counts(signal: str, cell, requests: int) -> tuple[float, float]:
    if cell is None:
        return 0.0, float(requests) if signal != "unblock_rate" else 0.0
    predicted, blocked, unblocks, reports = cell[0], cell[1], cell[2], cell[3]
    if signal == "block_rate":
        return blocked, requests
    if signal == "predicted_rate":
        return predicted, requests
    if signal == "unblock_rate":
        return min(unblocks, blocked) if blocked else 0.0, blocked
    if signal == "report_rate":
        return reports, requests
    raise KeyError(signal)


def _copy_reference(src, dst) -> None:
    if isinstance(src, RateCUSUM):
        dst.set_reference(src._ref_k, src._ref_n)
    elif isinstance(src, HistogramShift):
        dst.set_reference(src.reference)
    elif isinstance(src, LatencyShift):
        dst.set_reference(src.mean, src.sd)
