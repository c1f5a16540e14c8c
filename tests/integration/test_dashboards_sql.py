"""Every shipped example query, view and Grafana panel query runs on a seeded store."""

import time

import pytest
import yaml

from dashboards import (
    GRAFANA_DIR,
    example_queries,
    expand_grafana_macros,
    grafana_dashboards,
    grafana_queries,
)
from tests.integration.helpers import run_scenario

pytestmark = pytest.mark.integration

VIEWS = ("v_block_rate_hourly", "v_override_rate_daily", "v_drift_timeline", "v_alert_history",
         "v_score_histogram_hourly")  # fmt: skip


@pytest.fixture
def seeded(store):
    summary, _ = run_scenario(store, "overblock-after-deploy", duration=240, onset=120)
    assert summary.alerts
    store.insert_dead_letters([(int(time.time() * 1000), "test", 1, "bad_json", "",
                                "not valid JSON", "{")], token="dl-1")  # fmt: skip
    return store


def test_example_queries_and_views_run_on_seeded_store(seeded):
    store = seeded
    queries = example_queries()
    assert len(queries) >= 8
    for name, sql in queries.items():
        rows = store.rows(sql.replace("filterwatch.", f"{store.db}."))
        assert rows, f"{name} returned no rows"
    for view in VIEWS:
        assert store.scalar(f"SELECT count() FROM {store.db}.{view}") > 0, view
    (rate,) = store.rows(f"SELECT max(block_rate) FROM {store.db}.v_block_rate_hourly")[0]
    assert 0 < rate < 1


def test_grafana_dashboards_are_valid_and_every_panel_query_runs(seeded):
    store = seeded
    ds = yaml.safe_load((GRAFANA_DIR / "provisioning/datasources/clickhouse.yaml").read_text())
    uid = ds["datasources"][0]["uid"]
    prov = yaml.safe_load((GRAFANA_DIR / "provisioning/dashboards/filterwatch.yaml").read_text())
    assert prov["providers"][0]["options"]["path"].endswith("/filterwatch")
    dashboards = grafana_dashboards()
    assert dashboards
    for d in dashboards.values():
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids))
        for p in d["panels"]:
            assert p["datasource"]["uid"] == uid, p["title"]
            assert {"x", "y", "w", "h"} <= set(p["gridPos"])
    now = time.time()
    queries = grafana_queries()
    assert len(queries) >= 8
    for dash, title, sql in queries:
        expanded = expand_grafana_macros(sql, store.db, now - 86400, now + 3600)
        assert "$" not in expanded, f"{dash}/{title}: unexpanded macro"
        rows = store.rows(expanded)
        assert rows, f"{dash}/{title} returned no rows"
