"""Give the app one store and one district, opened on first use (flaskr ``db.py`` style)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask, current_app

from layers import schema
from layers.errors import DistrictMismatchError

if TYPE_CHECKING:
    from layers.district import District
    from layers.store import Store

# The store (pandas, SQLAlchemy, Alembic) and the district (geopandas) are imported on first use, so that
# `accessplan --help` and the command definitions import none of them.

#: Opening a store runs the migrations: threads of a fresh server must not open it at once.
_OPENING = threading.Lock()


def get_store() -> Store:
    """Return the current app's store (one connection pool per app, opened by the first request)."""
    store = current_app.extensions.get("accessplan_store")
    if store is None:
        from layers.crypto import BLIND_INDEX_KEY_ENV_VAR, BlindIndex, FieldCipher, load_or_create_key
        from layers.store import Store

        with _OPENING:
            store = current_app.extensions.get("accessplan_store")
            if store is None:
                instance = Path(current_app.instance_path)
                key = current_app.config.get("ENCRYPTION_KEY") or load_or_create_key(instance / "encryption.key")
                index_key = current_app.config.get("BLIND_INDEX_KEY") or load_or_create_key(
                    instance / "blind_index.key", env_var=BLIND_INDEX_KEY_ENV_VAR
                )
                store = Store(
                    current_app.config["DATABASE_URL"],
                    cipher=FieldCipher(key),
                    blind_index=BlindIndex(index_key),
                    migration_url=current_app.config.get("MIGRATION_DATABASE_URL"),
                )
                district = get_district()
                try:
                    store.bind_district(district.code, district.name)  # another district's store refuses
                except DistrictMismatchError:
                    store.close()
                    raise
                current_app.extensions["accessplan_store"] = store
    return store


def get_district() -> District:
    """Return the current app's district, loaded once."""
    district = current_app.extensions.get("accessplan_district")
    if district is None:
        from layers.district import load_district

        district = load_district(current_app.config["DISTRICT_DIR"])
        current_app.extensions["accessplan_district"] = district
    return district


def resolve_towns(values: Iterable[str]) -> list[str]:
    """Return the town codes of ``values`` (9-digit codes or Chinese names of the app's district's towns).

    Raises
    ------
    ValueError
        If a value names no town of the district; the message lists the valid names.
    """
    towns = get_district().towns
    names = dict(zip(towns[schema.NAME], towns[schema.TOWN_CODE], strict=True))
    codes = set(towns[schema.TOWN_CODE])
    resolved, unknown = [], []
    for value in values:
        value = value.strip()
        code = value if value in codes else names.get(value)
        (resolved if code else unknown).append(code or value)
    if unknown:
        msg = f"Unknown town(s) {unknown!r}; use a town code or one of: {'、'.join(names)}."
        raise ValueError(msg)
    return resolved


def init_app(app: Flask) -> None:
    """Reserve the app's store and district slots (filled on first use)."""
    app.extensions.setdefault("accessplan_store", None)
    app.extensions.setdefault("accessplan_district", None)
    app.register_error_handler(DistrictMismatchError, _district_mismatch)


def _district_mismatch(error: DistrictMismatchError) -> tuple[str, int, dict[str, str]]:
    """Answer a request on another district's store with the message (503), never a 500 page."""
    return str(error), 503, {"Content-Type": "text/plain; charset=utf-8"}
