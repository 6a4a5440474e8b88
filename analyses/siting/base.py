"""The machinery every siting model shares: one constructor from a cost table, solving, results."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from analyses.costs import parse_threshold
from analyses.siting.heuristic import sparse_greedy_swap
from analyses.siting.problem import Instance, Quota, as_threshold, build_instance, id_list
from analyses.siting.results import IncumbentReport, InfeasibleSitingError, SitingResult
from analyses.siting.solver import MIP_REL_GAP, solve_milp
from geo.routing import cost_matrix
from layers import schema

if TYPE_CHECKING:
    import geopandas as gpd

    from analyses.costs import Placer, Threshold

logger = logging.getLogger(__name__)

Method = Literal["exact", "heuristic"]
Progress = Callable[[str, float], None]
#: Share of an exact solve's time limit after which the heuristic's swaps stop (its incumbent is kept).
HEURISTIC_SHARE = 0.25
#: Share of an exact solve's time limit the capacitated heuristics (with their bound) may use.
CAPACITY_SHARE = 0.5
#: Largest dense demand × candidate table the heuristic builds (cells).
MAX_HEURISTIC_CELLS = 50_000_000


class SitingModel:
    """Shared machinery of the siting models: the one constructor, solving, evaluation and reporting.

    A subclass sets ``name``, which options ``from_cost_matrix`` takes (``_takes_p``,
    ``_needs_threshold``, ``_takes_max_cost``, ``_takes_capacity``) and its defaults
    (``_default_max_cost``, ``_extra_parameters``), and builds its MILP (``_milp``), objective and
    heuristic sites.
    """

    name: ClassVar[str] = ""
    _maximise: ClassVar[bool] = False

    def __init__(
        self,
        inst: Instance,
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
        self._deadline: float | None = None  # time.perf_counter() at which the running solve must stop
        self._swap_deadline: float | None = None  # ... and the heuristic's swaps, when earlier
        self._incumbent_bound: float | None = None  # a bound the last `_incumbent` proved on the way
        if p is not None:
            self._check_p(p)

    # ---- construction -------------------------------------------------------------------------
    #: Whether ``p`` (sites to open) is an option of the model (set cover finds it instead).
    _takes_p: ClassVar[bool] = True
    #: Whether ``threshold`` must be given (it defines coverage) rather than only reported.
    _needs_threshold: ClassVar[bool] = False
    #: Whether ``max_cost`` is an option (the models without it cover within ``threshold``).
    _takes_max_cost: ClassVar[bool] = True
    #: Whether ``capacity`` is an option (single-sourcing assignment in the MILP).
    _takes_capacity: ClassVar[bool] = False

    @classmethod
    def from_cost_matrix(
        cls,
        costs: pd.DataFrame,
        weights: pd.Series | Mapping[str, float] | None = None,
        *,
        p: int | None = None,
        threshold: float | str | Threshold | None = None,
        max_cost: float | str | Threshold | None = None,
        zones: pd.Series | Mapping[str, str] | None = None,
        demand_zones: pd.Series | Mapping[str, str] | None = None,
        quota: int | Mapping[str, int | tuple[int, int]] | None = None,
        existing: Collection[str] | None = None,
        excluded: Collection[str] | None = None,
        capacity: pd.Series | Mapping[str, float] | float | None = None,
        candidates: Collection[str] | None = None,
        zone_labels: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> Self:
        """Build the model from a long cost table.

        Parameters
        ----------
        costs
            Columns ``demand_id``, ``candidate_id``, ``cost`` (pairs within a cutoff; others unreachable).
        weights
            Demand weight by demand id (households, population, people of a category); every demand
            point, reachable or not. 1 per demand id of ``costs`` when None.
        p
            Sites to open in total, existing included; the sum of exact quotas when None. Not an
            option of ``SetCover``, which finds the fewest sites.
        threshold
            Coverage radius in the costs' unit (metres or seconds), or text such as ``"15min"``.
            Required by ``MaxCoverage`` and ``SetCover``; for ``PMedian`` and ``PCenter`` it only
            sets the reported ``covered_share`` (the served share otherwise).
        max_cost
            ``PMedian`` and ``PCenter``: cost beyond which demand is unserved (p-median counts it at
            this cost; default the table's ``attrs["cutoff"]`` or its largest cost). ``SetCover``
            uses ``threshold``; ``MaxCoverage`` does not take it.
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
        capacity
            ``PMedian`` and ``SetCover``: demand weight one site may serve (a number, or per candidate
            id); each demand point then goes to one site.
        candidates
            Every candidate id (those without any pair too); derived from the other arguments when None.
        zone_labels
            Zone → name (e.g. town names) for error messages.
        progress
            Called with (stage, fraction done) at "model built", "solving" and "done", and with
            "<model>: best X, bound Y, gap Z%" as the incumbent and bound improve during a solve.

        Returns
        -------
        MaxCoverage | PMedian | SetCover | PCenter
            A model of the class it is called on.

        Raises
        ------
        TypeError
            If an option the model does not take is given, or ``threshold`` is missing where required.
        ValueError
            If a column, weight, id or argument is malformed, or ``p`` is missing and not implied.
        InfeasibleSitingError
            If a zone with a quota has too few candidates (the message names the town), or ``p``
            contradicts the quotas or the existing sites.
        """
        not_taken = {
            "p": p is not None and not cls._takes_p,
            "max_cost": max_cost is not None and not cls._takes_max_cost,
            "capacity": capacity is not None and not cls._takes_capacity,
        }
        if any(not_taken.values()):
            names = [f"`{k}`" for k, bad in not_taken.items() if bad]
            msg = f"{cls.__name__}.from_cost_matrix() does not take {', '.join(names)}."
            raise TypeError(msg)
        if cls._needs_threshold and threshold is None:
            msg = f"{cls.__name__}.from_cost_matrix() needs `threshold` (the coverage radius, e.g. '15min')."
            raise TypeError(msg)
        if cls._takes_p and p is None and quota is None:
            msg = "`p` is required (or give exact per-zone `quota`s to imply it)."
            raise ValueError(msg)
        unit = costs.attrs.get("weight") if hasattr(costs, "attrs") else None
        thr = as_threshold(threshold, "threshold", unit)
        cap_cost = as_threshold(cls._default_max_cost(costs, max_cost, threshold), "max_cost", unit)
        inst = build_instance(
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
            cls._takes_p
            and p is None
            and len(inst.zone_names)
            and (inst.zone_lo == inst.zone_hi).all()
            and (inst.cand_zone_idx >= 0).all()
        ):
            p = int(inst.zone_lo.sum())
        if cls._takes_p and p is None:
            msg = "`p` is required when the quotas are not exact for every candidate's zone."
            raise ValueError(msg)
        parameters = {
            "model": cls.name,
            "p": p,
            "threshold": thr,
            "max_cost": cap_cost,
            "unit": unit,
            "quota": {z: [int(a), int(b)] for z, a, b in zip(inst.zone_names, inst.zone_lo, inst.zone_hi, strict=True)},
            "existing": sorted(inst.cand_ids[inst.existing].tolist()),
            "excluded": sorted(id_list(excluded)),
            "capacity": inst.capacity is not None,
            "n_demand": inst.n,
            "n_candidates": inst.m,
            "n_pairs": len(inst.pi),
            "total_weight": float(inst.weights.sum()),
        }
        model = cls(inst, p=p, threshold=thr, max_cost=cap_cost, parameters=parameters, progress=progress)
        model.parameters = MappingProxyType({**model.parameters, **model._extra_parameters()})
        model._report("model built", 0.2)
        return model

    @classmethod
    def _default_max_cost(
        cls, costs: pd.DataFrame, max_cost: float | str | Threshold | None, threshold: float | str | Threshold | None
    ) -> float | str | Threshold | None:
        """Return the ``max_cost`` to use when the caller gave ``max_cost`` (None when not given)."""
        return max_cost

    def _extra_parameters(self) -> dict[str, Any]:
        """Return model-specific entries for ``parameters`` (none by default)."""
        return {}

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
    ) -> Self:
        """Build the model on network costs: snap, compute the cost table, then ``from_cost_matrix``.

        Parameters
        ----------
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
            of the models that need a threshold (max coverage, set cover), ``max_cost`` of the others
            unless given.
        weight_column
            Demand weight column; 1 per point when None.
        zone_column
            Zone column of both layers (default ``town_code``); None for no zones.
        progress
            Called with (stage, fraction): "matrix built", "model built", "solving", "done".
        **options
            Passed to ``from_cost_matrix`` (``p``, ``threshold``, ``quota``, ``existing``...).

        Raises
        ------
        ValueError
            If a layer lacks ``id``, the zone or the weight column.
        """
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
        options.setdefault("threshold" if cls._needs_threshold else "max_cost", t)
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

    def _check_p(self, p: int) -> None:
        inst = self._inst
        if int(p) != p or p < 1:
            msg = f"`p` must be a positive whole number of sites; got {p!r}."
            raise ValueError(msg)
        if p > inst.m:
            zh = f"站点数 `p` = {p} 超过了排除后剩余的 {inst.m} 个候选站点；请降低 `p` 或增加候选站点。"
            en = f"`p` = {p} exceeds the {inst.m} candidate sites left after exclusions; lower `p` or add candidates."
            raise InfeasibleSitingError(zh, en)
        kept = int(inst.existing.sum())
        if kept > p:
            zh = f"站点数 `p` = {p} 少于保留的 {kept} 个现有站点；请提高 `p`。"
            en = f"`p` = {p} is fewer than the {kept} existing sites kept open; raise `p`."
            raise InfeasibleSitingError(zh, en)
        if len(inst.zone_names):
            required = int(inst.zone_lo.sum())
            allowed = int(inst.zone_hi.sum()) + int((inst.cand_zone_idx < 0).sum())
            if required > p:
                zh = f"站点数 `p` = {p} 少于镇街配额要求的 {required} 个站点；请提高 `p`。"
                en = f"`p` = {p} is fewer than the {required} sites the zone quotas require; raise `p`."
                raise InfeasibleSitingError(zh, en)
            if allowed < p:
                zh = f"站点数 `p` = {p} 超过了镇街配额允许的 {allowed} 个站点；请降低 `p`。"
                en = f"`p` = {p} exceeds the {allowed} sites the zone quotas allow; lower `p`."
                raise InfeasibleSitingError(zh, en)

    def _report(self, stage: str, fraction: float) -> None:
        if self._progress is not None:
            self._progress(stage, fraction)

    def _report_incumbent(self, objective: float, bound: float | None, fraction: float) -> None:
        """Report the best solution so far, the proven bound and their gap (as they improve during a solve)."""
        if self._progress is not None:
            self._progress(IncumbentReport(self.name, objective, bound), fraction)

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
            Wall-time limit of the whole solve (building the MILP, bounds, heuristics, HiGHS),
            seconds; kept to within about a second. Stored with ``method`` in the result's
            ``parameters``.

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
        self._deadline = start + float(time_limit_s)
        self._report("solving", 0.3)
        try:
            if method == "exact":
                result = self._solve_exact(start, time_limit_s)
            else:
                result = self._solve_heuristic(start)
        finally:
            self._deadline = None
        result = replace(
            result,
            parameters=MappingProxyType({**result.parameters, "method": method, "time_limit_s": float(time_limit_s)}),
        )
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
        """Heuristic incumbent first (its swaps stop at ``HEURISTIC_SHARE`` of the limit), then HiGHS; the better."""
        self._incumbent_bound = None
        incumbent = None if self._fixed is not None else self._incumbent(start, time_limit_s)
        if incumbent is not None and self._incumbent_bound is not None:
            proven = self._result(incumbent[0], incumbent[1], start=start, optimal=False, bound=self._incumbent_bound,
                                  solver=f"{incumbent[2]}, proven by its bound")  # fmt: skip
            if proven.optimal:
                self._known_bound = proven.bound
                return proven
        if incumbent is not None:
            assign, cost = self._nearest_assignment(incumbent[0]) if incumbent[1] is None else (incumbent[1], None)
            if cost is not None:
                self._report_incumbent(self._objective(incumbent[0], assign, cost), self._incumbent_bound, 0.35)
        c, A, rlo, rhi, integ, vlo, vhi = self._milp()
        self._report("model built", 0.4)
        logger.debug("%s MILP: %d variables, %d rows, %d non-zeros", self.name, len(c), A.shape[0], A.nnz)
        out = solve_milp(c, A, rlo, rhi, integ, vlo, vhi, time_limit_s=self._remaining(start, time_limit_s),
                         presolve=self._inst.capacity is None)  # fmt: skip
        if out.status == 2:
            hint_zh, hint_en = self._infeasible_hint()
            zh = f"选址模型 {self.name} 无解。{hint_zh}"  # HiGHS's own message (English) stays in the English part
            en = f"The {self.name} model is infeasible: {out.message} {hint_en}"
            raise InfeasibleSitingError(zh, en)
        sign = -1.0 if self._maximise else 1.0
        bound = self._trivial_bound() if out.bound is None else sign * out.bound + self._constant()
        if self._incumbent_bound is not None:  # the heuristic's own bound (Lagrangian) may be the better one
            bound = sign * max(sign * bound, sign * self._incumbent_bound)
        results = []
        if out.x is not None:
            selected = out.x[: self._inst.m] > 0.5
            assign = self._assignment_from_x(out.x) if self._uses_assignment() else None
            results.append(
                self._result(selected, assign, start=start, optimal=out.optimal, bound=bound, solver=out.solver)
            )
        if incumbent is not None and not out.optimal:  # stopped early: the heuristic may beat HiGHS's incumbent
            solver = f"{out.solver} (stopped by the time limit; {incumbent[2]} incumbent)"
            results.append(
                self._result(incumbent[0], incumbent[1], start=start, optimal=False, bound=bound, solver=solver)
            )
        if not results:
            msg = (
                f"The {self.name} solver found no solution within {time_limit_s:g} s ({out.message}); "
                "raise `time_limit_s`."
            )
            raise TimeoutError(msg)
        self._known_bound = bound
        return min(results, key=lambda r: sign * r.objective)

    def _incumbent(self, start: float, time_limit_s: float) -> tuple[np.ndarray, np.ndarray | None, str] | None:
        """Return the heuristic's (sites, assignment or None, name) for an exact solve; None when it has none.

        Its swaps stop at ``HEURISTIC_SHARE`` of the time limit.
        """
        if self._inst.capacity is not None:
            return None
        self._swap_deadline = start + HEURISTIC_SHARE * time_limit_s
        try:
            return self._heuristic_sites(), None, "greedy+swap"
        except (ValueError, TimeoutError):
            logger.debug("%s: no heuristic incumbent", self.name, exc_info=True)
            return None
        finally:
            self._swap_deadline = None

    def _remaining(self, start: float, time_limit_s: float) -> float:
        """Seconds left of the solve's time limit (at least 0.01 so HiGHS returns at once)."""
        return max(time_limit_s - (time.perf_counter() - start), 0.01)

    def _solve_heuristic(self, start: float) -> SitingResult:
        if self._inst.capacity is not None:
            self._incumbent_bound = None
            found = self._incumbent(start, self._deadline - start)
            if found is None:
                zh = f"{self.name} 的启发式算法在容量限制内找不到分配方案；请改用精确求解 `method='exact'`。"
                en = f"The {self.name} heuristic found no assignment within the capacities; use method='exact'."
                raise InfeasibleSitingError(zh, en)
            bound = self._incumbent_bound if self._incumbent_bound is not None else self._known_bound
            return self._result(found[0], found[1], start=start, optimal=False, bound=bound, solver=found[2])
        selected = self._heuristic_sites()
        return self._result(selected, None, start=start, optimal=False, bound=self._known_bound, solver="greedy+swap")

    def _infeasible_hint(self) -> tuple[str, str]:
        """Return what to change when the model is infeasible, in Chinese and in English."""
        return (
            "请检查站点数 `p`、镇街配额、保留的现有站点 `existing`、排除的站点 `excluded` 和服务半径 `max_cost`。",
            "Check `p`, the quotas, `existing`, `excluded` and `max_cost`.",
        )

    def _constant(self) -> float:
        return 0.0

    def _trivial_bound(self) -> float:
        """Return a bound that needs no LP: each demand at its best candidate (when the solver gives none)."""
        inst = self._inst
        first = np.r_[True, inst.pi[1:] != inst.pi[:-1]] if len(inst.pi) else np.zeros(0, bool)
        best = np.full(inst.n, np.nan)
        best[inst.pi[first]] = inst.pc[first]
        return self._bound_from_best(best)

    def _bound_from_best(self, best: np.ndarray) -> float:
        """Return the objective bound given each demand's cheapest candidate cost (NaN: none); sites needed."""
        inst = self._inst
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

    def _assignment_rows(self, n_vars: int) -> tuple[np.ndarray, sp.csr_matrix, sp.csr_matrix]:
        """Rows on the pair variables ``x`` (columns ``m .. m + pairs - 1``) of the assignment formulations.

        Returns the demand positions that have pairs, Σ_j x_ij (one row per such demand) and
        x_ij - y_j (one row per pair: a demand point goes only to an open site).
        """
        inst = self._inst
        m, P = inst.m, len(inst.pi)
        rows_d = np.unique(inst.pi)
        xcol = m + np.arange(P)
        A_one = sp.csr_matrix((np.ones(P), (np.searchsorted(rows_d, inst.pi), xcol)), shape=(len(rows_d), n_vars))
        A_link = sp.csr_matrix(
            (np.r_[np.ones(P), -np.ones(P)], (np.r_[np.arange(P), np.arange(P)], np.r_[xcol, inst.pj])),
            shape=(P, n_vars),
        )
        return rows_d, A_one, A_link

    def _capacity_rows(self, n_vars: int) -> sp.csr_matrix:
        """Rows Σ_i w_i x_ij - capacity_j y_j (<= 0: each site serves at most its capacity)."""
        inst = self._inst
        m, P = inst.m, len(inst.pi)
        xcol = m + np.arange(P)
        return sp.csr_matrix(
            (np.r_[inst.weights[inst.pi], -inst.capacity], (np.r_[inst.pj, np.arange(m)], np.r_[xcol, np.arange(m)])),
            shape=(m, n_vars),
        )

    def _assignment_from_x(self, x: np.ndarray) -> np.ndarray:
        """Return each demand's assigned candidate position from the pair variables (-1: none)."""
        inst = self._inst
        xv = x[inst.m : inst.m + len(inst.pi)]
        assign = np.full(inst.n, -1)
        on = xv > 0.5
        assign[inst.pi[on]] = inst.pj[on]
        return assign

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
        # one state: a bound that meets the objective proves it; a proof closes the gap
        if gap is not None and gap <= MIP_REL_GAP:
            optimal = True
        elif optimal and gap is None:
            bound, gap = float(objective), 0.0
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

    def _sparse_greedy_swap(
        self, pi: np.ndarray, pj: np.ndarray, v: np.ndarray, cap: float, start: np.ndarray | None = None,
        deadline: float | None = None,
    ) -> np.ndarray:  # fmt: skip
        """Run `sparse_greedy_swap` on pairs ``(pi, pj)`` with values ``v`` capped at ``cap``; existing sites stay.

        The swaps stop at the earlier of ``deadline`` and the solve's own.
        """
        inst = self._inst
        swaps = min(d for d in (deadline, self._swap_deadline, self._deadline, np.inf) if d is not None)
        return sparse_greedy_swap(pi, pj, v, inst.weights, cap, n=inst.n, m=inst.m, p=self.p, fixed=inst.existing,
                                  quota=self._quota_state(), deadline=swaps, give_up=self._deadline,
                                  start=start)  # fmt: skip

    def _quota_state(self) -> Quota:
        inst = self._inst
        return Quota(inst.cand_zone_idx, inst.zone_lo, inst.zone_hi)
