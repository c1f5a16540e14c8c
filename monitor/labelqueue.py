"""The annotation queue: which verdicts an analyst should label next, and with what weight.

A label is worth most where the estimates are least sure. So the queue is a stratified
sample of a window's verdicts, not a ranking:

* **strata** — each verdict's *focus* is the category whose score is nearest its
  decision threshold (or the one asked for with ``--category``), its *band* how near
  (``near`` within 0.10, ``mid`` within 0.25, else ``far``, which includes pages the
  model did not score at all), and its district. Districts too small to get a label of
  their own in a (focus, band) share one pooled stratum, so every verdict has a known,
  non-zero chance;
* **allocation** — the budget goes to (focus, band) strata in proportion to size times
  the band's uncertainty (Neyman allocation with p(1 - p) of 0.25 / 0.09 / 0.01), times
  3 for CIPA always-block categories and 3 for categories with a firing alert, and at
  least 2 labels per non-empty stratum (one label has no variance);
* **selection** — within a stratum, the verdicts with the smallest seeded hash of their
  request id: a simple random sample without replacement, reproducible from the seed and
  the same whichever machine runs it.

Every selected verdict is stored with its stratum's size and sample, so the estimates
built from its labels (:mod:`monitor.debias`) weigh it by 1 / inclusion probability and
are unbiased for the whole window, not for the oversampled mix.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass

from monitor.errors import FilterwatchError
from monitor.storage import Store
from monitor.taxonomy import CATEGORIES, SeverityClass, category

__all__ = ["QueueError", "QueueResult", "allocate", "build_queue", "split_tenants"]

BANDS = (("near", 0.10, 0.25), ("mid", 0.25, 0.09), ("far", math.inf, 0.01))
BOOST_CIPA = 3.0
BOOST_FIRING = 3.0
MIN_PER_STRATUM = 2
POOLED = "(pooled)"
NONE = "(none)"


class QueueError(FilterwatchError):
    """A queue that cannot be built (no verdicts in the window, a bad budget)."""


def band_variance(band: str) -> float:
    return next(v for name, _, v in BANDS if name == band)


def allocate(
    sizes: dict[tuple[str, str], int],
    budget: int,
    firing: set[str] = frozenset(),
) -> dict[tuple[str, str], int]:
    """Labels per (focus, band) stratum: Neyman-style with boosts, a floor, a cap (pure)."""
    cipa = {c.name for c in CATEGORIES if c.severity_class is SeverityClass.CIPA}
    keys = [k for k, n in sizes.items() if n > 0]
    floor = {k: min(MIN_PER_STRATUM, sizes[k]) for k in keys}
    if sum(floor.values()) > budget:
        raise QueueError(
            f"--budget {budget} is below the {sum(floor.values())} labels needed to give each "
            f"of the {len(keys)} strata {MIN_PER_STRATUM}; raise it or narrow with --category"
        )
    score = {}
    for k in keys:
        focus, band = k
        boost = (BOOST_CIPA if focus in cipa else 1.0) * (BOOST_FIRING if focus in firing else 1.0)
        score[k] = sizes[k] * math.sqrt(band_variance(band)) * boost
    alloc = dict(floor)
    left = budget - sum(alloc.values())
    # Water-filling: share what is left by score among strata not yet full.
    while left > 0:
        open_ = [k for k in keys if alloc[k] < sizes[k]]
        if not open_:
            break
        total = sum(score[k] for k in open_)
        want = {k: left * score[k] / total if total else left / len(open_) for k in open_}
        given = 0
        for k in open_:
            add = min(int(want[k]), sizes[k] - alloc[k])
            alloc[k] += add
            given += add
        if given == 0:  # remainders: one each to the largest wants
            for k in sorted(open_, key=lambda k: -want[k])[:left]:
                alloc[k] += 1
                given += 1
        left -= given
    return alloc


def split_tenants(tenants: dict[str, int], n: int) -> dict[str, int]:
    """A (focus, band) stratum's labels over its districts in proportion to size; the
    districts whose share rounds to zero form one pooled stratum (pure)."""
    total = sum(tenants.values())
    own = {t: n * size // total for t, size in tenants.items()}
    own = {t: k for t, k in own.items() if k >= 1}
    pooled_size = total - sum(tenants[t] for t in own)
    rest = n - sum(own.values())
    if pooled_size == 0:
        # Give the remainder to the largest districts, never beyond their size.
        for t in sorted(own, key=lambda t: -tenants[t]):
            if rest <= 0:
                break
            add = min(rest, tenants[t] - own[t])
            own[t] += add
            rest -= add
        return own
    if rest == 0:
        # The pool needs a label: take one from the largest district that can spare it.
        donor = max((t for t in own if own[t] >= 2), key=lambda t: tenants[t], default=None)
        if donor is None:  # every district has one label: the smallest joins the pool
            del own[min(own, key=lambda t: tenants[t])]
        else:
            own[donor] -= 1
        rest = 1
    own[POOLED] = min(rest, pooled_size)
    return own


@dataclass
class QueueResult:
    queue_id: str
    rows: list[dict]
    strata: int
    population: int
    tenants: int


def _frame_sql(db: str, focus_category: str | None, by_version: bool) -> str:
    """Per verdict: focus category, margin to its threshold, band (inside ClickHouse)."""
    if focus_category is not None:
        focus = "{focus:String}"
        margin = "abs(toFloat64(scores[{focus:String}]) - thr[{focus:String}])"
    else:
        focus = "if(empty(cats), '(none)', cats[indexOf(margins, arrayMin(margins))])"
        margin = "if(empty(cats), 1.0, arrayMin(margins))"
    version_filter = "AND model_version = {mv:String}" if by_version else ""
    return f"""
        SELECT request_id, ts, tenant_id, model_version, url, scores, categories,
               {focus} AS focus, {margin} AS margin,
               multiIf(margin <= 0.10, 'near', margin <= 0.25, 'mid', 'far') AS band,
               cityHash64(request_id, {{seed:UInt64}}) AS h
        FROM (
          SELECT *, mapFromArrays({{thr_k:Array(String)}}, {{thr_v:Array(Float64)}}) AS thr,
                 arrayFilter(c -> mapContains(thr, c), mapKeys(scores)) AS cats,
                 arrayMap(c -> abs(toFloat64(scores[c]) - thr[c]), cats) AS margins
          FROM {db}.verdicts
          WHERE ts >= fromUnixTimestamp64Milli({{a:Int64}})
            AND ts < fromUnixTimestamp64Milli({{b:Int64}})
            AND source = 'prod' {version_filter}
        )
    """


def build_queue(
    store: Store,
    since: float,
    until: float,
    budget: int,
    seed: int,
    focus_category: str | None = None,
    model_version: str | None = None,
    thresholds: dict[str, float] | None = None,
) -> QueueResult:
    """Select, store and return the queue (its rows are ready to write out)."""
    if budget < 1:
        raise QueueError("--budget must be at least 1")
    thr = {c.name: (thresholds or {}).get(c.name, c.threshold) for c in CATEGORIES}
    if focus_category is not None:
        category(focus_category)  # KeyError is mapped by the caller
    db = store.db
    frame = _frame_sql(db, focus_category, bool(model_version))
    p = {
        "a": int(since * 1000),
        "b": int(until * 1000),
        "seed": seed,
        "thr_k": list(thr),
        "thr_v": list(thr.values()),
        "focus": focus_category or "",
        "mv": model_version or "",
    }
    cells = store.rows(
        f"SELECT focus, band, tenant_id, count() FROM ({frame}) GROUP BY focus, band, tenant_id", p
    )
    if not cells:
        raise QueueError(
            "no production verdicts in the window (raw verdicts are kept for the raw "
            "retention); widen --since/--until or check --model-version"
        )
    sizes: dict[tuple[str, str], int] = {}
    by_tenant: dict[tuple[str, str], dict[str, int]] = {}
    for focus, band, tenant, n in cells:
        sizes[(focus, band)] = sizes.get((focus, band), 0) + int(n)
        by_tenant.setdefault((focus, band), {})[tenant] = int(n)
    firing = _firing_categories(store)
    alloc = allocate(sizes, min(budget, sum(sizes.values())), firing)
    limits: dict[str, int] = {}  # own strata: label count by "focus|band|tenant"
    pool_limit: dict[str, int] = {}  # pooled strata: label count by "focus|band"
    meta: dict[str, tuple[int, int]] = {}  # stratum key -> (size, labels)
    strata_rows = []
    for (focus, band), n in alloc.items():
        tenants = by_tenant[(focus, band)]
        split = split_tenants(tenants, n)
        pooled_size = sum(s for t, s in tenants.items() if t not in split)
        for t, k in split.items():
            size = pooled_size if t == POOLED else tenants[t]
            key = f"{focus}|{band}|{t}"
            strata_rows.append((key, focus, band, t, size, k))
            meta[key] = (size, k)
            if t == POOLED:
                pool_limit[f"{focus}|{band}"] = k
            else:
                limits[key] = k
    # Own strata: the k smallest hashes of the district; pooled: of the pool (a superset
    # comes back, ranked per district, and is cut to the pool's k here).
    sel = store.rows(
        f"""SELECT request_id, toFloat64(ts), tenant_id, model_version, url, scores, categories,
                  focus, band, h
           FROM (SELECT *, row_number() OVER (PARTITION BY focus, band, tenant_id ORDER BY h)
                           AS rn FROM ({frame}))
           WHERE rn <= if(has({{own_k:Array(String)}}, concat(focus, '|', band, '|', tenant_id)),
                          {{own_v:Array(UInt32)}}[indexOf({{own_k:Array(String)}},
                                                  concat(focus, '|', band, '|', tenant_id))],
                          {{pool_v:Array(UInt32)}}[indexOf({{pool_k:Array(String)}},
                                                   concat(focus, '|', band))])""",
        {
            **p,
            "own_k": list(limits),
            "own_v": list(limits.values()),
            "pool_k": list(pool_limit),
            "pool_v": list(pool_limit.values()),
        },
    )
    pooled: dict[str, list] = {}
    chosen = []
    for r in sel:
        own = f"{r[7]}|{r[8]}|{r[2]}"
        if own in limits:
            chosen.append((r, own, *meta[own]))
        else:
            pooled.setdefault(f"{r[7]}|{r[8]}|{POOLED}", []).append(r)
    for key, rs in pooled.items():
        size, k = meta[key]
        for r in sorted(rs, key=lambda r: r[9])[:k]:
            chosen.append((r, key, size, k))
    queue_id = f"q-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"
    now = time.time()
    rows = []
    for r, key, size, k in sorted(chosen, key=lambda x: (x[1], x[0][9])):
        rid, ts, tenant, mv, url, scores, cats, focus, band, _h = r
        rows.append(
            {
                "queue_id": queue_id,
                "created_at": now,
                "seed": seed,
                "since": since,
                "until": until,
                "request_id": rid,
                "ts": ts,
                "tenant_id": tenant,
                "model_version": mv,
                "url": url,
                "scores": dict(scores),
                "predicted": list(cats),
                "stratum": key,
                "focus": focus,
                "band": band,
                "stratum_size": size,
                "stratum_sample": k,
                "inclusion": k / size,
            }
        )
    _store(store, queue_id, rows, strata_rows)
    return QueueResult(
        queue_id, rows, len(strata_rows), sum(sizes.values()), len({r["tenant_id"] for r in rows})
    )


def _firing_categories(store: Store) -> set[str]:
    return {
        r[0]
        for r in store.rows(
            f"SELECT category FROM {store.db}.alerts GROUP BY alert_id, category "
            "HAVING argMax(status, version) = 'firing'"
        )
    }


def _store(store: Store, queue_id: str, rows: list[dict], strata: list[tuple]) -> None:
    from datetime import UTC, datetime

    def dt(t: float) -> datetime:
        return datetime.fromtimestamp(t, UTC)

    if rows:
        names = list(rows[0])
        cols = [
            [dt(r[n]) if n in ("created_at", "since", "until", "ts") else r[n] for r in rows]
            for n in names
        ]
        store.insert("label_queue", cols, names, f"label_queue:{queue_id}")
    names = ["queue_id", "stratum", "focus", "band", "tenant_id", "stratum_size", "stratum_sample"]
    cols = [[queue_id] * len(strata), *[list(x) for x in zip(*strata, strict=True)]]
    store.insert("label_strata", cols, names, f"label_strata:{queue_id}")


def assign_strata(
    scores, names: list[str], thresholds: dict[str, float], focus_category: str | None = None
):
    """(focus, band) of each verdict from a (verdicts x categories) score array: the
    in-memory twin of the SQL in :func:`build_queue` (tests and benchmarks use it)."""
    import numpy as np

    thr = np.array([thresholds[c] for c in names])
    scored = scores >= 0.01  # the event contract: absent means below 0.01
    if focus_category is not None:
        j = names.index(focus_category)
        margin = np.abs(scores[:, j] - thr[j])
        focus = np.full(len(scores), focus_category, dtype=object)
    else:
        m = np.where(scored, np.abs(scores - thr), np.inf)
        j = m.argmin(axis=1)
        margin = m[np.arange(len(scores)), j]
        focus = np.where(np.isfinite(margin), np.array(names, dtype=object)[j], NONE)
        margin = np.where(np.isfinite(margin), margin, 1.0)
    band = np.where(margin <= 0.10, "near", np.where(margin <= 0.25, "mid", "far"))
    return focus, band


def select_in_memory(focus, band, tenants, budget: int, seed: int, firing=frozenset()):
    """The queue's design on arrays: (indices, stratum key per index, {stratum: (size,
    parent)}). Same allocation and district split as :func:`build_queue`; the random
    order comes from numpy instead of ClickHouse's hash."""
    import numpy as np

    rng = np.random.default_rng(seed)
    keys = [f"{f}|{b}" for f, b in zip(focus, band, strict=True)]
    members: dict[str, dict[str, list[int]]] = {}
    for i, (k, t) in enumerate(zip(keys, tenants, strict=True)):
        members.setdefault(k, {}).setdefault(str(t), []).append(i)
    sizes = {tuple(k.split("|")): sum(len(v) for v in ts.values()) for k, ts in members.items()}
    alloc = allocate(sizes, min(budget, len(keys)), set(firing))
    chosen, key_of, strata = [], {}, {}
    for (f, b), n in alloc.items():
        parent = f"{f}|{b}"
        ts = members[parent]
        split = split_tenants({t: len(v) for t, v in ts.items()}, n)
        pool = [i for t, v in ts.items() if t not in split for i in v]
        for t, k in split.items():
            units = pool if t == POOLED else ts[t]
            key = f"{parent}|{t}"
            strata[key] = (len(units), parent)
            for i in rng.permutation(np.asarray(units))[:k]:
                chosen.append(int(i))
                key_of[int(i)] = key
    return chosen, key_of, strata
