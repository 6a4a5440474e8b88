from __future__ import annotations

import geopandas as gpd
import pytest
from shapely.geometry import Point

from analyses.candidates import candidates_near_seats, load_candidates
from tests.geo.conftest import CRS, X0, Y0, node, xy


def seats(**where: tuple[float, float]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"town_code": list(where)}, geometry=[Point(xy(*rc)) for rc in where.values()], crs=CRS)


def test_nodes_within_the_radius_of_each_seat(grid_net):
    towns = gpd.GeoDataFrame({"town_code": ["A", "B"]}, geometry=[Point(xy(0, 0)), Point(X0 + 1050, Y0)], crs=CRS)
    got = candidates_near_seats(grid_net, towns, radius_m=150)
    # A: (0,0) at 0 m, (0,1) and (1,0) at 100 m, (1,1) at 141 m; B: the isolated piece 17–18, 50 m each
    assert got["id"].tolist() == ["C-A-1", "C-A-2", "C-A-5", "C-A-6", "C-B-17", "C-B-18"]
    assert got["seat_distance_m"].round(1).tolist() == [0.0, 100.0, 100.0, 141.4, 50.0, 50.0]
    assert set(got["highway"]) == {"residential"} and set(got["source"]) == {"generated"}
    assert got.crs == CRS
    assert (got.geometry.x.iloc[1], got.geometry.y.iloc[1]) == xy(0, 1)


def test_each_node_joins_the_nearest_seat_only(grid_net):
    got = candidates_near_seats(grid_net, seats(A=(0, 0), C=(0, 3)), radius_m=250)
    town = dict(zip(got["node_id"], got["town_code"], strict=True))
    assert town[node(0, 1)] == "A" and town[node(0, 2)] == "C"  # 100 m vs 200 m either way
    assert len(got) == len(set(got["node_id"]))


def test_road_classes_filter_the_nodes(grid_net):
    got = candidates_near_seats(grid_net, seats(S=(3, 0)), radius_m=150, highway_classes=("steps",))
    # only the steps piece (2,0)–(3,0) qualifies; (3,1) is on residential roads only
    assert got["node_id"].tolist() == [node(3, 0), node(2, 0)]
    assert got["highway"].tolist() == ["steps", "steps"]
    assert candidates_near_seats(grid_net, seats(S=(3, 0)), radius_m=150, highway_classes=("primary",)).empty


def test_per_town_max_keeps_the_nearest_then_spreads_out(grid_net):
    got = candidates_near_seats(grid_net, seats(A=(0, 0)), radius_m=150, per_town_max=2)
    # ranked (0,0) 0 m, (0,1) 100, (1,0) 100, (1,1) 141: keep the first and the last
    assert got["id"].tolist() == ["C-A-1", "C-A-6"]


def test_bad_arguments_are_refused(grid_net):
    with pytest.raises(ValueError, match="radius_m"):
        candidates_near_seats(grid_net, seats(A=(0, 0)), radius_m=0)
    with pytest.raises(ValueError, match="town_code"):
        candidates_near_seats(grid_net, seats(A=(0, 0)).rename(columns={"town_code": "code"}), radius_m=100)


def test_candidates_from_a_point_file(bishan, tmp_path):
    path = tmp_path / "sites.geojson"
    points = gpd.GeoDataFrame(
        {"id": [1, 2], "town_code": ["500120001", "500120108"]},
        geometry=[Point(106.22, 29.59), Point(106.18, 29.36)],
        crs="EPSG:4326",
    )
    points.to_file(path)
    got = load_candidates(str(path), store=None, district=bishan)
    assert got["id"].tolist() == ["1", "2"] and got["town_code"].tolist() == ["500120001", "500120108"]
    assert set(got["source"]) == {str(path)}
    csv = tmp_path / "sites.csv"
    csv.write_text("id,lon,lat,town_code\nx,106.22,29.59,500120001\nx,106.18,29.36,500120108\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"repeated: \['x'\]"):
        load_candidates(str(csv), store=None, district=bishan, datum="wgs84")
