"""The live status page: what on-call looks at between alerts.

One snapshot (``status_snapshot``), two renderings: JSON (``/status.json``) and a page
(``/status``) that reloads itself every few seconds. The snapshot reads the store
(firing alerts, recent drift events, ingest per minute from the rollup, how far behind
the newest data is) and, when a worker serves it, the live detector banks (segments per
category, how many are warmed up, and how close the nearest rate detector is to firing).
The worker serves it from its Faust web server; ``filterwatch status --serve`` serves
it from the embedded store, where no banks live, so the detector column comes from the
store's drift events and alerts alone.
"""

from __future__ import annotations

import html
import time
from datetime import UTC, datetime

from monitor.storage import Store
from monitor.taxonomy import CATEGORIES

__all__ = ["refresh_from_query", "render_status_html", "status_snapshot"]

RECENT_S = 600  # a drift event this recent marks its category "drifting"


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def status_snapshot(
    store: Store,
    live: dict[str, dict] | None = None,
    ingest: dict | None = None,
    now: float | None = None,
) -> dict:
    """Everything the page shows, as JSON-able data."""
    db = store.db
    now = time.time() if now is None else now
    newest = store.scalar(f"SELECT toUnixTimestamp(max(minute)) FROM {db}.traffic_fleet_1m") or None
    per_minute = []
    if newest:
        per_minute = [
            {"minute": _iso(m), "requests": int(r), "blocked": int(b)}
            for m, r, b in store.rows(
                f"SELECT toUnixTimestamp(minute) AS m, sum(requests), sum(blocked) "
                f"FROM {db}.traffic_fleet_1m WHERE minute > toDateTime({{n:UInt32}}) - INTERVAL 15 "
                f"MINUTE GROUP BY m ORDER BY m",
                {"n": int(newest)},
            )
        ]
    firing = [
        {
            "alert_id": a,
            "category": c,
            "direction": d,
            "severity": s,
            "since": _iso(t),
            "model_version": mv,
            "title": title,
        }
        for a, c, d, s, t, mv, title in store.rows(
            f"SELECT alert_id, category, direction, severity, toFloat64(detected_at), "
            f"model_version, title FROM {db}.alerts FINAL WHERE status = 'firing' "
            f"ORDER BY detected_at DESC LIMIT 50"
        )
    ]
    drift = [
        {
            "at": _iso(t),
            "signal": sig,
            "category": c,
            "model_version": mv,
            "change": ch,
            "baseline": b,
            "current": cur,
        }
        for t, sig, c, mv, ch, b, cur in store.rows(
            f"SELECT toFloat64(detected_at), signal, category, model_version, change, baseline, "
            f"current FROM {db}.drift_events ORDER BY detected_at DESC LIMIT 20"
        )
    ]
    last_drift = dict(
        store.rows(
            f"SELECT category, toFloat64(max(detected_at)) FROM {db}.drift_events GROUP BY category"
        )
    )
    firing_cats = {a["category"] for a in firing}
    reference = newest or now
    categories = []
    for c in [*[c.name for c in CATEGORIES], "*"]:
        state = "ok"
        if c in firing_cats:
            state = "firing"
        elif c in last_drift and reference - last_drift[c] <= RECENT_S:
            state = "drifting"
        row = {"category": c, "state": state, "last_drift": _iso(last_drift.get(c))}
        if live is not None:
            # each worker owns some categories' banks (agg partitions); the rest live on
            # another worker, whose own page shows them
            info = live.get(c)
            if info is None:
                row["state"] = "not on this worker" if state == "ok" else state
            else:
                if info["warmed_up"] < info["segments"] and state == "ok":
                    row["state"] = "warming up"
                row.update(info)
        categories.append(row)
    rate = None
    if len(per_minute) >= 3:
        # the newest minute is still filling, and the oldest of a short history may have
        # started mid-minute: the rate is over the complete minutes between
        full = per_minute[1:-1][-5:]
        rate = sum(m["requests"] for m in full) / (60.0 * len(full))
    return {
        "generated_at": _iso(now),
        "newest_data": _iso(newest),
        "behind_s": None if newest is None else max(0.0, now - newest - 60),
        "ingest_per_s": rate,
        "ingest": ingest or {},
        "source": "worker" if live is not None else "store",
        "firing": firing,
        "drift_events": drift,
        "categories": categories,
        "per_minute": per_minute,
    }


_CSS = """body{font-family:system-ui,sans-serif;margin:20px;color:#222}
table{border-collapse:collapse;font-size:13px;margin-bottom:18px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
.firing{background:#c00000;color:#fff}.drifting{background:#d98c00;color:#fff}
.ok{background:#2e7d32;color:#fff}.warming{background:#607d8b;color:#fff}
.none{background:#bbb}.kpi{display:inline-block;margin-right:28px;font-size:15px}
.bar{display:inline-block;background:#1f4e79;height:10px}"""


def _cls(state: str) -> str:
    return {"firing": "firing", "drifting": "drifting", "ok": "ok", "warming up": "warming"}.get(
        state, "none"
    )


def _rows(items: list[dict], cols: list[str]) -> str:
    if not items:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(i.get(c, '')))}</td>" for c in cols) + "</tr>"
        for i in items
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def refresh_from_query(query: str) -> int:
    """``?refresh=N`` (seconds; 0: a still page, for screenshots and printing)."""
    from urllib.parse import parse_qs

    value = parse_qs(query).get("refresh", ["5"])[0]
    return max(0, min(int(value), 3600)) if value.isdigit() else 5


def render_status_html(snap: dict, refresh_s: int = 5) -> str:
    rate = snap["ingest_per_s"]
    behind = snap["behind_s"]
    kpis = [
        ("ingest", f"{rate:,.0f} verdicts/s" if rate is not None else "–"),
        ("newest data", snap["newest_data"] or "none"),
        ("behind", f"{behind:,.0f} s" if behind is not None else "–"),
        ("firing alerts", str(len(snap["firing"]))),
    ]
    if "lag" in snap["ingest"]:
        kpis.append(("consumer lag", f"{snap['ingest']['lag']:,} messages"))
    cats = []
    peak = max([m["requests"] for m in snap["per_minute"]] or [1])
    for c in snap["categories"]:
        pressure = c.get("pressure")
        extra = ""
        if "segments" in c:
            extra = (
                f"<td>{c['warmed_up']}/{c['segments']}</td><td>{pressure:.2f} "
                f"{html.escape(c.get('closest', ''))}</td>"
            )
        cats.append(
            f"<tr><td>{html.escape(c['category'])}</td><td class='{_cls(c['state'])}'>"
            f"{html.escape(c['state'])}</td><td>{html.escape(c['last_drift'] or '–')}</td>"
            f"{extra}</tr>"
        )
    live_head = "<th>warmed up</th><th>closest to firing</th>" if snap["source"] == "worker" else ""
    minutes = "".join(
        f"<tr><td>{html.escape(m['minute'])}</td><td>{m['requests']:,}</td><td><span class='bar'"
        f" style='width:{int(300 * m['requests'] / peak)}px'></span></td></tr>"
        for m in snap["per_minute"]
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        + (f"<meta http-equiv='refresh' content='{refresh_s}'>" if refresh_s > 0 else "")
        + "<title>filterwatch status</title>"
        f"<style>{_CSS}</style></head><body><h1>filterwatch status</h1>"
        f"<p>source: {html.escape(snap['source'])} · generated {html.escape(snap['generated_at'])}"
        f"</p><div>"
        + "".join(f"<span class='kpi'><b>{k}</b>: {html.escape(v)}</span>" for k, v in kpis)
        + "</div><h2>Firing alerts</h2>"
        + _rows(
            snap["firing"], ["since", "severity", "category", "direction", "model_version", "title"]
        )
        + "<h2>Detectors per category</h2><table id='categories'><tr><th>category</th>"
        f"<th>state</th><th>last drift event</th>{live_head}</tr>"
        + "".join(cats)
        + "</table>"
        + "<h2>Recent drift events</h2>"
        + _rows(
            snap["drift_events"],
            ["at", "signal", "category", "model_version", "change", "baseline", "current"],
        )
        + "<h2>Ingest per minute (last 15)</h2><table>"
        + minutes
        + "</table></body></html>"
    )
