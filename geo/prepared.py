"""Compile road pieces into compact arrays (CSR per travel profile) and cache them.

The pieces come from an OSM file read by ``geo.osm`` (no networkx) or from a projected osmnx graph.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt
import pyproj
import scipy.sparse as sp
import shapely

from geo.dem import Dem, file_digest, piece_grades, read_dem
from geo.errors import NetworkError
from geo.osm import RoadNetwork
from geo.profiles import Profile, access_costs, highway_class, travel_time_s

if TYPE_CHECKING:
    import networkx as nx

    from geo.reduction import PendantTrees

# numba (geo.dijkstra, geo.reduction) and pandas are imported where they are used: preparing a
# network from an OSM file needs neither, and they double the memory of a process that only prepares.

logger = logging.getLogger(__name__)

#: Bump when the array layout or how a file is read changes, so old cache files are not read
#: (4: OSM files read by ``geo.osm`` instead of osmnx, so node sets differ; 5: directed piece times and
#: accessibility tags, pieces split where those tags change).
CACHE_FORMAT = 6
Weight = Literal["length", "travel_time"]
_WEIGHT_TO_FIELD = {"length": "length_m", "travel_time": "time_s"}


def _frozen(a: npt.ArrayLike, dtype: npt.DTypeLike) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=dtype)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class ProfileGraph:
    """Directed arcs one travel profile may use, as CSR arrays over node positions.

    Parallel arcs are merged keeping the cheapest per weight (so ``length_m`` and ``time_s`` of one
    arc may come from different road pieces); self-loops are dropped. ``r*`` arrays hold the
    transposed graph (arcs reversed), used to search towards a destination.

    Parameters
    ----------
    name
        Profile name.
    indptr, indices, length_m, time_s
        CSR of arcs: arc ``k`` in row ``i`` goes from node ``i`` to ``indices[k]``; metres, seconds.
    rindptr, rindices, rlength_m, rtime_s
        The same arcs transposed.
    piece_fwd, piece_bwd
        Per road piece: whether the profile may travel it from ``piece_u`` to ``piece_v``
        (forward) or back; both False where the profile may not use it at all.
    piece_time_s, piece_time_bwd_s
        Per road piece: seconds to travel its whole length from ``piece_u`` to ``piece_v`` and
        back (they differ on a slope; NaN or ``inf`` where that way is unusable).
    piece_speed_mps
        Per road piece: the profile's speed on it on the flat in m/s, tag factors applied (NaN
        where unusable); the speed of the access leg from a point to the road.
    piece_unknown
        Per road piece: bit mask of the ``geo.profiles.ATTRIBUTES`` whose value was unknown and
        passed leniently (0 where every attribute that matters is known or the profile has no rules).
    arc_piece
        Per arc of the CSR (``indices``): the road piece that gives its ``time_s``.
    piece_grade
        Per road piece: the gradient this profile travels on from ``piece_u`` to ``piece_v`` (the
        piece's numeric ``incline`` tag where the profile reads it, else the DEM's; NaN without either).
    piece_slope_closed
        Per road piece: bit 1 where its slope closes the way from ``piece_u`` to ``piece_v`` (steeper
        than the profile's limit), bit 2 the way back; 0 where the slope closes nothing.
    """

    name: str
    indptr: np.ndarray
    indices: np.ndarray
    length_m: np.ndarray
    time_s: np.ndarray
    rindptr: np.ndarray
    rindices: np.ndarray
    rlength_m: np.ndarray
    rtime_s: np.ndarray
    piece_fwd: np.ndarray
    piece_bwd: np.ndarray
    piece_time_s: np.ndarray
    piece_time_bwd_s: np.ndarray
    piece_speed_mps: np.ndarray
    piece_unknown: np.ndarray
    arc_piece: np.ndarray
    piece_grade: np.ndarray
    piece_slope_closed: np.ndarray

    @property
    def piece_usable(self) -> np.ndarray:
        """Boolean mask of the road pieces this profile may use in at least one direction."""
        return self.piece_fwd | self.piece_bwd

    def arc_cost(self, weight: Weight, *, reverse: bool = False) -> np.ndarray:
        """Return the arc cost array for ``weight`` (``"length"`` in m or ``"travel_time"`` in s)."""
        name = _WEIGHT_TO_FIELD[weight]
        return getattr(self, ("r" if reverse else "") + name)

    def csr(self, weight: Weight, *, reverse: bool = False) -> sp.csr_matrix:
        """Return the arcs as an ``n × n`` scipy CSR matrix of ``weight`` costs (explicit zeros are arcs)."""
        n = len(self.indptr) - 1
        if reverse:
            parts = (self.arc_cost(weight, reverse=True), self.rindices, self.rindptr)
        else:
            parts = (self.arc_cost(weight), self.indices, self.indptr)
        return sp.csr_matrix(parts, shape=(n, n))


@dataclass(frozen=True, eq=False)
class PreparedNetwork:
    """A road network as numpy arrays: nodes, road pieces with geometry, and one CSR per profile.

    A *road piece* is one undirected stretch of road between two graph nodes (an osmnx edge and,
    for two-way roads, its reverse counted once); it carries the polyline used for snapping.

    Parameters
    ----------
    crs
        The projected CRS of every coordinate (metres), as a string.
    node_id
        OSM node id per node position.
    node_x, node_y
        Node coordinates in ``crs`` (metres).
    piece_u, piece_v
        Node positions at the start and end of each road piece (the direction of its polyline).
    piece_length_m
        Network length of each piece (the osmnx ``length`` attribute), metres.
    piece_highway
        OSM ``highway`` class of each piece as fixed-width text (``geo.profiles.highway_class``: a
        merged edge takes its most important class; ``_link`` kept); ``""`` where the edge had none.
    piece_name
        OSM ``name`` (street name) of each piece; ``""`` where untagged, names joined by ``"; "``
        where an osmnx edge merged several.
    piece_coord_ptr, piece_coords
        Polyline vertices of piece ``p``: ``piece_coords[piece_coord_ptr[p]:piece_coord_ptr[p + 1]]``
        (``k × 2`` array of x, y in ``crs``).
    node_elevation_m
        Elevation of each node from the DEM (``geo.dem``); NaN without a DEM or outside it.
    piece_grade
        Gradient of each piece from ``piece_u`` to ``piece_v`` (rise over length); NaN without elevations.
    profiles
        ``ProfileGraph`` per profile name.
    """

    crs: str
    node_id: np.ndarray
    node_x: np.ndarray
    node_y: np.ndarray
    piece_u: np.ndarray
    piece_v: np.ndarray
    piece_length_m: np.ndarray
    piece_highway: np.ndarray
    piece_name: np.ndarray
    piece_coord_ptr: np.ndarray
    piece_coords: np.ndarray
    node_elevation_m: np.ndarray
    piece_grade: np.ndarray
    profiles: Mapping[str, ProfileGraph]

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_id)

    @property
    def n_pieces(self) -> int:
        """Number of road pieces."""
        return len(self.piece_u)

    def profile(self, name: str) -> ProfileGraph:
        """Return the arcs of profile ``name``.

        Raises
        ------
        KeyError
            If the network was not prepared for that profile.
        """
        if name not in self.profiles:
            msg = f"`profile` {name!r} was not prepared; prepared profiles: {sorted(self.profiles)!r}."
            raise KeyError(msg)
        return self.profiles[name]

    @cached_property
    def search_rank(self) -> np.ndarray:
        """Position of each node in Hilbert-curve order of its coordinates (read-only, built once).

        Searches run over nodes renumbered in this order: nodes near each other on the ground sit
        near each other in memory, which makes the shortest-path search faster (fewer cache misses).
        """
        order = np.argsort(_hilbert_key(self.node_x, self.node_y), kind="stable")
        rank = np.empty(self.n_nodes, np.int32)
        rank[order] = np.arange(self.n_nodes, dtype=np.int32)
        return _frozen(rank, np.int32)

    @cached_property
    def _search_graphs(self) -> dict[tuple[str, str, bool], tuple[np.ndarray, np.ndarray, np.ndarray]]:
        return {}

    def search_graph(self, profile: str, weight: Weight, *, reverse: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the CSR (indptr, indices, costs) of a profile's arcs over ``search_rank`` positions.

        Row ``search_rank[i]`` holds the arcs of node ``i`` (reversed when ``reverse``), with
        ``weight`` costs; built on first use and kept. Raises ``KeyError`` for an unprepared profile.
        """
        key = (profile, weight, reverse)
        if key not in self._search_graphs:
            pg = self.profile(profile)
            indptr = pg.rindptr if reverse else pg.indptr
            rank = self.search_rank
            row = rank[np.repeat(np.arange(self.n_nodes), np.diff(indptr))]
            col = rank[pg.rindices if reverse else pg.indices]
            order = np.lexsort((col, row))  # explicit zero costs stay arcs
            new_ptr = np.r_[0, np.cumsum(np.bincount(row, minlength=self.n_nodes))]
            self._search_graphs[key] = (
                _frozen(new_ptr, np.int32),
                _frozen(col[order], np.int32),
                _frozen(pg.arc_cost(weight, reverse=reverse)[order], np.float64),
            )
        return self._search_graphs[key]

    @cached_property
    def _pendant_trees(self) -> dict[tuple, object]:
        return {}

    def _peeled(self, profile: str, weight: Weight) -> PendantTrees:
        """Pendant trees over ``search_rank`` positions, built on first use and kept."""
        from geo.reduction import peel_pendant_trees

        key = ("search", profile, weight)
        if key not in self._pendant_trees:
            self._pendant_trees[key] = peel_pendant_trees(*self.search_graph(profile, weight, reverse=False))
        return self._pendant_trees[key]

    def pendant_trees(self, profile: str, weight: Weight) -> PendantTrees:
        """Return the pendant trees of a profile's arcs (``geo.reduction``) over node positions.

        Core index ``j`` (``core[j]``) is row ``j`` of ``search_core``; built on first use and kept.
        Raises ``KeyError`` for an unprepared profile.
        """
        key = ("nodes", profile, weight)
        if key not in self._pendant_trees:
            node_of_rank = np.argsort(self.search_rank).astype(np.int32)
            self._pendant_trees[key] = self._peeled(profile, weight).relabelled(node_of_rank)
        return self._pendant_trees[key]

    def search_core(self, profile: str, weight: Weight, *, reverse: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the CSR (indptr, indices, costs) of ``search_graph`` restricted to the core of ``pendant_trees``.

        Row ``j`` is node ``pendant_trees(profile, weight).core[j]``; rows follow ``search_rank``
        order. Built on first use and kept.
        """
        from geo.reduction import core_graph

        key = ("core", profile, weight, reverse)
        if key not in self._pendant_trees:
            trees = self._peeled(profile, weight)
            self._pendant_trees[key] = core_graph(*self.search_graph(profile, weight, reverse=reverse), trees)
        return self._pendant_trees[key]

    def search_core_pass_through(self, profile: str, weight: Weight) -> np.ndarray:
        """Per row of ``search_core``: whether a search may pass through it (``geo.dijkstra.pass_through_nodes``).

        The same for both directions (such nodes have mirrored arcs of equal cost); built on first
        use and kept.
        """
        from geo.dijkstra import pass_through_nodes

        key = ("through", profile, weight)
        if key not in self._pendant_trees:
            through = pass_through_nodes(*self.search_core(profile, weight, reverse=True))
            self._pendant_trees[key] = _frozen(through, np.bool_)
        return self._pendant_trees[key]

    def save(self, path: str | Path) -> None:
        """Write the arrays to an uncompressed ``.npz`` file at ``path``."""
        arrays: dict[str, np.ndarray] = {}
        for f in fields(self):
            if f.name in ("crs", "profiles"):
                continue
            arrays[f.name] = getattr(self, f.name)
        for name, pg in self.profiles.items():
            for f in fields(pg):
                if f.name != "name":
                    arrays[f"profile/{name}/{f.name}"] = getattr(pg, f.name)
        meta = {"format": CACHE_FORMAT, "crs": self.crs, "profiles": list(self.profiles)}
        arrays["meta"] = np.array(json.dumps(meta))
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> PreparedNetwork:
        """Read a network written by ``save``.

        Raises
        ------
        NetworkError
            If the file was written in another cache format.
        """
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != CACHE_FORMAT:
                msg = (
                    f"Prepared network {str(path)!r} has cache format {meta.get('format')!r}, "
                    f"expected {CACHE_FORMAT}; delete it to rebuild."
                )
                raise NetworkError(msg)
            profiles = {}
            for name in meta["profiles"]:
                kw = {f.name: _frozen_like(z[f"profile/{name}/{f.name}"]) for f in fields(ProfileGraph)[1:]}
                profiles[name] = ProfileGraph(name=name, **kw)
            kw = {f.name: _frozen_like(z[f.name]) for f in fields(cls) if f.name not in ("crs", "profiles")}
        return cls(crs=meta["crs"], profiles=MappingProxyType(profiles), **kw)


def _hilbert_key(x: np.ndarray, y: np.ndarray, bits: int = 16) -> np.ndarray:
    """Return each point's distance along a Hilbert curve over the points' bounding box."""
    scale = (1 << bits) - 1
    xi = np.round((x - x.min()) / max(np.ptp(x), 1e-9) * scale).astype(np.int64)
    yi = np.round((y - y.min()) / max(np.ptp(y), 1e-9) * scale).astype(np.int64)
    key = np.zeros(len(x), np.int64)
    s = 1 << (bits - 1)
    while s:
        rx = (xi & s) > 0
        ry = (yi & s) > 0
        key += s * s * ((3 * rx) ^ ry)
        # rotate the quadrant so the curve stays continuous
        flip = ~ry & rx
        xi = np.where(flip, s - 1 - xi, xi)
        yi = np.where(flip, s - 1 - yi, yi)
        xi, yi = np.where(~ry, yi, xi), np.where(~ry, xi, yi)
        s >>= 1
    return key


def _frozen_like(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def prepare_network(G: nx.MultiDiGraph, *, profiles: Mapping[str, Profile], dem: Dem | None = None) -> PreparedNetwork:
    """Compile a projected osmnx graph into a ``PreparedNetwork`` for ``profiles``.

    Parameters
    ----------
    G
        osmnx MultiDiGraph in a projected CRS (``G.graph["crs"]``, metres); nodes carry ``x``, ``y``;
        edges carry ``length`` (m), ``highway`` and optionally ``geometry`` (a LineString from u to v).
        Edges without ``highway`` are kept for no profile.
    profiles
        Travel profiles by name (``geo.profiles.load_profiles()``). A profile with
        ``respect_oneway=False`` may travel every road piece both ways (unless a slope stops it).
    dem
        Elevations (``geo.dem.read_dem``) for the profiles' slope models; None for flat costs.
        The graph carries no accessibility tags: every attribute a profile's rules read is unknown.

    Returns
    -------
    PreparedNetwork
        Arrays in the CRS of ``G``; the input graph is not changed.

    Raises
    ------
    NetworkError
        If ``G`` has no CRS, a geographic CRS, no nodes, or an edge without ``length``.
    """
    crs = G.graph.get("crs")
    if crs is None or not pyproj.CRS(crs).is_projected:
        msg = (
            f"`G` must be in a projected CRS (metres); got {crs!r}. "
            "Project it first with `osmnx.projection.project_graph(G, to_crs=...)`."
        )
        raise NetworkError(msg)
    if len(G) == 0:
        msg = "`G` has no nodes; check the extract and its boundary."
        raise NetworkError(msg)
    crs_str = pyproj.CRS(crs).to_string()
    node_id = np.fromiter(G.nodes, dtype=np.int64, count=len(G))
    pos = {n: i for i, n in enumerate(node_id.tolist())}
    node_x = np.fromiter((x for _, x in G.nodes(data="x")), np.float64, count=len(G))
    node_y = np.fromiter((y for _, y in G.nodes(data="y")), np.float64, count=len(G))
    u, v, length, highway, name, fwd_osm, bwd_osm, coord_ptr, coords = _collect_pieces(G, pos, node_x, node_y)
    classes = ["" if hw is None else highway_class(hw) for hw in highway]
    pieces = _Pieces(u, v, length, highway, classes, name, fwd_osm, bwd_osm, coord_ptr, coords)
    return _assemble(crs_str, node_id, node_x, node_y, pieces, profiles, dem)


def prepare_roads(
    roads: RoadNetwork, *, crs: str, profiles: Mapping[str, Profile], dem: Dem | None = None
) -> PreparedNetwork:
    """Compile the road pieces of an OSM file (``geo.osm.read_roads``) into a ``PreparedNetwork``.

    No networkx graph is built: coordinates are projected to ``crs`` with pyproj and the arrays
    are compiled as :func:`prepare_network` does for an osmnx graph (one-way pieces forward only
    for profiles that respect one-way rules).

    Parameters
    ----------
    roads
        Road pieces in EPSG:4326.
    crs
        Projected CRS (metres), e.g. the district's ``"EPSG:32648"``.
    profiles
        Travel profiles by name; their access rules read ``roads.piece_tags``.
    dem
        Elevations (``geo.dem.read_dem``) for the profiles' slope models; None for flat costs.

    Returns
    -------
    PreparedNetwork

    Raises
    ------
    NetworkError
        If ``crs`` is not projected or ``roads`` has no nodes.
    """
    target = pyproj.CRS(crs)
    if not target.is_projected:
        msg = f"`crs` must be a projected CRS (metres); got {crs!r}. Use the district's `projected_crs`."
        raise NetworkError(msg)
    if roads.n_nodes == 0:
        msg = f"Road network {roads.source!r} has no nodes; check the extract and its boundary."
        raise NetworkError(msg)
    to_crs = pyproj.Transformer.from_crs("EPSG:4326", target, always_xy=True)
    node_x, node_y = to_crs.transform(roads.node_lon, roads.node_lat)
    cx, cy = to_crs.transform(roads.piece_coords[:, 0], roads.piece_coords[:, 1])
    highway = roads.piece_highway.tolist()
    pieces = _Pieces(
        u=roads.piece_u,
        v=roads.piece_v,
        length=roads.piece_length_m,
        highway=highway,
        classes=highway,
        name=roads.piece_name.tolist(),
        fwd=np.ones(roads.n_pieces, bool),
        bwd=~roads.piece_oneway,
        coord_ptr=roads.piece_coord_ptr,
        coords=np.column_stack([cx, cy]),
        tags=roads.piece_tags,
    )
    node_x, node_y = np.asarray(node_x), np.asarray(node_y)
    return _assemble(target.to_string(), roads.node_id, node_x, node_y, pieces, profiles, dem)


@dataclass(frozen=True)
class _Pieces:
    """Road pieces before compiling: ends, length, tags, allowed directions and polyline.

    ``highway`` is the tag as the edge holds it (osmnx may list several), ``classes`` one class each.
    """

    u: np.ndarray
    v: np.ndarray
    length: np.ndarray
    highway: list
    classes: list[str]
    name: list[str]
    fwd: np.ndarray
    bwd: np.ndarray
    coord_ptr: np.ndarray
    coords: np.ndarray
    tags: Mapping[str, np.ndarray] = field(default_factory=dict)


def _assemble(
    crs_str, node_id, node_x, node_y, pieces: _Pieces, profiles: Mapping[str, Profile], dem: Dem | None = None
) -> PreparedNetwork:
    """Build every profile's arcs and the ``PreparedNetwork`` from road pieces in a projected CRS."""
    if dem is None:
        elevation = np.full(len(node_id), np.nan)
    else:
        elevation = dem.sample(node_x, node_y, crs_str)
        logger.info(
            "Elevations from %r for %d of %d nodes", dem.source, int(np.isfinite(elevation).sum()), len(node_id)
        )
    grade = piece_grades(elevation, pieces.u, pieces.v, pieces.length)
    built = {name: _profile_graph(name, profile, pieces, grade, len(node_id)) for name, profile in profiles.items()}
    net = PreparedNetwork(
        crs=crs_str,
        node_id=_frozen(node_id, np.int64),
        node_x=_frozen(node_x, np.float64),
        node_y=_frozen(node_y, np.float64),
        piece_u=_frozen(pieces.u, np.int64),
        piece_v=_frozen(pieces.v, np.int64),
        piece_length_m=_frozen(pieces.length, np.float64),
        piece_highway=_frozen(_fixed_width(pieces.classes), np.str_),
        piece_name=_frozen(_fixed_width(pieces.name), np.str_),
        piece_coord_ptr=_frozen(pieces.coord_ptr, np.int64),
        piece_coords=_frozen(pieces.coords, np.float64),
        node_elevation_m=_frozen(elevation, np.float64),
        piece_grade=_frozen(grade, np.float64),
        profiles=MappingProxyType(built),
    )
    logger.info(
        "Prepared network with %s nodes, %s road pieces and profiles %s (%s)",
        f"{net.n_nodes:,}",
        f"{net.n_pieces:,}",
        ", ".join(f"{k}: {len(pg.indices):,} arcs" for k, pg in built.items()),
        crs_str,
    )
    return net


def _fixed_width(texts: list[str]) -> np.ndarray:
    """Return ``texts`` as a fixed-width unicode array (at least one character wide)."""
    return np.array(texts, dtype=f"<U{max([1, *map(len, texts)])}")


def _edge_name(value: object) -> str:
    """Return an osmnx edge ``name`` as text: a merged edge's names joined by ``"; "``, ``""`` for none."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(dict.fromkeys(str(v) for v in value))
    return ""


def _collect_pieces(G, pos, node_x, node_y):
    """Group osmnx edges into undirected road pieces; return their arrays.

    An edge and its reverse (same end nodes, length to 0.1 m, bounds to 1 cm and vertex count) are
    one two-way piece; any other edge is a one-way piece. Self-loops are never paired.
    """
    import pandas as pd

    ia, ib, length, highway, names, geoms = [], [], [], [], [], []
    for a, b, data in G.edges(data=True):
        if "length" not in data:
            msg = f"Edge ({a!r}, {b!r}) of `G` has no `length`; build the graph with osmnx, which sets it."
            raise NetworkError(msg)
        ia.append(pos[a])
        ib.append(pos[b])
        length.append(data["length"])
        highway.append(data.get("highway"))
        names.append(_edge_name(data.get("name")))
        geoms.append(data.get("geometry"))
    ia = np.array(ia, np.int64)
    ib = np.array(ib, np.int64)
    length = np.array(length, np.float64)
    geoms = np.array(geoms, dtype=object)
    missing = np.flatnonzero(pd.isna(geoms)) if len(geoms) else np.zeros(0, np.int64)
    if len(missing):
        ends = np.stack([node_x[ia[missing]], node_y[ia[missing]], node_x[ib[missing]], node_y[ib[missing]]], 1)
        geoms[missing] = shapely.linestrings(ends.reshape(-1, 2, 2))
    keys = pd.DataFrame(np.round(shapely.bounds(geoms), 2), columns=["x0", "y0", "x1", "y1"])
    keys["lo"], keys["hi"] = np.minimum(ia, ib), np.maximum(ia, ib)
    keys["len"] = np.round(length, 1)
    keys["n"] = shapely.get_num_coordinates(geoms)
    cols = list(keys.columns)
    canonical = ia < ib
    keys["rank"] = keys.groupby([*cols, canonical], sort=False).cumcount().to_numpy()
    keys["edge"] = np.arange(len(keys))
    left = keys[canonical]
    right = keys[ia > ib]
    pairs = left.merge(right, on=[*cols, "rank"], suffixes=("", "_rev"))
    paired_rev = np.zeros(len(keys), bool)
    paired_rev[pairs["edge_rev"].to_numpy()] = True
    has_rev = np.zeros(len(keys), bool)
    has_rev[pairs["edge"].to_numpy()] = True
    piece_edges = np.flatnonzero(~paired_rev)
    pgeoms = geoms[piece_edges]
    counts = shapely.get_num_coordinates(pgeoms)
    coord_ptr = np.zeros(len(piece_edges) + 1, np.int64)
    np.cumsum(counts, out=coord_ptr[1:])
    coords = shapely.get_coordinates(pgeoms) if len(pgeoms) else np.zeros((0, 2))
    return (
        ia[piece_edges],
        ib[piece_edges],
        length[piece_edges],
        [highway[e] for e in piece_edges.tolist()],
        [names[e] for e in piece_edges.tolist()],
        np.ones(len(piece_edges), bool),
        has_rev[piece_edges],
        coord_ptr,
        coords,
    )


def _profile_graph(name: str, profile: Profile, pieces: _Pieces, grade: np.ndarray, n: int) -> ProfileGraph:
    """Build one profile's arcs from the road pieces: class speed, access tags, slope each way."""
    u, v, length = pieces.u, pieces.v, pieces.length
    speed = np.full(len(u), np.nan)  # km/h on the flat
    cache: dict = {}
    for p, hw in enumerate(pieces.highway):
        if hw is None:
            continue
        key = hw if isinstance(hw, str) else tuple(hw)
        if key not in cache:
            t = travel_time_s(1000.0, hw, profile)
            cache[key] = np.nan if t is None else 3600.0 / t
        speed[p] = cache[key]
    access = access_costs(profile, pieces.classes, pieces.tags, np.isfinite(grade))
    speed = np.where(np.isnan(access.speed_kph), speed, access.speed_kph)
    usable = ~np.isnan(speed) & ~access.excluded
    flat_mps = np.where(usable, speed / 3.6 / access.factor, np.nan)
    if profile.slope is None:
        share_fwd = share_bwd = np.ones(len(u))
    else:  # a gradient from the piece's `incline` tag wins over the DEM's (a ramp is shorter than a cell)
        grade = np.where(np.isnan(access.grade), grade, access.grade)
        share_fwd, share_bwd = profile.slope.speed_share(grade), profile.slope.speed_share(-grade)
    if profile.respect_oneway:
        fwd, bwd = pieces.fwd & usable, pieces.bwd & usable
    else:
        fwd, bwd = usable.copy(), usable.copy()
    slope_closed = (fwd & (share_fwd <= 0)).astype(np.int8) | ((bwd & (share_bwd <= 0)).astype(np.int8) << 1)
    fwd &= share_fwd > 0
    bwd &= share_bwd > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        time_fwd = np.where(fwd, length / (flat_mps * share_fwd), np.nan)
        time_bwd = np.where(bwd, length / (flat_mps * share_bwd), np.nan)
    piece = np.arange(len(u))
    src = np.concatenate([u[fwd], v[bwd]])
    dst = np.concatenate([v[fwd], u[bwd]])
    arc_len = np.concatenate([length[fwd], length[bwd]])
    arc_time = np.concatenate([time_fwd[fwd], time_bwd[bwd]])
    arc_piece = np.concatenate([piece[fwd], piece[bwd]])
    keep = src != dst
    csr = _merge_arcs(src[keep], dst[keep], arc_len[keep], arc_time[keep], arc_piece[keep], n)
    rcsr = _merge_arcs(dst[keep], src[keep], arc_len[keep], arc_time[keep], arc_piece[keep], n)
    return ProfileGraph(
        name=name,
        indptr=_frozen(csr[0], np.int32),
        indices=_frozen(csr[1], np.int32),
        length_m=_frozen(csr[2], np.float64),
        time_s=_frozen(csr[3], np.float64),
        rindptr=_frozen(rcsr[0], np.int32),
        rindices=_frozen(rcsr[1], np.int32),
        rlength_m=_frozen(rcsr[2], np.float64),
        rtime_s=_frozen(rcsr[3], np.float64),
        piece_fwd=_frozen(fwd, bool),
        piece_bwd=_frozen(bwd, bool),
        piece_time_s=_frozen(time_fwd, np.float64),
        piece_time_bwd_s=_frozen(time_bwd, np.float64),
        piece_speed_mps=_frozen(flat_mps, np.float64),
        piece_unknown=_frozen(np.where(usable, access.unknown, 0), np.int64),
        arc_piece=_frozen(csr[4], np.int64),
        piece_grade=_frozen(grade if profile.slope is not None else np.full(len(u), np.nan), np.float64),
        piece_slope_closed=_frozen(slope_closed, np.int8),
    )


def _merge_arcs(src, dst, length, time, piece, n):
    """Sort arcs by (src, dst), keep the cheapest of parallel arcs per weight, return CSR arrays.

    The piece of each merged arc is the one of least time (the first of equal times in input order).
    """
    order = np.lexsort((time, dst, src))
    src, dst, length, time, piece = src[order], dst[order], length[order], time[order], piece[order]
    if len(src):
        first = np.r_[True, (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])]
        starts = np.flatnonzero(first)
        length = np.minimum.reduceat(length, starts)
        time, piece = time[starts], piece[starts]
        src, dst = src[starts], dst[starts]
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return indptr, dst, length, time, piece


def cache_key(
    source_path: str | Path, crs: str, profiles: Mapping[str, Profile], dem_path: str | Path | None = None
) -> str:
    """Return a hex digest of the source bytes, the profiles, the CRS, the DEM bytes and the cache format.

    The profiles count with their speeds, access rules, unknown policy and slope model.
    """
    h = hashlib.sha256(file_digest(source_path).encode())
    table = {
        name: {
            "speed_kph": dict(sorted(p.speed_kph.items())),
            "respect_oneway": p.respect_oneway,
            "access": repr(p.access),
            "slope": repr(p.slope),
        }
        for name, p in sorted(profiles.items())
    }
    dem = None if dem_path is None else file_digest(dem_path)
    key = {"profiles": table, "crs": pyproj.CRS(crs).to_string(), "dem": dem, "format": CACHE_FORMAT}
    h.update(json.dumps(key).encode())
    return h.hexdigest()


def load_or_prepare(
    source_path: str | Path,
    crs: str,
    profiles: Mapping[str, Profile],
    cache_dir: str | Path,
    *,
    build_graph: Callable[[Path], nx.MultiDiGraph | RoadNetwork],
    dem_path: str | Path | None = None,
) -> PreparedNetwork:
    """Load the prepared network for ``source_path`` from ``cache_dir``, or build and cache it.

    The cache file name holds a hash of the source file bytes, the profile table, ``crs`` and the
    DEM's bytes, so a changed file, profile, policy, CRS or DEM builds a new one.

    Parameters
    ----------
    source_path
        Road network file (e.g. OSM XML); only its bytes are read here, for the hash.
    crs
        Projected CRS to prepare in (e.g. ``"EPSG:32648"``).
    profiles
        Travel profiles by name.
    cache_dir
        Folder for ``.npz`` cache files (created if missing).
    build_graph
        Called with ``source_path`` on a cache miss; returns the road pieces of an OSM file
        (``geo.osm.read_roads``, compiled without networkx) or an osmnx MultiDiGraph (projected to
        ``crs`` here if it is in another CRS).
    dem_path
        GeoTIFF DEM (``dem`` in district.toml) for the profiles' slope models; None for flat costs.

    Returns
    -------
    PreparedNetwork
    """
    source_path = Path(source_path)
    cache_dir = Path(cache_dir)
    key = cache_key(source_path, crs, profiles, dem_path)
    path = cache_dir / f"{source_path.name.split('.')[0]}-{key[:20]}.npz"
    if path.exists():
        net = PreparedNetwork.load(path)
        logger.info("Loaded prepared network from %r", str(path))
        return net
    dem = None if dem_path is None else read_dem(dem_path)
    built = build_graph(source_path)
    if isinstance(built, RoadNetwork):
        net = prepare_roads(built, crs=crs, profiles=profiles, dem=dem)
    else:
        if pyproj.CRS(built.graph.get("crs", "EPSG:4326")) != pyproj.CRS(crs):
            import osmnx as ox

            built = ox.projection.project_graph(built, to_crs=crs)
        net = prepare_network(built, profiles=profiles, dem=dem)
    cache_dir.mkdir(parents=True, exist_ok=True)
    net.save(path)
    logger.info("Saved prepared network to %r", str(path))
    return net
