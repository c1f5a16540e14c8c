"""The batched fast path accepts exactly what the precise validator accepts, with the
same values, and leaves every refusal (and its reason) to the precise validator."""

import math

import msgspec
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.events import Verdict
from monitor.validation import Rejection, Validator

NOW = 1_800_000_000.0

BASE = {
    "schema": "verdict/1",
    "request_id": "r-1",
    "ts": NOW - 10,
    "tenant_id": "district-0001",
    "url": "https://www.Example.org/a/b?q=1#x",
    "domain": "Example.org",
    "model_version": "2026.12.0",
    "scores": {"adult": 0.91, "health": 0.2},
    "categories": ["adult"],
    "decision": "block",
    "policy": "strict",
    "latency_ms": 12,
    "source": "prod",
}
FEEDBACK = {
    "schema": "feedback/1",
    "request_id": "r-1",
    "ts": NOW - 5,
    "tenant_id": "district-0001",
    "actor": "teacher",
    "action": "unblock",
}

_ODD_VALUES = [
    None, True, 0, -1, 1.5, 2.0, 1e300, -0.0, "", " ", "x" * 300, "\u00a0", "\x7f",
    "caf\u00e9", "\u200b", "line\nbreak", "tab\there", [], {}, ["adult"], {"adult": 0.5},
    "2026-12-01T10:00:00Z", "2026-12-01T10:00:00", NOW * 1000, 946684799.0, NOW + 10_000,
    "HTTPS://EXAMPLE.ORG/", "http://a.org/x\u0085y", "ftp://a.org/", "https://", "block",
    "allow", "prod", "replay", "unknown_cat", ["adult", "adult"], ["gambling"],
    {"adult": float("nan")}, {"adult": -0.1}, {"adult": 1}, {"nope": 0.5},
]  # fmt: skip


def _same(a, b) -> bool:
    if isinstance(a, Verdict) and isinstance(b, Verdict):
        return msgspec.structs.asdict(a) == msgspec.structs.asdict(b)
    if isinstance(a, Rejection) and isinstance(b, Rejection):
        return a == b
    return type(a) is type(b) and a == b


def _check(raws: list) -> None:
    v = Validator(clock=lambda: NOW, hash_key=b"k")
    fast = v.validate_many(raws)
    precise = [Validator(clock=lambda: NOW, hash_key=b"k").validate(r) for r in raws]
    assert len(fast) == len(precise)
    for raw, a, b in zip(raws, fast, precise, strict=True):
        assert _same(a, b), (raw, a, b)


def _dumps(obj) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


@st.composite
def mutated(draw):
    ev = dict(BASE)
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from([*BASE, "extra"]))
        op = draw(st.sampled_from(["drop", "set", "set", "set"]))
        if op == "drop":
            ev.pop(key, None)
        else:
            ev[key] = draw(st.sampled_from(_ODD_VALUES))
    if any(isinstance(x, float) and not math.isfinite(x) for x in _flat(ev)):
        return orjson.dumps({k: v for k, v in ev.items() if k != "scores"})[:-1] + (
            b',"scores":{"adult":NaN}}'
        )
    raw = orjson.dumps(ev)
    tail = draw(st.sampled_from(["", "cut", "dup", "pretty", "two", "bom", "ws"]))
    if tail == "cut":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif tail == "dup":
        raw = raw[:-1] + b',"decision":"allow"}'
    elif tail == "pretty":
        raw = orjson.dumps(ev, option=orjson.OPT_INDENT_2)
    elif tail == "two":
        raw = raw + b"," + raw
    elif tail == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif tail == "ws":
        raw = b"  " + raw + b"\t"
    return raw


def _flat(ev):
    for v in ev.values():
        if isinstance(v, dict):
            yield from v.values()
        else:
            yield v


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)  # fmt: skip
@given(st.lists(mutated(), min_size=1, max_size=40), st.booleans())
def test_fast_path_equals_precise_path(raws, with_feedback):
    good = orjson.dumps(BASE)
    batch = [good, *raws, good]
    if with_feedback:
        batch.insert(len(batch) // 2, orjson.dumps(FEEDBACK))
    _check(batch)


def test_hostile_batches():
    good = orjson.dumps(BASE)
    # A verdict split across two messages must not be glued back together.
    half = len(good) // 2
    split = [good[:half], good[half:]]
    _check([good, *split, good])
    # An object that spans messages through a comma, and one message holding two.
    _check([good[:-1] + b',"x":[{"a":1}', b'{"b":2}]}', good + b"," + good, good])
    # Escapes, non-ASCII and DEL force the per-message printable check.
    esc = good.replace(b"r-1", b"r-\\u0001")
    _check([good, esc, good.replace(b"r-1", "r-\u00e9".encode()), good.replace(b"r-1", b"r\x7f")])
    # Non-bytes inputs, oversize and empty messages
    _check([good, good.decode(), dict(BASE), b"", b"{}", b"x" * 70_000, good])


def test_fast_path_is_taken_for_well_formed_batches():
    good = orjson.dumps(BASE)
    slow: list[int] = []
    out = Validator(clock=lambda: NOW).validate_many([good] * 50, slow=slow)
    assert slow == []
    assert all(isinstance(v, Verdict) for v in out)
    assert out[0].url == "https://www.example.org/a/b"
    assert out[0].domain == "example.org"
