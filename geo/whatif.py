"""Nearest facility kept current while facilities are added and removed: the planner's what-if, in compiled code.

A full nearest-facility search (``geo.routing.nearest_facility``) labels every node of the network
with its cheapest facility. When a planner adds one site, only the nodes the new site now serves
change, and they form a connected region around it: a search from the new site that stops at
every node it does not improve touches exactly that region. When a site is removed, only the
nodes it served change: their costs are reset and a search seeded from the region's border
(each neighbour outside with its own cost, plus any remaining facility inside) fills the region
again. Every other node keeps a cost that was already the cheapest, so the result equals a full
recomputation (the same sums along shortest paths; among exactly tied facilities another may be
named). Demand points are then re-read only where one of their piece ends changed.

Costs run FROM demand points TO facilities, as in ``geo.routing``: the searches walk the profile's
reversed arcs, and the removal border looks along the forward arcs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from geo.dijkstra import heap_push, heap_sift_down
from geo.routing import PointEnds, Weight, check_profile_snaps, point_ends, same_piece_pairs, usable_points

if TYPE_CHECKING:
    from geo.prepared import PreparedNetwork
    from geo.snapping import SnapResult

__all__ = ["Change", "IncrementalNearest"]


@dataclass(frozen=True)
class Change:
    """What one edit changed: the network nodes whose nearest facility or cost changed, and the demand rows."""

    nodes: np.ndarray
    demand_rows: np.ndarray


class IncrementalNearest:
    """Nearest facility and its cost per demand point, kept current as facilities are added and removed.

    Parameters
    ----------
    net
        Prepared network.
    profile
        Travel profile; every snap passed in must be for it.
    demand_snap
        The demand points (``geo.snapping.snap_points``).
    weight
        ``"length"`` (metres) or ``"travel_time"`` (seconds).
    attach_far
        Route from/to points snapped farther than their ``max_snap_m`` too.
    access_speed_kph
        Speed of the point → road leg for travel times (the piece's profile speed when None).

    Examples
    --------
    >>> inc = IncrementalNearest(net, "walk", demand_snap, weight="length")  # doctest: +SKIP
    >>> inc.add(existing_snap)  # the current facilities  # doctest: +SKIP
    >>> inc.add(new_site_snap); inc.remove(["F-3"])  # doctest: +SKIP
    >>> inc.demand_cost, inc.demand_facility_ids()  # doctest: +SKIP
    """

    def __init__(
        self,
        net: PreparedNetwork,
        profile: str,
        demand_snap: SnapResult,
        *,
        weight: Weight,
        attach_far: bool = False,
        access_speed_kph: float | None = None,
    ) -> None:
        self._pg = check_profile_snaps(net, profile, weight, {"demand_snap": demand_snap})
        self.net, self.profile, self.weight = net, profile, weight
        self._attach_far, self._access_speed_kph = attach_far, access_speed_kph
        usable = usable_points(demand_snap, attach_far)
        self._dem = point_ends(net, self._pg, demand_snap, weight, access_speed_kph, usable)
        self.demand_ids = np.asarray(demand_snap.ids)
        self._reverse = (self._pg.rindptr, self._pg.rindices, self._pg.arc_cost(weight, reverse=True))
        self._forward = (self._pg.indptr, self._pg.indices, self._pg.arc_cost(weight, reverse=False))
        n = net.n_nodes
        self.node_cost = np.full(n, np.inf)
        self.node_label = np.full(n, -1, np.int64)
        m = len(self.demand_ids)
        self.demand_cost = np.full(m, np.inf)
        self.demand_label = np.full(m, -1, np.int64)
        # one label per facility ever added; a removed one keeps its label, marked dead
        self._ids: list[str] = []
        self._label_of: dict[str, int] = {}
        self._alive: list[bool] = []
        self._ends: list[PointEnds] = []
        # nodes → demand rows whose piece ends there (a CSR), to re-read demand where a node changed
        ends = np.concatenate([self._dem.a, self._dem.b])
        rows = np.concatenate([np.arange(m), np.arange(m)])
        order = np.argsort(ends, kind="stable")
        self._node_rows_ptr = np.r_[0, np.cumsum(np.bincount(ends, minlength=n))]
        self._node_rows = rows[order]
        # demand pieces, to find demand on the same piece as a new facility
        self._demand_piece_order = np.argsort(self._dem.piece, kind="stable")
        self._demand_piece_sorted = self._dem.piece[self._demand_piece_order]

    # --- reading ---------------------------------------------------------------------------------------

    @property
    def facility_ids(self) -> list[str]:
        """Ids of the facilities in service now, in the order they were added."""
        return [i for i, alive in zip(self._ids, self._alive, strict=True) if alive]

    def demand_facility_ids(self) -> np.ndarray:
        """Id of each demand point's nearest facility (None where none is reachable)."""
        ids = np.array([*self._ids, None], dtype=object)
        return ids[self.demand_label]  # label -1 picks the trailing None

    # --- editing ---------------------------------------------------------------------------------------

    def add(self, facilities_snap: SnapResult) -> Change:
        """Put the snapped facilities in service; return what changed.

        Raises
        ------
        ValueError
            If a snap is for another profile or network, or an id is already in service.
        """
        check_profile_snaps(self.net, self.profile, self.weight, {"facilities_snap": facilities_snap})
        ids = [str(i) for i in facilities_snap.ids]
        taken = sorted({i for i in ids if self._label_of.get(i) is not None and self._alive[self._label_of[i]]})
        if taken or len(set(ids)) != len(ids):
            msg = f"Facility ids must be new and unique; already in service or repeated: {taken or ids}."
            raise ValueError(msg)
        ends = point_ends(self.net, self._pg, facilities_snap, self.weight, self._access_speed_kph,
                          usable_points(facilities_snap, self._attach_far))  # fmt: skip
        first = len(self._ids)
        labels = np.arange(first, first + len(ids))
        for i, fid in enumerate(ids):
            self._ids.append(fid)
            self._alive.append(True)
            self._label_of[fid] = first + i
            self._ends.append(_subset(ends, np.array([i])))
        node, cost, label = _seeds(ends, labels)
        touched = _improve(*self._reverse, self.node_cost, self.node_label, node, cost, label)
        rows = np.union1d(self._rows_at(touched), self._rows_on_pieces(ends.piece))
        self._reread(rows)
        return Change(nodes=touched, demand_rows=rows)

    def remove(self, ids: list[str] | tuple[str, ...]) -> Change:
        """Take the facilities ``ids`` out of service; return what changed.

        Raises
        ------
        ValueError
            If an id is not in service.
        """
        ids = [str(i) for i in ids]
        unknown = [i for i in ids if self._label_of.get(i) is None or not self._alive[self._label_of[i]]]
        if unknown:
            msg = f"These facilities are not in service: {unknown}."
            raise ValueError(msg)
        gone = np.array([self._label_of[i] for i in ids], np.int64)
        for label in gone:
            self._alive[label] = False
        region = np.flatnonzero(np.isin(self.node_label, gone))
        self.node_cost[region] = np.inf
        self.node_label[region] = -1
        inside = np.zeros(self.net.n_nodes, np.bool_)
        inside[region] = True
        node, cost, label = _border_seeds(*self._forward, self.node_cost, self.node_label, region, inside)
        live = [j for j, alive in enumerate(self._alive) if alive]
        if live:  # remaining facilities whose piece ends lie inside the emptied region
            ends = _concat([self._ends[j] for j in live])
            f_node, f_cost, f_label = _seeds(ends, np.asarray(live, np.int64))
            keep = inside[f_node]
            node = np.concatenate([node, f_node[keep]])
            cost = np.concatenate([cost, f_cost[keep]])
            label = np.concatenate([label, f_label[keep]])
        refilled = _improve(*self._reverse, self.node_cost, self.node_label, node, cost, label)
        touched = np.union1d(region, refilled)
        served = np.flatnonzero(np.isin(self.demand_label, gone))
        rows = np.union1d(self._rows_at(touched), served)
        self._reread(rows)
        return Change(nodes=touched, demand_rows=rows)

    # --- inside ----------------------------------------------------------------------------------------

    def _rows_at(self, nodes: np.ndarray) -> np.ndarray:
        ptr = self._node_rows_ptr
        counts = ptr[nodes + 1] - ptr[nodes]
        if not counts.sum():
            return np.zeros(0, np.int64)
        starts = np.repeat(ptr[nodes], counts)
        offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return np.unique(self._node_rows[starts + offset])

    def _rows_on_pieces(self, pieces: np.ndarray) -> np.ndarray:
        lo = np.searchsorted(self._demand_piece_sorted, pieces, side="left")
        hi = np.searchsorted(self._demand_piece_sorted, pieces, side="right")
        if not (hi - lo).sum():
            return np.zeros(0, np.int64)
        return np.unique(np.concatenate([self._demand_piece_order[a:b] for a, b in zip(lo, hi, strict=True)]))

    def _reread(self, rows: np.ndarray) -> None:
        """Recompute the nearest facility of demand ``rows`` from the node labels and same-piece facilities."""
        if not len(rows):
            return
        dem = _subset(self._dem, rows)
        via_a = dem.to_a + self.node_cost[dem.a]
        via_b = dem.to_b + self.node_cost[dem.b]
        cost = np.minimum(via_a, via_b)
        best = np.where(via_b < via_a, self.node_label[dem.b], self.node_label[dem.a])
        live = [j for j, alive in enumerate(self._alive) if alive]
        if live:
            i, j, direct = same_piece_pairs(dem, _concat([self._ends[k] for k in live]))
            if len(i):
                order = np.lexsort((direct, i))
                i, j, direct = i[order], j[order], direct[order]
                first = np.r_[True, i[1:] != i[:-1]]
                i, j, direct = i[first], j[first], direct[first]
                better = direct < cost[i]
                cost[i[better]] = direct[better]
                best[i[better]] = np.asarray(live, np.int64)[j[better]]
        reachable = np.isfinite(cost)
        self.demand_cost[rows] = cost
        self.demand_label[rows] = np.where(reachable, best, -1)


def _subset(ends: PointEnds, rows: np.ndarray) -> PointEnds:
    return PointEnds(**{f.name: getattr(ends, f.name)[rows] for f in fields(PointEnds)})


def _concat(parts: list[PointEnds]) -> PointEnds:
    return PointEnds(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(PointEnds)})


def _seeds(ends: PointEnds, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeds of a search TO facilities: each facility's piece ends, at the cost from that end to it."""
    node = np.concatenate([ends.a, ends.b]).astype(np.int64)
    cost = np.concatenate([ends.from_a, ends.from_b])
    label = np.concatenate([labels, labels]).astype(np.int64)
    ok = np.isfinite(cost)
    return node[ok], cost[ok], label[ok]


def _border_seeds(indptr, indices, costs, node_cost, node_label, region, inside):
    """Seeds that refill an emptied ``region``: node v inside, via its forward arc to u outside."""
    counts = indptr[region + 1] - indptr[region]
    v = np.repeat(region, counts)
    k = np.repeat(indptr[region], counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    u = indices[k]
    cost = costs[k] + node_cost[u]
    keep = ~inside[u] & np.isfinite(cost)
    return v[keep].astype(np.int64), cost[keep], node_label[u][keep].astype(np.int64)


def _improve(indptr, indices, costs, dist, label, seed_node, seed_cost, seed_label) -> np.ndarray:
    """Lower ``dist``/``label`` in place from the seeds, searching only where a node improves; return those nodes."""
    touched = _improve_search(
        indptr, indices, np.ascontiguousarray(costs, np.float64), dist, label,
        np.ascontiguousarray(seed_node, np.int64), np.ascontiguousarray(seed_cost, np.float64),
        np.ascontiguousarray(seed_label, np.int64),
    )  # fmt: skip
    return np.unique(touched)


@njit(cache=True, nogil=True)
def _improve_search(indptr, indices, costs, dist, label, seed_node, seed_cost, seed_label):  # pragma: no cover
    capacity = len(indices) + len(seed_node) + 1
    heap_cost = np.empty(capacity, np.float64)
    heap_node = np.empty(capacity, np.int64)
    touched = np.empty(capacity, np.int64)
    n_touched = 0
    size = 0
    for s in range(len(seed_node)):
        v, c = seed_node[s], seed_cost[s]
        if c < dist[v]:
            dist[v] = c
            label[v] = seed_label[s]
            touched[n_touched] = v
            n_touched += 1
            size = heap_push(heap_cost, heap_node, size, c, v)
    while size:
        c, u = heap_cost[0], heap_node[0]
        size -= 1
        if size:
            heap_sift_down(heap_cost, heap_node, size, heap_cost[size], heap_node[size])
        if c > dist[u]:
            continue
        for k in range(indptr[u], indptr[u + 1]):
            v = indices[k]
            nc = c + costs[k]
            if nc < dist[v]:
                dist[v] = nc
                label[v] = label[u]
                touched[n_touched] = v
                n_touched += 1
                size = heap_push(heap_cost, heap_node, size, nc, v)
    return touched[:n_touched]
