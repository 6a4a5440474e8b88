"""Turn what a user names — a stored layer, a point file, the villages, a grid — into analysis inputs."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd

from analyses.coverage import assign_towns, grid_demand, mark_urban, villages_as_demand
from geo.datums import convert
from layers import schema
from layers.io import read_table

if TYPE_CHECKING:
    from layers.district import District
    from layers.store import Store

VILLAGES = "village"
GRID = "grid"
_VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp")


def load_points(
    source: str,
    *,
    store: Store,
    district: District,
    statuses: tuple[str, ...] | None = None,
    datum: str | None = None,
    grid_spacing_m: float = 400.0,
) -> gpd.GeoDataFrame:
    """Return points (EPSG:4326) with ``id``, ``town_code`` and, where known, ``village_code`` and ``urban``.

    Parameters
    ----------
    source
        A layer name in the store (``rehab_station`` … ``household``; households come without any
        personal field), ``village`` (the district's villages, weighted by ``population`` or
        ``households``), ``grid`` (a regular grid inside the district), or a file: CSV/XLSX with
        ``id``, ``lon``, ``lat`` (needs ``datum``), GeoJSON or GeoPackage points.
    statuses
        Keep only rows with these statuses (stored layers and files with a ``status`` column).
    datum
        Datum of a CSV/XLSX file's coordinates: ``wgs84``, ``gcj02`` or ``bd09``.
    grid_spacing_m
        Spacing of the ``grid`` demand.

    Raises
    ------
    ValueError
        If a file lacks ``id``/``lon``/``lat``, a CSV has no ``datum``, or ``source`` is unknown.
    """
    if source in schema.ALL_LAYERS:
        points = store.features(source, statuses=statuses)
        return mark_urban(points, district.villages)
    if source == VILLAGES:
        return villages_as_demand(district.villages)
    if source == GRID:
        return assign_towns(grid_demand(district.boundary, crs=district.crs, spacing_m=grid_spacing_m),
                            district.town_areas, crs=district.crs)  # fmt: skip
    path = Path(source)
    if not path.is_file():
        msg = (
            f"`{source}` is neither a layer ({', '.join(schema.ALL_LAYERS)}), '{VILLAGES}', '{GRID}' "
            "nor an existing file."
        )
        raise ValueError(msg)
    return _points_from_file(path, district=district, statuses=statuses, datum=datum)


def _points_from_file(
    path: Path, *, district: District, statuses: tuple[str, ...] | None, datum: str | None
) -> gpd.GeoDataFrame:
    table = read_table(path)
    columns = {c: schema.canonical_column(c) or c for c in table.columns}
    table = table.rename(columns=columns)
    missing = [c for c in (schema.ID, schema.LON, schema.LAT) if c not in table.columns]
    if missing:
        msg = f"{path.name!r} lacks the column(s) {missing!r}; a point file needs `id`, `lon`, `lat`."
        raise ValueError(msg)
    lon = pd.to_numeric(table[schema.LON], errors="coerce").to_numpy()
    lat = pd.to_numeric(table[schema.LAT], errors="coerce").to_numpy()
    bad = pd.isna(lon) | pd.isna(lat)
    if bad.any():
        rows = table.index[bad][:10].tolist()
        msg = f"{path.name!r}: rows {rows!r} have missing or unreadable `lon`/`lat`; fix or remove them."
        raise ValueError(msg)
    if path.suffix.lower() not in _VECTOR_SUFFIXES:
        if datum is None:
            msg = f"{path.name!r} does not say its datum: pass `--datum wgs84|gcj02|bd09`."
            raise ValueError(msg)
        lon, lat = convert(lon, lat, datum, "wgs84")
    points = gpd.GeoDataFrame(
        table.drop(columns=["geometry"], errors="ignore").assign(**{schema.ID: table[schema.ID].astype(str)}),
        geometry=gpd.points_from_xy(lon, lat),
        crs=schema.WGS84,
    )
    if statuses is not None and schema.STATUS in points.columns:
        points = points[points[schema.STATUS].isin(statuses)]
    if schema.TOWN_CODE not in points.columns:
        points = assign_towns(points, district.town_areas, crs=district.crs)
    return points.reset_index(drop=True)


def file_sha256(path: str | Path) -> str:
    """Return the SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def layer_version(points: pd.DataFrame) -> dict[str, Any]:
    """Describe the state of a layer's rows: count and the latest ``updated_at`` (None when unknown)."""
    latest = None
    if schema.UPDATED_AT in points.columns and len(points):
        value = pd.to_datetime(points[schema.UPDATED_AT]).max()
        latest = None if pd.isna(value) else value.isoformat()
    return {"rows": len(points), "max_updated_at": latest}
