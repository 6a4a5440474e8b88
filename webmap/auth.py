"""Sign staff in and out (Flask-Login sessions), limit failed logins, and check roles on every staff view."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user

from layers import users
from layers.errors import NotFoundError
from webmap.maps import N_
from webmap.security import is_api_request, json_error
from webmap.store import get_district, get_store

if TYPE_CHECKING:
    from flask import Flask
    from werkzeug.wrappers import Response as BaseResponse

logger = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

#: Role names shown to people: zh-CN msgids, translated where shown.
ROLE_LABELS = {
    "caseworker": N_("个案工作人员（按镇街）"),
    "bureau": N_("住建部门（无障碍厕所登记）"),
    "planner": N_("规划人员（区残联）"),
    "admin": N_("系统管理员"),
}

F = TypeVar("F", bound=Callable[..., Any])


class StaffUser(UserMixin):
    """The signed-in account, as Flask-Login sees it.

    The session keeps ``name:password_stamp``: a changed password or a deactivated account ends
    every session of that account on its next request.
    """

    def __init__(self, user: users.User) -> None:
        self.user = user
        self.name = user.name
        self.role = user.role
        self.towns = user.towns

    def get_id(self) -> str:
        """Return the session id of this account."""
        return f"{self.user.name}:{self.user.password_stamp}"


def init_app(app: Flask) -> None:
    """Set up Flask-Login sessions and the template helpers (``role_labels``, ``town_names``)."""
    manager = LoginManager(app)
    manager.login_view = "auth.login"
    manager.login_message = N_("请先登录。")
    manager.localize_callback = gettext
    manager.user_loader(_load_user)
    manager.unauthorized_handler(_unauthorized)
    app.context_processor(lambda: {"role_labels": {role: gettext(label) for role, label in ROLE_LABELS.items()}})


def role_required(*roles: str) -> Callable[[F], F]:
    """Let only signed-in staff with one of ``roles`` reach the view (401 or login page, else 403)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if current_user.role not in roles:
                logger.warning(
                    "Refused %s (%s) on %s %s", current_user.name, current_user.role, request.method, request.path
                )
                abort(403, gettext("角色“%(role)s”无权访问此功能。", role=gettext(ROLE_LABELS[current_user.role])))
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | BaseResponse | tuple[str, int, dict[str, str]]:
    """Show the sign-in form; sign in, at most ``LOGIN_MAX_FAILURES`` failures per name, IP and window."""
    next_url = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("auth/login.html", next_url=next_url, name="", error=None)
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    ip = request.remote_addr or "unknown"
    store = get_store()
    config = current_app.config
    window_s = config["LOGIN_WINDOW_S"]
    if (
        users.failed_logins(store, ip=ip, name=name, window_s=window_s) >= config["LOGIN_MAX_FAILURES"]
        or users.failed_logins(store, ip=ip, window_s=window_s) >= config["LOGIN_MAX_FAILURES_PER_IP"]
    ):
        logger.warning("Login of %r from %s refused: too many failed attempts", name, ip)
        minutes = round(window_s / 60)
        message = gettext("登录失败次数过多，请 %(minutes)d 分钟后再试。", minutes=minutes)
        page = render_template("auth/login.html", next_url=next_url, name=name, error=message)
        return page, 429, {"Retry-After": str(window_s)}
    user = users.authenticate(store, name, password)
    users.record_login_attempt(store, name, ip, succeeded=user is not None)
    if user is None:
        logger.info("Failed login of %r from %s", name, ip)
        page = render_template("auth/login.html", next_url=next_url, name=name, error=gettext("用户名或密码错误。"))
        return page, 401
    session.clear()  # a fresh session (and CSRF token) for the signed-in user
    login_user(StaffUser(user))
    logger.info("%s (%s) signed in from %s", user.name, user.role, ip)
    return redirect(next_url or url_for("auth.account"))


@bp.post("/logout")
def logout() -> BaseResponse:
    """Sign out (a POST with the CSRF token, so no other site can sign a user out)."""
    if current_user.is_authenticated:
        logger.info("%s signed out", current_user.name)
    logout_user()
    session.clear()
    return redirect(url_for("public.index"))


@bp.get("/account")
@role_required(*users.STAFF_ROLES)
def account() -> str:
    """Show who is signed in, their role and towns, and what they can open."""
    town_names = _town_names()
    return render_template(
        "auth/account.html",
        towns=[town_names.get(code, code) for code in current_user.towns],
    )


def _town_names() -> dict[str, str]:
    towns = get_district().towns
    return dict(zip(towns["town_code"], towns["name"], strict=True))


def _load_user(session_id: str) -> StaffUser | None:
    name, _, stamp = session_id.rpartition(":")
    try:
        user = users.get_user(get_store(), name)
    except NotFoundError:
        return None
    if not user.active or user.password_stamp != stamp:
        return None
    return StaffUser(user)


def _unauthorized() -> BaseResponse | tuple[Any, int]:
    if is_api_request():
        return json_error(401, gettext("请先登录（POST /login），再以同一会话访问此接口。"))
    if request.method != "GET":  # a form posted after the session ended: back to the page, not the POST URL
        return redirect(url_for("auth.login", next=_safe_next(_local_referrer())))
    return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))


def _local_referrer() -> str | None:
    referrer = request.referrer or ""
    host = request.host_url.rstrip("/")
    return referrer[len(host) :] if referrer.startswith(host + "/") else None


def _safe_next(url: str | None) -> str | None:
    """Keep only a local path as the page to return to (no open redirect)."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return None
    return url
