"""The columnar aggregation path builds exactly what the per-event path builds."""

import random

import pytest

from monitor.aggregate import WindowAggregator
from monitor.events import Verdict
from monitor.simulator import SimConfig, Simulator
from monitor.validation import Validator


def _simulated_verdicts(seed: int, seconds: int, tenants: int = 60) -> list[Verdict]:
    sim = Simulator(
        SimConfig(
            scenario="overblock-after-deploy",
            rate=1500,
            duration_s=seconds,
            onset_s=seconds / 2,
            seed=seed,
            tenants=tenants,
        )
    )
    v = Validator()
    out = [v.validate(e) for e in sim.events()]
    return [e for e in out if isinstance(e, Verdict)]


def _jitter(verdicts: list[Verdict], seed: int, spread_s: float) -> list[Verdict]:
    """Out-of-order arrival: some events arrive up to ``spread_s`` late."""
    rng = random.Random(seed)
    out = []
    for v in verdicts:
        if rng.random() < 0.2:
            v = Verdict(*[getattr(v, f) for f in Verdict.__struct_fields__])
            v.ts -= rng.random() * spread_s
        out.append(v)
    return out


def _as_data(windows):
    # dict order matters too: the bank iterates versions, and alerts follow that order
    return [
        (
            w.index,
            list(w.versions.items()),
            list(w.cells.items()),
            list(w.tenants.items()),
            list(w.tenant_cells.items()),
            list(w.labelsets.items()),
        )
        for w in windows
    ]


@pytest.mark.parametrize(("seed", "batch", "lateness", "spread"), [
    (1, 5000, 1, 0.0),
    (2, 700, 1, 12.0),
    (3, 64, 0, 7.0),
    (4, 2500, 2, 20.0),
])  # fmt: skip
def test_batches_equal_event_by_event(seed, batch, lateness, spread):
    verdicts = _jitter(_simulated_verdicts(seed, 40), seed, spread)
    # a duplicated predicted category counts as the per-event path counts it
    verdicts[5].categories = verdicts[5].categories * 2
    one = WindowAggregator(5.0, lateness)
    expected = []
    for v in verdicts:
        expected += one.add_verdict(v)
    expected += one.flush()
    many = WindowAggregator(5.0, lateness)
    got = []
    for i in range(0, len(verdicts), batch):
        got += many.add_verdicts(verdicts[i : i + batch])
    got += many.flush()
    assert many.late_events == one.late_events
    if spread:
        assert one.late_events > 0
    assert len(got) >= 8
    assert _as_data(got) == _as_data(expected)
