"""Keep point layers in a relational database through SQLAlchemy (SQLite by default)."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import Any

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event

from layers import schema

logger = logging.getLogger(__name__)

_metadata = sa.MetaData()

features_table = sa.Table(
    "features",
    _metadata,
    sa.Column("layer", sa.String(32), primary_key=True),
    sa.Column(schema.ID, sa.String(64), primary_key=True),
    sa.Column(schema.TOWN_CODE, sa.String(9), nullable=False, index=True),
    sa.Column(schema.VILLAGE_CODE, sa.String(12)),
    sa.Column(schema.NAME, sa.Text, nullable=False),
    sa.Column(schema.ADDRESS, sa.Text),
    sa.Column(schema.LON, sa.Float, nullable=False),
    sa.Column(schema.LAT, sa.Float, nullable=False),
    sa.Column("source_datum", sa.String(8), nullable=False),
    sa.Column(schema.STATUS, sa.String(32), nullable=False),
    sa.Column("attributes", sa.JSON, nullable=False),
    sa.Column(schema.VERSION, sa.Integer, nullable=False),
    sa.Column("updated_by", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


class Store:
    """A database of point layers; coordinates are WGS-84 at rest.

    Parameters
    ----------
    url
        SQLAlchemy URL, e.g. ``sqlite:///instance/accessplan.sqlite`` or a PostgreSQL URL.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = sa.create_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        _metadata.create_all(self.engine)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def count(self, layer: str | None = None) -> int:
        """Return the number of rows in ``layer`` (all layers when None)."""
        query = sa.select(sa.func.count()).select_from(features_table)
        if layer is not None:
            query = query.where(features_table.c.layer == layer)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def insert_features(self, layer: str, rows: pd.DataFrame, *, user: str) -> int:
        """Insert new rows of ``layer`` in one transaction: all rows or none.

        ``rows`` has the columns of ``schema.COMMON_COLUMNS`` with lon/lat already in WGS-84 (the
        ``datum`` column records the datum they were collected in); other columns become attributes.
        """
        now = datetime.now(UTC)
        attribute_columns = [c for c in rows.columns if c not in schema.COMMON_COLUMNS]
        records = [
            {
                "layer": layer,
                schema.ID: str(row[schema.ID]),
                schema.TOWN_CODE: str(row[schema.TOWN_CODE]),
                schema.VILLAGE_CODE: _none_if_missing(row.get(schema.VILLAGE_CODE)),
                schema.NAME: row[schema.NAME],
                schema.ADDRESS: _none_if_missing(row.get(schema.ADDRESS)),
                schema.LON: float(row[schema.LON]),
                schema.LAT: float(row[schema.LAT]),
                "source_datum": row[schema.DATUM],
                schema.STATUS: row[schema.STATUS],
                "attributes": {c: _none_if_missing(row[c]) for c in attribute_columns},
                schema.VERSION: 1,
                "updated_by": user,
                "updated_at": now,
            }
            for row in rows.to_dict("records")
        ]
        with self.engine.begin() as conn:
            conn.execute(features_table.insert(), records)
        logger.info("Inserted %d rows into layer %r", len(records), layer)
        return len(records)

    def features(self, layer: str, *, statuses: tuple[str, ...] | None = None) -> gpd.GeoDataFrame:
        """Return the rows of ``layer`` as points in EPSG:4326, attributes as columns."""
        query = sa.select(features_table).where(features_table.c.layer == layer)
        if statuses is not None:
            query = query.where(features_table.c.status.in_(statuses))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(features_table.c.id)).mappings().all()
        records = [{**{k: v for k, v in r.items() if k != "attributes"}, **r["attributes"]} for r in rows]
        df = pd.DataFrame.from_records(records, columns=None if records else list(features_table.c.keys()))
        geometry = gpd.points_from_xy(df[schema.LON], df[schema.LAT], crs="EPSG:4326")
        return gpd.GeoDataFrame(df.drop(columns=["attributes"], errors="ignore"), geometry=geometry)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _none_if_missing(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):  # numpy scalar → Python scalar for JSON
        return value.item()
    return value
