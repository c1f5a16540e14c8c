"""Configuration: one YAML file plus environment overrides, validated at load time.

Every problem is reported as a :class:`ConfigError` whose message names the key and the
fix ("unknown key 'store.pth' (did you mean 'path'?)"), never a traceback. Secrets
(notification URLs, the URL-hash key, a ClickHouse password) may come from the
environment so they need not sit in a file; they are never logged.

Environment variables:

=========================== ========================================================
FILTERWATCH_CONFIG          path of the YAML file (default ``./filterwatch.yaml``)
FILTERWATCH_STORE_PATH      chDB data directory (the embedded default store)
FILTERWATCH_CLICKHOUSE_URL  ``http(s)://user:password@host:8123``: use a server
FILTERWATCH_DATABASE        ClickHouse database name
FILTERWATCH_NOTIFY          comma-separated apprise URLs (receive every severity)
FILTERWATCH_URL_HASH_KEY    key for the keyed hash kept instead of query strings
=========================== ========================================================
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from detectors.bank import BankConfig
from monitor.errors import ConfigError

__all__ = [
    "SEVERITIES",
    "AlertsConfig",
    "Config",
    "IngestConfig",
    "KafkaConfig",
    "NotifyTarget",
    "StoreConfig",
    "load_config",
]

SEVERITIES = ("critical", "high", "warning", "info")
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class StoreConfig:
    path: str = ".filterwatch/store"
    url: str | None = None
    database: str = "filterwatch"
    sample_allowed: float = 0.01
    raw_full_retention_hours: int = 24
    raw_retention_days: int = 90
    rollup_retention_days: int = 400
    batch_rows: int = 50_000

    def validate(self) -> None:
        if not _DB_NAME.match(self.database):
            raise ConfigError(
                f"store.database {self.database!r} is not a valid ClickHouse identifier "
                "(letters, digits, underscore)"
            )
        if not 0 <= self.sample_allowed <= 1:
            raise ConfigError("store.sample_allowed must be between 0 and 1")
        if self.url is not None and not re.match(r"^https?://", self.url):
            raise ConfigError("store.url must start with http:// or https://")
        for name in ("raw_full_retention_hours", "raw_retention_days", "rollup_retention_days"):
            if getattr(self, name) < 1:
                raise ConfigError(f"store.{name} must be >= 1")
        if self.batch_rows < 1:
            raise ConfigError("store.batch_rows must be >= 1")

    @property
    def backend(self) -> str:
        return "http" if self.url else "chdb"


@dataclass(frozen=True)
class NotifyTarget:
    url: str
    tags: tuple[str, ...] = SEVERITIES

    def __repr__(self) -> str:  # never print the URL: it carries secrets
        return f"NotifyTarget(url=<redacted>, tags={self.tags})"


@dataclass(frozen=True)
class AlertsConfig:
    drift_hold_s: float = 30.0
    cooldown_s: float = 900.0
    runbook_base: str = "docs/runbooks"
    examples: int = 5
    top_n: int = 5

    def validate(self) -> None:
        if self.drift_hold_s < 0 or self.cooldown_s < 0:
            raise ConfigError("alerts.drift_hold_s and alerts.cooldown_s must be >= 0")
        if not 0 <= self.examples <= 50:
            raise ConfigError("alerts.examples must be between 0 and 50")


@dataclass(frozen=True)
class IngestConfig:
    max_event_bytes: int = 64 * 1024
    max_future_s: float = 300.0
    join_horizon_s: float = 300.0
    lateness_windows: int = 1

    def validate(self) -> None:
        if self.max_event_bytes < 256:
            raise ConfigError("ingest.max_event_bytes must be >= 256")
        if self.max_future_s < 0 or self.join_horizon_s <= 0:
            raise ConfigError("ingest.max_future_s must be >= 0 and join_horizon_s > 0")


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap: str = "127.0.0.1:19092"
    app_id: str = "filterwatch"
    topic_prefix: str = ""
    partitions: int = 8
    agg_partitions: int = 8
    replication: int = 1
    batch_max: int = 5000
    batch_within_s: float = 1.0
    web_port: int = 6066
    session_timeout_s: float = 10.0
    # seconds of silence after which a verdict partition is no longer waited for
    idle_s: float = 30.0

    def validate(self) -> None:
        if not self.bootstrap or "://" in self.bootstrap:
            raise ConfigError("kafka.bootstrap must be host:port[,host:port] (no scheme)")
        if self.partitions < 1 or self.agg_partitions < 1 or self.replication < 1:
            raise ConfigError("kafka.partitions, agg_partitions and replication must be >= 1")
        if self.batch_max < 1 or self.batch_within_s <= 0:
            raise ConfigError("kafka.batch_max must be >= 1 and batch_within_s > 0")
        if not 0 < self.web_port < 65536:
            raise ConfigError("kafka.web_port must be a TCP port")

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


@dataclass(frozen=True)
class Config:
    store: StoreConfig = field(default_factory=StoreConfig)
    detect: BankConfig = field(default_factory=BankConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    notify: tuple[NotifyTarget, ...] = ()
    url_hash_key: bytes | None = field(default=None, repr=False)
    source: str = "defaults"

    def with_store(self, **changes) -> Config:
        store = dataclasses.replace(self.store, **changes)
        store.validate()
        return dataclasses.replace(self, store=store)

    def with_notify(self, urls: list[str]) -> Config:
        extra = tuple(NotifyTarget(u) for u in urls)
        return dataclasses.replace(self, notify=self.notify + extra)


_SECTIONS = {
    "store": StoreConfig,
    "detect": BankConfig,
    "alerts": AlertsConfig,
    "ingest": IngestConfig,
    "kafka": KafkaConfig,
}


def _build(cls, data: Any, section: str, where: str):
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: '{section}' must be a mapping")
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            hint = difflib.get_close_matches(str(key), known, n=1)
            tip = f" (did you mean '{hint[0]}'?)" if hint else f" (known: {', '.join(known)})"
            raise ConfigError(f"{where}: unknown key '{section}.{key}'{tip}")
        kwargs[key] = _coerce(value, known[key], f"{section}.{key}", where)
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {section}: {exc}") from None
    if hasattr(obj, "validate"):
        obj.validate()
    return obj


def _coerce(value: Any, f: dataclasses.Field, name: str, where: str):
    default = f.default
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: '{name}' must be true or false")
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: '{name}' must be a whole number, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: '{name}' must be a number, got {value!r}")
        return float(value)
    if isinstance(default, str) or default is None:
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{where}: '{name}' must be a string")
        return value
    return value


def _notify_targets(data: Any, where: str) -> tuple[NotifyTarget, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        raise ConfigError(f"{where}: 'notify' must be a list of {{url, tags}} entries")
    out = []
    for i, item in enumerate(data):
        if isinstance(item, str):
            item = {"url": item}
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            raise ConfigError(f"{where}: notify[{i}] needs a 'url' string")
        unknown = set(item) - {"url", "tags"}
        if unknown:
            raise ConfigError(f"{where}: notify[{i}] has unknown key '{sorted(unknown)[0]}'")
        tags = item.get("tags", list(SEVERITIES))
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ConfigError(f"{where}: notify[{i}].tags must be a list of severities")
        bad = [t for t in tags if t not in SEVERITIES]
        if bad:
            raise ConfigError(
                f"{where}: notify[{i}].tags has {bad[0]!r}; severities are {', '.join(SEVERITIES)}"
            )
        out.append(NotifyTarget(item["url"], tuple(tags)))
    return tuple(out)


def load_config(path: str | os.PathLike | None = None, env: dict | None = None) -> Config:
    """Load the config file (if any) and apply environment overrides."""
    env = os.environ if env is None else env
    explicit = path is not None or bool(env.get("FILTERWATCH_CONFIG"))
    p = Path(path or env.get("FILTERWATCH_CONFIG") or "filterwatch.yaml")
    data: dict = {}
    where = str(p)
    if p.exists():
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{where}:{line}: not valid YAML; fix the syntax there") from None
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read config file ({exc.strerror})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{where}: the top level must be a mapping of sections")
        data = loaded
    elif explicit:
        raise ConfigError(f"config file {where} does not exist; create it or drop --config")
    else:
        where = "defaults"
    allowed = {*_SECTIONS, "notify"}
    for key in data:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            tip = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise ConfigError(f"{where}: unknown section '{key}'{tip}")
    built = {name: _build(cls, data.get(name), name, where) for name, cls in _SECTIONS.items()}
    store = built["store"]
    overrides = {}
    if env.get("FILTERWATCH_STORE_PATH"):
        overrides["path"] = env["FILTERWATCH_STORE_PATH"]
    if env.get("FILTERWATCH_CLICKHOUSE_URL"):
        overrides["url"] = env["FILTERWATCH_CLICKHOUSE_URL"]
    if env.get("FILTERWATCH_DATABASE"):
        overrides["database"] = env["FILTERWATCH_DATABASE"]
    if overrides:
        store = dataclasses.replace(store, **overrides)
        store.validate()
    notify = _notify_targets(data.get("notify"), where)
    if env.get("FILTERWATCH_NOTIFY"):
        notify += tuple(
            NotifyTarget(u.strip()) for u in env["FILTERWATCH_NOTIFY"].split(",") if u.strip()
        )
    kafka = built["kafka"]
    if env.get("KAFKA_BOOTSTRAP"):
        kafka = dataclasses.replace(kafka, bootstrap=env["KAFKA_BOOTSTRAP"])
        kafka.validate()
    key = env.get("FILTERWATCH_URL_HASH_KEY")
    return Config(
        store=store,
        detect=built["detect"],
        alerts=built["alerts"],
        ingest=built["ingest"],
        kafka=kafka,
        notify=notify,
        url_hash_key=key.encode() if key else None,
        source=where,
    )
