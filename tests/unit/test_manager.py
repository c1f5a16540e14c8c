"""Grouping, group_wait/interval, repeat and silences of the alert manager (pure logic)."""

from collections import Counter

from test_rules import ev

from alerts.manager import AlertManager
from alerts.model import Alert, RcaContext
from alerts.rules import AlertRules, severity_for
from alerts.silences import Silence
from monitor.config import AlertsConfig


def alerts_for(categories, t=100.0, mv="2026.12.0"):
    rules = AlertRules(AlertsConfig())
    incs = rules.observe([ev("unblock_rate", c, t=t) for c in categories], t)
    out = []
    for inc in incs:
        inc.scope_model_version = mv
        out.append(
            Alert(f"fw-{inc.category}", "fp", inc, RcaContext(0, 0), "docs/runbooks/x.md", t)
        )
    return rules, out


class Book:
    def __init__(self, silences):
        self.silences = silences

    def silencing(self, labels, now=None):
        return next((s for s in self.silences if s.matches(labels)), None)


def test_one_version_over_blocking_in_twelve_categories_is_one_message_per_route():
    cats = ["games", "health", "news", "education", "sports", "shopping", "music", "travel",
            "streaming_video", "social_media", "chat", "mental_health"]  # fmt: skip
    _, alerts = alerts_for(cats)
    mgr = AlertManager(AlertsConfig(group_wait_s=10))
    for a in alerts:
        mgr.add(a, 100)
    assert mgr.tick(105) == []  # group_wait: let the rest of the incident arrive
    out = mgr.tick(110)
    # high (often over-blocked categories) and warning (the rest) are two routes
    by_sev = Counter(severity_for(c, "over-blocking", []) for c in cats)
    assert set(by_sev) == {"high", "warning"}
    assert sorted((n.severity, len(n.alerts)) for n in out) == sorted(by_sev.items())
    assert all(n.kind == "firing" for n in out)
    assert mgr.tick(120) == [] and mgr.tick(3000) == []
    warning = next(n for n in out if n.severity == "warning")
    assert len(warning.body_text) <= 1200  # pager/SMS length
    assert warning.body_text.splitlines()[-1].startswith("Alert id: fw-")
    assert all(f"{a.category} over-blocking" in warning.body_markdown for a in warning.alerts)


def test_resolve_is_announced_once_then_the_group_closes():
    _, (a,) = alerts_for(["games"])
    mgr = AlertManager(AlertsConfig(group_wait_s=0, group_interval_s=60))
    mgr.add(a, 100)
    (first,) = mgr.tick(100)
    a.incident.status, a.incident.resolved_at = "resolved", 130
    mgr.add(a, 130)
    assert mgr.tick(140) == []  # group_interval since the last message
    (res,) = mgr.tick(160)
    assert res.kind == "resolved" and res.title.startswith("[RESOLVED]")
    assert res.notification_id != first.notification_id
    assert mgr.tick(10_000) == [] and mgr.groups == 0


def test_repeat_interval_reminds_while_firing():
    _, (a,) = alerts_for(["games"])
    cfg = AlertsConfig(group_wait_s=0, rules={"over-blocking": {"repeat_interval_s": 600}})
    mgr = AlertManager(cfg)
    mgr.add(a, 100)
    mgr.tick(100)
    assert mgr.tick(650) == []
    (rep,) = mgr.tick(700)
    assert rep.kind == "repeat" and rep.title.startswith("[REMINDER]")


def test_silenced_alerts_are_recorded_not_sent():
    _, alerts = alerts_for(["games", "sports"])
    s = Silence("sil-1", {"category": "games"}, 0, 1e12, "known: games relabel", "me")
    mgr = AlertManager(AlertsConfig(group_wait_s=0), Book([s]))
    for a in alerts:
        mgr.add(a, 100)
    (n,) = mgr.tick(100)
    assert [a.category for a in n.alerts] == ["sports"]
    assert [(a.category, sid) for a, sid in n.silenced] == [("games", "sil-1")]
    assert mgr.silenced_total == 1


def test_info_alerts_go_to_one_digest():
    rules = AlertRules(AlertsConfig(drift_hold_s=0))
    incs = rules.observe([ev("score", c, t=100) for c in ("games", "sports", "music")], 100)
    alerts = [Alert(f"fw-{i.category}", "fp", i, RcaContext(0, 0), "x", 100) for i in incs]
    assert {a.severity for a in alerts} == {"info"}
    mgr = AlertManager(AlertsConfig(digest_interval_s=3600))
    for a in alerts:
        mgr.add(a, 100)
    assert mgr.tick(1000) == []
    (d,) = mgr.tick(3700)
    assert len(d.alerts) == 3 and d.route_tags == ("digest",)
