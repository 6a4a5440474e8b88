"""Draw per-facility service areas (catchments) along the road network, one per facility and dissolved.

A service area holds the stretches of road from which a facility is reached within a threshold
(``direction="to_facility"``, as demand travels) or that a traveller from the facility reaches
(``"from_facility"``). Whole road pieces within the threshold are kept, and the pieces at the
frontier are cut where the remaining budget runs out; the kept stretches are buffered by ``buffer_m``
(``shape="roads"``), so the area follows the roads and never crosses land without a usable road.
``shape="hull"`` is the faster sketch: the hull of the ends of those stretches, buffered.

Everything runs on arrays: one bounded search per facility in ``geo.routing.reach`` (compiled),
interval arithmetic per (facility, road piece) in numpy, and vectorised shapely for cutting,
buffering and hulls. For ``shape="roads"`` the GEOS union dominates; facilities near each other
reach many of the same road pieces, so each piece is buffered once and the whole pieces of each
500 m cell are united once per distinct set and shared (`_RoadUnion`), and the unions run on a
thread per core (GEOS releases the GIL). Alternatives measured slower on Bishan (figures in
benchmarks/results/notes.md): buffering each facility's stretches as one MultiLineString, cell tiles
clipped to their cells then united, a cached quadtree of cell unions, a thin buffer united then
buffered again, a snapping ``grid_size``. Each facility's area is
still exactly the union of its own buffered stretches; the dissolved area unites every facility's
stretches (overlaps merged first), equal to the union of the areas up to the buffer's polygon
approximation (slivers under 1 m wide).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from analyses.costs import Threshold, parse_threshold
from geo.routing import reach
from layers import schema
from layers.io import write_features

if TYPE_CHECKING:
    from analyses.costs import Placer
    from geo.prepared import PreparedNetwork

logger = logging.getLogger(__name__)

FACILITY_ID = "facility_id"
THRESHOLD = "threshold"
THRESHOLD_VALUE = "threshold_value"
UNIT = "unit"
PROFILE = "profile"
DIRECTION = "direction"
ROAD_LENGTH_M = "road_length_m"
AREA_M2 = "area_m2"
FACILITIES = "facilities"
TOO_FAR = "too_far"
#: GeoPackage layer names written by ``ServiceAreasResult.to_file``.
LAYER_NAMES = {"areas": "service_areas", "dissolved": "service_areas_dissolved"}
_SHAPES = ("roads", "hull")
#: Side (m) of the cells whose whole road pieces are united once and shared between facilities
#: (`_RoadUnion`); the time hardly depends on it over a wide range (benchmarks/results/notes.md).
_CELL_M = 500.0
_DIRECTIONS = ("to_facility", "from_facility")


@dataclass(frozen=True)
class ServiceAreasResult:
    """Service areas of a facility layer, one polygon per facility and threshold, and dissolved.

    Parameters
    ----------
    areas
        One row per facility and threshold (all facilities in input order for the first threshold,
        then for the next):
        ``facility_id``, ``threshold`` (label such as ``"800m"``), ``threshold_value`` (m or s),
        ``unit``, ``profile``, ``direction``, ``too_far`` (facility farther from a usable road than the
        snap limit: its area is empty), ``road_length_m`` (metres of road inside, before buffering),
        ``area_m2`` (in the district's projected CRS) and ``geometry`` (EPSG:4326; empty where
        nothing is reached).
    dissolved
        One row per threshold: ``threshold``, ``threshold_value``, ``unit``, ``profile``,
        ``direction``, ``facilities`` (how many have a non-empty area), ``area_m2``, ``geometry``
        (the union of that threshold's areas, EPSG:4326).
    parameters
        What produced the result: profile, thresholds, shape, buffer, direction, counts.
    """

    areas: gpd.GeoDataFrame
    dissolved: gpd.GeoDataFrame
    parameters: dict[str, Any] = field(default_factory=dict)

    def to_file(self, path: str | Path, *, layer: Literal["areas", "dissolved"] | None = None) -> Path:
        """Write the areas to a GeoPackage (``.gpkg``) or GeoJSON (``.geojson``) file, EPSG:4326.

        Written with `layers.io.write_features`, the project's writer for map and analysis layers.

        Parameters
        ----------
        path
            Target file; replaced if it exists.
        layer
            Which table to write. For a GeoPackage None writes both, as the layers ``service_areas``
            and ``service_areas_dissolved``; for GeoJSON (one layer per file) None means ``"areas"``.

        Returns
        -------
        pathlib.Path
            The path written.

        Raises
        ------
        ValueError
            If the extension is not ``.gpkg`` or ``.geojson``, or ``layer`` is unknown.
        """
        path = Path(path)
        gpkg = path.suffix.lower() == ".gpkg"
        if not gpkg and path.suffix.lower() != ".geojson":
            msg = f"`path` must end in '.gpkg' or '.geojson'; got {path.name!r}."
            raise ValueError(msg)
        if layer is not None and layer not in LAYER_NAMES:
            msg = f"`layer` must be one of {sorted(LAYER_NAMES)!r} or None; got {layer!r}."
            raise ValueError(msg)
        if layer is not None:
            chosen = [layer]
        else:
            chosen = list(LAYER_NAMES) if gpkg else ["areas"]
        for i, name in enumerate(chosen):
            gdf = self.areas if name == "areas" else self.dissolved
            write_features(gdf, path, layer_name=LAYER_NAMES[name], append=i > 0)
        logger.info("Wrote service areas %s to %s", chosen, path)
        return path


def service_areas(
    placer: Placer,
    facilities: gpd.GeoDataFrame,
    *,
    profile: str,
    thresholds: Sequence[str | Threshold],
    shape: Literal["roads", "hull"] = "roads",
    buffer_m: float = 50.0,
    hull_ratio: float = 1.0,
    direction: Literal["to_facility", "from_facility"] = "to_facility",
    quad_segs: int = 2,
    workers: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> ServiceAreasResult:
    """Draw each facility's service area along the network for every threshold, and their union.

    Parameters
    ----------
    placer
        The prepared network with its snapping indexes (``analyses.costs.Placer``).
    facilities
        Facility points (any CRS) with a unique ``id`` column.
    profile
        ``"walk"``, ``"wheelchair"`` or ``"drive"``.
    thresholds
        One or more thresholds such as ``"800m"`` or ``"15min"`` (lengths and times may be mixed).
    shape
        ``"roads"``: the reached stretches of road (frontier pieces cut at the remaining budget),
        buffered by ``buffer_m``; follows the roads. ``"hull"``: the hull of the ends of those
        stretches, buffered by ``buffer_m``; faster, but may cover land no road reaches.
    buffer_m
        Buffer around the roads (or the hull), metres in the network's projected CRS; ≥ 0.
    hull_ratio
        For ``shape="hull"``: 1 gives the convex hull, smaller values a tighter concave hull
        (``shapely.concave_hull`` ratio).
    direction
        ``"to_facility"``: road from which the facility is reached within the threshold (default, as
        in coverage); ``"from_facility"``: road reached from the facility. Differs only where
        one-way rules apply (drive).
    quad_segs
        Segments per quarter circle of the buffer's round ends (fewer is faster and coarser).
    workers
        Threads for the polygon unions (GEOS releases the GIL); None uses one per CPU core.
    progress
        Called with the share done (0–1): after the network searches (0.2), the road stretches (0.3),
        then as the polygons are united (up to 1).

    Returns
    -------
    ServiceAreasResult

    Raises
    ------
    ValueError
        If no threshold is given or one is malformed, ``shape``, ``direction``, ``buffer_m`` or
        ``hull_ratio`` is invalid, ``id`` is missing or repeats, or the profile was not prepared.
    """
    parsed = [parse_threshold(t) for t in thresholds]
    if not parsed:
        msg = "Give at least one `thresholds` entry, e.g. ['800m', '15min']."
        raise ValueError(msg)
    if shape not in _SHAPES:
        msg = f"`shape` must be one of {_SHAPES!r}; got {shape!r}."
        raise ValueError(msg)
    if direction not in _DIRECTIONS:
        msg = f"`direction` must be one of {_DIRECTIONS!r}; got {direction!r}."
        raise ValueError(msg)
    if not (np.isfinite(buffer_m) and buffer_m >= 0):
        msg = f"`buffer_m` must be a finite number of metres ≥ 0; got {buffer_m!r}."
        raise ValueError(msg)
    if shape == "roads" and buffer_m == 0:
        msg = "`buffer_m` must be > 0 for `shape='roads'` (a road line has no area); e.g. 50."
        raise ValueError(msg)
    if not 0 <= hull_ratio <= 1:
        msg = f"`hull_ratio` must be between 0 (tightest) and 1 (convex hull); got {hull_ratio!r}."
        raise ValueError(msg)
    if workers is not None and workers < 1:
        msg = f"`workers` must be a positive number of threads or None (one per core); got {workers!r}."
        raise ValueError(msg)
    if schema.ID not in facilities.columns:
        msg = f"`facilities` lacks the column {schema.ID!r}; it has {list(facilities.columns)!r}."
        raise ValueError(msg)
    ids = facilities[schema.ID].astype(str)
    if ids.duplicated().any():
        msg = f"`facilities` ids must be unique; repeated: {ids[ids.duplicated()].unique()[:10].tolist()!r}."
        raise ValueError(msg)

    net = placer.net
    pg = net.profile(profile)
    snap = placer.snap(facilities, profile)
    fwd, bwd = np.asarray(pg.piece_fwd), np.asarray(pg.piece_bwd)
    if direction == "to_facility":  # a point on the piece travels towards the node: the reverse direction
        from_u_ok, from_v_ok = bwd, fwd
    else:
        from_u_ok, from_v_ok = fwd, bwd
    geometry = _PieceGeometry.build(net)
    incidence = _incidence(net, fwd | bwd)

    rows_geom: list[np.ndarray] = []
    rows_len: list[np.ndarray] = []
    unions: list[shapely.Geometry] = []
    by_weight: dict[str, _EndCosts] = {}
    for weight in dict.fromkeys(t.weight for t in parsed):
        cutoff = max(t.value for t in parsed if t.weight == weight)
        table = reach(net, profile, snap, weight=weight, cutoff=cutoff, direction=direction)
        by_weight[weight] = _end_costs(net, pg, snap, table, incidence, weight, direction)
    report = progress or (lambda share: None)
    report(0.2)
    n_fac = len(snap)
    stretches = []
    for t in parsed:
        ends = by_weight[t.weight]
        fac, piece, lo, hi = _intervals(ends, t.value, from_u_ok, from_v_ok, fwd, bwd, direction)
        rows_len.append(np.bincount(fac, weights=(hi - lo) * net.piece_length_m[piece], minlength=n_fac))
        stretches.append((fac, piece, lo, hi))
    report(0.3)
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        if shape == "roads":
            roads = _RoadUnion(geometry, buffer_m=buffer_m, quad_segs=quad_segs, cell_m=_CELL_M, pool=pool)
            # the union of every facility's stretches, overlapping ones merged first: faster than uniting
            # the areas, and the same within the buffer's polygon approximation (< 1 m); all
            # unions (areas and dissolved, every threshold) go to the pool together
            jobs: list[tuple[int, int]] = []
            lists: list[list[shapely.Geometry]] = []
            for k, (fac, piece, lo, hi) in enumerate(stretches):
                for f, geoms in roads.parts(fac, piece, lo, hi).items():
                    jobs.append((k, f))
                    lists.append(geoms)
                one = np.zeros(len(fac), np.int64)
                for geoms in roads.parts(*_merge(one, piece, lo, hi)).values():
                    jobs.append((k, -1))
                    lists.append(geoms)
            rows_geom = [np.full(n_fac, shapely.Polygon(), dtype=object) for _ in parsed]
            unions = [shapely.Polygon() for _ in parsed]
            united = _union_each(pool, lists, lambda share: report(0.3 + 0.7 * share))
            for (k, f), poly in zip(jobs, united, strict=True):
                if f < 0:
                    unions[k] = poly
                else:
                    rows_geom[k][f] = poly
        else:
            for k, (fac, piece, lo, hi) in enumerate(stretches):
                polys = _hulls(geometry, fac, piece, lo, hi, n_fac, buffer_m, hull_ratio, quad_segs)
                rows_geom.append(polys)
                unions.append(shapely.union_all(polys[~shapely.is_empty(polys)]))
                report(0.3 + 0.7 * (k + 1) / len(stretches))

    areas = _areas_frame(ids.to_numpy(), parsed, rows_geom, rows_len, snap.too_far, profile, direction, net.crs)
    dissolved = _dissolved_frame(parsed, rows_geom, unions, profile, direction, net.crs)
    params = {
        "profile": profile,
        "thresholds": [{"label": t.label, "value": t.value, "unit": t.unit} for t in parsed],
        "shape": shape,
        "buffer_m": buffer_m,
        "hull_ratio": hull_ratio,
        "direction": direction,
        "max_snap_m": placer.max_snap_m,
        "n_facilities": n_fac,
        "n_too_far": int(np.sum(snap.too_far)),
        "crs_measured": net.crs,
    }
    logger.info(
        "Service areas (%s, %s) of %d facilities for %s: %s",
        shape,
        profile,
        n_fac,
        [t.label for t in parsed],
        {t.label: f"{a:,.0f} m²" for t, a in zip(parsed, dissolved[AREA_M2], strict=True)},
    )
    return ServiceAreasResult(areas=areas, dissolved=dissolved, parameters=params)


# --- costs at piece ends -------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Incidence:
    """Usable road pieces meeting each node: CSR ``ptr`` over node positions, ``piece`` and ``end``."""

    ptr: np.ndarray
    piece: np.ndarray
    end: np.ndarray  # 0: the node is the piece's u, 1: its v


def _incidence(net: PreparedNetwork, usable: np.ndarray) -> _Incidence:
    pieces = np.flatnonzero(usable)
    node = np.concatenate([net.piece_u[pieces], net.piece_v[pieces]])
    piece = np.concatenate([pieces, pieces])
    end = np.repeat(np.array([0, 1], np.int8), len(pieces))
    order = np.argsort(node, kind="stable")
    ptr = np.zeros(net.n_nodes + 1, np.int64)
    np.cumsum(np.bincount(node, minlength=net.n_nodes), out=ptr[1:])
    return _Incidence(ptr=ptr, piece=piece[order], end=end[order])


@dataclass(frozen=True, eq=False)
class _EndCosts:
    """Per (facility, piece) touched by a search: costs at both ends, and each facility's own piece."""

    fac: np.ndarray
    piece: np.ndarray
    cost_u: np.ndarray  # inf where the end is not reached
    cost_v: np.ndarray
    cost_from_u: np.ndarray  # cost of the whole piece (m or s) for the stretch reached from its u end
    cost_from_v: np.ndarray  # the same from its v end (they differ on a slope)
    own_ok: np.ndarray  # per facility: routed (not too far)
    own_piece: np.ndarray
    own_fraction: np.ndarray
    own_access: np.ndarray
    own_cost_ahead: np.ndarray  # cost of the whole own piece for the stretch towards v
    own_cost_behind: np.ndarray  # towards u


def _end_costs(net, pg, snap, table: pd.DataFrame, inc: _Incidence, weight: str, direction: str) -> _EndCosts:
    if weight == "length":
        fwd_cost = bwd_cost = net.piece_length_m
    else:  # travel times are directed: u -> v and v -> u apart
        fwd_cost, bwd_cost = np.asarray(pg.piece_time_s), np.asarray(pg.piece_time_bwd_s)
    # towards the facility a point beyond u travels v -> u to reach it; from the facility, u -> v
    from_u, from_v = (bwd_cost, fwd_cost) if direction == "to_facility" else (fwd_cost, bwd_cost)
    fac = pd.Index(np.asarray(snap.ids)).get_indexer(table[FACILITY_ID].to_numpy())
    node = pd.Index(net.node_id).get_indexer(table["node_id"].to_numpy())
    cost = table["cost"].to_numpy(np.float64)
    deg = inc.ptr[node + 1] - inc.ptr[node]
    row = np.repeat(np.arange(len(node)), deg)
    slot = np.repeat(inc.ptr[node], deg) + (np.arange(len(row)) - np.repeat(np.cumsum(deg) - deg, deg))
    piece, end = inc.piece[slot], inc.end[slot]
    key = fac[row].astype(np.int64) * net.n_pieces + piece
    uniq, inv = np.unique(key, return_inverse=True)
    cost_u = np.full(len(uniq), np.inf)
    cost_v = np.full(len(uniq), np.inf)
    at_u = end == 0
    cost_u[inv[at_u]] = cost[row[at_u]]
    cost_v[inv[~at_u]] = cost[row[~at_u]]
    u_piece = uniq % net.n_pieces
    if weight == "length":
        access = snap.distance_m
    else:
        access = snap.distance_m / np.asarray(pg.piece_speed_mps)[snap.piece]
    return _EndCosts(
        fac=uniq // net.n_pieces,
        piece=u_piece,
        cost_u=cost_u,
        cost_v=cost_v,
        cost_from_u=from_u[u_piece],
        cost_from_v=from_v[u_piece],
        own_ok=~np.asarray(snap.too_far),
        own_piece=np.asarray(snap.piece),
        own_fraction=np.asarray(snap.fraction),
        own_access=np.asarray(access, np.float64),
        own_cost_ahead=from_u[snap.piece],  # towards v: away from u, as a stretch reached from u
        own_cost_behind=from_v[snap.piece],
    )


def _intervals(ends: _EndCosts, budget: float, from_u_ok, from_v_ok, fwd, bwd, direction: str):
    """Return (facility, piece, lo, hi): merged reached stretches as fractions of each piece."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a_hi = np.where(from_u_ok[ends.piece], (budget - ends.cost_u) / np.maximum(ends.cost_from_u, 1e-12), -np.inf)
        b_lo = np.where(
            from_v_ok[ends.piece], 1.0 - (budget - ends.cost_v) / np.maximum(ends.cost_from_v, 1e-12), np.inf
        )
        r_ahead = (budget - ends.own_access) / np.maximum(ends.own_cost_ahead, 1e-12)
        r_behind = (budget - ends.own_access) / np.maximum(ends.own_cost_behind, 1e-12)
    # the facility's own piece, around its snapped position
    s = ends.own_fraction
    p = ends.own_piece
    ahead, behind = (fwd[p], bwd[p]) if direction == "from_facility" else (bwd[p], fwd[p])
    own_lo = np.where(behind, s - r_behind, s)
    own_hi = np.where(ahead, s + r_ahead, s)
    r = np.maximum(np.where(ahead, r_ahead, -np.inf), np.where(behind, r_behind, -np.inf))
    n_fac = len(s)
    fac = np.concatenate([ends.fac, ends.fac, np.arange(n_fac)])
    piece = np.concatenate([ends.piece, ends.piece, p])
    lo = np.concatenate([np.zeros(len(a_hi)), b_lo, own_lo])
    hi = np.concatenate([a_hi, np.ones(len(b_lo)), own_hi])
    ok = np.concatenate([np.ones(2 * len(a_hi), bool), ends.own_ok & (r > 0)])
    lo, hi = np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)
    keep = ok & (hi > lo)
    fac, piece, lo, hi = fac[keep], piece[keep], lo[keep], hi[keep]
    return _merge(fac, piece, lo, hi)


def _merge(fac, piece, lo, hi):
    """Union overlapping or touching intervals of the same (facility, piece), vectorised."""
    if len(fac) == 0:
        return fac, piece, lo, hi
    order = np.lexsort((lo, piece, fac))
    fac, piece, lo, hi = fac[order], piece[order], lo[order], hi[order]
    group = np.r_[0, np.cumsum((fac[1:] != fac[:-1]) | (piece[1:] != piece[:-1]))]
    # shift each group into its own band [2g, 2g + 1] so one running maximum serves all groups
    reach_hi = np.maximum.accumulate(hi + 2.0 * group)
    starts = np.r_[True, lo[1:] + 2.0 * group[1:] > reach_hi[:-1]]
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], len(fac)] - 1
    merged_hi = reach_hi[last] - 2.0 * group[last]
    return fac[first], piece[first], lo[first], merged_hi


# --- geometry ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _PieceGeometry:
    """Polyline vertices of every piece with a globally sorted key ``2 * piece + fraction``."""

    coords: np.ndarray
    ptr: np.ndarray
    key: np.ndarray

    @classmethod
    def build(cls, net: PreparedNetwork) -> _PieceGeometry:
        coords, ptr = np.asarray(net.piece_coords), np.asarray(net.piece_coord_ptr)
        counts = np.diff(ptr)
        owner = np.repeat(np.arange(len(counts)), counts)
        step = np.r_[0.0, np.hypot(*np.diff(coords, axis=0).T)]
        step[ptr[:-1]] = 0.0  # first vertex of each piece starts at 0
        along = np.cumsum(step)
        along -= np.repeat(along[ptr[:-1]], counts)
        total = along[ptr[1:] - 1]
        tot = np.repeat(total, counts)
        frac = np.where(tot > 0, along / np.where(tot > 0, tot, 1.0), 0.0)
        frac[ptr[1:] - 1] = 1.0
        return cls(coords=coords, ptr=ptr, key=2.0 * owner + frac)

    def points(self, piece: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Return the ``k × 2`` positions at fraction ``t`` along ``piece``."""
        i = np.searchsorted(self.key, 2.0 * piece + t, side="right") - 1
        i = np.clip(i, self.ptr[piece], self.ptr[piece + 1] - 2)
        f0, f1 = self.key[i] - 2.0 * piece, self.key[i + 1] - 2.0 * piece
        span = f1 - f0
        w = np.clip(np.where(span > 0, (t - f0) / np.where(span > 0, span, 1.0), 0.0), 0.0, 1.0)
        return self.coords[i] + w[:, None] * (self.coords[i + 1] - self.coords[i])

    def substrings(self, piece: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Return one LineString per row: ``piece`` from fraction ``lo`` to ``hi``."""
        start = np.searchsorted(self.key, 2.0 * piece + lo, side="right")
        stop = np.searchsorted(self.key, 2.0 * piece + hi, side="left")
        inner = np.maximum(stop - start, 0)
        n_out = inner + 2
        offset = np.cumsum(n_out) - n_out
        out = np.empty((int(n_out.sum()), 2))
        out[offset] = self.points(piece, lo)
        out[offset + n_out - 1] = self.points(piece, hi)
        rows = np.repeat(np.arange(len(piece)), inner)
        k = np.arange(len(rows)) - np.repeat(np.cumsum(inner) - inner, inner)
        out[offset[rows] + 1 + k] = self.coords[start[rows] + k]
        return shapely.linestrings(out, indices=np.repeat(np.arange(len(piece)), n_out))


class _RoadUnion:
    """Unite buffered road stretches per facility, sharing the work between facilities.

    The shape of a facility is exactly the union of its buffered stretches, computed in two stages:
    the whole road pieces it reaches are grouped by the ``cell_m`` square cell holding their middle,
    each group is united once and the result is kept by its set of pieces, so every other facility
    (or threshold) that reaches the same set in that cell reuses it; then the facility's group unions
    and its buffered frontier stretches (cut pieces, its own) are united. Each whole piece is buffered
    once for all facilities. Union is associative, so the result equals the one-step union.

    The GEOS unions dominate and release the GIL, so both stages run on ``pool`` (one thread per core).
    """

    def __init__(
        self, geometry: _PieceGeometry, *, buffer_m: float, quad_segs: int, cell_m: float, pool: ThreadPoolExecutor
    ) -> None:
        self.geometry = geometry
        self.buffer_m = buffer_m
        self.quad_segs = quad_segs
        self.cell_m = cell_m
        self.pool = pool
        self.piece_polys: dict[int, shapely.Geometry] = {}
        self.groups: dict[bytes, shapely.Geometry] = {}

    def _buffer(self, piece: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        lines = self.geometry.substrings(piece, lo, hi)
        return shapely.buffer(lines, self.buffer_m, quad_segs=self.quad_segs)

    def _whole_polys(self, pieces: np.ndarray) -> np.ndarray:
        """Return the buffered whole pieces (unique ids), buffering those not seen before in one call."""
        new = np.array([p for p in pieces.tolist() if p not in self.piece_polys], np.int64)
        if len(new):
            ones = np.ones(len(new))
            self.piece_polys.update(zip(new.tolist(), self._buffer(new, ones * 0.0, ones), strict=True))
        return np.array([self.piece_polys[p] for p in pieces.tolist()], dtype=object)

    def parts(self, fac: np.ndarray, piece: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> dict[int, list]:
        """Return, per facility with stretches, the polygons whose union is its area; rows as from `_merge`."""
        parts: dict[int, list[shapely.Geometry]] = {}
        if len(fac) == 0:
            return parts
        whole = (lo <= 0.0) & (hi >= 1.0)
        uniq, inv = np.unique(piece[whole], return_inverse=True)
        polys = self._whole_polys(uniq)
        cell = np.floor(self.geometry.points(uniq, np.full(len(uniq), 0.5)) / self.cell_m).astype(np.int64)
        cell -= cell.min(axis=0, initial=0)
        cell_key = cell[:, 0] * (int(cell[:, 1].max(initial=0)) + 1) + cell[:, 1]
        w_fac, w_idx = fac[whole], inv
        order = np.lexsort((uniq[w_idx], cell_key[w_idx], w_fac))
        w_fac, w_idx = w_fac[order], w_idx[order]
        w_cell = cell_key[w_idx]
        # groups of whole pieces per facility and cell (none where every stretch is partial)
        starts = np.flatnonzero(np.r_[True, (w_fac[1:] != w_fac[:-1]) | (w_cell[1:] != w_cell[:-1])])
        starts = starts if len(w_fac) else starts[:0]
        stops = np.r_[starts[1:], len(w_fac)] if len(starts) else starts
        keys: list[tuple[int, bytes | int]] = []
        todo: dict[bytes, np.ndarray] = {}
        for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
            members = w_idx[a:b]
            if len(members) == 1:
                keys.append((int(w_fac[a]), int(members[0])))
                continue
            key = uniq[members].tobytes()
            if key not in self.groups:
                todo[key] = polys[members]
            keys.append((int(w_fac[a]), key))
        self.groups.update(zip(todo, self.pool.map(shapely.union_all, todo.values()), strict=True))
        for f, key in keys:
            parts.setdefault(f, []).append(polys[key] if isinstance(key, int) else self.groups[key])
        cut = ~whole
        for f, poly in zip(fac[cut].tolist(), self._buffer(piece[cut], lo[cut], hi[cut]), strict=True):
            parts.setdefault(f, []).append(poly)
        return parts


def _union_each(
    pool: ThreadPoolExecutor, parts: list[list[shapely.Geometry]], report: Callable[[float], None]
) -> list[shapely.Geometry]:
    """Return the union of each list of polygons, the largest lists first so the threads finish together.

    ``report`` gets the share of the polygons united so far, at most every twentieth of them.
    """
    order = sorted(range(len(parts)), key=lambda i: -len(parts[i]))
    united = {}
    every = max(1, len(order) // 20)
    for done, (i, poly) in enumerate(zip(order, pool.map(shapely.union_all, [parts[i] for i in order]),
                                         strict=True), start=1):  # fmt: skip
        united[i] = poly
        if done % every == 0 or done == len(order):
            report(done / len(order))
    return [united[i] for i in range(len(parts))]


def _hulls(geometry, fac, piece, lo, hi, n_fac, buffer_m, hull_ratio, quad_segs) -> np.ndarray:
    """Return one buffered hull of the stretch ends per facility (empty where nothing is reached)."""
    out = np.full(n_fac, shapely.Polygon(), dtype=object)
    if len(fac) == 0:
        return out
    present, first = np.unique(fac, return_index=True)  # fac is sorted by _merge
    dense = np.repeat(np.arange(len(present)), np.diff(np.r_[first, len(fac)]))
    pts = np.concatenate([geometry.points(piece, lo), geometry.points(piece, hi)])
    order = np.argsort(np.concatenate([dense, dense]), kind="stable")
    grouped = shapely.multipoints(pts[order], indices=np.concatenate([dense, dense])[order])
    grouped = shapely.convex_hull(grouped) if hull_ratio >= 1 else shapely.concave_hull(grouped, ratio=hull_ratio)
    out[present] = shapely.buffer(grouped, buffer_m, quad_segs=quad_segs) if buffer_m > 0 else grouped
    return out


# --- result tables -------------------------------------------------------------------------------


def _areas_frame(ids, parsed, geoms, lengths, too_far, profile, direction, crs) -> gpd.GeoDataFrame:
    n = len(ids)
    frame = gpd.GeoDataFrame(
        {
            FACILITY_ID: np.tile(ids, len(parsed)),
            THRESHOLD: np.repeat([t.label for t in parsed], n),
            THRESHOLD_VALUE: np.repeat([t.value for t in parsed], n),
            UNIT: np.repeat([t.unit for t in parsed], n),
            PROFILE: profile,
            DIRECTION: direction,
            TOO_FAR: np.tile(np.asarray(too_far, bool), len(parsed)),
            ROAD_LENGTH_M: np.concatenate(lengths) if lengths else np.zeros(0),
        },
        geometry=np.concatenate(geoms) if geoms else np.zeros(0, object),
        crs=crs,
    )
    frame[AREA_M2] = frame.geometry.area
    frame = frame.to_crs(schema.WGS84)
    return frame[[FACILITY_ID, THRESHOLD, THRESHOLD_VALUE, UNIT, PROFILE, DIRECTION, TOO_FAR, ROAD_LENGTH_M,
                  AREA_M2, "geometry"]]  # fmt: skip


def _dissolved_frame(parsed, geoms, unions, profile, direction, crs) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame(
        {
            THRESHOLD: [t.label for t in parsed],
            THRESHOLD_VALUE: [t.value for t in parsed],
            UNIT: [t.unit for t in parsed],
            PROFILE: profile,
            DIRECTION: direction,
            FACILITIES: [int((~shapely.is_empty(g)).sum()) for g in geoms],
        },
        geometry=unions,
        crs=crs,
    )
    frame[AREA_M2] = frame.geometry.area
    frame = frame.to_crs(schema.WGS84)
    return frame[[THRESHOLD, THRESHOLD_VALUE, UNIT, PROFILE, DIRECTION, FACILITIES, AREA_M2, "geometry"]]
