"""Model-card metrics equal scikit-learn's on the same data, edge cases included."""

import numpy as np
import pytest
from sklearn.metrics import multilabel_confusion_matrix, precision_recall_fscore_support

from monitor.evalset import EvalRow, EvalSet
from monitor.modelcard import compute_metrics
from monitor.taxonomy import category


def make_set(rng, n, cats, *, p_label=0.2, safe_share=0.3):
    rows = []
    for i in range(n):
        true = set()
        if rng.random() > safe_share:
            true = {c for c in cats if rng.random() < p_label}
        scores = {}
        for c in cats:
            base = 0.7 if c in true else 0.15
            s = float(np.clip(rng.normal(base, 0.2), 0, 1))
            if s > 0:
                scores[c] = s
        rows.append(EvalRow(f"p{i}", "https://x.example/", frozenset(true), scores, "v1"))
    return EvalSet("mem", rows)


def sklearn_view(es, cats):
    y_true = np.array([[int(c in r.true) for c in cats] for r in es.rows])
    y_pred = np.array(
        [[int(r.scores.get(c, 0.0) >= category(c).threshold) for c in cats] for r in es.rows]
    )
    return y_true, y_pred


def assert_matches(es):
    m = compute_metrics(es)
    cats = m.categories
    y_true, y_pred = sklearn_view(es, cats)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    np.testing.assert_allclose(m.precision, p)
    np.testing.assert_allclose(m.recall, r)
    np.testing.assert_allclose(m.f1, f)
    np.testing.assert_array_equal(m.support, s)
    np.testing.assert_array_equal(m.confusion, multilabel_confusion_matrix(y_true, y_pred))
    for avg in ("micro", "macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=avg, zero_division=0)
        got = m.averages[avg]
        assert got["precision"] == pytest.approx(p)
        assert got["recall"] == pytest.approx(r)
        assert got["f1"] == pytest.approx(f)
    return m


@pytest.mark.parametrize("seed", range(5))
def test_random_multilabel_sets(seed):
    rng = np.random.default_rng(seed)
    cats = ["adult", "self_harm", "violence", "games", "health", "news"]
    assert_matches(make_set(rng, 400, cats))


def test_category_with_no_positives_and_one_with_no_predictions():
    rows = [
        # "weapons" is scored (low) but never labelled: no positives
        EvalRow("a", "u", frozenset({"adult"}), {"adult": 0.9, "weapons": 0.1}, "v"),
        EvalRow("b", "u", frozenset(), {"weapons": 0.2}, "v"),
        # "drugs" is labelled but never scored above threshold: no predictions
        EvalRow("c", "u", frozenset({"drugs"}), {"drugs": 0.1}, "v"),
        EvalRow("d", "u", frozenset({"drugs", "adult"}), {"adult": 0.3}, "v"),
    ]
    m = assert_matches(EvalSet("mem", rows))
    j = m.categories.index("weapons")
    assert m.support[j] == 0 and m.precision[j] == 0 and m.recall[j] == 0
    j = m.categories.index("drugs")
    assert m.recall[j] == 0 and m.cipa_false_negative_rates()["drugs"] == 1.0


def test_all_safe_rows():
    rows = [
        EvalRow(f"s{i}", "u", frozenset(), {"games": 0.6 * (i % 2), "news": 0.1}, "v")
        for i in range(10)
    ]
    m = assert_matches(EvalSet("mem", rows))  # two categories: sklearn's multilabel path
    assert m.cross["(safe)"] == {"games": 5, "(safe)": 5}
    assert m.averages["micro"]["precision"] == 0 and m.averages["micro"]["support"] == 0


def test_cross_category_table_says_where_errors_go():
    rows = [
        EvalRow("h1", "u", frozenset({"health"}), {"adult": 0.8}, "v"),  # health seen as adult
        EvalRow("h2", "u", frozenset({"health"}), {"health": 0.9}, "v"),
        EvalRow("a1", "u", frozenset({"adult"}), {"adult": 0.9}, "v"),
    ]
    m = assert_matches(EvalSet("mem", rows))
    assert m.cross["health"] == {"adult": 1, "health": 1}
    assert m.cross["adult"] == {"adult": 1}
