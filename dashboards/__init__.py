"""Analyst-facing SQL and dashboards: example queries (``sql/examples.sql``), views
(``sql/views.sql``, created with the schema), Grafana dashboards (``grafana/``), the weekly
report and the status page."""

import json
import re
from importlib import resources
from pathlib import Path

__all__ = ["example_queries", "expand_grafana_macros", "grafana_dashboards", "grafana_queries"]

GRAFANA_DIR = Path(__file__).parent / "grafana"


def example_queries() -> dict[str, str]:
    """Named example queries from ``sql/examples.sql`` (``-- name: x`` starts one)."""
    text = resources.files("dashboards").joinpath("sql/examples.sql").read_text(encoding="utf-8")
    out: dict[str, str] = {}
    name = None
    buf: list[str] = []
    for line in text.splitlines():
        if line.startswith("-- name:"):
            if name:
                out[name] = "\n".join(buf).strip().rstrip(";")
            name, buf = line.split(":", 1)[1].strip(), []
        elif name is not None:
            buf.append(line)
    if name:
        out[name] = "\n".join(buf).strip().rstrip(";")
    return out


def grafana_dashboards() -> dict[str, dict]:
    """The provisioned dashboards, by file name."""
    return {
        p.name: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((GRAFANA_DIR / "dashboards").glob("*.json"))
    }


def grafana_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, raw SQL) of every panel target."""
    return [
        (d["uid"], p["title"], t["rawSql"])
        for d in grafana_dashboards().values()
        for p in d["panels"]
        for t in p.get("targets", [])
    ]


def expand_grafana_macros(
    sql: str, database: str, start: float, end: float, interval_s: int = 60
) -> str:
    """Grafana's ClickHouse-plugin macros as the plugin expands them, for running a panel's
    SQL outside Grafana (tests, or pasting into ``filterwatch sql``)."""
    s, e = int(start), int(end)
    sql = sql.replace("${database}", database)
    sql = re.sub(
        r"\$__timeFilter\((\w+(?:\.\w+)?)\)",
        lambda m: f"{m[1]} >= toDateTime({s}) AND {m[1]} <= toDateTime({e})",
        sql,
    )
    sql = re.sub(
        r"\$__timeInterval\((\w+(?:\.\w+)?)\)",
        lambda m: f"toStartOfInterval({m[1]}, INTERVAL {interval_s} second)",
        sql,
    )
    return sql.replace("$__fromTime", f"toDateTime({s})").replace("$__toTime", f"toDateTime({e})")
