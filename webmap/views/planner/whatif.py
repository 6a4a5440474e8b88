"""What-if on the planner map: add, move and remove sites and close facilities; coverage follows each edit.

The start form (``/planner/whatif``) chooses the sites (a layer's facilities in service, or the sites of
a done siting job), the demand (households as planning points through ``analyses.inputs.load_demand``,
villages weighted by population, or a grid), the travel profile and one threshold. It opens a
server-side ``analyses.whatif.WhatIfSession`` (kept by ``webmap.whatif_sessions``: per account, bounded
in number and idle time) on the app's network and goes to its page. Each edit is a CSRF-protected POST
to ``/planner/whatif/<id>/edit`` (JSON from the page's script, or a plain form without script) answered
with the per-town and per-village tables, the district total, the sites and the demand points whose
covered state changed; the numbers are those a full ``measure_coverage`` gives for the sites in
service (``analyses.whatif``). New sites are named by their place (``analyses.places.PlaceNamer``).

A what-if is saved as a named scenario: a finished job of kind ``whatif`` (the jobs table already keeps
parameters, data versions, result and files per user and lists them with the other results; a table of
its own would repeat all of that). Its result and files are a coverage result's (``CoverageRun``), so
its page shows the coverage tables and map, and the compare page sets it against any coverage result
(``AnalysisKind.compare_as``). Its parameters keep every site, so it reopens as a new what-if.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from flask import abort, current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from layers import jobs as job_store
from layers import schema
from layers.privacy import Reader
from webmap.auth import role_required
from webmap.i18n import N_
from webmap.maps.base import render_map_parts
from webmap.maps.whatif import whatif_map
from webmap.runs import app_network
from webmap.security import nonced_map_parts
from webmap.store import get_district, get_store
from webmap.views.planner import coverage
from webmap.views.planner.forms import DEMANDS, FACILITY_LAYERS, PROFILES, choice_errors, number, threshold_errors
from webmap.views.planner.kind import DOWNLOADS, AnalysisKind, static_url, town_and_village_names
from webmap.views.planner.pages import PLANNER_ROLES, bp, get_job
from webmap.whatif_sessions import OpenWhatIf, sessions

if TYPE_CHECKING:
    import geopandas as gpd
    import numpy as np
    from werkzeug.wrappers import Response as BaseResponse

    from analyses.coverage import CoverageResult
    from analyses.places import PlaceNamer
    from layers.jobs import Job

KIND_NAME = "whatif"
STARTS = {"layer": N_("某图层在用的设施"), "siting": N_("已完成的选址结果中的站点")}
DEFAULTS = {"start": "layer", "facilities": schema.SERVICE_CENTRE, "siting_job": "", "demand": "household",
            "profile": "walk", "threshold": "15min", "grid_spacing": 400.0}  # fmt: skip
ACTIONS = ("add", "move", "remove", "close", "reopen")
#: Coordinates farther than this outside the district's bounding box are refused (degrees, ~5 km).
BOUNDS_MARGIN_DEG = 0.05
_NAMER_KEY = "accessplan_place_namer"


# --- the start form ------------------------------------------------------------------------------------


def read_form(data: Any) -> tuple[dict[str, Any], list[str]]:
    """Return the what-if's start choices from a submitted form and the problems found (naming the field)."""
    form: dict[str, Any] = {k: str(data.get(k, DEFAULTS[k] if k == "siting_job" else "")).strip() for k in DEFAULTS}
    errors = choice_errors(form, {"start": STARTS, "facilities": FACILITY_LAYERS, "demand": DEMANDS,
                                  "profile": PROFILES})  # fmt: skip
    errors += threshold_errors([form["threshold"]])
    form["grid_spacing"], more = number(form["grid_spacing"], _("网格间距"), 50, 5000)
    errors += more
    if form["start"] == "siting" and not form["siting_job"]:
        errors.append(_("从选址结果开始时，请选择一个已完成的选址任务。"))
    return form, errors


def siting_jobs() -> list[Job]:
    """Return the done siting jobs, newest first (the start form's second choice)."""
    return [j for j in job_store.list_jobs(get_store(), kind="siting", limit=50) if j.status == "done"]


def show_start(form: dict[str, Any], errors: list[str]) -> str:
    """Render the start form with ``form``'s values and ``errors``."""
    saved = [j for j in job_store.list_jobs(get_store(), kind=KIND_NAME, limit=50) if j.status == "done"]
    return render_template("planner/whatif_form.html", form=form, errors=errors, starts=STARTS,
                           layers=FACILITY_LAYERS, demands=DEMANDS, profiles=PROFILES, siting_jobs=siting_jobs(),
                           saved=saved)  # fmt: skip


@bp.route("/whatif", methods=("GET", "POST"))
@role_required(*PLANNER_ROLES)
def whatif() -> str | BaseResponse | tuple[str, int]:
    """Show the what-if start form; on POST open a what-if with those choices and go to its page."""
    if request.method == "GET":
        return show_start(dict(DEFAULTS), [])
    form, errors = read_form(request.form)
    if not errors:
        try:
            opened = open_whatif(form, starting_sites(form))
        except ValueError as exc:
            errors.append(str(exc))
    if errors:
        return show_start(form, errors), 400
    return redirect(url_for("planner.whatif_page", session_id=opened.id), code=303)


def starting_sites(form: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the sites a what-if starts from: ``id``, ``lon``, ``lat``, ``name``, ``existing``, ``in_service``.

    Raises
    ------
    werkzeug.exceptions.HTTPException
        400 if the siting job is not a done siting job (404 if there is none).
    """
    from analyses.inputs import load_points

    if form["start"] == "siting":
        record = get_job(form["siting_job"])
        if record.kind != "siting" or record.status != "done":
            abort(400, _("任务 %(id)s 不是已完成的选址任务。", id=record.id[:8]))
        return [{"id": str(s[schema.ID]), "lon": float(s["lon"]), "lat": float(s["lat"]), "name": s.get("name") or "",
                 "existing": bool(s.get("current")), "in_service": True}
                for s in (record.result or {}).get("sites", [])]  # fmt: skip
    layer = form["facilities"]
    points = load_points(layer, store=get_store(), district=get_district(),
                         statuses=tuple(schema.IN_SERVICE_STATUSES[layer]))  # fmt: skip
    wgs = points.to_crs(schema.WGS84)
    names = wgs[schema.NAME] if schema.NAME in wgs else [""] * len(wgs)
    return [{"id": str(i), "lon": float(g.x), "lat": float(g.y), "name": str(n or ""), "existing": True,
             "in_service": True} for i, g, n in zip(wgs[schema.ID], wgs.geometry, names, strict=True)]  # fmt: skip


def open_whatif(
    form: dict[str, Any], sites: list[dict[str, Any]], demand: gpd.GeoDataFrame | None = None
) -> OpenWhatIf:
    """Open the current user's what-if with ``form``'s choices on ``sites`` (closed ones start closed).

    ``demand`` replaces the form's demand when given (the benchmark measures households plus a grid).

    Raises
    ------
    ValueError
        If the demand cannot be read or the threshold is malformed (the message names it).
    """
    import geopandas as gpd

    from analyses.inputs import load_demand
    from analyses.runs.common import data_versions
    from analyses.runs.coverage import village_weight
    from analyses.whatif import WhatIfSession

    roads = app_network()(None)
    district = get_district()
    if demand is None:
        demand = load_demand(form["demand"], store=get_store(), district=district,
                             reader=Reader(user=current_user.name, channel="web"),
                             grid_spacing_m=float(form["grid_spacing"]))  # fmt: skip
    lon = [s["lon"] for s in sites]
    lat = [s["lat"] for s in sites]
    facilities = gpd.GeoDataFrame({schema.ID: [s["id"] for s in sites], schema.NAME: [s["name"] for s in sites]},
                                  geometry=gpd.points_from_xy(lon, lat), crs=schema.WGS84)  # fmt: skip
    versions = data_versions(roads.version, facilities=facilities, demand=demand)
    context = {"facilities": form["facilities"] if form["start"] == "layer" else f"siting:{form['siting_job']}",
               "demand": form["demand"], "data_versions": versions}  # fmt: skip
    engine = WhatIfSession(roads.placer, facilities, demand, profile=form["profile"], thresholds=[form["threshold"]],
                           weight_column=village_weight(form["demand"]), parameters=context)  # fmt: skip
    for site in sites:
        if not site["in_service"]:
            engine.close(site["id"])
    places = place_names(facilities)
    shown = {s["id"]: {"name": s["name"], "existing": s["existing"], "place": place}
             for s, place in zip(sites, places, strict=True)}  # fmt: skip
    numbers = [int(s["id"][1:]) for s in sites if s["id"][:1] == "P" and s["id"][1:].isdigit()]
    return sessions().add(current_user.name, engine, choices=dict(form), sites=shown, data_versions=versions,
                          next_number=max(numbers, default=0) + 1)  # fmt: skip


# --- places --------------------------------------------------------------------------------------------


def place_namer() -> PlaceNamer:
    """Return the app's place namer (the district's towns and villages on the app's roads), built once."""
    from analyses.places import PlaceNamer

    namer = current_app.extensions.get(_NAMER_KEY)
    if namer is None:
        namer = PlaceNamer.for_district(get_district(), app_network()(None).placer.net)
        current_app.extensions[_NAMER_KEY] = namer
    return namer


def place_names(points: gpd.GeoDataFrame) -> list[dict[str, str]]:
    """Return each point's place name in Chinese and English (``{"zh": ..., "en": ...}``)."""
    if not len(points):
        return []
    namer = place_namer()
    zh, en = namer.names(points, lang="zh"), namer.names(points, lang="en")
    return [{"zh": a, "en": b} for a, b in zip(zh, en, strict=True)]


def page_lang() -> str:
    """Return ``en`` when the page is in English, else ``zh`` (the place names' language)."""
    locale = get_locale()
    return "en" if locale is not None and locale.language == "en" else "zh"


# --- the page and its edits ----------------------------------------------------------------------------


def get_open(session_id: str) -> OpenWhatIf:
    """Return the current user's open what-if ``session_id``; 404 (with how to start again) otherwise."""
    found = sessions().get(session_id, current_user.name)
    if found is None:
        abort(404, _("没有这个推演（可能已过期或属于其他用户）；请重新开始推演。"))
    return found


@bp.get("/whatif/<session_id>")
@role_required(*PLANNER_ROLES)
def whatif_page(session_id: str) -> str:
    """Show an open what-if: the map with its sites and demand, the edit controls, the coverage tables."""
    opened = get_open(session_id)
    with opened.lock:
        state = whatif_state(opened, opened.engine.result(), points=False)
    district = get_district()
    m = whatif_map(district, static_url=static_url)
    parts = nonced_map_parts(render_map_parts(m))
    towns, villages = town_and_village_names(district)
    rows = district.villages
    village_options = sorted(f"{towns.get(str(t), '')} · {n}"
                             for t, n in zip(rows[schema.TOWN_CODE], rows[schema.NAME], strict=True))  # fmt: skip
    return render_template("planner/whatif.html", opened=opened, state=state, map_parts=parts, map_name=m.get_name(),
                           village_options=village_options, profiles=PROFILES, demands=DEMANDS)  # fmt: skip


@bp.get("/whatif/<session_id>/state.json")
@role_required(*PLANNER_ROLES)
def whatif_state_json(session_id: str) -> BaseResponse:
    """Return an open what-if's whole state, with every demand point's location and covered flag."""
    opened = get_open(session_id)
    with opened.lock:
        result = opened.engine.result()
        state = whatif_state(opened, result, points=True)
        opened.covered = covered_flags(result)
    return jsonify(state)


@bp.post("/whatif/<session_id>/edit")
@role_required(*PLANNER_ROLES)
def whatif_edit(session_id: str) -> BaseResponse | tuple[BaseResponse, int]:
    """Apply one edit: ``action`` (add, move, remove, close, reopen) with ``site_id``, ``lon``/``lat`` or ``village``.

    A JSON request is answered with the state after the edit (the tables, sites and ``changed`` points,
    ``server_ms``) or ``{"error": message}`` with 400; a form post (no script) goes back to the page.
    """
    started = time.perf_counter()
    opened = get_open(session_id)
    data = request.get_json(silent=True) if request.is_json else request.form
    if not hasattr(data, "get"):
        return _refused(_("请求内容须为 JSON 对象。"))
    with opened.lock:
        try:
            result = apply_edit(opened, data)
        except EditError as exc:
            return _refused(str(exc))
        if not request.is_json:
            return redirect(url_for("planner.whatif_page", session_id=opened.id), code=303)
        state = whatif_state(opened, result, points=False)
        flags = covered_flags(result)
        if opened.covered is not None and len(opened.covered) == len(flags):
            state["changed"] = {"covered": _indices(flags & ~opened.covered),
                                "uncovered": _indices(~flags & opened.covered)}  # fmt: skip
        else:
            state["covered"] = _indices(flags)
        opened.covered = flags
    state["server_ms"] = round(1000 * (time.perf_counter() - started), 1)
    return jsonify(state)


class EditError(ValueError):
    """An edit refused, with a message in the page's language naming the field, the value and the fix."""


def apply_edit(opened: OpenWhatIf, data: Any) -> CoverageResult:
    """Check ``data`` (an edit) against ``opened`` and apply it; return the coverage after.

    Raises
    ------
    EditError
        If the action, site or coordinates are not acceptable.
    """
    import geopandas as gpd

    action = str(data.get("action", ""))
    if action not in ACTIONS:
        raise EditError(_("“action”须为 %(choices)s 之一；收到 %(value)r。", choices=", ".join(ACTIONS), value=action))
    engine = opened.engine
    site_id = str(data.get("site_id") or "").strip()
    if action != "add" and site_id not in engine.sites:
        raise EditError(_("没有编号为 %(id)r 的站点；请从站点表中选择。", id=site_id))
    if action == "close":
        if not engine.sites[site_id]["in_service"]:
            raise EditError(_("站点 %(id)s 已关闭。", id=site_id))
        return engine.close(site_id)
    if action == "reopen":
        if engine.sites[site_id]["in_service"]:
            raise EditError(_("站点 %(id)s 已在服务中。", id=site_id))
        return engine.reopen(site_id)
    if action == "remove":
        if opened.sites[site_id]["existing"]:
            raise EditError(_("现有设施 %(id)s 不能移除，只能关闭（之后可重新启用）。", id=site_id))
        del opened.sites[site_id]
        return engine.remove_site(site_id)
    lon, lat = edit_location(data)
    point = gpd.GeoDataFrame(geometry=gpd.points_from_xy([lon], [lat]), crs=schema.WGS84)
    place = place_names(point)[0]
    if action == "move":
        opened.sites[site_id]["place"] = place
        return engine.move_site(site_id, lon=lon, lat=lat)
    site_id = f"P{opened.next_number}"
    opened.next_number += 1
    opened.sites[site_id] = {"name": "", "existing": False, "place": place}
    return engine.add_site(site_id, lon=lon, lat=lat)


def edit_location(data: Any) -> tuple[float, float]:
    """Return the WGS-84 location of an edit: its ``village`` (``镇街 · 村``) or its ``lon`` and ``lat``.

    Raises
    ------
    EditError
        If the village is unknown, or a coordinate is not a number inside the district's bounds.
    """
    district = get_district()
    village = str(data.get("village") or "").strip()
    if village:
        towns, _villages = town_and_village_names(district)
        rows = district.villages
        for town, name, lon, lat in zip(rows[schema.TOWN_CODE], rows[schema.NAME], rows[schema.LON], rows[schema.LAT],
                                        strict=True):  # fmt: skip
            if village in (f"{towns.get(str(town), '')} · {name}", str(name)):
                return float(lon), float(lat)
        example = f"{towns.get(str(rows[schema.TOWN_CODE].iloc[0]), '')} · {rows[schema.NAME].iloc[0]}"
        raise EditError(_("没有名为 %(value)r 的村（社区）；请从列表中选择，如“%(example)s”。", value=village,
                          example=example))  # fmt: skip
    minx, miny, maxx, maxy = district.boundary.to_crs(schema.WGS84).total_bounds
    values = []
    for key, label, low, high in (("lon", _("经度"), minx, maxx), ("lat", _("纬度"), miny, maxy)):
        low, high = round(low - BOUNDS_MARGIN_DEG, 3), round(high + BOUNDS_MARGIN_DEG, 3)
        text = data.get(key)
        try:
            value = float(text)
        except (TypeError, ValueError):
            value = math.nan
        if not low <= value <= high:
            raise EditError(_("%(label)s须为 %(low)s–%(high)s 之间的数字（WGS-84，区界范围内）；收到 %(value)r。",
                              label=label, low=low, high=high, value=text))  # fmt: skip
        values.append(value)
    return values[0], values[1]


def _refused(message: str) -> tuple[BaseResponse, int]:
    if request.is_json:
        return jsonify({"error": message}), 400
    abort(400, message)


def _indices(flags: np.ndarray) -> list[int]:
    import numpy as np

    return np.flatnonzero(flags).tolist()


def covered_flags(result: CoverageResult) -> np.ndarray:
    """Return the demand points' covered flags (the threshold's column), in the demand's order."""
    return result.points[result.coverage_columns[0]].to_numpy(dtype=bool)


def whatif_state(opened: OpenWhatIf, result: CoverageResult, *, points: bool) -> dict[str, Any]:
    """Return what the page shows: total, tables per town and village, the sites (and the demand points).

    Parameters
    ----------
    opened
        The what-if.
    result
        Its coverage now.
    points
        Add ``points`` (``[lat, lon]`` per demand point, WGS-84) and ``covered`` (indices of covered points).
    """
    district = get_district()
    towns, villages = town_and_village_names(district)
    column = result.coverage_columns[0]
    summary = result.summary
    lang = page_lang()
    state: dict[str, Any] = {
        "threshold": column.removeprefix("covered_"),
        "summary": {"points": summary["points"], "covered": summary[column]["covered"],
                    "share": summary[column]["weighted_share"], "unreachable": summary["unreachable"]},
        "by_town": _rows(result.by_town, column, towns),
        "by_village": _rows(result.by_village, column, villages),
        "sites": [],
    }  # fmt: skip
    for site_id, site in opened.engine.sites.items():
        shown = opened.sites.get(site_id, {"name": "", "existing": False, "place": {}})
        place = shown["place"].get(lang, "")
        state["sites"].append({"id": site_id, "lon": round(site["lon"], 6), "lat": round(site["lat"], 6),
                               "in_service": site["in_service"], "existing": shown["existing"],
                               "name": shown["name"], "place": place,
                               "label": f"{shown['name'] or place} ({site_id})"})  # fmt: skip
    if points:
        wgs = opened.engine.demand.geometry.to_crs(schema.WGS84)
        state["points"] = [[round(y, 6), round(x, 6)] for x, y in zip(wgs.x, wgs.y, strict=True)]
        state["covered"] = _indices(covered_flags(result))
    return state


def _rows(table: Any, column: str, names: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for code, row in table.iterrows():
        share = row[f"{column}_share"]
        rows.append({"code": str(code), "name": names.get(str(code), str(code)), "points": int(row["points"]),
                     "covered": int(row[f"{column}_count"]), "share": None if math.isnan(share) else float(share),
                     "unreachable": int(row["unreachable"])})  # fmt: skip
    return rows


# --- saved scenarios -----------------------------------------------------------------------------------


def saved_sites(opened: OpenWhatIf) -> list[dict[str, Any]]:
    """Return every site of ``opened`` as a saved scenario keeps it (location, in service, existing, names)."""
    out = []
    for site_id, site in opened.engine.sites.items():
        shown = opened.sites.get(site_id, {"name": "", "existing": False, "place": {}})
        out.append({"id": site_id, "lon": site["lon"], "lat": site["lat"], "in_service": site["in_service"],
                    "existing": shown["existing"], "name": shown["name"], "place": dict(shown["place"])})  # fmt: skip
    return out


@bp.post("/whatif/<session_id>/save")
@role_required(*PLANNER_ROLES)
def whatif_save(session_id: str) -> BaseResponse:
    """Save an open what-if as a named scenario (a done ``whatif`` job with its files); go to its page."""
    opened = get_open(session_id)
    name = request.form.get("name", "").strip()
    if not name or len(name) > 100:
        abort(400, _("方案名称须为 1–100 个字；收到 %(value)r。", value=name))
    with opened.lock:
        sites = saved_sites(opened)
        result = opened.engine.result()
        job_id = save_scenario(opened, name, sites, result)
    return redirect(url_for("planner.job", job_id=job_id), code=303)


def save_scenario(opened: OpenWhatIf, name: str, sites: list[dict[str, Any]], result: CoverageResult) -> str:
    """Store ``opened`` as a finished ``whatif`` job: parameters with every site, the coverage result and files.

    The files are those of a coverage run (``whatif.csv``, ``.xlsx``, ``.gpkg``, ``.geojson``: points,
    tables, the facilities in service and their places).
    """
    import geopandas as gpd

    from analyses.runs.coverage import CoverageRun
    from webmap import jobs

    store = get_store()
    parameters = {**opened.choices, "name": name, "sites": sites}
    job_id = job_store.create_job(store, KIND_NAME, parameters=parameters, created_by=current_user.name)
    job_store.claim_job(store, job_id)
    try:
        kept = [s for s in sites if s["in_service"]]
        facilities = gpd.GeoDataFrame(
            {schema.ID: [s["id"] for s in kept], schema.NAME: [s["name"] or s["place"].get("zh", "") for s in kept],
             "place": [s["place"].get("zh", "") for s in kept]},
            geometry=gpd.points_from_xy([s["lon"] for s in kept], [s["lat"] for s in kept]), crs=schema.WGS84,
        )  # fmt: skip
        run = CoverageRun(result.parameters, result, opened.engine.demand, facilities)
        out_dir = jobs.job_dir(job_id)
        out_dir.mkdir(parents=True, exist_ok=True)
        for fmt in DOWNLOADS:
            run.to_file(out_dir / f"{KIND_NAME}.{fmt}")
        payload = {**run.to_dict(points=False), "name": name, "sites": sites}
    except (OSError, ValueError) as exc:
        job_store.fail_job(store, job_id, _("保存方案失败：%(error)s", error=str(exc)))
        raise
    job_store.finish_job(store, job_id, result=payload, data_versions=opened.data_versions, result_path=str(out_dir))
    return job_id


@bp.post("/whatif/open/<job_id>")
@role_required(*PLANNER_ROLES)
def whatif_open(job_id: str) -> BaseResponse:
    """Open a saved scenario as a new what-if (its sites, open or closed, with its choices); go to its page."""
    record = get_job(job_id)
    if record.kind != KIND_NAME or record.status != "done":
        abort(400, _("任务 %(id)s 不是已保存的推演方案。", id=record.id[:8]))
    form = {k: record.parameters.get(k, v) for k, v in DEFAULTS.items()}
    try:
        opened = open_whatif(form, record.parameters.get("sites", []))
    except ValueError as exc:
        abort(400, str(exc))
    return redirect(url_for("planner.whatif_page", session_id=opened.id), code=303)


def result_context(record: Job) -> dict[str, Any]:
    """Return a saved scenario's page: the coverage tables and map, its sites with their places, comparable results."""
    context = coverage.result_context(record, stem=KIND_NAME)
    lang = page_lang()
    context["scenario_sites"] = [{**s, "place": (s.get("place") or {}).get(lang, "")}
                                 for s in record.parameters.get("sites", [])]  # fmt: skip
    listed = job_store.list_jobs(get_store(), limit=50)
    context["comparable"] = [j for j in listed if j.status == "done" and j.kind in ("coverage", "siting", KIND_NAME)
                             and j.id != record.id]  # fmt: skip
    return context


def result_sites(record: Job) -> list[dict[str, Any]]:
    """Return a saved scenario's sites in service: ``id``, ``lon``, ``lat``, ``name``, ``place`` (page's language)."""
    lang = page_lang()
    return [{"id": str(s["id"]), "lon": float(s["lon"]), "lat": float(s["lat"]), "name": s.get("name") or "",
             "place": (s.get("place") or {}).get(lang, "")}
            for s in record.parameters.get("sites", []) if s.get("in_service")]  # fmt: skip


def covered_points(record: Job) -> Any:
    """Return a saved scenario's demand points, covered within its threshold (as a coverage result's)."""
    return coverage.covered_points(record, stem=KIND_NAME)


def not_a_job(parameters: Any, **inputs: Any) -> Any:
    """Refuse to run a what-if as a job: it is saved from its page (``save_scenario``).

    Raises
    ------
    ValueError
        Always.
    """
    msg = "A what-if is saved from its page, not run as a job."
    raise ValueError(msg)


#: The saved scenarios' kind: not in the planner's menu of forms (its page has its own routes), but its
#: results open on the job page and compare with coverage results.
KIND = AnalysisKind(
    name=KIND_NAME,
    label=N_("推演方案"),
    path="/whatif",
    defaults=DEFAULTS,
    read_form=read_form,
    form_template="planner/whatif_form.html",
    form_choices={"starts": STARTS, "layers": FACILITY_LAYERS, "demands": DEMANDS, "profiles": PROFILES},
    parameters=dict,
    run=not_a_job,
    result_context=result_context,
    covered_points=covered_points,
    headline=coverage.headline,
    compare_as="coverage",
    compare_with=("siting",),
    sites=result_sites,
    summary_fields={"facilities": FACILITY_LAYERS, "threshold": None, "profile": PROFILES, "demand": DEMANDS,
                    "start": STARTS},  # fmt: skip
)
