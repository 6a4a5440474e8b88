"""Households and people within reach of a toilet, before and after, counted by hand on the 4×4 test grid."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest

from analyses.costs import Placer
from analyses.toilet_reach import toilet_reach
from tests.geo.conftest import CRS, X0, Y0


def _points(rows, **columns) -> gpd.GeoDataFrame:
    ids, xs, ys = zip(*rows, strict=True)
    return gpd.GeoDataFrame({"id": ids, **columns}, geometry=gpd.points_from_xy(xs, ys), crs=CRS)


def _villages() -> gpd.GeoDataFrame:
    rows = [
        ("V1", X0 + 100, Y0),  # 100 m from A along row 0: reached before and after
        ("V2", X0 + 200, Y0 + 300),  # 100 m from P along row 3, 500 m from A: after only
        ("V3", X0 + 300, Y0 + 200),  # 100 m from P along column 3: after only
        ("V4", X0 + 200, Y0 + 100),  # 300 m from A and from P: never within 150 m
        ("V5", X0 + 1050, Y0 + 10),  # beside the isolated piece: unreachable
    ]
    ids = [r[0] for r in rows]
    frame = _points(rows, village_code=ids, town_code=["T1", "T2", "T2", "T1", "T1"],
                    urban_rural_code=["111"] * 5, households=[10, 20, 5, 7, 100],
                    population=[25, 50, 12, 15, 260])  # fmt: skip
    return frame.drop(columns="id")


def test_a_planned_toilet_adds_households_and_people_per_town(grid_net):
    placer = Placer(grid_net, max_snap_m=500)
    accepted = _points([("A", X0, Y0)])
    planned = _points([("P", X0 + 300, Y0 + 300)])
    reach = toilet_reach(placer, accepted, planned, _villages(), profile="walk", threshold="150m")
    expected = pd.DataFrame(
        {"villages_before": [1, 0], "villages_after": [1, 2], "households_before": [10, 0],
         "households_after": [10, 25], "population_before": [25, 0], "population_after": [25, 62]},
        index=pd.Index(["T1", "T2"], name="town_code"),
    )  # fmt: skip
    pd.testing.assert_frame_equal(reach.by_town, expected)
    assert reach.total["households_before"] == 10 and reach.total["households_after"] == 35
    assert reach.total["population_after"] == 87
    assert list(reach.changed_towns.index) == ["T2"]
    assert reach.threshold == "150m"


def test_an_accepted_toilet_is_left_out_of_before(grid_net):
    placer = Placer(grid_net, max_snap_m=500)
    accepted = _points([("A", X0, Y0), ("P", X0 + 300, Y0 + 300)])
    reach = toilet_reach(placer, accepted, accepted.iloc[[1]], _villages(), profile="walk", threshold="150m")
    assert reach.total["households_before"] == 10 and reach.total["households_after"] == 35


def test_the_only_toilet_starts_from_nothing(grid_net):
    placer = Placer(grid_net, max_snap_m=500)
    only = _points([("A", X0, Y0)])
    reach = toilet_reach(placer, only, only, _villages(), profile="walk", threshold="150m")
    assert reach.total["villages_before"] == 0 and reach.total["villages_after"] == 1
    with pytest.raises(ValueError, match="one toilet"):
        toilet_reach(placer, only, only.iloc[[]], _villages(), profile="walk", threshold="150m")
