from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from analyses.costs import Placer, parse_threshold
from analyses.coverage import compare_scenarios, measure_coverage
from analyses.inputs import assign_towns, grid_demand, mark_urban, villages_as_demand
from tests.geo.conftest import CRS, X0, Y0


def _points(rows: list[tuple[str, float, float]], **columns) -> gpd.GeoDataFrame:
    ids, xs, ys = zip(*rows, strict=True)
    frame = pd.DataFrame({"id": ids, "town_code": columns.pop("town_code", ["500120001"] * len(ids)), **columns})
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(xs, ys), crs=CRS)


@pytest.fixture
def placer(grid_net):
    return Placer(grid_net, max_snap_m=500)


def test_thresholds_parse_with_units():
    assert parse_threshold("800m").value == 800 and parse_threshold("800m").weight == "length"
    assert parse_threshold("1.5km").value == 1500
    assert parse_threshold("15min").value == 900 and parse_threshold("15min").weight == "travel_time"
    with pytest.raises(ValueError, match="positive number with a unit"):
        parse_threshold("15 furlongs")


def test_hand_computed_costs_coverage_and_unreachable_points(placer):
    facilities = _points([("F", X0, Y0)])
    demand = _points(
        [
            ("A", X0 + 300, Y0),  # on node (0,3): 300 m along row 0
            ("B", X0 + 150, Y0 + 30),  # 30 m off the road, halfway (0,1)-(0,2): 30 + 150
            ("C", X0 + 1050, Y0 + 10),  # beside the isolated piece 17-18: unreachable
            ("D", X0 + 150, Y0 + 2000),  # 2 km from any road: too far, never attached
        ],
        population=[1.0, 3.0, 2.0, 4.0],
    )
    result = measure_coverage(
        placer, facilities, demand, profile="walk", thresholds=["200m"], weight_column="population"
    )
    points = result.points
    assert points.loc["A", "cost_m"] == pytest.approx(300.0)
    assert points.loc["B", "cost_m"] == pytest.approx(180.0)
    assert points.loc["B", "snap_distance_m"] == pytest.approx(30.0)
    assert points["covered_200m"].tolist() == [False, True, False, False]
    assert points["reachable"].tolist() == [True, True, False, False]
    assert points["too_far"].tolist() == [False, False, False, True]
    assert np.isnan(points.loc["C", "cost_m"]) and np.isnan(points.loc["D", "cost_m"])  # never 0 or inf
    assert points.loc["A", "facility_id_m"] == "F" and pd.isna(points.loc["C", "facility_id_m"])
    summary = result.summary
    assert summary["unreachable"] == 2 and summary["too_far_from_road"] == 1
    assert summary["covered_200m"]["covered"] == 1
    assert summary["covered_200m"]["weighted_share"] == pytest.approx(3 / 10)
    assert summary["cost_m"]["max"] == pytest.approx(300.0)  # only reachable points enter the quantiles
    payload = result.to_dict()
    assert payload["points"][2] == {"id": "C", "facility_id": None, "cost": None, "covered": {"200m": False},
                                    "reachable": False, "too_far": False}  # fmt: skip


def test_one_way_streets_count_the_way_a_traveller_meets_them(placer):
    # Row 1 is one-way eastbound: from (1,3) a car must go round by row 0 to reach (1,0).
    facilities = _points([("F", X0, Y0 + 100)])
    demand = _points([("E", X0 + 300, Y0 + 100)])
    drive = measure_coverage(placer, facilities, demand, profile="drive", thresholds=["400m"])
    walk = measure_coverage(placer, facilities, demand, profile="walk", thresholds=["400m"])
    assert drive.points.loc["E", "cost_m"] == pytest.approx(500.0)
    assert walk.points.loc["E", "cost_m"] == pytest.approx(300.0)
    assert (drive.points.loc["E", "covered_400m"], walk.points.loc["E", "covered_400m"]) == (False, True)


def test_time_thresholds_use_the_profile_speed(placer):
    facilities = _points([("F", X0, Y0)])
    demand = _points([("A", X0 + 300, Y0)])
    result = measure_coverage(placer, facilities, demand, profile="walk", thresholds=["4min", "200m"])
    assert result.points.loc["A", "cost_s"] == pytest.approx(300 / (5 / 3.6))  # 216 s at 5 km/h
    assert result.points.loc["A", "covered_4min"] and not result.points.loc["A", "covered_200m"]
    entry = result.to_dict()["points"][0]
    assert entry["cost"] == pytest.approx(216.0) and entry["costs"]["m"] == pytest.approx(300.0)


def test_urban_and_rural_points_take_their_own_threshold(placer):
    facilities = _points([("F", X0, Y0)])
    demand = _points([("A", X0 + 300, Y0), ("B", X0 + 150, Y0 + 30)], urban=[True, False])
    result = measure_coverage(
        placer, facilities, demand, profile="walk", thresholds=[], class_thresholds={"urban": "350m", "rural": "100m"}
    )
    assert result.points["covered_by_class"].tolist() == [True, False]


def test_per_town_summary_and_scenario_change(placer):
    demand = _points([("A", X0 + 300, Y0), ("B", X0 + 300, Y0 + 300)], town_code=["T1", "T2"])
    before = measure_coverage(placer, _points([("F", X0, Y0)]), demand, profile="walk", thresholds=["150m"])
    after = measure_coverage(
        placer, _points([("F", X0, Y0), ("G", X0 + 300, Y0 + 200)]), demand, profile="walk", thresholds=["150m"]
    )
    assert before.by_town["covered_150m_share"].tolist() == [0.0, 0.0]
    change = compare_scenarios(before, after)
    assert change.by_town_change["covered_150m_share_change"].to_dict() == {"T1": 0.0, "T2": 1.0}
    assert change.summary_change["covered_150m"]["newly_covered"] == 1
    assert change.summary_change["covered_150m"]["change"] == pytest.approx(0.5)


def test_bad_inputs_name_the_problem(placer):
    facilities = _points([("F", X0, Y0)])
    with pytest.raises(ValueError, match="at least one `thresholds`"):
        measure_coverage(placer, facilities, _points([("A", X0, Y0)]), profile="walk", thresholds=[])
    with pytest.raises(ValueError, match="repeated: \\['A'\\]"):
        measure_coverage(placer, facilities, _points([("A", X0, Y0), ("A", X0, Y0)]), profile="walk", thresholds=["1m"])
    with pytest.raises(ValueError, match="'urban' and/or 'rural'"):
        measure_coverage(placer, facilities, _points([("A", X0, Y0)]), profile="walk", thresholds=[],
                         class_thresholds={"suburban": "1m"})  # fmt: skip


# --- the embedded Bishan data, end to end ------------------------------------------------------


@pytest.fixture(scope="module")
def bishan_households(bishan, bishan_layer):
    return mark_urban(bishan_layer("household"), bishan.villages)


def test_bishan_households_against_accepted_toilets(bishan_net, bishan_layer, bishan_households):
    toilets = bishan_layer("accessible_toilet", status="accepted")
    result = measure_coverage(Placer(bishan_net), toilets, bishan_households, profile="walk", thresholds=["800m"])
    points = result.points
    assert len(points) == len(bishan_households) and result.summary["unreachable"] == 0
    # a network cost is never shorter than the straight line from the household to its facility
    home = bishan_households.set_index("id").to_crs(bishan_net.crs).geometry
    site = toilets.set_index("id").to_crs(bishan_net.crs).geometry
    straight = home.loc[points.index].distance(site.loc[points["facility_id_m"]].set_axis(points.index))
    assert (points["cost_m"] >= straight - 1e-6).all()
    assert points["covered_800m"].sum() == (points["cost_m"] <= 800).sum() == result.summary["covered_800m"]["covered"]
    assert result.by_town["points"].sum() == len(points)
    assert set(result.by_town.index) <= set(bishan_households["town_code"])


def test_bishan_villages_and_grid_demand(bishan, bishan_net, bishan_layer):
    centres = bishan_layer("service_centre", status="open")
    villages = villages_as_demand(bishan.villages)
    result = measure_coverage(Placer(bishan_net), centres, villages, profile="drive", thresholds=["15min"],
                              weight_column="population")  # fmt: skip
    covered = result.points["covered_15min"]
    expected = villages.set_index("id")["population"][covered[covered].index].sum() / villages["population"].sum()
    assert result.summary["covered_15min"]["weighted_share"] == pytest.approx(expected)
    grid = assign_towns(grid_demand(bishan.boundary, crs=bishan.crs, spacing_m=2000), bishan.town_areas, crs=bishan.crs)
    area_km2 = bishan.boundary.to_crs(bishan.crs).area.sum() / 1e6
    assert len(grid) == pytest.approx(area_km2 / 4, rel=0.1)  # one point per 4 km²
    assert grid["town_code"].notna().all() and grid["id"].is_unique
