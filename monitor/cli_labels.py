"""CLI commands of label efficiency: calibrate, estimate, and the annotation queue.

Registered on the main ``filterwatch`` group by :mod:`monitor.cli`; kept apart because
they share helpers (time ranges, calibration loading) the other commands do not need.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from monitor.errors import ConfigError, InputError

__all__ = ["register"]

_DURATION = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(value: str | None, option: str, now: float) -> float | None:
    """ISO-8601, epoch seconds, or a duration ago (``24h``, ``7d``)."""
    if value is None:
        return None
    v = value.strip()
    if v[:-1].isdigit() and v[-1:] in _DURATION:
        return now - int(v[:-1]) * _DURATION[v[-1]]
    try:
        return float(v)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{option} {value!r}: give ISO-8601 (2026-12-01T00:00Z), epoch seconds, or a "
            "duration ago like 24h or 7d"
        ) from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def parse_duration(value: str, option: str) -> int:
    v = value.strip()
    if v[:-1].isdigit() and v[-1:] in _DURATION and int(v[:-1]) > 0:
        return int(v[:-1]) * _DURATION[v[-1]]
    raise ConfigError(f"{option} {value!r}: give a duration like 5m, 1h or 1d")


def _newest(store) -> float:
    """The end of the newest data in the store: the default end of a range, so replayed
    or simulated history is found without typing its dates."""
    t = store.scalar(f"SELECT toUnixTimestamp(max(minute)) FROM {store.db}.traffic_fleet_1m")
    return float(t) + 60 if t else time.time()


def _range(store, since, until, default_s: int) -> tuple[float, float]:
    end = parse_when(until, "--until", time.time()) if until else _newest(store)
    start = parse_when(since, "--since", end) if since else end - default_s
    if start >= end:
        raise ConfigError("--since must be before --until")
    return start, end


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def _fmt(r) -> str:
    return f"{r.value:.3f} [{r.low:.3f}, {r.high:.3f}]"


def register(cli, ctx_cls, open_store, thresholds_loader) -> None:
    """Add ``calibrate``, ``estimate`` and the ``labels`` group to ``cli``."""
    pass_obj = click.make_pass_decorator(ctx_cls)

    @cli.command()
    @click.option("--eval", "eval_file", default=None, help="Labelled evaluation set.")
    @click.option("--from-store", is_flag=True, help="Also use analyst labels in the store.")
    @click.option("--model-version", default=None, help="Version to calibrate.")
    @click.option("--since", default=None, help="Store labels: verdicts from (default 30d).")
    @click.option("--until", default=None, help="Store labels: verdicts until.")
    @click.option("--out", default="calibration.json", show_default=True)
    @click.option("--seed", type=int, default=0, show_default=True)
    @pass_obj
    def calibrate(obj, eval_file, from_store, model_version, since, until, out, seed) -> None:
        """Fit per-category score calibration (isotonic, Platt or beta, chosen by
        cross-validated log loss) for label-free estimation."""
        import numpy as np

        from monitor.calibration import fit_calibration
        from monitor.estimate_store import NAMES, fetch_labelled

        if eval_file is None and not from_store:
            raise ConfigError("give --eval FILE, --from-store, or both")
        parts, sources = [], []
        version = model_version
        if eval_file is not None:
            from monitor.evalset import read_evalset
            from monitor.modelcard import label_matrices

            es = read_evalset(eval_file, obj.config.url_hash_key).only(model_version)
            version = es.model_versions[0]
            y, _, s = label_matrices(es, NAMES)
            parts.append((s, y.astype(bool), np.array([r.weight for r in es.rows])))
            sources.append(f"eval:{Path(eval_file).name} ({len(es.rows)} pages)")
        if from_store:
            if version is None:
                raise ConfigError("--from-store needs --model-version (or an --eval file)")
            with open_store(obj.config) as store:
                a, b = _range(store, since, until, 30 * 86400)
                lab = fetch_labelled(store, version, a, b)
            parts.append((lab.scores, lab.truth, lab.weights))
            sources.append(
                f"store:{len(lab.request_ids)} labelled verdicts {_stamp(a)}..{_stamp(b)}"
            )
        s = np.vstack([p[0] for p in parts])
        y = np.vstack([p[1] for p in parts])
        w = np.concatenate([p[2] for p in parts])
        cal = fit_calibration(version, NAMES, s, y, w, sources=sources, seed=seed)
        digest = cal.save(Path(out))
        click.echo(f"calibration of {version} from {', '.join(sources)} -> {out} ({digest})")
        for c, k in cal.categories.items():
            cv = k.cv[k.method]
            click.echo(
                f"  {c:<16} {k.method:<9} labels {k.labels:>6} positives "
                f"{k.positives:>8.1f}  log loss {cv['log_loss']:.4f}  ECE {cv['ece']:.4f}"
            )

    @cli.command()
    @click.option("--calibration", "cal_file", default="calibration.json", show_default=True)
    @click.option("--model-version", default=None, help="[default: the calibration's]")
    @click.option(
        "--since",
        default=None,
        help="Start (ISO, epoch, or 24h ago) [default: 24h before --until].",
    )
    @click.option("--until", default=None, help="End [default: the newest data].")
    @click.option(
        "--reference-days",
        type=click.IntRange(min=0),
        default=7,
        show_default=True,
        help="Reference period before --since for prevalence and FNR (0: none).",
    )
    @click.option(
        "--window",
        default=None,
        help="Also estimate per window (e.g. 5m, 1h) and check each for under-blocking.",
    )
    @click.option("--record", is_flag=True, help="Store under-blocking findings as detections.")
    @click.option(
        "--alert",
        is_flag=True,
        help="Also page on findings through the alert "
        "pipeline (configured targets, plus --notify).",
    )
    @click.option("--notify", "notify", multiple=True, help="Extra apprise URL (repeatable).")
    @click.option("--json", "as_json", is_flag=True)
    @pass_obj
    def estimate(
        obj,
        cal_file,
        model_version,
        since,
        until,
        reference_days,
        window,
        record,
        alert,
        notify,
        as_json,
    ) -> None:
        """Label-free precision, recall and FNR of unlabelled traffic, with intervals,
        beside the override-based rates and the audited (measured) estimate."""
        from monitor.calibration import load_calibration
        from monitor.estimate_report import build_report, render_table, series_findings

        cal = load_calibration(Path(cal_file))
        version = model_version or cal.model_version
        step = parse_duration(window, "--window") if window else None
        with open_store(obj.config) as store:
            a, b = _range(store, since, until, 86400)
            rep = build_report(store, cal, version, a, b, reference_days * 86400)
            findings = series_findings(store, cal, version, a, b, step, rep) if step else []
            alerts = []
            if (record or alert) and findings:
                from monitor.estimate_report import alert_findings, record_findings

                record_findings(store, findings)
                if alert:
                    cfg = obj.config.with_notify(list(notify))
                    alerts = alert_findings(store, cfg, findings)
        if as_json:
            out = {**rep.to_json(), "findings": findings}
            out["alerts"] = [
                {"alert_id": al.alert_id, "title": al.title, "delivery": al.delivery_status}
                for al in alerts
            ]
            click.echo(json.dumps(out, default=str))
            return
        if not rep.estimates:
            raise ConfigError(
                f"no traffic of model version {version} between {_stamp(a)} and {_stamp(b)} "
                "UTC in the estimation rollup (score_cal_5m; data stored before it existed "
                "is not in it); check --model-version, --since and --until"
            )
        click.echo(render_table(rep))
        for al in alerts:
            click.echo(f"alert {al.alert_id}: {al.title} ({al.delivery_status})")
        for f in findings:
            click.echo(
                f"UNDER-BLOCKING {f['category']} {f['window_start']}: label-free FNR "
                f"{f['fnr']:.3f} [{f['fnr_low']:.3f}, {f['fnr_high']:.3f}] vs reference "
                f"{f['reference_fnr_high']:.3f} ({f['reading']}); ~{f['missed']:.0f} pages "
                f"allowed that should not have been"
            )
        if step and not findings:
            click.echo("no window shows label-free under-blocking")

    @cli.group()
    def labels() -> None:
        """The annotation queue: pick verdicts to label, import labels, estimate from them."""

    @labels.command("queue")
    @click.option("--category", default=None, help="Only this category's uncertainty.")
    @click.option("--budget", type=click.IntRange(min=1), default=200, show_default=True)
    @click.option("--out", default="label-queue.csv", show_default=True, help=".csv or .jsonl")
    @click.option("--seed", type=int, default=1, show_default=True)
    @click.option("--since", default=None, help="Verdicts from [default: 24h before --until].")
    @click.option("--until", default=None, help="Verdicts until [default: the newest data].")
    @click.option("--model-version", default=None)
    @click.option("--thresholds", "thresholds_file", default=None)
    @pass_obj
    def labels_queue(
        obj, category, budget, out, seed, since, until, model_version, thresholds_file
    ) -> None:
        """Select the verdicts whose labels would most reduce the estimates' uncertainty."""
        from monitor.labelqueue import build_queue
        from monitor.taxonomy import CATEGORY_NAMES

        if category is not None and category not in CATEGORY_NAMES:
            raise ConfigError(f"--category {category!r} is not a category; see the taxonomy")
        if not out.endswith((".csv", ".jsonl")):
            raise ConfigError(f"--out {out}: the queue is written as .csv or .jsonl")
        with open_store(obj.config) as store:
            a, b = _range(store, since, until, 86400)
            q = build_queue(
                store,
                a,
                b,
                budget,
                seed,
                category,
                model_version,
                thresholds_loader(thresholds_file),
            )
        _write_queue(Path(out), q.rows)
        click.echo(
            f"{q.queue_id}: {len(q.rows)} verdicts from {q.population:,} in {q.strata} strata "
            f"({q.tenants} districts), {_stamp(a)}..{_stamp(b)} UTC -> {out}"
        )

    @labels.command("import")
    @click.argument("file", type=click.Path(dir_okay=False))
    @click.option("--queue", "queue_id", default=None, help="The queue these labels answer.")
    @click.option(
        "--to-kafka",
        is_flag=True,
        help="Send the feedback events to Kafka instead of the store directly.",
    )
    @pass_obj
    def labels_import(obj, file, queue_id, to_kafka) -> None:
        """Import analyst labels (CSV/JSONL) as feedback; report disagreement; write the
        labelled set's data card next to FILE."""
        from monitor.labelimport import import_labels

        if not Path(file).exists():
            raise InputError(f"{file}: no such file")
        with open_store(obj.config) as store:
            res = import_labels(store, obj.config, Path(file), queue_id, to_kafka)
        click.echo(
            f"{res.import_id}: {res.labels} labels of {res.verdicts} verdicts by "
            f"{res.annotators} annotator(s); {res.fed} feedback events "
            f"{'sent to Kafka' if to_kafka else 'stored'}; card -> {res.card_path}"
        )
        if res.pairs:
            click.echo(f"inter-annotator agreement on {res.pairs} doubly-labelled verdicts:")
            for c, d in sorted(res.disagreement.items(), key=lambda kv: -kv[1]["disagree"]):
                click.echo(
                    f"  {c:<16} disagree {d['disagree']:>4} / {res.pairs}  "
                    f"Cohen's kappa {d['kappa']:.2f}"
                )

    @labels.command("estimate")
    @click.option("--queue", "queue_id", default=None, help="[default: the newest queue]")
    @click.option("--category", "categories", multiple=True)
    @click.option("--json", "as_json", is_flag=True)
    @pass_obj
    def labels_estimate(obj, queue_id, categories, as_json) -> None:
        """Precision/recall/FNR from a queue's labels, weighted by the sampling design."""
        from monitor.debias import ALL_CATEGORIES, debiased, fetch_queue_units, latest_queue

        with open_store(obj.config) as store:
            q = queue_id or latest_queue(store)
            if q is None:
                raise ConfigError(
                    "no annotation queue in the store; run `filterwatch labels queue`"
                )
            units, strata = fetch_queue_units(store, q)
        if not strata:
            raise ConfigError(f"--queue {q}: no such queue")
        est = debiased(units, strata, list(categories) or ALL_CATEGORIES)
        if as_json:
            click.echo(
                json.dumps({"queue_id": q, "categories": {c: e.to_json() for c, e in est.items()}})
            )
            return
        pop = next(iter(est.values())).population if est else 0
        cov = next(iter(est.values())).covered if est else 0
        click.echo(
            f"{q}: {len(units)} labelled verdicts standing for {pop:,} "
            f"({cov:.0%} of it in strata with a label)"
        )
        click.echo(
            f"{'category':<16} {'precision [95%]':<24} {'recall [95%]':<24} "
            f"{'FNR [95%]':<24} {'naive P':>8} {'naive R':>8}"
        )
        for c, e in est.items():
            if e.tp + e.fp + e.fn <= 0:
                continue
            f = lambda t: f"{t[0]:.3f} [{t[1]:.3f}, {t[2]:.3f}]"  # noqa: E731
            click.echo(
                f"{c:<16} {f(e.precision):<24} {f(e.recall):<24} {f(e.fnr):<24} "
                f"{e.naive_precision:>8.3f} {e.naive_recall:>8.3f}"
            )


def _write_queue(path: Path, rows: list[dict]) -> None:
    """The queue for annotators: ids, scrubbed URL, model output, and empty label columns."""
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for r in rows:
        top = sorted(r["scores"].items(), key=lambda kv: -kv[1])[:5]
        out.append(
            {
                "queue_id": r["queue_id"],
                "request_id": r["request_id"],
                "ts": datetime.fromtimestamp(r["ts"], UTC).isoformat(),
                "tenant_id": r["tenant_id"],
                "model_version": r["model_version"],
                "url": r["url"],
                "predicted": "|".join(r["predicted"]),
                "scores": "|".join(f"{c}:{s:.3f}" for c, s in top),
                "focus": r["focus"],
                "band": r["band"],
                "weight": round(1 / r["inclusion"], 4),
                "true_categories": "",
                "annotator": "",
                "labeled_at": "",
            }
        )
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(o) + "\n" for o in out), encoding="utf-8")
        return
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(out[0]) if out else ["request_id"])
        w.writeheader()
        w.writerows(out)
