"""Build road graphs from local OSM files and add per-profile travel times.

Every graph here is an osmnx ``MultiDiGraph`` with a ``crs`` in ``G.graph``. Edges carry ``length``
(metres, great-circle), ``highway`` (a class, or a list of classes for merged edges), ``oneway``
(bool), ``reversed`` and a ``geometry`` LineString in the graph's CRS.

One-way streets: the graph holds the directions a car may drive. A two-way street is two edges
(one per direction); a one-way street is a single edge in its legal direction. Profiles that ignore
one-way rules (``Profile.respect_oneway`` is False: walk, wheelchair) may also use a one-way edge
backwards; the graph does not add those reverse edges, the consumer that builds per-profile arrays
adds a reverse arc, with the same length and travel time, wherever ``oneway`` is True and the
profile ignores one-way rules.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import ParseError, iterparse
from xml.sax import SAXParseException

import networkx as nx
import numpy as np
import osmium
import osmnx as ox
import shapely
from osmium.osm.mutable import Node, Way
from pyproj import CRS
from shapely.geometry import MultiPolygon, Polygon

from geo.errors import NetworkError
from geo.osm import (
    EXCLUDED_HIGHWAYS,
    check_share_and_boundary,
    no_highways_error,
    nothing_inside_error,
    warn_small_component,
)
from geo.overpass import check_download_target, check_reachable
from geo.profiles import travel_time_s

if TYPE_CHECKING:
    from geo.profiles import Profile

logger = logging.getLogger(__name__)

#: Way tags that must reach the graph; ``area`` and ``junction`` (roundabouts are one-way) are read here.
_REQUIRED_WAY_TAGS = ("highway", "oneway", "junction", "name", "area")
_XML_ERRORS = (ParseError, SAXParseException, EOFError, OSError, UnicodeDecodeError)
#: What an osmnx GraphML must declare, by GraphML key domain.
_GRAPHML_NEEDS = {"graph": ("crs",), "node": ("x", "y"), "edge": ("length", "highway")}


def graph_from_file(
    path: str | Path,
    *,
    boundary: Polygon | MultiPolygon | None = None,
    min_component_share: float = 0.9,
) -> nx.MultiDiGraph:
    """Build a simplified road graph from a local OSM XML, OSM PBF or GraphML file.

    Only ways tagged ``highway`` (less areas and ways not in use: construction, proposed, ...) become
    edges. All connected components are kept.

    Parameters
    ----------
    path
        ``.osm``, ``.osm.bz2`` or ``.xml`` (OSM XML), ``.osm.pbf`` or ``.pbf`` (OSM PBF), or
        ``.graphml`` (saved by osmnx).
    boundary
        Polygon in EPSG:4326; keeps only the nodes inside (or on) it. None keeps everything.
    min_component_share
        Warn when the largest strongly connected component holds a smaller share of the nodes.

    Returns
    -------
    networkx.MultiDiGraph
        Graph in EPSG:4326; edges have ``length`` (m), ``highway``, ``oneway`` (bool) and ``geometry``.

    Raises
    ------
    NetworkError
        If the file is missing, has an unsupported extension, cannot be parsed, has no highway ways,
        or nothing is left after clipping to ``boundary``.

    Warns
    -----
    UserWarning
        If the largest strongly connected component holds less than ``min_component_share`` of the nodes.
    """
    path = Path(path)
    check_share_and_boundary(min_component_share, boundary)
    loader = _LOADERS[_file_kind(path)]
    if not path.is_file():
        msg = f"Road network file {str(path)!r} does not exist. Check the path (e.g. `roads` in district.toml)."
        raise NetworkError(msg)
    G = loader(path, boundary)
    _add_missing_geometries(G)
    _normalise_oneway(G)
    n_largest, n_total = _largest_strong_component_size(G)
    warn_small_component(path, n_largest, n_total, min_component_share, stacklevel=2)
    logger.info(
        "Built graph with %s nodes and %s edges from %r%s",
        f"{len(G):,}",
        f"{len(G.edges):,}",
        str(path),
        " (clipped to boundary)" if boundary is not None else "",
    )
    return G


def project_graph(G: nx.MultiDiGraph, crs: Any) -> nx.MultiDiGraph:
    """Return a copy of ``G`` in the projected ``crs`` (e.g. the district's ``projected_crs``).

    Node ``x``/``y`` and edge geometries are transformed; ``length`` stays in metres.

    Parameters
    ----------
    G
        Graph with a ``crs`` in ``G.graph``.
    crs
        Anything pyproj accepts (``"EPSG:32648"``); must be projected (metres).

    Returns
    -------
    networkx.MultiDiGraph
        New graph in ``crs``.

    Raises
    ------
    NetworkError
        If ``G`` has no ``crs``.
    """
    target = CRS.from_user_input(crs)
    if not target.is_projected:
        msg = f"`crs` must be a projected CRS (metres); got {crs!r}. Use the district's `projected_crs`."
        raise ValueError(msg)
    if "crs" not in G.graph:
        msg = "`G` has no `crs` in `G.graph`; build it with `geo.network.graph_from_file()`."
        raise NetworkError(msg)
    return ox.projection.project_graph(G, to_crs=target)


def add_travel_times_inplace(G: nx.MultiDiGraph, profiles: Mapping[str, Profile]) -> None:
    """Set ``travel_time_<profile>_s`` on every edge of ``G``, in place.

    Seconds as float from the edge ``length`` (m) and ``highway`` via
    :func:`geo.profiles.travel_time_s`; NaN where the profile may not use the edge. One-way rules
    are not applied here (see the module docstring).

    Parameters
    ----------
    G
        Graph from :func:`graph_from_file` (any CRS); edges need ``length`` and ``highway``.
    profiles
        Profiles by name, e.g. from :func:`geo.profiles.load_profiles`.

    Raises
    ------
    NetworkError
        If some edges lack ``length`` or ``highway`` (all such edges are counted in one message).
    """
    bad = [(u, v, k) for u, v, k, d in G.edges(keys=True, data=True) if "length" not in d or "highway" not in d]
    if bad:
        msg = (
            f"{len(bad):,} edges lack `length` or `highway`, e.g. {bad[:3]!r}; "
            "build the graph with `geo.network.graph_from_file()`."
        )
        raise NetworkError(msg)
    for _, _, data in G.edges(data=True):
        for name, profile in profiles.items():
            seconds = travel_time_s(float(data["length"]), data["highway"], profile)
            data[f"travel_time_{name}_s"] = math.nan if seconds is None else float(seconds)
    logger.info("Added travel times for %s to %s edges", sorted(profiles), f"{len(G.edges):,}")


def download_osm(boundary: Polygon | MultiPolygon, out_path: str | Path) -> Path:
    """Download the roads inside ``boundary`` from OpenStreetMap (Overpass) into an OSM XML file.

    Needs the internet; nothing else in this package does. The file is written by pyosmium in
    plain OSM XML, so :func:`graph_from_file` reads it like any other extract.

    Parameters
    ----------
    boundary
        Polygon in EPSG:4326.
    out_path
        Target file ending in ``.osm.bz2`` (compressed) or ``.osm``.

    Returns
    -------
    pathlib.Path
        ``out_path``.

    Raises
    ------
    NetworkError
        If the Overpass server (``osmnx.settings.overpass_url``) cannot be reached within a few
        seconds or the download fails.
    """
    out_path = check_download_target(out_path)
    if not isinstance(boundary, Polygon | MultiPolygon):
        got = type(boundary).__name__
        msg = f"`boundary` must be a shapely Polygon or MultiPolygon in EPSG:4326; got {got}."
        raise TypeError(msg)
    import requests
    from osmnx import _overpass  # osmnx has no public raw-XML download; this is its own query code.

    check_reachable(ox.settings.overpass_url)
    try:
        responses = _overpass._download_overpass_network(boundary, "all", None)
        n_nodes, n_ways = _write_osm_xml((e for r in responses for e in r["elements"]), out_path)
    except (requests.RequestException, ox._errors.InsufficientResponseError) as exc:
        msg = (
            f"Downloading roads from {ox.settings.overpass_url} failed: {exc}. "
            "Try again later, or use an OSM extract file."
        )
        raise NetworkError(msg) from exc
    logger.info("Downloaded %s nodes and %s ways into %r", f"{n_nodes:,}", f"{n_ways:,}", str(out_path))
    return out_path


# --- file kinds ---------------------------------------------------------------------------------


def _file_kind(path: Path) -> str:
    """Return the key of ``_LOADERS`` matching ``path``'s name (longest suffix wins)."""
    name = path.name.lower()
    for suffix in sorted(_LOADERS, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    msg = (
        f"Road network file {str(path)!r} has an unsupported extension; "
        f"use one of {sorted(_LOADERS)!r} (OSM XML, OSM PBF or osmnx GraphML)."
    )
    raise NetworkError(msg)


def _graph_from_osm_xml(
    path: Path, boundary: Polygon | MultiPolygon | None, *, source: Path | None = None
) -> nx.MultiDiGraph:
    """Load OSM XML, keep highway ways, clip, then simplify (``source`` names the file in errors)."""
    source = source or path
    try:
        with _way_tags_kept():
            G = ox.graph_from_xml(path, simplify=False, retain_all=True)
    except ox._errors.InsufficientResponseError:
        G = nx.MultiDiGraph(crs="epsg:4326")
    except _XML_ERRORS as exc:
        msg = f"Road network file {str(source)!r} is not valid (complete) OSM XML: {exc}. Re-export or re-download it."
        raise NetworkError(msg) from exc
    except ValueError as exc:
        if "missing nodes" not in str(exc):
            raise
        msg = (
            f"Road network file {str(source)!r} has ways that reference nodes absent from the file "
            "(an extract cut to a bounding box); osmnx cannot load it. Load it with "
            "`geo.osm.read_roads`, which splits such ways at the missing nodes."
        )
        raise NetworkError(msg) from exc
    _keep_highways_inplace(G, source)
    if boundary is not None:
        _clip_inplace(G, boundary, source)
    return ox.simplification.simplify_graph(G)


def _graph_from_pbf(path: Path, boundary: Polygon | MultiPolygon | None) -> nx.MultiDiGraph:
    """Convert the highway ways of a PBF (and their nodes) to temporary OSM XML and load that.

    Three passes over the file (ways to collect node ids, nodes, ways) keep the XML small and in
    the node-then-way order of OSM files.
    """
    with tempfile.TemporaryDirectory(prefix="accessplan-pbf-") as tmp:
        xml_path = Path(tmp) / "highways.osm"
        try:
            used = osmium.IdTracker()
            for way in _highway_ways(path):
                used.add_references(way)
            with osmium.SimpleWriter(xml_path) as writer:
                for node in osmium.FileProcessor(path, osmium.osm.NODE).with_filter(used.id_filter()):
                    writer.add(node)
                for way in _highway_ways(path):
                    writer.add(way)
        except RuntimeError as exc:
            msg = f"Road network file {str(path)!r} is not a valid (complete) OSM PBF file: {exc}."
            raise NetworkError(msg) from exc
        return _graph_from_osm_xml(xml_path, boundary, source=path)


def _highway_ways(path: Path) -> Iterator[Any]:
    """Return an iterator over the ways of an OSM file that have a ``highway`` tag."""
    return iter(osmium.FileProcessor(path, osmium.osm.WAY).with_filter(osmium.filter.KeyFilter("highway")))


def _graph_from_graphml(path: Path, boundary: Polygon | MultiPolygon | None) -> nx.MultiDiGraph:
    """Load an osmnx GraphML file, bring it to EPSG:4326 and clip it."""
    _check_graphml_keys(path)
    try:
        G = ox.io.load_graphml(path)
    except (ParseError, KeyError, ValueError) as exc:
        msg = f"Road network file {str(path)!r} is not a GraphML file saved by osmnx: {exc!r}."
        raise NetworkError(msg) from exc
    if "crs" not in G.graph:
        msg = f"Road network file {str(path)!r} has no graph `crs`; save it with `osmnx.io.save_graphml`."
        raise NetworkError(msg)
    if CRS.from_user_input(G.graph["crs"]) != CRS.from_epsg(4326):
        G = ox.projection.project_graph(G, to_latlong=True)
    if not any("highway" in d for _, _, d in G.edges(data=True)):
        msg = f"Road network file {str(path)!r} has no edges with a `highway` tag; it holds no roads."
        raise NetworkError(msg)
    if boundary is not None:
        _clip_inplace(G, boundary, path)
    return G


def _check_graphml_keys(path: Path) -> None:
    """Raise a clear error when a GraphML file does not declare what osmnx graphs carry (``_GRAPHML_NEEDS``).

    Reads only the ``<key>`` declarations at the top of the file.
    """
    declared: dict[str, set[str]] = {domain: set() for domain in _GRAPHML_NEEDS}
    try:
        for _, element in iterparse(path, events=("start",)):
            tag = element.tag.rsplit("}", 1)[-1]
            if tag == "key":
                declared.setdefault(element.get("for", ""), set()).add(element.get("attr.name", ""))
            elif tag == "graph":
                break
    except ParseError as exc:
        msg = f"Road network file {str(path)!r} is not a GraphML file saved by osmnx: {exc!r}."
        raise NetworkError(msg) from exc
    what = {"graph": "the graph lacks", "node": "nodes lack", "edge": "edges lack"}
    missing = [
        f"{what[domain]} {', '.join(f'`{n}`' for n in names if n not in declared[domain])}"
        for domain, names in _GRAPHML_NEEDS.items()
        if any(n not in declared[domain] for n in names)
    ]
    if missing:
        msg = (
            f"Road network file {str(path)!r} is GraphML but not a road graph saved by osmnx: "
            f"{'; '.join(missing)}. Save the graph with `osmnx.io.save_graphml` (nodes with x/y "
            "lon/lat, edges with `length` in metres and `highway`, a graph `crs`), or use the OSM "
            "file itself (.osm.pbf, .osm or .osm.bz2)."
        )
        raise NetworkError(msg)


_LOADERS: dict[str, Callable[[Path, Polygon | MultiPolygon | None], nx.MultiDiGraph]] = {
    ".osm": _graph_from_osm_xml,
    ".osm.bz2": _graph_from_osm_xml,
    ".xml": _graph_from_osm_xml,
    ".osm.pbf": _graph_from_pbf,
    ".pbf": _graph_from_pbf,
    ".graphml": _graph_from_graphml,
}


# --- graph clean-up -----------------------------------------------------------------------------


@contextmanager
def _way_tags_kept() -> Iterator[None]:
    """Make osmnx keep ``_REQUIRED_WAY_TAGS`` while loading (its settings are module-level)."""
    saved = list(ox.settings.useful_tags_way)
    ox.settings.useful_tags_way = saved + [t for t in _REQUIRED_WAY_TAGS if t not in saved]
    try:
        yield
    finally:
        ox.settings.useful_tags_way = saved


def _keep_highways_inplace(G: nx.MultiDiGraph, source: Path) -> None:
    """Drop edges that are not usable highways (and the nodes left without edges)."""
    drop = [
        (u, v, k)
        for u, v, k, d in G.edges(keys=True, data=True)
        if "highway" not in d or d["highway"] in EXCLUDED_HIGHWAYS or d.get("area") == "yes"
    ]
    G.remove_edges_from(drop)
    G.remove_nodes_from([n for n, deg in G.degree() if deg == 0])
    if len(G.edges) == 0:
        raise no_highways_error(source)


def _clip_inplace(G: nx.MultiDiGraph, boundary: Polygon | MultiPolygon, source: Path) -> None:
    """Keep the nodes of ``G`` that intersect ``boundary`` (as osmnx ``truncate_graph_polygon``).

    Vectorised point-in-polygon with shapely: osmnx's quadrat-based truncate takes about as long
    as loading a district's roads. Nodes left without edges are dropped too.
    """
    nodes = list(G.nodes)
    xs = np.fromiter((d["x"] for _, d in G.nodes(data=True)), dtype=np.float64, count=len(G))
    ys = np.fromiter((d["y"] for _, d in G.nodes(data=True)), dtype=np.float64, count=len(G))
    inside = shapely.intersects_xy(boundary, xs, ys)
    G.remove_nodes_from([n for n, keep in zip(nodes, inside, strict=True) if not keep])
    G.remove_nodes_from([n for n, deg in G.degree() if deg == 0])
    if len(G.edges) == 0:
        raise nothing_inside_error(source, boundary, int(inside.sum()))


def _add_missing_geometries(G: nx.MultiDiGraph) -> None:
    """Give every edge without a ``geometry`` the straight line between its end nodes."""
    bare = [data for _, _, data in G.edges(data=True) if "geometry" not in data]
    ends = np.array(
        [
            [(G.nodes[u]["x"], G.nodes[u]["y"]), (G.nodes[v]["x"], G.nodes[v]["y"])]
            for u, v, data in G.edges(data=True)
            if "geometry" not in data
        ],
        dtype=np.float64,
    ).reshape(-1, 2, 2)
    for data, line in zip(bare, shapely.linestrings(ends), strict=True):
        data["geometry"] = line


def _normalise_oneway(G: nx.MultiDiGraph) -> None:
    """Make ``oneway`` a bool on every edge (merged edges may hold a list; any one-way part counts)."""
    for _, _, data in G.edges(data=True):
        value = data.get("oneway", False)
        data["oneway"] = any(value) if isinstance(value, list) else bool(value)


def _largest_strong_component_size(G: nx.MultiDiGraph) -> tuple[int, int]:
    """Return (nodes in the largest strongly connected component, all nodes)."""
    largest = max((len(c) for c in nx.strongly_connected_components(G)), default=0)
    return largest, len(G)


def _write_osm_xml(elements: Iterable[Mapping[str, Any]], out_path: Path) -> tuple[int, int]:
    """Write Overpass-JSON elements (nodes, ways) as OSM XML, nodes first; return the two counts."""
    nodes: dict[int, Node] = {}
    ways: dict[int, Way] = {}
    for e in elements:
        if e["type"] == "node":
            nodes[e["id"]] = Node(id=e["id"], location=(e["lon"], e["lat"]), tags=e.get("tags", {}))
        elif e["type"] == "way":
            ways[e["id"]] = Way(id=e["id"], nodes=e["nodes"], tags=e.get("tags", {}))
    with osmium.SimpleWriter(out_path, overwrite=True) as writer:
        for node_id in sorted(nodes):
            writer.add_node(nodes[node_id])
        for way_id in sorted(ways):
            writer.add_way(ways[way_id])
    return len(nodes), len(ways)
