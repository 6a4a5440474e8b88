"""Rows and records: the ONE place where a stored row becomes a feature record and back.

A stored row (a mapping of `layers.store.tables.features_table`) comes out as a flat feature
record (`feature_record`: attributes spread as keys, no personal token) or as a frame of points
(`feature_frame`); an incoming frame of validated rows goes in as stored records (`to_records`,
value by value as `plain_value` / `plain_values` give them); a change becomes a history row
(`history_row`). A new conversion between stored rows and records goes here; the bulk writer
(`layers.store.bulk`) encodes the same values column-wise and must agree with these.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from layers import schema
from layers.store.tables import HIDDEN_COLUMNS, ROW_COLUMNS, features_table

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


def feature_record(row: Any) -> dict[str, Any]:
    """Return a stored row as one flat record: attributes as keys, no personal token."""
    record = {k: v for k, v in row.items() if k not in HIDDEN_COLUMNS}
    return {**record, **row["attributes"]}


def feature_frame(rows: Iterable[Any]) -> gpd.GeoDataFrame:
    """Return stored rows as a frame of `feature_record` s, points in EPSG:4326 (a stored row's columns if none)."""
    records = [feature_record(r) for r in rows]
    columns = None if records else [c.name for c in features_table.c if c.name not in HIDDEN_COLUMNS]
    df = pd.DataFrame.from_records(records, columns=columns)
    geometry = gpd.points_from_xy(df[schema.LON], df[schema.LAT], crs="EPSG:4326")
    return gpd.GeoDataFrame(df, geometry=geometry)


def history_row(
    at: datetime, user: str, layer: str, record: dict[str, Any], action: str, version: int,
    before: dict[str, Any] | None, after: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """Return the history row of one change: the stored rows ``before`` and ``after`` as JSON-safe snapshots."""
    return {
        "at": at, "actor": user, "layer": layer, "feature_id": record[schema.ID], "action": action,
        schema.VERSION: version, "before": jsonable(before), "after": jsonable(after),
    }  # fmt: skip


def jsonable(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """Keep a history snapshot JSON-safe; personal fields stay as their encrypted token."""
    if record is None:
        return None
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in record.items()}


def loads(text: Any) -> Any:
    """Return stored JSON parsed (drivers that parse JSON columns already give the object)."""
    return json.loads(text) if isinstance(text, str | bytes) else text


_SIMPLE_TYPES = frozenset((str, int, bool, type(None)))


def native_values(values: pd.Series) -> list[Any]:
    """Return a column's values as ``DataFrame.to_dict`` gives them: Python scalars, None for NA."""
    if isinstance(values.dtype, pd.api.extensions.ExtensionDtype):
        return values.to_numpy(dtype=object, na_value=None).tolist()
    array = values.to_numpy()
    if array.dtype.kind in "biuf":
        return array.tolist()  # Python scalars; NaN stays a float
    return [v.item() if isinstance(v, np.generic) else v for v in array.tolist()]


def plain_values(values: pd.Series) -> list[Any]:
    """Return `plain_value` of every value of a column (fast path for the common scalar types)."""
    if isinstance(values.dtype, pd.StringDtype):  # str or None already: nothing to convert
        return native_values(values)
    return [
        v if v.__class__ in _SIMPLE_TYPES or (v.__class__ is float and v == v) else plain_value(v)
        for v in native_values(values)
    ]


def value_rows(get: Callable[[str], list[Any]], columns: list[str], n: int) -> Iterable[tuple[Any, ...]]:
    """Return the values of ``columns`` row by row."""
    return zip(*(get(c) for c in columns), strict=True) if columns else ((),) * n


def as_float(value: Any) -> float:
    """Return ``value`` as a float, NaN for None."""
    return math.nan if value is None else float(value)


def plain_value(value: Any) -> Any:
    """Return ``value`` as a JSON-safe Python scalar, None for missing values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def personal_columns(layer: str, columns: Iterable[str]) -> list[str]:
    """Return the personal columns of ``layer`` (encrypted at rest) among ``columns``, in the layer's order."""
    present = set(columns)
    return [c for c in schema.layer_spec(layer).personal if c in present]


def attribute_columns(columns: list[str], personal: list[str]) -> list[str]:
    """Return the incoming ``columns`` stored as attributes: neither common, personal, row nor system columns."""
    return [
        c
        for c in columns
        if c not in schema.COMMON_COLUMNS
        and c not in personal
        and c not in ROW_COLUMNS
        and c not in schema.SYSTEM_COLUMNS
    ]


def no_coordinates(layer: str, feature_id: str, lon: float, lat: float) -> ValueError:
    """Return the error for an incoming row without finite ``lon``/``lat``."""
    return ValueError(f"Row {feature_id!r} of `{layer}` has no valid `lon`/`lat` ({lon!r}, {lat!r}); validate first.")


def to_records(layer: str, rows: pd.DataFrame) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Return each incoming row as stored (without ``personal``) and its plain personal fields (None if none).

    Works column by column: the values are converted once per column (`plain_values`), and the
    per-row work is building the dicts.

    Raises
    ------
    ValueError
        If a row has no finite ``lon``/``lat`` (the first such row is named).
    """
    columns = list(rows.columns)
    personal = personal_columns(layer, columns)
    attributes_of = attribute_columns(columns, personal)
    n = len(rows)

    def native(column: str) -> list[Any]:
        return native_values(rows[column]) if column in columns else [None] * n

    def plain(column: str) -> list[Any]:
        return plain_values(rows[column]) if column in columns else [None] * n

    ids = [str(v) for v in native(schema.ID)]
    lon = [as_float(v) for v in native(schema.LON)]
    lat = [as_float(v) for v in native(schema.LAT)]
    for i in range(n):
        if not (math.isfinite(lon[i]) and math.isfinite(lat[i])):
            raise no_coordinates(layer, ids[i], lon[i], lat[i])
    datum = native(schema.DATUM if schema.DATUM in columns else schema.SOURCE_DATUM)
    hidden = schema.layer_spec(layer).personal  # kept only in the encrypted token

    def clear(column: str) -> list[Any]:
        return [None] * n if column in hidden else plain(column)

    attribute_rows = value_rows(plain, attributes_of, n)
    attributes = [dict(zip(attributes_of, values, strict=True)) for values in attribute_rows]
    fields = (
        [dict(zip(personal, values, strict=True)) for values in value_rows(plain, personal, n)]
        if personal
        else [None] * n
    )
    keys = ("layer", schema.ID, schema.TOWN_CODE, schema.VILLAGE_CODE, schema.NAME, schema.ADDRESS,
            schema.LON, schema.LAT, "source_datum", schema.STATUS, "attributes")  # fmt: skip
    values = zip(
        [layer] * n, ids, [str(v) for v in native(schema.TOWN_CODE)], plain(schema.VILLAGE_CODE),
        clear(schema.NAME), clear(schema.ADDRESS), lon, lat, datum, native(schema.STATUS), attributes,
        strict=True,
    )  # fmt: skip
    return [(dict(zip(keys, v, strict=True)), p) for v, p in zip(values, fields, strict=True)]
