"""Run the analyses for the command line and for the planner's jobs alike: inputs, versions, files.

Both callers pass a progress object with a ``stage(text)`` method (the CLI prints it, a job stores it).
The analyses import osmnx, scipy and shapely, so they are imported inside the functions: the app and
`accessplan --help` start without them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import geopandas as gpd
import pandas as pd
from flask import current_app

from layers import schema
from webmap.store import get_district, get_store

if TYPE_CHECKING:
    from analyses.costs import Placer


_PLACER_KEY = "accessplan_placer"


class Stages(Protocol):
    """Anything that can announce the next stage of a run."""

    def stage(self, text: str) -> None:
        """Announce the next stage."""


def prepare_placer(roads: str | None, progress: Stages) -> tuple[Placer, dict[str, Any]]:
    """Return the prepared network (the district's roads, or ``roads``) and its file version.

    The network is prepared once per road file and profile table and cached in ``CACHE_DIR/networks``.
    """
    from analyses.costs import Placer, load_district_network
    from analyses.inputs import file_sha256

    district = get_district()
    roads_path = Path(roads) if roads else district.roads_path
    progress.stage(f"preparing the road network {roads_path.name} (cached after the first run)")
    cache_dir = Path(current_app.config["CACHE_DIR"]) / "networks"
    net = load_district_network(district, cache_dir=cache_dir, roads_path=roads_path)
    return Placer(net), {"roads": str(roads_path), "roads_sha256": file_sha256(roads_path)}


def app_placer() -> Placer:
    """Return the current app's prepared district network with its snapping indexes, loaded once per app.

    For pages that route on every request (visit lists, a toilet's before/after coverage).
    """
    from analyses.costs import Placer, load_district_network

    placer = current_app.extensions.get(_PLACER_KEY)
    if placer is None:
        cache_dir = Path(current_app.config["CACHE_DIR"]) / "networks"
        placer = Placer(load_district_network(get_district(), cache_dir=cache_dir))
        current_app.extensions[_PLACER_KEY] = placer
    return placer


def read_inputs(options: dict[str, Any], progress: Stages) -> tuple[Placer, gpd.GeoDataFrame, gpd.GeoDataFrame, dict]:
    """Prepare the network and read facilities and demand; return them with the run's parameters.

    ``options``: ``facilities`` and ``demand`` (layer, ``village``, ``grid`` or a file), optional
    ``statuses``, ``datum``, ``grid_spacing`` and ``roads``. The parameters record the data versions
    (road file hash, row counts and last change of each input).

    Raises
    ------
    ValueError
        If a layer or file cannot be read (the message names it and the fix).
    """
    from analyses.inputs import layer_version, load_points

    placer, roads_version = prepare_placer(options.get("roads"), progress)
    store, district = get_store(), get_district()
    progress.stage("reading the facility and demand points")
    statuses = tuple(options.get("statuses") or ()) or None
    facilities = load_points(options["facilities"], store=store, district=district, statuses=statuses,
                             datum=options.get("datum"))  # fmt: skip
    demand = load_points(options["demand"], store=store, district=district, datum=options.get("datum"),
                         grid_spacing_m=options.get("grid_spacing", 400.0))  # fmt: skip
    versions = {**roads_version, "facilities": layer_version(facilities), "demand": layer_version(demand)}
    parameters = {"facilities": options["facilities"], "facility_statuses": list(statuses or ()),
                  "demand": options["demand"], "data_versions": versions}  # fmt: skip
    return placer, facilities, demand, parameters


def write_json(payload: dict[str, Any], path: str | Path) -> None:
    """Write ``payload`` as UTF-8 JSON (Chinese kept readable)."""
    Path(path).write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str), encoding="utf-8")


def write_coverage(result: Any, demand: gpd.GeoDataFrame, path: str | Path) -> None:
    """Write a coverage result as JSON (stable keys), CSV (points), XLSX (points, tables) or GeoPackage.

    Raises
    ------
    ValueError
        If the extension is not one of those.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        write_json(result.to_dict(), path)
        return
    points = result.points.reset_index()
    if suffix == ".csv":
        points.to_csv(path, index=False, encoding="utf-8-sig")
    elif suffix == ".xlsx":
        with pd.ExcelWriter(path) as writer:
            points.to_excel(writer, sheet_name="points", index=False)
            result.by_town.to_excel(writer, sheet_name="by_town")
            result.by_village.to_excel(writer, sheet_name="by_village")
            pd.json_normalize(result.summary).T.to_excel(writer, sheet_name="summary", header=False)
    elif suffix == ".gpkg":
        geometry = demand.set_index(demand[schema.ID].astype(str)).geometry.reindex(points["demand_id"])
        gdf = gpd.GeoDataFrame(points, geometry=geometry.to_numpy(), crs=demand.crs)
        gdf.astype({c: "string" for c in gdf.columns if gdf[c].dtype == object}).to_file(path, layer="coverage")
    else:
        msg = f"A coverage result is written as .json, .csv, .gpkg or .xlsx; got {str(path)!r}."
        raise ValueError(msg)
