from alerts.rules import AlertRules, evidence_direction, severity_for
from detectors.drift_event import DriftEvent, Recovery
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


def test_pending_alert_that_goes_away_never_fires():
    rules = AlertRules(AlertsConfig(drift_hold_s=60))
    rules.observe([ev("predicted_rate", "social_media", t=100)], 100)
    rec = Recovery("predicted_rate", "social_media", "*", "*", "up", 130, 0.01)
    assert rules.observe([], 130, [rec]) == []
    assert rules.observe([], 200) == [] and rules.absorbed == 1


def test_firing_absorbs_repeats_then_resolves_after_keep_firing_for():
    cfg = AlertsConfig(rules={"under-blocking": {"keep_firing_for_s": 60}})
    rules = AlertRules(cfg)
    (inc,) = rules.observe([ev("report_rate", "self_harm", t=100)], 100)
    assert inc.status == "firing" and inc.incident_id
    assert rules.observe([ev("report_rate", "self_harm", t=200)], 200) == []
    assert rules.suppressed == 1
    rec = Recovery("report_rate", "self_harm", "*", "*", "up", 250, 0.0)
    assert rules.observe([], 250, [rec]) == []  # back, but keep_firing_for not over yet
    assert rules.observe([], 305) == []
    (done,) = rules.observe([], 310)
    assert done is inc and done.status == "resolved" and done.resolved_at == 310


def test_keep_firing_for_absorbs_a_flap():
    cfg = AlertsConfig(rules={"under-blocking": {"keep_firing_for_s": 60}})
    rules = AlertRules(cfg)
    rules.observe([ev("report_rate", "self_harm", t=100)], 100)
    rec = Recovery("report_rate", "self_harm", "*", "*", "up", 150, 0.0)
    rules.observe([], 150, [rec])
    assert rules.observe([ev("report_rate", "self_harm", t=180)], 180) == []  # flap: still one
    assert rules.observe([], 400) == []  # not back: the re-detection has no recovery yet


def test_untested_segment_is_back_after_quiet():
    cfg = AlertsConfig(drift_hold_s=0, rules={"drift": {"quiet_s": 100, "keep_firing_for_s": 0}})
    rules = AlertRules(cfg)
    assert len(rules.observe([ev("score", "violence", t=100)], 100)) == 1
    assert rules.observe([], 150) == []
    (done,) = rules.observe([], 205)
    assert done.status == "resolved"


def test_cooldown_delays_a_recurrence_but_never_drops_it():
    cfg = AlertsConfig(rules={"under-blocking": {"keep_firing_for_s": 0, "cooldown_s": 600}})
    rules = AlertRules(cfg)
    rules.observe([ev("report_rate", "self_harm", t=100)], 100)
    rec = Recovery("report_rate", "self_harm", "*", "*", "up", 200, 0.0)
    (done,) = rules.observe([], 200, [rec])
    assert done.status == "resolved"
    assert rules.observe([ev("report_rate", "self_harm", t=300)], 300) == []  # in cooldown
    assert rules.observe([ev("report_rate", "self_harm", t=600)], 600) == []
    (again,) = rules.observe([ev("report_rate", "self_harm", t=805)], 805)  # still true
    assert again.status == "firing" and again.incident_id != done.incident_id


def test_flush_releases_held():
    rules = AlertRules(AlertsConfig(drift_hold_s=300))
    rules.observe([ev("score", "violence", t=100)], 100)
    assert [i.category for i in rules.flush(110)] == ["violence"]
