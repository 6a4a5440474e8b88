from __future__ import annotations

import itertools
import pickle

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from analyses.costs import Placer
from analyses.siting import (
    InfeasibleSitingError,
    MaxCoverage,
    PCenter,
    PMedian,
    SetCover,
    compare_with_current,
    kept_toilets,
    site_new_toilets,
)
from tests.geo.conftest import CRS, xy

# A line of five points 100 m apart; demand d_i and candidate c_i sit at point i.
# Weights 1, 1, 1, 5, 1: the weighted median is point 3.
LINE_W = pd.Series([1.0, 1.0, 1.0, 5.0, 1.0], index=[f"d{i}" for i in range(5)])


def line_costs(n: int = 5) -> pd.DataFrame:
    rows = [(f"d{i}", f"c{j}", 100.0 * abs(i - j)) for i in range(n) for j in range(n)]
    return pd.DataFrame(rows, columns=["demand_id", "candidate_id", "cost"])


@pytest.mark.parametrize("method", ["exact", "heuristic"])
def test_p_median_on_a_line_picks_the_weighted_median(method):
    result = PMedian.from_cost_matrix(line_costs(), LINE_W, p=1).solve(method=method)
    assert result.selected == ("c3",)
    # 300 + 200 + 100 + 5·0 + 100
    assert result.objective == pytest.approx(700.0)
    assert result.assignment == {f"d{i}": "c3" for i in range(5)}
    assert result.costs["d0"] == pytest.approx(300.0)
    # the heuristic's Lagrangian bound meets 700 here, which proves it: one state, optimal with gap 0
    assert result.optimal and result.gap == 0.0


@pytest.mark.parametrize("method", ["exact", "heuristic"])
def test_max_coverage_covers_the_heaviest_neighbourhood(method):
    result = MaxCoverage.from_cost_matrix(line_costs(), LINE_W, p=1, threshold=100).solve(method=method)
    assert result.selected in {("c2",), ("c3",)}  # both cover 7: d1 + d2 + d3 or d2 + d3 + d4
    assert result.objective == pytest.approx(7.0)
    assert result.covered_share == pytest.approx(7.0 / 9.0)


@pytest.mark.parametrize("method", ["exact", "heuristic"])
def test_set_cover_needs_two_sites_within_100m(method):
    result = SetCover.from_cost_matrix(line_costs(), LINE_W, threshold=100).solve(method=method)
    assert result.objective == 2
    assert result.selected == ("c1", "c3")
    assert result.covered_share == 1.0


@pytest.mark.parametrize("method", ["exact", "heuristic"])
def test_p_center_picks_the_middle(method):
    result = PCenter.from_cost_matrix(line_costs(), LINE_W, p=1).solve(method=method)
    assert result.selected == ("c2",)
    assert result.objective == pytest.approx(200.0)


# zone A holds only c4; zone B the others; one site per zone
ZONES = pd.Series({"c0": "B", "c1": "B", "c2": "B", "c3": "B", "c4": "A"})


@pytest.mark.parametrize("method", ["exact", "heuristic"])
def test_one_site_per_zone_binds(method):
    free = PMedian.from_cost_matrix(line_costs(), LINE_W, p=2).solve()
    assert free.objective == pytest.approx(300.0)  # {c0, c3} or {c1, c3}
    model = PMedian.from_cost_matrix(line_costs(), LINE_W, zones=ZONES, quota=1)
    assert model.p == 2  # implied by the exact quotas
    result = model.solve(method=method)
    # c4 is forced (zone A); best partner in B is c3: 300 + 200 + 100 + 0 + 0
    assert result.selected == ("c3", "c4")
    assert result.objective == pytest.approx(600.0)


def test_town_without_candidate_is_named_in_the_error():
    demand_zones = pd.Series({"d0": "A", "d1": "B", "d2": "B", "d3": "B", "d4": "500120108"})
    with pytest.raises(InfeasibleSitingError, match=r"'500120108' \(健龙镇\) has 0 candidate"):
        MaxCoverage.from_cost_matrix(
            line_costs(),
            LINE_W,
            p=3,
            threshold=100,
            zones=ZONES,
            demand_zones=demand_zones,
            quota=1,
            zone_labels={"500120108": "健龙镇"},
        )


def test_excluding_the_only_candidate_of_a_town_is_named():
    with pytest.raises(InfeasibleSitingError, match="town 'A' has 0 candidate"):
        PMedian.from_cost_matrix(line_costs(), LINE_W, zones=ZONES, quota=1, excluded=["c4"])


def test_existing_sites_beyond_the_quota_are_refused():
    with pytest.raises(InfeasibleSitingError, match="town 'B' keeps 2 existing"):
        PMedian.from_cost_matrix(line_costs(), LINE_W, zones=ZONES, quota=1, existing=["c0", "c1"])


def test_p_below_existing_is_refused():
    with pytest.raises(InfeasibleSitingError, match="fewer than the 2 existing"):
        PMedian.from_cost_matrix(line_costs(), LINE_W, p=1, existing=["c0", "c1"])


def test_infeasibility_reads_chinese_first_then_the_english_in_brackets():
    with pytest.raises(InfeasibleSitingError) as p_check:
        PMedian.from_cost_matrix(line_costs(), LINE_W, p=6)
    en = "`p` = 6 exceeds the 5 candidate sites left after exclusions; lower `p` or add candidates."
    assert str(p_check.value) == f"站点数 `p` = 6 超过了排除后剩余的 5 个候选站点；请降低 `p` 或增加候选站点。 ({en})"
    assert (p_check.value.en, isinstance(p_check.value, ValueError)) == (en, True)
    with pytest.raises(InfeasibleSitingError) as quota:
        MaxCoverage.from_cost_matrix(line_costs(), LINE_W, p=3, threshold=100, zones=ZONES, quota=1,
                                     demand_zones=pd.Series({"d4": "500120108"}),
                                     zone_labels={"500120108": "健龙镇"})  # fmt: skip
    assert str(quota.value).startswith("镇街配额无法满足：镇街 '500120108' (健龙镇) 只有 0 个候选站点，但需要 1 个。")
    assert "(Infeasible quota: town '500120108' (健龙镇) has 0 candidate site(s) but needs 1." in str(quota.value)
    with pytest.raises(InfeasibleSitingError) as kept:
        PMedian.from_cost_matrix(line_costs(), LINE_W, zones=ZONES, quota=1, existing=["c0", "c1"])
    assert str(kept.value).startswith("镇街配额无法满足：镇街 'B' 保留了 2 个现有站点，但配额最多 1 个。")


@pytest.mark.parametrize(
    ("method", "zh", "en"),
    [
        ("exact", "选址模型 set_cover 无解。镇街配额、容量或排除的站点使部分可覆盖的需求点无法被覆盖",
         "(The set_cover model is infeasible: "),
        ("heuristic", "镇街配额使部分可覆盖的需求点无法被覆盖；请放宽配额或提高阈值 `threshold`。",
         "(The zone quotas leave some coverable demand uncovered; relax them or raise `threshold`.)"),
    ],
)  # fmt: skip
def test_an_infeasible_model_says_so_in_chinese_first(method, zh, en):
    # zone A may have no site and B one: no single site of B covers d0..d4 within 100 m
    model = SetCover.from_cost_matrix(line_costs(), LINE_W, threshold=100, zones=ZONES, quota={"A": 0, "B": (0, 1)})
    with pytest.raises(InfeasibleSitingError) as error:
        model.solve(method=method)
    assert str(error.value).startswith(zh) and en in str(error.value)


def test_an_infeasible_p_center_says_so_in_chinese_first():
    with pytest.raises(InfeasibleSitingError) as error:  # no one site reaches d0 and d4 within 100 m
        PCenter.from_cost_matrix(line_costs(), LINE_W, p=1, max_cost=100).solve(method="exact")
    zh = "选址模型 p_center 无解。任何一组站点都无法在服务半径 `max_cost` 内到达全部需求点；"
    en = "The p_center model is infeasible. No choice of sites reaches every demand point within `max_cost`"
    assert str(error.value).startswith(zh) and str(error.value).endswith(f"({en}; raise it or `p`.)")


def test_an_infeasibility_error_pickles_with_both_languages():
    error = pickle.loads(pickle.dumps(InfeasibleSitingError("镇街配额无法满足。", "Infeasible quota.")))
    assert (error.zh, error.en) == ("镇街配额无法满足。", "Infeasible quota.")
    assert str(error) == "镇街配额无法满足。 (Infeasible quota.)"


@pytest.mark.parametrize("method", ["exact", "heuristic"])
def test_existing_site_stays_open(method):
    result = PMedian.from_cost_matrix(line_costs(), LINE_W, p=2, existing=["c0"]).solve(method=method)
    # {c0, c3}: 0 + 100 + 100 + 0 + 100
    assert result.selected == ("c0", "c3")
    assert result.objective == pytest.approx(300.0)


@pytest.mark.parametrize("method", ["exact", "heuristic"])
def test_excluded_site_is_never_chosen(method):
    result = PMedian.from_cost_matrix(line_costs(), LINE_W, p=1, excluded=["c3"]).solve(method=method)
    # c2: 200 + 100 + 0 + 5·100 + 200
    assert result.selected == ("c2",)
    assert result.objective == pytest.approx(1000.0)


def test_p_median_capacity_is_respected():
    model = PMedian.from_cost_matrix(line_costs(), LINE_W, p=2, capacity=5)
    result = model.solve()
    # d3 (weight 5) fills a site alone, so d4 travels: best total 500 ({c1, c3} or {c2, c3})
    assert result.optimal
    assert result.objective == pytest.approx(500.0)
    load = pd.Series(LINE_W.to_numpy(), index=[result.assignment[d] for d in LINE_W.index]).groupby(level=0).sum()
    assert (load <= 5).all()
    heuristic = model.solve(method="heuristic")  # the Lagrangian heuristic takes capacities too
    assert heuristic.objective == pytest.approx(500.0)
    assert heuristic.bound <= 500.0 + 1e-9


def test_set_cover_capacity_needs_a_third_site():
    # d3 (5) uses up one covering site; d4 then needs its own: c1 + c3 + c4 or similar
    result = SetCover.from_cost_matrix(line_costs(), LINE_W, threshold=100, capacity=5).solve()
    assert result.objective == 3
    load = pd.Series(LINE_W.to_numpy(), index=[result.assignment[d] for d in LINE_W.index]).groupby(level=0).sum()
    assert (load <= 5).all()
    assert all(result.costs[d] <= 100 for d in LINE_W.index)


def test_p_median_unserved_demand_counts_at_max_cost():
    # max_cost 150: only neighbours are pairs; with c0 alone d2..d4 are unserved at 150 each
    result = PMedian.from_cost_matrix(line_costs(), LINE_W, p=1, max_cost=150, excluded=["c1", "c2", "c3", "c4"])
    result = result.solve()
    assert result.selected == ("c0",)
    assert result.unserved == ("d2", "d3", "d4")
    assert result.objective == pytest.approx(0 + 100 + 150 * (1 + 5 + 1))
    assert result.covered_share == pytest.approx(2 / 9)
    assert np.isnan(result.costs["d3"])


def test_per_town_table_and_to_dict():
    demand_zones = pd.Series({"d0": "B", "d1": "B", "d2": "B", "d3": "A", "d4": "A"})
    result = MaxCoverage.from_cost_matrix(
        line_costs(), LINE_W, p=1, threshold=100, zones=ZONES, demand_zones=demand_zones
    ).solve()
    assert result.by_town.loc["A", "covered_share"] == pytest.approx(1.0)
    assert result.by_town.loc["B", "covered_share"] == pytest.approx(1 / 3)
    assert result.by_town.loc["B", "sites"] == 1  # c3 is in zone B
    data = result.to_dict()
    assert {"parameters", "selected", "assignment", "objective", "covered_share", "optimal", "gap", "by_town"} <= set(
        data
    )
    assert data["selected"] == ["c3"]
    assert data["by_town"][0]["town_code"] == "A"


def test_result_is_frozen():
    result = PMedian.from_cost_matrix(line_costs(), LINE_W, p=1).solve()
    with pytest.raises(AttributeError):
        result.objective = 0.0
    with pytest.raises(TypeError):
        result.assignment["d0"] = "c0"


def test_compare_with_current_reports_before_and_after_per_town():
    demand_zones = pd.Series({"d0": "B", "d1": "B", "d2": "B", "d3": "A", "d4": "A"})
    model = MaxCoverage.from_cost_matrix(
        line_costs(), LINE_W, p=2, threshold=100, zones=ZONES, demand_zones=demand_zones, existing=["c0"]
    )
    result = model.solve()
    assert result.selected == ("c0", "c3")
    comparison = compare_with_current(model, result, ["c0"])
    assert comparison.summary["covered_share_before"] == pytest.approx(2 / 9)
    assert comparison.summary["covered_share_after"] == pytest.approx(1.0)
    assert comparison.by_town.loc["A", "covered_share_before"] == 0.0
    assert comparison.by_town.loc["A", "covered_share_change"] == pytest.approx(1.0)


def test_bad_inputs_raise_clear_errors():
    costs = line_costs()
    with pytest.raises(ValueError, match="lacks the column"):
        PMedian.from_cost_matrix(costs.rename(columns={"cost": "c"}), LINE_W, p=1)
    with pytest.raises(ValueError, match="missing from `weights`"):
        PMedian.from_cost_matrix(costs, LINE_W.drop("d2"), p=1)
    with pytest.raises(ValueError, match="both `existing`"):
        PMedian.from_cost_matrix(costs, LINE_W, p=1, existing=["c1"], excluded=["c1"])
    with pytest.raises(InfeasibleSitingError, match="exceeds the 5 candidate"):
        PMedian.from_cost_matrix(costs, LINE_W, p=6)
    with pytest.raises(ValueError, match="'15min' \\(travel_time\\)"):
        costs_m = costs.copy()
        costs_m.attrs["weight"] = "length"
        MaxCoverage.from_cost_matrix(costs_m, LINE_W, p=1, threshold="15min")


def test_progress_is_reported():
    stages = []
    PMedian.from_cost_matrix(line_costs(), LINE_W, p=1, progress=lambda s, f: stages.append(s)).solve()
    assert stages[0] == "model built" and stages[-1] == "done" and "solving" in stages


def random_instance(rng, n, m, *, density=1.0, scale=1000.0):
    cost = rng.uniform(0, scale, size=(n, m)).round(0)
    keep = rng.uniform(size=(n, m)) < density
    i, j = np.nonzero(keep)
    costs = pd.DataFrame({"demand_id": [f"d{a}" for a in i], "candidate_id": [f"c{b}" for b in j], "cost": cost[i, j]})
    weights = pd.Series(rng.integers(1, 20, size=n).astype(float), index=[f"d{a}" for a in range(n)])
    return cost, keep, costs, weights


def test_time_limit_is_honoured_and_reported_consistently():
    rng = np.random.default_rng(0)
    _, _, costs, weights = random_instance(rng, 400, 120, density=0.3)
    model = PMedian.from_cost_matrix(costs, weights, p=12, max_cost=1000)
    result = model.solve(time_limit_s=0.2)
    assert result.time_s < 5.0
    assert result.bound is not None and result.bound <= result.objective + 1e-6
    if result.optimal:
        assert result.gap <= 1e-5
    else:
        assert result.gap is not None and result.gap > 0


def test_heuristic_is_within_the_exact_bound():
    rng = np.random.default_rng(1)
    _, _, costs, weights = random_instance(rng, 200, 40, density=0.5)
    zones = pd.Series({f"c{j}": f"T{j % 5}" for j in range(40)})
    model = MaxCoverage.from_cost_matrix(costs, weights, threshold=300, zones=zones, quota=1)
    exact = model.solve()
    heuristic = model.solve(method="heuristic")
    assert exact.optimal
    assert heuristic.objective <= exact.objective + 1e-9
    assert heuristic.bound == pytest.approx(exact.bound)
    assert heuristic.gap == pytest.approx((exact.bound - heuristic.objective) / heuristic.objective)
    counts = zones[list(heuristic.selected)].value_counts()
    assert (counts == 1).all() and len(counts) == 5


def brute_force(cost, weights, p, value):
    return min(value(cost[:, list(s)].min(axis=1)) for s in itertools.combinations(range(cost.shape[1]), p))


def test_exact_matches_brute_force_on_a_small_sparse_instance():
    rng = np.random.default_rng(2)
    cost, keep, costs, weights = random_instance(rng, 25, 8, density=0.6)
    capped = np.where(keep, np.minimum(cost, 600.0), 600.0)
    w = weights.to_numpy()
    expected = brute_force(capped, w, 3, lambda c: float(w @ c))
    result = PMedian.from_cost_matrix(costs, weights, p=3, max_cost=600).solve()
    assert result.optimal
    assert result.objective == pytest.approx(expected)


# ---- cross-check against PySAL spopt on the same cost matrices ------------------------------------


@pytest.fixture(scope="module")
def spopt_locate():
    import pulp
    import spopt.locate

    return spopt.locate, pulp


# spopt 0.7 calls PuLP APIs that PuLP 3.3 marks for removal in PuLP 4.0
SPOPT_PULP_WARNINGS = pytest.mark.filterwarnings("ignore:.*PuLP 4.0:DeprecationWarning")


def _spopt_value(model, pulp):
    return float(pulp.value(model.problem.objective))


@SPOPT_PULP_WARNINGS
@pytest.mark.parametrize("seed", [3, 4])
def test_same_optimum_as_spopt(spopt_locate, seed):
    locate, pulp = spopt_locate
    rng = np.random.default_rng(seed)
    n, m, p, radius = 40, 12, 3, 250.0
    cost, _, costs, weights = random_instance(rng, n, m)
    w = weights.to_numpy()
    cbc = pulp.PULP_CBC_CMD(msg=False)

    ours = MaxCoverage.from_cost_matrix(costs, weights, p=p, threshold=radius).solve()
    theirs = locate.MCLP.from_cost_matrix(cost, w, radius, p).solve(cbc)
    assert ours.optimal and ours.objective == pytest.approx(_spopt_value(theirs, pulp))

    ours = PMedian.from_cost_matrix(costs, weights, p=p, max_cost=float(cost.max())).solve()
    theirs = locate.PMedian.from_cost_matrix(cost, w, p).solve(cbc)
    assert ours.optimal and ours.objective == pytest.approx(_spopt_value(theirs, pulp))

    cover_radius = float(np.sort(cost, axis=1)[:, 2].max())  # every demand has ≥ 3 candidates within
    ours = SetCover.from_cost_matrix(costs, weights, threshold=cover_radius).solve()
    theirs = locate.LSCP.from_cost_matrix(cost, cover_radius).solve(cbc)
    assert ours.optimal and ours.objective == pytest.approx(_spopt_value(theirs, pulp))

    ours = PCenter.from_cost_matrix(costs, weights, p=p).solve()
    theirs = locate.PCenter.from_cost_matrix(cost, p).solve(cbc)
    assert ours.optimal and ours.objective == pytest.approx(_spopt_value(theirs, pulp))


@SPOPT_PULP_WARNINGS
def test_same_optimum_as_spopt_with_existing_sites(spopt_locate):
    locate, pulp = spopt_locate
    rng = np.random.default_rng(5)
    cost, _, costs, weights = random_instance(rng, 40, 12)
    w = weights.to_numpy()
    predefined = np.zeros(12, bool)
    predefined[[2, 7]] = True
    cbc = pulp.PULP_CBC_CMD(msg=False)
    ours = MaxCoverage.from_cost_matrix(costs, weights, p=4, threshold=250, existing=["c2", "c7"]).solve()
    theirs = locate.MCLP.from_cost_matrix(cost, w, 250, 4, predefined_facilities_arr=predefined).solve(cbc)
    assert {"c2", "c7"} <= set(ours.selected)
    assert ours.objective == pytest.approx(_spopt_value(theirs, pulp))


# ---- on the 4×4 grid network ------------------------------------------------------------------------


def grid_points(prefix, cells, **columns):
    gdf = gpd.GeoDataFrame(
        {"id": [f"{prefix}{k}" for k in range(len(cells))], **columns},
        geometry=gpd.points_from_xy(*zip(*[xy(r, c) for r, c in cells], strict=True)),
        crs=CRS,
    )
    return gdf


def test_from_network_on_the_grid(grid_net):
    placer = Placer(grid_net)
    top = [(3, 0), (3, 1), (3, 2), (3, 3)]
    demand = grid_points("h", top, town_code=["T1", "T1", "T2", "T2"], households=[1.0, 1.0, 1.0, 5.0])
    candidates = grid_points("s", top, town_code=["T1", "T1", "T2", "T2"])
    stages = []
    model = PMedian.from_network(
        placer,
        demand,
        candidates,
        profile="walk",
        cutoff="1km",
        weight_column="households",
        p=1,
        progress=lambda s, f: stages.append(s),
    )
    result = model.solve()
    # along the top row: weighted median is the east end, 300 + 200 + 100 + 0
    assert result.selected == ("s3",)
    assert result.objective == pytest.approx(600.0)
    assert result.costs["h0"] == pytest.approx(300.0)
    assert result.parameters["measure"] == "network"
    assert stages[0] == "matrix built"

    cover = MaxCoverage.from_network(
        placer, demand, candidates, profile="walk", cutoff="100m", weight_column="households", quota=1
    ).solve()
    # one site per town: T1 gets s0 or s1 (both cover h0+h1... s1 covers h0, h1, h2); T2 gets s3 or s2
    assert cover.objective == pytest.approx(8.0)
    assert cover.by_town["sites"].tolist() == [1, 1]


@pytest.mark.parametrize("method", ["exact", "heuristic"])
def test_new_toilets_keep_the_current_ones_and_cover_the_most(grid_net, method):
    placer = Placer(grid_net)
    demand = grid_points("h", [(0, 0), (0, 1), (2, 2), (3, 2), (3, 3)], town_code=["A", "A", "B", "B", "B"],
                         households=[1.0, 1.0, 3.0, 1.0, 1.0])  # fmt: skip
    toilets = grid_points("t", [(0, 0), (3, 3), (1, 3)], town_code=["A", "B", "B"])
    toilets["status"] = ["accepted", "planned", "completed"]
    toilets["build_type"] = ["new", "new", "rebuild"]
    candidates = grid_points("c", [(2, 2)], town_code=["B"])
    got = site_new_toilets(placer, toilets, demand, candidates, n_new=1, profile="walk", threshold="150m",
                           weight_column="households", method=method)  # fmt: skip
    # kept: t0 (accepted) covers h0, h1; t2 (rebuild) at (1,3) covers nothing within 150 m.
    # c0 at (2,2) covers h2 (3) + h3 (1) = 4; the planned t1 at (3,3) covers h3 + h4 = 2.
    assert got.kept == ("t0", "t2")
    assert got.new_sites == ("c0",)
    assert got.result.selected == ("c0", "t0", "t2")
    assert got.comparison.summary["covered_share_before"] == pytest.approx(2 / 7)
    assert got.comparison.summary["covered_share_after"] == pytest.approx(6 / 7)
    by_town = got.comparison.by_town
    assert by_town.loc["A", "covered_share_before"] == 1.0 and by_town.loc["A", "covered_share_change"] == 0.0
    assert by_town.loc["B", "covered_share_before"] == 0.0
    assert by_town.loc["B", "covered_share_after"] == pytest.approx(4 / 5)
    assert by_town.loc["B", "sites_after"] == 2
    data = got.to_dict()
    assert data["new_sites"] == ["c0"] and data["comparison"]["by_town"][0]["town_code"] == "A"


def test_new_toilets_without_the_planned_sites_or_with_clashing_ids(grid_net):
    placer = Placer(grid_net)
    demand = grid_points("h", [(3, 2), (3, 3)], town_code=["B", "B"])
    toilets = grid_points("t", [(0, 0), (3, 3)], town_code=["A", "B"]).assign(status=["accepted", "planned"])
    candidates = grid_points("c", [(0, 1)], town_code=["A"])
    got = site_new_toilets(placer, toilets, demand, candidates, n_new=1, profile="walk", threshold="150m",
                           planned_as_candidates=False)  # fmt: skip
    assert got.new_sites == ("c0",) and got.result.covered_share == 0.0
    with pytest.raises(ValueError, match=r"reuse toilet ids \['t1'\]"):
        site_new_toilets(placer, toilets, demand, candidates.assign(id=["t1"]), n_new=1, profile="walk",
                         threshold="150m")  # fmt: skip
    assert kept_toilets(toilets).tolist() == [True, False]


@pytest.mark.parametrize("quota", [None, 1])
def test_p_median_lagrangian_reduction_keeps_the_optimum(quota):
    rng = np.random.default_rng(3)
    dem, cand = rng.uniform(0, 1000, size=(300, 2)), rng.uniform(0, 1000, size=(60, 2))
    dist = np.hypot(*(dem[:, None, :] - cand[None, :, :]).transpose(2, 0, 1)).round(1)
    i, j = np.nonzero(dist <= 400)
    costs = pd.DataFrame({"demand_id": [f"d{a}" for a in i], "candidate_id": [f"c{b}" for b in j], "cost": dist[i, j]})
    weights = pd.Series(rng.integers(1, 20, size=300).astype(float), index=[f"d{a}" for a in range(300)])
    zones = pd.Series({f"c{j}": f"T{j % 6}" for j in range(60)})
    kw = {"zones": zones, "quota": quota} if quota else {"p": 6}
    options = {"max_cost": 400, "existing": ["c7"], "candidates": zones.index, **kw}
    reduced = PMedian.from_cost_matrix(costs, weights, **options).solve(time_limit_s=30)
    plain_model = PMedian.from_cost_matrix(costs, weights, **options)
    plain_model._fixed = np.full(60, -1)  # every site free: the plain MILP on all pairs
    plain = plain_model.solve(time_limit_s=30)
    assert "Lagrangian" in reduced.solver and "Lagrangian" not in plain.solver
    assert reduced.optimal and plain.optimal
    assert reduced.objective == pytest.approx(plain.objective, rel=1e-9)
    assert "c7" in reduced.selected and len(reduced.selected) == 6
    assert reduced.bound <= reduced.objective * (1 + 1e-9)


@pytest.mark.parametrize(
    ("model", "kwargs", "match"),
    [
        (SetCover, {"threshold": 100, "p": 2}, "SetCover.*does not take `p`"),
        (MaxCoverage, {"threshold": 100, "p": 1, "max_cost": 300}, "MaxCoverage.*does not take `max_cost`"),
        (PCenter, {"p": 1, "capacity": 5.0}, "PCenter.*does not take `capacity`"),
        (MaxCoverage, {"p": 1}, "needs `threshold`"),
        (SetCover, {}, "needs `threshold`"),
    ],
)
def test_options_a_model_does_not_take_raise(model, kwargs, match):
    with pytest.raises(TypeError, match=match):
        model.from_cost_matrix(line_costs(), LINE_W, **kwargs)


def test_every_model_shares_one_constructor():
    # one from_cost_matrix for all models; each builds its own class and defaults
    models = (MaxCoverage, PMedian, SetCover, PCenter)
    assert len({m.from_cost_matrix.__func__ for m in models}) == 1
    pm = PMedian.from_cost_matrix(line_costs(), LINE_W, p=1)
    sc = SetCover.from_cost_matrix(line_costs(3), LINE_W.iloc[:3], threshold=100)
    assert type(pm) is PMedian and pm.max_cost == 400.0  # the table's largest cost
    assert type(sc) is SetCover and sc.max_cost == 100.0 and sc.parameters["uncoverable"] == 0
