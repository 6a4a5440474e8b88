"""`accessplan users`: staff accounts (the admin page in ``webmap.views.admin`` does the same on the web)."""

from __future__ import annotations

from collections.abc import Callable

import click
from flask.cli import AppGroup

from layers import schema
from webmap.cli.lang import _
from webmap.cli.options import LateChoice, staff_roles
from webmap.store import get_district, get_store, resolve_towns

# layers.users (the store, SQLAlchemy) is imported inside the commands: `accessplan --help` stays quick.

users_group = AppGroup("users", help="Manage staff accounts (roles: caseworker, bureau, planner, admin).")


@users_group.command("add")
@click.argument("name")
@click.option("--role", type=LateChoice(staff_roles), required=True, help="The account's role.")
@click.option("--town", "towns", multiple=True, help="Town name or code (caseworkers; repeat for several).")
@click.option("--password", help="The password (prompted when left out; at least 10 characters, not a common one).")
def add_user_command(name: str, role: str, towns: tuple[str, ...], password: str | None) -> None:
    """Add a staff account, e.g. `accessplan users add wang --role caseworker --town 璧城街道`."""
    from layers import users

    if password is None:
        password = click.prompt(_("密码"), hide_input=True, confirmation_prompt=True)
    try:
        users.add_user(get_store(), name, role=role, password=password, towns=resolve_towns(towns))
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    click.echo(_("已添加 %(name)s（%(details)s）。", name=name, details=", ".join((role, *towns))))


@users_group.command("list")
def list_users_command() -> None:
    """List the accounts: name, role, towns, active."""
    from layers import users

    town_names = get_district().town_names()
    for user in users.list_users(get_store()):
        towns = ",".join(town_names.get(t, t) for t in user.towns) or "-"
        state = _("在用") if user.active else _("未启用")
        click.echo(f"{user.name}\t{user.role}\t{towns}\t{state}")


@users_group.command("passwd")
@click.argument("name")
@click.option("--password", help="The new password (prompted when left out).")
def passwd_command(name: str, password: str | None) -> None:
    """Set a new password for NAME (their sessions end)."""
    from layers import users

    if password is None:
        password = click.prompt(_("新密码"), hide_input=True, confirmation_prompt=True)
    _cli_call(lambda: users.set_password(get_store(), name, password))
    click.echo(_("已修改 %(name)s 的密码。", name=name))


@users_group.command("remove")
@click.argument("name")
def remove_command(name: str) -> None:
    """Delete the account NAME (history keeps the name as the actor)."""
    from layers import users

    _cli_call(lambda: users.remove_user(get_store(), name))
    click.echo(_("已删除 %(name)s。", name=name))


@users_group.command("deactivate")
@click.argument("name")
def deactivate_command(name: str) -> None:
    """Stop NAME from signing in (their sessions end)."""
    from layers import users

    _cli_call(lambda: users.set_active(get_store(), name, False))
    click.echo(_("已停用 %(name)s。", name=name))


@users_group.command("activate")
@click.argument("name")
def activate_command(name: str) -> None:
    """Let NAME sign in again."""
    from layers import users

    _cli_call(lambda: users.set_active(get_store(), name, True))
    click.echo(_("已启用 %(name)s。", name=name))


@users_group.command("demo")
def demo_command() -> None:
    """Create one DEMO account per role if there is no account yet, and print their passwords once."""
    from layers import users

    first_town = get_district().towns[schema.TOWN_CODE].iloc[0]
    passwords = users.ensure_demo_users(get_store(), caseworker_towns=(first_town,))
    if not passwords:
        click.echo(_("已有账户，未创建演示账户。"))
        return
    click.echo(_("演示账户（只用于演示数据；载入真实数据前请替换）："))
    for name, password in passwords.items():
        click.echo(f"  {name:<16} {password}")


def _cli_call(action: Callable[[], None]) -> None:
    from layers.errors import NotFoundError

    try:
        action()
    except (NotFoundError, ValueError) as error:
        raise click.ClickException(str(error)) from None
