-- filterwatch ClickHouse schema. Idempotent: every statement is IF NOT EXISTS.
-- Placeholders in braces are filled from the store config; identifiers only, never data.
-- The same DDL runs on chDB (embedded) and on a ClickHouse server.

CREATE DATABASE IF NOT EXISTS {db};

-- Raw verdicts, URLs already scrubbed. Every verdict lands here (rollups are built from
-- it), but rows with keep = 0 (allowed, not scored in a CIPA category, not in the
-- sample) are deleted after the short retention; kept rows live for the long one.
CREATE TABLE IF NOT EXISTS {db}.verdicts
(
    request_id    String,
    ts            DateTime64(3, 'UTC'),
    tenant_id     LowCardinality(String),
    url           String,
    domain        LowCardinality(String),
    model_version LowCardinality(String),
    scores        Map(LowCardinality(String), Float32),
    categories    Array(LowCardinality(String)),
    decision      Enum8('allow' = 0, 'block' = 1),
    policy        LowCardinality(String),
    latency_ms    Float32,
    source        LowCardinality(String),
    keep          UInt8,
    src           LowCardinality(String),  -- where it came from: "topic:partition" or a file
    src_offset    UInt64,                  -- its offset (line) there: the resume point
    ingested_at   DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (toStartOfHour(ts), model_version, tenant_id, ts, request_id)
TTL ingested_at + INTERVAL {raw_full_hours} HOUR DELETE WHERE keep = 0,
    ingested_at + INTERVAL {raw_days} DAY DELETE
SETTINGS non_replicated_deduplication_window = 10000;

-- Late joins look verdicts up by request id (analyst audits of pages the stream's join
-- cache did not keep); the bloom filter skips granules without the id.
ALTER TABLE {db}.verdicts ADD INDEX IF NOT EXISTS request_id_bf request_id TYPE bloom_filter(0.01) GRANULARITY 4;

-- Per-minute traffic rollup: requests, blocks and latency quantile states.
CREATE TABLE IF NOT EXISTS {db}.traffic_1m
(
    minute        DateTime('UTC'),
    tenant_id     LowCardinality(String),
    model_version LowCardinality(String),
    source        LowCardinality(String),
    requests      SimpleAggregateFunction(sum, UInt64),
    blocked       SimpleAggregateFunction(sum, UInt64),
    latency_sum   SimpleAggregateFunction(sum, Float64),
    latency_q     AggregateFunction(quantiles(0.5, 0.95, 0.99), Float32)
)
ENGINE = AggregatingMergeTree
ORDER BY (minute, model_version, tenant_id, source)
TTL minute + INTERVAL {rollup_days} DAY
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.traffic_1m_mv TO {db}.traffic_1m AS
SELECT
    toStartOfMinute(ts) AS minute,
    tenant_id,
    model_version,
    source,
    count() AS requests,
    countIf(decision = 'block') AS blocked,
    sum(toFloat64(latency_ms)) AS latency_sum,
    quantilesState(0.5, 0.95, 0.99)(latency_ms) AS latency_q
FROM {db}.verdicts
GROUP BY minute, tenant_id, model_version, source;

-- Per-minute category rollup over every category the model scored (sparse scores).
CREATE TABLE IF NOT EXISTS {db}.category_1m
(
    minute        DateTime('UTC'),
    tenant_id     LowCardinality(String),
    model_version LowCardinality(String),
    category      LowCardinality(String),
    scored        SimpleAggregateFunction(sum, UInt64),
    predicted     SimpleAggregateFunction(sum, UInt64),
    blocked       SimpleAggregateFunction(sum, UInt64),
    score_sum     SimpleAggregateFunction(sum, Float64),
    score_q       AggregateFunction(quantiles(0.1, 0.5, 0.9), Float32)
)
ENGINE = AggregatingMergeTree
ORDER BY (minute, category, model_version, tenant_id)
TTL minute + INTERVAL {rollup_days} DAY
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.category_1m_mv TO {db}.category_1m AS
SELECT
    toStartOfMinute(ts) AS minute,
    tenant_id,
    model_version,
    cat AS category,
    count() AS scored,
    countIf(has(categories, cat)) AS predicted,
    countIf(has(categories, cat) AND decision = 'block') AS blocked,
    sum(toFloat64(scores[cat])) AS score_sum,
    quantilesState(0.1, 0.5, 0.9)(scores[cat]) AS score_q
FROM {db}.verdicts
ARRAY JOIN mapKeys(scores) AS cat
GROUP BY minute, tenant_id, model_version, category;

-- Fleet-level twins of traffic_1m and category_1m: the same columns without the tenant
-- dimension, so a week of them is ~10^5 rows instead of ~10^8 at 1,000 districts. The
-- dashboards, views, reports and example queries read these; the per-tenant tables are
-- for drilling into one district (bench/clickhouse.py has the latencies of both).
CREATE TABLE IF NOT EXISTS {db}.traffic_fleet_1m
(
    minute        DateTime('UTC'),
    model_version LowCardinality(String),
    source        LowCardinality(String),
    requests      SimpleAggregateFunction(sum, UInt64),
    blocked       SimpleAggregateFunction(sum, UInt64),
    latency_sum   SimpleAggregateFunction(sum, Float64),
    latency_q     AggregateFunction(quantiles(0.5, 0.95, 0.99), Float32)
)
ENGINE = AggregatingMergeTree
ORDER BY (minute, model_version, source)
TTL minute + INTERVAL {rollup_days} DAY
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.traffic_fleet_1m_mv TO {db}.traffic_fleet_1m AS
SELECT
    toStartOfMinute(ts) AS minute,
    model_version,
    source,
    count() AS requests,
    countIf(decision = 'block') AS blocked,
    sum(toFloat64(latency_ms)) AS latency_sum,
    quantilesState(0.5, 0.95, 0.99)(latency_ms) AS latency_q
FROM {db}.verdicts
GROUP BY minute, model_version, source;

CREATE TABLE IF NOT EXISTS {db}.category_fleet_1m
(
    minute        DateTime('UTC'),
    model_version LowCardinality(String),
    category      LowCardinality(String),
    scored        SimpleAggregateFunction(sum, UInt64),
    predicted     SimpleAggregateFunction(sum, UInt64),
    blocked       SimpleAggregateFunction(sum, UInt64),
    score_sum     SimpleAggregateFunction(sum, Float64),
    score_q       AggregateFunction(quantiles(0.1, 0.5, 0.9), Float32)
)
ENGINE = AggregatingMergeTree
ORDER BY (minute, category, model_version)
TTL minute + INTERVAL {rollup_days} DAY
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.category_fleet_1m_mv TO {db}.category_fleet_1m AS
SELECT
    toStartOfMinute(ts) AS minute,
    model_version,
    cat AS category,
    count() AS scored,
    countIf(has(categories, cat)) AS predicted,
    countIf(has(categories, cat) AND decision = 'block') AS blocked,
    sum(toFloat64(scores[cat])) AS score_sum,
    quantilesState(0.1, 0.5, 0.9)(scores[cat]) AS score_q
FROM {db}.verdicts
ARRAY JOIN mapKeys(scores) AS cat
GROUP BY minute, model_version, category;

-- Per-minute score histogram per category and model version (20 bins over [0, 1]): what the
-- weekly report's score-distribution plots and any distribution query read, so they
-- never scan raw verdicts.
CREATE TABLE IF NOT EXISTS {db}.score_hist_1m
(
    minute        DateTime('UTC'),
    model_version LowCardinality(String),
    category      LowCardinality(String),
    bin           UInt8,
    pages         SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (minute, category, model_version, bin)
TTL minute + INTERVAL {rollup_days} DAY
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.score_hist_1m_mv TO {db}.score_hist_1m AS
SELECT
    toStartOfMinute(ts) AS minute,
    model_version,
    cat AS category,
    toUInt8(least(19, floor(scores[cat] * 20))) AS bin,
    count() AS pages
FROM {db}.verdicts
ARRAY JOIN mapKeys(scores) AS cat
GROUP BY minute, model_version, category, bin;

-- Label-free estimation (monitor/label_free.py): verdicts per 5 minutes, category, model
-- version, 0.01-wide score bin and whether the category was predicted. A calibrated
-- probability per bin turns this into expected TP/FP/FN without labels; 100 bins so that
-- thresholds on a 0.01 grid fall on bin edges. Unscored pages are not here (traffic has them).
CREATE TABLE IF NOT EXISTS {db}.score_cal_5m
(
    period        DateTime('UTC'),
    model_version LowCardinality(String),
    category      LowCardinality(String),
    predicted     UInt8,
    bin           UInt8,
    pages         SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (period, category, model_version, predicted, bin)
TTL period + INTERVAL {rollup_days} DAY
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.score_cal_5m_mv TO {db}.score_cal_5m AS
SELECT
    toStartOfFiveMinutes(ts) AS period,
    model_version,
    cat AS category,
    toUInt8(has(categories, cat)) AS predicted,
    toUInt8(least(99, greatest(0, floor(toFloat64(scores[cat]) * 100)))) AS bin,
    count() AS pages
FROM {db}.verdicts
ARRAY JOIN mapKeys(scores) AS cat
GROUP BY period, model_version, category, predicted, bin;

-- Feedback joined to its verdict: the labeled outcomes. All of it is kept.
CREATE TABLE IF NOT EXISTS {db}.feedback
(
    feedback_id   String,
    request_id    String,
    ts            DateTime64(3, 'UTC'),
    tenant_id     LowCardinality(String),
    actor         LowCardinality(String),
    action        LowCardinality(String),
    categories    Array(LowCardinality(String)),
    attributed    Array(LowCardinality(String)),
    joined        UInt8,
    verdict_ts    Nullable(DateTime64(3, 'UTC')),
    model_version LowCardinality(String),
    domain        LowCardinality(String),
    url           String,
    decision      LowCardinality(String),
    predicted     Array(LowCardinality(String)),
    src           LowCardinality(String),
    src_offset    UInt64,
    ingested_at   DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (toStartOfHour(ts), tenant_id, ts, feedback_id)
TTL ingested_at + INTERVAL {rollup_days} DAY DELETE
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {db}.feedback_1m
(
    minute        DateTime('UTC'),
    tenant_id     LowCardinality(String),
    model_version LowCardinality(String),
    category      LowCardinality(String),
    action        LowCardinality(String),
    events        SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (minute, category, action, model_version, tenant_id)
TTL minute + INTERVAL {rollup_days} DAY
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.feedback_1m_mv TO {db}.feedback_1m AS
SELECT
    toStartOfMinute(ts) AS minute,
    tenant_id,
    model_version,
    cat AS category,
    action,
    count() AS events
FROM {db}.feedback
ARRAY JOIN attributed AS cat
GROUP BY minute, tenant_id, model_version, category, action;

-- Detections from the detector bank (one row per detection).
CREATE TABLE IF NOT EXISTS {db}.drift_events
(
    event_id      String,
    detected_at   DateTime64(3, 'UTC'),
    onset         DateTime64(3, 'UTC'),
    signal        LowCardinality(String),
    category      LowCardinality(String),
    model_version LowCardinality(String),
    change        LowCardinality(String),
    baseline      Float64,
    current       Float64,
    ci_low        Float64,
    ci_high       Float64,
    successes     Float64,
    trials        Float64,
    trials_of     LowCardinality(String),
    statistic     Float64,
    threshold     Float64,
    effect        Float64,
    detector      LowCardinality(String),
    ingested_at   DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (detected_at, signal, category, model_version, event_id);

-- Tenant segments and signal detail came later: stores created before gain the columns.
ALTER TABLE {db}.drift_events ADD COLUMN IF NOT EXISTS tenant_id LowCardinality(String) DEFAULT '*';
ALTER TABLE {db}.drift_events ADD COLUMN IF NOT EXISTS detail String DEFAULT '';

-- Alerts as sent (or not) to on-call, with their evidence. No notification URL is stored.
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    alert_id        String,
    fingerprint     String,
    created_at      DateTime64(3, 'UTC'),
    detected_at     DateTime64(3, 'UTC'),
    onset           DateTime64(3, 'UTC'),
    category        LowCardinality(String),
    direction       LowCardinality(String),
    severity        LowCardinality(String),
    segment         String,
    signals         Array(LowCardinality(String)),
    rate_now        Float64,
    rate_baseline   Float64,
    ci_low          Float64,
    ci_high         Float64,
    trials_of       LowCardinality(String),
    title           String,
    body_text       String,
    body_markdown   String,
    context_json    String,
    sql_query       String,
    runbook         String,
    delivery_status LowCardinality(String),
    delivery_detail String,
    ingested_at     DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (alert_id);

-- Alert lifecycle columns: one row per state change of an alert, newest version wins
-- (read with argMax(..., version) or LIMIT 1 BY alert_id ORDER BY version DESC).
ALTER TABLE {db}.alerts ADD COLUMN IF NOT EXISTS status LowCardinality(String) DEFAULT 'firing';
ALTER TABLE {db}.alerts ADD COLUMN IF NOT EXISTS resolved_at Nullable(DateTime64(3, 'UTC'));
ALTER TABLE {db}.alerts ADD COLUMN IF NOT EXISTS incident_id String DEFAULT '';
ALTER TABLE {db}.alerts ADD COLUMN IF NOT EXISTS group_key String DEFAULT '';
ALTER TABLE {db}.alerts ADD COLUMN IF NOT EXISTS model_version LowCardinality(String) DEFAULT '*';
ALTER TABLE {db}.alerts ADD COLUMN IF NOT EXISTS affected_segments Array(String) DEFAULT [];
ALTER TABLE {db}.alerts ADD COLUMN IF NOT EXISTS silenced_by String DEFAULT '';
ALTER TABLE {db}.alerts ADD COLUMN IF NOT EXISTS version UInt64 DEFAULT 0;

-- Silences: label matchers with an expiry (wall clock). Newest version of a silence wins.
CREATE TABLE IF NOT EXISTS {db}.silences
(
    silence_id  String,
    matchers    Map(String, String),
    starts_at   DateTime64(3, 'UTC'),
    ends_at     DateTime64(3, 'UTC'),
    reason      String,
    created_by  String,
    expired     UInt8,
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (silence_id);

-- The outbox. A notification is a grouped message (firing, resolved or repeat) of one
-- route; it is written here before any delivery is attempted.
CREATE TABLE IF NOT EXISTS {db}.notifications
(
    notification_id String,
    group_key       String,
    kind            LowCardinality(String),
    severity        LowCardinality(String),
    route_tags      Array(String),
    alert_ids       Array(String),
    silenced_ids    Array(String),
    created_at      DateTime64(3, 'UTC'),
    title           String,
    body_markdown   String,
    body_text       String
)
ENGINE = ReplacingMergeTree
ORDER BY (notification_id);

-- One row per (notification, target) and state change: pending -> sent, or retry with
-- backoff until max_attempts, then failed. Targets are labels (t0:json), never URLs.
CREATE TABLE IF NOT EXISTS {db}.deliveries
(
    notification_id String,
    target          String,
    status          LowCardinality(String),
    attempts        UInt32,
    last_error      String,
    next_attempt_at DateTime64(3, 'UTC'),
    sent_at         Nullable(DateTime64(3, 'UTC')),
    version         UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (notification_id, target);

-- Events refused by validation, with the reason. The excerpt is scrubbed and truncated.
CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    received_at   DateTime64(3, 'UTC'),
    origin        String,
    position      UInt64,
    reason        LowCardinality(String),
    field         String,
    detail        String,
    excerpt       String,
    ingested_at   DateTime DEFAULT now()
)
ENGINE = MergeTree
ORDER BY (received_at, origin, position)
TTL ingested_at + INTERVAL {raw_days} DAY DELETE
SETTINGS non_replicated_deduplication_window = 10000;

-- Reference profiles: what "normal" looks like per segment (block and override base
-- rates, score histograms, category mix, latency), per model version. Built from a
-- warm-up window or an offline-evaluation replay; a starting bank loads the newest
-- profile instead of learning from whatever traffic it happens to see first.
CREATE TABLE IF NOT EXISTS {db}.reference_profiles
(
    profile       LowCardinality(String),
    built_at      DateTime64(3, 'UTC'),
    signal        LowCardinality(String),
    category      LowCardinality(String),
    model_version LowCardinality(String),
    tenant_id     LowCardinality(String),
    change        LowCardinality(String),
    detector      LowCardinality(String),
    reference     String
)
ENGINE = ReplacingMergeTree(built_at)
ORDER BY (profile, model_version, signal, category, tenant_id, change);

-- The annotation queue (filterwatch labels queue): each selected verdict with its stratum,
-- the stratum's size and sample, and so its inclusion probability. Estimates from the
-- labels weigh each by 1 / inclusion (Horvitz-Thompson), which undoes the oversampling.
CREATE TABLE IF NOT EXISTS {db}.label_queue
(
    queue_id       String,
    created_at     DateTime64(3, 'UTC'),
    seed           UInt64,
    since          DateTime64(3, 'UTC'),
    until          DateTime64(3, 'UTC'),
    request_id     String,
    ts             DateTime64(3, 'UTC'),
    tenant_id      LowCardinality(String),
    model_version  LowCardinality(String),
    url            String,
    scores         Map(LowCardinality(String), Float32),
    predicted      Array(LowCardinality(String)),
    stratum        String,
    focus          LowCardinality(String),
    band           LowCardinality(String),
    stratum_size   UInt64,
    stratum_sample UInt32,
    inclusion      Float64
)
ENGINE = ReplacingMergeTree
ORDER BY (queue_id, request_id);

-- Every stratum of a queue, sampled or not: the population the estimate extrapolates to.
CREATE TABLE IF NOT EXISTS {db}.label_strata
(
    queue_id       String,
    stratum        String,
    focus          LowCardinality(String),
    band           LowCardinality(String),
    tenant_id      LowCardinality(String),
    stratum_size   UInt64,
    stratum_sample UInt32
)
ENGINE = ReplacingMergeTree
ORDER BY (queue_id, stratum);

-- Analyst labels as imported (filterwatch labels import), one row per label; they also
-- travel as feedback events. Annotators are staff ids, never students.
CREATE TABLE IF NOT EXISTS {db}.labels
(
    import_id     String,
    request_id    String,
    url           String,
    annotator     LowCardinality(String),
    categories    Array(LowCardinality(String)),
    labeled_at    DateTime64(3, 'UTC'),
    queue_id      String,
    imported_at   DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree
ORDER BY (request_id, url, annotator, import_id);

-- The data card of each imported label set, versioned by the file's content hash.
CREATE TABLE IF NOT EXISTS {db}.label_sets
(
    import_id     String,
    sha256        String,
    file_name     String,
    imported_at   DateTime64(3, 'UTC'),
    card          String
)
ENGINE = ReplacingMergeTree
ORDER BY (import_id);
