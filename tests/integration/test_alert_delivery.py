"""The alert lifecycle against real endpoints: local HTTP receivers (apprise json://) and a
local SMTP server (aiosmtpd), routed by an apprise YAML config, on the real chDB store."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from alerts.dispatch import AlertDispatcher
from alerts.notify import Notifier
from alerts.silences import SilenceBook
from monitor.config import AlertsConfig, Config
from monitor.pipeline import Pipeline
from monitor.simulator import SimConfig, Simulator
from tests.integration.receiver import Receiver
from tests.integration.smtp import SmtpSink, free_port

pytestmark = pytest.mark.integration

SECRET = "xoxb-9f8e7d6c5b4a"


def _start(duration: float) -> float:
    """A window-aligned start, so one seed gives the same windows on every run."""
    return float((int(time.time()) // 300) * 300 - duration - 300)


def _apprise_yaml(tmp_path, pager: int, chat: int, smtp_url: str, digest: int) -> str:
    p = tmp_path / "apprise.yml"
    p.write_text(
        "version: 1\nurls:\n"
        f"  - json://127.0.0.1:{pager}/pager/{SECRET}:\n      tag: paging\n"
        f"  - json://127.0.0.1:{chat}/chat/{SECRET}:\n      tag: chat\n"
        f"  - {smtp_url}:\n      tag: chat\n"
        f"  - json://127.0.0.1:{digest}/digest:\n      tag: digest\n",
        encoding="utf-8",
    )
    p.chmod(0o600)
    return str(p)


def _run(store, cfg: Config, scenario: str, *, duration, onset, recover=None, seed=7):
    sim = Simulator(
        SimConfig(
            scenario=scenario,
            rate=2000,
            duration_s=duration,
            onset_s=onset,
            recover_s=recover,
            seed=seed,
            start=_start(duration),
        )
    )
    notifier = (
        Notifier(cfg.notify, cfg.alerts.apprise_config)
        if (cfg.notify or cfg.alerts.apprise_config)
        else None
    )
    pipe = Pipeline(cfg, store, origin=f"deliv:{scenario}", notifier=notifier)
    return pipe.run(sim.events()), sim


def _all_stored_text(store) -> str:
    db = store.db
    parts = []
    for table in ("alerts", "notifications", "deliveries"):
        for row in store.rows(f"SELECT * FROM {db}.{table}"):
            parts.append(" ".join(str(v) for v in row))
    return "\n".join(parts)


def test_incident_fires_once_per_route_and_resolves_once(store, tmp_path):
    with (
        Receiver() as pager,
        Receiver() as chat,
        Receiver() as digest,
        SmtpSink() as smtp,
    ):
        alerts_cfg = AlertsConfig(
            apprise_config=_apprise_yaml(tmp_path, pager.port, chat.port, smtp.url(), digest.port)
        )
        cfg = Config(store=store.config, alerts=alerts_cfg)
        summary, sim = _run(store, cfg, "selfharm-underblock", duration=700, onset=150, recover=300)
    (alert,) = [a for a in summary.alerts if a.category == "self_harm"]
    assert alert.severity == "critical"
    assert alert.incident.status == "resolved"
    assert alert.incident.resolved_at > sim.recover_ts
    kinds = [n.kind for n in summary.notifications]
    assert kinds == ["firing", "resolved"]
    # critical routes to paging + chat: each target got exactly one firing, one resolved
    for rx in (pager, chat):
        titles = [m["title"] for m in rx.messages]
        assert len(titles) == 2, titles
        assert titles[0].startswith("[CRITICAL] under-blocking: self_harm")
        assert titles[1].startswith("[RESOLVED] under-blocking: self_harm")
    assert len(smtp.messages) == 2
    assert "Subject: [CRITICAL] under-blocking: self_harm" in smtp.messages[0]
    assert digest.messages == []  # not routed to the digest
    assert "Resolved" in pager.messages[1]["message"]
    # nothing stored or sent carries a query string or a target's secret
    stored = _all_stored_text(store)
    assert SECRET not in stored and "127.0.0.1" not in stored
    for m in pager.messages + chat.messages:
        assert "?" not in "".join(line for line in m["message"].splitlines() if "https://" in line)
    latest = store.rows(
        "SELECT argMax(status, version), argMax(delivery_status, version) "
        f"FROM {store.db}.alerts GROUP BY alert_id"
    )
    assert latest == [("resolved", "sent")]


def test_grouped_incident_is_one_message_listing_its_categories(store, tmp_path):
    with Receiver() as pager, Receiver() as chat, Receiver() as digest, SmtpSink() as smtp:
        alerts_cfg = AlertsConfig(
            apprise_config=_apprise_yaml(tmp_path, pager.port, chat.port, smtp.url(), digest.port),
            group_wait_s=30,
        )
        cfg = Config(store=store.config, alerts=alerts_cfg)
        summary, _ = _run(store, cfg, "overblock-after-deploy", duration=300, onset=150)
    high = [a for a in summary.alerts if a.severity == "high"]
    assert len(high) >= 3, [a.title for a in summary.alerts]
    assert {a.incident.scope_model_version for a in high} == {"2026.12.0"}
    high_notes = [n for n in summary.notifications if n.severity == "high"]
    # one group for the version's over-blocking; messages = notifications, not alerts
    assert len({n.group_key for n in high_notes}) == 1
    assert len(pager.messages) == len(high_notes) < len(high)
    first = pager.messages[0]
    assert "categories (model version 2026.12.0)" in first["title"]
    listed = [a.category for a in high if f"{a.category} over-blocking" in first["message"]]
    assert len(listed) >= 2


def test_silence_suppresses_and_is_recorded(store, tmp_path):
    book = SilenceBook(store)
    sil = book.add({"category": "self_harm"}, 3600, "known: feature regression, fix deploying")
    with Receiver() as pager, Receiver() as chat, Receiver() as digest, SmtpSink() as smtp:
        alerts_cfg = AlertsConfig(
            apprise_config=_apprise_yaml(tmp_path, pager.port, chat.port, smtp.url(), digest.port)
        )
        cfg = Config(store=store.config, alerts=alerts_cfg)
        summary, _ = _run(store, cfg, "selfharm-underblock", duration=300, onset=150)
    assert summary.alerts
    assert pager.messages == chat.messages == smtp.messages == []
    rows = store.rows(
        f"SELECT argMax(silenced_by, version) FROM {store.db}.alerts GROUP BY alert_id"
    )
    assert {r[0] for r in rows} == {sil.silence_id}
    assert store.scalar(f"SELECT count() FROM {store.db}.deliveries") == 0
    silenced = store.rows(f"SELECT silenced_ids FROM {store.db}.notifications")
    assert silenced and all(ids for (ids,) in silenced)
    # expiring it lets the next notification through
    book.expire(sil.silence_id)
    assert book.active() == []


def test_notifier_down_then_up_delivers_every_notification_exactly_once(store):
    port = free_port()  # nothing listens yet
    url = f"json://127.0.0.1:{port}/hook/{SECRET}"
    cfg = replace(
        Config(store=store.config, alerts=AlertsConfig(retry_backoff_s=1.0, max_attempts=50)),
    ).with_notify([url])
    summary, _ = _run(store, cfg, "overblock-after-deploy", duration=300, onset=150)
    sent = summary.notifications
    assert sent
    db = store.db
    state = dict(
        store.rows(
            f"SELECT argMax(status, version), count() FROM {db}.deliveries "
            "GROUP BY notification_id, target"
        )
    )
    assert "sent" not in state
    # A restarted worker: a fresh dispatcher on the same store finds the outbox and delivers.
    with Receiver(port) as rx:
        fresh = AlertDispatcher(store, Notifier(cfg.notify), cfg.alerts)
        later = time.time() + 3600  # past every backoff
        rep = fresh.outbox.deliver(wall=later)
        again = fresh.outbox.deliver(wall=later + 3600)
    assert rep.sent == len(sent) and again.attempted == 0
    assert sorted(m["title"] for m in rx.messages) == sorted(n.title for n in sent)
    final = store.rows(
        f"SELECT argMax(status, version), argMax(attempts, version) FROM {db}.deliveries "
        "GROUP BY notification_id, target"
    )
    assert all(s == "sent" and attempts >= 2 for s, attempts in final)
    assert SECRET not in _all_stored_text(store)
