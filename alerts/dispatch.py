"""Turns an incident into a delivered, recorded alert: context, rendering, apprise, table."""

from __future__ import annotations

import hashlib
import time

import orjson

from alerts.context import build_context
from alerts.model import Alert, Incident, fingerprint
from alerts.notify import Notifier
from alerts.render import render_markdown, render_text, title
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
    ):
        self.store = store
        self.notifier = notifier
        self.config = config
        self.window_s = window_s
        self.sent: list[Alert] = []

    def dispatch(self, incident: Incident) -> Alert:
        ctx = build_context(
            self.store,
            incident,
            top_n=self.config.top_n,
            examples=self.config.examples,
            window_s=self.window_s,
        )
        incident.scope_model_version = ctx.concentrated_version()
        fp = fingerprint(incident.category, incident.direction, incident.segment)
        alert_id = (
            "fw-"
            + hashlib.blake2b(f"{fp}|{incident.fired_at:.3f}".encode(), digest_size=6).hexdigest()
        )
        alert = Alert(
            alert_id=alert_id,
            fingerprint=fp,
            incident=incident,
            context=ctx,
            runbook=runbook_for(incident, self.config.runbook_base),
            created_at=time.time(),
        )
        alert.title = title(alert)
        alert.body_text = render_text(alert)
        alert.body_markdown = render_markdown(alert)
        if self.notifier is None or self.notifier.target_count == 0:
            alert.delivery_status, alert.delivery_detail = "no_targets", "no notify targets"
        else:
            d = self.notifier.send(incident.severity, alert.title, alert.body_markdown)
            alert.delivery_status, alert.delivery_detail = d.status, d.detail
        self._record(alert)
        self.sent.append(alert)
        return alert

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
                }
            ],
        )
