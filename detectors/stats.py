"""Small, dependency-light statistics shared by the detectors."""

from __future__ import annotations

import math

__all__ = ["clopper_pearson", "js_distance", "wilson_interval"]


def wilson_interval(k: float, n: float, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``k / n``.

    >>> lo, hi = wilson_interval(20, 1000)
    >>> round(lo, 4), round(hi, 4)
    (0.013, 0.0307)
    """
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(max(p * (1 - p) / n + z2 / (4 * n * n), 0.0)) / denom
    # At k = 0 (k = n) the lower (upper) end is exactly 0 (1); rounding must not move it.
    lo = 0.0 if k <= 0 else max(0.0, centre - half)
    hi = 1.0 if k >= n else min(1.0, centre + half)
    return lo, hi


def clopper_pearson(k: float, n: float) -> tuple[float, float]:
    """Exact 95% binomial interval of k successes in n trials ((0, 1) with no trials)."""
    from scipy.stats import beta

    if n <= 0:
        return 0.0, 1.0
    lo = 0.0 if k <= 0 else float(beta.ppf(0.025, k, n - k + 1))
    hi = 1.0 if k >= n else float(beta.ppf(0.975, k + 1, n - k))
    return lo, hi


def js_distance(p, q) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two count vectors.

    >>> js_distance([10, 0], [0, 10])
    1.0
    >>> js_distance([5, 5], [50, 50])
    0.0
    """
    sp, sq = float(sum(p)), float(sum(q))
    if sp <= 0 or sq <= 0:
        return 0.0
    div = 0.0
    for a, b in zip(p, q, strict=True):
        pa, qb = a / sp, b / sq
        m = 0.5 * (pa + qb)
        if pa > 0:
            div += 0.5 * pa * math.log2(pa / m)
        if qb > 0:
            div += 0.5 * qb * math.log2(qb / m)
    return math.sqrt(max(div, 0.0))


def rate_evidence(
    change: str,
    successes: float,
    trials: float,
    baseline: float,
    statistic: float,
    threshold: float,
) -> dict:
    """The evidence a rate detector attaches to an alert, in one shape for every rate test.

    Alert rendering and the RCA read these keys without knowing which detector produced
    them, so the CUSUM on a segment's own reference and the canary test against the rest
    of the fleet must report identically.
    """
    current = successes / trials if trials else 0.0
    lo, hi = wilson_interval(successes, trials)
    return {
        "change": change,
        "baseline": baseline,
        "current": current,
        "ci_low": lo,
        "ci_high": hi,
        "successes": successes,
        "trials": trials,
        "statistic": statistic,
        "threshold": threshold,
        "effect": current / baseline if baseline > 0 else float("inf"),
    }
