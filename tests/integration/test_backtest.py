"""The backtest at CI size: it runs, scores, and clean traffic stays under the bound.

CI size: every incident scenario once (seed 1, magnitude 1) and two hours of clean
school-day traffic at 12,700 events/s, filterwatch against the naive rule; the full
size (5 seeds x 2 magnitudes, two clean days, river too) is run by hand and its results
are in bench/results/backtest.txt. Everything is seeded, so these numbers are exact.
"""

import json
import subprocess
import sys

import pytest

from monitor.backtest import BacktestConfig, run_backtest
from monitor.scenarios import SCENARIOS

pytestmark = pytest.mark.integration

FA_BOUND = 1.0  # false alarms per day per 1,000 segments (the target)
KEYS = {"suite", "detector", "recall", "delay_median_s", "delay_p95_s"}


@pytest.fixture(scope="module")
def report():
    cfg = BacktestConfig(
        suite="incidents",
        seeds=1,
        magnitudes=(1.0,),
        clean_hours=2.0,
        clean_seeds=1,
        methods=("filterwatch", "naive"),
        workers=2,
    )
    return run_backtest(cfg)


def _rows(report, **match):
    return [r for r in report["rows"] if all(r.get(k) == v for k, v in match.items())]


def test_every_row_has_the_documented_keys(report):
    assert report["rows"]
    for r in report["rows"]:
        assert set(r) >= KEYS, r
        assert "false_alarms_per_day_per_1k_segments" in r


def test_clean_traffic_stays_under_the_false_alarm_bound(report):
    (row,) = _rows(report, suite="clean", method="filterwatch", detector="any")
    assert row["segments"] > 500 and row["traffic_days"] == pytest.approx(2 / 24, abs=1e-3)
    assert row["false_alarms_per_day_per_1k_segments"] <= FA_BOUND
    (alerts,) = _rows(report, suite="clean", method="filterwatch", detector="alerts")
    assert alerts["false_alarms"] == 0


def test_every_incident_is_detected_and_alerted(report):
    for name in SCENARIOS:
        if name == "none":
            continue
        (any_row,) = _rows(
            report, suite="incidents", scenario=name, method="filterwatch", detector="any"
        )
        assert any_row["recall"] == 1.0, name
        (alert_row,) = _rows(
            report, suite="incidents", scenario=name, method="filterwatch", detector="alerts"
        )
        assert alert_row["recall"] == 1.0, f"{name}: no alert with the right direction"
    assert report["summary"]["filterwatch/any"]["delay_median_s"] <= 30.0


def test_the_naive_rule_pays_for_its_speed_in_false_alarms(report):
    (fw,) = _rows(report, suite="clean", method="filterwatch", detector="any")
    (naive,) = _rows(report, suite="clean", method="naive", detector="any")
    assert naive["false_alarms"] > 100 * max(fw["false_alarms"], 1)


def test_cli_backtest_json_synthetic():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor.cli",
            "backtest",
            "--suite",
            "synthetic",
            "--seeds",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    rows = [r for r in rep["rows"] if r["suite"] == "synthetic"]
    assert any(r["scenario"].startswith("SEA") for r in rows)
    assert any("change-point" in r["scenario"] for r in rows)
    assert all(set(r) >= KEYS for r in rows)


def test_cli_rejects_bad_arguments_in_one_line():
    out = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "backtest", "--magnitudes", "big"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "--magnitudes" in out.stderr
