from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from geo.prepared import prepare_network
from geo.profiles import load_profiles
from geo.reduction import peel_pendant_trees
from geo.routing import nearest_facility, point_ends
from geo.snapping import snap_points
from tests.geo.conftest import CRS, X0, Y0, _add

# A 100 m square 1-2-3-4 with a pendant tree hanging from node 2 and two dead ends:
#
#   4 ---- 3 --60-> 30 (one-way road: drive keeps 30 in the core)
#   |      |
#   1 ---- 2 --50-- 10 --30-- 11
#                    \--40-- 12
POS = {
    1: (0, 0),
    2: (100, 0),
    3: (100, 100),
    4: (0, 100),
    10: (150, 0),
    11: (180, 0),
    12: (150, -40),
    30: (160, 100),
}


def _pendant_graph() -> nx.MultiDiGraph:
    G = nx.MultiDiGraph(crs=CRS)
    for n, (x, y) in POS.items():
        G.add_node(n, x=X0 + x, y=Y0 + y)
    for u, v in [(1, 2), (2, 3), (3, 4), (4, 1), (2, 10), (10, 11), (10, 12)]:
        (xu, yu), (xv, yv) = POS[u], POS[v]
        G_len = float(np.hypot(xv - xu, yv - yu))
        _add(G, u, v, "residential")
        for key in G[u][v]:
            G[u][v][key]["length"] = G_len
        for key in G[v][u]:
            G[v][u][key]["length"] = G_len
    _add(G, 3, 30, "residential", oneway=True)
    for key in G[3][30]:
        G[3][30][key]["length"] = 60.0
    return G


@pytest.fixture
def pendant_net():
    return prepare_network(_pendant_graph(), profiles=load_profiles())


def _at(net, nodes, profile, ids=None):
    pos = {n: i for i, n in enumerate(net.node_id.tolist())}
    idx = [pos[n] for n in nodes]
    ids = list(map(str, nodes)) if ids is None else ids
    return snap_points(net, net.node_x[idx], net.node_y[idx], profile=profile, ids=ids)


def _xy(net, pts, profile, ids):
    x, y = np.array(pts, dtype=float).T
    return snap_points(net, X0 + x, Y0 + y, profile=profile, ids=ids)


def _peeled(net, profile):
    trees = net.pendant_trees(profile, "length")
    return set(net.node_id[trees.node].tolist()), set(net.node_id[trees.core].tolist())


def test_pendant_trees_are_peeled_and_one_way_dead_ends_stay(pendant_net):
    walk_peeled, walk_core = _peeled(pendant_net, "walk")
    assert walk_peeled == {10, 11, 12, 30} and walk_core == {1, 2, 3, 4}
    drive_peeled, drive_core = _peeled(pendant_net, "drive")
    assert drive_peeled == {10, 11, 12} and drive_core == {1, 2, 3, 4, 30}
    trees = pendant_net.pendant_trees("walk", "length")
    ids = pendant_net.node_id
    hangs = {int(ids[x]): (int(ids[p]), c) for x, p, c in zip(trees.node, trees.parent, trees.cost, strict=True)}
    assert hangs == {11: (10, 30.0), 12: (10, 40.0), 10: (2, 50.0), 30: (3, 60.0)}
    assert trees.n_levels == 2  # 11, 12 and 30 first, then 10


def test_peeling_on_raw_arrays_keeps_asymmetric_roads_and_one_end_of_a_lone_road():
    # 0 <-> 1 <-> 2 <-> 0 triangle (cost 1); 2 -> 3 costs 5 but 3 -> 2 costs 7; lone road 4 <-> 5
    arcs = {(0, 1): 1, (1, 0): 1, (1, 2): 1, (2, 1): 1, (0, 2): 1, (2, 0): 1, (2, 3): 5, (3, 2): 7}
    arcs |= {(4, 5): 2, (5, 4): 2}
    src, dst = np.array(sorted(arcs)).T
    A = sp.csr_matrix(([arcs[a] for a in sorted(arcs)], (src, dst)), shape=(6, 6))
    trees = peel_pendant_trees(A.indptr, A.indices, A.data.astype(float))
    assert trees.core.tolist() == [0, 1, 2, 3, 4]
    assert trees.node.tolist() == [5] and trees.parent.tolist() == [4] and trees.cost.tolist() == [2.0]


def test_facility_inside_a_tree_serves_its_tree_and_the_core(pendant_net):
    fac = _at(pendant_net, [11, 4], "walk", ["tree", "corner"])
    dem = _at(pendant_net, [12, 1, 3], "walk")
    res = nearest_facility(pendant_net, "walk", fac, dem, weight="length")
    nodes = res.nodes
    assert nodes.loc[10, "cost"] == 30.0 and nodes.loc[10, "facility_id"] == "tree"
    assert nodes.loc[12, "cost"] == 70.0 and nodes.loc[12, "facility_id"] == "tree"
    assert nodes.loc[2, "cost"] == 80.0 and nodes.loc[2, "facility_id"] == "tree"
    assert nodes.loc[1, "cost"] == 100.0 and nodes.loc[1, "facility_id"] == "corner"
    assert nodes.loc[30, "cost"] == 160.0 and nodes.loc[30, "facility_id"] == "corner"
    assert res.demand["cost"].tolist() == [70.0, 100.0, 100.0]
    assert res.demand["facility_id"].tolist() == ["tree", "corner", "corner"]


def test_two_facilities_in_one_tree(pendant_net):
    fac = _at(pendant_net, [11, 12], "walk", ["f11", "f12"])
    nodes = nearest_facility(pendant_net, "walk", fac, fac, weight="length").nodes
    got = {n: (nodes.loc[n, "cost"], nodes.loc[n, "facility_id"]) for n in (11, 12, 10, 2, 4)}
    assert got == {11: (0, "f11"), 12: (0, "f12"), 10: (30, "f11"), 2: (80, "f11"), 4: (280, "f11")}


def test_facility_and_demand_mid_edge_on_a_pendant_road(pendant_net):
    # facility 15 m east of 10 and 4 m off the road; demand 10 m south of 10 on the road to 12
    fac = _xy(pendant_net, [(165, 4)], "walk", ["F"])
    dem = _xy(pendant_net, [(150, -10), (120, 0)], "walk", ["d12", "d2"])
    res = nearest_facility(pendant_net, "walk", fac, dem, weight="length")
    nodes = res.nodes["cost"]
    assert nodes.loc[11] == pytest.approx(4 + 15) and nodes.loc[10] == pytest.approx(4 + 15)
    assert nodes.loc[12] == pytest.approx(4 + 15 + 40) and nodes.loc[2] == pytest.approx(4 + 15 + 50)
    assert res.demand["cost"].tolist() == pytest.approx([4 + 15 + 10, 4 + 15 + 30])


def test_one_way_dead_end_is_searched_in_the_core(pendant_net):
    fac = _at(pendant_net, [30], "drive", ["end"])
    nodes = nearest_facility(pendant_net, "drive", fac, fac, weight="length").nodes
    assert nodes.loc[3, "cost"] == 60.0 and nodes.loc[11, "cost"] == 30 + 50 + 100 + 60
    out = nearest_facility(pendant_net, "drive", _at(pendant_net, [1], "drive"), fac, weight="length")
    assert not out.nodes.loc[30, "reachable"]  # no way out of the one-way dead end
    assert not out.demand.loc["end", "reachable"]


def test_cutoff_ends_inside_a_tree(pendant_net):
    fac = _at(pendant_net, [2], "walk", ["F"])
    nodes = nearest_facility(pendant_net, "walk", fac, fac, weight="length", cutoff=85).nodes
    assert nodes.loc[10, "cost"] == 50.0 and nodes.loc[11, "cost"] == 80.0
    assert not nodes.loc[12, "reachable"] and pd.isna(nodes.loc[12, "facility_id"])


@pytest.mark.parametrize("fac_nodes", [[11], [12, 11], [30, 10], [1, 12]])
def test_matches_networkx_on_the_pendant_graph(pendant_net, fac_nodes):
    G = _pendant_graph()
    D = nx.DiGraph((u, v, {"w": d["length"]}) for u, v, d in G.edges(data=True))  # walk: both ways
    D.add_edges_from((v, u, {"w": d["length"]}) for u, v, d in G.edges(data=True))
    expected = nx.multi_source_dijkstra_path_length(D.reverse(copy=True), fac_nodes, weight="w")
    fac = _at(pendant_net, fac_nodes, "walk")
    got = nearest_facility(pendant_net, "walk", fac, fac, weight="length").nodes["cost"]
    assert got.to_dict() == pytest.approx(expected, abs=1e-9)


def _unreduced(net, profile, weight, fac_snap):
    """Reference: one scipy search on the whole graph, facilities as virtual nodes (node order)."""
    pg = net.profile(profile)
    ends = point_ends(net, pg, fac_snap, weight, None, ~fac_snap.too_far)
    n, k = net.n_nodes, len(fac_snap)
    A = pg.csr(weight, reverse=True).tocoo()
    rows = np.r_[A.row, n + np.arange(k), n + np.arange(k)]
    cols = np.r_[A.col, ends.a, ends.b]
    vals = np.r_[A.data, ends.from_a, ends.from_b]
    ok = np.isfinite(vals)
    B = sp.csr_matrix((vals[ok], (rows[ok], cols[ok])), shape=(n + k, n + k))
    dist, _, src = dijkstra(B, indices=np.arange(n, n + k), min_only=True, return_predecessors=True)
    return dist[:n], np.where(src[:n] >= n, src[:n] - n, -1)


@pytest.mark.parametrize("n_facilities", [15, 300])
@pytest.mark.parametrize(("profile", "weight"), [("walk", "length"), ("drive", "travel_time")])
def test_matches_the_unreduced_search_on_bishan(bishan_net, n_facilities, profile, weight):
    net = bishan_net
    trees = net.pendant_trees(profile, weight)
    assert len(trees.node) > 0.15 * net.n_nodes  # the reduction has something to do
    rng = np.random.default_rng(0)
    # half the facilities near peeled nodes, so some sit inside trees and mid-edge on pendant roads
    near = np.r_[rng.choice(trees.node, n_facilities // 2), rng.choice(net.n_nodes, n_facilities - n_facilities // 2)]
    x = net.node_x[near] + rng.uniform(-25, 25, n_facilities)
    y = net.node_y[near] + rng.uniform(-25, 25, n_facilities)
    fac = snap_points(net, x, y, profile=profile, ids=np.arange(n_facilities))
    res = nearest_facility(net, profile, fac, fac, weight=weight)
    cost, src = _unreduced(net, profile, weight, fac)
    assert np.array_equal(np.isfinite(res.node_cost), np.isfinite(cost))
    fin = np.isfinite(cost)
    assert np.max(np.abs(res.node_cost[fin] - cost[fin])) <= 1e-9
    assert np.array_equal(res.node_facility[fin], src[fin])
