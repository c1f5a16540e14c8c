"""The typed result a detector bank emits; alerts/ decides what it means."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["DriftEvent", "Recovery", "SegmentId"]

# (signal, category, model_version, tenant, change): one tested segment
SegmentId = tuple[str, str, str, str, str]


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

    @property
    def segment_id(self) -> SegmentId:
        return (self.signal, self.category, self.model_version, self.tenant, self.change)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["segment"] = self.segment
        return d


@dataclass(frozen=True, slots=True)
class Recovery:
    """A segment that detected a change has been shown to be back at its reference.

    Only detectors with a return-to-baseline test emit these (the rate CUSUMs); alert
    rules treat other segments as recovered after a quiet period instead.
    """

    signal: str
    category: str
    model_version: str
    tenant: str
    change: str
    at: float  # end of the window in which the test passed (event time)
    current: float  # the rate over the recovery run, for the resolved message

    @property
    def segment_id(self) -> SegmentId:
        return (self.signal, self.category, self.model_version, self.tenant, self.change)
