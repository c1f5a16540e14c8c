"""The offline evaluation set: a labelled file of pages with the model's scores.

One row per evaluated page. Formats: JSON Lines (``.jsonl``, ``.jsonl.gz``), CSV
(``.csv``) or Parquet (``.parquet``). Columns:

=================== ===================================================================
``id``              unique page id (string)
``url``             the page URL; scrubbed on read (query strings and fragments never
                    leave this module)
``true_categories`` analyst labels, multi-label; empty = safe. JSONL/Parquet: a list;
                    CSV: names separated by ``|``
``scores``          JSONL: an object ``{category: score}``; CSV/Parquet: one column
                    ``score_<category>`` per category. Scores lie in [0, 1]; a missing
                    category scores 0
``model_version``   the model that produced the scores
``tenant_id``       optional
``ts``              optional, epoch seconds or ISO 8601
``label_source``    optional (e.g. ``analyst``, ``vendor``), for the data card
``weight``          optional sampling weight (> 0, default 1): how many production pages
                    the row stands for. An enriched set that kept 1 in 10 safe pages
                    gives those weight 10, so calibration learns production's odds
=================== ===================================================================

Every problem is a :class:`EvalSetError` naming the row (1-based, after the header for
CSV) and the fix; the whole file is checked and the first 20 problems are reported.
"""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson

from monitor.errors import FilterwatchError
from monitor.scrub import scrub_url
from monitor.taxonomy import CATEGORIES, CATEGORY_NAMES

__all__ = ["EvalRow", "EvalSet", "EvalSetError", "looks_like_evalset", "read_evalset"]

_REQUIRED = ("id", "url", "true_categories", "model_version")
_MAX_PROBLEMS = 20


class EvalSetError(FilterwatchError):
    """A bad evaluation file; the message lists row-level reasons."""


@dataclass(frozen=True, slots=True)
class EvalRow:
    page_id: str
    url: str  # scrubbed
    true: frozenset[str]
    scores: dict[str, float]
    model_version: str
    tenant_id: str = ""
    ts: float | None = None
    label_source: str = ""
    weight: float = 1.0


@dataclass
class EvalSet:
    path: str
    rows: list[EvalRow] = field(default_factory=list)

    @property
    def categories(self) -> list[str]:
        """Categories present in labels or scores, in taxonomy order."""
        seen = {c for r in self.rows for c in r.true} | {c for r in self.rows for c in r.scores}
        return [c.name for c in CATEGORIES if c.name in seen]

    @property
    def model_versions(self) -> list[str]:
        return sorted({r.model_version for r in self.rows})

    def only(self, model_version: str | None) -> EvalSet:
        """The rows of one model version; None: the file's only version (or an error)."""
        versions = self.model_versions
        if model_version is None:
            if len(versions) > 1:
                raise EvalSetError(
                    f"{self.path} holds model versions {', '.join(versions)}; "
                    "pick one with --model-version"
                )
            return self
        if model_version not in versions:
            raise EvalSetError(
                f"{self.path} has no rows of model version {model_version!r}; it has "
                f"{', '.join(versions)}"
            )
        return EvalSet(self.path, [r for r in self.rows if r.model_version == model_version])


def _records(path: Path):
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
        opener = gzip.open if name.endswith(".gz") else open
        i = 0
        try:
            with opener(path, "rb") as f:
                for i, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        yield i, orjson.loads(line)
                    except orjson.JSONDecodeError as exc:
                        yield i, ValueError(f"not valid JSON ({exc.msg})")
        except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt archive
            raise EvalSetError(
                f"{path}: cannot read past line {i} ({type(exc).__name__}: {exc}); "
                "the file is damaged or not what its name says"
            ) from None
        return
    if name.endswith((".csv", ".parquet")):
        import pandas as pd

        try:
            df = (
                pd.read_csv(path, dtype=str, keep_default_na=False)
                if name.endswith(".csv")
                else pd.read_parquet(path)
            )
        except Exception as exc:  # pandas/pyarrow raise many kinds; report one line
            raise EvalSetError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
        offset = 2 if name.endswith(".csv") else 1  # CSV rows are counted after the header
        for i, rec in enumerate(df.to_dict("records")):
            yield i + offset, rec
        return
    raise EvalSetError(f"{path}: unknown format; use .jsonl, .jsonl.gz, .csv or .parquet")


def _labels(value, fmt_csv: bool) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split("|") if v.strip()] if value.strip() else []
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        if not all(isinstance(v, str) for v in value):
            raise ValueError("true_categories must be a list of category names")
        return list(value)
    raise ValueError("true_categories must be a list (or '|'-separated names in CSV)")


def _scores(rec: dict) -> dict[str, float]:
    raw = rec.get("scores")
    if raw is None:
        # Column form: an empty cell (CSV "") or a missing value (Parquet null/NaN) means
        # the model gave no score for that category on this page.
        raw = {
            k.removeprefix("score_"): v
            for k, v in rec.items()
            if k.startswith("score_") and not (isinstance(v, float) and math.isnan(v))
        }
    if not isinstance(raw, dict):
        raise ValueError("scores must be an object of category -> score")
    out = {}
    for cat, v in raw.items():
        if v is None or v == "":
            continue
        if cat not in CATEGORY_NAMES:
            raise ValueError(f"unknown category {cat!r} in scores")
        try:
            s = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"score of {cat} is not a number: {v!r}") from None
        if not (math.isfinite(s) and 0.0 <= s <= 1.0):
            raise ValueError(f"score of {cat} is {s!r}, outside [0, 1]")
        if s > 0:
            out[cat] = s
    return out


def _ts(value) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValueError(f"ts {value!r} is neither epoch seconds nor ISO 8601") from None


def _weight(value) -> float:
    if value in (None, ""):
        return 1.0
    try:
        w = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"weight {value!r} is not a number") from None
    if not (math.isfinite(w) and w > 0):
        raise ValueError(f"weight is {w!r}; it must be a positive number")
    return w


def looks_like_evalset(path: str | Path) -> bool:
    """True for CSV/Parquet, and for JSON Lines whose first row is a labelled page (not an
    event): how ``filterwatch replay`` tells an evaluation set from an event capture."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".csv", ".parquet")):
        return True
    if not name.endswith((".jsonl", ".jsonl.gz", ".ndjson")) or not path.is_file():
        return False
    try:
        for _line, rec in _records(path):
            return isinstance(rec, dict) and "true_categories" in rec and "schema" not in rec
    except (OSError, EOFError, gzip.BadGzipFile):
        return False
    return False


def read_evalset(path: str | Path, hash_key: bytes | None = None) -> EvalSet:
    """Read and validate an evaluation file; raises EvalSetError listing bad rows."""
    path = Path(path)
    if not path.exists():
        raise EvalSetError(f"{path}: no such file")
    out = EvalSet(str(path))
    problems: list[str] = []
    seen: set[str] = set()
    bad = 0
    for line, rec in _records(path):
        try:
            if isinstance(rec, Exception):
                raise rec
            if not isinstance(rec, dict):
                raise ValueError("a row must be an object")
            missing = [c for c in _REQUIRED if c not in rec]
            if missing:
                raise ValueError(f"missing column {missing[0]!r}")
            pid = str(rec["id"]).strip()
            if not pid:
                raise ValueError("empty id")
            if pid in seen:
                raise ValueError(f"duplicate id {pid!r}")
            labels = _labels(rec["true_categories"], path.suffix == ".csv")
            unknown = [c for c in labels if c not in CATEGORY_NAMES]
            if unknown:
                raise ValueError(f"unknown category {unknown[0]!r} in true_categories")
            url = rec["url"]
            if not isinstance(url, str) or not url.strip():
                raise ValueError("url must be a non-empty string")
            mv = str(rec["model_version"]).strip()
            if not mv:
                raise ValueError("empty model_version")
            row = EvalRow(
                page_id=pid,
                url=scrub_url(url.strip(), hash_key),
                true=frozenset(labels),
                scores=_scores(rec),
                model_version=mv,
                tenant_id=str(rec.get("tenant_id") or ""),
                ts=_ts(rec.get("ts")),
                label_source=str(rec.get("label_source") or ""),
                weight=_weight(rec.get("weight")),
            )
        except ValueError as exc:
            bad += 1
            if len(problems) < _MAX_PROBLEMS:
                problems.append(f"row {line}: {exc}")
            continue
        seen.add(pid)
        out.rows.append(row)
    if problems:
        more = f" (and {bad - len(problems)} more)" if bad > len(problems) else ""
        raise EvalSetError(
            f"{path}: {bad} bad row(s){more}; fix them and retry:\n  " + "\n  ".join(problems)
        )
    if not out.rows:
        raise EvalSetError(f"{path}: no rows")
    return out
