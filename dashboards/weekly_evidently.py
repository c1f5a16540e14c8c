"""The evidently part of the weekly report: drift and classification quality on a sample.

Rollups carry counts, not rows, and evidently's tests want rows, so this reads a bounded
**stratified** sample of raw verdicts: per stratum (the top predicted category, or
"none") and plot bucket at most ``per_stratum`` rows, this period and the reference
period alike. Rare harmful categories are therefore present in the sample (a uniform
sample of a billion verdicts would hold almost none), and the drift tests compare like
with like because both periods are stratified the same way. The raw table keeps every
blocked or CIPA-scored verdict for the long retention and a sample of the rest, so the
"none" stratum comes from that sample.

Stattests (chosen, not defaulted): Wasserstein distance (normed) for scores — it reads
the size of a shift, not only its significance, which at these sample sizes flags
everything — and Jensen-Shannon for the categorical columns.
Classification quality uses analysts' audits (the unbiased labels) joined to their
verdicts: target "harmful" = the label has a CIPA category, prediction = the verdict
predicted one.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from monitor.storage import Store
from monitor.taxonomy import CATEGORIES, SeverityClass

__all__ = ["evidently_report", "stratified_sample"]

_CIPA = [c.name for c in CATEGORIES if c.severity_class is SeverityClass.CIPA]
MIN_ROWS = 30


def stratified_sample(
    store: Store, start: float, end: float, bucket_s: int, per_stratum: int = 200
) -> pd.DataFrame:
    db = store.db
    rows = store.rows(
        f"SELECT if(empty(categories), 'none', categories[1]) AS stratum, scores, "
        f"decision FROM {db}.verdicts "
        f"WHERE ts >= toDateTime64({{s:UInt32}}, 3) AND ts < toDateTime64({{e:UInt32}}, 3) "
        f"ORDER BY cityHash64(request_id) "
        f"LIMIT {{k:UInt32}} BY stratum, toStartOfInterval(ts, toIntervalSecond({{b:UInt32}}))",
        {"s": int(start), "e": int(end), "k": per_stratum, "b": bucket_s},
    )
    out = []
    for stratum, scores, decision in rows:
        rec = {"top_category": stratum, "decision": decision}
        rec.update({f"score_{c}": float(scores.get(c, 0.0)) for c in _CIPA})
        out.append(rec)
    return pd.DataFrame(out)


def _audits(store: Store, start: float, end: float) -> pd.DataFrame:
    db = store.db
    rows = store.rows(
        f"SELECT hasAny(categories, {{cipa:Array(String)}}), "
        f"hasAny(predicted, {{cipa:Array(String)}}) FROM {db}.feedback "
        f"WHERE joined = 1 AND actor = 'analyst' AND action IN ('confirm', 'relabel') "
        f"AND verdict_ts >= toDateTime64({{s:UInt32}}, 3) "
        f"AND verdict_ts < toDateTime64({{e:UInt32}}, 3)",
        {"s": int(start), "e": int(end), "cipa": _CIPA},
    )
    return pd.DataFrame(
        [(int(t), int(p)) for t, p in rows], columns=["harmful", "predicted_harmful"]
    )


def evidently_report(
    store: Store,
    now: tuple[float, float],
    ref: tuple[float, float],
    bucket_s: int,
    path: Path,
) -> dict | None:
    """Write the evidently HTML; returns a summary, or None when a sample is too small."""
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset, DataDriftPreset

    cur = stratified_sample(store, *now, bucket_s)
    base = stratified_sample(store, *ref, bucket_s)
    if len(cur) < MIN_ROWS or len(base) < MIN_ROWS:
        return None
    num = [c for c in cur.columns if c.startswith("score_")]
    dd = DataDefinition(numerical_columns=num, categorical_columns=["top_category", "decision"])
    drift = DataDriftPreset(num_method="wasserstein", cat_method="jensenshannon")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snap = Report([drift]).run(
            Dataset.from_pandas(cur, data_definition=dd),
            Dataset.from_pandas(base, data_definition=dd),
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    snap.save_html(str(path))
    drifted = _drifted_share(snap.dict())
    summary = {"path": path.name, "rows_now": len(cur), "rows_ref": len(base), **drifted}
    audits = _audits(store, *now)
    if len(audits) >= MIN_ROWS and audits["harmful"].nunique() == 2:
        cdd = DataDefinition(
            classification=[
                BinaryClassification(target="harmful", prediction_labels="predicted_harmful")
            ],
            categorical_columns=["harmful", "predicted_harmful"],
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            csnap = Report([ClassificationPreset()]).run(
                Dataset.from_pandas(audits, data_definition=cdd), None
            )
        qpath = path.with_name("evidently_quality.html")
        csnap.save_html(str(qpath))
        summary.update(quality_path=qpath.name, audits=len(audits))
    return summary


def _drifted_share(d: dict) -> dict:
    """The preset's drifted-columns count and share and each column's drift score."""
    out: dict = {"drifted_columns": None, "drifted_share": None, "columns": {}}
    for m in d.get("metrics", []):
        name = str(m.get("metric_name", ""))
        v = m.get("value")
        if name.startswith("DriftedColumnsCount") and isinstance(v, dict):
            out["drifted_columns"] = int(v.get("count", 0))
            out["drifted_share"] = float(v.get("share", 0.0))
        elif name.startswith("ValueDrift(") and isinstance(v, (int, float)):
            col = name.split("column=", 1)[1].split(",", 1)[0]
            thr = (
                float(name.rsplit("threshold=", 1)[1].rstrip(")")) if "threshold=" in name else None
            )
            out["columns"][col] = {"score": float(v), "threshold": thr}
    return out
