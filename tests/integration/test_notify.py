"""Alerts delivered through apprise to a real local HTTP endpoint."""

import logging
import socket

import pytest

from tests.integration.helpers import run_scenario
from tests.integration.receiver import Receiver

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-t0ken-9f8e7d"


def test_alert_reaches_http_receiver_without_secrets_or_queries(store, caplog):
    caplog.set_level(logging.DEBUG)
    with Receiver() as rx:
        url = f"json://127.0.0.1:{rx.port}/hooks/{SECRET}"
        summary, _sim = run_scenario(
            store, "selfharm-underblock", duration=220, onset=120, notify=(url,)
        )
    assert summary.alerts
    assert len(rx.messages) == len(summary.notifications) >= 1
    assert rx.paths[0] == f"/hooks/{SECRET}"
    msg = rx.messages[0]
    assert "under-blocking" in msg["title"] and "self_harm" in msg["title"]
    assert msg["type"] == "failure"  # critical -> apprise's most urgent type
    assert "Runbook" in msg["message"] and "SELECT" in msg["message"]
    for m in rx.messages:
        assert "student_id" not in m["message"] and "email=" not in m["message"]
    rows = store.rows(
        "SELECT argMax(delivery_status, version), argMax(delivery_detail, version), "
        f"argMax(body_text, version) FROM {store.db}.alerts GROUP BY alert_id"
    )
    assert {r[0] for r in rows} == {"sent"}
    for _, detail, body in rows:
        assert SECRET not in detail and SECRET not in body and "127.0.0.1" not in detail
    assert SECRET not in caplog.text


def test_severity_routing_by_tag(store):
    from dataclasses import replace

    from alerts.notify import Notifier
    from monitor.config import Config, NotifyTarget
    from monitor.pipeline import Pipeline
    from monitor.simulator import SimConfig, Simulator

    with Receiver() as pager, Receiver() as chat:
        cfg = replace(
            Config(store=store.config),
            notify=(
                NotifyTarget(f"json://127.0.0.1:{pager.port}/pager", ("critical",)),
                NotifyTarget(f"json://127.0.0.1:{chat.port}/chat", ("high", "warning", "info")),
            ),
        )
        sim = Simulator(SimConfig(scenario="score-shift", rate=2000, duration_s=240, onset_s=120))
        pipe = Pipeline(cfg, store, origin="routing", notifier=Notifier(cfg.notify))
        summary = pipe.run(sim.events())
    sev = {a.severity for a in summary.alerts}
    assert sev == {"info"}
    assert pager.messages == [] and len(chat.messages) == len(summary.notifications) >= 1


def test_unreachable_endpoint_is_recorded_as_failed(store):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    summary, _ = run_scenario(
        store,
        "selfharm-underblock",
        duration=220,
        onset=120,
        notify=(f"json://127.0.0.1:{port}/x",),
    )
    assert summary.alerts
    latest = store.rows(
        "SELECT argMax(delivery_status, version), argMax(delivery_detail, version) "
        f"FROM {store.db}.alerts GROUP BY alert_id"
    )
    assert {r[0] for r in latest} == {"retry"}  # kept in the outbox, retried with backoff
    assert all(str(port) not in detail for _, detail in latest)
