"""Run the analyses for the command line and for the planner's jobs alike: inputs, versions, files.

Both callers pass a progress object with a ``stage(text)`` method (the CLI prints it, a job stores it).
The analyses import osmnx, scipy and shapely, so they are imported inside the functions: the app and
`accessplan --help` start without them.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import geopandas as gpd
import pandas as pd
from flask import Flask, current_app

from layers import schema
from layers.spreadsheet import neutralise_formulas
from webmap.store import get_district, get_store

if TYPE_CHECKING:
    from analyses.costs import Placer


_PLACER_KEY = "accessplan_placer"
_PLACER_LOCK = threading.Lock()
logger = logging.getLogger(__name__)


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

    For pages that route on every request (visit lists, a toilet's before/after coverage). Threads
    asking at the same time wait for one preparation (``accessplan serve`` starts it in the background,
    see `warm_app_placer`) instead of each preparing the network.
    """
    from analyses.costs import Placer, load_district_network

    placer = current_app.extensions.get(_PLACER_KEY)
    if placer is not None:
        return placer
    with _PLACER_LOCK:
        placer = current_app.extensions.get(_PLACER_KEY)
        if placer is None:
            cache_dir = Path(current_app.config["CACHE_DIR"]) / "networks"
            placer = Placer(load_district_network(get_district(), cache_dir=cache_dir))
            current_app.extensions[_PLACER_KEY] = placer
    return placer


def warm_app_placer(app: Flask) -> threading.Thread:
    """Prepare ``app``'s district network in a daemon thread, so no request waits for it; return the thread."""

    def warm() -> None:
        with app.app_context():
            try:
                app_placer()
            except Exception:  # the request that needs the network will raise it again, with its page
                logger.exception("Preparing the district road network in the background failed")
            else:
                logger.info("The district road network is prepared for routing pages")

    thread = threading.Thread(target=warm, name="accessplan-warm-network", daemon=True)
    thread.start()
    return thread


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
    user = options.get("user")  # a planner's job names its user; a command does not
    demand = protect_household_demand(options["demand"], demand, store=store, user=user or "cli",
                                      channel="web" if user else "cli")  # fmt: skip
    versions = {**roads_version, "facilities": layer_version(facilities), "demand": layer_version(demand)}
    parameters = {"facilities": options["facilities"], "facility_statuses": list(statuses or ()),
                  "demand": options["demand"], "data_versions": versions}  # fmt: skip
    return placer, facilities, demand, parameters


def protect_household_demand(
    source: str, demand: gpd.GeoDataFrame, *, store: Any, user: str, channel: str = "web"
) -> gpd.GeoDataFrame:
    """Return ``demand`` as is, or, when ``source`` is the household layer, as generalised planning points.

    The household read is written to the access log (``user``, row count, purpose, ``channel``: ``web``
    for a planner's job, ``cli`` for a command).

    Every screen and download of an analysis shows its demand points, so households go in as
    `layers.privacy.PLANNING_COLUMNS` (plus ``urban``) on the 0.001° grid (~100 m): no address,
    category or grade, and no exact location, ever reaches a planner's results.
    """
    from layers.privacy import log_bulk_read, planning_view

    if source != schema.HOUSEHOLD:
        return demand
    log_bulk_read(store, len(demand), user=user, purpose="analysis demand (generalised points)", channel=channel)
    return planning_view(demand, extra=("urban",))


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
        neutralise_formulas(points).to_csv(path, index=False, encoding="utf-8-sig")
    elif suffix == ".xlsx":
        with pd.ExcelWriter(path) as writer:
            neutralise_formulas(points).to_excel(writer, sheet_name="points", index=False)
            neutralise_formulas(result.by_town).to_excel(writer, sheet_name="by_town")
            neutralise_formulas(result.by_village).to_excel(writer, sheet_name="by_village")
            neutralise_formulas(pd.json_normalize(result.summary).T).to_excel(
                writer, sheet_name="summary", header=False
            )
    elif suffix == ".gpkg":
        geometry = demand.set_index(demand[schema.ID].astype(str)).geometry.reindex(points["demand_id"])
        gdf = gpd.GeoDataFrame(points, geometry=geometry.to_numpy(), crs=demand.crs)
        gdf.astype({c: "string" for c in gdf.columns if gdf[c].dtype == object}).to_file(path, layer="coverage")
    else:
        msg = f"A coverage result is written as .json, .csv, .gpkg or .xlsx; got {str(path)!r}."
        raise ValueError(msg)


# --- siting glue shared by `accessplan site` and the planner's siting jobs ---------------------------

#: Facilities open today, per layer (toilets: ``analyses.siting.kept_toilets``).
OPEN_STATUSES = ("open",)
#: Column of the assignment table naming the site a demand point is assigned to.
SITE_ID = "site_id"


def siting_candidates(
    placer: Placer,
    *,
    source: str | None,
    radius: str = "2km",
    per_town: int | None = 20,
    datum: str | None = None,
) -> gpd.GeoDataFrame:
    """Return candidate sites: from a layer or point file, or road nodes near the town seats.

    Parameters
    ----------
    placer
        The prepared network (generated candidates are its nodes).
    source
        A layer name or point file; None generates candidates near the seats.
    radius
        Generated candidates: largest distance from a seat, as text with a unit (``"2km"``).
    per_town
        Generated candidates: at most this many per town (None or 0: all).
    datum
        Datum of a CSV/XLSX point file.

    Raises
    ------
    ValueError
        If ``radius`` is not a distance or the source cannot be read.
    """
    from analyses.candidates import candidates_near_seats, load_candidates
    from analyses.costs import parse_threshold

    district = get_district()
    if source:
        return load_candidates(source, store=get_store(), district=district, datum=datum)
    parsed = parse_threshold(radius)
    if parsed.weight != "length":
        msg = f"`--candidate-radius` is a distance such as 2km; got {radius!r}."
        raise ValueError(msg)
    return candidates_near_seats(placer.net, district.towns, radius_m=parsed.value, per_town_max=per_town or None,
                                 crs=schema.WGS84)  # fmt: skip


def site_pool(layer_name: str, layer: gpd.GeoDataFrame, candidates: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, list]:
    """Return every site the model may open (today's facilities first) and the ids open today.

    Raises
    ------
    ValueError
        If candidate ids repeat each other or ids of the layer.
    """
    from analyses.siting import kept_toilets

    if layer_name == schema.ACCESSIBLE_TOILET:
        open_now = kept_toilets(layer) if len(layer) else pd.Series(False, index=layer.index)
        offered = layer  # planned new builds are candidates too
    else:
        open_now = layer[schema.STATUS].isin(OPEN_STATUSES)
        offered = layer.loc[open_now]
    facilities = offered.assign(source=layer_name, current=open_now.loc[offered.index].to_numpy())
    columns = [schema.ID, schema.TOWN_CODE, schema.NAME, "source", "current", "geometry"]
    cands = candidates.assign(current=False)
    for c in columns:
        if c not in cands.columns:
            cands[c] = None
    pool = pd.concat([facilities[columns], cands[columns].to_crs(facilities.crs or schema.WGS84)], ignore_index=True)
    pool[schema.ID] = pool[schema.ID].astype(str)
    repeated = pool.loc[pool[schema.ID].duplicated(), schema.ID].unique().tolist()
    if repeated:
        msg = f"Candidate ids repeat ids of the {layer_name} layer or each other: {repeated[:5]!r}; rename them."
        raise ValueError(msg)
    pool[schema.TOWN_CODE] = pool[schema.TOWN_CODE].astype(str)
    pool = gpd.GeoDataFrame(pool, geometry="geometry", crs=facilities.crs or schema.WGS84)
    current = pool.loc[pool["current"].astype(bool), schema.ID].tolist()
    return pool, current


def siting_tables(
    result: Any, sites: gpd.GeoDataFrame, demand: gpd.GeoDataFrame, *, threshold: float, kept: Any = ()
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Return the site table (every candidate, ``selected`` and ``new`` flags, lon/lat) and the assignment.

    The assignment has ``demand_id``, ``site_id``, ``cost`` and ``covered`` (cost within ``threshold``,
    the model's cutoff in its unit) per demand point, located at the point (EPSG:4326 when ``demand`` is).
    """
    chosen = set(result.selected)
    kept = set(kept or ())
    wgs = sites.to_crs(schema.WGS84).geometry
    table = sites.assign(
        selected=sites[schema.ID].isin(chosen),
        new=sites[schema.ID].isin(chosen - kept) & ~sites["current"].astype(bool),
        lon=wgs.x,
        lat=wgs.y,
    )
    ids = list(result.assignment)
    assign = pd.DataFrame(
        {"demand_id": ids, SITE_ID: [result.assignment[d] for d in ids], "cost": [result.costs[d] for d in ids]}
    )
    assign["covered"] = assign["cost"] <= threshold
    geometry = demand.set_index(demand[schema.ID].astype(str)).geometry.reindex(assign["demand_id"])
    points = gpd.GeoDataFrame(assign, geometry=geometry.to_numpy(), crs=demand.crs)
    return gpd.GeoDataFrame(table, geometry="geometry", crs=sites.crs), points
