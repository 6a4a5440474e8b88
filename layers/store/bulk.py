"""The bulk writer: many validated rows prepared column by column and written with ``executemany``.

`Batch` converts a frame of incoming rows into the values, JSON texts and personal payloads the
store writes (each column converted once, each distinct value JSON-encoded once; the results equal
`layers.store.records.to_records` and `dumps` of it); `BulkWriter` reads the stored rows and writes
features and history through the DB-API. A faster encoding of a column, or a new bulk statement,
goes here.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from layers import schema
from layers.store.records import (
    as_float,
    attribute_columns,
    native_values,
    no_coordinates,
    plain_value,
    plain_values,
)
from layers.store.tables import VALUE_COLUMNS, features_table, history_table

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from datetime import datetime

    import sqlalchemy as sa

    from layers.crypto import BlindIndex

#: Up to this many incoming ids are looked up with ``IN``; larger imports read the whole layer.
MAX_IN_IDS = 500


#: One encoder for all rows (``json.dumps`` with options builds a new encoder on every call).
dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


#: What ``sa.JSON`` stores for None (``none_as_null=False``): the JSON text ``null``, not SQL NULL.
JSON_NULL = "null"

#: ``json.dumps`` of a str with ``ensure_ascii=False`` (quotes and escapes; the C version when available).
json_str = json.encoder.encode_basestring  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Batch:
    """Validated rows of one layer as the store writes them, built column by column.

    Attributes
    ----------
    ids
        Feature ids.
    columns
        The values of each of `VALUE_COLUMNS` as stored (``rows`` holds them row by row).
    attributes
        Per row, the attributes as JSON text: exactly ``dumps`` of the attribute dict.
    personal
        Per row, the payload to encrypt (``layers.crypto.encode_fields`` of the personal fields), or
        None when the layer has no personal columns.
    json_columns
        JSON text of each value of `VALUE_COLUMNS` (for the history snapshots), but for the columns kept
        only in the encrypted token (always ``null``: left out).
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
        """Per row, the values of `VALUE_COLUMNS` as stored."""
        return list(zip(*(self.columns[c] for c in VALUE_COLUMNS), strict=True))

    @classmethod
    def from_frame(
        cls, layer: str, rows: pd.DataFrame, *, personal: list[str], blind_index: BlindIndex | None = None
    ) -> Batch:
        """Convert validated rows (see `Store.upsert_features`); ``personal`` lists the columns to encrypt.

        ``blind_index`` digests the ID numbers (needed when ``personal`` holds ``id_number``).

        Values are converted as `layers.store.records.to_records` does, and the JSON texts equal ``dumps`` of those
        values, but each column is converted once and each distinct value JSON-encoded once.

        Raises
        ------
        ValueError
            If a row has no finite ``lon``/``lat`` (the first such row is named).
        """
        columns = list(rows.columns)
        n = len(rows)
        attributes_of = attribute_columns(columns, personal)

        def column(name: str) -> pd.Series:
            return rows[name] if name in columns else pd.Series([None] * n, dtype=object)

        ids = list(map(str, native_values(column(schema.ID))))
        lon = np.asarray(pd.to_numeric(column(schema.LON), errors="coerce"), dtype=np.float64)
        lat = np.asarray(pd.to_numeric(column(schema.LAT), errors="coerce"), dtype=np.float64)
        bad = ~(np.isfinite(lon) & np.isfinite(lat))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            lon_i = as_float(native_values(column(schema.LON))[i])
            lat_i = as_float(native_values(column(schema.LAT))[i])
            raise no_coordinates(layer, ids[i], lon_i, lat_i)
        datum = column(schema.DATUM if schema.DATUM in columns else schema.SOURCE_DATUM)
        hidden = schema.layer_spec(layer).personal  # kept only in the encrypted token

        def clear(name: str) -> list[Any]:
            return [None] * n if name in hidden else plain_values(column(name))

        values = {
            schema.TOWN_CODE: list(map(str, native_values(column(schema.TOWN_CODE)))),
            schema.VILLAGE_CODE: plain_values(column(schema.VILLAGE_CODE)),
            schema.NAME: clear(schema.NAME),
            schema.ADDRESS: clear(schema.ADDRESS),
            schema.LON: lon.tolist(),
            schema.LAT: lat.tolist(),
            "source_datum": native_values(datum),
            schema.STATUS: native_values(column(schema.STATUS)),
        }
        json_columns = {c: json_list(v) for c, v in values.items() if c not in hidden}
        attributes = json_objects(attributes_of, [json_texts(rows[c]) for c in attributes_of], n)
        payloads = None
        digests: list[str | None] = [None] * n
        if schema.ID_NUMBER in personal and blind_index is not None:
            digests = blind_index.digests(plain_values(column(schema.ID_NUMBER)))
        if personal:
            keys = sorted(personal)  # `encode_fields` sorts the keys
            texts = json_objects(keys, [json_texts(rows[c]) for c in keys], n)
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

        Equal to ``dumps`` of the stored row (``layer``, ``id``, `VALUE_COLUMNS`, ``personal``,
        ``attributes``), with the attributes spliced in as already serialised. ``tokens`` are
        `FieldCipher` tokens (None for every row when the layer has no personal columns): ASCII letters,
        digits, ``-_=:`` only, so their JSON text is the token in quotes and is joined without encoding
        (JSON-encoding 20,000 tokens of ~240 characters took 9 ms).
        """
        parts: list[Any] = [
            f'{{"layer":{json_str(self.layer)},"id":',
            list(map(json_str, pick(self.ids, positions))),
        ]
        for c in VALUE_COLUMNS:
            texts = self.json_columns.get(c)
            parts += [f",{json_str(c)}:", JSON_NULL if texts is None else pick(texts, positions)]
        if self.personal is None:
            parts.append(f',"personal":{JSON_NULL},"attributes":')
        else:
            parts += [',"personal":"', tokens, '","attributes":']
        parts += [pick(self.attributes, positions), "}"]
        return join_columns(parts, len(positions))


def pick(values: list[Any], positions: list[int]) -> list[Any]:
    """Return ``values[i]`` for each of ``positions`` (sorted, distinct): ``values`` itself if that is all of them."""
    return values if len(positions) == len(values) else [values[i] for i in positions]


def join_columns(parts: list[str | list[str]], n: int) -> list[str]:
    """Return ``n`` strings, each the concatenation of ``parts`` (constants, or per-row lists).

    Adjacent constants are joined first: each part costs a step per row.
    """
    if n == 0:
        return []
    merged: list[str | list[str]] = []
    for p in parts:
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] += p
        else:
            merged.append(p)
    return list(map("".join, zip(*(p if isinstance(p, list) else itertools.repeat(p, n) for p in merged), strict=True)))


def json_objects(keys: list[str], texts: list[list[str]], n: int) -> list[str]:
    """Return ``n`` JSON objects with ``keys`` whose values are the JSON ``texts`` (one list per key)."""
    if not keys:
        return ["{}"] * n
    parts: list[str | list[str]] = []
    for j, (key, values) in enumerate(zip(keys, texts, strict=True)):
        parts += [("{" if j == 0 else ",") + json_str(key) + ":", values]
    parts.append("}")
    return join_columns(parts, n)


def json_float(value: float) -> str:
    """Return ``dumps(value)`` of a float (its repr when finite, as the JSON encoder writes it)."""
    return float.__repr__(value) if math.isfinite(value) else dumps(value)


_TEXT_TYPES = frozenset((str, type(None)))
_FLOAT_TYPE = frozenset((float,))

_JSON_SCALAR: dict[type, Callable[[Any], str]] = {
    str: json_str,
    float: json_float,
    int: int.__repr__,
    bool: lambda v: "true" if v else "false",
    type(None): lambda _v: "null",
}


def json_list(values: list[Any]) -> list[str]:
    """Return ``dumps(v)`` for each of ``values`` (Python scalars); fast for str, int, bool and None.

    Text columns with few distinct values (codes, statuses) encode each distinct value once; columns
    of finite floats (coordinates) are their reprs, each distinct one made once when few are distinct
    (households of one building share a point: 1,200 points for 20,000 rows saved 7 ms of reprs), but
    value by value when a zero is among them (0.0 and -0.0 are one key with two texts).
    """
    classes = set(map(type, values))
    if classes <= _TEXT_TYPES:
        distinct = set(values)
        if len(distinct) * 4 <= len(values):
            table = {v: JSON_NULL if v is None else json_str(v) for v in distinct}
            return list(map(table.__getitem__, values))
        if None not in distinct:
            return list(map(json_str, values))
        return [JSON_NULL if v is None else json_str(v) for v in values]
    if classes == _FLOAT_TYPE:
        distinct = set(values)
        if all(map(math.isfinite, distinct)):
            if len(distinct) * 4 <= len(values) and 0.0 not in distinct:
                table = {v: float.__repr__(v) for v in distinct}
                return list(map(table.__getitem__, values))
            return list(map(float.__repr__, values))
    out = []
    for v in values:
        encode = _JSON_SCALAR.get(v.__class__)
        out.append(encode(v) if encode is not None else dumps(v))
    return out


def json_texts(values: pd.Series) -> list[str]:
    """Return ``dumps(plain_value(v))`` of every value of a column (``null`` for missing values).

    Text is encoded value by value in C; integer and boolean columns are factorised, so each distinct
    value is encoded once; other dtypes (floats, where -0.0 and 0.0 are one factor; objects) go
    value by value.
    """
    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype):
        return [JSON_NULL if v is None else json_str(v) for v in values.to_numpy(dtype=object, na_value=None)]
    if isinstance(dtype, pd.BooleanDtype) or dtype.kind in "iub":
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        objects = np.asarray(uniques, dtype=object).tolist()
        table = np.array([*(json_list([plain_value(u)])[0] for u in objects), JSON_NULL], dtype=object)
        return table[codes].tolist()
    return json_list(plain_values(values))


class BulkWriter:
    """Read and write many rows through the DB-API (``executemany``) with values already serialised.

    SQLAlchemy's per-row parameter processing (JSON serialisation, type processors) is skipped: JSON
    columns get text made column-wise (`Batch`), and the few constant values (user, timestamp) go
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
        """Return, by id, the stored `VALUE_COLUMNS`, attributes (JSON text), personal token and version.

        One query: by id for up to `MAX_IN_IDS` ids, else the whole layer (filtered here).
        """
        attributes = "CAST(attributes AS TEXT)" if self.postgres else "attributes"
        sql = (
            f"SELECT {self.q(schema.ID)}, {self._names(VALUE_COLUMNS)}, {attributes}, personal, "
            f"{self.q(schema.VERSION)} FROM features WHERE layer = {self._mark()}"
        )
        params: tuple[Any, ...] = (layer,)
        if len(ids) <= MAX_IN_IDS:
            if not ids:
                return {}
            sql += f" AND {self.q(schema.ID)} IN ({', '.join([self._mark()] * len(ids))})"
            params += tuple(ids)
        found = self.conn.exec_driver_sql(sql, params).fetchall()
        if not found:
            return {}
        wanted = set(ids)
        return {r[0]: tuple(r[1:]) for r in found if r[0] in wanted}

    def insert_features(self, layer: str, columns: list[list[Any]], *, user: str, now: datetime) -> None:
        """Insert rows as version 1, given column by column (equally long lists).

        The columns are: id, *`VALUE_COLUMNS`, personal token, attributes JSON, ID-number digest. Each
        row's parameters are zipped with the constants into one tuple (no row tuple to extend: half the
        allocations, and fewer garbage collections, in a large import).
        """
        if not columns[0]:
            return
        names = [schema.ID, *VALUE_COLUMNS, "personal", "attributes", "id_number_index"]
        tail = ["layer", schema.VERSION, "created_by", "created_at", "updated_by", "updated_at"]
        marks = ", ".join(self._mark(c == "attributes") for c in [*names, *tail])
        sql = f"INSERT INTO features ({self._names([*names, *tail])}) VALUES ({marks})"
        at = self._when(features_table, "created_at", now)
        const = (layer, 1, user, at, user, at)
        self.conn.exec_driver_sql(sql, _zip_rows(columns, tail=const))

    def update_features(self, layer: str, updates: list[tuple[Any, ...]], *, user: str, now: datetime) -> int:
        """Update rows still at the version read; return how many were updated.

        ``updates`` holds (id, *`VALUE_COLUMNS`, personal token, attributes JSON, ID-number digest,
        version read).
        """
        q = self.q
        sets = ", ".join(
            [f"{q(c)} = {self._mark()}" for c in (*VALUE_COLUMNS, "personal")]
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

    def insert_history(self, layer: str, columns: list[Iterable[Any]], *, user: str, now: datetime) -> None:
        """Append history rows given column by column: feature ids, actions, versions, before JSON, after JSON.

        The feature ids are a list; any other column is a list as long, or an iterator repeating one
        value for every row (``itertools.repeat``). Each row's parameters are zipped into one tuple.
        """
        if not columns[0]:
            return
        names = ["at", "actor", "layer", "feature_id", "action", schema.VERSION, "before", "after"]
        marks = ", ".join(self._mark(c in ("before", "after")) for c in names)
        sql = f"INSERT INTO history ({self._names(names)}) VALUES ({marks})"
        head = (self._when(history_table, "at", now), user, layer)
        self.conn.exec_driver_sql(sql, _zip_rows(columns, head=head))


def _zip_rows(columns: list[Iterable[Any]], *, head: tuple[Any, ...] = (), tail: tuple[Any, ...] = ()) -> list[tuple]:
    """Return each row's parameters: the ``head`` constants, its value of each column, the ``tail`` constants.

    The columns are lists of one length (checked: a shorter one must not drop rows silently) or
    iterators repeating a value (``itertools.repeat``).

    Raises
    ------
    ValueError
        If two list columns differ in length.
    """
    lengths = {len(c) for c in columns if isinstance(c, list)}
    if len(lengths) > 1:
        msg = f"columns of different lengths {sorted(lengths)}: every column needs a value per row"
        raise ValueError(msg)
    return list(zip(*map(itertools.repeat, head), *columns, *map(itertools.repeat, tail), strict=False))
