"""Network costs between snapped points: nearest facility, cost tables and reach, in compiled code.

The nearest-facility search runs in ``geo.dijkstra`` (compiled with numba) on the core left after
peeling dead-end trees (``geo.reduction``); cost tables and reach run bounded searches in
``scipy.sparse.csgraph.dijkstra``. Snapped points enter the graph as
virtual nodes joined to both ends of their road piece by the partial piece cost plus the access
leg (point → road: the snap distance in metres, or that distance at the profile's speed on the
piece for travel time). Costs run FROM demand points TO facilities, so one-way streets and
slopes (travel times differ uphill and downhill, ``geo.dem``) count the way a traveller meets
them. Unreachable pairs cost ``inf`` and are reported as unreachable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numba import njit
from scipy.sparse.csgraph import dijkstra

from geo.dijkstra import multi_source_dijkstra
from geo.profiles import ATTRIBUTES
from geo.reduction import climb_to_core, fill_pendant_trees_inplace

if TYPE_CHECKING:
    from geo.prepared import PreparedNetwork, ProfileGraph
    from geo.snapping import SnapResult

logger = logging.getLogger(__name__)

Weight = Literal["length", "travel_time"]
DEMAND_ID = "demand_id"
FACILITY_ID = "facility_id"
CANDIDATE_ID = "candidate_id"
NODE_ID = "node_id"
COST = "cost"
REACHABLE = "reachable"
TOO_FAR = "too_far"
UNKNOWN_M = "unknown_m"
UNKNOWN_EDGES = "unknown_edges"
UNKNOWN_ATTRIBUTES = "unknown_attributes"
_WEIGHTS = ("length", "travel_time")
#: Dense search rows held at once by the bounded searches (bytes).
_CHUNK_BYTES = 64 * 2**20


@dataclass(frozen=True, eq=False)
class PointEnds:
    """Costs between snapped points and the two ends (``a`` = piece_u, ``b`` = piece_v) of their piece."""

    a: np.ndarray
    b: np.ndarray
    to_a: np.ndarray  # point -> a (inf where the piece may not be travelled b -> a)
    to_b: np.ndarray  # point -> b
    from_a: np.ndarray  # a -> point
    from_b: np.ndarray  # b -> point
    access: np.ndarray
    piece: np.ndarray
    fraction: np.ndarray
    cost_fwd: np.ndarray  # whole piece a -> b (NaN where that way is unusable)
    cost_bwd: np.ndarray  # whole piece b -> a
    fwd: np.ndarray
    bwd: np.ndarray


@dataclass(frozen=True, eq=False)
class NearestFacility:
    """Nearest facility and its cost, per demand point and per network node.

    The labelled tables ``demand`` and ``nodes`` are built on first access from the arrays.

    Parameters
    ----------
    profile, weight
        What the costs measure: metres for ``"length"``, seconds for ``"travel_time"``.
    facility_ids, demand_ids, node_ids
        The caller's facility and demand ids; OSM node ids.
    demand_facility, node_facility
        Position in ``facility_ids`` of the nearest facility; -1 where unreachable.
    demand_cost, node_cost
        Cost FROM the demand point (node) TO its nearest facility; ``inf`` where unreachable.
    demand_too_far
        Demand snapped farther than its ``max_snap_m``.
    demand_unknown_m, demand_unknown_edges, demand_unknown_attrs
        Along each demand point's route to its facility: metres and road pieces whose accessibility
        attributes were unknown and passed under a lenient policy, and the bit mask of those
        attributes (``geo.profiles.ATTRIBUTES``); 0 where unreachable or nothing was unknown.
    """

    profile: str
    weight: str
    facility_ids: np.ndarray
    demand_ids: np.ndarray
    node_ids: np.ndarray
    demand_facility: np.ndarray
    demand_cost: np.ndarray
    demand_too_far: np.ndarray
    node_facility: np.ndarray
    node_cost: np.ndarray
    demand_unknown_m: np.ndarray
    demand_unknown_edges: np.ndarray
    demand_unknown_attrs: np.ndarray

    @cached_property
    def demand(self) -> pd.DataFrame:
        """Indexed by demand id: ``facility_id``, ``cost``, ``reachable``, ``too_far`` and the route's unknowns.

        ``facility_id`` is NaN where unreachable; ``unknown_m``, ``unknown_edges`` and
        ``unknown_attributes`` (names joined by ``,``) describe the route's unknown accessibility.
        """
        return pd.DataFrame(
            {
                FACILITY_ID: pd.Categorical.from_codes(self.demand_facility, categories=self.facility_ids),
                COST: self.demand_cost,
                REACHABLE: np.isfinite(self.demand_cost),
                TOO_FAR: self.demand_too_far,
                UNKNOWN_M: self.demand_unknown_m,
                UNKNOWN_EDGES: self.demand_unknown_edges,
                UNKNOWN_ATTRIBUTES: attribute_names(self.demand_unknown_attrs),
            },
            index=pd.Index(self.demand_ids, name=DEMAND_ID),
        )

    @cached_property
    def nodes(self) -> pd.DataFrame:
        """Indexed by OSM node id: ``facility_id``, ``cost`` (node → facility), ``reachable``."""
        return pd.DataFrame(
            {
                FACILITY_ID: pd.Categorical.from_codes(self.node_facility, categories=self.facility_ids),
                COST: self.node_cost,
                REACHABLE: np.isfinite(self.node_cost),
            },
            index=pd.Index(self.node_ids, name=NODE_ID),
        )


def check_profile_snaps(net: PreparedNetwork, profile: str, weight: str, snaps: dict[str, SnapResult]) -> ProfileGraph:
    """Return the profile's graph after checking ``weight`` and that every snap is for this profile and network."""
    if weight not in _WEIGHTS:
        msg = f"`weight` must be one of {_WEIGHTS!r}; got {weight!r}."
        raise ValueError(msg)
    pg = net.profile(profile)
    for name, snap in snaps.items():
        if snap.profile != profile:
            msg = (
                f"`{name}` was snapped for profile {snap.profile!r}, not {profile!r}; "
                f"snap it with `snap_points(..., profile={profile!r})`."
            )
            raise ValueError(msg)
        if len(snap) and snap.piece.max() >= net.n_pieces:
            msg = f"`{name}` was snapped to another network (piece {int(snap.piece.max())} does not exist)."
            raise ValueError(msg)
    return pg


def _check_cutoff(cutoff: float) -> float:
    if not (np.isfinite(cutoff) and cutoff > 0):
        msg = f"`cutoff` must be a positive finite cost (m or s); got {cutoff!r}."
        raise ValueError(msg)
    return float(cutoff)


def point_ends(
    net: PreparedNetwork,
    pg: ProfileGraph,
    snap: SnapResult,
    weight: str,
    access_speed_kph: float | None,
    usable: np.ndarray,
) -> PointEnds:
    """Partial and access costs of snapped points; rows not in ``usable`` get ``inf`` everywhere."""
    piece, s = snap.piece, snap.fraction
    if weight == "length":
        c_fwd = c_bwd = net.piece_length_m[piece]
        access = snap.distance_m.copy()
    else:
        # travel times are directed (a slope costs more uphill): a -> b and b -> a apart
        c_fwd, c_bwd = pg.piece_time_s[piece], pg.piece_time_bwd_s[piece]
        speed = pg.piece_speed_mps[piece] if access_speed_kph is None else access_speed_kph / 3.6
        access = snap.distance_m / speed
    access = np.where(usable, access, np.inf)
    fwd, bwd = pg.piece_fwd[piece], pg.piece_bwd[piece]
    # a point at an end of a piece is at that node: zero length is travelled either way
    at_a, at_b = s == 0.0, s == 1.0
    return PointEnds(
        a=net.piece_u[piece],
        b=net.piece_v[piece],
        to_a=np.where(bwd | at_a, access + _part(s, c_bwd), np.inf),
        to_b=np.where(fwd | at_b, access + _part(1.0 - s, c_fwd), np.inf),
        from_a=np.where(fwd | at_a, access + _part(s, c_fwd), np.inf),
        from_b=np.where(bwd | at_b, access + _part(1.0 - s, c_bwd), np.inf),
        access=access,
        piece=piece,
        fraction=s,
        cost_fwd=c_fwd,
        cost_bwd=c_bwd,
        fwd=fwd,
        bwd=bwd,
    )


def _part(share: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Return ``share × cost``, 0 for a zero share even where the way is unusable (cost NaN)."""
    with np.errstate(invalid="ignore"):
        return np.where(share == 0.0, 0.0, share * cost)


def _augmented(net: PreparedNetwork, profile: str, weight: str, *, reverse: bool, seeds: tuple) -> sp.csr_matrix:
    """Return the profile's search graph (``net.search_graph``) plus one row per virtual node.

    Rows ``0..n-1`` are nodes in ``net.search_rank`` order; row ``n + j`` is seed ``j``, with
    out-arcs to its piece ends.
    """
    a, b, cost_a, cost_b = seeds
    indptr, indices, data = net.search_graph(profile, weight, reverse=reverse)
    n, k = len(indptr) - 1, len(a)
    rank = net.search_rank
    cols = np.stack([rank[a], rank[b]], axis=1)
    vals = np.stack([cost_a, cost_b], axis=1)
    ok = np.isfinite(vals)
    vindptr = indptr[-1] + np.cumsum(ok.sum(axis=1))
    A = sp.csr_matrix(
        (
            np.concatenate([data, vals[ok]]),
            np.concatenate([indices, cols[ok]]),
            np.concatenate([indptr, vindptr.astype(indptr.dtype)]),
        ),
        shape=(n + k, n + k),
    )
    A.has_sorted_indices = True  # node rows are sorted; a virtual row's two arcs need no order
    return A


def _bounded_searches(A: sp.csr_matrix, n: int, k: int, limit: float):
    """Yield (first seed, costs) of bounded searches from the ``k`` virtual rows of ``A``, in chunks.

    ``costs`` holds one dense row per seed of the chunk over all ``n + k`` rows (``inf`` beyond
    ``limit``); the chunks keep it near ``_CHUNK_BYTES``.
    """
    for chunk in _chunks(k, n + k):
        yield chunk.start, dijkstra(A, directed=True, indices=np.arange(n + chunk.start, n + chunk.stop), limit=limit)


def same_piece_pairs(src: PointEnds, dst: PointEnds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (src row, dst row, direct cost) for points on the same piece, travelling along it."""
    if not (len(src.piece) and len(dst.piece)):
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0)
    shared = np.zeros(max(int(src.piece.max()), int(dst.piece.max())) + 1, bool)
    shared[dst.piece] = True
    rows = np.flatnonzero(shared[src.piece] & np.isfinite(src.access))
    order = np.argsort(dst.piece, kind="stable")
    dst_sorted = dst.piece[order]
    lo = np.searchsorted(dst_sorted, src.piece[rows], side="left")
    cnt = np.searchsorted(dst_sorted, src.piece[rows], side="right") - lo
    i = np.repeat(rows, cnt)
    offset = np.arange(len(i)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    j = order[np.repeat(lo, cnt) + offset]
    s, t = src.fraction[i], dst.fraction[j]
    along = np.where((t >= s) & src.fwd[i], _part(t - s, src.cost_fwd[i]), np.inf)
    along = np.minimum(along, np.where((t <= s) & src.bwd[i], _part(s - t, src.cost_bwd[i]), np.inf))
    cost = src.access[i] + dst.access[j] + along
    keep = np.isfinite(cost)
    return i[keep], j[keep], cost[keep]


def _nearest_on_core(
    net: PreparedNetwork, profile: str, weight: str, fac: PointEnds, limit: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return (cost, facility row) per node of the multi-source search TO the facilities.

    The search runs on the core of the profile's pendant trees (``PreparedNetwork.search_core``),
    walking through the inner nodes of roads between junctions without queueing them. Facilities
    attached inside a tree enter the core at the tree's root with the tree path cost
    added; afterwards the trees are filled from their roots (``geo.reduction``). Costs equal those
    of the search on the whole graph; among exactly tied facilities another one may be named.
    """
    trees = net.pendant_trees(profile, weight)
    indptr, indices, data = net.search_core(profile, weight, reverse=True)
    k = len(fac.a)
    node = np.concatenate([fac.a, fac.b])
    cost = np.concatenate([fac.from_a, fac.from_b])
    row = np.concatenate([np.arange(k), np.arange(k)])
    ok = np.isfinite(cost)
    (col, cost, row), inside = climb_to_core(trees, node[ok], cost[ok], row[ok])
    through = net.search_core_pass_through(profile, weight)
    dist, nearest = multi_source_dijkstra(indptr, indices, data, col, cost, row, limit=limit, pass_through=through)
    n = net.n_nodes
    full_cost = np.full(n, np.inf)
    full_cost[trees.core] = dist
    full_fac = np.full(n, -1, np.int64)
    full_fac[trees.core] = nearest
    fill_pendant_trees_inplace(trees, full_cost, full_fac, inside)
    beyond = full_cost > limit
    full_cost[beyond] = np.inf
    full_fac[beyond] = -1
    return full_cost, full_fac


def usable_points(snap: SnapResult, attach_far: bool) -> np.ndarray:
    """Return which snapped points are routed: all when ``attach_far``, else those within their ``max_snap_m``."""
    return np.ones(len(snap), bool) if attach_far else ~snap.too_far


def nearest_facility(
    net: PreparedNetwork,
    profile: str,
    facilities_snap: SnapResult,
    demand_snap: SnapResult,
    *,
    weight: Weight,
    cutoff: float | None = None,
    attach_far: bool = False,
    access_speed_kph: float | None = None,
) -> NearestFacility:
    """Find the nearest facility of every demand point and every node, in one multi-source search.

    Parameters
    ----------
    net
        Prepared network.
    profile
        Travel profile name; both snaps must be for it.
    facilities_snap, demand_snap
        ``snap_points`` results; their ids label the output.
    weight
        ``"length"`` (metres) or ``"travel_time"`` (seconds).
    cutoff
        Costs above this are reported unreachable (search stops there); None for no limit.
    attach_far
        Route from/to points snapped farther than their ``max_snap_m`` too (default: such demand
        points are unreachable and such facilities are left out).
    access_speed_kph
        Speed for the point → road leg of travel times; the profile's speed on the snapped piece
        when None.

    Returns
    -------
    NearestFacility
        Costs FROM each demand point (or node) TO its nearest facility.

    Raises
    ------
    ValueError
        If ``weight`` or ``cutoff`` is invalid, or a snap is for another profile.
    """
    pg = check_profile_snaps(net, profile, weight, {"facilities_snap": facilities_snap, "demand_snap": demand_snap})
    limit = np.inf if cutoff is None else _check_cutoff(cutoff)
    fac = point_ends(net, pg, facilities_snap, weight, access_speed_kph, usable_points(facilities_snap, attach_far))
    dem = point_ends(net, pg, demand_snap, weight, access_speed_kph, usable_points(demand_snap, attach_far))
    n, k = net.n_nodes, len(facilities_snap)

    if k:
        node_cost, node_fac = _nearest_on_core(net, profile, weight, fac, limit)
    else:
        node_fac = np.full(n, -1)
        node_cost = np.full(n, np.inf)
    via_a = dem.to_a + node_cost[dem.a]
    via_b = dem.to_b + node_cost[dem.b]
    cost = np.minimum(via_a, via_b)
    best = np.where(via_b < via_a, node_fac[dem.b], node_fac[dem.a])
    i, j, direct = same_piece_pairs(dem, fac)
    if len(i):
        order = np.lexsort((direct, i))  # per demand row, cheapest direct pair first
        i, j, direct = i[order], j[order], direct[order]
        first = np.r_[True, i[1:] != i[:-1]]
        i, j, direct = i[first], j[first], direct[first]
        better = direct < cost[i]
        cost[i[better]] = direct[better]
        best[i[better]] = j[better]
    cost[cost > limit] = np.inf
    reachable = np.isfinite(cost)
    best = np.where(reachable, best, -1)
    node_reach = np.isfinite(node_cost)
    unknown = _route_unknowns(net, pg, weight, fac, dem, node_cost, cost, via_a, via_b)
    if len(i):
        _direct_unknowns_inplace(net, pg, unknown, dem, fac, i[better], j[better])
    for a in unknown:
        a[~reachable] = 0

    fac_ids = np.asarray(facilities_snap.ids)
    if len(pd.unique(fac_ids)) != len(fac_ids):
        msg = "`facilities_snap` ids must be unique; snap the facilities with unique `ids`."
        raise ValueError(msg)
    logger.info(
        "Nearest of %d facilities by %s (%s): %d of %d demand points reachable",
        k,
        weight,
        profile,
        int(reachable.sum()),
        len(reachable),
    )
    return NearestFacility(
        profile=profile,
        weight=weight,
        facility_ids=fac_ids,
        demand_ids=np.asarray(demand_snap.ids),
        node_ids=net.node_id,
        demand_facility=best,
        demand_cost=cost,
        demand_too_far=demand_snap.too_far,
        node_facility=np.where(node_reach, node_fac, -1),
        node_cost=node_cost,
        demand_unknown_m=unknown[0],
        demand_unknown_edges=unknown[1],
        demand_unknown_attrs=unknown[2],
    )


def attribute_names(masks: np.ndarray) -> np.ndarray:
    """Return the ``geo.profiles.ATTRIBUTES`` of each bit mask joined by ``","`` (``""`` for 0)."""
    names = {0: ""}
    for m in np.unique(masks).tolist():
        names[m] = ",".join(a for k, a in enumerate(ATTRIBUTES) if m >> k & 1)
    return np.array([names[m] for m in np.asarray(masks).tolist()], dtype=object)


def _route_unknowns(net, pg, weight, fac: PointEnds, dem: PointEnds, node_cost, cost, via_a, via_b):
    """Return (metres, edges, attribute mask) of unknown accessibility along each demand point's route.

    The routes are read back from the search's costs: from each node the next arc of its route is an
    arc to a node settled before it whose cost plus the arc's equals its own (the same floating-point
    sums the search made), so the totals follow the shortest-path tree node by node. Where parallel
    pieces join the same two nodes, the arc counts the piece of least travel time
    (``ProfileGraph.arc_piece``), also when the weight is length.
    """
    k = len(dem.a)
    if not pg.piece_unknown.any():
        return np.zeros(k), np.zeros(k, np.int64), np.zeros(k, np.int64)
    piece_m = np.where(pg.piece_unknown > 0, net.piece_length_m, 0.0)
    arc_m = piece_m[pg.arc_piece]
    arc_mask = pg.piece_unknown[pg.arc_piece]
    arc_cost = pg.arc_cost(weight)
    # the facility's partial pieces are where the routes end
    n = net.n_nodes
    seed_cost = np.full(n, np.inf)
    seed_m, seed_e, seed_mask = np.zeros(n), np.zeros(n, np.int64), np.zeros(n, np.int64)
    f_unknown = pg.piece_unknown[fac.piece]
    for end, c, share in ((fac.a, fac.from_a, fac.fraction), (fac.b, fac.from_b, 1.0 - fac.fraction)):
        order = np.argsort(-c, kind="stable")  # the cheapest seed of a node written last
        e, c, share, unk = end[order], c[order], share[order], f_unknown[order]
        seed_cost[e] = np.minimum(seed_cost[e], c)
        take = c <= seed_cost[e]
        e, share, unk, piece = e[take], share[take], unk[take], fac.piece[order][take]
        seed_m[e] = share * piece_m[piece]
        seed_e[e] = (unk > 0) & (share > 0)
        seed_mask[e] = np.where(share > 0, unk, 0)
    node_m, node_e, node_mask = _unknowns_on_tree(
        pg.indptr, pg.indices, arc_cost, arc_m, arc_mask, node_cost, seed_cost, seed_m, seed_e, seed_mask
    )
    via_b_wins = via_b < via_a
    end = np.where(via_b_wins, dem.b, dem.a)
    share = np.where(via_b_wins, 1.0 - dem.fraction, dem.fraction)
    d_unknown = pg.piece_unknown[dem.piece]
    own = share > 0
    metres = node_m[end] + share * piece_m[dem.piece]
    edges = node_e[end] + ((d_unknown > 0) & own)
    mask = node_mask[end] | np.where(own, d_unknown, 0)
    finite = np.isfinite(cost)
    return np.where(finite, metres, 0.0), np.where(finite, edges, 0), np.where(finite, mask, 0)


def _direct_unknowns_inplace(net, pg, unknown, dem: PointEnds, fac: PointEnds, i, j) -> None:
    """Set the unknowns of demand rows ``i`` routed along their own piece to facility ``j``."""
    piece_unknown = pg.piece_unknown[dem.piece[i]]
    span = np.abs(fac.fraction[j] - dem.fraction[i]) * net.piece_length_m[dem.piece[i]]
    unknown[0][i] = np.where(piece_unknown > 0, span, 0.0)
    unknown[1][i] = (piece_unknown > 0) & (span > 0)
    unknown[2][i] = np.where(span > 0, piece_unknown, 0)


@njit(cache=True, nogil=True)
def _unknowns_on_tree(
    indptr, indices, arc_cost, arc_m, arc_mask, node_cost, seed_cost, seed_m, seed_e, seed_mask
):  # pragma: no cover - compiled
    n = len(node_cost)
    out_m = np.zeros(n)
    out_e = np.zeros(n, np.int64)
    out_mask = np.zeros(n, np.int64)
    done = np.zeros(n, np.bool_)
    order = np.argsort(node_cost, kind="mergesort")
    for v in order:
        c = node_cost[v]
        if not np.isfinite(c):
            break
        tol = 1e-9 * max(1.0, c)
        if seed_cost[v] <= c + tol:
            out_m[v], out_e[v], out_mask[v] = seed_m[v], seed_e[v], seed_mask[v]
            done[v] = True
            continue
        best, best_gap = -1, np.inf
        for k in range(indptr[v], indptr[v + 1]):
            w = indices[k]
            if done[w]:
                gap = abs(node_cost[w] + arc_cost[k] - c)
                if gap < best_gap:
                    best, best_gap = k, gap
                    if gap <= tol:
                        break
        if best >= 0:
            w = indices[best]
            out_m[v] = out_m[w] + arc_m[best]
            out_e[v] = out_e[w] + (arc_m[best] > 0)
            out_mask[v] = out_mask[w] | arc_mask[best]
        done[v] = True
    return out_m, out_e, out_mask


def _chunks(n_rows: int, row_len: int) -> list[slice]:
    step = max(1, _CHUNK_BYTES // (8 * max(row_len, 1)))
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


def cost_matrix(
    net: PreparedNetwork,
    profile: str,
    demand_snap: SnapResult,
    candidate_snap: SnapResult,
    *,
    weight: Weight,
    cutoff: float,
    attach_far: bool = False,
    access_speed_kph: float | None = None,
) -> pd.DataFrame:
    """Return the costs FROM demand points TO candidates, for pairs within ``cutoff``, as a long table.

    One bounded search (``limit=cutoff``) per candidate on the reversed graph, in batches.

    Parameters
    ----------
    net
        Prepared network.
    profile
        Travel profile name; both snaps must be for it.
    demand_snap, candidate_snap
        ``snap_points`` results; their ids label the output.
    weight
        ``"length"`` (metres) or ``"travel_time"`` (seconds).
    cutoff
        Largest cost kept (inclusive), in the unit of ``weight``.
    attach_far
        Include points snapped farther than their ``max_snap_m`` (left out by default).
    access_speed_kph
        Speed for the point → road legs of travel times; the piece's profile speed when None.

    Returns
    -------
    pandas.DataFrame
        Columns ``demand_id``, ``candidate_id``, ``cost``: one row per pair with cost ≤ ``cutoff``;
        pairs not listed are farther than ``cutoff`` or unreachable.

    Raises
    ------
    ValueError
        If ``weight`` or ``cutoff`` is invalid, or a snap is for another profile.
    """
    pg = check_profile_snaps(net, profile, weight, {"demand_snap": demand_snap, "candidate_snap": candidate_snap})
    limit = _check_cutoff(cutoff)
    cand = point_ends(net, pg, candidate_snap, weight, access_speed_kph, usable_points(candidate_snap, attach_far))
    dem = point_ends(net, pg, demand_snap, weight, access_speed_kph, usable_points(demand_snap, attach_far))
    n, k = net.n_nodes, len(candidate_snap)
    di, dj, direct = same_piece_pairs(dem, cand)
    rows_d, rows_c, costs = [], [], []
    if k and len(demand_snap):
        A = _augmented(net, profile, weight, reverse=True, seeds=(cand.a, cand.b, cand.from_a, cand.from_b))
        col_a, col_b = net.search_rank[dem.a], net.search_rank[dem.b]
        for first, D in _bounded_searches(A, n, k, limit):
            M = np.minimum(D[:, col_a] + dem.to_a, D[:, col_b] + dem.to_b)
            sel = (dj >= first) & (dj < first + len(D))
            if sel.any():
                np.minimum.at(M, (dj[sel] - first, di[sel]), direct[sel])
            c_loc, d_idx = np.nonzero(M <= limit)
            rows_d.append(d_idx)
            rows_c.append(c_loc + first)
            costs.append(M[c_loc, d_idx])
    d_idx = np.concatenate(rows_d) if rows_d else np.zeros(0, np.int64)
    c_idx = np.concatenate(rows_c) if rows_c else np.zeros(0, np.int64)
    table = pd.DataFrame(
        {
            DEMAND_ID: np.asarray(demand_snap.ids)[d_idx],
            CANDIDATE_ID: np.asarray(candidate_snap.ids)[c_idx],
            COST: np.concatenate(costs) if costs else np.zeros(0),
        }
    )
    table.attrs.update(profile=profile, weight=weight, cutoff=limit)
    logger.info(
        "Cost table %s × %s by %s (%s) within %s: %s pairs",
        len(demand_snap),
        k,
        weight,
        profile,
        limit,
        f"{len(table):,}",
    )
    return table


def reach(
    net: PreparedNetwork,
    profile: str,
    facility_snap: SnapResult,
    *,
    weight: Weight,
    cutoff: float,
    direction: Literal["to_facility", "from_facility"] = "to_facility",
    attach_far: bool = False,
    access_speed_kph: float | None = None,
) -> pd.DataFrame:
    """Return, per facility, the nodes within ``cutoff`` and their costs, as a long table.

    Parameters
    ----------
    net
        Prepared network.
    profile
        Travel profile name; the snap must be for it.
    facility_snap
        ``snap_points`` result; its ids label the output.
    weight
        ``"length"`` (metres) or ``"travel_time"`` (seconds).
    cutoff
        Largest cost kept (inclusive).
    direction
        ``"to_facility"``: cost from the node to the facility (default, as demand travels);
        ``"from_facility"``: cost from the facility to the node.
    attach_far
        Include facilities snapped farther than their ``max_snap_m`` (left out by default).
    access_speed_kph
        Speed for the facility's access leg in travel times; the piece's profile speed when None.

    Returns
    -------
    pandas.DataFrame
        Columns ``facility_id``, ``node_id`` (OSM id), ``cost``: one row per node within ``cutoff``.

    Raises
    ------
    ValueError
        If ``weight``, ``cutoff`` or ``direction`` is invalid, or the snap is for another profile.
    """
    pg = check_profile_snaps(net, profile, weight, {"facility_snap": facility_snap})
    limit = _check_cutoff(cutoff)
    if direction not in ("to_facility", "from_facility"):
        msg = f"`direction` must be 'to_facility' or 'from_facility'; got {direction!r}."
        raise ValueError(msg)
    fac = point_ends(net, pg, facility_snap, weight, access_speed_kph, usable_points(facility_snap, attach_far))
    n, k = net.n_nodes, len(facility_snap)
    if direction == "to_facility":
        A = _augmented(net, profile, weight, reverse=True, seeds=(fac.a, fac.b, fac.from_a, fac.from_b))
    else:
        A = _augmented(net, profile, weight, reverse=False, seeds=(fac.a, fac.b, fac.to_a, fac.to_b))
    f_rows, nodes, costs = [], [], []
    order = np.argsort(net.search_rank)  # node position of each search row
    for first, D in _bounded_searches(A, n, k, limit):
        f_loc, row = np.nonzero(D[:, :n] <= limit)
        f_rows.append(f_loc + first)
        nodes.append(order[row])
        costs.append(D[f_loc, row])
    f_idx = np.concatenate(f_rows) if f_rows else np.zeros(0, np.int64)
    node_idx = np.concatenate(nodes) if nodes else np.zeros(0, np.int64)
    table = pd.DataFrame(
        {
            FACILITY_ID: np.asarray(facility_snap.ids)[f_idx],
            NODE_ID: net.node_id[node_idx],
            COST: np.concatenate(costs) if costs else np.zeros(0),
        }
    )
    table.attrs.update(profile=profile, weight=weight, cutoff=limit, direction=direction)
    return table
