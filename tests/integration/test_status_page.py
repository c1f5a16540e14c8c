"""The live status page: snapshot from a seeded store, and ``filterwatch status --serve``
as a user runs it, rendered in headless Chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from dashboards.status import render_status_html, status_snapshot
from detectors.bank import BankConfig, DetectorBank
from tests.browser import assert_not_blank, dom, screenshot
from tests.integration.helpers import run_scenario

pytestmark = pytest.mark.integration


def test_snapshot_from_store_and_live_banks(store):
    summary, _ = run_scenario(store, "selfharm-underblock", duration=300, onset=100)
    assert any(a.incident.category == "self_harm" for a in summary.alerts)
    snap = status_snapshot(store)
    cats = {c["category"]: c for c in snap["categories"]}
    assert cats["self_harm"]["state"] == "firing"
    assert any(a["category"] == "self_harm" for a in snap["firing"])
    assert snap["drift_events"] and snap["source"] == "store"
    assert snap["ingest_per_s"] == pytest.approx(2000, rel=0.05)
    bank = DetectorBank(BankConfig(), categories=("adult",), latency=False)
    adult = {"segments": 6, "warmed_up": 2, "pressure": 0.4, "closest": "block_rate up"}
    live = status_snapshot(store, live={"adult": adult})
    lc = {c["category"]: c for c in live["categories"]}
    assert lc["adult"]["state"] == "warming up" and lc["violence"]["state"] == "not on this worker"
    assert lc["self_harm"]["state"] == "firing"
    assert bank.category_states() == {}  # no window seen: no segment yet
    page = render_status_html(live)
    assert "closest to firing" in page and "block_rate up" in page


def test_status_serve_renders_in_chromium(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FILTERWATCH_")}
    fw = [sys.executable, "-m", "monitor.cli", "--store", str(tmp_path / "s")]
    demo = [*fw, "demo", "--rate", "1000", "--duration", "300", "--quiet", "--report-dir", ""]
    subprocess.run(demo, check=True, capture_output=True, env=env, timeout=300)
    server = subprocess.Popen(
        [*fw, "--database", "demo", "status", "--serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        line = server.stdout.readline()
        assert line.startswith("serving http://127.0.0.1:"), line + server.stderr.read()
        url = line.split()[1]
        snap = json.loads(urllib.request.urlopen(url + ".json", timeout=30).read())
        assert snap["firing"], "the demo's incident should be firing"
        assert "http-equiv='refresh'" in urllib.request.urlopen(url, timeout=30).read().decode()
        still = url + "?refresh=0"  # a still page: the live one reloads every 5 s
        html = dom(still)
        assert "<h1>filterwatch status</h1>" in html
        assert html.count("<tr>") >= len(snap["categories"])
        firing_cat = snap["firing"][0]["category"]
        assert f'<td>{firing_cat}</td><td class="firing">firing</td>' in html
        assert_not_blank(screenshot(still, tmp_path / "status.png", (1200, 1400)), min_colours=8)
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url.replace("/status", "/nope"), timeout=10)
    finally:
        server.terminate()
        server.wait(timeout=30)
