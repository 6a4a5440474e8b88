"""Sign staff in and out (Flask-Login sessions), limit failed logins, and check roles on every staff view.

A session carries the account's session token (`StaffUser.get_id`): signing out, a new password or
deactivation replaces the token, so every copy of every cookie of that account stops working. A
session also ends ``SESSION_IDLE_S`` seconds after its last request and ``SESSION_MAX_S`` seconds
after sign-in. Failed logins are limited per account and per address (`layers.users.sign_in`).
"""

from __future__ import annotations

import functools
import logging
import math
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user

from layers import users
from layers.errors import NotFoundError
from webmap.i18n import N_
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

#: The workspace each role lands on after sign-in (an explicit safe ``next`` wins).
LANDING_ENDPOINTS = {
    "admin": "admin.users",
    "planner": "planner.index",
    "caseworker": "caseworker.index",
    "bureau": "toilets.register",
}

#: The page's message for each rule of `users.check_password` (zh-CN msgids, translated where shown).
WEAK_PASSWORD_MESSAGES = {
    "too_short": N_("密码至少需要 %(min_length)d 个字符（现在是 %(length)d 个）：请输入更长的密码。"),
    "common": N_("这是常见密码，很容易被猜中：请换一个不常见的密码（例如几个不相关的词）。"),
    "repetitive": N_("密码由重复的字符或片段组成（如 aaaa、abab）：请换一个不重复的密码。"),
    "sequence": N_("密码是连续的字符（如 123456、abcdef、qwerty）：请换一个不连续的密码。"),
    "contains_name": N_("密码不能包含用户名：请换一个密码。"),
}

F = TypeVar("F", bound=Callable[..., Any])


def weak_password_message(error: users.WeakPasswordError) -> str:
    """Return the page's message (in the request's language) for a password `users.check_password` refused."""
    return gettext(WEAK_PASSWORD_MESSAGES[error.rule], min_length=error.min_length, length=error.length)


def landing_url(role: str) -> str:
    """Return the URL of ``role``'s workspace (`LANDING_ENDPOINTS`; the account page for any other role)."""
    return url_for(LANDING_ENDPOINTS.get(role, "auth.account"))


class StaffUser(UserMixin):
    """The signed-in account, as Flask-Login sees it.

    The session keeps ``name:session_token``: sign-out, a new password or (de)activation replace
    the token, which ends every session of that account on its next request.
    """

    def __init__(self, user: users.User) -> None:
        self.user = user
        self.name = user.name
        self.role = user.role
        self.towns = user.towns

    def get_id(self) -> str:
        """Return the session id of this account."""
        return f"{self.user.name}:{self.user.session_token}"


def init_app(app: Flask) -> None:
    """Set up Flask-Login sessions and the template helpers (``role_labels``, ``town_names``)."""
    manager = LoginManager(app)
    manager.login_view = "auth.login"
    manager.login_message = N_("请先登录。")
    manager.localize_callback = gettext
    manager.user_loader(_load_user)
    manager.unauthorized_handler(_unauthorized)
    app.before_request(_end_expired_session)
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
    """Show the sign-in form; sign in within the login limits (``LOGIN_*`` settings, `users.sign_in`)."""
    next_url = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("auth/login.html", next_url=next_url, name="", error=None)
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    ip = request.remote_addr or "unknown"
    outcome = users.sign_in(get_store(), name, password, ip, _login_limits())
    if outcome.throttled:
        minutes = math.ceil(outcome.retry_after_s / 60)
        message = gettext("登录失败次数过多，请 %(minutes)d 分钟后再试。", minutes=minutes)
        page = render_template("auth/login.html", next_url=next_url, name=name, error=message)
        return page, 429, {"Retry-After": str(outcome.retry_after_s)}
    user = outcome.user
    if user is None:
        logger.info("Failed login of %r from %s", name, ip)
        page = render_template("auth/login.html", next_url=next_url, name=name, error=gettext("用户名或密码错误。"))
        return page, 401
    session.clear()  # a fresh session (and CSRF token) for the signed-in user
    login_user(StaffUser(user))
    session[_SIGNED_IN_AT] = session[_SEEN_AT] = time.time()
    logger.info("%s (%s) signed in from %s", user.name, user.role, ip)
    return redirect(next_url or landing_url(user.role))


@bp.post("/logout")
def logout() -> BaseResponse:
    """Sign out (a POST with the CSRF token): every session of the account ends, copied cookies too."""
    if current_user.is_authenticated:
        try:
            users.end_sessions(get_store(), current_user.name)
        except NotFoundError:  # removed meanwhile: its sessions are over anyway
            pass
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


@bp.route("/account/password", methods=["GET", "POST"])
@role_required(*users.STAFF_ROLES)
def change_password() -> str | BaseResponse | tuple[str, int] | tuple[str, int, dict[str, str]]:
    """Change one's own password: the current one, then the new one twice (`users.check_password` rules).

    A wrong current password counts as a failed login (`users.sign_in` limits: a stolen session cannot
    guess it). On success every other session of the account ends (a new session token) and this
    one carries on with the new token.
    """
    if request.method == "GET":
        return render_template("auth/password.html", error=None)
    name = current_user.name
    current = request.form.get("current_password", "")
    new, again = request.form.get("new_password", ""), request.form.get("new_password_again", "")
    ip = request.remote_addr or "unknown"
    outcome = users.sign_in(get_store(), name, current, ip, _login_limits())
    if outcome.throttled:
        minutes = math.ceil(outcome.retry_after_s / 60)
        message = gettext("当前密码错误次数过多，请 %(minutes)d 分钟后再试。", minutes=minutes)
        return render_template("auth/password.html", error=message), 429, {"Retry-After": str(outcome.retry_after_s)}
    if outcome.user is None:
        logger.info("%s typed a wrong current password to change it, from %s", name, ip)
        return render_template("auth/password.html", error=gettext("当前密码不正确：请输入您现在登录用的密码。")), 400
    error = None
    if new != again:
        error = gettext("两次输入的新密码不一致：请在两个框中输入同一个新密码。")
    elif new == current:
        error = gettext("新密码与当前密码相同：请换一个新密码。")
    else:
        try:
            users.set_password(get_store(), name, new)
        except users.WeakPasswordError as weak:
            error = weak_password_message(weak)
    if error is not None:
        return render_template("auth/password.html", error=error), 400
    login_user(StaffUser(users.get_user(get_store(), name)))  # this session gets the new token; the others end
    logger.info("%s changed their password from %s; their other sessions ended", name, ip)
    flash(gettext("密码已修改。您在其他设备或浏览器上的登录已全部退出。"))
    return redirect(url_for("auth.account"))


def _town_names() -> dict[str, str]:
    towns = get_district().towns
    return dict(zip(towns["town_code"], towns["name"], strict=True))


def _login_limits() -> users.LoginLimits:
    config = current_app.config
    return users.LoginLimits(
        max_failures=config["LOGIN_MAX_FAILURES"],
        max_failures_per_ip=config["LOGIN_MAX_FAILURES_PER_IP"],
        window_s=config["LOGIN_WINDOW_S"],
        max_lock_s=config["LOGIN_MAX_LOCK_S"],
    )


#: Session keys: when the session signed in and when it last made a request (Unix seconds).
_SIGNED_IN_AT, _SEEN_AT = "signed_in_at", "seen_at"
#: The last-request time is rewritten (a new cookie) at most this often.
_SEEN_RESOLUTION_S = 60


def _end_expired_session() -> None:
    """End a signed-in session idle for ``SESSION_IDLE_S`` or older than ``SESSION_MAX_S`` seconds."""
    if "_user_id" not in session:
        return
    now = time.time()
    signed_in_at, seen_at = session.get(_SIGNED_IN_AT), session.get(_SEEN_AT)
    config = current_app.config
    if (
        not isinstance(signed_in_at, int | float)
        or not isinstance(seen_at, int | float)
        or now - seen_at > config["SESSION_IDLE_S"]
        or now - signed_in_at > config["SESSION_MAX_S"]
    ):
        logger.info("Ended an expired session of %s", session["_user_id"].rpartition(":")[0])
        logout_user()
        session.clear()
    elif now - seen_at >= _SEEN_RESOLUTION_S:
        session[_SEEN_AT] = now


def _load_user(session_id: str) -> StaffUser | None:
    name, _, token = session_id.rpartition(":")
    try:
        user = users.get_user(get_store(), name)
    except NotFoundError:
        return None
    if not user.active or not token or not secrets.compare_digest(user.session_token, token):
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
    r"""Keep only a path of this site as the page to return to (no open redirect), else None.

    Refused: anything not starting with one ``/`` (``//host``, ``https://…``), backslashes, and
    control characters or spaces, which browsers strip (``/\t/evil.example`` would become
    ``//evil.example``) and which cannot go into a ``Location`` header.
    """
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return None
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        return None
    return url
