"""Keep the point layers in a relational database through SQLAlchemy (SQLite by default).

Every change is one transaction that also appends a history row; updates carry the version they
read (optimistic locking); households' personal fields are encrypted at rest and masked on read.
The schema is created and migrated by Alembic (``layers/migrations``).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import math
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event

from layers import schema
from layers.errors import EncryptionKeyError, NotFoundError, StaleVersionError, WorkflowError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from layers.crypto import BlindIndex, FieldCipher

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_SQLITE_BUSY_TIMEOUT_MS = 10_000

metadata = sa.MetaData()

features_table = sa.Table(
    "features",
    metadata,
    sa.Column("layer", sa.String(32), primary_key=True),
    sa.Column(schema.ID, sa.String(64), primary_key=True),
    sa.Column(schema.TOWN_CODE, sa.String(9), nullable=False),
    sa.Column(schema.VILLAGE_CODE, sa.String(12)),
    sa.Column(schema.NAME, sa.Text),  # NULL for households: their name is in `personal`
    sa.Column(schema.ADDRESS, sa.Text),
    sa.Column(schema.LON, sa.Float, nullable=False),
    sa.Column(schema.LAT, sa.Float, nullable=False),
    sa.Column("source_datum", sa.String(8), nullable=False),
    sa.Column(schema.STATUS, sa.String(32), nullable=False),
    sa.Column("attributes", sa.JSON, nullable=False),
    sa.Column("personal", sa.Text),  # encrypted token of the layer's personal columns (households only)
    sa.Column(schema.VERSION, sa.Integer, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # keyed digest of a household's 身份证号 (`layers.crypto.BlindIndex`): one household per person
    sa.Column("id_number_index", sa.String(64)),
    sa.Index("ix_features_layer_town", "layer", schema.TOWN_CODE),
    sa.Index("ux_features_id_number_index", "id_number_index", unique=True),
)

history_table = sa.Table(
    "history",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("layer", sa.String(32), nullable=False),
    sa.Column("feature_id", sa.String(64), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column(schema.VERSION, sa.Integer, nullable=False),
    sa.Column("before", sa.JSON),
    sa.Column("after", sa.JSON),
    sa.Index("ix_history_feature", "layer", "feature_id"),
)

access_log_table = sa.Table(
    "access_log",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("layer", sa.String(32), nullable=False),
    sa.Column("feature_id", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("ip", sa.String(64)),  # NULL for the command line and for rows logged before 0005
    sa.Column("channel", sa.String(8)),  # `ACCESS_CHANNELS`
)

#: Tables the app may only append to and read (history and access log).
APPEND_ONLY_TABLES = ("history", "access_log")
#: How a personal record was seen: the web pages, the JSON API or the command line.
ACCESS_CHANNELS = ("web", "api", "cli")

#: Stored columns that never come out of `Store.features` / `Store.feature` as such (attributes are spread).
_HIDDEN_COLUMNS = ("attributes", "personal", "id_number_index")
#: Columns of a stored row that describe the row itself rather than the feature.
_META_COLUMNS = ("layer", *schema.SYSTEM_COLUMNS)
_ROW_COLUMNS = (
    schema.ID, schema.TOWN_CODE, schema.VILLAGE_CODE, schema.NAME, schema.ADDRESS,
    schema.LON, schema.LAT, "source_datum", schema.STATUS,
)  # fmt: skip


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
            event.listen(self.engine, "connect", _sqlite_app_connection)
        owner = sa.create_engine(migration_url or url, poolclass=sa.pool.NullPool)
        if owner.dialect.name == "sqlite":
            event.listen(owner, "connect", _sqlite_pragmas)
        try:
            app_role = self.engine.url.username if migration_url else None
            upgrade_schema(owner, cipher=cipher, blind_index=blind_index, app_role=app_role)
        finally:
            owner.dispose()
        if self.engine.dialect.name == "postgresql":
            _warn_if_app_owns_the_log(self.engine)
        self._probes = _VersionProbes(url)

    def close(self) -> None:
        """Release the database connections."""
        self._probes.close()
        self.engine.dispose()

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
        (`_VersionProbes`): ~5 µs on SQLite instead of ~300 µs through the pool.
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
        query = sa.select(*[c for c in features_table.c if c.name not in _HIDDEN_COLUMNS[1:]]).where(
            features_table.c.layer == layer
        )
        if statuses is not None:
            query = query.where(features_table.c.status.in_(statuses))
        if towns is not None:
            query = query.where(features_table.c.town_code.in_(towns))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(features_table.c.id)).mappings().all()
        return _frame([_flatten(r) for r in rows])

    def feature(self, layer: str, feature_id: str) -> dict[str, Any]:
        """Return one row of ``layer`` (without personal fields).

        Raises
        ------
        NotFoundError
            If ``layer`` has no row ``feature_id``.
        """
        with self.engine.connect() as conn:
            row = _select_row(conn, layer, feature_id)
        return _flatten(row)

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

    def households_with_id_numbers(self, id_numbers: list[str]) -> dict[str, str]:
        """Return, by ID number, the id of the stored household that has it (numbers nobody has are left out).

        The numbers are digested with the blind index and looked up in its unique index: one indexed
        query per `_MAX_IN_IDS` numbers; no number is decrypted.
        """
        digests = self._require_blind_index().digests(list(id_numbers))
        number_of = {d: n for d, n in zip(digests, id_numbers, strict=True) if d is not None}
        found: dict[str, str] = {}
        wanted = list(number_of)
        column = features_table.c.id_number_index
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _MAX_IN_IDS):
                # by the unique digest index alone (with `layer` in the WHERE, SQLite scanned the layer per
                # query: a 100,000-row re-import took 27 s here); only households carry a digest anyway
                query = sa.select(column, features_table.c.id, features_table.c.layer).where(
                    column.in_(wanted[start : start + _MAX_IN_IDS])
                )
                found.update(
                    {number_of[d]: fid for d, fid, layer in conn.execute(query).all() if layer == schema.HOUSEHOLD}
                )
        return found

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
        if len(ids) <= _MAX_IN_IDS:  # one query by id; the whole layer for more
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
                record = _flatten(row)
                if row["personal"] is not None and (wanted is None or fid in wanted):
                    record.update(self.decrypt_personal(row["personal"]))
                out[fid] = record
        return out

    def access_log(self) -> list[dict[str, Any]]:
        """Return the access log, oldest first."""
        with self.engine.connect() as conn:
            query = sa.select(access_log_table).order_by(access_log_table.c.seq)
            return [dict(r) for r in conn.execute(query).mappings().all()]

    # --- writing --------------------------------------------------------------------------------

    def upsert_features(self, layer: str, rows: pd.DataFrame, *, user: str) -> ImportCounts:
        """Insert new ids and update changed ones in ONE transaction, appending history rows.

        ``rows`` holds validated rows (``layers.validate``): ``schema.COMMON_COLUMNS`` with lon/lat
        already in WGS-84, the ``datum`` column naming the datum they were collected in. The layer's
        personal columns (households' name, ID and certificate numbers, phone) are encrypted; other
        columns become attributes. Rows equal to the stored ones are left unchanged, so re-importing
        a file is idempotent.

        Large imports are the reason for the shape of this code: the rows are converted column by
        column (`_Batch`: each distinct value JSON-encoded once, JSON objects joined from the encoded
        columns), every written row gets its own AES-GCM token (`FieldCipher.encrypt_payloads`), and
        features and history are written with the driver's ``executemany``. Stored rows are compared
        by their JSON text (parsed only when the texts differ) and decrypted token payload. The rows
        are prepared and written in chunks of `_CHUNK_ROWS` (a smaller working set: lower peak memory),
        all in the one transaction: an error in any chunk rolls back every
        chunk. (A writer thread running one chunk's ``executemany`` while the next is prepared was
        slower: sqlite3 takes the GIL back after every row, so the writer stalls behind the preparing
        thread.)
        """
        now = datetime.now(UTC)
        personal = self._personal_columns(layer, rows)
        n = len(rows)
        ids = [str(v) for v in _native_values(rows[schema.ID])] if schema.ID in rows.columns else ["None"] * n
        inserted = updated = 0
        with _one_household_per_person(layer), self.engine.begin() as conn:
            stored = _BulkWriter(conn).stored_rows(layer, ids)
            for start in range(0, n, _CHUNK_ROWS):
                chunk = rows.iloc[start : start + _CHUNK_ROWS]
                batch = _Batch.from_frame(layer, chunk, personal=personal, blind_index=self.blind_index)
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
        batch: _Batch,
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
        new_ids = _pick(batch.ids, new)
        if changed:
            row_of = dict(zip(written, range(len(written)), strict=True))
            history = []
            for i, snapshot in zip(written, after, strict=True):
                fid = batch.ids[i]
                old = stored.get(fid)
                if old is None:
                    history.append((fid, "insert", 1, _JSON_NULL, snapshot))
                else:
                    before = _dumps(_jsonable(dict(old_rows[fid])))
                    history.append((fid, "update", old[-1] + 1, before, snapshot))
            new_tokens = [tokens[row_of[i]] for i in new]
        else:  # only new rows (a first import): the history is zipped column by column
            history = list(
                zip(new_ids, itertools.repeat("insert"), itertools.repeat(1), itertools.repeat(_JSON_NULL), after)
            )
            new_tokens = tokens
        values = [_pick(batch.columns[c], new) for c in _VALUE_COLUMNS]
        inserts = list(
            zip(new_ids, *values, new_tokens, _pick(batch.attributes, new), _pick(batch.digests, new), strict=True)
        )
        writer = _BulkWriter(conn)
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
        personal = [c for c in schema.layer_spec(layer).personal if c in rows.columns]
        if personal:
            self._require_cipher()
        if schema.ID_NUMBER in personal:
            self._require_blind_index()
        return personal

    def _classify(self, batch: _Batch, stored: dict[str, tuple[Any, ...]]) -> tuple[list[int], list[int]]:
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

    def _same(self, old: tuple[Any, ...], batch: _Batch, i: int) -> bool:
        """Return True if the stored row ``old`` (`_BulkWriter.stored_rows`) equals row ``i`` of ``batch``.

        Attributes compare as JSON text first and as parsed JSON only if the texts differ (rows written
        by other code paths may use another spelling); personal fields compare as the decrypted payload,
        likewise.
        """
        if old[:_N_ROW_VALUES] != batch.rows[i]:
            return False
        stored_attributes, attributes = old[_N_ROW_VALUES], batch.attributes[i]
        if stored_attributes != attributes and _loads(stored_attributes) != _loads(attributes):
            return False
        token = old[_N_ROW_VALUES + 1]
        payload = None if batch.personal is None else batch.personal[i]
        if (token is None) != (payload is None):
            return False
        if payload is None:
            return True
        plain = self._require_cipher().decrypt_payload(token)
        return plain == payload or json.loads(plain) == json.loads(payload)

    def _tokens(self, batch: _Batch, positions: list[int]) -> list[str | None]:
        """Return the encrypted personal token of each row at ``positions`` (None without personal columns)."""
        if batch.personal is None:
            return [None] * len(positions)
        return self._require_cipher().encrypt_payloads([batch.personal[i] for i in positions])

    @staticmethod
    def _existing(conn: sa.Connection, layer: str, ids: list[str]) -> dict[str, Any]:
        """Return the stored rows of ``layer`` among ``ids``, by id (one query; the whole layer if large)."""
        query = sa.select(features_table).where(features_table.c.layer == layer)
        if len(ids) <= _MAX_IN_IDS:
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
            current = _flatten(old)
            if old["personal"] is not None:
                current.update(self.decrypt_personal(old["personal"]))
            merged = {k: v for k, v in {**current, **changes}.items() if k not in _META_COLUMNS}
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
                history_table.insert(), [_history(now, user, layer, new, "update", version + 1, dict(old), new)]
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
        ((record, personal),) = self._to_records(layer, frame)
        record["personal"] = None if personal is None else self.cipher.encrypt(personal)
        id_number = (personal or {}).get(schema.ID_NUMBER)
        if id_number is not None:
            record["id_number_index"] = self._require_blind_index().digest(id_number)
        return record

    def _to_records(self, layer: str, rows: pd.DataFrame) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """Return each row as stored (without ``personal``) and its plain personal fields (None if none).

        Works column by column: the values are converted once per column (`_plain_values`), and the
        per-row work is building the dicts.

        Raises
        ------
        ValueError
            If a row has no finite ``lon``/``lat`` (the first such row is named).
        EncryptionKeyError
            If the layer has personal columns and the store no key.
        """
        columns = list(rows.columns)
        personal_columns = [c for c in schema.layer_spec(layer).personal if c in columns]
        if personal_columns:
            self._require_cipher()
        attribute_columns = [
            c
            for c in columns
            if c not in schema.COMMON_COLUMNS
            and c not in personal_columns
            and c not in _ROW_COLUMNS
            and c not in schema.SYSTEM_COLUMNS
        ]
        n = len(rows)

        def native(column: str) -> list[Any]:
            return _native_values(rows[column]) if column in columns else [None] * n

        def plain(column: str) -> list[Any]:
            return _plain_values(rows[column]) if column in columns else [None] * n

        ids = [str(v) for v in native(schema.ID)]
        lon = [_float(v) for v in native(schema.LON)]
        lat = [_float(v) for v in native(schema.LAT)]
        for i in range(n):
            if not (math.isfinite(lon[i]) and math.isfinite(lat[i])):
                msg = f"Row {ids[i]!r} of `{layer}` has no valid `lon`/`lat` ({lon[i]!r}, {lat[i]!r}); validate first."
                raise ValueError(msg)
        datum = native(schema.DATUM if schema.DATUM in columns else schema.SOURCE_DATUM)
        hidden = schema.layer_spec(layer).personal  # kept only in the encrypted token

        def clear(column: str) -> list[Any]:
            return [None] * n if column in hidden else plain(column)

        attribute_rows = _rows(plain, attribute_columns, n)
        attributes = [dict(zip(attribute_columns, values, strict=True)) for values in attribute_rows]
        personal = (
            [dict(zip(personal_columns, values, strict=True)) for values in _rows(plain, personal_columns, n)]
            if personal_columns
            else [None] * n
        )
        keys = ("layer", schema.ID, schema.TOWN_CODE, schema.VILLAGE_CODE, schema.NAME, schema.ADDRESS,
                schema.LON, schema.LAT, "source_datum", schema.STATUS, "attributes")  # fmt: skip
        values = zip(
            [layer] * n, ids, [str(v) for v in native(schema.TOWN_CODE)], plain(schema.VILLAGE_CODE),
            clear(schema.NAME), clear(schema.ADDRESS), lon, lat, datum, native(schema.STATUS), attributes,
            strict=True,
        )  # fmt: skip
        return [(dict(zip(keys, v, strict=True)), p) for v, p in zip(values, personal, strict=True)]


def upgrade_schema(
    engine: sa.Engine,
    *,
    cipher: FieldCipher | None = None,
    blind_index: BlindIndex | None = None,
    app_role: str | None = None,
) -> None:
    """Create or migrate the store's tables to the newest revision (Alembic ``upgrade head``).

    Parameters
    ----------
    engine
        Connects as the role that owns (or is to own) the tables.
    cipher, blind_index
        The keys; needed when a migration rewrites stored households (0004 encrypts their addresses).
    app_role
        PostgreSQL role the app connects as, when it is not the owner: given its privileges after the
        upgrade (`grant_app_role`).

    Raises
    ------
    PermissionError
        If the connecting role may not change the schema (an app role without a migration URL).
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes.update(cipher=cipher, blind_index=blind_index)
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            if app_role and engine.dialect.name == "postgresql" and app_role != engine.url.username:
                grant_app_role(conn, app_role)
    except sa.exc.ProgrammingError as error:
        if getattr(error.orig, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
            raise
        msg = (
            f"The role {engine.url.username!r} may not migrate the database schema: run the upgrade with the "
            "owner's URL (MIGRATION_DATABASE_URL / ACCESSPLAN_MIGRATION_DATABASE_URL), see README § Configuration."
        )
        raise PermissionError(msg) from None


_INSUFFICIENT_PRIVILEGE = "42501"


def grant_app_role(conn: sa.Connection, role: str) -> None:
    """Give the app's PostgreSQL ``role`` what it needs and no more (idempotent; run by the owner).

    Every table of the schema: SELECT, INSERT, UPDATE, DELETE; the history and access log: SELECT and
    INSERT only (no UPDATE, DELETE or TRUNCATE); ``alembic_version``: SELECT; sequences: USAGE and
    SELECT. The role owns nothing, so it can neither drop nor alter a table, nor disable or drop a
    trigger; the schema must not be owned by it either (a schema's owner may drop its tables).
    """
    quoted = conn.dialect.identifier_preparer.quote(role)
    schema_name = conn.dialect.identifier_preparer.quote(conn.exec_driver_sql("SELECT current_schema()").scalar_one())
    statements = [
        f"GRANT USAGE ON SCHEMA {schema_name} TO {quoted}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema_name} TO {quoted}",
        f"REVOKE ALL ON alembic_version FROM {quoted}",
        f"GRANT SELECT ON alembic_version TO {quoted}",
        *(f"REVOKE ALL ON {t} FROM {quoted}" for t in APPEND_ONLY_TABLES),
        *(f"GRANT SELECT, INSERT ON {t} TO {quoted}" for t in APPEND_ONLY_TABLES),
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema_name} TO {quoted}",
    ]
    for statement in statements:
        conn.exec_driver_sql(statement)


def _warn_if_app_owns_the_log(engine: sa.Engine) -> None:
    """Warn when the app's PostgreSQL role owns the history (it could then disable its triggers)."""
    with engine.connect() as conn:
        owner = conn.exec_driver_sql(
            "SELECT tableowner = current_user FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename = 'history'"
        ).scalar()
    if owner:
        logger.warning(
            "The app's database role owns the history and access log, so it could rewrite them: "
            "migrate with a separate owner role (MIGRATION_DATABASE_URL) and connect the app as another role"
        )


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


def _flatten(row: Any) -> dict[str, Any]:
    """Return a stored row as one flat record: attributes as keys, no personal token."""
    record = {k: v for k, v in row.items() if k not in _HIDDEN_COLUMNS}
    return {**record, **row["attributes"]}


def _frame(records: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    columns = None if records else [c.name for c in features_table.c if c.name not in _HIDDEN_COLUMNS]
    df = pd.DataFrame.from_records(records, columns=columns)
    geometry = gpd.points_from_xy(df[schema.LON], df[schema.LAT], crs="EPSG:4326")
    return gpd.GeoDataFrame(df, geometry=geometry)


def _history(
    at: datetime, user: str, layer: str, record: dict[str, Any], action: str, version: int,
    before: dict[str, Any] | None, after: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    return {
        "at": at, "actor": user, "layer": layer, "feature_id": record[schema.ID], "action": action,
        schema.VERSION: version, "before": _jsonable(before), "after": _jsonable(after),
    }  # fmt: skip


def _jsonable(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """Keep a history snapshot JSON-safe; personal fields stay as their encrypted token."""
    if record is None:
        return None
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in record.items()}


#: Up to this many incoming ids are looked up with ``IN``; larger imports read the whole layer.
_MAX_IN_IDS = 500

#: Rows per chunk of `Store.upsert_features` (prepared and written in turn, in one transaction).
_CHUNK_ROWS = 8192


#: One encoder for all rows (``json.dumps`` with options builds a new encoder on every call).
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


#: What ``sa.JSON`` stores for None (``none_as_null=False``): the JSON text ``null``, not SQL NULL.
_JSON_NULL = "null"


#: Stored values of a feature that `_Batch.rows` holds, in this order (after ``layer`` and ``id``).
_VALUE_COLUMNS = (
    schema.TOWN_CODE, schema.VILLAGE_CODE, schema.NAME, schema.ADDRESS, schema.LON, schema.LAT, "source_datum",
    schema.STATUS,
)  # fmt: skip
_N_ROW_VALUES = len(_VALUE_COLUMNS)

#: ``json.dumps`` of a str with ``ensure_ascii=False`` (quotes and escapes; the C version when available).
_json_str = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _loads(text: Any) -> Any:
    """Return stored JSON parsed (drivers that parse JSON columns already give the object)."""
    return json.loads(text) if isinstance(text, str | bytes) else text


@dataclass(frozen=True)
class _Batch:
    """Validated rows of one layer as the store writes them, built column by column.

    Attributes
    ----------
    ids
        Feature ids.
    columns
        The values of each of `_VALUE_COLUMNS` as stored (``rows`` holds them row by row).
    attributes
        Per row, the attributes as JSON text: exactly ``_dumps`` of the attribute dict.
    personal
        Per row, the payload to encrypt (``layers.crypto.encode_fields`` of the personal fields), or
        None when the layer has no personal columns.
    json_columns
        JSON text of each value of `_VALUE_COLUMNS` (for the history snapshots).
    digests
        Per row, the blind index of the ID number (``layers.crypto.BlindIndex``), or None.
    """

    layer: str
    ids: list[str]
    columns: dict[str, list[Any]]
    attributes: list[str]
    personal: list[bytes] | None
    json_columns: dict[str, list[str]]
    digests: list[str | None]

    @property
    def n(self) -> int:
        """Number of rows."""
        return len(self.ids)

    @functools.cached_property
    def rows(self) -> list[tuple[Any, ...]]:
        """Per row, the values of `_VALUE_COLUMNS` as stored."""
        return list(zip(*(self.columns[c] for c in _VALUE_COLUMNS), strict=True))

    @classmethod
    def from_frame(
        cls, layer: str, rows: pd.DataFrame, *, personal: list[str], blind_index: BlindIndex | None = None
    ) -> _Batch:
        """Convert validated rows (see `Store.upsert_features`); ``personal`` lists the columns to encrypt.

        ``blind_index`` digests the ID numbers (needed when ``personal`` holds ``id_number``).

        Values are converted as ``_to_records`` does, and the JSON texts equal ``_dumps`` of those
        values, but each column is converted once and each distinct value JSON-encoded once.

        Raises
        ------
        ValueError
            If a row has no finite ``lon``/``lat`` (the first such row is named).
        """
        columns = list(rows.columns)
        n = len(rows)
        attribute_columns = [
            c
            for c in columns
            if c not in schema.COMMON_COLUMNS
            and c not in personal
            and c not in _ROW_COLUMNS
            and c not in schema.SYSTEM_COLUMNS
        ]

        def column(name: str) -> pd.Series:
            return rows[name] if name in columns else pd.Series([None] * n, dtype=object)

        ids = [str(v) for v in _native_values(column(schema.ID))]
        lon = np.asarray(pd.to_numeric(column(schema.LON), errors="coerce"), dtype=np.float64)
        lat = np.asarray(pd.to_numeric(column(schema.LAT), errors="coerce"), dtype=np.float64)
        bad = ~(np.isfinite(lon) & np.isfinite(lat))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            lon_i, lat_i = _float(_native_values(column(schema.LON))[i]), _float(_native_values(column(schema.LAT))[i])
            msg = f"Row {ids[i]!r} of `{layer}` has no valid `lon`/`lat` ({lon_i!r}, {lat_i!r}); validate first."
            raise ValueError(msg)
        datum = column(schema.DATUM if schema.DATUM in columns else schema.SOURCE_DATUM)
        hidden = schema.layer_spec(layer).personal  # kept only in the encrypted token

        def clear(name: str) -> list[Any]:
            return [None] * n if name in hidden else _plain_values(column(name))

        values = {
            schema.TOWN_CODE: [str(v) for v in _native_values(column(schema.TOWN_CODE))],
            schema.VILLAGE_CODE: _plain_values(column(schema.VILLAGE_CODE)),
            schema.NAME: clear(schema.NAME),
            schema.ADDRESS: clear(schema.ADDRESS),
            schema.LON: lon.tolist(),
            schema.LAT: lat.tolist(),
            "source_datum": _native_values(datum),
            schema.STATUS: _native_values(column(schema.STATUS)),
        }
        json_columns = {c: _json_list(v) for c, v in values.items()}
        attributes = _json_objects(attribute_columns, [_json_texts(rows[c]) for c in attribute_columns], n)
        payloads = None
        digests: list[str | None] = [None] * n
        if schema.ID_NUMBER in personal and blind_index is not None:
            digests = blind_index.digests(_plain_values(column(schema.ID_NUMBER)))
        if personal:
            keys = sorted(personal)  # `encode_fields` sorts the keys
            texts = _json_objects(keys, [_json_texts(rows[c]) for c in keys], n)
            payloads = [t.encode("utf-8") for t in texts]
        return cls(
            layer=layer,
            ids=ids,
            columns=values,
            attributes=attributes,
            personal=payloads,
            json_columns=json_columns,
            digests=digests,
        )

    def snapshots(self, positions: list[int], tokens: list[str | None]) -> list[str]:
        """Return the history snapshot (JSON text) of the rows at ``positions`` with their ``tokens``.

        Equal to ``_dumps`` of the stored row (``layer``, ``id``, `_VALUE_COLUMNS`, ``personal``,
        ``attributes``), with the attributes spliced in as already serialised.
        """
        parts: list[Any] = [
            f'{{"layer":{_json_str(self.layer)},"id":',
            list(map(_json_str, _pick(self.ids, positions))),
        ]
        for c in _VALUE_COLUMNS:
            parts += [f",{_json_str(c)}:", _pick(self.json_columns[c], positions)]
        parts += [',"personal":', ["null" if t is None else _json_str(t) for t in tokens]]
        parts += [',"attributes":', _pick(self.attributes, positions), "}"]
        return _join_columns(parts, len(positions))


def _pick(values: list[Any], positions: list[int]) -> list[Any]:
    """Return ``values[i]`` for each of ``positions`` (sorted, distinct): ``values`` itself if that is all of them."""
    return values if len(positions) == len(values) else [values[i] for i in positions]


def _join_columns(parts: list[str | list[str]], n: int) -> list[str]:
    """Return ``n`` strings, each the concatenation of ``parts`` (constants, or per-row lists)."""
    if n == 0:
        return []
    return list(map("".join, zip(*(p if isinstance(p, list) else itertools.repeat(p, n) for p in parts), strict=True)))


def _json_objects(keys: list[str], texts: list[list[str]], n: int) -> list[str]:
    """Return ``n`` JSON objects with ``keys`` whose values are the JSON ``texts`` (one list per key)."""
    if not keys:
        return ["{}"] * n
    parts: list[str | list[str]] = []
    for j, (key, values) in enumerate(zip(keys, texts, strict=True)):
        parts += [("{" if j == 0 else ",") + _json_str(key) + ":", values]
    parts.append("}")
    return _join_columns(parts, n)


def _json_float(value: float) -> str:
    """Return ``_dumps(value)`` of a float (its repr when finite, as the JSON encoder writes it)."""
    return float.__repr__(value) if math.isfinite(value) else _dumps(value)


_TEXT_TYPES = frozenset((str, type(None)))
_FLOAT_TYPE = frozenset((float,))

_JSON_SCALAR: dict[type, Callable[[Any], str]] = {
    str: _json_str,
    float: _json_float,
    int: int.__repr__,
    bool: lambda v: "true" if v else "false",
    type(None): lambda _v: "null",
}


def _json_list(values: list[Any]) -> list[str]:
    """Return ``_dumps(v)`` for each of ``values`` (Python scalars); fast for str, int, bool and None.

    Text columns with few distinct values (codes, statuses) encode each distinct value once; columns
    of finite floats (coordinates) are their reprs.
    """
    classes = set(map(type, values))
    if classes <= _TEXT_TYPES:
        distinct = set(values)
        if len(distinct) * 4 <= len(values):
            table = {v: _JSON_NULL if v is None else _json_str(v) for v in distinct}
            return list(map(table.__getitem__, values))
        if None not in distinct:
            return list(map(_json_str, values))
        return [_JSON_NULL if v is None else _json_str(v) for v in values]
    if classes == _FLOAT_TYPE and all(map(math.isfinite, values)):
        return list(map(float.__repr__, values))
    out = []
    for v in values:
        encode = _JSON_SCALAR.get(v.__class__)
        out.append(encode(v) if encode is not None else _dumps(v))
    return out


def _json_texts(values: pd.Series) -> list[str]:
    """Return ``_dumps(_plain(v))`` of every value of a column (``null`` for missing values).

    Text is encoded value by value in C; integer and boolean columns are factorised, so each distinct
    value is encoded once; other dtypes (floats, where -0.0 and 0.0 are one factor; objects) go
    value by value.
    """
    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype):
        return [_JSON_NULL if v is None else _json_str(v) for v in values.to_numpy(dtype=object, na_value=None)]
    if isinstance(dtype, pd.BooleanDtype) or dtype.kind in "iub":
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        objects = np.asarray(uniques, dtype=object).tolist()
        table = np.array([*(_json_list([_plain(u)])[0] for u in objects), _JSON_NULL], dtype=object)
        return table[codes].tolist()
    return _json_list(_plain_values(values))


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


class _BulkWriter:
    """Read and write many rows through the DB-API (``executemany``) with values already serialised.

    SQLAlchemy's per-row parameter processing (JSON serialisation, type processors) is skipped: JSON
    columns get text made column-wise (`_Batch`), and the few constant values (user, timestamp) go
    through the column type's bind processor once.
    """

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect
        self.postgres = self.dialect.name == "postgresql"
        self.q = self.dialect.identifier_preparer.quote

    def _names(self, columns: list[str] | tuple[str, ...]) -> str:
        return ", ".join(self.q(c) for c in columns)

    def _mark(self, json_value: bool = False) -> str:
        mark = "?" if self.dialect.paramstyle == "qmark" else "%s"
        return f"CAST({mark} AS JSON)" if json_value and self.postgres else mark

    def _const(self, column: sa.Column, value: Any) -> Any:
        process = column.type.dialect_impl(self.dialect).bind_processor(self.dialect)
        return value if process is None else process(value)

    def _when(self, table: sa.Table, column: str, now: datetime) -> Any:
        return self._const(table.c[column], now)

    def stored_rows(self, layer: str, ids: list[str]) -> dict[str, tuple[Any, ...]]:
        """Return, by id, the stored `_VALUE_COLUMNS`, attributes (JSON text), personal token and version.

        One query: by id for up to `_MAX_IN_IDS` ids, else the whole layer (filtered here).
        """
        attributes = "CAST(attributes AS TEXT)" if self.postgres else "attributes"
        sql = (
            f"SELECT {self.q(schema.ID)}, {self._names(_VALUE_COLUMNS)}, {attributes}, personal, "
            f"{self.q(schema.VERSION)} FROM features WHERE layer = {self._mark()}"
        )
        params: tuple[Any, ...] = (layer,)
        if len(ids) <= _MAX_IN_IDS:
            if not ids:
                return {}
            sql += f" AND {self.q(schema.ID)} IN ({', '.join([self._mark()] * len(ids))})"
            params += tuple(ids)
        found = self.conn.exec_driver_sql(sql, params).fetchall()
        if not found:
            return {}
        wanted = set(ids)
        return {r[0]: tuple(r[1:]) for r in found if r[0] in wanted}

    def insert_features(self, layer: str, inserts: list[tuple[Any, ...]], *, user: str, now: datetime) -> None:
        """Insert rows as version 1, given as (id, *`_VALUE_COLUMNS`, personal token, attributes JSON, digest)."""
        if not inserts:
            return
        columns = [schema.ID, *_VALUE_COLUMNS, "personal", "attributes", "id_number_index"]
        tail = ["layer", schema.VERSION, "created_by", "created_at", "updated_by", "updated_at"]
        marks = ", ".join(self._mark(c == "attributes") for c in [*columns, *tail])
        sql = f"INSERT INTO features ({self._names([*columns, *tail])}) VALUES ({marks})"
        at = self._when(features_table, "created_at", now)
        const = (layer, 1, user, at, user, at)
        self.conn.exec_driver_sql(sql, [(*r, *const) for r in inserts])

    def update_features(self, layer: str, updates: list[tuple[Any, ...]], *, user: str, now: datetime) -> int:
        """Update rows still at the version read; return how many were updated.

        ``updates`` holds (id, *`_VALUE_COLUMNS`, personal token, attributes JSON, ID-number digest,
        version read).
        """
        q = self.q
        sets = ", ".join(
            [f"{q(c)} = {self._mark()}" for c in (*_VALUE_COLUMNS, "personal")]
            + [f"attributes = {self._mark(True)}", f"id_number_index = {self._mark()}",
               f"{q(schema.VERSION)} = {self._mark()}",
               f"updated_by = {self._mark()}", f"updated_at = {self._mark()}"]
        )  # fmt: skip
        sql = (
            f"UPDATE features SET {sets} WHERE layer = {self._mark()} AND {q(schema.ID)} = {self._mark()} "
            f"AND {q(schema.VERSION)} = {self._mark()}"
        )
        at = self._when(features_table, "updated_at", now)
        params = [(*u[1:-1], u[-1] + 1, user, at, layer, u[0], u[-1]) for u in updates]
        result = self.conn.exec_driver_sql(sql, params)
        return result.rowcount

    def insert_history(
        self, layer: str, history: list[tuple[str, str, int, str | None, str]], *, user: str, now: datetime
    ) -> None:
        """Append history rows given as (feature id, action, version, before JSON, after JSON)."""
        if not history:
            return
        columns = ["at", "actor", "layer", "feature_id", "action", schema.VERSION, "before", "after"]
        marks = ", ".join(self._mark(c in ("before", "after")) for c in columns)
        sql = f"INSERT INTO history ({self._names(columns)}) VALUES ({marks})"
        head = (self._when(history_table, "at", now), user, layer)
        self.conn.exec_driver_sql(sql, [(*head, *h) for h in history])


class _VersionProbes:
    """One autocommit DBAPI connection per thread (and process) that only reads the newest history ``seq``.

    Autocommit means every read sees the latest committed data and no transaction stays open between
    requests (no locks held, nothing blocks a migration). A connection that fails (server restarted,
    database recreated) is dropped and the read retried once on a new one.
    """

    _SQL = "SELECT max(seq) FROM history"

    def __init__(self, url: str) -> None:
        self._url = url
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()
        self._local = threading.local()

    def max_history_seq(self) -> int:
        for attempt in (1, 2):
            cursor = self._cursor()
            try:
                cursor.execute(self._SQL)
                return int(cursor.fetchone()[0] or 0)
            except Exception:
                self._drop()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._drop()
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()

    def _cursor(self) -> Any:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # none yet in this thread, or inherited by a fork
            with self._lock:
                if self._engine is None:
                    self._engine = sa.create_engine(self._url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
                    if self._engine.dialect.name == "sqlite":
                        event.listen(self._engine, "connect", _sqlite_pragmas)
                engine = self._engine
            local.connection = engine.raw_connection()
            local.cursor = local.connection.cursor()
            local.pid = os.getpid()
        return local.cursor

    def _drop(self) -> None:
        local = self._local
        connection = getattr(local, "connection", None)
        mine = getattr(local, "pid", None) == os.getpid()  # a forked child must not close its parent's
        local.connection = local.cursor = local.pid = None
        if connection is not None and mine:
            try:
                connection.close()
            except Exception:  # already broken: nothing left to release
                logger.debug("Closing a broken data-version connection failed", exc_info=True)


#: SQLite authorizer actions refused on the append-only tables (arg2 is the table for these).
_SQLITE_REFUSED_ON_TABLE = frozenset(
    getattr(sqlite3, f"SQLITE_{a}")
    for a in ("ALTER_TABLE", "CREATE_TRIGGER", "CREATE_TEMP_TRIGGER", "DROP_TRIGGER", "DROP_TEMP_TRIGGER")
)
#: ... and those whose arg1 is the table.
_SQLITE_REFUSED_TABLE_FIRST = frozenset((sqlite3.SQLITE_DELETE, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DROP_TABLE))


def _sqlite_authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _source: str | None) -> int:
    """Refuse, on an app connection, any statement that would change or remove the history or access log.

    Also refused: ``PRAGMA writable_schema`` (editing ``sqlite_master`` directly).
    """
    if action in _SQLITE_REFUSED_TABLE_FIRST and arg1 in APPEND_ONLY_TABLES:
        return sqlite3.SQLITE_DENY
    if action in _SQLITE_REFUSED_ON_TABLE and arg2 in APPEND_ONLY_TABLES:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() == "writable_schema":
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _sqlite_app_connection(dbapi_connection: Any, record: Any) -> None:
    """Set up an app connection: the pragmas, then the authorizer that keeps the log append-only."""
    _sqlite_pragmas(dbapi_connection, record)
    dbapi_connection.set_authorizer(_sqlite_authorizer)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


_SIMPLE_TYPES = frozenset((str, int, bool, type(None)))


def _native_values(values: pd.Series) -> list[Any]:
    """Return a column's values as ``DataFrame.to_dict`` gives them: Python scalars, None for NA."""
    if isinstance(values.dtype, pd.api.extensions.ExtensionDtype):
        return values.to_numpy(dtype=object, na_value=None).tolist()
    array = values.to_numpy()
    if array.dtype.kind in "biuf":
        return array.tolist()  # Python scalars; NaN stays a float
    return [v.item() if isinstance(v, np.generic) else v for v in array.tolist()]


def _plain_values(values: pd.Series) -> list[Any]:
    """Return `_plain` of every value of a column (fast path for the common scalar types)."""
    return [
        v if v.__class__ in _SIMPLE_TYPES or (v.__class__ is float and v == v) else _plain(v)
        for v in _native_values(values)
    ]


def _rows(get: Callable[[str], list[Any]], columns: list[str], n: int) -> Iterable[tuple[Any, ...]]:
    """Return the values of ``columns`` row by row."""
    return zip(*(get(c) for c in columns), strict=True) if columns else ((),) * n


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _plain(value: Any) -> Any:
    """Return ``value`` as a JSON-safe Python scalar, None for missing values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value
