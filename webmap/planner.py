"""Planner pages: analysis forms that run as jobs, progress, result maps and tables, downloads, targets.

Only planners and admins reach these pages. Households appear in results only as ids with their town
and village (the analyses never read personal fields). Every analysis is a job (``webmap.jobs``):
the form returns at once with a link to the job's page, which shows a progress bar until the result
is ready; results, with their parameters and data versions, stay in the store and can be reopened.
"""

from __future__ import annotations

import html
import json
import logging
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import folium
from flask import (
    Blueprint,
    abort,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_babel import gettext
from flask_login import current_user

from analyses.runs import stages
from layers import jobs as job_store
from layers import schema
from layers.errors import NotFoundError
from layers.privacy import ADMIN, PLANNER, Reader
from webmap import jobs, maps
from webmap.assets import localize_assets_inplace
from webmap.auth import role_required
from webmap.maps import N_
from webmap.runs import app_network
from webmap.security import nonced_map_parts
from webmap.store import get_district, get_store

if TYPE_CHECKING:
    from collections.abc import Callable

    import geopandas as gpd
    from flask import Flask
    from werkzeug.wrappers import Response as BaseResponse

    from layers.district import District
    from layers.jobs import Job

logger = logging.getLogger(__name__)

bp = Blueprint("planner", __name__, url_prefix="/planner")

PLANNER_ROLES = (PLANNER, ADMIN)
PROFILES = {"walk": N_("步行"), "wheelchair": N_("轮椅"), "drive": N_("驾车")}
DEMANDS = {
    "household": N_("需求家庭（仅编号、镇街、村社区）"),
    "village": N_("村（社区），按人口加权"),
    "grid": N_("规则网格（覆盖全区）"),
}
FACILITY_LAYERS = {layer: label for layer, label in maps.LAYER_LABELS.items()}
#: Facilities that serve people now (same as the CLI's coverage default).
#: Defaults of the coverage form (DOMAIN.md §1: the 15-minute life circle is 800–1000 m on foot).
COVERAGE_DEFAULTS = {
    "facilities": schema.SERVICE_CENTRE,
    "demand": "household",
    "profile": "walk",
    "thresholds": "800m",
    "urban_threshold": "",
    "rural_threshold": "",
    "scenario": False,
    "grid_spacing": 400.0,
}
#: Defaults of the gaps form (the 15-minute life circle on foot; 500 m hexagons).
GAPS_DEFAULTS = {"facilities": schema.SERVICE_CENTRE, "demand": "household", "profile": "walk", "threshold": "800m",
                 "hex_size": 500.0, "roads": False}  # fmt: skip
KIND_LABELS = {"coverage": N_("覆盖分析"), "gaps": N_("服务缺口"), "service_areas": N_("服务范围"),
               "siting": N_("选址")}  # fmt: skip
STATUS_LABELS = {"queued": N_("排队中"), "running": N_("运行中"), "done": N_("已完成"), "failed": N_("失败")}
#: Status words of the targets report, for people.
TARGET_STATUS_LABELS = {
    "met": N_("已达成"), "behind": N_("滞后"), "missed": N_("未达成"), "not_tracked": N_("未跟踪"),
    "not_measured": N_("无法由数据计算"), "no_data": N_("无数据"), "done": N_("已完成"), "not_started": N_("未开始"),
    "due": N_("进行中（期限内）"), "overdue": N_("已逾期"), "unscheduled": N_("未定期限"),
}  # fmt: skip
DOWNLOADS = {"csv": "CSV", "xlsx": "Excel (XLSX)", "gpkg": "GeoPackage", "geojson": "GeoJSON"}
_MIMETYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "gpkg": "application/geopackage+sqlite3",
    "geojson": "application/geo+json",
}


#: Job kind → the function that builds its result page's context (the other planner modules add theirs).
RESULT_CONTEXTS: dict[str, Any] = {}


def init_app(app: Flask) -> None:
    """Register the planner blueprint and the job functions its forms submit."""
    from webmap import planner_compare, planner_siting  # noqa: F401 (importing them adds their routes to `bp`)

    RESULT_CONTEXTS.update({"coverage": _coverage_context, "gaps": _gaps_context})
    functions = {"coverage": run_coverage_job, "gaps": run_gaps_job}
    functions.update(planner_siting.register_result_views(RESULT_CONTEXTS))
    jobs.init_app(app, functions)
    app.register_blueprint(bp)
    app.context_processor(_label_globals)


def _label_globals() -> dict[str, dict[str, str]]:
    """Give templates the job kinds and statuses in the page's language (Chinese outside a request)."""
    return {"kind_labels": translated(KIND_LABELS), "job_status_labels": translated(STATUS_LABELS)}


def translated(labels: dict[str, str]) -> dict[str, str]:
    """Return ``labels`` (``N_``-marked Chinese) in the request's language; unchanged outside a request."""
    if not has_request_context():
        return dict(labels)
    return {key: gettext(label) for key, label in labels.items()}


# --- views -----------------------------------------------------------------------------------------


@bp.get("/")
@role_required(*PLANNER_ROLES)
def index() -> str:
    """List the analyses a planner can run and the recent jobs (each can be reopened)."""
    listed = job_store.list_jobs(get_store(), limit=50)
    done = [j for j in listed if j.status == "done"]
    return render_template("planner/index.html", jobs=listed, done_jobs=done)


@bp.route("/coverage", methods=["GET", "POST"])
@role_required(*PLANNER_ROLES)
def coverage() -> str | BaseResponse | tuple[str, int]:
    """Show the coverage form; on POST queue a coverage job and go to its page (202-style, at once)."""
    return form_or_job("coverage", COVERAGE_DEFAULTS, _read_coverage_form, _coverage_form)


def form_or_job(
    kind: str,
    defaults: dict[str, Any],
    read_form: Callable[[Any], tuple[dict[str, Any], list[str]]],
    show_form: Callable[..., str],
) -> str | BaseResponse | tuple[str, int]:
    """Answer a planner form's request: show the form, or queue a ``kind`` job and go to its page.

    GET shows the form with ``defaults``; a POST with problems shows it again with them (400); a good
    POST queues the job and redirects to its page at once (303). ``read_form(request.form)`` returns
    the options and the problems; ``show_form(form, errors=...)`` renders the form.
    """
    if request.method == "GET":
        return show_form(dict(defaults), errors=[])
    form, errors = read_form(request.form)
    if errors:
        return show_form(form, errors=errors), 400
    job_id = jobs.submit_job(kind, form, user=current_user.name)
    return redirect(url_for("planner.job", job_id=job_id), code=303)


@bp.get("/jobs/<job_id>")
@role_required(*PLANNER_ROLES)
def job(job_id: str) -> str:
    """Show a job: its progress while queued or running, its error if failed, its result when done."""
    record = _get_job(job_id)
    context: dict[str, Any] = {"job": record, "district": get_district(), "stage_label": stage_label(record.stage)}
    if record.status == "done" and record.kind in RESULT_CONTEXTS:
        context.update(RESULT_CONTEXTS[record.kind](record))
    return render_template("planner/job.html", **context)


@bp.get("/jobs/<job_id>.json")
@role_required(*PLANNER_ROLES)
def job_status(job_id: str) -> BaseResponse:
    """Return a job's state for the progress bar: status, stage, percent, error and the result page."""
    record = _get_job(job_id)
    return jsonify({**record.to_dict(), "stage_label": stage_label(record.stage),
                    "url": url_for("planner.job", job_id=job_id)})  # fmt: skip


def stage_label(stage: str | None) -> str:
    """Return a job's stored stage text for people: ``N_``-marked stages translated, others as stored."""
    return gettext(stage) if stage else gettext("等待开始")


@bp.get("/jobs/<job_id>/download/<fmt>")
@role_required(*PLANNER_ROLES)
def download(job_id: str, fmt: str) -> BaseResponse:
    """Send one of a done job's result files (CSV, XLSX, GeoPackage or GeoJSON)."""
    record = _get_job(job_id)
    if record.status != "done" or record.result_path is None or fmt not in DOWNLOADS:
        abort(404, gettext("任务 %(id)r 没有 %(fmt)r 格式的结果文件。", id=job_id, fmt=fmt))
    name = f"{record.kind}.{fmt}"
    if not (Path(record.result_path) / name).is_file():
        abort(404, gettext("任务 %(id)r 的结果文件 %(name)r 不存在。", id=job_id, name=name))
    return send_from_directory(record.result_path, name, as_attachment=True, mimetype=_MIMETYPES[fmt],
                               download_name=f"{record.kind}-{job_id[:8]}.{fmt}")  # fmt: skip


# --- coverage ------------------------------------------------------------------------------------


#: The runs' stages (``analyses.runs.stages``) and the siting models' steps in the planner's words: a job
#: stores these, and its page shows them translated (``stage_label``).
RUN_STAGES = {
    stages.STAGE_NETWORK: N_("准备道路网络（首次运行后缓存）"),
    stages.STAGE_INPUTS: N_("读取设施和需求点"),
    stages.STAGE_COVERAGE: N_("计算覆盖"),
    stages.STAGE_SCENARIO: N_("加上规划设施后"),
    stages.STAGE_GAPS: N_("查找服务缺口"),
    stages.STAGE_GAPS_ROADS: N_("查找服务缺口和超出阈值的路段"),
    stages.STAGE_AREAS: N_("沿道路绘制每处设施的服务范围"),
    stages.STAGE_AREA_POINTS: N_("统计服务范围内的需求点"),
    stages.STAGE_CANDIDATES: N_("生成候选站点"),
    stages.STAGE_SOLVING: N_("计算网络成本并求解"),
    stages.STAGE_WRITING: N_("写出结果文件（CSV、XLSX、GeoPackage、GeoJSON）"),
    "matrix built": N_("网络成本表已算好"),
    "model built": N_("模型已建立"),
    "solving": N_("正在求解"),
    "done": N_("求解完成"),
}


class PlannerStages:
    """Report a run's stages to a job in the planner's words (``RUN_STAGES``; other texts as they are)."""

    def __init__(self, progress: jobs.JobProgress) -> None:
        self._progress = progress

    def expect(self, total: int) -> None:
        """Set the job's number of stages."""
        self._progress.expect(total)

    def stage(self, text: str) -> None:
        """Start the job's next stage."""
        self._progress.stage(RUN_STAGES.get(text, text))

    def __call__(self, text: str, fraction: float) -> None:
        """Report a share of the job's current stage."""
        self._progress(RUN_STAGES.get(text, text), fraction)


def run_job(run: Callable[..., Any], job: Job, parameters: Any, kind: str, progress: jobs.JobProgress,
            out_dir: Path) -> jobs.JobOutcome:  # fmt: skip
    """Run an ``analyses.runs`` function as a job: the downloads are its ``to_file``, the stored result its ``to_dict``.

    Parameters
    ----------
    run, job, parameters
        The run function (``analyses.runs``), the stored job (its user reads the households, channel
        ``web``) and the run's parameters (read from the job's form).
    kind
        The job kind: the files are ``<kind>.csv``, ``.xlsx``, ``.gpkg`` and ``.geojson`` (``DOWNLOADS``).
    progress
        Records each stage in the store.
    out_dir
        The job's folder.

    Returns
    -------
    webmap.jobs.JobOutcome
        ``to_dict(points=False)`` (the per-point rows are in the files) and the data versions read.
    """
    reported = PlannerStages(progress)
    result = run(parameters, store=get_store(), district=get_district(), network=app_network(),
                 reader=Reader(user=job.created_by, channel="web"), progress=reported)  # fmt: skip
    reported.stage(stages.STAGE_WRITING)
    for fmt in DOWNLOADS:
        result.to_file(out_dir / f"{kind}.{fmt}")
    payload = result.to_dict(points=False)
    return jobs.JobOutcome(result=payload, data_versions=payload["parameters"]["data_versions"])


def run_coverage_job(job: Job, progress: jobs.JobProgress, out_dir: Path) -> jobs.JobOutcome:
    """Measure coverage as ``accessplan coverage`` does (``analyses.runs.coverage``), from the job's form."""
    from analyses.runs.coverage import CoverageParameters, run_coverage

    return run_job(run_coverage, job, CoverageParameters.from_form(job.parameters), "coverage", progress, out_dir)


def _read_coverage_form(data: Any) -> tuple[dict[str, Any], list[str]]:
    """Return the coverage options from a submitted form and the problems found (in Chinese, naming the field)."""
    from analyses.costs import parse_threshold

    form = {
        "facilities": data.get("facilities", ""),
        "demand": data.get("demand", ""),
        "profile": data.get("profile", ""),
        "thresholds": data.get("thresholds", "").strip(),
        "urban_threshold": data.get("urban_threshold", "").strip(),
        "rural_threshold": data.get("rural_threshold", "").strip(),
        "scenario": data.get("scenario") == "on",
        "grid_spacing": data.get("grid_spacing", "400"),
    }
    errors = []
    for key, choices in (("facilities", FACILITY_LAYERS), ("demand", DEMANDS), ("profile", PROFILES)):
        if form[key] not in choices:
            errors.append(gettext("“%(field)s”须为 %(choices)s 之一；收到 %(value)r。", field=key,
                                  choices=", ".join(choices), value=form[key]))  # fmt: skip
    thresholds = [t.strip() for t in form["thresholds"].replace("，", ",").split(",") if t.strip()]
    for text in [*thresholds, form["urban_threshold"], form["rural_threshold"]]:
        if text:
            try:
                parse_threshold(text)
            except ValueError:
                errors.append(gettext("阈值 %(value)r 无法识别：请写成 800m、1.5km 或 15min。", value=text))
    if not thresholds and not (form["urban_threshold"] or form["rural_threshold"]):
        errors.append(gettext("请至少填写一个阈值（如 800m 或 15min）。"))
    try:
        form["grid_spacing"] = float(form["grid_spacing"])
        if not 50 <= form["grid_spacing"] <= 5000:
            raise ValueError
    except ValueError:
        errors.append(gettext("网格间距须为 50–5000 米之间的数字；收到 %(value)r。", value=data.get("grid_spacing")))
    form["thresholds"] = thresholds
    return form, errors


def _coverage_form(form: dict[str, Any], *, errors: list[str]) -> str:
    shown = dict(form)
    if isinstance(shown["thresholds"], list):
        shown["thresholds"] = ", ".join(shown["thresholds"])
    return render_template("planner/coverage_form.html", form=shown, errors=errors, layers=FACILITY_LAYERS,
                           demands=DEMANDS, profiles=PROFILES)  # fmt: skip


def _coverage_context(record: Job) -> dict[str, Any]:
    """Tables (per town and village, with names) and the map of a done coverage job."""
    import geopandas as gpd

    district = get_district()
    result = record.result or {}
    town_names = dict(zip(district.towns[schema.TOWN_CODE].astype(str), district.towns[schema.NAME], strict=True))
    villages = district.villages
    village_names = dict(zip(villages[schema.VILLAGE_CODE].astype(str), villages[schema.NAME], strict=True))
    columns = result.get("coverage_columns", [])
    by_town = [{**row, "name": town_names.get(str(row.get(schema.TOWN_CODE)), "")} for row in result.get("by_town", [])]
    by_village = [
        {**row, "name": village_names.get(str(row.get(schema.VILLAGE_CODE)), "")}
        for row in result.get("by_village", [])
    ]
    path = Path(record.result_path or "") / "coverage.gpkg"
    map_parts = None
    if path.is_file() and columns:
        points = gpd.read_file(path, layer="coverage")
        facilities = gpd.read_file(path, layer="facilities")
        planned = gpd.read_file(path, layer="planned_facilities") if _has_layer(path, "planned_facilities") else None
        m = coverage_map(district, points, facilities, planned, covered_column=columns[0],
                         static_url=lambda f: url_for("static", filename=f))  # fmt: skip
        map_parts = nonced_map_parts(maps.render_map_parts(m))
    return {
        "result": result,
        "coverage_columns": columns,
        "by_town": by_town,
        "by_village": by_village,
        "map_parts": map_parts,
        "downloads": DOWNLOADS,
        "town_names": town_names,
    }


def _has_layer(path: Path, layer: str) -> bool:
    import pyogrio

    return layer in [name for name, _ in pyogrio.list_layers(path)]


def coverage_map(
    district: District,
    points: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    planned: gpd.GeoDataFrame | None,
    *,
    covered_column: str,
    static_url: Any,
) -> folium.Map:
    """Build the coverage result map: demand points covered (green) or not (red), facilities, planned ones.

    Parameters
    ----------
    district
        Its boundary and town areas are drawn.
    points
        Demand points (EPSG:4326) with ``demand_id``, ``town_code`` and the boolean ``covered_column``.
    facilities, planned
        Facilities counted (filled blue) and, for a before/after run, the planned ones (hollow).
    covered_column
        The ``covered_*`` column that colours the points.
    static_url
        Turns a path under ``webmap/static/`` into a URL.
    """
    m = _base_map(district)
    for covered, name, colour in ((True, gettext("已覆盖的需求点"), "#1a7f37"),
                                  (False, gettext("未覆盖的需求点"), "#c62828")):  # fmt: skip
        group = folium.FeatureGroup(name=counted(name, int((points[covered_column] == covered).sum())))
        for row in points[points[covered_column] == covered].itertuples():
            folium.CircleMarker(
                [row.geometry.y, row.geometry.x], radius=3, color=colour, weight=1, fill=True, fill_opacity=0.8,
                tooltip=html.escape(str(row.demand_id)),
            ).add_to(group)  # fmt: skip
        group.add_to(m)
    for gdf, name, fill in ((facilities, gettext("计入的设施"), True), (planned, gettext("规划设施（对比）"), False)):
        if gdf is None or not len(gdf):
            continue
        group = folium.FeatureGroup(name=name)
        for row in gdf.itertuples():
            label = html.escape(f"{getattr(row, 'name', '') or ''} ({row.id})")
            folium.CircleMarker(
                [row.geometry.y, row.geometry.x], radius=7, color="#0b4f9c", weight=3, fill=fill,
                fill_color="#0b4f9c", fill_opacity=0.9, tooltip=label,
            ).add_to(group)  # fmt: skip
        group.add_to(m)
    return _finish_map(m, district, static_url)


# --- gaps ----------------------------------------------------------------------------------------


@bp.route("/gaps", methods=["GET", "POST"])
@role_required(*PLANNER_ROLES)
def gaps() -> str | BaseResponse | tuple[str, int]:
    """Show the gaps form; on POST queue a gaps job and go to its page."""
    return form_or_job("gaps", GAPS_DEFAULTS, _read_gaps_form, _gaps_form)


def _read_gaps_form(data: Any) -> tuple[dict[str, Any], list[str]]:
    """Return the gaps options from a submitted form and the problems found (the coverage form's checks)."""
    coverage_like = {**{k: data.get(k, "") for k in ("facilities", "demand", "profile")},
                     "thresholds": data.get("threshold", ""), "grid_spacing": "400"}  # fmt: skip
    checked, errors = _read_coverage_form(coverage_like)
    form = {k: checked[k] for k in ("facilities", "demand", "profile")}
    form["threshold"] = data.get("threshold", "").strip()
    form["roads"] = data.get("roads") == "on"
    if len(checked["thresholds"]) > 1:
        errors.append(gettext("缺口分析只用一个阈值。"))
    try:
        form["hex_size"] = float(data.get("hex_size", ""))
        if not 100 <= form["hex_size"] <= 5000:
            raise ValueError
    except ValueError:
        form["hex_size"] = data.get("hex_size", "")
        errors.append(gettext("六边形大小须为 100–5000 米之间的数字；收到 %(value)r。", value=data.get("hex_size")))
    return form, errors


def run_gaps_job(job: Job, progress: jobs.JobProgress, out_dir: Path) -> jobs.JobOutcome:
    """Find gaps as ``accessplan gaps`` does (``analyses.runs.coverage``), from the job's form."""
    from analyses.runs.coverage import GapsParameters, run_gaps

    return run_job(run_gaps, job, GapsParameters.from_form(job.parameters), "gaps", progress, out_dir)


def _gaps_form(form: dict[str, Any], *, errors: list[str]) -> str:
    return render_template("planner/gaps_form.html", form=form, errors=errors, layers=FACILITY_LAYERS,
                           demands=DEMANDS, profiles=PROFILES)  # fmt: skip


def _gaps_context(record: Job) -> dict[str, Any]:
    import geopandas as gpd

    district = get_district()
    town_names = dict(zip(district.towns[schema.TOWN_CODE].astype(str), district.towns[schema.NAME], strict=True))
    result = record.result or {}
    by_town = [{**row, "name": town_names.get(str(row[schema.TOWN_CODE]), "")} for row in result.get("by_town", [])]
    path = Path(record.result_path or "") / "gaps.gpkg"
    map_parts = None
    if path.is_file():
        hexagons = gpd.read_file(path, layer="gap_hexagons")
        uncovered = gpd.read_file(path, layer="gap_uncovered")
        m = gaps_map(district, hexagons, uncovered, static_url=lambda f: url_for("static", filename=f))
        map_parts = nonced_map_parts(maps.render_map_parts(m))
    return {"result": result, "by_town": by_town, "map_parts": map_parts, "downloads": DOWNLOADS}


def gaps_map(district: District, hexagons: gpd.GeoDataFrame, uncovered: gpd.GeoDataFrame, *,
             static_url: Any) -> folium.Map:  # fmt: skip
    """Build the gaps map: hexagons shaded by the share of demand not covered, and the uncovered points."""
    m = _base_map(district)
    shaded = hexagons[hexagons["gap_share"] > 0]
    folium.GeoJson(
        json.loads(
            shaded[["hex_id", "gap_share", "n_uncovered", "geometry"]].to_crs(schema.WGS84).to_json(drop_id=True)
        ),
        name=gettext("服务缺口区（%(n)s 个六边形）", n=len(shaded)),
        style_function=lambda f: {
            "color": "#7a1f1f",
            "weight": 1,
            "fillColor": "#c62828",
            "fillOpacity": 0.15 + 0.6 * float(f["properties"]["gap_share"]),
        },  # fmt: skip
        tooltip=folium.GeoJsonTooltip(fields=["n_uncovered"], aliases=[gettext("未覆盖需求点")]),
    ).add_to(m)
    group = folium.FeatureGroup(name=counted(gettext("未覆盖的需求点"), len(uncovered)))
    for row in uncovered.itertuples():
        folium.CircleMarker([row.geometry.y, row.geometry.x], radius=3, color="#c62828", weight=1, fill=True,
                            fill_opacity=0.8, tooltip=html.escape(str(row.demand_id))).add_to(group)  # fmt: skip
    group.add_to(m)
    return _finish_map(m, district, static_url)


def _base_map(district: District) -> folium.Map:
    boundary = district.boundary.to_crs(schema.WGS84)
    minx, miny, maxx, maxy = boundary.total_bounds
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=11, tiles=None, control_scale=True)
    folium.GeoJson(
        json.loads(boundary.to_json(drop_id=True)),
        name=gettext("区界"),
        style_function=lambda _f: {"color": "#2d3a4a", "weight": 2, "fillColor": "#ffffff", "fillOpacity": 0.85},
        interactive=False,
    ).add_to(m)
    folium.GeoJson(
        json.loads(district.town_areas[[schema.TOWN_CODE, "geometry"]].to_crs(schema.WGS84).to_json(drop_id=True)),
        name=gettext("镇街范围（近似）"),
        style_function=lambda _f: {"color": "#6b7785", "weight": 1, "dashArray": "4 4", "fill": False},
        interactive=False,
    ).add_to(m)
    return m


def _finish_map(m: folium.Map, district: District, static_url: Any) -> folium.Map:
    minx, miny, maxx, maxy = district.boundary.to_crs(schema.WGS84).total_bounds
    folium.LayerControl(position="bottomright", collapsed=False).add_to(m)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    localize_assets_inplace(m, static_url=static_url)
    return m


# --- targets -------------------------------------------------------------------------------------


@bp.get("/targets")
@role_required(*PLANNER_ROLES)
def targets() -> str | tuple[str, int]:
    """Show the plan's indicators, key projects and task tables with status and deadlines on ``?date=``."""
    from analyses.targets import targets_report_from_store

    text = request.args.get("date") or date.today().isoformat()
    try:
        on = date.fromisoformat(text)
    except ValueError:
        abort(400, gettext("日期须写成 YYYY-MM-DD（如 2025-06-30）；收到 %(value)r。", value=text))
    district = get_district()
    report = targets_report_from_store(get_store(), district.plan_dir, district.towns, on=on,
                                       plan_year=district.plan_year).to_dict()
    return render_template("planner/targets.html", report=report, on=on,
                           status_labels=translated(TARGET_STATUS_LABELS))  # fmt: skip


# --- helpers -------------------------------------------------------------------------------------


def town_and_village_names(district: District) -> tuple[dict[str, str], dict[str, str]]:
    """Return town code → name and village code → name of ``district``."""
    towns, villages = district.towns, district.villages
    return (
        dict(zip(towns[schema.TOWN_CODE].astype(str), towns[schema.NAME], strict=True)),
        dict(zip(villages[schema.VILLAGE_CODE].astype(str), villages[schema.NAME], strict=True)),
    )


def counted(label: str, n: int) -> str:
    """Return a map legend entry: ``label`` with its count in brackets."""
    return gettext("%(label)s（%(n)s）", label=label, n=n)


def _get_job(job_id: str) -> Job:
    try:
        return job_store.get_job(get_store(), job_id)
    except NotFoundError:
        abort(404, gettext("没有编号为 %(id)r 的分析任务。", id=job_id))
