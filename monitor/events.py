"""The event contract: versioned ``verdict`` and ``feedback`` records.

Events travel as JSON objects whose ``schema`` field names type and version
(``"verdict/1"``, ``"feedback/1"``). A consumer accepts only versions it knows, so a
producer can roll out ``verdict/2`` without silently feeding old code new meanings.

Field reference (``verdict/1``):

============== ======================================================================
request_id     unique id of the classification request (<= 128 chars)
ts             event time: ISO-8601 string, or epoch seconds / milliseconds
tenant_id      school district / customer id (an organisation, never a student)
url            requested URL; scrubbed (query string and fragment removed) on ingest
domain         registrable host; derived from ``url`` when absent
model_version  classifier version that produced the scores
scores         {category: score in [0, 1]}; categories absent scored below 0.01
categories     predicted categories (multi-label); each must also appear in ``scores``
decision       ``block`` or ``allow``
policy         name of the tenant policy that turned categories into the decision
latency_ms     classification latency in milliseconds (>= 0)
source         ``prod``, ``shadow`` or ``replay``
============== ======================================================================

Field reference (``feedback/1``):

============== ======================================================================
feedback_id    unique id (optional; derived from the content when absent)
request_id     the verdict this feedback is about (or give ``url``)
url            the URL the feedback is about, when no request id is known
ts             event time of the feedback
tenant_id      tenant the actor belongs to
actor          ``admin``, ``teacher``, ``student_appeal`` or ``analyst``
action         ``unblock`` (over-blocking evidence), ``block`` / ``report``
               (under-blocking evidence), ``relabel`` or ``confirm``
categories     the categories the actor says are correct (may be empty = safe)
============== ======================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

__all__ = [
    "ACTIONS",
    "ACTORS",
    "DECISIONS",
    "FEEDBACK_SCHEMA",
    "OVERBLOCK_ACTIONS",
    "SOURCES",
    "UNDERBLOCK_ACTIONS",
    "VERDICT_SCHEMA",
    "Feedback",
    "Verdict",
]

VERDICT_SCHEMA = "verdict/1"
FEEDBACK_SCHEMA = "feedback/1"

DECISIONS = frozenset({"block", "allow"})
SOURCES = frozenset({"prod", "shadow", "replay"})
ACTORS = frozenset({"admin", "teacher", "student_appeal", "analyst"})
ACTIONS = frozenset({"unblock", "block", "report", "relabel", "confirm"})
OVERBLOCK_ACTIONS = frozenset({"unblock"})
UNDERBLOCK_ACTIONS = frozenset({"block", "report"})


class Verdict(msgspec.Struct, gc=False):
    """A validated, scrubbed classification decision.

    A msgspec struct rather than a dataclass so the batched decoder
    (:mod:`monitor.fastdecode`) can decode the wire format straight into a subclass of
    it, with no copy per event; ``gc=False`` because millions of them are alive at once
    in a batch and none can form a reference cycle.
    """

    request_id: str
    ts: float  # epoch seconds, UTC
    tenant_id: str
    url: str  # already scrubbed
    domain: str
    model_version: str
    scores: dict[str, float]
    categories: tuple[str, ...]
    decision: str
    policy: str
    latency_ms: float
    source: str

    @property
    def blocked(self) -> bool:
        return self.decision == "block"

    def to_json_dict(self) -> dict:
        return {
            "schema": VERDICT_SCHEMA,
            "request_id": self.request_id,
            "ts": self.ts,
            "tenant_id": self.tenant_id,
            "url": self.url,
            "domain": self.domain,
            "model_version": self.model_version,
            "scores": self.scores,
            "categories": list(self.categories),
            "decision": self.decision,
            "policy": self.policy,
            "latency_ms": self.latency_ms,
            "source": self.source,
        }


@dataclass(slots=True)
class Feedback:
    """A validated human signal about a verdict."""

    feedback_id: str
    request_id: str | None
    url: str | None  # already scrubbed
    ts: float
    tenant_id: str
    actor: str
    action: str
    categories: tuple[str, ...] = field(default_factory=tuple)

    def to_json_dict(self) -> dict:
        out = {
            "schema": FEEDBACK_SCHEMA,
            "feedback_id": self.feedback_id,
            "ts": self.ts,
            "tenant_id": self.tenant_id,
            "actor": self.actor,
            "action": self.action,
            "categories": list(self.categories),
        }
        if self.request_id is not None:
            out["request_id"] = self.request_id
        if self.url is not None:
            out["url"] = self.url
        return out
