from __future__ import annotations

import bz2
import time
from collections import Counter

import networkx as nx
import numpy as np
import osmnx as ox
import pyproj
import pytest
import shapely
from scipy.spatial import cKDTree

from layers.district import load_district
from synthetic.reference import road_inputs
from synthetic.roads import generate_road_network, write_osm_bz2

CRS = "EPSG:32648"
X0, Y0 = 615_000.0, 3_265_000.0  # near Bishan, in UTM 48N


def _node_xy(G):
    lon = np.array([d["x"] for _, d in G.nodes(data=True)])
    lat = np.array([d["y"] for _, d in G.nodes(data=True)])
    return np.column_stack(pyproj.Transformer.from_crs("EPSG:4326", CRS, always_xy=True).transform(lon, lat))


# -- tiny input: 4 km square, 2 seats, 5 villages --------------------------------------------------------
TINY = {
    "boundary": shapely.box(X0, Y0, X0 + 4000, Y0 + 4000),
    "seats_xy": np.array([[X0 + 1000, Y0 + 1000], [X0 + 3000, Y0 + 3200]]),
    "villages_xy": np.array(
        [
            [X0 + 500, Y0 + 3500],
            [X0 + 3500, Y0 + 500],
            [X0 + 2000, Y0 + 2000],
            [X0 + 300, Y0 + 300],
            [X0 + 3700, Y0 + 3700],
        ]
    ),
    "urban_centres": np.array([[X0 + 1000, Y0 + 1000, 500.0]]),
}


@pytest.fixture(scope="module")
def tiny_xml():
    return generate_road_network(**TINY, crs=CRS, seed=3)


@pytest.fixture(scope="module")
def tiny_graph(tiny_xml, tmp_path_factory):
    path = tmp_path_factory.mktemp("roads") / "tiny.osm"
    path.write_bytes(tiny_xml)
    return ox.graph_from_xml(path, simplify=True, retain_all=True)


def test_same_seed_same_bytes_other_seed_other_bytes(tiny_xml):
    assert generate_road_network(**TINY, crs=CRS, seed=3) == tiny_xml
    assert generate_road_network(**TINY, crs=CRS, seed=4) != tiny_xml


def test_output_says_it_is_synthetic_with_seed_and_generator(tiny_xml):
    head = tiny_xml[:400].decode("utf-8")
    assert "<!-- SYNTHETIC" in head
    assert 'generator="accessplan geo.synthetic_roads 1 (SYNTHETIC, seed 3)"' in head


def test_bz2_file_is_reproducible(tiny_xml, tmp_path):
    a = write_osm_bz2(tiny_xml, tmp_path / "a.osm.bz2").read_bytes()
    b = write_osm_bz2(tiny_xml, tmp_path / "b.osm.bz2").read_bytes()
    assert a == b and bz2.decompress(a) == tiny_xml


def test_every_seat_and_village_is_a_road_node(tiny_graph):
    xy = _node_xy(tiny_graph)
    points = np.vstack([TINY["seats_xy"], TINY["villages_xy"]])
    gaps = np.min(np.hypot(*(xy[:, None, :] - points[None, :, :]).transpose(2, 0, 1)), axis=0)
    assert gaps.max() < 1.0  # 7-decimal lon/lat is ~1 cm


def test_tiny_network_is_strongly_connected_and_inside(tiny_graph):
    assert nx.is_strongly_connected(tiny_graph)
    xy = _node_xy(tiny_graph)
    assert shapely.contains_xy(TINY["boundary"], xy[:, 0], xy[:, 1]).all()


def test_tiny_network_has_a_street_grid_and_a_named_corridor(tiny_graph):
    highways = Counter(d["highway"] for *_, d in tiny_graph.edges(data=True) if isinstance(d["highway"], str))
    assert highways["residential"] > 20 and highways["track"] > 20
    corridor = [d for *_, d in tiny_graph.edges(data=True) if d["highway"] == "trunk"]
    assert corridor and all(d["name"].endswith("大道") for d in corridor)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"crs": "EPSG:4326"}, "projected"),
        ({"seats_xy": np.array([[X0 - 10, Y0 + 10]])}, "inside `boundary`"),
        ({"villages_xy": np.zeros((3, 3))}, r"shape \(n, 2\)"),
    ],
)
def test_bad_input_is_refused(change, message):
    kwargs = {**TINY, "crs": CRS, "seed": 1, **change}
    with pytest.raises(ValueError, match=message):
        generate_road_network(**kwargs)


# -- the committed Bishan file ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def district():
    return load_district()


@pytest.fixture(scope="module")
def bishan_graph(district):
    started = time.perf_counter()
    G = ox.graph_from_xml(district.roads_path, simplify=True, retain_all=True)
    G.graph["load_s"] = time.perf_counter() - started  # about 10 s on one free core (osmnx 2.1)
    return G


def test_regenerating_gives_the_committed_bytes(district):
    inputs = road_inputs(district, district.villages)
    xml = generate_road_network(**inputs, crs=district.crs, seed=district.seed)
    committed = district.roads_path.read_bytes()
    assert bz2.decompress(committed) == xml
    assert bz2.compress(xml, compresslevel=9) == committed


def test_committed_network_size_is_a_real_workload(bishan_graph):
    assert 30_000 <= len(bishan_graph) <= 60_000


def test_committed_network_is_strongly_connected(bishan_graph):
    largest = max(nx.strongly_connected_components(bishan_graph), key=len)
    assert len(largest) >= 0.99 * len(bishan_graph)


def test_committed_network_lies_inside_the_district(bishan_graph, district):
    outline = district.boundary.to_crs(district.crs).geometry.iloc[0].buffer(1.0)
    xy = _node_xy(bishan_graph)
    assert shapely.contains_xy(outline, xy[:, 0], xy[:, 1]).all()


def test_committed_network_reaches_every_village_and_seat(bishan_graph, district):
    xy = _node_xy(bishan_graph)
    points = np.vstack([road_inputs(district, district.villages)[k] for k in ("seats_xy", "villages_xy")])
    assert cKDTree(xy).query(points)[0].max() < 1.0


def test_committed_network_has_the_road_hierarchy(bishan_graph):
    tags = Counter()
    named = Counter()
    for *_, d in bishan_graph.edges(data=True):
        for h in np.atleast_1d(d["highway"]):
            tags[h] += 1
        if isinstance(d["highway"], str):  # simplified edges over several classes hold a list
            named[(d["highway"], "name" in d)] += 1
    expected = {"trunk", "primary", "secondary", "tertiary", "unclassified", "residential", "service", "track",
                "footway", "steps"}  # fmt: skip
    assert expected <= set(tags)
    assert all(named[(h, True)] > 0 and named[(h, False)] == 0 for h in ("trunk", "primary", "secondary"))
    assert any(d.get("oneway") for *_, d in bishan_graph.edges(data=True))
