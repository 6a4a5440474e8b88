from __future__ import annotations

import functools
import re
import threading
from collections import Counter

import pytest
import sqlalchemy as sa
from werkzeug.security import generate_password_hash

import layers.users
from layers.errors import NotFoundError
from layers.store import Store
from layers.users import (
    DEMO_USERS,
    LoginLimits,
    ScopeError,
    WeakPasswordError,
    add_user,
    authenticate,
    check_password,
    count_users,
    end_sessions,
    ensure_demo_users,
    get_user,
    list_users,
    remove_user,
    set_active,
    set_password,
    set_role,
    sign_in,
    users_table,
)

PASSWORD = "correct horse battery"


@pytest.fixture
def store(database_url, monkeypatch):
    # scrypt takes ~0.3 s per hash here; one test below checks the real method.
    cheap = functools.partial(generate_password_hash, method="pbkdf2:sha256:1000")
    monkeypatch.setattr(layers.users, "generate_password_hash", cheap)
    s = Store(database_url)
    yield s
    s.close()


def test_a_user_signs_in_with_the_right_password_only(store):
    add_user(store, "wang", role="caseworker", password=PASSWORD, towns=["500120001", "500120002"])
    user = authenticate(store, "wang", PASSWORD)
    assert (user.name, user.role, user.towns, user.active) == ("wang", "caseworker", ("500120001", "500120002"), True)
    assert authenticate(store, "wang", PASSWORD + "x") is None
    assert authenticate(store, "nobody", PASSWORD) is None


def test_the_password_is_stored_only_as_a_salted_scrypt_hash(store, monkeypatch):
    monkeypatch.undo()  # the real hash method
    add_user(store, "a1", role="planner", password=PASSWORD)
    add_user(store, "a2", role="planner", password=PASSWORD)
    with store.engine.connect() as conn:
        hashes = [r[0] for r in conn.execute(sa.select(users_table.c.password_hash).order_by(users_table.c.name))]
    assert all(h.startswith("scrypt:") and PASSWORD not in h for h in hashes)
    assert hashes[0] != hashes[1]  # salted


def test_an_inactive_user_cannot_sign_in_until_activated(store):
    add_user(store, "li", role="bureau", password=PASSWORD)
    set_active(store, "li", False)
    assert authenticate(store, "li", PASSWORD) is None
    assert get_user(store, "li").active is False
    set_active(store, "li", True)
    assert authenticate(store, "li", PASSWORD).name == "li"


def test_a_new_password_replaces_the_old_one_and_changes_the_session_token(store):
    add_user(store, "zhao", role="admin", password=PASSWORD)
    token = get_user(store, "zhao").session_token
    set_password(store, "zhao", "another long password")
    assert authenticate(store, "zhao", PASSWORD) is None
    assert authenticate(store, "zhao", "another long password").name == "zhao"
    assert get_user(store, "zhao").session_token != token


def test_sign_out_and_deactivation_replace_the_session_token_of_that_account_only(store):
    add_user(store, "zhao", role="admin", password=PASSWORD)
    add_user(store, "qian", role="planner", password=PASSWORD)
    tokens = [get_user(store, "zhao").session_token]
    other = get_user(store, "qian").session_token
    for change in (lambda: end_sessions(store, "zhao"), lambda: set_active(store, "zhao", False),
                   lambda: set_active(store, "zhao", True)):  # fmt: skip
        change()
        tokens.append(get_user(store, "zhao").session_token)
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) for t in tokens)
    assert len(set(tokens)) == 4  # every change made a new token
    assert get_user(store, "qian").session_token == other
    with pytest.raises(NotFoundError, match="No user named 'nobody'"):
        end_sessions(store, "nobody")


def test_accounts_made_before_session_tokens_get_one_each_when_migrated(database_url, owner_url):
    from alembic import command
    from alembic.config import Config
    from alembic.migration import MigrationContext

    from layers.store import MIGRATIONS_DIR

    engine = sa.create_engine(owner_url)  # the migrations run as the tables' owner
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        migrated = MigrationContext.configure(conn).get_current_revision()  # PostgreSQL comes migrated by its owner
        (command.downgrade if migrated else command.upgrade)(config, "0003")
        for name in ("old-a", "old-b"):
            conn.execute(
                sa.text(
                    "INSERT INTO users (name, password_hash, role, towns, active, created_at, updated_at) "
                    "VALUES (:name, 'x', 'planner', '[]', :active, :at, :at)"
                ),  # fmt: skip
                {"name": name, "active": True, "at": "2026-11-30 08:00:00+00:00"},
            )
    engine.dispose()
    s = Store(database_url, migration_url=None if owner_url == database_url else owner_url)
    try:
        tokens = [u.session_token for u in list_users(s)]
        assert [u.name for u in list_users(s)] == ["old-a", "old-b"]
        assert all(re.fullmatch(r"[0-9a-f]{32}", t) for t in tokens) and tokens[0] != tokens[1]
    finally:
        s.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "x", "role": "planner", "password": PASSWORD}, "`name` must be"),
        ({"name": "a b", "role": "planner", "password": PASSWORD}, "`name` must be"),
        ({"name": "ok", "role": "public", "password": PASSWORD}, "`role` must be one of"),
        ({"name": "ok", "role": "caseworker", "password": PASSWORD}, "at least one town"),
        ({"name": "ok", "role": "caseworker", "password": PASSWORD, "towns": ["璧城街道"]}, "9-digit town codes"),
        ({"name": "ok", "role": "planner", "password": PASSWORD, "towns": ["500120001"]}, "district-wide"),
        ({"name": "ok", "role": "planner", "password": "short"}, "at least 10 characters; got 5"),
        ({"name": "ok", "role": "planner", "password": "aaaaaaaaaa"}, "repeats a character"),
    ],
)
def test_bad_accounts_are_refused_with_the_rule(store, kwargs, match):
    options = dict(kwargs)  # the parameter dict is shared by the SQLite and PostgreSQL runs: never mutate it
    name = options.pop("name")
    with pytest.raises(ValueError, match=match):
        add_user(store, name, **options)
    assert count_users(store) == 0


def test_a_role_change_sets_role_and_towns_keeps_the_password_and_the_open_sessions(store):
    add_user(store, "zhou", role="planner", password=PASSWORD)
    token = get_user(store, "zhou").session_token
    user = set_role(store, "zhou", role="caseworker", towns=["500120002", "500120001", "500120002"])
    assert (user.role, user.towns) == ("caseworker", ("500120002", "500120001"))  # duplicates dropped, order kept
    assert get_user(store, "zhou").session_token == token  # the next request reads the new role
    assert authenticate(store, "zhou", PASSWORD) is not None
    assert set_role(store, "zhou", role="bureau").towns == ()


@pytest.mark.parametrize(
    ("role", "towns", "rule"),
    [
        ("mayor", (), "unknown_role"),
        ("caseworker", (), "needs_towns"),
        ("caseworker", ("璧城街道",), "bad_town"),
        ("admin", ("500120001",), "no_towns"),
    ],
)
def test_a_role_change_that_does_not_fit_its_towns_is_refused_with_the_rule(store, role, towns, rule):
    add_user(store, "zhou", role="caseworker", password=PASSWORD, towns=["500120001"])
    with pytest.raises(ScopeError) as caught:
        set_role(store, "zhou", role=role, towns=towns)
    assert (caught.value.rule, caught.value.role) == (rule, role)
    assert (get_user(store, "zhou").role, get_user(store, "zhou").towns) == ("caseworker", ("500120001",))
    with pytest.raises(NotFoundError, match="No user named 'nobody'"):
        set_role(store, "nobody", role="planner")


def test_names_are_unique_and_missing_users_are_not_found(store):
    add_user(store, "sun", role="planner", password=PASSWORD)
    with pytest.raises(ValueError, match="'sun' is taken"):
        add_user(store, "sun", role="admin", password=PASSWORD)
    for call in (lambda: get_user(store, "nobody"), lambda: set_active(store, "nobody", False)):
        with pytest.raises(NotFoundError, match="No user named 'nobody'"):
            call()
    remove_user(store, "sun")
    assert list_users(store) == []
    with pytest.raises(NotFoundError):
        remove_user(store, "sun")


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("aaaaaaaaaa", "repetitive"),  # one character
        ("abababababab", "repetitive"),  # two different characters
        ("abcdabcdabcd", "repetitive"),  # four characters, the piece "abcd" repeated
        ("xy12!xy12!xy", "repetitive"),  # a piece repeated, the last time cut short
        ("abcdefghijkl", "sequence"),
        ("zyxwvutsrqpo", "sequence"),
        ("POIUYTREWQ", "sequence"),  # a keyboard row backwards, upper case
        ("1qaz2wsx3edc4rfv", "sequence"),  # a keyboard column walk
        ("1234567890", "common"),
        ("Password2024!", "common"),  # a common stem with digits and punctuation
        ("woaini1314520", "common"),
        ("wang-secret-pw", "contains_name"),
        ("short", "too_short"),
    ],
)
def test_easy_passwords_are_refused_with_the_rule_they_break(store, password, rule):
    with pytest.raises(WeakPasswordError) as caught:
        add_user(store, "wang", role="planner", password=password)
    assert caught.value.rule == rule
    assert count_users(store) == 0
    add_user(store, "wang", role="planner", password=PASSWORD)
    with pytest.raises(WeakPasswordError) as caught:
        set_password(store, "wang", password)
    assert caught.value.rule == rule
    assert authenticate(store, "wang", PASSWORD) is not None  # unchanged


@pytest.mark.parametrize("password", [PASSWORD, "demo password 123", "a brand new password", "k7#Rq2!mVx"])
def test_uncommon_passwords_pass(password):
    check_password(password, name="wang")


# --- login limits: `now` is passed in, so lock times are exact -------------------------------------

LIMITS = LoginLimits(max_failures=3, max_failures_per_ip=100, window_s=100, max_lock_s=350)


def _status(outcome) -> str:
    """'ok', 401 (wrong, counted) or 429 (refused or beyond a limit) as the login page answers."""
    if outcome.user is not None:
        return "ok"
    return f"429 retry {outcome.retry_after_s}" if outcome.throttled else "401"


def test_an_account_locks_after_its_failures_from_any_address_and_the_lock_doubles(store):
    add_user(store, "wang", role="planner", password=PASSWORD)
    attempts = [  # (time, address, password) → answer
        (0, "10.0.0.1", "wrong 1"), (1, "10.0.0.2", "wrong 2"), (2, "10.0.0.3", "wrong 3"),  # 3rd: locked to 102
        (50, "10.0.0.4", PASSWORD),  # refused, the password is not checked: 52 s left
        (102, "10.0.0.1", "wrong 4"),  # the 4th failure: locked for 2 × 100 s, to 302
        (200, "10.0.0.1", PASSWORD),
        (302, "10.0.0.1", "wrong 5"),  # the 5th: 4 × 100 s capped at 350 s, to 652
        (651, "10.0.0.1", PASSWORD),
        (652, "10.0.0.1", PASSWORD),  # the lock is over: signed in, the count starts again
        (653, "10.0.0.1", "wrong 6"), (654, "10.0.0.1", "wrong 7"), (655, "10.0.0.1", PASSWORD),
    ]  # fmt: skip
    answers = [_status(sign_in(store, "wang", pw, ip, LIMITS, now=t)) for t, ip, pw in attempts]
    assert answers == ["401", "401", "401", "429 retry 52", "401", "429 retry 102", "401", "429 retry 1",
                       "ok", "401", "401", "ok"]  # fmt: skip


def test_unknown_names_are_counted_and_locked_like_known_ones(store):
    answers = [_status(sign_in(store, "nobody", "wrong", "10.0.0.1", LIMITS, now=t)) for t in range(4)]
    assert answers == ["401", "401", "401", "429 retry 99"]


def test_a_new_password_lifts_the_lock(store):
    add_user(store, "wang", role="planner", password=PASSWORD)
    for t in range(3):
        sign_in(store, "wang", "wrong", "10.0.0.1", LIMITS, now=t)
    set_password(store, "wang", "another long password")
    assert _status(sign_in(store, "wang", "another long password", "10.0.0.1", LIMITS, now=3)) == "ok"


def test_an_address_beyond_its_limit_keeps_correct_logins_but_locks_the_names_it_fails_on(store):
    add_user(store, "wang", role="planner", password=PASSWORD)
    add_user(store, "li", role="planner", password=PASSWORD)
    nat, limits = "10.0.0.1", LoginLimits(max_failures=5, max_failures_per_ip=3, window_s=100, max_lock_s=350)
    attempts = [  # (time, address, name, password) → answer
        (0, nat, "x1", "guess"), (1, nat, "x2", "guess"), (2, nat, "x3", "guess"),  # the address's 3 failures
        (3, nat, "x4", "guess"),  # beyond the limit: 429, and x4 is locked (to 103)
        (4, nat, "wang", PASSWORD),  # a colleague behind the same NAT signs in
        (5, nat, "li", "typo"),  # beyond the limit: li is locked at once, to 105
        (6, nat, "li", PASSWORD),
        (7, "10.9.9.9", "li", PASSWORD),  # the lock is the account's, from any address
        (100, nat, "x5", "guess"),  # a new window for the address (started at 0)
    ]  # fmt: skip
    answers = [_status(sign_in(store, name, pw, ip, limits, now=t)) for t, ip, name, pw in attempts]
    assert answers == ["401", "401", "401", "429 retry 100", "ok", "429 retry 100", "429 retry 99",
                       "429 retry 98", "401"]  # fmt: skip


def _race(store, guesses: list[tuple[str, str]], limits: LoginLimits) -> Counter:
    """Run one thread per (name, password) guess from one address, released together; count the answers."""
    start = threading.Barrier(len(guesses))
    answers: list[str] = []

    def guess(name: str, password: str) -> None:
        start.wait()
        answers.append(_status(sign_in(store, name, password, "10.0.0.1", limits)).split(" retry")[0])

    threads = [threading.Thread(target=guess, args=g) for g in guesses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return Counter(answers)


def test_concurrent_guesses_at_one_account_check_only_the_allowed_passwords(store):
    add_user(store, "wang", role="planner", password=PASSWORD)
    limits = LoginLimits(max_failures=5, max_failures_per_ip=1000, window_s=900)
    answers = _race(store, [("wang", f"wrong {i}") for i in range(40)], limits)
    assert answers == Counter({"401": 5, "429": 35})  # 5 passwords checked, 35 refused unchecked


def test_concurrent_guesses_from_one_address_count_every_failure(store):
    names = [f"user{i:02d}" for i in range(40)]
    for name in names:
        add_user(store, name, role="planner", password=PASSWORD)
    limits = LoginLimits(max_failures=5, max_failures_per_ip=30, window_s=900)
    answers = _race(store, [(name, "wrong password") for name in names], limits)
    assert answers == Counter({"401": 30, "429": 10})  # failures 31 to 40 are beyond the address limit


def test_demo_users_one_per_role_only_in_an_empty_store(store):
    passwords = ensure_demo_users(store)
    assert sorted(passwords) == sorted(DEMO_USERS)
    users = {u.name: u for u in list_users(store)}
    assert {u.role for u in users.values()} == {"caseworker", "bureau", "planner", "admin"}
    assert users["demo-caseworker"].towns == ("500120001",)
    assert all(authenticate(store, name, pw) is not None for name, pw in passwords.items())
    assert ensure_demo_users(store) == {}
