"""Reference profiles: what "normal" is, learned once from known-good traffic, stored.

A detector bank that learns its references from the first minutes of live traffic has
wide intervals on sparse signals (a few unblocks a window) and learns whatever happens
in those minutes as normal. A profile is learned from a longer stretch of traffic you
vouch for (yesterday's production, or the offline evaluation's replay), per segment and
model version, and stored in ClickHouse (``reference_profiles``); banks load it at start
(``detect.profile`` in the config) and start testing from their first window.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from detectors.bank import DetectorBank
from monitor.aggregate import WindowAggregator
from monitor.config import Config
from monitor.errors import ConfigError
from monitor.events import Feedback, Verdict
from monitor.join import VerdictCache
from monitor.storage import Store
from monitor.validation import Validator

__all__ = ["ProfileBuild", "build_profile", "load_profile_rows"]


@dataclass
class ProfileBuild:
    rows: list[dict]
    windows: int
    verdicts: int
    feedback: int
    rejected: int
    first_ts: float | None
    last_ts: float | None


def build_profile(events: Iterable, config: Config) -> ProfileBuild:
    """Learn every segment's reference from ``events`` (raw dicts, JSON lines or bytes).

    The references grow over the whole input (no live warm-up cut-off); bad events are
    counted and skipped, as the pipeline would dead-letter them.
    """
    bank_cfg = dataclasses.replace(config.detect, reference_windows=1 << 30, profile="")
    bank = DetectorBank(bank_cfg)
    validator = Validator.from_config(config)
    cache = VerdictCache(config.ingest.join_horizon_s)
    agg = WindowAggregator(bank_cfg.window_s, config.ingest.lateness_windows)
    n_v = n_f = bad = 0
    first = last = None
    closed = []
    for raw in events:
        ev = validator.validate(raw)
        if isinstance(ev, Verdict):
            n_v += 1
            cache.add(ev)
            closed = agg.add_verdict(ev)
        elif isinstance(ev, Feedback):
            n_f += 1
            j = cache.join(ev)
            closed = agg.add_feedback(ev.ts, j.model_version, j.attributed, ev.action, ev.tenant_id)
        else:
            bad += 1
            continue
        first = ev.ts if first is None else min(first, ev.ts)
        last = ev.ts if last is None else max(last, ev.ts)
        for w in closed:
            bank.update(w)
    for w in agg.flush():
        bank.update(w)
    if bank.windows < bank_cfg.warmup_windows:
        raise ConfigError(
            f"a profile needs at least {bank_cfg.warmup_windows} windows of traffic "
            f"({bank_cfg.warmup_windows * bank_cfg.window_s:.0f} s); the input has "
            f"{bank.windows}"
        )
    return ProfileBuild(bank.export_references(), bank.windows, n_v, n_f, bad, first, last)


def load_profile_rows(store: Store, name: str) -> list[dict]:
    """The stored profile ``name``, or a one-line error naming how to build it."""
    rows = store.load_profile(name)
    if not rows:
        raise ConfigError(
            f"reference profile {name!r} is not in the store; build it with "
            f"'filterwatch reference build FILE --profile {name}' or unset detect.profile"
        )
    return rows
