"""A pointy-top hexagon grid in a projected CRS, on numpy arrays (axial coordinates q, r).

Used by the gaps analysis (``analyses.gaps``: demand counted per hexagon) and by the planner's result
maps (``webmap.maps.result_layers``: dense points drawn as counts per hexagon, finer hexagons served
per map tile as the map zooms in: ``tile_xy``). A hexagon of edge ``size`` metres has its centre at
``x = size·√3·(q + r/2)``, ``y = size·1.5·r``.
"""

from __future__ import annotations

import numpy as np
import shapely


def axial(x: np.ndarray, y: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the axial coordinates (q, r) of the pointy-top hexagon of edge ``size`` holding each point.

    Parameters
    ----------
    x, y
        Projected coordinates (metres).
    size
        Edge (= circumradius) of the hexagons, metres; > 0.

    Returns
    -------
    tuple of numpy.ndarray
        ``q`` and ``r`` (int64), one per point.
    """
    fq = (np.sqrt(3.0) / 3.0 * x - y / 3.0) / size
    fr = (2.0 / 3.0 * y) / size
    fs = -fq - fr
    q, r, s = np.round(fq), np.round(fr), np.round(fs)
    dq, dr, ds = np.abs(q - fq), np.abs(r - fr), np.abs(s - fs)
    fix_q = (dq > dr) & (dq > ds)
    fix_r = ~fix_q & (dr > ds)
    q = np.where(fix_q, -r - s, q)
    r = np.where(fix_r, -q - s, r)
    return q.astype(np.int64), r.astype(np.int64)


def hex_centres(q: np.ndarray, r: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the centres (x, y, in the grid's CRS) of the hexagons of axial ``q``, ``r`` and edge ``size``."""
    q, r = np.asarray(q, dtype=float), np.asarray(r, dtype=float)
    return size * np.sqrt(3.0) * (q + r / 2.0), size * 1.5 * r


def hex_polygons(q: np.ndarray, r: np.ndarray, size: float) -> np.ndarray:
    """Return the hexagons (axial ``q``, ``r``, edge ``size``) as shapely polygons in the grid's CRS."""
    cx, cy = hex_centres(q, r, size)
    angles = np.deg2rad(30.0 + 60.0 * np.arange(6))
    xs = cx[:, None] + size * np.cos(angles)[None, :]
    ys = cy[:, None] + size * np.sin(angles)[None, :]
    return shapely.polygons(np.stack([xs, ys], axis=-1))


def tile_xy(lon: np.ndarray, lat: np.ndarray, zoom: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the Web-Mercator map tile (column x, row y; 2**zoom of each) holding each point.

    The tiles of Leaflet and OpenStreetMap: x counts from longitude -180 eastwards, y from latitude
    +85.05 southwards; a point on a tile's west or north edge is in that tile.

    Parameters
    ----------
    lon, lat
        WGS-84 degrees.
    zoom
        Tile zoom (0: one tile for the world).

    Returns
    -------
    tuple of numpy.ndarray
        ``x`` and ``y`` (int64), clipped to ``0 .. 2**zoom - 1``.
    """
    n = 2**zoom
    lat_rad = np.deg2rad(np.clip(np.asarray(lat, dtype=float), -85.05112878, 85.05112878))
    fx = (np.asarray(lon, dtype=float) + 180.0) / 360.0 * n
    fy = (1.0 - np.arcsinh(np.tan(lat_rad)) / np.pi) / 2.0 * n
    clip = (0, n - 1)
    return np.clip(np.floor(fx), *clip).astype(np.int64), np.clip(np.floor(fy), *clip).astype(np.int64)


def tile_bounds(x: int, y: int, zoom: int) -> tuple[float, float, float, float]:
    """Return the WGS-84 bounds (west, south, east, north) of the Web-Mercator tile ``x``, ``y`` at ``zoom``."""
    n = 2**zoom

    def lat(row: float) -> float:
        return float(np.rad2deg(np.arctan(np.sinh(np.pi * (1.0 - 2.0 * row / n)))))

    return x / n * 360.0 - 180.0, lat(y + 1), (x + 1) / n * 360.0 - 180.0, lat(y)
