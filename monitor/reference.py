"""A reference profile learned from the offline evaluation set of one model version.

The evaluation set is the traffic the model was signed off on, so it is the natural
"normal" for that version: its score histograms per category, its label-set (category)
mix, its block and predicted rates, and the decision thresholds the card was made with.
The set is replayed as verdicts (no labels) through the same aggregation the detectors
use, so the stored references are exactly what a bank would have learned from it.

What an evaluation set cannot say is left out and learned live instead: latency
(offline scoring has no production latency), the feedback rates (unblocks and reports
happen only in production) and the block rate of a district-configurable category (it
depends on the fleet's mix of tenant policies; its predicted rate is kept). Rates are a
valid reference only when the set is a random sample of traffic: an enriched set (most
evaluation sets over-sample the rare harmful categories) would make every production
window look under-blocked. For those, ``shape_only`` keeps the distributions (score
histograms, category mix) and drops the rates.
"""

from __future__ import annotations

from dataclasses import dataclass

from detectors.bank import ALL
from monitor.config import Config
from monitor.evalreplay import EvalReplay, EvalReplayConfig
from monitor.evalset import EvalSet
from monitor.profile import build_profile
from monitor.taxonomy import SeverityClass, category

__all__ = ["EvalReference", "build_eval_reference"]

_LIVE_ONLY = frozenset({"latency", "unblock_rate", "report_rate"})
_RATES = frozenset({"block_rate", "predicted_rate"})


def _keep(row: dict, shape_only: bool) -> bool:
    signal = row["signal"]
    if signal in _LIVE_ONLY or row["tenant_id"] != ALL:
        return False  # no production meaning; tenants in a test set are not the fleet's
    if signal in _RATES and shape_only:
        return False
    # A district-configurable category's block rate depends on the fleet's policy mix,
    # which an evaluation set does not know; its predicted rate does not.
    return not (signal == "block_rate" and category(row["category"]).severity_class
                is not SeverityClass.CIPA)  # fmt: skip


@dataclass
class EvalReference:
    rows: list[dict]
    pages: int
    windows: int
    thresholds: dict[str, float]
    base_rates: dict[str, float]  # share of pages truly in each category
    signals: dict[str, int]  # stored segment references per signal


def build_eval_reference(
    evalset: EvalSet,
    model_version: str | None,
    config: Config,
    *,
    shape_only: bool = False,
    policy: str = "standard",
    thresholds: dict[str, float] | None = None,
) -> EvalReference:
    subset = evalset.only(model_version)
    rows = subset.rows
    # Spread the pages over enough windows for every segment to finish its warm-up (the
    # references are totals over the windows, so the spacing does not change them).
    det = config.detect
    windows = max(det.warmup_windows + 6, len(rows) // 200)
    rate = len(rows) / (windows * det.window_s)
    replay = EvalReplay(
        subset,
        EvalReplayConfig(
            policy=policy, thresholds=thresholds, rate=rate, retime=True, label_fraction=0.0
        ),
    )
    built = build_profile(replay.events(), config)
    kept = [r for r in built.rows if _keep(r, shape_only)]
    cats = subset.categories
    thr = {c: (thresholds or {}).get(c, category(c).threshold) for c in cats}
    base = {c: sum(c in r.true for r in rows) / len(rows) for c in cats}
    model_version = subset.model_versions[0]
    for signal, ref in (("thresholds", thr), ("base_rates", base)):
        kept.append(
            {
                "signal": signal,
                "category": ALL,
                "model_version": model_version,
                "tenant_id": ALL,
                "change": "none",
                "detector": "evaluation_set",
                "reference": {"values": ref, "pages": len(rows), "source": evalset.path},
            }
        )
    signals: dict[str, int] = {}
    for r in kept:
        signals[r["signal"]] = signals.get(r["signal"], 0) + 1
    return EvalReference(kept, len(rows), built.windows, thr, base, dict(sorted(signals.items())))
