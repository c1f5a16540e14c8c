"""Event fields never become SQL: hostile tenant ids and model versions travel through
ingest, rollups, detection, the RCA queries and the alert path as plain values."""

from __future__ import annotations

import pytest

from monitor.config import Config
from monitor.pipeline import Pipeline
from monitor.simulator import NEW_VERSION, SimConfig, Simulator

pytestmark = pytest.mark.integration

EVIL_TENANT = "d'); DROP TABLE verdicts; --"
EVIL_VERSION = "v9' OR '1'='1"


def test_hostile_field_values_are_data_not_sql(store):
    sim = Simulator(
        SimConfig(scenario="overblock-after-deploy", rate=200, duration_s=240, onset_s=120)
    )

    def events():
        for e in sim.events():
            if e.get("tenant_id", "").endswith("7"):
                e = {**e, "tenant_id": EVIL_TENANT}
            if e.get("model_version") == NEW_VERSION:  # the deploy that over-blocks
                e = {**e, "model_version": EVIL_VERSION}
            yield e

    summary = Pipeline(Config(store=store.config), store, origin="sqli").run(events())
    assert summary.alerts  # the incident was found, its RCA queries ran
    db = store.db
    tables = {r[0] for r in store.rows(f"SHOW TABLES FROM {db}")}
    assert {"verdicts", "traffic_1m", "alerts"} <= tables
    n = store.scalar(
        f"SELECT count() FROM {db}.verdicts WHERE tenant_id = {{t:String}}", {"t": EVIL_TENANT}
    )
    assert n > 0  # stored verbatim, as a value
    versions = {r[0] for r in store.rows(f"SELECT DISTINCT model_version FROM {db}.traffic_1m")}
    assert EVIL_VERSION in versions
    scoped = store.rows(f"SELECT model_version FROM {db}.alerts FINAL")
    assert (EVIL_VERSION,) in scoped  # the RCA pinned the incident on that version
