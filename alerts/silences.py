"""Silences: label matchers with an expiry, stored in ClickHouse so every worker sees them.

``filterwatch silence add --match category=games --match direction=over-blocking --for 2h
--reason "..."`` mutes matching alerts: they are still evaluated and recorded (the alert
row says ``silenced`` and which silence), only their notifications are held back. Times
are wall clock: a silence is an operator's decision about the next two hours.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass

from monitor.errors import ConfigError
from monitor.storage import Store

__all__ = ["Silence", "SilenceBook", "parse_duration", "parse_matchers"]

MATCH_LABELS = ("category", "direction", "severity", "model_version", "tenant", "signal")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    m = _DURATION.match(text.strip())
    if not m:
        raise ConfigError(f"--for {text!r}: use a number and a unit, e.g. 30m, 2h, 1d")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def parse_matchers(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        label, sep, value = item.partition("=")
        label, value = label.strip(), value.strip()
        if not sep or not value:
            raise ConfigError(f"--match {item!r}: use LABEL=VALUE, e.g. category=games")
        if label not in MATCH_LABELS:
            raise ConfigError(f"--match {item!r}: labels are {', '.join(MATCH_LABELS)}")
        out[label] = value
    if not out:
        raise ConfigError("a silence needs at least one --match LABEL=VALUE")
    return out


@dataclass(frozen=True)
class Silence:
    silence_id: str
    matchers: dict[str, str]
    starts_at: float
    ends_at: float
    reason: str
    created_by: str

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: dict[str, object]) -> bool:
        """Every matcher equals the label (list-valued labels match any element)."""
        for k, v in self.matchers.items():
            have = labels.get(k)
            if isinstance(have, (list, tuple, set, frozenset)):
                if v not in have:
                    return False
            elif have != v:
                return False
        return True


class SilenceBook:
    """Reads and writes silences; caches them for ``refresh_s`` (checked per notification)."""

    def __init__(self, store: Store, refresh_s: float = 5.0):
        self.store = store
        self.refresh_s = refresh_s
        self._cache: list[Silence] = []
        self._loaded_at = -1e18

    def add(
        self, matchers: dict[str, str], duration_s: float, reason: str, created_by: str = ""
    ) -> Silence:
        if duration_s <= 0:
            raise ConfigError("--for must be positive")
        if not reason.strip():
            raise ConfigError('a silence needs --reason "why" (on-call reads it later)')
        now = time.time()
        key = f"{sorted(matchers.items())}|{now:.6f}"
        sid = "sil-" + hashlib.blake2b(key.encode(), digest_size=5).hexdigest()
        s = Silence(sid, dict(matchers), now, now + duration_s, reason.strip(), created_by)
        self._write(s, expired=False)
        self._loaded_at = -1e18
        return s

    def expire(self, silence_id: str) -> Silence:
        current = {s.silence_id: s for s in self.all()}
        s = current.get(silence_id)
        if s is None:
            raise ConfigError(f"no silence {silence_id!r}; `filterwatch silence list` shows them")
        now = time.time()
        ended = Silence(
            s.silence_id, s.matchers, s.starts_at, min(s.ends_at, now), s.reason, s.created_by
        )
        self._write(ended, expired=True)
        self._loaded_at = -1e18
        return ended

    def all(self) -> list[Silence]:
        rows = self.store.rows(
            "SELECT silence_id, argMax(matchers, version), "
            "toUnixTimestamp64Milli(argMax(starts_at, version)), "
            "toUnixTimestamp64Milli(argMax(ends_at, version)), "
            "argMax(reason, version), argMax(created_by, version) "
            f"FROM {self.store.db}.silences GROUP BY silence_id ORDER BY 3"
        )
        return [
            Silence(sid, dict(m), sa / 1000.0, ea / 1000.0, reason, by)
            for sid, m, sa, ea, reason, by in rows
        ]

    def active(self, now: float | None = None) -> list[Silence]:
        now = time.time() if now is None else now
        if now - self._loaded_at > self.refresh_s:
            self._cache = self.all()
            self._loaded_at = now
        return [s for s in self._cache if s.active(now)]

    def silencing(self, labels: dict[str, object], now: float | None = None) -> Silence | None:
        return next((s for s in self.active(now) if s.matches(labels)), None)

    def _write(self, s: Silence, expired: bool) -> None:
        self.store.insert_rows(
            "silences",
            [
                {
                    "silence_id": s.silence_id,
                    "matchers": s.matchers,
                    "starts_at": int(s.starts_at * 1000),
                    "ends_at": int(s.ends_at * 1000),
                    "reason": s.reason,
                    "created_by": s.created_by,
                    "expired": 1 if expired else 0,
                    "version": time.time_ns(),
                }
            ],
        )
