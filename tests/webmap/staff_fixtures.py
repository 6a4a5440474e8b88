"""Fixtures for the sign-in, API and admin tests: the Bishan demo data and one account per role.

The demo store is built once per session (loading the demo layers takes seconds) and copied into
each test's own folder, so tests may change it freely. Accounts use a cheap hash method: the real
one (scrypt) is tested in tests/layers/test_users.py.
"""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest
from cryptography.fernet import Fernet
from werkzeug.security import generate_password_hash

from layers import jobs as job_store
from layers import users
from layers.crypto import BlindIndex, FieldCipher
from layers.demo import load_demo_layers
from layers.district import load_district
from layers.store import Store
from webmap import create_app, jobs
from webmap.store import get_store

PASSWORD = "demo password 123"
TOWN_A = "500120001"  # 璧城街道
TOWN_B = "500120002"  # 璧泉街道
#: Test accounts by role key: (name, role, towns).
ACCOUNTS = {
    "caseworker_a": ("cw-a", "caseworker", (TOWN_A,)),
    "caseworker_b": ("cw-b", "caseworker", (TOWN_B,)),
    "bureau": ("bureau", "bureau", ()),
    "planner": ("planner", "planner", ()),
    "admin": ("admin", "admin", ()),
}
ROLE_KEYS = ("public", *ACCOUNTS)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def cheap_hash(password: str) -> str:
    return generate_password_hash(password, method="pbkdf2:sha256:1000")


def _add_accounts(store: Store) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(users, "generate_password_hash", cheap_hash)
        for name, role, towns in ACCOUNTS.values():
            users.add_user(store, name, role=role, password=PASSWORD, towns=towns)


@pytest.fixture(scope="session")
def demo_key():
    return Fernet.generate_key()


@pytest.fixture(scope="session")
def demo_households():
    """The demo household table as shipped (the ground truth of what must never be public)."""
    district = load_district()
    return pd.read_csv(district.demo_dir / "household.csv", dtype=str)


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory, demo_key):
    folder = tmp_path_factory.mktemp("demo-db")
    path = folder / "demo.sqlite"
    store = Store(f"sqlite:///{path}", cipher=FieldCipher(demo_key), blind_index=BlindIndex(Fernet.generate_key()))
    load_demo_layers(store, load_district())
    _add_accounts(store)
    store.close()
    return path


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def app(tmp_path, demo_db, demo_key, demo_cache, monkeypatch):
    monkeypatch.setattr(users, "generate_password_hash", cheap_hash)
    path = tmp_path / "accessplan.sqlite"
    shutil.copyfile(demo_db, path)
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "DATABASE_URL": f"sqlite:///{path}",
            "ENCRYPTION_KEY": demo_key,
            "CACHE_DIR": str(demo_cache),
        }
    )
    yield app
    store = app.extensions.get("accessplan_store")
    if store is not None:
        store.close()


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_token(client, path: str = "/login") -> str:
    """Return the CSRF token of ``client``'s session, read from a form page."""
    match = _CSRF.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def run_job(app, client, path: str, form: dict, *, timeout_s: float = 300):
    """Post a planner form at ``path`` (with its CSRF token), wait for the job it starts; return its record, done."""
    response = client.post(path, data={**form, "csrf_token": csrf_token(client, path)})
    assert response.status_code == 303, response.get_data(as_text=True)
    job_id = response.headers["Location"].rsplit("/", 1)[-1]
    jobs.wait_for_job(app, job_id, timeout_s=timeout_s)
    with app.app_context():
        record = job_store.get_job(get_store(), job_id)
    assert record.status == "done", record.error
    return record


def log_in(client, name: str, password: str = PASSWORD):
    """Sign ``client`` in through the login form; return the response."""
    token = csrf_token(client)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token})


@pytest.fixture
def client_as(app):
    """Factory: ``client_as(role_key)`` → a test client signed in as that account (``public``: anonymous)."""

    def make(role_key: str):
        client = app.test_client()
        if role_key != "public":
            response = log_in(client, ACCOUNTS[role_key][0])
            assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return make
