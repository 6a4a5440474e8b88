"""Fast siting heuristics (greedy + swap, dense and sparse) and the p-median Lagrangian reduction."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from analyses.siting.problem import Quota
from analyses.siting.results import InfeasibleSitingError
from analyses.siting.solver import MIP_REL_GAP

if TYPE_CHECKING:
    from analyses.siting.models import PMedian

# Both greedy heuristics raise this (Chinese, English) when the quotas leave no candidate to add.
_NO_ROOM_IN_QUOTAS = ("在镇街配额内无法再增加任何候选站点。", "No candidate can be added within the zone quotas.")


def past(deadline: float | None) -> bool:
    """Return whether ``deadline`` (a ``time.perf_counter()`` value; None: none) has passed."""
    return deadline is not None and time.perf_counter() > deadline


def check_deadline(deadline: float | None) -> None:
    """Raise ``TimeoutError`` when ``deadline`` has passed (a step that has no answer yet stops)."""
    if past(deadline):
        msg = "The time limit ran out before the heuristic had a solution."
        raise TimeoutError(msg)


def greedy_swap(
    D: np.ndarray,
    w: np.ndarray,
    base: float,
    *,
    p: int,
    fixed: np.ndarray,
    quota: Quota,
    agg: Literal["sum", "max"],
    max_passes: int = 50,
    deadline: float | None = None,
    give_up: float | None = None,
) -> np.ndarray:
    """Pick ``p`` columns of ``D`` minimising Σ w·min (or max min) over rows: greedy, then swaps.

    The swaps stop at ``deadline`` (a ``time.perf_counter()`` value); the greedy start raises
    ``TimeoutError`` past ``give_up``.
    """
    m = D.shape[1]

    def score(cur_col: np.ndarray, cols: np.ndarray) -> np.ndarray:
        M = np.minimum(cur_col[:, None], D[:, cols])
        return (w @ M) if agg == "sum" else M.max(axis=0, initial=-np.inf)

    def value(cur_col: np.ndarray) -> float:
        return float(w @ cur_col) if agg == "sum" else float(cur_col.max(initial=-np.inf))

    S = list(np.flatnonzero(fixed))
    cur = D[:, S].min(axis=1) if S else np.full(D.shape[0], base)
    while len(S) < p:
        check_deadline(give_up)
        allowed = np.flatnonzero(quota.addable(np.array(S, int), p - len(S)))
        if not len(allowed):
            raise InfeasibleSitingError(*_NO_ROOM_IN_QUOTAS)
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
            if past(deadline):
                break
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


def sparse_greedy_swap(
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
    quota: Quota,
    max_iter: int = 500,
    deadline: float | None = None,
    give_up: float | None = None,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """Pick ``p`` sites minimising Σ w_i min(base, v_ij over open j): greedy, then best-swap (fast interchange).

    Works on the pairs only (sorted by demand, then ``v``), after Resende & Werneck's decomposition of
    a swap's change into gain(in), loss(out) and a sparse correction, so each iteration is O(pairs).
    ``start`` (p sites, ``fixed`` among them) replaces the greedy start. The swaps stop at
    ``deadline`` (a ``time.perf_counter()`` value); the greedy start raises ``TimeoutError`` past
    ``give_up``.
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

    by_site = np.argsort(pj, kind="stable")
    site_start = np.searchsorted(pj[by_site], np.arange(m + 1))

    def add_site(j: int) -> None:
        """Open ``j``: update the nearest two costs of its demand points only."""
        rows = by_site[site_start[j] : site_start[j + 1]]
        i, c = pi[rows], np.minimum(v[rows], base)
        nearer = c < d1[i]
        d2[i] = np.where(nearer, d1[i], np.minimum(d2[i], c))
        d1[i] = np.where(nearer, c, d1[i])
        phi[i[nearer]] = j
        phi[i[d1[i] >= base]] = -1

    S = fixed.copy() if start is None else start.copy()
    d1, d2, phi = nearest_two(S)
    while S.sum() < p:
        check_deadline(give_up)
        allowed = quota.addable(np.flatnonzero(S), p - int(S.sum()))
        if not allowed.any():
            raise InfeasibleSitingError(*_NO_ROOM_IN_QUOTAS)
        gain = np.bincount(pj, wp * np.maximum(d1[pi] - v, 0.0), minlength=m).astype(float)
        gain[~allowed] = -np.inf
        best = int(np.argmax(gain))
        S[best] = True
        add_site(best)
    for _ in range(max_iter):
        outs = np.flatnonzero(S & ~fixed)
        if not len(outs) or past(deadline):
            break
        gain = np.bincount(pj, wp * np.maximum(d1[pi] - v, 0.0), minlength=m).astype(float)
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
        if len(quota.lo):
            allowed = np.stack([quota.swappable(np.flatnonzero(S), o) for o in outs], axis=1)
            delta[~allowed] = np.inf
        else:  # no zone quotas: any closed site may come in
            delta[S] = np.inf
        k = int(np.argmin(delta))
        j_in, o = divmod(k, len(outs))
        current = float(w @ d1)
        if not delta[j_in, o] < -1e-9 * max(abs(current), 1.0):
            break
        S[outs[o]] = False
        S[j_in] = True
        d1, d2, phi = nearest_two(S)
    return S


def nearest_pairs(
    pi: np.ndarray, pj: np.ndarray, pc: np.ndarray, *, n: int, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return each demand point's ``k`` cheapest pairs, sorted by demand, then cost (a sparse search space).

    With many sites each demand point is served by one of its few nearest candidates: local search
    on these pairs is as good and many times faster (Resende & Werneck 2004 keep the same idea).
    """
    order = np.lexsort((pc, pi))
    pi, pj, pc = pi[order], pj[order], pc[order]
    first = np.searchsorted(pi, np.arange(n))
    keep = (np.arange(len(pi)) - first[pi]) < k
    return pi[keep], pj[keep], pc[keep]


def iterated_swaps(
    search: Callable[[np.ndarray], np.ndarray],
    cost: Callable[[np.ndarray], float],
    start: np.ndarray,
    *,
    fixed: np.ndarray,
    quota: Quota,
    deadline: float,
    seed: int = 0,
    patience: int | None = None,
) -> np.ndarray:
    """Improve ``start`` by iterated local search: swap a tenth of the sites at random, search, keep if no worse.

    ``search`` (sites → locally optimal sites, e.g. fast interchange on ``nearest_pairs``) starts from
    ``start``; each round closes ``max(2, p // 10)`` random open sites that are not ``fixed`` and opens
    random closed ones each zone quota allows, searches, and moves there when the cost does not rise.
    Stops at ``deadline`` (a ``time.perf_counter()`` value), or after ``patience`` rounds in a row that
    found nothing better (None: only the deadline); returns the best sites seen. ``seed`` makes the rounds
    reproducible.
    """
    rng = np.random.default_rng(seed)
    current = search(start)
    current_cost = cost(current)
    best, best_cost = current, current_cost
    movable = np.flatnonzero(current & ~fixed)
    size = max(2, int(current.sum()) // 10)
    stale = 0
    while not past(deadline) and len(movable) and (patience is None or stale < patience):
        stale += 1
        trial = current.copy()
        for out in rng.choice(np.flatnonzero(trial & ~fixed), size=min(size, len(movable)), replace=False):
            allowed = np.flatnonzero(quota.swappable(np.flatnonzero(trial), int(out)))
            if len(allowed):
                trial[out] = False
                trial[int(rng.choice(allowed))] = True
        trial = search(trial)
        trial_cost = cost(trial)
        if trial_cost <= current_cost:
            current, current_cost = trial, trial_cost
            if trial_cost < best_cost:
                best, best_cost, stale = trial, trial_cost, 0
    return best


@dataclass(frozen=True, eq=False)
class Reduction:
    """A p-median Lagrangian bound, the best sites found on the way and the candidates fixed against them.

    ``fixed`` (per candidate: -1 free, 0 closed, 1 open) holds for every solution better than
    ``incumbent`` (cost ``ub``): when none is left, the incumbent is optimal.
    """

    bound: float
    fixed: np.ndarray
    incumbent: np.ndarray
    ub: float
    u: np.ndarray | None = None


def cheapest_sites(rho: np.ndarray, p: int, forced: np.ndarray, banned: np.ndarray, quota: Quota) -> np.ndarray | None:
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


def lagrangian_reduction(
    model: PMedian,
    incumbent: np.ndarray,
    ub: float,
    *,
    iterations: int = 400,
    deadline: float | None = None,
    improve: Callable[[np.ndarray], tuple[np.ndarray, float]] | None = None,
    step: float = 0.0,
    tests: bool = True,
    report: Callable[[float, float], None] | None = None,
    improve_every: int = 25,
) -> Reduction:
    """Lagrangian bound of the p-median (assignment rows relaxed) by subgradient, and reduction tests.

    For multipliers u (one per demand with pairs, u_i <= w_i max_cost):
    L(u) = Σ u_i + min over feasible site sets S of Σ_{j in S} ρ_j with ρ_j = Σ_i min(0, w_i c_ij - u_i),
    plus w_i max_cost for demand without pairs. Every L(u) is a lower bound; forcing a site in or
    out gives a bound for every solution with (without) it. Past ``deadline`` the subgradient stops
    and the remaining candidates stay free.

    ``improve`` (sites → locally improved sites and their cost) is run from the Lagrangian site
    sets as they change (every ``improve_every``-th iteration at most): a better incumbent tightens the steps and
    the tests. ``step`` is the objective's granularity (1 when weights and costs are whole numbers):
    a better solution costs at most ``ub - step``, so sites are fixed against that. ``tests=False``
    skips the fixing (every candidate stays free). ``report(incumbent cost, bound)`` is called as
    they improve, at most once a second.
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
        S = cheapest_sites(rho, p, forced, banned, quota)
        return float(u[rows].sum() + rho[S].sum()) + constant, rho, S

    best_val, best_u = -np.inf, u
    theta, stall = 2.0, 0
    tried: set[bytes] = {incumbent.tobytes()}
    last_report, last_values = time.perf_counter(), (ub, best_val)
    for it in range(iterations):
        if past(deadline):
            break
        val, rho, S = evaluate(u)
        if S is None:
            break
        if report is not None and time.perf_counter() - last_report >= 1.0 and (ub, best_val) != last_values:
            report(ub, best_val)
            last_report, last_values = time.perf_counter(), (ub, best_val)
        if improve is not None and it % improve_every == improve_every // 2 and S.tobytes() not in tried:
            tried.add(S.tobytes())
            better, cost = improve(S)
            if cost < ub - 1e-9 * max(abs(ub), 1.0):
                incumbent, ub = better, cost
        if val > best_val + 1e-12 * abs(val):
            best_val, best_u, stall = val, u.copy(), 0
        else:
            stall += 1
            if stall >= 20:
                theta, stall = theta / 2, 0
        if ub - best_val <= max(MIP_REL_GAP * abs(ub) * 0.5, step - 1e-9 * abs(ub)) or theta < 1e-6:
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
        return Reduction(-np.inf, fixed, incumbent, ub)
    val, rho, S = evaluate(best_u)
    base = float(best_u[rows].sum()) + constant
    tol = 1e-9 * max(abs(ub), 1.0)
    target = ub - step  # the most a better solution may cost (ub itself without a granularity)
    for j in range(m if tests else 0):
        if inst.existing[j] or past(deadline):
            continue
        if S[j]:
            banned[j] = True
            alt = cheapest_sites(rho, p, forced, banned, quota)
            banned[j] = False
            if alt is None or base + rho[alt].sum() > target + tol:
                fixed[j] = 1
        else:
            forced[j] = True
            alt = cheapest_sites(rho, p, forced, banned, quota)
            forced[j] = False
            if alt is None or base + rho[alt].sum() > target + tol:
                fixed[j] = 0
    best_u = np.where(has, best_u, b)
    return Reduction(val, fixed, incumbent, ub, best_u)
