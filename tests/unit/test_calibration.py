"""Calibration: maps recover known probabilities, weights undo enrichment, files round-trip."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.calibration import (
    BINS,
    CENTRES,
    CalibrationError,
    bin_of,
    fit_calibration,
    load_calibration,
)


def _known(n: int, seed: int):
    """Scores with a known calibration: P(y | s) = s**2 for scored pages, 0.001 unscored."""
    rng = np.random.default_rng(seed)
    scored = rng.random(n) < 0.4
    s = np.where(scored, rng.uniform(0.01, 1.0, n), 0.0)
    p = np.where(scored, s**2, 0.001)
    y = rng.random(n) < p
    return s, y, p


def test_recovers_a_known_calibration():
    s, y, _ = _known(40_000, 1)
    cal = fit_calibration("v", ["adult"], s[:, None], y[:, None], seed=1)
    k = cal.categories["adult"]
    truth = CENTRES**2
    err = np.abs(np.asarray(k.at_centres)[1:] - truth[1:])
    assert err.mean() < 0.03, err.mean()
    # the unscored part is its own estimate, not the map's tail
    assert abs(k.at_centres[0] - 0.001) < 0.001
    assert k.method in ("isotonic", "platt", "beta")
    assert set(k.cv) == {"isotonic", "platt", "beta"}
    assert len(k.bootstrap) == 100 and len(k.bootstrap[0]) == BINS
    assert k.reliability and all(0 <= r["observed"] <= 1 for r in k.reliability)


def test_weights_undo_an_enriched_sample():
    """Keep 1 in 10 negatives (an enriched evaluation set): weighted, the fit learns
    production's odds; unweighted it overstates them about tenfold at low scores."""
    s, y, _ = _known(120_000, 2)
    rng = np.random.default_rng(3)
    keep = y | (rng.random(len(y)) < 0.1)
    w = np.where(y[keep], 1.0, 10.0)
    weighted = fit_calibration("v", ["adult"], s[keep, None], y[keep, None], w, seed=1)
    plain = fit_calibration("v", ["adult"], s[keep, None], y[keep, None], seed=1)
    b = bin_of(np.array([0.3]))[0]
    assert abs(weighted.categories["adult"].at_centres[b] - 0.3**2) < 0.04
    assert plain.categories["adult"].at_centres[b] > 2 * 0.3**2


def test_too_few_labels_is_a_clear_error():
    with pytest.raises(CalibrationError, match="too few"):
        fit_calibration("v", ["adult"], np.zeros((4, 1)), np.zeros((4, 1), bool))
    with pytest.raises(CalibrationError, match="no category has"):
        fit_calibration("v", ["adult"], np.zeros((100, 1)), np.zeros((100, 1), bool))
    with pytest.raises(CalibrationError, match="weights"):
        fit_calibration(
            "v", ["adult"], np.zeros((100, 1)), np.zeros((100, 1), bool), np.full(100, -1.0)
        )


def test_file_round_trip_and_bad_files(tmp_path):
    s, y, _ = _known(5_000, 4)
    cal = fit_calibration("2026.11.2", ["adult"], s[:, None], y[:, None], seed=2)
    path = tmp_path / "cal.json"
    cal.save(path)
    back = load_calibration(path)
    assert back.model_version == "2026.11.2"
    assert np.allclose(
        back.categories["adult"].at_centres, cal.categories["adult"].at_centres, atol=1e-6
    )
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CalibrationError, match="refit"):
        load_calibration(tmp_path / "bad.json")
    with pytest.raises(CalibrationError, match="filterwatch calibrate"):
        load_calibration(tmp_path / "missing.json")


def test_bins_match_the_rollup_rule():
    # ClickHouse multiplies the stored Float32 in Float64: 0.45 (Float32) lands in bin 44,
    # 0.01 in bin 0 (checked against chDB, and again on data in the integration test).
    got = bin_of(np.array([0.0, 0.0099, 0.01, 0.45, 0.5, 1.0, 0.29, 0.57]))
    assert list(got) == [0, 0, 0, 44, 50, 99, 28, 56]


def test_newton_logistic_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression

    from monitor.calibration import _features, _logistic

    rng = np.random.default_rng(7)
    s = rng.uniform(0.01, 0.99, 3000)
    y = rng.random(3000) < s**1.5
    w = rng.uniform(0.5, 3.0, 3000)
    for method in ("platt", "beta"):
        x = _features(s, method)
        ours = _logistic(x, y.astype(float), w)
        ref = LogisticRegression(C=1e4, max_iter=5000, tol=1e-10).fit(x, y, sample_weight=w)
        assert np.allclose(ours, [ref.intercept_[0], *ref.coef_[0]], atol=2e-3), (ours, ref.coef_)
