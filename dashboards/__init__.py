"""Analyst-facing SQL (``dashboards/sql``): documented example queries over the rollups."""

from importlib import resources

__all__ = ["example_queries"]


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
