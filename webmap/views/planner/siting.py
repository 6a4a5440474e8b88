"""Planner pages for service areas (catchments per facility) and siting (chosen sites, before/after).

Both are jobs like coverage and gaps (``webmap.views.planner``): the form is checked, a job is queued, the
job page shows progress and then the result (map, tables, downloads). The analyses are the same
runs as ``accessplan service-areas`` and ``accessplan site`` (``analyses.runs``). Routes are
registered on the planner blueprint when ``webmap.views.planner`` is set up.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import folium
from flask import render_template, url_for
from flask_babel import gettext as _

from layers import schema
from layers.spreadsheet import neutralise_formulas
from webmap import jobs, maps
from webmap.auth import role_required
from webmap.maps import N_
from webmap.security import nonced_map_parts
from webmap.store import get_district
from webmap.views.planner import (
    DEMANDS,
    DOWNLOADS,
    FACILITY_LAYERS,
    PLANNER_ROLES,
    PROFILES,
    _base_map,
    _finish_map,
    bp,
    counted,
    form_or_job,
    run_job,
    town_and_village_names,
)

if TYPE_CHECKING:
    import geopandas as gpd
    from werkzeug.wrappers import Response as BaseResponse

    from layers.district import District
    from layers.jobs import Job

logger = logging.getLogger(__name__)

#: Which facilities a service-areas run draws: in service now, planned (not built yet) or all.
STATUS_FILTERS = {"in_service": N_("在用的设施"), "planned": N_("规划中、在建的设施"), "all": N_("全部设施")}
SHAPES = {"roads": N_("沿道路（较准确）"), "hull": N_("可达范围外包（较快）")}
#: Defaults of the service-areas form (the 5-, 10- and 15-minute life circles on foot, DOMAIN.md §1).
SERVICE_AREAS_DEFAULTS = {"facilities": schema.SERVICE_CENTRE, "status_filter": "in_service", "profile": "walk",
                          "thresholds": "300m, 800m", "shape": "roads", "buffer_m": 50.0,
                          "demand": "village"}  # fmt: skip
#: The siting models of ``analyses.siting``.
MODELS = {
    "max_coverage": N_("最大覆盖（阈值内的需求最多）"),
    "p_median": N_("p-中位（总出行成本最小）"),
    "set_cover": N_("集合覆盖（覆盖全部需求的最少站点）"),
    "p_center": N_("p-中心（最远需求的成本最小）"),
}
METHODS = {"exact": N_("精确求解（HiGHS，给出最优性差距）"), "heuristic": N_("快速启发式（贪心加交换）")}
#: Defaults of the siting form: 15 渝馨家园, exactly one per town (镇街), today's centres kept.
SITING_DEFAULTS = {"layer": schema.SERVICE_CENTRE, "model": "max_coverage", "p": 15, "per_town": 1,
                   "keep_existing": True, "demand": "household", "profile": "drive", "threshold": "15min",
                   "candidate_radius": "2km", "candidates_per_town": 8, "method": "exact",
                   "time_limit": 60.0}  # fmt: skip
_SA_FILE = "service_areas"
_SITING_FILE = "siting"


def register_result_views(contexts: dict[str, Any]) -> dict[str, Any]:
    """Add the result-page builders of service areas and siting to ``contexts``; return the job functions."""
    contexts.update({"service_areas": _service_areas_context, "siting": _siting_context})
    return {"service_areas": run_service_areas_job, "siting": run_siting_job}


# --- service areas -------------------------------------------------------------------------------


@bp.route("/service-areas", methods=["GET", "POST"])
@role_required(*PLANNER_ROLES)
def service_areas() -> str | BaseResponse | tuple[str, int]:
    """Show the service-areas form; on POST queue a service-areas job and go to its page."""
    return form_or_job("service_areas", SERVICE_AREAS_DEFAULTS, read_service_areas_form, _service_areas_form)


def read_service_areas_form(data: Any) -> tuple[dict[str, Any], list[str]]:
    """Return the service-areas options from a submitted form and the problems found (Chinese, naming the field)."""
    form = {k: str(data.get(k, "")).strip() for k in SERVICE_AREAS_DEFAULTS}
    errors = _choice_errors(form, {"facilities": FACILITY_LAYERS, "status_filter": STATUS_FILTERS,
                                   "profile": PROFILES, "shape": SHAPES, "demand": DEMANDS})  # fmt: skip
    thresholds, more = _thresholds(form["thresholds"], limit=4)
    errors += more
    form["buffer_m"], more = _number(form["buffer_m"], _("道路缓冲距离"), 0, 500)
    errors += more
    form["thresholds"] = thresholds
    return form, errors


def run_service_areas_job(job: Job, progress: jobs.JobProgress, out_dir: Path) -> jobs.JobOutcome:
    """Draw service areas as ``accessplan service-areas`` does (``analyses.runs.service_areas``), from the form."""
    from analyses.runs.service_areas import ServiceAreasParameters, run_service_areas

    parameters = ServiceAreasParameters.from_form(job.parameters)
    return run_job(run_service_areas, job, parameters, _SA_FILE, progress, out_dir)


def _service_areas_form(form: dict[str, Any], *, errors: list[str]) -> str:
    shown = {**form, "thresholds": _joined(form["thresholds"])}
    return render_template("planner/service_areas_form.html", form=shown, errors=errors, layers=FACILITY_LAYERS,
                           status_filters=STATUS_FILTERS, profiles=PROFILES, shapes=SHAPES,
                           demands=DEMANDS)  # fmt: skip


def _service_areas_context(record: Job) -> dict[str, Any]:
    import geopandas as gpd

    district = get_district()
    result = record.result or {}
    town_names, _villages = town_and_village_names(district)
    path = Path(record.result_path or "") / f"{_SA_FILE}.gpkg"
    map_parts = None
    if path.is_file():
        areas = gpd.read_file(path, layer="service_areas")
        facilities = gpd.read_file(path, layer="facilities")
        m = service_areas_map(district, areas, facilities, static_url=lambda f: url_for("static", filename=f))
        map_parts = nonced_map_parts(maps.render_map_parts(m))
    per_facility = [{**row, "town_name": town_names.get(str(row.get(schema.TOWN_CODE)), "")}
                    for row in result.get("per_facility", [])]  # fmt: skip
    by_town = [{**row, "name": town_names.get(str(row[schema.TOWN_CODE]), "")} for row in result.get("by_town", [])]
    return {"result": result, "per_facility": per_facility, "by_town": by_town, "map_parts": map_parts,
            "coverage_columns": result.get("coverage_columns", []), "downloads": DOWNLOADS}  # fmt: skip


#: Fill colours of up to four thresholds, smallest first (darker = nearer).
_AREA_COLOURS = ("#0b4f9c", "#2f7ec1", "#6aa9d8", "#a9cdea")


def service_areas_map(district: District, areas: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame, *,
                      static_url: Any) -> folium.Map:  # fmt: skip
    """Build the service-areas map: each facility's catchment per threshold (largest drawn first), the facilities.

    Parameters
    ----------
    district
        Its boundary and town areas are drawn.
    areas
        One row per facility and threshold (EPSG:4326): ``facility_id``, ``threshold``, ``threshold_value``,
        ``area_m2``.
    facilities
        The facilities (EPSG:4326) with ``id`` and ``name``.
    static_url
        Turns a path under ``webmap/static/`` into a URL.
    """
    m = _base_map(district)
    labels = list(dict.fromkeys(areas.sort_values("threshold_value")["threshold"]))
    names = dict(zip(facilities[schema.ID].astype(str), facilities[schema.NAME].fillna(""), strict=True))
    for i, label in reversed(list(enumerate(labels))):
        rows = areas[(areas["threshold"] == label) & ~areas.geometry.is_empty].copy()
        rows["geometry"] = rows.geometry.simplify(0.00005)
        colour = _AREA_COLOURS[min(i, len(_AREA_COLOURS) - 1)]
        maps.labelled_geojson(
            rows[["geometry"]],
            [f"{names.get(str(f), '')} ({f}) · {label}" for f in rows["facility_id"]],
            name=_("服务范围 %(threshold)s（%(n)s 处设施）", threshold=label, n=len(rows)),
            style_function=lambda _f, c=colour: {"color": c, "weight": 1, "fillColor": c, "fillOpacity": 0.25},
        ).add_to(m)
    group = folium.FeatureGroup(name=_("设施（%(n)s）", n=len(facilities)))
    for row in facilities.itertuples():
        folium.CircleMarker([row.geometry.y, row.geometry.x], radius=6, color="#7a3e00", weight=2, fill=True,
                            fill_color="#f28c28", fill_opacity=0.95,
                            tooltip=maps.map_tooltip(f"{row.name or ''} ({row.id})")).add_to(group)  # fmt: skip
    group.add_to(m)
    return _finish_map(m, district, static_url)


# --- siting --------------------------------------------------------------------------------------


@bp.route("/siting", methods=["GET", "POST"])
@role_required(*PLANNER_ROLES)
def siting() -> str | BaseResponse | tuple[str, int]:
    """Show the siting form; on POST queue a siting job and go to its page."""
    return form_or_job("siting", SITING_DEFAULTS, read_siting_form, _siting_form)


def read_siting_form(data: Any) -> tuple[dict[str, Any], list[str]]:
    """Return the siting options from a submitted form and the problems found (Chinese, naming the field)."""
    from analyses.costs import parse_threshold

    form: dict[str, Any] = {k: str(data.get(k, "")).strip() for k in SITING_DEFAULTS}
    form["keep_existing"] = data.get("keep_existing") == "on"
    errors = _choice_errors(form, {"layer": FACILITY_LAYERS, "model": MODELS, "demand": DEMANDS,
                                   "profile": PROFILES, "method": METHODS})  # fmt: skip
    try:
        parse_threshold(form["threshold"])
    except ValueError:
        errors.append(_("阈值 %(value)r 无法识别：请写成 800m、1.5km 或 15min。", value=form["threshold"]))
    try:
        if parse_threshold(form["candidate_radius"]).weight != "length":
            raise ValueError
    except ValueError:
        errors.append(_("候选点范围须为距离，如 2km；收到 %(value)r。", value=form["candidate_radius"]))
    for key, label, low, high in (("p", _("站点总数 p"), 1, 500), ("per_town", _("每个镇街的站点数"), 1, 10),
                                  ("candidates_per_town", _("每个镇街的候选点数"), 0, 200)):  # fmt: skip
        if form[key] == "":
            form[key] = None
            continue
        form[key], more = _number(form[key], label, low, high, integer=True)
        errors += more
    form["time_limit"], more = _number(form["time_limit"], _("求解时间上限"), 1, 600)
    errors += more
    if form["model"] == "set_cover":
        form["p"] = None  # set cover finds the fewest sites itself
    elif form["p"] is None and form["per_town"] is None and form["model"] in MODELS:
        errors.append(_("该模型需要站点总数 p 或每个镇街的站点数。"))
    return form, errors


def run_siting_job(job: Job, progress: jobs.JobProgress, out_dir: Path) -> jobs.JobOutcome:
    """Choose sites as ``accessplan site`` does (``analyses.runs.siting``), from the job's form."""
    from analyses.runs.siting import SitingParameters, run_siting

    return run_job(run_siting, job, SitingParameters.from_form(job.parameters), _SITING_FILE, progress, out_dir)


def _siting_form(form: dict[str, Any], *, errors: list[str]) -> str:
    return render_template("planner/siting_form.html", form=form, errors=errors, layers=FACILITY_LAYERS,
                           models=MODELS, methods=METHODS, demands=DEMANDS, profiles=PROFILES)  # fmt: skip


def _siting_context(record: Job) -> dict[str, Any]:
    import geopandas as gpd

    district = get_district()
    result = record.result or {}
    town_names, village_names = town_and_village_names(district)
    path = Path(record.result_path or "") / f"{_SITING_FILE}.gpkg"
    map_parts = None
    if path.is_file():
        sites = gpd.read_file(path, layer="sites")
        assignment = gpd.read_file(path, layer="assignment")
        m = siting_map(district, sites, assignment, static_url=lambda f: url_for("static", filename=f))
        map_parts = nonced_map_parts(maps.render_map_parts(m))
    before = {}
    if result.get("comparison"):
        before = {str(r[schema.TOWN_CODE]): r for r in result["comparison"]["by_town"]}
    by_town = [{**row, "name": town_names.get(str(row[schema.TOWN_CODE]), ""),
                "share_before": before.get(str(row[schema.TOWN_CODE]), {}).get("covered_share_before")}
               for row in result.get("by_town", [])]  # fmt: skip
    by_village = [{**row, "name": village_names.get(str(row[schema.VILLAGE_CODE]), ""),
                   "town_name": town_names.get(str(row[schema.TOWN_CODE]), "")}
                  for row in result.get("by_village", [])]  # fmt: skip
    sites = [
        {**row, "town_name": town_names.get(str(row.get(schema.TOWN_CODE)), "")} for row in result.get("sites", [])
    ]
    return {"result": result, "by_town": by_town, "by_village": by_village, "sites": sites,
            "map_parts": map_parts, "downloads": DOWNLOADS, "models": MODELS}  # fmt: skip


def siting_map(district: District, sites: gpd.GeoDataFrame, assignment: gpd.GeoDataFrame, *,
               static_url: Any) -> folium.Map:  # fmt: skip
    """Build the siting map: chosen sites (kept and new), each demand point joined to its site, before/after.

    Parameters
    ----------
    district
        Its boundary and town areas are drawn.
    sites
        Chosen sites (EPSG:4326) with ``id``, ``name``, ``current`` and ``new``.
    assignment
        Demand points (EPSG:4326) with ``demand_id``, ``site_id``, ``covered`` (after) and
        ``covered_before``.
    static_url
        Turns a path under ``webmap/static/`` into a URL.
    """
    m = _base_map(district)
    located = sites.set_index(sites[schema.ID].astype(str)).geometry
    lines = folium.FeatureGroup(name=_("需求点与所分配站点的连线"))
    for row in assignment[assignment["site_id"].notna()].itertuples():
        site = located.get(str(row.site_id))
        if site is not None and row.geometry is not None:
            folium.PolyLine([[row.geometry.y, row.geometry.x], [site.y, site.x]], color="#8a96a3", weight=1,
                            opacity=0.6).add_to(lines)  # fmt: skip
    lines.add_to(m)
    groups = (
        (assignment["covered_before"] & assignment["covered"], _("原已覆盖的需求点"), "#1a7f37"),
        (~assignment["covered_before"] & assignment["covered"], _("新增覆盖的需求点"), "#0b6fa4"),
        (~assignment["covered"], _("仍未覆盖的需求点"), "#c62828"),
    )
    for mask, name, colour in groups:
        group = folium.FeatureGroup(name=counted(name, int(mask.sum())))
        for row in assignment[mask].itertuples():
            folium.CircleMarker([row.geometry.y, row.geometry.x], radius=3, color=colour, weight=1, fill=True,
                                fill_opacity=0.8, tooltip=maps.map_tooltip(row.demand_id)).add_to(group)  # fmt: skip
        group.add_to(m)
    counts = assignment["site_id"].value_counts()
    for new, name, fill in ((False, _("保留的现有站点"), "#0b4f9c"), (True, _("新选站点"), "#f28c28")):
        chosen = sites[sites["new"].astype(bool) == new]
        group = folium.FeatureGroup(name=counted(name, len(chosen)))
        for row in chosen.itertuples():
            label = _("%(name)s（%(id)s）：分配 %(n)s 个需求点", name=row.name or "", id=row.id,
                      n=int(counts.get(str(row.id), 0)))  # fmt: skip
            folium.CircleMarker([row.geometry.y, row.geometry.x], radius=8, color="#1f2933", weight=2,
                                fill=True, fill_color=fill, fill_opacity=0.95,
                                tooltip=maps.map_tooltip(label)).add_to(group)  # fmt: skip
        group.add_to(m)
    return _finish_map(m, district, static_url)


# --- shared form helpers -------------------------------------------------------------------------


def _choice_errors(form: dict[str, Any], choices: dict[str, Any]) -> list[str]:
    return [_("“%(field)s”须为 %(choices)s 之一；收到 %(value)r。", field=key, choices=", ".join(options),
              value=form[key]) for key, options in choices.items() if form[key] not in options]  # fmt: skip


def _thresholds(text: str, *, limit: int) -> tuple[list[str], list[str]]:
    from analyses.costs import parse_threshold

    values = [t.strip() for t in text.replace("，", ",").split(",") if t.strip()]
    errors = []
    for value in values:
        try:
            parse_threshold(value)
        except ValueError:
            errors.append(_("阈值 %(value)r 无法识别：请写成 800m、1.5km 或 15min。", value=value))
    if not values:
        errors.append(_("请至少填写一个阈值（如 800m 或 15min）。"))
    if len(values) > limit:
        errors.append(_("最多填写 %(n)s 个阈值。", n=limit))
    return values, errors


def _number(text: Any, label: str, low: float, high: float, *, integer: bool = False) -> tuple[Any, list[str]]:
    try:
        value = int(text) if integer else float(text)
        if not low <= value <= high:
            raise ValueError
    except (TypeError, ValueError):
        kind = _("整数") if integer else _("数字")
        return text, [_("%(label)s须为 %(low)s–%(high)s 之间的%(kind)s；收到 %(value)r。", label=label, low=low,
                        high=high, kind=kind, value=text)]  # fmt: skip
    return value, []


def _joined(values: Any) -> str:
    return ", ".join(values) if isinstance(values, list) else str(values)
