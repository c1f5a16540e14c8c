"""The verdict fast path: decode and check a batch of well-formed verdicts in C.

Almost every message on the verdicts topic is a well-formed ``verdict/1``. The precise
per-field validator in :mod:`monitor.validation` spends ~10 us of Python on each (orjson
into a dict, then one check per field). msgspec checks the structure, the types, the
enums, the category names, the score range and the length limits while it decodes a
whole batch of JSON lines (~1.5 us a verdict), so this module only runs what msgspec
cannot express (printable identifiers, URL scheme, timestamp units and clock skew,
predicted categories having scores) and then scrubs the URL.

The fast path never decides a rejection: whatever it does not accept goes through the
precise validator, which names the reason. That keeps one source of truth for *why* an
event is refused, and ``tests/unit/test_fastdecode.py`` checks on mutated and hostile
inputs that both paths give exactly the same result for every message.

Message boundaries are kept by decoding JSON *lines*: only messages without a newline
byte are batched, and the batch is used only when it decodes into exactly as many
verdicts as messages went in (a message holding two objects fails the line decode).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import msgspec
import numpy as np

from monitor.events import Verdict
from monitor.scrub import domain_of, scrub_url
from monitor.taxonomy import CATEGORY_NAMES

__all__ = [
    "WireVerdict",
    "accept_verdicts",
    "decode_verdicts",
    "is_verdict_candidate",
    "pick_candidates",
    "printable_batch",
]

_Category = Literal[tuple(sorted(CATEGORY_NAMES))]  # type: ignore[valid-type]
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
_Score = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
_MS_THRESHOLD = 1e11  # the precise validator's rule: epoch numbers above are milliseconds
_MIN_TS = 946684800.0
_TAG = b'"verdict/1"'
_FEEDBACK_TAG = b'"feedback/1"'


class WireVerdict(Verdict, tag_field="schema", tag="verdict/1", kw_only=True, gc=False):
    """The wire shape of ``verdict/1`` with its limits; once accepted it *is* a Verdict
    (URL scrubbed, domain lower-cased, timestamp in epoch seconds), without a copy."""

    request_id: _Id
    ts: float | str
    tenant_id: _Id
    url: Annotated[str, msgspec.Meta(max_length=8192)]
    model_version: _Id
    scores: dict[_Category, _Score]
    categories: Annotated[tuple[_Category, ...], msgspec.Meta(max_length=len(CATEGORY_NAMES))]
    decision: Literal["block", "allow"]
    policy: _Id
    latency_ms: Annotated[float, msgspec.Meta(ge=0.0)]
    source: Literal["prod", "shadow", "replay"]
    domain: Annotated[str, msgspec.Meta(min_length=1, max_length=253)] | None = None


class _NotAVerdict(msgspec.Struct, tag_field="schema", tag="\x00"):
    """Never matches; in a union with :class:`WireVerdict` it makes the tag required
    (msgspec lets a lone tagged struct decode without its tag field)."""


_lines = msgspec.json.Decoder(WireVerdict | _NotAVerdict)


def is_verdict_candidate(raw: object, max_bytes: int) -> bool:
    """Cheap byte checks: worth trying as a batched verdict (no newline, size, tag)."""
    return isinstance(raw, bytes) and len(raw) <= max_bytes and _TAG in raw and b"\n" not in raw


def pick_candidates(raws: Sequence[object], max_bytes: int) -> tuple[list[int], bytes]:
    """Which messages to try as batched verdicts, and their JSON-lines buffer.

    The common batch (all bytes, no newlines, none oversized, no feedback) is checked
    with a few C passes over the joined buffer; feedback mixed in (an in-process
    replay) is located by searching its tag; anything else is checked message by message.
    """
    n = len(raws)
    try:
        buf = b"\n".join(raws)  # type: ignore[arg-type]
    except TypeError:
        buf = None
    if buf is not None and buf.count(b"\n") == n - 1 and max(map(len, raws)) <= max_bytes:
        if _FEEDBACK_TAG not in buf:
            return list(range(n)), buf
        ends = np.cumsum(np.fromiter(map(len, raws), np.int64, n) + 1)  # type: ignore[arg-type]
        skip = set()
        at = buf.find(_FEEDBACK_TAG)
        while at != -1:
            i = int(np.searchsorted(ends, at, side="right"))
            skip.add(i)
            at = buf.find(_FEEDBACK_TAG, int(ends[i]))
        picked = [i for i in range(n) if i not in skip]
    else:
        picked = [i for i, r in enumerate(raws) if is_verdict_candidate(r, max_bytes)]
    return picked, b"\n".join([raws[i] for i in picked])  # type: ignore[misc]


def decode_verdicts(raws: Sequence[bytes], buf: bytes | None = None) -> list[WireVerdict | None]:
    """Decode candidates (``buf``: their JSON lines, if already joined); ``None`` where a
    message is not a well-typed verdict.

    One C pass over the batch as JSON lines; when some message fails, the batch is split
    in halves until the failures are isolated (failures are rare: a few bad producers).
    """
    if not raws:
        return []
    try:
        out = _lines.decode_lines(b"\n".join(raws) if buf is None else buf)
    except (msgspec.DecodeError, msgspec.ValidationError):
        out = None
    if out is not None and len(out) == len(raws):
        return out
    if len(raws) == 1:
        return [None]
    mid = len(raws) // 2
    return decode_verdicts(raws[:mid]) + decode_verdicts(raws[mid:])


def accept_verdicts(
    decoded: Sequence[WireVerdict | None],
    *,
    now: float,
    max_future_s: float,
    hash_key: bytes | None,
    printable: bool = False,
) -> list[Verdict | None]:
    """The checks msgspec cannot express; the accepted :class:`Verdict` or ``None``.

    ``None`` means "ask the precise validator": it may still accept the event (an ISO
    timestamp) or it names the reason for refusing it. ``printable``: the caller has
    shown every string in the batch printable (pure ASCII, no escapes, no DEL).
    """
    out: list[Verdict | None] = []
    append = out.append
    latest = now + max_future_s
    for f in decoded:
        if f.__class__ is not WireVerdict:  # None, or the never-matching tag
            append(None)
            continue
        ts = f.ts
        if ts.__class__ is not float:
            append(None)  # ISO-8601 strings: parsed and checked by the precise path
            continue
        if ts > _MS_THRESHOLD:
            ts = f.ts = ts / 1000.0
        url = f.url
        if (
            ts < _MIN_TS
            or ts > latest
            or not (url.startswith("https://") or url.startswith("http://") or _http(url))
            or not (
                printable
                or (f.request_id + f.tenant_id + f.model_version + f.policy + url).isprintable()
            )
        ):
            append(None)
            continue
        cats = f.categories
        if cats:
            scores = f.scores
            if len(cats) == 1:
                if cats[0] not in scores:
                    append(None)
                    continue
            elif any(c not in scores for c in cats):
                append(None)
                continue
        domain = f.domain
        if domain is None:
            domain = domain_of(url)
            if not domain:
                append(None)
                continue
        f.domain = domain.lower()
        f.url = scrub_url(url, hash_key)
        append(f)
    return out


def _http(url: str) -> bool:
    head = url[:8].lower()
    return head.startswith("https://") or head.startswith("http://")


def printable_batch(buf: bytes) -> bool:
    """Every string a JSON batch decodes to is printable: no escapes, ASCII, no DEL.

    Raw control characters are invalid inside JSON strings, so non-printable text can
    only come from an escape sequence, a DEL byte or a non-ASCII character.
    """
    return buf.isascii() and b"\\" not in buf and b"\x7f" not in buf
