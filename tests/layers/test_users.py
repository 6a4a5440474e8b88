from __future__ import annotations

import functools

import pytest
import sqlalchemy as sa
from werkzeug.security import generate_password_hash

import layers.users
from layers.errors import NotFoundError
from layers.store import Store
from layers.users import (
    DEMO_USERS,
    add_user,
    authenticate,
    count_users,
    ensure_demo_users,
    failed_logins,
    get_user,
    list_users,
    record_login_attempt,
    remove_user,
    set_active,
    set_password,
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


def test_a_new_password_replaces_the_old_one_and_changes_the_stamp(store):
    add_user(store, "zhao", role="admin", password=PASSWORD)
    stamp = get_user(store, "zhao").password_stamp
    set_password(store, "zhao", "another long password")
    assert authenticate(store, "zhao", PASSWORD) is None
    assert authenticate(store, "zhao", "another long password").name == "zhao"
    assert get_user(store, "zhao").password_stamp != stamp


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
    ],
)
def test_bad_accounts_are_refused_with_the_rule(store, kwargs, match):
    options = dict(kwargs)  # the parameter dict is shared by the SQLite and PostgreSQL runs: never mutate it
    name = options.pop("name")
    with pytest.raises(ValueError, match=match):
        add_user(store, name, **options)
    assert count_users(store) == 0


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


def test_failed_logins_are_counted_per_ip_and_name(store):
    for name, ip, ok in [("a", "10.0.0.1", False), ("a", "10.0.0.1", False), ("b", "10.0.0.1", False),
                         ("a", "10.0.0.2", False), ("a", "10.0.0.1", True)]:  # fmt: skip
        record_login_attempt(store, name, ip, succeeded=ok)
    assert failed_logins(store, ip="10.0.0.1", name="a", window_s=900) == 2
    assert failed_logins(store, ip="10.0.0.1", window_s=900) == 3
    assert failed_logins(store, ip="10.0.0.2", name="a", window_s=900) == 1
    assert failed_logins(store, ip="10.0.0.1", name="a", window_s=0) == 0


def test_demo_users_one_per_role_only_in_an_empty_store(store):
    passwords = ensure_demo_users(store)
    assert sorted(passwords) == sorted(DEMO_USERS)
    users = {u.name: u for u in list_users(store)}
    assert {u.role for u in users.values()} == {"caseworker", "bureau", "planner", "admin"}
    assert users["demo-caseworker"].towns == ("500120001",)
    assert all(authenticate(store, name, pw) is not None for name, pw in passwords.items())
    assert ensure_demo_users(store) == {}
