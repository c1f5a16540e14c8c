import pickle

import numpy as np
import pytest

from detectors import DetectorBank, HistogramShift, LatencyShift, RateCUSUM
from detectors.bank import BankConfig
from monitor.aggregate import WindowAggregate


def run_rate(det, p_before, p_after, n, change_at, windows, seed):
    rng = np.random.default_rng(seed)
    hits = []
    for i in range(windows):
        p = p_before if i < change_at else p_after
        det.update(int(rng.binomial(n, p)), n)
        if det.drift_detected:
            hits.append(i)
    return hits


@pytest.mark.parametrize("seed", range(5))
def test_cusum_up_detects_step_quickly(seed):
    det = RateCUSUM("up", ratio=1.5, threshold=14, warmup=18)
    hits = run_rate(det, 0.02, 0.03, 10_000, 60, 100, seed)
    assert hits, "the change was not detected"
    assert 60 <= hits[0] <= 63


@pytest.mark.parametrize("seed", range(5))
def test_cusum_down_detects_drop(seed):
    det = RateCUSUM("down", ratio=0.6, threshold=14, warmup=18)
    hits = run_rate(det, 0.002, 0.0009, 60_000, 40, 80, seed)
    assert hits and 40 <= hits[0] <= 45


def test_cusum_no_false_alarm_on_clean_streams():
    # 200 independent clean streams of 500 windows (= 100,000 windows) at several volumes.
    alarms = 0
    for seed in range(200):
        n = [200, 2_000, 50_000][seed % 3]
        for direction in ("up", "down"):
            det = RateCUSUM(direction, threshold=14, warmup=18)
            alarms += len(run_rate(det, 0.01, 0.01, n, 10**9, 500, seed))
    assert alarms == 0


def test_cusum_sparse_feedback_rate():
    # Unblocks per block: 0.08% baseline, 3x after; ~1,000 blocks per window.
    det = RateCUSUM("up", ratio=2.0, threshold=14, warmup=18)
    hits = run_rate(det, 0.0008, 0.0024, 1_000, 50, 150, seed=11)
    assert hits and hits[0] >= 50


def test_cusum_parameters_are_checked():
    with pytest.raises(ValueError, match="direction"):
        RateCUSUM("sideways")
    with pytest.raises(ValueError, match="ratio must be > 1"):
        RateCUSUM("up", ratio=0.5)
    with pytest.raises(ValueError, match="threshold"):
        RateCUSUM("up", threshold=0)


def test_cusum_change_point_estimate_and_reset():
    det = RateCUSUM("up", ratio=1.5, threshold=10, warmup=10)
    hits = run_rate(det, 0.05, 0.1, 2_000, 30, 60, seed=2)
    assert hits[0] >= 30
    # after a detection the test restarts and finds the persisting change again
    assert len(hits) >= 2


def test_histogram_shift_detects_and_ignores_noise():
    edges = np.linspace(0, 1, 11)
    rng = np.random.default_rng(5)
    clean = HistogramShift(window=6, warmup=18)
    for _ in range(400):
        clean.update(np.histogram(rng.beta(8, 1.6, 400), edges)[0])
        assert not clean.drift_detected
    det = HistogramShift(window=6, warmup=18)
    for i in range(80):
        s = rng.beta(8, 1.6, 400) if i < 40 else 0.5 + 0.5 * rng.beta(2.5, 2.5, 400)
        det.update(np.histogram(s, edges)[0])
        if det.drift_detected:
            assert i >= 40 and det.change_index >= 40
            break
    else:
        pytest.fail("score shift not detected")


def test_latency_shift():
    rng = np.random.default_rng(9)
    det = LatencyShift(warmup=18)
    for _i in range(300):
        det.update(float(rng.normal(32, 0.4)), 1000)
        assert not det.drift_detected
    for _i in range(10):
        det.update(float(rng.normal(48, 0.4)), 1000)
        if det.drift_detected:
            break
    assert det.drift_detected
    assert det.run_mean() == pytest.approx(48, abs=1)


def _window(i, blocked_adult, requests=10_000):
    agg = WindowAggregate(i, i * 5.0, (i + 1) * 5.0)
    agg.versions["v1"] = [requests, blocked_adult, 32.0 * requests, requests]
    hist = [0] * 10
    hist[8] = blocked_adult
    agg.cells[("adult", "v1")] = [blocked_adult, blocked_adult, 0, 0, *hist]
    return agg


def test_bank_pickles_and_resumes_exactly():
    rng = np.random.default_rng(1)
    stream = [int(x) for x in rng.binomial(10_000, 0.02, 60)] + [
        int(x) for x in rng.binomial(10_000, 0.05, 20)
    ]
    a = DetectorBank(BankConfig())
    events_a = []
    for i, k in enumerate(stream):
        events_a += [(i, e.signal) for e in a.update(_window(i, k))]
    b = DetectorBank(BankConfig())
    events_b = []
    for i, k in enumerate(stream[:50]):
        events_b += [(i, e.signal) for e in b.update(_window(i, k))]
    b = DetectorBank.from_bytes(b.to_bytes())
    for i, k in enumerate(stream[50:], start=50):
        events_b += [(i, e.signal) for e in b.update(_window(i, k))]
    assert events_a == events_b
    assert any(sig == "block_rate" and i >= 60 for i, sig in events_a)
    assert all(i >= 60 for i, _ in events_a)


def test_bank_new_version_uses_fleet_reference():
    bank = DetectorBank(BankConfig())
    for i in range(30):
        bank.update(_window(i, 200))
    # a new version shows up over-blocking: tested from its first window
    agg = _window(30, 200)
    agg.versions["v2"] = [5_000, 600, 32.0 * 5_000, 5_000]
    agg.cells[("adult", "v2")] = [600, 600, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 600, 0]
    events = bank.update(agg)
    assert any(e.model_version == "v2" and e.signal == "block_rate" for e in events)
    assert pickle.loads(pickle.dumps(bank)).segment_count == bank.segment_count


def test_rate_cusum_recovers_only_when_the_rate_is_back():
    """Return to baseline is a test with the same threshold, not silence."""
    import numpy as np

    from detectors.rate_cusum import RateCUSUM

    rng = np.random.default_rng(7)
    det = RateCUSUM("up", ratio=1.5, threshold=10.0, warmup=30)
    detected_at = recovered_at = None
    for i in range(400):
        p = 0.02 if i < 60 or i >= 200 else 0.04
        det.update(int(rng.binomial(5000, p)), 5000)
        if det.drift_detected and detected_at is None:
            detected_at = i
        if det.recovered:
            assert i >= 200, f"declared recovered at window {i} while the rate was still high"
            recovered_at = i
            break
    assert detected_at is not None and 60 <= detected_at < 70
    assert recovered_at is not None and recovered_at < 215
    assert abs(det.recovery_rate - 0.02) < 0.005


def test_rate_cusum_never_recovers_under_a_sustained_shift():
    import numpy as np

    from detectors.rate_cusum import RateCUSUM

    rng = np.random.default_rng(8)
    det = RateCUSUM("down", ratio=0.8, threshold=11.0, warmup=30)
    for i in range(2000):
        p = 0.01 if i < 60 else 0.006
        det.update(int(rng.binomial(2000, p)), 2000)
        assert not det.recovered
