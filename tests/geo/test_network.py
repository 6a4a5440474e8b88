from __future__ import annotations

import bz2
import math
import shutil
from pathlib import Path

import networkx as nx
import osmium
import osmnx as ox
import pytest
from pyproj import Geod
from shapely.geometry import Point, Polygon, box

from geo import network
from geo.errors import NetworkError
from geo.network import add_travel_times_inplace, download_osm, graph_from_file, project_graph
from geo.profiles import load_profiles

DATA = Path(__file__).parents[1] / "data"
TINY = DATA / "tiny.osm"
OAKLAND = DATA / "West-Oakland.osm.bz2"
MUNICH = DATA / "planet_10.068,48.135_10.071,48.137.osm"
EARTH_RADIUS_M = 6_371_009  # the radius osmnx uses for great-circle lengths


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def geometry_length_m(line) -> float:
    xy = list(line.coords)
    return sum(haversine_m(*a, *b) for a, b in zip(xy, xy[1:], strict=False))


@pytest.fixture(scope="module")
def tiny() -> nx.MultiDiGraph:
    return graph_from_file(TINY)


# --- the tiny hand-written fixture ---------------------------------------------------------------


def test_tiny_keeps_only_highway_ways_and_merges_the_interior_node(tiny):
    # building, area=yes footway and construction ways are dropped; node 2 is inside way 100
    assert sorted(tiny.nodes) == [1, 3, 4, 5, 6]
    assert sorted(tiny.edges()) == [(1, 3), (3, 1), (3, 4), (3, 5), (4, 3), (5, 6), (6, 4), (6, 5)]
    assert tiny.graph["crs"] == "epsg:4326"


def test_tiny_edge_attributes(tiny):
    ab = tiny.edges[1, 3, 0]
    assert ab["highway"] == "residential"
    assert ab["name"] == "璧山路"
    assert ab["length"] == pytest.approx(100.0, abs=1e-3)  # two 50 m halves along a meridian
    assert len(ab["geometry"].coords) == 3  # A, M, B kept as the merged edge's shape
    assert tiny.edges[3, 4, 0]["highway"] == "steps"
    for _, _, d in tiny.edges(data=True):
        assert isinstance(d["oneway"], bool)
        assert d["geometry"].geom_type == "LineString"  # straight lines added where osmnx has none


def test_tiny_oneway_edges_exist_only_in_their_direction(tiny):
    assert tiny.edges[3, 5, 0]["oneway"] is True
    assert not tiny.has_edge(5, 3)
    assert tiny.edges[6, 4, 0]["oneway"] is True
    assert not tiny.has_edge(4, 6)
    assert tiny.edges[1, 3, 0]["oneway"] is False
    assert tiny.edges[3, 1, 0]["reversed"] is True


def test_tiny_shortest_path_goes_round_the_oneway_loop(tiny):
    # by car from D (5) back to B (3): D -> E -> C -> B, three 100 m segments
    assert nx.shortest_path(tiny, 5, 3, weight="length") == [5, 6, 4, 3]
    assert nx.shortest_path_length(tiny, 5, 3, weight="length") == pytest.approx(300.0, abs=1e-2)


def test_add_travel_times_by_hand(tiny):
    G = tiny.copy()
    add_travel_times_inplace(G, load_profiles())
    ab, bc, bd = G.edges[1, 3, 0], G.edges[3, 4, 0], G.edges[3, 5, 0]
    # 100 m residential: walk 5 km/h = 72 s, wheelchair 3 km/h = 120 s, drive 19 km/h = 18.947 s
    assert ab["travel_time_walk_s"] == pytest.approx(ab["length"] / (5 / 3.6))
    assert ab["travel_time_walk_s"] == pytest.approx(72.0, abs=1e-3)
    assert ab["travel_time_wheelchair_s"] == pytest.approx(120.0, abs=1e-3)
    assert ab["travel_time_drive_s"] == pytest.approx(18.947, abs=1e-3)
    # steps: walkable only
    assert bc["travel_time_walk_s"] == pytest.approx(72.0, abs=1e-3)
    assert math.isnan(bc["travel_time_wheelchair_s"])
    assert math.isnan(bc["travel_time_drive_s"])
    # 100 m tertiary at 31 km/h
    assert bd["travel_time_drive_s"] == pytest.approx(100 / (31 / 3.6), abs=1e-3)
    for _, _, d in G.edges(data=True):
        assert {type(d[f"travel_time_{p}_s"]) for p in ("walk", "wheelchair", "drive")} == {float}
    assert "travel_time_walk_s" not in tiny.edges[1, 3, 0]  # the copy was changed, not the fixture


def test_add_travel_times_refuses_edges_without_length(tiny):
    G = tiny.copy()
    del G.edges[3, 4, 0]["length"]
    with pytest.raises(NetworkError, match=r"1 edges lack `length` or `highway`, e.g. \[\(3, 4, 0\)\]"):
        add_travel_times_inplace(G, load_profiles())


# --- real OSM extracts ---------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "share"), [(OAKLAND, 0.7), (MUNICH, 0.9)])
def test_real_extract_lengths_match_their_geometry(path, share):
    G = graph_from_file(path, min_component_share=share)
    assert G.graph["crs"] == "epsg:4326"
    assert len(G) > 20
    total = sum(d["length"] for _, _, d in G.edges(data=True))
    by_geometry = sum(geometry_length_m(d["geometry"]) for _, _, d in G.edges(data=True))
    assert total == pytest.approx(by_geometry, rel=1e-9)
    assert {type(d["highway"]) for _, _, d in G.edges(data=True)} <= {str, list}
    # a few shortest paths inside the largest strong component: never shorter than the straight line
    nodes = sorted(max(nx.strongly_connected_components(G), key=len))
    for source, target in [(nodes[0], nodes[-1]), (nodes[-1], nodes[0]), (nodes[1], nodes[len(nodes) // 2])]:
        route = nx.shortest_path(G, source, target, weight="length")
        cost = nx.shortest_path_length(G, source, target, weight="length")
        along = sum(min(d["length"] for d in G[u][v].values()) for u, v in zip(route, route[1:], strict=False))
        assert cost == pytest.approx(along)
        a, b = G.nodes[source], G.nodes[target]
        assert haversine_m(a["x"], a["y"], b["x"], b["y"]) <= cost < 5 * haversine_m(a["x"], a["y"], b["x"], b["y"])


def test_real_extract_warns_about_a_small_strong_component():
    with pytest.warns(UserWarning, match=r"has 38 of 51 nodes \(74\.5%\), below `min_component_share`=90%"):
        graph_from_file(OAKLAND)


def test_osmnx_settings_are_restored_after_loading():
    before = list(ox.settings.useful_tags_way)
    graph_from_file(MUNICH)
    assert ox.settings.useful_tags_way == before


# --- clipping -----------------------------------------------------------------------------------


def test_clipping_keeps_only_nodes_inside(tiny):
    # around A, B, C and D but not E (6), which shares D's longitude and C's latitude:
    # the one-way loop is cut, so D becomes a dead end
    boundary = Polygon(
        [(106.1999, 29.5799), (106.2011, 29.5799), (106.2011, 29.5813), (106.2005, 29.5813), (106.2005, 29.5819)]
        + [(106.1999, 29.5819)]
    )
    with pytest.warns(UserWarning, match=r"has 3 of 4 nodes \(75\.0%\)"):
        G = graph_from_file(TINY, boundary=boundary)
    assert sorted(G.nodes) == [1, 3, 4, 5]
    assert all(boundary.intersects(Point(d["x"], d["y"])) for _, d in G.nodes(data=True))


def test_clipping_a_real_extract():
    full = graph_from_file(MUNICH)
    minx, miny, maxx, maxy = box(10.068, 48.135, 10.071, 48.137).bounds
    boundary = box(minx, miny, (minx + maxx) / 2, maxy)
    G = graph_from_file(MUNICH, boundary=boundary, min_component_share=0.0)
    assert 0 < len(G) < len(full)
    assert all(boundary.intersects(Point(d["x"], d["y"])) for _, d in G.nodes(data=True))


# --- other formats ------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "share"), [(MUNICH, 0.9), (OAKLAND, 0.7)])
def test_pbf_gives_the_same_graph_as_xml(tmp_path, source, share):
    pbf = tmp_path / "extract.osm.pbf"
    with osmium.SimpleWriter(pbf) as writer:
        for obj in osmium.FileProcessor(source):
            writer.add(obj)
    from_xml = graph_from_file(source, min_component_share=share)
    from_pbf = graph_from_file(pbf, min_component_share=share)
    assert sorted(from_pbf.nodes) == sorted(from_xml.nodes)
    assert sorted(from_pbf.edges(keys=True)) == sorted(from_xml.edges(keys=True))
    assert len(from_pbf.edges) == len(from_xml.edges)


def test_graphml_round_trip(tmp_path, tiny):
    path = tmp_path / "tiny.graphml"
    ox.io.save_graphml(tiny, path)
    G = graph_from_file(path)
    assert sorted(G.edges(keys=True)) == sorted(tiny.edges(keys=True))
    assert G.edges[3, 5, 0]["oneway"] is True
    assert G.edges[1, 3, 0]["geometry"].equals(tiny.edges[1, 3, 0]["geometry"])


def test_graphml_in_a_projected_crs_comes_back_in_lon_lat(tmp_path, tiny):
    path = tmp_path / "tiny_utm.graphml"
    ox.io.save_graphml(project_graph(tiny, "EPSG:32648"), path)
    G = graph_from_file(path)
    assert G.graph["crs"] == "epsg:4326"
    assert G.nodes[1]["x"] == pytest.approx(106.2, abs=1e-7)


def test_project_graph_keeps_lengths(tiny):
    G = project_graph(tiny, "EPSG:32648")
    assert G.graph["crs"] == "EPSG:32648"
    assert G.edges[1, 3, 0]["length"] == tiny.edges[1, 3, 0]["length"]
    # projected distances match ellipsoidal ones within the UTM scale error (< 0.1 % here, 1.2 deg
    # from the central meridian); osmnx's spherical lengths differ from both by ~0.3 % north-south
    a, b = tiny.nodes[1], tiny.nodes[3]
    _, _, ellipsoidal_m = Geod(ellps="WGS84").inv(a["x"], a["y"], b["x"], b["y"])
    assert G.nodes[3]["y"] - G.nodes[1]["y"] == pytest.approx(ellipsoidal_m, rel=1e-3)
    assert G.edges[1, 3, 0]["geometry"].length == pytest.approx(ellipsoidal_m, rel=1e-3)
    assert tiny.graph["crs"] == "epsg:4326"  # input unchanged


def test_project_graph_refuses_a_geographic_crs(tiny):
    with pytest.raises(ValueError, match=r"`crs` must be a projected CRS \(metres\); got 'EPSG:4490'"):
        project_graph(tiny, "EPSG:4490")


# --- bad input ----------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "roads.osm.bz2"
    with pytest.raises(NetworkError, match=r"roads\.osm\.bz2' does not exist"):
        graph_from_file(path)


def test_unsupported_extension(tmp_path):
    path = tmp_path / "roads.shp"
    path.write_text("x")
    with pytest.raises(NetworkError, match=r"roads\.shp' has an unsupported extension; use one of \['\.graphml'"):
        graph_from_file(path)


def test_xml_cut_in_half(tmp_path):
    path = tmp_path / "cut.osm"
    text = TINY.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(NetworkError, match=r"cut\.osm' is not valid \(complete\) OSM XML"):
        graph_from_file(path)


def test_bz2_cut_in_half(tmp_path):
    path = tmp_path / "cut.osm.bz2"
    data = OAKLAND.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(NetworkError, match=r"cut\.osm\.bz2' is not valid \(complete\) OSM XML"):
        graph_from_file(path)


def test_not_bz2_at_all(tmp_path):
    path = tmp_path / "plain.osm.bz2"
    shutil.copy(TINY, path)
    with pytest.raises(NetworkError, match=r"plain\.osm\.bz2' is not valid \(complete\) OSM XML"):
        graph_from_file(path)


def test_pbf_cut_in_half(tmp_path):
    pbf = tmp_path / "cut.osm.pbf"
    with osmium.SimpleWriter(pbf) as writer:
        for obj in osmium.FileProcessor(MUNICH):
            writer.add(obj)
    data = pbf.read_bytes()
    pbf.write_bytes(data[: len(data) // 2])
    with pytest.raises(NetworkError, match=r"cut\.osm\.pbf' is not a valid \(complete\) OSM PBF file"):
        graph_from_file(pbf)


@pytest.mark.parametrize(
    "body",
    [
        "",  # no elements at all
        '<node id="1" lat="29.58" lon="106.2"/><node id="2" lat="29.59" lon="106.2"/>'
        '<way id="9"><nd ref="1"/><nd ref="2"/><tag k="waterway" v="stream"/></way>',
    ],
)
def test_no_highway_ways(tmp_path, body):
    path = tmp_path / "rivers.osm"
    path.write_text(f'<?xml version="1.0"?><osm version="0.6">{body}</osm>', encoding="utf-8")
    with pytest.raises(NetworkError, match=r"rivers\.osm' has no usable `highway` ways"):
        graph_from_file(path)


@pytest.mark.parametrize(
    ("boundary", "inside"),
    [
        (box(10.0, 48.0, 10.1, 48.1), 0),  # Munich's box: lon/lat of the wrong place
        (Point(106.2, 29.58).buffer(1e-5), 1),  # only node A: no edge left
    ],
)
def test_nothing_left_after_clipping(boundary, inside):
    with pytest.raises(NetworkError, match=rf"Nothing of road network .*tiny\.osm' .*\({inside} nodes inside"):
        graph_from_file(TINY, boundary=boundary)


def test_boundary_must_be_a_polygon():
    with pytest.raises(TypeError, match=r"`boundary` must be a shapely Polygon or MultiPolygon.*got Point"):
        graph_from_file(TINY, boundary=Point(106.2, 29.58))


def test_graphml_that_is_not_graphml(tmp_path):
    path = tmp_path / "roads.graphml"
    path.write_text("<graphml><unclosed>", encoding="utf-8")
    with pytest.raises(NetworkError, match=r"roads\.graphml' is not a GraphML file saved by osmnx"):
        graph_from_file(path)


# --- download -----------------------------------------------------------------------------------


def test_download_refuses_a_wrong_extension_before_any_network_use(tmp_path):
    with pytest.raises(ValueError, match=r"`out_path` must end in one of \['\.osm\.bz2', '\.osm'\]"):
        download_osm(box(106.2, 29.5, 106.3, 29.6), tmp_path / "roads.geojson")
    assert not (tmp_path / "roads.geojson").exists()


def test_downloaded_elements_are_written_as_readable_osm_xml(tmp_path):
    # the shape of an Overpass answer (ways before nodes); the writer puts nodes first
    elements = [
        {"type": "way", "id": 7, "nodes": [1, 2], "tags": {"highway": "residential", "name": "璧山路"}},
        {"type": "node", "id": 2, "lat": 29.581, "lon": 106.2},
        {"type": "node", "id": 1, "lat": 29.58, "lon": 106.2, "tags": {"highway": "crossing"}},
    ]
    path = tmp_path / "roads.osm.bz2"
    assert network._write_osm_xml(elements, path) == (2, 1)
    text = bz2.decompress(path.read_bytes()).decode("utf-8")
    assert text.index('<node id="1"') < text.index('<node id="2"') < text.index('<way id="7"')
    G = graph_from_file(path)
    assert sorted(G.edges()) == [(1, 2), (2, 1)]
    assert G.edges[1, 2, 0]["name"] == "璧山路"
    assert G.edges[1, 2, 0]["length"] == pytest.approx(haversine_m(106.2, 29.58, 106.2, 29.581))


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_min_component_share_must_be_a_share(share):
    with pytest.raises(ValueError, match=rf"`min_component_share` must be a share between 0 and 1; got {share}"):
        graph_from_file(TINY, min_component_share=share)


def test_project_graph_needs_a_crs(tiny):
    G = tiny.copy()
    del G.graph["crs"]
    with pytest.raises(NetworkError, match=r"`G` has no `crs` in `G.graph`"):
        project_graph(G, "EPSG:32648")


def test_xml_extension_reads_like_osm(tmp_path, tiny):
    path = tmp_path / "tiny.xml"
    shutil.copy(TINY, path)
    assert sorted(graph_from_file(path).edges(keys=True)) == sorted(tiny.edges(keys=True))
