"""Production precision and recall from feedback-labelled outcomes, corrected for bias.

Labels in production are not a random sample. Disputes — an admin's unblock, a
teacher's report — land on verdicts that look wrong, so computing precision/recall over
"every verdict somebody labelled" makes the model look much worse than it is (and says
nothing about the errors nobody noticed). What *is* random is the analysts' audit: a
small share of verdicts reviewed regardless of outcome (``confirm``/``relabel``).

Per category ``c`` and model version the verdicts fall into strata:

* **disputed about c** — unblocked while blocked for ``c``, or reported as ``c``. Every
  such verdict carries a label (the audit's if it has one, else the dispute's), so the
  stratum is counted, not estimated.
* **undisputed, predicted c** (``n1`` verdicts) and **undisputed, not predicted c**
  (``n0``) — the stratum sizes come from the rollups (every verdict is counted there);
  the share truly ``c`` in each comes from the audits that fell in it (``t1/a1``,
  ``t0/a0``), with a 95% Clopper-Pearson interval.

TP, FP, FN are the sum of the counted and the estimated parts, so the estimate is
unbiased when audits are uniformly random among undisputed verdicts (the assumption; it
is stated in every report). Intervals take the interval ends of both shares (the
conservative corner). ``bounds`` give what holds without any audit: a share in [0, 1] —
the upper ends are informative (precision can be no better than the disputes allow).
``naive`` is the biased number, over all labelled verdicts, shown for contrast.

With every verdict audited (a fully labelled evaluation replay) the strata are complete
and the estimate equals the offline model card exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from detectors.stats import clopper_pearson
from monitor.storage import Store
from monitor.taxonomy import CATEGORIES

__all__ = ["CategoryCounts", "OnlineEstimate", "estimate", "fetch_counts", "online_metrics"]

_AUDIT = "actor = 'analyst' AND action IN ('confirm', 'relabel')"


@dataclass(frozen=True)
class CategoryCounts:
    """What the store says about one category of one model version."""

    requests: int  # N: all verdicts of the version (rollup)
    predicted: int  # P: verdicts predicted in the category (rollup)
    disputed_pred: int = 0  # D1: disputed about c, predicted c
    disputed_pred_true: int = 0
    disputed_unpred: int = 0  # D0: disputed about c, not predicted c
    disputed_unpred_true: int = 0
    audit_pred: int = 0  # a1: audits of undisputed verdicts predicted c
    audit_pred_true: int = 0  # t1
    audit_unpred: int = 0  # a0
    audit_unpred_true: int = 0  # t0
    naive_tp: int = 0
    naive_fp: int = 0
    naive_fn: int = 0


@dataclass(frozen=True)
class Interval:
    value: float | None  # None: a stratum has verdicts but no audit (only bounds hold)
    low: float
    high: float


@dataclass(frozen=True)
class OnlineEstimate:
    category: str
    precision: Interval
    recall: Interval
    f1: float | None
    support: float | None  # estimated true-c verdicts
    bounds_precision: tuple[float, float]
    bounds_recall: tuple[float, float]
    naive_precision: float
    naive_recall: float
    labelled: int  # verdicts with a label about c (disputed + audited)
    counts: CategoryCounts

    def to_json(self) -> dict:
        d = asdict(self)
        d["counts"] = asdict(self.counts)
        return d


# A share of an undisputed stratum that is truly c, as numerator / denominator, so that a
# fully audited stratum gives exact integer counts ((n * t) / a with n == a).
Share = tuple[float, float]


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0


def _confusion(c: CategoryCounts, s1: Share, s0: Share) -> tuple[float, float, float]:
    n1 = c.predicted - c.disputed_pred
    n0 = c.requests - c.predicted - c.disputed_unpred
    tp = c.disputed_pred_true + (n1 * s1[0]) / s1[1]
    fn = c.disputed_unpred_true + (n0 * s0[0]) / s0[1]
    return tp, c.predicted - tp, fn


def _precision(c: CategoryCounts, s1: Share) -> float:
    tp, fp, _ = _confusion(c, s1, (0.0, 1.0))
    return _ratio(tp, tp + fp)


def _recall(c: CategoryCounts, s1: Share, s0: Share) -> float:
    tp, _, fn = _confusion(c, s1, s0)
    return _ratio(tp, tp + fn)


def _exact_interval(k: int, n: int, stratum: int) -> tuple[Share, Share]:
    """95% Clopper-Pearson interval of a stratum's share from its audits; a census is exact.

    Exact rather than Wilson: shares here sit at the boundary (a category's predictions
    are ~99% right), where Wilson's upper end at k = n - 1 misses the truth far more
    often than 5% (measured in bench/online_metrics.py).
    """
    if n > 0 and n >= stratum:
        return (k, n), (k, n)
    if n <= 0:
        return (0.0, 1.0), (1.0, 1.0)
    lo, hi = clopper_pearson(k, n)
    return (lo, 1.0), (hi, 1.0)


def estimate(category: str, c: CategoryCounts) -> OnlineEstimate:
    """The stratified estimate for one category (pure: counts in, numbers out)."""
    n1 = c.predicted - c.disputed_pred
    n0 = c.requests - c.predicted - c.disputed_unpred
    lo1, hi1 = _exact_interval(c.audit_pred_true, c.audit_pred, n1)
    lo0, hi0 = _exact_interval(c.audit_unpred_true, c.audit_unpred, n0)
    zero, one = (0.0, 1.0), (1.0, 1.0)
    # Precision and recall grow with the predicted stratum's share; recall falls with the
    # unpredicted one's: the interval ends are those corners.
    p_bounds = (_precision(c, zero), _precision(c, one))
    r_bounds = (_recall(c, zero, one), _recall(c, one, zero))
    p_ci = (_precision(c, lo1), _precision(c, hi1))
    r_ci = (_recall(c, lo1, hi0), _recall(c, hi1, lo0))
    known1 = c.audit_pred > 0 or n1 <= 0
    known0 = c.audit_unpred > 0 or n0 <= 0
    s1 = (c.audit_pred_true, c.audit_pred) if c.audit_pred else zero
    s0 = (c.audit_unpred_true, c.audit_unpred) if c.audit_unpred else zero
    tp, fp, fn = _confusion(c, s1, s0)
    p = _ratio(tp, tp + fp) if known1 else None
    r = _ratio(tp, tp + fn) if known1 and known0 else None
    return OnlineEstimate(
        category=category,
        precision=Interval(p, *p_ci),
        recall=Interval(r, *r_ci),
        f1=_ratio(2 * tp, 2 * tp + fp + fn) if r is not None else None,
        support=tp + fn if r is not None else None,
        bounds_precision=p_bounds,
        bounds_recall=r_bounds,
        naive_precision=_ratio(c.naive_tp, c.naive_tp + c.naive_fp),
        naive_recall=_ratio(c.naive_tp, c.naive_tp + c.naive_fn),
        labelled=c.disputed_pred + c.disputed_unpred + c.audit_pred + c.audit_unpred,
        counts=c,
    )


def _time_filter(col: str, since: float | None, until: float | None) -> str:
    out = ""
    if since is not None:
        out += f" AND {col} >= fromUnixTimestamp64Milli({{since:Int64}})"
    if until is not None:
        out += f" AND {col} < fromUnixTimestamp64Milli({{until:Int64}})"
    return out


def fetch_counts(
    store: Store, model_version: str, since: float | None = None, until: float | None = None
) -> dict[str, CategoryCounts]:
    """Per-category strata counts for one model version, aggregated inside ClickHouse."""
    db = store.db
    params = {"mv": model_version, "cats": [c.name for c in CATEGORIES]}
    if since is not None:
        params["since"] = int(since * 1000)
    if until is not None:
        params["until"] = int(until * 1000)
    requests = int(
        store.scalar(
            f"SELECT sum(requests) FROM {db}.traffic_fleet_1m WHERE model_version = {{mv:String}}"
            + _time_filter("minute", since, until),
            params,
        )
        or 0
    )
    predicted = dict(
        store.rows(
            f"SELECT category, sum(predicted) FROM {db}.category_fleet_1m "
            f"WHERE model_version = {{mv:String}}"
            + _time_filter("minute", since, until)
            + " GROUP BY category",
            params,
        )
    )
    per_request = (
        f"SELECT request_id, any(predicted) AS pred, "
        f"countIf({_AUDIT}) > 0 AS audited, argMaxIf(categories, ts, {_AUDIT}) AS audit_cats, "
        f"countIf(action = 'unblock' AND decision = 'block') > 0 AS unblocked, "
        f"argMaxIf(categories, ts, action = 'unblock') AS unblock_cats, "
        f"arrayDistinct(arrayFlatten(groupArrayIf(categories, action IN ('report', 'block')))) "
        f"AS reported "
        f"FROM {db}.feedback WHERE joined = 1 AND model_version = {{mv:String}}"
        + _time_filter("verdict_ts", since, until)
        + " GROUP BY request_id"
    )
    # Per category: pc = predicted c; disputed = unblocked while blocked for c, or reported
    # as c; label = the audit's if any, else the dispute's.
    sql = f"""
        SELECT cat,
          countIf(disputed AND pc), countIf(disputed AND pc AND label),
          countIf(disputed AND NOT pc), countIf(disputed AND NOT pc AND label),
          countIf(audited AND NOT disputed AND pc), countIf(audited AND NOT disputed AND pc
                                                            AND has(audit_cats, cat)),
          countIf(audited AND NOT disputed AND NOT pc),
          countIf(audited AND NOT disputed AND NOT pc AND has(audit_cats, cat)),
          countIf(naive_labelled AND pc AND naive_label),
          countIf(naive_labelled AND pc AND NOT naive_label),
          countIf(naive_labelled AND NOT pc AND naive_label)
        FROM (
          SELECT cat, has(pred, cat) AS pc,
            (unblocked AND pc) OR has(reported, cat) AS disputed,
            if(audited, has(audit_cats, cat),
               has(reported, cat) OR (unblocked AND has(unblock_cats, cat))) AS label,
            audited OR unblocked OR notEmpty(reported) AS naive_labelled,
            if(audited, has(audit_cats, cat),
               if(unblocked, has(unblock_cats, cat), has(reported, cat))) AS naive_label,
            audited, audit_cats
          FROM ({per_request}) ARRAY JOIN {{cats:Array(String)}} AS cat
        )
        GROUP BY cat
    """
    labelled = {r[0]: tuple(int(x) for x in r[1:]) for r in store.rows(sql, params)}
    out = {}
    for c in CATEGORIES:
        lab = labelled.get(c.name, (0,) * 11)
        out[c.name] = CategoryCounts(requests, int(predicted.get(c.name, 0)), *lab)
    return out


def online_metrics(
    store: Store,
    model_version: str,
    categories: list[str] | None = None,
    since: float | None = None,
    until: float | None = None,
) -> dict[str, OnlineEstimate]:
    counts = fetch_counts(store, model_version, since, until)
    names = categories or [n for n, c in counts.items() if c.predicted or c.audit_unpred_true]
    return {n: estimate(n, counts[n]) for n in names}
