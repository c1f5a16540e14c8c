"""The detector bank's segments: tenants (volume-gated), label sets, model versions
(deploy guard, rebaseline, canary), and reference profiles (export, load, resume)."""

import numpy as np
import pytest

from detectors.bank import BankConfig, DetectorBank
from detectors.baselines import NaiveFactory, RiverFactory
from detectors.version_delta import VersionDelta
from monitor.aggregate import WindowAggregate
from monitor.simulator import SimConfig
from monitor.twin import TrafficTwin, TwinConfig

START = 1_767_261_600.0


def _window(
    i,
    rng,
    *,
    versions=(("v1", 20_000),),
    adult_p=0.02,
    unblock_p=0.002,
    tenant_unblock_p=0.002,
    labelset_shift=0.0,
):
    agg = WindowAggregate(i, i * 5.0, (i + 1) * 5.0)
    for mv, n in versions:
        k = int(rng.binomial(n, adult_p))
        agg.versions[mv] = [n, k, 32.0 * n, n]
        hist = [0] * 10
        hist[8] = k
        ub = int(rng.binomial(k, unblock_p))
        agg.cells[("adult", mv)] = [k, k, ub, 0, *hist]
    # Two tenants: a big one and a tiny one (the tiny one must be gated out).
    big_req, big_blk = 5_000, int(rng.binomial(5_000, 0.02))
    agg.tenants = {"big": [big_req, big_blk], "tiny": [3, 0]}
    agg.tenant_cells = {
        ("big", "adult"): [big_blk, int(rng.binomial(big_blk, tenant_unblock_p)), 0]
    }
    a = int(rng.poisson(400 * (1 - labelset_shift)))
    b = int(rng.poisson(100 + 400 * labelset_shift))
    agg.labelsets = {"adult": a, "adult+dating": b, "chat": int(rng.poisson(300))}
    return agg


def test_tenant_segments_are_volume_gated_and_catch_a_storm():
    rng = np.random.default_rng(4)
    bank = DetectorBank(BankConfig(), categories=("adult",))
    for i in range(40):
        assert not bank.update(_window(i, rng))
    counts = bank.segment_counts()
    assert counts["tenant_unblock_rate"] == 1  # "big" only: "tiny" is gated out
    assert bank.gated_tenants == 1
    hits = []
    for i in range(40, 80):
        hits += [e for e in bank.update(_window(i, rng, tenant_unblock_p=0.05)) if e.tenant != "*"]
    assert hits and hits[0].tenant == "big" and hits[0].signal == "unblock_rate"
    assert "tenant=big" in hits[0].segment


def test_labelset_cooccurrence_shift_is_detected_with_the_label_set_named():
    rng = np.random.default_rng(5)
    bank = DetectorBank(BankConfig(), categories=())
    for i in range(60):
        assert not bank.update(_window(i, rng))
    events = []
    for i in range(60, 90):
        events += bank.update(_window(i, rng, labelset_shift=0.3))
    ls = [e for e in events if e.signal == "labelset"]
    assert ls, "label-set shift not detected"
    assert ls[0].detail in ("labelset=adult+dating", "labelset=adult")
    assert ls[0].onset >= 60 * 5.0


def test_new_version_is_guarded_then_rebaselined_and_canary_compared():
    cfg = BankConfig(version_guard_windows=40)
    rng = np.random.default_rng(6)
    bank = DetectorBank(cfg, categories=("adult",), latency=False)
    for i in range(30):
        bank.update(_window(i, rng))
    # v2 arrives blocking 10% more than the fleet: within the fleet's noise for the
    # rate CUSUM's 1.5x alternative, so the guard passes and v2 gets its own reference.
    both = (("v1", 12_000), ("v2", 8_000))
    for i in range(30, 80):
        bank.update(_window(i, rng, versions=both))
    slot = bank._slots[("block_rate", "adult", "v2", "*", "up")]
    assert slot.shadow is None and not slot.tripped
    canary = bank._slots[("canary_block_rate", "adult", "v2", "*", "up")]
    assert isinstance(canary.detector, VersionDelta)


def test_canary_fires_on_a_version_that_blocks_more_on_the_same_traffic():
    rng = np.random.default_rng(7)
    bank = DetectorBank(BankConfig(), categories=("adult",), latency=False)
    for i in range(30):
        bank.update(_window(i, rng))
    events = []
    for i in range(30, 60):
        agg = _window(i, rng, versions=(("v1", 12_000), ("v2", 8_000)))
        k = int(rng.binomial(8_000, 0.035))  # v2 blocks 1.75x
        agg.versions["v2"][1] = k
        agg.cells[("adult", "v2")][0:2] = [k, k]
        events += bank.update(agg)
    assert any(e.signal == "canary_block_rate" and e.model_version == "v2" for e in events)


def test_profile_roundtrip_starts_a_bank_without_warmup():
    rng = np.random.default_rng(8)
    learner = DetectorBank(BankConfig(reference_windows=1000), categories=("adult",))
    for i in range(100):
        learner.update(_window(i, rng))
    rows = learner.export_references()
    assert {r["signal"] for r in rows} >= {"block_rate", "unblock_rate", "latency", "labelset"}
    fresh = DetectorBank(BankConfig(), categories=("adult",))
    assert fresh.load_references(rows) > 0
    ref = fresh._slots[("block_rate", "adult", "*", "*", "up")].detector
    assert ref.warmed_up and ref._ref_windows == 100
    # tests from its first window: a jump right away is caught, onset at that window
    agg = _window(500, rng, adult_p=0.04)
    events = fresh.update(agg)
    assert any(e.signal == "block_rate" and e.onset == 500 * 5.0 for e in events)


@pytest.mark.parametrize("factory", [NaiveFactory, RiverFactory])
def test_baselines_run_in_the_same_bank(factory):
    cfg = BankConfig()
    twin = TrafficTwin(
        SimConfig(scenario="overblock-after-deploy", duration_s=300, onset_s=150, start=START),
        TwinConfig(pool_seconds=10),
    )
    bank = DetectorBank(cfg, factory=factory(cfg))
    events = [e for w in twin.windows() for e in bank.update(w)]
    assert bank.segment_count > 100
    assert all(e.detector in ("NaiveThreshold", "RiverDefault") for e in events)
