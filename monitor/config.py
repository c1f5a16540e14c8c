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
FILTERWATCH_SECRETS_FILE    YAML with notify / url_hash_key / clickhouse_url, mode 600
=========================== ========================================================

A config file that holds secrets itself, a secrets file and an apprise config file must
not be world-readable: loading refuses them (see :mod:`monitor.secrets`).
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
from monitor.secrets import check_private, holds_secrets, read_secrets_file

__all__ = [
    "ALERT_TYPES",
    "SEVERITIES",
    "AlertsConfig",
    "Config",
    "IngestConfig",
    "KafkaConfig",
    "NotifyTarget",
    "RuleSpec",
    "StoreConfig",
    "load_config",
]

SEVERITIES = ("critical", "high", "warning", "info")
GROUP_LABELS = ("direction", "model_version", "category", "severity", "tenant")
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
    body_format: str = ""  # "markdown" | "text"; "" picks by service (text for SMS/pagers)

    def __repr__(self) -> str:  # never print the URL: it carries secrets
        return f"NotifyTarget(url=<redacted>, tags={self.tags})"


# Alert types (what a rule is keyed by) and their lifecycle defaults. Under-blocking
# pages at once and reminds hourly; drift waits 30 s for the feedback that would make
# it an over- or under-blocking alert (one precise alert beats two vague ones).
ALERT_TYPES = ("under-blocking", "over-blocking", "drift", "latency")
RULE_KEYS = ("for_s", "keep_firing_for_s", "repeat_interval_s", "cooldown_s", "quiet_s")
_RULE_DEFAULTS = {
    "under-blocking": {"for_s": 0.0, "repeat_interval_s": 3600.0, "cooldown_s": 600.0},
    "over-blocking": {"for_s": 0.0},
    "drift": {"for_s": 30.0, "repeat_interval_s": 43200.0, "cooldown_s": 1800.0},
    "latency": {"for_s": 30.0},
}
# Severity -> route tags. A notification goes to every target carrying one of its route's
# tags (or the severity itself); targets without tags take everything.
DEFAULT_ROUTES = {
    "critical": ("paging", "chat"),
    "high": ("paging", "chat"),
    "warning": ("chat",),
    "info": ("digest",),
}


@dataclass(frozen=True)
class RuleSpec:
    """Alertmanager-like lifecycle of one alert type (seconds of event time)."""

    for_s: float = 0.0  # evidence must persist this long before the alert fires
    keep_firing_for_s: float = 120.0  # stays firing this long after every segment is back
    repeat_interval_s: float = 14400.0  # reminder while still firing
    cooldown_s: float = 900.0  # after a resolve, a recurrence must outlast this to re-fire
    quiet_s: float = 180.0  # a segment without a recovery test is back after this silence


@dataclass(frozen=True)
class AlertsConfig:
    drift_hold_s: float = 30.0  # kept for older configs: the drift rule's for_s
    cooldown_s: float = 900.0  # kept for older configs: the default cooldown of every rule
    runbook_base: str = "docs/runbooks"
    examples: int = 5
    top_n: int = 5
    rules: dict = field(default_factory=dict)  # alert type -> {RULE_KEYS: seconds}
    group_by: tuple = ("direction", "model_version")
    group_wait_s: float = 10.0
    group_interval_s: float = 300.0
    digest_interval_s: float = 3600.0
    routes: dict = field(default_factory=dict)  # severity -> [tags]; defaults DEFAULT_ROUTES
    apprise_config: str | None = None  # an apprise YAML/TEXT config file of targets
    max_attempts: int = 30  # with the backoff cap, about four hours of retrying
    retry_backoff_s: float = 5.0
    retry_backoff_max_s: float = 600.0

    def validate(self) -> None:
        if self.drift_hold_s < 0 or self.cooldown_s < 0:
            raise ConfigError("alerts.drift_hold_s and alerts.cooldown_s must be >= 0")
        if not 0 <= self.examples <= 50:
            raise ConfigError("alerts.examples must be between 0 and 50")
        if not isinstance(self.rules, dict):
            raise ConfigError("alerts.rules must map an alert type to its settings")
        for name, spec in self.rules.items():
            if name not in ALERT_TYPES:
                raise ConfigError(
                    f"alerts.rules has unknown alert type {name!r}; use one of "
                    + ", ".join(ALERT_TYPES)
                )
            if not isinstance(spec, dict):
                raise ConfigError(
                    f"alerts.rules.{name} must be a mapping of {', '.join(RULE_KEYS)}"
                )
            for k, v in spec.items():
                if k not in RULE_KEYS:
                    raise ConfigError(
                        f"alerts.rules.{name} has unknown key {k!r}; use {', '.join(RULE_KEYS)}"
                    )
                if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                    raise ConfigError(f"alerts.rules.{name}.{k} must be a number of seconds >= 0")
        if not isinstance(self.group_by, (list, tuple)) or not all(
            g in GROUP_LABELS for g in self.group_by
        ):
            raise ConfigError(
                f"alerts.group_by must be a list of labels from {', '.join(GROUP_LABELS)}"
            )
        if not isinstance(self.routes, dict):
            raise ConfigError("alerts.routes must map a severity to a list of tags")
        for sev, tags in self.routes.items():
            if sev not in SEVERITIES:
                raise ConfigError(
                    f"alerts.routes has {sev!r}; severities are {', '.join(SEVERITIES)}"
                )
            if not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags):
                raise ConfigError(f"alerts.routes.{sev} must be a list of tag names")
        for name in ("group_wait_s", "group_interval_s", "digest_interval_s", "retry_backoff_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"alerts.{name} must be >= 0")
        if self.max_attempts < 1:
            raise ConfigError("alerts.max_attempts must be >= 1")

    def rule(self, alert_type: str) -> RuleSpec:
        """The lifecycle settings of one alert type: defaults, then the config's overrides."""
        values = {"cooldown_s": self.cooldown_s, **_RULE_DEFAULTS.get(alert_type, {})}
        if alert_type == "drift":
            values["for_s"] = self.drift_hold_s
        values.update({k: float(v) for k, v in self.rules.get(alert_type, {}).items()})
        return RuleSpec(**values)

    def route_tags(self, severity: str) -> tuple[str, ...]:
        tags = self.routes.get(severity, DEFAULT_ROUTES.get(severity, ()))
        return tuple(tags)

    @property
    def known_tags(self) -> set[str]:
        out = set(SEVERITIES)
        for sev in SEVERITIES:
            out.update(self.route_tags(sev))
        return out


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


def _notify_targets(data: Any, where: str, known_tags: set[str]) -> tuple[NotifyTarget, ...]:
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
        unknown = set(item) - {"url", "tags", "format"}
        if unknown:
            raise ConfigError(f"{where}: notify[{i}] has unknown key '{sorted(unknown)[0]}'")
        tags = item.get("tags", list(SEVERITIES))
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ConfigError(f"{where}: notify[{i}].tags must be a list of severities")
        bad = [t for t in tags if t not in known_tags]
        if bad:
            routes = ", ".join(sorted(known_tags - set(SEVERITIES)))
            raise ConfigError(
                f"{where}: notify[{i}].tags has {bad[0]!r}; severities are "
                f"{', '.join(SEVERITIES)} and route tags are {routes} (alerts.routes)"
            )
        fmt = item.get("format", "")
        if fmt not in ("", "markdown", "text"):
            raise ConfigError(f"{where}: notify[{i}].format must be markdown or text")
        out.append(NotifyTarget(item["url"], tuple(tags), fmt))
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
        if holds_secrets(data):
            check_private(p, "config file")
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
    if built["alerts"].apprise_config and Path(built["alerts"].apprise_config).exists():
        check_private(built["alerts"].apprise_config, "alerts.apprise_config")
    secrets = (
        read_secrets_file(env["FILTERWATCH_SECRETS_FILE"])
        if env.get("FILTERWATCH_SECRETS_FILE")
        else {}
    )
    store = built["store"]
    overrides = {}
    if secrets.get("clickhouse_url"):
        overrides["url"] = secrets["clickhouse_url"]
    if env.get("FILTERWATCH_STORE_PATH"):
        overrides["path"] = env["FILTERWATCH_STORE_PATH"]
    if env.get("FILTERWATCH_CLICKHOUSE_URL"):
        overrides["url"] = env["FILTERWATCH_CLICKHOUSE_URL"]
    if env.get("FILTERWATCH_DATABASE"):
        overrides["database"] = env["FILTERWATCH_DATABASE"]
    if overrides:
        store = dataclasses.replace(store, **overrides)
        store.validate()
    notify = _notify_targets(data.get("notify"), where, built["alerts"].known_tags)
    notify += _notify_targets(secrets.get("notify"), "secrets file", built["alerts"].known_tags)
    if env.get("FILTERWATCH_NOTIFY"):
        notify += tuple(
            NotifyTarget(u.strip()) for u in env["FILTERWATCH_NOTIFY"].split(",") if u.strip()
        )
    kafka = built["kafka"]
    if env.get("KAFKA_BOOTSTRAP"):
        kafka = dataclasses.replace(kafka, bootstrap=env["KAFKA_BOOTSTRAP"])
        kafka.validate()
    key = env.get("FILTERWATCH_URL_HASH_KEY") or secrets.get("url_hash_key")
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
