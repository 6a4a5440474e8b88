"""Planner pages for service areas (catchments per facility) and siting (chosen sites, before/after).

Both are jobs like coverage and gaps (``webmap.planner``): the form is checked, a job is queued, the
job page shows progress and then the result (map, tables, downloads). The analyses are the same
calls as ``accessplan service-areas`` and ``accessplan site``; the glue they share with the CLI is in
``webmap.runs``. Routes are registered on the planner blueprint when ``webmap.planner`` is set up.
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
from webmap.planner import (
    DEMANDS,
    DOWNLOADS,
    FACILITY_LAYERS,
    PLANNER_ROLES,
    PROFILES,
    _base_map,
    _facility_points,
    _finish_map,
    _json_safe,
    bp,
    counted,
    form_or_job,
    town_and_village_names,
)
from webmap.security import nonced_map_parts
from webmap.store import get_district, get_store

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
    """Draw each facility's catchment as ``accessplan service-areas`` does; count the demand points inside.

    Writes ``service_areas.gpkg`` (``service_areas``, ``service_areas_dissolved``, ``facilities``,
    ``points``), ``.geojson`` (one area per facility and threshold), ``.csv`` (the per-facility table)
    and ``.xlsx`` (per facility, dissolved, per town, points).
    """
    import pandas as pd

    from analyses.inputs import layer_version, load_points
    from analyses.service_areas import service_areas as draw_service_areas
    from layers.io import write_features
    from webmap.runs import prepare_placer, protect_household_demand

    p = job.parameters
    progress.expect(5)
    placer, roads_version = prepare_placer(None, progress)
    progress.stage(N_("读取设施和需求点"))
    store, district = get_store(), get_district()
    statuses = _statuses(p["facilities"], p["status_filter"])
    facilities = load_points(p["facilities"], store=store, district=district, statuses=statuses)
    if not len(facilities):
        # The worker has no request (no locale): the message is stored in Chinese, the source language.
        msg = (f"图层 {p['facilities']} 没有符合状态筛选（{', '.join(statuses or ())}）的设施；"
               "请换一个筛选或先录入设施。")  # fmt: skip
        raise ValueError(msg)
    demand = protect_household_demand(p["demand"], load_points(p["demand"], store=store, district=district),
                                      store=store, user=job.created_by)  # fmt: skip
    progress.stage(N_("沿道路绘制每处设施的服务范围"))
    result = draw_service_areas(placer, facilities, profile=p["profile"], thresholds=p["thresholds"],
                                shape=p["shape"], buffer_m=p["buffer_m"])  # fmt: skip
    progress.stage(N_("统计服务范围内的需求点"))
    points, per_facility, columns = _points_in_areas(result, facilities, demand)
    by_town = _covered_by_town(points, columns)
    progress.stage(N_("写出结果文件（CSV、XLSX、GeoPackage、GeoJSON）"))
    path = out_dir / f"{_SA_FILE}.gpkg"
    result.to_file(path)
    write_features(_facility_points(facilities), path, layer_name="facilities", append=True)
    write_features(points, path, layer_name="points", append=True)
    result.to_file(out_dir / f"{_SA_FILE}.geojson")
    neutralise_formulas(per_facility).to_csv(out_dir / f"{_SA_FILE}.csv", index=False, encoding="utf-8-sig")
    with pd.ExcelWriter(out_dir / f"{_SA_FILE}.xlsx") as writer:
        neutralise_formulas(per_facility).to_excel(writer, sheet_name="per_facility", index=False)
        neutralise_formulas(pd.DataFrame(result.dissolved.drop(columns="geometry"))).to_excel(
            writer, sheet_name="dissolved", index=False
        )
        neutralise_formulas(pd.DataFrame(by_town)).to_excel(writer, sheet_name="by_town", index=False)
        neutralise_formulas(pd.DataFrame(points.drop(columns="geometry"))).to_excel(
            writer, sheet_name="points", index=False
        )
    dissolved = result.dissolved.drop(columns="geometry").to_dict("records")
    summary = [{**row, "points": len(points), "covered": int(points[c].sum())}
               for row, c in zip(dissolved, columns, strict=True)]  # fmt: skip
    versions = {**roads_version, "facilities": layer_version(facilities), "demand": layer_version(demand)}
    payload = {"parameters": {**result.parameters, "facility_statuses": list(statuses or ()), "demand": p["demand"]},
               "coverage_columns": columns, "summary": summary, "by_town": by_town,
               "per_facility": per_facility.to_dict("records")}  # fmt: skip
    return jobs.JobOutcome(result=_json_safe(payload), data_versions=_json_safe(versions))


def _statuses(layer: str, status_filter: str) -> tuple[str, ...] | None:
    return {"in_service": schema.IN_SERVICE_STATUSES[layer], "planned": schema.PLANNED_STATUSES[layer],
            "all": None}[status_filter]  # fmt: skip


def _points_in_areas(result: Any, facilities: gpd.GeoDataFrame, demand: gpd.GeoDataFrame):
    """Return the demand points with ``covered_<threshold>`` flags, the per-facility table and those columns.

    A point is covered at a threshold when it lies inside that threshold's dissolved area; the
    per-facility table counts the points inside each facility's own area.
    """
    import geopandas as gpd
    import pandas as pd

    wgs = demand.to_crs(schema.WGS84)
    keep = [c for c in (schema.TOWN_CODE, schema.VILLAGE_CODE) if c in wgs.columns]
    points = gpd.GeoDataFrame(
        {"demand_id": wgs[schema.ID].astype(str).to_numpy(), **{c: wgs[c].astype(str).to_numpy() for c in keep}},
        geometry=wgs.geometry.to_numpy(),
        crs=schema.WGS84,
    )
    columns = []
    for row in result.dissolved.itertuples():
        column = f"covered_{row.threshold}"
        points[column] = points.within(row.geometry) if row.geometry is not None else False
        columns.append(column)
    areas = result.areas.reset_index(drop=True)
    joined = gpd.sjoin(points[["demand_id", "geometry"]], areas[["geometry"]], predicate="within")
    inside = joined.groupby("index_right").size().reindex(areas.index, fill_value=0)
    info = facilities.assign(**{schema.ID: facilities[schema.ID].astype(str)}).set_index(schema.ID)
    per_facility = pd.DataFrame(
        {
            "facility_id": areas["facility_id"].astype(str),
            schema.NAME: info[schema.NAME].reindex(areas["facility_id"].astype(str)).to_numpy(),
            schema.TOWN_CODE: info[schema.TOWN_CODE].astype(str).reindex(areas["facility_id"].astype(str)).to_numpy(),
            "threshold": areas["threshold"],
            "too_far": areas["too_far"].astype(bool),
            "road_length_m": areas["road_length_m"].round(1),
            "area_km2": (areas["area_m2"] / 1e6).round(4),
            "points_inside": inside.to_numpy(),
        }
    )
    return points, per_facility, columns


def _covered_by_town(points: gpd.GeoDataFrame, columns: list[str]) -> list[dict[str, Any]]:
    """Per town: demand points and how many are covered under each ``covered_*`` column."""
    grouped = points.groupby(schema.TOWN_CODE)
    table = grouped.size().rename("points").to_frame()
    for c in columns:
        table[f"{c}_count"] = grouped[c].sum().astype(int)
        table[f"{c}_share"] = table[f"{c}_count"] / table["points"]
    return table.reset_index().to_dict("records")


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
    """Choose sites as ``accessplan site`` does, compare with today's sites, write the downloads.

    Stages: network, inputs, candidates, costs and solving (the model reports its own fractions),
    before/after, files. Writes ``siting.gpkg`` (``sites`` chosen, ``assignment`` per demand point
    with before/after coverage, ``candidates``), ``.geojson`` (chosen sites), ``.csv`` (chosen sites)
    and ``.xlsx`` (sites, assignment, per town, per village, before/after, summary).
    """
    import pandas as pd

    from analyses.costs import parse_threshold
    from analyses.inputs import layer_version, load_points
    from analyses.siting import compare_with_current, model_from_network
    from layers.io import write_features
    from webmap.runs import prepare_placer, protect_household_demand, site_pool, siting_candidates, siting_tables

    p = job.parameters
    progress.expect(6)
    placer, roads_version = prepare_placer(None, progress)
    store, district = get_store(), get_district()
    progress.stage(N_("读取设施和需求点"))
    layer = store.features(p["layer"])
    demand = protect_household_demand(p["demand"], load_points(p["demand"], store=store, district=district),
                                      store=store, user=job.created_by)  # fmt: skip
    progress.stage(N_("生成候选站点"))
    candidates = siting_candidates(placer, source=None, radius=p["candidate_radius"],
                                   per_town=p["candidates_per_town"])  # fmt: skip
    sites, current = site_pool(p["layer"], layer, candidates)
    town_names, village_names = town_and_village_names(district)
    options: dict[str, Any] = {"quota": p["per_town"], "existing": current if p["keep_existing"] else None,
                               "zone_labels": town_names}  # fmt: skip
    if p["model"] != "set_cover":
        options["p"] = p["p"] if p["p"] is not None else p["per_town"] * len(district.towns)
    progress.stage(N_("计算网络成本并求解"))
    model = model_from_network(p["model"], placer, demand, sites, profile=p["profile"], cutoff=p["threshold"],
                               weight_column=schema.POPULATION if p["demand"] == "village" else None,
                               progress=lambda text, fraction: progress(_SOLVER_STAGES.get(text, text), fraction),
                               **options)  # fmt: skip
    result = model.solve(method=p["method"], time_limit_s=p["time_limit"])
    progress.stage(N_("与现有站点对比（前后对比）"))
    comparison = compare_with_current(model, result, current) if current else None
    threshold = parse_threshold(p["threshold"]).value
    table, assignment = siting_tables(result, sites, demand, threshold=threshold, kept=options["existing"])
    before = comparison.before.costs if comparison is not None else {}
    assignment["covered_before"] = [bool(before.get(d, float("nan")) <= threshold) for d in assignment["demand_id"]]
    located = demand.assign(**{schema.ID: demand[schema.ID].astype(str)}).set_index(schema.ID)
    for column in (schema.TOWN_CODE, schema.VILLAGE_CODE):
        if column in located.columns:
            assignment[column] = located[column].astype(str).reindex(assignment["demand_id"]).to_numpy()
    by_village = _siting_by_village(assignment) if schema.VILLAGE_CODE in assignment.columns else []
    progress.stage(N_("写出结果文件（CSV、XLSX、GeoPackage、GeoJSON）"))
    chosen = table[table["selected"]].astype({"current": bool})
    path = out_dir / f"{_SITING_FILE}.gpkg"
    write_features(chosen, path, layer_name="sites")
    write_features(assignment.to_crs(schema.WGS84), path, layer_name="assignment", append=True)
    write_features(table.astype({"current": bool}), path, layer_name="candidates", append=True)
    write_features(chosen, out_dir / f"{_SITING_FILE}.geojson", layer_name="sites")
    plain_sites = pd.DataFrame(chosen.drop(columns="geometry"))
    neutralise_formulas(plain_sites).to_csv(out_dir / f"{_SITING_FILE}.csv", index=False, encoding="utf-8-sig")
    payload = result.to_dict()
    payload.pop("assignment")
    payload["parameters"] = {**payload["parameters"], "layer": p["layer"], "demand": p["demand"],
                             "current_sites": current, "method": p["method"]}  # fmt: skip
    payload["threshold_value"] = threshold
    payload["sites"] = plain_sites.to_dict("records")
    payload["by_village"] = by_village
    payload["comparison"] = None
    if comparison is not None:
        payload["comparison"] = {"summary": dict(comparison.summary),
                                 "by_town": comparison.by_town.reset_index().to_dict("records")}  # fmt: skip
    with pd.ExcelWriter(out_dir / f"{_SITING_FILE}.xlsx") as writer:
        neutralise_formulas(plain_sites).to_excel(writer, sheet_name="sites", index=False)
        neutralise_formulas(pd.DataFrame(assignment.drop(columns="geometry"))).to_excel(
            writer, sheet_name="assignment", index=False
        )
        neutralise_formulas(result.by_town).to_excel(writer, sheet_name="by_town")
        neutralise_formulas(pd.DataFrame(by_village)).to_excel(writer, sheet_name="by_village", index=False)
        if comparison is not None:
            neutralise_formulas(comparison.by_town).to_excel(writer, sheet_name="before_after")
        summary = {k: v for k, v in payload.items() if k not in ("sites", "by_town", "by_village")}
        neutralise_formulas(pd.json_normalize(_json_safe(summary)).T).to_excel(
            writer, sheet_name="summary", header=False
        )
    versions = {**roads_version, "facilities": layer_version(layer), "demand": layer_version(demand)}
    return jobs.JobOutcome(result=_json_safe(payload), data_versions=_json_safe(versions))


#: The siting models' progress stages, for people.
_SOLVER_STAGES = {"matrix built": N_("网络成本表已算好"), "model built": N_("模型已建立"),
                  "solving": N_("正在求解"), "done": N_("求解完成")}  # fmt: skip


def _siting_by_village(assignment: Any) -> list[dict[str, Any]]:
    """Per village: demand points, covered with today's sites (before) and with the chosen ones (after)."""
    grouped = assignment.groupby([schema.TOWN_CODE, schema.VILLAGE_CODE])
    table = grouped.size().rename("points").to_frame()
    table["covered_before"] = grouped["covered_before"].sum().astype(int)
    table["covered_after"] = grouped["covered"].sum().astype(int)
    return table.reset_index().to_dict("records")


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
