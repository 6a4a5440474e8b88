"""A pointy-top hexagon grid in a projected CRS, on numpy arrays (axial coordinates q, r).

Used by the gaps analysis (``analyses.gaps``: demand counted per hexagon) and by the planner's result
maps (``webmap.maps.result_layers``: dense points drawn as counts per hexagon). A hexagon of edge
``size`` metres has its centre at ``x = size·√3·(q + r/2)``, ``y = size·1.5·r``.
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


def hex_polygons(q: np.ndarray, r: np.ndarray, size: float) -> np.ndarray:
    """Return the hexagons (axial ``q``, ``r``, edge ``size``) as shapely polygons in the grid's CRS."""
    q, r = np.asarray(q, dtype=float), np.asarray(r, dtype=float)
    cx = size * np.sqrt(3.0) * (q + r / 2.0)
    cy = size * 1.5 * r
    angles = np.deg2rad(30.0 + 60.0 * np.arange(6))
    xs = cx[:, None] + size * np.cos(angles)[None, :]
    ys = cy[:, None] + size * np.sin(angles)[None, :]
    return shapely.polygons(np.stack([xs, ys], axis=-1))
