"""Label efficiency end to end, as a user runs it (separate processes, real chDB store):
an under-blocking incident that nobody reports is found from the label-free estimate;
an annotation queue is drawn, labelled from the simulator's truth, imported, and its
de-biased estimate holds the truth."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import orjson
import pytest

from monitor.simulator import SimConfig, Simulator
from tests.integration.receiver import Receiver
from tests.integration.test_cli import fw, one_line_error

pytestmark = pytest.mark.integration

RATE = 300.0
HALF = 600.0  # clean, then the incident (onset in the middle of the second half)
VERSION = "2026.11.2"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A store with 10 clean minutes, then 10 with self-harm under-blocking from minute 15,
    and no feedback at all: students do not report what they were allowed to see."""
    d = tmp_path_factory.mktemp("labels")
    start = float(int(time.time() - 2 * HALF - 600) // 300 * 300)
    truth: dict[str, list[str]] = {}
    verdicts: dict[str, dict] = {}
    events = d / "events.jsonl"
    with events.open("wb") as fh:
        for scen, off, seed, onset in (
            ("none", 0, 1, HALF),
            ("selfharm-underblock", HALF, 2, HALF / 2),
        ):
            sim = Simulator(
                SimConfig(
                    scen,
                    rate=RATE,
                    duration_s=HALF,
                    onset_s=onset,
                    seed=seed,
                    world_seed=11,
                    start=start + off,
                    audit_rate=0.0,
                )
            )
            sim.emit_truth = True
            for ev in sim.events():
                if ev["schema"] != "verdict/1":
                    continue  # no feedback of any kind
                truth[ev["request_id"]] = ev.pop("_true")
                verdicts[ev["request_id"]] = {"c": ev["categories"], "ts": ev["ts"]}
                fh.write(orjson.dumps(ev) + b"\n")
    store = str(d / "store")
    fw("--store", store, "replay", str(events), "--quiet", timeout=600)
    fw("eval-sample", "--out", str(d / "eval.jsonl"), "--rows", "8000", "--seed", "5")
    return {"dir": d, "store": store, "start": start, "truth": truth, "verdicts": verdicts}


def _sql(store: str, query: str) -> list[list]:
    out = fw("--store", store, "sql", query, "--format", "json").stdout
    return [list(json.loads(line).values()) for line in out.splitlines() if line.strip()]


def _calibrated(world) -> Path:
    cal = world["dir"] / "cal.json"
    if not cal.exists():
        p = fw(
            "--store",
            world["store"],
            "calibrate",
            "--eval",
            str(world["dir"] / "eval.jsonl"),
            "--model-version",
            VERSION,
            "--out",
            str(cal),
        )
        assert "self_harm" in p.stdout
    return cal


def test_underblocking_without_feedback_is_found_from_the_estimate(world):
    cal = _calibrated(world)
    s = world["start"]
    with Receiver() as pager:
        p = fw(
            "--store", world["store"], "estimate", "--calibration", str(cal),
            "--since", str(s + HALF), "--until", str(s + 2 * HALF), "--reference-days", "1",
            "--window", "5m", "--alert", "--notify", f"json://127.0.0.1:{pager.port}/",
            "--json",
        )  # fmt: skip
        messages = list(pager.messages)
    out = json.loads(p.stdout)
    onset = s + HALF + HALF / 2
    found = out["findings"]
    assert found, "no label-free under-blocking finding"
    assert {f["category"] for f in found} == {"self_harm"}
    assert all(f["start"] >= onset for f in found)  # none before the incident
    assert any(f["start"] == onset for f in found)  # the first window after it
    cats = out["categories"]
    sh = cats["self_harm"]["label_free"]
    assert "score-drift" in sh["flags"] or "prevalence-drop" in sh["flags"]
    # no feedback: the override rates and the measured numbers have nothing to say
    assert cats["self_harm"]["overrides"]["reports"] == 0
    assert cats["self_harm"]["measured"] is None
    # recorded as detections, so the drift timeline and the weekly report carry them
    q = _sql(
        world["store"], "SELECT count() FROM filterwatch.drift_events WHERE signal = 'est_fnr'"
    )
    assert int(q[0][0]) == len(found)
    # ... and paged: one critical under-blocking alert, delivered, with its evidence
    assert [a["delivery"] for a in out["alerts"]] == ["sent"]
    assert len(messages) == 1
    body = json.dumps(messages[0])
    assert "under-blocking" in body and "self_harm" in body and "label-free" in body
    assert f"127.0.0.1:{pager.port}" not in body  # never the notification URL
    row = _sql(world["store"], "SELECT severity, signals FROM filterwatch.alerts "
               f"WHERE alert_id = '{out['alerts'][0]['alert_id']}' LIMIT 1")  # fmt: skip
    assert row[0][0] == "critical" and row[0][1] == ["est_fnr"]
    text = fw(
        "--store",
        world["store"],
        "estimate",
        "--calibration",
        str(cal),
        "--since",
        str(s + HALF),
        "--until",
        str(s + 2 * HALF),
        "--reference-days",
        "1",
        "--window",
        "5m",
    ).stdout
    assert "UNDER-BLOCKING self_harm" in text and "label-free P [95%]" in text


def _true_metrics(world, category: str, since: float, until: float) -> tuple[float, float]:
    tp = fp = fn = 0
    for rid, v in world["verdicts"].items():
        if not since <= v["ts"] < until:
            continue
        pred, true = category in v["c"], category in world["truth"][rid]
        tp += pred and true
        fp += pred and not true
        fn += true and not pred
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1)


def test_queue_import_and_debiased_estimate(world):
    d, store, s = world["dir"], world["store"], world["start"]
    args = (
        "--store",
        store,
        "labels",
        "queue",
        "--budget",
        "300",
        "--seed",
        "7",
        "--since",
        str(s),
        "--until",
        str(s + 2 * HALF),
    )
    first = fw(*args, "--out", str(d / "q.csv"))
    fw(*args, "--out", str(d / "q2.csv"))
    rows = list(csv.DictReader((d / "q.csv").open()))
    again = list(csv.DictReader((d / "q2.csv").open()))
    assert len(rows) == 300
    assert [r["request_id"] for r in rows] == [r["request_id"] for r in again]  # seeded
    assert all("?" not in r["url"] and "#" not in r["url"] for r in rows)  # scrubbed
    assert {r["band"] for r in rows} >= {"near", "far"}
    assert "self_harm" in {r["focus"] for r in rows}
    queue_id = rows[0]["queue_id"]
    assert queue_id in first.stdout
    # every stratum's inclusion probability is its sample over its size; sizes add up
    q = _sql(
        store,
        "SELECT countIf(abs(inclusion - stratum_sample / stratum_size) > 1e-9) "
        f"FROM filterwatch.label_queue WHERE queue_id = '{queue_id}'",
    )
    assert int(q[0][0]) == 0
    total = int(
        _sql(
            store,
            f"SELECT sum(stratum_size) FROM filterwatch.label_strata WHERE queue_id = '{queue_id}'",
        )[0][0]
    )
    assert total == sum(1 for v in world["verdicts"].values() if s <= v["ts"] < s + 2 * HALF)
    # analysts label from the truth; a second annotator re-labels 30 and disagrees once
    lab = []
    for r in rows:
        lab.append(
            {
                "request_id": r["request_id"],
                "annotator": "analyst-1",
                "true_categories": "|".join(world["truth"][r["request_id"]]),
                "labeled_at": "2026-12-01T10:00:00Z",
                "queue_id": queue_id,
            }
        )
    second = [dict(x, annotator="analyst-2") for x in lab[:30]]
    second[0]["true_categories"] = "news" if "news" not in lab[0]["true_categories"] else ""
    bad = [
        {
            "request_id": "x1",
            "annotator": "analyst-1",
            "true_categories": "meteor",
            "labeled_at": "",
            "queue_id": "",
        },
        {
            "request_id": "x2",
            "annotator": "",
            "true_categories": "",
            "labeled_at": "",
            "queue_id": "",
        },
    ]
    path = d / "labels.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(lab[0]))
        w.writeheader()
        w.writerows(lab + second + bad)
    p = fw("--store", store, "labels", "import", str(path))
    assert "330 labels of 300 verdicts by 2 annotator(s)" in p.stdout
    assert "inter-annotator agreement on 30" in p.stdout
    card = json.loads((d / "labels.csv.card.json").read_text())
    assert card["size"] == {"labels": 330, "verdicts": 300, "bad_rows": 2}
    assert card["annotators"] == {"analyst-1": 300, "analyst-2": 30}
    assert card["selection"][0]["queue_id"] == queue_id and card["selection"][0]["seed"] == 7
    assert any("unknown category 'meteor'" in x for x in card["problems"])
    assert len(card["sha256"]) == 64 and (d / "labels.csv.card.md").exists()
    fw("--store", store, "labels", "import", str(path))  # the same file again: no change
    counts = _sql(
        store,
        "SELECT (SELECT count() FROM filterwatch.labels FINAL), "
        "(SELECT count() FROM filterwatch.feedback WHERE actor = 'analyst')",
    )
    assert [int(x) for x in counts[0]] == [330, 330]
    est = json.loads(fw("--store", store, "labels", "estimate", "--json").stdout)
    assert est["queue_id"] == queue_id
    for c in ("adult", "games", "education"):
        e = est["categories"][c]
        true_p, true_r = _true_metrics(world, c, s, s + 2 * HALF)
        assert e["precision"][1] <= true_p <= e["precision"][2], (c, e["precision"], true_p)
        assert e["recall"][1] <= true_r <= e["recall"][2], (c, e["recall"], true_r)
        assert e["population"] == total and e["covered"] == 1.0


def test_bad_arguments_are_one_line_errors(world, tmp_path):
    st = ("--store", world["store"])
    cases = [
        ([*st, "labels", "queue", "--budget", "0"], "--budget"),
        ([*st, "labels", "queue", "--category", "meteor"], "--category"),
        ([*st, "labels", "queue", "--out", "q.txt"], "--out"),
        ([*st, "labels", "queue", "--since", "last tuesday"], "--since"),
        ([*st, "estimate", "--calibration", str(tmp_path / "none.json")], "filterwatch calibrate"),
        (
            [*st, "estimate", "--calibration", str(_calibrated(world)), "--window", "soon"],
            "--window",
        ),
        (
            [*st, "estimate", "--calibration", str(_calibrated(world)), "--model-version", "9.9"],
            "no traffic of model version 9.9",
        ),
        ([*st, "calibrate"], "--eval"),
        ([*st, "labels", "import", str(tmp_path / "missing.csv")], "no such file"),
        ([*st, "labels", "estimate", "--queue", "q-nope"], "no such queue"),
    ]
    for argv, needle in cases:
        msg = one_line_error(fw(*argv, check=False))
        assert needle in msg, (argv, msg)


def test_model_card_shows_calibration_and_estimated_vs_measured(world):
    out = world["dir"] / "card"
    fw(
        "model-card",
        str(world["dir"] / "eval.jsonl"),
        "--model-version",
        VERSION,
        "--out",
        str(out),
    )
    md = (out / "model_card.md").read_text()
    assert "## Score calibration" in md and "log loss beta" in md
    assert "## Estimated vs measured FP/FN on this set" in md
    assert (out / "reliability.png").stat().st_size > 5000
    # the cross-fitted estimate's interval holds the measured FN count for most categories
    table = md.split("## Estimated vs measured FP/FN on this set")[1].split("\n\n")[1]
    held = total = 0
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        measured = float(cells[3].replace(",", ""))
        lo, hi = (float(x.replace(",", "")) for x in cells[4].split("[")[1].rstrip("]").split(", "))
        total += 1
        held += lo - 1 <= measured <= hi + 1
    assert total >= 15 and held / total >= 0.8, (held, total)
    assert np.isfinite(held)
