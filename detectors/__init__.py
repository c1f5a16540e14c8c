"""Detector banks on aggregated windows.

Detectors here consume one *window aggregate* per update (counts of successes and
trials, a score histogram, a window's mean latency), not single events: at 12,700
events/s a per-event detector spends its budget on bookkeeping, while the statistics of
rate and distribution shifts are fully captured by the window's sufficient statistics.

- :class:`RateCUSUM`: likelihood-ratio CUSUM on binomial counts (block rate, override
  rate, report rate, category share), against a conservatively bounded reference.
- :class:`HistogramShift`: two-sample chi-square + Jensen-Shannon materiality on score
  histograms over a sliding window.
- :class:`LatencyShift`: river's PageHinkley on standardised window means.
- :class:`DetectorBank`: the segments (category, category x model_version) and signals.
"""

from detectors.bank import BankConfig, DetectorBank
from detectors.drift_event import DriftEvent
from detectors.histogram_shift import HistogramShift
from detectors.latency_shift import LatencyShift
from detectors.rate_cusum import RateCUSUM

__all__ = [
    "BankConfig",
    "DetectorBank",
    "DriftEvent",
    "HistogramShift",
    "LatencyShift",
    "RateCUSUM",
]
