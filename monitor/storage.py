"""ClickHouse storage through clickhouse-connect: chDB embedded by default, HTTP server by URL.

One code path and one SQL dialect for both backends. Inserts are batched and carry a
deterministic ``insert_deduplication_token`` so a retried batch (after a crash, with
at-least-once delivery) is dropped by ClickHouse from the table *and* from the rollups
its materialized views feed (``deduplicate_blocks_in_dependent_materialized_views``).
Queries take values only as bound parameters, never pasted into SQL text.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import zlib
from collections.abc import Iterable, Sequence
from importlib import resources
from operator import attrgetter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from monitor.config import StoreConfig
from monitor.errors import StorageError, StoreLockedError
from monitor.events import Verdict
from monitor.join import JoinedFeedback
from monitor.taxonomy import CATEGORIES, SeverityClass

__all__ = ["Store", "dead_letter_row", "dedup_token", "drift_event_row"]

_CIPA = frozenset(c.name for c in CATEGORIES if c.severity_class is SeverityClass.CIPA)
_KEEP_CIPA_SCORE = 0.2
(_rid, _ts, _tenant, _url, _domain, _mv, _scores, _cats, _decision, _policy, _latency,
 _source) = (attrgetter(f) for f in ("request_id", "ts", "tenant_id", "url", "domain",
     "model_version", "scores", "categories", "decision", "policy", "latency_ms",
     "source"))  # fmt: skip

VERDICT_COLUMNS = (
    "request_id", "ts", "tenant_id", "url", "domain", "model_version", "scores",
    "categories", "decision", "policy", "latency_ms", "source", "keep", "src", "src_offset",
)  # fmt: skip
FEEDBACK_COLUMNS = (
    "feedback_id", "request_id", "ts", "tenant_id", "actor", "action", "categories",
    "attributed", "joined", "verdict_ts", "model_version", "domain", "url", "decision",
    "predicted", "src", "src_offset",
)  # fmt: skip
DEAD_LETTER_COLUMNS = (
    "received_at", "origin", "position", "reason", "field", "detail", "excerpt",
)  # fmt: skip
_DEDUP_SETTINGS = {"deduplicate_blocks_in_dependent_materialized_views": 1}


def dedup_token(*parts: object) -> str:
    """A stable token for one batch, from what identifies it (origin, offsets, ids)."""
    h = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=16)
    return h.hexdigest()


class Store:
    """A ClickHouse database holding filterwatch's tables."""

    def __init__(self, client, config: StoreConfig):
        self._client = client
        self.config = config
        self.db = config.database

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def open(cls, config: StoreConfig) -> Store:
        import clickhouse_connect
        from clickhouse_connect.driver.exceptions import ClickHouseError

        try:
            if config.url:
                parts = urlsplit(config.url)
                client = clickhouse_connect.get_client(
                    host=parts.hostname or "localhost",
                    port=parts.port or (8443 if parts.scheme == "https" else 8123),
                    username=parts.username or "default",
                    password=parts.password or "",
                    secure=parts.scheme == "https",
                )
            else:
                Path(config.path).mkdir(parents=True, exist_ok=True)
                with _native_stderr_silenced():
                    client = clickhouse_connect.get_client(interface="chdb", path=config.path)
        except ClickHouseError as exc:
            msg = str(exc)
            if "Unable to open the chdb engine" in msg or "Cannot lock file" in msg:
                raise StoreLockedError(
                    f"the embedded store {config.path} is open in another process (a running "
                    "worker or demo); stop it, or point --store / FILTERWATCH_STORE_PATH "
                    "elsewhere"
                ) from None
            where = "ClickHouse server" if config.url else f"embedded store {config.path}"
            raise StorageError(f"cannot open the {where}: {_first_line(msg)}") from None
        except OSError as exc:
            raise StorageError(f"cannot open the store: {exc.strerror or exc}") from None
        return cls(client, config)

    def with_database(self, database: str) -> Store:
        """The same connection on another database (chDB allows one store per process)."""
        import dataclasses

        cfg = dataclasses.replace(self.config, database=database)
        cfg.validate()
        return Store(self._client, cfg)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a broken connection must not mask the error
            self._client.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- schema -----------------------------------------------------------------------------
    def init_schema(self) -> int:
        """Create database, tables and views if missing; returns statements run."""
        ddl = resources.files("monitor").joinpath("schema.sql").read_text(encoding="utf-8")
        # the analysts' views over those tables live with the dashboards that read them
        views = resources.files("dashboards").joinpath("sql/views.sql")
        ddl += "\n" + views.read_text(encoding="utf-8")
        c = self.config
        ddl = ddl.format(
            db=self.db,
            raw_full_hours=c.raw_full_retention_hours,
            raw_days=c.raw_retention_days,
            rollup_days=c.rollup_retention_days,
        )
        statements = [s.strip().rstrip(";") for s in _split_sql(ddl) if s.strip()]
        for stmt in statements:
            self.command(stmt)
        self._backfill_fleet_rollups()
        return len(statements)

    def _backfill_fleet_rollups(self) -> None:
        """A store made before the fleet rollups existed gets them from its per-tenant
        rollups once (views only see new inserts), so its dashboards keep their history."""
        db = self.db
        for fleet, source, keys, cols in _FLEET_BACKFILL:
            if self.scalar(f"SELECT count() FROM {db}.{fleet}") or not self.scalar(
                f"SELECT count() FROM {db}.{source}"
            ):
                continue
            self.command(
                f"INSERT INTO {db}.{fleet} SELECT {keys}, {cols} FROM {db}.{source} GROUP BY {keys}"
            )

    # -- low level --------------------------------------------------------------------------
    def command(self, sql: str, parameters: dict | None = None):
        from clickhouse_connect.driver.exceptions import ClickHouseError

        try:
            return self._client.command(sql, parameters=parameters)
        except ClickHouseError as exc:
            raise StorageError(f"ClickHouse refused a statement: {_first_line(str(exc))}") from None

    def query(self, sql: str, parameters: dict | None = None):
        """Run a query; returns clickhouse-connect's QueryResult."""
        from clickhouse_connect.driver.exceptions import ClickHouseError

        try:
            return self._client.query(sql, parameters=parameters)
        except ClickHouseError as exc:
            raise StorageError(f"query failed: {_first_line(str(exc))}") from None

    def rows(self, sql: str, parameters: dict | None = None) -> list[tuple]:
        return self.query(sql, parameters).result_rows

    def scalar(self, sql: str, parameters: dict | None = None) -> Any:
        r = self.rows(sql, parameters)
        return r[0][0] if r else None

    def insert(
        self,
        table: str,
        columns: Sequence[Sequence[Any]],
        column_names: Sequence[str],
        token: str | None = None,
    ) -> None:
        from clickhouse_connect.driver.exceptions import ClickHouseError

        if not columns or not len(columns[0]):
            return
        settings = dict(_DEDUP_SETTINGS)
        if token is not None:
            settings["insert_deduplication_token"] = token
        try:
            self._client.insert(
                f"{self.db}.{table}",
                columns,
                column_names=list(column_names),
                column_oriented=True,
                settings=settings,
            )
        except ClickHouseError as exc:
            raise StorageError(f"insert into {table} failed: {_first_line(str(exc))}") from None

    # -- typed inserts ----------------------------------------------------------------------
    def verdict_columns(
        self,
        verdicts: Sequence[Verdict],
        origin: str | Sequence[str] = "",
        offsets: Sequence[int] | None = None,
    ) -> list[list]:
        """Columnar rows for ``verdicts``, with the long-retention ``keep`` flag decided.

        ``origin``/``offsets`` record where each verdict came from (Kafka topic:partition
        and offset, or file and line): the stored data is its own ingest ledger.
        """
        n = len(verdicts)
        sample = int(self.config.sample_allowed * 1_000_000)
        rid = list(map(_rid, verdicts))
        scores = list(map(_scores, verdicts))
        decisions = list(map(_decision, verdicts))
        kept = [
            d == "block" or any(s >= _KEEP_CIPA_SCORE and c in _CIPA for c, s in sc.items())
            if sc
            else d == "block"
            for d, sc in zip(decisions, scores, strict=True)
        ]
        if sample:
            kept = [
                k or zlib.crc32(r.encode()) % 1_000_000 < sample
                for k, r in zip(kept, rid, strict=True)
            ]
        return [
            rid,
            [int(t * 1000) for t in map(_ts, verdicts)],
            list(map(_tenant, verdicts)),
            list(map(_url, verdicts)),
            list(map(_domain, verdicts)),
            list(map(_mv, verdicts)),
            scores,
            list(map(_cats, verdicts)),
            decisions,
            list(map(_policy, verdicts)),
            list(map(_latency, verdicts)),
            list(map(_source, verdicts)),
            [1 if k else 0 for k in kept],
            [origin] * n if isinstance(origin, str) else list(origin),
            list(offsets) if offsets is not None else [0] * n,
        ]

    def insert_verdicts(
        self,
        verdicts: Sequence[Verdict],
        token: str | None,
        origin: str | Sequence[str] = "",
        offsets: Sequence[int] | None = None,
    ) -> None:
        cols = self.verdict_columns(verdicts, origin, offsets)
        self.insert("verdicts", cols, VERDICT_COLUMNS, token)

    def insert_feedback(
        self,
        joined: Sequence[JoinedFeedback],
        token: str | None,
        origin: str = "",
        offsets: Sequence[int] | None = None,
    ) -> int:
        """Insert joined feedback, late-joining what the stream missed; returns how many
        rows the late join found a verdict for."""
        before = sum(j.found for j in joined)
        joined = self.late_join(joined)
        cols: list[list] = [[] for _ in FEEDBACK_COLUMNS]
        offs = offsets if offsets is not None else [0] * len(joined)
        for j, off in zip(joined, offs, strict=True):
            f = j.feedback
            row = (
                f.feedback_id,
                f.request_id or "",
                int(f.ts * 1000),
                f.tenant_id,
                f.actor,
                f.action,
                f.categories,
                j.attributed,
                1 if j.found else 0,
                int(j.verdict_ts * 1000) if j.verdict_ts is not None else None,
                j.model_version,
                j.domain,
                j.url or (f.url or ""),
                j.decision,
                j.predicted,
                origin,
                off,
            )
            for c, x in zip(cols, row, strict=True):
                c.append(x)
        self.insert("feedback", cols, FEEDBACK_COLUMNS, token)
        return sum(j.found for j in joined) - before  # late-joined here

    def late_join(self, joined: Sequence[JoinedFeedback]) -> list[JoinedFeedback]:
        """Join feedback the in-memory cache missed to its verdict in the store.

        The stream's cache holds only verdicts that can draw over/under-blocking evidence
        (blocks, risky allows) for minutes; an analyst's audit of a safe page, hours later,
        misses it. Those labels are what corrects online precision/recall for the bias of
        dispute-driven labels, so they are looked up here (bloom-filter index on
        ``request_id``, bounded to the raw retention in which every verdict is kept).
        Only the verdict's fields are filled in: attribution, and so every rate signal and
        rollup, stays what the stream decided.
        """
        missing = [j for j in joined if not j.found and j.feedback.request_id]
        if not missing:
            return list(joined)
        horizon = self.config.raw_full_retention_hours * 3600
        lo = min(j.feedback.ts for j in missing) - horizon
        hi = max(j.feedback.ts for j in missing) + 3600
        found = {}
        for rid, ts, mv, domain, url, decision, cats in self.rows(
            f"SELECT request_id, toFloat64(ts), model_version, domain, url, toString(decision), "
            f"categories FROM {self.db}.verdicts WHERE request_id IN {{ids:Array(String)}} "
            f"AND ts >= fromUnixTimestamp64Milli({{lo:Int64}}) "
            f"AND ts <= fromUnixTimestamp64Milli({{hi:Int64}})",
            {
                "ids": sorted({j.feedback.request_id for j in missing}),
                "lo": int(lo * 1000),
                "hi": int(hi * 1000),
            },
        ):
            found[rid] = (ts, mv, domain, url, decision, tuple(cats))
        out = []
        for j in joined:
            hit = None if j.found else found.get(j.feedback.request_id or "")
            if hit is None:
                out.append(j)
                continue
            ts, mv, domain, url, decision, predicted = hit
            out.append(
                JoinedFeedback(
                    j.feedback, True, ts, mv, domain, url, decision, predicted, j.attributed
                )
            )
        return out

    def insert_dead_letters(self, rows: Iterable[tuple], token: str | None) -> None:
        cols: list[list] = [[] for _ in DEAD_LETTER_COLUMNS]
        for row in rows:
            for c, x in zip(cols, row, strict=True):
                c.append(x)
        self.insert("dead_letters", cols, DEAD_LETTER_COLUMNS, token)

    def stored_upto(self, origin: str) -> dict[str, int]:
        """Highest stored offset from ``origin`` per table (-1 when none).

        Each batch insert into one table is atomic and batches go in offset order, so a
        table's rows from one source form a prefix of that source: a redelivered message
        at or below its table's mark is already stored and must not be stored again.
        """
        marks = {}
        for table, col_src, col_off in (
            ("verdicts", "src", "src_offset"),
            ("feedback", "src", "src_offset"),
            ("dead_letters", "origin", "position"),
        ):
            m, n = self.rows(
                f"SELECT max({col_off}), count() FROM {self.db}.{table} "
                f"WHERE {col_src} = {{o:String}}",
                {"o": origin},
            )[0]
            marks[table] = int(m) if n else -1
        return marks

    # -- reference profiles -----------------------------------------------------------------
    def save_profile(self, name: str, rows: Sequence[dict], built_at: float) -> int:
        """Store a detector bank's references (``DetectorBank.export_references``)."""
        import orjson

        if not rows:
            return 0
        cols = ["signal", "category", "model_version", "tenant_id", "change", "detector"]
        data = [[r[c] for r in rows] for c in cols]
        data.append([orjson.dumps(r["reference"]).decode() for r in rows])
        n = len(rows)
        token = dedup_token("profile", name, f"{built_at:.3f}", n)
        self.insert(
            "reference_profiles",
            [[name] * n, [int(built_at * 1000)] * n, *data],
            ["profile", "built_at", *cols, "reference"],
            token,
        )
        return n

    def load_profile(self, name: str) -> list[dict]:
        """The newest build of profile ``name`` (empty if there is none)."""
        import orjson

        rows = self.rows(
            f"SELECT signal, category, model_version, tenant_id, change, detector, reference "
            f"FROM {self.db}.reference_profiles FINAL "
            f"WHERE profile = {{p:String}} AND built_at = ("
            f"  SELECT max(built_at) FROM {self.db}.reference_profiles "
            f"  WHERE profile = {{p:String}})",
            {"p": name},
        )
        keys = ("signal", "category", "model_version", "tenant_id", "change", "detector")
        return [
            {**dict(zip(keys, r[:6], strict=True)), "reference": orjson.loads(r[6])} for r in rows
        ]

    def profiles(self) -> list[tuple[str, float, int]]:
        """(name, newest build time, segments) of every stored profile."""
        rows = self.rows(
            f"SELECT profile, built_at, count() FROM {self.db}.reference_profiles FINAL "
            f"GROUP BY profile, built_at ORDER BY profile, built_at"
        )
        newest: dict[str, tuple[str, float, int]] = {}
        for name, built, n in rows:
            ts = built.timestamp() if hasattr(built, "timestamp") else float(built)
            newest[name] = (name, ts, int(n))
        return list(newest.values())

    def insert_rows(self, table: str, rows: Sequence[dict]) -> None:
        """Insert dicts (drift events, alerts) whose keys are column names."""
        if not rows:
            return
        names = list(rows[0])
        cols = [[r[n] for r in rows] for n in names]
        self.insert(table, cols, names, None)


@contextlib.contextmanager
def _native_stderr_silenced():
    """chDB's engine writes its own error text straight to fd 2 when a store is locked;
    our StorageError says it better, in one line, so hide the native noise meanwhile."""
    import os
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def dead_letter_row(origin: str, position: int, rejection, raw) -> tuple:
    """A dead_letters row: reason, field, detail and a scrubbed excerpt of the input."""
    from monitor.scrub import scrub_text

    if isinstance(raw, dict):
        try:
            text = orjson.dumps(raw, default=str).decode()
        except (TypeError, orjson.JSONEncodeError):
            text = repr(raw)
    elif isinstance(raw, bytes):
        text = raw[:2048].decode("utf-8", "replace")
    else:
        text = str(raw)[:2048]
    return (
        int(time.time() * 1000),
        origin,
        position,
        rejection.reason,
        rejection.field or "",
        scrub_text(rejection.detail, 300),
        scrub_text(text, 512),
    )


_FLEET_BACKFILL = (
    ("traffic_fleet_1m", "traffic_1m", "minute, model_version, source",
     "sum(requests), sum(blocked), sum(latency_sum), "
     "quantilesMergeState(0.5, 0.95, 0.99)(latency_q)"),
    ("category_fleet_1m", "category_1m", "minute, model_version, category",
     "sum(scored), sum(predicted), sum(blocked), sum(score_sum), "
     "quantilesMergeState(0.1, 0.5, 0.9)(score_q)"),
)  # fmt: skip


def _split_sql(text: str) -> list[str]:
    """Split a DDL file on semicolons at line ends, dropping comment-only lines."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("--")]
    return "\n".join(lines).split(";\n")


def _first_line(msg: str) -> str:
    msg = msg.strip().splitlines()[0] if msg.strip() else "unknown error"
    return msg[:300]


def drift_event_row(e) -> dict:
    """The drift_events row for a :class:`detectors.DriftEvent` (id stable per detection)."""
    return {
        "event_id": dedup_token(
            e.signal, e.category, e.model_version, e.tenant, e.change, e.detected_at
        ),
        "detected_at": int(e.detected_at * 1000),
        "onset": int(e.onset * 1000),
        "signal": e.signal,
        "category": e.category,
        "model_version": e.model_version,
        "change": e.change,
        "baseline": float(e.baseline),
        "current": float(e.current),
        "ci_low": float(e.ci_low),
        "ci_high": float(e.ci_high),
        "successes": float(e.successes),
        "trials": float(e.trials),
        "trials_of": e.trials_of,
        "statistic": float(e.statistic),
        "threshold": float(e.threshold),
        "effect": float(e.effect) if e.effect != float("inf") else 1e308,
        "detector": e.detector,
        "tenant_id": e.tenant,
        "detail": e.detail,
    }
