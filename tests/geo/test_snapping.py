from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from shapely.geometry import LineString

from geo.errors import SnapError
from geo.prepared import prepare_network
from geo.snapping import build_edge_index, snap_points
from tests.geo.conftest import CRS, X0, Y0, node


def _piece_nodes(net, piece):
    return int(net.node_id[net.piece_u[piece]]), int(net.node_id[net.piece_v[piece]])


def test_point_snaps_to_nearest_edge_with_position_and_distance(grid_net):
    snap = snap_points(grid_net, [X0 + 130], [Y0 + 225], profile="walk", ids=["h1"])
    assert set(_piece_nodes(grid_net, snap.piece[0])) == {node(2, 1), node(2, 2)}
    assert snap.distance_m[0] == pytest.approx(25.0)
    assert (snap.x[0], snap.y[0]) == pytest.approx((X0 + 130, Y0 + 200))
    u, _ = _piece_nodes(grid_net, snap.piece[0])
    expected = 0.3 if u == node(2, 1) else 0.7
    assert snap.fraction[0] == pytest.approx(expected)
    assert snap.along_m[0] == pytest.approx(100 * expected)
    assert not snap.too_far[0]
    assert snap.to_frame().loc["h1", "distance_m"] == pytest.approx(25.0)


def test_only_edges_the_profile_may_use_count(grid_net):
    # 10 m west of the steps between (2, 0) and (3, 0)
    x, y = [X0 - 10], [Y0 + 250]
    walk = snap_points(grid_net, x, y, profile="walk")
    wheel = snap_points(grid_net, x, y, profile="wheelchair")
    assert walk.distance_m[0] == pytest.approx(10.0)
    assert wheel.distance_m[0] == pytest.approx(np.hypot(10, 50))


def test_far_points_are_flagged_not_dropped(grid_net):
    snap = snap_points(grid_net, [X0 + 50, X0 + 2000], [Y0, Y0 + 2000], profile="walk", max_snap_m=500)
    assert snap.too_far.tolist() == [False, True]
    # nearest usable road to (X0 + 2000, Y0 + 2000) is the island's east end (X0 + 1100, Y0)
    assert snap.distance_m[1] == pytest.approx(np.hypot(900, 2000))


def test_bent_edge_position_follows_its_geometry(profiles):
    G = nx.MultiDiGraph(crs=CRS)
    G.add_node(1, x=0.0, y=0.0)
    G.add_node(2, x=100.0, y=100.0)
    line = LineString([(0, 0), (100, 0), (100, 100)])
    G.add_edge(1, 2, highway="residential", length=200.0, geometry=line)
    net = prepare_network(G, profiles=profiles)
    index = build_edge_index(net, "drive")
    snap = snap_points(net, [110.0], [50.0], profile="drive", index=index)
    assert snap.distance_m[0] == pytest.approx(10.0)
    assert snap.fraction[0] == pytest.approx(0.75)
    assert snap.along_m[0] == pytest.approx(150.0)


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "match"),
    [
        ([np.nan], [0.0], {}, "missing or infinite"),
        ([0.0, 1.0], [0.0, 1.0], {"ids": ["a", "a"]}, "unique"),
        ([0.0], [0.0], {"crs": "EPSG:4326"}, "Reproject"),
        ([0.0], [0.0, 1.0], {}, "same length"),
    ],
)
def test_bad_points_raise(grid_net, x, y, kwargs, match):
    with pytest.raises(SnapError, match=match):
        snap_points(grid_net, x, y, profile="walk", **kwargs)


def test_index_for_another_profile_is_rejected(grid_net):
    index = build_edge_index(grid_net, "walk")
    with pytest.raises(SnapError, match="built for profile 'walk'"):
        snap_points(grid_net, [X0], [Y0], profile="drive", index=index)


def test_grid_and_tree_give_the_same_nearest_distance(grid_net):
    # 40 m north of row 0: within one grid cell (answered by the grid); 150 m east of the grid's
    # east edge (x = X0 + 300) and 1.2 km east of the island's end (X0 + 1100, Y0): farther than a
    # cell, answered by the tree search
    x = [X0 + 50, X0 + 450, X0 + 2300]
    y = [Y0 + 40, Y0 + 150, Y0 + 250]
    snap = snap_points(grid_net, x, y, profile="walk", max_snap_m=500)
    assert snap.distance_m == pytest.approx([40.0, 150.0, np.hypot(1200, 250)])
    assert snap.too_far.tolist() == [False, False, True]


def test_point_on_a_node_snaps_to_a_piece_end(grid_net):
    # (1, 1) ends four pieces: any of them is right, at distance 0 and at one of its ends
    snap = snap_points(grid_net, [X0 + 100], [Y0 + 100], profile="walk")
    assert snap.distance_m[0] == 0.0
    assert node(1, 1) in _piece_nodes(grid_net, snap.piece[0])
    assert snap.fraction[0] in (0.0, 1.0)
