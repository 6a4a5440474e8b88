"""The display layers of the planner's result maps: dense points as counts per hexagon, hand-checked."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from geo.hexgrid import axial, hex_polygons
from webmap.maps.result_layers import PointGroup, point_layers

#: A projected CRS in metres (UTM 48N, Bishan's zone).
CRS = "EPSG:32648"


def _points(xy):
    return gpd.GeoDataFrame({"demand_id": [f"d{i}" for i in range(len(xy))]},
                            geometry=gpd.points_from_xy(*np.array(xy).T), crs=CRS).to_crs("EPSG:4326")  # fmt: skip


def test_axial_puts_points_in_the_hexagon_whose_centre_is_nearest():
    # edge 100 m: centre of (q, r) at x = 100·√3·(q + r/2), y = 150·r; (1, 0) at (173.2, 0), (0, 1) at (86.6, 150)
    x = np.array([0.0, 40.0, 170.0, 90.0, -173.0])
    y = np.array([0.0, -30.0, 5.0, 140.0, 0.0])
    q, r = axial(x, y, 100.0)
    assert list(zip(q.tolist(), r.tolist(), strict=True)) == [(0, 0), (0, 0), (1, 0), (0, 1), (-1, 0)]
    (poly,) = hex_polygons(np.array([1]), np.array([0]), 100.0)
    assert shapely.Point(170.0, 5.0).within(poly) and abs(poly.area - 1.5 * np.sqrt(3) * 100.0**2) < 1e-6


def test_dense_points_become_hexagon_counts_that_add_up_to_each_group():
    # five points, edge 100 m: three in one hexagon (two covered), two in the next (one covered)
    xy = [(500_000.0, 3_300_000.0), (500_010.0, 3_300_020.0), (499_980.0, 3_299_990.0),
          (500_173.0, 3_300_000.0), (500_180.0, 3_300_010.0)]  # fmt: skip
    points = _points(xy)
    covered = np.array([True, True, False, True, False])
    groups = (PointGroup(covered, "已覆盖的需求点", "#1a7f37"), PointGroup(~covered, "未覆盖的需求点", "#c62828"))
    q, r = axial(np.array([p[0] for p in xy]), np.array([p[1] for p in xy]), 100.0)
    assert len(set(zip(q.tolist(), r.tolist(), strict=True))) == 2  # the fixture's two hexagons
    (layer,) = point_layers("points", points, groups, crs=CRS, labels=points["demand_id"].tolist(), max_points=4,
                            size=100.0)  # fmt: skip
    labels = sorted(f["properties"]["label"] for f in layer.features)
    assert labels == ["已覆盖的需求点：1；未覆盖的需求点：1", "已覆盖的需求点：2；未覆盖的需求点：1"]
    assert layer.legend == (("已覆盖的需求点", 3), ("未覆盖的需求点", 2)) and layer.name == "points_hex"
    # shaded by the share not covered: 0.1 + 0.7·(1/3) and 0.1 + 0.7·(1/2)
    opacities = sorted(f["properties"]["style"]["fillOpacity"] for f in layer.features)
    assert opacities == [round(0.1 + 0.7 / 3, 2), round(0.1 + 0.7 / 2, 2)]
    assert layer.style == {"color": "#c62828", "weight": 0.5, "fillColor": "#c62828"}
    # no demand id leaves as a label once counted
    assert not any("d" in f["properties"]["label"] for f in layer.features)


def test_few_points_stay_points_one_layer_per_group_with_their_ids():
    points = _points([(500_000.0, 3_300_000.0), (500_500.0, 3_300_000.0), (501_000.0, 3_300_000.0)])
    covered = np.array([True, False, True])
    groups = (PointGroup(covered, "已覆盖的需求点", "#1a7f37"), PointGroup(~covered, "未覆盖的需求点", "#c62828"))
    yes, no = point_layers("points", points, groups, crs=CRS, labels=points["demand_id"].tolist())
    assert [f["properties"]["label"] for f in yes.features] == ["d0", "d2"]
    assert [f["properties"]["label"] for f in no.features] == ["d1"]
    assert yes.features[0]["geometry"]["type"] == "Point"
    lon, lat = no.features[0]["geometry"]["coordinates"]
    assert (round(lon, 5), round(lat, 5)) == (lon, lat)  # rounded to ~1 m


def test_steep_pieces_become_one_line_layer_per_closure():
    from webmap.maps.results import steep_layers

    lines = [shapely.LineString([(106.2, 29.58), (106.2, 29.581)]), shapely.LineString([(106.3, 29.5), (106.31, 29.5)]),
             shapely.LineString([(106.4, 29.6), (106.4, 29.61)])]  # fmt: skip
    steep = gpd.GeoDataFrame({"name": ["坡上路", "", "坡道"], "highway": ["footway", "steps", "footway"],
                              "grade_percent": [12.04, 30.0, 6.0], "closed": ["both", "both", "open"]},
                             geometry=lines, crs="EPSG:4326").to_crs("EPSG:32648")  # fmt: skip
    layers = {layer.name: layer for layer in steep_layers(steep, synthetic_dem=True)}
    assert sorted(layers) == ["steep_both", "steep_open"]
    both = layers["steep_both"]
    # one feature per whole percent of gradient, each piece a part of it, drawn as given (uphill)
    assert [f["properties"]["label"] for f in both.features] == ["12–13%", "30–31%"]
    assert [f["geometry"]["type"] for f in both.features] == ["MultiLineString"] * 2
    assert both.features[0]["geometry"]["coordinates"][0][0] == [106.2, 29.58]
    assert both.legend == (("因坡度双向不能通行的路段（坡度来自合成 DEM）", 2),)
    assert both.style["color"] == "#5c0a0a"
    real = {layer.name: layer for layer in steep_layers(steep, synthetic_dem=False)}
    assert real["steep_open"].legend == (("陡坡路段（≥ 1:20，可通行）", 1),)
