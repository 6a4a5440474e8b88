"""Lagrangian branch-and-bound on sites for the p-median with few sites (Beasley 1985; Christofides & Beasley 1982).

When ``p`` is small the LP relaxation of the p-median is weak (a 2 % gap on a 900-vertex OR-Library
graph with p = 10) and its LP alone takes HiGHS minutes, while each subproblem of the Lagrangian
relaxation (assignment rows relaxed) is a sort. This search branches on one candidate at a time,
open or closed, and bounds each node by a few subgradient steps started from its parent's multipliers.

A node has sites forced open (``F``), sites closed and ``need = p - |F|`` free sites still to choose.
Each demand point ``i`` is served at most at ``cap_i = w_i · min(max_cost, cost to its nearest site
in F)``, so only pairs cheaper than ``cap_i`` matter; they shrink as the search goes down. For
multipliers ``0 <= u_i <= cap_i`` the node's bound is

    L(u) = Σ_i u_i + min over ``need`` free sites S of Σ_{j in S} ρ_j,   ρ_j = Σ_i min(0, w_i c_ij - u_i),

valid because every solution of the node costs Σ_i min(cap_i, min_{j in S} w_i c_ij) >= L(u).
After the bound, Lagrangian tests close free sites whose opening provably costs more than the
incumbent and open those whose closing does (as in the root reduction, ``heuristic.lagrangian_reduction``);
then the free site of the relaxation's solution whose closing costs most is branched on,
"open" first. Each node's relaxed solution (with ``F``) is also a solution: a cheaper one becomes the incumbent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numba import njit

#: Subgradient steps at a node below the root (started from the parent's multipliers).
NODE_ITERATIONS = 15
#: Initial step scale of those steps (Polyak step θ (incumbent - L) / |g|², θ halved after 3 steps without
#: progress); 2.0 proved the 900-vertex, p = 10 benchmark graph in a quarter of the nodes 0.3 needed.
NODE_THETA = 2.0


@dataclass(frozen=True, eq=False)
class BranchOutcome:
    """What the search found: the best sites, their cost, a proven lower bound, and whether it finished.

    ``proven``: every node was bounded at or above the incumbent (it is optimal within the tolerance);
    otherwise ``bound`` is the least bound of the nodes left when the deadline came.
    """

    sites: np.ndarray
    cost: float
    bound: float
    proven: bool
    nodes: int


@njit(cache=True, nogil=True)
def node_bound(pi, pj, a, cap, m, free, need, u0, target, goal, iterations, theta):  # pragma: no cover - compiled
    """Subgradient steps on one node's Lagrangian bound; return (bound, u, ρ, S, cost of S with the forced sites).

    ``pi``/``pj``/``a``: the node's pairs (demand, candidate, weighted cost < cap of the demand);
    ``m``: candidates; ``free``: candidate positions still free; ``need``: how many of them to open; ``u0``: starting
    multipliers; ``target``: a bound above it closes the node (the steps stop); ``goal``: the incumbent's
    cost, which the Polyak steps aim at; ``cap``: each demand's
    cost with the forced sites alone (``max_cost`` where none). The cost returned is that of opening
    the best relaxed solution's sites plus the forced ones (a feasible solution).
    """
    n = cap.shape[0]
    u = np.minimum(u0, cap)
    best = -np.inf
    best_u = u.copy()
    best_rho = np.zeros(m)
    best_sel = np.zeros(need, np.int64)
    rho = np.zeros(m)
    open_ = np.zeros(m, np.bool_)
    served = np.zeros(n)
    stall = 0
    for _ in range(iterations):
        rho[:] = 0.0
        for k in range(a.shape[0]):
            r = a[k] - u[pi[k]]
            if r < 0.0:
                rho[pj[k]] += r
        order = np.argsort(rho[free], kind="mergesort")
        sel = free[order[:need]]
        val = u.sum()
        for j in sel:
            val += rho[j]
        if val > best + 1e-12 * max(abs(val), 1.0):
            best = val
            best_u[:] = u
            best_rho[:] = rho
            best_sel[:] = sel
            stall = 0
        else:
            stall += 1
            if stall >= 3:
                theta /= 2.0
                stall = 0
        if best > target:
            break
        open_[:] = False
        for j in sel:
            open_[j] = True
        served[:] = 0.0
        for k in range(a.shape[0]):
            if open_[pj[k]] and a[k] < u[pi[k]]:
                served[pi[k]] += 1.0
        norm = 0.0
        for i in range(n):
            g = 1.0 - served[i]
            if (g > 0.0 and u[i] >= cap[i]) or (g < 0.0 and u[i] <= 0.0):
                g = 0.0
            served[i] = g
            norm += g * g
        if norm == 0.0:
            break
        step = theta * (goal - val) / norm
        if step <= 0.0:
            break
        for i in range(n):
            u[i] = min(max(u[i] + step * served[i], 0.0), cap[i])
    # the cost of the best relaxed solution's sites together with the forced ones
    open_[:] = False
    for j in best_sel:
        open_[j] = True
    cost_i = cap.copy()
    for k in range(a.shape[0]):
        if open_[pj[k]] and a[k] < cost_i[pi[k]]:
            cost_i[pi[k]] = a[k]
    return best, best_u, best_rho, best_sel, cost_i.sum()


def branch_and_bound(
    pi: np.ndarray,
    pj: np.ndarray,
    a: np.ndarray,
    cap: np.ndarray,
    *,
    m: int,
    p: int,
    fixed: np.ndarray,
    incumbent: np.ndarray,
    ub: float,
    u: np.ndarray,
    step: float,
    tolerance: float,
    deadline: float,
    report: Callable[[float, float], None] | None = None,
) -> BranchOutcome:
    """Search the sites of a p-median exactly by Lagrangian branch-and-bound, until proven or ``deadline``.

    Parameters
    ----------
    pi, pj, a
        Pairs: demand position, candidate position, weighted cost (``w_i c_ij``), for costs below ``cap``.
    cap
        Each demand's weighted cost when no chosen site is cheaper (``w_i · max_cost``).
    m, p
        Candidates and sites to open.
    fixed
        Per candidate: -1 free, 0 closed, 1 open (existing sites and the root reduction's tests).
    incumbent, ub
        The best sites known (boolean per candidate) and their cost.
    u
        Multipliers to start from (the root's best, ``heuristic.Reduction.u``).
    step
        The objective's granularity (1 when whole): a better solution costs at most ``ub - step``.
    tolerance
        With ``step`` 0, a node whose bound is within this share of ``ub`` is closed.
    deadline
        ``time.perf_counter()`` value at which the search stops unproven.
    report
        Called with (incumbent cost, least open bound) at most once a second as they change.
    """
    pi, pj, a = pi.astype(np.int64), pj.astype(np.int64), a.astype(float)
    ub = float(ub)
    best_sites = incumbent.copy()

    def target() -> float:  # a node whose bound exceeds this holds nothing better than the incumbent
        return ub - step + 1e-9 * max(abs(ub), 1.0) if step else ub - tolerance * abs(ub)

    forced, closed = fixed == 1, fixed == 0
    pi, pj, a, cap = narrow(pi, pj, a, cap.astype(float), forced, closed, np.flatnonzero(forced))
    # one stack entry: forced, closed, multipliers, pairs, demand caps, the parent's bound
    stack = [(forced, closed, u.astype(float), pi, pj, a, cap, -np.inf)]
    nodes, root_bound, last_report = 0, -np.inf, time.perf_counter()

    def open_bound() -> float:  # the least bound of the nodes left (the root's until it is bounded)
        return min(root_bound if entry[-1] == -np.inf else entry[-1] for entry in stack)

    while stack:
        now = time.perf_counter()
        if now > deadline:
            return BranchOutcome(best_sites, ub, min(open_bound(), ub), False, nodes)
        if report is not None and now - last_report >= 1.0:
            report(ub, min(open_bound(), ub))
            last_report = now
        forced, closed, u_node, qi, qj, qa, qcap, parent = stack.pop()
        if parent > target():
            continue
        nodes += 1
        need = p - int(forced.sum())
        free = np.flatnonzero(~forced & ~closed)
        if need < 0 or len(free) < need:
            continue
        if need == 0:  # every site chosen: the node is one solution
            cost = float(qcap.sum())
            if cost < ub:
                ub, best_sites = cost, forced.copy()
            continue
        bound, u_node, rho, sel, cost = node_bound(qi, qj, qa, qcap, m, free, need, u_node, target(), ub,
                                                   NODE_ITERATIONS if nodes > 1 else 1, NODE_THETA)  # fmt: skip
        if nodes == 1:
            root_bound = bound
        if cost < ub:
            ub = float(cost)
            best_sites = forced.copy()
            best_sites[sel] = True
        if bound > target():
            continue
        chosen = np.zeros(m, bool)
        chosen[sel] = True
        out = free[~chosen[free]]
        slack = target() - bound
        worst_in = rho[sel].max()
        best_out = rho[out].min() if len(out) else np.inf
        closed = closed.copy()
        closed[out[rho[out] - worst_in > slack]] = True
        opened = sel[best_out - rho[sel] > slack]
        candidates = np.setdiff1d(sel, opened)
        if len(opened):
            forced = forced.copy()
            forced[opened] = True
        qi, qj, qa, qcap = narrow(qi, qj, qa, qcap, forced, closed, opened)
        if not len(candidates):  # the tests settled every site of the relaxation: bound the node again
            stack.append((forced, closed, u_node, qi, qj, qa, qcap, bound))
            continue
        penalty = best_out - rho[candidates]
        k = int(np.argmax(penalty))
        j = int(candidates[k])
        without = closed.copy()
        without[j] = True
        stack.append((forced, without, u_node, *narrow(qi, qj, qa, qcap, forced, without, opened[:0]),
                      bound + float(penalty[k])))  # fmt: skip
        with_j = forced.copy()
        with_j[j] = True
        stack.append((with_j, closed, u_node, *narrow(qi, qj, qa, qcap, with_j, closed, np.array([j])), bound))
    return BranchOutcome(best_sites, ub, ub, True, nodes)


def narrow(
    pi: np.ndarray, pj: np.ndarray, a: np.ndarray, cap: np.ndarray, forced: np.ndarray, closed: np.ndarray,
    opened: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Return the pairs and caps of a node whose ``forced`` sites include ``opened`` and whose ``closed`` are closed.

    Each demand's cap drops to its cost at the opened sites (none: the caps stay); only pairs of free
    sites cheaper than their demand's cap stay.
    """
    if len(opened):
        cap = cap.copy()
        at = np.isin(pj, opened)
        np.minimum.at(cap, pi[at], a[at])
    keep = ~forced[pj] & ~closed[pj] & (a < cap[pi])
    return pi[keep], pj[keep], a[keep], cap
