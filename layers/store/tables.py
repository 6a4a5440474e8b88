"""The store's tables: their SQLAlchemy definitions on one `metadata`, and the named groups of their columns.

A new table goes here (and into a new Alembic revision in ``layers/migrations/versions``); so does a
new group of columns that more than one module of the package needs.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from layers import schema

#: The Alembic scripts that create and migrate these tables (``layers/migrations``).
MIGRATIONS_DIR = Path(__file__).parent.with_name("migrations")

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

store_district_table = sa.Table(
    "store_district",
    metadata,
    sa.Column("slot", sa.Integer, primary_key=True),  # always 1: one district per store
    sa.Column("code", sa.String(12), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

visits_table = sa.Table(
    "visits",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("household_id", sa.String(64), nullable=False),
    sa.Column(schema.TOWN_CODE, sa.String(9), nullable=False),
    sa.Column("visited_on", sa.Date, nullable=False),
    sa.Column("notes", sa.Text, nullable=False),  # encrypted token: what was found, the next step
    sa.Column("corrects", sa.Integer),  # seq of the visit row this row corrects (None: a new visit)
    sa.Index("ix_visits_household", "household_id"),
)

#: Tables the app may only append to and read (history, access log, caseworkers' visit log).
APPEND_ONLY_TABLES = ("history", "access_log", "visits")
#: How a personal record was seen: the web pages, the JSON API or the command line.
ACCESS_CHANNELS = ("web", "api", "cli")

#: Stored columns that never come out of `Store.features` / `Store.feature` as such (attributes are spread).
HIDDEN_COLUMNS = ("attributes", "personal", "id_number_index")
#: Columns of a stored row that describe the row itself rather than the feature.
META_COLUMNS = ("layer", *schema.SYSTEM_COLUMNS)
#: Columns of an incoming row that are stored as columns of their own (not as attributes).
ROW_COLUMNS = (
    schema.ID, schema.TOWN_CODE, schema.VILLAGE_CODE, schema.NAME, schema.ADDRESS,
    schema.LON, schema.LAT, "source_datum", schema.STATUS,
)  # fmt: skip

#: Stored values of a feature that `layers.store.bulk.Batch.rows` holds, in this order (after ``layer``
#: and ``id``).
VALUE_COLUMNS = (
    schema.TOWN_CODE, schema.VILLAGE_CODE, schema.NAME, schema.ADDRESS, schema.LON, schema.LAT, "source_datum",
    schema.STATUS,
)  # fmt: skip
#: How many `VALUE_COLUMNS` there are.
N_ROW_VALUES = len(VALUE_COLUMNS)
