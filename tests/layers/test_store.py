from __future__ import annotations

import itertools
import json
import threading
from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from layers import schema
from layers.crypto import BlindIndex, FieldCipher, encode_fields
from layers.errors import EncryptionKeyError, NotFoundError, StaleVersionError
from layers.store import AccessLogQuery, ImportCounts, Store, access_log_table
from layers.store.bulk import Batch, _zip_rows, dumps
from layers.store.database import SQLITE_BULK_CACHE_KIB
from layers.store.records import personal_columns, to_records
from layers.store.tables import VALUE_COLUMNS

ID_NUMBER = "500227194401116803"


def _stations(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"RS-{i:02d}" for i in range(n)],
            "town_code": ["500120001"] * n,
            "village_code": ["500120001001"] * n,
            "name": [f"康复站{i}" for i in range(n)],
            "address": ["璧山区璧城街道"] * n,
            "lon": [106.22 + i / 1000 for i in range(n)],
            "lat": [29.59] * n,
            "datum": ["wgs84"] * n,
            "status": ["open"] * n,
            "beds": [2 + i for i in range(n)],
            "note": [[None, "x", float("nan")][i % 3] for i in range(n)],
        }
    )


def _households() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["HH-1", "HH-2"],
            "town_code": ["500120001", "500120100"],
            "village_code": ["500120001001", "500120100201"],
            "name": ["孙敏", "李强"],
            "address": ["璧山区璧城街道文星社区", "璧山区八塘镇某村"],
            "lon": [106.2294, 106.2927],
            "lat": [29.5979, 29.8353],
            "datum": ["wgs84", "gcj02"],
            "status": ["surveyed", "approved"],
            "id_number": [ID_NUMBER, "50012019800101002X"],
            "certificate_number": [ID_NUMBER + "12", "50012019800101002X41"],
            "disability_category": [1, 4],
            "disability_grade": [2, 1],
            "phone": ["13624947846", "13800000000"],
            "needs": ["坡道", "扶手"],
        }
    )


@pytest.fixture
def store(database_url):
    s = Store(database_url, cipher=FieldCipher(Fernet.generate_key()), blind_index=BlindIndex(Fernet.generate_key()))
    yield s
    s.close()


def test_a_new_store_is_empty_and_migrated_to_the_newest_revision(store):
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from layers.store import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert store.count() == 0
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == head


def test_the_migrated_schema_matches_the_tables_the_code_uses(store):
    import importlib
    from pathlib import Path

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from layers.store import metadata

    for path in (Path(__file__).parents[2] / "layers").glob("*.py"):  # every module that defines tables
        if "sa.Table(" in path.read_text(encoding="utf-8"):
            importlib.import_module(f"layers.{path.stem}")

    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_sqlite_uses_wal(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'wal.sqlite'}")
    with s.engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar_one() == "wal"
    s.close()


def test_an_import_into_sqlite_writes_with_a_larger_page_cache_and_gives_it_back(tmp_path):
    """The inserts run with `SQLITE_BULK_CACHE_KIB` of cache; the connection has SQLite's 2,000 KiB again after."""
    s = Store(f"sqlite:///{tmp_path / 'cache.sqlite'}")
    during, connections = [], []

    @sa.event.listens_for(s.engine, "before_cursor_execute")
    def _cache_size(conn, _cursor, statement, *_args):
        if statement.startswith("INSERT INTO features"):
            dbapi = conn.connection.dbapi_connection
            connections.append(dbapi)
            during.append(dbapi.execute("PRAGMA cache_size").fetchone()[0])

    assert s.upsert_features("rehab_station", _stations(), user="tester") == ImportCounts(3, 0, 0)
    assert during == [-SQLITE_BULK_CACHE_KIB] and SQLITE_BULK_CACHE_KIB > 2000
    assert connections[0].execute("PRAGMA cache_size").fetchone()[0] == -2000
    s.close()


def test_inserted_rows_come_back_with_attributes_and_version_one(store):
    assert store.upsert_features("rehab_station", _stations(), user="tester") == ImportCounts(3, 0, 0)
    gdf = store.features("rehab_station")
    assert list(gdf["id"]) == ["RS-00", "RS-01", "RS-02"]
    assert list(gdf["beds"]) == [2, 3, 4]
    assert gdf["note"].isna().tolist() == [True, False, True] and gdf["note"].iloc[1] == "x"
    assert set(gdf["version"]) == {1} and set(gdf["updated_by"]) == {"tester"}
    assert gdf.crs.to_epsg() == 4326
    assert gdf.geometry.iloc[1].x == pytest.approx(106.221)
    assert store.count("rehab_station") == 3 and store.count("sports_site") == 0


def test_filters_by_status_and_town(store):
    rows = _stations()
    rows.loc[0, "status"] = "planned"
    rows.loc[2, "town_code"] = "500120100"
    store.upsert_features("rehab_station", rows, user="tester")
    assert list(store.features("rehab_station", statuses=("planned",))["id"]) == ["RS-00"]
    assert list(store.features("rehab_station", towns=("500120100",))["id"]) == ["RS-02"]


def test_an_empty_layer_is_an_empty_frame_with_the_columns(store):
    gdf = store.features("sports_site")
    assert len(gdf) == 0 and {"id", "lon", "lat", "status"} <= set(gdf.columns)


def test_reimporting_the_same_rows_is_idempotent_and_changes_update_by_id(store):
    store.upsert_features("rehab_station", _stations(), user="a")
    assert store.upsert_features("rehab_station", _stations(), user="a") == ImportCounts(0, 0, 3)
    changed = _stations(4)  # RS-03 is new
    changed.loc[1, "status"] = "closed"
    assert store.upsert_features("rehab_station", changed, user="b") == ImportCounts(1, 1, 2)
    row = store.feature("rehab_station", "RS-01")
    assert (row["status"], row["version"], row["updated_by"], row["created_by"]) == ("closed", 2, "b", "a")
    assert store.count() == 4
    history = store.history("rehab_station", "RS-01")
    assert [(h["action"], h["version"], h["actor"]) for h in history] == [("insert", 1, "a"), ("update", 2, "b")]
    assert history[1]["before"]["status"] == "open" and history[1]["after"]["status"] == "closed"


def test_a_stale_version_is_refused_naming_who_changed_it(store):
    store.upsert_features("rehab_station", _stations(1), user="a")
    assert store.update_feature("rehab_station", "RS-00", {"status": "closed"}, version=1, user="wang") == 2
    with pytest.raises(StaleVersionError, match=r"changed by 'wang' at .*now version 2; you edited version 1"):
        store.update_feature("rehab_station", "RS-00", {"status": "planned"}, version=1, user="li")
    row = store.feature("rehab_station", "RS-00")
    assert (row["status"], row["version"]) == ("closed", 2)
    assert len(store.history("rehab_station", "RS-00")) == 2


def test_updating_a_missing_row_is_not_found(store):
    with pytest.raises(NotFoundError, match="RS-404"):
        store.update_feature("rehab_station", "RS-404", {"status": "open"}, version=1, user="a")


def test_two_threads_updating_the_same_version_exactly_one_wins(store):
    store.upsert_features("rehab_station", _stations(1), user="a")
    barrier, outcomes = threading.Barrier(2), []

    def edit(user: str, status: str) -> None:
        barrier.wait()
        try:
            store.update_feature("rehab_station", "RS-00", {"status": status}, version=1, user=user)
            outcomes.append("won")
        except StaleVersionError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=edit, args=(u, s)) for u, s in (("u1", "closed"), ("u2", "planned"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "won"]
    assert [h["action"] for h in store.history("rehab_station", "RS-00")] == ["insert", "update"]
    assert store.feature("rehab_station", "RS-00")["version"] == 2


#: Columns of a row the bypasses try to write into each append-only table (``seq`` is the stored row's).
_LOG_ROWS = {
    "history": "(seq, at, actor, layer, feature_id, action, version) "
    "VALUES ({seq}, '2026-01-01 00:00:00', 'x', 'rehab_station', 'RS-00', 'insert', 9)",
    "access_log": "(seq, at, actor, layer, feature_id, reason) "
    "VALUES ({seq}, '2026-01-01 00:00:00', 'x', 'household', 'HH-1', 'xxxx')",
    "visits": "(seq, at, actor, household_id, town_code, visited_on, notes) "
    "VALUES ({seq}, '2026-01-01 00:00:00', 'x', 'HH-1', '500120001', '2026-01-01', 'xxxx')",
}
#: Every way tried to rewrite an append-only table ``{t}`` as the app, on both backends (some are not
#: even valid SQL on one of them; each must fail).
_BYPASSES = (
    "UPDATE {t} SET actor = 'x'",
    "DELETE FROM {t}",
    "INSERT OR REPLACE INTO {t} {row}",
    "REPLACE INTO {t} {row}",
    "INSERT INTO {t} {row} ON CONFLICT (seq) DO UPDATE SET actor = 'x'",
    "TRUNCATE {t}",
    "ALTER TABLE {t} DISABLE TRIGGER {trigger}",
    "ALTER TABLE {t} DISABLE TRIGGER ALL",
    "DROP TRIGGER {drop_trigger}",
    "DROP TABLE {t}",
    "ALTER TABLE {t} RENAME TO {t}_old",
)
#: The trigger each bypass names: the one refusing UPDATE on each backend, and how DROP TRIGGER names it
#: (PostgreSQL's ALTER TABLE … DISABLE TRIGGER takes the bare name: with ``ON`` it would be a syntax error).
_TRIGGERS = {"sqlite": ("{t}_no_update", "{t}_no_update"), "postgresql": ("{t}_append_only", "{t}_append_only ON {t}")}


def _log_rows(store) -> dict[str, list[tuple]]:
    with store.engine.connect() as conn:
        return {t: [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {t} ORDER BY seq"))] for t in _LOG_ROWS}


def _triggers(store) -> set[str]:
    sql = {
        "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger'",
        "postgresql": "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled = 'O'",
    }[store.engine.dialect.name]
    with store.engine.connect() as conn:
        return set(conn.execute(sa.text(sql)).scalars())


def test_the_app_cannot_rewrite_the_history_or_the_access_log(store, database_url, owner_url):
    dialect = store.engine.dialect.name
    if dialect == "postgresql" and owner_url == database_url:
        pytest.fail("The app's role owns the tables: set ACCESSPLAN_TEST_POSTGRES_OWNER_URL (source .ci/postgres.sh).")
    store.upsert_features("rehab_station", _stations(1), user="a")
    store.log_access("household", ["HH-1"], user="caseworker1", reason="入户走访", channel="web", ip="10.0.0.7")
    store.upsert_features(schema.HOUSEHOLD, _households(), user="a")
    store.add_visit("HH-1", visited_on=date(2026, 11, 23), found="门槛高", next_step="报审批", user="caseworker1")
    before, triggers = _log_rows(store), _triggers(store)
    assert len(triggers) == {"sqlite": 9, "postgresql": 6}[dialect]  # UPDATE, DELETE, REPLACE / TRUNCATE, per table
    tried = 0
    for table, row in _LOG_ROWS.items():
        seq = before[table][0][0]
        for bypass in _BYPASSES:
            trigger, drop_trigger = (n.format(t=table) for n in _TRIGGERS[dialect])
            statement = bypass.format(t=table, row=row.format(seq=seq), trigger=trigger, drop_trigger=drop_trigger)
            with pytest.raises(sa.exc.DBAPIError) as refused, store.engine.begin() as conn:
                conn.execute(sa.text(statement))
            if dialect == "postgresql" and "TRIGGER" in statement:  # refused for the role, not by the parser
                assert "must be owner" in str(refused.value), statement
            tried += 1
            assert _log_rows(store) == before, statement
            assert _triggers(store) == triggers, statement
    assert tried == 3 * len(_BYPASSES) == 33
    # appending still works
    store.log_access("household", ["HH-2"], user="caseworker1", reason="入户走访", channel="api", ip="10.0.0.8")
    assert [r["feature_id"] for r in store.access_log()] == ["HH-1", "HH-2"]
    if dialect == "postgresql":  # nor can the app's role migrate the schema: that needs the owner's URL
        owner = sa.create_engine(owner_url)
        with owner.begin() as conn:
            conn.execute(sa.text("DELETE FROM alembic_version"))
        owner.dispose()
        with pytest.raises(PermissionError, match="MIGRATION_DATABASE_URL"):
            Store(database_url)


def test_the_visit_log_is_append_only_encrypted_and_scoped_by_town(store):
    store.upsert_features(schema.HOUSEHOLD, _households(), user="a")
    day = date(2026, 11, 23)
    first = store.add_visit("HH-1", visited_on=day, found="门槛高 12 厘米", next_step="报审批", user="cw")
    fixed = store.add_visit(
        "HH-1", visited_on=date(2026, 11, 23), found="门槛高 15 厘米", next_step="报审批", user="cw2", corrects=first
    )
    rows = store.visits("HH-1")
    assert [(r["seq"], r["actor"], r["found"], r["corrects"], r["town_code"]) for r in rows] == [
        (first, "cw", "门槛高 12 厘米", None, "500120001"),
        (fixed, "cw2", "门槛高 15 厘米", first, "500120001"),
    ]
    assert rows[0]["visited_on"] == date(2026, 11, 23) and rows[0]["next_step"] == "报审批"
    assert store.visits("HH-1", towns=("500120100",)) == []  # another town's caseworker sees none
    assert store.visits("HH-2") == []
    with store.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT notes FROM visits")).scalars().all()
    assert len(stored) == 2 and not any("门槛" in t or "审批" in t for t in stored)  # encrypted at rest
    with pytest.raises(NotFoundError):  # a correction names a visit of the same household
        store.add_visit("HH-2", visited_on=date(2026, 11, 24), found="x", next_step="y", user="cw", corrects=first)
    with pytest.raises(NotFoundError):
        store.add_visit("HH-9", visited_on=date(2026, 11, 24), found="x", next_step="y", user="cw")


def test_sqlite_refuses_a_replace_even_without_the_app_authorizer(tmp_path):
    """The BEFORE INSERT trigger alone refuses REPLACE (which deletes without firing DELETE triggers)."""
    url = f"sqlite:///{tmp_path / 'owner.sqlite'}"
    store = Store(url)
    store.upsert_features("rehab_station", _stations(1), user="a")
    store.close()
    owner = sa.create_engine(url)  # a plain connection: no authorizer
    for statement in (
        "INSERT OR REPLACE INTO history " + _LOG_ROWS["history"].format(seq=1),
        "REPLACE INTO history " + _LOG_ROWS["history"].format(seq=1),
        "UPDATE history SET actor = 'x'",
        "DELETE FROM history",
    ):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), owner.begin() as conn:
            conn.execute(sa.text(statement))
    with owner.connect() as conn:
        assert conn.execute(sa.text("SELECT seq, actor, action FROM history")).all() == [(1, "a", "insert")]
    owner.dispose()


def test_personal_fields_are_encrypted_at_rest(store, tmp_path):
    store.upsert_features("household", _households(), user="a")
    with store.engine.connect() as conn:
        dump = " ".join(
            str(tuple(row))
            for table in ("features", "history")
            for row in conn.execute(sa.text(f"SELECT * FROM {table}"))
        )
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("store.sqlite*")) or dump.encode("utf-8")
    for secret in ("孙敏", "李强", ID_NUMBER, "13624947846", "璧山区璧城街道文星社区", "八塘镇某村"):
        assert secret not in dump
        assert secret.encode("utf-8") not in raw
    assert "坡道" in dump  # sanity: plain columns are readable


def test_households_never_carry_names_through_features_and_decrypt_with_the_key(store):
    store.upsert_features("household", _households(), user="a")
    gdf = store.features("household")
    assert gdf["name"].isna().all() and gdf["address"].isna().all() and "id_number" not in gdf.columns
    assert "id_number_index" not in gdf.columns and "id_number_index" not in store.feature("household", "HH-1")
    tokens = store.personal_tokens("household", towns=("500120001",))
    assert list(tokens) == ["HH-1"]
    assert store.decrypt_personal(tokens["HH-1"])["id_number"] == ID_NUMBER
    assert store.decrypt_personal(tokens["HH-1"])["address"] == "璧山区璧城街道文星社区"
    other = Store(store.url, cipher=FieldCipher(Fernet.generate_key()))
    with pytest.raises(EncryptionKeyError, match="key differs"):
        other.decrypt_personal(tokens["HH-1"])
    other.close()


def test_a_store_without_a_key_refuses_households(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'nokey.sqlite'}")
    with pytest.raises(EncryptionKeyError, match="no encryption key"):
        s.upsert_features("household", _households(), user="a")
    assert s.count() == 0
    s.close()


def test_a_failing_import_leaves_the_store_unchanged(store, tmp_path):
    store.upsert_features("rehab_station", _stations(2), user="a")
    bad = _stations(3)
    bad.loc[2, "lon"] = None  # the last row only
    bad.loc[0, "status"] = "closed"
    with pytest.raises(ValueError, match="'RS-02' of `rehab_station` has no valid `lon`"):
        store.upsert_features("rehab_station", bad, user="b")
    assert store.count() == 2
    assert store.feature("rehab_station", "RS-00")["status"] == "open"
    assert len(store.history("rehab_station", "RS-00")) == 1


def test_a_database_error_midway_rolls_back_everything(store):
    store.upsert_features("rehab_station", _stations(2), user="a")
    bad = _stations(3)
    bad.loc[0, "status"] = "closed"
    bad.loc[2, "town_code"] = "5" * 40  # too long for the column: fails inside the transaction on PostgreSQL
    if store.engine.dialect.name == "sqlite":
        bad.loc[2, "status"] = None  # SQLite ignores lengths; NOT NULL fails instead
    with pytest.raises(sa.exc.DBAPIError):
        store.upsert_features("rehab_station", bad, user="b")
    assert store.count() == 2
    assert store.feature("rehab_station", "RS-00")["status"] == "open"
    assert len(store.history("rehab_station", "RS-00")) == 1


def test_the_access_log_records_who_saw_what_why_from_where_and_how(store):
    store.log_access("household", ["HH-1", "HH-2"], user="caseworker1", reason="home visit", channel="web",
                     ip="10.0.0.7")  # fmt: skip
    store.log_access("household", ["HH-1"], user="caseworker2", reason="入户走访", channel="cli")
    log = store.access_log()
    assert [(r["actor"], r["feature_id"], r["reason"], r["ip"], r["channel"]) for r in log] == [
        ("caseworker1", "HH-1", "home visit", "10.0.0.7", "web"),
        ("caseworker1", "HH-2", "home visit", "10.0.0.7", "web"),
        ("caseworker2", "HH-1", "入户走访", None, "cli"),
    ]
    with pytest.raises(ValueError, match=r"`channel` must be one of \['web', 'api', 'cli'\]; got 'email'"):
        store.log_access("household", ["HH-1"], user="caseworker1", reason="入户走访", channel="email")
    assert len(store.access_log()) == 3


def _append_log_rows(store, rows) -> None:
    """Append access-log rows at chosen times (an INSERT: the app may append, never rewrite)."""
    records = [
        {"at": at, "actor": actor, "layer": "household", "feature_id": fid, "reason": reason, "ip": ip,
         "channel": channel}
        for at, actor, fid, reason, ip, channel in rows
    ]  # fmt: skip
    with store.engine.begin() as conn:
        conn.execute(access_log_table.insert(), records)


def test_the_access_log_is_filtered_by_user_town_time_and_kind_and_paged(store):
    from datetime import UTC, datetime, timedelta, timezone

    store.upsert_features("household", _households(), user="import")  # HH-1 in 500120001, HH-2 in 500120100
    beijing = timezone(timedelta(hours=8))
    _append_log_rows(store, [
        (datetime(2026, 3, 1, 15, 59, tzinfo=UTC), "cw1", "HH-1", "入户走访", "10.0.0.1", "web"),  # 3-1 23:59 Beijing
        (datetime(2026, 3, 1, 16, 0, tzinfo=UTC), "cw1", "HH-2", "电话回访", "10.0.0.1", "api"),  # 3-2 00:00 Beijing
        (datetime(2026, 3, 2, 1, 0, tzinfo=UTC), "cw2", "HH-1", "核实地址", None, "cli"),
        (datetime(2026, 3, 2, 2, 0, tzinfo=UTC), "p1", "*", "bulk read of 2 rows (planner): GET /api/households",
         "10.0.0.9", "web"),
        (datetime(2026, 3, 3, 2, 0, tzinfo=UTC), "cw1", "HH-gone", "入户走访", "10.0.0.1", "web"),
    ])  # fmt: skip

    def seqs(query=None, **kwargs):
        return [(r["actor"], r["feature_id"], r["town_code"]) for r in store.access_log(query, **kwargs)]

    assert len(seqs()) == store.count_access_log() == 5
    assert seqs(AccessLogQuery(kind="full")) == [
        ("cw1", "HH-1", "500120001"), ("cw1", "HH-2", "500120100"), ("cw2", "HH-1", "500120001"),
        ("cw1", "HH-gone", None),
    ]  # fmt: skip
    assert seqs(AccessLogQuery(kind="bulk")) == [("p1", "*", None)]
    assert seqs(AccessLogQuery(actors=("cw2", "p1"))) == [("cw2", "HH-1", "500120001"), ("p1", "*", None)]
    assert seqs(AccessLogQuery(towns=("500120001",))) == [("cw1", "HH-1", "500120001"), ("cw2", "HH-1", "500120001")]
    # 2026-03-02 in Beijing time is [03-01 16:00 UTC, 03-02 16:00 UTC): the 15:59 UTC row is the day before
    day = AccessLogQuery(since=datetime(2026, 3, 2, tzinfo=beijing), until=datetime(2026, 3, 3, tzinfo=beijing))
    assert seqs(day) == [("cw1", "HH-2", "500120100"), ("cw2", "HH-1", "500120001"), ("p1", "*", None)]
    assert store.count_access_log(day) == 3
    assert seqs(AccessLogQuery(until=datetime(2026, 3, 1, 16, 0, tzinfo=UTC))) == [("cw1", "HH-1", "500120001")]
    # newest first, two rows a page
    assert seqs(newest_first=True, limit=2) == [("cw1", "HH-gone", None), ("p1", "*", None)]
    assert seqs(newest_first=True, limit=2, offset=4) == [("cw1", "HH-1", "500120001")]
    assert seqs(AccessLogQuery(kind="full", actors=("nobody",))) == []
    row = store.access_log(AccessLogQuery(actors=("cw1",), towns=("500120100",)))[0]
    assert (row["reason"], row["ip"], row["channel"]) == ("电话回访", "10.0.0.1", "api")
    assert store.count_access_log() == 5  # reading changed nothing
    with pytest.raises(ValueError, match=r"`kind` must be one of \['full', 'bulk', 'all'\]; got 'some'"):
        AccessLogQuery(kind="some")
    with pytest.raises(ValueError, match="`since` must carry a time zone"):
        AccessLogQuery(since=datetime(2026, 3, 2))  # noqa: DTZ001 (the refused naive time)


def test_the_blind_index_is_hmac_sha256_of_the_normalised_number_under_its_own_key():
    import base64
    import hashlib
    import hmac

    key = Fernet.generate_key()
    index = BlindIndex(key)
    expected = hmac.new(base64.urlsafe_b64decode(key), b"50012019800101002X", hashlib.sha256).hexdigest()
    assert index.digest("50012019800101002X") == index.digest(" 500120 19800101002x") == expected
    assert BlindIndex(Fernet.generate_key()).digest("50012019800101002X") != expected  # keyed
    assert index.digests([None, "50012019800101002X"]) == [None, expected]


def test_a_household_is_found_by_its_id_number_and_a_second_household_for_the_person_is_refused(store):
    store.upsert_features("household", _households(), user="a")
    with store.engine.connect() as conn:
        digests = dict(conn.execute(sa.text("SELECT id, id_number_index FROM features")).all())
    digest = store.blind_index.digest
    assert digests == {"HH-1": digest(ID_NUMBER), "HH-2": digest("50012019800101002X")}
    assert store.households_with_id_numbers([ID_NUMBER, "50012019800101002x", "110101199003070014"]) == {
        ID_NUMBER: "HH-1",
        "50012019800101002x": "HH-2",
    }
    other = _households().iloc[[0]].assign(id="HH-9")  # HH-1's person under a new household id
    with pytest.raises(StaleVersionError, match="Another stored household already has one of these 身份证号") as error:
        store.upsert_features("household", other, user="b")
    assert ID_NUMBER not in str(error.value)
    assert store.count("household") == 2 and store.history("household", "HH-9") == []
    moved = _households().assign(id_number=["50012019800101002X", ID_NUMBER])  # the two swap: also refused
    with pytest.raises(StaleVersionError):
        store.upsert_features("household", moved, user="b")
    assert store.households_with_id_numbers([ID_NUMBER]) == {ID_NUMBER: "HH-1"}


def test_many_id_numbers_are_matched_against_all_stored_households_in_one_query(store):
    """Over `MAX_IN_IDS` numbers the store reads every household's digest once; the answer is the same."""
    store.upsert_features("household", _households(), user="a")
    others = [f"1101011990030{i:05d}" for i in range(600)]  # nobody's: 600 > 500 numbers in all
    numbers = [*others[:300], ID_NUMBER, *others[300:], "50012019800101002x"]
    statements = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    assert store.households_with_id_numbers(numbers) == {ID_NUMBER: "HH-1", "50012019800101002x": "HH-2"}
    assert len(statements) == 1
    assert store.households_with_id_numbers(others) == {}


def test_a_store_without_a_blind_index_key_refuses_households(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'noindex.sqlite'}", cipher=FieldCipher(Fernet.generate_key()))
    with pytest.raises(EncryptionKeyError, match="no blind-index key"):
        s.upsert_features("household", _households(), user="a")
    assert s.count() == 0
    s.close()


def _awkward_rows() -> pd.DataFrame:
    """Households whose attribute and personal cells exercise every JSON path (typed as validation types them)."""
    n = 5
    rows = _households().iloc[[0, 1, 0, 1, 0]].reset_index(drop=True)
    rows["id"] = [f"HH-{i}" for i in range(n)]
    rows["id_number"] = [ID_NUMBER, *(f"50012019800101{i:03d}X" for i in range(1, n))]  # one person per row
    rows["name"] = pd.array(['张"三\\', "李\n四", None, "王\u2028五", "é"], dtype="string")
    rows["phone"] = pd.array([None, "13800000000", "023-1234", "13624947846", None], dtype="string")
    rows["needs"] = pd.array(["坡道", None, "a\tb", "</script>", ""], dtype="string")
    rows["disability_category"] = pd.array([1, None, 7, 1, 4], dtype="Int64")
    rows["synthetic"] = pd.array([True, False, None, True, False], dtype="boolean")
    rows["score"] = [0.1, -0.0, float("nan"), 1e20, 0.0]
    rows["mixed"] = pd.Series([1, True, "x", None, 2.5], dtype=object)
    rows["count"] = np.array([3, 0, -2, 10**12, 7], dtype=np.int64)
    return rows


def test_the_column_wise_json_equals_the_json_encoder_row_by_row(store):
    rows = _awkward_rows()
    personal = personal_columns("household", rows.columns)
    batch = Batch.from_frame("household", rows, personal=personal, blind_index=store.blind_index)
    records = to_records("household", rows)
    for i, (record, fields) in enumerate(records):
        assert batch.attributes[i] == dumps(record["attributes"])
        assert batch.personal[i] == encode_fields(fields)
        assert batch.rows[i] == tuple(record[c] for c in VALUE_COLUMNS)
    tokens = store.cipher.encrypt_payloads(batch.personal)  # real tokens: quoted as they are, not JSON-encoded
    for i, text in enumerate(batch.snapshots(list(range(len(rows))), tokens)):
        record = {**records[i][0], "personal": tokens[i]}
        assert json.loads(text) == json.loads(dumps(record))
        assert text == dumps({k: v for k, v in record.items() if k != "attributes"})[:-1] + (
            f',"attributes":{dumps(record["attributes"])}}}'
        )
    assert batch.snapshots([1, 3], tokens[1:4:2])[1].startswith('{"layer":"household","id":"HH-3",')
    stations = _stations(3)  # no personal columns: no token
    batch = Batch.from_frame("rehab_station", stations, personal=[])
    texts = batch.snapshots([0, 1, 2], [None] * 3)
    for (record, _fields), text in zip(to_records("rehab_station", stations), texts, strict=True):
        columns = {k: v for k, v in record.items() if k != "attributes"}
        assert text == dumps({**columns, "personal": None})[:-1] + f',"attributes":{dumps(record["attributes"])}}}'


def test_awkward_values_round_trip_and_reimport_unchanged(store):
    rows = _awkward_rows()
    assert store.upsert_features("household", rows, user="a") == ImportCounts(5, 0, 0)
    assert store.upsert_features("household", rows, user="a") == ImportCounts(0, 0, 5)
    token = store.personal_tokens("household")["HH-0"]
    assert store.decrypt_personal(token) == {
        "name": '张"三\\', "id_number": ID_NUMBER, "certificate_number": ID_NUMBER + "12", "phone": None,
        "address": "璧山区璧城街道文星社区",
    }  # fmt: skip
    row = store.feature("household", "HH-2")
    assert (row["needs"], row["disability_category"], row["synthetic"], row["score"]) == ("a\tb", 7, None, None)
    assert (row["mixed"], row["count"]) == ("x", -2)
    rows.loc[4, "phone"] = "13900000000"  # a personal field only
    assert store.upsert_features("household", rows, user="b") == ImportCounts(0, 1, 4)
    history = store.history("household", "HH-4")
    assert [(h["action"], h["version"]) for h in history] == [("insert", 1), ("update", 2)]
    assert history[1]["before"]["personal"] == history[0]["after"]["personal"] != history[1]["after"]["personal"]


def test_rows_stored_in_another_json_spelling_still_compare_equal(store):
    store.upsert_features("rehab_station", _stations(2), user="a")
    with store.engine.begin() as conn:  # as SQLAlchemy's default serialiser writes it: ASCII escapes, spaces
        conn.execute(
            sa.text("UPDATE features SET attributes = :a WHERE id = 'RS-01'"),
            {"a": '{"beds": 3, "note": "\\u0078"}'},
        )
    assert store.upsert_features("rehab_station", _stations(2), user="a") == ImportCounts(0, 0, 2)


def test_encrypt_payloads_gives_each_row_its_own_nonce():
    cipher = FieldCipher(FieldCipher.generate_key())
    payload = encode_fields({"name": "孙敏"})
    tokens = cipher.encrypt_payloads([payload] * 3)
    assert len(set(tokens)) == 3 and {t[:3] for t in tokens} == {"g1:"}
    assert [cipher.decrypt(t) for t in tokens] == [{"name": "孙敏"}] * 3
    assert cipher.decrypt_payload(tokens[0]) == payload
    assert cipher.encrypt_payloads([]) == []


def test_encrypt_payloads_writes_the_nonce_and_ciphertext_in_url_safe_base64(monkeypatch):
    import base64
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = FieldCipher.generate_key()
    payloads = [encode_fields({"name": f"孙敏{i}", "phone": None}) for i in range(40)]  # some base64 has - and _
    nonces = os.urandom(12 * len(payloads))
    monkeypatch.setattr(os, "urandom", lambda n: nonces[:n])
    aead = AESGCM(base64.urlsafe_b64decode(key))
    expected = []
    for i, payload in enumerate(payloads):
        nonce = nonces[12 * i : 12 * i + 12]
        expected.append("g1:" + base64.urlsafe_b64encode(nonce + aead.encrypt(nonce, payload, None)).decode())
    assert FieldCipher(key).encrypt_payloads(payloads) == expected
    assert any("-" in t or "_" in t for t in expected)


def test_an_import_in_many_chunks_writes_every_row_once_in_file_order(store, monkeypatch):
    import layers.store.api as store_api

    monkeypatch.setattr(store_api, "CHUNK_ROWS", 2)  # 7 rows -> 4 chunks
    assert store.upsert_features("rehab_station", _stations(5), user="a") == ImportCounts(5, 0, 0)
    changed = _stations(7)  # RS-05, RS-06 new; RS-01 and RS-04 changed, in different chunks
    changed.loc[[1, 4], "status"] = "closed"
    assert store.upsert_features("rehab_station", changed, user="b") == ImportCounts(2, 2, 3)
    gdf = store.features("rehab_station")
    assert list(gdf["id"]) == [f"RS-{i:02d}" for i in range(7)]
    assert list(gdf["status"]) == ["open", "closed", "open", "open", "closed", "open", "open"]
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT feature_id, action FROM history ORDER BY seq")).all()
    assert [tuple(r) for r in rows] == [
        *[(f"RS-{i:02d}", "insert") for i in range(5)],
        ("RS-01", "update"), ("RS-04", "update"), ("RS-05", "insert"), ("RS-06", "insert"),
    ]  # fmt: skip


def test_an_error_while_writing_a_later_chunk_rolls_back_every_chunk(store, monkeypatch):
    import layers.store.api as store_api
    from layers.store.bulk import BulkWriter

    store.upsert_features("rehab_station", _stations(2), user="a")
    before = (store.count(), store.data_version(), store.feature("rehab_station", "RS-01"))
    monkeypatch.setattr(store_api, "CHUNK_ROWS", 2)
    calls = []
    real_insert_history = BulkWriter.insert_history

    def failing_insert_history(self, layer, columns, *, user, now):
        calls.append(list(columns[0]))  # the feature ids
        if len(calls) == 3:  # chunks 1 and 2 are already written in this transaction
            raise RuntimeError("disk full")
        return real_insert_history(self, layer, columns, user=user, now=now)

    monkeypatch.setattr(BulkWriter, "insert_history", failing_insert_history)
    changed = _stations(8)
    changed.loc[1, "status"] = "closed"
    with pytest.raises(RuntimeError, match="disk full"):
        store.upsert_features("rehab_station", changed, user="b")
    assert calls[:3] == [["RS-01"], ["RS-02", "RS-03"], ["RS-04", "RS-05"]]
    assert (store.count(), store.data_version(), store.feature("rehab_station", "RS-01")) == before
    assert store.history("rehab_station", "RS-02") == []
    monkeypatch.setattr(BulkWriter, "insert_history", real_insert_history)
    assert store.upsert_features("rehab_station", changed, user="b") == ImportCounts(6, 1, 1)  # store still usable


def test_json_texts_of_repeated_text_and_of_floats_equal_the_json_encoder():
    from layers.store.bulk import json_list

    columns = [
        ["500120001", None, "500120001", '有"引号\\', "500120001", "500120001", "500120001", "500120001"],
        [106.2294, -0.0, 29.5979, 1e-7, 1e300],
        [106.2294, 29.5979, 1e-7, 1e16, 2.5e-5, 123456789.123] * 4,  # few distinct floats: each encoded once
        [-0.0, 0.0, 1.5, -0.0, 1.5, 1.5, 0.0, 1.5, 1.5],  # few distinct, but 0.0 and -0.0 are one key
        [-0.0] * 8,
        [106.5, float("nan")],  # not all finite: value by value ("NaN")
        [True, 1, None, "x"],  # True and 1 stay apart
        [f'街{i}号"' for i in range(9)],  # distinct text: value by value
        [*(f"村{i}" for i in range(7)), None],  # distinct text with a missing value
        [],
    ]
    for values in columns:
        assert json_list(values) == [dumps(v) for v in values]
    assert json_list(columns[0])[3] == '"有\\"引号\\\\"'


# --- migration 0005: existing households ------------------------------------------------------------


def _migrate(url: str, revision: str) -> None:
    """Bring the database at ``url`` to ``revision`` (up from nothing, or down from the newest)."""
    from alembic import command
    from alembic.config import Config
    from alembic.migration import MigrationContext

    from layers.store import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        current = MigrationContext.configure(conn).get_current_revision()
        (command.upgrade if current is None else command.downgrade)(config, revision)
    engine.dispose()


def test_migration_0005_encrypts_stored_addresses_and_indexes_id_numbers(database_url, owner_url):
    cipher, index = FieldCipher(Fernet.generate_key()), BlindIndex(Fernet.generate_key())
    _migrate(owner_url, "0004")  # the revision before 0005
    person = {"name": "孙敏", "id_number": ID_NUMBER, "certificate_number": ID_NUMBER + "12", "phone": None}
    at = pd.Timestamp("2026-11-23 09:00", tz="UTC").to_pydatetime()
    stored = {"layer": "household", "id": "HH-1", "town_code": "500120001", "village_code": "500120001001",
              "name": None, "address": "璧山区璧城街道文星社区石家庄街268号", "lon": 106.2, "lat": 29.6,
              "source_datum": "wgs84", "status": "surveyed", "attributes": {"needs": "坡道"},
              "personal": cipher.encrypt(person), "version": 1, "created_by": "a", "created_at": at,
              "updated_by": "a", "updated_at": at}  # fmt: skip
    station = {**stored, "layer": "rehab_station", "id": "RS-1", "name": "康复站", "address": "璧山区璧城街道1号",
               "personal": None}  # fmt: skip
    twin = {**stored, "id": "HH-2"}  # the same person twice
    owner = sa.create_engine(owner_url)
    with owner.begin() as conn:
        tables = sa.MetaData()
        features = sa.Table("features", tables, autoload_with=conn)
        history = sa.Table("history", tables, autoload_with=conn)
        conn.execute(features.insert(), [stored, station, twin])
        snapshot = {k: v.isoformat() if k.endswith("_at") else v for k, v in stored.items()}
        entry = {"at": at, "actor": "a", "layer": "household", "feature_id": "HH-1", "action": "insert",
                 "version": 1, "before": None, "after": snapshot}  # fmt: skip
        conn.execute(history.insert(), [entry])

    def upgrade(**keys) -> Store:
        return Store(database_url, migration_url=None if owner_url == database_url else owner_url, **keys)

    with pytest.raises(EncryptionKeyError, match="Migration 0005 must encrypt the addresses of 2 stored households"):
        upgrade(cipher=cipher)
    with pytest.raises(ValueError, match="Households 'HH-1' and 'HH-2' have the same 身份证号") as error:
        upgrade(cipher=cipher, blind_index=index)
    assert ID_NUMBER not in str(error.value)
    with owner.begin() as conn:
        conn.execute(sa.text("DELETE FROM features WHERE id = 'HH-2'"))
    store = upgrade(cipher=cipher, blind_index=index)
    owner.dispose()
    with store.engine.connect() as conn:
        raw = [tuple(r) for t in ("features", "history") for r in conn.execute(sa.text(f"SELECT * FROM {t}"))]
        digests = dict(conn.execute(sa.text("SELECT id, id_number_index FROM features")).all())
    assert "石家庄街" not in str(raw) and "璧山区璧城街道1号" in str(raw)  # households' only; stations stay plain
    assert digests == {"HH-1": index.digest(ID_NUMBER), "RS-1": None}
    assert store.decrypt_personal(store.personal_tokens("household")["HH-1"]) == {
        **person, "address": "璧山区璧城街道文星社区石家庄街268号"
    }
    (entry,) = store.history("household", "HH-1")
    assert entry["after"]["address"] is None
    assert store.decrypt_personal(entry["after"]["personal"])["address"] == "璧山区璧城街道文星社区石家庄街268号"
    assert store.households_with_id_numbers([ID_NUMBER]) == {ID_NUMBER: "HH-1"}
    same = _households().iloc[[0]].drop(columns=["disability_category", "disability_grade"])
    same = same.assign(address=stored["address"], needs="坡道", lon=106.2, lat=29.6, phone=None)
    assert store.upsert_features("household", same, user="a") == ImportCounts(0, 0, 1)  # the migrated row is equal
    store.close()


def test_bulk_rows_are_zipped_with_their_constants_and_columns_must_match_in_length():
    rows = _zip_rows([["a", "b"], itertools.repeat("insert"), [1, 2]], head=("now",), tail=("x", "y"))
    assert rows == [("now", "a", "insert", 1, "x", "y"), ("now", "b", "insert", 2, "x", "y")]
    with pytest.raises(ValueError, match=r"columns of different lengths \[1, 2\]"):
        _zip_rows([["a", "b"], [1]])
