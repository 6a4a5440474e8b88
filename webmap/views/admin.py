"""Manage staff accounts and read the access log: the admin pages (the `accessplan users` commands are in webmap.cli).

The admin pages list, add and (de)activate accounts, change an account's role and towns, reset a
password after a confirmation step, and show the access log (`access_log`): who saw which
household's full record, when, why, through which channel and from which address, filtered by
user, town and date, a page at a time, and exported as CSV or XLSX.

Reading the access log is not written to the access log itself: that log records sight of
households' personal fields, and the viewer shows none (household ids, towns and reasons only).
Each view and export is written to the application log instead (who, which filters, how many rows).
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from layers import users
from layers.errors import NotFoundError
from layers.privacy import ADMIN, BULK_READ_ID, STAFF_ROLES
from layers.spreadsheet import neutralise_formulas
from layers.store import ACCESS_CHANNELS, ACCESS_KINDS, AccessLogQuery
from webmap.auth import role_required, weak_password_message
from webmap.i18n import N_, current_language
from webmap.store import get_district, get_store, resolve_towns
from webmap.timefmt import LOCAL_TZ, format_local_time

if TYPE_CHECKING:
    from werkzeug.datastructures import MultiDict
    from werkzeug.wrappers import Response as BaseResponse

logger = logging.getLogger(__name__)

bp = Blueprint("admin", __name__, url_prefix="/admin")

#: The page's message for each rule of `users.ScopeError` (zh-CN msgids, translated where shown).
SCOPE_MESSAGES = {
    "unknown_role": N_("没有“%(role)s”这个角色：请从列表中选择一个角色。"),
    "needs_towns": N_("个案工作人员按镇街负责：请至少勾选一个负责镇街。"),
    "bad_town": N_("镇街应为 9 位数字的镇街代码：请从列表中勾选镇街。"),
    "no_towns": N_("该角色负责全区，不设负责镇街：请取消勾选镇街。"),
}
#: The message of each `users.UserNameError` rule.
NAME_MESSAGES = {
    "format": N_("用户名“%(name)s”不可用：用户名为 2–64 个字母、数字或 _ . @ - 字符，请换一个。"),
    "taken": N_("用户名“%(name)s”已被使用：请换一个用户名。"),
}
#: Rows on one page of the access-log viewer.
ACCESS_LOG_PAGE_SIZE = 50
#: The viewer's row kinds (`layers.store.ACCESS_KINDS`), for people.
ACCESS_KIND_LABELS = {"full": N_("查看完整记录"), "bulk": N_("批量读取名单"), "all": N_("全部")}
#: How a record was seen (`layers.store.ACCESS_CHANNELS`), for people.
CHANNEL_LABELS = {"web": N_("网页"), "api": N_("接口"), "cli": N_("命令行")}
#: Export formats of the access log → MIME type.
EXPORT_FORMATS = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
#: Columns of the access-log export: key → header (zh-CN msgid, English through the catalog).
EXPORT_HEADERS = {
    "at": N_("时间（北京时间）"),
    "actor": N_("用户"),
    "kind": N_("类型"),
    "feature_id": N_("家庭编号"),
    "town_code": N_("镇街代码"),
    "town": N_("镇街"),
    "reason": N_("理由"),
    "channel": N_("渠道"),
    "ip": N_("IP 地址"),
}
#: Dates the viewer accepts (an access log of this tool holds nothing outside them).
_FIRST_DATE, _LAST_DATE = date(2000, 1, 1), date(2099, 12, 31)

# --- admin page ------------------------------------------------------------------------------------


@bp.get("/users", endpoint="users")
@role_required(ADMIN)
def users_page() -> str:
    """List the accounts with their role, towns and state, and the form to add one."""
    return _render()


@bp.post("/users")
@role_required(ADMIN)
def add_user() -> str | tuple[str, int]:
    """Add an account; the password is the one typed, or a random one shown once on this page."""
    name = request.form.get("name", "").strip()
    role = request.form.get("role", "")
    password = request.form.get("password", "") or users.generate_password()
    try:
        towns = resolve_towns(request.form.getlist("towns")) if role in users.TOWN_SCOPED_ROLES else []
    except ValueError:  # a town not of this district (a hand-made form)
        return _render(error=gettext("所选镇街不在本区：请从列表中勾选镇街。"), form=request.form), 400
    try:
        users.add_user(get_store(), name, role=role, password=password, towns=towns)
    except users.WeakPasswordError as error:
        return _render(error=weak_password_message(error), form=request.form), 400
    except users.ScopeError as error:
        return _render(error=scope_message(error), form=request.form), 400
    except users.UserNameError as error:
        return _render(error=gettext(NAME_MESSAGES[error.rule], name=error.name), form=request.form), 400
    logger.info("%s added user %r (%s)", current_user.name, name, role)
    shown = password if not request.form.get("password") else None
    return _render(message=gettext("已添加用户 %(name)s。", name=name), new_password=(name, shown) if shown else None)


@bp.route("/users/<name>/edit", methods=["GET", "POST"])
@role_required(ADMIN)
def edit_user(name: str) -> str | BaseResponse | tuple[str, int]:
    """Change an account's role and towns (towns only for caseworkers); admins cannot change their own role."""
    account = _account_or_404(name)
    if request.method == "GET":
        return _render_edit(account, role=account.role, towns=account.towns)
    role = request.form.get("role", "")
    chosen = request.form.getlist("towns")
    if name == current_user.name and role != account.role:
        message = gettext("不能修改自己的角色（以免系统没有管理员）：请另一位管理员修改。")
        return _render_edit(account, role=role, towns=chosen, error=message), 400
    try:
        towns = resolve_towns(chosen) if role in users.TOWN_SCOPED_ROLES else []
        users.set_role(get_store(), name, role=role, towns=towns)
    except users.ScopeError as error:
        return _render_edit(account, role=role, towns=chosen, error=scope_message(error)), 400
    except ValueError:  # a town that is not the district's (the form lists only the district's)
        message = gettext("所选镇街不在本区：请从列表中勾选镇街。")
        return _render_edit(account, role=role, towns=chosen, error=message), 400
    logger.info("%s set the role of user %r to %r (towns %s)", current_user.name, name, role, ",".join(towns) or "-")
    flash(gettext("已修改用户 %(name)s 的角色和负责镇街。", name=name))
    return redirect(url_for("admin.users"))


@bp.post("/users/<name>/active")
@role_required(ADMIN)
def set_active(name: str) -> BaseResponse:
    """Activate (``active=1``) or deactivate (``active=0``) an account; admins cannot deactivate themselves."""
    active = request.form.get("active") == "1"
    if name == current_user.name and not active:
        abort(400, gettext("不能停用自己的账户。"))
    _or_404(lambda: users.set_active(get_store(), name, active))
    logger.info("%s %s user %r", current_user.name, "activated" if active else "deactivated", name)
    flash(gettext("已启用用户 %(name)s。", name=name) if active else gettext("已停用用户 %(name)s。", name=name))
    return redirect(url_for("admin.users"))


@bp.route("/users/<name>/password", methods=["GET", "POST"])
@role_required(ADMIN)
def reset_password(name: str) -> str | tuple[str, int]:
    """Ask to confirm (GET), then give the account a new random password shown once (its sessions end).

    The POST resets only with the confirmation box ticked (``confirm=yes``); without it the
    confirmation page comes back with a message and nothing changes.
    """
    account = _account_or_404(name)
    if request.method == "GET":
        return render_template("admin/confirm_reset.html", account=account, error=None)
    if request.form.get("confirm") != "yes":
        message = gettext("请先勾选确认框，再重置密码。密码未重置。")
        return render_template("admin/confirm_reset.html", account=account, error=message), 400
    password = users.generate_password()
    _or_404(lambda: users.set_password(get_store(), name, password))
    logger.info("%s reset the password of user %r", current_user.name, name)
    return _render(message=gettext("已重置用户 %(name)s 的密码。", name=name), new_password=(name, password))


def scope_message(error: users.ScopeError) -> str:
    """Return the page's message (in the request's language) for a role and towns `users` refused."""
    return gettext(SCOPE_MESSAGES[error.rule], role=error.role)


def _render(
    *,
    error: str | None = None,
    message: str | None = None,
    new_password: tuple[str, str] | None = None,
    form: Mapping[str, str] | None = None,
) -> str:
    return render_template(
        "admin/users.html",
        accounts=users.list_users(get_store()),
        town_names=get_district().town_names(current_language()),
        roles=STAFF_ROLES,
        error=error,
        message=message,
        new_password=new_password,
        form=form or {},
    )


def _render_edit(account: users.User, *, role: str, towns: Iterable[str], error: str | None = None) -> str:
    return render_template(
        "admin/edit_user.html",
        account=account,
        role=role,
        towns=set(towns),
        roles=STAFF_ROLES,
        town_names=get_district().town_names(current_language()),
        error=error,
    )


def _account_or_404(name: str) -> users.User:
    try:
        return users.get_user(get_store(), name)
    except NotFoundError:
        abort(404, gettext("没有这个用户。"))


def _or_404(action: Callable[[], None]) -> None:
    try:
        action()
    except NotFoundError:
        abort(404, gettext("没有这个用户。"))


# --- access log ------------------------------------------------------------------------------------


@dataclass
class LogFilter:
    """The access-log viewer's filters as typed (``values``), the store query they make, and their problems."""

    values: dict[str, str]
    query: AccessLogQuery | None
    page: int = 1
    errors: list[str] = field(default_factory=list)


def parse_log_filter(args: MultiDict[str, str]) -> LogFilter:
    """Read the viewer's filters (``user``, ``town``, ``from``, ``to``, ``kind``, ``page``) from ``args``.

    Dates are Beijing-time days, both ends included; ``town`` is a town code of the district;
    ``kind`` one of `layers.store.ACCESS_KINDS` (default ``full``). Every problem becomes a message
    naming the field, the value and the fix; ``query`` is None when there is one.
    """
    values = {key: args.get(key, "").strip() for key in ("user", "town", "from", "to", "kind", "page")}
    values["kind"] = values["kind"] or "full"
    errors: list[str] = []
    towns = get_district().town_names(current_language())
    if values["town"] and values["town"] not in towns:
        errors.append(gettext("镇街“%(value)s”不在本区：请从列表中选择镇街。", value=values["town"]))
    if values["kind"] not in ACCESS_KINDS:
        kinds = gettext("、").join(gettext(ACCESS_KIND_LABELS[k]) for k in ACCESS_KINDS)
        errors.append(gettext("记录类型“%(value)s”无效：请选择 %(kinds)s。", value=values["kind"], kinds=kinds))
    start = _parse_day(values["from"], gettext("起始日期"), errors)
    end = _parse_day(values["to"], gettext("结束日期"), errors)
    if start and end and start > end:
        message = gettext("起始日期 %(start)s 晚于结束日期 %(end)s：请调换两个日期。", start=start, end=end)
        errors.append(message)
    page = 1
    if values["page"]:
        try:
            page = int(values["page"])
        except ValueError:
            page = 0
        if page < 1:
            errors.append(gettext("页码“%(value)s”无效：页码是从 1 开始的整数。", value=values["page"]))
    if errors:
        return LogFilter(values, None, errors=errors)
    query = AccessLogQuery(
        actors=(values["user"],) if values["user"] else None,
        towns=(values["town"],) if values["town"] else None,
        since=_day_start(start) if start else None,
        until=_day_start(end + timedelta(days=1)) if end else None,
        kind=values["kind"],
    )
    return LogFilter(values, query, page=page)


@bp.get("/access-log", endpoint="access_log")
@role_required(ADMIN)
def access_log_page() -> str | tuple[str, int]:
    """Show the access log newest first, `ACCESS_LOG_PAGE_SIZE` rows a page, with its filters and exports."""
    log_filter = parse_log_filter(request.args)
    if log_filter.query is None:
        return _render_log(log_filter), 400
    store = get_store()
    total = store.count_access_log(log_filter.query)
    pages = max(1, math.ceil(total / ACCESS_LOG_PAGE_SIZE))
    if log_filter.page > pages:
        log_filter.errors.append(gettext("没有第 %(page)d 页：共 %(pages)d 页。", page=log_filter.page, pages=pages))
        return _render_log(log_filter, total=total, pages=pages), 400
    rows = store.access_log(
        log_filter.query,
        newest_first=True,
        limit=ACCESS_LOG_PAGE_SIZE,
        offset=(log_filter.page - 1) * ACCESS_LOG_PAGE_SIZE,
    )
    logger.info("%s viewed the access log (%s): page %d, %d rows of %d",
                current_user.name, _described(log_filter), log_filter.page, len(rows), total)  # fmt: skip
    return _render_log(log_filter, rows=rows, total=total, pages=pages)


@bp.get("/access-log/export", endpoint="access_log_export")
@role_required(ADMIN)
def access_log_export() -> Response | tuple[str, int]:
    """Download every access-log row the filters select as ``format=csv`` or ``xlsx`` (headers in the language)."""
    log_filter = parse_log_filter(request.args)
    fmt = request.args.get("format", "").strip().lower()
    if fmt not in EXPORT_FORMATS:
        log_filter.errors.append(
            gettext("导出格式“%(value)s”无效：请选择 CSV 或 XLSX。", value=request.args.get("format", ""))
        )
    if log_filter.query is None or log_filter.errors:
        return _render_log(log_filter), 400
    rows = get_store().access_log(log_filter.query, newest_first=True)
    table = access_log_table(rows)
    logger.info("%s exported the access log as %s (%s): %d rows",
                current_user.name, fmt, _described(log_filter), len(rows))  # fmt: skip
    if fmt == "csv":
        body = neutralise_formulas(table).to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")
    else:
        buffer = io.BytesIO()
        with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
            neutralise_formulas(table).to_excel(writer, sheet_name=gettext("访问日志"), index=False)
        body = buffer.getvalue()
    stamp = datetime.now(LOCAL_TZ).strftime("%Y%m%d-%H%M")
    return Response(
        body,
        mimetype=EXPORT_FORMATS[fmt],
        headers={"Content-Disposition": f'attachment; filename="access-log-{stamp}.{fmt}"'},
    )


def access_log_table(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Return access-log rows as the export's table: `EXPORT_HEADERS` in the request's language, times in Beijing time.

    Town names are shown beside their codes and kinds and channels as words; a bulk read has no
    household and no town (empty cells); the ``ip`` of a command-line read is empty.
    """
    towns = get_district().town_names(current_language())
    kinds = {kind: gettext(label) for kind, label in ACCESS_KIND_LABELS.items()}
    channels = {channel: gettext(label) for channel, label in CHANNEL_LABELS.items()}
    records = [
        {
            "at": format_local_time(row["at"]),
            "actor": row["actor"],
            "kind": kinds["bulk"] if row["feature_id"] == BULK_READ_ID else kinds["full"],
            "feature_id": "" if row["feature_id"] == BULK_READ_ID else row["feature_id"],
            "town_code": row["town_code"] or "",
            "town": towns.get(row["town_code"], "") if row["town_code"] else "",
            "reason": row["reason"],
            "channel": channels.get(row["channel"], ""),
            "ip": row["ip"] or "",
        }
        for row in rows
    ]
    table = pd.DataFrame.from_records(records, columns=list(EXPORT_HEADERS))
    return table.rename(columns={key: gettext(label) for key, label in EXPORT_HEADERS.items()})


def _parse_day(text: str, label: str, errors: list[str]) -> date | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is None or not _FIRST_DATE <= day <= _LAST_DATE:
        errors.append(
            gettext("%(field)s“%(value)s”不是有效日期：请按 年-月-日 填写 2000 至 2099 年的日期，例如 2026-03-01。",
                    field=label, value=text)  # fmt: skip
        )
        return None
    return day


def _day_start(day: date) -> datetime:
    """Return the start of ``day`` in Beijing time, in UTC."""
    return datetime.combine(day, time(), tzinfo=LOCAL_TZ).astimezone(UTC)


def _described(log_filter: LogFilter) -> str:
    return ", ".join(f"{k}={v}" for k, v in log_filter.values.items() if v and k != "page") or "no filter"


def _render_log(
    log_filter: LogFilter, *, rows: list[dict[str, Any]] | None = None, total: int = 0, pages: int = 1
) -> str:
    lang = {"lang": "en"} if current_language() == "en" else {}  # links and exports keep the page's language
    args = {k: v for k, v in log_filter.values.items() if v and k != "page"}
    return render_template(
        "admin/access_log.html",
        filter=log_filter.values,
        errors=log_filter.errors,
        rows=rows,
        total=total,
        page=log_filter.page,
        pages=pages,
        first=(log_filter.page - 1) * ACCESS_LOG_PAGE_SIZE + 1,
        link_args={**args, **lang},
        lang_args=lang,
        town_names=get_district().town_names(current_language()),
        actors=[u.name for u in users.list_users(get_store())],
        kinds=[(k, gettext(ACCESS_KIND_LABELS[k])) for k in ACCESS_KINDS],
        channel_labels={c: gettext(CHANNEL_LABELS[c]) for c in ACCESS_CHANNELS},
        bulk_id=BULK_READ_ID,
    )
