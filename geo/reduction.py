"""Peel pendant trees off a search graph so multi-source searches run on its smaller core, exactly.

A node whose only neighbour (counting arcs both ways) is joined to it by arcs of the same cost in
both directions is a dead end: every route from it leaves through that neighbour. Peeling such
nodes repeatedly leaves the *core* and a forest of *pendant trees* hanging from core nodes. A
search from sources in the core reaches a peeled node ``x`` only through its parent ``p``, so
``cost[x] = cost[p] + w`` and ``x`` gets ``p``'s nearest source: the same floating-point sum the
full search makes. Sources inside a tree are carried up to the core (``climb_to_core``) and also
compete inside their tree while the trees are filled (``fill_pendant_trees``). One-way dead ends,
and dead ends whose two directions cost differently, stay in the core.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numba import njit

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class PendantTrees:
    """The core of a graph and the pendant trees peeled off it, over the graph's node positions.

    Parameters
    ----------
    core
        Positions of the core nodes, ascending as peeled (``relabelled`` keeps the order).
    core_index
        Per node: its index in ``core``, -1 for a peeled node.
    node, parent, cost
        Peeled nodes in peel order, the neighbour each hangs from and the cost of the road between
        them (the same both ways). A node's children come before it.
    level_ptr
        Peel rounds: ``node[level_ptr[i]:level_ptr[i + 1]]`` were peeled in round ``i``; a node's
        parent was peeled in a later round or is in the core.
    parent_of, parent_cost
        Per node: ``parent`` and ``cost`` of a peeled node; -1 and 0 for a core node.
    """

    core: np.ndarray
    core_index: np.ndarray
    node: np.ndarray
    parent: np.ndarray
    cost: np.ndarray
    level_ptr: np.ndarray
    parent_of: np.ndarray
    parent_cost: np.ndarray

    @property
    def n_levels(self) -> int:
        """Number of peel rounds."""
        return len(self.level_ptr) - 1

    def relabelled(self, new_position: np.ndarray) -> PendantTrees:
        """Return the same trees with node ``i`` renamed ``new_position[i]`` (a permutation).

        ``core`` keeps its order, so core index ``j`` still names the same node; it is no longer
        ascending.
        """
        per_node = {}
        for name in ("core_index", "parent_of", "parent_cost"):
            old = getattr(self, name)
            new = np.empty_like(old)
            new[new_position] = old
            per_node[name] = new
        per_node["parent_of"] = np.where(per_node["parent_of"] >= 0, new_position[per_node["parent_of"]], -1)
        return PendantTrees(
            core=_frozen(new_position[self.core], np.int32),
            node=_frozen(new_position[self.node], np.int32),
            parent=_frozen(new_position[self.parent], np.int32),
            cost=self.cost,
            level_ptr=self.level_ptr,
            **{name: _frozen(a, a.dtype) for name, a in per_node.items()},
        )


def peel_pendant_trees(indptr: np.ndarray, indices: np.ndarray, costs: np.ndarray) -> PendantTrees:
    """Peel the pendant trees off a directed graph given as CSR arrays.

    Parameters
    ----------
    indptr, indices, costs
        CSR of the arcs (rows sorted by column, no self-loops, no parallel arcs); non-negative
        costs, explicit zeros are arcs.

    Returns
    -------
    PendantTrees
        Nodes of (undirected) degree 1 whose single road has equal arc costs both ways, peeled
        round by round until none is left. Of two such nodes that are each other's only
        neighbour, the one at the higher position is peeled.
    """
    n = len(indptr) - 1
    row = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    col = np.asarray(indices, np.int64)
    arc_key = row * n + col  # ascending: rows in order, columns sorted within a row
    # undirected neighbour pairs, each direction listed once per node
    pair = np.unique(np.concatenate([arc_key, col * n + row]))
    u, v = pair // n, pair % n
    fwd = _arc_cost(arc_key, costs, u * n + v)
    bwd = _arc_cost(arc_key, costs, v * n + u)
    symmetric = np.isfinite(fwd) & (fwd == bwd)
    uptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(u, minlength=n), out=uptr[1:])
    degree = np.diff(uptr)
    alive = np.ones(n, bool)
    nodes, parents, weights, sizes = [], [], [], []
    while True:
        leaf = np.flatnonzero(alive & (degree == 1))
        if not len(leaf):
            break
        # the one live neighbour of each leaf
        count = uptr[leaf + 1] - uptr[leaf]
        entry = np.repeat(uptr[leaf], count) + _ramp(count)
        entry = entry[alive[v[entry]]]
        par = v[entry]
        is_leaf = np.zeros(n, bool)
        is_leaf[leaf] = True
        keep = symmetric[entry] & ~(is_leaf[par] & (leaf < par))
        leaf, par, entry = leaf[keep], par[keep], entry[keep]
        if not len(leaf):
            break
        alive[leaf] = False
        degree[leaf] = 0
        np.subtract.at(degree, par, 1)
        nodes.append(leaf)
        parents.append(par)
        weights.append(fwd[entry])
        sizes.append(len(leaf))
    node = np.concatenate(nodes) if nodes else np.zeros(0, np.int64)
    parent = np.concatenate(parents) if parents else np.zeros(0, np.int64)
    cost = np.concatenate(weights) if weights else np.zeros(0)
    core = np.flatnonzero(alive)
    core_index = np.full(n, -1, np.int64)
    core_index[core] = np.arange(len(core))
    parent_of = np.full(n, -1, np.int64)
    parent_of[node] = parent
    parent_cost = np.zeros(n)
    parent_cost[node] = cost
    level_ptr = np.zeros(len(sizes) + 1, np.int64)
    np.cumsum(sizes, out=level_ptr[1:])
    logger.debug("Peeled %d of %d nodes in %d rounds", len(node), n, len(sizes))
    return PendantTrees(
        core=_frozen(core, np.int32),
        core_index=_frozen(core_index, np.int32),
        node=_frozen(node, np.int32),
        parent=_frozen(parent, np.int32),
        cost=_frozen(cost, np.float64),
        level_ptr=_frozen(level_ptr, np.int64),
        parent_of=_frozen(parent_of, np.int32),
        parent_cost=_frozen(parent_cost, np.float64),
    )


def core_graph(
    indptr: np.ndarray, indices: np.ndarray, costs: np.ndarray, trees: PendantTrees
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the CSR (indptr, indices, costs) of the arcs between core nodes, over core indices.

    Rows and columns keep the order of ``trees.core``; rows stay sorted by column.
    """
    n = len(indptr) - 1
    keep_row = trees.core_index >= 0
    row = np.repeat(np.arange(n), np.diff(indptr))
    keep = keep_row[row] & keep_row[indices]
    new_row = trees.core_index[row[keep]]
    new_ptr = np.zeros(len(trees.core) + 1, np.int64)
    np.cumsum(np.bincount(new_row, minlength=len(trees.core)), out=new_ptr[1:])
    return (
        _frozen(new_ptr, np.int32),
        _frozen(trees.core_index[indices[keep]], np.int32),
        _frozen(costs[keep], np.float64),
    )


def climb_to_core(
    trees: PendantTrees, node: np.ndarray, cost: np.ndarray, source: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Carry source attachments on peeled nodes up their trees to the core.

    Parameters
    ----------
    trees
        The peeling.
    node, cost, source
        Attachments: a source reaches node position ``node`` at ``cost`` (finite).

    Returns
    -------
    seeds
        (core index, cost, source) per attachment, where the ones on peeled nodes enter the core
        at the root of their tree with the tree path cost added (several rows may share a source).
    inside
        (node position, cost, source): the cheapest source within each peeled node's subtree, for
        every peeled node on a path from an attachment to the core.
    """
    ci = trees.core_index[node]
    on_core = ci >= 0
    seed_parts = [(ci[on_core], cost[on_core], source[on_core])]
    node, cost, source = node[~on_core], cost[~on_core], source[~on_core]
    climbed = []
    while len(node):
        climbed.append((node, cost, source))
        cost = cost + trees.parent_cost[node]  # the sum the full search forms at the parent
        node = trees.parent_of[node]
        ci = trees.core_index[node]
        on_core = ci >= 0
        seed_parts.append((ci[on_core], cost[on_core], source[on_core]))
        node, cost, source = node[~on_core], cost[~on_core], source[~on_core]
    seeds = tuple(np.concatenate(p) for p in zip(*seed_parts, strict=True))
    if not climbed:
        empty = np.zeros(0, np.int64)
        return seeds, (empty, np.zeros(0), empty)
    at, c, s = (np.concatenate(p) for p in zip(*climbed, strict=True))
    order = np.lexsort((s, c, at))  # per node: cheapest, then lowest source
    at, c, s = at[order], c[order], s[order]
    first = np.r_[True, at[1:] != at[:-1]]
    return seeds, (at[first], c[first], s[first])


def fill_pendant_trees_inplace(
    trees: PendantTrees,
    cost: np.ndarray,
    source: np.ndarray,
    inside: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Fill ``cost`` and ``source`` of peeled nodes from their parents, root side first.

    ``cost`` and ``source`` (per node position; -1 for none) must hold the final values of the
    core nodes. A peeled node takes its parent's cost plus the road and its parent's source,
    unless a source inside its own subtree (``inside``, from ``climb_to_core``) is strictly
    cheaper. Changes the arrays in place; returns None.
    """
    in_node, in_cost, in_source = inside
    _fill_from_roots(trees.node, trees.parent, trees.cost, in_node, in_cost, in_source, cost, source)


@njit(cache=True, nogil=True)
def _fill_from_roots(node, parent, road, in_node, in_cost, in_source, cost, source):  # pragma: no cover - compiled
    """``fill_pendant_trees_inplace`` in one pass over the peeled nodes, last peeled first."""
    best_inside = np.full(len(cost), np.inf)
    inside_source = np.full(len(cost), -1, source.dtype)
    for i in range(len(in_node)):
        best_inside[in_node[i]] = in_cost[i]
        inside_source[in_node[i]] = in_source[i]
    for i in range(len(node) - 1, -1, -1):  # a node's parent was peeled after it, or is in the core
        x, p = node[i], parent[i]
        c = cost[p] + road[i]
        if best_inside[x] < c:
            cost[x] = best_inside[x]
            source[x] = inside_source[x]
        else:
            cost[x] = c
            source[x] = source[p]


def _arc_cost(arc_key: np.ndarray, costs: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Cost of the arcs with keys ``want`` (``inf`` where there is no such arc)."""
    at = np.searchsorted(arc_key, want)
    at_ok = np.minimum(at, max(len(arc_key) - 1, 0))
    found = (at < len(arc_key)) & (arc_key[at_ok] == want) if len(arc_key) else np.zeros(len(want), bool)
    return np.where(found, costs[at_ok] if len(arc_key) else np.inf, np.inf)


def _ramp(count: np.ndarray) -> np.ndarray:
    """0, 1, …, count[0]-1, 0, 1, …, count[1]-1, … ."""
    return np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)


def _frozen(a: np.ndarray, dtype) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=dtype)
    a.setflags(write=False)
    return a
