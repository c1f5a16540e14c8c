-- filterwatch analyst views, created by `filterwatch init-db` (and every store open) next
-- to the tables. Plain views over the rollups: cheap, and the same on chDB and a server.
-- {db} is the configured database.

-- Block rate per category per hour: blocked-while-predicted over all requests.
CREATE OR REPLACE VIEW {db}.v_block_rate_hourly AS
SELECT c.hour, c.category, c.model_version, c.blocked, t.requests,
       c.blocked / t.requests AS block_rate
FROM (SELECT toStartOfHour(minute) AS hour, category, model_version, sum(blocked) AS blocked
      FROM {db}.category_fleet_1m GROUP BY hour, category, model_version) AS c
INNER JOIN (SELECT toStartOfHour(minute) AS hour, model_version, sum(requests) AS requests
            FROM {db}.traffic_fleet_1m GROUP BY hour, model_version) AS t
  ON c.hour = t.hour AND c.model_version = t.model_version;

-- Unblock requests per 1,000 blocks, per category, model version and day. Only disputed
-- verdicts draw feedback: an override rate, not a false-positive rate.
CREATE OR REPLACE VIEW {db}.v_override_rate_daily AS
SELECT b.day, b.category, b.model_version, b.blocked, coalesce(f.unblocks, 0) AS unblocks,
       1000 * coalesce(f.unblocks, 0) / b.blocked AS unblocks_per_1000_blocks
FROM (SELECT toDate(minute) AS day, category, model_version, sum(blocked) AS blocked
      FROM {db}.category_fleet_1m GROUP BY day, category, model_version HAVING blocked > 0) AS b
LEFT JOIN (SELECT toDate(minute) AS day, category, model_version, sum(events) AS unblocks
           FROM {db}.feedback_1m WHERE action = 'unblock'
           GROUP BY day, category, model_version) AS f
  ON b.day = f.day AND b.category = f.category AND b.model_version = f.model_version;

-- Drift events with how long after the estimated onset they were detected.
CREATE OR REPLACE VIEW {db}.v_drift_timeline AS
SELECT detected_at, onset, dateDiff('second', onset, detected_at) AS delay_s, signal,
       category, model_version, change, baseline, current, effect, detector
FROM {db}.drift_events;

-- Alert history, one row per alert (its latest state), with time to resolve.
CREATE OR REPLACE VIEW {db}.v_alert_history AS
SELECT alert_id, detected_at, onset, category, direction, severity, model_version, status,
       resolved_at, if(resolved_at IS NULL, NULL,
                       dateDiff('second', detected_at, resolved_at)) AS resolve_s,
       delivery_status, silenced_by, title, runbook
FROM {db}.alerts FINAL;

-- Per-category score distribution per hour (20 bins) from the score histogram rollup.
CREATE OR REPLACE VIEW {db}.v_score_histogram_hourly AS
SELECT toStartOfHour(minute) AS hour, category, model_version, bin / 20 AS score_from,
       (bin + 1) / 20 AS score_to, sum(pages) AS pages
FROM {db}.score_hist_1m
GROUP BY hour, category, model_version, bin;

-- One district's views: the tenant is a required parameter, so a query cannot forget the
-- filter (without it ClickHouse refuses the query). District analysts get these and the
-- per-tenant rollups behind them under a row policy on their own tenant (access.sql).
--   SELECT * FROM {db}.v_tenant_block_rate_hourly(tenant = 'district-0042')
CREATE OR REPLACE VIEW {db}.v_tenant_block_rate_hourly AS
SELECT c.hour, c.category, c.model_version, c.blocked, t.requests,
       c.blocked / t.requests AS block_rate
FROM (SELECT toStartOfHour(minute) AS hour, category, model_version, sum(blocked) AS blocked
      FROM {db}.category_1m WHERE tenant_id = {{tenant:String}}
      GROUP BY hour, category, model_version) AS c
INNER JOIN (SELECT toStartOfHour(minute) AS hour, model_version, sum(requests) AS requests
            FROM {db}.traffic_1m WHERE tenant_id = {{tenant:String}}
            GROUP BY hour, model_version) AS t
  ON c.hour = t.hour AND c.model_version = t.model_version;

--   SELECT * FROM {db}.v_tenant_override_rate_daily(tenant = 'district-0042')
CREATE OR REPLACE VIEW {db}.v_tenant_override_rate_daily AS
SELECT b.day, b.category, b.model_version, b.blocked, coalesce(f.unblocks, 0) AS unblocks,
       1000 * coalesce(f.unblocks, 0) / b.blocked AS unblocks_per_1000_blocks
FROM (SELECT toDate(minute) AS day, category, model_version, sum(blocked) AS blocked
      FROM {db}.category_1m WHERE tenant_id = {{tenant:String}}
      GROUP BY day, category, model_version HAVING blocked > 0) AS b
LEFT JOIN (SELECT toDate(minute) AS day, category, model_version, sum(events) AS unblocks
           FROM {db}.feedback_1m WHERE action = 'unblock' AND tenant_id = {{tenant:String}}
           GROUP BY day, category, model_version) AS f
  ON b.day = f.day AND b.category = f.category AND b.model_version = f.model_version;
