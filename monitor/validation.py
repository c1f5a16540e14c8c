"""Validation of incoming events: every rejection carries a precise, stable reason.

The validator is the gate between untrusted producers and everything downstream; it
never raises on bad input. It returns either a typed event (:class:`Verdict` /
:class:`Feedback`, with the URL already scrubbed) or a :class:`Rejection` whose
``reason`` is one of :data:`REASONS` and whose ``detail`` names the field and the fix.
Rejections go to the dead-letter sink with that reason and are counted.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson

from monitor.events import (
    ACTIONS,
    ACTORS,
    DECISIONS,
    FEEDBACK_SCHEMA,
    SOURCES,
    VERDICT_SCHEMA,
    Feedback,
    Verdict,
)
from monitor.fastdecode import (
    accept_verdicts,
    decode_verdicts,
    pick_candidates,
    printable_batch,
)
from monitor.scrub import domain_of, scrub_url
from monitor.taxonomy import CATEGORY_NAMES

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_FUTURE_S",
    "REASONS",
    "Rejection",
    "Validator",
]

REASONS = (
    "bad_json",
    "oversize",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "unknown_schema_version",
    "empty_value",
    "too_long",
    "score_out_of_range",
    "score_not_finite",
    "unknown_category",
    "inconsistent",
    "bad_value",
    "bad_timestamp",
    "future_timestamp",
    "bad_url",
)

DEFAULT_MAX_BYTES = 64 * 1024
DEFAULT_MAX_FUTURE_S = 300.0
_MAX_ID = 128
_MAX_NAME = 128
_MAX_URL_IN = 8192
_MS_THRESHOLD = 1e11  # epoch numbers above this are milliseconds
_MIN_TS = 946684800.0  # 2000-01-01: earlier timestamps are almost surely unit errors


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an event was refused. ``str()`` gives ``reason: detail``."""

    reason: str
    detail: str
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


class _Reject(Exception):
    """Internal control flow: carries a Rejection out of nested checks."""

    def __init__(self, rejection: Rejection):
        self.rejection = rejection


def _fail(reason: str, field: str | None, detail: str) -> _Reject:
    return _Reject(Rejection(reason, detail, field))


class Validator:
    """Validates raw events (bytes, str or an already-decoded dict).

    Parameters
    ----------
    max_bytes
        Largest accepted encoded event.
    max_future_s
        How far ahead of the wall clock an event time may be (producer clock skew).
    hash_key
        Key for the keyed hash that replaces query strings; ``None`` drops them.
    clock
        Wall-clock source, injectable for tests.
    """

    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_future_s: float = DEFAULT_MAX_FUTURE_S,
        hash_key: bytes | None = None,
        clock=time.time,
    ):
        if max_bytes <= 0:
            raise ValueError("max_bytes must be > 0")
        if max_future_s < 0:
            raise ValueError("max_future_s must be >= 0")
        self.max_bytes = max_bytes
        self.max_future_s = max_future_s
        self.hash_key = hash_key
        self._clock = clock
        self._now = clock()
        self._calls = 0

    @classmethod
    def from_config(cls, config) -> Validator:
        """The validator a pipeline stage uses, from :class:`monitor.config.Config`."""
        ing = config.ingest
        return cls(
            max_bytes=ing.max_event_bytes,
            max_future_s=ing.max_future_s,
            hash_key=config.url_hash_key,
        )

    # -- entry points -------------------------------------------------------------------
    def decode(self, raw: bytes | str) -> dict | Rejection:
        """Size-check and JSON-decode one message."""
        size = len(raw)
        if size > self.max_bytes:
            return Rejection("oversize", f"event is {size} bytes, limit is {self.max_bytes}")
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return Rejection("bad_json", f"not valid JSON ({exc.args[0][:80]})")
        if not isinstance(obj, dict):
            return Rejection("not_an_object", f"event must be a JSON object, got {_tname(obj)}")
        return obj

    def validate(self, raw: bytes | str | dict) -> Verdict | Feedback | Rejection:
        """Validate one event of either type, dispatching on its ``schema`` field."""
        obj = raw if isinstance(raw, dict) else self.decode(raw)
        if isinstance(obj, Rejection):
            return obj
        schema = obj.get("schema")
        if schema == VERDICT_SCHEMA:
            return self.validate_verdict(obj)
        if schema == FEEDBACK_SCHEMA:
            return self.validate_feedback(obj)
        if schema is None:
            return Rejection("missing_field", "field 'schema' is required", "schema")
        return Rejection(
            "unknown_schema_version",
            f"schema {str(schema)[:40]!r} is not supported "
            f"(expected {VERDICT_SCHEMA!r} or {FEEDBACK_SCHEMA!r})",
            "schema",
        )

    def validate_many(
        self, raws: Sequence[bytes | str | dict], *, slow: list[int] | None = None
    ) -> list[Verdict | Feedback | Rejection]:
        """:meth:`validate` of each message, in order, with verdicts batched through C.

        Well-formed verdicts take the msgspec fast path (:mod:`monitor.fastdecode`);
        everything else, and anything the fast path does not accept, gets the precise
        per-field checks, so the results equal ``[validate(r) for r in raws]``.
        ``slow`` (if given) receives the indices that took the precise path: the only
        places a feedback event or a rejection can be.
        """
        n = len(raws)
        picked, buf = pick_candidates(raws, self.max_bytes)
        if picked:
            self._now = self._clock()
            fast = accept_verdicts(
                decode_verdicts([raws[i] for i in picked], buf),  # type: ignore[misc]
                now=self._now,
                max_future_s=self.max_future_s,
                hash_key=self.hash_key,
                printable=printable_batch(buf),
            )
        else:
            fast = []
        if len(picked) == n:
            out: list = fast
        else:
            out = [None] * n
            for i, v in zip(picked, fast, strict=True):
                out[i] = v
        todo = [i for i, v in enumerate(out) if v is None] if None in out else []
        validate = self.validate
        for i in todo:
            out[i] = validate(raws[i])
        if slow is not None:
            slow += todo
        return out

    def validate_verdict(self, obj: dict) -> Verdict | Rejection:
        try:
            return self._verdict(obj)
        except _Reject as r:
            return r.rejection

    def validate_feedback(self, obj: dict) -> Feedback | Rejection:
        try:
            return self._feedback(obj)
        except _Reject as r:
            return r.rejection

    # -- verdict ------------------------------------------------------------------------
    def _verdict(self, o: dict) -> Verdict:
        request_id = _ident(o, "request_id", _MAX_ID)
        ts = self._ts(o)
        tenant_id = _ident(o, "tenant_id", _MAX_NAME)
        raw_url = _url(o, "url")
        url = scrub_url(raw_url, self.hash_key)
        domain = o.get("domain")
        if domain is None:
            domain = domain_of(raw_url)
            if not domain:
                raise _fail("bad_url", "url", "url has no host, and no 'domain' was given")
        elif not isinstance(domain, str):
            raise _fail("wrong_type", "domain", f"'domain' must be a string, got {_tname(domain)}")
        elif not domain or len(domain) > 253:
            raise _fail("bad_value", "domain", "'domain' must be 1-253 characters")
        model_version = _ident(o, "model_version", _MAX_NAME)
        scores = _scores(o)
        categories = _categories(o, "categories", required=True)
        for c in categories:
            if c not in scores:
                raise _fail(
                    "inconsistent",
                    "categories",
                    f"predicted category {c!r} has no entry in 'scores'",
                )
        decision = _enum(o, "decision", DECISIONS)
        policy = _ident(o, "policy", _MAX_NAME)
        latency = o.get("latency_ms")
        if latency is None:
            raise _fail("missing_field", "latency_ms", "field 'latency_ms' is required")
        if isinstance(latency, bool) or not isinstance(latency, (int, float)):
            raise _fail(
                "wrong_type", "latency_ms", f"'latency_ms' must be a number, got {_tname(latency)}"
            )
        if not math.isfinite(latency) or latency < 0:
            raise _fail(
                "bad_value", "latency_ms", f"'latency_ms' must be finite and >= 0, got {latency}"
            )
        source = _enum(o, "source", SOURCES)
        return Verdict(
            request_id,
            ts,
            tenant_id,
            url,
            domain.lower(),
            model_version,
            scores,
            categories,
            decision,
            policy,
            float(latency),
            source,
        )

    # -- feedback -----------------------------------------------------------------------
    def _feedback(self, o: dict) -> Feedback:
        request_id = o.get("request_id")
        raw_url = o.get("url")
        if request_id is None and raw_url is None:
            raise _fail("missing_field", "request_id", "feedback needs 'request_id' or 'url'")
        if request_id is not None:
            request_id = _ident(o, "request_id", _MAX_ID)
        url = scrub_url(_url(o, "url"), self.hash_key) if raw_url is not None else None
        ts = self._ts(o)
        tenant_id = _ident(o, "tenant_id", _MAX_NAME)
        actor = _enum(o, "actor", ACTORS)
        action = _enum(o, "action", ACTIONS)
        categories = _categories(o, "categories", required=False)
        feedback_id = o.get("feedback_id")
        if feedback_id is None:
            key = f"{request_id}|{url}|{ts}|{tenant_id}|{actor}|{action}|{','.join(categories)}"
            feedback_id = "fb-" + hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
        else:
            feedback_id = _ident(o, "feedback_id", _MAX_ID)
        return Feedback(feedback_id, request_id, url, ts, tenant_id, actor, action, categories)

    # -- shared -------------------------------------------------------------------------
    def _ts(self, o: dict) -> float:
        value = o.get("ts")
        if value is None:
            raise _fail("missing_field", "ts", "field 'ts' is required")
        if isinstance(value, bool):
            raise _fail("wrong_type", "ts", "'ts' must be an ISO-8601 string or epoch number")
        if isinstance(value, (int, float)):
            if not math.isfinite(value):
                raise _fail("bad_timestamp", "ts", f"'ts' is not finite ({value})")
            ts = value / 1000.0 if value > _MS_THRESHOLD else float(value)
        elif isinstance(value, str):
            try:
                dt = datetime.fromisoformat(value)
            except ValueError:
                raise _fail("bad_timestamp", "ts", f"'ts' {value[:40]!r} is not ISO-8601") from None
            if dt.tzinfo is None:
                raise _fail("bad_timestamp", "ts", "'ts' needs a UTC offset (e.g. 'Z')")
            ts = dt.timestamp()
        else:
            raise _fail("wrong_type", "ts", f"'ts' must be a string or number, got {_tname(value)}")
        if ts < _MIN_TS:
            raise _fail("bad_timestamp", "ts", f"'ts' {value!r} is before 2000-01-01 (unit error?)")
        # Re-read the wall clock only every 4096 events: cheap, and skew limits are minutes.
        self._calls += 1
        if self._calls & 4095 == 0:
            self._now = self._clock()
        if ts > self._now + self.max_future_s and ts > self._clock() + self.max_future_s:
            raise _fail(
                "future_timestamp",
                "ts",
                f"'ts' is {ts - self._clock():.0f} s in the future "
                f"(allowed skew {self.max_future_s:.0f} s)",
            )
        return ts


def _tname(v) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(v), "number" if isinstance(v, (int, float)) else type(v).__name__
    )


def _ident(o: dict, name: str, limit: int) -> str:
    v = o.get(name)
    if v is None:
        raise _fail("missing_field", name, f"field {name!r} is required")
    if not isinstance(v, str):
        raise _fail("wrong_type", name, f"{name!r} must be a string, got {_tname(v)}")
    if not v:
        raise _fail("empty_value", name, f"{name!r} must not be empty")
    if len(v) > limit:
        raise _fail("too_long", name, f"{name!r} is {len(v)} characters, limit is {limit}")
    if not v.isprintable():
        raise _fail("bad_value", name, f"{name!r} contains control characters")
    return v


def _url(o: dict, name: str) -> str:
    v = o.get(name)
    if v is None:
        raise _fail("missing_field", name, f"field {name!r} is required")
    if not isinstance(v, str):
        raise _fail("wrong_type", name, f"{name!r} must be a string, got {_tname(v)}")
    if len(v) > _MAX_URL_IN:
        raise _fail("too_long", name, f"{name!r} is {len(v)} characters, limit is {_MAX_URL_IN}")
    head = v[:8].lower()
    if not (head.startswith("http://") or head.startswith("https://")):
        raise _fail("bad_url", name, f"{name!r} must be an http(s) URL")
    if not v.isprintable():
        raise _fail("bad_url", name, f"{name!r} contains control characters")
    return v


def _enum(o: dict, name: str, allowed: frozenset[str]) -> str:
    v = o.get(name)
    if v is None:
        raise _fail("missing_field", name, f"field {name!r} is required")
    if not isinstance(v, str):
        raise _fail("wrong_type", name, f"{name!r} must be a string, got {_tname(v)}")
    if v not in allowed:
        raise _fail("bad_value", name, f"{name!r} is {v[:40]!r}; expected one of {sorted(allowed)}")
    return v


def _scores(o: dict) -> dict[str, float]:
    v = o.get("scores")
    if v is None:
        raise _fail("missing_field", "scores", "field 'scores' is required")
    if not isinstance(v, dict):
        raise _fail("wrong_type", "scores", f"'scores' must be an object, got {_tname(v)}")
    out: dict[str, float] = {}
    for cat, s in v.items():
        if cat not in CATEGORY_NAMES:
            raise _fail("unknown_category", f"scores.{cat[:40]}", f"unknown category {cat[:40]!r}")
        if isinstance(s, bool) or not isinstance(s, (int, float)):
            raise _fail("wrong_type", f"scores.{cat}", f"score for {cat!r} must be a number")
        if not math.isfinite(s):
            raise _fail("score_not_finite", f"scores.{cat}", f"score for {cat!r} is {s}")
        if s < 0.0 or s > 1.0:
            raise _fail(
                "score_out_of_range", f"scores.{cat}", f"score for {cat!r} is {s}, not in [0, 1]"
            )
        out[cat] = float(s)
    return out


def _categories(o: dict, name: str, *, required: bool) -> tuple[str, ...]:
    v = o.get(name)
    if v is None:
        if required:
            raise _fail("missing_field", name, f"field {name!r} is required")
        return ()
    if not isinstance(v, list):
        raise _fail("wrong_type", name, f"{name!r} must be an array, got {_tname(v)}")
    if len(v) > len(CATEGORY_NAMES):
        raise _fail("too_long", name, f"{name!r} has {len(v)} entries")
    for c in v:
        if not isinstance(c, str):
            raise _fail("wrong_type", name, f"{name!r} entries must be strings")
        if c not in CATEGORY_NAMES:
            raise _fail("unknown_category", name, f"unknown category {c[:40]!r}")
    return tuple(v)
