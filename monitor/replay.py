"""Replay sources: files of events read back as raw messages, and writing simulator output.

A replay file is JSON Lines (optionally gzip-compressed), one ``verdict/1`` or
``feedback/1`` object per line, exactly what the Kafka topics carry. Lines are handed
to the pipeline as raw bytes so they pass the same validation as production messages:
a bad line becomes a dead letter with its line number, the rest is processed.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from monitor.errors import InputError

__all__ = ["count_lines", "read_events", "truth_path", "write_events"]

_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz")


def _check(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path} is a directory; give a .jsonl or .jsonl.gz file")
    if not str(path).endswith(_SUFFIXES):
        raise InputError(f"{path}: unsupported format; replay reads JSON Lines (.jsonl, .jsonl.gz)")


def _open(path: Path):
    return gzip.open(path, "rb") if str(path).endswith(".gz") else path.open("rb")


def read_events(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """Yield (line number, raw line) for every non-empty line."""
    p = Path(path)
    _check(p)
    try:
        with _open(p) as fh:
            for no, line in enumerate(fh, start=1):
                line = line.rstrip(b"\r\n")
                if line.strip():
                    yield no, line
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{p}: cannot read ({exc})") from None


def count_lines(path: str | Path) -> int:
    p = Path(path)
    _check(p)
    n = 0
    with _open(p) as fh:
        for _ in fh:
            n += 1
    return n


def write_events(path: str | Path, events: Iterable[dict]) -> int:
    """Write events as JSON Lines (gzip when the name ends in .gz); returns the count."""
    p = Path(path)
    if not str(p).endswith(_SUFFIXES):
        raise InputError(f"{p}: output must end in .jsonl or .jsonl.gz")
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    gz = str(p).endswith(".gz")
    with gzip.open(p, "wb", compresslevel=3) if gz else p.open("wb") as fh:
        buf = []
        for e in events:
            buf.append(orjson.dumps(e))
            n += 1
            if len(buf) >= 4096:
                fh.write(b"\n".join(buf) + b"\n")
                buf = []
        if buf:
            fh.write(b"\n".join(buf) + b"\n")
    return n


def truth_path(path: str | Path) -> Path:
    """Where the ground truth of a simulated file lives: ``FILE.truth.json``."""
    p = Path(path)
    name = p.name
    for suf in (".gz", ".jsonl", ".ndjson", ".json"):
        if name.endswith(suf):
            name = name[: -len(suf)]
    return p.with_name(name + ".truth.json")
