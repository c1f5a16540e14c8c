"""The benchmarks still run and report what the README quotes (never how fast: speed is
measured by hand with the full versions, see README "Benchmarks and performance")."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _run(script: str, tmp_path: Path, *args: str) -> dict:
    out = tmp_path / f"{Path(script).stem}.json"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--quick", "--out", str(out), *args],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return json.loads(out.read_text())


def test_detection_core_bench_runs_the_core_and_both_baselines(tmp_path):
    r = _run("detection_core.py", tmp_path)
    assert r["events"] == 100_000
    for key in ("events_per_s", "baseline_events_per_s", "ratio", "before_events_per_s"):
        assert r[key] > 0
    assert r["segments"] > 100 and r["windows"] >= 5
    assert r["naive_detectors"] > 1000 and r["rejected"] == 0


def test_memory_bench_builds_every_tenant_segment(tmp_path):
    r = _run("memory.py", tmp_path, "--windows", "6")
    assert r["tenant_segments"] == 100 * 20 * 3
    assert r["checkpoint_bytes_per_segment"] > 0 and r["window_update_ms"] > 0


def test_label_free_bench_reports_errors_coverage_and_findings(tmp_path):
    r = _run("label_free.py", tmp_path)
    scen = r["scenarios"]
    assert set(scen) == {"none", "selfharm-underblock", "score-shift", "category-mix-shift",
                         "overblock-after-deploy"}  # fmt: skip
    for s in scen.values():
        assert s["summary"]["categories"] >= 15 and 0 <= s["summary"]["mae_recall"] < 1
    assert scen["selfharm-underblock"]["summary"]["window_findings"].get("self_harm", 0) >= 1
    assert r["false_alarms"]["category_windows"] > 0
