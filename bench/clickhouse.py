"""ClickHouse: insert rate, bytes stored per event, and analyst-query latency at scale.

1. Insert: simulated verdicts go through ``Store.insert_verdicts`` (raw table plus its
   three materialized rollups, idempotent-insert settings on) in 50,000-row batches.
   Baseline in the same run, batch by batch: the same columns into a plain MergeTree
   copy of the table with no views (the engine's own insert limit here).
2. Bytes per event: compressed bytes on disk of the raw table and each rollup, per
   verdict inserted; the raw rows that are neither blocked, CIPA-scored nor sampled
   expire after ``raw_full_retention_hours``, so the long-term figure is the kept share.
3. Queries: rollups for ``--days`` days at the seed's volume (12,700 requests/s, 1,000
   tenants, 3 model versions, 20 categories) are generated directly in ClickHouse, then
   every documented example query, analyst view and Grafana panel query runs
   ``--repeat`` times; the median and worst latency of each are reported.

    python bench/clickhouse.py [--quick] [--json] [--url http://host:8123]

Embedded chDB by default (an HTTP server with ``--url``). Writes
bench/results/clickhouse.json (``clickhouse-quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dashboards import example_queries, expand_grafana_macros, grafana_queries  # noqa: E402
from monitor.config import StoreConfig  # noqa: E402
from monitor.events import Verdict  # noqa: E402
from monitor.simulator import SimConfig, Simulator  # noqa: E402
from monitor.storage import VERDICT_COLUMNS, Store  # noqa: E402
from monitor.taxonomy import CATEGORY_NAMES  # noqa: E402
from monitor.validation import Validator  # noqa: E402

VIEWS = ("v_block_rate_hourly", "v_override_rate_daily", "v_drift_timeline",
         "v_alert_history", "v_score_histogram_hourly")  # fmt: skip
ROLLUPS = ("traffic_1m", "category_1m", "traffic_fleet_1m", "category_fleet_1m",
           "score_hist_1m", "score_cal_5m")  # fmt: skip
SEED_RATE = 12_700  # requests/s: 1.1 billion a day


def simulated_verdicts(n: int) -> list[Verdict]:
    duration = n / SEED_RATE * 1.05 + 2
    sim = Simulator(SimConfig(scenario="none", rate=SEED_RATE, duration_s=duration,
                              onset_s=duration / 2, seed=3))  # fmt: skip
    v = Validator()
    out: list[Verdict] = []
    for chunk in sim.chunks():
        out += [e for e in v.validate_many(chunk) if isinstance(e, Verdict)]
        if len(out) >= n:
            break
    return out[:n]


def table_bytes(store: Store, table: str) -> int:
    return int(store.scalar(
        "SELECT sum(data_compressed_bytes) FROM system.parts "
        "WHERE database = {db:String} AND table = {t:String} AND active",
        {"db": store.db, "t": table},
    ) or 0)  # fmt: skip


def bench_insert(store: Store, n: int, batch: int) -> dict:
    verdicts = simulated_verdicts(n)
    db = store.db
    store.command(f"CREATE TABLE {db}.verdicts_plain AS {db}.verdicts")
    t_full = t_plain = 0.0
    for i in range(0, len(verdicts), batch):
        part = verdicts[i : i + batch]
        offsets = list(range(i, i + len(part)))
        t = time.perf_counter()
        store.insert_verdicts(part, f"bench-{i}", "bench", offsets)
        t_full += time.perf_counter() - t
        t = time.perf_counter()
        cols = store.verdict_columns(part, "bench", offsets)
        store.insert("verdicts_plain", cols, VERDICT_COLUMNS, f"plain-{i}")
        t_plain += time.perf_counter() - t
    store.command(f"OPTIMIZE TABLE {db}.verdicts FINAL")
    for r in ROLLUPS:
        store.command(f"OPTIMIZE TABLE {db}.{r} FINAL")
    n = len(verdicts)
    kept = int(store.scalar(f"SELECT countIf(keep = 1) FROM {db}.verdicts"))
    raw = table_bytes(store, "verdicts")
    rollup = {r: table_bytes(store, r) for r in ROLLUPS}
    return {
        "events": n,
        "events_per_s": round(n / t_full),
        "baseline_events_per_s": round(n / t_plain),
        "ratio": round(t_plain / t_full, 2),
        "raw_bytes_per_event": round(raw / n, 1),
        "kept_share": round(kept / n, 4),
        "raw_bytes_per_event_long_term": round(raw / n * kept / n, 1),
        "rollup_bytes_per_event": {r: round(b / n, 2) for r, b in rollup.items()},
        "note": "rollup bytes per event shrink as volume per minute grows (one row per "
        "minute x key); the generated week below gives the figure at the seed's volume",
    }


def generate_week(store: Store, days: int, tenants: int, tenant_days: int) -> dict:
    """Rollup rows at the seed's request rate, written by ClickHouse: the fleet rollups
    (what dashboards and example queries read) for ``days`` days; the per-tenant ones
    (district drill-downs, ~10^7-10^8 rows a day at 1,000 districts) for the last
    ``tenant_days`` days."""
    db = store.db
    minutes = days * 1440
    end = int(time.time()) // 60 * 60
    start = end - tenant_days * 1440 * 60
    fleet_start = end - minutes * 60
    cats = sorted(CATEGORY_NAMES)
    mvs = ["2026.11.1", "2026.11.2", "2026.12.0"]
    per_minute = SEED_RATE * 60
    # Zipf tenant shares (as the simulator draws them); a tenant's requests in a minute
    # spread over versions 45/45/10. A (tenant, version, category) row exists in a
    # minute when that cell saw a scored page: dense for big districts, sparse for small.
    zipf = f"(1 / pow(t + 1, 1.1)) / {sum(1 / (i + 1) ** 1.1 for i in range(tenants))}"
    t0 = time.perf_counter()
    store.command(f"""
        INSERT INTO {db}.traffic_1m
        SELECT toDateTime({start} + m * 60) AS minute,
               concat('district-', leftPad(toString(t), 4, '0')) AS tenant_id,
               arrayElement({mvs}, v + 1) AS model_version, 'prod' AS source,
               toUInt64(greatest(1, {per_minute} * {zipf} * [0.45, 0.45, 0.1][v + 1]))
                   AS requests,
               toUInt64(requests * 0.12) AS blocked, requests * 80.0 AS latency_sum,
               arrayReduce('quantilesState(0.5, 0.95, 0.99)',
                           [toFloat32(60 + m % 7), toFloat32(90), toFloat32(160)]) AS latency_q
        FROM (SELECT intDiv(number, {tenants * 3}) AS m,
                     intDiv(number % {tenants * 3}, 3) AS t, number % 3 AS v
              FROM numbers({tenant_days * 1440 * tenants * 3}))
    """)  # fmt: skip
    store.command(f"""
        INSERT INTO {db}.category_1m
        SELECT toDateTime({start} + m * 60) AS minute,
               concat('district-', leftPad(toString(t), 4, '0')) AS tenant_id,
               arrayElement({mvs}, v + 1) AS model_version,
               arrayElement({cats}, c + 1) AS category,
               toUInt64(greatest(1, {per_minute} * {zipf} * 0.02)) AS scored,
               toUInt64(scored * 0.4) AS predicted, toUInt64(scored * 0.3) AS blocked,
               scored * 0.5 AS score_sum,
               arrayReduce('quantilesState(0.1, 0.5, 0.9)',
                           [toFloat32(0.1), toFloat32(0.5), toFloat32(0.9)]) AS score_q
        FROM (SELECT intDiv(number, {tenants * 3 * len(cats)}) AS m,
                     intDiv(number % {tenants * 3 * len(cats)}, {3 * len(cats)}) AS t,
                     intDiv(number % {3 * len(cats)}, {len(cats)}) AS v,
                     number % {len(cats)} AS c
              FROM numbers({tenant_days * 1440 * tenants * 3 * len(cats)}))
        WHERE cityHash64(m, t, v, c) % 1000000 < 1000000 * least(1.0,
              {per_minute} * {zipf} * [0.45, 0.45, 0.1][v + 1] * 0.025)
    """)  # fmt: skip
    store.command(f"""
        INSERT INTO {db}.score_hist_1m
        SELECT toDateTime({fleet_start} + intDiv(number, {3 * len(cats) * 20}) * 60),
               arrayElement({mvs}, intDiv(number % {3 * len(cats) * 20}, {len(cats) * 20}) + 1),
               arrayElement({cats}, intDiv(number % {len(cats) * 20}, 20) + 1),
               toUInt8(number % 20), toUInt64(100 + number % 900)
        FROM numbers({minutes * 3 * len(cats) * 20})
    """)  # fmt: skip
    store.command(f"""
        INSERT INTO {db}.feedback_1m
        SELECT toDateTime({fleet_start} + intDiv(number, 400) * 60),
               concat('district-', leftPad(toString(number % {tenants}), 4, '0')),
               arrayElement({mvs}, number % 3 + 1), arrayElement({cats}, number % 20 + 1),
               arrayElement(['unblock', 'report', 'confirm', 'relabel'], number % 4 + 1), 1
        FROM numbers({minutes * 400})
    """)  # fmt: skip
    store.command(f"""
        INSERT INTO {db}.feedback (feedback_id, request_id, ts, tenant_id, actor, action,
            categories, joined, model_version, domain, url, decision, predicted, attributed)
        SELECT concat('fb-', toString(number)), concat('r-', toString(number)),
               toDateTime64({fleet_start} + number * {minutes * 60} / {minutes * 20}, 3),
               concat('district-', leftPad(toString(number % {tenants}), 4, '0')),
               'teacher', 'unblock', ['health'], 1, '2026.12.0',
               concat('site', toString(number % 500), '.org'),
               concat('https://site', toString(number % 500), '.org/page'),
               'block', ['adult'], ['adult']
        FROM numbers({minutes * 20})
    """)  # fmt: skip
    store.command(f"""
        INSERT INTO {db}.traffic_fleet_1m
        SELECT toDateTime({fleet_start} + intDiv(number, 3) * 60),
               arrayElement({mvs}, number % 3 + 1), 'prod',
               toUInt64({per_minute} * [0.45, 0.45, 0.1][number % 3 + 1]) AS requests,
               toUInt64(requests * 0.12), requests * 80.0,
               arrayReduce('quantilesState(0.5, 0.95, 0.99)',
                           arrayMap(i -> toFloat32(40 + (i * 7919 + number) % 200), range(2000)))
        FROM numbers({minutes * 3})
    """)  # fmt: skip
    store.command(f"""
        INSERT INTO {db}.category_fleet_1m
        SELECT toDateTime({fleet_start} + intDiv(number, {3 * len(cats)}) * 60),
               arrayElement({mvs}, intDiv(number % {3 * len(cats)}, {len(cats)}) + 1),
               arrayElement({cats}, number % {len(cats)} + 1),
               toUInt64({per_minute} * 0.025) AS scored, toUInt64(scored * 0.4),
               toUInt64(scored * 0.3), scored * 0.5,
               arrayReduce('quantilesState(0.1, 0.5, 0.9)',
                           arrayMap(i -> toFloat32((i * 7919 + number) % 1000 / 1000),
                                    range(2000)))
        FROM numbers({minutes * 3 * len(cats)})
    """)  # fmt: skip
    elapsed = time.perf_counter() - t0
    rows = {r: int(store.scalar(f"SELECT count() FROM {db}.{r}"))
            for r in (*ROLLUPS, "feedback_1m", "feedback")}  # fmt: skip
    requests = int(store.scalar(f"SELECT sum(requests) FROM {db}.traffic_fleet_1m"))
    return {
        "days": days,
        "tenant_days": tenant_days,
        "tenants": tenants,
        "requests_represented": requests,
        "requests_per_day": round(requests / days),
        "rows": rows,
        "bytes": {r: table_bytes(store, r) for r in rows},
        "generate_s": round(elapsed, 1),
        "start": fleet_start,
        "end": end,
    }


def time_queries(store: Store, week: dict, repeat: int) -> dict:
    queries = {f"example:{k}": v.replace("filterwatch.", f"{store.db}.")
               for k, v in example_queries().items()}  # fmt: skip
    queries.update({f"view:{v}": f"SELECT * FROM {store.db}.{v} LIMIT 1000" for v in VIEWS})
    # one district's drill-down on the per-tenant rollups (a tenant filter is expected)
    queries["tenant:block_rate_by_category_one_day"] = (
        f"SELECT category, sum(blocked) AS blocked, sum(predicted) AS predicted "
        f"FROM {store.db}.category_1m WHERE tenant_id = 'district-0007' "
        f"AND minute > toDateTime({week['end']}) - INTERVAL 1 DAY GROUP BY category"
    )
    for uid, title, sql in grafana_queries():
        queries[f"grafana:{uid}:{title}"] = expand_grafana_macros(
            sql, store.db, week["end"] - 6 * 3600, week["end"]
        )
    out = {}
    for name, sql in queries.items():
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            store.rows(sql)
            times.append((time.perf_counter() - t) * 1000)
        out[name] = {"median_ms": round(statistics.median(times), 1),
                     "max_ms": round(max(times), 1)}  # fmt: skip
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100k inserts, 1 day, 100 tenants")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--tenants", type=int, default=1000)
    ap.add_argument("--tenant-days", type=int, default=1, help="days of per-tenant rollups")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--url", help="an HTTP ClickHouse server instead of the embedded chDB")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.events, args.days, args.tenants, args.repeat = 100_000, 1, 100, 3
    root = tempfile.mkdtemp(prefix="fw-bench-ch-")
    base = StoreConfig(path=root, url=args.url, database="fw_bench_insert")
    store = Store.open(base)
    try:
        store.command(f"DROP DATABASE IF EXISTS {store.db}")
        store.init_schema()
        insert = bench_insert(store, args.events, 50_000)
        week_store = store.with_database("fw_bench_week")
        week_store.command(f"DROP DATABASE IF EXISTS {week_store.db}")
        week_store.init_schema()
        week = generate_week(week_store, args.days, args.tenants, args.tenant_days)
        queries = time_queries(week_store, week, args.repeat)
    finally:
        store.close()
        shutil.rmtree(root, ignore_errors=True)
    worst = max(queries.items(), key=lambda kv: kv[1]["median_ms"])
    result = {
        "backend": "http" if args.url else "chdb",
        "insert": insert,
        "events_per_s": insert["events_per_s"],
        "baseline_events_per_s": insert["baseline_events_per_s"],
        "ratio": insert["ratio"],
        "week": week,
        "queries": queries,
        "slowest_query": {"name": worst[0], **worst[1]},
        "queries_over_200ms": sorted(k for k, v in queries.items() if v["median_ms"] > 200),
    }
    name = "clickhouse-quick.json" if args.quick else "clickhouse.json"
    out = ROOT / "bench" / "results" / name
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        i = insert
        print(f"insert: {i['events_per_s']:,} verdicts/s with rollups; plain table "
              f"{i['baseline_events_per_s']:,}/s (ratio {i['ratio']})")  # fmt: skip
        print(f"bytes/event: raw {i['raw_bytes_per_event']} (kept share {i['kept_share']}: "
              f"{i['raw_bytes_per_event_long_term']} long-term), rollups "
              f"{i['rollup_bytes_per_event']}")  # fmt: skip
        print(f"week: {week['days']} days, {week['requests_per_day']:,} requests/day, rows "
              f"{week['rows']}, generated in {week['generate_s']} s")  # fmt: skip
        for k, v in sorted(queries.items(), key=lambda kv: -kv[1]["median_ms"]):
            print(f"  {v['median_ms']:>8.1f} ms (max {v['max_ms']:.1f})  {k}")
        print(f"queries over 200 ms: {len(result['queries_over_200ms'])}; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
