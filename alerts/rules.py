"""Alert rules: from drift events to incidents with a direction and a severity.

Direction comes from *evidence*, not from the detector that fired first:

- under-blocking: reports of harmful pages rise, or an always-block category's block
  rate falls;
- over-blocking: unblock requests per block rise, or pages of an "often over-blocked"
  category (health, education, news, ...) get blocked more;
- drift: everything else (category mix, score distribution, block rate of a category
  rising without override evidence, latency).

A drift incident is held for ``drift_hold_s`` of event time before it fires: the
confirming evidence for over- or under-blocking (feedback) usually lags the block-rate
change by tens of seconds, and one alert that says "over-blocking" beats a "drift"
alert followed by a second one. Over/under-blocking incidents fire at once, absorbing
any held drift evidence of the same category. After firing, a key (category,
direction) is quiet for ``cooldown_s``; later evidence is counted, not re-sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alerts.model import Incident
from detectors.drift_event import DriftEvent
from monitor.config import AlertsConfig
from monitor.taxonomy import CATEGORY_NAMES, SeverityClass, severity_class

__all__ = ["AlertRules", "evidence_direction", "severity_for"]


def evidence_direction(e: DriftEvent) -> str:
    """What one drift event is evidence of."""
    cls = severity_class(e.category) if e.category in CATEGORY_NAMES else None
    if e.signal == "report_rate" and e.change == "up":
        return "under-blocking"
    if e.signal == "block_rate" and e.change == "down" and cls is SeverityClass.CIPA:
        return "under-blocking"
    if e.signal == "unblock_rate" and e.change == "up":
        return "over-blocking"
    if e.signal == "block_rate" and e.change == "up" and cls is SeverityClass.OFTEN_OVERBLOCKED:
        return "over-blocking"
    return "drift"


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
class _Pending:
    events: list[DriftEvent] = field(default_factory=list)
    first_seen: float = 0.0


class AlertRules:
    """Stateful, pure: feed drift events in event-time order, get incidents to alert on."""

    def __init__(self, config: AlertsConfig | None = None):
        self.config = config or AlertsConfig()
        self._held: dict[str, _Pending] = {}  # category -> held drift evidence
        self._last_fired: dict[tuple[str, str], float] = {}
        self.suppressed = 0  # events absorbed by cooldown

    def observe(self, events: list[DriftEvent], now: float) -> list[Incident]:
        """Take this window's drift events; return the incidents to fire now."""
        out: list[Incident] = []
        by_key: dict[tuple[str, str], list[DriftEvent]] = {}
        for e in events:
            by_key.setdefault((e.category, evidence_direction(e)), []).append(e)
        # Over/under-blocking first, so held drift of the same category joins them.
        for (cat, direction), evs in sorted(by_key.items(), key=lambda kv: kv[0][1] == "drift"):
            if direction == "drift":
                if self._cooling((cat, "drift"), now) or self._cooling_any_decisive(cat, now):
                    self.suppressed += len(evs)
                    continue
                pend = self._held.get(cat)
                if pend is None:
                    self._held[cat] = _Pending(list(evs), now)
                else:
                    pend.events.extend(evs)
                continue
            if self._cooling((cat, direction), now):
                self.suppressed += len(evs)
                continue
            held = self._held.pop(cat, None)
            all_events = evs + (held.events if held else [])
            out.append(self._fire(cat, direction, all_events, now))
        out.extend(self._release(now))
        return out

    def flush(self, now: float) -> list[Incident]:
        """End of input: fire every held drift incident."""
        return self._release(now, force=True)

    def _release(self, now: float, force: bool = False) -> list[Incident]:
        out = []
        for cat in list(self._held):
            pend = self._held[cat]
            if force or now - pend.first_seen >= self.config.drift_hold_s:
                del self._held[cat]
                out.append(self._fire(cat, "drift", pend.events, now))
        return out

    def _fire(self, cat: str, direction: str, events: list[DriftEvent], now: float) -> Incident:
        self._last_fired[(cat, direction)] = now
        signals = sorted({e.signal for e in events})
        return Incident(cat, direction, severity_for(cat, direction, signals), events, now)

    def _cooling(self, key: tuple[str, str], now: float) -> bool:
        last = self._last_fired.get(key)
        return last is not None and now - last < self.config.cooldown_s

    def _cooling_any_decisive(self, cat: str, now: float) -> bool:
        return self._cooling((cat, "over-blocking"), now) or self._cooling(
            (cat, "under-blocking"), now
        )
