"""Nearest facility of each public layer from one origin, by network distance, with its route.

"Near me" for the public: from one point (a visitor's location or a typed village), one bounded
Dijkstra search per travel profile (``walk``, ``wheelchair``) over the prepared network gives the
nearest in-service facility of every public layer by distance along the roads, the time the
profile takes along that route (slopes and the wheelchair profile's tag factors and unknown-value
policy from ``geo/profiles.toml`` included), and the route as a polyline. The facilities are
snapped once (`NearMeIndex`); a query snaps only the origin.

The search is bounded: it starts at `FIRST_LIMIT_M` and grows fourfold (up to `MAX_LIMIT_M`) only while a
layer with facilities has none reached, so it stops soon after the farthest nearest facility.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import dijkstra

from analyses.costs import Placer
from geo.routing import PointEnds, point_ends, same_piece_pairs, usable_points
from layers import schema

#: Statuses of facilities in service, per public layer, as every analysis counts them (planned, closed or
#: not yet accepted ones are not).
IN_SERVICE = schema.IN_SERVICE_STATUSES
#: Profiles of a query, in the order shown.
PROFILES = ("walk", "wheelchair")
#: First search radius (network metres) and the largest one.
FIRST_LIMIT_M = 3000.0
MAX_LIMIT_M = 100_000.0


class OffNetworkError(ValueError):
    """The origin is farther from every usable road than the snapping limit."""


@dataclass(frozen=True)
class Nearest:
    """The nearest facility of one layer for one profile.

    Parameters
    ----------
    layer, facility_id, name
        Which facility.
    distance_m
        Network metres from the origin to the facility (access legs included).
    time_s
        Seconds the profile takes along that route.
    route
        The route as (x, y) vertices in the network CRS, origin first, facility last.
    """

    layer: str
    facility_id: str
    name: str
    distance_m: float
    time_s: float
    route: np.ndarray


@dataclass(frozen=True, eq=False)
class _Layer:
    ids: np.ndarray
    names: np.ndarray
    length: PointEnds
    time: PointEnds


class NearMeIndex:
    """Facilities of the public layers snapped once per profile, ready for `query`.

    Parameters
    ----------
    placer
        The prepared network with its snapping indexes (``analyses.costs.Placer``).
    facilities
        Per public layer, its rows (any CRS) with ``id``, ``name`` and ``status``; rows not
        `IN_SERVICE` are left out.
    profiles
        Profiles to answer for.
    """

    def __init__(
        self, placer: Placer, facilities: dict[str, gpd.GeoDataFrame], *, profiles: tuple[str, ...] = PROFILES
    ) -> None:
        self.placer = placer
        self.net = placer.net
        self.profiles = profiles
        self.layers: dict[str, dict[str, _Layer]] = {}
        for profile in profiles:
            pg = self.net.profile(profile)
            per_layer = {}
            for layer, gdf in facilities.items():
                rows = gdf[gdf[schema.STATUS].isin(IN_SERVICE.get(layer, ()))]
                if rows.empty:
                    continue
                snap = placer.snap(rows, profile)
                usable = usable_points(snap, attach_far=False)
                per_layer[layer] = _Layer(
                    ids=np.asarray(rows[schema.ID].astype(str)),
                    names=np.asarray(rows[schema.NAME].astype(str)),
                    length=point_ends(self.net, pg, snap, "length", None, usable),
                    time=point_ends(self.net, pg, snap, "travel_time", None, usable),
                )
            self.layers[profile] = per_layer

    def query(self, x: float, y: float) -> dict[str, dict[str, Nearest | None]]:
        """Return, per profile and per layer, the nearest in-service facility from (x, y).

        Parameters
        ----------
        x, y
            The origin in the network's CRS (metres).

        Returns
        -------
        dict
            ``{profile: {layer: Nearest or None}}``; None where the layer has no facility the
            profile reaches.

        Raises
        ------
        OffNetworkError
            If the origin is too far from every road a profile may use.
        """
        origin = gpd.GeoDataFrame({schema.ID: ["origin"]}, geometry=gpd.points_from_xy([x], [y]), crs=self.net.crs)
        return {profile: self._query_profile(origin, profile) for profile in self.profiles}

    def _query_profile(self, origin: gpd.GeoDataFrame, profile: str) -> dict[str, Nearest | None]:
        net, pg = self.net, self.net.profile(profile)
        snap = self.placer.snap(origin, profile)
        if bool(snap.too_far[0]):
            msg = f"origin is {float(snap.distance_m[0]):.0f} m from the nearest road usable by {profile!r}"
            raise OffNetworkError(msg)
        usable = np.ones(1, bool)
        o_len = point_ends(net, pg, snap, "length", None, usable)
        o_time = point_ends(net, pg, snap, "travel_time", None, usable)
        n = net.n_nodes
        A = _with_origin(pg.csr("length"), o_len)
        limit = FIRST_LIMIT_M
        while True:
            dist, pred = dijkstra(A, directed=True, indices=n, return_predecessors=True, limit=limit)
            found = {layer: self._nearest(dist, o_len, lay) for layer, lay in self.layers[profile].items()}
            if all(f is not None for f in found.values()) or limit >= MAX_LIMIT_M:
                break
            limit = min(limit * 4, MAX_LIMIT_M)
        out: dict[str, Nearest | None] = {layer: None for layer in IN_SERVICE}
        for layer, best in found.items():
            if best is not None:
                out[layer] = self._route(pg, pred, snap, o_len, o_time, self.layers[profile][layer], layer, *best)
        return out

    @staticmethod
    def _nearest(dist: np.ndarray, origin: PointEnds, lay: _Layer) -> tuple[int, str, float] | None:
        """Return (facility row, how: "a", "b" or "direct", metres) of the nearest facility, or None."""
        with np.errstate(invalid="ignore"):
            via_a = dist[lay.length.a] + lay.length.from_a
            via_b = dist[lay.length.b] + lay.length.from_b
        cost = np.fmin(via_a, via_b)
        how = np.where(via_b < via_a, "b", "a").astype(object)
        _, j, direct = same_piece_pairs(origin, lay.length)
        for jj, d in zip(j.tolist(), direct.tolist(), strict=True):
            if d < cost[jj] or not np.isfinite(cost[jj]):
                cost[jj], how[jj] = d, "direct"
        if not np.isfinite(cost).any():
            return None
        k = int(np.nanargmin(np.where(np.isfinite(cost), cost, np.inf)))
        return k, str(how[k]), float(cost[k])

    def _route(
        self, pg, pred, snap, o_len, o_time, lay: _Layer, layer: str, k: int, how: str, metres: float
    ) -> Nearest:
        net = self.net
        n = net.n_nodes
        start = np.array([snap.x[0], snap.y[0]])
        fac_piece = int(lay.length.piece[k])
        fac_point = _piece_point(net, fac_piece, float(lay.length.fraction[k]))
        if how == "direct":
            s, t = float(snap.fraction[0]), float(lay.length.fraction[k])
            line = _sub(net, fac_piece, s, t)
            along = abs(t - s)
            piece_time = pg.piece_time_s[fac_piece] if t >= s else pg.piece_time_bwd_s[fac_piece]
            seconds = float(o_time.access[0] + lay.time.access[k] + along * piece_time)
        else:
            end = int(lay.length.a[k] if how == "a" else lay.length.b[k])
            path = [end]
            while pred[path[-1]] != n:
                path.append(int(pred[path[-1]]))
            path.reverse()
            first = path[0]
            parts = [_sub(net, int(snap.piece[0]), float(snap.fraction[0]), 0.0 if first == o_len.a[0] else 1.0)]
            seconds = float(o_time.to_a[0] if first == o_len.a[0] else o_time.to_b[0])
            for u, v in zip(path[:-1], path[1:], strict=True):
                p = _arc_piece(pg, u, v)
                forward = int(net.piece_u[p]) == u
                parts.append(_sub(net, p, 0.0, 1.0) if forward else _sub(net, p, 1.0, 0.0))
                seconds += float(pg.piece_time_s[p] if forward else pg.piece_time_bwd_s[p])
            parts.append(_sub(net, fac_piece, 0.0 if how == "a" else 1.0, float(lay.length.fraction[k])))
            seconds += float(lay.time.from_a[k] if how == "a" else lay.time.from_b[k])
            line = np.concatenate(parts)
        route = np.vstack([start[None, :], line, fac_point[None, :]])
        return Nearest(layer, str(lay.ids[k]), str(lay.names[k]), metres, seconds, route)


def _with_origin(A: sp.csr_matrix, origin: PointEnds) -> sp.csr_matrix:
    """Return ``A`` with one more row and column: the origin, with arcs to the ends of its piece."""
    n = A.shape[0]
    cols, vals = [], []
    for node, cost in ((origin.a[0], origin.to_a[0]), (origin.b[0], origin.to_b[0])):
        if np.isfinite(cost):
            cols.append(int(node))
            vals.append(float(cost))
    indptr = np.concatenate([A.indptr, [A.indptr[-1] + len(cols)]])
    B = sp.csr_matrix(
        (np.concatenate([A.data, vals]), np.concatenate([A.indices, np.asarray(cols, A.indices.dtype)]), indptr),
        shape=(n + 1, n + 1),
    )
    return B


def _arc_piece(pg, u: int, v: int) -> int:
    """Return the road piece of the arc u → v (the one of the shortest length among parallel arcs)."""
    lo, hi = pg.indptr[u], pg.indptr[u + 1]
    ks = lo + np.flatnonzero(pg.indices[lo:hi] == v)
    return int(pg.arc_piece[ks[np.argmin(pg.length_m[ks])]])


def _coords(net, p: int) -> np.ndarray:
    return net.piece_coords[net.piece_coord_ptr[p] : net.piece_coord_ptr[p + 1]]


def _piece_point(net, p: int, fraction: float) -> np.ndarray:
    point = shapely.line_interpolate_point(shapely.linestrings(_coords(net, p)), fraction, normalized=True)
    return np.array(shapely.get_coordinates(point)[0])


def _sub(net, p: int, s: float, t: float) -> np.ndarray:
    """Return the vertices of piece ``p`` from fraction ``s`` to fraction ``t`` (reversed when t < s)."""
    coords = _coords(net, p)
    lo, hi = min(s, t), max(s, t)
    line = shapely.linestrings(coords)
    if hi - lo <= 0:
        return _piece_point(net, p, lo)[None, :]
    length = shapely.length(line)
    d = np.r_[0.0, np.cumsum(np.hypot(*np.diff(coords, axis=0).T))] / (length or 1.0)
    inner = coords[(d > lo) & (d < hi)]
    out = np.vstack([_piece_point(net, p, lo)[None, :], inner, _piece_point(net, p, hi)[None, :]])
    return out if t >= s else out[::-1]
