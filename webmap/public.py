"""Serve the public facility map: no login, public layers only (never households)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, current_app, render_template, url_for

from layers import schema
from webmap import maps
from webmap.store import get_district, get_store

if TYPE_CHECKING:
    import geopandas as gpd

    from layers.district import District

logger = logging.getLogger(__name__)

bp = Blueprint("public", __name__)

#: Statuses shown to the public, per layer: everything except closed facilities.
SHOWN_STATUSES = {layer: tuple(s for s in schema.STATUSES[layer] if s != "closed") for layer in schema.PUBLIC_LAYERS}

_ROADS_CACHE_KEY = "accessplan_main_roads"
_ROADS_CACHE_FILE = "main_roads.json"


@bp.get("/")
def index() -> str:
    """Show the public map, its legend, the data provenance and the facility list."""
    district = get_district()
    store = get_store()
    layers = {layer: store.features(layer, statuses=SHOWN_STATUSES[layer]) for layer in maps.LAYER_LABELS}
    roads = _main_roads(district)
    m = maps.public_map(
        district,
        layers,
        roads=roads,
        tile_url=current_app.config.get("TILE_URL"),
        tile_attr=current_app.config.get("TILE_ATTR"),
        static_url=_static_url,
    )
    return render_template(
        "public/index.html",
        district=district,
        map_parts=maps.render_map_parts(m),
        legend=[(layer, maps.LAYER_LABELS[layer], len(gdf)) for layer, gdf in layers.items()],
        facilities=_facility_rows(layers, district.towns),
        roads_shown=roads is not None,
        road_labels=maps.ROAD_LABELS,
        tile_attr=current_app.config.get("TILE_ATTR") if current_app.config.get("TILE_URL") else None,
    )


def _static_url(filename: str) -> str:
    return url_for("static", filename=filename)


def _facility_rows(layers: dict[str, gpd.GeoDataFrame], towns: gpd.GeoDataFrame) -> list[dict[str, str]]:
    """List every facility drawn on the map, in legend order, then by town code (then store order: id)."""
    town_names = dict(zip(towns[schema.TOWN_CODE], towns["name"], strict=True))
    rows = []
    for order, (layer, gdf) in enumerate(layers.items()):
        for record in gdf.to_dict("records"):
            town_code = str(record[schema.TOWN_CODE])
            rows.append(
                {
                    "order": (order, town_code),
                    "name": str(record[schema.NAME]),
                    "type": maps.LAYER_LABELS[layer],
                    "layer": layer,
                    "town": town_names.get(town_code, town_code),
                    "status": maps.STATUS_LABELS.get(record[schema.STATUS], record[schema.STATUS]),
                }
            )
    return sorted(rows, key=lambda r: r["order"])


def _main_roads(district: District) -> dict[str, Any] | None:
    """Return the district's main roads as GeoJSON, cached in memory and in the instance folder.

    The cache is keyed by the road file's path, size and modification time and lives in
    ``app.config["CACHE_DIR"]`` (default: ``<instance>/cache``); a missing road file gives None (the
    page is drawn without roads).
    """
    path = district.roads_path
    if not path.is_file():
        logger.warning("No road file at %r: the public map is drawn without roads", str(path))
        return None
    stat = path.stat()
    key = [str(path.resolve()), stat.st_size, stat.st_mtime_ns]
    memory = current_app.extensions.setdefault(_ROADS_CACHE_KEY, {})
    if memory.get("key") == key:
        return memory["roads"]
    cache_dir = Path(current_app.config["CACHE_DIR"])
    cache_path = Path(cache_dir) / _ROADS_CACHE_FILE
    roads = _read_roads_cache(cache_path, key)
    if roads is None:
        roads = maps.main_roads_from_osm(path)
        _write_roads_cache(cache_path, key, roads)
    memory.update(key=key, roads=roads)
    return roads


def _read_roads_cache(cache_path: Path, key: list[Any]) -> dict[str, Any] | None:
    try:
        payload = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return payload["roads"] if payload.get("key") == key else None


def _write_roads_cache(cache_path: Path, key: list[Any], roads: dict[str, Any]) -> None:
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"key": key, "roads": roads}, ensure_ascii=False), encoding="utf-8")
    tmp.replace(cache_path)
    logger.info("Cached %d main roads in %r", len(roads["features"]), str(cache_path))
