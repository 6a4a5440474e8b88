"""Wheelchair and walking costs from OSM accessibility tags and a DEM, on hand-made networks.

Every network here is written as OSM XML with nodes on a lon/lat lattice and read by ``geo.osm``;
the DEMs are EPSG:4326 GeoTIFFs whose cell centres sit on the nodes, so each node's elevation is
its cell's value and each gradient is known by hand.
"""

from __future__ import annotations

import math
from pathlib import Path

import networkx as nx
import numpy as np
import osmium
import pytest
from affine import Affine
from osmium.osm.mutable import Node, Way

from geo.dem import read_dem, write_dem
from geo.errors import DemError, ProfileError
from geo.osm import read_roads
from geo.prepared import load_or_prepare, prepare_roads
from geo.profiles import ATTRIBUTES, Profile, SlopeModel, load_profiles
from geo.routing import nearest_facility
from geo.snapping import snap_points

CRS = "EPSG:32648"
LON0, LAT0 = 106.2, 29.58
STEP = 0.0008993  # degrees: 99.99774 m along a meridian (osmnx's radius), as in test_osm
STEP_M = 6_371_009 * math.radians(STEP)
WHEEL_MPS = 3.0 / 3.6  # the shipped wheelchair speed on the flat


def write_osm(path, nodes, ways):
    """Write nodes {id: (col, row, tags)} on the lattice (col east, row north) and ways [(id, refs, tags)]."""
    with osmium.SimpleWriter(str(path), overwrite=True) as writer:
        for node_id, (col, row, tags) in sorted(nodes.items()):
            writer.add_node(Node(id=node_id, location=(LON0 + col * STEP, LAT0 + row * STEP), tags=tags))
        for way_id, refs, tags in ways:
            writer.add_way(Way(id=way_id, nodes=refs, tags=tags))
    return path


def lattice_dem(path, heights):
    """Write a DEM whose cell (row r from the south, col c) is centred on lattice point (c, r)."""
    rows = np.asarray(heights, np.float64)[::-1]  # north row first
    north = LAT0 + (rows.shape[0] - 0.5) * STEP
    transform = Affine(STEP, 0.0, LON0 - 0.5 * STEP, 0.0, -STEP, north)
    return write_dem(path, rows, transform, "EPSG:4326")


def pieces_by_ends(roads, net=None):
    ids = roads.node_id if net is None else net.node_id
    u = roads.piece_u if net is None else net.piece_u
    v = roads.piece_v if net is None else net.piece_v
    return {(int(ids[a]), int(ids[b])): p for p, (a, b) in enumerate(zip(u, v, strict=True))}


# --- tags ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    """A star around hub 1 (0, 0): one footway per rule, each about 100 m long."""
    path = tmp_path_factory.mktemp("tags") / "tags.osm"
    nodes = {
        1: (0, 0, {}),
        2: (0, 1, {}),
        3: (1, 0, {}),
        4: (0, -1, {}),
        5: (-1, 0, {}),
        6: (1, 1, {}),
        7: (-1, -1, {}),
        8: (1, -1, {}),
        9: (-1, 1, {}),
        10: (0, 2, {}),
        11: (2, 0, {}),
        12: (0, -2, {}),
        20: (-2, 0, {}),
        21: (-2, 0.5, {"barrier": "kerb", "kerb": "raised"}),
        22: (-2, 1, {}),
        30: (-3, 0, {}),
        31: (-3, 0.5, {"highway": "crossing"}),  # a crossing without `kerb`: a kerb of unknown kind
        32: (-3, 1, {}),
        40: (-4, 0, {}),
        41: (-4, 0.5, {"kerb": "lowered"}),
        42: (-4, 1, {}),
    }
    known = {"wheelchair": "yes", "surface": "asphalt", "smoothness": "good", "incline": "0%", "width": "2"}
    ways = [
        (100, [1, 2], {"highway": "residential"}),  # nothing tagged
        (101, [1, 3], {"highway": "footway", "wheelchair": "no"}),
        (102, [1, 4], {"highway": "footway", "surface": "gravel"}),
        (103, [1, 5], {"highway": "footway", **known, "wheelchair": "limited"}),  # × 1.5, all known
        (104, [1, 6], {"highway": "steps", "ramp:wheelchair": "yes"}),  # 1.5 km/h
        (105, [1, 7], {"highway": "steps"}),
        (106, [1, 8], {"highway": "footway", "incline": "12%"}),  # steeper than 8.33 %
        (107, [1, 9], {"highway": "footway", "width": "0.8"}),  # narrower than 1.0 m
        (108, [2, 10], {"highway": "footway", **known, "smoothness": "intermediate", "surface": "sett"}),  # 1.2 × 1.3
        (109, [3, 11], {"highway": "footway", **known, "incline": "-5°"}),  # tan 5° = 8.75 % > 8.33 %
        (110, [4, 12], {"highway": "footway", **known, "width": "150 cm"}),
        (111, [20, 21, 22], {"highway": "footway", **known}),  # raised kerb on the way
        (112, [30, 31, 32], {"highway": "footway", **known}),  # crossing of unknown kerb
        (113, [40, 41, 42], {"highway": "footway", **known}),  # lowered kerb
    ]
    return read_roads(write_osm(path, nodes, ways), min_component_share=0)


def test_osm_tags_and_kerbs_reach_the_pieces(tagged):
    piece = pieces_by_ends(tagged)
    tags = tagged.piece_tags
    assert tags["wheelchair"][piece[1, 3]] == "no"
    assert tags["surface"][piece[1, 4]] == "gravel"
    assert tags["ramp:wheelchair"][piece[1, 6]] == "yes"
    assert tags["width"][piece[4, 12]] == "150 cm"
    assert tags["wheelchair"][piece[1, 2]] == ""
    # the worst kerb node a piece passes; nodes 21, 31, 41 only shape their ways
    assert [tags["kerb"][piece[a, b]] for a, b in [(20, 22), (30, 32), (40, 42), (1, 5)]] == [
        "raised",
        "yes",
        "lowered",
        "",
    ]


def test_ways_with_other_tags_are_separate_pieces(tmp_path):
    # ways 1-2 and 2-3 share highway and name; only `surface` differs, so node 2 stays a node
    nodes = {1: (0, 0, {}), 2: (0, 1, {}), 3: (0, 2, {})}
    ways = [(1, [1, 2], {"highway": "footway"}), (2, [2, 3], {"highway": "footway", "surface": "gravel"})]
    roads = read_roads(write_osm(tmp_path / "split.osm", nodes, ways), min_component_share=0)
    assert sorted(pieces_by_ends(roads)) == [(1, 2), (2, 3)]


def test_wheelchair_rules_by_hand(tagged):
    net = prepare_roads(tagged, crs=CRS, profiles=load_profiles())
    pg = net.profile("wheelchair")
    piece = pieces_by_ends(tagged, net)
    length = net.piece_length_m

    def time(a, b):
        p = piece[a, b]
        return pg.piece_time_s[p] if pg.piece_fwd[p] else None

    flat = {ab: length[piece[ab]] / WHEEL_MPS for ab in piece}
    assert time(1, 2) == pytest.approx(flat[1, 2])  # unknown everything: lenient by default
    assert time(1, 5) == pytest.approx(1.5 * flat[1, 5])  # wheelchair=limited
    assert time(1, 6) == pytest.approx(length[piece[1, 6]] / (1.5 / 3.6))  # steps with a ramp at 1.5 km/h
    assert time(2, 10) == pytest.approx(1.2 * 1.3 * flat[2, 10])  # smoothness intermediate × sett
    assert time(4, 12) == pytest.approx(flat[4, 12])  # 1.5 m wide
    assert time(40, 42) == pytest.approx(flat[40, 42])  # lowered kerb
    excluded = [(1, 3), (1, 4), (1, 7), (1, 8), (1, 9), (3, 11), (20, 22)]
    assert [time(a, b) for a, b in excluded] == [None] * len(excluded)
    # unknown bits: residential 1-2 lacks wheelchair, incline, surface, smoothness, width (kerb: none met)
    bits = {a: 1 << i for i, a in enumerate(ATTRIBUTES)}
    assert (
        pg.piece_unknown[piece[1, 2]]
        == bits["wheelchair"] | bits["incline"] | bits["surface"] | bits["smoothness"] | bits["width"]
    )
    assert pg.piece_unknown[piece[1, 5]] == 0
    assert pg.piece_unknown[piece[30, 32]] == bits["kerb"]
    # walking ignores the tags but not the classes: steps walkable, wheelchair=no walkable
    walk = net.profile("walk")
    assert walk.piece_fwd[piece[1, 3]] and walk.piece_fwd[piece[1, 7]]


def test_strict_policy_excludes_unknowns_per_attribute(tagged):
    base = load_profiles()
    strict_kerb = base["wheelchair"].with_unknown_policy({"kerb": "strict"})
    strict_all = base["wheelchair"].with_unknown_policy("strict")
    profiles = {"lenient": base["wheelchair"], "kerb": strict_kerb, "all": strict_all}
    net = prepare_roads(tagged, crs=CRS, profiles=profiles)
    piece = pieces_by_ends(tagged, net)
    usable = {name: net.profile(name).piece_usable for name in profiles}
    assert usable["lenient"][piece[30, 32]] and not usable["kerb"][piece[30, 32]]
    assert usable["kerb"][piece[1, 2]] and not usable["all"][piece[1, 2]]
    assert usable["all"][piece[1, 5]]  # every attribute known
    assert net.profile("all").piece_unknown.max() == 0  # strict leaves nothing unknown in use
    with pytest.raises(ProfileError, match=r"未知值策略.*'maybe'.*'strict' or 'lenient'"):
        base["wheelchair"].with_unknown_policy("maybe")
    with pytest.raises(ProfileError, match=r"没有无障碍标签规则.*profile `drive` has no access rules"):
        base["drive"].with_unknown_policy("strict")


# --- slopes ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hill(tmp_path_factory):
    """N0 (row 0, 0 m) - N1 (row 1, 5 m) - N2 (row 2, 17 m) along a meridian; DEM cells on the nodes."""
    folder = tmp_path_factory.mktemp("hill")
    nodes = {1: (0, 0, {}), 2: (0, 1, {}), 3: (0, 2, {})}
    ways = [(1, [1, 2], {"highway": "footway"}), (2, [2, 3], {"highway": "residential"})]
    roads = read_roads(write_osm(folder / "hill.osm", nodes, ways), min_component_share=0)
    dem = lattice_dem(folder / "hill.tif", [[0.0] * 3, [5.0] * 3, [17.0] * 3, [17.0] * 3])
    return roads, read_dem(dem)


def test_elevations_and_grades_from_the_dem(hill):
    roads, dem = hill
    net = prepare_roads(roads, crs=CRS, profiles=load_profiles(), dem=dem)
    np.testing.assert_allclose(net.node_elevation_m, [0.0, 5.0, 17.0], atol=1e-4)
    piece = pieces_by_ends(roads, net)
    assert net.piece_grade[piece[1, 2]] == pytest.approx(5.0 / STEP_M, abs=1e-6)  # 5.00011 %
    assert net.piece_grade[piece[2, 3]] == pytest.approx(12.0 / STEP_M, abs=1e-6)


def test_wheelchair_and_walking_speeds_uphill_and_downhill_by_hand(hill):
    roads, dem = hill
    profiles = load_profiles()
    # a wheelchair that may go down 15 % but up only 8.33 %
    steep_down = SlopeModel("exponential", 0.0833, 0.15, 0.5, 0.8)
    profiles["chair"] = Profile(
        "chair", profiles["wheelchair"].speed_kph, False, profiles["wheelchair"].access, steep_down
    )
    net = prepare_roads(roads, crs=CRS, profiles=profiles, dem=dem)
    piece = pieces_by_ends(roads, net)
    p1, p2 = piece[1, 2], piece[2, 3]
    g = 5.0 / STEP_M  # 0.0500011
    wc = net.profile("wheelchair")
    # uphill: 3 km/h × 0.5^(g / 0.0833) = 3 × 0.65963 km/h (181.91 s); downhill: 3 × 0.87464 km/h (137.20 s)
    assert wc.piece_time_s[p1] == pytest.approx(STEP_M / (WHEEL_MPS * 0.5 ** (g / 0.0833)))
    assert wc.piece_time_s[p1] == pytest.approx(181.91, abs=0.01)
    assert wc.piece_time_bwd_s[p1] == pytest.approx(137.20, abs=0.01)
    # 12 % is steeper than 1:12 both ways: impassable for the shipped chair
    assert not (wc.piece_fwd[p2] or wc.piece_bwd[p2])
    chair = net.profile("chair")
    assert not chair.piece_fwd[p2] and chair.piece_bwd[p2]  # only downhill, at 0.8^(0.12 / 0.15)
    assert chair.piece_time_bwd_s[p2] == pytest.approx(STEP_M / (WHEEL_MPS * 0.8 ** ((12.0 / STEP_M) / 0.15)))
    walk = net.profile("walk")
    # Tobler scaled to 5 km/h on the flat: 5 × exp(-3.5 (|g + 0.05| - 0.05)) = 5 × 0.83945 km/h uphill (85.77 s)
    assert walk.piece_time_s[p1] == pytest.approx(STEP_M / (5 / 3.6 * math.exp(-3.5 * (g + 0.05 - 0.05))))
    assert walk.piece_time_s[p1] == pytest.approx(85.77, abs=0.01)
    # -5 % is Tobler's fastest gradient: 5 × exp(3.5 × 0.05) = 5.956 km/h (6 km/h unscaled), 60.44 s
    assert walk.piece_time_bwd_s[p1] == pytest.approx(STEP_M / (5 / 3.6 * math.exp(0.175)), rel=1e-4)
    assert walk.piece_time_bwd_s[p1] == pytest.approx(60.44, abs=0.01)
    # the flat speed stays the access-leg speed
    assert wc.piece_speed_mps[p1] == pytest.approx(WHEEL_MPS)
    drive = net.profile("drive")  # no slope model: the same both ways
    assert drive.piece_time_s[p2] == drive.piece_time_bwd_s[p2]


def test_directed_nearest_facility_matches_networkx_on_a_random_hilly_grid(tmp_path):
    """A 5 × 5 grid of streets (one name each: every node a node), seeded elevations; networkx as check."""
    size = 5
    rng = np.random.default_rng(17)
    heights = rng.uniform(0.0, 9.0, (size + 1, size))  # rise up to 9 m per 100 m: some > 8.33 %
    node = {(c, r): 1 + r * size + c for r in range(size) for c in range(size)}
    ways, wid = [], 0
    for (c, r), n in node.items():
        for dc, dr in ((1, 0), (0, 1)):
            if (c + dc, r + dr) in node:
                wid += 1
                ways.append((wid, [n, node[c + dc, r + dr]], {"highway": "residential", "name": f"街{wid}"}))
    roads = read_roads(
        write_osm(tmp_path / "grid.osm", {n: (c, r, {}) for (c, r), n in node.items()}, ways), min_component_share=0
    )
    dem = read_dem(lattice_dem(tmp_path / "grid.tif", heights))
    net = prepare_roads(roads, crs=CRS, profiles=load_profiles(), dem=dem)
    z = {n: heights[r, c] for (c, r), n in node.items()}
    graph = nx.DiGraph()
    for p in range(net.n_pieces):
        a, b = int(net.node_id[net.piece_u[p]]), int(net.node_id[net.piece_v[p]])
        length = float(net.piece_length_m[p])
        for s, t in ((a, b), (b, a)):
            g = (z[t] - z[s]) / length
            if abs(g) > 0.0833:
                continue
            share = 0.5 ** (g / 0.0833) if g >= 0 else 0.8 ** (-g / 0.0833)
            graph.add_edge(s, t, weight=length / (WHEEL_MPS * share))
    assert graph.number_of_edges() < 2 * net.n_pieces  # some ways are one-way by slope
    pos = {int(i): k for k, i in enumerate(net.node_id)}
    fac_nodes = [node[0, 0], node[4, 3]]
    fx, fy = net.node_x[[pos[n] for n in fac_nodes]], net.node_y[[pos[n] for n in fac_nodes]]
    fac = snap_points(net, fx, fy, profile="wheelchair", ids=["f0", "f1"])
    dem_x, dem_y = net.node_x, net.node_y
    demand = snap_points(net, dem_x, dem_y, profile="wheelchair", ids=[str(i) for i in net.node_id])
    got = nearest_facility(net, "wheelchair", fac, demand, weight="travel_time")
    # directed: from each node TO the facilities = a search from the facilities on the reversed graph
    want = nx.multi_source_dijkstra_path_length(graph.reverse(), set(fac_nodes), weight="weight")
    for k, n in enumerate(net.node_id.tolist()):
        expected = want.get(n, math.inf)
        if math.isinf(expected):
            assert math.isinf(got.node_cost[k]), n
        else:
            assert got.node_cost[k] == pytest.approx(expected, abs=1e-3), n  # DEM sampling: ~1e-5 m
            assert got.demand_cost[k] == pytest.approx(expected, abs=1e-3), n  # demand snapped on the node
    assert np.isfinite(got.node_cost).sum() > 2
    # the forward search (from the facilities) differs: costs are directed
    forward = nx.multi_source_dijkstra_path_length(graph, set(fac_nodes), weight="weight")
    assert any(abs(forward.get(n, math.inf) - want.get(n, math.inf)) > 1.0 for n in graph.nodes)


def test_dem_changes_the_cache_key(tmp_path, hill):
    roads, _ = hill
    source = write_osm(tmp_path / "r.osm", {1: (0, 0, {}), 2: (0, 1, {})}, [(1, [1, 2], {"highway": "footway"})])
    flat_dem = lattice_dem(tmp_path / "flat.tif", [[0.0] * 2] * 3)
    steep_dem = lattice_dem(tmp_path / "steep.tif", [[0.0] * 2, [5.0] * 2, [5.0] * 2])
    profiles = load_profiles()

    def build(path):
        return read_roads(path, min_component_share=0)

    flat = load_or_prepare(source, CRS, profiles, tmp_path / "cache", build_graph=build, dem_path=flat_dem)
    steep = load_or_prepare(source, CRS, profiles, tmp_path / "cache", build_graph=build, dem_path=steep_dem)
    again = load_or_prepare(source, CRS, profiles, tmp_path / "cache", build_graph=build, dem_path=steep_dem)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
    assert flat.profile("wheelchair").piece_time_s[0] == pytest.approx(STEP_M / WHEEL_MPS)
    assert steep.profile("wheelchair").piece_time_s[0] > flat.profile("wheelchair").piece_time_s[0]
    np.testing.assert_array_equal(
        again.profile("wheelchair").piece_time_bwd_s, steep.profile("wheelchair").piece_time_bwd_s
    )
    np.testing.assert_array_equal(again.node_elevation_m, steep.node_elevation_m)


def test_bad_dem_files_name_the_file(tmp_path):
    with pytest.raises(DemError, match=r"高程文件（DEM）'.*nope\.tif' 不存在.*`dem` in district\.toml"):
        read_dem(tmp_path / "nope.tif")
    junk = tmp_path / "junk.tif"
    junk.write_text("not a raster", encoding="utf-8")
    with pytest.raises(DemError, match=r"不是可读的栅格.*is not a readable raster"):
        read_dem(junk)


# --- a real DEM ------------------------------------------------------------------------------------

LUX_DEM = Path(__file__).parents[1] / "data" / "terra_elev_luxembourg.tif"


def test_a_real_dem_gives_elevations_grades_and_directed_costs(tmp_path):
    """terra's elev.tif (SRTM-derived, Luxembourg, 30″ cells, int16 with nodata outside the country).

    Three nodes on the centres of column 11, rows 21-23 (5.8375 E; 50.0125, 50.00417, 49.99583 N),
    whose cells hold 422, 400 and 487 m (read from the file once and written here). Row 23 is 87 m
    above row 22 over about 927 m: 9.4 %, steeper than 1:12 both ways for the wheelchair.
    """
    dem = read_dem(LUX_DEM)
    assert dem.crs.to_epsg() == 4326
    assert dem.values.shape == (90, 95)
    assert np.isnan(dem.values).sum() == 3942  # nodata (-32768) outside Luxembourg
    lon = 5.741666666666666 + 11.5 / 120
    lats = [50.19166666666666 - (r + 0.5) / 120 for r in (21, 22, 23)]
    np.testing.assert_allclose(dem.sample(np.full(3, lon), np.array(lats), "EPSG:4326"), [422.0, 400.0, 487.0])
    assert np.isnan(dem.sample(np.array([5.75]), np.array([50.18]), "EPSG:4326"))[0]  # a nodata corner

    path = tmp_path / "lux.osm"
    with osmium.SimpleWriter(str(path), overwrite=True) as writer:
        for k, lat in enumerate(lats):
            writer.add_node(Node(id=k + 1, location=(lon, lat)))
        writer.add_way(Way(id=1, nodes=[1, 2], tags={"highway": "footway", "name": "a"}))
        writer.add_way(Way(id=2, nodes=[2, 3], tags={"highway": "footway", "name": "b"}))
    roads = read_roads(path, min_component_share=0)
    net = prepare_roads(roads, crs="EPSG:32632", profiles=load_profiles(), dem=dem)
    piece = pieces_by_ends(roads, net)
    a, b = piece[1, 2], piece[2, 3]
    la, lb = net.piece_length_m[a], net.piece_length_m[b]
    assert la == pytest.approx(926.6, abs=0.1)  # 1/120 degree of latitude
    assert net.piece_grade[a] == pytest.approx(-22.0 / la, abs=1e-6)
    assert net.piece_grade[b] == pytest.approx(87.0 / lb, abs=1e-6)
    wc = net.profile("wheelchair")
    # 1 -> 2 is 2.37 % downhill: 3 km/h × 0.8^(0.02374 / 0.0833); back uphill: 3 km/h × 0.5^(0.02374 / 0.0833)
    g = 22.0 / la
    assert wc.piece_time_s[a] == pytest.approx(la / (WHEEL_MPS * 0.8 ** (g / 0.0833)), rel=1e-6)
    assert wc.piece_time_bwd_s[a] == pytest.approx(la / (WHEEL_MPS * 0.5 ** (g / 0.0833)), rel=1e-6)
    assert not (wc.piece_fwd[b] or wc.piece_bwd[b])
    walk = net.profile("walk")
    assert walk.piece_fwd[b] and walk.piece_bwd[b]
    # Tobler, 9.39 % up: 5 × exp(-3.5 × 0.0939) km/h
    assert walk.piece_time_s[b] == pytest.approx(lb / (5 / 3.6 * math.exp(-3.5 * (87.0 / lb))), rel=1e-6)


# --- unknown values along the routes ---------------------------------------------------------------


def test_routes_report_the_metres_and_edges_they_used_with_unknown_values(tmp_path):
    """A (row 0) - B (1) - C (2) - D (3) - E (4): A-B, C-D, D-E fully tagged; B-C without `surface`.

    The facility sits on node E. From A the route passes B-C whole (100 m, 1 piece, surface); a
    point halfway along B-C passes its last 50 m; a point on D-E passes nothing unknown; with
    `surface` strict, B-C is closed and A cannot reach E.
    """
    known = {"wheelchair": "yes", "surface": "asphalt", "smoothness": "good", "incline": "0%", "width": "2"}
    nodes = {n: (0, n - 1, {}) for n in range(1, 6)}
    ways = [
        (1, [1, 2], {"highway": "footway", **known}),
        (2, [2, 3], {"highway": "footway", **{k: v for k, v in known.items() if k != "surface"}}),
        (3, [3, 4], {"highway": "footway", **known, "name": "x"}),
        (4, [4, 5], {"highway": "footway", **known, "name": "y"}),
    ]
    roads = read_roads(write_osm(tmp_path / "line.osm", nodes, ways), min_component_share=0)
    base = load_profiles()["wheelchair"]
    net = prepare_roads(
        roads, crs=CRS, profiles={"lenient": base, "strict": base.with_unknown_policy({"surface": "strict"})}
    )
    pos = {int(n): k for k, n in enumerate(net.node_id)}
    fac = snap_points(net, net.node_x[[pos[5]]], net.node_y[[pos[5]]], profile="lenient", ids=["E"])
    mid = [(net.node_x[pos[2]] + net.node_x[pos[3]]) / 2, (net.node_y[pos[2]] + net.node_y[pos[3]]) / 2]
    lower = [(net.node_x[pos[4]] + net.node_x[pos[5]]) / 2, (net.node_y[pos[4]] + net.node_y[pos[5]]) / 2]
    x = [net.node_x[pos[1]], mid[0], lower[0]]
    y = [net.node_y[pos[1]], mid[1], lower[1]]
    demand = snap_points(net, x, y, profile="lenient", ids=["at A", "mid B-C", "mid D-E"])
    got = nearest_facility(net, "lenient", fac, demand, weight="travel_time").demand
    piece = pieces_by_ends(roads, net)
    bc = net.piece_length_m[piece[2, 3]]
    assert bc == pytest.approx(STEP_M, abs=0.01)
    assert got["unknown_m"].tolist() == pytest.approx([bc, bc / 2, 0.0], abs=0.05)
    assert got["unknown_edges"].tolist() == [1, 1, 0]
    assert got["unknown_attributes"].tolist() == ["surface", "surface", ""]
    # a facility on the unknown piece itself, 20 m north of its middle (30 m south of C): A enters
    # B-C at B and goes 70 m; the point in the middle goes 20 m along it (a direct route); the point
    # on D-E enters at C and goes 30 m. (Snapping measures in UTM metres, lengths on the sphere: 0.1 m.)
    fac_bc = snap_points(net, [mid[0]], [mid[1] + 20.0], profile="lenient", ids=["on B-C"])
    direct = nearest_facility(net, "lenient", fac_bc, demand, weight="length").demand
    assert direct["unknown_m"].tolist() == pytest.approx([70.0, 20.0, 30.0], abs=0.1)
    assert direct["unknown_edges"].tolist() == [1, 1, 1]
    # strict: B-C is closed, so A cannot reach E (the point on B-C snaps 50 m off to a neighbour)
    fac_s = snap_points(net, net.node_x[[pos[5]]], net.node_y[[pos[5]]], profile="strict", ids=["E"])
    dem_s = snap_points(net, x, y, profile="strict", ids=["at A", "mid B-C", "mid D-E"])
    strict = nearest_facility(net, "strict", fac_s, dem_s, weight="travel_time").demand
    assert strict["reachable"].tolist()[::2] == [False, True]
    assert strict["unknown_m"].tolist() == [0.0, 0.0, 0.0]


# --- directed costs in the analyses: gaps and service areas -----------------------------------------


def test_gaps_and_service_areas_use_the_cost_of_each_direction(hill):
    """Facility on node N0 (the foot of the 5 % footway N0 -> N1), wheelchair, 150 s.

    Towards the facility a traveller on N0-N1 goes downhill: the whole piece costs 137.20 s, so all
    of it is within 150 s and nothing is a gap. Uphill (away from the facility) it costs 181.91 s:
    the reached stretch from the facility is 150 / 181.91 = 82.46 % of the piece. The old code used
    the uphill time both ways and reported a 17.5 m gap next to N1; and a service area made only of
    a part of a piece (no whole piece) failed in the road union with an IndexError.
    """
    import geopandas as gpd
    from shapely.geometry import Point

    from analyses.costs import Placer
    from analyses.gaps import gap_segments
    from analyses.service_areas import service_areas

    roads, dem = hill
    net = prepare_roads(roads, crs=CRS, profiles=load_profiles(), dem=dem)
    pos = {int(n): k for k, n in enumerate(net.node_id)}
    fac = gpd.GeoDataFrame({"id": ["f"]}, geometry=[Point(net.node_x[pos[1]], net.node_y[pos[1]])], crs=CRS)
    placer = Placer(net)
    snap = placer.snap(fac, "wheelchair")
    nothing = snap_points(net, [], [], profile="wheelchair", ids=[])
    node_cost = nearest_facility(net, "wheelchair", snap, nothing, weight="travel_time").node_cost
    assert node_cost[pos[2]] == pytest.approx(137.20, abs=0.01)
    gaps = gap_segments(net, "wheelchair", snap, node_cost, threshold="150s")
    assert len(gaps) == 0
    piece = pieces_by_ends(roads, net)[1, 2]
    length = net.piece_length_m[piece]
    to_fac = service_areas(placer, fac, profile="wheelchair", thresholds=["150s"], shape="roads")
    from_fac = service_areas(placer, fac, profile="wheelchair", thresholds=["150s"], direction="from_facility")
    assert to_fac.areas["road_length_m"].iloc[0] == pytest.approx(length, abs=0.01)
    assert from_fac.areas["road_length_m"].iloc[0] == pytest.approx(length * 150 / 181.9139, abs=0.05)


def test_coverage_points_carry_the_unknown_road_of_each_route(tmp_path):
    """The same line as above, households at A and on D-E, a facility at E: 100 m unknown from A."""
    import geopandas as gpd
    from shapely.geometry import Point

    from analyses.costs import Placer
    from analyses.coverage import measure_coverage

    known = {"wheelchair": "yes", "surface": "asphalt", "smoothness": "good", "incline": "0%", "width": "2"}
    nodes = {n: (0, n - 1, {}) for n in range(1, 6)}
    ways = [
        (1, [1, 2], {"highway": "footway", **known}),
        (2, [2, 3], {"highway": "footway", **{k: v for k, v in known.items() if k != "surface"}}),
        (3, [3, 4], {"highway": "footway", **known, "name": "x"}),
        (4, [4, 5], {"highway": "footway", **known, "name": "y"}),
    ]
    roads = read_roads(write_osm(tmp_path / "line.osm", nodes, ways), min_component_share=0)
    net = prepare_roads(roads, crs=CRS, profiles=load_profiles())
    pos = {int(n): k for k, n in enumerate(net.node_id)}
    xy = {n: (net.node_x[pos[n]], net.node_y[pos[n]]) for n in pos}
    fac = gpd.GeoDataFrame({"id": ["E"]}, geometry=[Point(xy[5])], crs=CRS)
    homes = gpd.GeoDataFrame(
        {"id": ["A", "DE"], "town_code": ["t", "t"]},
        geometry=[Point(xy[1]), Point((xy[4][0] + xy[5][0]) / 2, (xy[4][1] + xy[5][1]) / 2)],
        crs=CRS,
    )
    points = measure_coverage(Placer(net), fac, homes, profile="wheelchair", thresholds=["15min"]).points
    bc = net.piece_length_m[pieces_by_ends(roads, net)[2, 3]]
    assert points.loc["A", "unknown_m"] == pytest.approx(bc) and points.loc["DE", "unknown_m"] == 0.0
    assert points["unknown_edges"].tolist() == [1, 0]
    assert points["unknown_attributes"].tolist() == ["surface", ""]
    # the per-household report of every service carries the same metres
    from analyses.gaps import multi_service_report

    report = multi_service_report(Placer(net), {"toilet": fac}, homes, profile="wheelchair",
                                  thresholds={"toilet": "15min"})  # fmt: skip
    assert report.households.loc["A", "toilet_unknown_m"] == pytest.approx(bc)
    assert report.households.loc["DE", "toilet_unknown_m"] == 0.0


# --- incline tags have a direction ---------------------------------------------------------------


def test_incline_direction_and_reversal_follow_the_osm_wiki():
    from geo.osm import incline_direction, reverse_incline

    cases = {"8%": 1, "+8%": 1, "-8%": -1, "up": 1, "down": -1, "0%": 0, "0": 0, "yes": 0, "": 0, "-5°": -1}
    assert {value: incline_direction(value) for value in cases} == cases
    turned = {"8%": "-8%", "+8%": "-8%", "-8%": "8%", "up": "down", "down": "up", "-5°": "5°", "0%": "0%", "yes": "yes"}
    assert {value: reverse_incline(value) for value in turned} == turned


def _incline_times(tmp_path, ways, profiles=None):
    """Prepare a 1 - 2 line (north, ~100 m) from ``ways`` and return (time 1→2, time 2→1) for the wheelchair."""
    nodes = {1: (0, 0, {}), 2: (0, 1, {})}
    roads = read_roads(write_osm(tmp_path / "incline.osm", nodes, ways), min_component_share=0)
    net = prepare_roads(roads, crs=CRS, profiles=profiles or load_profiles())
    pg = net.profile("wheelchair")
    ((a, b), p), *_ = pieces_by_ends(roads, net).items()
    fwd = pg.piece_time_s[p] if pg.piece_fwd[p] else None
    bwd = pg.piece_time_bwd_s[p] if pg.piece_bwd[p] else None
    length = net.piece_length_m[p]
    return ((fwd, bwd) if (a, b) == (1, 2) else (bwd, fwd)), length


def test_an_incline_tag_is_uphill_one_way_and_downhill_the_other(tmp_path):
    # 6 % up from 1 to 2: the shipped wheelchair goes at 0.5 ** (0.06 / 0.0833) of 3 km/h uphill
    # and 0.8 ** (0.06 / 0.0833) downhill (geo/profiles.toml [wheelchair.slope])
    share_up, share_down = 0.5 ** (0.06 / 0.0833), 0.8 ** (0.06 / 0.0833)
    (up, down), length = _incline_times(tmp_path, [(1, [1, 2], {"highway": "footway", "incline": "6%"})])
    assert up == pytest.approx(length / (WHEEL_MPS * share_up))
    assert down == pytest.approx(length / (WHEEL_MPS * share_down))
    # the same slope drawn from 2 to 1 is tagged -6 %: the same costs
    (up2, down2), _ = _incline_times(tmp_path, [(1, [2, 1], {"highway": "footway", "incline": "-6%"})])
    assert (up2, down2) == pytest.approx((up, down))
    # `up` gives a direction but no gradient: unknown, lenient by default, flat speed both ways
    (a, b), _ = _incline_times(tmp_path, [(1, [1, 2], {"highway": "footway", "incline": "up"})])
    assert (a, b) == pytest.approx((length / WHEEL_MPS, length / WHEEL_MPS))


def test_an_incline_steeper_than_the_uphill_limit_closes_only_the_uphill_way(tmp_path):
    # a profile file allows 5 % uphill and the shipped 8.33 % downhill: 6 % is passable only downhill
    override = tmp_path / "profiles.toml"
    override.write_text("[wheelchair.slope]\nmax_uphill = 0.05\n", encoding="utf-8")
    profiles = load_profiles(override, merge=True)
    (up, down), length = _incline_times(tmp_path, [(1, [1, 2], {"highway": "footway", "incline": "6%"})], profiles)
    assert up is None
    assert down == pytest.approx(length / (WHEEL_MPS * 0.8 ** (0.06 / 0.0833)))
    # 10 % is past both limits: closed both ways
    (up, down), _ = _incline_times(tmp_path, [(1, [1, 2], {"highway": "footway", "incline": "10%"})], profiles)
    assert (up, down) == (None, None)


def test_inclined_ways_join_only_head_to_tail(tmp_path):
    nodes = {1: (0, 0, {}), 2: (0, 1, {}), 3: (0, 2, {}), 4: (1, 0, {}), 5: (1, 1, {}), 6: (1, 2, {})}
    ways = [
        # 1 → 2 → 3 climbs 6 % all the way: one piece
        (1, [1, 2], {"highway": "footway", "incline": "6%"}),
        (2, [2, 3], {"highway": "footway", "incline": "6%"}),
        # 4 → 5 climbs and 6 → 5 climbs: node 5 is a summit, so it stays a node (two pieces)
        (3, [4, 5], {"highway": "footway", "incline": "6%"}),
        (4, [6, 5], {"highway": "footway", "incline": "6%"}),
    ]
    roads = read_roads(write_osm(tmp_path / "chain.osm", nodes, ways), min_component_share=0)
    pieces = pieces_by_ends(roads)
    incline = roads.piece_tags["incline"]
    assert sorted(tuple(sorted(ends)) for ends in pieces) == [(1, 3), (4, 5), (5, 6)]
    climbs = {(1, 3), (4, 5), (6, 5)}  # the direction each piece goes up, whichever way it is stored
    for (a, b), p in pieces.items():
        assert incline[p] == ("6%" if (a, b) in climbs else "-6%"), (a, b)
    # whichever way a piece was stored, the wheelchair climbs towards 3 and towards the summit 5
    net = prepare_roads(roads, crs=CRS, profiles=load_profiles())
    pg = net.profile("wheelchair")
    ids = net.node_id.tolist()

    def time(a, b):
        p = pieces.get((a, b))
        if p is not None:
            return pg.piece_time_s[p]
        return pg.piece_time_bwd_s[pieces[b, a]]

    assert time(1, 3) > time(3, 1)
    assert time(4, 5) > time(5, 4) and time(6, 5) > time(5, 6)
    assert time(4, 5) == pytest.approx(time(6, 5))
    assert sorted(ids) == [1, 3, 4, 5, 6]


# --- what slopes change: steep pieces and flat-vs-slope coverage ------------------------------------


@pytest.fixture(scope="module")
def ramp_and_hill(tmp_path_factory):
    """1 (0 m) - 2 (3 m) - 3 (15 m) north along a meridian (3 %, then 12 %); 5 → 4 tagged 6 % up, flat DEM."""
    folder = tmp_path_factory.mktemp("steep")
    nodes = {1: (0, 0, {}), 2: (0, 1, {}), 3: (0, 2, {}), 4: (1, 0, {}), 5: (1, 1, {})}
    ways = [
        (1, [1, 2], {"highway": "footway", "name": "坡下路"}),
        (2, [2, 3], {"highway": "footway", "name": "坡上路"}),
        (3, [5, 4], {"highway": "footway", "name": "坡道", "incline": "6%"}),
    ]
    roads = read_roads(write_osm(folder / "steep.osm", nodes, ways), min_component_share=0)
    dem = read_dem(lattice_dem(folder / "steep.tif", [[0.0, 0.0], [3.0, 0.0], [15.0, 0.0]]))
    return roads, dem


def test_steep_segments_are_drawn_uphill_with_their_closure_and_source(ramp_and_hill):
    from analyses.slopes import CLOSED_BOTH, FROM_DEM, FROM_TAG, OPEN, steep_segments

    roads, dem = ramp_and_hill
    net = prepare_roads(roads, crs=CRS, profiles=load_profiles(), dem=dem)
    at = {int(i): (x, y) for i, x, y in zip(net.node_id, net.node_x, net.node_y, strict=True)}
    steep = steep_segments(net, "wheelchair").set_index("name")
    # 3 % (坡下路) is below 1:20: not listed; 12 % is past the wheelchair's 1:12 both ways; the ramp's
    # tag (6 %, up from 5 to 4) wins over the flat DEM and stays open
    assert sorted(steep.index) == ["坡上路", "坡道"]
    assert steep.loc["坡上路", "grade_percent"] == pytest.approx(12 / STEP_M * 100, abs=0.05)
    assert (steep.loc["坡上路", "closed"], steep.loc["坡上路", "source"]) == (CLOSED_BOTH, FROM_DEM)
    assert (steep.loc["坡道", "grade_percent"], steep.loc["坡道", "closed"]) == (6.0, OPEN)
    assert steep.loc["坡道", "source"] == FROM_TAG
    assert steep.loc["坡上路", "geometry"].coords[0] == pytest.approx(at[2])  # drawn uphill: from 2 to 3
    assert steep.loc["坡道", "geometry"].coords[0] == pytest.approx(at[5])  # from 5 up to 4
    # walking reads no tags and has no limit (Tobler): only the 12 % street, open
    walk = steep_segments(net, "walk")
    assert walk["name"].tolist() == ["坡上路"] and walk["closed"].tolist() == [OPEN]
    # with 1:12 uphill but 15 % downhill allowed, the 12 % street closes uphill only
    from analyses.slopes import CLOSED_UPHILL

    override = load_profiles()
    override["wheelchair"] = Profile(
        "wheelchair",
        override["wheelchair"].speed_kph,
        respect_oneway=False,
        access=override["wheelchair"].access,
        slope=SlopeModel("exponential", max_uphill=0.0833, max_downhill=0.15, uphill_share_at_max=0.5,
                         downhill_share_at_max=0.8),  # fmt: skip
    )
    net2 = prepare_roads(roads, crs=CRS, profiles=override, dem=dem)
    closed = steep_segments(net2, "wheelchair").set_index("name")["closed"]
    assert closed["坡上路"] == CLOSED_UPHILL and closed["坡道"] == OPEN
    # no DEM and no tag: nothing is steep
    flat = prepare_roads(roads, crs=CRS, profiles=load_profiles())
    assert steep_segments(flat, "wheelchair")["name"].tolist() == ["坡道"]
    assert steep_segments(flat, "walk").empty


def test_flat_and_slope_coverage_compared_per_town_by_hand():
    import pandas as pd

    from analyses.coverage import CoverageResult
    from analyses.slopes import compare_flat_and_slopes

    def result(covered):
        points = pd.DataFrame(
            {"town_code": ["A", "A", "A", "B"], "weight": [1.0, 1.0, 1.0, 1.0], "covered_300s": covered},
            index=pd.Index(["h1", "h2", "h3", "h4"], name="demand_id"),
        )
        return CoverageResult(points, {}, pd.DataFrame(), pd.DataFrame())

    flat = result([True, True, False, True])
    slopes = result([True, False, True, False])  # h2 and h4 lost, h3 gained (a downhill shortcut)
    cmp = compare_flat_and_slopes(flat, slopes)
    assert cmp.summary["covered_300s"] == {
        "flat": 3, "slopes": 2, "lost": 2, "gained": 1, "change": -1, "flat_share": 0.75, "slopes_share": 0.5,
    }  # fmt: skip
    assert cmp.by_town.loc["A"].to_dict() == {
        "points": 3, "covered_300s_flat": 2, "covered_300s_slopes": 2, "covered_300s_lost": 1,
        "covered_300s_gained": 1, "covered_300s_change": 0,
    }  # fmt: skip
    assert cmp.by_town.loc["B", "covered_300s_change"] == -1
    fewer = CoverageResult(flat.points.iloc[:2], {}, pd.DataFrame(), pd.DataFrame())
    with pytest.raises(ValueError, match="same demand points"):
        compare_flat_and_slopes(flat, fewer)
