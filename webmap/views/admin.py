"""Manage staff accounts: the admin page (list, add, deactivate, reset password); the commands are in webmap.cli."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from layers import users
from layers.errors import NotFoundError
from layers.privacy import ADMIN, STAFF_ROLES
from webmap.auth import ROLE_LABELS, role_required
from webmap.i18n import N_
from webmap.store import get_district, get_store, resolve_towns

if TYPE_CHECKING:
    from werkzeug.wrappers import Response as BaseResponse

logger = logging.getLogger(__name__)

bp = Blueprint("admin", __name__, url_prefix="/admin")

#: The page's message for each rule of `users.check_password` (zh-CN msgids, translated where shown).
WEAK_PASSWORD_MESSAGES = {
    "too_short": N_("密码至少需要 %(min_length)d 个字符（现在是 %(length)d 个）：请输入更长的密码。"),
    "common": N_("这是常见密码，很容易被猜中：请换一个不常见的密码（例如几个不相关的词）。"),
    "repetitive": N_("密码由重复的字符或片段组成（如 aaaa、abab）：请换一个不重复的密码。"),
    "sequence": N_("密码是连续的字符（如 123456、abcdef、qwerty）：请换一个不连续的密码。"),
    "contains_name": N_("密码不能包含用户名：请换一个密码。"),
}


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
        users.add_user(get_store(), name, role=role, password=password, towns=towns)
    except users.WeakPasswordError as error:
        message = gettext(WEAK_PASSWORD_MESSAGES[error.rule], min_length=error.min_length, length=error.length)
        return _render(error=message, form=request.form), 400
    except ValueError as error:
        return _render(error=str(error), form=request.form), 400
    logger.info("%s added user %r (%s)", current_user.name, name, role)
    shown = password if not request.form.get("password") else None
    return _render(message=gettext("已添加用户 %(name)s。", name=name), new_password=(name, shown) if shown else None)


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


@bp.post("/users/<name>/password")
@role_required(ADMIN)
def reset_password(name: str) -> str:
    """Give an account a new random password, shown once on the page (its sessions end)."""
    password = users.generate_password()
    _or_404(lambda: users.set_password(get_store(), name, password))
    logger.info("%s reset the password of user %r", current_user.name, name)
    return _render(message=gettext("已重置用户 %(name)s 的密码。", name=name), new_password=(name, password))


def _render(
    *,
    error: str | None = None,
    message: str | None = None,
    new_password: tuple[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> str:
    return render_template(
        "admin/users.html",
        accounts=users.list_users(get_store()),
        town_names=get_district().town_names(),
        roles=STAFF_ROLES,
        role_labels={role: gettext(label) for role, label in ROLE_LABELS.items()},
        error=error,
        message=message,
        new_password=new_password,
        form=form or {},
    )


def _or_404(action: Callable[[], None]) -> None:
    try:
        action()
    except NotFoundError:
        abort(404, gettext("没有这个用户。"))
