"""Where secrets may come from, and the files that may hold them.

Secrets are notification URLs (they embed webhook tokens and passwords), the URL-hash
key and a ClickHouse URL with a password. They come from the environment or from a file
only its owner can read: a secrets file (``FILTERWATCH_SECRETS_FILE``), the config file
when it holds any, or an apprise config file. A world-readable one is refused at start,
with the ``chmod`` that fixes it, because on a shared host it hands every local user the
on-call pager and the ClickHouse writer password.

A secrets file is YAML with any of these keys::

    notify: [ "slack://T000/B000/XXXX", {url: "mailto://u:p@host", tags: [paging]} ]
    url_hash_key: "..."
    clickhouse_url: "https://writer:password@clickhouse:8443"
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from monitor.errors import ConfigError

__all__ = ["SECRET_KEYS", "check_private", "holds_secrets", "read_secrets_file"]

SECRET_KEYS = ("notify", "url_hash_key", "clickhouse_url")


def check_private(path: str | os.PathLike, what: str) -> None:
    """Refuse a secret-holding file that other users can read or write."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"{what} {p}: cannot read it ({exc.strerror})") from None
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        raise ConfigError(
            f"{what} {p} holds secrets and is world-readable (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {p}"
        )


def holds_secrets(data: dict) -> bool:
    """A config mapping that carries notification URLs or a ClickHouse password."""
    if data.get("notify"):
        return True
    store = data.get("store")
    url = store.get("url") if isinstance(store, dict) else None
    return isinstance(url, str) and "@" in url.split("//", 1)[-1].split("/", 1)[0]


def read_secrets_file(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    check_private(p, "secrets file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        raise ConfigError(f"secrets file {p}: not valid YAML; fix the syntax there") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"secrets file {p}: cannot read it ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"secrets file {p}: must be a mapping of {', '.join(SECRET_KEYS)}")
    for key in data:
        if key not in SECRET_KEYS:
            raise ConfigError(
                f"secrets file {p}: unknown key {str(key)!r}; use {', '.join(SECRET_KEYS)}"
            )
    for key in ("url_hash_key", "clickhouse_url"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"secrets file {p}: {key} must be a string")
    return data
