"""Site facilities on network costs: maximal coverage, p-median, set cover and p-center, exact or fast.

Every model is built from a labelled long cost table (``demand_id``, ``candidate_id``, ``cost``) that
lists only the pairs within a cutoff (``geo.routing.cost_matrix``); pairs not listed cannot be
assigned. ``solve(method="exact")`` builds a sparse MILP and solves it with HiGHS (through
``scipy.optimize.milp``) under a time limit, stating whether the answer is proven optimal and the gap
otherwise; ``solve(method="heuristic")`` runs greedy construction plus swap (interchange) for
interactive use. Both return a frozen ``SitingResult`` keyed by our ids.

Constraints: ``p`` sites in total (existing ones included, as in spopt), per-zone quotas (e.g. exactly
one 渝馨家园 per town), existing sites kept open, excluded sites, capacities (in units of demand
weight, single sourcing; p-median and set cover) and a maximum cost beyond which demand is unserved.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as _replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
import scipy
import scipy.sparse as sp

from analyses.costs import Threshold, parse_threshold
from geo.routing import CANDIDATE_ID, COST, DEMAND_ID, cost_matrix
from layers import schema

if TYPE_CHECKING:
    import geopandas as gpd

    from analyses.costs import Placer

logger = logging.getLogger(__name__)

Method = Literal["exact", "heuristic"]
Progress = Callable[[str, float], None]
#: Relative MIP gap under which HiGHS may stop and call a solution optimal.
MIP_REL_GAP = 1e-6
#: Largest dense demand × candidate table the heuristic builds (cells).
MAX_HEURISTIC_CELLS = 50_000_000


class InfeasibleSitingError(ValueError):
    """The constraints of a siting model cannot all be met (e.g. a town with a quota but no candidate)."""


@dataclass(frozen=True)
class SitingResult:
    """A siting solution keyed by our ids.

    Parameters
    ----------
    model
        ``"max_coverage"``, ``"p_median"``, ``"set_cover"`` or ``"p_center"``.
    selected
        Chosen candidate ids (existing ones included), sorted.
    assignment
        Demand id → assigned candidate id, or None where the demand is unserved (no chosen site
        within the cutoff / ``max_cost``).
    costs
        Demand id → cost to the assigned site (NaN where unserved), in the cost table's unit.
    objective
        Covered weight (max coverage), Σ weight × cost with unserved demand at ``max_cost``
        (p-median), number of sites (set cover) or the largest assigned cost (p-center).
    covered_share
        Weighted share of all demand within ``threshold`` of its site (served within ``max_cost``
        when the model has no threshold).
    by_town
        Per demand zone (town code): ``points``, ``weight``, ``covered_weight``, ``covered_share``,
        ``sites`` (chosen sites in the zone), ``new_sites`` and ``mean_cost`` (weighted, served demand).
    optimal
        True when the solver proved the objective optimal (within ``MIP_REL_GAP``).
    gap
        Relative gap ``|objective - bound| / |objective|`` when a bound is known, else None.
    bound
        Best proven bound on the objective (upper for max coverage, lower otherwise), or None.
    solver
        What produced the solution, e.g. ``"HiGHS 1.x via scipy 1.17"`` or ``"greedy+swap"``.
    time_s
        Wall time of the solve (model building included), seconds.
    parameters
        The model's inputs: p, threshold, max_cost, quotas, existing, excluded, counts.
    """

    model: str
    selected: tuple[str, ...]
    assignment: Mapping[str, str | None]
    costs: Mapping[str, float]
    objective: float
    covered_share: float
    by_town: pd.DataFrame
    optimal: bool
    gap: float | None
    bound: float | None
    solver: str
    time_s: float
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def unserved(self) -> tuple[str, ...]:
        """Demand ids with no assigned site."""
        return tuple(d for d, s in self.assignment.items() if s is None)

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON-ready data with stable keys.

        Keys: ``model``, ``parameters``, ``selected``, ``assignment``, ``objective``, ``covered_share``,
        ``optimal``, ``gap``, ``bound``, ``solver``, ``time_s``, ``unserved``, ``by_town`` (records with
        ``town_code``).
        """
        by_town = self.by_town.reset_index().to_dict(orient="records")
        return {
            "model": self.model,
            "parameters": _plain(dict(self.parameters)),
            "selected": list(self.selected),
            "assignment": dict(self.assignment),
            "objective": float(self.objective),
            "covered_share": float(self.covered_share),
            "optimal": bool(self.optimal),
            "gap": None if self.gap is None else float(self.gap),
            "bound": None if self.bound is None else float(self.bound),
            "solver": self.solver,
            "time_s": float(self.time_s),
            "unserved": len(self.unserved),
            "by_town": _plain(by_town),
        }


@dataclass(frozen=True)
class SitingComparison:
    """Coverage and objective with the current sites only (before) and with a solution (after).

    ``by_town`` has ``covered_share_before``, ``covered_share_after``, ``covered_share_change``,
    ``sites_before`` and ``sites_after`` per town; ``summary`` the same overall plus objectives.
    """

    before: SitingResult
    after: SitingResult
    by_town: pd.DataFrame
    summary: Mapping[str, Any]


# --------------------------------------------------------------------------------------------------
# the instance: arrays over demand and candidate positions


@dataclass(frozen=True, eq=False)
class _Instance:
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
        return len(self.demand_ids)

    @property
    def m(self) -> int:
        return len(self.cand_ids)


def _as_threshold(value: float | str | Threshold | None, name: str, weight: str | None) -> float | None:
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


def _ids(values: Collection[str] | None) -> list[str]:
    return [] if values is None else [str(v) for v in values]


def _build_instance(
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
) -> _Instance:
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
    existing_ids, excluded_ids = _ids(existing), _ids(excluded)
    both = sorted(set(existing_ids) & set(excluded_ids))
    if both:
        msg = f"Sites {both!r} are both `existing` (kept open) and `excluded`; drop them from one of the two."
        raise ValueError(msg)
    if candidates is not None:
        universe = list(dict.fromkeys(_ids(candidates)))
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
    return _Instance(
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
    if short:
        where = ", ".join(
            f"town {_zone_label(names[k], labels)} has {available[k]} candidate site(s) but needs {lo[k]}"
            for k in short
        )
        msg = f"Infeasible quota: {where}. Add candidate sites there or lower its quota."
        raise InfeasibleSitingError(msg)
    over = [k for k in range(len(names)) if kept[k] > hi[k]]
    if over:
        where = ", ".join(
            f"town {_zone_label(names[k], labels)} keeps {kept[k]} existing site(s) but allows {hi[k]}" for k in over
        )
        msg = f"Infeasible quota: {where}. Raise its quota or do not keep every existing site."
        raise InfeasibleSitingError(msg)
    return names, lo, hi, cz


# --------------------------------------------------------------------------------------------------
# the HiGHS wrapper: the only place that knows the solver


@dataclass(frozen=True)
class _MilpOutcome:
    x: np.ndarray | None
    objective: float | None
    bound: float | None
    optimal: bool
    status: int
    message: str
    solver: str


def _solve_milp(
    c: np.ndarray,
    A: sp.csr_matrix,
    row_lo: np.ndarray,
    row_hi: np.ndarray,
    integrality: np.ndarray,
    var_lo: np.ndarray,
    var_hi: np.ndarray,
    *,
    time_limit_s: float,
) -> _MilpOutcome:
    """Minimise ``c @ x`` subject to ``row_lo <= A x <= row_hi`` with HiGHS (scipy.optimize.milp)."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    constraints = [LinearConstraint(A, row_lo, row_hi)] if A.shape[0] else []
    res = milp(
        c,
        integrality=integrality,
        bounds=Bounds(var_lo, var_hi),
        constraints=constraints,
        options={"time_limit": float(time_limit_s), "mip_rel_gap": MIP_REL_GAP, "disp": False},
    )
    bound = getattr(res, "mip_dual_bound", None)
    bound = None if bound is None or not np.isfinite(bound) else float(bound)
    x = None if res.x is None else np.asarray(res.x)
    if res.status == 2:  # infeasible
        return _MilpOutcome(None, None, None, False, 2, res.message, f"HiGHS via scipy {scipy.__version__}")
    objective = None if x is None else float(c @ x)
    if res.status == 0 and bound is None:
        bound = objective
    return _MilpOutcome(
        x, objective, bound, res.status == 0, int(res.status), res.message, f"HiGHS via scipy {scipy.__version__}"
    )


# --------------------------------------------------------------------------------------------------
# models


class _SitingModel:
    """Shared machinery; subclasses build their MILP and heuristic matrix."""

    name: ClassVar[str] = ""
    _maximise: ClassVar[bool] = False

    def __init__(
        self,
        inst: _Instance,
        *,
        p: int | None,
        threshold: float | None,
        max_cost: float | None,
        parameters: Mapping[str, Any],
        progress: Progress | None = None,
    ) -> None:
        self._inst = inst
        self.p = p
        self.threshold = threshold
        self.max_cost = max_cost
        self.parameters = MappingProxyType(dict(parameters))
        self._progress = progress
        self._known_bound: float | None = None
        self._fixed: np.ndarray | None = None  # per candidate: -1 free, 0 closed, 1 open
        if p is not None:
            self._check_p(p)

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def _from_costs(
        cls,
        costs,
        weights,
        *,
        p=None,
        threshold=None,
        max_cost=None,
        candidates=None,
        zones=None,
        demand_zones=None,
        quota=None,
        existing=None,
        excluded=None,
        capacity=None,
        zone_labels=None,
        progress=None,
        extra=None,
    ):
        unit = costs.attrs.get("weight") if hasattr(costs, "attrs") else None
        thr = _as_threshold(threshold, "threshold", unit)
        cap_cost = _as_threshold(max_cost, "max_cost", unit)
        inst = _build_instance(
            costs,
            weights,
            candidates=candidates,
            zones=zones,
            demand_zones=demand_zones,
            quota=quota,
            existing=existing,
            excluded=excluded,
            capacity=capacity,
            max_cost=cap_cost,
            zone_labels=zone_labels,
        )
        if (
            p is None
            and len(inst.zone_names)
            and (inst.zone_lo == inst.zone_hi).all()
            and (inst.cand_zone_idx >= 0).all()
        ):
            p = int(inst.zone_lo.sum())
        parameters = {
            "model": cls.name,
            "p": p,
            "threshold": thr,
            "max_cost": cap_cost,
            "unit": unit,
            "quota": {z: [int(a), int(b)] for z, a, b in zip(inst.zone_names, inst.zone_lo, inst.zone_hi, strict=True)},
            "existing": sorted(inst.cand_ids[inst.existing].tolist()),
            "excluded": sorted(_ids(excluded)),
            "capacity": inst.capacity is not None,
            "n_demand": inst.n,
            "n_candidates": inst.m,
            "n_pairs": len(inst.pi),
            "total_weight": float(inst.weights.sum()),
            **dict(extra or {}),
        }
        model = cls(inst, p=p, threshold=thr, max_cost=cap_cost, parameters=parameters, progress=progress)
        model._report("model built", 0.2)
        return model

    @classmethod
    def from_network(
        cls,
        placer: Placer,
        demand: gpd.GeoDataFrame,
        candidates: gpd.GeoDataFrame,
        *,
        profile: str,
        cutoff: str | Threshold,
        weight_column: str | None = None,
        zone_column: str | None = schema.TOWN_CODE,
        progress: Progress | None = None,
        **options: Any,
    ) -> Any:
        """Build the model on network costs (``geo.routing.cost_matrix``); see ``model_from_network``."""
        return model_from_network(
            cls.name,
            placer,
            demand,
            candidates,
            profile=profile,
            cutoff=cutoff,
            weight_column=weight_column,
            zone_column=zone_column,
            progress=progress,
            **options,
        )

    def _check_p(self, p: int) -> None:
        inst = self._inst
        if int(p) != p or p < 1:
            msg = f"`p` must be a positive whole number of sites; got {p!r}."
            raise ValueError(msg)
        if p > inst.m:
            msg = f"`p` = {p} exceeds the {inst.m} candidate sites left after exclusions; lower `p` or add candidates."
            raise InfeasibleSitingError(msg)
        if int(inst.existing.sum()) > p:
            msg = f"`p` = {p} is fewer than the {int(inst.existing.sum())} existing sites kept open; raise `p`."
            raise InfeasibleSitingError(msg)
        if len(inst.zone_names):
            free = int((inst.cand_zone_idx < 0).sum())
            if int(inst.zone_lo.sum()) > p:
                msg = f"`p` = {p} is fewer than the {int(inst.zone_lo.sum())} sites the zone quotas require; raise `p`."
                raise InfeasibleSitingError(msg)
            if int(inst.zone_hi.sum()) + free < p:
                msg = f"`p` = {p} exceeds the {int(inst.zone_hi.sum()) + free} sites the zone quotas allow; lower `p`."
                raise InfeasibleSitingError(msg)

    def _report(self, stage: str, fraction: float) -> None:
        if self._progress is not None:
            self._progress(stage, fraction)

    # ---- solving --------------------------------------------------------------------------------
    def solve(self, *, method: Method = "exact", time_limit_s: float = 60.0) -> SitingResult:
        """Solve the model and return the chosen sites and each demand point's assignment.

        Parameters
        ----------
        method
            ``"exact"``: MILP with HiGHS under ``time_limit_s`` (proven optimal, or the best found
            with its gap); ``"heuristic"``: greedy + swap, fast, gap against the bound of an
            earlier exact solve of this model when there was one.
        time_limit_s
            Wall-time limit of the exact solver, seconds.

        Returns
        -------
        SitingResult

        Raises
        ------
        InfeasibleSitingError
            If no choice of sites meets every constraint.
        """
        if method not in ("exact", "heuristic"):
            msg = f"`method` must be 'exact' or 'heuristic'; got {method!r}."
            raise ValueError(msg)
        if not (np.isfinite(time_limit_s) and time_limit_s > 0):
            msg = f"`time_limit_s` must be a positive number of seconds; got {time_limit_s!r}."
            raise ValueError(msg)
        start = time.perf_counter()
        self._report("solving", 0.3)
        if method == "exact":
            result = self._solve_exact(start, time_limit_s)
        else:
            result = self._solve_heuristic(start)
        self._report("done", 1.0)
        logger.info(
            "%s by %s: %d sites, objective %.6g, optimal=%s, gap=%s, %.2f s",
            self.name,
            result.solver,
            len(result.selected),
            result.objective,
            result.optimal,
            result.gap,
            result.time_s,
        )
        return result

    def evaluate(self, sites: Collection[str], *, label: str = "evaluation") -> SitingResult:
        """Return the result of opening exactly ``sites`` (ids of candidates), without optimising.

        Quotas and ``p`` are not enforced: use it to measure the current facilities.
        """
        inst = self._inst
        pos = pd.Series(np.arange(inst.m), index=pd.Index(inst.cand_ids))
        missing = sorted(set(map(str, sites)) - set(pos.index))
        if missing:
            msg = f"`sites` {missing[:5]!r} are not candidates of this model (excluded or not in the cost table)."
            raise ValueError(msg)
        mask = np.zeros(inst.m, bool)
        mask[pos.reindex([str(s) for s in sites]).to_numpy()] = True
        return self._result(mask, None, start=time.perf_counter(), optimal=False, bound=None, solver=label)

    def _solve_exact(self, start: float, time_limit_s: float) -> SitingResult:
        c, A, rlo, rhi, integ, vlo, vhi = self._milp()
        self._report("model built", 0.4)
        logger.debug("%s MILP: %d variables, %d rows, %d non-zeros", self.name, len(c), A.shape[0], A.nnz)
        remaining = max(time_limit_s - (time.perf_counter() - start), 0.01)
        out = _solve_milp(c, A, rlo, rhi, integ, vlo, vhi, time_limit_s=remaining)
        if out.status == 2:
            msg = f"The {self.name} model is infeasible: {out.message} {self._infeasible_hint()}"
            raise InfeasibleSitingError(msg)
        sign = -1.0 if self._maximise else 1.0
        bound = self._trivial_bound() if out.bound is None else sign * out.bound + self._constant()
        results = []
        if out.x is not None:
            selected = out.x[: self._inst.m] > 0.5
            assign = self._assignment_from_x(out.x) if self._uses_assignment() else None
            results.append(
                self._result(selected, assign, start=start, optimal=out.optimal, bound=bound, solver=out.solver)
            )
        if not out.optimal and self._inst.capacity is None:
            # stopped by the time limit: the heuristic's sites may beat the MILP's incumbent
            try:
                heur = self._heuristic_sites()
            except ValueError:
                logger.debug("%s: heuristic unavailable after the time limit", self.name, exc_info=True)
            else:
                solver = f"{out.solver} (time limit; greedy+swap incumbent)"
                results.append(self._result(heur, None, start=start, optimal=False, bound=bound, solver=solver))
        if not results:
            msg = (
                f"The {self.name} solver found no solution within {time_limit_s:g} s ({out.message}); "
                "raise `time_limit_s`."
            )
            raise TimeoutError(msg)
        self._known_bound = bound
        sign = -1.0 if self._maximise else 1.0
        return min(results, key=lambda r: sign * r.objective)

    def _solve_heuristic(self, start: float) -> SitingResult:
        if self._inst.capacity is not None:
            msg = "The heuristic does not handle `capacity`; solve with method='exact'."
            raise ValueError(msg)
        selected = self._heuristic_sites()
        return self._result(selected, None, start=start, optimal=False, bound=self._known_bound, solver="greedy+swap")

    def _infeasible_hint(self) -> str:
        return "Check `p`, the quotas, `existing`, `excluded` and `max_cost`."

    def _constant(self) -> float:
        return 0.0

    def _trivial_bound(self) -> float:
        """Return a bound that needs no LP: each demand at its best candidate (when the solver gives none)."""
        inst = self._inst
        first = np.r_[True, inst.pi[1:] != inst.pi[:-1]] if len(inst.pi) else np.zeros(0, bool)
        best = np.full(inst.n, np.nan)
        best[inst.pi[first]] = inst.pc[first]
        if self.name == "max_coverage":
            return float(inst.weights[np.nan_to_num(best, nan=np.inf) <= self.threshold].sum())
        if self.name == "p_median":
            return float(inst.weights @ np.where(np.isnan(best), self.max_cost, best))
        if self.name == "p_center":
            return float(np.nanmax(best)) if np.isfinite(best).any() else 0.0
        return float(max(int(inst.existing.sum()), int(inst.zone_lo.sum()), int(np.isfinite(best).any())))

    def _uses_assignment(self) -> bool:
        return False

    # ---- building blocks -------------------------------------------------------------------------
    def _site_rows(self, n_vars: int) -> tuple[list[sp.csr_matrix], list[np.ndarray], list[np.ndarray]]:
        """Rows on the site variables (first ``m`` columns): Σ y = p and the zone quotas."""
        inst = self._inst
        m = inst.m
        rows, lo, hi = [], [], []
        if self.p is not None:
            rows.append(sp.csr_matrix((np.ones(m), (np.zeros(m, int), np.arange(m))), shape=(1, n_vars)))
            lo.append(np.array([self.p]))
            hi.append(np.array([self.p]))
        if len(inst.zone_names):
            cols = np.flatnonzero(inst.cand_zone_idx >= 0)
            rows.append(
                sp.csr_matrix(
                    (np.ones(len(cols)), (inst.cand_zone_idx[cols], cols)), shape=(len(inst.zone_names), n_vars)
                )
            )
            lo.append(inst.zone_lo.astype(float))
            hi.append(inst.zone_hi.astype(float))
        return rows, lo, hi

    def _site_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        inst = self._inst
        lo, hi = inst.existing.astype(float), np.ones(inst.m)
        if self._fixed is not None:  # sites proven open (1) or closed (0) by a Lagrangian bound
            lo = np.maximum(lo, self._fixed == 1)
            hi = np.where(self._fixed == 0, 0.0, hi)
        return lo, hi

    def _result(
        self,
        selected: np.ndarray,
        assign: np.ndarray | None,
        *,
        start: float,
        optimal: bool,
        bound: float | None,
        solver: str,
    ) -> SitingResult:
        inst = self._inst
        if assign is None:
            assign, cost = self._nearest_assignment(selected)
        else:
            cost = np.full(inst.n, np.nan)
            ok = assign >= 0
            lookup = pd.Series(inst.pc, index=pd.MultiIndex.from_arrays([inst.pi, inst.pj]))
            cost[ok] = lookup.reindex(pd.MultiIndex.from_arrays([np.flatnonzero(ok), assign[ok]])).to_numpy()
        objective = self._objective(selected, assign, cost)
        gap = None
        if bound is not None:
            gap = abs(objective - bound) / abs(objective) if objective else (0.0 if abs(bound) < 1e-9 else None)
            gap = None if gap is None else max(gap, 0.0)
        covered = self._covered(assign, cost)
        w = inst.weights
        total = float(w.sum())
        covered_share = float(w[covered].sum() / total) if total else float("nan")
        by_town = self._by_town(selected, assign, cost, covered)
        ids = inst.demand_ids
        assignment = {str(ids[i]): (str(inst.cand_ids[assign[i]]) if assign[i] >= 0 else None) for i in range(inst.n)}
        costs = {str(ids[i]): float(cost[i]) for i in range(inst.n)}
        return SitingResult(
            model=self.name,
            selected=tuple(sorted(str(s) for s in inst.cand_ids[selected])),
            assignment=MappingProxyType(assignment),
            costs=MappingProxyType(costs),
            objective=float(objective),
            covered_share=covered_share,
            by_town=by_town,
            optimal=bool(optimal),
            gap=gap,
            bound=bound,
            solver=solver,
            time_s=time.perf_counter() - start,
            parameters=self.parameters,
        )

    def _nearest_assignment(self, selected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each demand's cheapest chosen site among its pairs (pairs are sorted by demand, then cost)."""
        inst = self._inst
        assign = np.full(inst.n, -1)
        cost = np.full(inst.n, np.nan)
        open_pair = selected[inst.pj]
        i, j, c = inst.pi[open_pair], inst.pj[open_pair], inst.pc[open_pair]
        first = np.r_[True, i[1:] != i[:-1]] if len(i) else np.zeros(0, bool)
        assign[i[first]] = j[first]
        cost[i[first]] = c[first]
        return assign, cost

    def _covered(self, assign: np.ndarray, cost: np.ndarray) -> np.ndarray:
        served = assign >= 0
        if self.threshold is None:
            return served
        return served & (np.nan_to_num(cost, nan=np.inf) <= self.threshold)

    def _by_town(self, selected, assign, cost, covered) -> pd.DataFrame:
        inst = self._inst
        columns = ["points", "weight", "covered_weight", "covered_share", "sites", "new_sites", "mean_cost"]
        if inst.demand_zone is None:
            return pd.DataFrame(columns=columns, index=pd.Index([], name=schema.TOWN_CODE))
        w = inst.weights
        served = assign >= 0
        frame = pd.DataFrame(
            {
                "zone": inst.demand_zone,
                "w": w,
                "cw": w * covered,
                "sw": w * served,
                "wc": np.where(served, w * np.nan_to_num(cost), 0.0),
            }
        )
        g = frame.groupby("zone", sort=True)
        table = pd.DataFrame({"points": g.size(), "weight": g["w"].sum(), "covered_weight": g["cw"].sum()})
        table["covered_share"] = table["covered_weight"] / table["weight"].where(table["weight"] > 0)
        if inst.cand_zone is not None:
            zones = pd.Series(inst.cand_zone[selected]).value_counts()
            new = pd.Series(inst.cand_zone[selected & ~inst.existing]).value_counts()
            table["sites"] = zones.reindex(table.index).fillna(0).astype(int)
            table["new_sites"] = new.reindex(table.index).fillna(0).astype(int)
        else:
            table["sites"] = pd.NA
            table["new_sites"] = pd.NA
        sw = g["sw"].sum()
        table["mean_cost"] = (g["wc"].sum() / sw.where(sw > 0)).reindex(table.index)
        table.index.name = schema.TOWN_CODE
        return table[columns]

    def _dense(self, values: np.ndarray, fill: float) -> tuple[np.ndarray, np.ndarray]:
        """Dense (active demand × candidate) table of ``values`` per pair; rows of demand with pairs."""
        inst = self._inst
        rows = np.unique(inst.pi)
        if len(rows) * inst.m > MAX_HEURISTIC_CELLS:
            msg = (
                f"The heuristic needs a {len(rows):,} × {inst.m:,} table, over {MAX_HEURISTIC_CELLS:,} cells; "
                "aggregate the demand points or use method='exact'."
            )
            raise ValueError(msg)
        D = np.full((len(rows), inst.m), fill)
        D[np.searchsorted(rows, inst.pi), inst.pj] = values
        return D, rows

    def _quota_state(self) -> _Quota:
        inst = self._inst
        return _Quota(inst.cand_zone_idx, inst.zone_lo, inst.zone_hi)


@dataclass(frozen=True, eq=False)
class _Quota:
    zone: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    def counts(self, S: np.ndarray) -> np.ndarray:
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


def _greedy_swap(
    D: np.ndarray,
    w: np.ndarray,
    base: float,
    *,
    p: int,
    fixed: np.ndarray,
    quota: _Quota,
    agg: Literal["sum", "max"],
    max_passes: int = 50,
) -> np.ndarray:
    """Pick ``p`` columns of ``D`` minimising Σ w·min (or max min) over rows: greedy, then swaps."""
    m = D.shape[1]

    def score(cur_col: np.ndarray, cols: np.ndarray) -> np.ndarray:
        M = np.minimum(cur_col[:, None], D[:, cols])
        return (w @ M) if agg == "sum" else M.max(axis=0, initial=-np.inf)

    def value(cur_col: np.ndarray) -> float:
        return float(w @ cur_col) if agg == "sum" else float(cur_col.max(initial=-np.inf))

    S = list(np.flatnonzero(fixed))
    cur = D[:, S].min(axis=1) if S else np.full(D.shape[0], base)
    while len(S) < p:
        allowed = np.flatnonzero(quota.addable(np.array(S, int), p - len(S)))
        if not len(allowed):
            msg = "No candidate can be added within the zone quotas."
            raise InfeasibleSitingError(msg)
        scores = score(cur, allowed)
        if agg == "max":  # break ties on the max by the sum
            scores = scores + 1e-9 * (np.minimum(cur[:, None], D[:, allowed]).sum(axis=0) / max(D.shape[0], 1))
        j = int(allowed[int(np.argmin(scores))])
        S.append(j)
        cur = np.minimum(cur, D[:, j])
    best = value(cur)
    for _ in range(max_passes):
        improved = False
        for out in [s for s in S if not fixed[s]]:
            rest = [s for s in S if s != out]
            cur_wo = D[:, rest].min(axis=1) if rest else np.full(D.shape[0], base)
            allowed = np.flatnonzero(quota.swappable(np.array(S, int), out))
            if not len(allowed):
                continue
            scores = score(cur_wo, allowed)
            k = int(np.argmin(scores))
            if scores[k] < best - 1e-9 * max(abs(best), 1.0):
                S = [*rest, int(allowed[k])]
                best = float(scores[k])
                improved = True
        if not improved:
            break
    mask = np.zeros(m, bool)
    mask[S] = True
    return mask


def _sparse_greedy_swap(
    pi: np.ndarray,
    pj: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    base: float,
    *,
    n: int,
    m: int,
    p: int,
    fixed: np.ndarray,
    quota: _Quota,
    max_iter: int = 500,
) -> np.ndarray:
    """Pick ``p`` sites minimising Σ w_i min(base, v_ij over open j): greedy, then best-swap (fast interchange).

    Works on the pairs only (sorted by demand, then ``v``), after Resende & Werneck's decomposition of
    a swap's change into gain(in), loss(out) and a sparse correction, so each iteration is O(pairs).
    """
    wp = w[pi]

    def nearest_two(S: np.ndarray):
        open_ = S[pj]
        i, j, val = pi[open_], pj[open_], v[open_]
        d1, d2, phi = np.full(n, base), np.full(n, base), np.full(n, -1)
        if len(i):
            first = np.r_[True, i[1:] != i[:-1]]
            second = ~first & np.r_[False, first[:-1]]
            d1[i[first]], phi[i[first]] = np.minimum(val[first], base), j[first]
            d2[i[second]] = np.minimum(val[second], base)
        phi[d1 >= base] = -1
        return d1, d2, phi

    S = fixed.copy()
    d1, d2, phi = nearest_two(S)
    while S.sum() < p:
        allowed = quota.addable(np.flatnonzero(S), p - int(S.sum()))
        if not allowed.any():
            msg = "No candidate can be added within the zone quotas."
            raise InfeasibleSitingError(msg)
        gain = np.bincount(pj, wp * np.maximum(d1[pi] - v, 0.0), minlength=m)
        gain[~allowed] = -np.inf
        S[int(np.argmax(gain))] = True
        d1, d2, phi = nearest_two(S)
    for _ in range(max_iter):
        outs = np.flatnonzero(S & ~fixed)
        if not len(outs):
            break
        gain = np.bincount(pj, wp * np.maximum(d1[pi] - v, 0.0), minlength=m)
        served = phi >= 0
        loss = np.bincount(phi[served], (w * (d2 - d1))[served], minlength=m)
        pos = np.full(m, -1)
        pos[outs] = np.arange(len(outs))
        own = phi[pi]
        hit = (own >= 0) & (v < d2[pi]) & (pos[np.maximum(own, 0)] >= 0)
        extra = np.bincount(
            pj[hit] * len(outs) + pos[own[hit]],
            wp[hit] * (d2[pi[hit]] - np.maximum(v[hit], d1[pi[hit]])),
            minlength=m * len(outs),
        ).reshape(m, len(outs))
        delta = loss[outs][None, :] - gain[:, None] - extra
        allowed = np.stack([quota.swappable(np.flatnonzero(S), o) for o in outs], axis=1)
        delta[~allowed] = np.inf
        k = int(np.argmin(delta))
        j_in, o = divmod(k, len(outs))
        current = float(w @ d1)
        if not delta[j_in, o] < -1e-9 * max(abs(current), 1.0):
            break
        S[outs[o]] = False
        S[j_in] = True
        d1, d2, phi = nearest_two(S)
    return S


@dataclass(frozen=True, eq=False)
class _Reduction:
    bound: float
    fixed: np.ndarray  # per candidate: -1 free, 0 closed, 1 open


def _cheapest_sites(
    rho: np.ndarray, p: int, forced: np.ndarray, banned: np.ndarray, quota: _Quota
) -> np.ndarray | None:
    """Return the feasible set of ``p`` sites of least Σ rho (forced in, banned out, zone quotas), or None.

    Greedy is exact here: each zone's minimum is met with its cheapest sites, then the cheapest
    remaining sites fill up to ``p`` within the zone maximums (zones are disjoint).
    """
    S = forced.copy()
    if S.sum() > p:
        return None
    if len(quota.lo):
        cnt = quota.counts(np.flatnonzero(S))
        if (cnt > quota.hi).any():
            return None
        for z in np.flatnonzero(cnt < quota.lo):
            pool = np.flatnonzero((quota.zone == z) & ~S & ~banned)
            need = int(quota.lo[z] - cnt[z])
            if len(pool) < need:
                return None
            S[pool[np.argsort(rho[pool], kind="stable")[:need]]] = True
        cnt = quota.counts(np.flatnonzero(S))
        room = np.r_[quota.hi - cnt, p]  # last entry: candidates without a quota
        order = np.argsort(np.where(S | banned, np.inf, rho), kind="stable")
        left = p - int(S.sum())
        for j in order:
            if left == 0:
                break
            if S[j] or banned[j] or room[quota.zone[j]] <= 0:
                continue
            S[j] = True
            room[quota.zone[j]] -= 1
            left -= 1
        return S if left == 0 else None
    free = np.flatnonzero(~S & ~banned)
    need = p - int(S.sum())
    if len(free) < need:
        return None
    if need:
        S[free[np.argpartition(rho[free], need - 1)[:need]]] = True
    return S


def _lagrangian_reduction(model: PMedian, incumbent: np.ndarray, ub: float, *, iterations: int = 400) -> _Reduction:
    """Lagrangian bound of the p-median (assignment rows relaxed) by subgradient, and reduction tests.

    For multipliers u (one per demand with pairs, u_i <= w_i max_cost):
    L(u) = Σ u_i + min over feasible site sets S of Σ_{j in S} ρ_j with ρ_j = Σ_i min(0, w_i c_ij - u_i),
    plus w_i max_cost for demand without pairs. Every L(u) is a lower bound; forcing a site in or
    out gives a bound for every solution with (without) it.
    """
    inst = model._inst
    pi, pj, pc, w, m = inst.pi, inst.pj, inst.pc, inst.weights, inst.m
    quota = model._quota_state()
    forced, banned = inst.existing.copy(), np.zeros(m, bool)
    has = np.zeros(inst.n, bool)
    has[pi] = True
    rows = np.flatnonzero(has)
    constant = float(w[~has].sum() * model.max_cost)
    a = w[pi] * pc
    b = w * model.max_cost
    _, inc_cost = model._nearest_assignment(incumbent)
    u = np.where(has, w * np.nan_to_num(inc_cost, nan=model.max_cost), 0.0)
    p = int(model.p)

    def evaluate(u: np.ndarray):
        red = np.minimum(0.0, a - u[pi])
        rho = np.bincount(pj, red, minlength=m)
        S = _cheapest_sites(rho, p, forced, banned, quota)
        return float(u[rows].sum() + rho[S].sum()) + constant, rho, S

    best_val, best_u = -np.inf, u
    theta, stall = 2.0, 0
    for _ in range(iterations):
        val, rho, S = evaluate(u)
        if S is None:
            break
        if val > best_val + 1e-12 * abs(val):
            best_val, best_u, stall = val, u.copy(), 0
        else:
            stall += 1
            if stall >= 20:
                theta, stall = theta / 2, 0
        if ub - best_val <= MIP_REL_GAP * abs(ub) * 0.5 or theta < 1e-6:
            break
        served = np.bincount(pi, S[pj] & (a < u[pi]), minlength=inst.n)
        g = (1.0 - served)[rows]
        norm = float(g @ g)
        if norm == 0:
            break
        u = u.copy()
        u[rows] = np.minimum(u[rows] + theta * (ub - val) / norm * g, b[rows])
        u[rows] = np.maximum(u[rows], 0.0)
    fixed = np.full(m, -1)
    if not np.isfinite(best_val):
        return _Reduction(-np.inf, fixed)
    val, rho, S = evaluate(best_u)
    base = float(best_u[rows].sum()) + constant
    tol = 1e-9 * max(abs(ub), 1.0)
    for j in range(m):
        if inst.existing[j]:
            continue
        if S[j]:
            banned[j] = True
            alt = _cheapest_sites(rho, p, forced, banned, quota)
            banned[j] = False
            if alt is None or base + rho[alt].sum() > ub + tol:
                fixed[j] = 1
        else:
            forced[j] = True
            alt = _cheapest_sites(rho, p, forced, banned, quota)
            forced[j] = False
            if alt is None or base + rho[alt].sum() > ub + tol:
                fixed[j] = 0
    return _Reduction(val, fixed)


class MaxCoverage(_SitingModel):
    """Maximal covering location (MCLP): open ``p`` sites covering the most demand weight within ``threshold``.

    Objective: covered weight (maximised). A demand point is covered when a chosen site lies within
    ``threshold`` along the network.
    """

    name: ClassVar[str] = "max_coverage"
    _maximise: ClassVar[bool] = True

    @classmethod
    def from_cost_matrix(
        cls,
        costs: pd.DataFrame,
        weights: pd.Series | Mapping[str, float] | None = None,
        *,
        p: int | None = None,
        threshold: float | str | Threshold,
        zones: pd.Series | Mapping[str, str] | None = None,
        demand_zones: pd.Series | Mapping[str, str] | None = None,
        quota: int | Mapping[str, int | tuple[int, int]] | None = None,
        existing: Collection[str] | None = None,
        excluded: Collection[str] | None = None,
        candidates: Collection[str] | None = None,
        zone_labels: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> MaxCoverage:
        """Build the model from a long cost table.

        Parameters
        ----------
        costs
            Columns ``demand_id``, ``candidate_id``, ``cost`` (pairs within a cutoff; others unreachable).
        weights
            Demand weight by demand id (households, population, people of a category); every demand
            point, reachable or not. 1 per demand id of ``costs`` when None.
        p
            Sites to open in total, existing included; the sum of exact quotas when None.
        threshold
            Coverage radius in the costs' unit (metres or seconds), or text such as ``"15min"``.
        zones
            Candidate id → zone (e.g. ``town_code``) for quotas and the per-town report.
        demand_zones
            Demand id → zone, for the per-town report and the zones a whole-number quota applies to.
        quota
            Sites per zone: a number for every zone (1 = one 渝馨家园 per town), or zone → number or
            (min, max).
        existing
            Candidate ids kept open.
        excluded
            Candidate ids that may not be chosen.
        candidates
            Every candidate id (those without any pair too); derived from the other arguments when None.
        zone_labels
            Zone → name (e.g. town names) for error messages.
        progress
            Called with (stage, fraction done) at "model built", "solving" and "done".

        Raises
        ------
        ValueError
            If a column, weight, id or argument is malformed.
        InfeasibleSitingError
            If a zone with a quota has too few candidates (the message names the town), or ``p``
            contradicts the quotas or the existing sites.
        """
        if p is None and quota is None:
            msg = "`p` is required (or give exact per-zone `quota`s to imply it)."
            raise ValueError(msg)
        model = cls._from_costs(
            costs,
            weights,
            p=p,
            threshold=threshold,
            candidates=candidates,
            zones=zones,
            demand_zones=demand_zones,
            quota=quota,
            existing=existing,
            excluded=excluded,
            zone_labels=zone_labels,
            progress=progress,
        )
        if model.p is None:
            msg = "`p` is required when the quotas are not exact for every candidate's zone."
            raise ValueError(msg)
        return model

    def _cover_pairs(self) -> np.ndarray:
        return self._inst.pc <= self.threshold

    def _milp(self):
        inst = self._inst
        m = inst.m
        cov = self._cover_pairs()
        pi, pj = inst.pi[cov], inst.pj[cov]
        rows_d = np.unique(pi)
        k = len(rows_d)
        zpos = np.searchsorted(rows_d, pi)
        n_vars = m + k
        c = np.r_[np.zeros(m), -inst.weights[rows_d]]
        # z_i - Σ_{j covers i} y_j <= 0
        A_cov = sp.csr_matrix(
            (np.r_[np.ones(k), -np.ones(len(pi))], (np.r_[np.arange(k), zpos], np.r_[m + np.arange(k), pj])),
            shape=(k, n_vars),
        )
        rows, lo, hi = self._site_rows(n_vars)
        A = sp.vstack([*rows, A_cov], format="csr")
        rlo = np.concatenate([*lo, np.full(k, -np.inf)])
        rhi = np.concatenate([*hi, np.zeros(k)])
        ylo, yhi = self._site_bounds()
        return c, A, rlo, rhi, np.r_[np.ones(m), np.zeros(k)], np.r_[ylo, np.zeros(k)], np.r_[yhi, np.ones(k)]

    def _objective(self, selected, assign, cost) -> float:
        return float(self._inst.weights[self._covered(assign, cost)].sum())

    def _heuristic_sites(self) -> np.ndarray:
        inst = self._inst
        cov = self._cover_pairs()
        return _sparse_greedy_swap(
            inst.pi[cov],
            inst.pj[cov],
            np.zeros(int(cov.sum())),
            inst.weights,
            1.0,
            n=inst.n,
            m=inst.m,
            p=self.p,
            fixed=inst.existing,
            quota=self._quota_state(),
        )


class PMedian(_SitingModel):
    """p-median: open ``p`` sites minimising Σ weight × network cost to the assigned site.

    Demand with no chosen site within ``max_cost`` (or the cost table's cutoff) is unserved and
    counts at ``max_cost``: the objective is Σ weight × min(cost to the site, max_cost), the classic
    p-median on costs capped at ``max_cost``. With ``capacity``, each site serves at most that much
    demand weight and each demand point goes to one site.
    """

    name: ClassVar[str] = "p_median"

    @classmethod
    def from_cost_matrix(
        cls,
        costs: pd.DataFrame,
        weights: pd.Series | Mapping[str, float] | None = None,
        *,
        p: int | None = None,
        max_cost: float | str | Threshold | None = None,
        threshold: float | str | Threshold | None = None,
        zones: pd.Series | Mapping[str, str] | None = None,
        demand_zones: pd.Series | Mapping[str, str] | None = None,
        quota: int | Mapping[str, int | tuple[int, int]] | None = None,
        existing: Collection[str] | None = None,
        excluded: Collection[str] | None = None,
        capacity: pd.Series | Mapping[str, float] | float | None = None,
        candidates: Collection[str] | None = None,
        zone_labels: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> PMedian:
        """Build the model from a long cost table.

        Parameters are those of ``MaxCoverage.from_cost_matrix``, and:

        Parameters
        ----------
        max_cost
            Cost beyond which demand is unserved (and counted at this cost); the table's
            ``attrs["cutoff"]`` or its largest cost when None.
        threshold
            Optional: report the share of demand within it as ``covered_share`` (served share otherwise).
        capacity
            Demand weight one site may serve (a number, or per candidate id).
        """
        if p is None and quota is None:
            msg = "`p` is required (or give exact per-zone `quota`s to imply it)."
            raise ValueError(msg)
        if max_cost is None:
            max_cost = costs.attrs.get("cutoff") if len(costs) else None
            if max_cost is None and COST in costs.columns:
                max_cost = float(pd.to_numeric(costs[COST]).max()) if len(costs) else 0.0
        model = cls._from_costs(
            costs,
            weights,
            p=p,
            threshold=threshold,
            max_cost=max_cost,
            candidates=candidates,
            zones=zones,
            demand_zones=demand_zones,
            quota=quota,
            existing=existing,
            excluded=excluded,
            capacity=capacity,
            zone_labels=zone_labels,
            progress=progress,
        )
        if model.p is None:
            msg = "`p` is required when the quotas are not exact for every candidate's zone."
            raise ValueError(msg)
        return model

    def _uses_assignment(self) -> bool:
        return self._inst.capacity is not None

    def _solve_exact(self, start: float, time_limit_s: float) -> SitingResult:
        """Reduce the candidates with a Lagrangian bound and the heuristic's incumbent, then solve the MILP.

        Candidates whose opening provably costs more than the incumbent are closed, and those whose
        closing does are opened (Lagrangian reduction tests; Beasley 1993). Their pairs leave the
        radius formulation, so HiGHS solves a much smaller LP; optimal solutions are kept. When the
        bound already meets the incumbent within ``MIP_REL_GAP`` the incumbent is returned as proven.
        """
        inst = self._inst
        if inst.capacity is not None or self._fixed is not None or not len(inst.pi):
            return super()._solve_exact(start, time_limit_s)
        try:
            incumbent = self._heuristic_sites()
        except InfeasibleSitingError:
            return super()._solve_exact(start, time_limit_s)
        assign, cost = self._nearest_assignment(incumbent)
        ub = self._objective(incumbent, assign, cost)
        red = _lagrangian_reduction(self, incumbent, ub)
        self._report("bound computed", 0.35)
        logger.debug(
            "p-median Lagrangian bound %.10g vs incumbent %.10g: %d of %d candidates closed, %d opened",
            red.bound, ub, int((red.fixed == 0).sum()), inst.m, int((red.fixed == 1).sum()),
        )  # fmt: skip
        note = f"Lagrangian reduction: {int((red.fixed != 0).sum())} of {inst.m} candidates left"
        if ub - red.bound <= MIP_REL_GAP * abs(ub):
            self._known_bound = red.bound
            return self._result(incumbent, None, start=start, optimal=True, bound=red.bound,
                                solver=f"greedy+swap proven by a Lagrangian bound ({note})")  # fmt: skip
        keep = red.fixed[inst.pj] != 0
        reduced_inst = _replace(inst, pi=inst.pi[keep], pj=inst.pj[keep], pc=inst.pc[keep])
        reduced = PMedian(reduced_inst, p=self.p, threshold=self.threshold, max_cost=self.max_cost,
                          parameters=self.parameters, progress=self._progress)  # fmt: skip
        reduced._fixed = red.fixed
        remaining = max(time_limit_s - (time.perf_counter() - start), 0.01)
        result = reduced._solve_exact(start, remaining)
        # evaluate on the full pairs (identical, since closed sites are never open) and keep the better bound
        bound = result.bound if result.bound is None else max(result.bound, red.bound)
        self._known_bound = bound
        final = self._result(
            np.isin(inst.cand_ids, np.array(result.selected, dtype=object)),
            None,
            start=start,
            optimal=result.optimal,
            bound=bound,
            solver=f"{result.solver} ({note})",
        )
        return final

    def _constant(self) -> float:
        inst = self._inst
        no_pair = np.ones(inst.n, bool)
        no_pair[inst.pi] = False
        constant = float(inst.weights[no_pair].sum() * self.max_cost)
        if inst.capacity is None:  # the radius formulation counts each demand's nearest cost as a constant
            first = np.r_[True, inst.pi[1:] != inst.pi[:-1]] if len(inst.pi) else np.zeros(0, bool)
            constant += float(inst.weights[inst.pi[first]] @ inst.pc[first])
        return constant

    def _milp(self):
        if self._inst.capacity is None:
            return self._radius_milp()
        return self._assignment_milp()

    def _radius_milp(self):
        """Radius formulation (García, Labbé & Marín 2011): one row per demand and distinct cost level.

        ``z_l`` = 1 when demand i has no open site at cost <= level l; the objective adds
        w_i (next level - level) z_l, with ``max_cost`` after the last level, so it equals Σ w_i
        min(cost, max_cost) minus the constant Σ w_i (nearest candidate cost). Same LP bound as the
        assignment formulation with far fewer non-zeros.
        """
        inst = self._inst
        m, P = inst.m, len(inst.pi)
        pi, pj, pc = inst.pi, inst.pj, inst.pc
        new_level = np.r_[True, (pi[1:] != pi[:-1]) | (pc[1:] != pc[:-1])] if P else np.zeros(0, bool)
        level = np.cumsum(new_level) - 1  # level index of each pair
        L = int(new_level.sum())
        li, lc = pi[new_level], pc[new_level]
        first = np.r_[True, li[1:] != li[:-1]] if L else np.zeros(0, bool)
        last = np.r_[li[1:] != li[:-1], True] if L else np.zeros(0, bool)
        next_cost = np.where(last, self.max_cost, np.r_[lc[1:], 0.0] if L else lc)
        # a demand already served by an existing site needs no levels beyond it
        at_existing = np.zeros(L, bool)
        at_existing[level[inst.existing[pj]]] = True
        done = np.zeros(L, bool)
        if L:
            seen = np.cumsum(at_existing) - at_existing  # existing levels before this one (whole array)
            start_seen = np.maximum.accumulate(np.where(first, np.arange(L), 0))
            base = (np.cumsum(at_existing) - at_existing)[start_seen]
            done = (seen - base) > 0
        n_vars = m + L
        zcol = m + np.arange(L)
        c = np.r_[np.zeros(m), inst.weights[li] * (next_cost - lc)]
        # z_l + Σ_{pairs at level l} y_j - z_{l-1} >= [l is first]
        prev = np.flatnonzero(~first)
        A = sp.csr_matrix(
            (
                np.r_[np.ones(L), np.ones(P), -np.ones(len(prev))],
                (np.r_[np.arange(L), level, prev], np.r_[zcol, pj, zcol[prev - 1]]),
            ),
            shape=(L, n_vars),
        )
        blocks, lo, hi = self._site_rows(n_vars)
        blocks.append(A)
        lo.append(first.astype(float))
        hi.append(np.full(L, np.inf))
        ylo, yhi = self._site_bounds()
        zhi = np.where(done, 0.0, 1.0)
        return (
            c,
            sp.vstack(blocks, format="csr"),
            np.concatenate(lo),
            np.concatenate(hi),
            np.r_[np.ones(m), np.zeros(L)],
            np.r_[ylo, np.zeros(L)],
            np.r_[yhi, zhi],
        )

    def _assignment_milp(self):
        inst = self._inst
        m, P = inst.m, len(inst.pi)
        rows_d = np.unique(inst.pi)
        k = len(rows_d)
        upos = np.searchsorted(rows_d, inst.pi)
        n_vars = m + P + k
        w = inst.weights
        c = np.r_[np.zeros(m), w[inst.pi] * inst.pc, w[rows_d] * self.max_cost]
        xcol = m + np.arange(P)
        # Σ_j x_ij + u_i = 1
        A_one = sp.csr_matrix(
            (np.ones(P + k), (np.r_[upos, np.arange(k)], np.r_[xcol, m + P + np.arange(k)])), shape=(k, n_vars)
        )
        # x_ij - y_j <= 0
        A_link = sp.csr_matrix(
            (np.r_[np.ones(P), -np.ones(P)], (np.r_[np.arange(P), np.arange(P)], np.r_[xcol, inst.pj])),
            shape=(P, n_vars),
        )
        blocks, lo, hi = self._site_rows(n_vars)
        blocks += [A_one, A_link]
        lo += [np.ones(k), np.full(P, -np.inf)]
        hi += [np.ones(k), np.zeros(P)]
        integ = np.r_[np.ones(m), np.zeros(P + k)]
        if inst.capacity is not None:
            # Σ_i w_i x_ij - cap_j y_j <= 0, single sourcing
            A_cap = sp.csr_matrix(
                (np.r_[w[inst.pi], -inst.capacity], (np.r_[inst.pj, np.arange(m)], np.r_[xcol, np.arange(m)])),
                shape=(m, n_vars),
            )
            blocks.append(A_cap)
            lo.append(np.full(m, -np.inf))
            hi.append(np.zeros(m))
            integ = np.r_[np.ones(m + P), np.zeros(k)]
        ylo, yhi = self._site_bounds()
        return (
            c,
            sp.vstack(blocks, format="csr"),
            np.concatenate(lo),
            np.concatenate(hi),
            integ,
            np.r_[ylo, np.zeros(P + k)],
            np.r_[yhi, np.ones(P + k)],
        )

    def _assignment_from_x(self, x: np.ndarray) -> np.ndarray:
        inst = self._inst
        xv = x[inst.m : inst.m + len(inst.pi)]
        assign = np.full(inst.n, -1)
        on = xv > 0.5
        assign[inst.pi[on]] = inst.pj[on]
        return assign

    def _objective(self, selected, assign, cost) -> float:
        w = self._inst.weights
        return float(np.sum(w * np.where(assign >= 0, np.nan_to_num(cost), self.max_cost)))

    def _heuristic_sites(self) -> np.ndarray:
        inst = self._inst
        return _sparse_greedy_swap(
            inst.pi,
            inst.pj,
            inst.pc,
            inst.weights,
            self.max_cost,
            n=inst.n,
            m=inst.m,
            p=self.p,
            fixed=inst.existing,
            quota=self._quota_state(),
        )


class SetCover(_SitingModel):
    """Location set covering (LSCP): the fewest sites so that all coverable demand lies within ``threshold``.

    Demand with no candidate within ``threshold`` cannot be covered; it is left out and reported as
    unserved (``parameters["uncoverable"]``). With ``capacity``, each site serves at most that much
    demand weight and each demand point goes to one covering site.
    """

    name: ClassVar[str] = "set_cover"

    @classmethod
    def from_cost_matrix(
        cls,
        costs: pd.DataFrame,
        weights: pd.Series | Mapping[str, float] | None = None,
        *,
        threshold: float | str | Threshold,
        zones: pd.Series | Mapping[str, str] | None = None,
        demand_zones: pd.Series | Mapping[str, str] | None = None,
        quota: int | Mapping[str, int | tuple[int, int]] | None = None,
        existing: Collection[str] | None = None,
        excluded: Collection[str] | None = None,
        capacity: pd.Series | Mapping[str, float] | float | None = None,
        candidates: Collection[str] | None = None,
        zone_labels: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> SetCover:
        """Build the model from a long cost table (parameters as in ``MaxCoverage.from_cost_matrix``; no ``p``)."""
        model = cls._from_costs(
            costs,
            weights,
            threshold=threshold,
            max_cost=threshold,
            candidates=candidates,
            zones=zones,
            demand_zones=demand_zones,
            quota=quota,
            existing=existing,
            excluded=excluded,
            capacity=capacity,
            zone_labels=zone_labels,
            progress=progress,
        )
        inst = model._inst
        has = np.zeros(inst.n, bool)
        has[inst.pi] = True
        model.parameters = MappingProxyType({**model.parameters, "uncoverable": int((~has).sum())})
        return model

    def _uses_assignment(self) -> bool:
        return self._inst.capacity is not None

    def _milp(self):
        inst = self._inst
        m, P = inst.m, len(inst.pi)
        rows_d = np.unique(inst.pi)
        k = len(rows_d)
        dpos = np.searchsorted(rows_d, inst.pi)
        ylo, yhi = self._site_bounds()
        if inst.capacity is None:
            n_vars = m
            A_cov = sp.csr_matrix((np.ones(P), (dpos, inst.pj)), shape=(k, n_vars))
            blocks, lo, hi = self._site_rows(n_vars)
            blocks.append(A_cov)
            lo.append(np.ones(k))
            hi.append(np.full(k, np.inf))
            return (
                np.ones(m),
                sp.vstack(blocks, format="csr"),
                np.concatenate(lo),
                np.concatenate(hi),
                np.ones(m),
                ylo,
                yhi,
            )
        n_vars = m + P
        xcol = m + np.arange(P)
        w = inst.weights
        A_one = sp.csr_matrix((np.ones(P), (dpos, xcol)), shape=(k, n_vars))
        A_link = sp.csr_matrix(
            (np.r_[np.ones(P), -np.ones(P)], (np.r_[np.arange(P), np.arange(P)], np.r_[xcol, inst.pj])),
            shape=(P, n_vars),
        )
        A_cap = sp.csr_matrix(
            (np.r_[w[inst.pi], -inst.capacity], (np.r_[inst.pj, np.arange(m)], np.r_[xcol, np.arange(m)])),
            shape=(m, n_vars),
        )
        blocks, lo, hi = self._site_rows(n_vars)
        blocks += [A_one, A_link, A_cap]
        lo += [np.ones(k), np.full(P, -np.inf), np.full(m, -np.inf)]
        hi += [np.ones(k), np.zeros(P), np.zeros(m)]
        c = np.r_[np.ones(m), np.zeros(P)]
        return (
            c,
            sp.vstack(blocks, format="csr"),
            np.concatenate(lo),
            np.concatenate(hi),
            np.ones(n_vars),
            np.r_[ylo, np.zeros(P)],
            np.r_[yhi, np.ones(P)],
        )

    _assignment_from_x = PMedian._assignment_from_x

    def _objective(self, selected, assign, cost) -> float:
        return float(selected.sum())

    def _infeasible_hint(self) -> str:
        return "Quotas, capacities or exclusions leave coverable demand uncovered; relax them or raise `threshold`."

    def _heuristic_sites(self) -> np.ndarray:
        """Greedy: meet zone minimums, then add the site covering most uncovered points; drop redundant sites."""
        inst = self._inst
        D, rows = self._dense(np.zeros(len(inst.pi)), 1.0)
        C = D == 0.0
        quota = self._quota_state()
        S = list(np.flatnonzero(inst.existing))
        uncovered = ~C[:, S].any(axis=1) if S else np.ones(len(rows), bool)
        lo = quota.lo
        while True:
            S_arr = np.array(S, int)
            need_min = len(lo) and (quota.counts(S_arr) < lo).any()
            if not uncovered.any() and not need_min:
                break
            allowed = quota.addable(S_arr, len(S) + 1 + (10**9 if not need_min else 0))
            if need_min and not uncovered.any():
                allowed &= np.r_[quota.counts(S_arr) < lo, False][quota.zone]
            cand = np.flatnonzero(allowed)
            if not len(cand):
                msg = "The zone quotas leave some coverable demand uncovered; relax them or raise `threshold`."
                raise InfeasibleSitingError(msg)
            gain = C[uncovered][:, cand].sum(axis=0)
            j = int(cand[int(np.argmax(gain))])
            S.append(j)
            uncovered &= ~C[:, j]
        for j in sorted([s for s in S if not inst.existing[s]], key=lambda s: C[:, s].sum()):
            rest = [s for s in S if s != j]
            zj = quota.zone[j]
            if zj >= 0 and quota.counts(np.array(rest, int))[zj] < lo[zj]:
                continue
            if not rest or C[:, rest].any(axis=1).all():
                S = rest
        mask = np.zeros(inst.m, bool)
        mask[S] = True
        return mask


class PCenter(_SitingModel):
    """p-center: open ``p`` sites minimising the largest network cost from a demand point to its site.

    Unweighted (weights only enter the shares). Demand with no candidate within ``max_cost`` is
    left out and reported unserved; every other demand point must be served.
    """

    name: ClassVar[str] = "p_center"

    @classmethod
    def from_cost_matrix(
        cls,
        costs: pd.DataFrame,
        weights: pd.Series | Mapping[str, float] | None = None,
        *,
        p: int | None = None,
        max_cost: float | str | Threshold | None = None,
        threshold: float | str | Threshold | None = None,
        zones: pd.Series | Mapping[str, str] | None = None,
        demand_zones: pd.Series | Mapping[str, str] | None = None,
        quota: int | Mapping[str, int | tuple[int, int]] | None = None,
        existing: Collection[str] | None = None,
        excluded: Collection[str] | None = None,
        candidates: Collection[str] | None = None,
        zone_labels: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> PCenter:
        """Build the model from a long cost table (parameters as in ``PMedian.from_cost_matrix``, no capacity)."""
        if p is None and quota is None:
            msg = "`p` is required (or give exact per-zone `quota`s to imply it)."
            raise ValueError(msg)
        model = cls._from_costs(
            costs,
            weights,
            p=p,
            threshold=threshold,
            max_cost=max_cost,
            candidates=candidates,
            zones=zones,
            demand_zones=demand_zones,
            quota=quota,
            existing=existing,
            excluded=excluded,
            zone_labels=zone_labels,
            progress=progress,
        )
        if model.p is None:
            msg = "`p` is required when the quotas are not exact for every candidate's zone."
            raise ValueError(msg)
        return model

    def _milp(self):
        inst = self._inst
        m, P = inst.m, len(inst.pi)
        rows_d = np.unique(inst.pi)
        k = len(rows_d)
        dpos = np.searchsorted(rows_d, inst.pi)
        n_vars = m + P + 1
        xcol = m + np.arange(P)
        rcol = m + P
        c = np.zeros(n_vars)
        c[rcol] = 1.0
        A_one = sp.csr_matrix((np.ones(P), (dpos, xcol)), shape=(k, n_vars))
        A_link = sp.csr_matrix(
            (np.r_[np.ones(P), -np.ones(P)], (np.r_[np.arange(P), np.arange(P)], np.r_[xcol, inst.pj])),
            shape=(P, n_vars),
        )
        # Σ_j c_ij x_ij - r <= 0
        A_max = sp.csr_matrix(
            (np.r_[inst.pc, -np.ones(k)], (np.r_[dpos, np.arange(k)], np.r_[xcol, np.full(k, rcol)])),
            shape=(k, n_vars),
        )
        blocks, lo, hi = self._site_rows(n_vars)
        blocks += [A_one, A_link, A_max]
        lo += [np.ones(k), np.full(P, -np.inf), np.full(k, -np.inf)]
        hi += [np.ones(k), np.zeros(P), np.zeros(k)]
        ylo, yhi = self._site_bounds()
        integ = np.r_[np.ones(m), np.zeros(P + 1)]
        return (
            c,
            sp.vstack(blocks, format="csr"),
            np.concatenate(lo),
            np.concatenate(hi),
            integ,
            np.r_[ylo, np.zeros(P + 1)],
            np.r_[yhi, np.ones(P), np.inf],
        )

    def _objective(self, selected, assign, cost) -> float:
        inst = self._inst
        has = np.zeros(inst.n, bool)
        has[inst.pi] = True
        served = cost[has]
        if np.isnan(served).any():
            return float("inf")
        return float(served.max()) if len(served) else 0.0

    def _infeasible_hint(self) -> str:
        return "No choice of sites reaches every demand point within `max_cost`; raise it or `p`."

    def _heuristic_sites(self) -> np.ndarray:
        inst = self._inst
        big = 2.0 * (float(inst.pc.max()) if len(inst.pc) else 1.0) + 1.0
        D, rows = self._dense(inst.pc, big)
        return _greedy_swap(
            D, np.ones(len(rows)), big, p=self.p, fixed=inst.existing, quota=self._quota_state(), agg="max"
        )


# --------------------------------------------------------------------------------------------------
# network convenience and before/after


_MODELS: dict[str, type[_SitingModel]] = {
    "max_coverage": MaxCoverage,
    "p_median": PMedian,
    "set_cover": SetCover,
    "p_center": PCenter,
}


def model_from_network(
    model: Literal["max_coverage", "p_median", "set_cover", "p_center"],
    placer: Placer,
    demand: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame,
    *,
    profile: str,
    cutoff: str | Threshold,
    weight_column: str | None = None,
    zone_column: str | None = schema.TOWN_CODE,
    progress: Progress | None = None,
    **options: Any,
) -> _SitingModel:
    """Build a siting model on network costs: snap, compute the cost table, then ``from_cost_matrix``.

    Parameters
    ----------
    model
        Which model.
    placer
        The prepared network with its snapping indexes.
    demand
        Demand points (any CRS) with ``id`` and, for quotas and per-town reports, ``zone_column``.
    candidates
        Candidate sites (any CRS) with ``id``; existing facilities must be among them.
    profile
        Travel profile (``"walk"``, ``"wheelchair"``, ``"drive"``).
    cutoff
        Largest cost computed, as text with a unit (``"800m"``, ``"20min"``): the coverage radius
        for max coverage and set cover, ``max_cost`` for p-median and p-center unless given.
    weight_column
        Demand weight column; 1 per point when None.
    zone_column
        Zone column of both layers (default ``town_code``); None for no zones.
    progress
        Called with (stage, fraction): "matrix built", "model built", "solving", "done".
    **options
        Passed to the model's ``from_cost_matrix`` (``p``, ``threshold``, ``quota``, ``existing``...).

    Returns
    -------
    MaxCoverage | PMedian | SetCover | PCenter
    """
    if model not in _MODELS:
        msg = f"`model` must be one of {sorted(_MODELS)!r}; got {model!r}."
        raise ValueError(msg)
    for name, gdf in (("demand", demand), ("candidates", candidates)):
        need = [schema.ID, *([zone_column] if zone_column else [])]
        lacking = [c for c in need if c not in gdf.columns]
        if lacking:
            msg = f"`{name}` lacks the column(s) {lacking!r}; it has {list(gdf.columns)!r}."
            raise ValueError(msg)
    if weight_column is not None and weight_column not in demand.columns:
        msg = f"`demand` lacks the weight column {weight_column!r}; it has {list(demand.columns)!r}."
        raise ValueError(msg)
    t = parse_threshold(cutoff)
    start = time.perf_counter()
    d_snap = placer.snap(demand, profile)
    c_snap = placer.snap(candidates, profile)
    costs = cost_matrix(placer.net, profile, d_snap, c_snap, weight=t.weight, cutoff=t.value)
    ids = demand[schema.ID].astype(str).to_numpy()
    weights = pd.Series(1.0 if weight_column is None else demand[weight_column].to_numpy(dtype=float), index=ids)
    cand_ids = candidates[schema.ID].astype(str).to_numpy()
    if zone_column:
        options.setdefault("zones", pd.Series(candidates[zone_column].astype(str).to_numpy(), index=cand_ids))
        options.setdefault("demand_zones", pd.Series(demand[zone_column].astype(str).to_numpy(), index=ids))
    if progress is not None:
        progress("matrix built", 0.1)
    cls = _MODELS[model]
    if model in ("max_coverage", "set_cover"):
        options.setdefault("threshold", t)
    else:
        options.setdefault("max_cost", t)
    built = cls.from_cost_matrix(costs, weights, candidates=cand_ids, progress=progress, **options)
    built.parameters = MappingProxyType(
        {
            **built.parameters,
            "profile": profile,
            "cutoff": t.label,
            "measure": "network",
            "weight_column": weight_column,
            "matrix_s": time.perf_counter() - start,
        }
    )
    return built


def compare_with_current(model: _SitingModel, result: SitingResult, current_sites: Collection[str]) -> SitingComparison:
    """Compare coverage with ``current_sites`` only (before) against ``result`` (after), per town.

    Parameters
    ----------
    model
        The model that produced ``result`` (its costs and weights are reused).
    result
        A solution of ``model``.
    current_sites
        Candidate ids of the facilities open today (usually the model's ``existing``).
    """
    before = model.evaluate(current_sites, label="current sites")
    b, a = before.by_town, result.by_town
    by_town = pd.DataFrame(
        {
            "covered_share_before": b["covered_share"],
            "covered_share_after": a["covered_share"],
            "covered_share_change": a["covered_share"] - b["covered_share"],
            "sites_before": b["sites"],
            "sites_after": a["sites"],
        }
    )
    summary = {
        "covered_share_before": before.covered_share,
        "covered_share_after": result.covered_share,
        "covered_share_change": result.covered_share - before.covered_share,
        "objective_before": before.objective,
        "objective_after": result.objective,
        "sites_before": len(before.selected),
        "sites_after": len(result.selected),
    }
    return SitingComparison(before, result, by_town, MappingProxyType(summary))


#: A toilet stays open in a toilet plan when accepted after its build, or when it is an existing or
#: rebuilt (改造) one: only the new-build (新建) toilets not yet accepted are still to be sited.
KEPT_TOILET_STATUSES = ("accepted",)
KEPT_TOILET_BUILD_TYPES = ("existing", "rebuild")


def kept_toilets(toilets: pd.DataFrame) -> pd.Series:
    """Return a boolean mask of the toilets that stay open (``KEPT_TOILET_STATUSES``/``_BUILD_TYPES``).

    Raises
    ------
    ValueError
        If ``toilets`` has neither ``status`` nor ``build_type``.
    """
    if schema.STATUS not in toilets.columns and schema.BUILD_TYPE not in toilets.columns:
        msg = f"`toilets` needs `status` or `build_type` to tell which stay open; it has {list(toilets.columns)!r}."
        raise ValueError(msg)
    kept = pd.Series(False, index=toilets.index)
    if schema.STATUS in toilets.columns:
        kept |= toilets[schema.STATUS].isin(KEPT_TOILET_STATUSES)
    if schema.BUILD_TYPE in toilets.columns:
        kept |= toilets[schema.BUILD_TYPE].isin(KEPT_TOILET_BUILD_TYPES)
    return kept


@dataclass(frozen=True)
class ToiletSiting:
    """New accessible-toilet sites chosen by maximal coverage, with coverage before and after.

    Parameters
    ----------
    result
        The MCLP solution (kept toilets included in ``selected``).
    comparison
        Kept toilets only (before) against the solution (after), overall and per town.
    kept
        Ids of the toilets kept open.
    new_sites
        Ids of the chosen new sites.
    """

    result: SitingResult
    comparison: SitingComparison
    kept: tuple[str, ...]
    new_sites: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the result's ``to_dict()`` plus ``kept``, ``new_sites`` and ``comparison``."""
        by_town = self.comparison.by_town.reset_index().to_dict(orient="records")
        return {
            **self.result.to_dict(),
            "kept": list(self.kept),
            "new_sites": list(self.new_sites),
            "comparison": {"summary": _plain(dict(self.comparison.summary)), "by_town": _plain(by_town)},
        }


def site_new_toilets(
    placer: Placer,
    toilets: gpd.GeoDataFrame,
    demand: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame,
    *,
    n_new: int = 19,
    profile: str = "wheelchair",
    threshold: str | Threshold = "500m",
    weight_column: str | None = None,
    planned_as_candidates: bool = True,
    excluded: Collection[str] | None = None,
    method: Method = "exact",
    time_limit_s: float = 60.0,
    zone_labels: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> ToiletSiting:
    """Choose ``n_new`` accessible-toilet sites maximising the demand covered, keeping today's toilets.

    Toilets accepted after their build, and existing or rebuilt ones (``kept_toilets``), stay open;
    the model (``MaxCoverage``, ``p`` = kept + ``n_new``) adds the ``n_new`` sites that cover the
    most demand weight within ``threshold`` along the network.

    Parameters
    ----------
    placer
        The prepared network with its snapping indexes.
    toilets
        The toilet layer (any CRS) with ``id``, ``town_code`` and ``status``/``build_type``.
    demand
        What the toilets should be near (households, public facilities, dense streets...), any CRS,
        with ``id`` and ``town_code``.
    candidates
        Possible new sites (any CRS) with ``id`` and ``town_code``, e.g.
        ``analyses.candidates.candidates_near_seats``; ids must differ from the toilets'.
    n_new
        New sites to open.
    profile
        Travel profile (``"wheelchair"`` by default).
    threshold
        Coverage radius with a unit, e.g. ``"500m"`` or ``"10min"``.
    weight_column
        Demand weight column; 1 per point when None.
    planned_as_candidates
        Also offer the toilets that are not kept (planned new builds) as candidate sites.
    excluded
        Candidate ids that may not be chosen.
    method, time_limit_s
        As in ``MaxCoverage.solve``.
    zone_labels
        Town code → name, for messages.
    progress
        Called with (stage, fraction).

    Returns
    -------
    ToiletSiting

    Raises
    ------
    ValueError
        If ids collide or a column is missing.
    InfeasibleSitingError
        If there are fewer candidates than ``n_new``.
    """
    if int(n_new) != n_new or n_new < 1:
        msg = f"`n_new` must be a positive whole number of sites; got {n_new!r}."
        raise ValueError(msg)
    kept_mask = kept_toilets(toilets).to_numpy()
    kept = toilets.loc[kept_mask]
    pool = [kept, candidates]
    if planned_as_candidates:
        pool.append(toilets.loc[~kept_mask])
    crs = candidates.crs or toilets.crs
    columns = [schema.ID, schema.TOWN_CODE, "geometry"]
    for name, gdf in (("toilets", toilets), ("candidates", candidates)):
        lacking = [c for c in columns if c not in gdf.columns]
        if lacking:
            msg = f"`{name}` lacks the column(s) {lacking!r}; it has {list(gdf.columns)!r}."
            raise ValueError(msg)
    sites = pd.concat([g[columns].to_crs(crs) for g in pool], ignore_index=True)
    sites[schema.ID] = sites[schema.ID].astype(str)
    clash = sorted(set(candidates[schema.ID].astype(str)) & set(toilets[schema.ID].astype(str)))
    if clash:
        msg = f"`candidates` reuse toilet ids {clash[:5]!r}; give candidate sites their own ids."
        raise ValueError(msg)
    kept_ids = tuple(sorted(kept[schema.ID].astype(str)))
    model = MaxCoverage.from_network(
        placer,
        demand,
        sites,
        profile=profile,
        cutoff=threshold,
        weight_column=weight_column,
        p=len(kept_ids) + int(n_new),
        existing=kept_ids,
        excluded=excluded,
        zone_labels=zone_labels,
        progress=progress,
    )
    result = model.solve(method=method, time_limit_s=time_limit_s)
    comparison = compare_with_current(model, result, kept_ids)
    new_sites = tuple(s for s in result.selected if s not in set(kept_ids))
    return ToiletSiting(result, comparison, kept_ids, new_sites)


def jsonable(value: Any) -> Any:
    """Return ``value`` with numpy scalars, tuples and NaN made JSON-friendly (NaN → None)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is pd.NA:
        return None
    return value


_plain = jsonable


__all__: Sequence[str] = (
    "InfeasibleSitingError",
    "MaxCoverage",
    "PCenter",
    "PMedian",
    "SetCover",
    "SitingComparison",
    "SitingResult",
    "ToiletSiting",
    "compare_with_current",
    "jsonable",
    "kept_toilets",
    "model_from_network",
    "site_new_toilets",
)
