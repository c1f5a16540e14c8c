"""Importing analyst labels: validate, store, feed as feedback, and card the labelled set.

File: CSV (``true_categories`` separated by ``|``) or JSON Lines, one label per row:

============== ================================================================
request_id     the labelled verdict (or give ``url``)
url            the labelled page, when no verdict is meant; scrubbed on read
true_categories the categories the page truly belongs to; empty = safe
annotator      who labelled it (a staff id; never a student)
labeled_at     when (ISO-8601 or epoch seconds); default: the import time
queue_id       optional: the annotation queue the row answers
============== ================================================================

The queue's own CSV (``filterwatch labels queue``) is a valid import file once its
``true_categories`` and ``annotator`` columns are filled in; its extra columns are ignored.

Bad rows are reported (row number and reason) and skipped; the rest is imported. Each
label becomes an analyst ``confirm``/``relabel`` feedback event, so the online metrics,
the calibration's fresh-label check and the de-biased estimate all see it. Importing the
same file twice changes nothing (the import id is the file's content hash).
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from monitor.config import Config
from monitor.errors import FilterwatchError
from monitor.evalset import _ts
from monitor.scrub import scrub_url
from monitor.storage import Store
from monitor.taxonomy import CATEGORIES, CATEGORY_NAMES

__all__ = ["ImportResult", "LabelImportError", "import_labels", "parse_labels"]

_MAX_PROBLEMS = 20


class LabelImportError(FilterwatchError):
    """A label file that cannot be imported at all."""


@dataclass(frozen=True)
class Label:
    row: int
    request_id: str
    url: str
    categories: tuple[str, ...]
    annotator: str
    labeled_at: float
    queue_id: str


@dataclass
class ImportResult:
    import_id: str
    labels: int
    verdicts: int
    annotators: int
    fed: int
    bad: int
    problems: list[str]
    pairs: int = 0
    disagreement: dict[str, dict] = field(default_factory=dict)
    card_path: str = ""


def _rows(path: Path):
    name = path.name.lower()
    try:
        if name.endswith(".csv"):
            with path.open(newline="", encoding="utf-8") as fh:
                for i, rec in enumerate(csv.DictReader(fh), start=2):
                    yield i, rec
        elif name.endswith((".jsonl", ".ndjson")):
            with path.open(encoding="utf-8") as fh:
                for i, line in enumerate(fh, start=1):
                    if line.strip():
                        try:
                            yield i, json.loads(line)
                        except ValueError as exc:
                            yield i, ValueError(f"not valid JSON ({exc})")
        else:
            raise LabelImportError(f"{path}: unknown format; labels are .csv or .jsonl")
    except UnicodeDecodeError:
        raise LabelImportError(f"{path}: not UTF-8 text; save it as UTF-8 and retry") from None


def parse_labels(
    path: Path, hash_key: bytes | None, now: float
) -> tuple[list[Label], list[str], int]:
    """(labels, first problems, bad row count)."""
    out, problems, bad = [], [], 0
    for i, rec in _rows(path):
        try:
            if isinstance(rec, Exception):
                raise rec
            if not isinstance(rec, dict):
                raise ValueError("a row must be an object")
            rid = str(rec.get("request_id") or "").strip()
            url = str(rec.get("url") or "").strip()
            if not rid and not url:
                raise ValueError("give request_id or url")
            if len(rid) > 128:
                raise ValueError("request_id longer than 128 characters")
            raw = rec.get("true_categories")
            if raw is None:
                raise ValueError("missing true_categories (empty means safe)")
            cats = raw if isinstance(raw, list) else [c.strip() for c in str(raw).split("|")]
            cats = [c for c in cats if c]
            unknown = [c for c in cats if c not in CATEGORY_NAMES]
            if unknown:
                raise ValueError(f"unknown category {unknown[0]!r}")
            annotator = str(rec.get("annotator") or "").strip()
            if not annotator:
                raise ValueError("missing annotator")
            ts = _ts(rec.get("labeled_at"))
            out.append(
                Label(
                    i,
                    rid,
                    scrub_url(url, hash_key) if url else "",
                    tuple(sorted(set(cats))),
                    annotator[:64],
                    now if ts is None else ts,
                    str(rec.get("queue_id") or "").strip(),
                )
            )
        except ValueError as exc:
            bad += 1
            if len(problems) < _MAX_PROBLEMS:
                problems.append(f"row {i}: {exc}")
    return out, problems, bad


def _verdicts(store: Store, ids: list[str]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """request id -> (tenant, predicted): the queue's copy, else the raw verdict."""
    found = {}
    if not ids:
        return found
    for rid, tenant, pred in store.rows(
        f"SELECT request_id, any(tenant_id), any(predicted) FROM {store.db}.label_queue "
        "WHERE request_id IN {ids:Array(String)} GROUP BY request_id",
        {"ids": ids},
    ):
        found[rid] = (tenant, tuple(pred))
    rest = [r for r in ids if r not in found]
    if rest:
        for rid, tenant, pred in store.rows(
            f"SELECT request_id, any(tenant_id), any(categories) FROM {store.db}.verdicts "
            "WHERE request_id IN {ids:Array(String)} GROUP BY request_id",
            {"ids": rest},
        ):
            found[rid] = (tenant, tuple(pred))
    return found


def agreement(labels: list[Label]) -> tuple[int, dict[str, dict]]:
    """Per category, over verdicts labelled by two or more annotators: how many pairs
    disagree and Cohen's kappa of the first two annotators (pure)."""
    by_item: dict[str, dict[str, set[str]]] = defaultdict(dict)
    for lab in labels:
        by_item[lab.request_id or lab.url][lab.annotator] = set(lab.categories)
    pairs = [list(a.values())[:2] for a in by_item.values() if len(a) >= 2]
    out = {}
    if not pairs:
        return 0, out
    for c in (c.name for c in CATEGORIES):
        a = [c in p[0] for p in pairs]
        b = [c in p[1] for p in pairs]
        if not any(a) and not any(b):
            continue
        n = len(pairs)
        po = sum(x == y for x, y in zip(a, b, strict=True)) / n
        pa, pb = sum(a) / n, sum(b) / n
        pe = pa * pb + (1 - pa) * (1 - pb)
        kappa = 1.0 if pe >= 1 else (po - pe) / (1 - pe)
        out[c] = {"disagree": sum(x != y for x, y in zip(a, b, strict=True)), "kappa": kappa}
    return len(pairs), out


def _card(
    path: Path,
    digest: str,
    labels: list[Label],
    bad: int,
    problems: list[str],
    pairs: int,
    disagreement: dict,
    queues: list[dict],
) -> dict:
    balance = Counter(c for lab in labels for c in lab.categories)
    f = lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")  # noqa: E731
    times = [lab.labeled_at for lab in labels]
    return {
        "labelled_set": path.name,
        "sha256": digest,
        "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "size": {
            "labels": len(labels),
            "verdicts": len({lab.request_id or lab.url for lab in labels}),
            "bad_rows": bad,
        },
        "class_balance": {
            "safe": sum(1 for lab in labels if not lab.categories),
            **dict(balance.most_common()),
        },
        "annotators": dict(Counter(lab.annotator for lab in labels).most_common()),
        "dates": {"first": f(min(times)), "last": f(max(times))} if times else {},
        "selection": queues
        or [
            {
                "method": "not from an annotation queue: no sampling "
                "weights, so estimates from these labels are not de-biased"
            }
        ],
        "inter_annotator": {"doubly_labelled": pairs, "per_category": disagreement},
        "problems": problems,
    }


def _queues(store: Store, ids: set[str]) -> list[dict]:
    if not ids:
        return []
    out = []
    for q, created, seed, strata, n, pop, a, b, cats in store.rows(
        f"SELECT q.queue_id, any(q.created_at), any(q.seed), "
        f"uniqExact(s.stratum), any(qn.n), sum(s.stratum_size), any(q.since), any(q.until), "
        f"groupUniqArray(s.focus) FROM {store.db}.label_strata AS s "
        f"JOIN (SELECT queue_id, any(created_at) AS created_at, any(seed) AS seed, "
        f"any(since) AS since, any(until) AS until FROM {store.db}.label_queue "
        f"GROUP BY queue_id) AS q ON q.queue_id = s.queue_id "
        f"JOIN (SELECT queue_id, count() AS n FROM {store.db}.label_queue GROUP BY queue_id) "
        f"AS qn ON qn.queue_id = s.queue_id "
        "WHERE s.queue_id IN {ids:Array(String)} GROUP BY q.queue_id",
        {"ids": sorted(ids)},
    ):
        out.append(
            {
                "method": "stratified random sample (filterwatch labels queue): focus category x "
                "threshold band x district, Neyman allocation, CIPA and firing x3",
                "queue_id": q,
                "created_at": str(created),
                "seed": int(seed),
                "strata": int(strata),
                "selected": int(n),
                "population": int(pop),
                "window": [str(a), str(b)],
                "focus_categories": sorted(cats),
            }
        )
    return out


def _card_markdown(card: dict) -> str:
    lines = [
        f"# Data card: {card['labelled_set']}",
        "",
        f"- sha256: `{card['sha256']}`",
        f"- imported: {card['imported_at']}",
        f"- labels: {card['size']['labels']} of {card['size']['verdicts']} verdicts "
        f"({card['size']['bad_rows']} bad rows skipped)",
        f"- dates: {card['dates'].get('first', '-')} to {card['dates'].get('last', '-')}",
        "",
        "## Class balance",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in card["class_balance"].items()]
    lines += ["", "## Annotators", ""] + [f"- {k}: {v}" for k, v in card["annotators"].items()]
    lines += ["", "## Selection", ""]
    for q in card["selection"]:
        lines.append("- " + "; ".join(f"{k}: {v}" for k, v in q.items()))
    ia = card["inter_annotator"]
    lines += [
        "",
        "## Inter-annotator agreement",
        "",
        f"{ia['doubly_labelled']} verdicts labelled twice.",
    ]
    for c, d in ia["per_category"].items():
        lines.append(f"- {c}: {d['disagree']} disagreements, Cohen's kappa {d['kappa']:.2f}")
    return "\n".join(lines) + "\n"


def import_labels(
    store: Store, cfg: Config, path: Path, queue_id: str | None, to_kafka: bool
) -> ImportResult:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    import_id = f"labels-{digest[:12]}"
    now = time.time()
    labels, problems, bad = parse_labels(path, cfg.url_hash_key, now)
    if not labels:
        raise LabelImportError(
            f"{path}: no valid labels ({bad} bad rows)"
            + (f"; first: {problems[0]}" if problems else "")
        )
    if queue_id:
        labels = [lab if lab.queue_id else replace(lab, queue_id=queue_id) for lab in labels]
    known = _verdicts(store, sorted({lab.request_id for lab in labels if lab.request_id}))
    events = []
    for lab in labels:
        tenant, predicted = known.get(lab.request_id, ("(unknown)", ()))
        fid = hashlib.sha256(f"{import_id}/{lab.request_id}/{lab.url}/{lab.annotator}".encode())
        ev = {
            "schema": "feedback/1",
            "feedback_id": f"l-{fid.hexdigest()[:24]}",
            "ts": lab.labeled_at,
            "tenant_id": tenant or "(unknown)",
            "actor": "analyst",
            "action": "confirm"
            if set(lab.categories) == set(predicted) and lab.request_id in known
            else "relabel",
            "categories": list(lab.categories),
        }
        if lab.request_id:
            ev["request_id"] = lab.request_id
        else:
            ev["url"] = lab.url
        events.append(ev)
    _store_labels(store, import_id, labels)
    if to_kafka:
        from streams.produce import produce
        from streams.topics import create_topics

        create_topics(cfg.kafka)
        fed = produce(cfg.kafka, iter(events))
    else:
        from monitor.pipeline import Pipeline

        pipe = Pipeline(cfg, store, origin=f"labels:{path.name}")
        for i, ev in enumerate(events, start=1):
            pipe.process(ev, position=i)
        fed = pipe.finish().feedback
    pairs, disagreement = agreement(labels)
    queues = _queues(store, {lab.queue_id for lab in labels if lab.queue_id})
    card = _card(path, digest, labels, bad, problems, pairs, disagreement, queues)
    card_path = path.with_name(path.name + ".card.json")
    card_path.write_text(json.dumps(card, indent=1), encoding="utf-8")
    path.with_name(path.name + ".card.md").write_text(_card_markdown(card), encoding="utf-8")
    store.insert(
        "label_sets",
        [[import_id], [digest], [path.name], [datetime.now(UTC)], [json.dumps(card)]],
        ["import_id", "sha256", "file_name", "imported_at", "card"],
        f"label_sets:{import_id}",
    )
    return ImportResult(
        import_id,
        len(labels),
        card["size"]["verdicts"],
        len(card["annotators"]),
        fed,
        bad,
        problems,
        pairs,
        disagreement,
        str(card_path),
    )


def _store_labels(store: Store, import_id: str, labels: list[Label]) -> None:
    cols = [
        [import_id] * len(labels),
        [lab.request_id for lab in labels],
        [lab.url for lab in labels],
        [lab.annotator for lab in labels],
        [list(lab.categories) for lab in labels],
        [datetime.fromtimestamp(lab.labeled_at, UTC) for lab in labels],
        [lab.queue_id for lab in labels],
    ]
    store.insert(
        "labels",
        cols,
        ["import_id", "request_id", "url", "annotator", "categories", "labeled_at", "queue_id"],
        f"labels:{import_id}",
    )
