"""A window-level twin of the traffic simulator: a simulated day in about a minute.

A backtest needs days of clean traffic (false alarms per day) and hundreds of incident
runs; the event simulator makes ~130,000 events/s, so one day at 12,700 events/s would
take over two hours. The detectors never see events, only window aggregates, so the twin
samples the aggregates directly, from the simulator's own events:

1. The simulator draws a pool of events in the pre-onset and the post-onset state (with
   all the feedback each verdict draws). Events are grouped into *types*: model version,
   tenant bucket (policy, or the scenario's storm tenant), blocked or not, predicted
   categories, and each scored category's histogram bin.
2. Arrivals are a Poisson process in the simulator, so the count of each type in a
   window is Poisson(rate x window x share) and types are independent (Poisson
   thinning): sampling those counts gives the window's cells exactly in distribution.
3. Tenants are drawn independently of pages within a bucket, so each bucket's events
   split over its tenants by tenant weight (multinomially): exact again.
4. Feedback is a thinning of the verdicts with independent delays: each type draws
   feedback at the mean of its pool verdicts' feedback probabilities (which the
   simulator reports), and each feedback event lands in the window of its verdict's
   time plus a delay drawn from the pool's realised feedback. The twin
   pre-rolls five minutes so feedback is in steady state when windows start, as it is
   for a monitor joining a running stream.
5. Latency per version is the sum of many independent draws: normal with the pool's
   mean and variance times the count.

``tests/unit/test_twin.py`` checks the twin's window statistics against windows built
from the event simulator through the real aggregator. Limits: the world is stationary
apart from the optional school-day volume curve (the category mix does not change with
the time of day), and each type keeps the pool's feedback probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
from scipy import sparse

from monitor.aggregate import HIST_BINS, WindowAggregate
from monitor.simulator import NEW_VERSION, SimConfig, Simulator

__all__ = ["TrafficTwin", "TwinConfig", "school_day_volume"]

_CELL = 4 + HIST_BINS
_PREROLL_WINDOWS = 60
_MAX_FEATURES = 50_000  # upper bound while the type tables are built; trimmed after


def school_day_volume(t: float) -> float:
    """Relative request volume at ``t`` seconds after midnight (mean 1 over a day).

    K-12 traffic follows the school day: low overnight, a ramp at 07:00, a plateau
    through lessons with a lunch peak, and a fall after 15:00.
    """
    h = (t / 3600.0) % 24.0
    school = 1.0 / (1.0 + math.exp(-(h - 7.5) * 2.5)) / (1.0 + math.exp((h - 15.5) * 1.5))
    lunch = 0.25 * math.exp(-(((h - 12.0) / 0.7) ** 2))
    return (0.12 + 2.4 * school + lunch) / _VOLUME_MEAN


_VOLUME_MEAN = 1.0
_VOLUME_MEAN = float(np.mean([school_day_volume(x) for x in np.arange(0, 86400, 60.0)]))


@dataclass(frozen=True)
class TwinConfig:
    window_s: float = 5.0
    pool_seconds: int = 40  # seconds of simulated events per state in the pool
    diurnal: bool = False  # modulate volume by the school-day curve
    day_offset_s: float = 0.0  # time of day at the start, for ``diurnal``


class _State:
    """The type table of one simulator state (pre- or post-onset).

    Versions are routed per request independently of everything else, so the base
    versions' events are pooled into one type table and split by version share:
    otherwise a small version's table would be a noisier estimate of the same
    behaviour, and comparing versions would find differences the simulator never made.
    Only a version whose behaviour a scenario changes keeps a table of its own.
    """

    def __init__(self, verdicts: list[dict], twin: TrafficTwin):
        per_second = 1.0 / twin.config.pool_seconds
        pooled: dict[tuple, int] = {}
        # Expected feedback per type: the sum of each verdict's feedback probability
        # (Rao-Blackwellised: far less noisy than counting the pool's realised feedback).
        fb_pooled: dict[tuple, dict[tuple, float]] = {}
        base_counts: dict[str, int] = {}
        lat: dict[str, list] = {}
        for v in verdicts:
            mv = v["model_version"]
            own = mv == NEW_VERSION
            if not own:
                base_counts[mv] = base_counts.get(mv, 0) + 1
            scored = tuple(
                sorted((c, min(int(s * HIST_BINS), HIST_BINS - 1)) for c, s in v["scores"].items())
            )
            key = (
                mv if own else _BASE,
                twin.bucket_of(v["tenant_id"]),
                v["decision"] == "block",
                tuple(v["categories"]),
                scored,
            )
            pooled[key] = pooled.get(key, 0) + 1
            action, prob, fb_cats = v["_fb"]
            if prob > 0:
                out = (2, key[3]) if action == "unblock" else (3, tuple(fb_cats))
                if out[1]:
                    d = fb_pooled.setdefault(key, {})
                    d[out] = d.get(out, 0.0) + prob
            acc = lat.setdefault(mv, [0, 0.0, 0.0])
            x = v["latency_ms"]
            acc[0] += 1
            acc[1] += x
            acc[2] += x * x
        total_base = sum(base_counts.values())
        shares = {mv: n / total_base for mv, n in sorted(base_counts.items())}
        p: list[float] = []
        ri: list[int] = []
        ci: list[int] = []
        groups: list[int] = []
        buckets: list[int] = []
        fb_type: list[int] = []
        fb_outcome: list[int] = []
        fb_p: list[float] = []
        for key, n in pooled.items():
            mvg, bucket, blocked, predicted, scored = key
            split = shares.items() if mvg == _BASE else ((mvg, 1.0),)
            for mv, share in split:
                t = len(p)
                p.append(n * share * per_second)
                for f in twin.features_of(mv, blocked, predicted, scored):
                    ri.append(t)
                    ci.append(f)
                groups.append(twin.group_of(bucket, predicted) if blocked else -1)
                buckets.append(twin.bucket_index[bucket])
                for (slot, attributed), c in fb_pooled.get(key, {}).items():
                    fb_type.append(t)
                    fb_outcome.append(twin.outcome(mv, bucket, slot, attributed))
                    fb_p.append(c / n)
        self.p = np.asarray(p)
        shape = (len(p), _MAX_FEATURES)
        self.matrix = sparse.csr_matrix((np.ones(len(ri)), (ri, ci)), shape=shape).T.tocsr()
        self.groups = np.asarray(groups, dtype=np.int64)
        self.buckets = np.asarray(buckets, dtype=np.int64)
        self.latency = {
            mv: (s / n, max(s2 / n - (s / n) ** 2, 0.0)) for mv, (n, s, s2) in lat.items()
        }
        self.fb_type = np.asarray(fb_type, dtype=np.int64)
        self.fb_outcome = np.asarray(fb_outcome, dtype=np.int64)
        self.fb_p = np.asarray(fb_p)


_BASE = "(base versions)"


class TrafficTwin:
    """Iterate :meth:`windows` for the aggregates the event simulator would produce."""

    def __init__(self, sim_config: SimConfig, config: TwinConfig | None = None):
        self.sim_config = sim_config
        self.config = config or TwinConfig()
        cfg = sim_config
        # Two simulators with the same seed: the same world (tenants, policies, domains)
        # and the same random draws, so the post-onset pool differs from the pre-onset
        # pool exactly where the scenario changes traffic (common random numbers).
        cfg = replace(cfg, start=cfg.start if cfg.start is not None else 1.7e9)
        pool = Simulator(cfg)
        self.start = pool.start
        self.onset = pool.onset_ts
        self.recover = pool.recover_ts  # inf unless the incident ends
        self.end = pool.end_ts
        world = pool.world
        storm = pool.storm_tenant if cfg.scenario == "tenant-override-storm" else None
        self._storm = storm
        # Buckets: policy, plus the storm tenant alone.
        names = sorted(set(world.tenant_policy)) + ([f"tenant:{storm}"] if storm else [])
        self.bucket_index = {b: i for i, b in enumerate(names)}
        self._policy = dict(zip(world.tenant_ids, world.tenant_policy, strict=True))
        self.bucket_tenants: list[np.ndarray] = []
        self.bucket_tenant_idx: list[np.ndarray] = []
        self.tenant_names: list[str] = list(world.tenant_ids)
        self.bucket_cdf: list[np.ndarray] = []
        ids = np.asarray(world.tenant_ids)
        for b in names:
            if b.startswith("tenant:"):
                mask = ids == storm
            else:
                mask = np.asarray(
                    [p == b and t != storm for t, p in zip(ids, world.tenant_policy, strict=True)]
                )
            w = world.tenant_w[mask]
            self.bucket_tenants.append(ids[mask])
            self.bucket_tenant_idx.append(np.nonzero(mask)[0])
            self.bucket_cdf.append(np.cumsum(w / w.sum()))
        self._features: dict[tuple, int] = {}
        self._groups: dict[tuple, int] = {}
        self.group_predicted: list[tuple[str, ...]] = []
        self.group_bucket: list[int] = []
        self._outcomes: dict[tuple, int] = {}
        self.outcomes: list[tuple] = []
        self._delays: list[float] = []
        self.states = {}
        pre_v, pre_f = pool.sample(self.config.pool_seconds, after_onset=False)
        self._collect_delays(pre_v, pre_f)
        self.states["pre"] = _State(pre_v, self)
        if cfg.scenario != "none" and self.onset < self.end:
            post_v, _ = Simulator(cfg).sample(self.config.pool_seconds, after_onset=True)
            self.states["post"] = _State(post_v, self)
        self.delays = np.asarray(self._delays or [1.0])
        self._finalise()

    # -- type table construction (called by _State) -------------------------------------
    def bucket_of(self, tenant: str) -> str:
        return f"tenant:{tenant}" if tenant == self._storm else self._policy[tenant]

    def _feature(self, key: tuple) -> int:
        f = self._features.get(key)
        if f is None:
            f = self._features[key] = len(self._features)
        return f

    def features_of(self, mv, blocked, predicted, scored) -> list[int]:
        f = [self._feature(("ver", mv, 0))]
        if blocked:
            f.append(self._feature(("ver", mv, 1)))
        pred = set(predicted)
        for cat, b in scored:
            f.append(self._feature(("cell", cat, mv, 4 + b)))
            if cat in pred:
                f.append(self._feature(("cell", cat, mv, 0)))
                if blocked:
                    f.append(self._feature(("cell", cat, mv, 1)))
        if predicted:
            f.append(self._feature(("ver", mv, 4)))
            ls = "+".join(sorted(predicted)) if len(predicted) > 1 else predicted[0]
            f.append(self._feature(("ls", ls)))
        return f

    def group_of(self, bucket: str, predicted: tuple[str, ...]) -> int:
        key = (bucket, predicted)
        g = self._groups.get(key)
        if g is None:
            g = self._groups[key] = len(self.group_predicted)
            self.group_predicted.append(predicted)
            self.group_bucket.append(self.bucket_index[bucket])
        return g

    def outcome(self, mv: str, bucket: str, slot: int, attributed: tuple[str, ...]) -> int:
        okey = (mv, self.bucket_index[bucket], slot, attributed)
        o = self._outcomes.get(okey)
        if o is None:
            o = self._outcomes[okey] = len(self.outcomes)
            self.outcomes.append(okey)
        return o

    def _collect_delays(self, verdicts: list[dict], feedback: list[dict]) -> None:
        ts = {v["request_id"]: v["ts"] for v in verdicts}
        for f in feedback:
            if f["action"] in ("unblock", "report") and f["request_id"] in ts:
                self._delays.append(f["ts"] - ts[f["request_id"]])

    def _finalise(self) -> None:
        n = len(self._features)
        for st in self.states.values():
            st.matrix = st.matrix[:n]
        self._feature_keys = [None] * n
        for k, i in self._features.items():
            self._feature_keys[i] = k
        self.n_buckets = len(self.bucket_index)
        self.group_bucket_arr = np.asarray(self.group_bucket, dtype=np.int64)

    # -- sampling -------------------------------------------------------------------------
    def windows(self, seed: int | None = None) -> Iterator[WindowAggregate]:
        """Window aggregates from ``start`` to ``end`` (one simulated run)."""
        cfg = self.sim_config
        rng = np.random.default_rng(cfg.seed * 1_000_003 + 17 if seed is None else seed)
        ws = self.config.window_s
        yield from self._sample(int(self.start // ws), math.ceil(self.end / ws), rng, True)

    def profile_windows(self, seconds: float, seed: int | None = None):
        """``seconds`` of clean traffic ending at ``start``, from independent draws: what a
        reference profile is built from (yesterday's traffic of the same world)."""
        cfg = self.sim_config
        rng = np.random.default_rng(cfg.seed * 1_000_003 + 29 if seed is None else seed)
        ws = self.config.window_s
        last = int(self.start // ws)
        yield from self._sample(last - math.ceil(seconds / ws), last, rng, False)

    def _sample(self, first: int, last: int, rng, with_incident: bool):
        tc = self.config
        ws = tc.window_s
        pending: dict[int, dict[int, int]] = {}
        for w in range(first - _PREROLL_WINDOWS, last):
            t0, t1 = w * ws, (w + 1) * ws
            vol = school_day_volume(tc.day_offset_s + t0 - self.start) if tc.diurnal else 1.0
            expected = ws * vol  # pool shares are expected counts per second at cfg.rate
            post_frac = 0.0
            if with_incident and "post" in self.states:
                on = min(t1, self.recover) - max(t0, self.onset)
                post_frac = min(max(on / ws, 0.0), 1.0)
            feats = None
            per_state = []
            for name, frac in (("pre", 1.0 - post_frac), ("post", post_frac)):
                if frac <= 0:
                    continue
                st = self.states[name]
                counts = rng.poisson(st.p * (expected * frac))
                x = st.matrix @ counts
                feats = x if feats is None else feats + x
                per_state.append((st, counts))
            for st, counts in per_state:
                self._schedule_feedback(st, counts, w, rng, pending)
            if w < first:
                pending.pop(w, None)
                continue
            yield self._build(w, feats, per_state, pending.pop(w, {}), rng)

    def _schedule_feedback(self, st: _State, counts, w: int, rng, pending) -> None:
        if not len(st.fb_type):
            return
        m = rng.binomial(counts[st.fb_type], st.fb_p)
        hit = np.nonzero(m)[0]
        if not len(hit):
            return
        outcomes = np.repeat(st.fb_outcome[hit], m[hit])
        ws = self.config.window_s
        offs = rng.uniform(0, ws, len(outcomes)) + rng.choice(self.delays, len(outcomes))
        targets = w + (offs // ws).astype(np.int64)
        for tw, o in zip(targets.tolist(), outcomes.tolist(), strict=True):
            d = pending.setdefault(tw, {})
            d[o] = d.get(o, 0) + 1

    def _pick_tenants(self, bucket: int, n: int, rng) -> np.ndarray:
        cdf = self.bucket_cdf[bucket]
        idx = np.minimum(np.searchsorted(cdf, rng.random(n)), len(cdf) - 1)
        return self.bucket_tenants[bucket][idx]

    def _build(self, w, feats, per_state, feedback: dict[int, int], rng) -> WindowAggregate:
        ws = self.config.window_s
        agg = WindowAggregate(w, w * ws, (w + 1) * ws)
        keys = self._feature_keys
        nz = np.nonzero(feats)[0]
        for i, x in zip(nz.tolist(), feats[nz].tolist(), strict=True):
            k = keys[i]
            kind = k[0]
            if kind == "cell":
                cell = agg.cells.get((k[1], k[2]))
                if cell is None:
                    cell = agg.cells[(k[1], k[2])] = [0] * _CELL
                cell[k[3]] += int(x)
            elif kind == "ver":
                ver = agg.versions.get(k[1])
                if ver is None:
                    ver = agg.versions[k[1]] = [0, 0, 0.0, 0, 0]
                ver[k[2]] += int(x)
            else:
                agg.labelsets[k[1]] = int(x)
        # Latency: sum of n independent draws per version.
        for mv, ver in agg.versions.items():
            n = ver[0]
            mean, var = self._latency_moments(mv, per_state)
            ver[2] = float(rng.normal(n * mean, math.sqrt(n * var))) if n else 0.0
            ver[3] = n
        self._split_tenants(agg, per_state, rng)
        for o, x in feedback.items():
            mv, bucket, slot, attributed = self.outcomes[o]
            for cat in attributed:
                cell = agg.cells.get((cat, mv))
                if cell is None:
                    cell = agg.cells[(cat, mv)] = [0] * _CELL
                cell[slot] += x
            for tenant in self._pick_tenants(bucket, x, rng).tolist():
                for cat in attributed:
                    tc = agg.tenant_cells.get((tenant, cat))
                    if tc is None:
                        tc = agg.tenant_cells[(tenant, cat)] = [0, 0, 0]
                    tc[slot - 1] += 1
        return agg

    def _latency_moments(self, mv: str, per_state) -> tuple[float, float]:
        tot = 0.0
        m = v = 0.0
        for st, counts in per_state:
            if mv in st.latency:
                wgt = float(counts.sum())
                mm, vv = st.latency[mv]
                m += wgt * mm
                v += wgt * vv
                tot += wgt
        return (m / tot, v / tot) if tot else (0.0, 0.0)

    def _split_tenants(self, agg: WindowAggregate, per_state, rng) -> None:
        n_groups = len(self.group_predicted)
        group_counts = np.zeros(n_groups, dtype=np.int64)
        unblocked = np.zeros(self.n_buckets, dtype=np.int64)
        for st, counts in per_state:
            blocked = st.groups >= 0
            if n_groups:
                group_counts += np.bincount(
                    st.groups[blocked], weights=counts[blocked], minlength=n_groups
                ).astype(np.int64)[:n_groups]
            unblocked += np.bincount(
                st.buckets[~blocked], weights=counts[~blocked], minlength=self.n_buckets
            ).astype(np.int64)
        tenants = agg.tenants
        for b in range(self.n_buckets):
            n = int(unblocked[b])
            if n:
                split = rng.multinomial(n, np.diff(self.bucket_cdf[b], prepend=0.0))
                for t, x in zip(self.bucket_tenants[b].tolist(), split.tolist(), strict=True):
                    if x:
                        tenants[t] = [x, 0]
        # Blocked events: draw every event's tenant at once (per bucket), then count
        # (group, tenant) pairs in one pass.
        groups = np.nonzero(group_counts)[0]
        if not len(groups):
            return
        per_event_group = np.repeat(groups, group_counts[groups])
        per_event_bucket = self.group_bucket_arr[per_event_group]
        tenant_idx = np.empty(len(per_event_group), dtype=np.int64)
        for b in range(self.n_buckets):
            mask = per_event_bucket == b
            n = int(mask.sum())
            if n:
                cdf = self.bucket_cdf[b]
                pick = np.minimum(np.searchsorted(cdf, rng.random(n)), len(cdf) - 1)
                tenant_idx[mask] = self.bucket_tenant_idx[b][pick]
        n_t = len(self.tenant_names)
        pairs, per = np.unique(per_event_group * n_t + tenant_idx, return_counts=True)
        tcells = agg.tenant_cells
        names = self.tenant_names
        for code, x in zip(pairs.tolist(), per.tolist(), strict=True):
            g, ti = divmod(code, n_t)
            t = names[ti]
            tv = tenants.get(t)
            if tv is None:
                tv = tenants[t] = [0, 0]
            tv[0] += x
            tv[1] += x
            for cat in self.group_predicted[g]:
                tc = tcells.get((t, cat))
                if tc is None:
                    tc = tcells[(t, cat)] = [0, 0, 0]
                tc[0] += x
