"""Serve the housing bureau's accessible-toilet register: table, progress, map, edits and spreadsheet import.

The register lists the programme's builds (改建 ``rebuild`` + 新建 ``new``; surveyed ``existing``
toilets on request) with progress against the plan's 19 + 19 (``analyses.targets``), per build type
and per town. A toilet's page shows its GB 50763 fields and history and, for the bureau and admin,
an edit form: the row's version travels in a hidden field and a stale edit is refused with who
changed the row and when (``layers.store.Store.update_feature``); nothing is overwritten. Edits are
checked by the same rules as an import (``layers.validate``).

An accepted toilet's page shows the coverage of accepted toilets without and with it (walk along the
network, ``TOILET_COVERAGE_THRESHOLD``, 300 m by default after DOMAIN.md §1) per town, on a regular
grid of demand points (no household data). The prepared network is cached on disk and the
``Placer`` in memory, so a page costs well under a second once the network has been prepared.

Spreadsheet import: upload (XLSX/CSV, at most ``TOILET_IMPORT_MAX_BYTES``), choose the datum, read
the dry-run report row by row, then confirm. Confirming imports exactly the file that was checked, with
the same options: it waits server-side as a household ledger does (`webmap.pending_imports`,
``<instance>/toilet_imports`` or ``TOILET_IMPORT_DIR``) under a random token kept in the session, for
at most ``TOILET_IMPORT_MAX_AGE_S`` seconds, and can be confirmed once, by its uploader; a new upload
replaces the user's earlier file.
"""

from __future__ import annotations

import io
import logging
import math
import threading
from collections import OrderedDict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_login import current_user

from analyses.costs import parse_threshold
from analyses.inputs import GRID, load_points
from analyses.targets import toilet_progress
from analyses.toilet_checks import FAIL, INCOMPLETE, PASS, beijing_today, gb50763_check, overdue_days
from layers import schema
from layers.errors import FileLimitError, NotFoundError, StaleVersionError, WorkflowError
from layers.importer import import_layer
from layers.spreadsheet import neutralise_formulas
from layers.validate import validate_layer
from webmap.auth import role_required
from webmap.i18n import N_, current_language
from webmap.maps.base import MapParts, render_map_parts, tile_sources_from_config
from webmap.maps.public import public_map
from webmap.pending_imports import (
    PendingImports,
    app_pending_imports,
    hold_for_confirmation,
    take_pending,
    upload_suffix,
)
from webmap.problems import fix_text, problem_rows
from webmap.runs import app_network, app_placer
from webmap.security import nonced_map_parts
from webmap.store import get_district, get_store
from webmap.timefmt import format_local_time
from webmap.views.api import TOILET_EDIT_ROLES, TOILET_VIEW_ROLES

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    import geopandas as gpd
    from werkzeug.wrappers import Response as BaseResponse

    from analyses.runs.coverage import ToiletChangeParameters, ToiletChangeRun
    from analyses.targets import ToiletProgress
    from analyses.toilet_checks import Finding
    from analyses.toilet_reach import ToiletReach
    from layers.validate import ValidationResult

logger = logging.getLogger(__name__)
T = TypeVar("T")

bp = Blueprint("toilets", __name__, url_prefix="/toilets")

#: Settings with their defaults (the instance config.py may change them).
DEFAULTS = {
    "TOILET_IMPORT_MAX_BYTES": 5 * 1024 * 1024,
    "TOILET_COVERAGE_THRESHOLD": "300m",
    "TOILET_COVERAGE_PROFILE": "walk",
    "TOILET_COVERAGE_GRID_M": 250.0,
    "TOILET_IMPORT_DIR": None,  # None: <instance>/toilet_imports
    "TOILET_IMPORT_MAX_AGE_S": 24 * 3600,
    "TOILET_TODAY": None,  # None: today in Beijing; a date (tests) fixes what "overdue" compares with
}
#: Build types of the plan's programme (the 19 + 19); ``existing`` toilets are outside it.
PROGRAMME_BUILD_TYPES = ("rebuild", "new")
#: Labels shown to people: zh-CN msgids, translated with ``gettext`` where shown.
BUILD_TYPE_LABELS = {"rebuild": N_("改建"), "new": N_("新建"), "existing": N_("现有（不计入目标）")}
#: GB 50763 check results (``analyses.toilet_checks``).
GB_RESULT_LABELS = {PASS: N_("符合"), FAIL: N_("不符合"), INCOMPLETE: N_("未完整调查")}
STATUS_LABELS = {"planned": N_("规划中"), "under_construction": N_("在建"), "completed": N_("已建成"),
                 "accepted": N_("已验收")}  # fmt: skip
DATUM_LABELS = {
    "wgs84": N_("WGS-84（GPS、天地图）"),
    "gcj02": N_("GCJ-02（高德、腾讯）"),
    "bd09": N_("BD-09（百度）"),
}
#: Fields the edit form changes, besides the status.
EDIT_FIELDS = (schema.CONTRACTOR, schema.PLANNED_COMPLETION, *schema.GB50763_FIELDS)

_IMPORT_SESSION_KEY = "toilet_import"
_IMPORT_ERROR_KEY = "toilet_import_error"
_ACTIONS = {"insert": N_("新建记录"), "update": N_("修改")}
#: The ``label_zh`` of the toilet layer's columns (``layers.schema``), marked for ``pybabel extract``
#: (``_labels`` translates them).
_COLUMN_LABELS = (
    N_("编号"), N_("镇街代码"), N_("村（社区）代码"), N_("名称"), N_("详细地址"), N_("经度"), N_("纬度"),
    N_("坐标系"), N_("状态"), N_("版本"), N_("建设类型"), N_("施工单位"), N_("计划完工日期"),
    N_("女厕无障碍厕位"), N_("男厕无障碍厕位"), N_("无障碍厕所（独立）"), N_("无障碍厕所面积"),
    N_("轮椅回转直径"), N_("门净宽"), N_("门外开或可紧急开启"), N_("水平安全抓杆"), N_("垂直安全抓杆"),
    N_("求助呼叫按钮"), N_("无障碍洗手盆"), N_("无障碍小便器"), N_("无障碍入口"), N_("无障碍标识"),
    N_("开放时间"), N_("调查日期"), N_("数据来源"), N_("合成数据"),
)  # fmt: skip
_DEMAND_KEY = "accessplan_toilet_demand"
_COVERAGE_KEY = "accessplan_toilet_coverage"
_COVERAGE_LOCK = threading.Lock()
#: How many toilets' coverage runs the app keeps (one per toilet, threshold and data version).
COVERAGE_CACHE_SIZE = 64


@bp.record_once
def _set_defaults(state: Any) -> None:
    for key, value in DEFAULTS.items():
        state.app.config.setdefault(key, value)


# --- register --------------------------------------------------------------------------------------


@bp.get("/")
@role_required(*TOILET_VIEW_ROLES)
def register() -> str:
    """Show the register table (filters: build type, status, town), progress bars and the map."""
    district = get_district()
    towns = _town_names()
    every, shown, filters = _filtered(towns)
    progress = toilet_progress(every, district_towns=district.towns, plan_dir=district.plan_dir)
    return render_template(
        "toilets/register.html",
        rows=_register_rows(shown, towns, today=_today()),
        today=_today().isoformat(),
        progress=progress,
        by_type=progress.by_build_type.to_dict("records"),
        by_town=_town_progress_rows(progress),
        filters=filters,
        towns=towns,
        build_type_labels=_translated(BUILD_TYPE_LABELS),
        status_labels=_translated(STATUS_LABELS),
        map_parts=_map_parts(shown),
        can_edit=current_user.role in TOILET_EDIT_ROLES,
    )


def _filtered(towns: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Return every toilet, the rows the request's filters select and the filters (400 on a bad one)."""
    build_type = request.args.get("build_type", "")
    status = request.args.get("status", "")
    town = request.args.get("town", "")
    if build_type and build_type not in schema.TOILET_BUILD_TYPES:
        allowed = ", ".join(schema.TOILET_BUILD_TYPES)
        abort(400, gettext("build_type 只能是 %(allowed)s；收到 %(value)s。", allowed=allowed, value=repr(build_type)))
    if status and status not in schema.TOILET_STATUSES:
        allowed = ", ".join(schema.TOILET_STATUSES)
        abort(400, gettext("status 只能是 %(allowed)s；收到 %(value)s。", allowed=allowed, value=repr(status)))
    if town and town not in towns:
        abort(400, gettext("town 必须是本区的镇街代码（9 位）；收到 %(value)s。", value=repr(town)))
    every = get_store().features(schema.ACCESSIBLE_TOILET)
    shown = every[every[schema.BUILD_TYPE].isin((build_type,) if build_type else PROGRAMME_BUILD_TYPES)]
    if status:
        shown = shown[shown[schema.STATUS] == status]
    if town:
        shown = shown[shown[schema.TOWN_CODE] == town]
    return every, shown, {"build_type": build_type, "status": status, "town": town}


# --- export ----------------------------------------------------------------------------------------

#: Export formats and their media types.
EXPORT_FORMATS = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
#: Headers of the register export (zh-CN msgids; English through the catalog with ``lang=en``), units
#: in the header, the GB 50763 fields' measured figures among them.
EXPORT_HEADERS = {
    "id": N_("编号"), "town_code": N_("镇街代码"), "town": N_("镇街"), "village_code": N_("村（社区）代码"),
    "village": N_("村（社区）"), "name": N_("名称"), "address": N_("详细地址"), "build_type": N_("建设类型"),
    "status": N_("状态"), "contractor": N_("施工单位"), "planned_completion": N_("计划完工日期"),
    "overdue": N_("是否逾期"), "overdue_days": N_("逾期天数（天）"), "gb_result": N_("GB 50763 核查结果"),
    "gb_failures": N_("GB 50763 不符合项"), "gb_missing": N_("GB 50763 未调查项"),
    "room_area_m2": N_("无障碍厕所面积（平方米）"), "turning_diameter_m": N_("轮椅回转直径（米）"),
    "door_clear_width_mm": N_("门净宽（毫米）"), "updated": N_("最后修改（北京时间）"),
}  # fmt: skip
#: Headers of the export's progress sheet (per town).
PROGRESS_HEADERS = {
    "town_code": N_("镇街代码"), "town": N_("镇街"), "accepted": N_("已验收（座）"),
    "total": N_("登记改建和新建（座）"), "share": N_("验收完成率（%）"),
}  # fmt: skip


@bp.get("/export.<fmt>")
@role_required(*TOILET_VIEW_ROLES)
def export(fmt: str) -> BaseResponse:
    """Download the register rows the filters select as XLSX (register + progress sheets) or CSV (register)."""
    if fmt not in EXPORT_FORMATS:
        abort(404, gettext("导出格式只能是 CSV 或 XLSX；收到 %(value)s。", value=repr(fmt)))
    district = get_district()
    towns = _town_names()
    every, shown, _filters = _filtered(towns)
    table = register_table(shown, towns, today=_today())
    if fmt == "csv":
        body = neutralise_formulas(table).to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")
    else:
        progress = toilet_progress(every, district_towns=district.towns, plan_dir=district.plan_dir)
        buffer = io.BytesIO()
        with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
            neutralise_formulas(table).to_excel(writer, sheet_name=gettext("登记表"), index=False)
            neutralise_formulas(_progress_table(progress)).to_excel(
                writer, sheet_name=gettext("按镇街进度"), index=False
            )
        body = buffer.getvalue()
    logger.info("%s exported the toilet register as %s: %d rows", current_user.name, fmt, len(table))
    stamp = _today().strftime("%Y%m%d")
    return Response(
        body,
        mimetype=EXPORT_FORMATS[fmt],
        headers={"Content-Disposition": f'attachment; filename="toilet-register-{stamp}.{fmt}"'},
    )


def register_table(gdf: pd.DataFrame, towns: dict[str, str], *, today: date) -> pd.DataFrame:
    """Return toilet rows as the export's table: `EXPORT_HEADERS` in the request's language.

    Town and village names beside their codes, build type and status as words, overdue flags and the
    GB 50763 check (``analyses.toilet_checks``), times in Beijing time.
    """
    villages = get_district().villages
    village_names = dict(zip(villages[schema.VILLAGE_CODE].astype(str), villages[schema.NAME], strict=True))
    labels = _labels()
    yes, no = gettext("是"), gettext("否")
    records = []
    for r in gdf.sort_values([schema.TOWN_CODE, schema.ID]).to_dict("records"):
        check = gb50763_check(r)
        days = overdue_days(r, today)
        village = _cell(r.get(schema.VILLAGE_CODE)) or ""
        records.append({
            "id": r[schema.ID], "town_code": r[schema.TOWN_CODE], "town": towns.get(r[schema.TOWN_CODE], ""),
            "village_code": village, "village": village_names.get(village, ""), "name": r[schema.NAME],
            "address": _cell(r.get(schema.ADDRESS)) or "",
            "build_type": gettext(BUILD_TYPE_LABELS.get(r[schema.BUILD_TYPE], r[schema.BUILD_TYPE])),
            "status": _status_label(r[schema.STATUS]), "contractor": _cell(r.get(schema.CONTRACTOR)) or "",
            "planned_completion": _cell(r.get(schema.PLANNED_COMPLETION)) or "",
            "overdue": yes if days else no, "overdue_days": days,
            "gb_result": gettext(GB_RESULT_LABELS[check.result]),
            "gb_failures": "；".join(_finding_text(f) for f in check.failures),
            "gb_missing": "、".join(labels.get(f, f) for f in check.missing),
            **{c: _number_or_none(r.get(c)) for c in ("room_area_m2", "turning_diameter_m", "door_clear_width_mm")},
            "updated": format_local_time(r.get(schema.UPDATED_AT), seconds=False),
        })  # fmt: skip
    table = pd.DataFrame(records, columns=list(EXPORT_HEADERS))
    return table.rename(columns={k: gettext(v) for k, v in EXPORT_HEADERS.items()})


def _progress_table(progress: ToiletProgress) -> pd.DataFrame:
    rows = [{"town_code": r["town_code"], "town": r["town"], "accepted": r["accepted"], "total": r["total"],
             "share": round(100 * r["accepted"] / r["total"], 1)} for r in _town_progress_rows(progress)]  # fmt: skip
    table = pd.DataFrame(rows, columns=list(PROGRESS_HEADERS))
    return table.rename(columns={k: gettext(v) for k, v in PROGRESS_HEADERS.items()})


def _number_or_none(value: Any) -> float | None:
    text = _cell(value)
    return None if text is None else float(text)


# --- one toilet ------------------------------------------------------------------------------------


@bp.route("/<toilet_id>", methods=["GET", "POST"])
@role_required(*TOILET_VIEW_ROLES)
def detail(toilet_id: str) -> str | BaseResponse | tuple[str, int]:
    """Show one toilet (fields, history, coverage when accepted); the bureau and admin edit it here."""
    store = get_store()
    try:
        row = store.feature(schema.ACCESSIBLE_TOILET, toilet_id)
    except NotFoundError:
        abort(404, gettext("没有编号为 %(id)s 的无障碍厕所。", id=repr(toilet_id)))
    if request.method == "GET":
        return _detail_page(row)
    if current_user.role not in TOILET_EDIT_ROLES:
        abort(403, gettext("只有住建部门和系统管理员可以修改无障碍厕所登记。"))
    form = request.form
    try:
        version = int(form.get("version", ""))
    except ValueError:
        abort(
            400, gettext("version 必须是整数（读取记录时的版本号）；收到 %(value)s。", value=repr(form.get("version")))
        )
    changes, problems = _checked_changes(row, form)
    if problems:
        return _detail_page(row, form=form, problems=problems), 400
    try:
        new_version = store.update_feature(
            schema.ACCESSIBLE_TOILET, toilet_id, changes, version=version, user=current_user.name
        )
    except StaleVersionError:
        current = store.feature(schema.ACCESSIBLE_TOILET, toilet_id)
        message = gettext(
            "保存失败：这条记录已被 %(user)s 于 %(time)s 修改（现为第 %(current)s 版，您编辑的是第 %(version)s 版）。"
            "您的修改没有保存，也没有覆盖任何内容：请查看下面的最新内容后重新填写。",
            user=current[schema.UPDATED_BY],
            time=format_local_time(current[schema.UPDATED_AT]),
            current=current[schema.VERSION],
            version=version,
        )
        logger.info("Stale edit of toilet %s by %s (version %d)", toilet_id, current_user.name, version)
        return _detail_page(current, conflict=message), 409  # the form shows the latest values
    except WorkflowError as error:
        return _detail_page(row, form=form, problems=[str(error)]), 400
    logger.info("%s edited toilet %s (now version %d)", current_user.name, toilet_id, new_version)
    flash(gettext("已保存（第 %(version)s 版）。", version=new_version))
    return redirect(url_for("toilets.detail", toilet_id=toilet_id))


def _detail_page(
    row: dict[str, Any],
    *,
    form: Any = None,
    problems: list[str] | None = None,
    conflict: str | None = None,
) -> str:
    toilet_id = row[schema.ID]
    towns = _town_names()
    coverage, coverage_error = None, None
    if row[schema.STATUS] == "accepted":
        try:
            coverage = _coverage_rows(toilet_id, towns)
        except (OSError, ValueError) as error:  # no road file, or nothing to measure
            logger.warning("Coverage for toilet %s not computed: %s", toilet_id, error)
            coverage_error = str(error)
    status = row[schema.STATUS]
    workflow = schema.layer_spec(schema.ACCESSIBLE_TOILET).workflow
    check = gb50763_check(row)
    labels = _labels()
    return render_template(
        "toilets/detail.html",
        row=row,
        overdue=overdue_days(row, _today()),
        planned_completion=_shown(row.get(schema.PLANNED_COMPLETION)),
        gb_label=gettext(GB_RESULT_LABELS[check.result]),
        gb_result=check.result,
        gb_failures=[_finding_text(f) for f in check.failures],
        gb_missing=[labels.get(f, f) for f in check.missing],
        town_name=towns.get(row[schema.TOWN_CODE], row[schema.TOWN_CODE]),
        fields=_field_rows(row),
        history=_history_rows(toilet_id),
        can_edit=current_user.role in TOILET_EDIT_ROLES,
        next_statuses=(status, *workflow.next_statuses(status)),
        form=_form_values(row) if form is None else form,
        problems=problems or [],
        conflict=conflict,
        coverage=coverage,
        coverage_error=coverage_error,
        threshold=current_app.config["TOILET_COVERAGE_THRESHOLD"],
        build_type_labels=_translated(BUILD_TYPE_LABELS),
        status_labels=_translated(STATUS_LABELS),
        labels=_labels(),
        dtypes=_dtypes(),
    )


def _checked_changes(row: dict[str, Any], form: Any) -> tuple[dict[str, Any], list[str]]:
    """Return the changes the form asks for, checked by the import rules, or the problems found."""
    spec = schema.layer_spec(schema.ACCESSIBLE_TOILET)
    table = {c: _cell(row.get(c)) for c in spec.column_names if c != schema.VERSION}
    table[schema.DATUM] = schema.WGS84_DATUM  # stored coordinates are WGS-84
    table[schema.STATUS] = form.get("status", "")
    for column in EDIT_FIELDS:
        if column in form:  # a field the form left out keeps its value; an empty one is cleared
            table[column] = form[column].strip() or None
    existing = {row[schema.ID]: row[schema.STATUS]}
    result = validate_layer(
        schema.ACCESSIBLE_TOILET, pd.DataFrame([table], dtype=object), district=get_district(), existing=existing
    )
    if not result.ok:
        labels = _labels()
        problems = []
        for p in result.problems:
            column = labels.get(p.column, p.column or "")
            problems.append(
                gettext(
                    "%(column)s：%(fix)s（填写的是 %(value)s）",
                    column=column,
                    fix=fix_text(p, column),
                    value=repr(p.value),
                )
            )
        return {}, problems
    (record,) = result.records()
    return {c: record.get(c) for c in (schema.STATUS, *EDIT_FIELDS)}, []


def _finding_text(finding: Finding) -> str:
    """Return one GB 50763 failure as a sentence in the page's language."""
    if finding.field == "cubicles":
        return gettext("女厕和男厕均须设无障碍厕位，或设独立的无障碍厕所（GB 50763-2012 第 3.9.1 条）")
    label = _labels().get(finding.field, finding.field)
    if finding.minimum is None:
        return gettext("%(field)s：未设置（GB 50763-2012 第 3.9 节要求设置）", field=label)
    return gettext(
        "%(field)s：%(value)s %(unit)s，低于 %(minimum)s %(unit)s（GB 50763-2012 第 3.9 节）",
        field=label,
        value=f"{finding.value:g}",
        minimum=f"{finding.minimum:g}",
        unit=finding.unit,
    )


def _cell(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _form_values(row: dict[str, Any]) -> dict[str, str]:
    values = {c: _cell(row.get(c)) or "" for c in EDIT_FIELDS}
    values["status"] = row[schema.STATUS]
    for column, dtype in _dtypes().items():
        if dtype == "bool" and values.get(column):
            values[column] = "是" if row.get(column) in (True, "True", "true") else "否"
    return values


def _field_rows(row: dict[str, Any]) -> list[tuple[str, str]]:
    labels = _labels()
    columns = (schema.CONTRACTOR, schema.PLANNED_COMPLETION, *schema.GB50763_FIELDS)
    return [(labels[c], _shown(row.get(c))) for c in columns]


def _shown(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return gettext("未记录")
    if value is True:
        return gettext("是")
    if value is False:
        return gettext("否")
    return str(value)


def _history_rows(toilet_id: str) -> list[dict[str, Any]]:
    """Return who changed what when, newest first: status change and the changed fields' labels."""
    labels = _labels()
    rows = []
    for h in get_store().history(schema.ACCESSIBLE_TOILET, toilet_id):
        before = _flat(h["before"])
        after = _flat(h["after"])
        changed = [labels.get(k, k) for k in after if k in labels and before.get(k) != after.get(k)] if before else []
        rows.append(
            {
                "at": format_local_time(h["at"]),
                "actor": h["actor"],
                "action": _action_label(h["action"]),
                "version": h[schema.VERSION],
                "status_before": _status_label(before.get(schema.STATUS)) if before else None,
                "status": _status_label(after.get(schema.STATUS)),
                "changed": changed,
            }
        )
    return rows[::-1]


def _action_label(action: str) -> str:
    return gettext(_ACTIONS[action]) if action in _ACTIONS else action


def _status_label(status: str | None) -> str | None:
    if not status:
        return None
    return gettext(STATUS_LABELS[status]) if status in STATUS_LABELS else status


def _flat(snapshot: dict[str, Any] | None) -> dict[str, Any]:
    if not snapshot:
        return {}
    attributes = snapshot.get("attributes") or {}
    return {**{k: v for k, v in snapshot.items() if k not in ("attributes", "personal")}, **attributes}


# --- suggested sites for the new toilets --------------------------------------------------------------


@bp.route("/suggest", methods=["GET", "POST"])
@role_required(*TOILET_VIEW_ROLES)
def suggest() -> str | BaseResponse | tuple[str, int]:
    """Show sites the siting engine suggests for new toilets; the bureau and admin accept one into the plan."""
    from analyses.toilet_suggestions import accept_site, remaining_new

    every = get_store().features(schema.ACCESSIBLE_TOILET)
    remaining = remaining_new(every)
    source = request.form if request.method == "POST" else request.args
    raw = source.get("n", "")
    try:
        n = int(raw) if raw else max(remaining, 1)
        sites = _suggestions(n)
    except ValueError as error:
        return render_template("toilets/suggest.html", sites=[], n=raw, remaining=remaining, can_edit=False,
                               error=gettext("无法给出建议：%(error)s（建议座数应为 1 到 19 的整数）",
                                             error=str(error))), 400  # fmt: skip
    problems: list[str] = []
    if request.method == "POST":
        if current_user.role not in TOILET_EDIT_ROLES:
            abort(403, gettext("只有住建部门和系统管理员可以修改无障碍厕所登记。"))
        chosen = [s for s in sites if s[schema.ID] == request.form.get("site", "")]
        if not chosen:
            problems.append(gettext("建议点 %(site)s 已不在当前建议中（登记已变化）：请从下表重新选择。",
                                    site=repr(request.form.get("site", ""))))  # fmt: skip
        else:
            toilet_id, outcome = accept_site(get_store(), get_district(), chosen[0], user=current_user.name)
            if outcome.ok:
                logger.info("%s accepted suggested site %s as toilet %s", current_user.name, chosen[0]["id"],
                            toilet_id)  # fmt: skip
                flash(gettext("已将建议点加入规划：新建无障碍厕所 %(id)s（规划中）。", id=toilet_id))
                return redirect(url_for("toilets.detail", toilet_id=toilet_id))
            problems.extend(f"{p.column or ''}：{fix_text(p, p.column or '')}" for p in outcome.validation.problems)
    return render_template("toilets/suggest.html", sites=sites, n=n, remaining=remaining, error=None,
                           problems=problems, can_edit=current_user.role in TOILET_EDIT_ROLES,
                           threshold=current_app.config["TOILET_COVERAGE_THRESHOLD"],
                           towns=_town_names()), (400 if problems else 200)  # fmt: skip


def _suggestions(n: int) -> list[dict[str, Any]]:
    """Return the suggested new sites for ``n`` toilets (``analyses.toilet_suggestions``), once per data version."""
    from analyses.runs.siting import run_siting
    from analyses.toilet_suggestions import suggested_sites, suggestion_parameters
    from layers.privacy import Reader

    config = current_app.config
    toilets = get_store().features(schema.ACCESSIBLE_TOILET)
    parameters = suggestion_parameters(n, toilets, threshold=parse_threshold(config["TOILET_COVERAGE_THRESHOLD"]).label,
                                       profile=config["TOILET_COVERAGE_PROFILE"])  # fmt: skip
    run = _per_data_version(("suggest", parameters), lambda: run_siting(
        parameters, store=get_store(), district=get_district(), network=app_network(),
        reader=Reader(user=current_user.name, channel="web")))  # fmt: skip
    return suggested_sites(run).to_dict("records")


# --- households within reach, before/after -------------------------------------------------------------


@bp.get("/<toilet_id>/reach")
@role_required(*TOILET_VIEW_ROLES)
def reach(toilet_id: str) -> str | tuple[str, int]:
    """Show what the toilet adds (any status): villages, households and people within reach, per town."""
    try:
        row = get_store().feature(schema.ACCESSIBLE_TOILET, toilet_id)
    except NotFoundError:
        abort(404, gettext("没有编号为 %(id)s 的无障碍厕所。", id=repr(toilet_id)))
    config = current_app.config
    threshold = parse_threshold(config["TOILET_COVERAGE_THRESHOLD"]).label
    profile = config["TOILET_COVERAGE_PROFILE"]
    try:
        result = _per_data_version(("reach", toilet_id, profile, threshold),
                                   lambda: _toilet_reach(toilet_id, profile, threshold))  # fmt: skip
    except (OSError, ValueError) as error:  # no road file, or no villages table with households
        logger.warning("Reach of toilet %s not computed: %s", toilet_id, error)
        return render_template("toilets/reach.html", row=row, result=None, error=str(error), rows=[],
                               threshold=threshold), 503  # fmt: skip
    towns = _town_names()
    rows = [{"town_code": code, "town": towns.get(str(code), str(code)), **counts}
            for code, counts in result.by_town.to_dict("index").items()]  # fmt: skip
    return render_template("toilets/reach.html", row=row, result=result, rows=rows, error=None, threshold=threshold,
                           status_labels=_translated(STATUS_LABELS))  # fmt: skip


def _toilet_reach(toilet_id: str, profile: str, threshold: str) -> ToiletReach:
    from analyses.toilet_reach import toilet_reach

    store = get_store()
    every = store.features(schema.ACCESSIBLE_TOILET)
    accepted = every[every[schema.STATUS] == "accepted"]
    toilet = every[every[schema.ID] == toilet_id]
    return toilet_reach(app_placer(), accepted, toilet, get_district().villages, profile=profile,
                        threshold=threshold)  # fmt: skip


# --- coverage before/after -------------------------------------------------------------------------


def _coverage_rows(toilet_id: str, towns: dict[str, str]) -> dict[str, Any]:
    """Return the toilet's effect (``analyses.runs.coverage.run_toilet_change``): changed towns and its own."""
    from analyses.runs.coverage import ToiletChangeParameters

    config = current_app.config
    parameters = ToiletChangeParameters(toilet_id, profile=config["TOILET_COVERAGE_PROFILE"],
                                        threshold=parse_threshold(config["TOILET_COVERAGE_THRESHOLD"]).label,
                                        grid_spacing=float(config["TOILET_COVERAGE_GRID_M"]))  # fmt: skip
    run = _toilet_change(parameters)
    own = _town_of(toilet_id)
    rows = [{**row, "town": towns.get(str(code), str(code))} for code, row in run.by_town.iterrows()
            if row["after"] != row["before"] or code == own]  # fmt: skip
    summary = run.summary
    return {"rows": [{k: row[k] for k in ("town", "points", "before", "after", "share_before", "share_after")}
                     for row in rows],
            "summary": summary, "n_points": summary["points"], "before_n": summary["facilities_before"]}  # fmt: skip


def _toilet_change(parameters: ToiletChangeParameters) -> ToiletChangeRun:
    """Return the toilet's coverage change, computed once per store data version (issue 18)."""
    from analyses.runs.coverage import run_toilet_change

    return _per_data_version(parameters, lambda: run_toilet_change(
        parameters, store=get_store(), district=get_district(), network=app_network(), demand=_demand()))  # fmt: skip


def _per_data_version(key: Hashable, compute: Callable[[], T]) -> T:
    """Return ``compute()``, kept per store data version and ``key`` (issue 18: once, not on every view).

    Results are kept in ``app.extensions`` keyed by the store's URL, its ``data_version`` (any write
    changes it, so an edit or import recomputes) and ``key``; at most `COVERAGE_CACHE_SIZE` are kept,
    the least recently used dropped first.
    """
    store = get_store()
    full_key = (store.url, store.data_version(), key)
    cache: OrderedDict[Any, Any] = current_app.extensions.setdefault(_COVERAGE_KEY, OrderedDict())
    with _COVERAGE_LOCK:
        if full_key in cache:
            cache.move_to_end(full_key)
            return cache[full_key]
    value = compute()
    with _COVERAGE_LOCK:
        cache[full_key] = value
        while len(cache) > COVERAGE_CACHE_SIZE:
            cache.popitem(last=False)
    return value


def _town_of(toilet_id: str) -> str:
    return str(get_store().feature(schema.ACCESSIBLE_TOILET, toilet_id)[schema.TOWN_CODE])


def _demand() -> gpd.GeoDataFrame:
    demand = current_app.extensions.get(_DEMAND_KEY)
    if demand is None:
        spacing = float(current_app.config["TOILET_COVERAGE_GRID_M"])
        demand = load_points(GRID, store=get_store(), district=get_district(), grid_spacing_m=spacing)
        current_app.extensions[_DEMAND_KEY] = demand
    return demand


# --- spreadsheet import ----------------------------------------------------------------------------


@bp.route("/import", methods=["GET", "POST"])
@role_required(*TOILET_EDIT_ROLES)
def import_sheet() -> str | BaseResponse | tuple[str, int]:
    """Upload the bureau's spreadsheet, show the dry-run report row by row, then import on confirmation."""
    if request.method == "GET":
        return _import_page()
    if request.form.get("action") == "confirm":
        return _confirm_import()
    return _check_upload()


def _check_upload() -> str | tuple[str, int]:
    limit = current_app.config["TOILET_IMPORT_MAX_BYTES"]
    # The CSRF check has read the body already, so the limit is checked on the declared length
    # (the app-wide MAX_CONTENT_LENGTH, if set, stops larger bodies before they are read).
    if request.content_length is None or request.content_length > limit:
        return _import_page(error=gettext("文件太大：最多 %(mb)s MB。", mb=f"{limit / 1024 / 1024:g}")), 413
    upload = request.files.get("file")
    datum = request.form.get("datum", "")
    if datum and datum not in schema.DATUMS:
        return _import_page(
            error=gettext(
                "坐标系只能是 %(allowed)s；收到 %(value)s。", allowed=", ".join(schema.DATUMS), value=repr(datum)
            )
        ), 400
    suffix, error = upload_suffix(upload)
    if error is not None:
        return _import_page(error=error), 400
    blank_clears = request.form.get("blank_clears") == "on"
    file_name = upload.filename[:200]
    outcome, token = hold_for_confirmation(
        _pending(), _IMPORT_SESSION_KEY, upload.stream, suffix, user=current_user.name,
        options={"datum": datum, "blank_clears": blank_clears, "file_name": file_name},
        dry_run=lambda path: _run_import(path, datum, dry_run=True, blank_clears=blank_clears),
    )  # fmt: skip
    page = _import_page(validation=outcome, token=token, datum=datum, file_name=file_name, blank_clears=blank_clears)
    return (page, 400) if outcome is None else page


def _confirm_import() -> str | BaseResponse | tuple[str, int]:
    token = request.form.get("token", "")
    pending = _pending()
    taken = take_pending(pending, _IMPORT_SESSION_KEY, token, user=current_user.name)
    if taken is None:
        message = gettext("没有待确认的导入（可能已导入、已过期或已被新的上传取代）：请重新上传文件。")
        return _import_page(error=message), 400
    options = taken.options
    datum, blank_clears = str(options.get("datum") or ""), bool(options.get("blank_clears"))
    try:
        outcome = _run_import(taken.path, datum, dry_run=False, blank_clears=blank_clears)
    finally:
        pending.discard(token)
    if outcome is None or not outcome.ok:  # the store changed since the dry run
        return _import_page(validation=outcome, datum=datum, file_name=options.get("file_name"),
                            blank_clears=blank_clears), 400  # fmt: skip
    counts = outcome.counts
    logger.info("%s imported toilets: %s", current_user.name, counts)
    flash(
        gettext(
            "已导入：新增 %(inserted)d 条，更新 %(updated)d 条，未变 %(unchanged)d 条。",
            inserted=counts.inserted,
            updated=counts.updated,
            unchanged=counts.unchanged,
        )
    )
    return redirect(url_for("toilets.register"))


def _run_import(path: Path, datum: str, *, dry_run: bool, blank_clears: bool = False) -> Any:
    try:
        return import_layer(
            get_store(),
            schema.ACCESSIBLE_TOILET,
            path,
            district=get_district(),
            user=current_user.name,
            datum=datum or None,
            dry_run=dry_run,
            blank_clears=blank_clears,
        )
    except FileLimitError as error:  # over a ReadLimits limit: refused before it was loaded
        logger.info("Toilet spreadsheet over a limit from %s: %s", current_user.name, error)
        session[_IMPORT_ERROR_KEY] = gettext("文件超出导入上限，未导入任何数据：%(error)s", error=str(error))
        return None
    except (ValueError, OSError) as error:  # empty, damaged or unreadable file: no table to validate
        logger.info("Unreadable toilet spreadsheet from %s: %s", current_user.name, error)
        session[_IMPORT_ERROR_KEY] = gettext("无法读取文件：%(error)s", error=str(error))
        return None


def _import_page(
    *,
    validation: Any = None,
    token: str | None = None,
    datum: str = "",
    file_name: str | None = None,
    error: str | None = None,
    blank_clears: bool = False,
) -> str:
    read_error = session.pop(_IMPORT_ERROR_KEY, None)
    result: ValidationResult | None = validation.validation if validation is not None else None
    labels = _labels()
    problems = problem_rows(result, labels)
    changes = [
        {"row": c.row, "id": c.id, "column": labels.get(f.column, f.column), "before": f.before, "after": f.after}
        for c in (validation.changes if validation is not None else ())
        for f in c.fields
    ]
    return render_template(
        "toilets/import.html",
        result=result,
        problems=problems,
        changes=changes,
        notes=validation.notes if validation is not None else (),
        blank_clears=blank_clears,
        token=token,
        datum=datum,
        file_name=file_name,
        error=error or read_error,
        datum_labels=_translated(DATUM_LABELS),
        max_mb=current_app.config["TOILET_IMPORT_MAX_BYTES"] / 1024 / 1024,
    )


def _pending() -> PendingImports:
    return app_pending_imports("TOILET_IMPORT_DIR", "TOILET_IMPORT_MAX_AGE_S", default_folder="toilet_imports")


# --- helpers ---------------------------------------------------------------------------------------


def _today() -> date:
    """Return the Beijing date "overdue" compares with (``TOILET_TODAY`` when set, for tests)."""
    fixed = current_app.config["TOILET_TODAY"]
    return date.fromisoformat(str(fixed)) if fixed else beijing_today()


def _register_rows(gdf: pd.DataFrame, towns: dict[str, str], *, today: date) -> list[dict[str, Any]]:
    rows = []
    for r in gdf.sort_values([schema.TOWN_CODE, schema.ID]).to_dict("records"):
        check = gb50763_check(r)
        rows.append(
            {
                "id": r[schema.ID],
                "name": r[schema.NAME],
                "town": towns.get(r[schema.TOWN_CODE], r[schema.TOWN_CODE]),
                "build_type": _translated(BUILD_TYPE_LABELS).get(r[schema.BUILD_TYPE], r[schema.BUILD_TYPE]),
                "status": _status_label(r[schema.STATUS]),
                "contractor": _shown(r.get(schema.CONTRACTOR)),
                "planned_completion": _shown(r.get(schema.PLANNED_COMPLETION)),
                "overdue_days": overdue_days(r, today),
                "gb_result": check.result,
                "gb_label": gettext(GB_RESULT_LABELS[check.result]),
                "gb_failures": [_finding_text(f) for f in check.failures],
                "updated": format_local_time(r.get(schema.UPDATED_AT), seconds=False),
            }
        )
    return rows


def _town_progress_rows(progress: ToiletProgress) -> list[dict[str, Any]]:
    rows = []
    for r in progress.by_town.to_dict("records"):
        accepted = sum(int(r.get(f"{t}_accepted", 0)) for t in PROGRAMME_BUILD_TYPES)
        total = sum(int(r.get(f"{t}_total", 0)) for t in PROGRAMME_BUILD_TYPES)
        if total:
            rows.append({"town": r["town_name"], "town_code": r[schema.TOWN_CODE], "accepted": accepted,
                         "total": total, **{t: (int(r.get(f"{t}_accepted", 0)), int(r.get(f"{t}_total", 0)))
                                            for t in PROGRAMME_BUILD_TYPES}})  # fmt: skip
    return rows


def _map_parts(gdf: gpd.GeoDataFrame) -> MapParts:
    config = current_app.config
    m = public_map(
        get_district(),
        {schema.ACCESSIBLE_TOILET: gdf},
        tiles=tile_sources_from_config(config),
        datum=config["TILE_DATUM"],
        translate=gettext,
        language=current_language(),
        detail_url=lambda _layer, fid: url_for("toilets.detail", toilet_id=fid),
        static_url=lambda filename: url_for("static", filename=filename),
    )
    return nonced_map_parts(render_map_parts(m))


def _town_names() -> dict[str, str]:
    towns = get_district().towns
    return dict(zip(towns[schema.TOWN_CODE].astype(str), towns["name"], strict=True))


def _labels() -> dict[str, str]:
    spec = schema.layer_spec(schema.ACCESSIBLE_TOILET)
    return {c.name: gettext(c.label_zh) if c.label_zh else c.name for c in spec.columns}


def _translated(labels: dict[str, str]) -> dict[str, str]:
    """Return ``labels`` (code → zh-CN msgid) with each label in the page's language."""
    return {code: gettext(label) for code, label in labels.items()}


def _dtypes() -> dict[str, str]:
    spec = schema.layer_spec(schema.ACCESSIBLE_TOILET)
    return {c.name: c.dtype for c in spec.columns}
