"""What slopes change: coverage on flat costs against slope-aware costs, and the steep road pieces.

Two questions a planner in a hilly district asks of the wheelchair (or walking) profile:

- ``compare_flat_and_slopes``: which demand points a facility layer covers on flat costs and which it
  still covers once gradients slow or close roads (per town: points covered each way, lost, gained);
- ``steep_segments``: which road pieces are steeper than a gradient worth showing (1:20 by default) or
  closed by their slope in one or both directions, drawn uphill, with the source of the gradient
  (the piece's ``incline`` tag or the DEM).

Nothing here routes: the coverage results come from ``analyses.coverage.measure_coverage`` on the two
networks, the gradients from ``geo.prepared`` (``ProfileGraph.piece_grade``, ``piece_slope_closed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from analyses.coverage import WEIGHT
from layers import schema

if TYPE_CHECKING:
    from analyses.coverage import CoverageResult
    from geo.prepared import PreparedNetwork

#: Gradient from which a piece is "steep" on the map: 1:20 = 5 %, GB 50763-2012 §3.1 full-width kerb ramps and
#: the ADA's limit for an accessible route's running slope (DOMAIN.md §10, U). Steeper than the profile's
#: limit (1:12 for the manual chair) closes the piece in that direction.
STEEP_GRADE = 0.05
#: ``steep_segments``' ``closed`` values, for the uphill and downhill direction of the piece.
OPEN, CLOSED_UPHILL, CLOSED_DOWNHILL, CLOSED_BOTH = "open", "uphill", "downhill", "both"
#: ``steep_segments``' ``source`` values.
FROM_TAG, FROM_DEM = "incline", "dem"


@dataclass(frozen=True)
class SlopeComparison:
    """Coverage of the same demand by the same facilities on flat and on slope-aware costs.

    Parameters
    ----------
    flat, slopes
        The two coverage results (same points, same thresholds).
    by_town
        Per town and threshold column ``c``: ``points``, ``c_flat`` and ``c_slopes`` (points covered),
        ``c_lost`` (covered flat, not with slopes), ``c_gained`` and ``c_change`` (``c_slopes - c_flat``).
    summary
        Per threshold column: ``flat``, ``slopes``, ``lost``, ``gained``, ``change`` (points), and the
        weighted shares ``flat_share`` and ``slopes_share``.
    """

    flat: CoverageResult
    slopes: CoverageResult
    by_town: pd.DataFrame
    summary: dict[str, dict[str, Any]]


def compare_flat_and_slopes(flat: CoverageResult, slopes: CoverageResult) -> SlopeComparison:
    """Return what slopes change in coverage, overall and per town.

    Raises
    ------
    ValueError
        If the two results do not measure the same demand points with the same thresholds.
    """
    if not flat.points.index.equals(slopes.points.index) or flat.coverage_columns != slopes.coverage_columns:
        msg = "The flat and slope-aware results must measure the same demand points with the same thresholds."
        raise ValueError(msg)
    columns = flat.coverage_columns
    a, b = flat.points, slopes.points
    frame = pd.DataFrame({schema.TOWN_CODE: a[schema.TOWN_CODE].to_numpy()}, index=a.index)
    summary: dict[str, dict[str, Any]] = {}
    weight = a[WEIGHT].to_numpy(np.float64)
    total = weight.sum()
    for c in columns:
        was, now = a[c].to_numpy(bool), b[c].to_numpy(bool)
        frame[f"{c}_flat"], frame[f"{c}_slopes"] = was, now
        frame[f"{c}_lost"], frame[f"{c}_gained"] = was & ~now, now & ~was
        summary[c] = {
            "flat": int(was.sum()),
            "slopes": int(now.sum()),
            "lost": int((was & ~now).sum()),
            "gained": int((now & ~was).sum()),
            "change": int(now.sum()) - int(was.sum()),
            "flat_share": float(weight[was].sum() / total) if total else None,
            "slopes_share": float(weight[now].sum() / total) if total else None,
        }
    grouped = frame.dropna(subset=[schema.TOWN_CODE]).groupby(schema.TOWN_CODE, sort=True)
    by_town = pd.DataFrame({"points": grouped.size()})
    for c in columns:
        for part in ("flat", "slopes", "lost", "gained"):
            by_town[f"{c}_{part}"] = grouped[f"{c}_{part}"].sum().astype(int)
        by_town[f"{c}_change"] = by_town[f"{c}_slopes"] - by_town[f"{c}_flat"]
    return SlopeComparison(flat, slopes, by_town, summary)


def steep_segments(net: PreparedNetwork, profile: str, *, steep_grade: float = STEEP_GRADE) -> gpd.GeoDataFrame:
    """Return the road pieces steeper than ``steep_grade`` or closed by their slope for ``profile``.

    Parameters
    ----------
    net
        A prepared network (with a DEM or ``incline`` tags; without either nothing is steep).
    profile
        The profile whose gradients (tag over DEM) and limits count, e.g. ``"wheelchair"``.
    steep_grade
        Rise over run from which a piece is listed although the profile may still use it.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per piece, in the network's CRS, each line drawn uphill: ``piece``, ``name`` (street),
        ``highway``, ``length_m``, ``grade_percent`` (≥ 0, up the line), ``closed`` (``OPEN``,
        ``CLOSED_UPHILL``, ``CLOSED_DOWNHILL`` or ``CLOSED_BOTH``) and ``source`` (``FROM_TAG`` where the
        piece's ``incline`` tag gave the gradient, ``FROM_DEM`` otherwise).
    """
    pg = net.profile(profile)
    grade = np.asarray(pg.piece_grade, np.float64)
    closed_bits = np.asarray(pg.piece_slope_closed, np.int64)
    keep = np.flatnonzero((np.abs(np.nan_to_num(grade)) >= steep_grade) | (closed_bits != 0))
    down = grade[keep] < 0  # the piece runs downhill from u to v: draw it the other way
    up_closed = np.where(down, closed_bits[keep] & 2, closed_bits[keep] & 1) != 0
    down_closed = np.where(down, closed_bits[keep] & 1, closed_bits[keep] & 2) != 0
    closed = np.select(
        [up_closed & down_closed, up_closed, down_closed], [CLOSED_BOTH, CLOSED_UPHILL, CLOSED_DOWNHILL], OPEN
    )
    dem = np.asarray(net.piece_grade, np.float64)[keep]
    from_tag = ~np.isclose(dem, grade[keep], rtol=0.0, atol=1e-12, equal_nan=True)
    lines = []
    for p, reverse in zip(keep.tolist(), down.tolist(), strict=True):
        xy = net.piece_coords[net.piece_coord_ptr[p] : net.piece_coord_ptr[p + 1]]
        lines.append(shapely.linestrings(xy[::-1] if reverse else xy))
    table = pd.DataFrame(
        {
            "piece": keep,
            "name": net.piece_name[keep].astype(str),
            "highway": net.piece_highway[keep].astype(str),
            "length_m": np.round(net.piece_length_m[keep], 1),
            "grade_percent": np.round(np.abs(grade[keep]) * 100.0, 1),
            "closed": closed,
            "source": np.where(from_tag, FROM_TAG, FROM_DEM),
        }
    )
    return gpd.GeoDataFrame(table, geometry=lines, crs=net.crs)
