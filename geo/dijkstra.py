"""A multi-source Dijkstra search in compiled code (numba), labelling each node with its nearest source.

``scipy.sparse.csgraph.dijkstra(min_only=True)`` answers the same question, but wants every source
as a graph row (virtual rows for sources that start off a node at some cost) and keeps
its frontier in a Fibonacci heap. This search takes the sources as (node, starting cost, label) seeds
and keeps its frontier in a 4-ary heap of (cost, node) pairs with lazy deletion: a node is pushed
again only when its cost strictly improves, so the heap never holds more than one entry per arc
plus one per seed, and a node is settled exactly once. On the Bishan road network it is about 1.5
times faster than scipy's search from the same sources on the same arcs. Costs are the same
floating-point sums along the same shortest paths; among exactly tied sources either one may be
named.

The compiled function is cached on disk next to this file (numba ``cache=True``): the first call in
a fresh checkout compiles it (a few seconds), later processes load it (a fraction of a second).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["heap_push", "heap_sift_down", "multi_source_dijkstra", "pass_through_nodes"]


def multi_source_dijkstra(
    indptr: np.ndarray,
    indices: np.ndarray,
    costs: np.ndarray,
    seed_node: np.ndarray,
    seed_cost: np.ndarray,
    seed_label: np.ndarray,
    *,
    limit: float = np.inf,
    pass_through: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the cheapest cost from any seed to every node, and the label of that seed.

    Parameters
    ----------
    indptr, indices, costs
        The graph as CSR arrays: arcs ``i → indices[k]`` of cost ``costs[k]`` for ``k`` in
        ``indptr[i]:indptr[i + 1]``. Costs must be finite and non-negative.
    seed_node, seed_cost, seed_label
        One row per seed: the search starts at ``seed_node`` with cost ``seed_cost`` (finite,
        non-negative) and carries ``seed_label`` to the nodes it reaches first. Several seeds may
        share a node or a label; the cheapest wins.
    limit
        Costs above this are not searched: such nodes get ``inf`` and label -1.
    pass_through
        Optional boolean per node, from `pass_through_nodes`: the search walks along runs of such
        nodes (the inner nodes of a road between two junctions) instead of queueing each of them.

    Returns
    -------
    cost : numpy.ndarray
        float64 per node (``inf`` where no seed reaches within ``limit``).
    label : numpy.ndarray
        int64 per node: the label of the nearest seed, -1 where unreached.

    Raises
    ------
    ValueError
        If the seed arrays differ in length, or a seed node is not a node of the graph.
    """
    n = len(indptr) - 1
    seed_node = np.ascontiguousarray(seed_node, np.int64)
    seed_cost = np.ascontiguousarray(seed_cost, np.float64)
    seed_label = np.ascontiguousarray(seed_label, np.int64)
    if not (len(seed_node) == len(seed_cost) == len(seed_label)):
        msg = (
            f"`seed_node`, `seed_cost` and `seed_label` must have one row per seed; got lengths "
            f"{len(seed_node)}, {len(seed_cost)} and {len(seed_label)}."
        )
        raise ValueError(msg)
    if len(seed_node) and (seed_node.min() < 0 or seed_node.max() >= n):
        bad = seed_node[(seed_node < 0) | (seed_node >= n)][0]
        msg = f"`seed_node` {int(bad)} is not a node of this {n}-node graph; pass positions 0..{n - 1}."
        raise ValueError(msg)
    through = np.zeros(n, np.bool_) if pass_through is None else np.ascontiguousarray(pass_through, np.bool_)
    if len(through) != n:
        msg = f"`pass_through` must have one value per node ({n}); got {len(through)}."
        raise ValueError(msg)
    return _search(indptr, indices, costs, through, seed_node, seed_cost, seed_label, float(limit))


def pass_through_nodes(indptr: np.ndarray, indices: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Return, per node, whether a search may pass through it without queueing it.

    Such a node has exactly two arcs out, to two distinct other nodes, and exactly two arcs in,
    from those two and of the same costs: the inner node of a two-way road between junctions. Every route
    into it comes along the road from one of its two sides, so a search walks the road from the
    node it settles and stops at the first node it does not improve; the costs are the same sums,
    taken along the road in the same order, as when every node is queued.
    """
    return _pass_through(indptr, indices, costs)


@njit(cache=True, nogil=True)
def _pass_through(indptr, indices, costs):  # pragma: no cover - compiled
    n = len(indptr) - 1
    out = np.zeros(n, np.bool_)
    arcs_in = np.zeros(n, np.int64)
    for k in range(len(indices)):
        arcs_in[indices[k]] += 1
    for v in range(n):
        a = indptr[v]
        if indptr[v + 1] - a != 2 or arcs_in[v] != 2:  # no one-way road leads in from a third node
            continue
        p, q = indices[a], indices[a + 1]
        if p == q or p == v or q == v:
            continue
        out[v] = _has_arc(indptr, indices, costs, p, v, costs[a]) and _has_arc(
            indptr, indices, costs, q, v, costs[a + 1]
        )
    return out


@njit(cache=True, nogil=True)
def _has_arc(indptr, indices, costs, u, v, c):  # pragma: no cover - compiled
    for k in range(indptr[u], indptr[u + 1]):
        if indices[k] == v and costs[k] == c:
            return True
    return False


#: Children per heap entry: a 4-ary heap is half as deep as a binary one, and its sift-down compares
#: siblings that sit in one cache line (measured 15-25 % faster on the Bishan roads than 2 or 8).
_ARITY = 4


@njit(cache=True, nogil=True)
def _search(indptr, indices, costs, through, seed_node, seed_cost, seed_label, limit):  # pragma: no cover - compiled
    n = len(indptr) - 1
    dist = np.full(n, np.inf)
    label = np.full(n, -1, np.int64)
    capacity = len(indices) + len(seed_node) + 1
    heap_cost = np.empty(capacity, np.float64)
    heap_node = np.empty(capacity, np.int32)
    size = 0
    for s in range(len(seed_node)):
        v, c = seed_node[s], seed_cost[s]
        if not (c < dist[v] and c <= limit):
            continue
        dist[v] = c
        label[v] = seed_label[s]
        if through[v]:  # walk both ways along the road; the seed itself is never queued
            for k in range(indptr[v], indptr[v + 1]):
                size = _walk(indptr, indices, costs, through, dist, label, heap_cost, heap_node, size,
                             v, indices[k], c + costs[k], seed_label[s], limit)  # fmt: skip
        else:
            size = heap_push(heap_cost, heap_node, size, c, v)
    while size:
        c, u = heap_cost[0], heap_node[0]
        size -= 1
        if size:
            heap_sift_down(heap_cost, heap_node, size, heap_cost[size], heap_node[size])
        if c > dist[u]:
            continue  # an entry left behind by a later improvement
        label_u = label[u]
        for k in range(indptr[u], indptr[u + 1]):
            size = _walk(indptr, indices, costs, through, dist, label, heap_cost, heap_node, size,
                         u, indices[k], c + costs[k], label_u, limit)  # fmt: skip
    return dist, label


@njit(cache=True, nogil=True, inline="always")
def _walk(
    indptr, indices, costs, through, dist, label, heap_cost, heap_node, size, prev, v, c, lab, limit
):  # pragma: no cover - compiled
    """Relax the arc ``prev → v`` to cost ``c``; through pass-through nodes, walk on; return the heap size.

    The walk stops at the first node it does not improve (whoever reached that node first has
    walked on from it already) or at a node that is queued instead.
    """
    while c < dist[v] and c <= limit:
        dist[v] = c
        label[v] = lab
        if not through[v]:
            return heap_push(heap_cost, heap_node, size, c, v)
        k = indptr[v]
        if indices[k] == prev:
            k += 1
        prev, v, c = v, indices[k], c + costs[k]
    return size


@njit(cache=True, nogil=True, inline="always")
def heap_push(heap_cost, heap_node, size, c, v):  # pragma: no cover - compiled
    """Push (c, v) onto a 4-ary heap of ``size`` entries held in two arrays; return the new size (compiled use)."""
    i = size
    while i:
        parent = (i - 1) // _ARITY
        if heap_cost[parent] <= c:
            break
        heap_cost[i] = heap_cost[parent]
        heap_node[i] = heap_node[parent]
        i = parent
    heap_cost[i] = c
    heap_node[i] = v
    return size + 1


@njit(cache=True, nogil=True, inline="always")
def heap_sift_down(heap_cost, heap_node, size, c, v):  # pragma: no cover - compiled
    """Put (c, v) at the root of a heap of ``size`` entries and sift it down."""
    i = 0
    while True:
        first = _ARITY * i + 1
        if first >= size:
            break
        best, best_cost = first, heap_cost[first]
        for child in range(first + 1, min(first + _ARITY, size)):
            if heap_cost[child] < best_cost:
                best, best_cost = child, heap_cost[child]
        if best_cost >= c:
            break
        heap_cost[i] = best_cost
        heap_node[i] = heap_node[best]
        i = best
    heap_cost[i] = c
    heap_node[i] = v
