"""Fixtures shared by every test package."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from analyses.costs import load_district_network
from layers.district import load_district
from layers.store import upgrade_schema

POSTGRES_URL_ENV = "ACCESSPLAN_TEST_POSTGRES_URL"
POSTGRES_OWNER_URL_ENV = "ACCESSPLAN_TEST_POSTGRES_OWNER_URL"


@pytest.fixture(scope="session")
def app_cache_dir(tmp_path_factory):
    """One `CACHE_DIR` for the whole session, so the Bishan network is prepared only once (~30 s)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def bishan():
    """The embedded district (``layers.district.load_district()``)."""
    return load_district()


@pytest.fixture(scope="session")
def bishan_net(bishan, app_cache_dir):
    """Bishan's prepared road network, built once per session into ``app_cache_dir`` (~30 s)."""
    return load_district_network(bishan, cache_dir=app_cache_dir / "networks")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """Yield an empty database URL for the app: a SQLite file, and a real PostgreSQL server where one is given.

    `.ci/run` starts PostgreSQL and sets ACCESSPLAN_TEST_POSTGRES_URL (the app's role) and
    ACCESSPLAN_TEST_POSTGRES_OWNER_URL (the role owning the database, which runs the migrations, as in a
    deployment); in CI a missing server fails. With an owner URL the schema is migrated by the owner
    and the app's role gets its grants (`layers.store.grant_app_role`) before the test; without one
    the app's role owns everything (the old single-role setup).
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite'}"
        return
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_URL_ENV} is not set: .ci/run must start PostgreSQL for the store tests.")
        pytest.skip(f"no PostgreSQL server: run `source .ci/postgres.sh` to test against one ({POSTGRES_URL_ENV})")
    owner_url = os.environ.get(POSTGRES_OWNER_URL_ENV)
    _reset_postgres(owner_url or url, app_url=url)
    if owner_url:
        owner = sa.create_engine(owner_url)
        upgrade_schema(owner, app_role=sa.make_url(url).username)
        owner.dispose()
    yield url
    _reset_postgres(owner_url or url, app_url=url)


@pytest.fixture
def owner_url(database_url):
    """Return the URL of the role that owns ``database_url``'s tables (itself for SQLite and a single role)."""
    if database_url.startswith("sqlite"):
        return database_url
    return os.environ.get(POSTGRES_OWNER_URL_ENV) or database_url


def _reset_postgres(url: str, *, app_url: str) -> None:
    """Empty the database: a new ``public`` schema owned by ``url``'s role, usable by the app's role."""
    engine = sa.create_engine(url)
    app_role = sa.make_url(app_url).username
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
        if app_role != engine.url.username:
            conn.execute(sa.text(f'GRANT USAGE ON SCHEMA public TO "{app_role}"'))
    engine.dispose()


@pytest.fixture(autouse=True)
def _english_command_line(monkeypatch):
    """Commands speak the language of LANG (``webmap.cli.lang``): tests read English unless they set it."""
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
