"""Grouping, routing, silences and repeats: Alertmanager's notification pipeline, in-process.

Alerts are grouped per route (severity -> tags) by ``alerts.group_by`` labels (default
direction and model version): one model version over-blocking in twelve categories is one
group, so on-call gets one message listing twelve categories. A group is first notified
``group_wait_s`` after its first alert (so the rest of the incident can join), then at
most every ``group_interval_s`` when its alerts change (new alert, or resolved), and
every ``repeat_interval_s`` while something in it is still firing. The info route is a
digest: one group, notified every ``digest_interval_s``.

Times are event time (window ends) except silences, which are the operator's wall clock.
The manager is pure: it returns :class:`Notification` records for the outbox.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from alerts.model import Alert
from alerts.render import group_title, render_group_markdown, render_group_text
from alerts.rules import alert_type
from alerts.silences import SilenceBook
from monitor.config import AlertsConfig

__all__ = ["AlertManager", "Notification", "alert_labels"]


def alert_labels(alert: Alert) -> dict[str, object]:
    """The labels silences and grouping match on."""
    inc = alert.incident
    tenants = sorted({e.tenant for e in inc.events if e.tenant != "*"})
    top_tenant = alert.context.top_tenants[0]["key"] if alert.context.top_tenants else None
    return {
        "category": inc.category,
        "direction": inc.direction,
        "severity": inc.severity,
        "model_version": inc.scope_model_version or "*",
        "tenant": tenants or ([top_tenant] if top_tenant else []),
        "signal": inc.signals,
    }


@dataclass
class Notification:
    notification_id: str
    group_key: str
    kind: str  # firing | resolved | repeat
    severity: str
    route_tags: tuple[str, ...]
    alerts: list[Alert]  # the ones sent (not silenced)
    silenced: list[tuple[Alert, str]]  # (alert, silence id)
    created_at: float
    title: str = ""
    body_markdown: str = ""
    body_text: str = ""


@dataclass
class _Group:
    key: str
    severity: str
    alerts: dict[str, Alert] = field(default_factory=dict)  # alert_id -> latest state
    first_seen: float = 0.0
    last_sent: float | None = None
    changed: bool = True
    sent_state: dict[str, str] = field(default_factory=dict)  # alert_id -> status notified
    seq: int = 0


_SEV_ORDER = {"critical": 0, "high": 1, "warning": 2, "info": 3}


class AlertManager:
    def __init__(self, config: AlertsConfig, silences: SilenceBook | None = None):
        self.config = config
        self.silences = silences
        self._groups: dict[str, _Group] = {}
        self.silenced_total = 0

    def __getstate__(self) -> dict:  # silences are re-attached after a restore
        d = dict(self.__dict__)
        d["silences"] = None
        return d

    def _group_key(self, alert: Alert) -> tuple[str, str]:
        sev = alert.severity
        if sev == "info":
            return "info|digest", sev
        labels = alert_labels(alert)
        parts = [f"{g}={labels[g]}" for g in self.config.group_by if g != "severity"]
        return f"{sev}|" + ",".join(parts), sev

    def add(self, alert: Alert, now: float) -> None:
        """An alert fired or resolved (its latest state replaces the earlier one)."""
        key, sev = self._group_key(alert)
        alert.group_key = key
        g = self._groups.get(key)
        if g is None:
            g = self._groups[key] = _Group(key, sev, first_seen=now)
        g.alerts[alert.alert_id] = alert
        g.changed = True

    def tick(self, now: float, wall: float | None = None) -> list[Notification]:
        """Notifications due at event time ``now``."""
        wall = time.time() if wall is None else wall
        out = []
        for key in list(self._groups):
            g = self._groups[key]
            n = self._due(g, now, wall)
            if n is not None:
                out.append(n)
            if all(a.incident.status == "resolved" for a in g.alerts.values()) and not g.changed:
                del self._groups[key]
        return out

    def flush(self, now: float, wall: float | None = None) -> list[Notification]:
        """End of input: send whatever has changed, without waiting."""
        wall = time.time() if wall is None else wall
        out = []
        for g in list(self._groups.values()):
            if g.changed:
                n = self._due(g, now, wall, force=True)
                if n is not None:
                    out.append(n)
        return out

    def _intervals(self, g: _Group) -> tuple[float, float, float]:
        c = self.config
        if g.severity == "info":
            return c.digest_interval_s, c.digest_interval_s, c.digest_interval_s
        repeat = min(
            (
                c.rule(alert_type(a.category, a.direction)).repeat_interval_s
                for a in g.alerts.values()
            ),
            default=c.rule("drift").repeat_interval_s,
        )
        return c.group_wait_s, c.group_interval_s, repeat

    def _due(self, g: _Group, now: float, wall: float, force: bool = False) -> Notification | None:
        wait, interval, repeat = self._intervals(g)
        firing = [a for a in g.alerts.values() if a.incident.status == "firing"]
        if g.changed:
            next_at = g.first_seen + wait if g.last_sent is None else g.last_sent + interval
            if now < next_at and not force:
                return None
            kind = "firing" if firing else "resolved"
        elif firing and g.last_sent is not None and now >= g.last_sent + repeat:
            kind = "repeat"
        else:
            return None
        # What this notification carries: every firing alert, plus those resolved since
        # the last one (a resolved alert is announced once).
        members = firing + [
            a
            for a in g.alerts.values()
            if a.incident.status == "resolved" and g.sent_state.get(a.alert_id) != "resolved"
        ]
        members.sort(key=lambda a: (_SEV_ORDER.get(a.severity, 9), a.category))
        sent, silenced = [], []
        for a in members:
            s = self.silences.silencing(alert_labels(a), wall) if self.silences else None
            if s is None:
                sent.append(a)
            else:
                silenced.append((a, s.silence_id))
                a.silenced_by = s.silence_id
        self.silenced_total += len(silenced)
        g.seq += 1
        g.last_sent = now
        g.changed = False
        for a in members:
            g.sent_state[a.alert_id] = a.incident.status
        nid = (
            "fn-"
            + hashlib.blake2b(
                f"{g.key}|{g.first_seen:.3f}|{g.seq}".encode(), digest_size=8
            ).hexdigest()
        )
        n = Notification(
            nid, g.key, kind, g.severity, self.config.route_tags(g.severity), sent, silenced, now
        )
        if sent:
            n.title = group_title(n)
            n.body_markdown = render_group_markdown(n)
            n.body_text = render_group_text(n)
        else:
            n.title = f"(silenced) {len(silenced)} alert(s) in {g.key}"
        return n

    @property
    def groups(self) -> int:
        return len(self._groups)
