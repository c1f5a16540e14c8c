"""The bias-corrected online estimate and the evaluation replay's events, without servers."""

from __future__ import annotations

import gzip

import numpy as np
import orjson
import pytest

from monitor.evalreplay import EvalReplay, EvalReplayConfig, predicted_categories
from monitor.evalset import EvalRow, EvalSet, EvalSetError, looks_like_evalset
from monitor.modelcard import label_matrices
from monitor.online_metrics import CategoryCounts, estimate


def test_counted_disputes_plus_audited_strata():
    # 1,000 predicted: 100 disputed (10 truly c), 900 undisputed of which audits say 49/50
    # are c; 99,000 unpredicted: 20 reported as c, the rest 2/1,000 audits say c.
    c = CategoryCounts(requests=100_000, predicted=1000, disputed_pred=100,
                       disputed_pred_true=10, disputed_unpred=20, disputed_unpred_true=20,
                       audit_pred=50, audit_pred_true=49, audit_unpred=1000,
                       audit_unpred_true=2, naive_tp=59, naive_fp=91, naive_fn=22)  # fmt: skip
    e = estimate("adult", c)
    tp = 10 + 900 * 49 / 50
    fn = 20 + (100_000 - 1000 - 20) * 2 / 1000
    assert e.precision.value == pytest.approx(tp / 1000)
    assert e.recall.value == pytest.approx(tp / (tp + fn))
    assert e.support == pytest.approx(tp + fn)
    assert e.precision.low < e.precision.value < e.precision.high
    assert e.recall.low < e.recall.value < e.recall.high
    # what holds with no audit: disputes cap precision at (1000 - 90) / 1000
    assert e.bounds_precision == pytest.approx((10 / 1000, 910 / 1000))
    assert e.bounds_precision[0] <= e.precision.low and e.precision.high <= 0.91
    assert e.naive_precision == pytest.approx(59 / 150)  # biased: disputes are errors
    assert e.naive_precision < e.precision.low


def test_no_audit_in_a_stratum_gives_bounds_not_a_number():
    c = CategoryCounts(requests=5000, predicted=200, disputed_pred=30, disputed_pred_true=5)
    e = estimate("games", c)
    assert e.precision.value is None and e.recall.value is None and e.f1 is None
    assert (e.precision.low, e.precision.high) == pytest.approx(e.bounds_precision)
    assert e.bounds_precision == pytest.approx((5 / 200, 175 / 200))


def test_a_census_is_exact():
    c = CategoryCounts(requests=300, predicted=40, audit_pred=40, audit_pred_true=37,
                       audit_unpred=260, audit_unpred_true=3)  # fmt: skip
    e = estimate("news", c)
    assert e.precision.value == e.precision.low == e.precision.high == 37 / 40
    assert e.recall.value == e.recall.low == e.recall.high == 37 / 40
    assert e.support == 40


def test_empty_category_follows_zero_division_zero():
    e = estimate("dating", CategoryCounts(requests=100, predicted=0, audit_unpred=100))
    assert (e.precision.value, e.recall.value, e.f1) == (0.0, 0.0, 0.0)


def _set(rows) -> EvalSet:
    return EvalSet("mem", [EvalRow(*r) for r in rows])


def test_replay_events_follow_the_model_card_rule_and_order_labels_after_verdicts():
    rng = np.random.default_rng(4)
    rows = []
    for i in range(300):
        scores = {c: round(float(s), 3) for c, s in zip(("adult", "games", "news"),
                  rng.random(3), strict=True) if s > 0.2}  # fmt: skip
        true = frozenset(c for c in ("adult", "games") if rng.random() < 0.3)
        rows.append((f"p{i}", "https://ex.org/a", true, scores, "v1", "", 1000.0 + i * 0.1))
    es = _set(rows)
    thresholds = {"games": 0.7}
    er = EvalReplay(es, EvalReplayConfig(thresholds=thresholds, now=2000.0, policy="cipa-only"))
    events = list(er.events())
    verdicts = [e for e in events if e["schema"] == "verdict/1"]
    labels = [e for e in events if e["schema"] == "feedback/1"]
    assert len(verdicts) == len(labels) == 300
    cats = es.categories
    _, y_pred, _ = label_matrices(es, cats, thresholds)
    for i, v in enumerate(verdicts):
        assert set(v["categories"]) == {cats[j] for j in np.nonzero(y_pred[i])[0]}
        assert v["decision"] == ("block" if "adult" in v["categories"] else "allow")
    seen, last = set(), 0.0
    for e in events:
        assert e["ts"] >= last
        last = e["ts"]
        if e["schema"] == "verdict/1":
            seen.add(e["request_id"])
        else:
            assert e["request_id"] in seen and e["actor"] == "analyst"
            v = verdicts[int(e["request_id"][1:])]
            right = set(e["categories"]) == set(v["categories"])
            assert e["action"] == ("confirm" if right else "relabel")
    per_cat = {c: int(y_pred[:, j].sum()) for j, c in enumerate(cats)}
    assert er.expected["predicted"] == {c: n for c, n in per_cat.items() if n}


def test_predicted_categories_highest_score_first():
    assert predicted_categories({"adult": 0.5, "games": 0.9, "news": 0.1}) == ("games", "adult")


def test_looks_like_evalset_and_only(tmp_path):
    ev = tmp_path / "ev.jsonl.gz"
    with gzip.open(ev, "wb") as f:
        f.write(orjson.dumps({"id": "1", "url": "u", "true_categories": []}) + b"\n")
    cap = tmp_path / "cap.jsonl"
    cap.write_bytes(orjson.dumps({"schema": "verdict/1", "true_categories": []}) + b"\n")
    assert looks_like_evalset(ev) and not looks_like_evalset(cap)
    assert looks_like_evalset(tmp_path / "x.csv")
    es = _set([("a", "u", frozenset(), {}, "v1"), ("b", "u", frozenset(), {}, "v2")])
    assert [r.page_id for r in es.only("v2").rows] == ["b"]
    with pytest.raises(EvalSetError, match="--model-version"):
        es.only(None)
    with pytest.raises(EvalSetError, match="it has v1, v2"):
        es.only("v3")
