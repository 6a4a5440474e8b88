"""The Store API: keep the point layers in a relational database through SQLAlchemy (SQLite by default).

Every change is one transaction that also appends a history row; updates carry the version they
read (optimistic locking); households' personal fields are encrypted at rest and masked on read.
The schema is created and migrated by Alembic (``layers/migrations``). A new query or write is a
method of `Store` here; the rows it reads become records through `layers.store.records`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event

from layers import schema
from layers.errors import DistrictMismatchError, EncryptionKeyError, NotFoundError, StaleVersionError, WorkflowError
from layers.privacy import BULK_READ_ID
from layers.store.bulk import JSON_NULL, MAX_IN_IDS, Batch, BulkWriter, dumps, pick
from layers.store.database import (
    bulk_page_cache,
    sqlite_app_connection,
    sqlite_pragmas,
    upgrade_schema,
    warn_if_app_owns_the_log,
)
from layers.store.probes import VersionProbes
from layers.store.records import (
    feature_frame,
    feature_record,
    history_row,
    jsonable,
    loads,
    native_values,
    personal_columns,
    to_records,
)
from layers.store.tables import (
    ACCESS_CHANNELS,
    HIDDEN_COLUMNS,
    META_COLUMNS,
    N_ROW_VALUES,
    VALUE_COLUMNS,
    access_log_table,
    features_table,
    history_table,
    store_district_table,
    visits_table,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from layers.crypto import BlindIndex, FieldCipher

logger = logging.getLogger(__name__)


#: `AccessLogQuery.kind`: full views of one record, bulk reads (``feature_id`` ``*``), or both.
ACCESS_KINDS = ("full", "bulk", "all")


@dataclass(frozen=True)
class AccessLogQuery:
    """Which access-log rows to read (`Store.access_log`, `Store.count_access_log`); every filter is optional.

    Parameters
    ----------
    actors
        Only rows of these user names (exact); None: every user.
    towns
        Only views of households now in these towns (9-digit codes); bulk reads have no town and
        are left out by this filter. None: every town.
    since, until
        Only rows with ``since <= at < until`` (time-zone aware; converted to UTC); None: open.
    kind
        ``"full"`` (one household's full record), ``"bulk"`` (a list read) or ``"all"`` (`ACCESS_KINDS`).

    Raises
    ------
    ValueError
        If ``kind`` is not one of `ACCESS_KINDS`, or ``since`` or ``until`` has no time zone.
    """

    actors: tuple[str, ...] | None = None
    towns: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    kind: str = "all"

    def __post_init__(self) -> None:
        if self.kind not in ACCESS_KINDS:
            msg = f"`kind` must be one of {list(ACCESS_KINDS)!r}; got {self.kind!r}."
            raise ValueError(msg)
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                msg = f"`{name}` must carry a time zone (e.g. Asia/Shanghai); got {value!r}."
                raise ValueError(msg)


@dataclass(frozen=True)
class ImportCounts:
    """How many rows an import inserted, updated and left unchanged."""

    inserted: int
    updated: int
    unchanged: int


class Store:
    """A database of point layers; coordinates are WGS-84 at rest.

    Parameters
    ----------
    url
        SQLAlchemy URL, e.g. ``sqlite:////abs/path/accessplan.sqlite`` or ``postgresql+psycopg://…``.
    cipher
        Encrypts households' personal fields; required to write or read households.
    blind_index
        Digests households' ID numbers (`layers.crypto.BlindIndex`, a key of its own); required to
        write households.
    migration_url
        URL of the role that owns the tables, used only to run the migrations (PostgreSQL: see
        `grant_app_role`); None runs them as ``url``. The app's own connections (``url``) may only
        append to and read the history and access log: on PostgreSQL by the grants, on SQLite by an
        authorizer on every connection that refuses changing, dropping or altering those tables and
        their triggers (the BEFORE triggers refuse UPDATE, DELETE and REPLACE besides).
    """

    def __init__(
        self,
        url: str,
        *,
        cipher: FieldCipher | None = None,
        blind_index: BlindIndex | None = None,
        migration_url: str | None = None,
    ) -> None:
        self.url = url
        self.cipher = cipher
        self.blind_index = blind_index
        self.engine = sa.create_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", sqlite_app_connection)
        owner = sa.create_engine(migration_url or url, poolclass=sa.pool.NullPool)
        if owner.dialect.name == "sqlite":
            event.listen(owner, "connect", sqlite_pragmas)
        try:
            app_role = self.engine.url.username if migration_url else None
            upgrade_schema(owner, cipher=cipher, blind_index=blind_index, app_role=app_role)
        finally:
            owner.dispose()
        if self.engine.dialect.name == "postgresql":
            warn_if_app_owns_the_log(self.engine)
        self._probes = VersionProbes(url)

    def close(self) -> None:
        """Release the database connections."""
        self._probes.close()
        self.engine.dispose()

    # --- the district ---------------------------------------------------------------------------

    def district(self) -> tuple[str, str] | None:
        """Return the ``(code, name)`` of the district this store was made for, None before the first bind."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(store_district_table.c.code, store_district_table.c.name)).first()
        return None if row is None else (row[0], row[1])

    def bind_district(self, code: str, name: str) -> None:
        """Record ``code``/``name`` as this store's district, or check that it is the recorded one.

        Raises
        ------
        DistrictMismatchError
            If the store was made for another district (its data and analyses belong to that one).
        """
        recorded = self.district()
        if recorded is None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(sa.insert(store_district_table).values(
                        slot=1, code=code, name=name, recorded_at=datetime.now(UTC)))  # fmt: skip
                logger.info("The store now belongs to district %s (%s)", name, code)
                return
            except sa.exc.IntegrityError:  # another process bound it first: check against that one
                recorded = self.district()
        if recorded is not None and recorded[0] != code:
            stored_code, stored_name = recorded
            msg = (
                f"此数据库属于{stored_name}（{stored_code}），不能存放或分析{name}（{code}）的数据："
                f"请为{name}另设数据库（DATABASE_URL），或选回{stored_name}的区县文件夹。 "
                f"This store belongs to {stored_name} ({stored_code}) and refuses the data and analyses of "
                f"{name} ({code}): give {name} its own database (DATABASE_URL) or choose {stored_name}'s "
                "district folder again."
            )
            raise DistrictMismatchError(msg)

    # --- reading --------------------------------------------------------------------------------

    def count(self, layer: str | None = None) -> int:
        """Return the number of rows in ``layer`` (all layers when None)."""
        query = sa.select(sa.func.count()).select_from(features_table)
        if layer is not None:
            query = query.where(features_table.c.layer == layer)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def data_version(self) -> int:
        """Return a number that changes whenever any row changes (the newest history row's ``seq``).

        Every insert and update appends a history row in the same transaction, so caches of derived
        data (public map rows, API responses) stay valid exactly as long as this number does.
        Asked on every public request, it runs on a connection kept per thread in autocommit mode
        (`VersionProbes`): ~5 µs on SQLite instead of ~300 µs through the pool.
        """
        return self._probes.max_history_seq()

    def features(
        self,
        layer: str,
        *,
        statuses: tuple[str, ...] | None = None,
        towns: tuple[str, ...] | None = None,
    ) -> gpd.GeoDataFrame:
        """Return the rows of ``layer`` as points in EPSG:4326, attributes as columns.

        Personal fields never come out of this method: households have no name here (see
        ``households``).
        """
        query = sa.select(*[c for c in features_table.c if c.name not in HIDDEN_COLUMNS[1:]]).where(
            features_table.c.layer == layer
        )
        if statuses is not None:
            query = query.where(features_table.c.status.in_(statuses))
        if towns is not None:
            query = query.where(features_table.c.town_code.in_(towns))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(features_table.c.id)).mappings().all()
        return feature_frame(rows)

    def feature(self, layer: str, feature_id: str) -> dict[str, Any]:
        """Return one row of ``layer`` (without personal fields).

        Raises
        ------
        NotFoundError
            If ``layer`` has no row ``feature_id``.
        """
        with self.engine.connect() as conn:
            row = _select_row(conn, layer, feature_id)
        return feature_record(row)

    def statuses(self, layer: str) -> dict[str, str]:
        """Return the current status of every row of ``layer``, by id."""
        query = sa.select(features_table.c.id, features_table.c.status).where(features_table.c.layer == layer)
        with self.engine.connect() as conn:
            return dict(conn.execute(query).all())

    def history(self, layer: str, feature_id: str) -> list[dict[str, Any]]:
        """Return the history rows of one feature, oldest first."""
        query = (
            sa.select(history_table)
            .where(history_table.c.layer == layer, history_table.c.feature_id == feature_id)
            .order_by(history_table.c.seq)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings().all()]

    def decrypt_personal(self, token: str) -> dict[str, Any]:
        """Return the personal fields held by ``token`` (callers log the access)."""
        return self._require_cipher().decrypt(token)

    def personal_tokens(self, layer: str, *, towns: tuple[str, ...] | None = None) -> dict[str, str]:
        """Return the encrypted personal token of every row of ``layer`` (households), by id."""
        query = sa.select(features_table.c.id, features_table.c.personal).where(
            features_table.c.layer == layer, features_table.c.personal.is_not(None)
        )
        if towns is not None:
            query = query.where(features_table.c.town_code.in_(towns))
        with self.engine.connect() as conn:
            return dict(conn.execute(query).all())

    def log_access(
        self, layer: str, feature_ids: list[str], *, user: str, reason: str, channel: str, ip: str | None = None
    ) -> None:
        """Append one access-log row per feature whose personal fields ``user`` saw in full.

        ``reason`` is checked by the caller (``layers.privacy.check_reason``); ``channel`` is one of
        `ACCESS_CHANNELS`; ``ip`` is the client's address (None on the command line).

        Raises
        ------
        ValueError
            If ``channel`` is not one of `ACCESS_CHANNELS`.
        """
        if channel not in ACCESS_CHANNELS:
            msg = f"`channel` must be one of {list(ACCESS_CHANNELS)!r}; got {channel!r}."
            raise ValueError(msg)
        now = datetime.now(UTC)
        records = [
            {
                "at": now,
                "actor": user,
                "layer": layer,
                "feature_id": fid,
                "reason": reason,
                "ip": ip,
                "channel": channel,
            }
            for fid in feature_ids
        ]
        if records:
            with self.engine.begin() as conn:
                conn.execute(access_log_table.insert(), records)

    def add_visit(
        self,
        household_id: str,
        *,
        visited_on: date,
        found: str,
        next_step: str,
        user: str,
        corrects: int | None = None,
    ) -> int:
        """Append one row to a household's visit log (append-only: a correction is a new row) and return its ``seq``.

        ``found`` and ``next_step`` are stored encrypted (one token); the household's town is kept
        beside the row so reads can be scoped by town.

        Raises
        ------
        NotFoundError
            If there is no such household, or ``corrects`` is not a visit row of that household.
        """
        row = self.feature(schema.HOUSEHOLD, household_id)
        token = self._require_cipher().encrypt({"found": found, "next_step": next_step})
        with self.engine.begin() as conn:
            if corrects is not None:
                owner = conn.execute(
                    sa.select(visits_table.c.household_id).where(visits_table.c.seq == corrects)
                ).scalar_one_or_none()
                if owner != household_id:
                    msg = f"Visit row {corrects} is not a visit of household {household_id!r}."
                    raise NotFoundError(msg)
            result = conn.execute(
                visits_table.insert().values(
                    at=datetime.now(UTC),
                    actor=user,
                    household_id=household_id,
                    town_code=str(row[schema.TOWN_CODE]),
                    visited_on=visited_on,
                    notes=token,
                    corrects=corrects,
                )
            )
            return int(result.inserted_primary_key[0])

    def visits(self, household_id: str, *, towns: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Return a household's visit-log rows, oldest first, notes decrypted (``found``, ``next_step``).

        With ``towns``, only rows recorded in those towns (a caseworker's scope).
        """
        query = sa.select(visits_table).where(visits_table.c.household_id == household_id)
        if towns is not None:
            query = query.where(visits_table.c.town_code.in_(list(towns)))
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query.order_by(visits_table.c.seq))]
        cipher = self._require_cipher() if rows else None
        for row in rows:
            row.update(cipher.decrypt(row.pop("notes")))
        return rows

    def households_with_id_numbers(self, id_numbers: list[str]) -> dict[str, str]:
        """Return, by ID number, the id of the stored household that has it (numbers nobody has are left out).

        The numbers are digested with the blind index and looked up in its unique index: one indexed
        query for up to `MAX_IN_IDS` numbers; more are matched against the digests of all stored
        households, read in one query (as `BulkWriter.stored_rows` reads a layer: 40 queries of 500
        numbers took 0.03 CPU s for a 20,000-row import). No number is decrypted.
        """
        digests = self._require_blind_index().digests(list(id_numbers))
        number_of = {d: n for d, n in zip(digests, id_numbers, strict=True) if d is not None}
        if not number_of:
            return {}
        column = features_table.c.id_number_index
        if len(number_of) <= MAX_IN_IDS:
            # by the unique digest index alone (with `layer` in the WHERE, SQLite scanned the layer per
            # query: a 100,000-row re-import took 27 s here); only households carry a digest anyway
            query = sa.select(column, features_table.c.id, features_table.c.layer).where(column.in_(list(number_of)))
        else:
            query = sa.select(column, features_table.c.id, features_table.c.layer).where(
                features_table.c.layer == schema.HOUSEHOLD, column.is_not(None)
            )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {number_of[d]: fid for d, fid, layer in rows if layer == schema.HOUSEHOLD and d in number_of}

    def new_household_ids(self, id_numbers: list[str]) -> list[str]:
        """Return an id for each new person: ``H`` and 16 hex digits of the blind index of the ID number.

        The same person always gets the same id (a dry run shows the ids the import writes), and the id
        tells nothing about the number without the blind-index key.
        """
        return [f"H{d[:16]}" for d in self._require_blind_index().digests(list(id_numbers))]

    def household_keys(self, ids: list[str]) -> dict[str, tuple[str | None, str]]:
        """Return, by id, the blind index of a stored household's ID number and its town (unknown ids left out)."""
        table = features_table
        query = sa.select(table.c.id, table.c.id_number_index, table.c.town_code).where(
            table.c.layer == schema.HOUSEHOLD
        )
        if len(ids) <= MAX_IN_IDS:  # one query by id; the whole layer for more
            query = query.where(table.c.id.in_(ids))
        wanted = set(ids)
        with self.engine.connect() as conn:
            return {fid: (digest, town) for fid, digest, town in conn.execute(query).all() if fid in wanted}

    def records(self, layer: str, ids: list[str], *, decrypt: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """Return stored rows by id as flat records WITH their personal fields decrypted (unknown ids left out).

        For the import's merge of blank cells and its field-level diff; callers show personal values
        masked only. ``decrypt`` limits the decryption to those ids (None: all of them). One query
        (`_existing`: by id, or the whole layer for many ids).
        """
        wanted = None if decrypt is None else set(decrypt)
        out: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for fid, row in self._existing(conn, layer, ids).items():
                record = feature_record(row)
                if row["personal"] is not None and (wanted is None or fid in wanted):
                    record.update(self.decrypt_personal(row["personal"]))
                out[fid] = record
        return out

    def access_log(
        self,
        query: AccessLogQuery | None = None,
        *,
        newest_first: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Return the access-log rows that ``query`` selects (all when None), oldest first.

        Reading never changes the log (it is append-only, `APPEND_ONLY_TABLES`). Each row carries
        the stored columns plus ``town_code``: the current town of the household the row names
        (None for a bulk read, `layers.privacy.BULK_READ_ID`, and for a household no longer stored).

        Parameters
        ----------
        query
            Which rows (`AccessLogQuery`); None selects every row.
        newest_first
            Order by ``seq`` descending (the admin's viewer) instead of ascending.
        limit, offset
            One page of the ordered rows: at most ``limit`` rows (None: all) after skipping ``offset``.
        """
        select = _access_log_select(query or AccessLogQuery())
        order = access_log_table.c.seq.desc() if newest_first else access_log_table.c.seq
        select = select.order_by(order).offset(max(0, offset))
        if limit is not None:
            select = select.limit(max(0, limit))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select).mappings().all()]

    def count_access_log(self, query: AccessLogQuery | None = None) -> int:
        """Return how many access-log rows ``query`` selects (all rows when None)."""
        select = _access_log_select(query or AccessLogQuery()).subquery()
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(select)).scalar_one())

    # --- writing --------------------------------------------------------------------------------

    def upsert_features(self, layer: str, rows: pd.DataFrame, *, user: str) -> ImportCounts:
        """Insert new ids and update changed ones in ONE transaction, appending history rows.

        ``rows`` holds validated rows (``layers.validate``): ``schema.COMMON_COLUMNS`` with lon/lat
        already in WGS-84, the ``datum`` column naming the datum they were collected in. The layer's
        personal columns (households' name, ID and certificate numbers, phone) are encrypted; other
        columns become attributes. Rows equal to the stored ones are left unchanged, so re-importing
        a file is idempotent.

        Large imports are the reason for the shape of this code: the rows are converted column by
        column (`Batch`: each distinct value JSON-encoded once, JSON objects joined from the encoded
        columns), every written row gets its own AES-GCM token (`FieldCipher.encrypt_payloads`), and
        features and history are written with the driver's ``executemany``. Stored rows are compared
        by their JSON text (parsed only when the texts differ) and decrypted token payload. The rows
        are prepared and written in chunks of `CHUNK_ROWS` (a smaller working set: lower peak memory),
        all in the one transaction: an error in any chunk rolls back every
        chunk. (A writer thread running one chunk's ``executemany`` while the next is prepared was
        slower: sqlite3 takes the GIL back after every row, so the writer stalls behind the preparing
        thread.)
        """
        now = datetime.now(UTC)
        personal = self._personal_columns(layer, rows)
        n = len(rows)
        ids = [str(v) for v in native_values(rows[schema.ID])] if schema.ID in rows.columns else ["None"] * n
        inserted = updated = 0
        with _one_household_per_person(layer), self.engine.begin() as conn, bulk_page_cache(conn):
            stored = BulkWriter(conn).stored_rows(layer, ids)
            for start in range(0, n, CHUNK_ROWS):
                chunk = rows.iloc[start : start + CHUNK_ROWS]
                batch = Batch.from_frame(layer, chunk, personal=personal, blind_index=self.blind_index)
                new, changed = self._classify(batch, stored)
                if not new and not changed:
                    continue
                old_rows: dict[str, Any] = {}
                if changed:
                    old_rows = self._existing(conn, layer, [batch.ids[i] for i in changed])
                    if len(old_rows) != len(changed):
                        raise _changed_during_import(layer)
                self._write_chunk(conn, batch, new, changed, stored, old_rows, user=user, now=now)
                inserted, updated = inserted + len(new), updated + len(changed)
        counts = ImportCounts(inserted, updated, n - inserted - updated)
        logger.info("Imported %d rows into `%s` by %s: %s", n, layer, user, counts)
        return counts

    def _write_chunk(
        self,
        conn: sa.Connection,
        batch: Batch,
        new: list[int],
        changed: list[int],
        stored: dict[str, tuple[Any, ...]],
        old_rows: dict[str, Any],
        *,
        user: str,
        now: datetime,
    ) -> None:
        """Insert the new rows of one chunk, update the changed ones and append their history (file order).

        Raises `StaleVersionError` if another user changed an updated row.
        """
        written = sorted([*new, *changed])  # file order: history seq follows the file
        tokens = self._tokens(batch, written)
        after = batch.snapshots(written, tokens)
        new_ids = pick(batch.ids, new)
        if changed:
            row_of = dict(zip(written, range(len(written)), strict=True))
            fids = pick(batch.ids, written)
            actions, versions, befores = [], [], []  # the history's columns (BulkWriter zips the rows)
            for fid in fids:
                old = stored.get(fid)
                actions.append("insert" if old is None else "update")
                versions.append(1 if old is None else old[-1] + 1)
                befores.append(JSON_NULL if old is None else dumps(jsonable(dict(old_rows[fid]))))
            history: list[Iterable[Any]] = [fids, actions, versions, befores, after]
            new_tokens = [tokens[row_of[i]] for i in new]
        else:  # only new rows (a first import): one action, version and (empty) before for all
            history = [new_ids, itertools.repeat("insert"), itertools.repeat(1), itertools.repeat(JSON_NULL), after]
            new_tokens = tokens
        inserts = [
            new_ids, *(pick(batch.columns[c], new) for c in VALUE_COLUMNS), new_tokens,
            pick(batch.attributes, new), pick(batch.digests, new),
        ]  # fmt: skip
        writer = BulkWriter(conn)
        writer.insert_features(batch.layer, inserts, user=user, now=now)
        if changed:
            rows_ = batch.rows
            updates = [
                (
                    batch.ids[i],
                    *rows_[i],
                    tokens[row_of[i]],
                    batch.attributes[i],
                    batch.digests[i],
                    stored[batch.ids[i]][-1],
                )
                for i in changed
            ]
            if writer.update_features(batch.layer, updates, user=user, now=now) != len(updates):
                raise _changed_during_import(batch.layer)
        writer.insert_history(batch.layer, history, user=user, now=now)

    def _personal_columns(self, layer: str, rows: pd.DataFrame) -> list[str]:
        """Return the layer's personal columns present in ``rows``; raise if they need a key we lack."""
        personal = personal_columns(layer, rows.columns)
        if personal:
            self._require_cipher()
        if schema.ID_NUMBER in personal:
            self._require_blind_index()
        return personal

    def _classify(self, batch: Batch, stored: dict[str, tuple[Any, ...]]) -> tuple[list[int], list[int]]:
        """Return the positions of new rows and of rows that differ from the stored ones."""
        if not stored:
            return list(range(batch.n)), []
        new, changed = [], []
        for i, fid in enumerate(batch.ids):
            old = stored.get(fid)
            if old is None:
                new.append(i)
            elif not self._same(old, batch, i):
                changed.append(i)
        return new, changed

    def _same(self, old: tuple[Any, ...], batch: Batch, i: int) -> bool:
        """Return True if the stored row ``old`` (`BulkWriter.stored_rows`) equals row ``i`` of ``batch``.

        Attributes compare as JSON text first and as parsed JSON only if the texts differ (rows written
        by other code paths may use another spelling); personal fields compare as the decrypted payload,
        likewise.
        """
        if old[:N_ROW_VALUES] != batch.rows[i]:
            return False
        stored_attributes, attributes = old[N_ROW_VALUES], batch.attributes[i]
        if stored_attributes != attributes and loads(stored_attributes) != loads(attributes):
            return False
        token = old[N_ROW_VALUES + 1]
        payload = None if batch.personal is None else batch.personal[i]
        if (token is None) != (payload is None):
            return False
        if payload is None:
            return True
        plain = self._require_cipher().decrypt_payload(token)
        return plain == payload or json.loads(plain) == json.loads(payload)

    def _tokens(self, batch: Batch, positions: list[int]) -> list[str | None]:
        """Return the encrypted personal token of each row at ``positions`` (None without personal columns)."""
        if batch.personal is None:
            return [None] * len(positions)
        return self._require_cipher().encrypt_payloads([batch.personal[i] for i in positions])

    @staticmethod
    def _existing(conn: sa.Connection, layer: str, ids: list[str]) -> dict[str, Any]:
        """Return the stored rows of ``layer`` among ``ids``, by id (one query; the whole layer if large)."""
        query = sa.select(features_table).where(features_table.c.layer == layer)
        if len(ids) <= MAX_IN_IDS:
            query = query.where(features_table.c.id.in_(ids))
        wanted = set(ids)
        return {r[schema.ID]: r for r in conn.execute(query).mappings().all() if r[schema.ID] in wanted}

    def update_feature(self, layer: str, feature_id: str, changes: dict[str, Any], *, version: int, user: str) -> int:
        """Change fields of one row if it still has ``version``; return the new version.

        Raises
        ------
        NotFoundError
            If the row does not exist.
        ValueError
            If a changed number is outside its range (`layers.schema.RANGES`).
        StaleVersionError
            If the row was changed since ``version`` was read: names who changed it and when; nothing is
            written.
        """
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            old = _select_row(conn, layer, feature_id)
            current = feature_record(old)
            if old["personal"] is not None:
                current.update(self.decrypt_personal(old["personal"]))
            merged = {k: v for k, v in {**current, **changes}.items() if k not in META_COLUMNS}
            spec = schema.layer_spec(layer)
            for column in changes:
                if column in spec.column_names and (why := spec.column(column).out_of_range(changes[column])):
                    msg = f"`{layer}` {feature_id!r}: {why}. Nothing was saved."
                    raise ValueError(msg)
            workflow = spec.workflow
            if not workflow.allows(old[schema.STATUS], merged[schema.STATUS]):
                allowed = workflow.next_statuses(old[schema.STATUS])
                msg = (
                    f"`{layer}` {feature_id!r}: status may not change from {old[schema.STATUS]!r} to "
                    f"{merged[schema.STATUS]!r}; allowed next: {list(allowed)!r}."
                )
                raise WorkflowError(msg)
            new = self._to_record(layer, merged)
            result = conn.execute(
                features_table.update()
                .where(
                    features_table.c.layer == layer,
                    features_table.c.id == feature_id,
                    features_table.c.version == version,
                )
                .values({**new, schema.VERSION: version + 1, "updated_by": user, "updated_at": now})
            )
            if result.rowcount != 1:
                current = _select_row(conn, layer, feature_id)
                msg = (
                    f"`{layer}` {feature_id!r} was changed by {current['updated_by']!r} at "
                    f"{current['updated_at']:%Y-%m-%d %H:%M:%S} (now version {current[schema.VERSION]}; "
                    f"you edited version {version}). Nothing was overwritten: reload and apply your change again."
                )
                raise StaleVersionError(msg)
            conn.execute(
                history_table.insert(), [history_row(now, user, layer, new, "update", version + 1, dict(old), new)]
            )
        return version + 1

    # --- helpers --------------------------------------------------------------------------------

    def _require_blind_index(self) -> BlindIndex:
        if self.blind_index is None:
            msg = "This store has no blind-index key, so it cannot hold households' ID numbers."
            raise EncryptionKeyError(msg)
        return self.blind_index

    def _require_cipher(self) -> FieldCipher:
        if self.cipher is None:
            msg = "This store has no encryption key, so it cannot hold households' personal fields."
            raise EncryptionKeyError(msg)
        return self.cipher

    def _to_record(self, layer: str, row: dict[str, Any]) -> dict[str, Any]:
        """Return one row as stored, its personal fields encrypted into ``personal``."""
        frame = pd.DataFrame([row], columns=list(row)).astype(object)
        if personal_columns(layer, frame.columns):
            self._require_cipher()
        ((record, personal),) = to_records(layer, frame)
        record["personal"] = None if personal is None else self.cipher.encrypt(personal)
        id_number = (personal or {}).get(schema.ID_NUMBER)
        if id_number is not None:
            record["id_number_index"] = self._require_blind_index().digest(id_number)
        return record


def _access_log_select(query: AccessLogQuery) -> sa.Select:
    """Return the SELECT of the access-log rows of ``query`` with each household's current ``town_code``."""
    log, features = access_log_table, features_table
    joined = log.outerjoin(features, sa.and_(features.c.layer == log.c.layer, features.c.id == log.c.feature_id))
    select = sa.select(*log.c, features.c.town_code).select_from(joined)
    if query.actors is not None:
        select = select.where(log.c.actor.in_(query.actors))
    if query.towns is not None:
        select = select.where(features.c.town_code.in_(query.towns))
    if query.since is not None:
        select = select.where(log.c.at >= _utc(query.since))
    if query.until is not None:
        select = select.where(log.c.at < _utc(query.until))
    if query.kind == "full":
        select = select.where(log.c.feature_id != BULK_READ_ID)
    elif query.kind == "bulk":
        select = select.where(log.c.feature_id == BULK_READ_ID)
    return select


def _utc(value: datetime) -> datetime:
    """Return ``value`` in UTC: SQLite keeps times as text in UTC without their zone and compares the text."""
    return value.astimezone(UTC)


def _select_row(conn: sa.Connection, layer: str, feature_id: str) -> Any:
    row = (
        conn.execute(
            sa.select(features_table).where(features_table.c.layer == layer, features_table.c.id == feature_id)
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        msg = f"No `{layer}` row with id {feature_id!r}."
        raise NotFoundError(msg)
    return row


#: Rows per chunk of `Store.upsert_features` (prepared and written in turn, in one transaction).
CHUNK_ROWS = 8192


@contextlib.contextmanager
def _one_household_per_person(layer: str) -> Iterator[None]:
    """Turn a violation of the ID-number index (another import stored the same person meanwhile) into a clear error."""
    try:
        yield
    except sa.exc.IntegrityError as error:
        if "id_number_index" not in str(error.orig):
            raise
        msg = (
            f"Another stored household already has one of these 身份证号 (one household per person; it may have "
            f"been stored during this import); nothing was written to `{layer}`. Import the file through "
            "`accessplan import` (or again): the rows concerned are named."
        )
        raise StaleVersionError(msg) from None


def _changed_during_import(layer: str) -> StaleVersionError:
    return StaleVersionError(f"Another user changed rows of `{layer}` during this import; nothing was written. Retry.")
