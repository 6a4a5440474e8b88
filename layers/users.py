"""Keep staff accounts in the store: roles, town scopes, hashed passwords, session tokens and login limits.

Passwords are hashed with ``werkzeug.security`` (scrypt, salted); the plain password is never
stored or logged. New passwords must not be common, repetitive or a sequence (`check_password`).
Each account has a random session token that signed-in sessions carry: signing out, a new password
or deactivation replaces it, which ends every session of the account at once.

Failed logins are limited per account (across addresses, with a lock that doubles on each further
failure) and per address (any name); see `sign_in`. The counters are rows updated by
compare-and-set statements, so concurrent attempts from several threads or processes cannot check
more passwords than the limits allow. A caseworker is scoped to one or more towns (9-digit NBS codes); the other staff
roles (``bureau``, ``planner``, ``admin``) are district-wide. The tables are created by the Alembic
revision ``0002`` when a ``layers.store.Store`` opens the database.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
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
#: Failures of an account or address are forgotten a day after the last one.
_FORGET_FAILURES_S = 24 * 3600
#: Common passwords (lower case) and the stems people decorate with digits; a password equal to one of
#: them, or to one followed by digits and punctuation, is refused.
COMMON_PASSWORDS = frozenset(
    """
    password passw0rd p@ssw0rd p@ssword pass123 admin administrator root qwerty qwertyuiop qwerty123
    qwe123 asdfgh asdfghjkl zxcvbnm 1qaz2wsx 1qaz2wsx3edc 1q2w3e4r 1q2w3e4r5t 1q2w3e4r5t6y q1w2e3r4
    abc abc123 abcd1234 a123456 aa123456 iloveyou letmein welcome welcome1 changeme changeit default
    monkey dragon football baseball superman batman master sunshine princess shadow trustno1 secret
    test test123 guest user login 123qwe 123abc 1234qwer zaq12wsx woaini wo5ai2ni woaini1314
    5201314 1314520 520520 147258369 123456789a 1234567890 0123456789 9876543210 11111111 88888888
    66666666 12345678 123456789 12345678910 0987654321 qq123456 caonima nihao zhang wang li liu chen
    china beijing shanghai chongqing bishan accessplan canlian
    """.split()
)
_COMMON_DECORATION = re.compile(r"[\d\W_]+$")
#: Keyboard rows and columns read as sequences (a password that is a run along one is refused).
_KEYBOARD_RUNS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm", "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p")
_MIN_DISTINCT_CHARACTERS = 4

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
    sa.Column("session_token", sa.String(32), nullable=False),
)

#: One row per account (``name:<name>``) or address (``ip:<address>``); times are Unix seconds.
login_throttle_table = sa.Table(
    "login_throttle",
    metadata,
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("window_start", sa.Float, nullable=False),
    sa.Column("locked_until", sa.Float, nullable=False),
    sa.Column("last_failure", sa.Float, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Index("ix_login_throttle_last_failure", "last_failure"),
)


class WeakPasswordError(ValueError):
    """A new password breaks a rule of `check_password`.

    Attributes
    ----------
    rule
        ``"too_short"``, ``"common"``, ``"repetitive"``, ``"sequence"`` or ``"contains_name"``.
    min_length
        The minimum length (for the ``too_short`` message).
    length
        The length of the refused password.
    """

    def __init__(self, message: str, *, rule: str, length: int) -> None:
        super().__init__(message)
        self.rule = rule
        self.min_length = MIN_PASSWORD_LENGTH
        self.length = length


class ScopeError(ValueError):
    """A role and towns that do not fit together (`add_user`, `set_role`).

    Attributes
    ----------
    rule
        ``"unknown_role"``, ``"bad_town"``, ``"needs_towns"`` (a town-scoped role without towns) or
        ``"no_towns"`` (a district-wide role given towns).
    role
        The role asked for.
    """

    def __init__(self, message: str, *, rule: str, role: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.role = role


class UserNameError(ValueError):
    """A new account's name that cannot be used (`add_user`).

    Attributes
    ----------
    rule
        ``"format"`` (not 2–64 letters, digits, ``_``, ``.``, ``@`` or ``-``) or ``"taken"``.
    name
        The name asked for.
    """

    def __init__(self, message: str, *, rule: str, name: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.name = name


@dataclass(frozen=True)
class LoginLimits:
    """How many failed logins are allowed before logins are refused (``LOGIN_*`` settings).

    Parameters
    ----------
    max_failures
        Failures of one account (from any address) before it is locked for ``window_s``; each
        further failure doubles the lock, up to ``max_lock_s``. A correct login resets the count.
    max_failures_per_ip
        Failures from one address (any name) within ``window_s``. Beyond it a correct password of an
        account that is not locked still signs in (a colleague behind the same NAT is not locked
        out), but every failure is answered 429 and locks the account it named at once.
    window_s
        The counting window of an address and the first lock of an account, in seconds.
    max_lock_s
        The longest lock of an account, in seconds.
    """

    max_failures: int = 5
    max_failures_per_ip: int = 30
    window_s: float = 15 * 60
    max_lock_s: float = 4 * 3600


@dataclass(frozen=True)
class LoginOutcome:
    """What became of one login attempt.

    Attributes
    ----------
    user
        The signed-in account, or None.
    throttled
        True when the attempt was refused or its failure hit a limit (answer 429, not 401).
    retry_after_s
        Seconds until the account or address may try again (0 unless ``throttled``).
    """

    user: User | None
    throttled: bool = False
    retry_after_s: int = 0


@dataclass(frozen=True)
class User:
    """A staff account as stored (without its password hash)."""

    name: str
    role: str
    towns: tuple[str, ...]
    active: bool
    created_at: datetime
    #: Random; replaced on sign-out, a new password and (de)activation, which ends every open session.
    session_token: str


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
        Passes `check_password`; stored only as a salted scrypt hash.
    towns
        Town codes (9 digits) a caseworker is scoped to; at least one for caseworkers, none otherwise.

    Raises
    ------
    ValueError
        If a value breaks a rule above or ``name`` is taken (`UserNameError` for the name,
        `WeakPasswordError` for the password, `ScopeError` for the role and towns).
    """
    _check_name(name)
    towns = _check_scope(role, towns)
    check_password(password, name=name)
    now = datetime.now(UTC)
    record = {
        "name": name, "password_hash": generate_password_hash(password), "role": role, "towns": list(towns),
        "active": True, "created_at": now, "updated_at": now, "session_token": _new_session_token(),
    }  # fmt: skip
    with _engine(store).begin() as conn:
        if conn.execute(sa.select(users_table.c.name).where(users_table.c.name == name)).first() is not None:
            msg = f"User name {name!r} is taken; choose another `name`."
            raise UserNameError(msg, rule="taken", name=name)
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
    """Replace the password of ``name``: its open sessions end and its login lock is lifted.

    Raises
    ------
    NotFoundError
        If there is no such account.
    WeakPasswordError
        If ``password`` breaks a rule of `check_password`.
    """
    check_password(password, name=name)
    _update(store, name, password_hash=generate_password_hash(password), session_token=_new_session_token())
    with _engine(store).begin() as conn:
        conn.execute(login_throttle_table.delete().where(login_throttle_table.c.key == _account_key(name)))
    logger.info("Changed the password of user %r", name)


def set_role(store: Store | sa.Engine, name: str, *, role: str, towns: Sequence[str] = ()) -> User:
    """Give ``name`` a new role and towns (towns for town-scoped roles only); return the account.

    Open sessions stay open: every request reads the account again, so the new role and towns
    apply from the account's next request.

    Raises
    ------
    NotFoundError
        If there is no such account.
    ScopeError
        If ``role`` is unknown or ``towns`` do not fit it (see `add_user`).
    """
    towns = _check_scope(role, towns)
    _update(store, name, role=role, towns=list(towns))
    logger.info("Set the role of user %r to %r (%d towns)", name, role, len(towns))
    return get_user(store, name)


def set_active(store: Store | sa.Engine, name: str, active: bool) -> None:
    """Activate or deactivate ``name``; an inactive account cannot sign in, and its open sessions end.

    Raises
    ------
    NotFoundError
        If there is no such account.
    """
    _update(store, name, active=active, session_token=_new_session_token())
    logger.info("%s user %r", "Activated" if active else "Deactivated", name)


def end_sessions(store: Store | sa.Engine, name: str) -> None:
    """End every open session of ``name`` (a new session token), e.g. on sign-out.

    Raises
    ------
    NotFoundError
        If there is no such account.
    """
    _update(store, name, session_token=_new_session_token())
    logger.info("Ended the sessions of user %r", name)


def check_password(password: str, *, name: str | None = None) -> None:
    """Refuse a new password that is easy to guess.

    A password needs at least ``MIN_PASSWORD_LENGTH`` characters and must not be: a common password
    (``COMMON_PASSWORDS``, also followed by digits or punctuation, e.g. ``woaini1314``, case ignored);
    repetitive (fewer than 4 different characters, or one piece repeated, e.g. ``abcabcabca``); a
    sequence (``1234567890``, ``abcdefghij``, ``9876543210``, a keyboard row such as ``qwertyuiop``);
    or contain the account name.

    Raises
    ------
    WeakPasswordError
        Naming the rule broken (``rule``) and how to choose a better password.
    """
    password = password or ""
    lowered = password.lower()
    length = len(password)
    if length < MIN_PASSWORD_LENGTH:
        msg = f"`password` must have at least {MIN_PASSWORD_LENGTH} characters; got {length}."
        raise WeakPasswordError(msg, rule="too_short", length=length)
    stem = _COMMON_DECORATION.sub("", lowered)
    if lowered in COMMON_PASSWORDS or stem in COMMON_PASSWORDS:
        msg = "`password` is a common password that is easy to guess; choose an uncommon one (e.g. unrelated words)."
        raise WeakPasswordError(msg, rule="common", length=length)
    if len(set(lowered)) < _MIN_DISTINCT_CHARACTERS or _is_periodic(lowered):
        msg = "`password` repeats a character or a piece (like 'aaaa' or 'abab'); choose one that does not."
        raise WeakPasswordError(msg, rule="repetitive", length=length)
    if _is_sequence(lowered):
        msg = "`password` is a sequence (like '123456', 'abcdef' or 'qwerty'); choose one that is not."
        raise WeakPasswordError(msg, rule="sequence", length=length)
    if name and len(name) >= 3 and name.lower() in lowered:
        msg = "`password` contains the account name; choose one that does not."
        raise WeakPasswordError(msg, rule="contains_name", length=length)


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


def sign_in(
    store: Store | sa.Engine,
    name: str,
    password: str,
    ip: str,
    limits: LoginLimits = LoginLimits(),  # noqa: B008 (frozen, never mutated)
    *,
    now: float | None = None,
) -> LoginOutcome:
    """Check one login within the limits: count it, check the password, settle the counters.

    The attempt is counted as a failure of the account and of the address *before* the password is
    checked (one compare-and-set statement each), so N concurrent guesses check at most
    ``limits.max_failures`` passwords of one account; a correct login then resets the account and
    takes its count back from the address. While the account is locked the password is not checked.
    Unknown names are counted like known ones, so the answers do not tell which names exist.

    Parameters
    ----------
    store
        The store (or its SQLAlchemy engine).
    name, password
        As typed.
    ip
        The client's address.
    limits
        The limits (the app's ``LOGIN_*`` settings).
    now
        Unix time of the attempt (default: the clock).

    Returns
    -------
    LoginOutcome
        The account on success; else whether to answer 429 and after how many seconds to retry.
    """
    now = time.time() if now is None else now
    engine = _engine(store)
    ip_failures = _change_counter(engine, _ip_key(ip), lambda row: _count_ip_failure(row, now, limits))
    over_ip = ip_failures > limits.max_failures_per_ip
    locked_for = _change_counter(engine, _account_key(name), lambda row: _claim_account(row, now, limits))
    if locked_for > 0:
        logger.warning("Login of %r from %s refused: account locked for %.0f s", name, ip, locked_for)
        return LoginOutcome(None, throttled=True, retry_after_s=math.ceil(locked_for))
    user = authenticate(engine, name, password)
    if user is not None:
        with engine.begin() as conn:
            conn.execute(login_throttle_table.delete().where(login_throttle_table.c.key == _account_key(name)))
        _change_counter(engine, _ip_key(ip), lambda row: _take_back_ip_failure(row, now, limits))
        return LoginOutcome(user)
    if over_ip:
        _change_counter(engine, _account_key(name), lambda row: _lock_account(row, now, limits))
        logger.warning("Failed login of %r from %s beyond the address limit: account locked", name, ip)
        return LoginOutcome(None, throttled=True, retry_after_s=math.ceil(limits.window_s))
    return LoginOutcome(None)


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
    return User(
        name=row["name"], role=row["role"], towns=tuple(row["towns"]), active=bool(row["active"]),
        created_at=row["created_at"], session_token=row["session_token"],
    )  # fmt: skip


def _new_session_token() -> str:
    return secrets.token_hex(16)


# --- login limits: one row per account or address, changed by compare-and-set --------------------

#: A counter row as a change function sees it (None: no row yet) and the value it returns.
_Change = Callable[[dict[str, Any] | None], tuple[dict[str, Any] | None, float]]


def _account_key(name: str) -> str:
    return f"name:{name[:64]}"


def _ip_key(ip: str) -> str:
    return f"ip:{ip[:64]}"


def _change_counter(engine: sa.Engine, key: str, change: _Change) -> float:
    """Apply ``change`` to the row ``key`` atomically and return what ``change`` returned.

    ``change(row)`` returns the new values (None: leave the row) and a result. The row is read,
    then updated only if its ``version`` is still the one read (one statement); if another thread
    or process changed (or inserted) it in between, it is read again. Inserting a row also drops
    the rows a day past their last failure.
    """
    table = login_throttle_table
    while True:
        with engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.key == key)).mappings().one_or_none()
        values, result = change(None if row is None else dict(row))
        if values is None:
            return result
        try:
            with engine.begin() as conn:
                if row is None:
                    conn.execute(table.insert().values(key=key, version=1, **values))
                    conn.execute(
                        table.delete().where(table.c.last_failure < values["last_failure"] - _FORGET_FAILURES_S)
                    )
                    return result
                update = table.update().where(table.c.key == key, table.c.version == row["version"])
                if conn.execute(update.values(**values, version=row["version"] + 1)).rowcount == 1:
                    return result
        except sa.exc.IntegrityError:
            continue  # another connection inserted the row first: read it


def _count_ip_failure(row: dict[str, Any] | None, now: float, limits: LoginLimits) -> tuple[dict[str, Any], float]:
    """Count one failure of an address in its window (a new window once the last one is over)."""
    if row is None or now - row["window_start"] >= limits.window_s:
        failures, start = 1, now
    else:
        failures, start = row["failures"] + 1, row["window_start"]
    return {"failures": failures, "window_start": start, "locked_until": 0.0, "last_failure": now}, failures


def _take_back_ip_failure(
    row: dict[str, Any] | None, now: float, limits: LoginLimits
) -> tuple[dict[str, Any] | None, float]:
    """Take back the failure counted for an attempt that succeeded (if its window is still open)."""
    if row is None or row["failures"] <= 0 or now - row["window_start"] >= limits.window_s:
        return None, 0.0
    return {"failures": row["failures"] - 1}, 0.0


def _claim_account(row: dict[str, Any] | None, now: float, limits: LoginLimits) -> tuple[dict[str, Any] | None, float]:
    """Count one attempt of an account as failed (locking it at the limit), or return its remaining lock."""
    if row is not None and row["locked_until"] > now:
        return None, row["locked_until"] - now
    failures = 1 if row is None or now - row["last_failure"] >= _FORGET_FAILURES_S else row["failures"] + 1
    locked_until = now + _lock_s(failures, limits) if failures >= limits.max_failures else 0.0
    return {"failures": failures, "window_start": now, "locked_until": locked_until, "last_failure": now}, 0.0


def _lock_account(row: dict[str, Any] | None, now: float, limits: LoginLimits) -> tuple[dict[str, Any], float]:
    """Lock an account at once (a failure from an address beyond its limit)."""
    failures = max(limits.max_failures, row["failures"] if row else 0)
    locked_until = max(row["locked_until"] if row else 0.0, now + _lock_s(failures, limits))
    return {"failures": failures, "window_start": now, "locked_until": locked_until, "last_failure": now}, 0.0


def _lock_s(failures: int, limits: LoginLimits) -> float:
    """Return the lock after ``failures`` failures: the window, doubled per failure beyond the limit, capped."""
    doublings = min(failures - limits.max_failures, 32)
    return min(limits.window_s * 2.0**doublings, limits.max_lock_s)


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
        raise UserNameError(msg, rule="format", name=name)


def _check_scope(role: str, towns: Sequence[str]) -> tuple[str, ...]:
    if role not in STAFF_ROLES:
        msg = f"`role` must be one of {list(STAFF_ROLES)!r}; got {role!r}."
        raise ScopeError(msg, rule="unknown_role", role=role)
    towns = tuple(dict.fromkeys(str(t) for t in towns))
    bad = [t for t in towns if not _TOWN_CODE.match(t)]
    if bad:
        msg = f"`towns` must be 9-digit town codes; got {bad!r}."
        raise ScopeError(msg, rule="bad_town", role=role)
    if role in TOWN_SCOPED_ROLES and not towns:
        msg = f"A {role} is scoped to towns: give at least one town (e.g. --town 璧城街道)."
        raise ScopeError(msg, rule="needs_towns", role=role)
    if role not in TOWN_SCOPED_ROLES and towns:
        msg = f"Role {role!r} is district-wide and takes no `towns`; got {list(towns)!r}."
        raise ScopeError(msg, rule="no_towns", role=role)
    return towns


def _is_periodic(text: str) -> bool:
    """Return True if ``text`` is one piece repeated (at least twice, the last time maybe cut short)."""
    return any(
        all(text[i] == text[i - period] for i in range(period, len(text))) for period in range(1, len(text) // 2 + 1)
    )


def _is_sequence(text: str) -> bool:
    """Return True if ``text`` runs up or down by one code point, or along a keyboard run (either way)."""
    steps = {ord(b) - ord(a) for a, b in zip(text, text[1:], strict=False)}
    if steps in ({1}, {-1}):
        return True
    return any(text in run or text in run[::-1] for run in _KEYBOARD_RUNS)
