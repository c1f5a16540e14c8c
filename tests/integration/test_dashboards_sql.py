"""Every shipped example query runs on a seeded store and returns rows."""

import pytest

from dashboards import example_queries
from tests.integration.helpers import run_scenario

pytestmark = pytest.mark.integration


def test_example_queries_run_on_seeded_store(store):
    summary, _ = run_scenario(store, "overblock-after-deploy", duration=240, onset=120)
    assert summary.alerts
    store.insert_dead_letters([(0, "test", 1, "bad_json", "", "not valid JSON", "{")], token="dl-1")
    queries = example_queries()
    assert len(queries) >= 8
    for name, sql in queries.items():
        rows = store.rows(sql.replace("filterwatch.", f"{store.db}."))
        assert rows, f"{name} returned no rows"
