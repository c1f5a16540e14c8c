"""The alert record: what on-call reads, what the alerts table stores."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

from detectors.drift_event import DriftEvent

__all__ = ["DIRECTIONS", "Alert", "Incident", "RcaContext", "fingerprint"]

DIRECTIONS = ("over-blocking", "under-blocking", "drift")


def fingerprint(category: str, direction: str, segment: str) -> str:
    """Stable identity of *what* is alerting (not when): same incident, same fingerprint."""
    return hashlib.blake2b(f"{category}|{direction}|{segment}".encode(), digest_size=8).hexdigest()


@dataclass
class Incident:
    """A decision of the alert rules: one category, one direction, its evidence."""

    category: str
    direction: str
    severity: str
    events: list[DriftEvent]
    fired_at: float  # event time at which the rules emitted it
    scope_model_version: str | None = None  # set from the RCA context when concentrated
    status: str = "firing"  # firing | resolved
    resolved_at: float | None = None
    incident_id: str = ""  # stable for one pending -> firing -> resolved episode

    @property
    def affected_segments(self) -> list[str]:
        """Every segment that detected, most specific last (fleet, version, tenant)."""
        segs = {e.segment for e in self.events}
        return sorted(segs, key=lambda s: (s.count(","), s))

    @property
    def onset(self) -> float:
        return min(e.onset for e in self.events)

    @property
    def detected_at(self) -> float:
        return min(e.detected_at for e in self.events)

    @property
    def signals(self) -> list[str]:
        return sorted({e.signal for e in self.events})

    @property
    def model_versions(self) -> list[str]:
        return sorted({e.model_version for e in self.events if e.model_version != "*"})

    def headline(self) -> DriftEvent:
        """The event that best states the incident: direction evidence, fleet-level first."""
        from alerts.rules import evidence_direction

        def rank(e: DriftEvent):
            carries = evidence_direction(e) == self.direction
            return (not carries, e.model_version != "*", -abs(_log_effect(e)))

        return sorted(self.events, key=rank)[0]

    @property
    def segment(self) -> str:
        seg = f"category={self.category}"
        if self.scope_model_version is not None:
            seg += f",model_version={self.scope_model_version}"
        return seg


def _log_effect(e: DriftEvent) -> float:
    if e.signal in ("score", "latency"):
        return e.effect
    if e.effect <= 0 or e.effect == float("inf"):
        return 10.0 if e.effect == float("inf") else -10.0
    return math.log(e.effect)


@dataclass
class RcaContext:
    """Evidence pulled from ClickHouse for one alert."""

    window_start: float
    window_end: float
    top_domains: list[dict] = field(default_factory=list)
    top_tenants: list[dict] = field(default_factory=list)
    top_model_versions: list[dict] = field(default_factory=list)
    examples: list[dict] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    sql: str = ""
    # model_version -> (evidence after / before at equal length, evidence rows)
    version_ratios: dict[str, tuple[float, int]] = field(default_factory=dict)

    def concentrated_version(self, min_rows: int = 30) -> str | None:
        """The one model version the change is concentrated in, if there is one.

        A version is named when its evidence moved (after vs before the onset, at equal
        length) at least three times as far as any other version with enough rows; a
        change every version shares (a feature pipeline regression) names none.
        """
        items = [(k, r) for k, (r, n) in self.version_ratios.items() if n >= min_rows]
        if not items:
            return None
        new = [k for k, r in items if r == float("inf")]
        if len(new) == 1:
            return new[0]  # a version with no evidence before the onset and plenty after
        if len(items) == 1:
            return items[0][0] if len(self.version_ratios) == 1 else None

        def dev(r: float) -> float:
            if r == float("inf"):
                return float("inf")
            return abs(math.log(r)) if r > 0 else float("inf")

        items.sort(key=lambda kv: dev(kv[1]), reverse=True)
        top, rest = dev(items[0][1]), max(dev(r) for _, r in items[1:])
        if top == float("inf") and rest != float("inf"):
            return items[0][0]
        return items[0][0] if top >= 3 * max(rest, 0.05) else None

    def to_dict(self) -> dict:
        return {
            "window_start": self.window_start,
            "window_end": self.window_end,
            "top_domains": self.top_domains,
            "top_tenants": self.top_tenants,
            "top_model_versions": self.top_model_versions,
            "examples": self.examples,
            "hints": self.hints,
        }


@dataclass
class Alert:
    alert_id: str
    fingerprint: str
    incident: Incident
    context: RcaContext
    runbook: str
    created_at: float  # wall clock
    title: str = ""
    body_text: str = ""
    body_markdown: str = ""
    delivery_status: str = "pending"
    delivery_detail: str = ""
    group_key: str = ""
    silenced_by: str = ""
    version: int = 0  # bumped on every state change; the alerts table keeps the newest

    @property
    def category(self) -> str:
        return self.incident.category

    @property
    def direction(self) -> str:
        return self.incident.direction

    @property
    def severity(self) -> str:
        return self.incident.severity

    def summary_dict(self) -> dict:
        inc = self.incident
        h = inc.headline()
        return {
            "alert_id": self.alert_id,
            "category": inc.category,
            "direction": inc.direction,
            "severity": inc.severity,
            "segment": inc.segment,
            "signals": inc.signals,
            "onset": inc.onset,
            "detected_at": inc.detected_at,
            "fired_at": inc.fired_at,
            "rate_now": h.current,
            "rate_baseline": h.baseline,
            "ci": [h.ci_low, h.ci_high],
            "trials_of": h.trials_of,
            "model_versions": inc.model_versions,
            "top_domains": self.context.top_domains,
            "top_tenants": self.context.top_tenants,
            "examples": self.context.examples,
            "hints": self.context.hints,
            "sql": self.context.sql,
            "runbook": self.runbook,
            "delivery_status": self.delivery_status,
        }
