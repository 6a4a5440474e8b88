from __future__ import annotations

import dataclasses

import networkx as nx
import numpy as np
import osmnx as ox
import pytest

from geo.prepared import prepare_network
from geo.profiles import load_profiles, travel_time_s
from geo.routing import cost_matrix, nearest_facility, reach
from geo.snapping import snap_points
from tests.geo.conftest import X0, Y0, node, xy

WALK_MPS = 5 / 3.6
DRIVE_RES_MPS = 19 / 3.6


def _snap(net, pts, profile, ids, **kw):
    x, y = np.array(pts, dtype=float).T
    return snap_points(net, x, y, profile=profile, ids=ids, **kw)


def test_nearest_facility_walk_length_and_time_include_access_and_partial_edges(grid_net):
    fac = _snap(grid_net, [xy(0, 0)], "walk", ["F"])
    dem = _snap(grid_net, [(X0 + 150, Y0 + 230)], "walk", ["d1"])
    res = nearest_facility(grid_net, "walk", fac, dem, weight="length")
    # 30 m to row 2, 50 m along it to (2, 1), then 200 m south and 100 m west
    assert res.demand.loc["d1", "cost"] == pytest.approx(380.0)
    assert res.demand.loc["d1", "facility_id"] == "F"
    assert res.nodes.loc[node(3, 3), "cost"] == pytest.approx(600.0)
    t = nearest_facility(grid_net, "walk", fac, dem, weight="travel_time")
    assert t.demand.loc["d1", "cost"] == pytest.approx(380.0 / WALK_MPS)


def test_one_way_row_counts_for_drive_not_walk(grid_net):
    # demand on the eastbound one-way row 1 halfway between columns 1 and 2; facility at node (1, 0)
    fac = {p: _snap(grid_net, [xy(1, 0)], p, ["F"]) for p in ("walk", "drive")}
    dem = {p: _snap(grid_net, [(X0 + 150, Y0 + 110)], p, ["d"]) for p in ("walk", "drive")}
    walk = nearest_facility(grid_net, "walk", fac["walk"], dem["walk"], weight="length")
    drive = nearest_facility(grid_net, "drive", fac["drive"], dem["drive"], weight="length")
    assert walk.demand.loc["d", "cost"] == pytest.approx(10 + 50 + 100)
    # drive: east 50 m to (1, 2), then around a block 400 m back to (1, 0)
    assert drive.demand.loc["d", "cost"] == pytest.approx(10 + 50 + 400)
    dt = nearest_facility(grid_net, "drive", fac["drive"], dem["drive"], weight="travel_time")
    assert dt.demand.loc["d", "cost"] == pytest.approx(460 / DRIVE_RES_MPS)


def test_same_piece_direct_cost_depends_on_direction(grid_net):
    fac = _snap(grid_net, [(X0 + 80, Y0 + 100)], "drive", ["F"])  # on one-way row 1, fraction 0.8
    dem = _snap(grid_net, [(X0 + 20, Y0 + 105), (X0 + 90, Y0 + 95)], "drive", ["behind", "ahead"])
    res = nearest_facility(grid_net, "drive", fac, dem, weight="length")
    assert res.demand.loc["behind", "cost"] == pytest.approx(5 + 60)
    # "ahead" must drive on to (1, 1), around the block (300 m) to (1, 0), then 80 m
    assert res.demand.loc["ahead", "cost"] == pytest.approx(5 + 10 + 300 + 80)
    walk = nearest_facility(
        grid_net,
        "walk",
        _snap(grid_net, [(X0 + 80, Y0 + 100)], "walk", ["F"]),
        _snap(grid_net, [(X0 + 90, Y0 + 95)], "walk", ["ahead"]),
        weight="length",
    )
    assert walk.demand.loc["ahead", "cost"] == pytest.approx(5 + 10)


def test_point_at_the_end_of_a_one_way_piece_is_at_that_node(grid_net):
    fac = _snap(grid_net, [(X0 + 90, Y0 + 100)], "drive", ["F"])  # piece (1, 0) -> (1, 1)
    end = dataclasses.replace(fac, x=fac.x + 10, fraction=np.array([1.0]), along_m=np.array([100.0]))
    res = nearest_facility(grid_net, "drive", end, end, weight="length")
    assert res.nodes.loc[node(1, 1), "cost"] == 0.0
    start = dataclasses.replace(fac, x=fac.x - 90, fraction=np.array([0.0]), along_m=np.array([0.0]))
    res = reach(grid_net, "drive", start, weight="length", cutoff=1, direction="from_facility")
    assert res["node_id"].tolist() == [node(1, 0)]


def test_ties_pick_one_of_the_tied_facilities(grid_net):
    fac = _snap(grid_net, [xy(0, 0), xy(0, 2), xy(3, 3)], "walk", ["A", "C", "Z"])
    dem = _snap(grid_net, [xy(0, 1)], "walk", ["d"])
    res = nearest_facility(grid_net, "walk", fac, dem, weight="length")
    assert res.demand.loc["d", "cost"] == pytest.approx(100.0)
    assert res.demand.loc["d", "facility_id"] in {"A", "C"}
    assert res.nodes.loc[node(3, 2), "facility_id"] == "Z"


def test_steps_are_not_used_by_wheelchair(grid_net):
    fac = {p: _snap(grid_net, [xy(3, 0)], p, ["F"]) for p in ("walk", "wheelchair")}
    dem = {p: _snap(grid_net, [xy(2, 0)], p, ["d"]) for p in ("walk", "wheelchair")}
    walk = nearest_facility(grid_net, "walk", fac["walk"], dem["walk"], weight="length")
    wheel = nearest_facility(grid_net, "wheelchair", fac["wheelchair"], dem["wheelchair"], weight="length")
    assert walk.demand.loc["d", "cost"] == pytest.approx(100.0)
    assert wheel.demand.loc["d", "cost"] == pytest.approx(300.0)


def test_unreachable_and_far_points_are_reported_never_zero(grid_net):
    fac = _snap(grid_net, [xy(0, 0)], "walk", ["F"])
    pts = [(X0 + 1050, Y0 + 5), (X0 + 5000, Y0 + 5000), xy(0, 0)]
    dem = _snap(grid_net, pts, "walk", ["island", "far", "here"])
    res = nearest_facility(grid_net, "walk", fac, dem, weight="length").demand
    assert res["reachable"].tolist() == [False, False, True]
    assert res["too_far"].tolist() == [False, True, False]
    assert np.isinf(res.loc["island", "cost"]) and np.isinf(res.loc["far", "cost"])
    assert res["facility_id"].isna().tolist() == [True, True, False]
    assert res.loc["here", "cost"] == 0.0
    attached = nearest_facility(grid_net, "walk", fac, dem, weight="length", attach_far=True).demand
    assert not attached.loc["far", "reachable"]  # it snaps to the island
    nodes = nearest_facility(grid_net, "walk", fac, dem, weight="length").nodes
    assert not nodes.loc[17, "reachable"] and np.isinf(nodes.loc[17, "cost"])


def test_cutoff_marks_costs_beyond_it_unreachable(grid_net):
    fac = _snap(grid_net, [xy(0, 0)], "walk", ["F"])
    dem = _snap(grid_net, [xy(0, 1), xy(3, 3)], "walk", ["near", "far"])
    res = nearest_facility(grid_net, "walk", fac, dem, weight="length", cutoff=250).demand
    assert res["reachable"].tolist() == [True, False]


def test_cost_matrix_is_labelled_and_cut_off(grid_net):
    cand = _snap(grid_net, [xy(0, 0), xy(1, 0), (X0 + 1050, Y0)], "drive", ["c0", "c1", "c_island"])
    dem = _snap(grid_net, [(X0 + 150, Y0 + 110), xy(0, 1)], "drive", ["d_row1", "d01"])
    table = cost_matrix(grid_net, "drive", dem, cand, weight="length", cutoff=450)
    got = {(d, c): v for d, c, v in table.itertuples(index=False)}
    # d_row1 -> c0: east to (1, 2), south to (0, 2), west 200 m = 10 + 50 + 300; -> c1 is 460 > 450
    assert got == pytest.approx({("d_row1", "c0"): 360.0, ("d01", "c0"): 100.0, ("d01", "c1"): 200.0})
    assert list(table.columns) == ["demand_id", "candidate_id", "cost"]


def test_cost_matrix_includes_same_piece_pairs(grid_net):
    cand = _snap(grid_net, [(X0 + 80, Y0 + 100)], "drive", ["c"])
    dem = _snap(grid_net, [(X0 + 20, Y0 + 105)], "drive", ["d"])
    table = cost_matrix(grid_net, "drive", dem, cand, weight="length", cutoff=100)
    assert table["cost"].tolist() == pytest.approx([65.0])


def test_reach_lists_nodes_within_cutoff_in_both_directions(grid_net):
    fac = _snap(grid_net, [(X0 + 50, Y0 + 100)], "drive", ["F"])  # middle of one-way piece (1,0)->(1,1)
    to_f = reach(grid_net, "drive", fac, weight="length", cutoff=150)
    to_f = dict(zip(to_f["node_id"], to_f["cost"], strict=True))
    assert to_f == pytest.approx({node(1, 0): 50.0, node(0, 0): 150.0, node(2, 0): 150.0})
    from_f = reach(grid_net, "drive", fac, weight="length", cutoff=150, direction="from_facility")
    from_f = dict(zip(from_f["node_id"], from_f["cost"], strict=True))
    assert from_f == pytest.approx({node(1, 1): 50.0, node(0, 1): 150.0, node(2, 1): 150.0, node(1, 2): 150.0})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"weight": "distance"}, "weight"), ({"weight": "length", "cutoff": -1.0}, "cutoff")],
)
def test_bad_arguments_raise(grid_net, kwargs, match):
    fac = _snap(grid_net, [xy(0, 0)], "walk", ["F"])
    with pytest.raises(ValueError, match=match):
        nearest_facility(grid_net, "walk", fac, fac, **kwargs)


def test_snap_for_another_profile_is_rejected(grid_net):
    fac = _snap(grid_net, [xy(0, 0)], "walk", ["F"])
    with pytest.raises(ValueError, match="snapped for profile 'walk'"):
        nearest_facility(grid_net, "drive", fac, fac, weight="length")


def _nx_profile_digraph(G, profile, weight):
    """Independent reference: a DiGraph of the arcs ``profile`` may use, cheapest parallel arc."""
    D = nx.DiGraph()
    for u, v, d in G.edges(data=True):
        if "highway" not in d or u == v:
            continue
        t = travel_time_s(d["length"], d["highway"], profile)
        if t is None:
            continue
        w = d["length"] if weight == "length" else t
        arcs = [(u, v)] if profile.respect_oneway else [(u, v), (v, u)]
        for a, b in arcs:
            if not D.has_edge(a, b) or D[a][b]["w"] > w:
                D.add_edge(a, b, w=w)
    return D


@pytest.mark.parametrize(("profile", "weight"), [("walk", "length"), ("drive", "travel_time")])
def test_matches_networkx_on_a_real_osm_extract(profile, weight):
    G = ox.graph_from_xml("tests/data/West-Oakland.osm.bz2", simplify=True, retain_all=True)
    G = ox.projection.project_graph(G, to_crs="EPSG:32610")
    profiles = load_profiles()
    net = prepare_network(G, profiles=profiles)
    D = _nx_profile_digraph(G, profiles[profile], weight)
    rng = np.random.default_rng(0)
    usable = [n for n in D.nodes]
    fac_nodes = list(rng.choice(usable, size=4, replace=False))
    pos = {n: i for i, n in enumerate(net.node_id.tolist())}
    fx = [net.node_x[pos[n]] for n in fac_nodes]
    fy = [net.node_y[pos[n]] for n in fac_nodes]
    fac = snap_points(net, fx, fy, profile=profile, ids=[f"f{n}" for n in fac_nodes])
    assert fac.distance_m.max() < 1e-6
    res = nearest_facility(net, profile, fac, fac, weight=weight)
    expected = nx.multi_source_dijkstra_path_length(D.reverse(copy=True), fac_nodes, weight="w")
    got = res.nodes["cost"]
    assert got[np.isfinite(got)].index.sort_values().tolist() == sorted(expected)
    diff = max(abs(got.loc[n] - c) for n, c in expected.items())
    assert diff <= 1e-6
