"""Traffic simulator: realistic verdict + feedback streams with known incidents.

The world is drawn once from the seed: tenants with Zipf-skewed volume and a policy each,
a domain pool per category with Zipf popularity, and model versions routed per request.
Each page has true categories (from its domain); the model scores every true category
high and, now and then, a confusable one low, so false positives and false negatives
happen at plausible base rates. Feedback follows the errors: blocked false positives
draw unblock requests, allowed harmful pages draw reports, analysts label a trickle.
A scenario changes one part of this at the onset; everything else stays as it was.

Generation is vectorised per simulated second with numpy; only the final dict per event
is built in Python.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from monitor.events import FEEDBACK_SCHEMA, VERDICT_SCHEMA
from monitor.scenarios import get_scenario
from monitor.taxonomy import CATEGORIES, POLICIES, category

__all__ = ["DEFAULT_RATE", "SimConfig", "Simulator", "Truth"]

DEFAULT_RATE = 12_700.0  # 1.1 billion requests a day

# Share of traffic by the page's primary true category ("general" = uncategorised/safe).
_MIX: dict[str, float] = {
    "general": 50.0,
    "education": 12.0,
    "news": 4.0,
    "health": 3.0,
    "mental_health": 0.6,
    "lgbtq_resources": 0.3,
    "social_media": 6.0,
    "games": 4.0,
    "streaming_video": 5.0,
    "chat": 1.5,
    "shopping": 2.5,
    "dating": 0.1,
    "adult": 1.5,
    "violence": 0.8,
    "weapons": 0.3,
    "drugs": 0.3,
    "hate": 0.2,
    "self_harm": 0.2,
    "malware": 0.6,
    "proxy_vpn": 0.8,
    "gambling": 0.4,
}

# Which categories the model tends to confuse a page's primary category with.
_CONFUSABLE: dict[str, tuple[str, ...]] = {
    "general": ("shopping", "games", "chat"),
    "education": ("games", "news", "health"),
    "news": ("violence", "hate", "weapons"),
    "health": ("adult", "drugs", "self_harm"),
    "mental_health": ("self_harm", "health"),
    "lgbtq_resources": ("adult", "dating"),
    "social_media": ("chat", "dating", "streaming_video"),
    "games": ("violence", "weapons", "gambling"),
    "streaming_video": ("social_media", "adult"),
    "chat": ("social_media", "dating"),
    "shopping": ("weapons", "drugs"),
    "dating": ("adult", "chat"),
    "adult": ("dating", "health"),
    "violence": ("news", "games", "weapons"),
    "weapons": ("shopping", "violence"),
    "drugs": ("health", "shopping"),
    "hate": ("news", "social_media"),
    "self_harm": ("mental_health", "health"),
    "malware": ("proxy_vpn", "games"),
    "proxy_vpn": ("malware", "education"),
    "gambling": ("games", "shopping"),
}
_P_CONFUSE = 0.06  # a page gets a (usually low) score for one confusable category
_P_NOISE = 0.02  # a page gets a tiny score for a random category
_P_SECONDARY = 0.15  # a domain carries a second true category
_SECONDARY: dict[str, str] = {
    "news": "violence",
    "games": "violence",
    "social_media": "chat",
    "streaming_video": "social_media",
    "health": "mental_health",
    "mental_health": "health",
    "violence": "weapons",
    "weapons": "violence",
    "adult": "dating",
    "chat": "social_media",
    "dating": "chat",
}

_POLICY_SHARE = {"cipa-only": 0.2, "standard": 0.4, "strict": 0.4}

_STEMS: dict[str, tuple[str, ...]] = {
    "general": ("search", "maps", "weather", "portal", "docs", "mail", "cloud", "wiki"),
    "education": ("learn", "math", "science", "class", "study", "edu", "tutor", "reading"),
    "news": ("daily", "times", "herald", "post", "report", "wire"),
    "health": ("health", "clinic", "wellness", "body", "care", "teenhealth"),
    "mental_health": ("mind", "crisis", "support", "calm", "talk"),
    "lgbtq_resources": ("pride", "rainbow", "trevor", "ally"),
    "social_media": ("social", "friends", "snap", "gram", "connect"),
    "games": ("play", "games", "arcade", "quest", "craft"),
    "streaming_video": ("tube", "stream", "watch", "clips", "flix"),
    "chat": ("chat", "talk", "message", "hangout"),
    "shopping": ("shop", "store", "deals", "mart", "buy"),
    "dating": ("date", "match", "singles", "flirt"),
    "adult": ("xxx", "hot", "adult", "nsfw"),
    "violence": ("gore", "fight", "brutal", "shock"),
    "weapons": ("guns", "ammo", "tactical", "blade"),
    "drugs": ("weed", "pills", "highs", "vape"),
    "hate": ("purity", "hate", "front", "order"),
    "self_harm": ("endit", "cutting", "pain", "goodbye"),
    "malware": ("free-prize", "verify-acct", "login-secure", "update-now"),
    "proxy_vpn": ("unblock", "proxy", "vpn", "hide"),
    "gambling": ("bet", "casino", "slots", "poker"),
}
_TLDS = (".com", ".org", ".net", ".io", ".co", ".info")
_PATHS = ("", "index", "article", "watch", "topic", "page", "view", "play", "post")
_ACTORS_UNBLOCK = (("student_appeal", 0.5), ("teacher", 0.35), ("admin", 0.15))

# Model versions: (name, share of traffic before any scenario changes it).
_BASE_VERSIONS = (("2026.11.2", 0.9), ("2026.11.3", 0.1))
NEW_VERSION = "2026.12.0"  # the version a deploy scenario rolls out
_NEW_VERSION = NEW_VERSION


@dataclass
class SimConfig:
    """What to simulate. Times are seconds of simulated traffic from ``start``."""

    scenario: str = "overblock-after-deploy"
    rate: float = DEFAULT_RATE
    duration_s: float = 300.0
    onset_s: float = 150.0
    seed: int = 7
    tenants: int = 400
    domains_per_category: int = 40
    magnitude: float = 1.0
    start: float | None = None  # epoch seconds; default: duration before now
    # Draw the world (tenants, policies, domains) from this seed instead of ``seed``, so
    # two runs can share a world with independent traffic (a profile and a later day).
    world_seed: int | None = None
    # The incident ends (a rollback, a fix) this many seconds from ``start``; None: never.
    recover_s: float | None = None
    # Share of verdicts an analyst audits at random (confirm or relabel): the unbiased
    # label sample that corrects online precision/recall for dispute-driven labels.
    audit_rate: float = 0.0005

    def __post_init__(self) -> None:
        from monitor.errors import ConfigError

        get_scenario(self.scenario)
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ConfigError("--rate must be a positive number of events per second")
        if self.duration_s <= 0:
            raise ConfigError("--duration must be positive (seconds of simulated traffic)")
        if not 0 <= self.onset_s <= self.duration_s:
            raise ConfigError("--onset must lie within [0, duration]")
        if self.tenants < 1:
            raise ConfigError("--tenants must be >= 1")
        if self.recover_s is not None and not self.onset_s < self.recover_s <= self.duration_s:
            raise ConfigError("--recover must lie after --onset and within the duration")
        if self.magnitude <= 0:
            raise ConfigError("--magnitude must be > 0")
        if not 0 <= self.audit_rate < 0.5:
            raise ConfigError("audit_rate must lie in [0, 0.5)")


@dataclass
class Truth:
    """Ground truth written beside the simulated data."""

    scenario: str
    seed: int
    rate: float
    start: float
    onset_ts: float
    end_ts: float
    expected_category: str | None
    expected_direction: str | None
    expected_signals: list[str]
    also_acceptable: list[str]
    verdicts: int = 0
    feedback: int = 0
    blocked: int = 0
    predicted_by_category: Counter = field(default_factory=Counter)
    blocked_by_category: Counter = field(default_factory=Counter)
    feedback_by_action: Counter = field(default_factory=Counter)
    incident_tenant: str | None = None
    incident_model_version: str | None = None
    recover_ts: float | None = None  # when the incident ended, if it did

    def to_dict(self) -> dict:
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "rate": self.rate,
            "start": self.start,
            "onset_ts": self.onset_ts,
            "end_ts": self.end_ts,
            "recover_ts": self.recover_ts,
            "expected": {
                "category": self.expected_category,
                "direction": self.expected_direction,
                "signals": self.expected_signals,
                "also_acceptable": self.also_acceptable,
                "tenant": self.incident_tenant,
                "model_version": self.incident_model_version,
            },
            "counts": {
                "verdicts": self.verdicts,
                "feedback": self.feedback,
                "blocked": self.blocked,
                "predicted_by_category": dict(sorted(self.predicted_by_category.items())),
                "blocked_by_category": dict(sorted(self.blocked_by_category.items())),
                "feedback_by_action": dict(sorted(self.feedback_by_action.items())),
            },
        }


class _World:
    """Everything drawn once from the seed: tenants, domains, policies."""

    def __init__(self, cfg: SimConfig, rng: np.random.Generator):
        n = cfg.tenants
        w = 1.0 / np.arange(1, n + 1) ** 1.1
        self.tenant_w = w / w.sum()
        self.tenant_ids = [f"district-{i:04d}" for i in range(n)]
        pol_names = list(_POLICY_SHARE)
        pol_idx = rng.choice(len(pol_names), size=n, p=list(_POLICY_SHARE.values()))
        self.tenant_policy = [pol_names[i] for i in pol_idx]
        self.tenant_blockset = [POLICIES[p] for p in self.tenant_policy]

        self.types = list(_MIX)
        mix = np.array([_MIX[t] for t in self.types])
        self.type_w = mix / mix.sum()
        self.domains: dict[str, list[str]] = {}
        self.domain_truth: dict[str, list[tuple[str, ...]]] = {}
        self.domain_cdf: dict[str, np.ndarray] = {}
        k = cfg.domains_per_category
        for t in self.types:
            stems = _STEMS[t]
            names, truths = [], []
            for j in range(k if t != "general" else k * 3):
                stem = stems[j % len(stems)]
                names.append(f"{stem}{'' if j < len(stems) else j}{_TLDS[j % len(_TLDS)]}")
                truth: tuple[str, ...] = () if t == "general" else (t,)
                other = _SECONDARY.get(t)
                if other is not None and rng.random() < _P_SECONDARY:
                    truth = (*truth, other)
                truths.append(truth)
            dw = 1.0 / np.arange(1, len(names) + 1) ** 1.0
            self.domains[t] = names
            self.domain_truth[t] = truths
            self.domain_cdf[t] = np.cumsum(dw / dw.sum())


class Simulator:
    """Generates events in time order; iterate :meth:`events`, then read :attr:`truth`."""

    def __init__(self, cfg: SimConfig):
        self.cfg = cfg
        self.scenario = get_scenario(cfg.scenario)
        self._rng = np.random.default_rng(cfg.seed)
        world_rng = self._rng if cfg.world_seed is None else np.random.default_rng(cfg.world_seed)
        self.world = _World(cfg, world_rng)
        start = cfg.start if cfg.start is not None else math.floor(time.time() - cfg.duration_s)
        self.start = float(start)
        self.onset_ts = self.start + cfg.onset_s
        self.end_ts = self.start + cfg.duration_s
        self.recover_ts = self.start + cfg.recover_s if cfg.recover_s is not None else math.inf
        self.truth = Truth(
            scenario=cfg.scenario,
            seed=cfg.seed,
            rate=cfg.rate,
            start=self.start,
            onset_ts=self.onset_ts,
            end_ts=self.end_ts,
            expected_category=self.scenario.expected_category,
            expected_direction=self.scenario.expected_direction,
            expected_signals=list(self.scenario.expected_signals),
            also_acceptable=list(self.scenario.also_acceptable),
            recover_ts=self.recover_ts if cfg.recover_s is not None else None,
        )
        # The storm tenant is a mid-sized strict district (big enough to matter).
        strict = [i for i, p in enumerate(self.world.tenant_policy) if p == "strict"]
        self._storm_tenant = strict[min(4, len(strict) - 1)] if strict else 0
        if cfg.scenario == "tenant-override-storm":
            self.truth.incident_tenant = self.world.tenant_ids[self._storm_tenant]
        if cfg.scenario == "overblock-after-deploy":
            self.truth.incident_model_version = _NEW_VERSION
        if cfg.scenario == "latency-regression":
            self.truth.incident_model_version = _BASE_VERSIONS[0][0]
        self._seq = 0
        self._fb_seq = 0
        self._pending: list[tuple[float, int, dict]] = []  # feedback heap
        self._annotate = False  # sample(): record each verdict's feedback probability
        self.emit_truth = False  # add each verdict's true categories as "_true" (eval sets)

    # ------------------------------------------------------------------------------
    def events(self) -> Iterator[dict]:
        """Yield verdict and feedback events (dicts, ``verdict/1`` / ``feedback/1``)."""
        for chunk in self.chunks():
            yield from chunk

    def chunks(self) -> Iterator[list[dict]]:
        """Yield one list of time-ordered events per simulated second."""
        t = self.start
        while t < self.end_ts:
            t_next = min(t + 1.0, self.end_ts)
            verdicts = self._second(t, t_next)
            due = []
            while self._pending and self._pending[0][0] < t_next:
                due.append(heapq.heappop(self._pending)[2])
            merged = list(heapq.merge(verdicts, due, key=lambda e: e["ts"])) if due else verdicts
            for e in due:
                self.truth.feedback += 1
                self.truth.feedback_by_action[e["action"]] += 1
            yield merged
            t = t_next

    def sample(self, seconds: int, *, after_onset: bool) -> tuple[list[dict], list[dict]]:
        """``seconds`` of verdicts in the pre- or post-onset state, with *all* the feedback
        they draw (no end-of-run cut-off): the raw material of the window-level twin.

        Each verdict carries ``"_fb"``: (action, probability, categories) of the rate
        evidence it can draw (an unblock if blocked, a report if allowed), so the twin
        can use expected feedback rates instead of a pool's few realised events.

        Uses this simulator's world and random stream; do not mix with :meth:`events`.
        """
        self.onset_ts = -math.inf if after_onset else math.inf
        self.recover_ts = math.inf
        self.end_ts = math.inf
        self._pending = []
        self._annotate = True
        verdicts: list[dict] = []
        for i in range(seconds):
            verdicts += self._second(self.start + i, self.start + i + 1)
        feedback = [e for _, _, e in self._pending]
        self._pending = []
        self._annotate = False
        return verdicts, feedback

    @property
    def storm_tenant(self) -> str:
        return self.world.tenant_ids[self._storm_tenant]

    # ------------------------------------------------------------------------------
    def _versions(self, after: bool) -> tuple[list[str], np.ndarray]:
        names = [v for v, _ in _BASE_VERSIONS]
        share = np.array([s for _, s in _BASE_VERSIONS])
        if after and self.cfg.scenario == "overblock-after-deploy":
            new_share = min(0.9, 0.4 * self.cfg.magnitude)
            share = share * (1 - new_share)
            names = [*names, _NEW_VERSION]
            share = np.append(share, new_share)
        return names, share / share.sum()

    def _second(self, t0: float, t1: float) -> list[dict]:
        cfg, rng, world = self.cfg, self._rng, self.world
        n = int(rng.poisson(cfg.rate * (t1 - t0)))
        if n == 0:
            return []
        ts = np.sort(rng.uniform(t0, t1, n))
        after = (ts >= self.onset_ts) & (ts < self.recover_ts)
        any_after = bool(after.any())
        scen = cfg.scenario if any_after else "none"
        mag = cfg.magnitude

        tenant = rng.choice(len(world.tenant_ids), size=n, p=world.tenant_w)
        type_w = world.type_w
        types = rng.choice(len(world.types), size=n, p=type_w)
        # Draws that only some scenarios use are made in every state anyway, so a
        # scenario's post-onset traffic differs from clean traffic only where the
        # scenario changes it (common random numbers: the twin's pools rely on it).
        surge_u = rng.random(n)
        version_u = rng.random(n)
        surge = np.zeros(n, dtype=bool)
        if scen == "category-mix-shift":
            # The new app takes 8% of traffic, proportionally from everything else.
            surge = after & (surge_u < min(0.5, 0.08 * mag))
        versions, vshare = self._versions(False)
        vidx = _route(version_u, vshare)
        if scen == "overblock-after-deploy":
            v2, s2 = self._versions(True)
            vidx = np.where(after, _route(version_u, s2), vidx)
            versions = v2
        latency = rng.lognormal(math.log(32.0), 0.35, n)
        if scen == "latency-regression":
            slow = after & (vidx == 0)
            latency = np.where(slow, latency * (1 + 0.6 * mag), latency)

        pos = rng.beta(8.0, 1.6, n)  # primary-category score
        pos2 = rng.beta(8.0, 1.6, n)  # secondary-category score
        conf_draw = rng.random(n)
        conf_pick = rng.integers(0, 3, n)
        conf_score = rng.beta(1.5, 8.0, n)
        noise_draw = rng.random(n)
        noise_cat = rng.integers(0, len(CATEGORIES), n)
        noise_score = 0.01 + 0.2 * rng.beta(1.2, 6.0, n)
        fb_draw = rng.random(n)
        fb_delay = np.minimum(1.0 + rng.exponential(15.0, n), 240.0)
        actor_draw = rng.random(n)
        shift = rng.beta(2.5, 2.5, n)
        lowered = rng.beta(3.0, 5.0, n)
        ob_draw = rng.random(n)
        ob_score = rng.beta(7.0, 3.0, n)
        dom_u = rng.random(n)
        dom_idx = np.zeros(n, dtype=np.int64)
        for k, t in enumerate(world.types):
            mask = types == k
            if mask.any():
                cdf = world.domain_cdf[t]
                dom_idx[mask] = np.minimum(np.searchsorted(cdf, dom_u[mask]), len(cdf) - 1)
        path_i = rng.integers(0, len(_PATHS), n)
        pii_draw = rng.random(n)
        page_no = rng.integers(1, 5000, n)

        out: list[dict] = []
        truth = self.truth
        new_version_idx = versions.index(_NEW_VERSION) if _NEW_VERSION in versions else -1
        storm = self._storm_tenant
        cats = CATEGORIES
        for i in range(n):
            if surge[i]:
                ptype = "social_media"
                domain = "snapverse.app"
                true_cats: tuple[str, ...] = ("social_media",)
            else:
                ptype = world.types[types[i]]
                j = dom_idx[i]
                domain = world.domains[ptype][j]
                true_cats = world.domain_truth[ptype][j]
            is_after = after[i]
            scores: dict[str, float] = {}
            for k, c in enumerate(true_cats):
                s = pos[i] if k == 0 else pos2[i]
                if is_after and scen == "score-shift" and c == "violence":
                    s = 0.5 + 0.5 * shift[i] if mag >= 1 else s - (s - 0.5 - 0.5 * shift[i]) * mag
                elif (
                    is_after
                    and scen == "selfharm-underblock"
                    and c == "self_harm"
                    and (mag >= 1 or ob_draw[i] < mag)  # hits that share of self-harm pages
                ):
                    s = lowered[i]
                scores[c] = round(float(s), 4)
            if conf_draw[i] < _P_CONFUSE:
                c = _CONFUSABLE[ptype][conf_pick[i] % len(_CONFUSABLE[ptype])]
                if c not in scores:
                    scores[c] = round(float(conf_score[i]), 4)
            if noise_draw[i] < _P_NOISE:
                c = cats[noise_cat[i]].name
                if c not in scores:
                    scores[c] = round(float(noise_score[i]), 4)
            if (
                is_after
                and scen == "overblock-after-deploy"
                and vidx[i] == new_version_idx
                and ptype in ("health", "mental_health", "lgbtq_resources")
                and ob_draw[i] < min(1.0, 0.55 * mag)
            ):
                scores["adult"] = max(scores.get("adult", 0.0), round(float(ob_score[i]), 4))
            predicted = [c for c, s in scores.items() if s >= category(c).threshold]
            blockset = world.tenant_blockset[tenant[i]]
            blocking = [c for c in predicted if c in blockset]
            decision = "block" if blocking else "allow"
            self._seq += 1
            rid = f"r{self.cfg.seed:x}-{self._seq:09x}"
            url = f"https://{domain}/{_PATHS[path_i[i]]}"
            if pii_draw[i] < 0.08:
                url += f"?student_id={page_no[i] * 7919}&email=student{page_no[i]}@school.org"
            elif pii_draw[i] < 0.2:
                url += f"?q=page+{page_no[i]}#section-{page_no[i] % 7}"
            tenant_id = world.tenant_ids[tenant[i]]
            ev = {
                "schema": VERDICT_SCHEMA,
                "request_id": rid,
                "ts": round(float(ts[i]), 3),
                "tenant_id": tenant_id,
                "url": url,
                "domain": domain,
                "model_version": versions[vidx[i]],
                "scores": scores,
                "categories": predicted,
                "decision": decision,
                "policy": world.tenant_policy[tenant[i]],
                "latency_ms": round(float(latency[i]), 2),
                "source": "prod",
            }
            if self.emit_truth:
                ev["_true"] = list(true_cats)
            out.append(ev)
            truth.verdicts += 1
            for c in predicted:
                truth.predicted_by_category[c] += 1
            if blocking:
                truth.blocked += 1
                for c in predicted:
                    truth.blocked_by_category[c] += 1

            # ---- feedback ----------------------------------------------------------
            p = fb_draw[i]
            action = None
            fb_cats: tuple[str, ...] = true_cats
            actor = "analyst"
            if blocking:
                false_positive = any(c not in true_cats for c in blocking)
                p_unblock = 0.03 if false_positive else 0.0008
                if (
                    is_after
                    and scen == "tenant-override-storm"
                    and tenant[i] == storm
                    and "games" in blocking
                ):
                    p_unblock = min(1.0, 0.25 * mag)
                if is_after and scen == "unblock-doubling" and "social_media" in predicted:
                    p_unblock = min(1.0, p_unblock * (1.0 + mag))
                if p < p_unblock:
                    action = "unblock"
                    actor = _actor(actor_draw[i])
                if self._annotate:
                    ev["_fb"] = ("unblock", p_unblock, ())
            else:
                missed = [c for c in true_cats if c in blockset]
                if missed:
                    p_report = 0.05 if "self_harm" in missed else 0.01
                    fb_cats = tuple(missed)
                else:  # a stray report about a random category
                    p_report = 2e-6
                    fb_cats = (cats[noise_cat[i]].name,)
                if self._annotate:
                    ev["_fb"] = ("report", p_report, fb_cats)
                if p < p_report:
                    action = "report"
                    actor = "teacher" if actor_draw[i] < 0.7 else "admin"
            if action is None and p > 1.0 - self.cfg.audit_rate:
                action = "confirm" if set(true_cats) == set(predicted) else "relabel"
                actor = "analyst"
                fb_cats = true_cats
            if action is not None:
                fts = float(ts[i]) + float(fb_delay[i]) * (1.0 if actor != "analyst" else 4.0)
                if fts < self.end_ts:
                    self._fb_seq += 1
                    fb = {
                        "schema": FEEDBACK_SCHEMA,
                        "feedback_id": f"f{self.cfg.seed:x}-{self._fb_seq:08x}",
                        "request_id": rid,
                        "ts": round(fts, 3),
                        "tenant_id": tenant_id,
                        "actor": actor,
                        "action": action,
                        "categories": list(fb_cats),
                    }
                    heapq.heappush(self._pending, (fb["ts"], self._fb_seq, fb))
        return out


def _route(u: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Model version index per request from uniforms, by cumulative traffic share."""
    return np.minimum(np.searchsorted(np.cumsum(share), u, side="right"), len(share) - 1)


def _actor(u: float) -> str:
    acc = 0.0
    for name, share in _ACTORS_UNBLOCK:
        acc += share
        if u < acc:
            return name
    return _ACTORS_UNBLOCK[-1][0]
