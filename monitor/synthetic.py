"""The synthetic suite: river's drift streams and change-point series, scored the same way.

Two kinds of stream with known change points, both shipped with river (no download):

- **Concept drift** (``river.datasets.synth.ConceptDriftStream`` over SEA and Agrawal):
  a Hoeffding tree is trained on the first concept and frozen, as a production model
  is; after the drift its error rate rises. The monitored signal is the 0/1 error
  stream, the analogue of an override rate. filterwatch's ``RateCUSUM`` runs on windows
  of 100 samples; river's detectors run on every sample at default parameters (the way
  they are meant to be used; FHDDM is fed "correct" bits, since it detects a *drop* in
  the rate of ones despite its docstring); the naive rule fires when a 500-sample
  window's error rate is 1.5x the reference.
- **Change-point series** (``river.drift.datasets``, from the Turing change-point
  benchmark, with several annotators): filterwatch's ``LatencyShift`` (standardised
  PageHinkley, both directions) against river's ADWIN, PageHinkley and KSWIN at
  defaults. These are short, trending real series, unlike the stationary noise the
  latency detector is built for; they are reported as found. Scored as the benchmark
  does: F1 against each annotator with a margin of 5 samples, averaged.

Rows carry delays in samples (there is no traffic clock), ``false_alarms_per_1k_samples``
and the common keys (``suite``, ``detector``, ``recall``, ``delay_median_s`` = None).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
from river import drift, tree
from river.datasets import synth

from detectors.latency_shift import LatencyShift
from detectors.rate_cusum import RateCUSUM

__all__ = ["run_synthetic"]

_TRAIN = 3_000
_POSITION = 10_000
_LENGTH = 20_000
_HORIZON = 5_000
_WINDOW = 100


def _concept_streams(seed: int) -> dict[str, Iterable]:
    return {
        "SEA 0->3 (ConceptDriftStream)": synth.ConceptDriftStream(
            stream=synth.SEA(variant=0, noise=0.1, seed=seed),
            drift_stream=synth.SEA(variant=3, noise=0.1, seed=seed + 1),
            position=_POSITION,
            width=100,  # river overflows exp() below ~4 * position / 709
            seed=seed,
        ),
        "Agrawal f0->f2 (ConceptDriftStream)": synth.ConceptDriftStream(
            stream=synth.Agrawal(classification_function=0, perturbation=0.05, seed=seed),
            drift_stream=synth.Agrawal(classification_function=2, perturbation=0.05, seed=seed + 1),
            position=_POSITION,
            width=100,  # river overflows exp() below ~4 * position / 709
            seed=seed,
        ),
    }


def _error_stream(stream: Iterable) -> np.ndarray:
    """0/1 errors of a model trained on the first ``_TRAIN`` samples and then frozen."""
    model = tree.HoeffdingTreeClassifier()
    errors = np.zeros(_LENGTH, dtype=np.int8)
    for i, (x, y) in enumerate(stream):
        if i >= _LENGTH:
            break
        if i < _TRAIN:
            model.learn_one(x, y)
            continue
        errors[i] = int(model.predict_one(x) != y)
    return errors


class _WindowedCUSUM:
    """filterwatch's RateCUSUM on 100-sample windows of a 0/1 stream."""

    name = "filterwatch RateCUSUM (100-sample windows)"

    def __init__(self):
        self.det = RateCUSUM("up", ratio=1.5, threshold=14.0, warmup=18)
        self.k = 0
        self.n = 0

    def update(self, e: int) -> bool:
        self.k += e
        self.n += 1
        if self.n < _WINDOW:
            return False
        self.det.update(self.k, self.n)
        self.k = self.n = 0
        return self.det.drift_detected


class _Naive:
    name = "naive 1.5x (500-sample window)"

    def __init__(self, warm: int = 1_800, window: int = 500):
        self.warm, self.window = warm, window
        self.ref_k = self.seen = 0
        self.buf: list[int] = []
        self.sum = 0

    def update(self, e: int) -> bool:
        self.seen += 1
        if self.seen <= self.warm:
            self.ref_k += e
            return False
        self.buf.append(e)
        self.sum += e
        if len(self.buf) > self.window:
            self.sum -= self.buf.pop(0)
        ref = self.ref_k / self.warm
        if len(self.buf) == self.window and self.sum / self.window >= 1.5 * max(ref, 1e-3):
            self.buf, self.sum = [], 0
            return True
        return False


class _River:
    def __init__(self, name: str, factory: Callable, invert: bool = False):
        self.name = f"river {name} (default)"
        self.det = factory()
        self.invert = invert

    def update(self, e: int) -> bool:
        self.det.update(1 - e if self.invert else e)
        return self.det.drift_detected


def _concept_methods() -> list:
    return [
        _WindowedCUSUM(),
        _Naive(),
        _River("ADWIN", drift.ADWIN),
        _River("PageHinkley", drift.PageHinkley),
        _River("DDM", drift.binary.DDM),
        _River("EDDM", drift.binary.EDDM),
        _River("HDDM_A", drift.binary.HDDMA),
        _River("HDDM_W", drift.binary.HDDMW),
        _River("FHDDM", drift.binary.FHDDM, invert=True),
    ]


def _score_concept(errors: np.ndarray, method) -> tuple[float | None, int, int]:
    """(delay in samples or None, false alarms, samples watched before the drift)."""
    false_alarms = 0
    delay = None
    for i in range(_TRAIN, _LENGTH):
        if method.update(int(errors[i])):
            if i < _POSITION:
                false_alarms += 1
            elif delay is None and i - _POSITION <= _HORIZON:
                delay = float(i - _POSITION)
                break
    return delay, false_alarms, _POSITION - _TRAIN


def _tcpd_f1(detected: list[int], annotations: dict, margin: int = 5) -> float:
    """The change-point benchmark's F1 (margin 5), averaged over annotators."""
    scores = []
    for cps in annotations.values():
        truth = set(cps) | {0}
        pred = set(detected) | {0}
        tp = sum(1 for t in truth if any(abs(t - p) <= margin for p in pred))
        precision = tp / len(pred)
        recall = tp / len(truth)
        scores.append(0.0 if tp == 0 else 2 * precision * recall / (precision + recall))
    return float(np.mean(scores)) if scores else 0.0


class _TwoSidedLatency:
    name = "filterwatch LatencyShift (both directions)"

    def __init__(self, warm: int):
        self.up = LatencyShift(warmup=warm, min_rel_shift=0.05)
        self.down = LatencyShift(warmup=warm, min_rel_shift=0.05)

    def update(self, x: float) -> bool:
        self.up.update(x, 1)
        self.down.update(-x, 1)
        return self.up.drift_detected or self.down.drift_detected


def _series_rows(progress) -> list[dict]:
    from river.drift import datasets as cpd

    rows = []
    for cls in (
        cpd.AirlinePassengers,
        cpd.Apple,
        cpd.Bitcoin,
        cpd.BrentSpotPrice,
        cpd.Occupancy,
        cpd.RunLog,
        cpd.UKCoalEmploy,
    ):
        ds = cls()
        # Multivariate series: the first variable, as the benchmark's univariate runs do.
        values = [float(next(iter(y.values())) if isinstance(y, dict) else y) for _, y in ds]
        n = len(values)
        warm = max(5, min(30, n // 10))
        methods = [
            _TwoSidedLatency(warm),
            _River("ADWIN", drift.ADWIN),
            _River("PageHinkley", drift.PageHinkley),
            _River("KSWIN", lambda: drift.KSWIN(seed=1)),
        ]
        for m in methods:
            found = [i for i, x in enumerate(values) if _update_value(m, x)]
            first_cp = min((min(c) for c in ds.annotations.values() if c), default=None)
            delays = [f - first_cp for f in found if first_cp is not None and f >= first_cp]
            rows.append(
                {
                    "suite": "synthetic",
                    "scenario": f"{cls.__name__} (change-point series, n={n})",
                    "method": m.name,
                    "detector": m.name,
                    "f1_margin5": round(_tcpd_f1(found, ds.annotations), 3),
                    "recall": None,
                    "detections": len(found),
                    "delay_median_samples": float(min(delays)) if delays else None,
                    "delay_p95_samples": None,
                    "delay_median_s": None,
                    "delay_p95_s": None,
                    "false_alarms_per_1k_samples": None,
                    "false_alarms_per_day_per_1k_segments": None,
                }
            )
        if progress:
            progress(f"synthetic {cls.__name__}")
    return rows


def _update_value(method, x: float) -> bool:
    if isinstance(method, _TwoSidedLatency):
        return method.update(x)
    method.det.update(x)
    return method.det.drift_detected


def run_synthetic(seeds: int = 5, progress=None) -> list[dict]:
    """Rows for the synthetic suite (concept-drift streams, then change-point series)."""
    per: dict[tuple[str, str], list] = {}
    for seed in range(1, seeds + 1):
        for name, stream in _concept_streams(seed).items():
            errors = _error_stream(stream)
            for m in _concept_methods():
                d, fa, watched = _score_concept(errors, m)
                per.setdefault((name, m.name), []).append((d, fa, watched))
            if progress:
                progress(f"synthetic {name} seed={seed}")
    rows = []
    for (name, method), runs in per.items():
        delays = [d for d, _, _ in runs if d is not None]
        fa = sum(f for _, f, _ in runs)
        watched = sum(w for _, _, w in runs)
        rows.append(
            {
                "suite": "synthetic",
                "scenario": name,
                "method": method,
                "detector": method,
                "runs": len(runs),
                "recall": round(len(delays) / len(runs), 3),
                "delay_median_samples": float(np.median(delays)) if delays else None,
                "delay_p95_samples": float(np.percentile(delays, 95)) if delays else None,
                "delay_median_s": None,
                "delay_p95_s": None,
                "false_alarms_per_1k_samples": round(1000 * fa / watched, 3),
                "false_alarms_per_day_per_1k_segments": None,
            }
        )
    rows += _series_rows(progress)
    return [r for r in rows if not _bad(r)]


def _bad(row: dict) -> bool:
    v = row.get("delay_median_samples")
    return v is not None and not math.isfinite(v)
