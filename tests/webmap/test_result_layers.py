"""The display layers of the planner's result maps: dense points as counts per hexagon, hand-checked."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.hexgrid import axial, hex_polygons, tile_bounds, tile_xy
from webmap.maps.result_layers import (
    ZOOM_LEVELS,
    PointGroup,
    ZoomLevel,
    legend_text,
    level_tiles,
    point_layers,
    read_index,
    tile_collection,
    write_layers,
)

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


#: A transverse Mercator centred in Bishan: every hexagon grid has a hexagon centred at its origin (0, 0).
LOCAL = "+proj=tmerc +lat_0=29.6 +lon_0=106.2 +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"


def _counts(collection):
    """Return (covered, not covered) per feature label "已覆盖的需求点：a；未覆盖的需求点：b", sorted."""
    import re

    return sorted(tuple(int(n) for n in re.findall(r"：(\d+)", f["properties"]["label"]))
                  for f in collection["features"])  # fmt: skip


def test_each_zoom_level_counts_every_point_once_in_cells_known_by_hand(tmp_path):
    # edge 300 m (the layer's own) and 100 m (a finer level): both grids have a hexagon centred at (0, 0).
    # 100 m: (0, 0) holds the first three points; (1, 0), centre (173.2, 0), the next two; (0, 1), centre
    # (86.6, 150), the sixth; (6, 0), centre (1039.2, 0), the last. 300 m: the first six are within 259.8 m
    # (the inradius) of (0, 0); the last is in (2, 0), centre (1039.2, 0).
    xy = [(0.0, 0.0), (10.0, 20.0), (-20.0, -10.0), (170.0, 5.0), (180.0, -10.0), (90.0, 140.0), (1000.0, 0.0)]
    points = gpd.GeoDataFrame({"demand_id": [f"d{i}" for i in range(7)]},
                              geometry=gpd.points_from_xy(*np.array(xy).T), crs=LOCAL).to_crs("EPSG:4326")  # fmt: skip
    covered = np.array([True, True, False, True, False, True, False])
    groups = (PointGroup(covered, "已覆盖的需求点", "#1a7f37"), PointGroup(~covered, "未覆盖的需求点", "#c62828"))
    level = ZoomLevel(13, 100.0, 13)
    (layer,) = point_layers("points", points, groups, crs=LOCAL, labels=points["demand_id"].tolist(), max_points=4,
                            size=300.0, levels=(level,))  # fmt: skip
    assert _counts(layer.collection()) == [(0, 1), (4, 2)]  # 300 m: (2, 0) and (0, 0)
    (cells,) = layer.zoom.cells
    assert sorted(zip(cells["q"].tolist(), cells["r"].tolist(), map(tuple, cells["n"].tolist()), strict=True)) == [
        (0, 0, (2, 1)), (0, 1, (1, 0)), (1, 0, (1, 1)), (6, 0, (0, 1))]  # fmt: skip
    write_layers(tmp_path, [layer])
    tiles = level_tiles(tmp_path, "points_hex", 0)
    assert sum(n for _x, _y, n in tiles) == 4
    served = [c for x, y, _n in tiles for c in _counts(tile_collection(tmp_path, "points_hex", 0, x, y))]
    assert sorted(served) == [(0, 1), (1, 0), (1, 1), (2, 1)]
    assert [sum(c[0] for c in served), sum(c[1] for c in served)] == [4, 3]  # every point once, in its group
    # each cell is sent with the tile holding its centre: (0, 0)'s centre is the grid's origin
    x0, y0 = tile_xy(np.array([106.2]), np.array([29.6]), 13)
    first = tile_collection(tmp_path, "points_hex", 0, int(x0[0]), int(y0[0]))
    hexagon = next(shapely.geometry.shape(f["geometry"]) for f in first["features"]
                   if f["properties"]["label"] == "已覆盖的需求点：2；未覆盖的需求点：1")  # fmt: skip
    assert hexagon.contains(shapely.Point(106.2, 29.6))
    assert abs(hexagon.area / shapely.geometry.shape(layer.features[0]["geometry"]).area - 1 / 9) < 0.01
    assert first["style"] == {"color": "#c62828", "weight": 0.5, "fillColor": "#c62828"}
    # a tile without cells is empty; a level the layer does not have is None
    assert tile_collection(tmp_path, "points_hex", 0, 0, 0)["features"] == []
    assert tile_collection(tmp_path, "points_hex", 1, 0, 0) is None
    # the index keeps what the page needs, and the legend says what a cell shows
    (entry,) = read_index(tmp_path)
    assert entry["zoom"]["levels"] == [{"min_zoom": 13, "edge_m": 100.0, "tile_zoom": 13}]
    assert entry["zoom"]["coarse_m"] == 300.0
    assert legend_text(entry["legend"], entry["zoom"]) == (
        "已覆盖的需求点（4）；未覆盖的需求点（3）；每个六边形显示其中各类点的个数，颜色越深未覆盖的比例越高；"
        "边长 300 → 100 米，随地图放大变细")  # fmt: skip


def test_tile_xy_and_tile_bounds_agree_with_the_slippy_map_formula():
    # zoom 1: four tiles, the equator and the meridian split them; (106.2, 29.6) is in the north-east one
    x, y = tile_xy(np.array([106.2, -10.0, -180.0, 180.0]), np.array([29.6, -5.0, 85.1, -85.1]), 1)
    assert (x.tolist(), y.tolist()) == ([1, 0, 0, 1], [0, 1, 0, 1])
    west, south, east, north = tile_bounds(1, 0, 1)
    assert (west, south, east) == (0.0, 0.0, 180.0) and abs(north - 85.0511287798) < 1e-9
    # Bishan at zoom 13: x = floor((106.2 + 180) / 360 · 8192) = 6512
    (bx,), (by,) = tile_xy(np.array([106.2]), np.array([29.6]), 13)
    w, s_, e, n = tile_bounds(int(bx), int(by), 13)
    assert bx == 6512 and w <= 106.2 < e and s_ <= 29.6 < n


@pytest.mark.parametrize("level", range(len(ZOOM_LEVELS)))
def test_a_tile_filled_with_points_stays_under_600_kb_at_every_level(tmp_path, level):
    # a point every edge metres over a whole tile in Bishan (a square lattice of that spacing puts a point in
    # every hexagon of the edge): the tile holds every cell it can, with the longest labels (three groups)
    lv = ZOOM_LEVELS[level]
    (tx,), (ty,) = tile_xy(np.array([106.2]), np.array([29.6]), lv.tile_zoom)
    west, south, east, north = tile_bounds(int(tx), int(ty), lv.tile_zoom)
    corners = gpd.GeoSeries(gpd.points_from_xy([west, east], [south, north]), crs="EPSG:4326").to_crs(CRS)
    xs = np.arange(corners.x.min() - lv.edge_m, corners.x.max() + lv.edge_m, lv.edge_m)
    ys = np.arange(corners.y.min() - lv.edge_m, corners.y.max() + lv.edge_m, lv.edge_m)
    gx, gy = np.meshgrid(xs, ys)
    lattice = gpd.points_from_xy(gx.ravel(), gy.ravel())
    points = gpd.GeoDataFrame({"demand_id": np.arange(gx.size).astype(str)}, geometry=lattice, crs=CRS).to_crs(4326)
    which = np.arange(len(points)) % 3
    groups = tuple(PointGroup(which == i, name, "#c62828") for i, name in
                   enumerate(("原已覆盖的需求点", "新增覆盖的需求点", "仍未覆盖的需求点")))  # fmt: skip
    (layer,) = point_layers("points", points, groups, crs=CRS, labels=points["demand_id"].tolist(), max_points=10,
                            levels=(lv,))  # fmt: skip
    write_layers(tmp_path, [layer])
    collection = tile_collection(tmp_path, "points_hex", 0, int(tx), int(ty))
    import json

    body = json.dumps(collection, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    cells = len(collection["features"])
    assert 0.8 * lv.max_cells(29.6) < cells <= lv.max_cells(29.6)  # full, and within the geometric bound
    assert len(body) <= 600 * 1024, (cells, len(body))
    (table,) = layer.zoom.cells
    assert int(table["n"].sum()) == len(points)  # every point in one cell of the level
