from collections import Counter

import pytest

from monitor.errors import ConfigError
from monitor.scenarios import SCENARIOS
from monitor.simulator import SimConfig, Simulator
from monitor.validation import Validator


def run(**kw):
    sim = Simulator(SimConfig(**kw))
    return sim, list(sim.events())


def test_rate_duration_and_order():
    sim, events = run(scenario="none", rate=3000, duration_s=20, onset_s=10, seed=1)
    verdicts = [e for e in events if e["schema"] == "verdict/1"]
    assert abs(len(verdicts) - 60_000) < 4 * 60_000**0.5  # Poisson around rate x duration
    ts = [e["ts"] for e in events]
    assert ts == sorted(ts)
    assert sim.start <= ts[0] and ts[-1] <= sim.end_ts
    assert sim.truth.verdicts == len(verdicts)
    assert sim.truth.feedback == len(events) - len(verdicts)


def test_seeded_and_deterministic():
    _, a = run(scenario="none", rate=500, duration_s=5, onset_s=2, seed=3, start=1_796_000_000)
    _, b = run(scenario="none", rate=500, duration_s=5, onset_s=2, seed=3, start=1_796_000_000)
    assert a == b


def test_every_event_is_valid_and_truth_counts_match():
    sim, events = run(scenario="overblock-after-deploy", rate=2000, duration_s=30, onset_s=10)
    v = Validator()
    pred, blocked = Counter(), Counter()
    for e in events:
        out = v.validate(e)
        assert not hasattr(out, "reason"), out
        if e["schema"] == "verdict/1":
            pred.update(e["categories"])
            if e["decision"] == "block":
                blocked.update(e["categories"])
    assert pred == sim.truth.predicted_by_category
    assert blocked == sim.truth.blocked_by_category


def test_skewed_tenants_and_privacy_bait():
    _, events = run(scenario="none", rate=3000, duration_s=10, onset_s=5, seed=2)
    verdicts = [e for e in events if e["schema"] == "verdict/1"]
    per_tenant = Counter(e["tenant_id"] for e in verdicts)
    top, median = per_tenant.most_common(1)[0][1], sorted(per_tenant.values())[len(per_tenant) // 2]
    assert top > 20 * median  # Zipf-skewed district sizes
    assert any("student_id=" in e["url"] for e in verdicts)  # the scrubber has work to do


def onset_effect(scenario, pick):
    sim, events = run(scenario=scenario, rate=3000, duration_s=60, onset_s=30, seed=4)
    before = [e for e in events if e["ts"] < sim.onset_ts]
    after = [e for e in events if e["ts"] >= sim.onset_ts]
    return pick(before), pick(after)


def share(cat, blocked=False):
    def f(evs):
        vs = [e for e in evs if e["schema"] == "verdict/1"]
        hit = [
            e for e in vs if cat in e["categories"] and (not blocked or e["decision"] == "block")
        ]
        return len(hit) / len(vs)

    return f


def test_overblock_after_deploy_blocks_health():
    b, a = onset_effect("overblock-after-deploy", share("health", blocked=True))
    assert a > 10 * max(b, 1e-4)


def test_selfharm_underblock_drops_blocks():
    b, a = onset_effect("selfharm-underblock", share("self_harm", blocked=True))
    assert a < 0.6 * b


def test_category_mix_shift_raises_social():
    b, a = onset_effect("category-mix-shift", share("social_media"))
    assert a > 1.8 * b


def test_latency_regression():
    def mean_latency(evs):
        ls = [e["latency_ms"] for e in evs if e["schema"] == "verdict/1"]
        return sum(ls) / len(ls)

    b, a = onset_effect("latency-regression", mean_latency)
    assert a > 1.4 * b


def test_score_shift_keeps_decisions():
    def violent(evs):
        vs = [
            e
            for e in evs
            if e["schema"] == "verdict/1"
            and "violence" in e["scores"]
            and e["scores"]["violence"] >= 0.45
        ]
        mean = sum(e["scores"]["violence"] for e in vs) / len(vs)
        return round(mean, 2), len(vs) / sum(1 for e in evs if e["schema"] == "verdict/1")

    (mb, sb), (ma, sa) = onset_effect("score-shift", violent)
    assert ma < mb - 0.05
    assert sa == pytest.approx(sb, rel=0.15)


def test_storm_tenant_unblocks():
    sim, events = run(scenario="tenant-override-storm", rate=3000, duration_s=90, onset_s=30)
    t = sim.truth.incident_tenant
    unblocks = [e for e in events if e.get("action") == "unblock" and e["tenant_id"] == t]
    assert sum(e["ts"] >= sim.onset_ts for e in unblocks) > 5 * max(
        1, sum(e["ts"] < sim.onset_ts for e in unblocks)
    )


def test_bad_config():
    with pytest.raises(ConfigError, match="unknown scenario"):
        SimConfig(scenario="meteor")
    with pytest.raises(ConfigError, match="--rate"):
        SimConfig(rate=0)
    with pytest.raises(ConfigError, match="--onset"):
        SimConfig(duration_s=10, onset_s=20)


def test_every_scenario_has_ground_truth():
    for name, sc in SCENARIOS.items():
        if name == "none":
            assert sc.expected_category is None
        else:
            assert sc.expected_direction in ("over-blocking", "under-blocking", "drift")
