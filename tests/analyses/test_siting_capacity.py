"""Capacitated p-median and set cover: the Lagrangian heuristic, its bound and the exact solve, by brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from analyses.siting import PMedian, SetCover


def small_instance(seed, n=7, m=5):
    rng = np.random.default_rng(seed)
    cost = rng.integers(1, 100, size=(n, m)).astype(float)
    weights = rng.integers(1, 6, size=n).astype(float)
    rows = [(f"d{i}", f"c{j}", cost[i, j]) for i in range(n) for j in range(m)]
    table = pd.DataFrame(rows, columns=["demand_id", "candidate_id", "cost"])
    return cost, weights, table, pd.Series(weights, index=[f"d{i}" for i in range(n)])


def brute_capacitated_median(cost, weights, p, capacity, penalty):
    """Least Σ w·cost over every p sites and every single-sourcing assignment (-1: unserved at penalty)."""
    n, m = cost.shape
    best = np.inf
    for sites in itertools.combinations(range(m), p):
        for choice in itertools.product([-1, *sites], repeat=n):
            choice = np.array(choice)
            load = np.bincount(choice[choice >= 0], weights[choice >= 0], minlength=m)
            if (load > capacity + 1e-9).any():
                continue
            c = np.where(choice >= 0, cost[np.arange(n), np.maximum(choice, 0)], penalty)
            best = min(best, float(weights @ c))
    return best


def loads(result, weights):
    sites = [result.assignment[d] for d in weights.index]
    return pd.Series(weights.to_numpy(), index=sites).groupby(level=0).sum()


@pytest.mark.parametrize(("seed", "p", "capacity"), [(0, 2, 9.0), (1, 3, 6.0), (2, 2, 12.0)])
def test_capacitated_p_median_matches_brute_force(seed, p, capacity):
    cost, w, table, weights = small_instance(seed)
    expected = brute_capacitated_median(cost, w, p, capacity, penalty=100.0)
    model = PMedian.from_cost_matrix(table, weights, p=p, capacity=capacity, max_cost=100.0)
    exact = model.solve()
    assert exact.optimal and exact.objective == pytest.approx(expected)
    heuristic = model.solve(method="heuristic")
    assert heuristic.objective >= expected - 1e-9
    assert heuristic.bound is not None and heuristic.bound <= expected + 1e-6  # a valid Lagrangian bound
    assert (loads(heuristic, weights).drop(index=[None], errors="ignore") <= capacity + 1e-9).all()


def test_capacity_that_allows_it_serves_all_demand():
    # 240 unit-weight points, 12 sites of capacity 25 (300 ≥ 240): every point must be served
    rng = np.random.default_rng(11)
    n, m = 240, 60
    xy_d, xy_c = rng.uniform(0, 5000, size=(n, 2)), rng.uniform(0, 5000, size=(m, 2))
    dist = np.hypot(*(xy_d[:, None, :] - xy_c[None, :, :]).transpose(2, 0, 1)).round()
    i, j = np.nonzero(dist <= 4000)
    table = pd.DataFrame({"demand_id": [f"d{a}" for a in i], "candidate_id": [f"c{b}" for b in j],
                          "cost": dist[i, j]})  # fmt: skip
    weights = pd.Series(1.0, index=[f"d{a}" for a in range(n)])
    model = PMedian.from_cost_matrix(table, weights, p=12, capacity=25, max_cost=4000)
    for method in ("heuristic", "exact"):
        result = model.solve(method=method, time_limit_s=20)
        assert result.unserved == (), method
        assert (loads(result, weights) <= 25).all()
        assert result.bound is not None and result.bound <= result.objective + 1e-6
        assert result.optimal or result.gap > 0


def brute_capacitated_cover(cost, weights, threshold, capacity):
    n, m = cost.shape
    for k in range(1, m + 1):
        for sites in itertools.combinations(range(m), k):
            options = [[s for s in sites if cost[i, s] <= threshold] for i in range(n)]
            if any(not o for o in options):
                continue
            for choice in itertools.product(*options):
                if (np.bincount(choice, weights, minlength=m) <= capacity + 1e-9).all():
                    return k
    return None


@pytest.mark.parametrize(("seed", "capacity"), [(3, 8.0), (4, 10.0)])
def test_capacitated_set_cover_matches_brute_force(seed, capacity):
    cost, w, table, weights = small_instance(seed, n=7, m=6)
    expected = brute_capacitated_cover(cost, w, 60.0, capacity)
    assert expected is not None
    model = SetCover.from_cost_matrix(table, weights, threshold=60.0, capacity=capacity)
    exact = model.solve()
    assert exact.optimal and exact.objective == expected
    heuristic = model.solve(method="heuristic")
    assert heuristic.objective >= expected and heuristic.unserved == ()
    assert (loads(heuristic, weights) <= capacity + 1e-9).all()
    assert all(heuristic.costs[d] <= 60.0 for d in weights.index)
