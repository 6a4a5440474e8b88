"""Capacitated siting: single-sourcing assignment by a transportation LP, and the heuristics that use it.

``assign_with_capacity`` sends each demand point to one open site without exceeding any site's
capacity at least total cost (unserved demand at a penalty): the transportation LP (HiGHS) first,
whose vertex solution splits at most one demand point per open site, then a small MILP for the
split points on what capacity is left. ``capacitated_p_median`` is a Lagrangian heuristic with a
bound (assignment rows relaxed, one fractional knapsack per site, Polyak subgradient steps), whose
site sets are assigned by the transportation LP; ``capacitated_cover`` adds sites to a greedy cover
until the transportation LP serves every coverable point, then drops the sites it can spare.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from analyses.siting.heuristic import cheapest_sites, past
from analyses.siting.problem import Quota
from analyses.siting.solver import solve_milp

#: Seconds given to the small MILP that places the demand points the transportation LP split.
SPLIT_MILP_S = 2.0
_EPS = 1e-7


@dataclass(frozen=True, eq=False)
class Pairs:
    """The cost pairs (sorted by demand, then cost), demand weights and site capacities of an instance."""

    pi: np.ndarray
    pj: np.ndarray
    pc: np.ndarray
    weights: np.ndarray
    capacity: np.ndarray

    @property
    def n(self) -> int:
        """Number of demand points."""
        return len(self.weights)

    @property
    def m(self) -> int:
        """Number of candidate sites."""
        return len(self.capacity)


def _transport(pairs: Pairs, keep: np.ndarray, penalty: float, cap: np.ndarray, deadline: float | None, *, integral):
    """Solve the (integral or fractional) assignment of the demand with pairs in ``keep`` (x per pair, u per demand)."""
    i, j, c = pairs.pi[keep], pairs.pj[keep], pairs.pc[keep]
    w = pairs.weights
    rows = np.unique(i)
    k, P = len(rows), len(i)
    sites = np.unique(j)
    cost = np.r_[w[i] * c, w[rows] * penalty]
    A_one = sp.csr_matrix(
        (np.ones(P + k), (np.r_[np.searchsorted(rows, i), np.arange(k)], np.r_[np.arange(P), P + np.arange(k)])),
        shape=(k, P + k),
    )
    A_cap = sp.csr_matrix((w[i], (np.searchsorted(sites, j), np.arange(P))), shape=(len(sites), P + k))
    limit = SPLIT_MILP_S if integral else 3600.0
    if deadline is not None:
        limit = min(limit, max(deadline - time.perf_counter(), 0.0))
    out = solve_milp(cost, sp.vstack([A_one, A_cap], format="csr"), np.r_[np.ones(k), np.full(len(sites), -np.inf)],
                     np.r_[np.ones(k), cap[sites]], np.full(P + k, 1.0 if integral else 0.0), np.zeros(P + k),
                     np.ones(P + k), time_limit_s=limit)  # fmt: skip
    return out.x, i, j, rows


def assign_with_capacity(
    pairs: Pairs, selected: np.ndarray, penalty: float, *, deadline: float | None = None
) -> np.ndarray | None:
    """Return each demand's open site (-1: unserved) at least Σ w·cost + penalty·unserved weight, capacities held.

    Single sourcing: each demand point goes to one site. The transportation LP's vertex solution
    leaves at most one split point per open site; those are placed by a small MILP on the capacity
    left (or, out of time, at the cheapest open site with room). None when the LP got no time.
    """
    assign = np.full(pairs.n, -1)
    keep = selected[pairs.pj]
    if not keep.any():
        return assign
    x, i, j, rows = _transport(pairs, keep, penalty, pairs.capacity.astype(float), deadline, integral=False)
    if x is None:
        return None
    xp = x[: len(i)]
    whole = xp > 1 - _EPS
    assign[i[whole]] = j[whole]
    served = np.zeros(pairs.n, bool)
    served[i[whole]] = True
    unserved_whole = np.zeros(pairs.n, bool)
    unserved_whole[rows[x[len(i) :] > 1 - _EPS]] = True
    split = np.zeros(pairs.n, bool)
    split[rows] = True
    split &= ~served & ~unserved_whole
    if not split.any():
        return assign
    w = pairs.weights
    left = pairs.capacity - np.bincount(assign[served], w[served], minlength=pairs.m)
    keep_split = keep & split[pairs.pi]
    xs, i2, j2, rows2 = _transport(pairs, keep_split, penalty, left, deadline, integral=True)
    if xs is not None:
        on = xs[: len(i2)] > 0.5
        assign[i2[on]] = j2[on]
        return assign
    for d in np.flatnonzero(split):  # out of time: cheapest open site with room (pairs are sorted by cost)
        mine = keep_split & (pairs.pi == d)
        for site in pairs.pj[mine]:
            if left[site] >= w[d] - _EPS:
                assign[d] = site
                left[site] -= w[d]
                break
    return assign


def assignment_cost(pairs: Pairs, assign: np.ndarray, penalty: float) -> float:
    """Return Σ w·cost of an assignment, unserved demand at ``penalty``."""
    cost = np.full(pairs.n, penalty)
    ok = assign[pairs.pi] == pairs.pj
    cost[pairs.pi[ok]] = pairs.pc[ok]
    return float(pairs.weights @ cost)


@dataclass(frozen=True, eq=False)
class CapacitatedSolution:
    """Sites, their single-sourcing assignment (-1: unserved), its objective and a lower bound (-inf: none)."""

    selected: np.ndarray
    assign: np.ndarray
    objective: float
    bound: float


def _knapsacks(pairs: Pairs, red: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per site, the fractional knapsack of its pairs with negative reduced cost ``red`` (capacity in weight).

    Returns each pair's share x (0-1) and each site's value ρ_j = Σ red·x (≤ 0).
    """
    w = pairs.weights[pairs.pi]
    x = np.zeros(len(red))
    take = np.flatnonzero(red < 0)
    if not len(take):
        return x, np.zeros(pairs.m)
    j = pairs.pj[take]
    order = np.lexsort((red[take] / np.maximum(w[take], _EPS), j))
    take, j = take[order], j[order]
    wt = w[take]
    cum = np.cumsum(wt)
    group_start = np.r_[True, j[1:] != j[:-1]]
    offset = np.maximum.accumulate(np.where(group_start, cum - wt, 0.0))
    before = cum - wt - offset  # weight taken at this site before this pair
    cap = pairs.capacity[j]
    share = np.clip((cap - before) / np.maximum(wt, _EPS), 0.0, 1.0)
    x[take] = share
    return x, np.bincount(pairs.pj, red * x, minlength=pairs.m)


def capacitated_p_median(
    pairs: Pairs,
    *,
    p: int,
    penalty: float,
    fixed: np.ndarray,
    quota: Quota,
    start: np.ndarray,
    deadline: float | None,
    iterations: int = 300,
) -> CapacitatedSolution:
    """Lagrangian heuristic and bound for the capacitated p-median (single sourcing, unserved at ``penalty``).

    The rows "each demand point is served once or left unserved" are relaxed with multipliers μ;
    what remains splits into one fractional knapsack per site (its capacity) and the choice of the
    ``p`` sites of least knapsack value within the quotas, so L(μ) is a lower bound for every μ.
    Each new site set is assigned by ``assign_with_capacity`` (an upper bound); the subgradient
    steps toward the best assignment found. Starts from ``start`` (e.g. the uncapacitated
    heuristic's sites).
    """
    w, n = pairs.weights, pairs.n
    has = np.zeros(n, bool)
    has[pairs.pi] = True
    rows = np.flatnonzero(has)
    constant = float(w[~has].sum() * penalty)
    a = w[pairs.pi] * pairs.pc
    best_S = start.copy()
    best_assign = assign_with_capacity(pairs, best_S, penalty, deadline=deadline)
    if best_assign is None:
        best_assign = np.full(n, -1)
    ub = assignment_cost(pairs, best_assign, penalty)
    seen = {best_S.tobytes()}
    # start the multipliers at each point's cost in the start assignment (what serving it is worth)
    start_cost = np.full(n, penalty)
    ok = best_assign[pairs.pi] == pairs.pj
    start_cost[pairs.pi[ok]] = pairs.pc[ok]
    mu = np.where(has, w * start_cost, 0.0)
    bound, theta, stall = -np.inf, 2.0, 0
    banned = np.zeros(pairs.m, bool)
    # the subgradient gets 60 % of the time left, the alternation after it the rest
    stop = None if deadline is None else time.perf_counter() + 0.6 * max(deadline - time.perf_counter(), 0.0)
    for _ in range(iterations):
        if past(stop):
            break
        x, rho = _knapsacks(pairs, a - mu[pairs.pi])
        S = cheapest_sites(rho, p, fixed, banned, quota)
        if S is None:
            break
        unserved = (w * penalty - mu < 0) & has
        value = float(mu[rows].sum() + np.minimum(0.0, w * penalty - mu)[rows].sum() + rho[S].sum()) + constant
        if value > bound + 1e-12 * abs(value):
            bound, stall = value, 0
        else:
            stall += 1
            if stall >= 15:
                theta, stall = theta / 2, 0
        key = S.tobytes()
        if key not in seen:
            seen.add(key)
            assign = assign_with_capacity(pairs, S, penalty, deadline=deadline)
            if assign is not None:
                cost = assignment_cost(pairs, assign, penalty)
                if cost < ub - 1e-9 * abs(ub):
                    ub, best_S, best_assign = cost, S, assign
        if ub - bound <= 1e-6 * abs(ub) or theta < 1e-5:
            break
        served = np.bincount(pairs.pi, x * S[pairs.pj], minlength=n) + unserved
        g = (1.0 - served)[rows]
        norm = float(g @ g)
        if norm < 1e-12:
            break
        mu = mu.copy()
        mu[rows] += theta * (ub - value) / norm * g
    best_S, best_assign, ub = locate_allocate(pairs, best_S, best_assign, penalty, fixed=fixed, quota=quota,
                                              deadline=deadline)  # fmt: skip
    return CapacitatedSolution(best_S, best_assign, ub, bound)


def locate_allocate(
    pairs: Pairs, S: np.ndarray, assign: np.ndarray, penalty: float, *, fixed: np.ndarray, quota: Quota,
    deadline: float | None,
) -> tuple[np.ndarray, np.ndarray, float]:  # fmt: skip
    """Improve sites by alternation (Cooper): move each site to its cluster's best median, reassign, repeat.

    A site moves to the candidate of least Σ w·cost over the points it serves (points the candidate
    cannot reach count at ``penalty``) when that candidate holds the cluster's weight and the zone
    quotas allow; the new sites are reassigned by ``assign_with_capacity`` and kept if cheaper.
    """
    w = pairs.weights
    ub = assignment_cost(pairs, assign, penalty)
    while not past(deadline):
        trial = S.copy()
        for j in np.flatnonzero(S & ~fixed):
            mine = assign[pairs.pi] == j
            mine_w = w[pairs.pi[mine]]
            load = float(w[assign == j].sum())
            reach = np.bincount(pairs.pj[mine], mine_w, minlength=pairs.m)
            cost = np.bincount(pairs.pj[mine], mine_w * pairs.pc[mine], minlength=pairs.m) + penalty * (load - reach)
            ok = quota.swappable(np.flatnonzero(trial), j) & (pairs.capacity >= load - _EPS)
            ok[j] = True
            if ok.any():
                k = int(np.flatnonzero(ok)[np.argmin(cost[ok])])
                if cost[k] < cost[j] - 1e-9 * max(abs(cost[j]), 1.0):
                    trial[j], trial[k] = False, True
        if (trial == S).all():
            break
        alt = assign_with_capacity(pairs, trial, penalty, deadline=deadline)
        if alt is None:
            break
        value = assignment_cost(pairs, alt, penalty)
        if value >= ub - 1e-9 * abs(ub):
            break
        S, assign, ub = trial, alt, value
    return S, assign, ub


def capacitated_cover(pairs: Pairs, *, fixed: np.ndarray, quota: Quota, start: np.ndarray, deadline: float | None):
    """Return sites and an assignment serving every coverable point within capacity, or None when there is none.

    ``pairs`` holds only the covering pairs. Adds to ``start`` (a greedy cover) the site that
    covers the most unserved weight until the transportation assignment serves everyone, then
    drops sites (least loaded first) while it still does. Zone maximums are kept; minimums come
    from ``start``.
    """
    S = start.copy()
    penalty = 1.0 + 2.0 * float(pairs.pc.max(initial=0.0))
    has = np.zeros(pairs.n, bool)
    has[pairs.pi] = True
    w = pairs.weights
    while True:
        assign = assign_with_capacity(pairs, S, penalty, deadline=deadline)
        if assign is None:
            return None
        left = has & (assign < 0)
        if not left.any():
            break
        gain = np.bincount(pairs.pj, w[pairs.pi] * left[pairs.pi], minlength=pairs.m).astype(float)
        room = quota.addable(np.flatnonzero(S), 10**9)
        gain[S | ~room] = -1.0
        if gain.max() <= 0 or past(deadline):
            return None
        S[int(np.argmax(gain))] = True
    load = np.bincount(assign[assign >= 0], w[assign >= 0], minlength=pairs.m)
    for j in sorted(np.flatnonzero(S & ~fixed), key=lambda s: load[s]):
        if past(deadline):
            break
        trial = S.copy()
        trial[j] = False
        z = quota.zone[j]
        if z >= 0 and quota.counts(np.flatnonzero(trial))[z] < quota.lo[z]:
            continue
        alt = assign_with_capacity(pairs, trial, penalty, deadline=deadline)
        if alt is not None and not (has & (alt < 0)).any():
            S, assign = trial, alt
    return S, assign
