"""A written root-cause analysis draft for one alert, from ClickHouse.

``filterwatch rca ALERT_ID --out rca.md`` writes a markdown document with the timeline
(change point, detection, notifications, resolve), a per-minute plot (PNG beside it) of
the category's block rate and feedback around the incident, the evidence tables the alert
carried, every affected segment and drift event, example verdicts with the feedback they
drew, and empty sections for cause, impact and remediation. The draft states facts from
the store; the reasoning is left to the people who fill it in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from monitor.errors import FilterwatchError
from monitor.storage import Store

__all__ = ["load_alert", "write_rca"]

_PAD_S = 1800.0  # minutes of context either side of the incident


def _iso(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def load_alert(store: Store, alert_id: str) -> dict:
    """The newest state of one alert, as a dict (times in epoch seconds)."""
    cols = (
        "alert_id, category, direction, severity, segment, signals, status, title, "
        "body_text, context_json, sql_query, runbook, delivery_status, delivery_detail, "
        "model_version, affected_segments, silenced_by, incident_id, rate_now, "
        "rate_baseline, ci_low, ci_high, trials_of"
    )
    names = [c.strip() for c in cols.split(",")]
    times = ("onset", "detected_at", "created_at", "resolved_at")
    rows = store.rows(
        f"SELECT {cols}, "
        + ", ".join(f"toUnixTimestamp64Milli({t}) AS {t}_ms" for t in times)
        + f" FROM {store.db}.alerts WHERE alert_id = {{id:String}} "
        "ORDER BY version DESC LIMIT 1",
        {"id": alert_id},
    )
    if not rows:
        raise FilterwatchError(
            f"no alert {alert_id!r} in database {store.db}; "
            "`filterwatch alerts list` shows the alert ids"
        )
    r = rows[0]
    d = dict(zip(names, r[: len(names)], strict=True))
    for t, v in zip(times, r[len(names) :], strict=True):
        d[t] = v / 1000.0 if v is not None else None
    d["context"] = orjson.loads(d.pop("context_json") or "{}")
    return d


def _timeline(store: Store, a: dict, start: float, end: float) -> list[tuple]:
    """Per minute: requests, blocks of the category, unblocks and reports attributed to it."""
    db = store.db
    p = {
        "cat": a["category"],
        "s": int(start * 1000),
        "e": int(end * 1000),
    }
    span = (
        "ts >= fromUnixTimestamp64Milli({s:Int64}, 'UTC') "
        "AND ts < fromUnixTimestamp64Milli({e:Int64}, 'UTC')"
    )
    verdicts = store.rows(
        "SELECT toUnixTimestamp(toStartOfMinute(ts)) AS m, count(), "
        "countIf(has(categories, {cat:String}) AND decision = 'block') "
        f"FROM {db}.verdicts WHERE {span} GROUP BY m ORDER BY m",
        p,
    )
    feedback = dict(
        (m, (u, r))
        for m, u, r in store.rows(
            "SELECT toUnixTimestamp(toStartOfMinute(ts)) AS m, "
            "countIf(action = 'unblock' AND has(attributed, {cat:String})), "
            "countIf(action IN ('report', 'block') AND has(attributed, {cat:String})) "
            f"FROM {db}.feedback WHERE {span} GROUP BY m",
            p,
        )
    )
    return [(m, n, b, *feedback.get(m, (0, 0))) for m, n, b in verdicts]


def _plot(rows: list[tuple], a: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [datetime.fromtimestamp(m, UTC) for m, *_ in rows]
    rate = [100.0 * b / n if n else 0.0 for _, n, b, _, _ in rows]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    ax1.plot(t, rate, color="#1f4e79", lw=1.5)
    ax1.set_ylabel(f"{a['category']} blocked, % of requests")
    ax2.bar(t, [u for *_, u, _ in rows], width=0.0006, color="#c55a11", label="unblock requests")
    ax2.bar(
        t,
        [r for *_, r in rows],
        bottom=[u for *_, u, _ in rows],
        width=0.0006,
        color="#7030a0",
        label="reports",
    )
    ax2.set_ylabel("feedback per minute")
    ax2.legend(loc="upper left", fontsize=8)
    for ax in (ax1, ax2):
        for ts, label, style in (
            (a["onset"], "change point", "--"),
            (a["detected_at"], "detected", "-"),
            (a["resolved_at"], "resolved", ":"),
        ):
            if ts is not None:
                ax.axvline(datetime.fromtimestamp(ts, UTC), color="grey", ls=style, lw=1)
                if ax is ax1:
                    ax.annotate(label, (datetime.fromtimestamp(ts, UTC), max(rate or [0])),
                                fontsize=8, rotation=90, va="top")  # fmt: skip
    ax1.set_title(a["title"], fontsize=10)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _table(headers: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def write_rca(store: Store, alert_id: str, out: Path) -> Path:
    """Write the draft (markdown) and its plot (PNG beside it); returns the markdown path."""
    a = load_alert(store, alert_id)
    end_incident = a["resolved_at"] or a["detected_at"]
    start, end = a["onset"] - _PAD_S, end_incident + _PAD_S
    rows = _timeline(store, a, start, end)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    if rows:
        _plot(rows, a, png)
    db = store.db
    drift = store.rows(
        "SELECT toUnixTimestamp64Milli(detected_at), signal, model_version, tenant_id, change, "
        "baseline, current, detector FROM "
        f"{db}.drift_events WHERE category = {{cat:String}} "
        "AND detected_at BETWEEN fromUnixTimestamp64Milli({s:Int64}, 'UTC') "
        "AND fromUnixTimestamp64Milli({e:Int64}, 'UTC') ORDER BY detected_at LIMIT 200",
        {"cat": a["category"], "s": int(start * 1000), "e": int(end * 1000)},
    )
    notes = store.rows(
        "SELECT toUnixTimestamp64Milli(created_at), kind, title, notification_id FROM "
        f"{db}.notifications "
        "WHERE has(alert_ids, {id:String}) OR has(silenced_ids, {id:String}) "
        "ORDER BY created_at",
        {"id": alert_id},
    )
    ctx = a["context"]
    examples = ctx.get("examples", [])
    fb = {}
    if examples:
        for rid, actor, action in store.rows(
            f"SELECT request_id, actor, action FROM {db}.feedback "
            "WHERE request_id IN {ids:Array(String)} ORDER BY ts",
            {"ids": [e["request_id"] for e in examples]},
        ):
            fb.setdefault(rid, []).append(f"{action} by {actor}")

    md = [f"# RCA draft: {a['title']}", ""]
    md += [
        f"- **Alert id:** `{a['alert_id']}` (incident `{a['incident_id']}`), "
        f"status **{a['status']}**",
        f"- **Category / direction / severity:** {a['category']} / {a['direction']} / "
        f"{a['severity']}",
        f"- **Scope:** {a['segment']}; signals {', '.join(a['signals'])}",
        f"- **Rate:** {a['rate_now']:.6g} now vs {a['rate_baseline']:.6g} baseline "
        f"(95% CI {a['ci_low']:.6g} to {a['ci_high']:.6g}, per {a['trials_of']})",
        f"- **Runbook:** {a['runbook']}",
        f"- **Delivery:** {a['delivery_status']} ({a['delivery_detail']})"
        + (f"; silenced by {a['silenced_by']}" if a["silenced_by"] else ""),
        "",
        "## Timeline",
        "",
    ]
    events = [
        (a["onset"], "change point (detector's estimate of when it started)"),
        (a["detected_at"], "detected"),
        *((n[0] / 1000.0, f"notification {n[3]} ({n[1]}): {n[2]}") for n in notes),
    ]
    if a["resolved_at"]:
        events.append((a["resolved_at"], "resolved: every affected segment back at its reference"))
    md += _table(["time", "event"], [[_iso(t), e] for t, e in sorted(events)])
    if rows:
        md += ["", f"![block rate and feedback around the incident]({png.name})", ""]
    md += ["", "## Evidence", ""]
    for key, name in (
        ("top_domains", "domain"),
        ("top_tenants", "tenant"),
        ("top_model_versions", "model version"),
    ):
        items = ctx.get(key, [])
        if items:
            md += [f"### Top {name}s by share of the excess", ""]
            md += _table(
                [name, "after onset", "before (equal length)", "excess", "share"],
                [[d["key"], d["after"], d["before"], d["excess"], f"{d['share_of_excess']:.0%}"]
                 for d in items],
            )  # fmt: skip
            md.append("")
    if ctx.get("hints"):
        md += ["### Likely-cause hints (computed from the data)", ""]
        md += [f"- {h}" for h in ctx["hints"]] + [""]
    md += ["## Affected segments", ""]
    md += [f"- {s}" for s in a["affected_segments"]] or ["- (fleet level only)"]
    md += ["", "## Drift events in the window", ""]
    md += _table(
        ["detected", "signal", "model version", "tenant", "change", "baseline", "current",
         "detector"],
        [[_iso(r[0] / 1000.0), *r[1:5], f"{r[5]:.4g}", f"{r[6]:.4g}", r[7]] for r in drift],
    )  # fmt: skip
    md += ["", "## Example verdicts and their feedback", ""]
    md += _table(
        ["request id", "url (scrubbed)", "tenant", "model version", "feedback"],
        [[e["request_id"], e["url"], e["tenant_id"], e["model_version"],
          "; ".join(fb.get(e["request_id"], [])) or "-"] for e in examples],
    )  # fmt: skip
    md += ["", "## Query to start from", "", "```sql", a["sql_query"], "```", ""]
    md += [
        "## Cause",
        "",
        "_To fill in: what changed (deploy, data, policy, traffic) and the evidence for it._",
        "",
        "## Impact",
        "",
        "_To fill in: students and tenants affected, pages wrongly blocked or allowed._",
        "",
        "## Remediation",
        "",
        "_To fill in: what was done, what will prevent a recurrence, and its owner._",
        "",
    ]
    out.write_text("\n".join(md), encoding="utf-8")
    return out
