"""The typed result a detector bank emits; alerts/ decides what it means."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["DriftEvent"]


@dataclass(frozen=True, slots=True)
class DriftEvent:
    """One detected change in one signal of one segment.

    Rates are per trial (the trial is named by ``trials_of``: requests, blocks, ...).
    ``onset`` is the detector's change-point estimate; ``detected_at`` the end of the
    window in which the detection happened (both epoch seconds, event time).
    """

    signal: str
    category: str  # "*" for signals that are not per category (latency)
    model_version: str  # "*" for all versions
    change: str  # "up" or "down"
    onset: float
    detected_at: float
    baseline: float
    current: float
    ci_low: float
    ci_high: float
    successes: float
    trials: float
    trials_of: str
    statistic: float
    threshold: float
    effect: float  # rate ratio, JS distance, or relative latency shift
    detector: str
    tenant: str = "*"  # "*" for all tenants
    detail: str = ""  # signal-specific evidence, e.g. the label set whose share moved most

    @property
    def segment(self) -> str:
        parts = [f"category={self.category}"]
        if self.model_version != "*":
            parts.append(f"model_version={self.model_version}")
        if self.tenant != "*":
            parts.append(f"tenant={self.tenant}")
        return ",".join(parts)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["segment"] = self.segment
        return d
