"""A small, real-looking evaluation set drawn from the simulator (labelled as such).

The simulator knows each page's true categories, so its verdicts are an evaluation set
with perfect labels: pages drawn evenly from three simulated minutes, every labelled or
predicted page eligible and a tenth of the safe-and-allowed ones. URLs keep their
(synthetic) query strings so the reader's scrubbing is exercised. ``label_source`` says
``simulator``: these are not human labels and the data card says so.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import orjson

from monitor.simulator import SimConfig, Simulator

__all__ = ["write_sample_evalset"]


def write_sample_evalset(
    path: str | Path, rows: int = 4000, seed: int = 11, safe_fraction: float = 0.1
) -> int:
    """Write ``rows`` pages drawn evenly over three simulated minutes.

    ``safe_fraction`` of the safe-and-allowed pages are eligible (0.1: an enriched set,
    as offline evaluation sets usually are; 1.0: a plain random sample of traffic, whose
    rates can serve as a detection reference).
    """
    sim = Simulator(SimConfig(scenario="none", rate=500, duration_s=180, onset_s=180, seed=seed))
    sim.emit_truth = True
    rng = np.random.default_rng(seed)
    eligible = []
    for ev in sim.events():
        if ev.get("schema", "").startswith("feedback") or "_true" not in ev:
            continue
        interesting = ev["_true"] or ev["categories"]
        if not interesting and rng.random() >= safe_fraction:
            continue
        eligible.append(ev)
    keep = np.sort(rng.choice(len(eligible), size=min(rows, len(eligible)), replace=False))
    out = [
        {
            "id": ev["request_id"],
            "url": ev["url"],
            "true_categories": ev["_true"],
            "scores": ev["scores"],
            "model_version": ev["model_version"],
            "tenant_id": ev["tenant_id"],
            "ts": ev["ts"],
            "label_source": "simulator (synthetic ground truth)",
            # Safe pages were kept 1 in 1/safe_fraction: each stands for that many.
            "weight": 1.0 if (ev["_true"] or ev["categories"]) else round(1 / safe_fraction, 6),
        }
        for ev in (eligible[i] for i in keep)
    ]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wb") as f:
        for rec in out:
            f.write(orjson.dumps(rec) + b"\n")
    return len(out)
