"""The detector bank: every segment, its signals, and the detector on each.

Segments are hierarchical:

- each category across the fleet (``model_version = "*"``);
- each category x model_version;
- each category x tenant, where the tenant's volume supports a test: a tenant is
  watched for ``warmup_windows`` first, and only categories it blocks at least
  ``tenant_min_blocks`` times a window (and tenants with ``tenant_min_requests`` a
  window) get segments, so small districts do not produce noise;
- fleet-wide: latency per model version, and the mix of predicted label *sets*.

Signals, and why each detector is where it is (numbers: ``filterwatch backtest``):

================== =================== ===================================================
signal             trials              detector
================== =================== ===================================================
block_rate         requests            RateCUSUM up (all), down (CIPA: under-blocking)
predicted_rate     requests            RateCUSUM up/down, non-CIPA (category mix)
unblock_rate       blocks of category  RateCUSUM up: unblocks per block (over-blocking)
report_rate        requests            RateCUSUM up: reports of harmful pages allowed
score              scored requests     HistogramShift (chi-square + JS floor)
labelset           predicted requests  HistogramShift over label-set counts (co-occurrence)
latency            requests            LatencyShift (river PageHinkley, standardised)
canary_block_rate  blocks, same window VersionDelta: a version vs the rest of the fleet
canary_unblock_rate unblocks           VersionDelta (over-blocking evidence of a version)
================== =================== ===================================================

Rates are binomial counts with trials that vary by the window, which river's
one-observation-at-a-time detectors cannot weigh (3/10 and 3,000/10,000 look alike to
ADWIN); the backtest measures river at default parameters and a naive ratio rule on the
same windows for comparison. Under-blocking in CIPA categories uses a tighter threshold
and a smaller detectable drop (``critical_*``): a missed self-harm block costs more
than a false alarm.

Model versions: a version present when the bank starts is an incumbent and learns its
own reference. A version first seen later is *under deploy guard*: for
``version_guard_windows`` its segments are tested against the fleet reference (does it
behave like production did?) while its own reference accumulates; if the guard passes
without a detection the version is rebaselined to its own reference. Throughout, the
canary signals compare it with the rest of the fleet on the same windows.
"""

from __future__ import annotations

import pickle
from collections import Counter
from dataclasses import dataclass

import numpy as np

from detectors.drift_event import DriftEvent, Recovery
from detectors.histogram_shift import HistogramShift
from detectors.latency_shift import LatencyShift
from detectors.rate_cusum import RateCUSUM
from detectors.version_delta import VersionDelta
from monitor.aggregate import HIST_BINS, WindowAggregate
from monitor.taxonomy import CATEGORIES, SeverityClass

__all__ = ["ALL", "BankConfig", "DetectorBank", "DetectorFactory", "SegmentKey"]

ALL = "*"
OTHER_LABELSET = "(other)"
_BIN_CENTRES = (np.arange(HIST_BINS) + 0.5) / HIST_BINS

# (signal, category, model_version, tenant, change)
SegmentKey = tuple[str, str, str, str, str]

TRIALS_OF = {
    "block_rate": "requests",
    "predicted_rate": "requests",
    "unblock_rate": "blocks",
    "report_rate": "requests",
    "score": "scored requests",
    "labelset": "predicted requests",
    "latency": "requests",
    "canary_block_rate": "requests",
    "canary_unblock_rate": "blocks",
}


@dataclass(frozen=True)
class BankConfig:
    """Detector parameters; the defaults are calibrated by ``filterwatch backtest``."""

    window_s: float = 5.0
    warmup_windows: int = 18
    cusum_threshold: float = 14.0
    critical_threshold: float = 11.0
    rate_up_ratio: float = 1.5
    rate_down_ratio: float = 0.6
    critical_down_ratio: float = 0.8
    feedback_up_ratio: float = 1.5
    reference_z: float = 2.33
    # Windows a live-learned rate reference keeps absorbing after warm-up (0: freeze at
    # the end of warm-up). Growing narrows the interval but absorbs slow changes that
    # start meanwhile; a stored profile (``filterwatch baseline``) is the better fix.
    reference_windows: int = 0
    hist_window: int = 6
    hist_alpha: float = 1e-7
    hist_min_js: float = 0.08
    hist_persistence: int = 2
    labelset_vocab: int = 24
    labelset_min_js: float = 0.05
    latency_min_rel_shift: float = 0.05
    latency_threshold: float = 25.0
    canary_ratio: float = 1.4
    canary_threshold: float = 18.0
    version_guard_windows: int = 120
    tenant_segments: bool = True
    tenant_min_requests: float = 50.0
    tenant_min_blocks: float = 2.0
    tenant_threshold: float = 16.0
    # Name of a stored reference profile to start from (``filterwatch reference build``);
    # empty: learn references from a warm-up of live traffic.
    profile: str = ""

    def __post_init__(self) -> None:
        if self.window_s <= 0:
            raise ValueError("window_s must be > 0")
        if self.warmup_windows < 2:
            raise ValueError("warmup_windows must be >= 2")
        if self.version_guard_windows < self.warmup_windows:
            raise ValueError("version_guard_windows must be >= warmup_windows")


class DetectorFactory:
    """Makes the detector of each (signal, change); subclass to backtest alternatives."""

    name = "filterwatch"

    def __init__(self, config: BankConfig):
        self.config = config

    def make(self, signal: str, change: str, critical: bool, tenant: bool = False):
        c = self.config
        if signal == "score":
            return HistogramShift(
                window=c.hist_window,
                alpha=c.hist_alpha,
                min_js=c.hist_min_js,
                persistence=c.hist_persistence,
                warmup=c.warmup_windows,
                reference_windows=c.reference_windows,
            )
        if signal == "labelset":
            return HistogramShift(
                window=c.hist_window,
                alpha=c.hist_alpha,
                min_js=c.labelset_min_js,
                persistence=c.hist_persistence,
                warmup=1,
                reference_windows=c.reference_windows,
            )
        if signal == "latency":
            return LatencyShift(
                warmup=c.warmup_windows,
                min_rel_shift=c.latency_min_rel_shift,
                threshold=c.latency_threshold,
                reference_windows=c.reference_windows,
            )
        if signal.startswith("canary_"):
            ratio = c.canary_ratio if change == "up" else 1 / c.canary_ratio
            return VersionDelta(change, ratio=ratio, threshold=c.canary_threshold)
        if signal in ("unblock_rate", "report_rate"):
            ratio = c.feedback_up_ratio
        elif change == "up":
            ratio = c.rate_up_ratio
        else:
            ratio = c.critical_down_ratio if critical else c.rate_down_ratio
        if tenant:
            threshold = c.tenant_threshold
        elif critical:
            threshold = c.critical_threshold
        else:
            threshold = c.cusum_threshold
        return RateCUSUM(
            change,
            ratio=ratio,
            threshold=threshold,
            warmup=c.warmup_windows,
            z=c.reference_z,
            reference_windows=c.reference_windows,
        )


class _Slot:
    """One segment's detector, the window it started at, and its deploy-guard state."""

    __slots__ = ("detector", "first_window", "guard_until", "key", "shadow", "tripped")

    def __init__(self, key: SegmentKey, detector, first_window: int):
        self.key = key
        self.detector = detector
        self.first_window = first_window
        self.shadow = None  # own-reference learner while under deploy guard
        self.guard_until = -1
        self.tripped = False


class DetectorBank:
    """Feeds window aggregates to all segment detectors and returns drift events."""

    def __init__(
        self,
        config: BankConfig | None = None,
        *,
        categories: tuple[str, ...] | None = None,
        latency: bool = True,
        factory: DetectorFactory | None = None,
    ):
        """``categories``/``latency`` restrict the bank to a slice of the segments, so a
        streaming worker can own one category's detectors (keyed partitioning);
        ``latency`` also owns the other fleet-wide signal, the label-set mix."""
        self.config = config or BankConfig()
        self.factory = factory or DetectorFactory(self.config)
        self.categories = (
            tuple(c.name for c in CATEGORIES) if categories is None else tuple(categories)
        )
        self.latency = latency
        self._cipa = {c.name for c in CATEGORIES if c.severity_class is SeverityClass.CIPA}
        self._slots: dict[SegmentKey, _Slot] = {}
        self._cells: dict[tuple[str, str], list[_Slot]] = {}  # (cat, mv) -> slots
        self._canary: dict[tuple[str, str], list[_Slot]] = {}  # (cat, mv) -> slots
        self._tenant: dict[tuple[str, str], list[_Slot]] = {}  # (tenant, cat) -> slots
        self._latency: dict[str, _Slot] = {}
        self._labelset: _Slot | None = None
        self._labelset_warm: Counter = Counter()
        self._labelset_vocab: list[str] = []
        self._last_labelsets: dict[str, int] = {}
        self._tenant_watch: dict[str, list] = {}  # tenant -> [windows, requests, {cat: cell}]
        self._tenant_done: set[str] = set()
        self._incumbents: set[str] | None = None
        self.windows = 0
        self._recoveries: list[Recovery] = []
        self._version_seen: dict[str, int] = {}  # model version -> last window with traffic
        self.last_window: int | None = None
        self.gated_tenants = 0
        self._defer_first = False

    # -- construction ---------------------------------------------------------------------
    def _signals_for(self, cat: str) -> list[tuple[str, str]]:
        sigs = [("block_rate", "up"), ("unblock_rate", "up"), ("report_rate", "up")]
        if cat in self._cipa:
            sigs.append(("block_rate", "down"))
        else:
            sigs += [("predicted_rate", "up"), ("predicted_rate", "down")]
        sigs.append(("score", "shift"))
        return sigs

    def _critical(self, signal: str, cat: str, change: str) -> bool:
        """Under-blocking evidence in an always-block category gets the tight threshold."""
        if cat not in self._cipa:
            return False
        return (signal == "block_rate" and change == "down") or signal == "report_rate"

    def _add(self, key: SegmentKey, window: int, *, tenant: bool = False) -> _Slot:
        signal, cat, _mv, _tenant, change = key
        det = self.factory.make(signal, change, self._critical(signal, cat, change), tenant)
        slot = _Slot(key, det, window)
        self._slots[key] = slot
        return slot

    def _ensure_cell(self, cat: str, mv: str, w: int) -> list[_Slot] | None:
        group = self._cells.get((cat, mv))
        if group is not None:
            return group
        new_version = mv != ALL and self._incumbents is not None and mv not in self._incumbents
        if new_version:
            fleet = self._cells.get((cat, ALL))
            if fleet is None or not all(s.detector.warmed_up for s in fleet):
                return None  # a version after start is tested against the fleet reference
        group = []
        for signal, change in self._signals_for(cat):
            slot = self._add((signal, cat, mv, ALL, change), w)
            if new_version:
                self._guard(slot, self._slots[(signal, cat, ALL, ALL, change)], w)
            group.append(slot)
        self._cells[(cat, mv)] = group
        return group

    def _guard(self, slot: _Slot, fleet: _Slot, w: int) -> None:
        ref = fleet.detector.export_reference()
        if ref is not None:
            # Frozen: the version's own traffic must not leak into the fleet reference.
            slot.detector.load_reference({**ref, "windows": 1 << 30} if "windows" in ref else ref)
        signal, _cat, _mv, _t, change = slot.key
        shadow = self.factory.make(signal, change, False)
        guard = self.config.version_guard_windows
        if hasattr(shadow, "warmup"):
            shadow.warmup = guard
        if hasattr(shadow, "reference_windows"):
            shadow.reference_windows = max(shadow.reference_windows, guard)
        slot.shadow = shadow
        slot.guard_until = w + self.config.version_guard_windows

    def _end_guard(self, slot: _Slot, w: int) -> None:
        """Deploy guard over: rebaseline on the version's own traffic unless it tripped."""
        if w < slot.guard_until or slot.shadow is None:
            return
        if not slot.tripped:
            ref = slot.shadow.export_reference()
            if ref is not None:
                slot.detector.load_reference(ref)
        slot.shadow = None

    # -- the work ---------------------------------------------------------------------------
    def update(self, agg: WindowAggregate) -> list[DriftEvent]:
        """Feed one closed window (all segments) and return the detections it caused."""
        self.windows += 1
        self.last_window = w = agg.index
        if self._defer_first:
            for slot in self._slots.values():
                slot.first_window = w
            self._defer_first = False
        if self._incumbents is None:
            self._incumbents = set(agg.versions)
        events: list[DriftEvent] = []
        versions = agg.versions
        self._retire_versions(versions, w, agg.end)
        fleet_requests = sum(v[0] for v in versions.values())
        fleet_unpredicted = sum(_unpredicted(v) for v in versions.values())
        cells = agg.category_totals()
        mvs = [ALL, *sorted(versions)]
        for cat in self.categories:
            for mv in mvs:
                group = self._ensure_cell(cat, mv, w)
                if group is None:
                    continue
                if mv == ALL:
                    requests, unpredicted = fleet_requests, fleet_unpredicted
                elif mv in versions:
                    requests, unpredicted = versions[mv][0], _unpredicted(versions[mv])
                else:
                    requests = unpredicted = 0
                cell = cells.get((cat, mv))
                # An under-blocking test counts trials among requests this category could
                # be lost from: unlabelled ones and its own. A surge of another category
                # (a new social app at 8% of traffic) then does not dilute its block rate
                # into a false "under-blocking" (measured: 8 such alerts per run before).
                own = unpredicted + (cell[0] if cell else 0)
                for slot in group:
                    down = slot.key[4] == "down"
                    self._feed_cell(slot, cell, own if down else requests, w)
                    self._check(slot, agg, events)
            if len(versions) > 1:
                self._feed_canaries(cat, cells, versions, w, agg, events)
        if self.config.tenant_segments and self.categories:
            self._feed_tenants(agg, w, events)
        if self.latency:
            self._feed_latency(agg, mvs, w, events)
            self._feed_labelsets(agg, w, events)
        return events

    def _feed_cell(self, slot: _Slot, cell, requests: int, w: int) -> None:
        signal = slot.key[0]
        det = slot.detector
        if signal == "score":
            hist = cell[4:] if cell else _ZERO_HIST
            det.update(hist)
            if slot.shadow is not None:
                slot.shadow.update(hist)
        else:
            k, n = _counts(signal, cell, requests)
            det.update(k, n)
            if slot.shadow is not None:
                slot.shadow.update(k, n)
        if slot.shadow is not None:
            if det.drift_detected:
                slot.tripped = True
            self._end_guard(slot, w)

    def _feed_canaries(self, cat, cells, versions, w, agg, events) -> None:
        fleet = cells.get((cat, ALL))
        if fleet is None:
            return
        total_req = sum(v[0] for v in versions.values())
        for mv, ver in versions.items():
            group = self._canary.get((cat, mv))
            if group is None:
                group = [
                    self._add(("canary_block_rate", cat, mv, ALL, "up"), w),
                    self._add(("canary_unblock_rate", cat, mv, ALL, "up"), w),
                ]
                if cat in self._cipa:
                    group.append(self._add(("canary_block_rate", cat, mv, ALL, "down"), w))
                self._canary[(cat, mv)] = group
            cell = cells.get((cat, mv))
            blk_v = cell[1] if cell else 0
            ub_v = min(cell[2], cell[1]) if cell else 0
            blk_rest = fleet[1] - blk_v
            ub_rest = min(fleet[2], fleet[1]) - ub_v
            for slot in group:
                if slot.key[0] == "canary_block_rate":
                    slot.detector.update(blk_v, ver[0], blk_rest, total_req - ver[0])
                else:
                    slot.detector.update(ub_v, blk_v, ub_rest, blk_rest)
                self._check(slot, agg, events)

    def _feed_tenants(self, agg: WindowAggregate, w: int, events: list[DriftEvent]) -> None:
        c = self.config
        tcells = agg.tenant_cells
        mine = self.categories
        for tenant, tv in agg.tenants.items():
            if tenant in self._tenant_done:
                continue
            watch = self._tenant_watch.get(tenant)
            if watch is None:
                watch = self._tenant_watch[tenant] = [w, 0, {}]
            watch[1] += tv[0]
            for cat in mine:
                tc = tcells.get((tenant, cat))
                if tc is not None:
                    acc = watch[2].setdefault(cat, [0, 0, 0])
                    for i in range(3):
                        acc[i] += tc[i]
            if w - watch[0] + 1 >= c.warmup_windows:
                self._gate_tenant(tenant, watch, w)
        for (tenant, cat), group in self._tenant.items():
            tv = agg.tenants.get(tenant)
            requests = tv[0] if tv else 0
            tc = tcells.get((tenant, cat))
            blocks, unblocks, reports = tc if tc else (0, 0, 0)
            for slot in group:
                signal = slot.key[0]
                if signal == "block_rate":
                    slot.detector.update(blocks, requests)
                elif signal == "unblock_rate":
                    slot.detector.update(min(unblocks, blocks), blocks)
                else:
                    slot.detector.update(reports, requests)
                self._check(slot, agg, events)

    def _gate_tenant(self, tenant: str, watch: list, w: int) -> None:
        """Volume gate: give a tenant segments only where its counts support a test."""
        c = self.config
        self._tenant_done.add(tenant)
        del self._tenant_watch[tenant]
        first, requests, by_cat = watch
        windows = w - first + 1
        if requests / windows < c.tenant_min_requests:
            self.gated_tenants += 1
            return
        for cat, (blocks, unblocks, reports) in by_cat.items():
            if blocks / windows < c.tenant_min_blocks:
                continue
            group = []
            refs = {
                "block_rate": (blocks, requests),
                "unblock_rate": (min(unblocks, blocks), blocks),
                "report_rate": (reports, requests),
            }
            for signal, (k, n) in refs.items():
                slot = self._add((signal, cat, ALL, tenant, "up"), w, tenant=True)
                slot.detector.load_reference({"k": k, "n": n, "windows": windows})
                group.append(slot)
            self._tenant[(tenant, cat)] = group

    def _feed_latency(self, agg: WindowAggregate, mvs: list[str], w, events) -> None:
        versions = agg.versions
        for mv in mvs:
            slot = self._latency.get(mv)
            if slot is None:
                slot = self._add(("latency", ALL, mv, ALL, "up"), w)
                self._latency[mv] = slot
                fleet = self._latency.get(ALL)
                new_version = mv != ALL and mv not in (self._incumbents or ())
                if new_version and fleet is not None and fleet.detector.warmed_up:
                    self._guard(slot, fleet, w)
            if mv == ALL:
                n = sum(v[0] for v in versions.values())
                lat_sum = sum(v[2] for v in versions.values())
                lat_n = sum(v[3] for v in versions.values())
            else:
                v = versions.get(mv)
                n, lat_sum, lat_n = (v[0], v[2], v[3]) if v else (0, 0.0, 0)
            mean = lat_sum / lat_n if lat_n else float("nan")
            slot.detector.update(mean, n)
            if slot.shadow is not None:
                slot.shadow.update(mean, n)
                if slot.detector.drift_detected:
                    slot.tripped = True
                self._end_guard(slot, w)
            self._check(slot, agg, events)

    def _feed_labelsets(self, agg: WindowAggregate, w: int, events) -> None:
        if self._labelset is None:
            self._labelset_warm.update(agg.labelsets)
            if self.windows < self.config.warmup_windows:
                return
            vocab = [ls for ls, _ in self._labelset_warm.most_common(self.config.labelset_vocab)]
            self._labelset_vocab = vocab
            slot = self._add(("labelset", ALL, ALL, ALL, "shift"), w + 1)
            slot.detector.load_reference({"counts": self._labelset_vector(self._labelset_warm)})
            self._labelset = slot
            self._labelset_warm = Counter()
            return
        slot = self._labelset
        self._last_labelsets = agg.labelsets
        slot.detector.update(self._labelset_vector(agg.labelsets))
        self._check(slot, agg, events)

    def _labelset_vector(self, counts) -> list[float]:
        vocab = self._labelset_vocab
        vec = [float(counts.get(ls, 0)) for ls in vocab]
        vec.append(float(sum(counts.values()) - sum(vec)))
        return vec

    # -- events -----------------------------------------------------------------------------
    def _check(self, slot: _Slot, agg: WindowAggregate, events: list[DriftEvent]) -> None:
        det = slot.detector
        if det.drift_detected:
            events.append(self._event(slot, agg))
        elif det.recovered:
            signal, cat, mv, tenant, change = slot.key
            self._recoveries.append(
                Recovery(signal, cat, mv, tenant, change, agg.end, det.recovery_rate)
            )

    def _retire_versions(self, versions, w: int, now: float) -> None:
        """A model version that stopped serving (rolled back) is back by definition:
        its segments get no more data, so their return-to-baseline test cannot run."""
        seen = self._version_seen
        for mv in versions:
            seen[mv] = w
        gone = [mv for mv, last in seen.items() if w - last >= _RETIRE_WINDOWS]
        for mv in gone:
            del seen[mv]
            for slot in self._slots.values():
                signal, cat, smv, tenant, change = slot.key
                det = slot.detector
                if smv == mv and det.recovering:
                    det.end_recovery()
                    self._recoveries.append(Recovery(signal, cat, mv, tenant, change, now, 0.0))

    def take_recoveries(self) -> list[Recovery]:
        """Segments shown back at baseline since the last call (drained)."""
        out, self._recoveries = self._recoveries, []
        return out

    def _event(self, slot: _Slot, agg: WindowAggregate) -> DriftEvent:
        signal, cat, mv, tenant, change = slot.key
        det = slot.detector
        ev = det.evidence()
        onset = (slot.first_window + (det.change_index or 0)) * self.config.window_s
        detail = ""
        if signal == "score" and isinstance(det, HistogramShift):
            ref, cur = det.reference, det.current
            base = float(np.dot(ref, _BIN_CENTRES) / max(ref.sum(), 1))
            current = float(np.dot(cur, _BIN_CENTRES) / max(cur.sum(), 1))
            sd = float(np.sqrt(np.dot(cur, (_BIN_CENTRES - current) ** 2) / max(cur.sum(), 1)))
            half = 1.96 * sd / max(np.sqrt(cur.sum()), 1.0)
            ev.update(
                change="up" if current > base else "down",
                baseline=base,
                current=current,
                ci_low=current - half,
                ci_high=current + half,
            )
        elif signal == "labelset" and isinstance(det, HistogramShift):
            names = [*self._labelset_vocab, OTHER_LABELSET]
            ref = det.reference / max(det.reference.sum(), 1)
            cur = det.current / max(det.current.sum(), 1)
            i = int(np.argmax(np.abs(cur - ref)))
            ev.update(change="up" if cur[i] > ref[i] else "down", baseline=ref[i], current=cur[i])
            ev["ci_low"] = ev["ci_high"] = cur[i]
            name = names[i]
            if name == OTHER_LABELSET:  # name the biggest label set outside the vocabulary
                vocab = set(self._labelset_vocab)
                new = {k: v for k, v in self._last_labelsets.items() if k not in vocab}
                if new:
                    name = max(new, key=new.get)
            detail = f"labelset={name}"
            # Attribute it to a category of the label set, so it joins that category's
            # incident (health pages labelled "adult+health" are evidence about adult).
            if name != OTHER_LABELSET:
                cat = name.split("+")[0]
        change = ev.pop("change", change)
        return DriftEvent(
            signal=signal,
            category=cat,
            model_version=mv,
            change=change,
            onset=onset,
            detected_at=agg.end,
            trials_of=TRIALS_OF.get(signal, "requests"),
            detector=type(det).__name__,
            tenant=tenant,
            detail=detail,
            **ev,
        )

    # -- references and state ---------------------------------------------------------------
    @property
    def segment_count(self) -> int:
        return len(self._slots)

    def category_states(self) -> dict[str, dict]:
        """Per category (``*``: latency): segments, how many are warmed up, and the
        closest any rate detector is to firing (CUSUM statistic / threshold; 1 fires).
        What the status page shows on-call between alerts."""
        out: dict[str, dict] = {}
        for (signal, cat, _mv, tenant, _change), slot in self._slots.items():
            if tenant != ALL:
                continue
            st = out.setdefault(cat, {"segments": 0, "warmed_up": 0, "pressure": 0.0,
                                      "closest": ""})  # fmt: skip
            det = slot.detector
            st["segments"] += 1
            st["warmed_up"] += bool(det.warmed_up)
            if isinstance(det, RateCUSUM) and det.threshold > 0:
                ratio = det.statistic / det.threshold
                if ratio > st["pressure"]:
                    st["pressure"], st["closest"] = round(ratio, 3), f"{signal} {_change}"
        return out

    def segment_counts(self) -> Counter:
        """Segments per signal family (what false-alarm rates are normalised by)."""
        out: Counter = Counter()
        for signal, _cat, _mv, tenant, _change in self._slots:
            out[f"tenant_{signal}" if tenant != ALL else signal] += 1
        return out

    def export_references(self) -> list[dict]:
        """One row per warmed-up segment: the bank's reference profile."""
        rows = []
        for (signal, cat, mv, tenant, change), slot in self._slots.items():
            ref = slot.detector.export_reference()
            if ref is None:
                continue
            rows.append(
                {
                    "signal": signal,
                    "category": cat,
                    "model_version": mv,
                    "tenant_id": tenant,
                    "change": change,
                    "detector": type(slot.detector).__name__,
                    "reference": ref,
                }
            )
        if self._labelset is not None:
            rows.append(
                {
                    "signal": "labelset_vocab",
                    "category": ALL,
                    "model_version": ALL,
                    "tenant_id": ALL,
                    "change": "shift",
                    "detector": "vocabulary",
                    "reference": {"vocab": self._labelset_vocab},
                }
            )
        return rows

    def load_references(self, rows: list[dict], window: int | None = None) -> int:
        """Start from a stored profile: segments get their reference instead of a warm-up.

        Versions in the profile count as incumbents (they were seen when it was built).
        ``window`` is the index of the first window the bank will see; None: whatever
        window comes first (onset estimates count from it).
        """
        if window is None:
            self._defer_first = True
            window = 0
        loaded = 0
        vocab = next((r for r in rows if r["signal"] == "labelset_vocab"), None)
        self._incumbents = {r["model_version"] for r in rows if r["model_version"] != ALL}
        for r in rows:
            signal, cat, mv, tenant = r["signal"], r["category"], r["model_version"], r["tenant_id"]
            if signal in ("labelset_vocab", "labelset", "thresholds", "base_rates"):
                continue  # read below, or data for reports rather than a detector
            if signal != "latency" and cat not in self.categories:
                continue
            if signal == "latency" and not self.latency:
                continue
            key = (signal, cat, mv, tenant, r["change"])
            if tenant != ALL:
                if not self.config.tenant_segments:
                    continue
                slot = self._add(key, window, tenant=True)
                self._tenant.setdefault((tenant, cat), []).append(slot)
                self._tenant_done.add(tenant)
            elif signal == "latency":
                slot = self._add(key, window)
                self._latency[mv] = slot
            else:
                group = self._ensure_cell(cat, mv, window)
                slot = self._slots.get(key) if group is not None else None
                if slot is None:
                    continue
            slot.detector.load_reference(r["reference"])
            loaded += 1
        labelset = next((r for r in rows if r["signal"] == "labelset"), None)
        if self.latency and vocab is not None and labelset is not None:
            self._labelset_vocab = list(vocab["reference"]["vocab"])
            slot = self._add(("labelset", ALL, ALL, ALL, "shift"), window)
            slot.detector.load_reference(labelset["reference"])
            self._labelset = slot
            loaded += 1
        return loaded

    def to_bytes(self) -> bytes:
        """Serialized state; :meth:`from_bytes` resumes exactly where this left off."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def from_bytes(data: bytes) -> DetectorBank:
        bank = pickle.loads(data)
        if not isinstance(bank, DetectorBank):
            raise TypeError("not a DetectorBank state")
        return bank


_ZERO_HIST = [0] * HIST_BINS
_RETIRE_WINDOWS = 12  # windows without traffic after which a model version is retired


def _unpredicted(version: list) -> int:
    """Requests of a version with no predicted category (all of them if not counted)."""
    return version[0] - version[4] if len(version) > 4 else version[0]


def _counts(signal: str, cell, requests: int) -> tuple[float, float]:
    if cell is None:
        return 0.0, float(requests) if signal != "unblock_rate" else 0.0
    if signal == "block_rate":
        return cell[1], requests
    if signal == "predicted_rate":
        return cell[0], requests
    if signal == "unblock_rate":
        blocked = cell[1]
        return (min(cell[2], blocked) if blocked else 0.0), blocked
    if signal == "report_rate":
        return cell[3], requests
    raise KeyError(signal)
