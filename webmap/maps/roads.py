"""The main roads drawn on the public map, read from the district's road file."""

from __future__ import annotations

import bz2
import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import shapely
from shapely.geometry import LineString, MultiLineString

logger = logging.getLogger(__name__)

#: Highway classes drawn on the public map (the rest of the network would make the page heavy).
MAIN_HIGHWAYS = ("trunk", "primary", "secondary", "tertiary")


def main_roads_from_osm(
    path: str | Path,
    *,
    highways: Iterable[str] = MAIN_HIGHWAYS,
    tolerance_deg: float = 0.0001,
) -> dict[str, Any]:
    """Read the main roads of an OSM XML file (``.osm`` or ``.osm.bz2``) as light GeoJSON.

    Ways of one ``highway`` class are merged into one MultiLineString (connected ways joined),
    simplified and rounded, so the page carries a few features instead of a thousand.

    Parameters
    ----------
    path
        OSM XML file; node coordinates are WGS-84.
    highways
        ``highway`` tag values to keep, in drawing order (first is drawn first).
    tolerance_deg
        Douglas–Peucker tolerance in degrees (0.0001° ≈ 10 m); coordinates are rounded to 5 decimals.

    Returns
    -------
    dict
        A GeoJSON FeatureCollection with one feature per class present, properties ``highway`` and
        ``ways`` (number of OSM ways merged).
    """
    path = Path(path)
    keep = tuple(highways)
    nodes: dict[str, tuple[float, float]] = {}
    lines: dict[str, list[LineString]] = {highway: [] for highway in keep}
    n_ways = 0
    with _open_osm(path) as f:
        for _event, elem in ET.iterparse(f, events=("end",)):
            if elem.tag == "node":
                nodes[elem.get("id")] = (float(elem.get("lon")), float(elem.get("lat")))
                elem.clear()
            elif elem.tag == "way":
                n_ways += 1
                highway = next((t.get("v") for t in elem.iter("tag") if t.get("k") == "highway"), None)
                if highway in lines:
                    coords = [nodes[r] for r in (nd.get("ref") for nd in elem.iter("nd")) if r in nodes]
                    if len(coords) >= 2:
                        lines[highway].append(LineString(coords))
                elem.clear()
    features = [_road_feature(highway, ways, tolerance_deg) for highway, ways in lines.items() if ways]
    logger.info(
        "Read %d main road ways (of %d ways) from %r",
        sum(len(ways) for ways in lines.values()),
        n_ways,
        str(path),
    )
    return {"type": "FeatureCollection", "features": features}


def _road_feature(highway: str, ways: list[LineString], tolerance_deg: float) -> dict[str, Any]:
    merged = shapely.line_merge(MultiLineString(ways)).simplify(tolerance_deg, preserve_topology=False)
    parts = [merged] if isinstance(merged, LineString) else list(merged.geoms)
    coordinates = [[[round(x, 5), round(y, 5)] for x, y in part.coords] for part in parts if not part.is_empty]
    return {
        "type": "Feature",
        "properties": {"highway": highway, "ways": len(ways)},
        "geometry": {"type": "MultiLineString", "coordinates": coordinates},
    }


def _open_osm(path: Path) -> IO[bytes]:
    if path.suffix == ".bz2":
        return bz2.open(path, "rb")
    return path.open("rb")
