"""Find where a facility layer leaves demand uncovered: points, road stretches, hexagons, per household.

Demand that is not covered falls in exactly one of three groups, never mixed:

- ``uncovered``: routed, with a cost above the threshold (the cost is reported);
- ``unreachable``: on the road network, but no facility can be reached from it (no cost exists);
- ``too_far_from_road``: farther from any usable road than the maximum snap distance, so not
  routed at all (a finding about the household's location or the road data, not a long trip).

Gap road stretches are the parts of road pieces from which a traveller standing on the road needs
more than the threshold to reach the nearest facility (one-way streets count the way they are
travelled). Hexagons summarise demand per cell of a regular grid in the district's projected CRS.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.ops

from analyses.costs import Placer, Threshold, parse_threshold
from analyses.coverage import (
    COST_COLUMN,
    FACILITY_COLUMN,
    REACHABLE,
    SNAP_DISTANCE_M,
    TOO_FAR,
    WEIGHT,
)
from geo.hexgrid import axial, hex_polygons
from geo.routing import nearest_facility
from layers import schema

if TYPE_CHECKING:
    from analyses.coverage import CoverageResult
    from geo.prepared import PreparedNetwork
    from geo.snapping import SnapResult

logger = logging.getLogger(__name__)

DEMAND_ID = "demand_id"
HOUSEHOLD_ID = "household_id"
HEX_ID = "hex_id"
#: Street name (OSM ``name``) of a gap road stretch; ``""`` where the road has none.
ROAD_NAME = "road_name"
#: Default hexagon size: edge length = centre-to-corner distance, metres (≈ 0.65 km² per cell).
DEFAULT_HEX_SIZE_M = 500.0
#: Gap parts shorter than this along the road (metres) are rounding slivers and are dropped.
_MIN_GAP_M = 0.01

# per-service status in the multi-service report
WITHIN = "within"
BEYOND = "beyond"
UNREACHABLE = "unreachable"
TOO_FAR_FROM_ROAD = "too_far_from_road"
SERVICE_STATUSES = (WITHIN, BEYOND, UNREACHABLE, TOO_FAR_FROM_ROAD)


@dataclass(frozen=True)
class GapsResult:
    """Where demand is not covered under one threshold; every frame in EPSG:4326, keyed by our ids.

    Parameters
    ----------
    threshold
        The threshold judged against.
    uncovered
        Demand routed to a facility at a cost above the threshold, indexed by ``demand_id``:
        ``town_code``, ``village_code``, ``weight``, ``cost_m``/``cost_s`` (whichever the coverage
        measured), ``facility_id_m``/``facility_id_s`` (the nearest facility), ``excess_m`` or
        ``excess_s`` (cost minus threshold), ``snap_distance_m``, ``hex_id`` (its hexagon), point geometry.
    unreachable
        Demand on the network from which no facility can be reached (no cost), same id columns.
    too_far_from_road
        Demand farther from any usable road than the maximum snap distance (not routed), with its
        ``snap_distance_m``.
    gap_segments
        One row per stretch of road beyond the threshold: ``piece`` (road piece position), ``u``/``v``
        (OSM node ids of the piece's ends), ``highway`` (class) and ``road_name`` (OSM ``name``, ``""``
        where the road has none), ``start_fraction``/``end_fraction`` (the stretch along the
        piece from ``u``), ``length_m``, ``reachable`` (False when no facility can be reached from any
        point of it), ``cost_u_<unit>``/``cost_v_<unit>`` (node to nearest facility) and
        ``cost_start_<unit>``/``cost_end_<unit>`` (cost from just inside each end of the stretch; equal to
        the threshold where the stretch starts mid-piece; NaN where unreachable), line geometry.
        None when ``find_gaps`` was not given the placer and facilities.
    hexagons
        One row per hexagon holding demand: ``hex_id`` (``"q_r"``, axial coordinates of a grid anchored
        at the projected CRS's origin), ``q``, ``r``, counts ``n_demand``, ``n_covered``, ``n_uncovered``,
        ``n_unreachable``, ``n_too_far_from_road``, the same as weights (``weight_*``), and
        ``gap_share`` (weighted share of demand not covered for any of the three reasons), polygon
        geometry. Counts are of individual demand points: suppress small cells before publishing.
    parameters
        Threshold, profile, hexagon size and CRS.
    """

    threshold: Threshold
    uncovered: gpd.GeoDataFrame
    unreachable: gpd.GeoDataFrame
    too_far_from_road: gpd.GeoDataFrame
    gap_segments: gpd.GeoDataFrame | None
    hexagons: gpd.GeoDataFrame
    parameters: dict[str, Any] = field(default_factory=dict)

    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        """Return the map layers by name, ids as a column, plain dtypes, EPSG:4326.

        Names: ``gap_uncovered``, ``gap_unreachable``, ``gap_too_far``, ``gap_segments`` (when computed)
        and ``gap_hexagons``. The point layers suit ``layers.io.write_layer``; the line and polygon
        layers can be written with ``GeoDataFrame.to_file`` (GeoPackage, GeoJSON).
        """
        named = {
            "gap_uncovered": self.uncovered,
            "gap_unreachable": self.unreachable,
            "gap_too_far": self.too_far_from_road,
            "gap_segments": self.gap_segments,
            "gap_hexagons": self.hexagons,
        }
        return {
            name: _plain(gdf.reset_index(drop=gdf.index.name is None)) for name, gdf in named.items() if gdf is not None
        }


def find_gaps(
    coverage: CoverageResult,
    demand: gpd.GeoDataFrame,
    *,
    threshold: str | Threshold,
    placer: Placer | None = None,
    facilities: gpd.GeoDataFrame | None = None,
    hex_size_m: float = DEFAULT_HEX_SIZE_M,
    crs: str | None = None,
) -> GapsResult:
    """Split the demand a coverage result leaves out into uncovered, unreachable and off-road, and map it.

    Parameters
    ----------
    coverage
        Result of ``analyses.coverage.measure_coverage`` for ``demand``.
    demand
        The demand points the coverage measured (any CRS), with the ``id`` column; only ids and
        geometry are read (no personal column reaches the result).
    threshold
        E.g. ``"300m"`` or ``"15min"``; the coverage must have measured its kind of cost (metres or
        seconds). It need not be one of the coverage's thresholds.
    placer
        The network the coverage used; with ``facilities``, gap road stretches are computed.
    facilities
        The facility layer the coverage measured (same rows).
    hex_size_m
        Hexagon edge length (= centre-to-corner distance), metres.
    crs
        Projected CRS (metres) of the hexagon grid; the network's when None (then ``placer`` is needed).

    Returns
    -------
    GapsResult

    Raises
    ------
    ValueError
        If the threshold's cost was not measured, ``demand`` lacks an id of the coverage, only one of
        ``placer``/``facilities`` is given, the facilities differ in number from the coverage's, or
        ``hex_size_m`` is not positive.
    """
    t = parse_threshold(threshold)
    points = coverage.points
    cost_column = COST_COLUMN[t.weight]
    if cost_column not in points.columns:
        measured = [c for c in COST_COLUMN.values() if c in points.columns]
        msg = (
            f"`coverage` has no {cost_column!r} (it measured {measured!r}); measure it with a threshold in "
            f"{'m or km' if t.unit == 'm' else 's, min or h'} to judge {t.label!r}."
        )
        raise ValueError(msg)
    if (placer is None) != (facilities is None):
        msg = "Give both `placer` and `facilities` to find gap road stretches, or neither."
        raise ValueError(msg)
    if not (np.isfinite(hex_size_m) and hex_size_m > 0):
        msg = f"`hex_size_m` must be a positive number of metres; got {hex_size_m!r}."
        raise ValueError(msg)
    grid_crs = crs if crs is not None else (placer.net.crs if placer is not None else None)
    if grid_crs is None:
        msg = "`crs` (the district's projected CRS) is needed for the hexagons when no `placer` is given."
        raise ValueError(msg)
    geometry = _demand_geometry(demand, points.index)

    too_far = points[TOO_FAR].to_numpy(dtype=bool)
    reachable = points[REACHABLE].to_numpy(dtype=bool) & np.isfinite(points[cost_column].to_numpy(dtype=float))
    unreachable = ~reachable & ~too_far
    uncovered = reachable & ~(points[cost_column].to_numpy(dtype=float) <= t.value)
    covered = reachable & ~uncovered

    projected = geometry.to_crs(grid_crs)
    q, r = axial(projected.x.to_numpy(), projected.y.to_numpy(), hex_size_m)
    points = points.assign(**{HEX_ID: [f"{a}_{b}" for a, b in zip(q, r, strict=True)]})
    base = [c for c in (schema.TOWN_CODE, schema.VILLAGE_CODE, WEIGHT, HEX_ID) if c in points.columns]
    cost_cols = [c for c in (*COST_COLUMN.values(), *FACILITY_COLUMN.values()) if c in points.columns]
    uncovered_frame = points.loc[uncovered, [*base, *cost_cols, SNAP_DISTANCE_M]].copy()
    uncovered_frame[f"excess_{t.unit}"] = uncovered_frame[cost_column] - t.value
    uncovered_gdf = _points_gdf(uncovered_frame, geometry[uncovered])
    unreachable_gdf = _points_gdf(points.loc[unreachable, [*base, SNAP_DISTANCE_M]], geometry[unreachable])
    too_far_gdf = _points_gdf(points.loc[too_far, [*base, SNAP_DISTANCE_M]], geometry[too_far])

    groups = {"covered": covered, "uncovered": uncovered, "unreachable": unreachable, "too_far_from_road": too_far}
    hexagons = _hexagons(q, r, points[WEIGHT].to_numpy(dtype=float), groups, hex_size_m, grid_crs)

    segments = None
    profile = coverage.parameters.get("profile")
    if placer is not None and facilities is not None:
        expected = coverage.parameters.get("n_facilities")
        if expected is not None and expected != len(facilities):
            msg = (
                f"`facilities` has {len(facilities)} rows but the coverage measured {expected}; "
                "pass the same facility layer."
            )
            raise ValueError(msg)
        facility_snap = placer.snap(facilities, profile)
        none = facility_snap.subset(np.zeros(len(facility_snap), dtype=bool))
        nearest = nearest_facility(placer.net, profile, facility_snap, none, weight=t.weight)
        segments = gap_segments(placer.net, profile, facility_snap, nearest.node_cost, threshold=t)

    logger.info(
        "Gaps at %s: %d uncovered, %d unreachable, %d too far from a road of %d demand points; %s hexagons%s",
        t.label,
        int(uncovered.sum()),
        int(unreachable.sum()),
        int(too_far.sum()),
        len(points),
        f"{len(hexagons):,}",
        "" if segments is None else f"; {len(segments):,} gap road stretches",
    )
    return GapsResult(
        threshold=t,
        uncovered=uncovered_gdf,
        unreachable=unreachable_gdf,
        too_far_from_road=too_far_gdf,
        gap_segments=segments,
        hexagons=hexagons,
        parameters={
            "threshold": {"label": t.label, "value": t.value, "unit": t.unit},
            "profile": profile,
            "hex_size_m": float(hex_size_m),
            "crs": str(grid_crs),
            "measure": "network",
        },
    )


def gap_segments(
    net: PreparedNetwork,
    profile: str,
    facility_snap: SnapResult,
    node_cost: np.ndarray,
    *,
    threshold: str | Threshold,
) -> gpd.GeoDataFrame:
    """Return the stretches of road from which the nearest facility costs more than ``threshold``.

    A traveller standing at fraction ``s`` of a piece (cost ``c`` end to end) reaches a facility via
    ``u`` at ``s·c + cost(u)`` (if the piece may be travelled towards ``u``), via ``v`` at
    ``(1 − s)·c + cost(v)``, or directly when a facility lies on the same piece. The stretch where
    every way costs more than the threshold is the gap; it is one interval per piece unless
    facilities on the piece split it.

    Parameters
    ----------
    net
        Prepared network.
    profile
        Travel profile of ``facility_snap`` and ``node_cost``.
    facility_snap
        The facilities, snapped for ``profile``; those too far from a road are left out, as in routing.
    node_cost
        Per node position, the cost to the nearest facility (``NearestFacility.node_cost``), ``inf``
        where none is reachable; in the threshold's unit.
    threshold
        The threshold; its weight must be the one ``node_cost`` was computed with.

    Returns
    -------
    geopandas.GeoDataFrame
        See ``GapsResult.gap_segments``; in EPSG:4326.
    """
    t = parse_threshold(threshold)
    pg = net.profile(profile)
    usable = np.flatnonzero(pg.piece_usable)
    # whole-piece costs u -> v and v -> u (travel times differ on a slope)
    cost_fwd = (net.piece_length_m if t.weight == "length" else pg.piece_time_s)[usable]
    cost_bwd = (net.piece_length_m if t.weight == "length" else pg.piece_time_bwd_s)[usable]
    fwd, bwd = pg.piece_fwd[usable], pg.piece_bwd[usable]
    cu, cv = node_cost[net.piece_u[usable]], node_cost[net.piece_v[usable]]
    with np.errstate(divide="ignore", invalid="ignore"):
        # covered from the ends: s <= a (travelling v -> u to u) or s >= b (u -> v to v)
        a = np.where(bwd & (cu <= t.value), np.where(cost_bwd > 0, (t.value - cu) / cost_bwd, np.inf), -np.inf)
        b = np.where(fwd & (cv <= t.value), np.where(cost_fwd > 0, 1.0 - (t.value - cv) / cost_fwd, -np.inf), np.inf)
    lo, hi = np.clip(a, 0.0, 1.0), np.clip(b, 0.0, 1.0)
    # facilities on a piece cover a stretch around them and may split its gap
    on_piece = _facilities_on_pieces(net, pg, facility_snap, t.weight)
    has_facility = np.isin(usable, list(on_piece))
    k = np.flatnonzero(~has_facility & (lo < hi))
    start, end = lo[k], hi[k]
    split = []
    for i in np.flatnonzero(has_facility & (lo < hi)):
        covered = _facility_spans(on_piece[int(usable[i])], cost_fwd[i], cost_bwd[i], fwd[i], bwd[i], t.value)
        split += [(i, s0, s1) for s0, s1 in _subtract((lo[i], hi[i]), covered)]
    if split:
        k = np.r_[k, np.array([x[0] for x in split], dtype=np.int64)]
        start = np.r_[start, [x[1] for x in split]]
        end = np.r_[end, [x[2] for x in split]]
    order = np.lexsort((start, k))
    k, start, end = k[order], start[order], end[order]
    piece = usable[k]
    length_m = (end - start) * net.piece_length_m[piece]
    keep = length_m >= _MIN_GAP_M
    k, start, end, piece, length_m = k[keep], start[keep], end[keep], piece[keep], length_m[keep]

    unit = t.unit
    ends = (cost_fwd[k], cost_bwd[k], cu[k], cv[k], fwd[k], bwd[k])
    table = pd.DataFrame(
        {
            "piece": piece,
            "u": net.node_id[net.piece_u[piece]],
            "v": net.node_id[net.piece_v[piece]],
            "highway": net.piece_highway[piece].astype(str),
            ROAD_NAME: net.piece_name[piece].astype(str),
            "start_fraction": start,
            "end_fraction": end,
            "length_m": length_m,
            REACHABLE: np.isfinite(cu[k]) | np.isfinite(cv[k]) | np.isin(piece, list(on_piece)),
            f"cost_u_{unit}": _nan_inf(cu[k]),
            f"cost_v_{unit}": _nan_inf(cv[k]),
            f"cost_start_{unit}": _nan_inf(_cost_along(start, *ends, on_piece, piece, toward=+1)),
            f"cost_end_{unit}": _nan_inf(_cost_along(end, *ends, on_piece, piece, toward=-1)),
        }
    )
    geometry = _piece_parts(net, piece, start, end)
    gdf = gpd.GeoDataFrame(table, geometry=geometry, crs=net.crs).to_crs(schema.WGS84)
    logger.info(
        "%s road stretches (%.1f km) beyond %s for profile %r",
        f"{len(gdf):,}",
        float(length_m.sum()) / 1000.0,
        t.label,
        profile,
    )
    return gdf


@dataclass(frozen=True)
class MultiServiceReport:
    """Per household: the nearest facility of every service, its cost and which thresholds fail.

    Parameters
    ----------
    households
        Indexed by ``household_id``, sorted worst first (most failed services, then the largest
        cost ÷ threshold, then id): ``town_code``, ``village_code``, ``snap_distance_m``,
        ``too_far_from_road``; per service ``<service>_facility_id``, ``<service>_cost_m`` or
        ``<service>_cost_s`` (in its threshold's unit; NaN where not routed), ``<service>_status``
        (``within``, ``beyond``, ``unreachable`` or ``too_far_from_road``) and ``<service>_unknown_m``
        (metres of the route whose accessibility tags were unknown, passed leniently); then ``n_failed`` (services
        not within their threshold, off-road households failing all), ``failed_services``
        (``;``-joined service names, in the order given) and ``max_cost_ratio`` (largest cost ÷
        threshold; inf where a service is unreachable). No personal data: ids, town and village only.
    by_service
        Indexed by service: threshold label and the count of households per status.
    parameters
        Profile, thresholds and the maximum snap distance.
    """

    households: pd.DataFrame
    by_service: pd.DataFrame
    parameters: dict[str, Any] = field(default_factory=dict)


def multi_service_report(
    placer: Placer,
    layers: Mapping[str, gpd.GeoDataFrame],
    households: gpd.GeoDataFrame,
    *,
    profile: str,
    thresholds: Mapping[str, str | Threshold],
) -> MultiServiceReport:
    """Find every household's nearest facility of each service and the thresholds it fails.

    Parameters
    ----------
    placer
        The prepared network with its snapping indexes.
    layers
        Facility layers (any CRS, ``id`` column) by service name, e.g. ``{"rehab_station": ...,
        "accessible_toilet": ...}``; filter them by status first (e.g. only ``open`` or ``accepted``).
    households
        Households (any CRS) with ``id`` and ``town_code`` (``village_code`` where known). Only these
        three columns and the geometry are read.
    profile
        ``"walk"``, ``"wheelchair"`` or ``"drive"``.
    thresholds
        One threshold per service name (``"300m"``, ``"15min"``…); its unit decides the cost reported.

    Returns
    -------
    MultiServiceReport

    Raises
    ------
    ValueError
        If no layer is given, a layer has no threshold (or a threshold no layer), a threshold is
        malformed, or a required column is missing.
    """
    if not layers:
        msg = "`layers` is empty; give at least one facility layer by service name."
        raise ValueError(msg)
    if set(layers) != set(thresholds):
        lacking, extra = sorted(set(layers) - set(thresholds)), sorted(set(thresholds) - set(layers))
        msg = (
            f"`thresholds` must have one entry per layer; layers without one: {lacking!r}, "
            f"thresholds without a layer: {extra!r}."
        )
        raise ValueError(msg)
    parsed = {name: parse_threshold(thresholds[name]) for name in layers}
    _require(households, "households", (schema.ID, schema.TOWN_CODE))
    for name, gdf in layers.items():
        _require(gdf, f"layers[{name!r}]", (schema.ID,))

    home = placer.snap(households, profile)
    table = pd.DataFrame(index=pd.Index(home.ids, name=HOUSEHOLD_ID))
    table[schema.TOWN_CODE] = households[schema.TOWN_CODE].astype(str).to_numpy(dtype=object)
    table[schema.VILLAGE_CODE] = (
        households[schema.VILLAGE_CODE].astype("string").to_numpy(dtype=object)
        if schema.VILLAGE_CODE in households
        else None
    )
    table[SNAP_DISTANCE_M] = home.distance_m
    table[TOO_FAR_FROM_ROAD] = home.too_far
    n = len(table)
    failed = np.zeros((n, len(layers)), dtype=bool)
    ratio = np.zeros((n, len(layers)))
    by_service = {}
    for j, (name, gdf) in enumerate(layers.items()):
        t = parsed[name]
        nearest = nearest_facility(placer.net, profile, placer.snap(gdf, profile), home, weight=t.weight)
        cost = nearest.demand_cost
        status = np.where(
            home.too_far,
            TOO_FAR_FROM_ROAD,
            np.where(~np.isfinite(cost), UNREACHABLE, np.where(cost <= t.value, WITHIN, BEYOND)),
        )
        reached = np.isfinite(cost) & (nearest.demand_facility >= 0)
        facility = np.full(n, None, dtype=object)
        facility[reached] = nearest.facility_ids[nearest.demand_facility[reached]].astype(str)
        table[f"{name}_facility_id"] = facility
        table[f"{name}_cost_{t.unit}"] = _nan_inf(cost)
        table[f"{name}_status"] = status
        # metres of the route on road whose accessibility tags were unknown (passed under a lenient policy)
        table[f"{name}_unknown_m"] = np.where(reached, nearest.demand_unknown_m, np.nan)
        failed[:, j] = status != WITHIN
        ratio[:, j] = cost / t.value
        by_service[name] = {"threshold": t.label, **{s: int((status == s).sum()) for s in SERVICE_STATUSES}}
    names = np.array(list(layers), dtype=object)
    table["n_failed"] = failed.sum(axis=1)
    table["failed_services"] = [";".join(names[row]) for row in failed]
    worst = ratio.max(axis=1) if n else np.zeros(0)
    table["max_cost_ratio"] = np.where(home.too_far, np.nan, worst)
    order = np.lexsort(
        (
            table.index.to_numpy(dtype=str),
            -np.nan_to_num(worst, nan=np.inf, posinf=np.inf),
            -table["n_failed"].to_numpy(),
        )
    )
    table = table.iloc[order]
    logger.info(
        "Multi-service report for %d households (%s): %d fail at least one of %d services",
        n,
        profile,
        int((table["n_failed"] > 0).sum()),
        len(layers),
    )
    return MultiServiceReport(
        households=table,
        by_service=pd.DataFrame.from_dict(by_service, orient="index").rename_axis("service"),
        parameters={
            "profile": profile,
            "thresholds": {k: {"label": t.label, "value": t.value, "unit": t.unit} for k, t in parsed.items()},
            "max_snap_m": placer.max_snap_m,
            "measure": "network",
        },
    )


# --- helpers -------------------------------------------------------------------------------------


def _require(df: pd.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        msg = f"`{name}` lacks the column(s) {missing!r}; it has {list(df.columns)!r}."
        raise ValueError(msg)
    if not isinstance(df, gpd.GeoDataFrame) or df.crs is None:
        msg = f"`{name}` must be a GeoDataFrame with a CRS (WGS-84 is EPSG:4326)."
        raise ValueError(msg)


def _demand_geometry(demand: gpd.GeoDataFrame, ids: pd.Index) -> gpd.GeoSeries:
    """Return the demand geometry in the order of ``ids`` (the coverage's demand ids)."""
    _require(demand, "demand", (schema.ID,))
    by_id = pd.Series(np.arange(len(demand)), index=demand[schema.ID].astype(str).to_numpy())
    missing = ids.difference(by_id.index)
    if len(missing):
        msg = (
            f"`demand` lacks {len(missing)} id(s) the coverage measured, e.g. {missing[:5].tolist()!r}; "
            "pass the demand layer given to `measure_coverage`."
        )
        raise ValueError(msg)
    positions = by_id.loc[ids].to_numpy()
    return gpd.GeoSeries(demand.geometry.to_numpy()[positions], index=ids, crs=demand.crs)


def _points_gdf(frame: pd.DataFrame, geometry: gpd.GeoSeries) -> gpd.GeoDataFrame:
    gdf = gpd.GeoDataFrame(frame, geometry=geometry.to_numpy(), crs=geometry.crs).to_crs(schema.WGS84)
    gdf.index.name = DEMAND_ID
    return gdf


def _nan_inf(a: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(a), a, np.nan)


def _facilities_on_pieces(net: PreparedNetwork, pg: Any, snap: SnapResult, weight: str) -> dict[int, list]:
    """Per piece holding a usable facility: ``(fraction, access cost)`` of each facility on it."""
    out: dict[int, list] = {}
    usable = ~snap.too_far
    for piece, s, dist in zip(snap.piece[usable], snap.fraction[usable], snap.distance_m[usable], strict=True):
        access = dist if weight == "length" else dist / pg.piece_speed_mps[piece]
        out.setdefault(int(piece), []).append((float(s), float(access)))
    return out


def _facility_spans(
    facilities: list, c_fwd: float, c_bwd: float, fwd: bool, bwd: bool, limit: float
) -> list[tuple[float, float]]:
    """Return the fractions of a piece (cost ``c_fwd`` u -> v, ``c_bwd`` back) within ``limit`` of a facility on it."""
    spans = []
    for s, access in facilities:
        if access > limit:
            continue
        if fwd:  # upstream of the facility, travelling u -> v
            spans.append((max(0.0, s - ((limit - access) / c_fwd if c_fwd > 0 else np.inf)), s))
        if bwd:
            spans.append((s, min(1.0, s + ((limit - access) / c_bwd if c_bwd > 0 else np.inf))))
    return spans


def _subtract(span: tuple[float, float], covered: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Return the parts of ``span`` outside every interval of ``covered``."""
    parts = [span]
    for c_lo, c_hi in covered:
        nxt = []
        for lo, hi in parts:
            if c_hi <= lo or c_lo >= hi:
                nxt.append((lo, hi))
                continue
            if c_lo > lo:
                nxt.append((lo, c_lo))
            if c_hi < hi:
                nxt.append((c_hi, hi))
        parts = nxt
    return parts


def _cost_along(s, c_fwd, c_bwd, cu, cv, fwd, bwd, on_piece, piece, *, toward: int) -> np.ndarray:
    """Return the cost to the nearest facility from fraction ``s`` of each piece, seen from inside a stretch.

    ``toward`` is +1 at a stretch's start (the stretch lies towards ``v``) and -1 at its end: a point
    exactly at a piece end is evaluated as a point on the piece (a one-way traveller there cannot
    turn back), so the value is the limit from inside the stretch.
    """
    with np.errstate(invalid="ignore"):
        via_u = np.where(bwd, s * c_bwd + cu, np.inf)
        via_v = np.where(fwd, (1.0 - s) * c_fwd + cv, np.inf)
    cost = np.minimum(via_u, via_v)
    for i in np.flatnonzero(np.isin(piece, list(on_piece))):
        for t, access in on_piece[int(piece[i])]:
            # a traveller just inside the stretch reaches a facility downstream or upstream of it
            if fwd[i] and (t > s[i] or (t == s[i] and toward < 0)):
                cost[i] = min(cost[i], access + (t - s[i]) * c_fwd[i])
            if bwd[i] and (t < s[i] or (t == s[i] and toward > 0)):
                cost[i] = min(cost[i], access + (s[i] - t) * c_bwd[i])
    return cost


def _piece_parts(net: PreparedNetwork, piece: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Return the polylines of pieces between the fractions ``start`` and ``end`` (projected CRS)."""
    ptr = net.piece_coord_ptr
    counts = ptr[piece + 1] - ptr[piece]
    first = np.cumsum(counts) - counts
    vertex = np.repeat(ptr[piece] - first, counts) + np.arange(int(counts.sum()))
    lines = shapely.linestrings(net.piece_coords[vertex], indices=np.repeat(np.arange(len(piece)), counts))
    lines = np.asarray(lines, dtype=object) if len(piece) else np.zeros(0, dtype=object)
    partial = np.flatnonzero((start > 0.0) | (end < 1.0))
    for i in partial:
        lines[i] = shapely.ops.substring(lines[i], start[i], end[i], normalized=True)
    return lines


def _hexagons(
    q: np.ndarray, r: np.ndarray, weight: np.ndarray, groups: Mapping[str, np.ndarray], size: float, crs: str
) -> gpd.GeoDataFrame:
    """Count demand per pointy-top hexagon (edge ``size``, axial ``q``/``r``) of a grid in ``crs``."""
    frame = pd.DataFrame({"q": q, "r": r, "n_demand": 1, "weight_demand": weight})
    for name, mask in groups.items():
        frame[f"n_{name}"] = mask.astype(int)
        frame[f"weight_{name}"] = np.where(mask, weight, 0.0)
    table = frame.groupby(["q", "r"], sort=True).sum().reset_index()
    gap_weight = table[[f"weight_{g}" for g in groups if g != "covered"]].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        table["gap_share"] = np.where(table["weight_demand"] > 0, gap_weight / table["weight_demand"], np.nan)
    table.insert(0, HEX_ID, [f"{a}_{b}" for a, b in zip(table["q"], table["r"], strict=True)])
    polygons = hex_polygons(table["q"].to_numpy(), table["r"].to_numpy(), size)
    gdf = gpd.GeoDataFrame(table, geometry=polygons, crs=crs).to_crs(schema.WGS84)
    return gdf.set_index(HEX_ID)


def _plain(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return ``gdf`` with pandas extension dtypes replaced by ones the OGR writers accept."""
    out = gdf.copy()
    for col in out.columns:
        if col == out.geometry.name:
            continue
        s = out[col]
        if isinstance(s.dtype, pd.StringDtype | pd.BooleanDtype | pd.CategoricalDtype):
            out[col] = s.astype(object).where(s.notna(), None)
    return out
