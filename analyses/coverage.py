"""Measure how well a facility layer covers demand along the road network.

For every demand point: its nearest facility and the network cost FROM the point TO it (access legs
included), whether it is covered under each threshold, and summaries overall, per town and per
village. Unreachable points are reported as such, never given cost 0 or infinity in a summary.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from analyses.costs import Placer, Threshold, parse_threshold
from geo.routing import UNKNOWN_ATTRIBUTES, UNKNOWN_EDGES, UNKNOWN_M, nearest_facility
from layers import schema

if TYPE_CHECKING:
    from geo.snapping import SnapResult

logger = logging.getLogger(__name__)

DEMAND_ID = "demand_id"
FACILITY_ID = "facility_id"
WEIGHT = "weight"
URBAN = "urban"
REACHABLE = "reachable"
TOO_FAR = "too_far"
SNAP_DISTANCE_M = "snap_distance_m"
COST_COLUMN = {"length": "cost_m", "travel_time": "cost_s"}
FACILITY_COLUMN = {"length": "facility_id_m", "travel_time": "facility_id_s"}
#: Column of the per-class coverage (urban points under the urban threshold, rural under the rural one).
COVERED_BY_CLASS = "covered_by_class"


def covered_column(threshold: Threshold) -> str:
    """Return the points-table column telling coverage under ``threshold``."""
    return f"covered_{threshold.label}"


@dataclass(frozen=True)
class CoverageResult:
    """Coverage of demand points by the nearest facility, keyed by our ids.

    Parameters
    ----------
    points
        Indexed by demand id: ``town_code``, ``village_code``, ``urban``, ``weight``, ``cost_m`` and/or
        ``cost_s`` (NaN where unreachable), ``facility_id_m``/``facility_id_s``, ``reachable``,
        ``too_far`` (farther from any road than the maximum snap distance), ``snap_distance_m``, and one
        boolean ``covered_<label>`` per threshold (plus ``covered_by_class`` when class thresholds apply);
        ``unknown_m``, ``unknown_edges`` and ``unknown_attributes``: the road on the route to the nearest
        facility whose accessibility tags were unknown and passed under a lenient policy (wheelchair).
    summary
        Overall counts and weighted shares per threshold, unreachable counts, cost quantiles.
    by_town, by_village
        The same per town and per village.
    parameters
        What produced the result: profile, thresholds, layers, filters and data versions.
    """

    points: pd.DataFrame
    summary: dict[str, Any]
    by_town: pd.DataFrame
    by_village: pd.DataFrame
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def coverage_columns(self) -> list[str]:
        """The ``covered_*`` columns of ``points``, in threshold order."""
        return [c for c in self.points.columns if c.startswith("covered_")]

    def to_dict(self) -> dict[str, Any]:
        """Return the result with stable JSON keys: ``parameters``, ``summary``, ``by_town``, ``points``.

        Each point has ``id``, ``facility_id`` and ``cost`` (metres for distance thresholds, seconds for
        time thresholds; those of the first threshold's unit, with ``costs``/``facility_ids`` by unit
        when thresholds of both units are given; null where unreachable), ``covered`` (by threshold
        label), ``reachable`` and ``too_far``.
        """
        weights = [w for w in COST_COLUMN if COST_COLUMN[w] in self.points.columns]
        labels = {c: c.removeprefix("covered_") for c in self.coverage_columns}
        first = weights[0] if not self.parameters.get("thresholds") else _weight_of(self.parameters["thresholds"][0])
        unit = {"length": "m", "travel_time": "s"}
        points = []
        for point_id, row in self.points.iterrows():
            entry = {
                "id": point_id,
                "facility_id": _json_value(row[FACILITY_COLUMN[first]]),
                "cost": _json_value(row[COST_COLUMN[first]]),
                "covered": {labels[c]: bool(row[c]) for c in self.coverage_columns},
                "reachable": bool(row[REACHABLE]),
                "too_far": bool(row[TOO_FAR]),
            }
            if len(weights) > 1:
                entry["costs"] = {unit[w]: _json_value(row[COST_COLUMN[w]]) for w in weights}
                entry["facility_ids"] = {unit[w]: _json_value(row[FACILITY_COLUMN[w]]) for w in weights}
            points.append(entry)
        return {
            "parameters": self.parameters,
            "summary": self.summary,
            "by_town": _records(self.by_town),
            "by_village": _records(self.by_village),
            "points": points,
        }


@dataclass(frozen=True)
class CoverageThresholds:
    """The thresholds of a coverage run, parsed: plain ones and per-class (urban/rural) ones."""

    plain: tuple[Threshold, ...]
    by_class: Mapping[str, Threshold]

    @classmethod
    def parse(
        cls, thresholds: Sequence[str | Threshold], class_thresholds: Mapping[str, str | Threshold] | None = None
    ) -> CoverageThresholds:
        """Parse and check ``thresholds`` and ``class_thresholds`` (see `measure_coverage`).

        Raises
        ------
        ValueError
            If none is given, one is malformed or a class is not ``urban``/``rural``.
        """
        parsed = tuple(parse_threshold(t) for t in thresholds)
        by_class = {k: parse_threshold(v) for k, v in (class_thresholds or {}).items()}
        if not parsed and not by_class:
            msg = "Give at least one `thresholds` entry (e.g. '800m' or '15min') or `class_thresholds`."
            raise ValueError(msg)
        unknown_classes = set(by_class) - {"urban", "rural"}
        if unknown_classes:
            msg = f"`class_thresholds` keys must be 'urban' and/or 'rural'; got {sorted(unknown_classes)!r}."
            raise ValueError(msg)
        return cls(parsed, by_class)

    @property
    def weights(self) -> list[str]:
        """The cost weights the thresholds need (``length``, ``travel_time``), in order of first use."""
        return list(dict.fromkeys(t.weight for t in [*self.plain, *self.by_class.values()]))


def measure_coverage(
    placer: Placer,
    facilities: gpd.GeoDataFrame,
    demand: gpd.GeoDataFrame,
    *,
    profile: str,
    thresholds: Sequence[str | Threshold],
    class_thresholds: Mapping[str, str | Threshold] | None = None,
    weight_column: str | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> CoverageResult:
    """Find each demand point's nearest facility along the network and whether it is covered.

    Parameters
    ----------
    placer
        The prepared network with its snapping indexes (``analyses.costs.Placer``).
    facilities
        Facility points (any CRS) with an ``id`` column.
    demand
        Demand points (any CRS) with ``id``, ``town_code`` and, where known, ``village_code`` and
        ``urban`` (bool; from the village's 城乡分类代码) columns.
    profile
        ``"walk"``, ``"wheelchair"`` or ``"drive"``.
    thresholds
        One or more thresholds such as ``"800m"`` or ``"15min"``.
    class_thresholds
        Optional ``{"urban": ..., "rural": ...}``: each point is judged by its class's threshold in
        ``covered_by_class`` (DOMAIN.md §1: life circles for urban communities, travel time for villages).
    weight_column
        Demand weight (e.g. ``population``); every point weighs 1 when None.
    parameters
        Extra context recorded in the result (layer names, status filters, data versions).

    Returns
    -------
    CoverageResult

    Raises
    ------
    ValueError
        If no threshold is given, a threshold is malformed, ids repeat or a column is missing.
    """
    limits = CoverageThresholds.parse(thresholds, class_thresholds)
    check_coverage_inputs(facilities, demand, weight_column)
    demand_snap = placer.snap(demand, profile)
    facility_snap = placer.snap(facilities, profile)
    nearest = {}
    for weight in limits.weights:
        found = nearest_facility(placer.net, profile, facility_snap, demand_snap, weight=weight)
        nearest[weight] = (found.demand_cost, found.demand.facility_id.astype(object).to_numpy())
    unknowns = found.demand[[UNKNOWN_M, UNKNOWN_EDGES, UNKNOWN_ATTRIBUTES]]  # of the route of the last weight
    context = {"profile": profile, "max_snap_m": placer.max_snap_m, "n_facilities": len(facilities),
               **dict(parameters or {})}  # fmt: skip
    return coverage_from_costs(demand, demand_snap, limits, nearest, weight_column=weight_column, parameters=context,
                               route_unknowns=unknowns)  # fmt: skip


def check_coverage_inputs(facilities: pd.DataFrame, demand: pd.DataFrame, weight_column: str | None) -> None:
    """Raise ``ValueError`` naming the column if demand or facilities lack what a coverage run reads."""
    _require_columns(demand, "demand", (schema.ID, schema.TOWN_CODE))
    _require_columns(facilities, "facilities", (schema.ID,))
    if weight_column is not None:
        _require_columns(demand, "demand", (weight_column,))


def coverage_from_costs(
    demand: pd.DataFrame,
    demand_snap: SnapResult,
    limits: CoverageThresholds,
    nearest: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    weight_column: str | None,
    parameters: Mapping[str, Any],
    route_unknowns: pd.DataFrame | None = None,
) -> CoverageResult:
    """Build the coverage result from each demand point's nearest-facility cost and id per weight.

    ``nearest`` maps a weight (``length``, ``travel_time``) to (cost per demand row, ``inf`` where
    unreachable; facility id per row, None/NaN where unreachable). `measure_coverage` and the what-if
    session (``analyses.whatif``) both end here, so their tables are built the same way.
    ``route_unknowns`` (``unknown_m``, ``unknown_edges``, ``unknown_attributes`` per demand row, from
    ``geo.routing.nearest_facility``) adds those columns; the what-if session has none.
    """
    points = pd.DataFrame(index=pd.Index(demand_snap.ids, name=DEMAND_ID))
    points[schema.TOWN_CODE] = demand[schema.TOWN_CODE].astype(str).to_numpy()
    points[schema.VILLAGE_CODE] = (
        demand[schema.VILLAGE_CODE].astype("string").to_numpy() if schema.VILLAGE_CODE in demand else pd.NA
    )
    points[URBAN] = demand[URBAN].to_numpy(dtype=bool) if URBAN in demand else False
    points[WEIGHT] = 1.0 if weight_column is None else demand[weight_column].to_numpy(dtype=float)
    points[SNAP_DISTANCE_M] = demand_snap.distance_m
    points[TOO_FAR] = demand_snap.too_far

    reachable = np.zeros(len(points), dtype=bool)
    for weight in limits.weights:
        cost, facility = nearest[weight]
        ok = np.isfinite(cost)
        points[COST_COLUMN[weight]] = np.where(ok, cost, np.nan)
        points[FACILITY_COLUMN[weight]] = pd.array(np.where(ok, facility, None), dtype="string")
        reachable |= ok
    if route_unknowns is not None:
        for column in (UNKNOWN_M, UNKNOWN_EDGES, UNKNOWN_ATTRIBUTES):
            points[column] = route_unknowns[column].to_numpy()
    points[REACHABLE] = reachable
    for t in limits.plain:
        points[covered_column(t)] = (points[COST_COLUMN[t.weight]] <= t.value).to_numpy()
    if limits.by_class:
        covered = np.zeros(len(points), dtype=bool)
        for cls, t in limits.by_class.items():
            in_class = points[URBAN].to_numpy() == (cls == "urban")
            covered |= in_class & (points[COST_COLUMN[t.weight]] <= t.value).to_numpy()
        points[COVERED_BY_CLASS] = covered

    coverage_columns = [c for c in points.columns if c.startswith("covered_")]
    cost_columns = [COST_COLUMN[w] for w in limits.weights]
    context = dict(parameters)
    params = {
        "profile": context.pop("profile"),
        "thresholds": [{"label": t.label, "value": t.value, "unit": t.unit} for t in limits.plain],
        "class_thresholds": {k: {"label": t.label, "value": t.value, "unit": t.unit}
                             for k, t in limits.by_class.items()},
        "weight_column": weight_column,
        "max_snap_m": context.pop("max_snap_m"),
        "measure": "network",
        "n_facilities": context.pop("n_facilities"),
        "n_demand": len(demand),
        **context,
    }  # fmt: skip
    result = CoverageResult(
        points=points,
        summary=_summarise(points, coverage_columns, cost_columns),
        by_town=_group_summary(points, schema.TOWN_CODE, coverage_columns, cost_columns),
        by_village=_group_summary(points, schema.VILLAGE_CODE, coverage_columns, cost_columns),
        parameters=params,
    )
    logger.info(
        "Coverage of %d demand points by %d facilities (%s): %s",
        len(points),
        params["n_facilities"],
        params["profile"],
        {c: round(result.summary[c]["weighted_share"], 4) for c in coverage_columns},
    )
    return result


@dataclass(frozen=True)
class ScenarioComparison:
    """Coverage before and after a scenario (e.g. current toilets vs current + the planned new ones)."""

    before: CoverageResult
    after: CoverageResult
    by_town_change: pd.DataFrame
    summary_change: dict[str, Any]


def compare_scenarios(before: CoverageResult, after: CoverageResult) -> ScenarioComparison:
    """Return the per-town and overall change in weighted covered share between two coverage results.

    Raises
    ------
    ValueError
        If the two results do not cover the same demand points and thresholds.
    """
    if not before.points.index.equals(after.points.index) or before.coverage_columns != after.coverage_columns:
        msg = "`before` and `after` must measure the same demand points with the same thresholds."
        raise ValueError(msg)
    change = {}
    for column in before.coverage_columns:
        b = before.by_town[f"{column}_share"]
        a = after.by_town[f"{column}_share"]
        change[f"{column}_share_before"] = b
        change[f"{column}_share_after"] = a
        change[f"{column}_share_change"] = a - b
    summary_change = {
        column: {
            "before": before.summary[column]["weighted_share"],
            "after": after.summary[column]["weighted_share"],
            "change": after.summary[column]["weighted_share"] - before.summary[column]["weighted_share"],
            "newly_covered": int((after.points[column] & ~before.points[column]).sum()),
            "no_longer_covered": int((before.points[column] & ~after.points[column]).sum()),
        }
        for column in before.coverage_columns
    }
    return ScenarioComparison(before, after, pd.DataFrame(change), summary_change)


def _weight_of(threshold: Mapping[str, Any]) -> str:
    return "length" if threshold["unit"] == "m" else "travel_time"


def _json_value(value: Any) -> Any:
    """Return a JSON-safe scalar: None for missing values (never NaN or infinity)."""
    if value is None or value is pd.NA or (isinstance(value, float) and not np.isfinite(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    return [{table.index.name: key, **{k: _json_value(v) for k, v in row.items()}} for key, row in table.iterrows()]


def _require_columns(df: pd.DataFrame, name: str, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        msg = f"`{name}` lacks the column(s) {missing!r}; it has {list(df.columns)!r}."
        raise ValueError(msg)
    if schema.ID in columns and df[schema.ID].astype(str).duplicated().any():
        dup = df.loc[df[schema.ID].astype(str).duplicated(), schema.ID].astype(str).unique()[:10].tolist()
        msg = f"`{name}` ids must be unique; repeated: {dup!r}."
        raise ValueError(msg)


def _summarise(points: pd.DataFrame, coverage_columns: list[str], cost_columns: list[str]) -> dict[str, Any]:
    weight = points[WEIGHT]
    reachable = points[REACHABLE]
    summary: dict[str, Any] = {
        "points": len(points),
        "weight": float(weight.sum()),
        "unreachable": int((~reachable).sum()),
        "unreachable_weight": float(weight[~reachable].sum()),
        "too_far_from_road": int(points[TOO_FAR].sum()),
    }
    for column in coverage_columns:
        covered = points[column]
        summary[column] = {
            "covered": int(covered.sum()),
            "share": float(covered.mean()) if len(points) else float("nan"),
            "weighted_share": float(weight[covered].sum() / weight.sum()) if weight.sum() else float("nan"),
        }
    for column in cost_columns:
        costs = points.loc[reachable, column].dropna()
        summary[column] = {
            "median": float(costs.median()) if len(costs) else None,
            "p90": float(costs.quantile(0.9)) if len(costs) else None,
            "max": float(costs.max()) if len(costs) else None,
        }
    return summary


def _group_summary(
    points: pd.DataFrame, key: str, coverage_columns: list[str], cost_columns: list[str]
) -> pd.DataFrame:
    if points[key].isna().all():
        return pd.DataFrame(index=pd.Index([], name=key))
    frame = points.assign(**{f"_{c}_w": points[WEIGHT] * points[c] for c in coverage_columns})
    grouped = frame.groupby(key, sort=True)
    table = pd.DataFrame(
        {
            "points": grouped.size(),
            "weight": grouped[WEIGHT].sum(),
            "unreachable": grouped[REACHABLE].apply(lambda s: int((~s).sum())),
        }
    )
    for column in coverage_columns:
        table[f"{column}_count"] = grouped[column].sum().astype(int)
        table[f"{column}_share"] = grouped[f"_{column}_w"].sum() / table["weight"]
    for column in cost_columns:
        table[f"{column}_median"] = grouped[column].median()
    return table
