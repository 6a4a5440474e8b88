"""Read OSM PBF and OSM XML road files with pyosmium straight into arrays (no networkx graph).

The result, a :class:`RoadNetwork`, holds the same road pieces that ``geo.network.graph_from_file``
builds through osmnx (simplified: nodes that only shape a road are dropped), in EPSG:4326:

- the same ways become roads: ``highway`` tagged, less areas (``area=yes``) and ways not in use
  (``_EXCLUDED_HIGHWAYS``);
- the same one-way rules as osmnx: ``oneway`` in ``yes, true, 1, -1, reverse, T, F`` or
  ``junction=roundabout`` is one-way, ``-1, reverse, T`` run against the node order;
- the same lengths: great-circle metres (radius 6,371,009 m) summed over the vertices;
- a node is kept where osmnx keeps it (a junction, a dead end, a change between one-way and two-way,
  parallel ways) and also where the ``highway`` class, the ``name`` or an accessibility tag
  (``ACCESS_TAGS``) changes, so every piece has one class, one street name and one value of each
  such tag. Isolated rings without any such node are dropped, as in osmnx.
- accessibility tags of the ways (``ACCESS_TAGS``: ``wheelchair``, ``ramp:wheelchair``, ``incline``,
  ``surface``, ``smoothness``, ``width`` ...) are kept per piece in ``piece_tags``, and the worst
  ``kerb`` of the kerb and crossing nodes a piece passes (``KERB_ORDER``) as ``piece_tags["kerb"]``.
  ``incline`` is given along the piece (from ``piece_u`` to ``piece_v``): a piece that runs against its
  way's node order carries the turned value (``reverse_incline``: ``8%`` → ``-8%``, ``up`` → ``down``),
  and ways with a signed incline join into one piece only head to tail, as one-way ways do.

Extracts cut to a bounding box (``osmium extract --strategy simple``, ``osmconvert -b``) keep ways
that reference nodes absent from the file; such ways are split at the missing nodes, and how many
is logged and kept on the result (``ways_split``, ``missing_node_refs``).
"""

from __future__ import annotations

import logging
import re
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import osmium
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components
from shapely.geometry import MultiPolygon, Polygon

from geo.errors import NetworkError

logger = logging.getLogger(__name__)

#: ``highway`` values that are not usable ways, as in osmnx's ``network_type="all"`` filter.
EXCLUDED_HIGHWAYS = frozenset(
    {"abandoned", "construction", "no", "planned", "platform", "proposed", "raceway", "razed"}
    | {"rest_area", "services"}
)
#: osmnx's ``oneway`` values meaning one-way, and those among them meaning against the node order.
ONEWAY_VALUES = frozenset({"yes", "true", "1", "-1", "reverse", "T", "F"})
REVERSED_VALUES = frozenset({"-1", "reverse", "T"})
#: Way tags kept per piece for the accessibility rules of ``geo.profiles`` (``""`` where untagged).
ACCESS_TAGS = ("wheelchair", "ramp:wheelchair", "ramp", "incline", "surface", "smoothness", "width")
#: ``kerb`` values from least to worst for a wheelchair; a piece gets the worst of its nodes. ``yes``
#: (a kerb of unknown kind: ``barrier=kerb`` or a ``highway=crossing`` node without ``kerb``) is
#: ranked as unknown between ``lowered`` and ``rolled``; ``""`` means the piece meets no kerb node.
KERB_ORDER = ("", "flush", "lowered", "no", "yes", "rolled", "raised")
EARTH_RADIUS_M = 6_371_009.0  # as osmnx
#: File name endings read here and the pyosmium format of each.
OSM_FORMATS = {".osm.pbf": "pbf", ".pbf": "pbf", ".osm.bz2": "osm.bz2", ".osm": "osm", ".xml": "osm"}
_UNDEFINED = 2_147_483_647  # libosmium's undefined fixed-point coordinate (a node absent from the file)
_COORD_SCALE = 1e7
_OPL_CHUNK_BYTES = 1 << 24
_NO_COORD = 999.0  # stands for an absent location while parsing OPL (no longitude is 999)
_KERB_RANK = {k: i for i, k in enumerate(KERB_ORDER)}


@dataclass(frozen=True, eq=False)
class RoadNetwork:
    """Simplified road pieces of an OSM file as arrays, in EPSG:4326 (lon, lat).

    Parameters
    ----------
    source
        The file read.
    node_id, node_lon, node_lat
        OSM id and coordinates (degrees) of each node (the ends of the pieces).
    piece_u, piece_v
        Node positions at the start and end of each piece; a one-way piece runs from u to v.
    piece_oneway
        Whether the piece may be driven only from u to v (two-way otherwise).
    piece_length_m
        Great-circle length in metres.
    piece_highway, piece_name
        OSM ``highway`` class and ``name`` (``""`` where untagged) of each piece.
    piece_osmid
        OSM id of one way the piece comes from.
    piece_coord_ptr, piece_coords
        Vertices (lon, lat) of piece ``p``: ``piece_coords[piece_coord_ptr[p]:piece_coord_ptr[p + 1]]``.
    ways_split
        Ways that referenced nodes absent from the file (a bounding-box cut) and were split there.
    missing_node_refs
        References to such absent nodes.
    piece_tags
        Text array per tag of ``ACCESS_TAGS`` and ``"kerb"``: the value on each piece (``""`` where
        untagged; ``"kerb"`` the worst kerb node of the piece by ``KERB_ORDER``).
    """

    source: str
    node_id: np.ndarray
    node_lon: np.ndarray
    node_lat: np.ndarray
    piece_u: np.ndarray
    piece_v: np.ndarray
    piece_oneway: np.ndarray
    piece_length_m: np.ndarray
    piece_highway: np.ndarray
    piece_name: np.ndarray
    piece_osmid: np.ndarray
    piece_coord_ptr: np.ndarray
    piece_coords: np.ndarray
    ways_split: int
    missing_node_refs: int
    piece_tags: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_id)

    @property
    def n_pieces(self) -> int:
        """Number of road pieces."""
        return len(self.piece_u)


def osm_format(path: Path) -> str | None:
    """Return the pyosmium format of ``path`` from its name (``"pbf"``, ``"osm"``, ``"osm.bz2"``), or None."""
    name = path.name.lower()
    for suffix in sorted(OSM_FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return OSM_FORMATS[suffix]
    return None


def read_roads(
    path: str | Path,
    *,
    boundary: Polygon | MultiPolygon | None = None,
    min_component_share: float = 0.9,
) -> RoadNetwork:
    """Read the roads of an OSM PBF or OSM XML file into a :class:`RoadNetwork` (see the module docstring).

    Parameters
    ----------
    path
        ``.osm.pbf``/``.pbf``, ``.osm``/``.xml`` or ``.osm.bz2``.
    boundary
        Polygon in EPSG:4326; keeps only the nodes inside (or on) it, cutting roads that leave it.
    min_component_share
        Warn when the largest strongly connected component (one-way rules applied) holds a smaller
        share of the nodes.

    Returns
    -------
    RoadNetwork

    Raises
    ------
    NetworkError
        If the file is missing, not OSM PBF/XML by its name, cannot be parsed, has no usable highway
        ways, or nothing is left inside ``boundary``.

    Warns
    -----
    UserWarning
        If the largest strongly connected component holds less than ``min_component_share`` of the nodes.
    """
    path = Path(path)
    check_share_and_boundary(min_component_share, boundary)
    fmt = osm_format(path)
    if fmt is None:
        msg = (
            f"Road network file {str(path)!r} is not OSM PBF or OSM XML by its name; "
            f"use one of {sorted(OSM_FORMATS)!r}."
        )
        raise NetworkError(msg)
    if not path.is_file():
        msg = f"Road network file {str(path)!r} does not exist. Check the path (e.g. `roads` in district.toml)."
        raise NetworkError(msg)
    ways = _read_ways(path, fmt)
    _check_missing_nodes_are_absent(path, fmt, ways)
    roads = _pieces(ways, path, boundary)
    n_largest = _largest_strong_component(roads)
    warn_small_component(path, n_largest, roads.n_nodes, min_component_share, stacklevel=2)
    logger.info(
        "Read %s nodes and %s road pieces from %r%s",
        f"{roads.n_nodes:,}",
        f"{roads.n_pieces:,}",
        str(path),
        " (clipped to boundary)" if boundary is not None else "",
    )
    return roads


# --- messages shared with geo.network --------------------------------------------------------------


def check_share_and_boundary(min_component_share: float, boundary: Any) -> None:
    """Raise ``ValueError``/``TypeError`` for a share outside [0, 1] or a boundary that is not a polygon."""
    if not 0 <= min_component_share <= 1:
        msg = f"`min_component_share` must be a share between 0 and 1; got {min_component_share!r}."
        raise ValueError(msg)
    if boundary is not None and not isinstance(boundary, Polygon | MultiPolygon):
        got = type(boundary).__name__
        msg = f"`boundary` must be a shapely Polygon or MultiPolygon in EPSG:4326; got {got}."
        raise TypeError(msg)


def no_highways_error(source: Path) -> NetworkError:
    """Return the error for a file without usable ``highway`` ways."""
    msg = (
        f"Road network file {str(source)!r} has no usable `highway` ways "
        "(roads, paths or streets); is it an extract of the right area and layer?"
    )
    return NetworkError(msg)


def nothing_inside_error(source: Path, boundary: Polygon | MultiPolygon, n_inside: int) -> NetworkError:
    """Return the error for a boundary that leaves no road of ``source``."""
    minx, miny, maxx, maxy = boundary.bounds
    msg = (
        f"Nothing of road network {str(source)!r} is left after clipping to `boundary` "
        f"({n_inside} nodes inside, no edges); boundary bounds {(minx, miny, maxx, maxy)!r} "
        "must be lon/lat (EPSG:4326) and overlap the file's area."
    )
    return NetworkError(msg)


def warn_small_component(source: Path, n_largest: int, n_total: int, share: float, *, stacklevel: int) -> None:
    """Warn when the largest strongly connected component holds less than ``share`` of the nodes."""
    if n_largest >= share * n_total:
        return
    msg = (
        f"Road network {str(source)!r}: the largest strongly connected component has {n_largest:,} of "
        f"{n_total:,} nodes ({n_largest / n_total:.1%}), below "
        f"`min_component_share`={share:.0%}. "
        "Many places cannot reach each other when one-way rules apply (drive); "
        "check one-way tags, a missing area around the roads, or the clipping boundary."
    )
    warnings.warn(msg, UserWarning, stacklevel=stacklevel + 1)


# --- reading ---------------------------------------------------------------------------------------


@dataclass
class _Ways:
    """Highway ways as flat arrays: node refs and fixed-point coordinates per position, tags per way."""

    ref: np.ndarray  # int64 per position
    x: np.ndarray  # int64 fixed-point lon (1e-7 degree), _UNDEFINED where the node is absent
    y: np.ndarray
    way_ptr: np.ndarray  # positions of way w: way_ptr[w]:way_ptr[w + 1]
    way_id: np.ndarray
    way_dir: np.ndarray  # int8: 0 two-way, 1 one-way along the nodes, -1 one-way against them
    way_highway: np.ndarray  # int32 code into highways
    way_name: np.ndarray  # int32 code into names
    highways: list[str]
    names: list[str]
    way_tags: np.ndarray  # int32 code into tagsets
    tagsets: list[tuple[str, ...]]  # values of ACCESS_TAGS
    kerb_ref: np.ndarray  # sorted ids of kerb and crossing nodes
    kerb_rank: np.ndarray  # their rank in KERB_ORDER


def _kerb_rank(tags: Any) -> int:
    """Return the ``KERB_ORDER`` rank of a node's kerb (0 where the node is no kerb or crossing)."""
    kerb = tags.get("kerb")
    if kerb is not None:
        return _KERB_RANK.get(kerb, _KERB_RANK["yes"])
    if tags.get("barrier") == "kerb" or tags.get("highway") == "crossing":
        return _KERB_RANK["yes"]
    return 0


def _oneway_dir(oneway: str | None, junction: str | None) -> int:
    """Return osmnx's direction of a way: 0 two-way, 1 along its nodes, -1 against them."""
    if oneway in ONEWAY_VALUES:
        return -1 if oneway in REVERSED_VALUES else 1
    return 1 if junction == "roundabout" else 0


def _read_ways(path: Path, fmt: str) -> _Ways:
    """Read the usable highway ways of ``path`` with their node refs and locations.

    One pass with a node location cache kept by libosmium; tags are read in Python per way, while
    the node lists go through libosmium's OPL writer (``locations_on_ways``) to a temporary file
    and are parsed in bulk: pyosmium makes a Python object per node reference otherwise, which is
    most of the reading time.
    """
    lengths: list[int] = []
    ids: list[int] = []
    dirs: list[int] = []
    hw_codes: list[int] = []
    name_codes: list[int] = []
    highways: dict[str, int] = {}
    names: dict[str, int] = {"": 0}
    tagsets: dict[tuple[str, ...], int] = {("",) * len(ACCESS_TAGS): 0}
    tag_codes: list[int] = []
    kerbs: dict[int, int] = {}
    # ways with `highway`, and nodes that may be kerbs (`kerb`, `barrier`, `highway=crossing`)
    processor = (
        osmium.FileProcessor(osmium.io.File(str(path), fmt), osmium.osm.NODE | osmium.osm.WAY)
        .with_locations()
        .with_filter(osmium.filter.KeyFilter("highway", "kerb", "barrier"))
    )
    with tempfile.TemporaryDirectory(prefix="accessplan-osm-") as tmp:
        opl = Path(tmp) / "ways.opl"
        writer = osmium.SimpleWriter(osmium.io.File(str(opl), "opl,locations_on_ways=true,add_metadata=false"))
        try:
            for way in processor:
                tags = way.tags
                if way.is_node():
                    if rank := _kerb_rank(tags):
                        kerbs[way.id] = rank
                    continue
                highway = tags.get("highway")
                if highway is None or highway in EXCLUDED_HIGHWAYS or tags.get("area") == "yes" or len(way.nodes) < 2:
                    continue
                writer.add_way(way)
                ids.append(way.id)
                dirs.append(_oneway_dir(tags.get("oneway"), tags.get("junction")))
                hw_codes.append(highways.setdefault(highway, len(highways)))
                name_codes.append(names.setdefault(tags.get("name", ""), len(names)))
                values = tuple(tags.get(k, "") for k in ACCESS_TAGS)
                tag_codes.append(tagsets.setdefault(values, len(tagsets)))
        except RuntimeError as exc:
            kind = "OSM PBF" if fmt == "pbf" else "OSM XML"
            msg = (
                f"Road network file {str(path)!r} is not a valid (complete) {kind} file: {exc}. "
                "Re-export or re-download it."
            )
            raise NetworkError(msg) from exc
        finally:
            writer.close()
        ref, x, y = _parse_opl_node_lists(opl, lengths)
    way_ptr = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=way_ptr[1:])
    return _Ways(
        ref=ref,
        x=x,
        y=y,
        way_ptr=way_ptr,
        way_id=np.array(ids, np.int64),
        way_dir=np.array(dirs, np.int8),
        way_highway=np.array(hw_codes, np.int32),
        way_name=np.array(name_codes, np.int32),
        highways=list(highways),
        names=list(names),
        way_tags=np.array(tag_codes, np.int32),
        tagsets=list(tagsets),
        kerb_ref=np.array(sorted(kerbs), np.int64),
        kerb_rank=np.array([kerbs[k] for k in sorted(kerbs)], np.int8),
    )


def _check_missing_nodes_are_absent(path: Path, fmt: str, ways: _Ways) -> None:
    """Raise ``NetworkError`` when a node without a location is in the file after all (nodes after ways).

    The location cache only knows the nodes read before a way; a file that is not sorted (nodes,
    then ways) would otherwise look like a bounding-box cut.
    """
    missing = np.unique(ways.ref[ways.x == _UNDEFINED])
    if len(missing) == 0:
        return
    tracker = osmium.IdTracker()
    for node_id in missing.tolist():
        tracker.add_node(node_id)
    nodes = osmium.FileProcessor(osmium.io.File(str(path), fmt), osmium.osm.NODE).with_filter(tracker.id_filter())
    late = next((node.id for node in nodes), None)
    if late is not None:
        msg = (
            f"Road network file {str(path)!r} is not sorted: node {late} comes after a way that uses it. "
            "Sort it (`osmium sort`) or export it again with nodes first."
        )
        raise NetworkError(msg)


def _parse_opl_node_lists(opl: Path, lengths: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse the ``N`` sections (``n<ref>x<lon>y<lat>,...``) of an OPL way file; append node counts to ``lengths``.

    Returns refs and fixed-point coordinates (1e-7 degree), ``_UNDEFINED`` where the file has no
    location for the node (written as ``n<ref>xy``).
    """
    chunks = []
    with opl.open(encoding="utf-8") as f:
        while lines := f.readlines(_OPL_CHUNK_BYTES):
            node_lists = [line.rstrip("\n").rsplit(" N", 1)[1] for line in lines]
            lengths.extend(nl.count(",") + 1 for nl in node_lists)
            text = ",".join(node_lists).replace("xy", f"x{_NO_COORD}y{_NO_COORD}")
            text = text.replace("n", "").replace("x", ",").replace("y", ",")
            chunks.append(np.fromstring(text, sep=",").reshape(-1, 3))
    values = np.concatenate(chunks) if chunks else np.zeros((0, 3))
    ref = values[:, 0].astype(np.int64)
    absent = values[:, 1] == _NO_COORD
    x = np.where(absent, _UNDEFINED, np.round(values[:, 1] * _COORD_SCALE)).astype(np.int64)
    y = np.where(absent, _UNDEFINED, np.round(values[:, 2] * _COORD_SCALE)).astype(np.int64)
    return ref, x, y


# --- simplification --------------------------------------------------------------------------------


def _pieces(ways: _Ways, source: Path, boundary: Polygon | MultiPolygon | None) -> RoadNetwork:
    """Turn way node lists into simplified pieces (see the module docstring for the rules)."""
    n_pos = len(ways.ref)
    if len(ways.way_id) == 0:
        raise no_highways_error(source)
    way_of = np.repeat(np.arange(len(ways.way_id)), np.diff(ways.way_ptr))
    present = ways.x != _UNDEFINED
    missing_ways = np.unique(way_of[~present])
    ways_split, missing_refs = len(missing_ways), int((~present).sum())
    if missing_refs:
        logger.info(
            "%r: %s ways reference %s nodes that are not in the file (an extract cut to a bounding box); "
            "split them at the missing nodes",
            str(source),
            f"{ways_split:,}",
            f"{missing_refs:,}",
        )
    ok = present
    if boundary is not None:
        inside = np.zeros(n_pos, bool)
        inside[present] = shapely.intersects_xy(
            boundary, ways.x[present] / _COORD_SCALE, ways.y[present] / _COORD_SCALE
        )
        ok = present & inside
    # segments: consecutive positions of one way, both nodes usable, not a repeated node
    p = np.flatnonzero((way_of[:-1] == way_of[1:]) & ok[:-1] & ok[1:] & (ways.ref[:-1] != ways.ref[1:]))
    if len(p) == 0:
        if boundary is not None:
            raise nothing_inside_error(source, boundary, len(np.unique(ways.ref[ok])))
        raise no_highways_error(source)
    seg_way = way_of[p]
    seg_dir = ways.way_dir[seg_way].astype(np.int64)
    seg_key = ways.way_highway[seg_way].astype(np.int64) * (len(ways.names) + 1) + ways.way_name[seg_way]
    seg_key = seg_key * (len(ways.tagsets) + 1) + ways.way_tags[seg_way]
    used = np.zeros(n_pos, bool)
    used[p] = used[p + 1] = True
    node_ref, node_of_used = np.unique(ways.ref[used], return_inverse=True)
    pos_node = np.full(n_pos, -1, np.int64)
    pos_node[used] = node_of_used
    su, sv = pos_node[p], pos_node[p + 1]
    # a signed `incline` holds along the way's node order: such ways chain only head to tail (as one-way
    # ways do), so each piece runs along or against its ways as a whole and its incline can be turned
    incline = np.array([values[ACCESS_TAGS.index("incline")] for values in ways.tagsets], dtype=object)
    directional = np.array([incline_direction(v) != 0 for v in incline], bool)
    chain_dir = np.where(seg_dir != 0, seg_dir, directional[ways.way_tags[seg_way]])
    interior = _interior_nodes(su, sv, chain_dir, seg_key, len(node_ref))

    # runs: consecutive segments of one way joined at an interior node, in way order
    n_seg = len(p)
    joined = (p[1:] == p[:-1] + 1) & interior[sv[:-1]]
    run_first = np.flatnonzero(np.r_[True, ~joined])
    run_last = np.r_[run_first[1:] - 1, n_seg - 1]
    run_p0, run_p1 = p[run_first], p[run_last] + 1  # first and last position of each run
    run_a, run_b = su[run_first], sv[run_last]  # nodes at the run's ends
    order = _chain_runs(run_first, run_last, run_a, run_b, su, sv, interior)
    el_piece, el_run, el_rev = order

    # orientation of each piece: one-way pieces run in their legal direction
    first_seg = np.where(el_rev, run_last[el_run], run_first[el_run])
    piece_start = np.flatnonzero(np.r_[True, el_piece[1:] != el_piece[:-1]])
    d = seg_dir[first_seg[piece_start]] * np.where(el_rev[piece_start], -1, 1)
    flip = d < 0
    pos = _vertex_positions(el_piece, run_p0[el_run], run_p1[el_run], el_rev, flip)
    vertex_pos, vertex_ptr = pos
    piece_way = seg_way[first_seg[piece_start]]
    lon = ways.x[vertex_pos] / _COORD_SCALE
    lat = ways.y[vertex_pos] / _COORD_SCALE
    step = _haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:])
    step = np.r_[step, 0.0]
    step[vertex_ptr[1:] - 1] = 0.0  # no step from a piece's last vertex to the next piece
    length = np.add.reduceat(step, vertex_ptr[:-1])
    u_node = pos_node[vertex_pos[vertex_ptr[:-1]]]
    v_node = pos_node[vertex_pos[vertex_ptr[1:] - 1]]
    keep_nodes, inverse = np.unique(np.r_[u_node, v_node], return_inverse=True)
    n_pieces = len(u_node)
    first_pos = np.zeros(len(node_ref), np.int64)
    first_pos[pos_node[used]] = np.flatnonzero(used)
    highways = np.array(ways.highways, dtype=str)
    names = np.array(ways.names, dtype=str)
    against = el_rev[piece_start] ^ flip  # the piece runs against its ways' node order
    piece_tags = _piece_tags(ways, piece_way, ways.ref[vertex_pos], vertex_ptr, against)
    return RoadNetwork(
        source=str(source),
        node_id=node_ref[keep_nodes],
        node_lon=ways.x[first_pos[keep_nodes]] / _COORD_SCALE,
        node_lat=ways.y[first_pos[keep_nodes]] / _COORD_SCALE,
        piece_u=inverse[:n_pieces].astype(np.int64),
        piece_v=inverse[n_pieces:].astype(np.int64),
        piece_oneway=d != 0,
        piece_length_m=length,
        piece_highway=highways[ways.way_highway[piece_way]],
        piece_name=names[ways.way_name[piece_way]],
        piece_osmid=ways.way_id[piece_way],
        piece_coord_ptr=vertex_ptr,
        piece_coords=np.column_stack([lon, lat]),
        ways_split=ways_split,
        missing_node_refs=missing_refs,
        piece_tags=piece_tags,
    )


def _piece_tags(
    ways: _Ways, piece_way: np.ndarray, vertex_ref: np.ndarray, vertex_ptr: np.ndarray, against: np.ndarray
) -> dict:
    """Return ``ACCESS_TAGS`` values of each piece's way and the worst kerb among its vertices.

    ``incline`` is turned to the piece's direction (``reverse_incline``) where the piece runs against
    its way (``against``).
    """
    table = np.array(ways.tagsets, dtype=str).reshape(len(ways.tagsets), len(ACCESS_TAGS))
    codes = ways.way_tags[piece_way]
    out = {key: table[codes, i] for i, key in enumerate(ACCESS_TAGS)}
    incline = out["incline"]
    if against.any():
        turned = np.array([reverse_incline(v) for v in incline[against].tolist()], dtype=str)
        incline = incline.astype(f"<U{max(incline.dtype.itemsize // 4, turned.dtype.itemsize // 4, 1)}")
        incline[against] = turned
        out["incline"] = incline
    rank = np.zeros(len(vertex_ref), np.int8)
    if len(ways.kerb_ref):
        at = np.minimum(np.searchsorted(ways.kerb_ref, vertex_ref), len(ways.kerb_ref) - 1)
        hit = ways.kerb_ref[at] == vertex_ref
        rank[hit] = ways.kerb_rank[at[hit]]
    worst = np.maximum.reduceat(rank, vertex_ptr[:-1]) if len(rank) else np.zeros(0, np.int8)
    out["kerb"] = np.array(KERB_ORDER, dtype=str)[worst]
    return out


_SIGNED_NUMBER = re.compile(r"^\s*([+-]?)(\d+(?:\.\d+)?)(.*)$", re.S)


def incline_direction(value: str) -> int:
    """Return the direction an OSM ``incline`` gives along the way's node order: 1 up, -1 down, 0 none.

    ``up``/``down`` and signed numbers (``12%``, ``-5°``) have a direction; ``0``, ``yes``, ``no``
    and anything unreadable have none (OSM wiki Key:incline: the sign follows the way's direction).
    """
    text = value.strip()
    if text in ("up", "down"):
        return 1 if text == "up" else -1
    match = _SIGNED_NUMBER.match(text)
    if match is None or float(match.group(2)) == 0.0:
        return 0
    return -1 if match.group(1) == "-" else 1


def reverse_incline(value: str) -> str:
    """Return an OSM ``incline`` as seen travelling the way backwards: ``up`` ↔ ``down``, ``8%`` ↔ ``-8%``.

    Values without a direction come back unchanged.
    """
    text = value.strip()
    if text in ("up", "down"):
        return "down" if text == "up" else "up"
    match = _SIGNED_NUMBER.match(text)
    if match is None or incline_direction(text) == 0:
        return value
    sign = "" if match.group(1) == "-" else "-"
    return f"{sign}{match.group(2)}{match.group(3)}"


def _interior_nodes(su, sv, seg_dir, seg_key, n_nodes) -> np.ndarray:
    """Mark the nodes a piece passes through: two segments, two other nodes, same tags and one-way rule.

    osmnx keeps a node with two neighbours only where its two edges are both two-way or chain one
    one-way edge into another; here the two segments must also share ``highway`` and ``name``.
    """
    inc_node = np.r_[su, sv]
    inc_seg = np.r_[np.arange(len(su)), np.arange(len(su))]
    inc_at_end = np.r_[np.zeros(len(su), bool), np.ones(len(su), bool)]
    deg = np.bincount(inc_node, minlength=n_nodes)
    order = np.argsort(inc_node, kind="stable")
    ptr = np.r_[0, np.cumsum(deg)]
    cand = np.flatnonzero(deg == 2)
    i1, i2 = order[ptr[cand]], order[ptr[cand] + 1]
    s1, s2 = inc_seg[i1], inc_seg[i2]
    other1 = np.where(inc_at_end[i1], su[s1], sv[s1])
    other2 = np.where(inc_at_end[i2], su[s2], sv[s2])
    d1, d2 = seg_dir[s1], seg_dir[s2]
    # a one-way segment leads into the node when it runs towards it
    into1 = np.where(inc_at_end[i1], d1 > 0, d1 < 0)
    into2 = np.where(inc_at_end[i2], d2 > 0, d2 < 0)
    both_two_way = (d1 == 0) & (d2 == 0)
    chained_one_way = (d1 != 0) & (d2 != 0) & (into1 != into2)
    through = (other1 != other2) & (seg_key[s1] == seg_key[s2]) & (both_two_way | chained_one_way)
    interior = np.zeros(n_nodes, bool)
    interior[cand[through]] = True
    return interior


def _chain_runs(run_first, run_last, run_a, run_b, su, sv, interior):
    """Join runs that meet at an interior node into pieces.

    Returns, per element of a piece in order: piece number, run number and whether the run is
    walked backwards. Runs on isolated rings (no end node anywhere) are left out, as osmnx does.
    """
    n_runs = len(run_first)
    a_in, b_in = interior[run_a], interior[run_b]
    alone = ~a_in & ~b_in
    if alone.all():
        return np.arange(n_runs), np.arange(n_runs), np.zeros(n_runs, bool)
    # at an interior node two run ends meet: link them (side 0 = the run's start, 1 = its end)
    ends_node = np.r_[run_a, run_b]
    ends_side = np.r_[np.zeros(n_runs, np.int64), np.ones(n_runs, np.int64)]
    ends_run = np.r_[np.arange(n_runs), np.arange(n_runs)]
    linked = interior[ends_node]
    idx = np.flatnonzero(linked)
    idx = idx[np.argsort(ends_node[idx], kind="stable")]
    first, second = idx[0::2], idx[1::2]
    partner = np.full(2 * n_runs, -1, np.int64)  # end index (side * n_runs + run) -> partner end index
    key_first = ends_side[first] * n_runs + ends_run[first]
    key_second = ends_side[second] * n_runs + ends_run[second]
    partner[key_first] = key_second
    partner[key_second] = key_first
    partner_l = partner.tolist()
    a_in_l, b_in_l = a_in.tolist(), b_in.tolist()
    visited = alone.copy()
    el_piece, el_run, el_rev = [], [], []
    n_piece = 0
    # pieces of one run are emitted in bulk below; walk the others from an end at a real node
    starts = [(r, False) for r in np.flatnonzero(~a_in & b_in).tolist()]
    starts += [(r, True) for r in np.flatnonzero(a_in & ~b_in).tolist()]
    for r0, rev0 in starts:
        if visited[r0]:
            continue
        r, rev = r0, rev0
        while True:
            visited[r] = True
            el_piece.append(n_piece)
            el_run.append(r)
            el_rev.append(rev)
            exit_side = 0 if rev else 1
            if not (a_in_l[r] if exit_side == 0 else b_in_l[r]):
                break
            other = partner_l[exit_side * n_runs + r]
            r, rev = other % n_runs, other // n_runs == 1  # entering at the end: walk backwards
        n_piece += 1
    single = np.flatnonzero(alone)
    piece = np.r_[np.arange(len(single)), len(single) + np.array(el_piece, np.int64)]
    run = np.r_[single, np.array(el_run, np.int64)]
    rev = np.r_[np.zeros(len(single), bool), np.array(el_rev, bool)]
    return piece, run, rev


def _vertex_positions(el_piece, p0, p1, rev, flip):
    """Return the flat positions of every piece's vertices in order, and the per-piece pointer.

    Element ``e`` covers positions ``p0[e]..p1[e]`` (backwards when ``rev``); a piece's later
    elements skip their first vertex (the previous element's last). Pieces with ``flip`` are
    reversed as a whole.
    """
    n_el = len(el_piece)
    starts_piece = np.r_[True, el_piece[1:] != el_piece[:-1]]
    count = p1 - p0 + 1 - (~starts_piece)
    first = np.where(rev, p1, p0) + np.where(starts_piece, 0, np.where(rev, -1, 1))
    step = np.where(rev, -1, 1)
    offsets = np.r_[0, np.cumsum(count)[:-1]]
    total = int(count.sum())
    k = np.arange(total) - np.repeat(offsets, count)
    positions = np.repeat(first, count) + np.repeat(step, count) * k
    n_pieces = int(el_piece[-1]) + 1 if n_el else 0
    per_piece = np.bincount(el_piece, weights=count, minlength=n_pieces).astype(np.int64)
    ptr = np.zeros(n_pieces + 1, np.int64)
    np.cumsum(per_piece, out=ptr[1:])
    if flip.any():
        vertex_piece = np.repeat(np.arange(n_pieces), per_piece)
        within = np.arange(total) - ptr[vertex_piece]
        target = np.where(flip[vertex_piece], ptr[vertex_piece + 1] - 1 - within, np.arange(total))
        out = np.empty_like(positions)
        out[target] = positions
        positions = out
    return positions, ptr


def _haversine_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Great-circle distance in metres (osmnx's formula and radius)."""
    y1, y2 = np.deg2rad(lat1), np.deg2rad(lat2)
    dy, dx = y2 - y1, np.deg2rad(lon2 - lon1)
    h = np.sin(dy / 2) ** 2 + np.cos(y1) * np.cos(y2) * np.sin(dx / 2) ** 2
    return 2 * np.arcsin(np.sqrt(np.minimum(1.0, h))) * EARTH_RADIUS_M


def _largest_strong_component(roads: RoadNetwork) -> int:
    """Return the node count of the largest strongly connected component (one-way rules applied)."""
    two = ~roads.piece_oneway
    src = np.r_[roads.piece_u, roads.piece_v[two]]
    dst = np.r_[roads.piece_v, roads.piece_u[two]]
    n = roads.n_nodes
    graph = sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    _, labels = connected_components(graph, directed=True, connection="strong")
    return int(np.bincount(labels).max())
