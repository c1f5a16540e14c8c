import math

import orjson
import pytest

from monitor.events import Feedback, Verdict
from monitor.validation import REASONS, Rejection, Validator

NOW = 1_796_200_000.0  # 2026-12-02 UTC


def good_verdict(**over):
    v = {
        "schema": "verdict/1",
        "request_id": "r-1",
        "ts": NOW - 10,
        "tenant_id": "district-0001",
        "url": "https://health.org/page?student=42#x",
        "domain": "health.org",
        "model_version": "2026.11.2",
        "scores": {"adult": 0.7, "health": 0.9},
        "categories": ["adult", "health"],
        "decision": "block",
        "policy": "strict",
        "latency_ms": 31.5,
        "source": "prod",
    }
    v.update(over)
    return v


def good_feedback(**over):
    f = {
        "schema": "feedback/1",
        "request_id": "r-1",
        "ts": NOW - 5,
        "tenant_id": "district-0001",
        "actor": "teacher",
        "action": "unblock",
        "categories": ["health"],
    }
    f.update(over)
    return f


@pytest.fixture
def v():
    return Validator(clock=lambda: NOW)


def reason(v, event):
    r = v.validate(event)
    assert isinstance(r, Rejection), f"expected a rejection, got {r!r}"
    return r.reason


def test_good_events(v):
    out = v.validate(good_verdict())
    assert isinstance(out, Verdict)
    assert out.url == "https://health.org/page"  # scrubbed on ingest
    assert out.categories == ("adult", "health")
    fb = v.validate(good_feedback())
    assert isinstance(fb, Feedback) and fb.feedback_id.startswith("fb-")


def test_bytes_and_iso_timestamp(v):
    raw = orjson.dumps(good_verdict(ts="2026-12-01T10:00:00Z"))
    out = v.validate(raw)
    assert isinstance(out, Verdict)
    assert out.ts == pytest.approx(1796119200.0)


def test_epoch_millis_accepted(v):
    out = v.validate(good_verdict(ts=int((NOW - 10) * 1000)))
    assert out.ts == pytest.approx(NOW - 10)


CASES = [
    (b"{not json", "bad_json"),
    (b"[1, 2]", "not_an_object"),
    ({"request_id": "x"}, "missing_field"),
    (good_verdict(schema="verdict/9"), "unknown_schema_version"),
    (good_verdict(request_id=None), "missing_field"),
    (good_verdict(request_id=17), "wrong_type"),
    (good_verdict(request_id=""), "empty_value"),
    (good_verdict(request_id="x" * 200), "too_long"),
    (good_verdict(tenant_id="a\x00b"), "bad_value"),
    (good_verdict(scores={"adult": 1.5}, categories=["adult"]), "score_out_of_range"),
    (good_verdict(scores={"adult": -0.1}, categories=[]), "score_out_of_range"),
    (good_verdict(scores={"adult": math.nan}, categories=[]), "score_not_finite"),
    (good_verdict(scores={"adult": math.inf}, categories=[]), "score_not_finite"),
    (good_verdict(scores={"adult": "high"}, categories=[]), "wrong_type"),
    (good_verdict(scores=[0.1]), "wrong_type"),
    (good_verdict(scores={"cooking": 0.4}, categories=[]), "unknown_category"),
    (good_verdict(categories=["cooking"]), "unknown_category"),
    (good_verdict(categories="adult"), "wrong_type"),
    (good_verdict(categories=["adult", "weapons"]), "inconsistent"),
    (good_verdict(decision="maybe"), "bad_value"),
    (good_verdict(source="test"), "bad_value"),
    (good_verdict(latency_ms=-1), "bad_value"),
    (good_verdict(latency_ms="fast"), "wrong_type"),
    (good_verdict(ts="yesterday"), "bad_timestamp"),
    (good_verdict(ts="2026-12-01T10:00:00"), "bad_timestamp"),
    (good_verdict(ts=12345), "bad_timestamp"),
    (good_verdict(ts=True), "wrong_type"),
    (good_verdict(ts=NOW + 3600), "future_timestamp"),
    (good_verdict(url="ftp://x.org/a"), "bad_url"),
    (good_verdict(url="https://x.org/\x07"), "bad_url"),
    (good_verdict(url=None, domain=None), "missing_field"),
    (good_verdict(url="https:///nohost", domain=None), "bad_url"),
    (good_feedback(action="like"), "bad_value"),
    (good_feedback(actor="parent"), "bad_value"),
    (good_feedback(request_id=None), "missing_field"),
    (good_feedback(categories=["nope"]), "unknown_category"),
]


@pytest.mark.parametrize("event, expected", CASES)
def test_every_rejection_reason(v, event, expected):
    assert reason(v, event) == expected


def test_oversize():
    v = Validator(max_bytes=1024, clock=lambda: NOW)
    raw = orjson.dumps(good_verdict(url="https://x.org/" + "a" * 2000))
    r = v.validate(raw)
    assert isinstance(r, Rejection) and r.reason == "oversize"
    assert "limit is 1024" in r.detail


def test_every_public_reason_is_exercised():
    exercised = {expected for _, expected in CASES} | {"oversize"}
    assert exercised == set(REASONS)


def test_rejection_detail_names_field(v):
    r = v.validate(good_verdict(scores={"adult": 1.7}, categories=["adult"]))
    assert r.field == "scores.adult"
    assert "1.7" in r.detail and "[0, 1]" in r.detail
    assert str(r).startswith("score_out_of_range: ")


def test_feedback_by_url_only(v):
    fb = v.validate(good_feedback(request_id=None, url="https://a.org/x?email=k@s.org"))
    assert isinstance(fb, Feedback)
    assert fb.url == "https://a.org/x" and fb.request_id is None


def test_hash_key_keeps_keyed_query_hash():
    v = Validator(clock=lambda: NOW, hash_key=b"secret")
    a = v.validate(good_verdict(url="https://a.org/x?q=1"))
    b = v.validate(good_verdict(url="https://a.org/x?q=2"))
    assert a.url.startswith("https://a.org/x?_qh=") and a.url != b.url
    assert "q=1" not in a.url
