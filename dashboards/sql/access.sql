-- filterwatch access control for a ClickHouse server: a writer, a fleet-wide read-only
-- analyst, and district analysts who see only their own tenant. Applied at the server's
-- first start by dashboards/clickhouse/initdb/01-access.sh (docker-compose), or by hand
-- with `filterwatch access-ddl | clickhouse client -n` as a user with access management.
-- Placeholders: {db}; {writer_sha256} and {analyst_sha256} are SHA-256 hashes of the
-- passwords (the passwords themselves never appear here). chDB has no users or grants:
-- the embedded store is a single-user file, protected by its directory's permissions.

CREATE ROLE IF NOT EXISTS fw_writer_role;
CREATE ROLE IF NOT EXISTS fw_analyst_role;
CREATE ROLE IF NOT EXISTS fw_district_role;

-- The worker creates its schema on start, writes, and alters TTLs; nothing else.
GRANT CREATE DATABASE ON {db}.* TO fw_writer_role;
GRANT CREATE TABLE, CREATE VIEW, DROP VIEW, ALTER TABLE, ALTER VIEW, INSERT, SELECT, OPTIMIZE ON {db}.* TO fw_writer_role;

-- Fleet analysts: rollups, detections, alerts and the views over them. Never the raw
-- tables (verdicts, feedback, dead_letters: per-request rows) and never a write.
GRANT SELECT ON {db}.traffic_fleet_1m TO fw_analyst_role;
GRANT SELECT ON {db}.category_fleet_1m TO fw_analyst_role;
GRANT SELECT ON {db}.score_hist_1m TO fw_analyst_role;
GRANT SELECT ON {db}.score_cal_5m TO fw_analyst_role;
GRANT SELECT ON {db}.label_sets TO fw_analyst_role;
GRANT SELECT ON {db}.feedback_1m TO fw_analyst_role;
GRANT SELECT ON {db}.drift_events TO fw_analyst_role;
GRANT SELECT ON {db}.alerts TO fw_analyst_role;
GRANT SELECT ON {db}.v_block_rate_hourly TO fw_analyst_role;
GRANT SELECT ON {db}.v_override_rate_daily TO fw_analyst_role;
GRANT SELECT ON {db}.v_drift_timeline TO fw_analyst_role;
GRANT SELECT ON {db}.v_alert_history TO fw_analyst_role;
GRANT SELECT ON {db}.v_score_histogram_hourly TO fw_analyst_role;

-- District analysts: the per-tenant rollups and the tenant views, and only the rows of
-- the tenant set on their user (SQL_filterwatch_tenant, READONLY so they cannot change it).
GRANT SELECT ON {db}.traffic_1m TO fw_district_role;
GRANT SELECT ON {db}.category_1m TO fw_district_role;
GRANT SELECT ON {db}.feedback_1m TO fw_district_role;
GRANT SELECT ON {db}.v_tenant_block_rate_hourly TO fw_district_role;
GRANT SELECT ON {db}.v_tenant_override_rate_daily TO fw_district_role;
CREATE ROW POLICY IF NOT EXISTS fw_own_tenant ON {db}.traffic_1m FOR SELECT USING tenant_id = getSetting('SQL_filterwatch_tenant') TO fw_district_role;
CREATE ROW POLICY IF NOT EXISTS fw_own_tenant ON {db}.category_1m FOR SELECT USING tenant_id = getSetting('SQL_filterwatch_tenant') TO fw_district_role;
CREATE ROW POLICY IF NOT EXISTS fw_own_tenant ON {db}.feedback_1m FOR SELECT USING tenant_id = getSetting('SQL_filterwatch_tenant') TO fw_district_role;
-- A table with a row policy shows no rows to users no policy covers: everyone else keeps
-- every row (the writer and fleet analysts need them).
CREATE ROW POLICY IF NOT EXISTS fw_all_tenants ON {db}.traffic_1m FOR SELECT USING 1 TO ALL EXCEPT fw_district_role;
CREATE ROW POLICY IF NOT EXISTS fw_all_tenants ON {db}.category_1m FOR SELECT USING 1 TO ALL EXCEPT fw_district_role;
CREATE ROW POLICY IF NOT EXISTS fw_all_tenants ON {db}.feedback_1m FOR SELECT USING 1 TO ALL EXCEPT fw_district_role;

CREATE USER IF NOT EXISTS fw_writer IDENTIFIED WITH sha256_hash BY '{writer_sha256}';
CREATE USER IF NOT EXISTS fw_analyst IDENTIFIED WITH sha256_hash BY '{analyst_sha256}' SETTINGS readonly = 1;
GRANT fw_writer_role TO fw_writer;
GRANT fw_analyst_role TO fw_analyst;
ALTER USER fw_writer DEFAULT ROLE fw_writer_role;
ALTER USER fw_analyst DEFAULT ROLE fw_analyst_role;

-- A district analyst, one per district (template; run per district with its values):
--   CREATE USER district_0042 IDENTIFIED WITH sha256_hash BY '<sha256 of its password>'
--     SETTINGS readonly = 1, SQL_filterwatch_tenant = 'district-0042' READONLY;
--   GRANT fw_district_role TO district_0042;
--   ALTER USER district_0042 DEFAULT ROLE fw_district_role;
