from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
import shapely

from geo.errors import NetworkError
from geo.prepared import PreparedNetwork, load_or_prepare, prepare_network
from tests.geo.conftest import CRS, make_grid, node


def _arcs(net, profile, weight="length"):
    pg = net.profile(profile)
    m = pg.csr(weight).tocoo()
    ids = net.node_id
    return {(int(ids[i]), int(ids[j])): float(c) for i, j, c in zip(m.row, m.col, m.data, strict=True)}


def test_grid_has_one_piece_per_road_and_arcs_per_profile(grid_net):
    assert grid_net.n_nodes == 18
    assert grid_net.n_pieces == 12 + 12 + 1
    walk, drive, wheel = (_arcs(grid_net, p) for p in ("walk", "drive", "wheelchair"))
    assert len(walk) == 2 * 25
    # row 1 one-way eastbound: 3 arcs lost for drive; steps piece lost both ways
    assert len(drive) == 2 * 25 - 3 - 2
    assert (node(1, 0), node(1, 1)) in drive and (node(1, 1), node(1, 0)) not in drive
    assert (node(1, 1), node(1, 0)) in walk
    assert (node(2, 0), node(3, 0)) in walk and (node(2, 0), node(3, 0)) not in wheel
    assert len(wheel) == 2 * 25 - 2
    assert walk[(node(0, 0), node(0, 1))] == 100.0
    t = _arcs(grid_net, "drive", "travel_time")
    assert t[(node(0, 0), node(0, 1))] == pytest.approx(100 / (19 / 3.6))


def test_reverse_arrays_hold_the_transposed_graph(grid_net):
    pg = grid_net.profile("drive")
    fwd = pg.csr("length").toarray()
    rev = pg.csr("length", reverse=True).toarray()
    np.testing.assert_array_equal(fwd.T, rev)


def test_parallel_arcs_keep_the_cheapest_per_weight(profiles):
    G = nx.MultiDiGraph(crs=CRS)
    G.add_node(1, x=0.0, y=0.0)
    G.add_node(2, x=100.0, y=0.0)
    G.add_edge(1, 2, highway="residential", length=100.0)  # 18.95 s by car
    G.add_edge(1, 2, highway="primary", length=150.0)  # 10.38 s by car
    net = prepare_network(G, profiles=profiles)
    assert _arcs(net, "drive") == {(1, 2): 100.0}
    assert _arcs(net, "drive", "travel_time") == pytest.approx({(1, 2): 150 / (52 / 3.6)})
    assert net.n_pieces == 2


def test_one_way_road_beside_a_two_way_road_between_the_same_nodes_keeps_both(profiles):
    # As in the synthetic x4 network: 1->2 key 0 is a straight one-way road (140 m); a curved two-way
    # road is 2->1 key 0 and 1->2 key 1 (298 m). networkx's to_undirected() merges the two key-0
    # edges and loses the short road; the prepared arrays must keep it.
    G = nx.MultiDiGraph(crs=CRS)
    G.add_node(1, x=0.0, y=0.0)
    G.add_node(2, x=0.0, y=140.0)
    G.add_node(3, x=0.0, y=280.0)
    G.add_edge(1, 2, key=0, highway="residential", length=140.0, oneway=True)
    curve = [(0.0, 140.0), (100.0, 70.0), (0.0, 0.0)]
    G.add_edge(2, 1, key=0, highway="residential", length=298.0, geometry=shapely.LineString(curve))
    G.add_edge(1, 2, key=1, highway="residential", length=298.0, geometry=shapely.LineString(curve[::-1]))
    G.add_edge(2, 3, highway="residential", length=140.0)
    G.add_edge(3, 2, highway="residential", length=140.0)
    net = prepare_network(G, profiles=profiles)
    assert net.n_pieces == 3  # the one-way road, the curve (two-way) and 2-3
    assert _arcs(net, "walk") == {(1, 2): 140.0, (2, 1): 140.0, (2, 3): 140.0, (3, 2): 140.0}
    assert _arcs(net, "drive") == {(1, 2): 140.0, (2, 1): 298.0, (2, 3): 140.0, (3, 2): 140.0}


def test_geographic_crs_is_rejected(profiles):
    G = make_grid()
    G.graph["crs"] = "EPSG:4326"
    with pytest.raises(NetworkError, match="projected CRS"):
        prepare_network(G, profiles=profiles)


def test_save_load_round_trip_gives_equal_arrays(grid_net, tmp_path):
    grid_net.save(tmp_path / "g.npz")
    back = PreparedNetwork.load(tmp_path / "g.npz")
    assert back.crs == grid_net.crs == "EPSG:32648"
    for name in ("node_id", "node_x", "piece_u", "piece_v", "piece_coords", "piece_coord_ptr"):
        np.testing.assert_array_equal(getattr(back, name), getattr(grid_net, name))
    for p, pg in grid_net.profiles.items():
        for attr in ("indptr", "indices", "length_m", "time_s", "rindices", "piece_fwd", "piece_speed_mps"):
            np.testing.assert_array_equal(getattr(back.profile(p), attr), getattr(pg, attr))


def test_cache_is_reused_until_the_source_changes(tmp_path, profiles):
    src = tmp_path / "roads.osm"
    src.write_bytes(b"version 1")
    calls = []

    def build(path):
        calls.append(path)
        return make_grid()

    a = load_or_prepare(src, CRS, profiles, tmp_path / "cache", build_graph=build)
    b = load_or_prepare(src, CRS, profiles, tmp_path / "cache", build_graph=build)
    assert len(calls) == 1
    np.testing.assert_array_equal(a.profile("walk").indices, b.profile("walk").indices)
    src.write_bytes(b"version 2")
    load_or_prepare(src, CRS, profiles, tmp_path / "cache", build_graph=build)
    assert len(calls) == 2
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
    slower = {**profiles, "walk": profiles["walk"].with_speed(4.0)}
    load_or_prepare(src, CRS, slower, tmp_path / "cache", build_graph=build)
    assert len(calls) == 3


def test_each_piece_keeps_its_highway_class(grid_net, tmp_path):
    classes = dict(zip(zip(grid_net.piece_u.tolist(), grid_net.piece_v.tolist(), strict=True),
                       grid_net.piece_highway.tolist(), strict=True))  # fmt: skip
    pos = {int(n): i for i, n in enumerate(grid_net.node_id)}
    assert classes[(pos[node(2, 0)], pos[node(3, 0)])] == "steps"
    assert sorted(set(classes.values())) == ["residential", "steps"]
    assert list(classes.values()).count("residential") == 24
    grid_net.save(tmp_path / "g.npz")
    np.testing.assert_array_equal(PreparedNetwork.load(tmp_path / "g.npz").piece_highway, grid_net.piece_highway)


def test_merged_edges_take_their_most_important_class_and_missing_is_empty(profiles):
    G = nx.MultiDiGraph(crs=CRS)
    for n, x in ((1, 0.0), (2, 100.0), (3, 200.0)):
        G.add_node(n, x=x, y=0.0)
    G.add_edge(1, 2, highway=["residential", "secondary_link"], length=100.0)
    G.add_edge(2, 3, length=100.0)
    net = prepare_network(G, profiles=profiles)
    assert net.piece_highway.tolist() == ["secondary_link", ""]
    assert net.piece_highway.dtype.kind == "U"


def test_a_cache_of_the_previous_format_is_refused(grid_net, tmp_path):
    grid_net.save(tmp_path / "g.npz")
    with np.load(tmp_path / "g.npz") as z:
        arrays = {k: z[k] for k in z.files if k != "piece_highway"}
    arrays["meta"] = np.array(json.dumps({**json.loads(str(arrays["meta"])), "format": 1}))
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(NetworkError, match="cache format 1"):
        PreparedNetwork.load(tmp_path / "old.npz")


def test_search_graph_holds_the_same_arcs_renumbered(grid_net):
    pg = grid_net.profile("drive")
    rank = grid_net.search_rank
    assert sorted(rank.tolist()) == list(range(grid_net.n_nodes))
    for reverse in (False, True):
        indptr, indices, cost = grid_net.search_graph("drive", "length", reverse=reverse)
        A = pg.csr("length", reverse=reverse).tocoo()
        expected = sorted(zip(rank[A.row].tolist(), rank[A.col].tolist(), A.data.tolist(), strict=True))
        rows = np.repeat(np.arange(grid_net.n_nodes), np.diff(indptr))
        assert sorted(zip(rows.tolist(), indices.tolist(), cost.tolist(), strict=True)) == expected
