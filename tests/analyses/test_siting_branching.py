"""Lagrangian branch-and-bound on sites (analyses.siting.branching): checked against enumeration."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pandas as pd
import pytest

from analyses.siting import PMedian
from analyses.siting.branching import branch_and_bound
from synthetic.graphs import beasley_costs


def pairs_of(D: np.ndarray, w: np.ndarray, max_cost: float):
    """Pairs sorted by demand, then cost, with weighted costs below each demand's cap."""
    n, m = D.shape
    order = np.argsort(D, axis=1, kind="stable")
    pi = np.repeat(np.arange(n), m)
    pj = order.ravel()
    a = (np.take_along_axis(D, order, 1) * w[:, None]).ravel()
    cap = w * max_cost
    keep = a < cap[pi]
    return pi[keep], pj[keep], a[keep], cap


def enumerate_best(D, w, max_cost, p, forced=()):
    """The least Σ w_i min(max_cost, nearest chosen site) over every set of p sites holding ``forced``."""
    m = D.shape[1]
    best = np.inf
    for S in itertools.combinations(range(m), p):
        if set(forced) <= set(S):
            best = min(best, float(w @ np.minimum(D[:, list(S)].min(1), max_cost)))
    return best


def search(D, w, max_cost, p, *, fixed=None, seconds=30.0):
    n, m = D.shape
    pi, pj, a, cap = pairs_of(D, w, max_cost)
    start = np.zeros(m, bool)
    start[np.arange(p)] = True  # a poor incumbent, and multipliers 0: the search must do the work
    ub = float(w @ np.minimum(D[:, start].min(1), max_cost))
    return branch_and_bound(pi, pj, a, cap, m=m, p=p, fixed=np.full(m, -1) if fixed is None else fixed,
                            incumbent=start, ub=ub, u=np.zeros(n), step=1.0, tolerance=1e-6,
                            deadline=time.perf_counter() + seconds)  # fmt: skip


def test_two_clusters_by_hand():
    # demand 0,1 near site 0 (costs 1, 2), demand 2,3 near site 2 (costs 1, 1); site 1 is 5 from all
    D = np.array([[1, 5, 9], [2, 5, 9], [9, 5, 1], [9, 5, 1]], float)
    out = search(D, np.ones(4), 100.0, 2)
    assert out.proven
    assert out.cost == 1 + 2 + 1 + 1
    assert np.flatnonzero(out.sites).tolist() == [0, 2]


@pytest.mark.parametrize("seed", range(6))
def test_matches_enumeration_with_weights_and_max_cost(seed):
    rng = np.random.default_rng(seed)
    n, m, p = 24, 12, 3
    D = rng.integers(1, 60, (n, m)).astype(float)
    w = rng.integers(1, 4, n).astype(float)
    out = search(D, w, 40.0, p)
    assert out.proven
    assert out.cost == enumerate_best(D, w, 40.0, p)
    assert out.sites.sum() == p
    assert out.cost == float(w @ np.minimum(D[:, out.sites].min(1), 40.0))  # the sites really cost that


def test_forced_site_is_kept():
    rng = np.random.default_rng(7)
    D = rng.integers(1, 60, (20, 10)).astype(float)
    fixed = np.full(10, -1)
    fixed[9] = 1
    out = search(D, np.ones(20), 1e9, 3, fixed=fixed)
    assert out.proven and out.sites[9]
    assert out.cost == enumerate_best(D, np.ones(20), 1e9, 3, forced=(9,))


def test_deadline_gives_a_valid_bound_unproven():
    D = beasley_costs(200, 210)
    out = search(D, np.ones(200), float(D.max()) + 1, 10, seconds=0.0)
    assert not out.proven
    assert out.cost >= 5401  # the incumbent is a real solution, the bound no more than the optimum
    assert out.bound <= 5401  # the proven optimum of this graph (gen-n200-p10 in benchmarks/results/pmedian.md)


def test_p_median_on_a_beasley_graph_is_proven_by_the_search():
    D = beasley_costs(200, 210)
    n = D.shape[0]
    ids = np.array([f"v{k}" for k in range(n)], dtype=object)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    table = pd.DataFrame({"demand_id": ids[i.ravel()], "candidate_id": ids[j.ravel()], "cost": D.ravel()})
    result = PMedian.from_cost_matrix(table, p=10).solve(time_limit_s=60)
    assert result.optimal and result.gap == 0
    assert result.objective == 5401  # also HiGHS's proven optimum (benchmarks/results/pmedian.md, spopt/CBC too)
    assert "branch-and-bound" in result.solver
