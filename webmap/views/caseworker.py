"""Serve the caseworkers' pages (无障碍改造): households, history, status changes, visit routes, progress.

Their towns' households on a map and in a list, one household with its history and status changes,
an ordered visit list, and progress against the plan.

Every view needs the ``caseworker`` role and shows only the caller's towns; a household of another
town answers 404 like a missing one and the attempt is logged (ids only, never personal data).
Personal fields stay masked; "show full record" is a POST with a reason, shown on that response
only and written to the access log (``layers.privacy``). URLs carry ids only.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd
from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from analyses.costs import CostSettings
from analyses.targets import targets_report_from_store
from analyses.visits import order_visits
from geo.errors import SnapError
from geo.profiles import POLICIES
from geo.roadlines import main_roads_geojson
from layers import schema
from layers.errors import AccessDeniedError, StaleVersionError, WorkflowError
from layers.privacy import CASEWORKER, check_reason, read_households
from layers.spreadsheet import neutralise_formulas
from webmap.auth import role_required
from webmap.i18n import N_, current_language
from webmap.maps.base import render_map_parts, tile_sources_from_config
from webmap.maps.households import STATUS_COLOURS, households_map
from webmap.runs import app_placer
from webmap.security import nonced_map_parts
from webmap.store import get_district, get_store
from webmap.timefmt import LOCAL_TZ, format_local_time
from webmap.views.admin import EXPORT_FORMATS
from webmap.views.api import household_in_scope, log_out_of_scope, status_history

if TYPE_CHECKING:

    from werkzeug.datastructures import MultiDict
    from werkzeug.wrappers import Response as BaseResponse

    from analyses.visits import VisitRoute
    from layers.district import District

logger = logging.getLogger(__name__)

bp = Blueprint("caseworker", __name__, url_prefix="/caseworker")

#: Display label of each household status (the first ledger label of the workflow): zh-CN msgids,
#: translated with ``gettext`` where shown.
STATUS_LABELS_ZH = {
    "surveyed": N_("已摸底"),
    "approved": N_("已审批"),
    "in_progress": N_("施工中"),
    "completed": N_("已完工"),
    "verified": N_("已验收"),
    "declined": N_("已放弃"),
}
#: Most households on one visit list.
MAX_VISITS = 25
#: Travel profiles a caseworker may route a visit list on (``geo/profiles.toml``) → zh-CN label.
VISIT_PROFILES = {"drive": N_("驾车"), "walk": N_("步行"), "wheelchair": N_("轮椅")}
_PERSONAL_FIELDS = (
    (schema.NAME, N_("姓名")),
    (schema.ID_NUMBER, N_("身份证号")),
    (schema.CERTIFICATE_NUMBER, N_("残疾人证号")),
    (schema.PHONE, N_("联系电话")),
)
#: The names of ``schema.DISABILITY_CATEGORIES`` and ``schema.DISABILITY_GRADES``, marked for
#: ``pybabel extract`` (``_label`` translates them).
_DISABILITY_LABELS = (
    N_("视力"), N_("听力"), N_("言语"), N_("肢体"), N_("智力"), N_("精神"), N_("多重"),
    N_("一级"), N_("二级"), N_("三级"), N_("四级"),
)  # fmt: skip


@dataclass(frozen=True)
class HouseholdFilter:
    """The list's filters (query parameters; empty = no filter)."""

    villages: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    grades: tuple[str, ...] = ()
    need: str = ""

    @classmethod
    def from_args(cls, args: MultiDict[str, str]) -> HouseholdFilter:
        """Read ``village``, ``status``, ``category``, ``grade`` (repeatable) and ``need`` from ``args``.

        Raises
        ------
        ValueError
            If a status, category or grade is not one of the layer's codes.
        """

        def values(key: str) -> tuple[str, ...]:
            return tuple(v.strip() for v in args.getlist(key) if v.strip())

        checks = {
            "status": (values("status"), schema.HOUSEHOLD_STATUSES),
            "category": (values("category"), tuple(str(c) for c in schema.DISABILITY_CATEGORIES)),
            "grade": (values("grade"), tuple(str(g) for g in schema.DISABILITY_GRADES)),
        }
        for key, (given, allowed) in checks.items():
            bad = [v for v in given if v not in allowed]
            if bad:
                msg = gettext(
                    "参数 %(key)s 只能是 %(allowed)s；收到 %(bad)s。",
                    key=key,
                    allowed=", ".join(allowed),
                    bad=repr(bad),
                )
                raise ValueError(msg)
        return cls(
            villages=values("village"),
            statuses=checks["status"][0],
            categories=checks["category"][0],
            grades=checks["grade"][0],
            need=(args.get("need") or "").strip(),
        )

    def apply(self, households: pd.DataFrame) -> pd.DataFrame:
        """Return the rows of ``households`` that pass every filter."""
        keep = pd.Series(True, index=households.index)
        if self.villages:
            keep &= households[schema.VILLAGE_CODE].astype(str).isin(self.villages)
        if self.statuses:
            keep &= households[schema.STATUS].isin(self.statuses)
        if self.categories:
            keep &= households[schema.DISABILITY_CATEGORY].map(_code).isin(self.categories)
        if self.grades:
            keep &= households[schema.DISABILITY_GRADE].map(_code).isin(self.grades)
        if self.need:
            keep &= households[schema.NEEDS].fillna("").astype(str).str.contains(self.need, regex=False)
        return households[keep]


# --- views -----------------------------------------------------------------------------------------


@bp.get("/")
@role_required(CASEWORKER)
def index() -> str:
    """Show the caller's households on a map and in a list (filters in the query), and their progress."""
    try:
        household_filter = HouseholdFilter.from_args(request.args)
    except ValueError as error:
        abort(400, str(error))
    district = get_district()
    villages = _village_names(district)
    outside = sorted(v for v in household_filter.villages if v not in villages)
    if outside:
        log_out_of_scope("villages", outside)
        abort(404, gettext("没有村（社区）%(village)s 的数据。", village=repr(outside[0])))
    households = household_filter.apply(_own_households())
    parts = render_map_parts(
        households_map(
            district,
            households,
            towns=tuple(current_user.towns),
            tiles=tile_sources_from_config(current_app.config),
            datum=current_app.config.get("TILE_DATUM") or "wgs84",
            detail_url=lambda hid: url_for("caseworker.household", household_id=hid),
            status_label=_status_label,
            static_url=_static_url,
        )
    )
    return render_template(
        "caseworker/index.html",
        map_parts=nonced_map_parts(parts),
        rows=_rows(households, villages),
        filter=household_filter,
        village_choices=sorted(villages.items()),
        status_choices=[(k, gettext(v)) for k, v in STATUS_LABELS_ZH.items()],
        category_choices=[(str(k), gettext(v)) for k, v in schema.DISABILITY_CATEGORIES.items()],
        grade_choices=[(str(k), gettext(v)) for k, v in schema.DISABILITY_GRADES.items()],
        progress=_progress(district),
        towns=_own_town_names(district),
        legend=[(gettext(label), STATUS_COLOURS[code]) for code, label in STATUS_LABELS_ZH.items()],
    )


@bp.get("/export.<fmt>")
@role_required(CASEWORKER)
def export(fmt: str) -> Response:
    """Download the caller's household list (the list's filters in the query) as ``csv`` or ``xlsx``.

    Headers in the request's language (``lang=en``), town and village names beside their codes,
    personal fields masked as on the list, text made formula-safe; the read is one bulk row of the
    access log (purpose: this URL's path).
    """
    if fmt not in EXPORT_FORMATS:
        abort(404, gettext("导出格式“%(value)s”无效：请选择 CSV 或 XLSX。", value=fmt))
    try:
        household_filter = HouseholdFilter.from_args(request.args)
    except ValueError as error:
        abort(400, str(error))
    district = get_district()
    table = household_export_table(household_filter.apply(_own_households()), district)
    logger.info("%s exported %d households as %s", current_user.name, len(table), fmt)
    return _download(table, fmt, sheet=gettext("改造户名单"), stem="households")


#: Columns of the household-list export: key → header (zh-CN msgid, English through the catalog).
HOUSEHOLD_EXPORT_HEADERS = {
    "id": N_("家庭编号"),
    "town_code": N_("镇街代码"),
    "town": N_("镇街"),
    "village_code": N_("村（社区）代码"),
    "village": N_("村（社区）"),
    "name": N_("姓名（已脱敏）"),
    "address": N_("地址（已脱敏）"),
    "category": N_("残疾类别"),
    "grade": N_("残疾等级"),
    "needs": N_("改造需求"),
    "status": N_("状态"),
}


def household_export_table(households: pd.DataFrame, district: District) -> pd.DataFrame:
    """Return ``households`` (already masked for the caller) as the export's table, headers translated."""
    towns = district.town_names(current_language())
    villages = _village_names(district)
    rows = [
        {
            "id": r[schema.ID],
            "town_code": str(r[schema.TOWN_CODE]),
            "town": towns.get(str(r[schema.TOWN_CODE]), ""),
            "village_code": str(r[schema.VILLAGE_CODE]),
            "village": villages.get(str(r[schema.VILLAGE_CODE]), ""),
            "name": r[schema.NAME],
            "address": r[schema.ADDRESS],
            "category": _label(schema.DISABILITY_CATEGORIES, r.get(schema.DISABILITY_CATEGORY)),
            "grade": _label(schema.DISABILITY_GRADES, r.get(schema.DISABILITY_GRADE)),
            "needs": r.get(schema.NEEDS) or "",
            "status": _status_label(r[schema.STATUS]),
        }
        for r in households.to_dict("records")
    ]
    table = pd.DataFrame(rows, columns=list(HOUSEHOLD_EXPORT_HEADERS), dtype=object)
    return table.rename(columns={k: gettext(v) for k, v in HOUSEHOLD_EXPORT_HEADERS.items()})


@bp.get("/household/<household_id>")
@role_required(CASEWORKER)
def household(household_id: str) -> str:
    """Show one household (masked), its history and the status-change form."""
    return _household_page(household_id)


@bp.post("/household/<household_id>/full")
@role_required(CASEWORKER)
def household_full(household_id: str) -> str | tuple[str, int]:
    """Show one household's personal fields in full on this response only; the reason is logged."""
    household_in_scope(household_id)
    try:
        reason = check_reason(request.form.get("reason"))
    except AccessDeniedError:
        return _household_page(household_id, reveal_error=gettext(_REASON_RULE)), 400
    return _household_page(household_id, reason=reason)


#: The rule `layers.privacy.check_reason` applies, as the form explains it.
_REASON_RULE = N_(
    "查看完整信息需要真实的理由：至少 4 个字，其中至少 2 个汉字或字母，不能只重复一两个字"
    "（例如“入户走访核实改造需求”）。理由会记入访问日志。"
)


@bp.post("/household/<household_id>/status")
@role_required(CASEWORKER)
def household_status(household_id: str) -> BaseResponse | tuple[str, int]:
    """Change a household's status along the workflow, with the version the form was read at."""
    row = household_in_scope(household_id)
    status = request.form.get("status", "")
    version_text = request.form.get("version", "")
    if status not in schema.HOUSEHOLD_STATUSES:
        return _household_page(household_id, status_error=gettext("未知的状态 %(status)s。", status=repr(status))), 400
    try:
        version = int(version_text)
    except ValueError:
        return _household_page(
            household_id, status_error=gettext("版本号必须是整数；收到 %(version)s。", version=repr(version_text))
        ), 400
    store = get_store()
    try:
        new_version = store.update_feature(
            schema.HOUSEHOLD, household_id, {schema.STATUS: status}, version=version, user=current_user.name
        )
    except StaleVersionError:
        current = store.feature(schema.HOUSEHOLD, household_id)
        message = gettext(
            "保存失败：此记录已被 %(user)s 于 %(time)s 修改（现为第 %(current)s 版，您编辑的是第 %(version)s 版），"
            "状态现为“%(status)s”。您的修改未保存，也没有覆盖任何内容。请重新载入后再修改。",
            user=current[schema.UPDATED_BY],
            time=format_local_time(current[schema.UPDATED_AT]),
            current=current[schema.VERSION],
            version=version,
            status=_status_label(current[schema.STATUS]),
        )
        logger.info("%s: stale status change of household %s (version %d)", current_user.name, household_id, version)
        return _household_page(household_id, conflict=message), 409
    except WorkflowError:
        allowed = gettext("、").join(_status_label(s) for s in _next_statuses(row[schema.STATUS])) or gettext("无")
        message = gettext(
            "状态不能从“%(old)s”改为“%(new)s”；可以改为：%(allowed)s。",
            old=_status_label(row[schema.STATUS]),
            new=_status_label(status),
            allowed=allowed,
        )
        return _household_page(household_id, status_error=message), 400
    logger.info("%s set household %s to %r (version %d)", current_user.name, household_id, status, new_version)
    flash(gettext("状态已改为“%(status)s”（第 %(version)s 版）。", status=_status_label(status), version=new_version))
    return redirect(url_for("caseworker.household", household_id=household_id))


@bp.post("/household/<household_id>/visit-log")
@role_required(CASEWORKER)
def household_visit(household_id: str) -> BaseResponse | tuple[str, int]:
    """Append one row to the household's visit log (a correction names the row it corrects).

    The notes are personal data: they travel in the POST body only, are stored encrypted, and no
    log line carries them (ids only).
    """
    household_in_scope(household_id)
    try:
        entry = VisitEntry.from_form(request.form, [v["seq"] for v in _own_visits(household_id)])
    except ValueError as error:
        return _household_page(household_id, visit_error=str(error)), 400
    seq = get_store().add_visit(
        household_id,
        visited_on=entry.visited_on,
        found=entry.found,
        next_step=entry.next_step,
        user=current_user.name,
        corrects=entry.corrects,
    )
    logger.info("%s added visit-log row %d to household %s", current_user.name, seq, household_id)
    flash(gettext("走访记录已保存（第 %(seq)d 条）。", seq=seq))
    return redirect(url_for("caseworker.household", household_id=household_id) + "#visits-heading")


@bp.get("/household/<household_id>/visit-log.<fmt>")
@role_required(CASEWORKER)
def household_visits_export(household_id: str, fmt: str) -> Response:
    """Download one household's visit log (every row, corrections included) as ``csv`` or ``xlsx``."""
    if fmt not in EXPORT_FORMATS:
        abort(404, gettext("导出格式“%(value)s”无效：请选择 CSV 或 XLSX。", value=fmt))
    household_in_scope(household_id)
    rows = _own_visits(household_id)
    table = pd.DataFrame(
        [
            [r["seq"], r["visited_on"].isoformat(), r["actor"], r["found"], r["next_step"], r["corrects"] or "",
             format_local_time(r["at"])]
            for r in rows
        ],
        columns=[gettext(h) for h in VISIT_LOG_HEADERS],
        dtype=object,
    )  # fmt: skip
    logger.info("%s exported the visit log of household %s as %s", current_user.name, household_id, fmt)
    return _download(table, fmt, sheet=gettext("走访记录"), stem=f"visits-{household_id}")


#: Columns of the visit-log table and export (zh-CN msgids).
VISIT_LOG_HEADERS = (
    N_("序号"), N_("走访日期"), N_("走访人"), N_("发现情况"), N_("下一步"), N_("更正第几条"),
    N_("记录时间（北京时间）"),
)  # fmt: skip
#: Longest text of a visit note field.
MAX_VISIT_NOTE = 2000


@dataclass(frozen=True)
class VisitEntry:
    """One visit-log row as the household page's form gives it."""

    visited_on: date
    found: str
    next_step: str
    corrects: int | None = None

    @classmethod
    def from_form(cls, form: MultiDict[str, str], own_rows: list[int]) -> VisitEntry:
        """Read ``visited_on`` (YYYY-MM-DD, not in the future), ``found``, ``next_step`` and ``corrects``.

        ``corrects`` (optional) must be one of ``own_rows``, the household's visit-log rows.

        Raises
        ------
        ValueError
            With a translated message naming the field, the value and the fix.
        """
        text = (form.get("visited_on") or "").strip()
        try:
            visited_on = date.fromisoformat(text)
        except ValueError:
            msg = gettext("走访日期“%(value)s”无效：请填写 YYYY-MM-DD 格式的日期，例如 2026-11-23。", value=text)
            raise ValueError(msg) from None
        if visited_on > date.today():
            msg = gettext("走访日期 %(value)s 晚于今天：请填写已完成走访的日期。", value=text)
            raise ValueError(msg)
        found, next_step = (form.get("found") or "").strip(), (form.get("next_step") or "").strip()
        for label, value in ((N_("发现情况"), found), (N_("下一步"), next_step)):
            if not value:
                raise ValueError(gettext("“%(field)s”不能为空：请填写。", field=gettext(label)))
            if len(value) > MAX_VISIT_NOTE:
                msg = gettext("“%(field)s”最多 %(max)d 字；收到 %(count)d 字。", field=gettext(label),
                              max=MAX_VISIT_NOTE, count=len(value))  # fmt: skip
                raise ValueError(msg)
        corrects_text = (form.get("corrects") or "").strip()
        corrects = None
        if corrects_text:
            if not corrects_text.isdigit() or int(corrects_text) not in own_rows:
                msg = gettext("要更正的记录“%(value)s”不是本户的走访记录：请从列表中选择。", value=corrects_text)
                raise ValueError(msg)
            corrects = int(corrects_text)
        return cls(visited_on=visited_on, found=found, next_step=next_step, corrects=corrects)


def _own_visits(household_id: str) -> list[dict[str, Any]]:
    """Return the household's visit-log rows recorded in the caller's towns."""
    return get_store().visits(household_id, towns=tuple(current_user.towns))


def _download(table: pd.DataFrame, fmt: str, *, sheet: str, stem: str) -> Response:
    """Return ``table`` as a CSV (UTF-8 with BOM) or XLSX attachment, text made formula-safe."""
    if fmt == "csv":
        body = neutralise_formulas(table).to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")
    else:
        buffer = io.BytesIO()
        with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
            neutralise_formulas(table).to_excel(writer, sheet_name=sheet, index=False)
        body = buffer.getvalue()
    stamp = datetime.now(LOCAL_TZ).strftime("%Y%m%d-%H%M")
    return Response(
        body,
        mimetype=EXPORT_FORMATS[fmt],
        headers={"Content-Disposition": f'attachment; filename="{stem}-{stamp}.{fmt}"'},
    )


@bp.get("/visits")
@role_required(CASEWORKER)
def visits() -> str | tuple[str, int] | Response:
    """Pick households (``id``, repeatable) and a start → an ordered visit route.

    ``start`` is a town code (its seat), ``hh:<id>`` (one of the caller's households) or ``here``
    with ``lat`` and ``lon`` (the device's location, filled in by the page's script). With
    ``format=xlsx`` or ``csv`` the ordered list is downloaded (legs in metres and minutes).
    """
    district = get_district()
    villages = _village_names(district)
    towns = _own_town_names(district)
    households = _own_households()
    ids = list(dict.fromkeys(v for v in request.args.getlist("id") if v.strip()))
    start_key = request.args.get("start") or current_user.towns[0]
    weight = request.args.get("weight", "travel_time")
    if weight not in ("travel_time", "length"):
        abort(400, gettext("参数 weight 只能是 travel_time 或 length；收到 %(weight)s。", weight=repr(weight)))
    profile = request.args.get("profile", "drive")
    if profile not in VISIT_PROFILES:
        abort(400, gettext("参数 profile 只能是 %(allowed)s；收到 %(profile)s。",
                           allowed=", ".join(VISIT_PROFILES), profile=repr(profile)))
    policy = request.args.get("policy", "")
    if policy not in ("", *POLICIES):
        abort(400, gettext("参数 policy 只能是 strict 或 lenient（或留空，按系统设置）；收到 %(policy)s。",
                           policy=repr(policy)))  # fmt: skip
    outside = [i for i in ids if i not in set(households[schema.ID])]
    if outside:
        log_out_of_scope("household", outside)
        abort(404, gettext("没有编号为 %(id)s 的家庭记录。", id=repr(outside[0])))
    choices = households[households[schema.STATUS] != "declined"]
    context: dict[str, Any] = {
        "towns": towns,
        "start_key": start_key,
        "start_households": _rows(choices, villages),
        "offices": list(enumerate(district.offices)),
        "lat": request.args.get("lat", ""),
        "lon": request.args.get("lon", ""),
        "weight": weight,
        "profile": profile,
        "profile_choices": [(k, gettext(v)) for k, v in VISIT_PROFILES.items()],
        "policy": policy,
        "policy_label": _policy_label(policy or None),
        "selected": set(ids),
        "choices": _rows(choices, villages),
        "route": None,
        "map_parts": None,
        "error": None,
    }
    try:
        start, start_label = start_point(district, households, towns, start_key, request.args)
    except (LookupError, ValueError) as error:
        context["error"] = str(error)
        return render_template("caseworker/visits.html", **context), 404 if isinstance(error, LookupError) else 400
    context["start_label"] = start_label
    if len(ids) > MAX_VISITS:
        context["error"] = too_many_visits_message(len(ids))
        return render_template("caseworker/visits.html", **context), 400
    if ids:
        chosen = households.set_index(schema.ID, drop=False).loc[ids]
        try:
            route = order_visits(app_placer(policy or None), start, chosen, profile=profile, weight=weight)
        except SnapError:
            logger.info("%s: no usable road for a %s visit route (policy %r)", current_user.name, profile, policy)
            context["error"] = gettext(
                "按“%(profile)s”和未知属性策略“%(policy)s”，路网中没有可用的路段，无法排出路线。"
                "请改选“宽松”策略或其他出行方式。",
                profile=gettext(VISIT_PROFILES[profile]),
                policy=context["policy_label"],
            )
            return render_template("caseworker/visits.html", **context)
        ordered = chosen.loc[list(route.order)]
        fmt = request.args.get("format", "")
        if fmt in EXPORT_FORMATS:
            table = household_export_table(ordered, district)
            table.insert(0, gettext("顺序"), range(1, len(table) + 1))
            table[gettext("本段距离（米）")] = [round(v) for v in route.leg_length_m]
            table[gettext("本段用时（分钟）")] = [round(v / 60, 1) for v in route.leg_time_s]
            logger.info("%s exported a visit list of %d households as %s", current_user.name, len(table), fmt)
            return _download(table, fmt, sheet=gettext("走访顺序"), stem="visit-list")
        parts = render_map_parts(
            households_map(
                district,
                ordered,
                towns=tuple(current_user.towns),
                route=route,
                start=start,
                tiles=tile_sources_from_config(current_app.config),
                datum=current_app.config.get("TILE_DATUM") or "wgs84",
                status_label=_status_label,
                static_url=_static_url,
                roads=_main_roads(),
            )
        )
        context.update(
            route=route,
            stops=_route_rows(ordered, route, villages),
            unreachable=list(route.unreachable),
            map_parts=nonced_map_parts(parts),
        )
    return render_template("caseworker/visits.html", **context)


# --- helpers ---------------------------------------------------------------------------------------


def _household_page(
    household_id: str,
    *,
    reason: str | None = None,
    reveal_error: str | None = None,
    status_error: str | None = None,
    conflict: str | None = None,
    visit_error: str | None = None,
) -> str:
    """Render the household page: masked, or in full when ``reason`` is given (logged)."""
    row = household_in_scope(household_id)
    gdf = read_households(
        get_store(),
        role=current_user.role,
        user=current_user.name,
        towns=tuple(current_user.towns),
        ids=[household_id],
        reveal=reason is not None,
        reason=reason,
        channel="web",
        ip=request.remote_addr,
    )
    record = gdf.iloc[0].to_dict()
    district = get_district()
    villages = _village_names(district)
    status = record[schema.STATUS]
    return render_template(
        "caseworker/household.html",
        record=record,
        revealed=reason is not None,
        personal=[(gettext(label), record.get(column)) for column, label in _PERSONAL_FIELDS],
        facts=[
            (gettext("镇街"), _own_town_names(district).get(str(record[schema.TOWN_CODE]), record[schema.TOWN_CODE])),
            (gettext("村（社区）"), villages.get(str(record[schema.VILLAGE_CODE]), record[schema.VILLAGE_CODE])),
            (gettext("详细地址"), record.get(schema.ADDRESS)),
            (gettext("残疾类别"), _label(schema.DISABILITY_CATEGORIES, record.get(schema.DISABILITY_CATEGORY))),
            (gettext("残疾等级"), _label(schema.DISABILITY_GRADES, record.get(schema.DISABILITY_GRADE))),
            (gettext("改造需求"), record.get(schema.NEEDS)),
        ],
        status_label=_status_label(status),
        next_statuses=[(s, _status_label(s)) for s in _next_statuses(status)],
        version=int(row[schema.VERSION]),
        updated=(row[schema.UPDATED_BY], format_local_time(row[schema.UPDATED_AT])),
        history=[
            {
                **h,
                "status_label": _status_label(h["status"]),
                "before_label": _status_label(h["status_before"]),
            }
            for h in status_history(schema.HOUSEHOLD, household_id)
        ],  # fmt: skip
        reveal_error=reveal_error,
        status_error=status_error,
        conflict=conflict,
        visit_error=visit_error,
        visit_rows=_own_visits(household_id),
        visit_headers=[gettext(h) for h in VISIT_LOG_HEADERS],
        today=date.today().isoformat(),
        form=request.form if visit_error else {},
    )


def _next_statuses(status: str) -> tuple[str, ...]:
    return tuple(s for s in schema.layer_spec(schema.HOUSEHOLD).workflow.next_statuses(status) if s != status)


def _own_households() -> gpd.GeoDataFrame:
    """Return the caller's towns' households, personal fields masked."""
    return read_households(
        get_store(),
        role=current_user.role,
        user=current_user.name,
        towns=tuple(current_user.towns),
        purpose=f"{request.method} {request.path}",
        channel="web",
        ip=request.remote_addr,
    )


def _rows(households: pd.DataFrame, villages: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "id": r[schema.ID],
            "village": villages.get(str(r[schema.VILLAGE_CODE]), r[schema.VILLAGE_CODE]),
            "name": r[schema.NAME],
            "address": r[schema.ADDRESS],
            "status": r[schema.STATUS],
            "status_label": _status_label(r[schema.STATUS]),
            "category": _label(schema.DISABILITY_CATEGORIES, r.get(schema.DISABILITY_CATEGORY)),
            "grade": _label(schema.DISABILITY_GRADES, r.get(schema.DISABILITY_GRADE)),
            "needs": r.get(schema.NEEDS) or "",
        }
        for r in households.to_dict("records")
    ]


def _route_rows(ordered: pd.DataFrame, route: VisitRoute, villages: dict[str, str]) -> list[dict[str, Any]]:
    rows = _rows(ordered, villages)
    for row, length_m, time_s in zip(rows, route.leg_length_m, route.leg_time_s, strict=True):
        row.update(length_km=f"{length_m / 1000:.1f}", minutes=format_leg_minutes(time_s))
    return rows


def _progress(district: District) -> dict[str, Any]:
    """Return home-modification coverage in the caller's towns (``analyses.targets`` rules)."""
    report = targets_report_from_store(get_store(), district.plan_dir, district.towns, on=date.today(),
                                       plan_year=district.plan_year)
    home = report.home_modification
    by_town = home.by_town[home.by_town[schema.TOWN_CODE].astype(str).isin(current_user.towns)]
    totals = {c: int(by_town[c].sum()) for c in ("households", "declined", "in_need", "modified", "verified")}
    share = totals["modified"] / totals["in_need"] if totals["in_need"] else None
    return {
        **totals,
        "share": share,
        "percent": None if share is None else f"{share * 100:.1f}",
        "target_percent": None if home.target_share is None else f"{home.target_share * 100:.0f}",
        "by_town": by_town.to_dict("records"),
    }


def too_many_visits_message(count: int) -> str:
    """Return the message for a visit list of ``count`` households, more than `MAX_VISITS`."""
    return gettext(
        "一次最多安排 %(max)d 户走访，您选了 %(count)d 户。请取消勾选 %(extra)d 户后再排顺序；已选的家庭仍保留在下方。",
        max=MAX_VISITS,
        count=count,
        extra=count - MAX_VISITS,
    )


def _main_roads() -> dict[str, Any]:
    """Return the main roads of the app's network as GeoJSON for the route map (made once per app)."""
    roads = current_app.extensions.get(_ROADS_KEY)
    if roads is None:
        roads = current_app.extensions[_ROADS_KEY] = main_roads_geojson(app_placer().net)
    return roads


_ROADS_KEY = "accessplan.caseworker_roads"


def _policy_label(chosen: str | None) -> str:
    """Return the unknown-attribute policy the route uses (``chosen``, else ``UNKNOWN_POLICY``), for people."""
    policy = chosen or CostSettings.from_config(current_app.config).unknown
    if policy == "strict":
        return gettext("严格（属性未知的路段视为不可通行）")
    if policy == "lenient":
        return gettext("宽松（属性未知的路段视为可通行）")
    return gettext("按 geo/profiles.toml 中各属性的设定")


def format_leg_minutes(seconds: float) -> str:
    """Return a leg's travel time for the visit list: ``"< 1 分钟"`` under a minute, else whole minutes."""
    if seconds < 60:
        return gettext("< 1 分钟")
    return gettext("%(minutes)d 分钟", minutes=round(seconds / 60))


def start_point(
    district: District,
    households: pd.DataFrame,
    towns: dict[str, str],
    key: str,
    args: MultiDict[str, str],
) -> tuple[gpd.GeoDataFrame, str]:
    """Return the visit route's start point (WGS 84) and its label, from the ``start`` choice ``key``.

    Parameters
    ----------
    district
        The district (town seats and boundary).
    households
        The caller's households (``hh:<id>`` must be one of them).
    towns
        The caller's towns: code → name (a town code must be one of them).
    key
        A town code, ``office:<n>`` (the district's n-th office, ``District.offices``), ``hh:<id>`` or
        ``here`` (then ``lat`` and ``lon`` in ``args``, inside the district).
    args
        The request's query (``lat``, ``lon``).

    Raises
    ------
    LookupError
        If the town or household is not the caller's (logged; the page answers 404).
    ValueError
        If the device location is missing or outside the district; the message names the value and the fix.
    """
    if key == "here":
        try:
            lat, lon = float(args.get("lat", "")), float(args.get("lon", ""))
        except ValueError:
            msg = gettext(
                "出发点选了“当前位置”，但没有收到有效的经纬度（lat=%(lat)s，lon=%(lon)s）。"
                "请允许浏览器获取位置，或改选镇街驻地或某户家庭作为出发点。",
                lat=repr(args.get("lat", "")),
                lon=repr(args.get("lon", "")),
            )
            raise ValueError(msg) from None
        point = gpd.GeoDataFrame(geometry=gpd.points_from_xy([lon], [lat]), crs=schema.WGS84)
        boundary = district.boundary.to_crs(schema.WGS84)
        if not boundary.union_all().buffer(0.01).contains(point.geometry.iloc[0]):
            msg = gettext(
                "当前位置（纬度 %(lat)s，经度 %(lon)s）不在%(district)s范围内，不能作为出发点。"
                "请改选镇街驻地或某户家庭作为出发点。",
                lat=f"{lat:.5f}",
                lon=f"{lon:.5f}",
                district=district.display_name(),
            )
            raise ValueError(msg)
        return point, gettext("当前位置")
    if key.startswith("office:"):
        number = key[len("office:") :]
        if not number.isdigit() or int(number) >= len(district.offices):
            msg = gettext("出发点 %(start)s 不是本区登记的办公地点。请从列表中选择出发点。", start=repr(key))
            raise ValueError(msg)
        office = district.offices[int(number)]
        point = gpd.GeoDataFrame(geometry=gpd.points_from_xy([office.lon], [office.lat]), crs=schema.WGS84)
        return point, office.name
    if key.startswith("hh:"):
        household_id = key[3:]
        rows = households[households[schema.ID] == household_id]
        if rows.empty:
            log_out_of_scope("start household", [household_id])
            msg = gettext("出发点家庭 %(id)s 不在您负责的镇街内。请从列表中选择出发点。", id=repr(household_id))
            raise LookupError(msg)
        start = gpd.GeoDataFrame(geometry=list(rows.geometry.iloc[:1]), crs=households.crs).to_crs(schema.WGS84)
        return start, gettext("家庭 %(id)s", id=household_id)
    if key not in towns:
        log_out_of_scope("start town", [key])
        msg = gettext("出发点 %(start)s 不是您负责的镇街。请从列表中选择出发点。", start=repr(key))
        raise LookupError(msg)
    town = district.towns[district.towns[schema.TOWN_CODE].astype(str) == key].iloc[0]
    seat = gpd.GeoDataFrame(geometry=gpd.points_from_xy([town["seat_lon"]], [town["seat_lat"]]), crs=schema.WGS84)
    return seat, gettext("%(town)s驻地", town=towns[key])


def _own_town_names(district: District) -> dict[str, str]:
    names = district.town_names()
    return {code: names.get(code, code) for code in current_user.towns}


def _village_names(district: District) -> dict[str, str]:
    """Return the caller's towns' villages: code → name."""
    villages = district.villages
    own = villages[villages[schema.TOWN_CODE].astype(str).isin(current_user.towns)]
    return dict(zip(own[schema.VILLAGE_CODE].astype(str), own["name"], strict=True))


def _code(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    try:
        return str(int(float(value)))
    except (TypeError, ValueError):
        return str(value)


def _label(labels: dict[int, str], value: Any) -> str:
    code = _code(value)
    return gettext(labels[int(code)]) if code.isdigit() and int(code) in labels else code


def _status_label(status: str | None) -> str:
    """Return the translated label of a household status (the code itself if unknown; "" for none)."""
    return gettext(STATUS_LABELS_ZH[status]) if status in STATUS_LABELS_ZH else (status or "")


def _static_url(filename: str) -> str:
    return url_for("static", filename=filename)
