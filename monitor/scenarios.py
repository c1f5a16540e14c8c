"""Named incident scenarios for the traffic simulator, with their ground truth.

Each scenario says what changes at the onset and what a correct monitor should report:
the category, the direction (over-blocking, under-blocking, drift) and the signal that
carries the evidence. The simulator writes this ground truth next to the data, so tests
and backtests score detection against it rather than against expectations in prose.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SCENARIOS", "Scenario", "get_scenario"]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    summary: str
    expected_category: str | None  # None: no alert expected; "*": not category-specific
    expected_direction: str | None
    expected_signals: tuple[str, ...]
    # Other categories an alert may legitimately name for the same incident
    # (e.g. health pages blocked as adult also raise health's block rate).
    also_acceptable: tuple[str, ...] = ()


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "overblock-after-deploy",
            "Model version 2026.12.0 rolls out to 40% of traffic and scores health pages "
            "as adult; teachers and students start asking for unblocks.",
            "adult",
            "over-blocking",
            ("unblock_rate", "block_rate"),
            also_acceptable=("health", "mental_health", "lgbtq_resources"),
        ),
        Scenario(
            "selfharm-underblock",
            "Self-harm scores drop on all model versions (a feature regression; at "
            "magnitude m it hits that share of self-harm pages); most affected pages are "
            "allowed and counsellors' reports rise.",
            "self_harm",
            "under-blocking",
            ("block_rate", "report_rate"),
        ),
        Scenario(
            "category-mix-shift",
            "A new social app (snapverse.app) surges to 8% of all requests.",
            "social_media",
            "drift",
            ("predicted_rate", "block_rate", "score"),
            # The surge brings the model's usual confusions with it: social pages score
            # as chat/dating/streaming now and then, so those shares rise too.
            also_acceptable=("chat", "dating", "streaming_video"),
        ),
        Scenario(
            "score-shift",
            "Violence scores on violent pages move from ~0.83 to ~0.75 on average, all "
            "still above the threshold: no decision changes, only the distribution.",
            "violence",
            "drift",
            ("score",),
        ),
        Scenario(
            "tenant-override-storm",
            "One district's staff unblock games pages en masse (25% of its games blocks).",
            "games",
            "over-blocking",
            ("unblock_rate",),
            # An unblock disputes every category the page was blocked for; games pages
            # that the model also scored violent/weapons/gambling carry the storm there.
            also_acceptable=("violence", "weapons", "gambling"),
        ),
        Scenario(
            "unblock-doubling",
            "Unblock requests per blocked social-media page double (magnitude 1; 1.5x at 0.5): "
            "a small, slow over-blocking signal with no change in the block rate.",
            "social_media",
            "over-blocking",
            ("unblock_rate",),
            also_acceptable=("chat", "dating", "streaming_video", "games"),
        ),
        Scenario(
            "latency-regression",
            "Classification latency of model version 2026.11.2 rises by 60%.",
            "*",
            "drift",
            ("latency",),
        ),
        Scenario("none", "Clean traffic: nothing changes.", None, None, ()),
    )
}


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        from monitor.errors import ConfigError

        raise ConfigError(
            f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)}"
        ) from None
