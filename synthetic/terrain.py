"""Generate a SYNTHETIC elevation model shaped like Bishan's terrain: two ridges and the valley between.

Bishan lies in a valley between two long ridges that run north-north-east: 缙云山 (Jinyun Shan) along
the east of the district and 云雾山 (Yunwu Shan) along the west. This module draws such a surface:
a valley floor near ``VALLEY_M``, two Gaussian ridges whose crests rise and fall along their length,
and seeded low hills on top. The heights and widths are rough figures of that landscape, not
measurements: the result says nothing about the real elevation of any place. It exists so that the
slope-aware costs (``geo.dem``) have a realistic workload on the demo district.
"""

from __future__ import annotations

import logging

import numpy as np
from affine import Affine
from scipy.ndimage import gaussian_filter

from geo.dem import write_dem

logger = logging.getLogger(__name__)

#: Valley floor, metres above sea level (rough: the Bishan valley lies around 300 m).
VALLEY_M = 300.0
#: Crest height above the valley (rough: both ridges reach some 800-950 m) and half-width (sigma, m).
RIDGE_RISE_M = {"west": 480.0, "east": 560.0}
RIDGE_SIGMA_M = 1800.0
#: Where each ridge's crest runs, as a share of the district's width from its western edge.
RIDGE_AT = {"west": 0.10, "east": 0.90}
#: Low hills: standard deviation (m) and correlation length (m) of the seeded noise.
HILLS_M, HILLS_SCALE_M = 22.0, 1500.0
CELL_M = 100.0


def generate_terrain(
    bounds: tuple[float, float, float, float], *, seed: int, cell_m: float = CELL_M
) -> tuple[np.ndarray, Affine]:
    """Return elevations (rows × columns, north row first) and their transform over ``bounds``.

    Parameters
    ----------
    bounds
        ``(xmin, ymin, xmax, ymax)`` in a projected CRS (metres); a margin of two cells is added.
    seed
        Seed of the low hills; the same seed gives the same array.
    cell_m
        Cell size in metres.
    """
    xmin, ymin, xmax, ymax = bounds
    xmin, ymin, xmax, ymax = xmin - 2 * cell_m, ymin - 2 * cell_m, xmax + 2 * cell_m, ymax + 2 * cell_m
    cols = int(np.ceil((xmax - xmin) / cell_m))
    rows = int(np.ceil((ymax - ymin) / cell_m))
    x = xmin + (np.arange(cols) + 0.5) * cell_m
    y = ymax - (np.arange(rows) + 0.5) * cell_m
    gx, gy = np.meshgrid(x, y)
    along = (gy - ymin) / (ymax - ymin)  # 0 south, 1 north
    z = np.full(gx.shape, VALLEY_M)
    for side, share in RIDGE_AT.items():
        crest_x = xmin + share * (xmax - xmin) + 0.04 * (xmax - xmin) * (along - 0.5)  # north-north-east
        crest = RIDGE_RISE_M[side] * (0.75 + 0.25 * np.sin(2 * np.pi * (along * 1.5 + (0.3 if side == "east" else 0))))
        z += crest * np.exp(-0.5 * ((gx - crest_x) / RIDGE_SIGMA_M) ** 2)
    rng = np.random.default_rng(seed)
    hills = gaussian_filter(rng.standard_normal(gx.shape), HILLS_SCALE_M / cell_m / 2, mode="nearest")
    z += hills / hills.std() * HILLS_M
    return np.round(z, 1), Affine(cell_m, 0.0, xmin, 0.0, -cell_m, ymax)


def write_district_dem(boundary_xy: tuple[float, float, float, float], path: str, *, crs: str, seed: int) -> None:
    """Write the synthetic DEM of a district (bounds of its boundary in ``crs``) to ``path``."""
    values, transform = generate_terrain(boundary_xy, seed=seed)
    write_dem(path, values, transform, crs)
    logger.info("Wrote a synthetic %d × %d DEM (%.0f m cells) to %r", *values.shape, CELL_M, path)
