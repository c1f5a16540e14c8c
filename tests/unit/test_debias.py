"""The annotation queue's design and the de-biased estimate: unbiased within its interval
on a sample with known labels; the plain average over the same labels is not."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.debias import Unit, debiased, wilson
from monitor.labelqueue import (
    MIN_PER_STRATUM,
    POOLED,
    QueueError,
    allocate,
    assign_strata,
    select_in_memory,
    split_tenants,
)
from monitor.simulator import SimConfig
from monitor.taxonomy import CATEGORIES
from monitor.truthframe import NAMES, simulate_frame

CATS = ["adult", "self_harm", "games", "social_media"]


def test_allocation_spends_the_budget_with_floors_boosts_and_caps():
    sizes = {
        ("adult", "near"): 1000,
        ("adult", "far"): 100_000,
        ("games", "near"): 1000,
        ("games", "far"): 1,
        ("(none)", "far"): 500_000,
    }
    a = allocate(sizes, 400)
    assert sum(a.values()) == 400
    assert a[("games", "far")] == 1  # capped at its size
    assert all(n >= min(MIN_PER_STRATUM, sizes[k]) for k, n in a.items())
    # CIPA (adult) near the threshold gets 3x the labels of games near the threshold
    assert a[("adult", "near")] > 2 * a[("games", "near")]
    boosted = allocate(sizes, 400, firing={"games"})
    assert boosted[("games", "near")] > a[("games", "near")]
    with pytest.raises(QueueError, match="raise it"):
        allocate(sizes, 5)


def test_district_split_is_exact_and_pools_the_small_ones():
    tenants = {"big": 9000, "mid": 900, **{f"t{i}": 10 for i in range(10)}}
    s = split_tenants(tenants, 50)
    assert sum(s.values()) == 50
    assert s["big"] >= 40 and POOLED in s and s[POOLED] >= 1
    assert all(v >= 1 for v in s.values())
    assert split_tenants({"a": 3, "b": 2}, 5) == {"a": 3, "b": 2}  # a census
    one_each = split_tenants({"a": 100, "b": 100, "c": 1}, 2)
    assert sum(one_each.values()) == 2 and POOLED in one_each


def test_wilson_keeps_width_at_the_boundary():
    lo, hi = wilson(1.0, 30)
    assert hi == 1.0 and 0.85 < lo < 0.9


@pytest.fixture(scope="module")
def population():
    fr = simulate_frame(
        SimConfig(
            "none",
            rate=500,
            duration_s=60,
            onset_s=0,
            seed=3,
            world_seed=11,
            start=1.7e9,
            tenants=60,
        ),
        keep_verdicts=False,
    )
    thr = {c.name: c.threshold for c in CATEGORIES}
    focus, band = assign_strata(fr.scores, NAMES, thr)
    return fr, focus, band


def _units(fr, idx, key_of, strata):
    def names(row):
        return frozenset(NAMES[j] for j in np.nonzero(row)[0])

    return [
        Unit(key_of[i], strata[key_of[i]][1], names(fr.predicted[i]), names(fr.truth[i]))
        for i in idx
    ]


def test_debiased_estimate_is_unbiased_within_its_interval(population):
    """100 queues of 800 labels from one known-label population of 30,000 verdicts: the
    mean estimate lands within 4 standard errors of the truth (plus the ratio estimator's
    O(1/n) bias), and the 95% interval holds the truth in at least 90% of the queues."""
    fr, focus, band = population
    runs = 100
    est = {c: [] for c in CATS}
    for seed in range(runs):
        idx, key_of, strata = select_in_memory(focus, band, fr.tenants, 800, seed)
        assert len(idx) == 800
        for c, e in debiased(_units(fr, idx, key_of, strata), strata, CATS).items():
            est[c].append(e)
    naive_gap = 0.0
    for c in CATS:
        j = NAMES.index(c)
        true_p, true_r = fr.true_metrics(j)
        for attr, truth in (("precision", true_p), ("recall", true_r)):
            vals = np.array([getattr(e, attr) for e in est[c]])
            se = vals[:, 0].std(ddof=1) / np.sqrt(runs)
            assert abs(vals[:, 0].mean() - truth) <= 4 * se + 0.004, (
                c,
                attr,
                vals[:, 0].mean(),
                truth,
                se,
            )
            cover = np.mean((vals[:, 1] <= truth) & (truth <= vals[:, 2]))
            assert cover >= 0.90, (c, attr, cover)
        naive = np.mean([e.naive_precision for e in est[c]])
        naive_gap = max(naive_gap, abs(naive - true_p))
    # The queue oversamples near-threshold pages: unweighted, precision looks much worse.
    assert naive_gap > 0.05


def test_population_and_coverage_are_reported(population):
    fr, focus, band = population
    idx, key_of, strata = select_in_memory(focus, band, fr.tenants, 300, 1)
    units = _units(fr, idx, key_of, strata)
    e = debiased(units, strata, ["adult"])["adult"]
    assert e.population == len(fr) and e.covered == 1.0 and e.labels == 300
    # half the labels never came back: the estimate covers what was labelled, and says so
    e = debiased(units[::2], strata, ["adult"])["adult"]
    assert e.covered < 1.0 and e.labels == 150
