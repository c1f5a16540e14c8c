"""ClickHouse access control for a server deployment: writer, analyst, district roles.

The DDL lives in ``dashboards/sql/access.sql`` next to the views it grants. Passwords are
turned into SHA-256 hashes here, so neither the rendered DDL nor a shell history holds
them. chDB (the embedded store) has no users: it is one process's files.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from monitor.config import StoreConfig
from monitor.errors import ConfigError

__all__ = ["access_ddl", "access_statements"]


def _sha256(password: str) -> str:
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def access_ddl(database: str, writer_password: str, analyst_password: str) -> str:
    StoreConfig(database=database).validate()  # the same identifier rule as the store
    for name, pw in (("writer", writer_password), ("analyst", analyst_password)):
        if len(pw) < 12:
            raise ConfigError(
                f"the {name} password must be at least 12 characters "
                f"(set FILTERWATCH_{name.upper()}_PASSWORD)"
            )
    text = resources.files("dashboards").joinpath("sql/access.sql").read_text(encoding="utf-8")
    return (
        text.replace("{db}", database)
        .replace("{writer_sha256}", _sha256(writer_password))
        .replace("{analyst_sha256}", _sha256(analyst_password))
    )


def access_statements(ddl: str) -> list[str]:
    """The statements of the DDL, comments dropped."""
    body = "\n".join(line for line in ddl.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]
