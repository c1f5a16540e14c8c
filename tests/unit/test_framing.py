"""Framed Kafka messages (JSON lines) split into one message per line, in place."""

from monitor.ingest import Message
from streams.agents import is_framed


def test_framed_message_splits_into_lines_at_its_offset():
    m = Message("v", 3, 41, b'{"a":1}\n{bad\n{"c":3}', framed=True)
    lines = m.lines()
    assert [(x.offset, x.line, x.value) for x in lines] == [
        (41, 0, b'{"a":1}'), (41, 1, b"{bad"), (41, 2, b'{"c":3}'),
    ]  # fmt: skip
    assert all(x.partition == 3 and not x.framed for x in lines)


def test_unframed_message_is_one_event_even_with_newlines():
    pretty = b'{\n  "a": 1\n}'
    assert Message("v", 0, 7, pretty).lines() == [Message("v", 0, 7, pretty)]


def test_framing_header_is_recognised_in_either_header_shape():
    assert is_framed([("fw-framing", b"lines")])
    assert is_framed({"fw-framing": b"lines"})
    assert not is_framed([("fw-framing", b"other")])
    assert not is_framed(None) and not is_framed([])
