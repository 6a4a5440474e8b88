"""Fixed (pre-selected) sites: each is forced open and counts toward p, for every model and both methods.

A what-if scenario turned into a siting run keeps its sites through ``existing`` of ``from_cost_matrix``.
The optima below are derived by hand on five demand points and four candidates, and one random case
is checked against a brute-force enumeration of every choice of sites.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from analyses.siting import InfeasibleSitingError, MaxCoverage, PMedian

#: Costs of demand d1..d5 to candidates A..D (every pair listed).
COSTS = {
    "d1": {"A": 1, "B": 4, "C": 6, "D": 9},
    "d2": {"A": 2, "B": 3, "C": 5, "D": 8},
    "d3": {"A": 7, "B": 2, "C": 3, "D": 7},
    "d4": {"A": 8, "B": 5, "C": 1, "D": 3},
    "d5": {"A": 9, "B": 7, "C": 4, "D": 1},
}


def _table(costs: dict[str, dict[str, float]]) -> pd.DataFrame:
    rows = [(d, c, float(v)) for d, by in costs.items() for c, v in by.items()]
    return pd.DataFrame(rows, columns=["demand_id", "candidate_id", "cost"])


@pytest.mark.parametrize("method", ["exact", "heuristic"])
@pytest.mark.parametrize(
    ("fixed", "p", "sites", "objective"),
    [
        # no fixed site: AC = 1 + 2 + 3 + 1 + 4 = 11 is the best pair (AB 17, AD 14, BC 14, BD 13, CD 16)
        ((), 2, ["A", "C"], 11.0),
        # D kept: the best partner is B, BD = 4 + 3 + 2 + 3 + 1 = 13 (AD 14, CD 16), though AC is better
        (("D",), 2, ["B", "D"], 13.0),
        # B and D kept, a third site: A, ABD = 1 + 2 + 2 + 3 + 1 = 9 (BCD 11)
        (("B", "D"), 3, ["A", "B", "D"], 9.0),
        # D kept and p = 1: D alone, 9 + 8 + 7 + 3 + 1 = 28
        (("D",), 1, ["D"], 28.0),
    ],
)
def test_p_median_with_fixed_sites_matches_the_hand_optimum(method, fixed, p, sites, objective):
    model = PMedian.from_cost_matrix(_table(COSTS), p=p, existing=list(fixed) or None, max_cost=100)
    result = model.solve(method=method, time_limit_s=10)
    assert (sorted(result.selected), result.objective) == (sites, objective)
    assert len(result.selected) == p  # the fixed sites count toward p


#: Weights of d1..d5 for max coverage within 3: A covers d1, d2; B d2, d3; C d3, d4; D d4, d5.
WEIGHTS = {"d1": 1.0, "d2": 1.0, "d3": 2.0, "d4": 1.0, "d5": 3.0}


@pytest.mark.parametrize("method", ["exact", "heuristic"])
@pytest.mark.parametrize(
    ("fixed", "sites", "covered"),
    [
        ((), ["B", "D"], 7.0),  # BD covers d2..d5: 1 + 2 + 1 + 3 (AB 4, AC 5, AD 6, BC 4, CD 6)
        (("A",), ["A", "D"], 6.0),  # A kept: AD covers d1, d2, d4, d5 = 6 (AB 4, AC 5)
        (("C",), ["C", "D"], 6.0),  # C kept: CD covers d3, d4, d5 = 6 (AC 5, BC 4)
    ],
)
def test_max_coverage_with_fixed_sites_matches_the_hand_optimum(method, fixed, sites, covered):
    model = MaxCoverage.from_cost_matrix(_table(COSTS), WEIGHTS, p=2, threshold=3, existing=list(fixed) or None)
    result = model.solve(method=method, time_limit_s=10)
    assert (sorted(result.selected), result.objective) == (sites, covered)


def test_more_fixed_sites_than_p_are_refused_naming_both_numbers():
    with pytest.raises(InfeasibleSitingError, match=r"`p` = 1 is fewer than the 2 existing sites kept open"):
        PMedian.from_cost_matrix(_table(COSTS), p=1, existing=["A", "D"], max_cost=100)


def _brute_force_p_median(costs: np.ndarray, weights: np.ndarray, p: int, fixed: list[int]) -> float:
    free = [j for j in range(costs.shape[1]) if j not in fixed]
    best = np.inf
    for extra in itertools.combinations(free, p - len(fixed)):
        chosen = [*fixed, *extra]
        best = min(best, float((weights * costs[:, chosen].min(axis=1)).sum()))
    return best


def _brute_force_coverage(costs: np.ndarray, weights: np.ndarray, p: int, fixed: list[int], radius: float) -> float:
    free = [j for j in range(costs.shape[1]) if j not in fixed]
    return max(float(weights[(costs[:, [*fixed, *extra]] <= radius).any(axis=1)].sum())
               for extra in itertools.combinations(free, p - len(fixed)))  # fmt: skip


def test_a_random_case_with_fixed_sites_equals_brute_force_enumeration():
    rng = np.random.default_rng(18)
    n, m, p, fixed = 14, 8, 4, [2, 5]
    costs = rng.integers(1, 60, size=(n, m)).astype(float)
    weights = rng.integers(1, 5, size=n).astype(float)
    demand = [f"d{i}" for i in range(n)]
    cands = [f"c{j}" for j in range(m)]
    table = _table({demand[i]: {cands[j]: costs[i, j] for j in range(m)} for i in range(n)})
    w = dict(zip(demand, weights, strict=True))
    kept = [cands[j] for j in fixed]
    pmed = PMedian.from_cost_matrix(table, w, p=p, existing=kept, max_cost=1000).solve(time_limit_s=20)
    assert pmed.optimal and set(kept) <= set(pmed.selected) and len(pmed.selected) == p
    assert pmed.objective == pytest.approx(_brute_force_p_median(costs, weights, p, fixed))
    mclp = MaxCoverage.from_cost_matrix(table, w, p=p, threshold=12, existing=kept).solve(time_limit_s=20)
    assert mclp.optimal and set(kept) <= set(mclp.selected)
    assert mclp.objective == pytest.approx(_brute_force_coverage(costs, weights, p, fixed, 12))
    # without the fixed sites the optimum is at least as good (it may differ)
    free = PMedian.from_cost_matrix(table, w, p=p, max_cost=1000).solve(time_limit_s=20)
    assert free.objective == pytest.approx(_brute_force_p_median(costs, weights, p, []))
    assert free.objective <= pmed.objective


def test_a_closed_site_leaves_the_pool_and_the_optimum_is_the_best_of_the_rest():
    # A, B, C open today, D a candidate; the scenario closed A, the p-median optimum AC (11) above
    import geopandas as gpd

    from analyses.runs.siting import site_pool, without_closed

    layer = gpd.GeoDataFrame({"id": ["A", "B", "C"], "town_code": "t", "name": "", "status": "open"},
                             geometry=gpd.points_from_xy([0, 1, 2], [0, 0, 0]), crs="EPSG:4326")  # fmt: skip
    cands = gpd.GeoDataFrame({"id": ["D"], "town_code": ["t"]}, geometry=gpd.points_from_xy([3], [0]), crs="EPSG:4326")
    pool, current = site_pool("service_centre", layer, cands)
    assert (pool["id"].tolist(), current) == (["A", "B", "C", "D"], ["A", "B", "C"])
    rest, rest_current = without_closed(pool, current, ("A",))
    assert (rest["id"].tolist(), rest_current) == (["B", "C", "D"], ["B", "C"])
    table = _table({d: {c: v for c, v in by.items() if c in set(rest["id"])} for d, by in COSTS.items()})
    for method in ("exact", "heuristic"):
        result = PMedian.from_cost_matrix(table, p=2, max_cost=100).solve(method=method, time_limit_s=10)
        # BC = 4 + 3 + 2 + 1 + 4 = 14, BD = 4 + 3 + 2 + 3 + 1 = 13, CD = 6 + 5 + 3 + 1 + 1 = 16: BD
        assert (sorted(result.selected), result.objective) == (["B", "D"], 13.0)
    costs = np.array([[COSTS[d][c] for c in ("B", "C", "D")] for d in COSTS], dtype=float)
    assert _brute_force_p_median(costs, np.ones(5), 2, []) == 13.0
    # kept today (keep_existing) they would be B and C, never A: BC is then the only choice of two
    kept = PMedian.from_cost_matrix(table, p=2, existing=rest_current, max_cost=100).solve(time_limit_s=10)
    assert (sorted(kept.selected), kept.objective) == (["B", "C"], 14.0)
