"""Import path end to end on 10,000-row ledgers: atomicity, idempotence, races, encryption, dry run.

Every validation rule and its message is tested in test_validate.py and the stale-version refusal of
single edits in test_store.py; here the whole path (file → read_table → validate_layer → Store) runs
against SQLite and PostgreSQL (`database_url`).
"""

from __future__ import annotations

import gc
import hashlib
import json
import multiprocessing as mp
import queue
import re
import threading
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy import event

from layers.crypto import BlindIndex, FieldCipher
from layers.district import load_district
from layers.errors import StaleVersionError
from layers.importer import import_layer
from layers.store import ImportCounts, Store
from synthetic.layers import household_ledger

N_ROWS = 10_000
LAYER = "household"
RACE_TIMEOUT_S = 120


def _csv(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False, encoding="utf-8-sig")
    return path


@pytest.fixture(scope="module")
def district():
    return load_district()


@pytest.fixture(scope="module")
def ledger() -> pd.DataFrame:
    return household_ledger(N_ROWS)


@pytest.fixture(scope="module")
def ledger_csv(ledger, tmp_path_factory) -> Path:
    return _csv(ledger, tmp_path_factory.mktemp("ledger") / "household.csv")


@pytest.fixture
def key() -> bytes:
    return Fernet.generate_key()


@pytest.fixture
def index_key() -> bytes:
    return Fernet.generate_key()


@pytest.fixture
def store(database_url, key, index_key):
    s = Store(database_url, cipher=FieldCipher(key), blind_index=BlindIndex(index_key))
    yield s
    s.close()


def snapshot(store: Store) -> object:
    """Return what must not change: SQLite's files byte for byte, or PostgreSQL's tables and sequences."""
    if store.engine.dialect.name == "sqlite":
        store.count()  # a first read after a commit records its WAL position in -shm: let it happen before hashing
        database = Path(store.engine.url.database)
        return {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(database.parent.glob(database.name + "*"))
        }
    with store.engine.connect() as conn:
        tables = conn.execute(
            sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
        ).scalars()
        dump = {
            t: [tuple(r) for r in conn.execute(sa.text(f'SELECT * FROM "{t}" AS r ORDER BY r::text'))] for t in tables
        }
        dump["sequences"] = conn.execute(sa.text("SELECT sequencename, last_value FROM pg_sequences")).all()
    return dump


def _history_rows(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM history")).scalar_one()


def test_the_ledger_has_10000_distinct_valid_people(ledger):
    assert len(ledger) == N_ROWS
    assert ledger["id"].is_unique and ledger["id_number"].is_unique and ledger["phone"].is_unique
    # row 1196 = demo row 0 (region 500227), born 1940-01-02, sequence 196; check: 199 % 11 = 1 → "0"
    assert ledger.loc[1196, "id_number"] == "500227194001021960"
    assert (ledger["certificate_number"].str[:18] == ledger["id_number"]).all()


def test_one_bad_row_among_10000_leaves_the_store_unchanged(store, district, ledger, ledger_csv, tmp_path):
    assert gc.isenabled()
    assert import_layer(store, LAYER, ledger_csv, district=district, user="a").counts == ImportCounts(N_ROWS, 0, 0)
    assert gc.isenabled()  # paused during the import only
    changed = ledger.assign(needs="坡道；扶手")  # every row would be an update ...
    good = changed.loc[4999, "id_number"]
    changed.loc[4999, "id_number"] = good[:17] + ("0" if good[17] != "0" else "1")  # ... but one check digit is wrong
    before = snapshot(store)
    outcome = import_layer(store, LAYER, _csv(changed, tmp_path / "bad.csv"), district=district, user="b")
    assert not outcome.ok and outcome.counts is None
    assert [(p.row, p.id, p.column, p.rule) for p in outcome.validation.problems] == [
        (5001, "HH-004999", "id_number", "id_number")
    ]
    assert outcome.validation.n_rows == N_ROWS and len(outcome.validation.frame) == N_ROWS - 1
    assert snapshot(store) == before and gc.isenabled()
    assert store.feature(LAYER, "HH-000000")["needs"] == ledger.loc[0, "needs"]
    assert _history_rows(store) == N_ROWS


def test_reimporting_the_same_10000_rows_changes_nothing(store, district, ledger_csv):
    assert import_layer(store, LAYER, ledger_csv, district=district, user="a").counts == ImportCounts(N_ROWS, 0, 0)
    before = snapshot(store)
    outcome = import_layer(store, LAYER, ledger_csv, district=district, user="b")
    assert outcome.counts == ImportCounts(0, 0, N_ROWS)
    assert snapshot(store) == before
    assert set(store.features(LAYER)["version"]) == {1} and _history_rows(store) == N_ROWS


def test_an_edited_row_updates_alone_with_one_history_row(store, district, ledger, ledger_csv, tmp_path):
    import_layer(store, LAYER, ledger_csv, district=district, user="a")
    edited = ledger.copy()
    edited.loc[7, "phone"] = "13900000007"  # a personal field only: found by decrypting the stored token
    outcome = import_layer(store, LAYER, _csv(edited, tmp_path / "edited.csv"), district=district, user="b")
    assert outcome.counts == ImportCounts(0, 1, N_ROWS - 1)
    history = store.history(LAYER, "HH-000007")
    assert [(h["action"], h["version"], h["actor"]) for h in history] == [("insert", 1, "a"), ("update", 2, "b")]
    token = store.personal_tokens(LAYER)["HH-000007"]
    assert store.decrypt_personal(token)["phone"] == "13900000007"
    assert _history_rows(store) == N_ROWS + 1


def test_a_dry_run_writes_nothing(store, district, ledger, ledger_csv, tmp_path):
    first = _csv(ledger.iloc[:100], tmp_path / "first.csv")
    assert import_layer(store, LAYER, first, district=district, user="a").counts == ImportCounts(100, 0, 0)
    ids = list(store.statuses(LAYER))
    before = store.records(LAYER, ids)
    outcome = import_layer(store, LAYER, ledger_csv, district=district, user="b", dry_run=True)
    assert outcome.ok and outcome.counts is None
    assert (len(outcome.validation.new_ids), len(outcome.validation.updated_ids)) == (N_ROWS - 100, 100)
    assert store.records(LAYER, ids) == before
    assert store.count(LAYER) == 100 and _history_rows(store) == 100
    # the one thing written: the access-log row of the 100 stored rows its diff decrypted
    assert [(r["actor"], r["reason"]) for r in store.access_log()] == [
        ("b", f"bulk read of 100 rows: dry run of import of {Path(ledger_csv).name} into {LAYER}")
    ]


def _plain_texts(raw: bytes) -> tuple[set[str], set[bytes]]:
    """Return the distinct runs of Chinese characters and of digits (11 or more, ``X`` allowed) in ``raw``.

    Chinese text is found as UTF-8 and as JSON escapes (JSON columns hold ``\\u5b59`` rather than 孙).
    """
    chinese = {r.decode("utf-8") for r in re.findall(rb"(?:[\xe4-\xe9][\x80-\xbf]{2})+", raw)}
    chinese |= {json.loads(b'"' + r + b'"') for r in re.findall(rb"(?:\\u[0-9a-f]{4})+", raw)}
    return chinese, set(re.findall(rb"[0-9X]{11,}", raw))


def test_10000_imported_households_keep_no_plain_name_or_number_in_the_database(store, district, ledger, ledger_csv):
    import_layer(store, LAYER, ledger_csv, district=district, user="a")
    if store.engine.dialect.name == "sqlite":
        database = Path(store.engine.url.database)
        raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    else:  # every column of every row as PostgreSQL prints it
        with store.engine.connect() as conn:
            rows = [r for t in ("features", "history") for r in conn.execute(sa.text(f"SELECT t::text FROM {t} t"))]
        raw = "\n".join(r[0] for r in rows).encode("utf-8")
    chinese, digits = _plain_texts(raw)
    street = re.match(r"\D+", ledger.loc[0, "address"]).group()  # 璧山区璧城街道文星社区石家庄街 (then 268号)
    assert street not in chinese  # addresses are encrypted too
    assert ledger.loc[0, "needs"].split("；")[0] in chinese  # the plain columns are there to be found (厨房改造)
    plain_columns = "".join(ledger["address"]) + "".join(ledger["needs"])
    names = [n for n in ledger["name"].unique() if n not in plain_columns]  # a name may be part of a street's name
    assert len(names) > 100
    assert [n for n in names if any(n in text for text in chinese)] == []
    numbers = {s.encode("ascii") for s in (*ledger["id_number"], *ledger["certificate_number"], *ledger["phone"])}
    assert len(numbers) == 3 * N_ROWS
    windows = {run[i : i + k] for run in digits for k in (11, 18, 20) for i in range(len(run) - k + 1)}
    assert numbers & windows == set()
    tokens = store.personal_tokens(LAYER)
    assert len(set(tokens.values())) == N_ROWS  # one token per row
    assert store.decrypt_personal(tokens["HH-009999"])["id_number"] == ledger.loc[9999, "id_number"]


# --- two writers at once -------------------------------------------------------------------------


def _hold_before_update(store: Store, barrier) -> None:
    """Make the store's import wait at `barrier` just before its UPDATE, after it read the rows."""

    def wait(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001, ARG001
        if statement.lstrip().upper().startswith("UPDATE FEATURES"):
            barrier.wait(timeout=RACE_TIMEOUT_S)

    event.listen(store.engine, "before_cursor_execute", wait)


def _import_racing(store: Store, path: str, user: str, barrier, results) -> None:
    try:
        outcome = import_layer(store, LAYER, path, district=load_district(), user=user)
        results.put((user, "won", outcome.counts))
    except StaleVersionError as exc:
        results.put((user, "conflict", str(exc)))


def _import_in_process(url: str, keys: tuple[bytes, bytes], path: str, user: str, barrier, results) -> None:
    store = Store(url, cipher=FieldCipher(keys[0]), blind_index=BlindIndex(keys[1]))
    _hold_before_update(store, barrier)
    try:
        _import_racing(store, path, user, barrier, results)
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_two_concurrent_imports_of_the_same_row_exactly_one_wins(
    kind, store, key, index_key, district, ledger, tmp_path
):
    base = ledger.iloc[:50]
    import_layer(store, LAYER, _csv(base, tmp_path / "base.csv"), district=district, user="a")
    before_rows = store.features(LAYER).drop(columns="geometry")
    paths = {}
    for user, needs in (("u1", "坡道"), ("u2", "扶手")):
        edited = base.copy()
        edited.loc[3, "needs"] = needs
        paths[user] = str(_csv(edited, tmp_path / f"{user}.csv"))
    if kind == "threads":
        barrier, results = threading.Barrier(2), queue.Queue()
        _hold_before_update(store, barrier)
        workers = [threading.Thread(target=_import_racing, args=(store, paths[u], u, barrier, results)) for u in paths]
    else:
        ctx = mp.get_context("spawn")
        barrier, results = ctx.Barrier(2), ctx.Queue()
        workers = [
            ctx.Process(target=_import_in_process, args=(store.url, (key, index_key), paths[u], u, barrier, results))
            for u in paths
        ]
    for w in workers:
        w.start()
    outcomes = sorted(results.get(timeout=RACE_TIMEOUT_S) for _ in workers)
    for w in workers:
        w.join(timeout=RACE_TIMEOUT_S)
    if kind == "processes":
        assert [w.exitcode for w in workers] == [0, 0]

    assert sorted(o[1] for o in outcomes) == ["conflict", "won"]
    winner = next(o for o in outcomes if o[1] == "won")
    loser = next(o for o in outcomes if o[1] == "conflict")
    assert winner[2] == ImportCounts(0, 1, 49)
    assert loser[2] == "Another user changed rows of `household` during this import; nothing was written. Retry."
    row = store.feature(LAYER, "HH-000003")
    assert (row["needs"], row["version"], row["updated_by"]) == ({"u1": "坡道", "u2": "扶手"}[winner[0]], 2, winner[0])
    history = store.history(LAYER, "HH-000003")
    assert [(h["action"], h["actor"]) for h in history] == [("insert", "a"), ("update", winner[0])]
    after_rows = store.features(LAYER).drop(columns="geometry")
    others = after_rows["id"] != "HH-000003"
    pd.testing.assert_frame_equal(after_rows[others], before_rows[before_rows["id"] != "HH-000003"])
    assert _history_rows(store) == 51


def test_nul_bytes_and_over_long_ids_are_refused_before_the_store_sees_them(store, district, ledger, tmp_path):
    """PostgreSQL refuses NUL and ids over VARCHAR(64) with a DataError quoting other rows: never get there."""
    rows = ledger.head(20).copy()
    rows.loc[2, "id"] = "HH-" + "9" * 62  # 65 characters
    rows.loc[5, "address"] = "璧山区东林路\x001号"
    before = snapshot(store)
    outcome = import_layer(store, LAYER, _csv(rows, tmp_path / "bad.csv"), district=district, user="a")
    assert [(p.row, p.column, p.rule) for p in outcome.validation.problems] == [
        (4, "id", "too_long"),
        (7, "address", "control_character"),
    ]
    report = outcome.validation.report()
    assert rows.loc[2, "id"] not in report and "\x00" not in report
    assert not any(address in report for address in rows["address"].drop(5))  # no other row's data is echoed
    assert outcome.counts is None and snapshot(store) == before


def test_a_filled_down_id_costs_memory_linear_in_the_rows(store, district, ledger, tmp_path):
    """10,000 rows with one id (an Excel fill-down slip): the old report listed every row on every line (4.5 GB)."""
    path = _csv(ledger.assign(id="h1"), tmp_path / "filled.csv")
    tracemalloc.start()
    try:
        outcome = import_layer(store, LAYER, path, district=district, user="a")
        report = outcome.validation.report()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(outcome.validation.problems) == N_ROWS and outcome.counts is None
    fix = "ids must be unique in a file; 'h1' appears on 10,000 rows: 2, 3, 4, 5, 6 …"
    assert outcome.validation.problems[0].fix == fix
    assert len(report) < 250 * N_ROWS
    assert peak < 10 * path.stat().st_size, (peak, path.stat().st_size)  # ~18 MB for a 2.1 MB CSV


# --- one household per person ---------------------------------------------------------------------


def test_a_new_household_id_with_a_stored_persons_id_number_is_refused_naming_the_row(
    store, district, ledger, tmp_path
):
    first = ledger.iloc[:3]
    assert import_layer(store, LAYER, _csv(first, tmp_path / "a.csv"), district=district, user="a").counts == (
        ImportCounts(3, 0, 0)
    )
    before = snapshot(store)
    second = ledger.iloc[3:6].reset_index(drop=True)
    second.loc[1, "id_number"] = ledger.loc[0, "id_number"].lower()  # HH-000000's person, lower-case x or not
    for column in ("certificate_number", "disability_category", "disability_grade"):  # consistent with the number
        second.loc[1, column] = ledger.loc[0, column]
    outcome = import_layer(store, LAYER, _csv(second, tmp_path / "b.csv"), district=district, user="b")
    assert not outcome.ok and outcome.counts is None
    (problem,) = outcome.validation.problems
    assert (problem.row, problem.id, problem.column, problem.value, problem.rule) == (
        3, "HH-000004", "id_number", None, "duplicate_person"
    )  # fmt: skip
    assert "stored household 'HH-000000'" in problem.fix
    report = outcome.validation.report()
    assert "row 3, id 'HH-000004', column `id_number`" in report
    for personal in (ledger.loc[0, "id_number"], ledger.loc[0, "id_number"][:6], ledger.loc[0, "name"]):
        assert personal not in report
    assert snapshot(store) == before
    dry = import_layer(store, LAYER, _csv(second, tmp_path / "b.csv"), district=district, user="b", dry_run=True)
    assert [p.rule for p in dry.validation.problems] == ["duplicate_person"]
    # the same person under their own household id is an update, not a second household
    again = ledger.iloc[:3].copy()
    again.loc[0, "needs"] = "扶手"
    counts = import_layer(store, LAYER, _csv(again, tmp_path / "c.csv"), district=district, user="c").counts
    assert counts == ImportCounts(0, 1, 2)


def test_an_import_limited_to_towns_refuses_rows_of_other_towns_and_stored_rows_of_them(store, district, tmp_path):
    """``towns`` (a caseworker's): a row of another town, or one updating a row stored in another town, is refused."""
    rows = pd.read_csv(district.demo_dir / "household.csv", dtype=str).set_index("id", drop=False)
    a, b = rows.loc[["HH-00001", "HH-00002"]], rows.loc[["HH-00119"]]  # towns 500120001 and 500120002
    assert set(a["town_code"]) == {"500120001"} and set(b["town_code"]) == {"500120002"}
    mixed = _csv(pd.concat([a, b]), tmp_path / "mixed.csv")  # file rows 2, 3 (town A), 4 (town B)
    outcome = import_layer(store, LAYER, mixed, district=district, user="cw-a", towns=["500120001"])
    assert [(p.row, p.id, p.column, p.value, p.rule) for p in outcome.validation.problems] == [
        (4, "HH-00119", "town_code", "500120002", "town_not_allowed")
    ]
    assert outcome.counts is None and store.statuses(LAYER) == {}
    everyone = import_layer(store, LAYER, mixed, district=district, user="admin", towns=None)
    assert everyone.counts == ImportCounts(3, 0, 0)
    moved = b.copy()  # a correction that moves HH-00119 into town A: not cw-a's to write, its stored town is B
    moved["town_code"], moved["village_code"] = "500120001", a["village_code"].iloc[0]
    moved["lon"], moved["lat"] = a["lon"].iloc[0], a["lat"].iloc[0]
    moved["更正"] = "是"
    outcome = import_layer(store, LAYER, _csv(moved, tmp_path / "moved.csv"), district=district, user="cw-a",
                           towns=["500120001"])  # fmt: skip
    assert [(p.row, p.id, p.value, p.rule) for p in outcome.validation.problems] == [
        (2, "HH-00119", "500120002", "town_not_allowed")
    ]
    assert store.records(LAYER, ["HH-00119"])["HH-00119"]["town_code"] == "500120002"
