"""Hostile input, generated: events, evaluation files, config files, CLI arguments.

Events go through the real ingest stage into the real ClickHouse engine (chDB): every
message must come out either stored or dead-lettered with a known reason, never both,
never neither, and never a crash; events that were valid before mutation must be stored.
Config files and CLI arguments must produce one error line, never a traceback.

CI runs the counts below (over 10,000 events alone); ``FW_FUZZ_SCALE=10`` multiplies
every example budget for a run by hand.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import json
import os
import string

import click
import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import Config, load_config
from monitor.errors import ConfigError, FilterwatchError
from monitor.ingest import IngestStage, Message
from monitor.simulator import SimConfig, Simulator
from monitor.validation import REASONS

pytestmark = pytest.mark.integration

SCALE = int(os.environ.get("FW_FUZZ_SCALE", "1"))


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=True,  # CI reproducible; FW_FUZZ_SCALE>1 by hand explores further
        database=None,
    )


_POOL = [
    orjson.loads(orjson.dumps(e))
    for e in Simulator(
        SimConfig(scenario="overblock-after-deploy", rate=200, duration_s=20, onset_s=5, seed=5)
    ).events()
]
_IDS = itertools.count()

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
hostile_text = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x1F), max_size=50),
    st.just("https://a.example/p?student=jane.doe@school.org&token=abc#frag"),
    st.just("\u202ehttps://evil/\u0000\ud7ff"),
    st.integers(min_value=1000, max_value=100_000).map(lambda n: "x" * n),  # huge strings
)


def _fresh(e: dict) -> dict:
    e = dict(e)
    e["request_id"] = f"fz-{next(_IDS):012d}"  # fixed width: draws stay replayable
    if e.get("feedback_id"):
        e["feedback_id"] = f"fzf-{next(_IDS):012d}"
    return e


@st.composite
def message(draw) -> tuple[bytes, bool]:
    """(raw bytes, known valid) for one Kafka message."""
    base = _fresh(draw(st.sampled_from(_POOL)))
    kind = draw(
        st.sampled_from(
            [
                "valid", "valid", "duplicate_id", "truncated", "wrong_type", "drop_field",
                "huge_field", "huge_array", "non_finite", "url_chars", "clock_skew",
                "schema", "garbage", "extra_field",
            ]
        )
    )  # fmt: skip
    if kind == "valid":
        return orjson.dumps(base), True
    if kind == "duplicate_id":
        base["request_id"] = "fz-duplicate-00"  # valid, twice and more: stored each time
        return orjson.dumps(base), True
    if kind == "truncated":
        raw = orjson.dumps(base)
        return raw[: draw(st.integers(0, max(0, len(raw) - 1)))], False
    key = draw(st.sampled_from(sorted(base)))
    if kind == "wrong_type":
        base[key] = draw(json_values)
    elif kind == "drop_field":
        base.pop(key)
    elif kind == "huge_field":
        base[key] = "y" * draw(st.integers(10_000, 200_000))
    elif kind == "huge_array":
        base[key] = list(range(draw(st.integers(1_000, 50_000))))
    elif kind == "non_finite":
        token = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]))
        cat = draw(st.sampled_from(["adult", "self_harm", "violence"]))
        raw = orjson.dumps({**base, "scores": {cat: 0.5}}).replace(b"0.5", token.encode(), 1)
        return raw, False
    elif kind == "url_chars":
        base["url"] = draw(hostile_text)
    elif kind == "clock_skew":
        base["ts"] = draw(
            st.one_of(
                st.floats(allow_nan=False, allow_infinity=False),
                st.integers(-(2**63), 2**63),
                st.text(max_size=30),
            )
        )
    elif kind == "schema":
        base["schema"] = draw(st.one_of(st.text(max_size=20), st.sampled_from(
            ["verdict/2", "verdict/0", "feedback/9", "VERDICT/1", "verdict/1 "])))  # fmt: skip
    elif kind == "garbage":
        return draw(st.binary(max_size=300)), False
    elif kind == "extra_field":
        base[draw(st.text(max_size=12))] = draw(json_values)
    return _dumps(base, ascii_only=draw(st.booleans())), False


def _dumps(obj, ascii_only: bool = True) -> bytes:
    """JSON any parser would write, big integers and lone surrogates included."""
    return json.dumps(obj, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def test_hostile_events_are_stored_or_dead_lettered_exactly_once(store):
    stage = IngestStage(Config(store=store.config), store)
    seen = {"messages": 0, "valid": 0, "stored": 0, "dead": 0, "batches": 0}
    topics = itertools.count()

    @fuzz(300)
    @given(st.lists(message(), min_size=20, max_size=60))
    def run(batch):
        topic = f"fz{next(topics)}"
        msgs = [Message(topic, 0, i, raw) for i, (raw, _) in enumerate(batch)]
        out = stage.process(msgs)
        dead_at = {d.offset for d in out.dead}
        assert len(dead_at) == len(out.dead)  # one dead letter per refused message
        assert out.verdicts + out.feedback + len(out.dead) == len(batch)
        assert out.skipped == 0
        for d in out.dead:
            assert d.reason in REASONS, d.reason
        for i, (_, valid) in enumerate(batch):
            if valid:
                assert i not in dead_at, f"a valid event was refused: {batch[i][0][:200]!r}"
        stored = store.scalar(
            f"SELECT count() FROM {store.db}.verdicts WHERE src = {{s:String}}",
            {"s": f"{topic}:0"},
        )
        assert stored == out.verdicts
        seen["messages"] += len(batch)
        seen["valid"] += sum(v for _, v in batch)
        seen["stored"] += out.verdicts + out.feedback
        seen["dead"] += len(out.dead)
        seen["batches"] += 1

    run()
    print(f"hostile events: {seen}")
    # Hypothesis sizes its lists adaptively (8,700 to 10,600 messages over the same 300
    # batches in two runs): count what is guaranteed, every batch of at least 20.
    assert seen["batches"] == 300 * SCALE and seen["messages"] >= 20 * seen["batches"]
    assert seen["dead"] > seen["messages"] // 4 and seen["stored"] > seen["valid"] // 2
    # nothing stored carries a query string or a fragment
    leaked = store.scalar(
        f"SELECT count() FROM {store.db}.verdicts WHERE position(url, '?') > 0 "
        "OR position(url, '#') > 0 OR position(url, 'jane.doe') > 0"
    )
    assert leaked == 0


# -- offline evaluation files -----------------------------------------------------------


@st.composite
def eval_file(draw) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from([".jsonl", ".jsonl.gz", ".csv"]))
    rows = []
    for _ in range(draw(st.integers(0, 30))):
        row = {
            "id": draw(st.one_of(st.text(max_size=8), st.integers())),
            "url": draw(hostile_text),
            "true_categories": draw(st.one_of(
                st.lists(st.sampled_from(["adult", "self_harm", "nope", ""]), max_size=3),
                json_values)),
            "scores": draw(st.one_of(st.dictionaries(
                st.sampled_from(["adult", "self_harm", "x"]),
                st.floats(allow_nan=True, allow_infinity=True), max_size=3), json_values)),
            "model_version": draw(st.one_of(st.text(max_size=8), st.none())),
            "ts": draw(st.one_of(st.none(), st.text(max_size=20), st.floats())),
        }  # fmt: skip
        if draw(st.booleans()):
            row.pop(draw(st.sampled_from(sorted(row))))
        rows.append(row)
    if suffix == ".csv":
        cols = ["id", "url", "true_categories", "model_version", "score_adult", "ts"]
        lines = [",".join(cols)]
        for r in rows:
            cells = [str(r.get(c, r.get("scores", {}) if c == "score_adult" else "")) for c in cols]
            lines.append(",".join(c.replace("\n", " ") for c in cells))
        body = "\n".join(lines).encode("utf-8", "surrogatepass")
    else:
        body = b"\n".join(
            _dumps(r) if draw(st.booleans()) else
            draw(st.binary(max_size=80)) for r in rows
        )  # fmt: skip
        if suffix == ".jsonl.gz":
            body = gzip.compress(body)
            if draw(st.booleans()):
                body = body[: draw(st.integers(0, len(body)))]  # truncated archive
    return suffix, body


def test_eval_reader_rejects_hostile_files_with_a_clear_error(tmp_path):
    from monitor.evalset import read_evalset

    n = itertools.count()

    @fuzz(200)
    @given(eval_file())
    def run(f):
        suffix, body = f
        path = tmp_path / f"eval{next(n)}{suffix}"
        path.write_bytes(body)
        try:
            read_evalset(path)
        except FilterwatchError as exc:
            assert str(exc).strip() and "Traceback" not in str(exc)

    run()


# -- config files -----------------------------------------------------------------------

_CONFIG_KEYS = {
    "store": ["path", "url", "database", "sample_allowed", "batch_rows", "raw_retention_days"],
    "detect": ["window_s", "warmup_windows", "alpha", "min_trials"],
    "alerts": ["group_wait_s", "routes", "rules", "max_attempts", "apprise_config"],
    "ingest": ["max_event_bytes", "join_horizon_s"],
    "kafka": ["bootstrap", "partitions", "batch_max", "session_timeout_s"],
    "notify": [],
}


@st.composite
def config_text(draw) -> str:
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(max_size=200))  # not even YAML, most of the time
    doc: dict = {}
    for section in draw(st.lists(st.sampled_from([*_CONFIG_KEYS, "stor", "x"]), max_size=4)):
        keys = _CONFIG_KEYS.get(section, [])
        if section == "notify":
            doc[section] = draw(
                st.one_of(
                    json_values,
                    st.lists(
                        st.fixed_dictionaries(
                            {"url": hostile_text},
                            optional={"tags": json_values, "format": json_values},
                        )
                    ),
                )
            )
            continue  # fmt: skip
        doc[section] = draw(
            st.one_of(
                json_values,
                st.dictionaries(st.sampled_from([*keys, "zz"]) if keys else st.text(max_size=6),
                                json_values, max_size=4),
            )
        )  # fmt: skip
    return yaml.safe_dump(doc, allow_unicode=True)


def test_config_fuzz_gives_one_line_errors(tmp_path):
    n = itertools.count()

    @fuzz(500)
    @given(config_text())
    def run(text):
        p = tmp_path / f"c{next(n)}.yaml"
        p.write_text(text, encoding="utf-8", errors="surrogatepass")
        p.chmod(0o600)
        try:
            load_config(p, env={})
        except ConfigError as exc:
            msg = str(exc)
            assert msg and "\n" not in msg and "Traceback" not in msg, msg

    run()


# -- command-line arguments -------------------------------------------------------------


def _commands(group: click.Group, path=()) -> list[tuple[tuple[str, ...], click.Command]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        out.append(((*path, name), cmd))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, (*path, name))
    return out


def _numeric_options(cmd: click.Command) -> list[str]:
    numeric = (click.types.IntParamType, click.types.FloatParamType)
    return [
        p.opts[0]
        for p in cmd.params
        if isinstance(p, click.Option) and isinstance(p.type, numeric) and not p.is_flag
    ]


def test_cli_fuzz_gives_one_line_errors():
    from monitor.cli import cli, main

    commands = _commands(cli)
    word = st.text(alphabet=string.ascii_letters + string.digits + "-_./=", max_size=12)

    @st.composite
    def bad_argv(draw) -> list[str]:
        path, cmd = draw(st.sampled_from(commands))
        noise = draw(st.lists(word, max_size=3))
        numeric = _numeric_options(cmd)
        if numeric and draw(st.booleans()):
            opt = draw(st.sampled_from(numeric))
            bad = draw(st.sampled_from(["abc", "1e", "--", "", "0x", "nan?", "１"]))
            return [*path, opt, bad, *noise]
        unknown = "--no-such-" + draw(st.text(alphabet=string.ascii_lowercase, min_size=1))
        args = [*noise]
        args.insert(draw(st.integers(0, len(args))), unknown)
        return [*path, *args]

    @fuzz(300)
    @given(bad_argv())
    def run(argv):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(argv)
        lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
        assert rc == 2, (argv, rc, err.getvalue()[-500:])
        assert len(lines) == 1 and "Traceback" not in lines[0], (argv, err.getvalue()[-500:])

    run()


def test_scores_that_are_not_finite_never_reach_the_store(store):
    """The non-finite spellings JSON parsers disagree on, one by one."""
    stage = IngestStage(Config(store=store.config), store)
    base = _fresh(next(e for e in _POOL if e["schema"].startswith("verdict")))
    tokens = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400", b"1E309"]
    msgs = []
    for i, tok in enumerate(tokens):
        raw = orjson.dumps({**base, "scores": {"adult": 0.25}}).replace(b"0.25", tok, 1)
        msgs.append(Message("nonfinite", 0, i, raw))
    out = stage.process(msgs)
    assert len(out.dead) == len(tokens) and out.verdicts == 0
    assert {d.reason for d in out.dead} <= {"bad_json", "score_not_finite"}
