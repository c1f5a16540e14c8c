"""Alert rules: from drift events to alert lifecycles with a direction and a severity.

Direction comes from *evidence*, not from the detector that fired first:

- under-blocking: reports of harmful pages rise, an always-block category's block
  rate falls, or its label-free estimated false-negative rate rises (``est_fnr``);
- over-blocking: unblock requests per block rise, or pages of an "often over-blocked"
  category (health, education, news, ...) get blocked more;
- drift: everything else (category mix, score distribution, block rate of a category
  rising without override evidence); latency is its own alert type.

Each (category, direction) goes through Alertmanager's states, on event time:

``pending`` (evidence seen, waiting ``for_s``) -> ``firing`` -> ``resolved``.

A pending drift alert is absorbed by an over- or under-blocking alert of the same
category (the confirming feedback usually lags the block-rate change by tens of
seconds, and one precise alert beats a vague one followed by a second). A firing alert
collects every segment that detects; it resolves when every segment is back at its
reference - shown by the detector's return-to-baseline test where it has one (the rate
CUSUMs), or by ``quiet_s`` without a re-detection otherwise - and has stayed back for
``keep_firing_for_s``. A recurrence within ``cooldown_s`` of a resolve must persist
until the cooldown ends to fire again: the cooldown delays a flapping alert, it never
drops one that is still true.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from alerts.model import Incident
from detectors.drift_event import DriftEvent, Recovery, SegmentId
from monitor.config import AlertsConfig
from monitor.taxonomy import CATEGORY_NAMES, SeverityClass, severity_class

__all__ = ["AlertRules", "alert_type", "evidence_direction", "severity_for"]

# Signals whose detectors test the return to baseline (and emit a Recovery).
_RECOVERY_TESTED = {"block_rate", "unblock_rate", "report_rate", "predicted_rate", "latency"}
_MAX_EVENTS = 500  # evidence kept per alert; the rest is counted


def evidence_direction(e: DriftEvent) -> str:
    """What one drift event is evidence of."""
    cls = severity_class(e.category) if e.category in CATEGORY_NAMES else None
    if e.signal == "report_rate" and e.change == "up":
        return "under-blocking"
    if e.signal == "block_rate" and e.change == "down" and cls is SeverityClass.CIPA:
        return "under-blocking"
    if e.signal == "est_fnr" and e.change == "up" and cls is SeverityClass.CIPA:
        return "under-blocking"  # label-free estimate (monitor/label_free.py): no feedback
    if e.signal == "unblock_rate" and e.change == "up":
        return "over-blocking"
    if e.signal == "block_rate" and e.change == "up" and cls is SeverityClass.OFTEN_OVERBLOCKED:
        return "over-blocking"
    return "drift"


def alert_type(category: str, direction: str) -> str:
    """The rule an alert follows: its direction, with fleet-wide latency on its own."""
    return "latency" if direction == "drift" and category == "*" else direction


def severity_for(category: str, direction: str, signals: list[str]) -> str:
    cls = severity_class(category) if category in CATEGORY_NAMES else None
    if direction == "under-blocking":
        return "critical" if cls is SeverityClass.CIPA else "high"
    if direction == "over-blocking":
        if cls in (SeverityClass.CIPA, SeverityClass.OFTEN_OVERBLOCKED):
            return "high"
        return "warning"
    if "latency" in signals or "block_rate" in signals:
        return "warning"
    return "info"


@dataclass
class _Segment:
    last_seen: float
    tested: bool  # has a return-to-baseline test
    back_at: float | None = None  # when it was shown (or assumed) back


@dataclass
class _Track:
    category: str
    direction: str
    since: float  # first evidence
    state: str = "pending"
    events: list[DriftEvent] = field(default_factory=list)
    dropped_events: int = 0
    segments: dict[SegmentId, _Segment] = field(default_factory=dict)
    fire_after: float = 0.0
    all_back_since: float | None = None
    incident: Incident | None = None

    def add(self, events: list[DriftEvent]) -> None:
        for e in events:
            if len(self.events) < _MAX_EVENTS:
                self.events.append(e)
            else:
                self.dropped_events += 1
            seg = self.segments.get(e.segment_id)
            if seg is None:
                self.segments[e.segment_id] = _Segment(e.detected_at, e.signal in _RECOVERY_TESTED)
            else:
                seg.last_seen, seg.back_at = e.detected_at, None
        self.all_back_since = None


class AlertRules:
    """Stateful, pure: feed each window's drift events and recoveries in event-time order;
    get back the incidents that changed state (``firing`` or ``resolved``)."""

    def __init__(self, config: AlertsConfig | None = None):
        self.config = config or AlertsConfig()
        self._tracks: dict[tuple[str, str], _Track] = {}
        self._resolved_at: dict[tuple[str, str], float] = {}
        self.suppressed = 0  # evidence that arrived while an alert was already firing
        self.absorbed = 0  # pending alerts that went away before firing

    def observe(
        self, events: list[DriftEvent], now: float, recoveries: list[Recovery] | tuple = ()
    ) -> list[Incident]:
        """Take one window's drift events and recoveries; return state changes."""
        out: list[Incident] = []
        by_key: dict[tuple[str, str], list[DriftEvent]] = {}
        for e in events:
            by_key.setdefault((e.category, evidence_direction(e)), []).append(e)
        # Decisive directions first, so a pending drift of the same category joins them.
        for key, evs in sorted(by_key.items(), key=lambda kv: kv[0][1] == "drift"):
            cat, direction = key
            if direction == "drift":
                decisive = [
                    t
                    for d in ("under-blocking", "over-blocking")
                    if (t := self._tracks.get((cat, d))) is not None
                ]
                if decisive:  # this category already has a precise alert: it is evidence
                    decisive[0].add(evs)
                    self.suppressed += len(evs)
                    continue
            track = self._tracks.get(key)
            if track is None:
                track = self._open(key, now)
                if direction != "drift":
                    held = self._tracks.get((cat, "drift"))
                    if held is not None and held.state == "pending":
                        del self._tracks[(cat, "drift")]
                        track.add(held.events)
                        track.since = min(track.since, held.since)
            elif track.state == "firing":
                self.suppressed += len(evs)
            track.add(evs)
        for r in recoveries:
            for track in self._tracks.values():
                seg = track.segments.get(r.segment_id)
                if seg is not None and seg.back_at is None:
                    seg.back_at = r.at
        for key in list(self._tracks):
            inc = self._advance(key, self._tracks[key], now)
            if inc is not None:
                out.append(inc)
        return out

    def flush(self, now: float) -> list[Incident]:
        """End of input: fire what is pending (its evidence is all there is)."""
        out = []
        for track in self._tracks.values():
            if track.state == "pending":
                out.append(self._fire(track, now))
        return out

    @property
    def firing(self) -> list[Incident]:
        return [t.incident for t in self._tracks.values() if t.incident is not None]

    # -- the state machine ------------------------------------------------------------------
    def _open(self, key: tuple[str, str], now: float) -> _Track:
        cat, direction = key
        rule = self.config.rule(alert_type(cat, direction))
        track = _Track(cat, direction, since=now, fire_after=now + rule.for_s)
        last = self._resolved_at.get(key)
        if last is not None and now < last + rule.cooldown_s:
            track.fire_after = max(track.fire_after, last + rule.cooldown_s)
        self._tracks[key] = track
        return track

    def _advance(self, key: tuple[str, str], track: _Track, now: float) -> Incident | None:
        rule = self.config.rule(alert_type(*key))
        for seg in track.segments.values():
            if seg.back_at is None and not seg.tested and now - seg.last_seen >= rule.quiet_s:
                seg.back_at = seg.last_seen + rule.quiet_s
        all_back = all(s.back_at is not None for s in track.segments.values())
        if track.state == "pending":
            if all_back:  # gone before it fired: nothing to page about
                del self._tracks[key]
                self.absorbed += 1
                return None
            if now >= track.fire_after:
                return self._fire(track, now)
            return None
        # firing
        inc = track.incident
        inc.events = track.events
        if not all_back:
            track.all_back_since = None
            return None
        back = max(s.back_at for s in track.segments.values())
        track.all_back_since = back if track.all_back_since is None else track.all_back_since
        if now - track.all_back_since >= rule.keep_firing_for_s:
            del self._tracks[key]
            self._resolved_at[key] = now
            inc.status = "resolved"
            inc.resolved_at = now
            return inc
        return None

    def _fire(self, track: _Track, now: float) -> Incident:
        track.state = "firing"
        signals = sorted({e.signal for e in track.events})
        inc = Incident(
            track.category,
            track.direction,
            severity_for(track.category, track.direction, signals),
            track.events,
            now,
        )
        inc.incident_id = hashlib.blake2b(
            f"{track.category}|{track.direction}|{track.since:.3f}".encode(), digest_size=6
        ).hexdigest()
        track.incident = inc
        return inc
