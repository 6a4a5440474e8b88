import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from geo.dijkstra import multi_source_dijkstra, pass_through_nodes


def _csr(n, arcs):
    u, v, w = (np.array(x) for x in zip(*arcs, strict=True))
    A = sp.csr_matrix((w.astype(float), (u, v)), shape=(n, n))
    A.sort_indices()
    return A.indptr, A.indices, A.data


# 0 -2-> 1 -3-> 2, 0 -10-> 2, 2 -1-> 1; node 3 has no arcs
SMALL = _csr(4, [(0, 1, 2), (1, 2, 3), (0, 2, 10), (2, 1, 1)])


def test_hand_checked_costs_and_labels_with_starting_costs():
    cost, label = multi_source_dijkstra(*SMALL, [0, 2], [1.0, 0.5], [7, 9])
    # node 1: from seed 0 at 1 + 2 = 3, from seed 2 at 0.5 + 1 = 1.5 -> 1.5 from label 9
    assert cost.tolist() == [1.0, 1.5, 0.5, np.inf]
    assert label.tolist() == [7, 9, 9, -1]


def test_limit_leaves_costlier_nodes_unreached():
    cost, label = multi_source_dijkstra(*SMALL, [0], [0.0], [0], limit=2.0)
    assert cost.tolist() == [0.0, 2.0, np.inf, np.inf]  # node 2 would cost 5
    assert label.tolist() == [0, 0, -1, -1]
    cost, label = multi_source_dijkstra(*SMALL, [0], [3.0], [0], limit=2.0)  # the seed itself is beyond
    assert np.isinf(cost).all() and (label == -1).all()


def test_cheapest_of_seeds_sharing_a_node_wins_and_no_seeds_reach_nothing():
    cost, label = multi_source_dijkstra(*SMALL, [1, 1, 1], [4.0, 0.25, 2.0], [1, 2, 3])
    assert cost.tolist() == [np.inf, 0.25, 3.25, np.inf]
    assert label.tolist() == [-1, 2, 2, -1]
    cost, label = multi_source_dijkstra(*SMALL, [], [], [])
    assert np.isinf(cost).all() and (label == -1).all()


def test_zero_cost_arcs_are_followed():
    chain = np.array([0, 1, 2, 2]), np.array([1, 2]), np.array([0.0, 0.0])  # 0 -0-> 1 -0-> 2
    cost, label = multi_source_dijkstra(*chain, [0], [0.0], [5])
    assert cost.tolist() == [0.0, 0.0, 0.0]
    assert label.tolist() == [5, 5, 5]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_scipy_and_networkx_on_random_graphs(seed):
    rng = np.random.default_rng(seed)
    n, m, k = 400, 1600, 12
    u, v = rng.integers(0, n, m), rng.integers(0, n, m)
    w = rng.uniform(0.5, 100.0, m)
    keep = u != v
    u, v, w = u[keep], v[keep], w[keep]
    A = sp.csr_matrix((w, (u, v)), shape=(n, n))  # parallel arcs are summed by scipy: use A's arcs everywhere
    A.sort_indices()
    seeds = rng.choice(n, k, replace=False)
    start = rng.uniform(0, 50, k)
    cost, label = multi_source_dijkstra(A.indptr, A.indices, A.data, seeds, start, np.arange(k))

    # scipy: one virtual row per seed with an arc of its starting cost
    virtual = sp.csr_matrix((start, (np.arange(k), seeds)), shape=(k, n))
    B = sp.bmat([[A, sp.csr_matrix((n, k))], [virtual, sp.csr_matrix((k, k))]], format="csr")
    dist, _, src = dijkstra(B, indices=np.arange(n, n + k), min_only=True, return_predecessors=True)
    assert np.array_equal(cost, dist[:n])
    fin = np.isfinite(cost)
    assert np.array_equal(label[fin], src[:n][fin] - n)
    assert (label[~fin] == -1).all()

    # networkx from a super source
    G = nx.DiGraph()
    coo = A.tocoo()
    G.add_weighted_edges_from(zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True))
    G.add_weighted_edges_from(("s", int(s), float(c)) for s, c in zip(seeds, start, strict=True))
    expected = nx.single_source_dijkstra_path_length(G, "s")
    got = {i: cost[i] for i in range(n) if np.isfinite(cost[i])}
    assert got == pytest.approx({key: val for key, val in expected.items() if key != "s"}, abs=1e-9)


def _two_way(n, roads, one_way=()):
    arcs = [(u, v, w) for u, v, w in roads] + [(v, u, w) for u, v, w in roads] + list(one_way)
    return _csr(n, arcs)


# 0 -1- 1 -2- 2 -3- 3, and 3 -10- 0: a ring of two-way roads from junction 3 (which also has a spur to 4)
# back to itself; 0, 1 and 2 are its inner nodes
RING = _two_way(5, [(0, 1, 1.0), (1, 2, 2.0), (2, 3, 3.0), (3, 0, 10.0), (3, 4, 0.5)])


def test_pass_through_nodes_are_inner_nodes_of_two_way_roads():
    assert pass_through_nodes(*RING).tolist() == [True, True, True, False, False]
    # a one-way arc 4 -> 1 makes 1 reachable from a third side: it must be queued
    assert pass_through_nodes(*_two_way(5, [(0, 1, 1.0), (1, 2, 2.0)], one_way=[(4, 1, 1.0)])).tolist()[1] is False
    # different costs each way: not a pass-through
    assert pass_through_nodes(*_csr(3, [(0, 1, 1.0), (1, 0, 2.0), (1, 2, 1.0), (2, 1, 1.0)])).tolist()[1] is False


@pytest.mark.parametrize(("seeds", "costs"), [([4], [0.0]), ([1], [0.5]), ([4, 2], [0.0, 0.0])])
def test_walking_through_gives_the_same_costs_and_labels_by_hand(seeds, costs):
    through = pass_through_nodes(*RING)
    got = multi_source_dijkstra(*RING, seeds, costs, np.arange(len(seeds)), pass_through=through)
    want = multi_source_dijkstra(*RING, seeds, costs, np.arange(len(seeds)))
    assert got[0].tolist() == want[0].tolist() and got[1].tolist() == want[1].tolist()
    if seeds == [4]:  # by hand: 4 -> 3 (0.5) -> 2 (3.5) -> 1 (5.5) -> 0 (6.5); 0 via 3 -> 0 costs 10.5
        assert got[0].tolist() == [6.5, 5.5, 3.5, 0.5, 0.0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_walking_through_matches_queueing_every_node_on_road_like_graphs(seed):
    rng = np.random.default_rng(seed)
    # junctions joined by roads split into 1-5 pieces (inner nodes), some of them one-way
    n_junctions, roads = 60, 150
    arcs, n = [], n_junctions
    for _ in range(roads):
        a, b = rng.choice(n_junctions, 2, replace=False)
        inner = list(range(n, n + int(rng.integers(0, 5))))
        n += len(inner)
        path = [a, *inner, b]
        one_way = rng.random() < 0.2
        for u, v in zip(path[:-1], path[1:], strict=True):
            w = float(rng.uniform(1, 50))
            arcs.append((u, v, w))
            if not one_way:
                arcs.append((v, u, w))
    graph = _csr(n, arcs)
    through = pass_through_nodes(*graph)
    assert through.sum() > n / 4  # the walk has something to do
    k = 8
    seeds, start = rng.choice(n, k, replace=False), rng.uniform(0, 20, k)
    for limit in (np.inf, 150.0):
        got = multi_source_dijkstra(*graph, seeds, start, np.arange(k), limit=limit, pass_through=through)
        want = multi_source_dijkstra(*graph, seeds, start, np.arange(k), limit=limit)
        assert np.array_equal(got[0], want[0])
        assert np.array_equal(got[1], want[1])


def test_bad_seeds_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="one row per seed; got lengths 2, 1 and 2"):
        multi_source_dijkstra(*SMALL, [0, 1], [0.0], [0, 1])
    with pytest.raises(ValueError, match=r"`seed_node` 4 is not a node of this 4-node graph; pass positions 0\.\.3"):
        multi_source_dijkstra(*SMALL, [4], [0.0], [0])
    with pytest.raises(ValueError, match=r"`pass_through` must have one value per node \(4\); got 3"):
        multi_source_dijkstra(*SMALL, [0], [0.0], [0], pass_through=np.zeros(3, bool))
