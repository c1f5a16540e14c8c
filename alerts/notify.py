"""Delivery through apprise: severities map to tags, tags to targets.

Notification URLs carry secrets (tokens, passwords), so nothing here logs or stores
them: the delivery record says how many targets took the alert, not which. apprise's
own logger is silenced for the same reason (it names hosts in its messages).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from monitor.config import NotifyTarget

__all__ = ["Delivery", "Notifier"]

logging.getLogger("apprise").setLevel(logging.CRITICAL + 1)


@dataclass(frozen=True)
class Delivery:
    status: str  # sent | partial | failed | no_targets
    detail: str


class Notifier:
    """Sends an alert to every target whose tags include its severity."""

    def __init__(self, targets: tuple[NotifyTarget, ...], timeout_s: float = 10.0):
        import apprise

        self._apprise = apprise
        self._targets = targets
        self._timeout = timeout_s
        self.invalid = 0
        self._by_severity: dict[str, list[object]] = {}
        for t in targets:
            obj = apprise.Apprise.instantiate(t.url)
            if obj is None:
                self.invalid += 1
                continue
            for sev in t.tags:
                self._by_severity.setdefault(sev, []).append(obj)

    @property
    def target_count(self) -> int:
        return len(self._targets) - self.invalid

    def send(self, severity: str, title: str, body: str, body_format: str = "markdown") -> Delivery:
        services = self._by_severity.get(severity, [])
        if not services:
            return Delivery("no_targets", f"no target is routed severity '{severity}'")
        ap = self._apprise.Apprise()
        for s in services:
            ap.add(s)
        fmt = (
            self._apprise.NotifyFormat.MARKDOWN
            if body_format == "markdown"
            else (self._apprise.NotifyFormat.TEXT)
        )
        notify_type = {
            "critical": self._apprise.NotifyType.FAILURE,
            "high": self._apprise.NotifyType.WARNING,
            "warning": self._apprise.NotifyType.WARNING,
        }.get(severity, self._apprise.NotifyType.INFO)
        try:
            result = ap.notify(body=body, title=title, body_format=fmt, notify_type=notify_type)
        except Exception as exc:  # apprise plugins may raise anything; never leak the URL
            return Delivery("failed", f"apprise raised {type(exc).__name__}")
        from apprise.result import AppriseResultStatus as St

        ok = int(result.success_count)
        total = len(services)
        if result.status == St.SUCCESS:
            return Delivery("sent", f"{total}/{total} targets accepted")
        if result.status == St.PARTIAL:
            return Delivery("partial", f"{ok}/{total} targets accepted")
        if result.status == St.TIMEOUT:
            return Delivery("failed", f"timed out; {ok}/{total} targets accepted")
        return Delivery("failed", f"{ok}/{total} targets accepted")
