-- Example analyst queries. Database "filterwatch" (the default; the demo uses "demo").
-- Times are relative to the newest data, so they also work on replayed older files.
-- Run one with: filterwatch sql "$(cat ...)" or paste into clickhouse-client.

-- name: block_rate_by_category_last_hour
-- Block rate per category (blocked while predicted / all requests), last hour of data.
WITH (SELECT max(minute) FROM filterwatch.traffic_fleet_1m) AS newest
SELECT c.category,
       sum(c.blocked) AS blocked,
       any(t.requests) AS requests,
       round(100 * blocked / requests, 4) AS block_rate_pct
FROM filterwatch.category_fleet_1m AS c
CROSS JOIN (SELECT sum(requests) AS requests FROM filterwatch.traffic_fleet_1m
            WHERE minute > newest - INTERVAL 1 HOUR) AS t
WHERE c.minute > newest - INTERVAL 1 HOUR
GROUP BY c.category
ORDER BY block_rate_pct DESC;

-- name: override_rate_by_category_and_model_version
-- Unblock requests per 1,000 blocks, per category and model version (over-blocking evidence).
-- Only disputed verdicts get feedback: this is an override rate, not a false-positive rate.
SELECT b.category, b.model_version, b.blocked, coalesce(f.unblocks, 0) AS unblocks,
       round(1000 * unblocks / b.blocked, 3) AS unblocks_per_1000_blocks
FROM (SELECT category, model_version, sum(blocked) AS blocked
      FROM filterwatch.category_fleet_1m GROUP BY category, model_version HAVING blocked > 0) AS b
LEFT JOIN (SELECT category, model_version, sum(events) AS unblocks
           FROM filterwatch.feedback_1m WHERE action = 'unblock'
           GROUP BY category, model_version) AS f
  ON b.category = f.category AND b.model_version = f.model_version
ORDER BY unblocks_per_1000_blocks DESC
LIMIT 50;

-- name: top_overblocked_domains_last_hour
-- Domains with the most unblock requests in the last hour of data, with an example URL.
WITH (SELECT max(ts) FROM filterwatch.feedback) AS newest
SELECT domain, count() AS unblocks, uniqExact(tenant_id) AS tenants,
       groupUniqArray(3)(model_version) AS model_versions, any(url) AS example_url
FROM filterwatch.feedback
WHERE action = 'unblock' AND ts > newest - INTERVAL 1 HOUR
GROUP BY domain
ORDER BY unblocks DESC
LIMIT 20;

-- name: latency_quantiles_per_minute
-- Classification latency quantiles per minute and model version, last hour of data (the
-- quantile states are merged only for the minutes shown).
WITH (SELECT max(minute) FROM filterwatch.traffic_fleet_1m) AS newest
SELECT minute, model_version, sum(requests) AS requests,
       arrayMap(x -> round(x, 1), quantilesMerge(0.5, 0.95, 0.99)(latency_q)) AS p50_p95_p99_ms
FROM filterwatch.traffic_fleet_1m
WHERE minute > newest - INTERVAL 1 HOUR
GROUP BY minute, model_version
ORDER BY minute DESC, model_version
LIMIT 60;

-- name: score_quantiles_per_category
-- Score quantiles per category and model version over the last day of data, from the
-- 20-bin score histogram (bin centres: +/- 0.025). Merging per-minute quantile states is
-- far slower; widen the interval as needed (a week: ~0.4 s at 1.1 billion requests a day).
WITH (SELECT max(minute) FROM filterwatch.score_hist_1m) AS newest
SELECT category, model_version, sum(pages) AS scored,
       arrayMap(x -> round(x, 3),
                quantilesExactWeighted(0.1, 0.5, 0.9)((bin + 0.5) / 20, pages)) AS p10_p50_p90
FROM (SELECT category, model_version, bin, sum(pages) AS pages
      FROM filterwatch.score_hist_1m WHERE minute > newest - INTERVAL 1 DAY
      GROUP BY category, model_version, bin)
GROUP BY category, model_version
ORDER BY category, model_version;

-- name: drift_events_timeline
SELECT detected_at, onset, signal, category, model_version, change,
       round(baseline, 6) AS baseline, round(current, 6) AS current, round(effect, 3) AS effect
FROM filterwatch.drift_events FINAL
ORDER BY detected_at DESC
LIMIT 100;

-- name: alert_history
SELECT created_at, alert_id, severity, direction, category, segment, signals,
       round(rate_now, 6) AS rate_now, round(rate_baseline, 6) AS rate_baseline,
       delivery_status, runbook
FROM filterwatch.alerts FINAL
ORDER BY created_at DESC
LIMIT 50;

-- name: dead_letters_by_reason
SELECT reason, count() AS events, any(detail) AS example
FROM filterwatch.dead_letters
GROUP BY reason
ORDER BY events DESC;
