"""Generate a SYNTHETIC, reproducible road network for a district as OSM XML.

The network is a stand-in for real OSM data (which a user may load instead): seeded random, but shaped
like a hilly Chinese district. Arterial corridors join the town seats along the valley grain, street
grids fill the urban centres and a sparse web of rural lanes, tracks and paths reaches every village.

How it is built (all in a projected CRS, metres):

1. Corridors: the Delaunay triangulation of the seats gives candidate seat-to-seat roads. The minimum
   spanning tree under a cost that favours the valley grain (``grain_deg``) becomes trunk (aligned) and
   primary roads; other short, non-crossing seat links become primary (aligned) or secondary roads.
2. Urban grids: one square lattice aligned with the grain, kept inside each urban centre's irregular
   outline and away from the corridors; every fourth line is a named tertiary road, every eighth a
   secondary one, and the residential streets in between form one-way couplets.
3. Rural lanes: hamlet points (clustered along the grain, around villages and scattered) join the
   corridors, grids, villages and seats in one Delaunay triangulation. Its edges that stay inside the
   boundary and cross no corridor or grid street are candidates; their minimum spanning tree connects
   everything (trunks excluded, so walkers need no trunk), and a share of short extra edges makes loops.
   Lanes that carry many hamlets towards a seat become unclassified, the routes from the villages to
   their nearest seat tertiary, dead ends service roads, the rest tracks; loops are tracks, footways or
   steps (never needed for connectivity, so driving and wheelchair profiles stay connected).
4. Pass-through seats and villages get a short service spur (so they stay nodes after osmnx
   simplification) and a share of the pass-through hamlets a dead-end farm access.
5. One-way streets that break strong connectivity are made two-way again, and chains of edges with the
   same tags are merged into OSM ways. Ids are assigned in construction order: the same inputs and seed
   give byte-identical XML.
"""

from __future__ import annotations

import bz2
import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import quoteattr

import numpy as np
import pyproj
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra, minimum_spanning_tree
from scipy.spatial import Delaunay, cKDTree

from layers.schema import WGS84

if TYPE_CHECKING:
    import numpy.typing as npt

logger = logging.getLogger(__name__)

#: Generator name and format version written into the XML. It keeps the module's first name
#: (``geo.synthetic_roads``, now ``synthetic.roads``) so that the committed ``roads.osm.bz2`` stays byte-identical;
#: bump the version, not the name, when the output changes.
GENERATOR = "accessplan geo.synthetic_roads 1"

#: Highway classes by rank (lower = bigger road); way output is ordered by it.
HIGHWAY_CLASSES = (
    "trunk",
    "primary",
    "secondary",
    "tertiary",
    "unclassified",
    "residential",
    "service",
    "track",
    "footway",
    "steps",
)
_RANK = {h: i for i, h in enumerate(HIGHWAY_CLASSES)}

_NAME_FIRST = "璧金双青来凤丁大白东西南北文翠永和兴秀御剑黛茅龙虎狮鹤桂梅松竹福寿康宁泰安"
_NAME_SECOND = "山城泉湖林星峰阳华源溪河江岭园苑台桥塘坝堰湾屏门关"
_SUFFIX = {"trunk": "大道", "primary": "大道", "secondary": "路", "tertiary": "路", "residential": "街"}

_INSET_M = 25.0  # everything keeps this far inside the boundary
_CORRIDOR_STEP_M = 400.0  # vertex spacing along corridors
_MIN_GAP_M = 45.0  # minimum distance between two network points


def generate_road_network(
    boundary: shapely.Polygon | shapely.MultiPolygon,
    seats_xy: npt.ArrayLike,
    villages_xy: npt.ArrayLike,
    *,
    crs: str,
    urban_centres: npt.ArrayLike,
    seed: int,
    grain_deg: float = 20.0,
    grid_spacing_m: float = 140.0,
    hamlets_per_km2: float = 48.0,
    farm_share: float = 0.45,
) -> bytes:
    """Generate a SYNTHETIC road network and return it as OSM XML bytes (UTF-8).

    Parameters
    ----------
    boundary
        District outline in the projected ``crs`` (metres). Every road lies inside it.
    seats_xy
        Town seats, shape (n, 2), in ``crs``. Each is a road node, joined by the corridors.
    villages_xy
        Village points, shape (m, 2), in ``crs``; each becomes a road node of the network.
    crs
        Projected CRS (metres) of all inputs; output coordinates are WGS-84 lon/lat, 7 decimals.
    urban_centres
        Urban centres, shape (k, 3): x, y and radius in metres. Each gets a dense street grid.
    seed
        Seed of ``numpy.random.default_rng``; the same inputs and seed give byte-identical output.
    grain_deg
        Bearing (degrees clockwise from north) of the valley grain that corridors and grids follow.
    grid_spacing_m
        Street spacing of the urban grids, in metres.
    hamlets_per_km2
        Density of rural hamlet points, per km² of the boundary; drives the size of the network.
    farm_share
        Share of the pass-through hamlets that get a dead-end farm access (service, track or footway).

    Returns
    -------
    bytes
        OSM XML (version 0.6) whose root ``generator`` attribute and header comment say SYNTHETIC,
        the generator and the seed.

    Raises
    ------
    ValueError
        If ``crs`` is geographic, an array has the wrong shape or a seat or village lies outside.
    """
    if not pyproj.CRS.from_user_input(crs).is_projected:
        msg = f"`crs` must be a projected CRS (metres); got {crs!r}. Use the district's `projected_crs`."
        raise ValueError(msg)
    seats = _as_xy(seats_xy, "seats_xy")
    villages = _as_xy(villages_xy, "villages_xy")
    centres = np.asarray(urban_centres, dtype=np.float64).reshape(-1, 3)
    if len(seats) == 0:
        msg = "`seats_xy` must hold at least one seat; got none."
        raise ValueError(msg)
    inner = boundary.buffer(-_INSET_M)
    shapely.prepare(inner)
    outside = np.flatnonzero(~shapely.contains_xy(inner, *np.vstack([seats, villages]).T))
    if len(outside):
        msg = (
            f"Seats and villages must lie at least {_INSET_M:g} m inside `boundary`; "
            f"{len(outside)} do not (row positions in seats then villages: {outside[:10].tolist()!r})."
        )
        raise ValueError(msg)
    builder = _Builder(inner, np.random.default_rng(seed), math.radians(grain_deg), grid_spacing_m)
    builder.add_corridors(seats)
    builder.add_grids(centres)
    builder.add_rural(villages, hamlets_per_km2)
    builder.connect()
    builder.classify()
    builder.add_spurs()
    builder.add_farm_spurs(farm_share)
    builder.repair_oneways()
    xml = builder.to_osm_xml(crs, seed)
    logger.info(
        "Generated SYNTHETIC road network with %s nodes and %s edges (seed %d)",
        f"{builder.n_used_nodes:,}",
        f"{len(builder.edges):,}",
        seed,
    )
    return xml


def write_osm_bz2(xml: bytes, path: str | Path) -> Path:
    """Write OSM XML bytes to ``path`` compressed with bzip2 (level 9, byte-reproducible).

    Parameters
    ----------
    xml
        OSM XML as returned by :func:`generate_road_network`.
    path
        Output file, usually ending in ``.osm.bz2``.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    path = Path(path)
    path.write_bytes(bz2.compress(xml, compresslevel=9))
    logger.info(
        "Wrote %s bytes of OSM XML (%s compressed) to %r",
        f"{len(xml):,}",
        f"{path.stat().st_size:,}",
        str(path),
    )
    return path


def _as_xy(values: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 2))
    if arr.ndim != 2 or arr.shape[1] != 2:
        msg = f"`{name}` must have shape (n, 2) of projected x, y; got shape {arr.shape!r}."
        raise ValueError(msg)
    return arr


class _Builder:
    """Accumulate nodes (projected x, y) and edges with tags; private worker of the generator."""

    def __init__(self, inner: shapely.Geometry, rng: np.random.Generator, grain: float, spacing: float) -> None:
        self.inner = inner
        self.rng = rng
        self.grain = grain
        self.spacing = spacing
        self.along = np.array([math.sin(grain), math.cos(grain)])  # unit vector along the grain
        self.across = np.array([math.cos(grain), -math.sin(grain)])
        self.xy: list[tuple[float, float]] = []
        self.node_kind: list[str] = []
        # edges: (u, v, highway, name, oneway); oneway edges run u -> v
        self.edges: list[list[object]] = []
        self.corridor_lines: list[shapely.LineString] = []
        self.zone: shapely.Geometry = shapely.GeometryCollection()
        self.names = self._name_pool()
        self.n_used_nodes = 0

    # -- helpers ---------------------------------------------------------------------------------------
    def _name_pool(self) -> list[str]:
        pool = [a + b for a in _NAME_FIRST for b in _NAME_SECOND if a != b]
        order = self.rng.permutation(len(pool))
        return [pool[i] for i in order]

    def _next_name(self, highway: str) -> str:
        stem = self.names.pop() if self.names else f"{len(self.edges)}号"
        return stem + _SUFFIX.get(highway, "路")

    def _add_node(self, x: float, y: float, kind: str) -> int:
        self.xy.append((float(x), float(y)))
        self.node_kind.append(kind)
        return len(self.xy) - 1

    def _add_edge(self, u: int, v: int, highway: str, name: str = "", *, oneway: bool = False) -> None:
        if u != v:
            self.edges.append([u, v, highway, name, oneway])

    def _coords(self) -> npt.NDArray[np.float64]:
        return np.asarray(self.xy, dtype=np.float64).reshape(-1, 2)

    def _grain_cost(self, dx: npt.NDArray[np.float64], dy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Length times a penalty for running across the grain (0 along, up to +80 % across)."""
        length = np.hypot(dx, dy)
        cos_along = np.abs(dx * self.along[0] + dy * self.along[1]) / np.maximum(length, 1e-9)
        return length * (1.0 + 0.8 * np.sqrt(np.clip(1.0 - cos_along**2, 0.0, 1.0)))

    # -- 1. corridors ----------------------------------------------------------------------------------
    def add_corridors(self, seats: npt.NDArray[np.float64]) -> None:
        self.seat_nodes = [self._add_node(x, y, "seat") for x, y in seats]
        pairs = _seat_pairs(seats)
        if not pairs:
            return
        a = seats[[i for i, _ in pairs]]
        b = seats[[j for _, j in pairs]]
        cost = self._grain_cost(*(b - a).T)
        n = len(seats)
        graph = coo_matrix((cost, ([i for i, _ in pairs], [j for _, j in pairs])), shape=(n, n))
        mst = minimum_spanning_tree(graph).tocoo()
        in_tree = {(min(i, j), max(i, j)) for i, j in zip(mst.row, mst.col, strict=True)}
        lengths = np.hypot(*(b - a).T)
        limit = 1.3 * max((lengths[k] for k, p in enumerate(pairs) if p in in_tree), default=0.0)
        order = sorted(range(len(pairs)), key=lambda k: (pairs[k] not in in_tree, cost[k], pairs[k]))
        accepted: list[shapely.LineString] = []
        for k in order:
            i, j = pairs[k]
            tree = pairs[k] in in_tree
            if not tree and lengths[k] > limit:
                continue
            line = self._corridor_line(seats[i], seats[j])
            if line is None:
                continue
            if any(line.crosses(other) for other in accepted):
                continue
            accepted.append(line)
            dx, dy = seats[j] - seats[i]
            aligned = abs(dx * self.along[0] + dy * self.along[1]) >= math.cos(math.radians(35)) * lengths[k]
            highway = ("trunk" if aligned else "primary") if tree else ("primary" if aligned else "secondary")
            self._add_polyline(line, self.seat_nodes[i], self.seat_nodes[j], highway, self._next_name(highway))
        self.corridor_lines = accepted

    def _corridor_line(self, a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> shapely.LineString | None:
        length = float(np.hypot(*(b - a)))
        steps = max(1, math.ceil(length / _CORRIDOR_STEP_M))
        t = np.linspace(0.0, 1.0, steps + 1)
        normal = np.array([-(b - a)[1], (b - a)[0]]) / max(length, 1e-9)
        amp1, amp2 = self.rng.normal(0.0, 0.035 * length, size=2)
        for scale in (1.0, 0.5, 0.0):
            offset = scale * (amp1 * np.sin(np.pi * t) + 0.5 * amp2 * np.sin(2 * np.pi * t))
            pts = a + np.outer(t, b - a) + np.outer(offset, normal)
            line = shapely.LineString(pts)
            if self.inner.contains(line):
                return line
        return None

    def _add_polyline(self, line: shapely.LineString, start: int, end: int, highway: str, name: str) -> None:
        coords = np.asarray(line.coords)
        nodes = [start] + [self._add_node(x, y, "corridor") for x, y in coords[1:-1]] + [end]
        for u, v in zip(nodes[:-1], nodes[1:], strict=True):
            self._add_edge(u, v, highway, name)

    # -- 2. urban grids --------------------------------------------------------------------------------
    def add_grids(self, centres: npt.NDArray[np.float64]) -> None:
        if len(centres) == 0:
            return
        shapes = []
        for x, y, radius in centres:
            phi = np.linspace(0.0, 2 * np.pi, 72, endpoint=False)
            p1, p2 = self.rng.uniform(0.0, 2 * np.pi, size=2)
            r = radius * (1.0 + 0.15 * np.sin(2 * phi + p1) + 0.1 * np.sin(3 * phi + p2))
            shapes.append(shapely.Polygon(np.column_stack([x + r * np.sin(phi), y + r * np.cos(phi)])))
        self.zone = shapely.union_all(shapes).intersection(self.inner)
        shapely.prepare(self.zone)
        origin = centres[0, :2]
        s = self.spacing
        # lattice coordinates (i across, j along) covering the zone's extent
        corners = np.asarray(shapely.envelope(self.zone).exterior.coords) - origin
        ci, cj = corners @ self.across / s, corners @ self.along / s
        i_range = np.arange(math.floor(ci.min()) - 1, math.ceil(ci.max()) + 2)
        j_range = np.arange(math.floor(cj.min()) - 1, math.ceil(cj.max()) + 2)
        ii, jj = np.meshgrid(i_range, j_range, indexing="ij")
        ii, jj = ii.ravel(), jj.ravel()
        pts = origin + np.outer(ii * s, self.across) + np.outer(jj * s, self.along)
        keep = shapely.contains_xy(self.zone, pts[:, 0], pts[:, 1])
        if self.corridor_lines:
            corridors = shapely.MultiLineString(self.corridor_lines)
            near = shapely.dwithin(corridors, shapely.points(pts), 0.55 * s)
            keep &= ~near
        index = {}
        for i, j, (x, y) in zip(ii[keep], jj[keep], pts[keep], strict=True):
            index[(int(i), int(j))] = self._add_node(x, y, "grid")
        names: dict[tuple[str, int], str] = {}
        candidates = []
        for (i, j), u in index.items():
            # a street along the grain (constant i) and one across it (constant j)
            for key, v, line_no in (("i", index.get((i, j + 1)), i), ("j", index.get((i + 1, j)), j)):
                if v is None:
                    continue
                highway, oneway_dir = _grid_class(line_no)
                if highway != "residential" or line_no % 2 == 0:
                    name = names.setdefault((key, line_no), self._next_name(highway))
                else:
                    name = ""
                a, b = (u, v) if oneway_dir >= 0 else (v, u)
                candidates.append((a, b, highway, name, oneway_dir != 0))
        lines = _segments(self._coords(), [(a, b) for a, b, *_ in candidates])
        ok = shapely.contains(self.inner, lines)
        if self.corridor_lines:
            tree = shapely.STRtree(self._corridor_segments())
            crossing = tree.query(lines, predicate="crosses")[0]
            ok[crossing] = False
        for (a, b, highway, name, oneway), good in zip(candidates, ok, strict=True):
            if good:
                self._add_edge(a, b, highway, name, oneway=oneway)

    def _corridor_segments(self) -> npt.NDArray[np.object_]:
        coords = self._coords()
        pairs = [
            (u, v)
            for u, v, h, *_ in self.edges
            if h in ("trunk", "primary", "secondary") and self.node_kind[u] != "grid"
        ]
        return _segments(coords, pairs)

    # -- 3. rural lanes --------------------------------------------------------------------------------
    def add_rural(self, villages: npt.NDArray[np.float64], hamlets_per_km2: float) -> None:
        self.village_nodes = [self._add_node(x, y, "village") for x, y in villages]
        hamlets = self._draw_hamlets(villages, hamlets_per_km2)
        for x, y in hamlets:
            self._add_node(x, y, "hamlet")
        coords = self._coords()
        kinds = np.asarray(self.node_kind)
        tri = Delaunay(coords)
        simplices = np.sort(tri.simplices, axis=1)
        n = len(coords)
        keys = np.unique(np.concatenate([simplices[:, [0, 1]], simplices[:, [1, 2]], simplices[:, [0, 2]]]) @ [n, 1])
        pairs = np.column_stack([keys // n, keys % n])
        fixed = np.array([(min(u, v), max(u, v)) for u, v, *_ in self.edges], dtype=np.int64).reshape(-1, 2)
        ku, kv = kinds[pairs[:, 0]], kinds[pairs[:, 1]]
        drop = ((ku == "grid") & (kv == "grid")) | (
            np.isin(ku, ["corridor", "seat"]) & np.isin(kv, ["corridor", "seat"])
        )
        drop |= np.isin(keys, fixed @ [n, 1])
        pairs = pairs[~drop]
        lengths = np.hypot(*(coords[pairs[:, 1]] - coords[pairs[:, 0]]).T)
        pairs, lengths = pairs[lengths < 3000.0], lengths[lengths < 3000.0]
        lines = _segments(coords, pairs)
        ok = shapely.contains(self.inner, lines)
        fixed_lines = _segments(coords, [(u, v) for u, v, *_ in self.edges])
        if len(fixed_lines):
            crossing = shapely.STRtree(fixed_lines).query(lines, predicate="crosses")[0]
            ok[crossing] = False
        self.candidates = pairs[ok]
        self.candidate_lengths = lengths[ok]

    def _draw_hamlets(self, villages: npt.NDArray[np.float64], per_km2: float) -> npt.NDArray[np.float64]:
        rng = self.rng
        total = int(per_km2 * self.inner.area / 1e6)
        n_uniform = total * 3 // 10
        n_village = total * 2 // 10 if len(villages) else 0
        n_cluster = total - n_uniform - n_village
        parts = [self._uniform_inside(n_uniform)]
        if n_village:
            centre = villages[rng.integers(0, len(villages), size=n_village)]
            parts.append(centre + self._grain_noise(n_village, 500.0, 250.0))
        n_clusters = max(1, n_cluster // 15)
        cluster_centres = self._uniform_inside(n_clusters)
        members = cluster_centres[rng.integers(0, n_clusters, size=n_cluster)]
        parts.append(members + self._grain_noise(n_cluster, 450.0, 200.0))
        pts = np.vstack(parts)
        keep = shapely.contains_xy(self.inner, pts[:, 0], pts[:, 1])
        if not self.zone.is_empty:
            keep &= ~shapely.dwithin(self.zone, shapely.points(pts), 0.5 * self.spacing)
        if self.corridor_lines:
            keep &= ~shapely.dwithin(shapely.MultiLineString(self.corridor_lines), shapely.points(pts), 60.0)
        pts = pts[keep]
        # thin: drop points closer than the minimum gap to an existing node or an earlier hamlet
        existing = self._coords()
        if len(existing):
            d, _ = cKDTree(existing).query(pts, k=1)
            pts = pts[d >= _MIN_GAP_M]
        drop = set()
        for a, b in sorted(cKDTree(pts).query_pairs(_MIN_GAP_M)):
            if a not in drop:
                drop.add(b)
        return pts[np.setdiff1d(np.arange(len(pts)), np.fromiter(drop, dtype=np.int64, count=len(drop)))]

    def _uniform_inside(self, n: int) -> npt.NDArray[np.float64]:
        """Draw ``n`` uniform points inside the boundary (rejection sampling, in batches)."""
        minx, miny, maxx, maxy = self.inner.bounds
        found = np.zeros((0, 2))
        while len(found) < n:
            pts = self.rng.uniform((minx, miny), (maxx, maxy), size=(2 * n, 2))
            found = np.vstack([found, pts[shapely.contains_xy(self.inner, pts[:, 0], pts[:, 1])]])
        return found[:n]

    def _grain_noise(self, n: int, sigma_along: float, sigma_across: float) -> npt.NDArray[np.float64]:
        z = self.rng.normal(size=(n, 2))
        return np.outer(z[:, 0] * sigma_along, self.along) + np.outer(z[:, 1] * sigma_across, self.across)

    def connect(self) -> None:
        """Choose rural lanes: spanning tree of the candidates (trunks costly) plus short loop edges."""
        coords = self._coords()
        n = len(coords)
        cand = self.candidates
        cost = self._grain_cost(*(coords[cand[:, 1]] - coords[cand[:, 0]]).T) * self.rng.uniform(0.85, 1.15, len(cand))
        fixed = np.array([(u, v) for u, v, *_ in self.edges], dtype=np.int64).reshape(-1, 2)
        fixed_len = np.hypot(*(coords[fixed[:, 1]] - coords[fixed[:, 0]]).T) if len(fixed) else np.zeros(0)
        fixed_cost = np.array(
            [3.0 * ln if h == "trunk" else 1e-3 for (_, _, h, *_), ln in zip(self.edges, fixed_len, strict=True)]
        )
        rows = np.concatenate([fixed[:, 0], cand[:, 0]])
        cols = np.concatenate([fixed[:, 1], cand[:, 1]])
        weights = np.concatenate([fixed_cost, cost])
        # symmetric duplicates (u, v)/(v, u) are summed by scipy: orient every pair u < v first
        lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
        graph = coo_matrix((weights, (lo, hi)), shape=(n, n)).tocsr()
        mst = minimum_spanning_tree(graph).tocoo()
        tree_keys = np.minimum(mst.row, mst.col).astype(np.int64) * n + np.maximum(mst.row, mst.col)
        is_tree = np.isin(cand[:, 0] * n + cand[:, 1], tree_keys)
        in_zone = self._in_zone(coords)
        urban = in_zone[cand[:, 0]] & in_zone[cand[:, 1]]
        draws = self.rng.random(len(cand))
        # grid edges meet the rural lanes more often than lanes meet each other
        kinds = np.asarray(self.node_kind)
        loop_share = np.where((kinds[cand[:, 0]] == "grid") | (kinds[cand[:, 1]] == "grid"), 0.6, 0.22)
        length = self.candidate_lengths
        is_loop = ~is_tree & ((urban & (length <= 1.3 * self.spacing)) | ((length < 350.0) & (draws < loop_share)))
        chosen_tree = [(int(u), int(v)) for u, v in cand[is_tree]]
        chosen_loop = [(int(u), int(v)) for u, v in cand[is_loop]]
        self.tree_edges = chosen_tree
        self.loop_edges = chosen_loop
        self._join_components(coords)

    def _join_components(self, coords: npt.NDArray[np.float64]) -> None:
        """Link stray pieces holding a seat or village to the main network; drop the other pieces."""
        n = len(coords)
        pairs = np.array([(u, v) for u, v, *_ in self.edges] + self.tree_edges, dtype=np.int64).reshape(-1, 2)
        graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        _, labels = connected_components(graph, directed=False)
        main = labels[self.seat_nodes[0]]
        needed = sorted({int(labels[k]) for k in self.seat_nodes + self.village_nodes} - {int(main)})
        if needed:
            main_nodes = np.flatnonzero(labels == main)
            tree = cKDTree(coords[main_nodes])
            for label in needed:
                members = np.flatnonzero(labels == label)
                dist, idx = tree.query(coords[members])
                best = int(np.argmin(dist))
                u, v = int(members[best]), int(main_nodes[idx[best]])
                self.tree_edges.append((min(u, v), max(u, v)))
                labels[members] = main
            logger.info("Linked %d separate piece(s) of the network to the main one", len(needed))
        keep = labels == main
        self.edges = [e for e in self.edges if keep[e[0]]]
        self.tree_edges = [(u, v) for u, v in self.tree_edges if keep[u]]
        self.loop_edges = [(u, v) for u, v in self.loop_edges if keep[u] and keep[v]]

    def _in_zone(self, coords: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        if self.zone.is_empty:
            return np.zeros(len(coords), dtype=bool)
        return shapely.dwithin(self.zone, shapely.points(coords), 0.6 * self.spacing)

    # -- 4. classes ------------------------------------------------------------------------------------
    def classify(self) -> None:
        """Tag the rural lanes by how much they carry towards the seats."""
        coords = self._coords()
        n = len(coords)
        rural = self.tree_edges + self.loop_edges
        fixed = [(u, v) for u, v, *_ in self.edges]
        pairs = np.array(fixed + rural, dtype=np.int64).reshape(-1, 2)
        lengths = np.hypot(*(coords[pairs[:, 1]] - coords[pairs[:, 0]]).T)
        factor = np.array([0.4] * len(fixed) + [1.0] * len(rural))
        lo, hi = np.minimum(pairs[:, 0], pairs[:, 1]), np.maximum(pairs[:, 0], pairs[:, 1])
        graph = coo_matrix((np.maximum(lengths * factor, 1e-3), (lo, hi)), shape=(n, n)).tocsr()
        dist, pred = dijkstra(graph, directed=False, indices=self.seat_nodes, min_only=True, return_predecessors=True)[
            :2
        ]
        # downstream hamlet count of every node on the shortest-path tree from the seats
        size = np.ones(n)
        finite = np.flatnonzero(np.isfinite(dist))
        for node in finite[np.argsort(-dist[finite], kind="stable")]:
            if pred[node] >= 0:
                size[pred[node]] += size[node]
        to_village = set()
        for start in self.village_nodes:
            node = start
            while pred[node] >= 0:
                to_village.add((min(node, pred[node]), max(node, pred[node])))
                node = pred[node]
        in_zone = self._in_zone(coords)
        kinds = self.node_kind
        draws = self.rng.random(len(rural))
        for k, (u, v) in enumerate(rural):
            length = float(np.hypot(*(coords[v] - coords[u])))
            child = u if pred[u] == v else (v if pred[v] == u else -1)
            load = size[child] if child >= 0 else 0.0
            is_tree = k < len(self.tree_edges)
            if in_zone[u] and in_zone[v]:
                highway = "residential" if is_tree or draws[k] < 0.7 else "footway"
            elif not is_tree:
                highway = "track" if draws[k] < 0.55 else ("steps" if draws[k] < 0.7 and length < 200 else "footway")
            elif (u, v) in to_village:
                highway = "tertiary"
            elif load >= 40:
                highway = "unclassified"
            elif load == 1 and kinds[child] == "hamlet" and draws[k] < 0.4:
                highway = "service"
            else:
                highway = "track"
            self._add_edge(int(u), int(v), highway)

    def add_spurs(self) -> None:
        """Give each pass-through seat and village a short service spur, so it stays a simplified node.

        Leaves (degree 1) and junctions (degree 3 or more) already stay nodes after simplification.
        """
        coords = self._coords()
        tree = cKDTree(coords)
        degree = np.bincount(np.array([(u, v) for u, v, *_ in self.edges]).ravel(), minlength=len(coords))
        for node in self.seat_nodes + self.village_nodes:
            if degree[node] != 2:
                continue
            x, y = coords[node]
            for angle in self.rng.uniform(0, 2 * np.pi, size=12):
                px, py = x + 30.0 * math.sin(angle), y + 30.0 * math.cos(angle)
                if shapely.contains_xy(self.inner, px, py) and tree.query([px, py])[0] > 15.0:
                    self._add_edge(node, self._add_node(px, py, "spur"), "service")
                    break

    def add_farm_spurs(self, share: float) -> None:
        """Give a ``share`` of the pass-through hamlets a short dead-end access to a farmhouse.

        A spur turns a pass-through point into a junction: it adds one node to the file but two to the
        simplified graph, which keeps the file small for a given network size.
        """
        coords = self._coords()
        n = len(coords)
        pairs = np.array([(u, v) for u, v, *_ in self.edges], dtype=np.int64)
        degree = np.bincount(pairs.ravel(), minlength=n)
        unit = coords[pairs[:, 1]] - coords[pairs[:, 0]]
        unit /= np.maximum(np.hypot(*unit.T), 1e-9)[:, None]
        pull = np.zeros((n, 2))
        np.add.at(pull, pairs[:, 0], unit)
        np.add.at(pull, pairs[:, 1], -unit)
        kinds = np.asarray(self.node_kind)
        eligible = np.flatnonzero((degree == 2) & (kinds == "hamlet"))
        picked = eligible[self.rng.random(len(eligible)) < share]
        away = -pull[picked]
        norm = np.hypot(*away.T)
        straight = norm < 0.2  # a straight pass-through: leave at a right angle to the lane
        first_edge = np.full(n, -1)
        first_edge[pairs[::-1, 1]] = np.arange(len(pairs))[::-1]
        first_edge[pairs[::-1, 0]] = np.arange(len(pairs))[::-1]
        first = unit[first_edge[picked[straight]]]
        away[straight] = np.column_stack([-first[:, 1], first[:, 0]])
        away /= np.maximum(np.hypot(*away.T), 1e-9)[:, None]
        turn = self.rng.normal(0.0, 0.4, len(picked))
        cos_t, sin_t = np.cos(turn), np.sin(turn)
        away = np.column_stack([away[:, 0] * cos_t - away[:, 1] * sin_t, away[:, 0] * sin_t + away[:, 1] * cos_t])
        ends = coords[picked] + away * self.rng.uniform(30.0, 80.0, len(picked))[:, None]
        draws = self.rng.random(len(picked))
        spurs = shapely.linestrings(np.stack([coords[picked], ends], axis=1))
        ok = shapely.contains_xy(self.inner, ends[:, 0], ends[:, 1])
        ok &= cKDTree(coords).query(ends)[0] > 20.0
        ok &= self._touches_only_own(spurs, coords, pairs, picked)
        seen = shapely.STRtree(spurs[ok]).query(spurs[ok], predicate="intersects")
        clash = {int(b) for a, b in zip(*seen, strict=True) if a < b}
        kept = np.flatnonzero(ok)
        for rank, k in enumerate(kept):
            if rank in clash:
                continue
            highway = "service" if draws[k] < 0.5 else ("track" if draws[k] < 0.8 else "footway")
            self._add_edge(int(picked[k]), self._add_node(*ends[k], "farm"), highway)

    @staticmethod
    def _touches_only_own(
        spurs: npt.NDArray[np.object_],
        coords: npt.NDArray[np.float64],
        pairs: npt.NDArray[np.int64],
        picked: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.bool_]:
        hits = shapely.STRtree(_segments(coords, pairs)).query(spurs, predicate="intersects")
        bad = np.zeros(len(spurs), dtype=bool)
        for s, e in zip(*hits, strict=True):
            if picked[s] not in (pairs[e, 0], pairs[e, 1]):
                bad[s] = True
        return ~bad

    # -- 5. one-way repair and output ------------------------------------------------------------------
    def repair_oneways(self) -> None:
        """Make one-way edges two-way until the used network is strongly connected."""
        used = sorted({u for u, *_ in self.edges} | {v for _, v, *_ in self.edges})
        position = {node: k for k, node in enumerate(used)}
        for _ in range(50):
            rows, cols = [], []
            for u, v, _h, _n, oneway in self.edges:
                rows.append(position[u])
                cols.append(position[v])
                if not oneway:
                    rows.append(position[v])
                    cols.append(position[u])
            graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(used), len(used))).tocsr()
            _, labels = connected_components(graph, directed=True, connection="strong")
            main = np.bincount(labels).argmax()
            outside = labels != main
            changed = 0
            for edge in self.edges:
                if edge[4] and (outside[position[edge[0]]] or outside[position[edge[1]]]):
                    edge[4] = False
                    changed += 1
            if not changed:
                break
        self.n_used_nodes = len(used)

    def to_osm_xml(self, crs: str, seed: int) -> bytes:
        coords = self._coords()
        used = sorted({u for u, *_ in self.edges} | {v for _, v, *_ in self.edges})
        osm_id = {node: k + 1 for k, node in enumerate(used)}
        transformer = pyproj.Transformer.from_crs(crs, WGS84, always_xy=True)
        lon, lat = transformer.transform(coords[used, 0], coords[used, 1])
        ways = _merge_ways(self.edges)
        bounds = f'minlat="{min(lat):.7f}" minlon="{min(lon):.7f}" maxlat="{max(lat):.7f}" maxlon="{max(lon):.7f}"'
        out = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f"<!-- SYNTHETIC road network, NOT real roads: generated by {GENERATOR} with seed {seed}. -->",
            f'<osm version="0.6" generator="{GENERATOR} (SYNTHETIC, seed {seed})">',
            f"  <bounds {bounds}/>",
        ]
        out.extend(
            f'  <node id="{osm_id[node]}" lat="{la:.7f}" lon="{lo:.7f}"/>'
            for node, lo, la in zip(used, lon, lat, strict=True)
        )
        for way_id, (nodes, highway, name, oneway) in enumerate(ways, start=1):
            out.append(f'  <way id="{way_id}">')
            out.extend(f'    <nd ref="{osm_id[n]}"/>' for n in nodes)
            out.append(f'    <tag k="highway" v="{highway}"/>')
            if name:
                out.append(f'    <tag k="name" v={quoteattr(name)}/>')
            if oneway:
                out.append('    <tag k="oneway" v="yes"/>')
            out.append("  </way>")
        out.append("</osm>")
        return ("\n".join(out) + "\n").encode("utf-8")


def _seat_pairs(seats: npt.NDArray[np.float64]) -> list[tuple[int, int]]:
    """Candidate seat-to-seat links: Delaunay edges, or the only pair for two seats."""
    if len(seats) < 2:
        return []
    if len(seats) < 3:
        return [(0, 1)]
    simplices = Delaunay(seats).simplices
    pairs = {tuple(sorted((int(a), int(b)))) for s in simplices for a, b in ((s[0], s[1]), (s[1], s[2]), (s[0], s[2]))}
    return sorted(pairs)


def _grid_class(line_no: int) -> tuple[str, int]:
    """Class and one-way direction (+1, -1, 0 = two-way) of grid line ``line_no``."""
    if line_no % 8 == 0:
        return "secondary", 0
    if line_no % 4 == 0:
        return "tertiary", 0
    return "residential", {1: 1, 3: -1}.get(line_no % 4, 0)


def _segments(coords: npt.NDArray[np.float64], pairs: object) -> npt.NDArray[np.object_]:
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs) == 0:
        return np.empty(0, dtype=object)
    stacked = np.stack([coords[pairs[:, 0]], coords[pairs[:, 1]]], axis=1)
    return shapely.linestrings(stacked)


def _merge_ways(edges: list[list[object]]) -> list[tuple[list[int], str, str, bool]]:
    """Merge chains of edges with equal tags into ways (node lists), in a deterministic order."""
    groups: dict[tuple[str, str, bool], list[tuple[int, int]]] = defaultdict(list)
    for u, v, highway, name, oneway in edges:
        groups[(highway, name, oneway)].append((u, v))
    ways = []
    for (highway, name, oneway), pairs in groups.items():
        incident: dict[int, list[int]] = defaultdict(list)
        for k, (u, v) in enumerate(pairs):
            incident[u].append(k)
            incident[v].append(k)
        done = [False] * len(pairs)
        for k, (u, v) in enumerate(pairs):
            if done[k]:
                continue
            done[k] = True
            chain = [u, v]
            # extend forward from v, then backward from u
            for forward in (True, False):
                while True:
                    end = chain[-1] if forward else chain[0]
                    nxt = [e for e in incident[end] if not done[e]]
                    if len(incident[end]) != 2 or len(nxt) != 1:
                        break
                    a, b = pairs[nxt[0]]
                    if oneway and ((a != end) if forward else (b != end)):
                        break
                    if not oneway and end not in (a, b):
                        break
                    other = b if a == end else a
                    done[nxt[0]] = True
                    if forward:
                        chain.append(other)
                    else:
                        chain.insert(0, other)
                    if other == (chain[0] if forward else chain[-1]):
                        break
            ways.append((chain, highway, name, oneway))
    ways.sort(key=lambda w: (_RANK[w[1]], w[2], w[0][0], w[0][-1], len(w[0])))
    return ways
