"""Keep staff accounts in the store: roles, town scopes, hashed passwords and failed-login counts.

Passwords are hashed with ``werkzeug.security`` (scrypt, salted); the plain password is never
stored or logged. A caseworker is scoped to one or more towns (9-digit NBS codes); the other staff
roles (``bureau``, ``planner``, ``admin``) are district-wide. The tables are created by the Alembic
revision ``0002`` when a ``layers.store.Store`` opens the database.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from werkzeug.security import check_password_hash, generate_password_hash

from layers.errors import NotFoundError
from layers.privacy import CASEWORKER, STAFF_ROLES
from layers.store import metadata

if TYPE_CHECKING:
    from layers.store import Store

logger = logging.getLogger(__name__)

#: Roles scoped to towns; every other role sees the whole district.
TOWN_SCOPED_ROLES = frozenset({CASEWORKER})
MIN_PASSWORD_LENGTH = 10
#: The town of the demo caseworker: 璧城街道, Bishan (the embedded default district).
DEMO_CASEWORKER_TOWNS = ("500120001",)
#: One demo account per role; their passwords are random and printed once (demo data only).
DEMO_USERS = {f"demo-{role}": role for role in STAFF_ROLES}

_NAME = re.compile(r"^[\w.@-]{2,64}$")
_TOWN_CODE = re.compile(r"^\d{9}$")
_KEEP_ATTEMPTS = timedelta(days=1)

users_table = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("towns", sa.JSON, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

login_attempts_table = sa.Table(
    "login_attempts",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("ip", sa.String(64), nullable=False),
    sa.Column("succeeded", sa.Boolean, nullable=False),
    sa.Index("ix_login_attempts_ip_at", "ip", "at"),
)


@dataclass(frozen=True)
class User:
    """A staff account as stored (without its password hash)."""

    name: str
    role: str
    towns: tuple[str, ...]
    active: bool
    created_at: datetime
    #: Changes whenever the password changes, so old sessions can be refused (not the hash itself).
    password_stamp: str


def add_user(store: Store | sa.Engine, name: str, *, role: str, password: str, towns: Sequence[str] = ()) -> User:
    """Create an active account.

    Parameters
    ----------
    store
        The store (or its SQLAlchemy engine).
    name
        Login name: 2–64 letters, digits, ``_``, ``.``, ``@`` or ``-``.
    role
        One of ``STAFF_ROLES``.
    password
        At least ``MIN_PASSWORD_LENGTH`` characters; stored only as a salted scrypt hash.
    towns
        Town codes (9 digits) a caseworker is scoped to; at least one for caseworkers, none otherwise.

    Raises
    ------
    ValueError
        If a value breaks a rule above or ``name`` is taken.
    """
    _check_name(name)
    towns = _check_scope(role, towns)
    _check_password(password)
    now = datetime.now(UTC)
    record = {
        "name": name, "password_hash": generate_password_hash(password), "role": role, "towns": list(towns),
        "active": True, "created_at": now, "updated_at": now,
    }  # fmt: skip
    with _engine(store).begin() as conn:
        if conn.execute(sa.select(users_table.c.name).where(users_table.c.name == name)).first() is not None:
            msg = f"User name {name!r} is taken; choose another `name`."
            raise ValueError(msg)
        conn.execute(users_table.insert(), [record])
    logger.info("Added user %r with role %r (%d towns)", name, role, len(towns))
    return _user(record)


def get_user(store: Store | sa.Engine, name: str) -> User:
    """Return the account ``name`` (active or not).

    Raises
    ------
    NotFoundError
        If there is no such account.
    """
    with _engine(store).connect() as conn:
        row = conn.execute(sa.select(users_table).where(users_table.c.name == name)).mappings().one_or_none()
    if row is None:
        msg = f"No user named {name!r}; `accessplan users list` shows the accounts."
        raise NotFoundError(msg)
    return _user(row)


def list_users(store: Store | sa.Engine) -> list[User]:
    """Return every account, by name."""
    with _engine(store).connect() as conn:
        rows = conn.execute(sa.select(users_table).order_by(users_table.c.name)).mappings().all()
    return [_user(r) for r in rows]


def count_users(store: Store | sa.Engine) -> int:
    """Return the number of accounts (active or not)."""
    with _engine(store).connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(users_table)).scalar_one())


def authenticate(store: Store | sa.Engine, name: str, password: str) -> User | None:
    """Return the active account ``name`` if ``password`` is its password, else None.

    A missing or inactive account takes as long to refuse as a wrong password.
    """
    with _engine(store).connect() as conn:
        row = conn.execute(sa.select(users_table).where(users_table.c.name == name)).mappings().one_or_none()
    if row is None:
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(row["password_hash"], password) or not row["active"]:
        return None
    return _user(row)


def set_password(store: Store | sa.Engine, name: str, password: str) -> None:
    """Replace the password of ``name`` (its old sessions stop working).

    Raises
    ------
    NotFoundError
        If there is no such account.
    ValueError
        If ``password`` is too short.
    """
    _check_password(password)
    _update(store, name, password_hash=generate_password_hash(password))
    logger.info("Changed the password of user %r", name)


def set_active(store: Store | sa.Engine, name: str, active: bool) -> None:
    """Activate or deactivate ``name``; an inactive account cannot sign in.

    Raises
    ------
    NotFoundError
        If there is no such account.
    """
    _update(store, name, active=active)
    logger.info("%s user %r", "Activated" if active else "Deactivated", name)


def remove_user(store: Store | sa.Engine, name: str) -> None:
    """Delete the account ``name`` (history rows keep its name as the actor).

    Raises
    ------
    NotFoundError
        If there is no such account.
    """
    with _engine(store).begin() as conn:
        if conn.execute(users_table.delete().where(users_table.c.name == name)).rowcount != 1:
            msg = f"No user named {name!r}; `accessplan users list` shows the accounts."
            raise NotFoundError(msg)
    logger.info("Removed user %r", name)


def record_login_attempt(store: Store | sa.Engine, name: str, ip: str, *, succeeded: bool) -> None:
    """Append one login attempt (rows older than a day are dropped: this is a counter, not an audit log)."""
    now = datetime.now(UTC)
    with _engine(store).begin() as conn:
        conn.execute(
            login_attempts_table.insert(), [{"at": now, "name": name[:64], "ip": ip[:64], "succeeded": succeeded}]
        )
        conn.execute(login_attempts_table.delete().where(login_attempts_table.c.at < now - _KEEP_ATTEMPTS))


def failed_logins(store: Store | sa.Engine, *, ip: str, window_s: float, name: str | None = None) -> int:
    """Return the failed logins from ``ip`` (for ``name`` only, if given) in the last ``window_s`` seconds."""
    since = datetime.now(UTC) - timedelta(seconds=window_s)
    query = (
        sa.select(sa.func.count())
        .select_from(login_attempts_table)
        .where(
            login_attempts_table.c.ip == ip[:64],
            login_attempts_table.c.at >= since,
            login_attempts_table.c.succeeded.is_(False),
        )
    )
    if name is not None:
        query = query.where(login_attempts_table.c.name == name[:64])
    with _engine(store).connect() as conn:
        return int(conn.execute(query).scalar_one())


def generate_password() -> str:
    """Return a random password (16 URL-safe characters)."""
    return secrets.token_urlsafe(12)


def ensure_demo_users(
    store: Store | sa.Engine, *, caseworker_towns: Sequence[str] = DEMO_CASEWORKER_TOWNS
) -> dict[str, str]:
    """Create one demo account per role with a random password, if the store has no account yet.

    The accounts are for the demo data only: print the passwords once and replace the accounts
    before real data is loaded.

    Parameters
    ----------
    store
        The store (or its SQLAlchemy engine).
    caseworker_towns
        Town codes of the demo caseworker (default: 璧城街道, Bishan).

    Returns
    -------
    dict[str, str]
        Password by user name of the accounts created; empty when accounts already existed.
    """
    if count_users(store):
        return {}
    passwords = {}
    for name, role in DEMO_USERS.items():
        passwords[name] = generate_password()
        towns = caseworker_towns if role in TOWN_SCOPED_ROLES else ()
        add_user(store, name, role=role, password=passwords[name], towns=towns)
    return passwords


def _engine(store: Store | sa.Engine) -> sa.Engine:
    return store if isinstance(store, sa.Engine) else store.engine


@functools.cache
def _dummy_hash() -> str:
    """Return a hash checked when the name is unknown, so a missing user costs as long as a wrong password."""
    return generate_password_hash(secrets.token_urlsafe(16))


def _user(row: Any) -> User:
    stamp = hashlib.sha256(row["password_hash"].encode()).hexdigest()[:16]
    return User(
        name=row["name"], role=row["role"], towns=tuple(row["towns"]), active=bool(row["active"]),
        created_at=row["created_at"], password_stamp=stamp,
    )  # fmt: skip


def _update(store: Store | sa.Engine, name: str, **values: object) -> None:
    with _engine(store).begin() as conn:
        result = conn.execute(
            users_table.update().where(users_table.c.name == name).values(**values, updated_at=datetime.now(UTC))
        )
        if result.rowcount != 1:
            msg = f"No user named {name!r}; `accessplan users list` shows the accounts."
            raise NotFoundError(msg)


def _check_name(name: str) -> None:
    if not _NAME.match(name or ""):
        msg = f"`name` must be 2–64 letters, digits, '_', '.', '@' or '-'; got {name!r}."
        raise ValueError(msg)


def _check_scope(role: str, towns: Sequence[str]) -> tuple[str, ...]:
    if role not in STAFF_ROLES:
        msg = f"`role` must be one of {list(STAFF_ROLES)!r}; got {role!r}."
        raise ValueError(msg)
    towns = tuple(dict.fromkeys(str(t) for t in towns))
    bad = [t for t in towns if not _TOWN_CODE.match(t)]
    if bad:
        msg = f"`towns` must be 9-digit town codes; got {bad!r}."
        raise ValueError(msg)
    if role in TOWN_SCOPED_ROLES and not towns:
        msg = f"A {role} is scoped to towns: give at least one town (e.g. --town 璧城街道)."
        raise ValueError(msg)
    if role not in TOWN_SCOPED_ROLES and towns:
        msg = f"Role {role!r} is district-wide and takes no `towns`; got {list(towns)!r}."
        raise ValueError(msg)
    return towns


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        msg = f"`password` must have at least {MIN_PASSWORD_LENGTH} characters; got {len(password or '')}."
        raise ValueError(msg)
