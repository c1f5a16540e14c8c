"""Writes the model card: markdown and HTML, a precision-recall plot per category.

The numbers come from :mod:`monitor.modelcard`; this module only lays them out. The
precision-recall curve of each category is computed from the scores (every distinct
score as a threshold) and marks the operating point the decision threshold gives.
"""

from __future__ import annotations

import html
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from monitor.evalset import EvalSet
from monitor.modelcard import SAFE, ModelCardMetrics, label_matrices
from monitor.taxonomy import category

__all__ = ["ONLINE_NOTE", "online_table", "pr_curve", "write_model_card"]


def pr_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at every distinct score threshold (highest first)."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], y_true[order]
    tp = np.cumsum(y)
    fp = np.cumsum(1 - y)
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # the end of each tie block
    tp, fp = tp[last], fp[last]
    pos = max(int(y.sum()), 1)
    return tp / np.maximum(tp + fp, 1), tp / pos


def _plot(evalset, m: ModelCardMetrics, thresholds, path: Path) -> None:
    from monitor.plots import small_multiples

    cats = [c for j, c in enumerate(m.categories) if m.support[j]]
    y_true, _, scores = label_matrices(evalset, m.categories, thresholds)

    def draw(ax, c: str) -> str:
        j = m.categories.index(c)
        p, r = pr_curve(y_true[:, j], scores[:, j])
        ax.plot(r, p, color="#1f4e79", lw=1.2)
        ax.plot([m.recall[j]], [m.precision[j]], "o", color="#c00000")
        return f"{c} (n={int(m.support[j])})"

    small_multiples(cats, draw, path, "recall", "precision", limit=1.03)


def _data_card(evalset: EvalSet) -> list[tuple[str, str]]:
    rows = evalset.rows
    safe = sum(1 for r in rows if not r.true)
    sources = Counter(r.label_source or "(not given)" for r in rows)
    ts = [r.ts for r in rows if r.ts is not None]
    span = "-"
    if ts:
        f = lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")  # noqa: E731
        span = f"{f(min(ts))} to {f(max(ts))}"
    return [
        ("file", Path(evalset.path).name),
        ("pages", f"{len(rows):,}"),
        ("safe pages (no true category)", f"{safe:,} ({safe / len(rows):.1%})"),
        ("model versions", ", ".join(evalset.model_versions)),
        ("label source", ", ".join(f"{k} ({v:,})" for k, v in sources.most_common())),
        ("dates", span),
    ]


ONLINE_NOTE = (
    "Online numbers come from production verdicts of this model version labelled by "
    "feedback. Disputes (unblocks, reports) land on verdicts that look wrong, so metrics "
    'over every labelled verdict ("naive") are biased towards errors. The estimate '
    "counts the disputed verdicts and estimates the undisputed ones from analysts' random "
    "audits (stratified by predicted / not predicted); the interval is 95% (Clopper-Pearson, both "
    "strata at their ends). It assumes audits are random among undisputed verdicts. "
    '"at most" holds with no audit at all: the disputes alone cap precision and recall.'
)


CALIBRATION_NOTE = (
    "Label-free estimation turns each score into a probability of the category. Per "
    "category three maps are fitted (isotonic, Platt, beta) on the pages the model scored "
    "(scores under 0.01 get their own Jeffreys estimate) and the lowest 5-fold "
    "cross-validated log loss wins. ECE: expected calibration error over 10 bins."
)
CROSS_FIT_NOTE = (
    "The set is split in two halves; each is estimated from its scores alone with the "
    "calibration fitted on the other half, and the halves are summed. Measured: the labels "
    "(weighted counts; FNR with a Clopper-Pearson 95% interval). This is how far the "
    "label-free numbers land from the truth when the calibration still holds."
)
PRODUCTION_NOTE = (
    "Label-free: CBPE with this set's calibration over production's score histograms; "
    "prevalence FNR anchors on the 7 days before. Measured: audits and disputes, bias-"
    "corrected (see above). Override rates: unblocks per block, reports per request."
)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def online_table(m: ModelCardMetrics, online: dict) -> list[list[str]]:
    """Offline card beside the online estimate, per category of the card."""
    rows = [["category", "offline P", "online P [95%]", "naive P", "P at most", "offline R",
             "online R [95%]", "naive R", "R at most", "audits", "disputes"]]  # fmt: skip
    for j, c in enumerate(m.categories):
        e = online.get(c)
        if e is None:
            continue
        k = e.counts
        rows.append([
            c, f"{m.precision[j]:.3f}",
            f"{_pct(e.precision.value)} [{e.precision.low:.3f}, {e.precision.high:.3f}]",
            f"{e.naive_precision:.3f}", f"{e.bounds_precision[1]:.3f}", f"{m.recall[j]:.3f}",
            f"{_pct(e.recall.value)} [{e.recall.low:.3f}, {e.recall.high:.3f}]",
            f"{e.naive_recall:.3f}", f"{e.bounds_recall[1]:.3f}",
            f"{k.audit_pred + k.audit_unpred:,}", f"{k.disputed_pred + k.disputed_unpred:,}",
        ])  # fmt: skip
    return rows


def write_model_card(
    evalset: EvalSet,
    m: ModelCardMetrics,
    out_dir: Path,
    thresholds=None,
    online: dict | None = None,
    online_version: str = "",
    estimates: dict | None = None,
) -> tuple[Path, Path]:
    """``estimates``: the calibration, the cross-fitted estimate on this set, and (with
    ``--online``) production's label-free table; see :mod:`monitor.modelcard_estimates`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / "pr_curves.png"
    _plot(evalset, m, thresholds, png)
    thr = {c: (thresholds or {}).get(c, category(c).threshold) for c in m.categories}
    table = [["category", "threshold", "precision", "recall", "F1", "support", "tn", "fp",
              "fn", "tp"]]  # fmt: skip
    for j, c in enumerate(m.categories):
        (tn, fp), (fn, tp) = m.confusion[j].astype(int).tolist()
        table.append([c, f"{thr[c]:.2f}", f"{m.precision[j]:.3f}", f"{m.recall[j]:.3f}",
                      f"{m.f1[j]:.3f}", str(int(m.support[j])), str(tn), str(fp), str(fn),
                      str(tp)])  # fmt: skip
    avg = [["average", "precision", "recall", "F1", "support"]]
    for k in ("micro", "macro", "weighted"):
        a = m.averages[k]
        avg.append([k, f"{a['precision']:.3f}", f"{a['recall']:.3f}", f"{a['f1']:.3f}",
                    str(a["support"])])  # fmt: skip
    labels = [*m.categories, SAFE]
    present = [t for t in labels if t in m.cross]
    cross = [["true \\ predicted", *labels]]
    for t in present:
        cross.append([t, *(str(m.cross[t].get(p, 0)) for p in labels)])
    fnr = m.cipa_false_negative_rates()
    cipa = [["CIPA category", "false-negative rate", "missed / positives"]]
    for c, rate in sorted(fnr.items(), key=lambda kv: -kv[1]):
        j = m.categories.index(c)
        cipa.append([c, f"{rate:.2%}", f"{int(m.confusion[j][1][0])} / {int(m.support[j])}"])
    card = _data_card(evalset)
    sections = [
        ("Data card", [["field", "value"], *[[k, v] for k, v in card]]),
        ("Per-category metrics", table),
        ("Averages", avg),
        ("CIPA always-block categories: false-negative rate", cipa),
        ("Cross-category confusion (pages)", cross),
    ]
    notes = {}
    if online is not None:
        title = f"Offline vs online (production, model version {online_version})"
        sections.append((title, online_table(m, online)))
        notes[title] = ONLINE_NOTE
    images = [("Precision-recall curves", "Dot: the operating point of the threshold.", png)]
    if estimates:
        from monitor.modelcard_estimates import calibration_rows, plot_reliability

        cal = estimates["calibration"]
        title = "Score calibration (for label-free estimation)"
        sections.append((title, calibration_rows(cal)))
        notes[title] = CALIBRATION_NOTE
        rel = out_dir / "reliability.png"
        plot_reliability(cal, rel)
        note = (
            "Out-of-fold calibrated probability against the observed share per 0.1 bin, dot "
            "area by (log) labels in the bin; the dashed line is perfect calibration."
        )
        images.append(("Reliability diagrams", note, rel))
        if len(estimates.get("cross_fitted") or []) > 1:
            title = "Estimated vs measured FP/FN on this set (label-free, cross-fitted)"
            sections.append((title, estimates["cross_fitted"]))
            notes[title] = CROSS_FIT_NOTE
        prod = estimates.get("production")
        if prod is not None and len(prod) > 1:
            title = f"Estimated vs measured FP/FN in production (model version {online_version})"
            sections.append((title, prod))
            notes[title] = PRODUCTION_NOTE
    md = ["# Model card", ""]
    for title, rows in sections:
        md += [f"## {title}", "", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        md += ["| " + " | ".join(r) + " |" for r in rows[1:]] + [""]
        if title in notes:
            md += [notes[title], ""]
    for title, note, img in images:
        md += [f"## {title}", "", note, "", f"![{title.lower()}]({img.name})", ""]
    md_path = out_dir / "model_card.md"
    md_path.write_text("\n".join(md), encoding="utf-8")
    h = ["<!doctype html><html><head><meta charset='utf-8'><title>Model card</title>",
         "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}</style></head><body>",
         "<h1>Model card</h1>"]  # fmt: skip
    for title, rows in sections:
        h.append(f"<h2>{html.escape(title)}</h2><table><tr>")
        h += [f"<th>{html.escape(x)}</th>" for x in rows[0]]
        h.append("</tr>")
        for r in rows[1:]:
            h.append("<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in r) + "</tr>")
        h.append("</table>")
        if title in notes:
            h.append(f"<p>{html.escape(notes[title])}</p>")
    for title, note, img in images:
        h.append(f"<h2>{html.escape(title)}</h2><p>{html.escape(note)}</p>"
                 f"<img src='{img.name}' alt='{html.escape(title)}'>")  # fmt: skip
    h.append("</body></html>")
    html_path = out_dir / "model_card.html"
    html_path.write_text("\n".join(h), encoding="utf-8")
    return md_path, html_path
