"""Road lines for the map (geo.roadlines), on a hand-made OSM file."""

from __future__ import annotations

import osmium
import pytest
from osmium.osm.mutable import Node, Way

from geo.osm import read_roads
from geo.prepared import prepare_roads
from geo.profiles import load_profiles
from geo.roadlines import ROAD_BANDS, band_for_zoom, band_roads_geojson, main_roads_geojson, road_lines


def _net(tmp_path):
    # five nodes 0.001 degree apart eastwards on 29.5 N:  1 - 2 - 3 - 4 - 5
    path = tmp_path / "lines.osm.pbf"
    ways = [
        (10, [1, 2], {"highway": "primary", "name": "璧山大道"}),
        (11, [2, 3], {"highway": "primary_link", "name": "璧山大道"}),
        (12, [3, 4], {"highway": "secondary"}),
        (13, [4, 5], {"highway": "residential", "name": "小巷"}),
    ]
    with osmium.SimpleWriter(str(path)) as writer:
        for i in range(1, 6):
            writer.add_node(Node(id=i, location=(106.0 + 0.001 * i, 29.5)))
        for way_id, refs, tags in ways:
            writer.add_way(Way(id=way_id, nodes=refs, tags=tags))
    return prepare_roads(read_roads(path), crs="EPSG:32648", profiles=load_profiles())


def test_road_lines_keep_class_and_name_per_piece(tmp_path):
    lines = road_lines(_net(tmp_path))
    assert sorted(zip(lines["highway"], lines["name"], strict=True)) == [
        ("primary", "璧山大道"), ("primary_link", "璧山大道"), ("residential", "小巷"), ("secondary", ""),
    ]  # fmt: skip
    assert lines.crs == "EPSG:32648"
    # in UTM 48N, 0.001 degree of longitude at 29.5 N on the WGS-84 ellipsoid: N cos(lat) dlon * k with
    # N = 6,378,137 / sqrt(1 - 0.0066944 sin^2(29.5)) = 6,383,290 m and scale k = 0.9996 (1 + (cos(29.5) *
    # radians(1))^2 / 2) = 0.99972 (1 degree from the central meridian): 96.966 * 0.99972 = 96.94 m
    assert lines.length.to_numpy() == pytest.approx([96.94] * 4, abs=0.01)


def test_main_roads_merge_a_street_and_its_links_and_leave_minor_roads_out(tmp_path):
    roads = main_roads_geojson(_net(tmp_path))
    assert [f["properties"] for f in roads["features"]] == [
        {"highway": "primary", "name": "璧山大道", "pieces": 2},
        {"highway": "secondary", "name": "", "pieces": 1},
    ]
    # the two pieces of 璧山大道 are one line 1 -> 3 (the middle vertex is on it, simplified away)
    assert roads["features"][0]["geometry"]["coordinates"] == [[[106.001, 29.5], [106.003, 29.5]]]
    assert roads["features"][1]["geometry"]["coordinates"] == [[[106.003, 29.5], [106.004, 29.5]]]


def test_bands_by_zoom_show_names_only_from_zoom_14():
    assert [band_for_zoom(z).name for z in (0, 10.25, 11.75, 12, 13.5, 14, 15, 19)] == [
        "district", "district", "district", "town", "town", "street", "street", "street",
    ]  # fmt: skip
    assert [(b.name, b.names) for b in ROAD_BANDS] == [("district", False), ("town", False), ("street", True)]


def test_band_roads_keep_their_classes_and_names_only_at_street_zoom(tmp_path):
    net = _net(tmp_path)
    district = band_roads_geojson(net, band_for_zoom(11))
    # trunk/primary/secondary; no names, so one feature per class
    assert [f["properties"] for f in district["features"]] == [
        {"highway": "primary", "name": "", "pieces": 2},
        {"highway": "secondary", "name": "", "pieces": 1},
    ]
    town = band_roads_geojson(net, band_for_zoom(13))
    assert [f["properties"]["name"] for f in town["features"]] == ["", ""]
    street = band_roads_geojson(net, band_for_zoom(15))
    assert [f["properties"] for f in street["features"]] == [
        {"highway": "primary", "name": "璧山大道", "pieces": 2},
        {"highway": "secondary", "name": "", "pieces": 1},
        {"highway": "residential", "name": "小巷", "pieces": 1},
    ]
    # 2 m tolerance: the 97 m residential piece 4 -> 5 keeps both ends
    assert street["features"][2]["geometry"]["coordinates"] == [[[106.004, 29.5], [106.005, 29.5]]]
