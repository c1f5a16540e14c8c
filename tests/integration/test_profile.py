"""Reference profiles end to end: built from clean traffic, stored in ClickHouse, loaded
by the pipeline at start, and worth it: a small change in a sparse signal (unblocks per
social-media block) is caught that a cold-started bank's warm-up reference cannot see."""

from dataclasses import replace

import pytest

from monitor.config import Config
from monitor.errors import ConfigError
from monitor.pipeline import Pipeline
from monitor.profile import build_profile
from monitor.simulator import SimConfig, Simulator

pytestmark = pytest.mark.integration

START = 1_767_261_600.0
RATE = 4_000.0


def _sim(scenario: str, seed: int, start: float, duration: float, onset: float, mag=1.0):
    return Simulator(
        SimConfig(
            scenario=scenario,
            rate=RATE,
            duration_s=duration,
            onset_s=onset,
            seed=seed,
            world_seed=7,
            magnitude=mag,
            start=start,
        )
    )


@pytest.fixture(scope="module")
def profile_rows():
    # Yesterday's clean traffic of the same world, independent draws.
    sim = _sim("none", 70, START - 86_400, 600.0, 600.0)
    built = build_profile(sim.events(), Config())
    assert built.windows >= 120 and built.rejected == 0
    return built.rows


def test_profile_is_stored_and_loaded_newest_first(store, profile_rows):
    assert store.save_profile("yesterday", profile_rows, START - 3600) == len(profile_rows)
    assert store.save_profile("yesterday", profile_rows[:10], START - 60) == 10
    assert len(store.load_profile("yesterday")) == 10  # the newest build wins
    ((name, built, n),) = store.profiles()
    assert (name, n) == ("yesterday", 10) and built == pytest.approx(START - 60)
    assert store.load_profile("nope") == []


def test_unknown_profile_is_a_one_line_config_error(store):
    cfg = Config(store=store.config)
    cfg = replace(cfg, detect=replace(cfg.detect, profile="missing"))
    with pytest.raises(ConfigError, match="filterwatch reference build"):
        Pipeline(cfg, store)


def _run(store, cfg):
    sim = _sim("unblock-doubling", 71, START, 420.0, 120.0, mag=3.0)
    summary = Pipeline(cfg, store, origin="test:profile").run(sim.events())
    hits = [
        a for a in summary.alerts if a.direction == "over-blocking" and a.category == "social_media"
    ]
    return summary, sim, hits


def test_profile_backed_bank_catches_a_sparse_rate_change(store, profile_rows):
    store.save_profile("clean", profile_rows, START - 3600)
    cfg = Config(store=store.config)
    cfg = replace(cfg, detect=replace(cfg.detect, profile="clean"))
    summary, sim, hits = _run(store, cfg)
    assert hits, [a.title for a in summary.alerts]
    first = min(hits, key=lambda a: a.incident.fired_at)
    delay = first.incident.fired_at - sim.onset_ts
    assert 0 <= delay <= 150
    assert all(a.incident.fired_at >= sim.onset_ts for a in summary.alerts)
    print(f"\nunblock-doubling x4 at {RATE:.0f}/s with a profile: alert after {delay:.0f} s")
