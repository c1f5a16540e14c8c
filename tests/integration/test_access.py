"""ClickHouse access control (parsed by the real ClickHouse parser in chDB; chDB itself has
no users to enforce it) and tenant isolation in the district views (enforced on chDB)."""

from __future__ import annotations

import re

import pytest

from monitor.access import access_ddl, access_statements
from monitor.errors import ConfigError, StorageError
from tests.integration.helpers import run_scenario

pytestmark = pytest.mark.integration

W, A = "writer-pass-123456", "analyst-pass-654321"
RAW = ("verdicts", "feedback", "dead_letters", "notifications", "deliveries", "silences")


def _grants(stmts, role):
    out = []
    for s in stmts:
        m = re.match(r"GRANT (.+) ON (\S+) TO (\S+)$", s, re.S)
        if m and m.group(3) == role:
            out.append((m.group(1), m.group(2)))
    return out


def test_access_ddl_parses_and_grants_least_privilege(store):
    ddl = access_ddl(store.db, W, A)
    assert W not in ddl and A not in ddl  # only hashes
    stmts = access_statements(ddl)
    for s in stmts:  # ClickHouse 26.9's own parser: every statement is valid DDL
        assert store.scalar("SELECT formatQuery({q:String})", {"q": s}), s
    tables = {r[0] for r in store.rows(f"SHOW TABLES FROM {store.db}")}
    analyst = _grants(stmts, "fw_analyst_role")
    district = _grants(stmts, "fw_district_role")
    assert analyst and district
    for privs, obj in analyst + district:
        assert privs == "SELECT", (privs, obj)  # read-only
        name = obj.split(".", 1)[1]
        assert name in tables, f"{obj} is granted but does not exist"
        assert name not in RAW, f"{obj}: analysts never get per-request tables"
    writer = _grants(stmts, "fw_writer_role")
    assert any("INSERT" in p for p, _ in writer)
    assert all(obj.startswith(f"{store.db}.") for _, obj in writer)
    # every per-tenant table a district analyst can read is filtered to its tenant
    for _, obj in district:
        if obj.split(".")[1].startswith("v_"):
            continue  # the tenant views take the tenant as a required parameter
        cols = {r[0] for r in store.rows(f"DESCRIBE TABLE {obj}")}
        if "tenant_id" in cols:
            own = f"CREATE ROW POLICY IF NOT EXISTS fw_own_tenant ON {obj} FOR SELECT"
            assert any(s.startswith(own) and "TO fw_district_role" in s for s in stmts), obj
            rest = f"CREATE ROW POLICY IF NOT EXISTS fw_all_tenants ON {obj}"
            assert any(s.startswith(rest) for s in stmts), obj


def test_access_ddl_refuses_weak_passwords():
    with pytest.raises(ConfigError, match="FILTERWATCH_WRITER_PASSWORD"):
        access_ddl("filterwatch", "short", A)


def test_tenant_views_need_a_tenant_and_show_only_its_rows(store):
    run_scenario(store, "overblock-after-deploy", duration=120, onset=60)
    db = store.db
    with pytest.raises(StorageError):
        store.rows(f"SELECT * FROM {db}.v_tenant_block_rate_hourly")  # no tenant: refused
    (tenant, n), *_ = store.rows(
        f"SELECT tenant_id, sum(requests) AS n FROM {db}.traffic_1m "
        "GROUP BY tenant_id ORDER BY n DESC LIMIT 2"
    )
    got = store.rows(
        f"SELECT sum(requests) FROM (SELECT DISTINCT hour, model_version, requests "
        f"FROM {db}.v_tenant_block_rate_hourly(tenant = {{t:String}}))",
        {"t": tenant},
    )
    assert got[0][0] == n  # that tenant's traffic, and nobody else's
    blocked = store.scalar(
        f"SELECT sum(blocked) FROM {db}.v_tenant_block_rate_hourly(tenant = {{t:String}})",
        {"t": tenant},
    )
    direct = store.scalar(
        f"SELECT sum(blocked) FROM {db}.category_1m WHERE tenant_id = {{t:String}}",
        {"t": tenant},
    )
    assert blocked == direct
    none = store.rows(
        f"SELECT * FROM {db}.v_tenant_override_rate_daily(tenant = 'no-such-district')"
    )
    assert none == []
