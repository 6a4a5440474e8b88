"""The incremental nearest facility (what-if): hand-derived costs on the grid, then equal to a full search."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from geo.routing import nearest_facility
from geo.snapping import snap_points
from geo.whatif import IncrementalNearest
from tests.geo.conftest import X0, Y0, node, xy


def _snap(net, pts, profile, ids):
    x, y = np.array(pts, dtype=float).T
    return snap_points(net, x, y, profile=profile, ids=ids)


def test_adding_and_removing_sites_on_the_grid_gives_the_hand_derived_costs(grid_net):
    demand = _snap(grid_net, [(X0 + 150, Y0 + 230), xy(3, 3)], "walk", ["d1", "d2"])
    inc = IncrementalNearest(grid_net, "walk", demand, weight="length")
    assert np.isinf(inc.demand_cost).all() and list(inc.demand_facility_ids()) == [None, None]

    inc.add(_snap(grid_net, [xy(0, 0)], "walk", ["F"]))
    # d1: 30 m to row 2, 50 m west to (2, 1), 200 m south, 100 m west; d2 at (3, 3): 300 + 300
    assert inc.demand_cost == pytest.approx([380.0, 600.0])
    assert list(inc.demand_facility_ids()) == ["F", "F"]

    change = inc.add(_snap(grid_net, [xy(3, 3)], "walk", ["G"]))
    # d1: 30 m to row 2, 50 m east to (2, 2), 100 m north, 100 m east; d2 stands on G
    assert inc.demand_cost == pytest.approx([280.0, 0.0])
    assert list(inc.demand_facility_ids()) == ["G", "G"]
    # G takes the nodes strictly nearer to it: 100 × (6 − r − c) < 100 × (r + c) where r + c ≥ 4 (ties stay F's)
    assert set(change.demand_rows) == {0, 1}
    assert sorted(grid_net.node_id[change.nodes].tolist()) == sorted(
        node(r, c) for r in range(4) for c in range(4) if r + c >= 4
    )

    inc.remove(["G"])
    assert inc.demand_cost == pytest.approx([380.0, 600.0])
    assert list(inc.demand_facility_ids()) == ["F", "F"]
    inc.remove(["F"])
    assert np.isinf(inc.demand_cost).all() and inc.facility_ids == []


def test_one_way_rows_are_travelled_from_the_demand_to_the_facility(grid_net):
    # row 1 is one-way eastbound for drive: from (1, 0) to a facility at (1, 1) is 100 m; back is round the block
    demand = _snap(grid_net, [xy(1, 0), xy(1, 1)], "drive", ["west", "east"])
    inc = IncrementalNearest(grid_net, "drive", demand, weight="length")
    inc.add(_snap(grid_net, [xy(1, 1)], "drive", ["F"]))
    # east stands on F; west drives 100 m east along the one-way row
    assert inc.demand_cost == pytest.approx([100.0, 0.0])
    inc.add(_snap(grid_net, [xy(1, 0)], "drive", ["G"]))
    assert inc.demand_cost == pytest.approx([0.0, 0.0])
    inc.remove(["F"])
    # east may not drive west on row 1: round the block, north to (2, 1), west, south to (1, 0) = 300 m
    assert inc.demand_cost == pytest.approx([0.0, 300.0])


def test_an_id_in_service_is_refused_and_an_unknown_removal_too(grid_net):
    demand = _snap(grid_net, [xy(0, 0)], "walk", ["d"])
    inc = IncrementalNearest(grid_net, "walk", demand, weight="length")
    inc.add(_snap(grid_net, [xy(0, 1)], "walk", ["F"]))
    with pytest.raises(ValueError, match="already in service"):
        inc.add(_snap(grid_net, [xy(0, 2)], "walk", ["F"]))
    with pytest.raises(ValueError, match="not in service"):
        inc.remove(["nope"])
    inc.remove(["F"])
    inc.add(_snap(grid_net, [xy(0, 2)], "walk", ["F"]))  # the id is free again
    assert inc.demand_cost == pytest.approx([200.0])


def test_every_edit_equals_a_full_search_on_the_bishan_roads(bishan_net, bishan):
    """Random adds, moves and closures on the real district network: after each, the same costs as from scratch."""
    rng = np.random.default_rng(20261205)
    net = bishan_net
    minx, miny, maxx, maxy = bishan.boundary.to_crs(net.crs).total_bounds

    def random_snap(n, prefix):
        x, y = rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)
        return snap_points(net, x, y, profile="walk", ids=[f"{prefix}{i}" for i in range(n)])

    demand = random_snap(3000, "d")
    pool = random_snap(40, "s")
    inc = IncrementalNearest(net, "walk", demand, weight="length")
    in_service: list[int] = []
    for step in range(30):
        if len(in_service) < 3 or (rng.random() < 0.6 and len(in_service) < 30):
            j = int(rng.choice([k for k in range(40) if k not in in_service]))
            inc.add(pool.take(np.array([j])))
            in_service.append(j)
        else:
            j = in_service.pop(int(rng.integers(len(in_service))))
            inc.remove([f"s{j}"])
        full = nearest_facility(net, "walk", pool.take(np.array(sorted(in_service))), demand, weight="length")
        np.testing.assert_allclose(inc.demand_cost, full.demand_cost, rtol=1e-12, err_msg=f"step {step}")
        np.testing.assert_allclose(inc.node_cost, full.node_cost, rtol=1e-12, err_msg=f"step {step}")
        # the same facility, except where two are exactly tied
        same = inc.demand_facility_ids() == full.demand.facility_id.astype(object).where(
            full.demand.reachable, None
        ).to_numpy()
        assert same.mean() > 0.999, step
        for threshold in (500.0, 1000.0, 2000.0):
            assert (inc.demand_cost <= threshold).sum() == (full.demand_cost <= threshold).sum()


def test_node_costs_equal_networkx_on_the_grid(grid_graph, grid_net):
    """An independent check: networkx's multi-source Dijkstra on the reversed walk graph, facilities at nodes."""
    demand = _snap(grid_net, [xy(0, 0)], "walk", ["d"])
    inc = IncrementalNearest(grid_net, "walk", demand, weight="length")
    inc.add(_snap(grid_net, [xy(0, 3), xy(3, 0)], "walk", ["A", "B"]))
    inc.remove(["A"])
    inc.add(_snap(grid_net, [xy(2, 2)], "walk", ["C"]))
    walk = nx.DiGraph()
    for u, v, data in grid_graph.edges(data=True):
        if data["highway"] in ("residential", "steps"):
            walk.add_edge(v, u, weight=data["length"])  # reversed: from the facility back to the node
            if data.get("oneway"):  # walking ignores one-way streets
                walk.add_edge(u, v, weight=data["length"])
    sources = [int(grid_net.node_id[np.argmin(np.hypot(grid_net.node_x - x, grid_net.node_y - y))])
               for x, y in (xy(3, 0), xy(2, 2))]  # fmt: skip
    expected = nx.multi_source_dijkstra_path_length(walk, sources, weight="weight")
    for i, osm_id in enumerate(grid_net.node_id):
        assert inc.node_cost[i] == pytest.approx(expected.get(int(osm_id), np.inf)), osm_id
