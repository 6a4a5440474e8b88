"""The siting problem as arrays: demand, candidates, labelled cost pairs, zone quotas and their checks."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analyses.costs import Threshold, parse_threshold
from analyses.siting.results import InfeasibleSitingError
from geo.routing import CANDIDATE_ID, COST, DEMAND_ID


@dataclass(frozen=True, eq=False)
class Instance:
    """Demand, candidates and cost pairs as arrays over positions, with the constraints."""

    demand_ids: np.ndarray
    weights: np.ndarray
    demand_zone: np.ndarray | None
    cand_ids: np.ndarray
    cand_zone: np.ndarray | None
    pi: np.ndarray  # demand position of each pair (sorted by demand, then cost)
    pj: np.ndarray  # candidate position
    pc: np.ndarray  # cost
    existing: np.ndarray  # bool per candidate
    capacity: np.ndarray | None
    zone_names: tuple[str, ...]
    zone_lo: np.ndarray
    zone_hi: np.ndarray
    cand_zone_idx: np.ndarray  # index into zone_names, -1 where no quota applies

    @property
    def n(self) -> int:
        """Number of demand points."""
        return len(self.demand_ids)

    @property
    def m(self) -> int:
        """Number of candidate sites (after exclusions)."""
        return len(self.cand_ids)


def as_threshold(value: float | str | Threshold | None, name: str, weight: str | None) -> float | None:
    """Return a threshold option as a cost in the table's unit (None stays None); checks the unit."""
    if value is None:
        return None
    if isinstance(value, str | Threshold):
        t = parse_threshold(value)
        if weight is not None and t.weight != weight:
            msg = f"`{name}` is {t.label!r} ({t.weight}) but the costs measure {weight!r}; give it in the costs' unit."
            raise ValueError(msg)
        return float(t.value)
    v = float(value)
    if not (np.isfinite(v) and v >= 0):
        msg = f"`{name}` must be a non-negative finite cost; got {value!r}."
        raise ValueError(msg)
    return v


def id_list(values: Collection[str] | None) -> list[str]:
    """Return ids as strings (none when None)."""
    return [] if values is None else [str(v) for v in values]


def build_instance(
    costs: pd.DataFrame,
    weights: pd.Series | Mapping[str, float] | None,
    *,
    candidates: Collection[str] | None,
    zones: pd.Series | Mapping[str, str] | None,
    demand_zones: pd.Series | Mapping[str, str] | None,
    quota: int | Mapping[str, int | tuple[int, int]] | None,
    existing: Collection[str] | None,
    excluded: Collection[str] | None,
    capacity: pd.Series | Mapping[str, float] | float | None,
    max_cost: float | None,
    zone_labels: Mapping[str, str] | None,
) -> Instance:
    """Check the cost table and options, and return them as an `Instance` (pairs sorted by demand, then cost)."""
    missing = [c for c in (DEMAND_ID, CANDIDATE_ID, COST) if c not in costs.columns]
    if missing:
        msg = f"`costs` lacks the column(s) {missing!r}; it has {list(costs.columns)!r} (see geo.routing.cost_matrix)."
        raise ValueError(msg)
    table = pd.DataFrame(
        {
            DEMAND_ID: costs[DEMAND_ID].astype(str).to_numpy(),
            CANDIDATE_ID: costs[CANDIDATE_ID].astype(str).to_numpy(),
            COST: pd.to_numeric(costs[COST], errors="coerce").to_numpy(dtype=float),
        }
    )
    bad = ~np.isfinite(table[COST].to_numpy()) | (table[COST].to_numpy() < 0)
    if bad.any():
        rows = table.loc[bad].head(5).to_dict(orient="records")
        msg = f"`costs` must hold finite non-negative costs; {int(bad.sum())} rows do not, e.g. {rows!r}."
        raise ValueError(msg)
    dup = table.duplicated([DEMAND_ID, CANDIDATE_ID])
    if dup.any():
        pairs = table.loc[dup, [DEMAND_ID, CANDIDATE_ID]].head(5).values.tolist()
        msg = f"`costs` repeats demand/candidate pairs, e.g. {pairs!r}; keep one cost per pair."
        raise ValueError(msg)

    # demand and weights
    if weights is None:
        w = pd.Series(1.0, index=pd.Index(pd.unique(table[DEMAND_ID])))
    else:
        w = pd.Series(weights, dtype=float)
        w.index = w.index.astype(str)
    if w.index.duplicated().any():
        msg = f"`weights` must have one entry per demand id; repeated: {w.index[w.index.duplicated()][:5].tolist()!r}."
        raise ValueError(msg)
    if not np.isfinite(w.to_numpy()).all() or (w.to_numpy() < 0).any():
        bad_ids = w.index[~(np.isfinite(w.to_numpy()) & (w.to_numpy() >= 0))][:5].tolist()
        msg = f"`weights` must be finite and non-negative; bad for demand ids {bad_ids!r}."
        raise ValueError(msg)
    unknown = pd.Index(pd.unique(table[DEMAND_ID])).difference(w.index)
    if len(unknown):
        msg = f"`costs` names demand ids missing from `weights`: {unknown[:5].tolist()!r}; give every demand a weight."
        raise ValueError(msg)
    demand_ids = w.index.to_numpy(dtype=object)
    dpos = pd.Series(np.arange(len(demand_ids)), index=w.index)

    # candidates
    zone_map = None if zones is None else pd.Series(zones).astype(str)
    if zone_map is not None:
        zone_map.index = zone_map.index.astype(str)
    existing_ids, excluded_ids = id_list(existing), id_list(excluded)
    both = sorted(set(existing_ids) & set(excluded_ids))
    if both:
        msg = f"Sites {both!r} are both `existing` (kept open) and `excluded`; drop them from one of the two."
        raise ValueError(msg)
    if candidates is not None:
        universe = list(dict.fromkeys(id_list(candidates)))
        unknown_c = sorted(set(table[CANDIDATE_ID]) - set(universe))
        if unknown_c:
            msg = f"`costs` names candidates missing from `candidates`: {unknown_c[:5]!r}."
            raise ValueError(msg)
    else:
        universe = list(
            dict.fromkeys(
                [*pd.unique(table[CANDIDATE_ID]), *([] if zone_map is None else zone_map.index), *existing_ids]
            )
        )
    missing_existing = sorted(set(existing_ids) - set(universe))
    if missing_existing:
        msg = f"`existing` sites {missing_existing!r} are not candidates; add them to the cost table (or `candidates`)."
        raise ValueError(msg)
    excluded_set = set(excluded_ids)
    cand_ids = np.array([c for c in universe if c not in excluded_set], dtype=object)
    cpos = pd.Series(np.arange(len(cand_ids)), index=pd.Index(cand_ids))

    keep = table[CANDIDATE_ID].isin(cpos.index).to_numpy().copy()
    if max_cost is not None:
        keep &= table[COST].to_numpy() <= max_cost
    table = table.loc[keep]
    pi = dpos.reindex(table[DEMAND_ID]).to_numpy()
    pj = cpos.reindex(table[CANDIDATE_ID]).to_numpy()
    pc = table[COST].to_numpy()
    order = np.lexsort((pj, pc, pi))
    pi, pj, pc = pi[order], pj[order], pc[order]

    existing_mask = np.isin(cand_ids, np.array(existing_ids, dtype=object))

    cand_zone = None
    if zone_map is not None:
        cand_zone_s = zone_map.reindex(cand_ids)
        cand_zone = np.where(cand_zone_s.isna(), None, cand_zone_s.to_numpy(dtype=object))
    dz = None
    if demand_zones is not None:
        dz_s = pd.Series(demand_zones).astype(str)
        dz_s.index = dz_s.index.astype(str)
        dz_s = dz_s.reindex(demand_ids)
        dz = np.where(dz_s.isna(), None, dz_s.to_numpy(dtype=object))

    cap = None
    if capacity is not None:
        if isinstance(capacity, int | float):
            cap = np.full(len(cand_ids), float(capacity))
        else:
            cap_s = pd.Series(capacity, dtype=float)
            cap_s.index = cap_s.index.astype(str)
            missing_cap = [c for c in cand_ids if c not in cap_s.index]
            if missing_cap:
                msg = f"`capacity` has no value for candidates {missing_cap[:5]!r}; give one per candidate or a number."
                raise ValueError(msg)
            cap = cap_s.reindex(cand_ids).to_numpy(dtype=float)
        if not (np.isfinite(cap) & (cap >= 0)).all():
            msg = "`capacity` must be finite and non-negative for every candidate."
            raise ValueError(msg)

    names, lo, hi, cz = _quota_table(quota, cand_ids, cand_zone, dz, existing_mask, zone_labels, universe, zone_map)
    return Instance(
        demand_ids=demand_ids,
        weights=w.to_numpy(dtype=float),
        demand_zone=dz,
        cand_ids=cand_ids,
        cand_zone=cand_zone,
        pi=pi.astype(np.int64),
        pj=pj.astype(np.int64),
        pc=pc.astype(float),
        existing=existing_mask,
        capacity=cap,
        zone_names=names,
        zone_lo=lo,
        zone_hi=hi,
        cand_zone_idx=cz,
    )


def _zone_label(zone: str, labels: Mapping[str, str] | None) -> str:
    name = (labels or {}).get(zone)
    return f"{zone!r} ({name})" if name else repr(zone)


def _quota_table(quota, cand_ids, cand_zone, demand_zone, existing, labels, universe, zone_map):
    """Return zone names, lower and upper site counts, and the zone index of each candidate."""
    if quota is None:
        return (), np.zeros(0, int), np.zeros(0, int), np.full(len(cand_ids), -1)
    if cand_zone is None:
        msg = "`quota` needs `zones` (candidate id → zone, e.g. town_code) to know which zone each site is in."
        raise ValueError(msg)
    if isinstance(quota, Mapping):
        table = {str(z): (q, q) if isinstance(q, int | np.integer) else tuple(q) for z, q in quota.items()}
    else:
        zone_list = [*([] if demand_zone is None else demand_zone), *zone_map.reindex(universe).dropna()]
        table = {str(z): (int(quota), int(quota)) for z in dict.fromkeys(z for z in zone_list if z is not None)}
    names = tuple(sorted(table))
    lo = np.array([int(table[z][0]) for z in names])
    hi = np.array([int(table[z][1]) for z in names])
    if (lo < 0).any() or (hi < lo).any():
        msg = f"`quota` needs 0 <= min <= max per zone; got {table!r}."
        raise ValueError(msg)
    zpos = {z: k for k, z in enumerate(names)}
    cz = np.array([zpos.get(z, -1) if z is not None else -1 for z in cand_zone])
    available = np.bincount(cz[cz >= 0], minlength=len(names))
    kept = np.bincount(cz[(cz >= 0) & existing], minlength=len(names))
    short = [k for k in range(len(names)) if available[k] < lo[k]]
    town = [_zone_label(z, labels) for z in names]
    short = [k for k in range(len(names)) if available[k] < lo[k]]
    if short:
        raise _quota_error(
            [(f"镇街 {town[k]} 只有 {available[k]} 个候选站点，但需要 {lo[k]} 个",
              f"town {town[k]} has {available[k]} candidate site(s) but needs {lo[k]}") for k in short],
            ("请在相应镇街增加候选站点或降低其配额。", "Add candidate sites there or lower its quota."),
        )  # fmt: skip
    over = [k for k in range(len(names)) if kept[k] > hi[k]]
    if over:
        raise _quota_error(
            [(f"镇街 {town[k]} 保留了 {kept[k]} 个现有站点，但配额最多 {hi[k]} 个",
              f"town {town[k]} keeps {kept[k]} existing site(s) but allows {hi[k]}") for k in over],
            ("请提高相应镇街的配额，或不要保留全部现有站点。", "Raise its quota or do not keep every existing site."),
        )  # fmt: skip
    return names, lo, hi, cz


def _quota_error(towns: list[tuple[str, str]], fix: tuple[str, str]) -> InfeasibleSitingError:
    """Return the error naming each town's unmet quota and the fix, each given as (Chinese, English)."""
    where_zh, where_en = "；".join(zh for zh, _ in towns), ", ".join(en for _, en in towns)
    return InfeasibleSitingError(f"镇街配额无法满足：{where_zh}。{fix[0]}", f"Infeasible quota: {where_en}. {fix[1]}")


@dataclass(frozen=True, eq=False)
class Quota:
    """Per-zone site limits over candidate positions, for the heuristics."""

    zone: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    def counts(self, S: np.ndarray) -> np.ndarray:
        """Return the number of sites of ``S`` (positions) in each zone."""
        z = self.zone[S]
        return np.bincount(z[z >= 0], minlength=len(self.lo))

    def addable(self, S: np.ndarray, slots_left: int) -> np.ndarray:
        """Candidates that may join ``S`` and still leave room to meet every zone minimum."""
        allowed = np.ones(len(self.zone), bool)
        allowed[S] = False
        if not len(self.lo):
            return allowed
        cnt = self.counts(S)
        deficit = int(np.maximum(self.lo - cnt, 0).sum())
        zone_ok = np.r_[cnt < self.hi, True]  # index -1 → last entry (no quota)
        allowed &= zone_ok[self.zone]
        if deficit >= slots_left:  # no slack: only zones still short
            short = np.r_[cnt < self.lo, False]
            allowed &= short[self.zone]
        return allowed

    def swappable(self, S: np.ndarray, out: int) -> np.ndarray:
        """Candidates that may replace ``out`` in ``S`` keeping every zone within its quota."""
        allowed = np.ones(len(self.zone), bool)
        allowed[S] = False
        if not len(self.lo):
            return allowed
        cnt = self.counts(S)
        zo = self.zone[out]
        if zo >= 0:
            cnt = cnt.copy()
            cnt[zo] -= 1
            if cnt[zo] < self.lo[zo]:  # out's zone would fall short: the new site must be in it
                return allowed & (self.zone == zo)
        zone_ok = np.r_[cnt < self.hi, True]
        return allowed & zone_ok[self.zone]
