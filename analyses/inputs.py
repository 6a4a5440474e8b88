"""Turn what a user names — a stored layer, a point file, the villages, a grid — into analysis inputs.

The demand builders (``grid_demand``, ``assign_towns``, ``villages_as_demand``, ``mark_urban``) live here;
``load_points`` picks one by name; ``load_demand`` does the same for an analysis's demand, where the
household layer comes only as planning points and its read is logged.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from analyses.coverage import URBAN
from geo.datums import convert
from layers import schema
from layers.io import read_table

if TYPE_CHECKING:
    from layers.district import District
    from layers.privacy import Reader
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


def load_demand(
    source: str,
    *,
    store: Store,
    district: District,
    reader: Reader,
    datum: str | None = None,
    grid_spacing_m: float = 400.0,
) -> gpd.GeoDataFrame:
    """Return an analysis's demand points (``load_points``); households only as generalised planning points.

    Every screen and download of an analysis shows its demand points, so households go in as
    `layers.privacy.PLANNING_COLUMNS` (plus ``urban``) on the 0.001° grid (~100 m): no address, category
    or grade, and no exact location, ever reaches a planner's results. The household read is written to
    the access log with ``reader``'s user and channel (``web`` for a planner's job, ``cli`` for a command).
    """
    from layers.privacy import log_bulk_read, planning_view

    demand = load_points(source, store=store, district=district, datum=datum, grid_spacing_m=grid_spacing_m)
    if source != schema.HOUSEHOLD:
        return demand
    log_bulk_read(store, len(demand), user=reader.user, purpose="analysis demand (generalised points)",
                  channel=reader.channel)  # fmt: skip
    return planning_view(demand, extra=(URBAN,))


def grid_demand(boundary: gpd.GeoDataFrame, *, crs: str, spacing_m: float) -> gpd.GeoDataFrame:
    """Return a regular grid of demand points inside ``boundary`` (ids ``G<row>_<col>``), in EPSG:4326.

    Points carry no town code of their own; ``assign_towns`` gives them one.
    """
    if not spacing_m > 0:
        msg = f"`spacing_m` must be positive; got {spacing_m!r}."
        raise ValueError(msg)
    outline = boundary.to_crs(crs).union_all()
    xmin, ymin, xmax, ymax = outline.bounds
    xs = np.arange(xmin + spacing_m / 2, xmax, spacing_m)
    ys = np.arange(ymin + spacing_m / 2, ymax, spacing_m)
    gx, gy = np.meshgrid(xs, ys)
    rows, cols = np.meshgrid(np.arange(len(ys)), np.arange(len(xs)), indexing="ij")
    inside = shapely.contains_xy(outline, gx.ravel(), gy.ravel())
    ids = [f"G{r}_{c}" for r, c in zip(rows.ravel()[inside], cols.ravel()[inside], strict=True)]
    points = gpd.GeoDataFrame(
        {schema.ID: ids}, geometry=gpd.points_from_xy(gx.ravel()[inside], gy.ravel()[inside]), crs=crs
    )
    return points.to_crs(schema.WGS84)


def assign_towns(points: gpd.GeoDataFrame, town_areas: gpd.GeoDataFrame, *, crs: str) -> gpd.GeoDataFrame:
    """Return ``points`` with the ``town_code`` of the town area each lies in (nearest area at the edges).

    The join runs in the projected ``crs`` (metres); the result keeps the CRS of ``points``. Without town
    areas (a district whose towns have no seats) every point's ``town_code`` is null: its town is unknown.
    """
    if town_areas.empty:
        return points.assign(**{schema.TOWN_CODE: pd.Series([None] * len(points), index=points.index, dtype=object)})
    areas = town_areas[[schema.TOWN_CODE, "geometry"]].to_crs(crs)
    projected = points.drop(columns=[schema.TOWN_CODE], errors="ignore").to_crs(crs)
    joined = gpd.sjoin_nearest(projected, areas, how="left")
    joined = joined[~joined.index.duplicated()]
    return joined.drop(columns=["index_right"]).to_crs(points.crs)


def villages_as_demand(villages: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return villages as demand points: ``id`` = village code, ``urban`` from the 城乡分类代码 (1xx urban)."""
    demand = villages.copy()
    demand[schema.ID] = demand[schema.VILLAGE_CODE].astype(str)
    demand[URBAN] = demand[schema.URBAN_RURAL_CODE].astype(str).str.startswith("1")
    return demand


def mark_urban(demand: gpd.GeoDataFrame, villages: pd.DataFrame) -> gpd.GeoDataFrame:
    """Return ``demand`` with ``urban`` taken from its village's 城乡分类代码 (False where unknown)."""
    urban = villages.set_index(schema.VILLAGE_CODE)[schema.URBAN_RURAL_CODE].astype(str).str.startswith("1")
    marked = demand.copy()
    marked[URBAN] = marked[schema.VILLAGE_CODE].astype(str).map(urban).fillna(False).astype(bool)
    return marked


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
