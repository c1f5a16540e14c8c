"""Reading evaluation files: formats, scrubbing on read, row-level reasons for bad rows."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_recall_curve

from monitor.evalset import EvalSetError, read_evalset
from monitor.modelcard_report import pr_curve

GOOD = {
    "id": "p1",
    "url": "https://health.example/page?student_id=42#top",
    "true_categories": ["health"],
    "scores": {"health": 0.9, "adult": 0.1},
    "model_version": "v1",
}


def jsonl(tmp_path, rows, name="e.jsonl"):
    p = tmp_path / name
    p.write_text("\n".join(json.dumps(r) if isinstance(r, dict) else r for r in rows) + "\n")
    return p


def test_jsonl_csv_and_parquet_agree_and_urls_are_scrubbed(tmp_path):
    rows = [GOOD, {**GOOD, "id": "p2", "true_categories": [], "scores": {"games": 0.7}}]
    a = read_evalset(jsonl(tmp_path, rows))
    flat = []
    for r in rows:
        d = {k: v for k, v in r.items() if k not in ("scores", "true_categories")}
        d["true_categories"] = "|".join(r["true_categories"])
        d.update({f"score_{c}": s for c, s in r["scores"].items()})
        flat.append(d)
    df = pd.DataFrame(flat)
    df.to_csv(tmp_path / "e.csv", index=False)
    b = read_evalset(tmp_path / "e.csv")
    pq = pd.DataFrame(flat)
    pq["true_categories"] = [r["true_categories"] for r in rows]
    pq.to_parquet(tmp_path / "e.parquet")
    c = read_evalset(tmp_path / "e.parquet")
    for es in (a, b, c):
        assert [(r.page_id, r.true, r.scores) for r in es.rows] == [
            (r.page_id, r.true, r.scores) for r in a.rows
        ]
        assert all("student_id" not in r.url and "#" not in r.url for r in es.rows)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({**GOOD, "true_categories": ["pron"]}, "unknown category 'pron'"),
        ({**GOOD, "scores": {"adult": 1.5}}, "outside [0, 1]"),
        ({**GOOD, "scores": {"adult": "NaN"}}, "outside [0, 1]"),
        ({k: v for k, v in GOOD.items() if k != "model_version"}, "missing column 'model_version'"),
        ({**GOOD, "scores": {"weather": 0.2}}, "unknown category 'weather'"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_rows_are_named(tmp_path, row, reason):
    if isinstance(row, dict):
        row = {**row, "id": "bad"}
    p = jsonl(tmp_path, [GOOD, row])
    with pytest.raises(EvalSetError, match="row 2") as exc:
        read_evalset(p)
    assert reason in str(exc.value)


def test_duplicate_ids_and_counts(tmp_path):
    p = jsonl(tmp_path, [GOOD, GOOD, {**GOOD, "id": "p3", "url": ""}])
    with pytest.raises(EvalSetError) as exc:
        read_evalset(p)
    msg = str(exc.value)
    assert "2 bad row(s)" in msg and "duplicate id 'p1'" in msg and "row 3" in msg


def test_pr_curve_matches_sklearn():
    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.3).astype(int)
    s = np.round(np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1), 2)  # ties on purpose
    p, r = pr_curve(y, s)
    sp, sr, _ = precision_recall_curve(y, s)
    # sklearn lists thresholds ascending and appends (1, 0); ours are descending
    got = set(zip(np.round(p, 12), np.round(r, 12), strict=True))
    want = set(zip(np.round(sp[:-1], 12), np.round(sr[:-1], 12), strict=True))
    assert got == want
