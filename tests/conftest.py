"""Fixtures shared by every test package."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from analyses.costs import load_district_network
from layers.district import load_district

POSTGRES_URL_ENV = "ACCESSPLAN_TEST_POSTGRES_URL"


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
    """Yield an empty database URL: a SQLite file, and a real PostgreSQL server where one is given.

    `.ci/run` starts PostgreSQL and sets ACCESSPLAN_TEST_POSTGRES_URL; in CI a missing server fails.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite'}"
        return
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_URL_ENV} is not set: .ci/run must start PostgreSQL for the store tests.")
        pytest.skip(f"no PostgreSQL server: run `source .ci/postgres.sh` to test against one ({POSTGRES_URL_ENV})")
    _reset_postgres(url)
    yield url
    _reset_postgres(url)


def _reset_postgres(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
