"""Road lines of a prepared network for drawing: each piece's class, street name and polyline.

Maps draw roads from the same prepared network the analyses route on (``analyses.costs.load_network``),
so a district whose roads come as OSM PBF, OSM XML or osmnx GraphML shows them, and the OSM ``name``
of a street reaches the map.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import LineString

if TYPE_CHECKING:
    from geo.prepared import PreparedNetwork

logger = logging.getLogger(__name__)

#: Highway classes drawn on the public map, in drawing order (the rest of the network would make the page heavy).
MAIN_HIGHWAYS = ("trunk", "primary", "secondary", "tertiary")
#: Street classes added to the main ones when the map is zoomed in to street level.
STREET_HIGHWAYS = ("unclassified", "residential", "living_street")
#: Zoom from which the map shows street names.
LABEL_MIN_ZOOM = 14


@dataclass(frozen=True)
class RoadBand:
    """The roads the map draws over a range of zooms: which classes, how simplified, with names or not.

    Attributes
    ----------
    name
        Key of the band in URLs (``district``, ``town``, ``street``).
    min_zoom
        First map zoom that uses this band (it lasts until the next band's ``min_zoom``).
    highways
        Classes drawn, in drawing order.
    tolerance_m
        Douglas–Peucker tolerance in metres (coarser when zoomed out).
    names
        Whether features keep their street names (only from ``LABEL_MIN_ZOOM``).
    """

    name: str
    min_zoom: int
    highways: tuple[str, ...]
    tolerance_m: float
    names: bool


#: The bands, by ``min_zoom``: the district view shows the through roads, a town view every main road,
#: the street view every named street with its name.
ROAD_BANDS = (
    RoadBand("district", 0, ("trunk", "primary", "secondary"), 30.0, names=False),
    RoadBand("town", 12, MAIN_HIGHWAYS, 10.0, names=False),
    RoadBand("street", LABEL_MIN_ZOOM, MAIN_HIGHWAYS + STREET_HIGHWAYS, 2.0, names=True),
)


def band_for_zoom(zoom: float) -> RoadBand:
    """Return the band of ``ROAD_BANDS`` the map uses at ``zoom`` (the last one whose ``min_zoom`` ≤ zoom)."""
    return [band for band in ROAD_BANDS if band.min_zoom <= zoom][-1] if zoom >= 0 else ROAD_BANDS[0]


def band_roads_geojson(net: PreparedNetwork, band: RoadBand) -> dict[str, Any]:
    """Return the roads of one ``RoadBand`` as GeoJSON (``main_roads_geojson`` with the band's settings)."""
    return main_roads_geojson(net, highways=band.highways, tolerance_m=band.tolerance_m, names=band.names)


#: Columns of ``road_lines``.
HIGHWAY = "highway"
NAME = "name"
_WGS84 = "EPSG:4326"


def road_lines(net: PreparedNetwork, *, highways: Iterable[str] | None = None) -> gpd.GeoDataFrame:
    """Return the road pieces of ``net`` as lines with their class and street name.

    Parameters
    ----------
    net
        The prepared network (``analyses.costs.load_network``).
    highways
        Keep only pieces of these ``highway`` classes (``X_link`` counts as ``X``); all when None.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per piece, in piece order, index the piece's position: ``highway`` (class, ``_link``
        kept), ``name`` (OSM ``name``, ``""`` where the road has none) and the LineString, in the
        network's CRS.
    """
    classes = net.piece_highway.astype(str)
    if highways is None:
        pieces = np.arange(net.n_pieces)
    else:
        wanted = sorted({str(h).removesuffix("_link") for h in highways})
        pieces = np.flatnonzero(np.isin(np.char.replace(classes, "_link", ""), wanted))
    ptr = net.piece_coord_ptr
    counts = ptr[pieces + 1] - ptr[pieces]
    starts = np.repeat(ptr[pieces], counts)
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    coords = net.piece_coords[starts + within]
    lines = shapely.linestrings(coords, indices=np.repeat(np.arange(len(pieces)), counts)) if len(pieces) else []
    return gpd.GeoDataFrame(
        {HIGHWAY: classes[pieces], NAME: net.piece_name.astype(str)[pieces]},
        geometry=gpd.GeoSeries(lines, crs=net.crs, index=pieces),
        index=pieces,
    )


def main_roads_geojson(
    net: PreparedNetwork,
    *,
    highways: Iterable[str] = MAIN_HIGHWAYS,
    tolerance_m: float = 10.0,
    names: bool = True,
) -> dict[str, Any]:
    """Return the main roads of ``net`` as light GeoJSON: one feature per class and street name.

    Pieces of one class (``X_link`` drawn as ``X``) and one name are merged into one MultiLineString
    (connected pieces joined), simplified and rounded, so the page carries a few features instead of
    thousands.

    Parameters
    ----------
    net
        The prepared network.
    highways
        Classes to keep, in drawing order (first is drawn first).
    tolerance_m
        Douglas–Peucker tolerance in metres, applied in the network's CRS; coordinates are then
        written in EPSG:4326 rounded to 5 decimals (about 1 m).
    names
        Keep street names; when False every name is ``""`` and each class is one feature (a lighter
        file for zoomed-out maps, which show no labels).

    Returns
    -------
    dict
        A GeoJSON FeatureCollection in EPSG:4326, features in ``highways`` order then by name, with
        properties ``highway``, ``name`` (``""`` for unnamed roads) and ``pieces`` (road pieces merged).
    """
    order = [str(h) for h in highways]
    lines = road_lines(net, highways=order)
    lines[HIGHWAY] = lines[HIGHWAY].str.removesuffix("_link")
    if not names:
        lines[NAME] = ""
    rank = {h: i for i, h in enumerate(order)}
    groups = sorted(lines.groupby([HIGHWAY, NAME], sort=False).groups.items(), key=lambda g: (rank[g[0][0]], g[0][1]))
    merged = [shapely.line_merge(shapely.multilinestrings(lines.geometry.loc[index].to_numpy())) for _, index in groups]
    simple = gpd.GeoSeries(shapely.simplify(merged, tolerance_m, preserve_topology=False), crs=net.crs).to_crs(_WGS84)
    features = []
    for ((highway, name), index), geometry in zip(groups, simple, strict=True):
        parts = [geometry] if isinstance(geometry, LineString) else list(geometry.geoms)
        coordinates = [[[round(x, 5), round(y, 5)] for x, y in part.coords] for part in parts if not part.is_empty]
        features.append(
            {
                "type": "Feature",
                "properties": {HIGHWAY: highway, NAME: name, "pieces": len(index)},
                "geometry": {"type": "MultiLineString", "coordinates": coordinates},
            }
        )
    logger.info("Drew %s main road pieces as %d features", f"{len(lines):,}", len(features))
    return {"type": "FeatureCollection", "features": features}
