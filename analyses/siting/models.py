"""The four location models (max coverage, p-median, set cover, p-center), network costs and before/after.

Every model is built with the constructor they share, ``from_cost_matrix`` (``base.SitingModel``),
or ``from_network``; a model only declares which options it takes and its defaults, its MILP,
objective and heuristic.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import replace as _replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from analyses.siting.base import CAPACITY_SHARE, HEURISTIC_SHARE, SitingModel
from analyses.siting.branching import branch_and_bound
from analyses.siting.capacity import Pairs, capacitated_cover, capacitated_p_median
from analyses.siting.heuristic import (
    Reduction,
    greedy_swap,
    iterated_swaps,
    lagrangian_reduction,
    nearest_pairs,
    past,
)
from analyses.siting.results import InfeasibleSitingError, SitingComparison, SitingResult
from analyses.siting.solver import MIP_REL_GAP, solve_milp, solver_name
from geo.routing import COST

if TYPE_CHECKING:
    import geopandas as gpd

    from analyses.costs import Placer

logger = logging.getLogger(__name__)

#: Share of an exact p-median solve's time limit by which the Lagrangian bound stops.
BOUND_SHARE = 0.5
#: Seconds the p-median heuristic spends at most (iterated swaps, then Lagrangian-guided swaps).
HEURISTIC_BUDGET_S = 1.5
#: Share of that budget for the iterated swaps on each demand point's nearest candidates; the rest
#: goes to the Lagrangian bound (which gives the heuristic's gap) and swaps from its site sets.
ITERATED_SHARE = 0.7
#: Candidates kept per demand point for the iterated swaps: this many times the candidates per site.
NEAREST_PER_SITE = 4
#: Before an exact solve the iterated swaps stop after this many rounds without a better incumbent.
EXACT_PATIENCE = 20
#: Up to this many sites (and without zone quotas) an exact p-median solve goes on from the Lagrangian
#: root by branch-and-bound on sites (``branching``); with more, HiGHS solves the reduced radius model
#: (its LP is tight there, and the search would go too deep).
BRANCH_MAX_P = 20
#: Seconds of the time limit kept back from the search for building the result.
RESULT_MARGIN_S = 0.1


class MaxCoverage(SitingModel):
    """Maximal covering location (MCLP): open ``p`` sites covering the most demand weight within ``threshold``.

    Objective: covered weight (maximised). A demand point is covered when a chosen site lies within
    ``threshold`` along the network.
    """

    name: ClassVar[str] = "max_coverage"
    _maximise: ClassVar[bool] = True
    _needs_threshold: ClassVar[bool] = True
    _takes_max_cost: ClassVar[bool] = False

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

    def _bound_from_best(self, best: np.ndarray) -> float:
        return float(self._inst.weights[np.nan_to_num(best, nan=np.inf) <= self.threshold].sum())

    def _objective(self, selected, assign, cost) -> float:
        return float(self._inst.weights[self._covered(assign, cost)].sum())

    def _heuristic_sites(self) -> np.ndarray:
        inst = self._inst
        cov = self._cover_pairs()
        # cost 0 where covered, 1 (the cap) otherwise: the least uncovered weight is the most covered
        return self._sparse_greedy_swap(inst.pi[cov], inst.pj[cov], np.zeros(int(cov.sum())), 1.0)


class PMedian(SitingModel):
    """p-median: open ``p`` sites minimising Σ weight × network cost to the assigned site.

    Demand with no chosen site within ``max_cost`` (or the cost table's cutoff) is unserved and
    counts at ``max_cost``: the objective is Σ weight × min(cost to the site, max_cost), the classic
    p-median on costs capped at ``max_cost``. With ``capacity``, each site serves at most that much
    demand weight and each demand point goes to one site.
    """

    name: ClassVar[str] = "p_median"

    _takes_capacity: ClassVar[bool] = True

    @classmethod
    def _default_max_cost(cls, costs, max_cost, threshold):
        """Return ``max_cost``, else the table's ``attrs["cutoff"]``, else its largest cost (0 when empty)."""
        if max_cost is None:
            max_cost = costs.attrs.get("cutoff") if len(costs) else None
            if max_cost is None and COST in costs.columns:
                max_cost = float(pd.to_numeric(costs[COST]).max()) if len(costs) else 0.0
        return max_cost

    def _uses_assignment(self) -> bool:
        return self._inst.capacity is not None

    def _incumbent(self, start: float, time_limit_s: float) -> tuple[np.ndarray, np.ndarray | None, str] | None:
        """With capacities: the Lagrangian heuristic from the uncapacitated sites (its bound kept too)."""
        inst = self._inst
        if inst.capacity is None:
            return super()._incumbent(start, time_limit_s)
        deadline = min(self._deadline or np.inf, start + CAPACITY_SHARE * time_limit_s)
        try:
            sites = self._sparse_greedy_swap(inst.pi, inst.pj, inst.pc, self.max_cost,
                                             deadline=start + HEURISTIC_SHARE * time_limit_s)  # fmt: skip
        except (InfeasibleSitingError, TimeoutError):
            return None
        pairs = Pairs(inst.pi, inst.pj, inst.pc, inst.weights, inst.capacity)
        found = capacitated_p_median(pairs, p=int(self.p), penalty=float(self.max_cost), fixed=inst.existing,
                                     quota=self._quota_state(), start=sites, deadline=deadline)  # fmt: skip
        self._incumbent_bound = found.bound if np.isfinite(found.bound) else None
        self._report_incumbent(found.objective, self._incumbent_bound, 0.35)
        return found.selected, found.assign, "Lagrangian heuristic with transportation assignment"

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
        try:  # shares of the time limit: the swaps up to a quarter, the subgradient up to half
            swaps = start + min(HEURISTIC_SHARE * time_limit_s, HEURISTIC_BUDGET_S)
            incumbent = self._iterated_sites(deadline=swaps, patience=EXACT_PATIENCE)
        except (InfeasibleSitingError, TimeoutError):
            return super()._solve_exact(start, time_limit_s)
        ub = self._cost_of(incumbent)
        step = self._granularity()
        self._report_incumbent(ub, None, 0.32)
        red = lagrangian_reduction(self, incumbent, ub, deadline=start + BOUND_SHARE * time_limit_s,
                                   improve=self._local_search, step=step,
                                   report=lambda u, b: self._report_incumbent(u, b, 0.33))  # fmt: skip
        incumbent, ub = red.incumbent, red.ub
        # with whole-number weights and costs, the objective is whole: round the bound up
        lagr_bound = float(np.ceil(red.bound - 1e-6)) if step else red.bound
        self._report_incumbent(ub, lagr_bound, 0.35)
        logger.debug(
            "p-median Lagrangian bound %.10g vs incumbent %.10g: %d of %d candidates closed, %d opened",
            red.bound, ub, int((red.fixed == 0).sum()), inst.m, int((red.fixed == 1).sum()),
        )  # fmt: skip
        note = f"Lagrangian reduction: {int((red.fixed != 0).sum())} of {inst.m} candidates left"
        if ub - lagr_bound <= MIP_REL_GAP * abs(ub):
            self._known_bound = lagr_bound
            return self._result(incumbent, None, start=start, optimal=True, bound=lagr_bound,
                                solver=f"greedy+swap proven by a Lagrangian bound ({note})")  # fmt: skip
        if self._branches(red):
            return self._branch(red, lagr_bound, start=start, time_limit_s=time_limit_s, note=note)
        keep = red.fixed[inst.pj] != 0
        reduced_inst = _replace(inst, pi=inst.pi[keep], pj=inst.pj[keep], pc=inst.pc[keep])
        reduced = PMedian(reduced_inst, p=self.p, threshold=self.threshold, max_cost=self.max_cost,
                          parameters=self.parameters, progress=self._progress)  # fmt: skip
        reduced._fixed = red.fixed
        reduced._deadline = self._deadline
        try:
            result = reduced._solve_exact(start, time_limit_s)
        except TimeoutError:  # HiGHS found nothing in the time left: the incumbent stands, with the bound
            result = None
        except InfeasibleSitingError:  # no solution better than the incumbent survives the fixing
            self._known_bound = ub
            return self._result(incumbent, None, start=start, optimal=True, bound=ub,
                                solver=f"greedy+swap proven by Lagrangian fixing ({note})")  # fmt: skip
        # a solution better than the incumbent keeps the fixed sites, so the reduced optimum bounds it
        bound = lagr_bound if result is None or result.bound is None else max(result.bound, lagr_bound)
        if result is None or result.objective >= ub:
            proven = result is not None and result.optimal
            bound = ub if proven else min(bound, ub)
            self._known_bound = bound
            solver = f"greedy+swap, {'proven by ' if proven else ''}{solver_name()}"
            solver += "" if proven else " stopped by the time limit"
            return self._result(incumbent, None, start=start, optimal=proven, bound=bound, solver=f"{solver} ({note})")
        self._known_bound = bound
        return self._result(np.isin(inst.cand_ids, np.array(result.selected, dtype=object)), None, start=start,
                            optimal=result.optimal, bound=bound, solver=f"{result.solver} ({note})")  # fmt: skip

    def _branches(self, red: Reduction) -> bool:
        """Whether the exact solve goes on by Lagrangian branch-and-bound: few sites, no zone quotas."""
        return red.u is not None and int(self.p) <= BRANCH_MAX_P and not len(self._inst.zone_names)

    def _branch(
        self, red: Reduction, lagr_bound: float, *, start: float, time_limit_s: float, note: str
    ) -> SitingResult:
        """Finish the exact solve by Lagrangian branch-and-bound on sites (``branching``), within the time limit.

        The search starts from the root's multipliers and fixing; the result is proven or carries the
        least bound of the nodes left.
        """
        inst = self._inst
        a = inst.weights[inst.pi] * inst.pc
        cap = inst.weights * self.max_cost
        pairs = a < cap[inst.pi]  # a pair at max_cost or beyond serves no cheaper than unserved

        def report(ub: float, bound: float) -> None:
            self._report_incumbent(ub, max(bound, lagr_bound), 0.5)

        step = self._granularity()
        found = branch_and_bound(inst.pi[pairs], inst.pj[pairs], a[pairs], cap, m=inst.m, p=int(self.p),
                                 fixed=np.where(inst.existing, 1, red.fixed), incumbent=red.incumbent, ub=red.ub,
                                 u=red.u, step=step, tolerance=MIP_REL_GAP,
                                 deadline=start + time_limit_s - RESULT_MARGIN_S, report=report)  # fmt: skip
        bound = found.cost if found.proven else max(lagr_bound, found.bound)
        if step and not found.proven:
            bound = float(np.ceil(bound - 1e-6))
        self._known_bound = bound
        how = "proven" if found.proven else "stopped by the time limit"
        solver = f"Lagrangian branch-and-bound, {how} after {found.nodes:,} nodes ({note})"
        return self._result(found.sites, None, start=start, optimal=found.proven, bound=bound, solver=solver)

    def _solve_heuristic(self, start: float) -> SitingResult:
        """Greedy + swap, then swaps from the site sets of a Lagrangian relaxation (its bound gives the gap).

        Stops after ``HEURISTIC_BUDGET_S`` (or the time limit, when shorter).
        """
        inst = self._inst
        if inst.capacity is not None or not len(inst.pi):
            return super()._solve_heuristic(start)
        stop = min(self._deadline or np.inf, start + HEURISTIC_BUDGET_S)
        self._swap_deadline = stop
        try:
            sites = self._iterated_sites(deadline=start + ITERATED_SHARE * (stop - start))
            step = self._granularity()
            red = lagrangian_reduction(self, sites, self._cost_of(sites), deadline=stop, improve=self._local_search,
                                       step=step, tests=False, improve_every=4)  # fmt: skip
        finally:
            self._swap_deadline = None
        bound = float(np.ceil(red.bound - 1e-6)) if step and np.isfinite(red.bound) else red.bound
        bound = max(bound, self._known_bound if self._known_bound is not None else -np.inf)
        bound = bound if np.isfinite(bound) else None
        return self._result(red.incumbent, None, start=start, optimal=False, bound=bound,
                            solver="greedy+swap, swaps from Lagrangian site sets")  # fmt: skip

    def _iterated_sites(self, *, deadline: float, patience: int | None = None) -> np.ndarray:
        """Return sites from iterated swaps on each demand point's nearest candidates, polished on all pairs.

        ``patience``: stop after that many rounds without a better solution (``iterated_swaps``).

        Raises ``TimeoutError``/``InfeasibleSitingError`` as the greedy start does.
        """
        inst = self._inst
        k = min(inst.m, max(10, int(np.ceil(NEAREST_PER_SITE * inst.m / max(int(self.p), 1)))))
        pi, pj, pc = nearest_pairs(inst.pi, inst.pj, inst.pc, n=inst.n, k=k)
        start = self._sparse_greedy_swap(pi, pj, pc, self.max_cost, deadline=deadline)

        def search(sites: np.ndarray) -> np.ndarray:
            return self._sparse_greedy_swap(pi, pj, pc, self.max_cost, start=sites, deadline=deadline)

        sites = iterated_swaps(search, self._cost_of, start, fixed=inst.existing, quota=self._quota_state(),
                               deadline=deadline, patience=patience)  # fmt: skip
        return self._sparse_greedy_swap(inst.pi, inst.pj, inst.pc, self.max_cost, start=sites)

    def _cost_of(self, selected: np.ndarray) -> float:
        """Return the objective of opening ``selected`` (each demand at its nearest open site)."""
        assign, cost = self._nearest_assignment(selected)
        return self._objective(selected, assign, cost)

    def _local_search(self, sites: np.ndarray) -> tuple[np.ndarray, float]:
        """Return ``sites`` improved by swaps (the heuristic's interchange) and their objective."""
        inst = self._inst
        better = self._sparse_greedy_swap(inst.pi, inst.pj, inst.pc, self.max_cost, start=sites)
        return better, self._cost_of(better)

    def _granularity(self) -> float:
        """Return 1 when every weight, cost and ``max_cost`` is a whole number (the objective is whole), else 0."""
        inst = self._inst
        values = np.r_[inst.weights, inst.pc, [self.max_cost]]
        return 1.0 if np.all(values == np.round(values)) else 0.0

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
        k = len(np.unique(inst.pi))
        n_vars = m + P + k
        w = inst.weights
        rows_d, A_one, A_link = self._assignment_rows(n_vars)
        c = np.r_[np.zeros(m), w[inst.pi] * inst.pc, w[rows_d] * self.max_cost]
        # Σ_j x_ij + u_i = 1
        A_one = A_one + sp.csr_matrix((np.ones(k), (np.arange(k), m + P + np.arange(k))), shape=(k, n_vars))
        blocks, lo, hi = self._site_rows(n_vars)
        blocks += [A_one, A_link]
        lo += [np.ones(k), np.full(P, -np.inf)]
        hi += [np.ones(k), np.zeros(P)]
        integ = np.r_[np.ones(m), np.zeros(P + k)]
        if inst.capacity is not None:
            blocks.append(self._capacity_rows(n_vars))
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

    def _bound_from_best(self, best: np.ndarray) -> float:
        return float(self._inst.weights @ np.where(np.isnan(best), self.max_cost, best))

    def _objective(self, selected, assign, cost) -> float:
        w = self._inst.weights
        return float(np.sum(w * np.where(assign >= 0, np.nan_to_num(cost), self.max_cost)))

    def _heuristic_sites(self) -> np.ndarray:
        inst = self._inst
        return self._sparse_greedy_swap(inst.pi, inst.pj, inst.pc, self.max_cost)


class SetCover(SitingModel):
    """Location set covering (LSCP): the fewest sites so that all coverable demand lies within ``threshold``.

    Demand with no candidate within ``threshold`` cannot be covered; it is left out and reported as
    unserved (``parameters["uncoverable"]``). With ``capacity``, each site serves at most that much
    demand weight and each demand point goes to one covering site.
    """

    name: ClassVar[str] = "set_cover"

    _takes_p: ClassVar[bool] = False
    _needs_threshold: ClassVar[bool] = True
    _takes_max_cost: ClassVar[bool] = False
    _takes_capacity: ClassVar[bool] = True

    @classmethod
    def _default_max_cost(cls, costs, max_cost, threshold):
        """Return ``threshold``: demand beyond it cannot be covered."""
        return threshold

    def _extra_parameters(self) -> dict[str, Any]:
        """Return ``uncoverable``: demand points with no candidate within ``threshold``."""
        has = np.zeros(self._inst.n, bool)
        has[self._inst.pi] = True
        return {"uncoverable": int((~has).sum())}

    def _uses_assignment(self) -> bool:
        return self._inst.capacity is not None

    def _incumbent(self, start: float, time_limit_s: float) -> tuple[np.ndarray, np.ndarray | None, str] | None:
        """With capacities: sites added to the greedy cover until the transportation assignment serves all."""
        inst = self._inst
        if inst.capacity is None:
            return super()._incumbent(start, time_limit_s)
        try:
            sites = self._heuristic_sites()
        except ValueError:
            return None
        pairs = Pairs(inst.pi, inst.pj, inst.pc, inst.weights, inst.capacity)
        deadline = min(self._deadline or np.inf, start + CAPACITY_SHARE * time_limit_s)
        found = capacitated_cover(pairs, fixed=inst.existing, quota=self._quota_state(), start=sites,
                                  deadline=deadline)  # fmt: skip
        if found is None:
            return None
        return found[0], found[1], "greedy cover with transportation assignment"

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
        _, A_one, A_link = self._assignment_rows(n_vars)
        blocks, lo, hi = self._site_rows(n_vars)
        blocks += [A_one, A_link, self._capacity_rows(n_vars)]
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

    def _objective(self, selected, assign, cost) -> float:
        return float(selected.sum())

    def _infeasible_hint(self) -> tuple[str, str]:
        return (
            "镇街配额、容量或排除的站点使部分可覆盖的需求点无法被覆盖；请放宽这些限制或提高阈值 `threshold`。",
            "Quotas, capacities or exclusions leave coverable demand uncovered; relax them or raise `threshold`.",
        )

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
                zh = "镇街配额使部分可覆盖的需求点无法被覆盖；请放宽配额或提高阈值 `threshold`。"
                en = "The zone quotas leave some coverable demand uncovered; relax them or raise `threshold`."
                raise InfeasibleSitingError(zh, en)
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


class PCenter(SitingModel):
    """p-center: open ``p`` sites minimising the largest network cost from a demand point to its site.

    Unweighted (weights only enter the shares). Demand with no candidate within ``max_cost`` is
    left out and reported unserved; every other demand point must be served.
    """

    name: ClassVar[str] = "p_center"

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
        _, A_one, A_link = self._assignment_rows(n_vars)
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

    def _bound_from_best(self, best: np.ndarray) -> float:
        return float(np.nanmax(best)) if np.isfinite(best).any() else 0.0

    def _solve_exact(self, start: float, time_limit_s: float) -> SitingResult:
        """Bisection over the sorted distinct costs with a set-cover feasibility check at each radius.

        The optimal radius is one of the costs: the least cost ``r`` at which ``p`` sites (quotas,
        existing and excluded sites kept) cover every servable demand point within ``r``. It is at
        least the largest nearest-candidate cost (lower end) and at most the heuristic's radius (upper
        end). Each check is a small set-cover MILP on the pairs within ``r`` only, so memory stays
        near the cost table's. When the time limit stops the bisection, the best radius found is
        returned with the least radius not yet proven infeasible as its bound.
        """
        inst = self._inst
        if not len(inst.pi):
            return super()._solve_exact(start, time_limit_s)
        first = np.r_[True, inst.pi[1:] != inst.pi[:-1]]
        levels = np.unique(inst.pc[inst.pc >= inst.pc[first].max()])
        best: tuple[np.ndarray, float] | None = None
        start_sites = self._incumbent(start, time_limit_s)
        if start_sites is not None:
            value = self._objective(start_sites[0], None, self._nearest_assignment(start_sites[0])[1])
            if np.isfinite(value):
                best = (start_sites[0], value)
        lo, hi = 0, len(levels) - 1 if best is None else int(np.searchsorted(levels, best[1]))
        if best is None:
            sites = self._cover_within(levels[hi], start, time_limit_s)
            if sites is None:
                hint_zh, hint_en = self._infeasible_hint()
                zh = f"选址模型 {self.name} 无解。{hint_zh}"
                en = f"The {self.name} model is infeasible. {hint_en}"
                raise InfeasibleSitingError(zh, en)
            if sites is False:
                msg = f"The {self.name} solver found no solution within {time_limit_s:g} s; raise `time_limit_s`."
                raise TimeoutError(msg)
            best = (sites, self._objective(sites, None, self._nearest_assignment(sites)[1]))
            hi = int(np.searchsorted(levels, best[1]))
        span, checks = max(hi - lo, 1), 0
        while lo < hi and not past(self._deadline):
            self._report_incumbent(best[1], float(levels[lo]), 0.3 + 0.65 * (1 - (hi - lo) / span))
            mid = (lo + hi) // 2
            sites = self._cover_within(levels[mid], start, time_limit_s)
            checks += 1
            if sites is None:
                lo = mid + 1
            elif sites is False:
                break
            else:
                best = (sites, self._objective(sites, None, self._nearest_assignment(sites)[1]))
                hi = int(np.searchsorted(levels, best[1]))
        bound = float(levels[lo])
        self._known_bound = bound
        solver = f"bisection over {len(levels)} costs, {checks} set-cover checks by {solver_name()}"
        return self._result(best[0], None, start=start, optimal=lo >= hi, bound=bound, solver=solver)

    def _cover_within(self, radius: float, start: float, time_limit_s: float) -> np.ndarray | None | bool:
        """Return ``p`` sites meeting the constraints that reach every servable point within ``radius``.

        None when proven impossible, False when the time limit ran out first. A greedy cover of at
        most ``p`` sites answers at once (without zone quotas); otherwise the least cover (Σ y ≤ p,
        the quotas) is a MILP whose LP bound prunes, padded to ``p`` sites.
        """
        inst = self._inst
        m = inst.m
        near = inst.pc <= radius
        pi, pj = inst.pi[near], inst.pj[near]
        rows_d = np.unique(inst.pi)
        k = len(rows_d)
        if len(np.unique(pi)) < k:
            return None
        if not len(inst.zone_names):
            greedy = _greedy_cover(pi, pj, inst.n, m, inst.existing, int(self.p))
            if greedy is not None:
                return self._pad(greedy)
        A_cov = sp.csr_matrix((np.ones(len(pi)), (np.searchsorted(rows_d, pi), pj)), shape=(k, m))
        blocks, lo, hi = self._site_rows(m)
        lo[0] = np.zeros(1)  # Σ y <= p: the least cover, padded afterwards
        ylo, yhi = self._site_bounds()
        out = solve_milp(np.ones(m), sp.vstack([*blocks, A_cov], format="csr"),
                         np.concatenate([*lo, np.ones(k)]), np.concatenate([*hi, np.full(k, np.inf)]),
                         np.ones(m), ylo, yhi, time_limit_s=self._remaining(start, time_limit_s))  # fmt: skip
        if out.status == 2:
            return None
        if out.x is None:
            return False
        return self._pad(out.x[:m] > 0.5)

    def _pad(self, S: np.ndarray) -> np.ndarray:
        """Add sites to ``S`` up to ``p`` within the zone quotas (more sites never lengthen a trip)."""
        S = S.copy()
        quota = self._quota_state()
        while S.sum() < self.p:
            allowed = np.flatnonzero(quota.addable(np.flatnonzero(S), int(self.p - S.sum())))
            if not len(allowed):
                break
            S[allowed[0]] = True
        return S

    def _objective(self, selected, assign, cost) -> float:
        inst = self._inst
        has = np.zeros(inst.n, bool)
        has[inst.pi] = True
        served = cost[has]
        if np.isnan(served).any():
            return float("inf")
        return float(served.max()) if len(served) else 0.0

    def _infeasible_hint(self) -> tuple[str, str]:
        return (
            "任何一组站点都无法在服务半径 `max_cost` 内到达全部需求点；请提高 `max_cost` 或站点数 `p`。",
            "No choice of sites reaches every demand point within `max_cost`; raise it or `p`.",
        )

    def _heuristic_sites(self) -> np.ndarray:
        inst = self._inst
        big = 2.0 * (float(inst.pc.max()) if len(inst.pc) else 1.0) + 1.0
        D, rows = self._dense(inst.pc, big)
        swaps = self._swap_deadline or self._deadline
        return greedy_swap(D, np.ones(len(rows)), big, p=self.p, fixed=inst.existing, quota=self._quota_state(),
                           agg="max", deadline=swaps, give_up=self._deadline)  # fmt: skip


def _greedy_cover(pi: np.ndarray, pj: np.ndarray, n: int, m: int, start: np.ndarray, p: int) -> np.ndarray | None:
    """Return a cover of every demand in ``pi`` by at most ``p`` sites, added greedily to ``start``; None if over."""
    S = start.copy()
    need = np.zeros(n, bool)
    need[pi] = True
    need[pi[S[pj]]] = False
    while need.any():
        if S.sum() >= p:
            return None
        gain = np.bincount(pj, need[pi], minlength=m)
        j = int(np.argmax(gain))
        S[j] = True
        need[pi[pj == j]] = False
    return S


MODELS: dict[str, type[SitingModel]] = {
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
    **options: Any,
) -> SitingModel:
    """Build the siting model named ``model`` on network costs (``SitingModel.from_network`` of its class).

    Raises
    ------
    ValueError
        If ``model`` is not one of ``MODELS``.
    """
    if model not in MODELS:
        msg = f"`model` must be one of {sorted(MODELS)!r}; got {model!r}."
        raise ValueError(msg)
    return MODELS[model].from_network(placer, demand, candidates, **options)


def compare_with_current(model: SitingModel, result: SitingResult, current_sites: Collection[str]) -> SitingComparison:
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
