"""The window-level twin must produce the windows the event simulator + aggregator do.

Both sides are random, so each statistic is compared by a z-score that counts the
Poisson noise of both runs and of the twin's pool.
"""

import math
from collections import Counter

import pytest

from monitor.aggregate import WindowAggregator
from monitor.config import Config
from monitor.events import Feedback, Verdict
from monitor.join import VerdictCache
from monitor.simulator import SimConfig, Simulator
from monitor.twin import TrafficTwin, TwinConfig, school_day_volume
from monitor.validation import Validator

START = 1_767_261_600.0
POOL_S = 30
DURATION = 150.0
SKIP_S = 60.0  # the event simulator starts cold: no feedback from before its start


def _event_windows(cfg: SimConfig):
    validator = Validator.from_config(Config())
    cache = VerdictCache(300.0)
    agg = WindowAggregator(5.0, lateness=1)
    out = []
    for raw in Simulator(cfg).events():
        ev = validator.validate(raw)
        if isinstance(ev, Verdict):
            cache.add(ev)
            out += agg.add_verdict(ev)
        elif isinstance(ev, Feedback):
            j = cache.join(ev)
            out += agg.add_feedback(ev.ts, j.model_version, j.attributed, ev.action, ev.tenant_id)
    return out + agg.flush()


def _stats(windows, t_from: float) -> Counter:
    s: Counter = Counter()
    for w in windows:
        if w.start < t_from or w.start >= START + DURATION:
            continue
        s["windows"] += 1
        for mv, v in w.versions.items():
            s[("requests", mv)] += v[0]
            s[("blocked", mv)] += v[1]
            s[("latency_sum", mv)] += v[2]
        for (cat, _mv), cell in w.category_totals().items():
            if _mv != "*":
                continue
            s[("predicted", cat)] += cell[0]
            s[("blocked", cat)] += cell[1]
            s[("unblocks", cat)] += cell[2]
            s[("reports", cat)] += cell[3]
            for b, x in enumerate(cell[4:]):
                s[("hist", cat, b)] += x
        for ls, n in w.labelsets.items():
            s[("labelset", ls)] += n
        for (tenant, cat), tc in w.tenant_cells.items():
            s[("tenant_blocks", tenant, cat)] += tc[0]
        s["tenants_seen"] += len(w.tenants)
    return s


@pytest.fixture(scope="module")
def both():
    cfg = SimConfig(
        scenario="none", rate=4_000, duration_s=DURATION, onset_s=DURATION, seed=3, start=START
    )
    twin = TrafficTwin(cfg, TwinConfig(pool_seconds=POOL_S))
    t_from = START + SKIP_S
    return _stats(_event_windows(cfg), t_from), _stats(list(twin.windows()), t_from)


def _z(a: float, b: float, seconds: float) -> float:
    """Event total a vs twin total b; the twin's mean carries its pool's noise too."""
    pool = b * POOL_S / seconds
    var = a + b + (b * b / pool if pool > 0 else 0.0)
    return abs(a - b) / math.sqrt(var) if var > 0 else 0.0


def test_twin_matches_event_simulator_counts(both):
    ev, tw = both
    assert ev["windows"] == tw["windows"]
    seconds = ev["windows"] * 5.0
    checked = 0
    worst = (0.0, None)
    for key, a in ev.items():
        if not isinstance(key, tuple) or key[0] in ("latency_sum",) or a < 30:
            continue
        z = _z(a, tw.get(key, 0), seconds)
        worst = max(worst, (z, key), key=lambda t: t[0])
        checked += 1
    assert checked > 150
    assert worst[0] < 5.0, f"largest discrepancy z={worst[0]:.1f} at {worst[1]}"


def test_twin_feedback_rates_match(both):
    ev, tw = both
    seconds = ev["windows"] * 5.0
    for kind in ("unblocks", "reports"):
        a = sum(v for k, v in ev.items() if isinstance(k, tuple) and k[0] == kind)
        b = sum(v for k, v in tw.items() if isinstance(k, tuple) and k[0] == kind)
        if kind == "unblocks":
            assert a > 20 and b > 20
        assert _z(a, b, seconds) < 4.0, (kind, a, b)


def test_twin_latency_and_tenants_match(both):
    ev, tw = both
    for mv in ("2026.11.2", "2026.11.3"):
        le = ev[("latency_sum", mv)] / ev[("requests", mv)]
        lt = tw[("latency_sum", mv)] / tw[("requests", mv)]
        assert lt == pytest.approx(le, rel=0.02)
    assert tw["tenants_seen"] == pytest.approx(ev["tenants_seen"], rel=0.05)


def test_twin_incident_changes_only_what_the_scenario_changes():
    cfg = SimConfig(scenario="unblock-doubling", duration_s=600, onset_s=300, seed=2, start=START)
    twin = TrafficTwin(cfg, TwinConfig(pool_seconds=20))
    pre, post = Counter(), Counter()
    for w in twin.windows():
        side = pre if w.end <= twin.onset else post
        for (cat, mv), cell in w.category_totals().items():
            if mv == "*":
                side[(cat, "blocked")] += cell[1]
                side[(cat, "unblocks")] += cell[2]
    ratio = (post[("social_media", "unblocks")] / post[("social_media", "blocked")]) / (
        pre[("social_media", "unblocks")] / pre[("social_media", "blocked")]
    )
    assert 1.5 < ratio < 2.7  # the unblock rate of social-media blocks doubles
    for cat in ("adult", "games", "violence"):
        assert post[(cat, "blocked")] == pytest.approx(pre[(cat, "blocked")], rel=0.05)


def test_school_day_volume_averages_one():
    day = [school_day_volume(t) for t in range(0, 86_400, 60)]
    assert sum(day) / len(day) == pytest.approx(1.0, rel=1e-6)
    assert max(day) / min(day) > 10  # nights are quiet, lessons are busy
