"""Snap points to the nearest road piece a travel profile may use, keeping the snap distance."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyproj
import shapely

from geo.errors import SnapError

if TYPE_CHECKING:
    from geo.prepared import PreparedNetwork

logger = logging.getLogger(__name__)

DEFAULT_MAX_SNAP_M = 500.0
_END_TOLERANCE_M = 1e-9
#: Side of the uniform grid cells that list the segments near them (metres), and the most cells.
_GRID_CELL_M = 100.0
_GRID_MAX_CELLS = 4_000_000


@dataclass(frozen=True, eq=False)
class EdgeIndex:
    """Straight segments of the road pieces one profile may use, in a uniform grid and an STRtree.

    The grid answers most points (a point's nearest segment within one cell size is always listed
    in the 3 × 3 cells around it); the STRtree answers the rest.

    Build it once with ``build_edge_index`` and pass it to ``snap_points`` for repeated snapping.

    Parameters
    ----------
    profile
        Profile name.
    tree
        ``shapely.STRtree`` over the segments.
    seg_piece
        Road piece of each segment.
    seg_xy
        ``s × 4`` array: x0, y0, x1, y1 per segment (projected metres).
    seg_start_m
        Distance along its piece's polyline where each segment starts (projected metres).
    piece_geom_m
        Projected polyline length of every road piece (metres).
    grid_origin
        x, y of the grid's lower-left corner (projected metres).
    cell_m
        Side of a grid cell (metres).
    grid_shape
        Number of cells along x and along y.
    cell_ptr, cell_seg
        CSR of the segments whose bounding box meets each cell (cell ``ix * ny + iy``).
    """

    profile: str
    tree: shapely.STRtree
    seg_piece: np.ndarray
    seg_xy: np.ndarray
    seg_start_m: np.ndarray
    piece_geom_m: np.ndarray
    grid_origin: tuple[float, float]
    cell_m: float
    grid_shape: tuple[int, int]
    cell_ptr: np.ndarray
    cell_seg: np.ndarray


@dataclass(frozen=True, eq=False)
class SnapResult:
    """Where points meet the network, one entry per input point (same order).

    Parameters
    ----------
    profile
        Profile whose usable pieces were searched.
    ids
        The caller's point ids.
    piece
        Road piece position in the ``PreparedNetwork`` (its ``piece_u`` → ``piece_v``).
    x, y
        Snapped position on the piece (projected metres).
    distance_m
        Straight distance from the point to the snapped position (metres).
    fraction
        Position along the piece from ``piece_u`` (0) to ``piece_v`` (1).
    along_m
        Network metres from ``piece_u`` to the snapped position (``fraction × piece_length_m``).
    too_far
        True where ``distance_m > max_snap_m``; routing reports these as unreachable unless told
        to attach them.
    max_snap_m
        The threshold used.
    """

    profile: str
    ids: np.ndarray
    piece: np.ndarray
    x: np.ndarray
    y: np.ndarray
    distance_m: np.ndarray
    fraction: np.ndarray
    along_m: np.ndarray
    too_far: np.ndarray
    max_snap_m: float

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: npt.ArrayLike) -> SnapResult:
        """Return the snaps of ``rows`` (positions), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        arrays = ("ids", "piece", "x", "y", "distance_m", "fraction", "along_m", "too_far")
        return replace(self, **{name: getattr(self, name)[rows] for name in arrays})

    def to_frame(self) -> pd.DataFrame:
        """Return the snaps as a DataFrame indexed by the point ids."""
        return pd.DataFrame(
            {
                "piece": self.piece,
                "x": self.x,
                "y": self.y,
                "distance_m": self.distance_m,
                "fraction": self.fraction,
                "along_m": self.along_m,
                "too_far": self.too_far,
            },
            index=pd.Index(self.ids, name="id"),
        )

    def subset(self, mask: npt.ArrayLike) -> SnapResult:
        """Return the snaps selected by a boolean mask or positions."""
        mask = np.asarray(mask)
        return SnapResult(
            self.profile,
            self.ids[mask],
            self.piece[mask],
            self.x[mask],
            self.y[mask],
            self.distance_m[mask],
            self.fraction[mask],
            self.along_m[mask],
            self.too_far[mask],
            self.max_snap_m,
        )


def build_edge_index(net: PreparedNetwork, profile: str) -> EdgeIndex:
    """Build the segment STRtree over the road pieces ``profile`` may use.

    Raises
    ------
    KeyError
        If the network was not prepared for ``profile``.
    SnapError
        If the profile may use no road piece at all.
    """
    pg = net.profile(profile)
    ptr, coords = net.piece_coord_ptr, net.piece_coords
    # segment k joins vertex k and k + 1 unless k is the last vertex of its piece
    vertex_piece = np.repeat(np.arange(net.n_pieces), np.diff(ptr))
    is_seg = np.ones(len(coords), bool)
    is_seg[ptr[1:] - 1] = False
    is_seg[len(coords) - 1 :] = False
    seg_start = np.flatnonzero(is_seg)
    seg_piece_all = vertex_piece[seg_start]
    seg_len = np.hypot(*(coords[seg_start + 1] - coords[seg_start]).T)
    # projected distance along the piece where each segment starts
    cum = np.cumsum(seg_len)
    piece_first_seg = np.searchsorted(seg_piece_all, np.arange(net.n_pieces))
    before = np.r_[0.0, cum][piece_first_seg]
    piece_geom = np.r_[0.0, cum][np.searchsorted(seg_piece_all, np.arange(net.n_pieces), side="right")] - before
    seg_start_m = np.r_[0.0, cum][:-1] - before[seg_piece_all]

    keep = pg.piece_usable[seg_piece_all]
    if not keep.any():
        msg = f"Profile {profile!r} may use no road piece of this network; check its `speed_kph` table."
        raise SnapError(msg)
    seg_start, seg_piece = seg_start[keep], seg_piece_all[keep]
    seg_xy = np.hstack([coords[seg_start], coords[seg_start + 1]])
    tree = shapely.STRtree(shapely.linestrings(seg_xy.reshape(-1, 2, 2)))
    origin, cell_m, shape, cell_ptr, cell_seg = _segment_grid(seg_xy)
    logger.info(
        "Indexed %s segments of %s road pieces for profile %r",
        f"{len(seg_piece):,}",
        f"{int(pg.piece_usable.sum()):,}",
        profile,
    )
    return EdgeIndex(
        profile, tree, seg_piece, seg_xy, seg_start_m[keep], piece_geom, origin, cell_m, shape, cell_ptr, cell_seg
    )


def _segment_grid(seg_xy: np.ndarray) -> tuple[tuple[float, float], float, tuple[int, int], np.ndarray, np.ndarray]:
    """List every segment in each grid cell its bounding box meets (one empty cell of margin all round)."""
    lo = np.minimum(seg_xy[:, :2], seg_xy[:, 2:])
    hi = np.maximum(seg_xy[:, :2], seg_xy[:, 2:])
    span = hi.max(axis=0) - lo.min(axis=0)
    cell_m = max(_GRID_CELL_M, float(np.sqrt(np.prod(span + 1.0) / _GRID_MAX_CELLS)))
    origin = lo.min(axis=0) - cell_m
    nx_, ny_ = (np.floor(span / cell_m).astype(np.int64) + 3).tolist()
    c0 = np.floor((lo - origin) / cell_m).astype(np.int64)
    c1 = np.floor((hi - origin) / cell_m).astype(np.int64)
    wx, wy = (c1 - c0 + 1).T
    count = wx * wy
    seg = np.repeat(np.arange(len(seg_xy)), count)
    k = np.arange(len(seg)) - np.repeat(np.cumsum(count) - count, count)
    cell = (c0[seg, 0] + k // wy[seg]) * ny_ + c0[seg, 1] + k % wy[seg]
    order = np.argsort(cell, kind="stable")
    cell_ptr = np.searchsorted(cell[order], np.arange(nx_ * ny_ + 1))
    return (float(origin[0]), float(origin[1])), cell_m, (nx_, ny_), cell_ptr, seg[order]


def _nearest_in_grid(index: EdgeIndex, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return each point's nearest segment found in its 3 × 3 grid cells, or -1 where not provably nearest.

    A segment within ``cell_m`` of a point meets one of the 3 × 3 cells around it, so a best
    candidate no farther than ``cell_m`` is the nearest segment; other points get -1.
    """
    nx_, ny_ = index.grid_shape
    cx = np.floor((x - index.grid_origin[0]) / index.cell_m).astype(np.int64)
    cy = np.floor((y - index.grid_origin[1]) / index.cell_m).astype(np.int64)
    inside = np.flatnonzero((cx >= 1) & (cx <= nx_ - 2) & (cy >= 1) & (cy <= ny_ - 2))
    found = np.full(len(x), -1, np.int64)
    if not len(inside):
        return found
    # the 3 x 3 cells around each point, as CSR ranges of the segment list
    cells = ((cx[inside, None] + np.array([-1, -1, -1, 0, 0, 0, 1, 1, 1])) * ny_ + cy[inside, None]) + np.array(
        [-1, 0, 1, -1, 0, 1, -1, 0, 1]
    )
    start = index.cell_ptr[cells].ravel()
    count = index.cell_ptr[cells + 1].ravel() - start
    per_point = count.reshape(-1, 9).sum(axis=1)
    owner = np.repeat(np.arange(len(inside)), per_point)
    pos = np.repeat(start - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
    cand = index.cell_seg[pos]
    px, py = x[inside][owner], y[inside][owner]
    x0, y0, x1, y1 = index.seg_xy[cand].T
    dx, dy = x1 - x0, y1 - y0
    len2 = dx * dx + dy * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.clip(((px - x0) * dx + (py - y0) * dy) / len2, 0.0, 1.0)
    t[len2 == 0] = 0.0
    ex, ey = x0 + t * dx - px, y0 + t * dy - py
    d2 = ex * ex + ey * ey
    has = per_point > 0
    first = np.cumsum(per_point) - per_point
    best = np.full(len(inside), np.inf)
    best[has] = np.minimum.reduceat(d2, first[has])
    # the lowest-numbered segment at the best distance (ties: e.g. a point on a node)
    tie = np.flatnonzero(d2 == best[owner])
    point, group = np.unique(owner[tie], return_index=True)
    n_seg = len(index.seg_xy)
    pick = np.minimum.reduceat(owner[tie] * n_seg + cand[tie], group) % n_seg
    ok = best[point] <= index.cell_m * index.cell_m
    found[inside[point[ok]]] = pick[ok]
    return found


def snap_points(
    net: PreparedNetwork,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    profile: str,
    ids: npt.ArrayLike | None = None,
    crs: str | None = None,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
    index: EdgeIndex | None = None,
) -> SnapResult:
    """Snap points to the nearest road piece ``profile`` may use.

    Parameters
    ----------
    net
        Prepared network.
    x, y
        Point coordinates in the network's projected CRS (metres); no nulls.
    profile
        Travel profile name; only pieces it may use count.
    ids
        Point ids (unique); positions 0..n-1 when None.
    crs
        The CRS of ``x``/``y``; checked against the network's when given.
    max_snap_m
        Points farther than this from every usable piece get ``too_far=True`` (still snapped).
    index
        A prebuilt ``build_edge_index(net, profile)``; built here when None.

    Returns
    -------
    SnapResult
        One entry per point, in input order.

    Raises
    ------
    SnapError
        If the CRS differs, coordinates are not finite, lengths differ or ids repeat.
    """
    if crs is not None and pyproj.CRS(crs) != pyproj.CRS(net.crs):
        msg = f"`crs` of the points must be the network's {net.crs!r}; got {crs!r}. Reproject the points."
        raise SnapError(msg)
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        msg = f"`x` and `y` must have the same length; got {len(x)} and {len(y)}."
        raise SnapError(msg)
    bad = ~(np.isfinite(x) & np.isfinite(y))
    ids = np.arange(len(x)) if ids is None else np.asarray(ids)
    if len(ids) != len(x):
        msg = f"`ids` must have one id per point; got {len(ids)} ids for {len(x)} points."
        raise SnapError(msg)
    if bad.any():
        msg = f"{int(bad.sum())} points have missing or infinite coordinates: ids {ids[bad][:10].tolist()!r}."
        raise SnapError(msg)
    if len(pd.unique(ids)) != len(ids):
        dup = pd.Index(ids)[pd.Index(ids).duplicated()].unique()[:10].tolist()
        msg = f"`ids` must be unique; repeated: {dup!r}."
        raise SnapError(msg)
    if index is None:
        index = build_edge_index(net, profile)
    elif index.profile != profile:
        msg = f"`index` was built for profile {index.profile!r}, not {profile!r}."
        raise SnapError(msg)
    if len(x) == 0:
        seg = np.zeros(0, np.int64)
    else:
        seg = _nearest_in_grid(index, x, y)
        rest = np.flatnonzero(seg < 0)
        if len(rest):
            # farther than a grid cell from every segment: a bounded tree search, then an unbounded one
            points = shapely.points(x[rest], y[rest])
            hits = index.tree.query_nearest(points, max_distance=max_snap_m, all_matches=False)
            seg[rest[hits[0]]] = hits[1]
            left = np.flatnonzero(seg[rest] < 0)
            if len(left):
                more = index.tree.query_nearest(points[left], all_matches=False)
                seg[rest[left[more[0]]]] = more[1]
    x0, y0, x1, y1 = index.seg_xy[seg].T
    dx, dy = x1 - x0, y1 - y0
    len2 = dx * dx + dy * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(len2 > 0, ((x - x0) * dx + (y - y0) * dy) / len2, 0.0)
    t = np.clip(t, 0.0, 1.0)
    sx, sy = x0 + t * dx, y0 + t * dy
    dist = np.hypot(x - sx, y - sy)
    piece = index.seg_piece[seg]
    geom_m = index.piece_geom_m[piece]
    pos_m = index.seg_start_m[seg] + t * np.sqrt(len2)
    # a point at a piece's end node is exactly there (no rounding left over along the piece)
    pos_m = np.where(pos_m <= _END_TOLERANCE_M, 0.0, pos_m)
    pos_m = np.where(geom_m - pos_m <= _END_TOLERANCE_M, geom_m, pos_m)
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(geom_m > 0, np.clip(pos_m / geom_m, 0.0, 1.0), 0.0)
    too_far = dist > max_snap_m
    if too_far.any():
        logger.info("%d of %d points are farther than %s m from any usable road", too_far.sum(), len(x), max_snap_m)
    return SnapResult(
        profile=profile,
        ids=ids,
        piece=piece,
        x=sx,
        y=sy,
        distance_m=dist,
        fraction=fraction,
        along_m=fraction * net.piece_length_m[piece],
        too_far=too_far,
        max_snap_m=float(max_snap_m),
    )
