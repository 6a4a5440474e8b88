"""Manage staff accounts: the admin page (list, add, deactivate, reset password) and `accessplan users`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import click
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.cli import AppGroup
from flask_babel import gettext
from flask_login import current_user

from layers import schema, users
from layers.errors import NotFoundError
from layers.privacy import ADMIN, STAFF_ROLES
from webmap.auth import ROLE_LABELS, role_required
from webmap.maps import N_
from webmap.store import get_district, get_store

if TYPE_CHECKING:
    from werkzeug.wrappers import Response as BaseResponse

logger = logging.getLogger(__name__)

bp = Blueprint("admin", __name__, url_prefix="/admin")
users_cli = AppGroup("users", help="Manage staff accounts (roles: caseworker, bureau, planner, admin).")

#: The page's message for each rule of `users.check_password` (zh-CN msgids, translated where shown).
WEAK_PASSWORD_MESSAGES = {
    "too_short": N_("密码至少需要 %(min_length)d 个字符（现在是 %(length)d 个）：请输入更长的密码。"),
    "common": N_("这是常见密码，很容易被猜中：请换一个不常见的密码（例如几个不相关的词）。"),
    "repetitive": N_("密码由重复的字符或片段组成（如 aaaa、abab）：请换一个不重复的密码。"),
    "sequence": N_("密码是连续的字符（如 123456、abcdef、qwerty）：请换一个不连续的密码。"),
    "contains_name": N_("密码不能包含用户名：请换一个密码。"),
}


def resolve_towns(values: Iterable[str]) -> list[str]:
    """Return the town codes of ``values`` (9-digit codes or Chinese names of the district's towns).

    Raises
    ------
    ValueError
        If a value names no town of the district; the message lists the valid names.
    """
    towns = get_district().towns
    names = dict(zip(towns[schema.NAME], towns[schema.TOWN_CODE], strict=True))
    codes = set(towns[schema.TOWN_CODE])
    resolved, unknown = [], []
    for value in values:
        value = value.strip()
        code = value if value in codes else names.get(value)
        (resolved if code else unknown).append(code or value)
    if unknown:
        msg = f"Unknown town(s) {unknown!r}; use a town code or one of: {'、'.join(names)}."
        raise ValueError(msg)
    return resolved


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


# --- command line ----------------------------------------------------------------------------------


@users_cli.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(STAFF_ROLES), required=True, help="The account's role.")
@click.option("--town", "towns", multiple=True, help="Town name or code (caseworkers; repeat for several).")
@click.option("--password", help="The password (prompted when left out; at least 10 characters, not a common one).")
def add_user_command(name: str, role: str, towns: tuple[str, ...], password: str | None) -> None:
    """Add a staff account, e.g. `accessplan users add wang --role caseworker --town 璧城街道`."""
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        users.add_user(get_store(), name, role=role, password=password, towns=resolve_towns(towns))
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Added {name} ({role}{', ' + ', '.join(towns) if towns else ''}).")


@users_cli.command("list")
def list_users_command() -> None:
    """List the accounts: name, role, towns, active."""
    town_names = get_district().town_names()
    for user in users.list_users(get_store()):
        towns = ",".join(town_names.get(t, t) for t in user.towns) or "-"
        click.echo(f"{user.name}\t{user.role}\t{towns}\t{'active' if user.active else 'inactive'}")


@users_cli.command("passwd")
@click.argument("name")
@click.option("--password", help="The new password (prompted when left out).")
def passwd_command(name: str, password: str | None) -> None:
    """Set a new password for NAME (their sessions end)."""
    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    _cli_call(lambda: users.set_password(get_store(), name, password))
    click.echo(f"Changed the password of {name}.")


@users_cli.command("remove")
@click.argument("name")
def remove_command(name: str) -> None:
    """Delete the account NAME (history keeps the name as the actor)."""
    _cli_call(lambda: users.remove_user(get_store(), name))
    click.echo(f"Removed {name}.")


@users_cli.command("deactivate")
@click.argument("name")
def deactivate_command(name: str) -> None:
    """Stop NAME from signing in (their sessions end)."""
    _cli_call(lambda: users.set_active(get_store(), name, False))
    click.echo(f"Deactivated {name}.")


@users_cli.command("activate")
@click.argument("name")
def activate_command(name: str) -> None:
    """Let NAME sign in again."""
    _cli_call(lambda: users.set_active(get_store(), name, True))
    click.echo(f"Activated {name}.")


@users_cli.command("demo")
def demo_command() -> None:
    """Create one DEMO account per role if there is no account yet, and print their passwords once."""
    first_town = get_district().towns[schema.TOWN_CODE].iloc[0]
    passwords = users.ensure_demo_users(get_store(), caseworker_towns=(first_town,))
    if not passwords:
        click.echo("Accounts exist already; no demo accounts created.")
        return
    click.echo("Demo accounts (for the demo data only; replace them before loading real data):")
    for name, password in passwords.items():
        click.echo(f"  {name:<16} {password}")


def _cli_call(action: Callable[[], None]) -> None:
    try:
        action()
    except (NotFoundError, ValueError) as error:
        raise click.ClickException(str(error)) from None
