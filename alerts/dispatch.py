"""From incident state changes to recorded alerts and delivered notifications.

The order is the outbox's: the alert row is written to ClickHouse first (with its RCA
context), then the manager groups it, the notification is written, and only then is
anything sent. Delivery problems never lose the alert; they leave a ``retry`` row that
the next :meth:`AlertDispatcher.tick` (or a restarted worker) picks up.
"""

from __future__ import annotations

import hashlib
import time

import orjson

from alerts.context import build_context
from alerts.manager import AlertManager, Notification
from alerts.model import Alert, Incident, fingerprint
from alerts.notify import Notifier
from alerts.outbox import DeliveryReport, Outbox
from alerts.render import render_markdown, render_text, title
from alerts.silences import SilenceBook
from monitor.config import AlertsConfig
from monitor.storage import Store

__all__ = ["AlertDispatcher", "runbook_for"]


def runbook_for(incident: Incident, base: str) -> str:
    name = "latency" if incident.signals == ["latency"] else incident.direction
    return f"{base.rstrip('/')}/{name}.md"


class AlertDispatcher:
    def __init__(
        self,
        store: Store,
        notifier: Notifier | None,
        config: AlertsConfig,
        window_s: float = 5.0,
        manager: AlertManager | None = None,
    ):
        self.store = store
        self.notifier = notifier
        self.config = config
        self.window_s = window_s
        self.silences = SilenceBook(store)
        self.manager = manager or AlertManager(config, self.silences)
        self.manager.silences = self.silences
        self.outbox = Outbox(store, notifier, config)
        # The newest state of the most recent alerts (bounded: a worker runs for months).
        self.recent: dict[str, Alert] = {}
        self.delivery = DeliveryReport()
        self._open: dict[str, Alert] = {}  # incident_id -> its alert while firing
        self._inflight: dict[str, list[Alert]] = {}  # notification id -> alerts it carries
        self._last_retry_check = -1e18
        self._unwritten: list[Notification] = []

    # -- alerts ---------------------------------------------------------------------------
    def dispatch(self, incident: Incident, now: float | None = None) -> Alert:
        """Record an incident's new state (firing or resolved) and hand it to grouping."""
        now = incident.fired_at if now is None else now
        alert = self._open.get(incident.incident_id) if incident.incident_id else None
        if alert is None:
            alert = self._new_alert(incident)
            if incident.status == "firing" and incident.incident_id:
                self._open[incident.incident_id] = alert
        else:
            alert.incident = incident
            if incident.status == "resolved":
                self._open.pop(incident.incident_id, None)
        alert.version += 1
        alert.title = title(alert)
        alert.body_text = render_text(alert)
        alert.body_markdown = render_markdown(alert)
        self._record(alert)  # first: a store failure here leaves grouping untouched
        self.manager.add(alert, now)
        self.recent[alert.alert_id] = alert
        if len(self.recent) > 1000:
            del self.recent[next(iter(self.recent))]
        return alert

    def _new_alert(self, incident: Incident) -> Alert:
        ctx = build_context(
            self.store,
            incident,
            top_n=self.config.top_n,
            examples=self.config.examples,
            window_s=self.window_s,
        )
        incident.scope_model_version = ctx.concentrated_version()
        fp = fingerprint(incident.category, incident.direction, incident.segment)
        episode = incident.incident_id or f"{incident.fired_at:.3f}"
        alert_id = "fw-" + hashlib.blake2b(f"{fp}|{episode}".encode(), digest_size=6).hexdigest()
        return Alert(
            alert_id=alert_id,
            fingerprint=fp,
            incident=incident,
            context=ctx,
            runbook=runbook_for(incident, self.config.runbook_base),
            created_at=time.time(),
        )

    # -- notifications --------------------------------------------------------------------
    def tick(self, now: float, *, final: bool = False) -> list[Notification]:
        """Group, write and deliver what is due at event time ``now``."""
        due = self.manager.flush(now) if final else self.manager.tick(now)
        # Notifications the manager let go of but the store did not take yet (it was
        # down) go first; each leaves this list only once it is written.
        self._unwritten += due
        due = []
        while self._unwritten:
            n = self._unwritten[0]
            self.outbox.enqueue(n)
            self._unwritten.pop(0)
            due.append(n)
            for a, sid in n.silenced:
                a.delivery_status, a.delivery_detail = "silenced", f"silenced by {sid}"
                self._record(a)
            if n.alerts:
                self._inflight[n.notification_id] = list(n.alerts)
        if due or self._inflight or self._retry_check_due():
            rep = self.outbox.deliver()
            for k in ("attempted", "sent", "retry", "failed"):
                setattr(self.delivery, k, getattr(self.delivery, k) + getattr(rep, k))
            self._settle()
        return due

    def _retry_check_due(self) -> bool:
        """Look for deliveries left by a failure or an earlier process, every few seconds."""
        if self.notifier is None:
            return False
        t = time.monotonic()
        if t - self._last_retry_check < 5.0:
            return False
        self._last_retry_check = t
        return self.outbox.pending() > 0

    def _settle(self) -> None:
        """Write each in-flight notification's delivery outcome onto its alerts' rows."""
        if not self._inflight:
            return
        rows = self.store.rows(
            "SELECT notification_id, groupArray(s), groupArray(e) FROM ("
            "  SELECT notification_id, target, argMax(status, version) AS s, "
            "         argMax(last_error, version) AS e "
            f"  FROM {self.store.db}.deliveries "
            "  WHERE notification_id IN {ids:Array(String)} GROUP BY notification_id, target"
            ") GROUP BY notification_id",
            {"ids": list(self._inflight)},
        )
        for nid, states, errors in rows:
            status, detail = _outcome(states, errors)
            final = status in ("sent", "failed", "no_targets")
            for a in self._inflight[nid]:
                if (a.delivery_status, a.delivery_detail) != (status, detail):
                    a.delivery_status, a.delivery_detail = status, detail
                    self._record(a)
            if final:
                del self._inflight[nid]

    def _record(self, alert: Alert) -> None:
        inc = alert.incident
        h = inc.headline()
        self.store.insert_rows(
            "alerts",
            [
                {
                    "alert_id": alert.alert_id,
                    "fingerprint": alert.fingerprint,
                    "created_at": int(alert.created_at * 1000),
                    "detected_at": int(inc.detected_at * 1000),
                    "onset": int(inc.onset * 1000),
                    "category": inc.category,
                    "direction": inc.direction,
                    "severity": inc.severity,
                    "segment": inc.segment,
                    "signals": inc.signals,
                    "rate_now": float(h.current),
                    "rate_baseline": float(h.baseline),
                    "ci_low": float(h.ci_low),
                    "ci_high": float(h.ci_high),
                    "trials_of": h.trials_of,
                    "title": alert.title,
                    "body_text": alert.body_text,
                    "body_markdown": alert.body_markdown,
                    "context_json": orjson.dumps(alert.context.to_dict()).decode(),
                    "sql_query": alert.context.sql,
                    "runbook": alert.runbook,
                    "delivery_status": alert.delivery_status,
                    "delivery_detail": alert.delivery_detail,
                    "status": inc.status,
                    "resolved_at": int(inc.resolved_at * 1000) if inc.resolved_at else None,
                    "incident_id": inc.incident_id,
                    "group_key": alert.group_key,
                    "model_version": inc.scope_model_version or "*",
                    "affected_segments": inc.affected_segments,
                    "silenced_by": alert.silenced_by,
                    "version": time.time_ns(),
                }
            ],
        )


def _outcome(states: list[str], errors: list[str]) -> tuple[str, str]:
    """One status for a notification from its per-target delivery states."""
    n = len(states)
    sent = states.count("sent")
    if states == ["no_route"]:
        return "no_targets", "no target is routed this severity"
    if sent == n:
        return "sent", f"{n}/{n} targets accepted"
    if any(s in ("pending", "retry") for s in states):
        why = next((e for e in errors if e), "")
        return "retry", f"{sent}/{n} targets accepted; retrying ({why})"
    why = next((e for e in errors if e), "")
    return "failed", f"{sent}/{n} targets accepted; gave up ({why})"
