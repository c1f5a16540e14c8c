"""An evaluation set as a replay source, on the real embedded ClickHouse: the store holds
exactly its counts, the online metrics reproduce its model card, an eval-built reference
profile starts detection, and the bias correction is checked against simulated truth."""

from __future__ import annotations

import collections
import dataclasses
import time
from pathlib import Path

import pandas as pd
import pytest

from monitor.config import Config
from monitor.errors import InputError
from monitor.evalreplay import EvalReplay, EvalReplayConfig
from monitor.evalsample import write_sample_evalset
from monitor.evalset import read_evalset
from monitor.modelcard import compute_metrics
from monitor.online_metrics import online_metrics
from monitor.pipeline import Pipeline
from monitor.reference import build_eval_reference
from monitor.simulator import SimConfig, Simulator

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "sample" / "eval_sample.jsonl.gz"


def replay(store, evalset, **kw):
    er = EvalReplay(evalset, EvalReplayConfig(**kw))
    pipe = Pipeline(Config(store=store.config), store, origin="test:eval")
    summary = pipe.run(er.events())
    return er, summary


def store_counts(store) -> dict:
    db = store.db
    (v, r, b) = store.rows(
        f"SELECT (SELECT count() FROM {db}.verdicts), (SELECT sum(requests) FROM "
        f"{db}.traffic_1m), (SELECT sum(blocked) FROM {db}.traffic_1m)"
    )[0]
    predicted = dict(
        store.rows(
            f"SELECT category, sum(predicted) FROM {db}.category_1m GROUP BY category "
            f"HAVING sum(predicted) > 0"
        )
    )
    fb = dict(store.rows(f"SELECT joined, count() FROM {db}.feedback GROUP BY joined"))
    dead = store.scalar(f"SELECT count() FROM {db}.dead_letters")
    return {"verdicts": v, "requests": r, "blocked": b, "predicted": predicted, "feedback": fb,
            "dead": dead}  # fmt: skip


def test_replay_reproduces_counts_and_model_card_exactly(store):
    es = read_evalset(SAMPLE)
    er, summary = replay(store, es)
    exp, got = er.expected, store_counts(store)
    assert summary.rejected == 0 and got["dead"] == 0
    assert got["verdicts"] == got["requests"] == exp["verdicts"] == len(es.rows)
    assert got["blocked"] == exp["blocked"] > 0
    assert got["predicted"] == exp["predicted"]
    # every label reached the store joined to its verdict (safe pages late-join there)
    assert got["feedback"] == {1: exp["labels"]} and exp["labels"] == len(es.rows)
    assert summary.feedback_unjoined == 0
    assert summary.alerts == []  # labels are not over/under-blocking evidence

    for version in es.model_versions:
        offline = compute_metrics(es.only(version))
        online = online_metrics(store, version, offline.categories)
        for j, c in enumerate(offline.categories):
            e = online[c]
            assert e.precision.value == pytest.approx(offline.precision[j], abs=1e-12), c
            assert e.recall.value == pytest.approx(offline.recall[j], abs=1e-12), c
            assert e.f1 == pytest.approx(offline.f1[j], abs=1e-12), c
            assert e.support == offline.support[j]
            # a census: the interval collapses onto the value
            assert e.precision.low == pytest.approx(e.precision.high, abs=1e-12)


def test_csv_and_parquet_replay_to_the_same_counts(store, chdb_root, tmp_path):
    es = read_evalset(SAMPLE)
    rows = []
    for r in es.rows[:600]:
        rec = {"id": r.page_id, "url": r.url, "true_categories": "|".join(sorted(r.true)),
               "model_version": r.model_version, "tenant_id": r.tenant_id, "ts": r.ts}  # fmt: skip
        rec.update({f"score_{c}": s for c, s in r.scores.items()})
        rows.append(rec)
    df = pd.DataFrame(rows)
    df.to_csv(tmp_path / "ev.csv", index=False)
    pq = df.assign(true_categories=[t.split("|") if t else [] for t in df.true_categories])
    pq.to_parquet(tmp_path / "ev.parquet")
    got = []
    for name in ("ev.csv", "ev.parquet"):
        s = chdb_root.with_database(f"{store.db}_{name[3:]}")
        s.init_schema()
        try:
            er, _ = replay(s, read_evalset(tmp_path / name), label_fraction=0.5, seed=3)
            c = store_counts(s)
            assert c["verdicts"] == er.expected["verdicts"] == 600
            assert c["predicted"] == er.expected["predicted"]
            assert sum(c["feedback"].values()) == er.expected["labels"]
            assert 240 < er.expected["labels"] < 360
            got.append(c)
        finally:
            s.command(f"DROP DATABASE IF EXISTS {s.db}")
    assert got[0] == got[1]


def test_old_rows_need_retime_and_bad_options_are_named():
    es = read_evalset(SAMPLE)
    later = es.rows[0].ts + 500 * 86400
    with pytest.raises(InputError, match="--retime"):
        EvalReplay(es, EvalReplayConfig(now=later))
    er = EvalReplay(es, EvalReplayConfig(now=later, retime=True, rate=100))
    assert er.expected["last_ts"] <= later
    assert er.expected["last_ts"] - er.expected["first_ts"] == pytest.approx(39.99, abs=0.01)
    with pytest.raises(InputError, match="--policy"):
        EvalReplayConfig(policy="lenient")
    with pytest.raises(InputError, match="--label-fraction"):
        EvalReplayConfig(label_fraction=1.5)


def test_reference_from_a_random_eval_sample_starts_detection(store, tmp_path):
    """Clean traffic of the same world raises nothing; a self-harm regression is found.

    30,000 pages hold ~50 self-harm blocks; with 6,000 (11 blocks) the reference's lower
    bound is half the rate and the regression went unseen (measured): a rate reference for
    a rare category needs a large random sample."""
    path = tmp_path / "ev.jsonl.gz"
    write_sample_evalset(path, rows=30000, seed=11, safe_fraction=1.0)
    es = read_evalset(path)
    cfg = Config(store=store.config)
    ref = build_eval_reference(es, "2026.11.2", cfg)
    assert set(ref.signals) == {"base_rates", "block_rate", "labelset", "labelset_vocab",
                                "predicted_rate", "score", "thresholds"}  # fmt: skip
    assert all(r["tenant_id"] == "*" for r in ref.rows)
    assert ref.thresholds["self_harm"] == 0.40 and 0 < ref.base_rates["adult"] < 0.2
    store.save_profile("eval", ref.rows, time.time())
    cfg = dataclasses.replace(cfg, detect=dataclasses.replace(cfg.detect, profile="eval"))
    found = {}
    for scenario in ("none", "selfharm-underblock"):
        sim = Simulator(SimConfig(scenario=scenario, rate=1000, duration_s=540, onset_s=200,
                                  seed=21, world_seed=11))  # fmt: skip
        s = Pipeline(cfg, store, origin=f"test:{scenario}").run(sim.events())
        found[scenario] = [(a.incident.category, a.incident.direction) for a in s.alerts]
    assert found["none"] == []
    assert ("self_harm", "under-blocking") in found["selfharm-underblock"]


def test_bias_correction_covers_the_truth_where_naive_metrics_do_not(store):
    """Over-blocking after a deploy: unblocks pile up on the new version's false adult
    blocks, so precision over all labelled verdicts is far too low; the audit-corrected
    estimate's interval holds the true precision (known to the simulator)."""
    sim = Simulator(SimConfig(scenario="overblock-after-deploy", rate=1000, duration_s=240,
                              onset_s=0, seed=5, audit_rate=0.01))  # fmt: skip
    sim.emit_truth = True
    truth: dict[tuple[str, str], collections.Counter] = collections.defaultdict(collections.Counter)

    def events():
        for ev in sim.events():
            true = ev.pop("_true", None)
            if true is not None:
                pred, true = set(ev["categories"]), set(true)
                for c in pred | true:
                    kind = "tp" if c in pred and c in true else "fp" if c in pred else "fn"
                    truth[(ev["model_version"], c)][kind] += 1
            yield ev

    Pipeline(Config(store=store.config), store, origin="test:bias").run(events())
    version = "2026.12.0"
    est = online_metrics(store, version)
    covered = 0
    for c, e in est.items():
        t = truth[(version, c)]
        p = t["tp"] / (t["tp"] + t["fp"]) if t["tp"] + t["fp"] else 0.0
        covered += e.precision.low <= p <= e.precision.high
        assert e.bounds_precision[0] <= e.precision.low <= e.precision.high
        assert e.precision.high <= e.bounds_precision[1] + 1e-12
    assert covered >= len(est) - 1  # 95% intervals over ~20 categories
    adult, t = est["adult"], truth[(version, "adult")]
    true_p = t["tp"] / (t["tp"] + t["fp"])
    assert true_p < 0.6  # the deploy really over-blocks
    assert adult.precision.low <= true_p <= adult.precision.high
    assert adult.naive_precision < adult.precision.low  # the naive number is biased low
