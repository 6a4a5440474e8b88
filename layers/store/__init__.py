"""Keep the point layers in a relational database through SQLAlchemy (SQLite by default).

`Store` is the API: every change is one transaction that also appends a history row; updates carry
the version they read (optimistic locking); households' personal fields are encrypted at rest and
masked on read. The schema is created and migrated by Alembic (``layers/migrations``).

Where things go:

- ``tables``: the SQLAlchemy tables on `metadata`, `MIGRATIONS_DIR`, and the named column groups.
  A new table goes here, with a new Alembic revision in ``layers/migrations/versions``.
- ``api``: `Store` (with `ImportCounts`, `AccessLogQuery`). A new query or write is a `Store` method here.
- ``records``: the one conversion between stored rows and records (a stored row → the flat
  feature record or frame; incoming rows → stored records; history rows). A new conversion goes here.
- ``bulk``: `Batch` and `BulkWriter`, the column-wise, ``executemany`` path of large imports and the
  JSON encoding it needs.
- ``probes``: `VersionProbes`, the per-thread autocommit read behind `Store.data_version`.
- ``database``: `upgrade_schema`, `grant_app_role` and the SQLite connection hooks (pragmas,
  the authorizer that keeps the history and access log append-only, the larger page cache of an
  import: `bulk_page_cache`).

Callers import from ``layers.store``; the names below are its public API.
"""

from __future__ import annotations

from layers.store.api import ACCESS_KINDS, AccessLogQuery, ImportCounts, Store
from layers.store.database import grant_app_role, upgrade_schema
from layers.store.tables import (
    ACCESS_CHANNELS,
    APPEND_ONLY_TABLES,
    MIGRATIONS_DIR,
    access_log_table,
    features_table,
    history_table,
    metadata,
    store_district_table,
    visits_table,
)

__all__ = [
    "ACCESS_CHANNELS",
    "ACCESS_KINDS",
    "APPEND_ONLY_TABLES",
    "MIGRATIONS_DIR",
    "AccessLogQuery",
    "ImportCounts",
    "Store",
    "access_log_table",
    "features_table",
    "grant_app_role",
    "history_table",
    "visits_table",
    "metadata",
    "store_district_table",
    "upgrade_schema",
]
