"""The command line as a user runs it: separate processes, each with its own store."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

FW = [sys.executable, "-m", "monitor.cli"]


def fw(*args, cwd=None, check=True, timeout=300):
    p = subprocess.run(
        [*FW, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if not k.startswith("FILTERWATCH_")},
    )
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}: {p.stderr}")
    return p


def one_line_error(p):
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("filterwatch: error: ")
    assert "Traceback" not in p.stderr
    return lines[0]


def test_simulate_then_replay_with_bad_lines(tmp_path):
    out = tmp_path / "sim.jsonl"
    fw(
        "simulate",
        "--scenario",
        "none",
        "--rate",
        "400",
        "--duration",
        "60",
        "--onset",
        "30",
        "--out",
        str(out),
        "--quiet",
    )
    truth = json.loads((tmp_path / "sim.truth.json").read_text())
    good = truth["counts"]["verdicts"] + truth["counts"]["feedback"]
    with out.open("a") as fh:
        fh.write("{broken json\n")
        fh.write('{"schema": "verdict/7", "request_id": "x"}\n')
        fh.write('{"schema": "verdict/1", "request_id": "x", "url": "https://a.org/?kid=1"}\n')
        fh.write(
            json.dumps(
                {
                    "schema": "verdict/1",
                    "request_id": "y",
                    "ts": time.time(),
                    "tenant_id": "t",
                    "url": "https://a.org/x",
                    "domain": "a.org",
                    "model_version": "v",
                    "scores": {"adult": 3.0},
                    "categories": [],
                    "decision": "allow",
                    "policy": "p",
                    "latency_ms": 1,
                    "source": "prod",
                }
            )
            + "\n"
        )
    store = tmp_path / "store"
    p = fw("--store", str(store), "replay", str(out), "--json")
    data = json.loads(p.stdout)
    s = data["summary"]
    assert data["events"] == good + 4
    assert s["verdicts"] + s["feedback"] == good
    assert s["rejected_by_reason"] == {
        "bad_json": 1,
        "unknown_schema_version": 1,
        "missing_field": 1,
        "score_out_of_range": 1,
    }
    assert data["alerts"] == []
    q = fw(
        "--store",
        str(store),
        "sql",
        "SELECT reason, position, excerpt FROM filterwatch.dead_letters ORDER BY position",
        "--format",
        "json",
    )
    rows = [json.loads(line) for line in q.stdout.splitlines()]
    assert [r["reason"] for r in rows] == [
        "bad_json",
        "unknown_schema_version",
        "missing_field",
        "score_out_of_range",
    ]
    assert all("kid=1" not in r["excerpt"] for r in rows)  # DLQ excerpts are scrubbed too
    # replaying the same file again is idempotent in the rollups
    fw("--store", str(store), "replay", str(out), "--json")
    total = fw(
        "--store",
        str(store),
        "sql",
        "SELECT sum(requests) FROM filterwatch.traffic_1m",
        "--format",
        "csv",
    )
    assert total.stdout.splitlines()[1] == str(truth["counts"]["verdicts"])


def test_demo_json_contract_on_clean_traffic(tmp_path):
    p = fw(
        "--store",
        str(tmp_path / "s"),
        "demo",
        "--scenario",
        "none",
        "--rate",
        "1500",
        "--duration",
        "150",
        "--json",
    )
    data = json.loads(p.stdout)
    assert set(data) >= {"events", "alerts", "store"}
    assert data["alerts"] == [] and data["events"] > 200_000
    assert Path(data["store"]).exists()


def test_demo_json_alert_fields(tmp_path):
    p = fw(
        "--store",
        str(tmp_path / "s"),
        "demo",
        "--scenario",
        "selfharm-underblock",
        "--rate",
        "1500",
        "--duration",
        "200",
        "--onset",
        "110",
        "--json",
    )
    data = json.loads(p.stdout)
    assert data["alerts"]
    a = data["alerts"][0]
    for key in ("category", "direction", "severity", "onset", "detected_at", "segment"):
        assert key in a
    assert (a["category"], a["direction"], a["severity"]) == (
        "self_harm",
        "under-blocking",
        "critical",
    )


@pytest.mark.parametrize(
    "args, needle",
    [
        (["demo", "--rate", "-5"], "--rate"),
        (["demo", "--scenario", "meteor"], "unknown scenario"),
        (["demo", "--rate", "fast"], "fast"),
        (["replay", "/nonexistent/file.jsonl"], "no such file"),
        (["--config", "/nonexistent.yaml", "init-db"], "does not exist"),
        (["frobnicate"], "No such command"),
        (["sql", "SELEC 1"], "query failed"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, args, needle):
    if args[0] not in ("--config",):
        args = ["--store", str(tmp_path / "s"), *args]
    line = one_line_error(fw(*args, check=False))
    assert needle in line


def test_bad_config_file_is_one_line(tmp_path):
    cfg = tmp_path / "fw.yaml"
    cfg.write_text("store:\n  pth: x\n")
    line = one_line_error(fw("--config", str(cfg), "init-db", check=False))
    assert "did you mean 'path'" in line


def test_locked_store_names_the_fix(tmp_path):
    store = tmp_path / "held"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys,time; from monitor.config import StoreConfig; "
            "from monitor.storage import Store; "
            f"s=Store.open(StoreConfig(path={str(store)!r})); print('ready', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        line = one_line_error(fw("--store", str(store), "sql", "SELECT 1", check=False))
        assert "open in another process" in line
    finally:
        holder.kill()
        holder.wait()


def test_alerts_rca_and_silences_from_the_cli(tmp_path):
    store = str(tmp_path / "s")
    demo = fw(
        "--store", store, "demo", "--scenario", "selfharm-underblock", "--rate", "1500",
        "--duration", "200", "--onset", "110", "--json",
    )  # fmt: skip
    alert_id = json.loads(demo.stdout)["alerts"][0]["alert_id"]
    listed = fw("--store", store, "--database", "demo", "alerts", "list")
    assert alert_id in listed.stdout and "under-blocking: self_harm" in listed.stdout
    out = tmp_path / "rca" / "draft.md"
    fw("--store", store, "--database", "demo", "rca", alert_id, "--out", str(out))
    text = out.read_text()
    for section in ("## Timeline", "## Evidence", "## Affected segments", "## Cause"):
        assert section in text
    assert alert_id in text and out.with_suffix(".png").stat().st_size > 10_000
    added = fw(
        "--store", store, "silence", "add", "--match", "category=games", "--for", "2h",
        "--reason", "relabel in progress",
    )  # fmt: skip
    sid = added.stdout.split()[0]
    assert sid.startswith("sil-")
    assert sid in fw("--store", store, "silence", "list").stdout
    fw("--store", store, "silence", "expire", sid)
    assert "no active silences" in fw("--store", store, "silence", "list").stdout
    assert sid in fw("--store", store, "silence", "list", "--all").stdout
    bad = fw("--store", store, "silence", "add", "--match", "category=games", "--for", "soon",
             check=False)  # fmt: skip
    assert bad.returncode == 2 and "30m, 2h, 1d" in bad.stderr and "Traceback" not in bad.stderr
    missing = fw("--store", store, "rca", "fw-nope", check=False)
    assert missing.returncode == 2 and "alerts list" in missing.stderr


def test_model_card_on_the_shipped_sample(tmp_path):
    sample = Path(__file__).parents[2] / "docs" / "sample" / "eval_sample.jsonl.gz"
    p = fw("model-card", str(sample), "--out", str(tmp_path / "card"), "--json")
    data = json.loads(p.stdout)
    assert set(data) >= {"categories", "micro", "macro"}
    for v in data["categories"].values():
        assert set(v) >= {"precision", "recall", "f1", "support"}
    assert data["rows"] == 4000
    for name in ("model_card.md", "model_card.html", "pr_curves.png"):
        assert (tmp_path / "card" / name).stat().st_size > 500
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "url": "u", "true_categories": ["pron"], "model_version": "v"}\n')
    err = fw("model-card", str(bad), "--out", str(tmp_path / "c2"), check=False)
    assert err.returncode == 2 and "row 1: unknown category 'pron'" in err.stderr
    assert "Traceback" not in err.stderr


def test_eval_set_replay_reference_and_online_card(tmp_path):
    """The evaluation workflow as a user runs it: replay the set, store a reference built
    from it, and put production numbers of the same version beside the offline card."""
    sample = Path(__file__).parents[2] / "docs" / "sample" / "eval_sample.jsonl.gz"
    store = str(tmp_path / "store")
    p = fw("--store", store, "replay", str(sample), "--json", "--quiet")
    out = json.loads(p.stdout)
    assert out["expected"]["verdicts"] == out["summary"]["verdicts"] == 4000
    assert out["summary"]["feedback"] == out["expected"]["labels"] == 4000
    counted = fw("--store", store, "sql", "SELECT count() AS n FROM filterwatch.feedback "
                 "WHERE joined = 1", "--format", "json")  # fmt: skip
    assert json.loads(counted.stdout)["n"] == 4000

    ref = fw("--store", store, "reference", "build", str(sample), "--model-version", "2026.11.2")
    assert "profile 'eval-2026.11.2'" in ref.stdout and "detect.profile" in ref.stdout
    assert "eval-2026.11.2" in fw("--store", store, "reference", "list").stdout
    many = fw("--store", store, "reference", "build", str(sample), check=False)
    assert "pick one with --model-version" in one_line_error(many)

    card = fw("--store", store, "model-card", str(sample), "--model-version", "2026.11.2",
              "--online", "--out", str(tmp_path / "card"), "--json")  # fmt: skip
    data = json.loads(card.stdout)
    online = data["online"]["categories"]
    for name, offline in data["categories"].items():
        assert online[name]["precision"]["value"] == pytest.approx(offline["precision"])
        assert online[name]["recall"]["value"] == pytest.approx(offline["recall"])
    md = (tmp_path / "card" / "model_card.md").read_text()
    assert "Offline vs online (production, model version 2026.11.2)" in md
    assert "naive" in md and "audits" in md

    old = tmp_path / "old.jsonl"
    old.write_text('{"id": "a", "url": "https://x.org/?s=1", "true_categories": [], '
                   '"model_version": "v", "ts": 1000000000}\n')  # fmt: skip
    err = fw("--store", store, "replay", str(old), "--quiet", check=False)
    assert "--retime" in one_line_error(err)
    ok = fw("--store", store, "replay", str(old), "--quiet", "--retime", "--json")
    assert json.loads(ok.stdout)["expected"]["verdicts"] == 1
    bad = fw("--store", store, "replay", str(sample), "--policy", "lax", check=False)
    assert "cipa-only, standard, strict" in one_line_error(bad)
