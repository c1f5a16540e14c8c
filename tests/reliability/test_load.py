"""The load run's short version (bench/load.py --quick): 1 minute at 3,000 events/s into
one worker over the real broker. The 10-minute run is by hand (README, Benchmarks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]


def test_one_minute_load_holds(kafka_bootstrap, tmp_path):
    out = tmp_path / "load.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FILTERWATCH_")}
    p = subprocess.run(
        [sys.executable, str(ROOT / "bench/load.py"), "--quick", "--out", str(out)],
        env={**env, "KAFKA_BOOTSTRAP": kafka_bootstrap},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["producer_error"] is None
    assert r["events_sent"] > 150_000 and r["lost"] == 0
    assert r["store_errors"] == 0 and r["rejected"] == 0
    assert r["lag_bounded"], r["curve"]
    assert r["rss_mb_end"] <= 1.5 * r["rss_mb_after_warmup"] + 50, r["curve"]
