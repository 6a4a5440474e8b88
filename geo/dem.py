"""Read a digital elevation model (GeoTIFF, with rasterio) and give road nodes their elevation.

Elevations are interpolated bilinearly between cell centres (the nearest edge cell within half a
cell of the raster's edge); ``nodata`` cells drop out of the four and the others are weighted up,
unless they carry less than half the weight. Points outside the raster or among ``nodata`` cells
get NaN, and so do
the gradients of the pieces that touch them (those pieces cost as on the flat). A piece's gradient
is the rise between its end nodes over its network length, signed from ``piece_u`` to ``piece_v``:
the pieces of ``geo.osm`` run between junctions, so a piece that climbs and falls again counts
its net rise only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyproj

from geo.errors import DemError

if TYPE_CHECKING:
    from affine import Affine

# rasterio is imported where a DEM is read or written: preparing a flat network needs none of it.


@dataclass(frozen=True, eq=False)
class Dem:
    """One band of elevations (metres) on a north-up grid.

    Parameters
    ----------
    source
        The file read.
    crs
        The raster's CRS.
    transform
        Affine from (column, row) of cell corners to ``crs`` coordinates.
    values
        float64 ``rows × columns`` elevations, NaN on ``nodata`` cells.
    """

    source: str
    crs: pyproj.CRS
    transform: Affine
    values: np.ndarray

    def sample(self, x: np.ndarray, y: np.ndarray, crs: str | pyproj.CRS) -> np.ndarray:
        """Return the elevation (m) at points ``x``, ``y`` given in ``crs``; NaN outside the raster."""
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if pyproj.CRS(crs) != self.crs:
            x, y = pyproj.Transformer.from_crs(crs, self.crs, always_xy=True).transform(x, y)
            x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        t = self.transform  # north-up (checked in read_dem)
        col, row = (x - t.c) / t.a, (y - t.f) / t.e
        rows, cols = self.values.shape
        inside = (col >= 0) & (col <= cols) & (row >= 0) & (row <= rows)
        # fractional position between cell centres, clamped to the edge cells
        fc = np.clip(np.asarray(col) - 0.5, 0.0, cols - 1.0)
        fr = np.clip(np.asarray(row) - 0.5, 0.0, rows - 1.0)
        c0 = np.minimum(np.floor(fc).astype(np.int64), max(cols - 2, 0))
        r0 = np.minimum(np.floor(fr).astype(np.int64), max(rows - 2, 0))
        c1, r1 = np.minimum(c0 + 1, cols - 1), np.minimum(r0 + 1, rows - 1)
        tc, tr = fc - c0, fr - r0
        corners = ((r0, c0, (1 - tc) * (1 - tr)), (r0, c1, tc * (1 - tr)), (r1, c0, (1 - tc) * tr), (r1, c1, tc * tr))
        total = np.zeros_like(tc)
        weight = np.zeros_like(tc)
        for r, c, w in corners:
            value = self.values[r, c]
            ok = ~np.isnan(value)
            total += np.where(ok, value * w, 0.0)
            weight += np.where(ok, w, 0.0)
        # nodata corners drop out and the others are weighted up; mostly nodata around the point: NaN
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.where(weight >= 0.5, total / weight, np.nan)
        return np.where(inside, z, np.nan)


def read_dem(path: str | Path) -> Dem:
    """Read band 1 of a GeoTIFF DEM.

    Raises
    ------
    DemError
        If the file is missing or not a raster, has no CRS, is rotated, or has fewer than 2 × 2
        cells. The message (Chinese first, then English) names the file and the fix.
    """
    path = Path(path)
    if not path.is_file():
        msg = (
            f"高程文件（DEM）{str(path)!r} 不存在，请检查路径（district.toml 中的 `dem`）；"
            f"DEM file {str(path)!r} does not exist; check the path (`dem` in district.toml)."
        )
        raise DemError(msg)
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as src:
            crs, transform, nodata = src.crs, src.transform, src.nodata
            values = src.read(1, masked=False).astype(np.float64)
    except RasterioIOError as exc:
        msg = (
            f"高程文件 {str(path)!r} 不是可读的栅格（GeoTIFF）：{exc}；"
            f"DEM file {str(path)!r} is not a readable raster (GeoTIFF): {exc}."
        )
        raise DemError(msg) from None
    if crs is None:
        msg = (
            f"高程文件 {str(path)!r} 没有坐标系，请用 gdal_edit.py -a_srs 补上；"
            f"DEM file {str(path)!r} has no CRS; set one (e.g. `gdal_edit.py -a_srs EPSG:32648`)."
        )
        raise DemError(msg)
    if transform.b != 0 or transform.d != 0:
        msg = (
            f"高程文件 {str(path)!r} 是旋转的栅格，请先用 gdalwarp 转为正北朝上；"
            f"DEM file {str(path)!r} is rotated; warp it north-up first (`gdalwarp`)."
        )
        raise DemError(msg)
    if values.shape[0] < 2 or values.shape[1] < 2:
        msg = (
            f"高程文件 {str(path)!r} 只有 {values.shape} 个格网，至少需要 2 × 2；"
            f"DEM file {str(path)!r} has {values.shape} cells; at least 2 × 2 are needed."
        )
        raise DemError(msg)
    if nodata is not None:
        values[values == nodata] = np.nan
    return Dem(str(path), pyproj.CRS(crs), transform, values)


def piece_grades(elevation: np.ndarray, u: np.ndarray, v: np.ndarray, length_m: np.ndarray) -> np.ndarray:
    """Return each piece's gradient from ``u`` to ``v``: rise over length; NaN without both elevations."""
    rise = np.asarray(elevation)[v] - np.asarray(elevation)[u]
    length = np.asarray(length_m, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(length > 0, rise / np.where(length > 0, length, 1.0), np.nan)


def file_digest(path: str | Path) -> str:
    """Return the SHA-256 of a file's bytes (keys the prepared-network cache on the DEM)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_dem(path: str | Path, values: np.ndarray, transform: Affine, crs: str) -> Path:
    """Write ``values`` (rows × columns, metres) as a deflate-compressed float32 GeoTIFF; return the path."""
    path = Path(path)
    profile = {
        "driver": "GTiff",
        "height": values.shape[0],
        "width": values.shape[1],
        "count": 1,
        "dtype": "float32",
        "crs": crs,
        "transform": transform,
        "compress": "deflate",
        "predictor": 3,
        "nodata": -9999.0,
    }
    import rasterio

    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.where(np.isnan(values), -9999.0, values).astype(np.float32), 1)
    return path
