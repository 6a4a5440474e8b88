"""Keep the point layers in a relational database through SQLAlchemy (SQLite by default).

Every change is one transaction that also appends a history row; updates carry the version they
read (optimistic locking); households' personal fields are encrypted at rest and masked on read.
The schema is created and migrated by Alembic (``layers/migrations``).
"""

from __future__ import annotations

import json
import logging
import math
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
    from collections.abc import Callable, Iterable

    from layers.crypto import FieldCipher

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
    sa.Column("personal", sa.Text),  # Fernet token of the layer's personal columns (households only)
    sa.Column(schema.VERSION, sa.Integer, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_features_layer_town", "layer", schema.TOWN_CODE),
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
)

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
    """

    def __init__(self, url: str, *, cipher: FieldCipher | None = None) -> None:
        self.url = url
        self.cipher = cipher
        self.engine = sa.create_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        upgrade_schema(self.engine)

    def close(self) -> None:
        """Release the database connections."""
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
        """
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(history_table.c.seq))).scalar() or 0)

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
        query = sa.select(*[c for c in features_table.c if c.name != "personal"]).where(features_table.c.layer == layer)
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

    def log_access(self, layer: str, feature_ids: list[str], *, user: str, reason: str) -> None:
        """Append one access-log row per feature whose personal fields ``user`` saw in full."""
        now = datetime.now(UTC)
        records = [
            {"at": now, "actor": user, "layer": layer, "feature_id": fid, "reason": reason} for fid in feature_ids
        ]
        if records:
            with self.engine.begin() as conn:
                conn.execute(access_log_table.insert(), records)

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

        The rows are written with the driver's ``executemany`` and JSON serialised once per row here
        (attributes, history snapshots), which is most of the work for large imports.
        """
        now = datetime.now(UTC)
        incoming = self._to_records(layer, rows)
        with self.engine.begin() as conn:
            existing = self._existing(conn, layer, [record[schema.ID] for record, _ in incoming])
            inserts, updates, history = [], [], []
            encrypt = self.cipher.encrypt if self.cipher is not None else None
            for record, personal in incoming:
                old = existing.get(record[schema.ID])
                if old is not None and self._same(old, record, personal):
                    continue
                # Each row gets its own token (fresh nonce), made only for rows that are written.
                record["personal"] = None if personal is None else encrypt(personal)
                attributes = _dumps(record["attributes"])
                after = _snapshot(record, attributes)
                if old is None:
                    inserts.append((record, attributes))
                    history.append((record[schema.ID], "insert", 1, _JSON_NULL, after))
                else:
                    version = old[schema.VERSION] + 1
                    updates.append((record, attributes, old[schema.VERSION]))
                    before = _dumps(_jsonable(dict(old)))
                    history.append((record[schema.ID], "update", version, before, after))
            writer = _BulkWriter(conn)
            writer.insert_features(inserts, user=user, now=now)
            if updates and writer.update_features(layer, updates, user=user, now=now) != len(updates):
                msg = f"Another user changed rows of `{layer}` during this import; nothing was written. Retry."
                raise StaleVersionError(msg)
            writer.insert_history(layer, history, user=user, now=now)
        counts = ImportCounts(len(inserts), len(updates), len(incoming) - len(inserts) - len(updates))
        logger.info("Imported %d rows into `%s` by %s: %s", len(incoming), layer, user, counts)
        return counts

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
            workflow = schema.layer_spec(layer).workflow
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
        names = [None] * n if personal_columns else plain(schema.NAME)
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
            [layer] * n, ids, [str(v) for v in native(schema.TOWN_CODE)], plain(schema.VILLAGE_CODE), names,
            plain(schema.ADDRESS), lon, lat, datum, native(schema.STATUS), attributes,
            strict=True,
        )  # fmt: skip
        return [(dict(zip(keys, v, strict=True)), p) for v, p in zip(values, personal, strict=True)]

    def _same(self, old: Any, record: dict[str, Any], personal: dict[str, Any] | None) -> bool:
        """Return True if the stored row ``old`` equals ``record`` and ``personal`` (decrypting only if needed)."""
        for key, value in record.items():
            if old[key] != value:
                return False
        if (old["personal"] is None) != (personal is None):
            return False
        return personal is None or self.decrypt_personal(old["personal"]) == personal


def upgrade_schema(engine: sa.Engine) -> None:
    """Create or migrate the store's tables to the newest revision (Alembic ``upgrade head``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


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
    record = {k: v for k, v in row.items() if k not in ("attributes", "personal")}
    return {**record, **row["attributes"]}


def _frame(records: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    columns = None if records else [c.name for c in features_table.c if c.name not in ("attributes", "personal")]
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

_FEATURE_COLUMNS = (
    "layer", schema.ID, schema.TOWN_CODE, schema.VILLAGE_CODE, schema.NAME, schema.ADDRESS, schema.LON,
    schema.LAT, "source_datum", schema.STATUS, "personal",
)  # fmt: skip


#: One encoder for all rows (``json.dumps`` with options builds a new encoder on every call).
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


#: What ``sa.JSON`` stores for None (``none_as_null=False``): the JSON text ``null``, not SQL NULL.
_JSON_NULL = "null"


def _snapshot(record: dict[str, Any], attributes_json: str) -> str:
    """Return the history snapshot of ``record`` (which has keys besides attributes) as JSON text.

    The attributes are spliced in as already serialised, so they are not serialised twice.
    """
    head = _dumps({k: v for k, v in record.items() if k != "attributes"})
    return f'{head[:-1]},"attributes":{attributes_json}}}'


class _BulkWriter:
    """Write many rows through the DB-API ``executemany`` with values already serialised.

    SQLAlchemy's per-row parameter processing (JSON serialisation, type processors) is skipped: JSON
    columns get text made once per row (`_dumps`), and the few constant values (user, timestamp) go
    through the column type's bind processor once.
    """

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect
        self.postgres = self.dialect.name == "postgresql"

    def _names(self, columns: list[str]) -> str:
        return ", ".join(self.dialect.identifier_preparer.quote(c) for c in columns)

    def _mark(self, json_value: bool = False) -> str:
        mark = "?" if self.dialect.paramstyle == "qmark" else "%s"
        return f"CAST({mark} AS JSON)" if json_value and self.postgres else mark

    def _const(self, column: sa.Column, value: Any) -> Any:
        process = column.type.dialect_impl(self.dialect).bind_processor(self.dialect)
        return value if process is None else process(value)

    def _when(self, table: sa.Table, column: str, now: datetime) -> Any:
        return self._const(table.c[column], now)

    def insert_features(self, inserts: list[tuple[dict[str, Any], str]], *, user: str, now: datetime) -> None:
        if not inserts:
            return
        columns = [*_FEATURE_COLUMNS, "attributes", schema.VERSION, "created_by", "created_at", "updated_by",
                   "updated_at"]  # fmt: skip
        marks = ", ".join(self._mark(c == "attributes") for c in columns)
        sql = f"INSERT INTO features ({self._names(columns)}) VALUES ({marks})"
        at = self._when(features_table, "created_at", now)
        tail = (1, user, at, user, at)
        params = [(*(r[c] for c in _FEATURE_COLUMNS), attributes, *tail) for r, attributes in inserts]
        self.conn.exec_driver_sql(sql, params)

    def update_features(
        self, layer: str, updates: list[tuple[dict[str, Any], str, int]], *, user: str, now: datetime
    ) -> int:
        """Update rows still at the version read; return how many were updated."""
        columns = [c for c in _FEATURE_COLUMNS if c not in ("layer", schema.ID)]
        q = self.dialect.identifier_preparer.quote
        sets = ", ".join(
            [f"{q(c)} = {self._mark()}" for c in columns]
            + [f"attributes = {self._mark(True)}", f"{q(schema.VERSION)} = {self._mark()}",
               f"updated_by = {self._mark()}", f"updated_at = {self._mark()}"]
        )  # fmt: skip
        sql = (
            f"UPDATE features SET {sets} WHERE layer = {self._mark()} AND {q(schema.ID)} = {self._mark()} "
            f"AND {q(schema.VERSION)} = {self._mark()}"
        )
        at = self._when(features_table, "updated_at", now)
        params = [
            (*(r[c] for c in columns), attributes, version + 1, user, at, layer, r[schema.ID], version)
            for r, attributes, version in updates
        ]
        result = self.conn.exec_driver_sql(sql, params)
        return result.rowcount

    def insert_history(
        self, layer: str, history: list[tuple[str, str, int, str | None, str]], *, user: str, now: datetime
    ) -> None:
        if not history:
            return
        columns = ["at", "actor", "layer", "feature_id", "action", schema.VERSION, "before", "after"]
        marks = ", ".join(self._mark(c in ("before", "after")) for c in columns)
        sql = f"INSERT INTO history ({self._names(columns)}) VALUES ({marks})"
        head = (self._when(history_table, "at", now), user, layer)
        self.conn.exec_driver_sql(sql, [(*head, *h) for h in history])


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
