"""Delivery through apprise: each notification goes to the targets its route's tags name.

Targets come from three places: an apprise config file (YAML or TEXT, with apprise's own
``tag:`` per URL), the ``notify:`` list of the filterwatch config, and
``FILTERWATCH_NOTIFY`` / ``--notify`` (untagged: they take every notification).

Notification URLs carry secrets (tokens, passwords), so nothing here logs or stores
them: a target is known everywhere else by a *label* such as ``t0:json`` (its position
and kind). apprise's own logger is silenced for the same reason (it names hosts).
Each target is sent to separately, so the outbox can record and retry one target's
failure without sending the others a second copy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from monitor.config import SEVERITIES, NotifyTarget
from monitor.errors import ConfigError

__all__ = ["Delivery", "Notifier", "Target"]

logging.getLogger("apprise").setLevel(logging.CRITICAL + 1)

# Services with short, plain messages (SMS and pagers): they get the text body.
_TEXT_SERVICES = {
    "twilio", "sns", "clicksend", "msg91", "vonage", "nexmo", "sinch", "bulksms",
    "pagerduty", "opsgenie", "pagertree", "signal", "smseagle", "d7networks",
}  # fmt: skip


@dataclass(frozen=True)
class Delivery:
    status: str  # sent | failed | no_targets
    detail: str  # never contains a URL


@dataclass(frozen=True)
class Target:
    label: str  # safe to store and log
    tags: frozenset[str]  # empty: takes every notification
    body_format: str  # "markdown" | "text"
    service: object  # an apprise plugin instance (holds the secret URL)

    def takes(self, severity: str, route_tags: tuple[str, ...]) -> bool:
        return not self.tags or bool(self.tags & {severity, *route_tags})


def _kind(service: object) -> str:
    return type(service).__name__.removeprefix("Notify").lower() or "target"


class Notifier:
    """The configured targets, addressable by label."""

    def __init__(
        self,
        targets: tuple[NotifyTarget, ...] = (),
        apprise_config: str | None = None,
        timeout_s: float = 10.0,
    ):
        import apprise

        self._apprise = apprise
        self._timeout = timeout_s
        self.invalid = 0
        services: list[tuple[object, frozenset[str], str]] = []
        if apprise_config:
            ac = apprise.AppriseConfig()
            if not ac.add(apprise_config):
                raise ConfigError(
                    f"alerts.apprise_config {apprise_config!r} cannot be read; "
                    "check the path (a YAML or TEXT apprise config)"
                )
            for svc in ac.services():
                services.append((svc, frozenset(str(t) for t in svc.tags), ""))
            if not services:
                raise ConfigError(
                    f"alerts.apprise_config {apprise_config!r} holds no valid URL; "
                    "check it with `apprise --config FILE --dry-run`"
                )
        for t in targets:
            svc = apprise.Apprise.instantiate(t.url)
            if svc is None:
                self.invalid += 1
                continue
            tags = frozenset() if set(t.tags) >= set(SEVERITIES) else frozenset(t.tags)
            services.append((svc, tags, t.body_format))
        self.targets: list[Target] = []
        for i, (svc, tags, fmt) in enumerate(services):
            kind = _kind(svc)
            fmt = fmt or ("text" if kind in _TEXT_SERVICES else "markdown")
            self.targets.append(Target(f"t{i}:{kind}", tags, fmt, svc))
        self._by_label = {t.label: t for t in self.targets}

    @property
    def target_count(self) -> int:
        return len(self.targets)

    def targets_for(self, severity: str, route_tags: tuple[str, ...]) -> list[Target]:
        return [t for t in self.targets if t.takes(severity, route_tags)]

    def send(self, label: str, severity: str, title: str, markdown: str, text: str) -> Delivery:
        """Send to one target; the result says what happened without naming the URL."""
        target = self._by_label.get(label)
        if target is None:
            return Delivery("failed", f"target {label} is no longer configured")
        ap = self._apprise
        fmt, body = (
            (ap.NotifyFormat.TEXT, text)
            if target.body_format == "text"
            else (ap.NotifyFormat.MARKDOWN, markdown)
        )
        notify_type = {
            "critical": ap.NotifyType.FAILURE,
            "high": ap.NotifyType.WARNING,
            "warning": ap.NotifyType.WARNING,
        }.get(severity, ap.NotifyType.INFO)
        one = ap.Apprise()
        one.add(target.service)
        try:
            result = one.notify(body=body, title=title, body_format=fmt, notify_type=notify_type)
        except Exception as exc:  # apprise plugins may raise anything; never leak the URL
            return Delivery("failed", f"apprise raised {type(exc).__name__}")
        from apprise.result import AppriseResultStatus as St

        if result.status == St.SUCCESS:
            return Delivery("sent", "accepted")
        if result.status == St.TIMEOUT:
            return Delivery("failed", "timed out")
        return Delivery("failed", f"not accepted ({result.status.name.lower()})")
