"""Simulated traffic as arrays with its ground truth: for validating label-free estimates.

The simulator knows each page's true categories (``emit_truth``); the benchmarks and
tests that measure :mod:`monitor.label_free` and :mod:`monitor.labelqueue` against that
truth need the verdicts as (verdicts x categories) arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.simulator import SimConfig, Simulator
from monitor.taxonomy import CATEGORIES

__all__ = ["TruthFrame", "simulate_frame"]

NAMES = [c.name for c in CATEGORIES]


@dataclass
class TruthFrame:
    request_ids: list[str]
    tenants: np.ndarray  # (n,) tenant index
    tenant_ids: list[str]
    ts: np.ndarray
    scores: np.ndarray  # (n, k) float32
    predicted: np.ndarray  # (n, k) bool
    truth: np.ndarray  # (n, k) bool
    verdicts: list[dict]

    def __len__(self) -> int:
        return len(self.request_ids)

    def subset(self, idx: np.ndarray) -> TruthFrame:
        tl = [self.verdicts[i] for i in idx]
        return TruthFrame(
            [self.request_ids[i] for i in idx],
            self.tenants[idx],
            self.tenant_ids,
            self.ts[idx],
            self.scores[idx],
            self.predicted[idx],
            self.truth[idx],
            tl,
        )

    def true_metrics(self, j: int) -> tuple[float, float]:
        """(precision, recall) of category column ``j``."""
        p, t = self.predicted[:, j], self.truth[:, j]
        tp = float((p & t).sum())
        return (tp / p.sum() if p.sum() else 0.0, tp / t.sum() if t.sum() else 0.0)


def simulate_frame(cfg: SimConfig, keep_verdicts: bool = True) -> TruthFrame:
    """Simulate and collect; without ``keep_verdicts`` only the arrays are kept (a long
    false-alarm run would otherwise hold millions of dicts)."""
    sim = Simulator(cfg)
    sim.emit_truth = True
    col = {c: j for j, c in enumerate(NAMES)}
    k = len(NAMES)
    parts: list[tuple] = []
    kept: list[dict] = []
    ids: list[str] = []
    tenant_index: dict[str, int] = {}
    for chunk in sim.chunks():
        rows = [e for e in chunk if e["schema"] == "verdict/1"]
        n = len(rows)
        scores = np.zeros((n, k), dtype=np.float32)
        pred = np.zeros((n, k), dtype=bool)
        truth = np.zeros((n, k), dtype=bool)
        tenants = np.zeros(n, dtype=np.int64)
        ts = np.zeros(n)
        for i, e in enumerate(rows):
            for c, v in e["scores"].items():
                scores[i, col[c]] = v
            for c in e["categories"]:
                pred[i, col[c]] = True
            for c in e.pop("_true"):
                truth[i, col[c]] = True
            tenants[i] = tenant_index.setdefault(e["tenant_id"], len(tenant_index))
            ts[i] = e["ts"]
            ids.append(e["request_id"])
        parts.append((tenants, ts, scores, pred, truth))
        if keep_verdicts:
            kept += rows
    cat = [np.concatenate([p[i] for p in parts]) if parts else np.zeros(0) for i in range(5)]
    # Scores stay Float32, as ClickHouse stores them (and bins them: calibration.bin_of).
    return TruthFrame(ids, cat[0], list(tenant_index), cat[1], cat[2], cat[3], cat[4], kept)
