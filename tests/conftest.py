"""Fixtures shared by every test package."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from analyses.costs import load_district_network
from layers.district import load_district
from layers.store import upgrade_schema

POSTGRES_URL_ENV = "ACCESSPLAN_TEST_POSTGRES_URL"
POSTGRES_OWNER_URL_ENV = "ACCESSPLAN_TEST_POSTGRES_OWNER_URL"
#: Set by pytest-xdist in each worker process (``gw0``, ``gw1`` …); absent in a run without ``-n``.
XDIST_WORKER_ENV = "PYTEST_XDIST_WORKER"


def pytest_xdist_make_scheduler(config, log):
    """Give ``--dist loadfile`` (``make test``) one xdist worker per test file and one for all browser tests.

    A file's module-scoped fixtures (a demo store, a finished job, the osmnx graph of the Bishan roads) are
    then set up once, not in each worker that runs some of its tests, and the browser tests share one
    served app and one Chromium. (``--dist loadgroup`` with ``xdist_group`` marks would say the same, but
    pytest-xdist 3.8 renames the test ids for it in a way pytest 9 no longer honours.)
    """
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FileAndBrowserScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return "tests/browser" if scope.startswith("tests/browser/") else scope

    return FileAndBrowserScheduling(config, log)


def shared_tmp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a folder shared by every xdist worker of this run (this session's temp root without ``-n``)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get(XDIST_WORKER_ENV) else base


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) across processes, e.g. xdist workers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def bishan():
    """The embedded district (``layers.district.load_district()``)."""
    return load_district()


@pytest.fixture(scope="session")
def app_cache_dir(tmp_path_factory, bishan):
    """One `CACHE_DIR` for the whole run, holding Bishan's prepared network (``<dir>/networks``).

    The network is prepared once per run (~10 s) by whichever xdist worker comes first, under a file
    lock; the others wait for it and then read the cached file, so no two processes write it at once.
    """
    folder = shared_tmp_dir(tmp_path_factory) / "app-cache"
    with file_lock(folder.with_name("app-cache.lock")):
        load_district_network(bishan, cache_dir=folder / "networks")
    return folder


@pytest.fixture(scope="session")
def bishan_net(bishan, app_cache_dir):
    """Bishan's prepared road network, read from ``app_cache_dir`` (prepared there once per run)."""
    return load_district_network(bishan, cache_dir=app_cache_dir / "networks")


@pytest.fixture(scope="session")
def postgres_urls() -> tuple[str, str | None] | None:
    """Return this worker's PostgreSQL URLs (app role, owner role or None), or None without a server.

    Under pytest-xdist each worker gets its own database, ``<database>_gw0``, ``<database>_gw1`` …, made
    on first use by the owner role (``.ci/postgres.sh`` gives it CREATEDB) and reused by later runs;
    the app's role only gets CONNECT, as on the base database. Without ``-n`` the base database is used.
    """
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        return None
    owner_url = os.environ.get(POSTGRES_OWNER_URL_ENV)
    worker = os.environ.get(XDIST_WORKER_ENV)
    if not worker:
        return url, owner_url
    base = sa.make_url(url)
    name = f"{base.database}_{worker}"
    creator = sa.make_url(owner_url or url)
    _ensure_database(creator, name, app_role=base.username)
    url = base.set(database=name).render_as_string(hide_password=False)
    if owner_url:
        owner_url = creator.set(database=name).render_as_string(hide_password=False)
    return url, owner_url


def _ensure_database(creator: sa.URL, name: str, *, app_role: str) -> None:
    """Create database ``name`` owned by ``creator``'s role if it is missing; let ``app_role`` connect."""
    engine = sa.create_engine(creator, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
            if not exists:
                try:
                    conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                except sa.exc.ProgrammingError as error:
                    pytest.fail(
                        f"Role {creator.username!r} cannot create the worker database {name!r} ({error.orig}): "
                        "run `source .ci/postgres.sh` (it gives the owner role CREATEDB), or run pytest without -n.",
                        pytrace=False,
                    )
            if app_role != creator.username:
                conn.execute(sa.text(f'GRANT CONNECT ON DATABASE "{name}" TO "{app_role}"'))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path, postgres_urls):
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
    if postgres_urls is None:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_URL_ENV} is not set: .ci/run must start PostgreSQL for the store tests.")
        pytest.skip(f"no PostgreSQL server: run `source .ci/postgres.sh` to test against one ({POSTGRES_URL_ENV})")
    url, owner_url = postgres_urls
    _reset_postgres(owner_url or url, app_url=url)
    if owner_url:
        owner = sa.create_engine(owner_url)
        upgrade_schema(owner, app_role=sa.make_url(url).username)
        owner.dispose()
    yield url
    _reset_postgres(owner_url or url, app_url=url)


@pytest.fixture
def owner_url(database_url, postgres_urls):
    """Return the URL of the role that owns ``database_url``'s tables (itself for SQLite and a single role)."""
    if database_url.startswith("sqlite"):
        return database_url
    return postgres_urls[1] or database_url


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
