"""The weekly drift report from a seeded store, rendered in a real (headless) Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dashboards.weekly_data import resolve_week
from dashboards.weekly_report import build_weekly_report
from monitor.errors import InputError
from monitor.evalset import read_evalset
from tests.browser import assert_not_blank, dom, screenshot
from tests.integration.helpers import run_scenario

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "sample" / "eval_sample.jsonl.gz"


@pytest.fixture
def report(store, tmp_path):
    summary, _ = run_scenario(store, "overblock-after-deploy", duration=300, onset=120)
    assert summary.alerts
    return build_weekly_report(store, None, tmp_path / "rep", read_evalset(SAMPLE))


def test_report_sections_and_summary(report, store):
    out = report.html.parent
    for name in ("weekly_report.html", "summary.md", "plotly.min.js", "evidently_drift.html",
                 "weekly_report.json"):  # fmt: skip
        assert (out / name).stat().st_size > 200, name
    assert report.data["figures"][:3] == [
        "Score distribution per category",
        "Category mix",
        f"Block and override rates per {resolve_week(store, None).bucket_name}",
    ]
    assert any(
        f.startswith("Precision and recall from feedback labels") for f in report.data["figures"]
    )
    assert report.data["figures"][-1].startswith("Classification latency")
    md = report.summary.read_text()
    first = md.split("\n\n")[1]
    assert len(re.findall(r"[.!?](?:\s|$)", first)) == 5, first
    assert "adult" in md and "over-blocking" in md  # the deploy's alert and its outcome
    lights = re.findall(r"^\| (\w+) \| \S+ (red|amber|green) \|", md, re.M)
    assert len(lights) == 9 and dict(lights)["adult"] in ("amber", "red")
    assert "of every 100 pages blocked as" in md
    # estimated (label-free) and measured FP/FN side by side, with intervals
    assert "## Estimated vs measured FP/FN — 2026.11.2" in md
    table = md.split("## Estimated vs measured FP/FN — 2026.11.2")[1]
    assert "label-free FNR [95%]" in table and "measured FNR [95%]" in table
    adult = next(line for line in table.splitlines() if line.startswith("| adult |"))
    assert re.search(r"0\.\d{3} \[0\.\d{3}, [01]\.\d{3}\]", adult), adult
    lf = report.data["label_free"]["2026.11.2"]["estimates"]["adult"]
    assert lf["label_free"]["requests"] > 0 and lf["label_free"]["fn"]["high"] >= 0
    ev = report.data["evidently"]
    assert ev["rows_now"] >= 30 and ev["drifted_columns"] is not None
    page = report.html.read_text()
    assert "unblock" in page and "Top over-blocked domains" in page
    assert "?" not in "".join(re.findall(r"https?://[^\s'\"<]+", page.split("<script")[0]))


def test_report_renders_in_chromium(report, tmp_path):
    url = report.html.as_uri()
    html = dom(url)
    n_figs = len(report.data["figures"])
    assert html.count('class="main-svg"') >= n_figs, "plotly did not draw every figure"
    assert "filterwatch weekly drift report" in html
    pixels = screenshot(url, tmp_path / "report.png")
    assert_not_blank(pixels)


def test_the_screenshot_check_fails_on_blank_and_broken_pages(report, tmp_path):
    blank = tmp_path / "blank.html"
    blank.write_text("<!doctype html><html><body></body></html>")
    with pytest.raises(AssertionError, match="blank"):
        assert_not_blank(screenshot(blank.as_uri(), tmp_path / "blank.png"))
    (report.html.parent / "plotly.min.js").unlink()  # a report whose plots cannot draw
    assert 'class="main-svg"' not in dom(report.html.as_uri())


def test_week_argument_errors(store):
    with pytest.raises(InputError, match="no traffic yet"):
        resolve_week(store, None)
    run_scenario(store, "none", duration=60, onset=30)
    with pytest.raises(InputError, match="ISO week like 2026-W48"):
        resolve_week(store, "last week")
    with pytest.raises(InputError, match="has no week 60"):
        resolve_week(store, "2026-W60")
    with pytest.raises(InputError, match="no traffic in 2020-W01"):
        resolve_week(store, "2020-W01")
