from alerts.rules import AlertRules, evidence_direction, severity_for
from detectors.drift_event import DriftEvent
from monitor.config import AlertsConfig


def ev(signal, category, change="up", t=100.0, mv="*"):
    return DriftEvent(
        signal,
        category,
        mv,
        change,
        t - 5,
        t,
        0.01,
        0.02,
        0.015,
        0.025,
        20,
        1000,
        "requests",
        15.0,
        14.0,
        2.0,
        "RateCUSUM",
    )


def test_direction_from_evidence():
    assert evidence_direction(ev("report_rate", "self_harm")) == "under-blocking"
    assert evidence_direction(ev("block_rate", "self_harm", "down")) == "under-blocking"
    assert evidence_direction(ev("unblock_rate", "adult")) == "over-blocking"
    assert evidence_direction(ev("block_rate", "health")) == "over-blocking"
    assert evidence_direction(ev("block_rate", "adult")) == "drift"
    assert evidence_direction(ev("predicted_rate", "social_media")) == "drift"
    assert evidence_direction(ev("block_rate", "games", "down")) == "drift"


def test_severity():
    assert severity_for("self_harm", "under-blocking", []) == "critical"
    assert severity_for("games", "under-blocking", []) == "high"
    assert severity_for("health", "over-blocking", []) == "high"
    assert severity_for("games", "over-blocking", []) == "warning"
    assert severity_for("*", "drift", ["latency"]) == "warning"
    assert severity_for("violence", "drift", ["score"]) == "info"


def test_drift_is_held_then_absorbed_by_confirming_evidence():
    rules = AlertRules(AlertsConfig(drift_hold_s=30, cooldown_s=600))
    assert rules.observe([ev("block_rate", "adult", t=100)], 100) == []
    out = rules.observe([ev("unblock_rate", "adult", t=115)], 115)
    assert len(out) == 1
    inc = out[0]
    assert inc.direction == "over-blocking" and inc.category == "adult"
    assert inc.signals == ["block_rate", "unblock_rate"]
    assert rules.observe([], 200) == []  # the held drift was absorbed, nothing left


def test_drift_fires_after_hold_without_confirmation():
    rules = AlertRules(AlertsConfig(drift_hold_s=30))
    assert rules.observe([ev("predicted_rate", "social_media", t=100)], 100) == []
    assert rules.observe([], 120) == []
    out = rules.observe([], 131)
    assert [(i.category, i.direction) for i in out] == [("social_media", "drift")]


def test_cooldown_suppresses_repeats():
    rules = AlertRules(AlertsConfig(cooldown_s=600))
    assert len(rules.observe([ev("report_rate", "self_harm", t=100)], 100)) == 1
    assert rules.observe([ev("report_rate", "self_harm", t=200)], 200) == []
    assert rules.suppressed == 1
    assert len(rules.observe([ev("report_rate", "self_harm", t=800)], 800)) == 1


def test_flush_releases_held():
    rules = AlertRules(AlertsConfig(drift_hold_s=300))
    rules.observe([ev("score", "violence", t=100)], 100)
    assert [i.category for i in rules.flush(110)] == ["violence"]
