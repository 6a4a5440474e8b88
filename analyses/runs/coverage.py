"""Runs built on coverage: coverage (with a before/after scenario), gaps, the household report, one toilet's effect.

Each kind has frozen parameters (``from_options`` reads the CLI's options, ``from_form`` the planner
form's stored dict), one ``run_*`` function and a frozen result with ``to_dict`` (the stable JSON of
the CLI) and ``to_file`` (by extension).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd

from analyses.coverage import compare_scenarios, covered_column, measure_coverage
from analyses.inputs import GRID, VILLAGES, load_demand, load_points
from analyses.runs import common, stages
from analyses.runs.common import (
    Network,
    PlaceNames,
    as_tuple,
    default_statuses,
    jsonable,
    records,
    status_option,
    text_or_none,
)
from analyses.runs.stages import Silent, Stages
from layers import schema

if TYPE_CHECKING:
    from analyses.coverage import CoverageResult, ScenarioComparison
    from analyses.gaps import GapsResult, MultiServiceReport
    from analyses.slopes import SlopeComparison
    from layers.district import District
    from layers.privacy import Reader
    from layers.store import Store

#: Facility columns written beside the points (ids, names, towns and statuses: no personal field).
FACILITY_COLUMNS = (schema.ID, schema.NAME, schema.TOWN_CODE, schema.STATUS)


def village_weight(demand: str) -> str | None:
    """Return the weight column the planner forms use for ``demand``: population for villages, else None."""
    return schema.POPULATION if demand == VILLAGES else None


def facility_points(facilities: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return facilities with only their id, name, town and status, for result files."""
    return facilities[[c for c in FACILITY_COLUMNS if c in facilities.columns] + [facilities.geometry.name]]


def located(table: pd.DataFrame, demand: gpd.GeoDataFrame, id_column: str = "demand_id") -> gpd.GeoDataFrame:
    """Return ``table`` with the geometry of the demand point named in ``id_column`` (demand's CRS)."""
    geometry = demand.set_index(demand[schema.ID].astype(str)).geometry.reindex(table[id_column].astype(str))
    return gpd.GeoDataFrame(table.reset_index(drop=True), geometry=geometry.to_numpy(), crs=demand.crs)


# --- coverage ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoverageParameters:
    """What a coverage run measures.

    Parameters
    ----------
    facilities, demand
        Facility and demand sources (``analyses.inputs.load_points``).
    profile
        ``walk``, ``wheelchair`` or ``drive``.
    thresholds
        Thresholds such as ``800m`` or ``15min``.
    urban_threshold, rural_threshold
        Per-class thresholds (``covered_by_class``).
    statuses
        Only facilities with these statuses; ``()`` counts all. None (the default): a layer's
        facilities in service (``schema.IN_SERVICE_STATUSES``), as the planner counts them; every row
        of a point file. Resolved when the parameters are made.
    scenario
        Extra facilities (layer or point file) for a before/after comparison; None for none.
    scenario_statuses
        Only extra facilities with these statuses; ``()`` counts all. None (the default): a layer's
        planned facilities (``schema.PLANNED_STATUSES``), as the planner's scenario; every row of a file.
    weight_column
        Demand weight column (e.g. ``population`` of villages).
    datum, grid_spacing, roads
        Datum of CSV/XLSX point files, spacing of ``grid`` demand (m), road file (None: the district's).
    compare_flat
        Also measure on flat costs (the network without the DEM) and report what slopes change per
        town (``analyses.slopes``), with the steep and slope-closed road pieces of the profile.

    Raises
    ------
    ValueError
        If no threshold is given.
    """

    facilities: str
    demand: str
    profile: str = "walk"
    thresholds: tuple[str, ...] = ()
    urban_threshold: str | None = None
    rural_threshold: str | None = None
    statuses: tuple[str, ...] | None = None
    scenario: str | None = None
    scenario_statuses: tuple[str, ...] | None = None
    weight_column: str | None = None
    datum: str | None = None
    grid_spacing: float = 400.0
    roads: str | None = None
    compare_flat: bool = False

    def __post_init__(self) -> None:
        statuses = default_statuses(self.facilities, self.statuses, schema.IN_SERVICE_STATUSES)
        object.__setattr__(self, "statuses", statuses)
        extra = default_statuses(self.scenario, self.scenario_statuses, schema.PLANNED_STATUSES)
        object.__setattr__(self, "scenario_statuses", extra if self.scenario else ())
        if not self.thresholds and not self.class_thresholds:
            msg = "Give at least one threshold (--threshold, or --urban-threshold/--rural-threshold), e.g. 800m."
            raise ValueError(msg)

    @property
    def class_thresholds(self) -> dict[str, str]:
        """The per-class thresholds given, ``urban`` and/or ``rural``."""
        given = (("urban", self.urban_threshold), ("rural", self.rural_threshold))
        return {k: v for k, v in given if v}

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> CoverageParameters:
        """Read ``accessplan coverage``'s options."""
        return cls(facilities=options["facilities"], demand=options["demand"], profile=options["profile"],
                   thresholds=as_tuple(options["thresholds"]), urban_threshold=text_or_none(options["urban_threshold"]),
                   rural_threshold=text_or_none(options["rural_threshold"]),
                   statuses=status_option(options["statuses"]),
                   scenario=text_or_none(options["scenario"]),
                   scenario_statuses=status_option(options.get("scenario_statuses")),
                   weight_column=text_or_none(options["weight_column"]),
                   datum=options["datum"], grid_spacing=float(options["grid_spacing"]),
                   roads=options["roads"], compare_flat=bool(options.get("compare_flat")))  # fmt: skip

    @classmethod
    def from_form(cls, form: Mapping[str, Any]) -> CoverageParameters:
        """Read the planner's coverage form: facilities in service; the scenario adds the layer's planned ones."""
        layer = form["facilities"]
        return cls(facilities=layer, demand=form["demand"], profile=form["profile"],
                   thresholds=as_tuple(form["thresholds"]), urban_threshold=text_or_none(form.get("urban_threshold")),
                   rural_threshold=text_or_none(form.get("rural_threshold")),
                   statuses=tuple(schema.IN_SERVICE_STATUSES[layer]),
                   scenario=layer if form.get("scenario") else None,
                   scenario_statuses=tuple(schema.PLANNED_STATUSES[layer]) if form.get("scenario") else (),
                   weight_column=village_weight(form["demand"]),
                   grid_spacing=float(form.get("grid_spacing") or 400.0),
                   compare_flat=bool(form.get("compare_flat")))  # fmt: skip


@dataclass(frozen=True)
class CoverageRun:
    """A coverage run's complete result: parameters and data versions, coverage, scenario, inputs.

    Parameters
    ----------
    parameters
        The run's parameters, the scenario's source and the data versions.
    coverage
        The coverage by the facilities (``analyses.coverage.CoverageResult``).
    demand, facilities
        The demand points and facilities read (for locations in the files).
    scenario
        The before/after comparison when a scenario was given.
    added
        The scenario's extra facilities (empty without a scenario).
    slopes
        Flat against slope-aware coverage (``compare_flat``), None otherwise.
    steep
        The profile's steep and slope-closed road pieces (``analyses.slopes.steep_segments``, with
        ``compare_flat``), None otherwise.
    """

    parameters: Mapping[str, Any]
    coverage: CoverageResult
    demand: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    scenario: ScenarioComparison | None = None
    added: gpd.GeoDataFrame | None = None
    names: PlaceNames = field(default_factory=PlaceNames, repr=False)
    slopes: SlopeComparison | None = None
    steep: gpd.GeoDataFrame | None = field(default=None, repr=False)

    #: Extensions ``to_file`` writes.
    SUFFIXES = (".json", ".csv", ".xlsx", ".gpkg", ".geojson")

    @property
    def summary(self) -> dict[str, Any]:
        """Overall counts and weighted shares per threshold."""
        return self.coverage.summary

    @property
    def by_town(self) -> pd.DataFrame:
        """The summary per town (indexed by town code)."""
        return self.coverage.by_town

    @property
    def by_village(self) -> pd.DataFrame:
        """The summary per village (indexed by village code)."""
        return self.coverage.by_village

    @property
    def coverage_columns(self) -> list[str]:
        """The ``covered_*`` columns, in threshold order."""
        return self.coverage.coverage_columns

    def points(self) -> gpd.GeoDataFrame:
        """Every demand point: ids, town, village, costs, nearest facilities, covered flags, location."""
        return located(self.coverage.points.reset_index(), self.demand)

    def scenario_dict(self) -> dict[str, Any] | None:
        """Return the before/after comparison: source, statuses, facilities added, change overall and per town."""
        if self.scenario is None:
            return None
        return {
            "file": self.parameters["scenario"],
            "statuses": list(self.parameters["scenario_statuses"]),
            "n_added": 0 if self.added is None else len(self.added),
            "summary_change": self.scenario.summary_change,
            "by_town_change": records(self.scenario.by_town_change),
            "after": self.scenario.after.summary,
        }

    def slopes_dict(self) -> dict[str, Any] | None:
        """Return what slopes change, None without ``compare_flat``.

        Keys: ``summary`` and ``by_town`` (points covered flat, with slopes, lost, gained) and
        ``steep_pieces`` (count and metres of the steep road pieces by closure).
        """
        if self.slopes is None:
            return None
        steep = self.steep if self.steep is not None else gpd.GeoDataFrame()
        by_closure = steep.groupby("closed")["length_m"].agg(["size", "sum"]) if len(steep) else None
        return {
            "summary": self.slopes.summary,
            "by_town": records(self.slopes.by_town),
            "steep_pieces": {
                str(k): {"pieces": int(row["size"]), "metres": round(float(row["sum"]), 1)}
                for k, row in ([] if by_closure is None else by_closure.iterrows())
            },
        }

    def to_dict(self, *, points: bool = True) -> dict[str, Any]:
        """Return the stable JSON of the CLI.

        Keys: ``parameters``, ``summary``, ``by_town``, ``by_village``, ``coverage_columns``, ``scenario``
        (None without one), ``slopes`` (None without ``compare_flat``) and, unless ``points=False``,
        ``points`` (see ``CoverageResult.to_dict``).
        """
        payload = self.coverage.to_dict()
        listed = payload.pop("points")
        payload["parameters"] = dict(self.parameters)
        payload["coverage_columns"] = self.coverage_columns
        payload["scenario"] = self.scenario_dict()
        payload["slopes"] = self.slopes_dict()
        if points:
            payload["points"] = listed
        return self.names.rows(jsonable(payload))

    def to_file(self, path: str | Path) -> Path:
        """Write the result by extension.

        JSON (``to_dict``), CSV (points), XLSX (points, tables, summary, scenario), GeoPackage
        (``coverage`` points, ``facilities``, ``planned_facilities``) or GeoJSON (points).

        Raises
        ------
        ValueError
            If the extension is not one of ``SUFFIXES``.
        """
        from layers.io import write_features

        suffix = common.suffix_of(path, self.SUFFIXES, "coverage")
        if suffix == ".json":
            common.write_json(self.to_dict(), path)
        elif suffix == ".csv":
            common.write_csv(self.coverage.points.reset_index(), path, names=self.names)
        elif suffix == ".xlsx":
            sheets = {"points": self.coverage.points.reset_index(), "by_town": self.by_town,
                      "by_village": self.by_village, "summary": common.summary_sheet(self.summary)}  # fmt: skip
            if self.scenario is not None:
                sheets["scenario_by_town"] = self.scenario.by_town_change
                sheets["scenario_summary"] = common.summary_sheet(self.scenario.summary_change)
            if self.slopes is not None:
                sheets["slopes_by_town"] = self.slopes.by_town
                sheets["slopes_summary"] = common.summary_sheet(self.slopes.summary)
            common.write_sheets(path, sheets, names=self.names)
        elif suffix == ".gpkg":
            write_features(self.names.table(self.points()), path, layer_name="coverage")
            facilities = self.names.table(facility_points(self.facilities))
            write_features(facilities, path, layer_name="facilities", append=True)
            if self.added is not None and len(self.added):
                added = self.names.table(facility_points(self.added))
                write_features(added, path, layer_name="planned_facilities", append=True)
            if self.steep is not None and len(self.steep):
                write_features(self.steep, path, layer_name="steep_segments", append=True)
        else:
            write_features(self.names.table(self.points()), path, layer_name="coverage")
        return Path(path)


def read_inputs(
    p: CoverageParameters | GapsParameters, store: Store, district: District, network: Network, progress: Stages,
    reader: Reader,
) -> tuple[Any, gpd.GeoDataFrame, gpd.GeoDataFrame, dict[str, Any]]:
    """Prepare the network, read facilities and demand; return them with the inputs' parameters and versions.

    Raises
    ------
    ValueError
        If a layer or file cannot be read (the message names it and the fix).
    """
    progress.stage(stages.STAGE_NETWORK)
    roads = network(p.roads)
    progress.stage(stages.STAGE_INPUTS)
    facilities = load_points(p.facilities, store=store, district=district, statuses=p.statuses or None,
                             datum=p.datum)  # fmt: skip
    demand = load_demand(p.demand, store=store, district=district, reader=reader, datum=p.datum,
                         grid_spacing_m=p.grid_spacing)  # fmt: skip
    parameters = {"facilities": p.facilities, "facility_statuses": list(p.statuses), "demand": p.demand,
                  "data_versions": common.data_versions(roads.version, facilities=facilities,
                                                        demand=demand)}  # fmt: skip
    return roads.placer, facilities, demand, parameters


def run_coverage(
    p: CoverageParameters,
    *,
    store: Store,
    district: District,
    network: Network,
    reader: Reader,
    progress: Stages | None = None,
) -> CoverageRun:
    """Find each demand point's nearest facility along the roads and whether it is covered; compare a scenario.

    Stages: network, inputs, coverage (and the scenario); the caller adds one for writing.

    Raises
    ------
    ValueError
        If an input cannot be read or a threshold is malformed.
    """
    progress = progress or Silent()
    progress.expect(4 + (p.scenario is not None) + p.compare_flat)
    placer, facilities, demand, inputs = read_inputs(p, store, district, network, progress, reader)
    inputs.update({"scenario": p.scenario, "scenario_statuses": list(p.scenario_statuses),
                   "compare_flat": p.compare_flat})  # fmt: skip
    kwargs = {"profile": p.profile, "thresholds": p.thresholds, "class_thresholds": p.class_thresholds or None,
              "weight_column": p.weight_column, "parameters": inputs}  # fmt: skip
    progress.stage(stages.STAGE_COVERAGE)
    result = measure_coverage(placer, facilities, demand, **kwargs)
    slopes = steep = None
    if p.compare_flat:
        from analyses.slopes import compare_flat_and_slopes, steep_segments

        if not inputs["data_versions"].get("slopes"):
            msg = ("没有坡度可比：本区的 district.toml 未列出 DEM（[files] dem），"
                   "或运行时关闭了坡度（--flat / SLOPES = False）。"
                   "请提供 DEM 或去掉平地选项。 Nothing to compare: the district lists no DEM (`dem` under "
                   "[files] of district.toml) or slopes are off (--flat / SLOPES = False); add a DEM or drop the flat "
                   "option.")  # fmt: skip
            raise ValueError(msg)
        progress.stage(stages.STAGE_FLAT)
        flat = measure_coverage(network(p.roads, flat=True).placer, facilities, demand, **kwargs)
        slopes = compare_flat_and_slopes(flat, result)
        steep = steep_segments(placer.net, p.profile)
    scenario = added = None
    if p.scenario is not None:
        added = load_points(p.scenario, store=store, district=district, statuses=p.scenario_statuses or None,
                            datum=p.datum)  # fmt: skip
        progress.stage(stages.STAGE_SCENARIO)
        after = measure_coverage(placer, pd.concat([facilities, added], ignore_index=True), demand, **kwargs)
        scenario = compare_scenarios(result, after)
    return CoverageRun(result.parameters, result, demand, facilities, scenario, added,
                       names=PlaceNames.of(district), slopes=slopes, steep=steep)  # fmt: skip


# --- gaps --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GapsParameters:
    """What a gaps run looks for: demand beyond ``threshold`` of the facilities, hexagons, road stretches.

    ``road_stretches`` adds the road stretches beyond the threshold (slower); the other fields are
    those of ``CoverageParameters`` (``statuses`` None: a layer's facilities in service).
    """

    facilities: str
    demand: str
    threshold: str
    profile: str = "walk"
    statuses: tuple[str, ...] | None = None
    hex_size: float = 500.0
    road_stretches: bool = True
    datum: str | None = None
    grid_spacing: float = 400.0
    roads: str | None = None

    def __post_init__(self) -> None:
        statuses = default_statuses(self.facilities, self.statuses, schema.IN_SERVICE_STATUSES)
        object.__setattr__(self, "statuses", statuses)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> GapsParameters:
        """Read ``accessplan gaps``'s options."""
        return cls(facilities=options["facilities"], demand=options["demand"], threshold=options["threshold"],
                   profile=options["profile"], statuses=status_option(options["statuses"]),
                   hex_size=float(options["hex_size"]), road_stretches=not options["skip_roads"],
                   datum=options["datum"], grid_spacing=float(options["grid_spacing"]),
                   roads=options["roads"])  # fmt: skip

    @classmethod
    def from_form(cls, form: Mapping[str, Any]) -> GapsParameters:
        """Read the planner's gaps form (facilities in service)."""
        return cls(facilities=form["facilities"], demand=form["demand"], threshold=form["threshold"],
                   profile=form["profile"], statuses=tuple(schema.IN_SERVICE_STATUSES[form["facilities"]]),
                   hex_size=float(form["hex_size"]), road_stretches=bool(form.get("roads")))  # fmt: skip


@dataclass(frozen=True)
class GapsRun:
    """A gaps run's complete result: parameters and data versions, the coverage, the gaps, counts per town."""

    parameters: Mapping[str, Any]
    coverage: CoverageResult
    gaps: GapsResult
    names: PlaceNames = field(default_factory=PlaceNames, repr=False)

    SUFFIXES = (".json", ".gpkg", ".geojson", ".csv", ".xlsx")

    @property
    def summary(self) -> dict[str, int]:
        """Rows of every map layer: ``gap_uncovered``, ``gap_unreachable``, ``gap_too_far``, ``gap_hexagons``..."""
        return {name: len(gdf) for name, gdf in self.gaps.layers().items()}

    @property
    def by_town(self) -> pd.DataFrame:
        """Per town (indexed by code): demand points, uncovered, unreachable and too far from a road."""
        points = self.coverage.points
        towns = points[schema.TOWN_CODE].astype(str)
        rows = []
        for code in sorted(towns.unique()):
            ids = set(points.index[towns == code])
            rows.append({schema.TOWN_CODE: code, "points": len(ids),
                         "uncovered": len(ids & set(self.gaps.uncovered.index)),
                         "unreachable": len(ids & set(self.gaps.unreachable.index)),
                         "too_far_from_road": len(ids & set(self.gaps.too_far_from_road.index))})  # fmt: skip
        columns = [schema.TOWN_CODE, "points", "uncovered", "unreachable", "too_far_from_road"]
        return pd.DataFrame(rows, columns=columns).set_index(schema.TOWN_CODE)

    def to_dict(self, *, points: bool = True) -> dict[str, Any]:
        """Return the stable JSON of the CLI.

        Keys: ``parameters``, ``summary``, ``by_town`` and, unless ``points=False``, ``uncovered``
        (rows), ``unreachable`` and ``too_far_from_road`` (ids) and ``hexagons`` (rows).
        """
        payload: dict[str, Any] = {"parameters": dict(self.parameters), "summary": self.summary,
                                   "by_town": records(self.by_town)}  # fmt: skip
        if points:
            payload.update({
                "uncovered": self.gaps.uncovered.drop(columns="geometry").reset_index().to_dict("records"),
                "unreachable": self.gaps.unreachable.index.tolist(),
                "too_far_from_road": self.gaps.too_far_from_road.index.tolist(),
                "hexagons": self.gaps.hexagons.drop(columns="geometry").to_dict("records"),
            })  # fmt: skip
        return self.names.rows(jsonable(payload))

    def to_file(self, path: str | Path) -> Path:
        """Write the result by extension.

        GeoPackage (every map layer), GeoJSON (uncovered points), CSV (uncovered), XLSX (uncovered,
        hexagons, per town) or JSON (``to_dict``).

        Raises
        ------
        ValueError
            If the extension is not one of ``SUFFIXES``.
        """
        from layers.io import write_features

        suffix = common.suffix_of(path, self.SUFFIXES, "gaps")
        layers = self.gaps.layers()
        uncovered = pd.DataFrame(layers["gap_uncovered"].drop(columns="geometry"))
        if suffix == ".json":
            common.write_json(self.to_dict(), path)
        elif suffix == ".gpkg":
            for i, (name, gdf) in enumerate(layers.items()):
                write_features(self.names.table(gdf), path, layer_name=name, append=i > 0)
        elif suffix == ".geojson":
            write_features(self.names.table(layers["gap_uncovered"]), path, layer_name="gap_uncovered")
        elif suffix == ".csv":
            common.write_csv(uncovered, path, names=self.names)
        else:
            hexagons = pd.DataFrame(layers["gap_hexagons"].drop(columns="geometry"))
            sheets = {"uncovered": uncovered, "hexagons": hexagons, "by_town": self.by_town}
            common.write_sheets(path, sheets, names=self.names)
        return Path(path)


def run_gaps(
    p: GapsParameters,
    *,
    store: Store,
    district: District,
    network: Network,
    reader: Reader,
    progress: Stages | None = None,
) -> GapsRun:
    """Find uncovered, unreachable and off-road demand, a hexagon summary and (optionally) road stretches.

    Stages: network, inputs, coverage, gaps; the caller adds one for writing.

    Raises
    ------
    ValueError
        If an input cannot be read or the threshold is malformed.
    """
    from analyses.gaps import find_gaps

    progress = progress or Silent()
    progress.expect(5)
    placer, facilities, demand, inputs = read_inputs(p, store, district, network, progress, reader)
    progress.stage(stages.STAGE_COVERAGE)
    coverage = measure_coverage(placer, facilities, demand, profile=p.profile, thresholds=[p.threshold],
                                parameters=inputs)  # fmt: skip
    progress.stage(stages.STAGE_GAPS_ROADS if p.road_stretches else stages.STAGE_GAPS)
    found = find_gaps(coverage, demand, threshold=p.threshold, hex_size_m=p.hex_size,
                      placer=placer if p.road_stretches else None,
                      facilities=facilities if p.road_stretches else None, crs=district.crs)  # fmt: skip
    return GapsRun({**coverage.parameters, **found.parameters}, coverage, found, names=PlaceNames.of(district))


# --- household report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HouseholdReportParameters:
    """Which services a household should reach: ``thresholds`` as (layer, threshold) pairs, from ``demand``.

    Raises
    ------
    ValueError
        If a pair names no public layer or no pair is given.
    """

    thresholds: tuple[tuple[str, str], ...]
    demand: str = "household"
    profile: str = "wheelchair"
    roads: str | None = None

    def __post_init__(self) -> None:
        layers = [layer for layer, _ in self.thresholds]
        if not layers or not set(layers) <= set(schema.PUBLIC_LAYERS):
            msg = (f"Each --threshold is LAYER=THRESHOLD with LAYER one of {schema.PUBLIC_LAYERS!r}; "
                   f"got {[f'{a}={b}' for a, b in self.thresholds]!r}.")  # fmt: skip
            raise ValueError(msg)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> HouseholdReportParameters:
        """Read ``accessplan household-report``'s options (``--threshold LAYER=THRESHOLD``).

        Raises
        ------
        ValueError
            If a threshold is not ``LAYER=THRESHOLD``.
        """
        texts = tuple(options["thresholds"])
        if not all("=" in t for t in texts):
            msg = f"Each --threshold is LAYER=THRESHOLD with LAYER one of {schema.PUBLIC_LAYERS!r}; got {texts!r}."
            raise ValueError(msg)
        pairs = tuple(tuple(t.split("=", 1)) for t in texts)
        return cls(thresholds=pairs, demand=options["demand"], profile=options["profile"], roads=options["roads"])


@dataclass(frozen=True)
class HouseholdReportRun:
    """Per household the nearest facility of every service and the thresholds it fails, with its parameters."""

    parameters: Mapping[str, Any]
    report: MultiServiceReport
    names: PlaceNames = field(default_factory=PlaceNames, repr=False)

    SUFFIXES = (".json", ".csv", ".xlsx")

    @property
    def summary(self) -> dict[str, int]:
        """Households listed and how many miss at least one service."""
        table = self.report.households
        return {"households": len(table), "missing_any": int((table["n_failed"] > 0).sum())}

    @property
    def by_town(self) -> pd.DataFrame:
        """Per town: households and how many miss at least one service."""
        table = self.report.households
        grouped = table.groupby(schema.TOWN_CODE)
        return pd.DataFrame({"households": grouped.size(), "missing_any": grouped["n_failed"].apply(lambda s: int(
            (s > 0).sum()))})  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Return the stable JSON: ``parameters``, ``summary``, ``by_town``, ``households`` (rows), ``by_service``."""
        return self.names.rows(jsonable({"parameters": dict(self.parameters), "summary": self.summary,
                                         "by_town": records(self.by_town),
                                         "households": self.report.households.reset_index().to_dict("records"),
                                         "by_service": records(self.report.by_service)}))  # fmt: skip

    def to_file(self, path: str | Path) -> Path:
        """Write by extension: CSV (households), XLSX (households, per service, per town) or JSON.

        Raises
        ------
        ValueError
            If the extension is not one of ``SUFFIXES``.
        """
        suffix = common.suffix_of(path, self.SUFFIXES, "household report")
        table = self.report.households.reset_index()
        if suffix == ".json":
            common.write_json(self.to_dict(), path)
        elif suffix == ".csv":
            common.write_csv(table, path, names=self.names)
        else:
            common.write_sheets(path, {"households": table, "by_service": self.report.by_service,
                                       "by_town": self.by_town}, names=self.names)  # fmt: skip
        return Path(path)


def run_household_report(
    p: HouseholdReportParameters,
    *,
    store: Store,
    district: District,
    network: Network,
    reader: Reader,
    progress: Stages | None = None,
) -> HouseholdReportRun:
    """List households with the services they lack: nearest facility, cost and failed thresholds, worst first.

    Facilities are those in service (``schema.IN_SERVICE_STATUSES``). Stages: network, inputs,
    services; the caller adds one for writing.
    """
    from analyses.gaps import multi_service_report
    from layers.privacy import log_bulk_read

    progress = progress or Silent()
    progress.expect(4)
    progress.stage(stages.STAGE_NETWORK)
    roads = network(p.roads)
    progress.stage(stages.STAGE_INPUTS)
    households = load_points(p.demand, store=store, district=district)
    if p.demand == schema.HOUSEHOLD:
        log_bulk_read(store, len(households), user=reader.user, purpose="household report", channel=reader.channel)
    pairs = dict(p.thresholds)
    services = {layer: store.features(layer, statuses=schema.IN_SERVICE_STATUSES[layer]) for layer in pairs}
    progress.stage(stages.STAGE_SERVICES)
    report = multi_service_report(roads.placer, services, households, profile=p.profile, thresholds=pairs)
    versions = common.data_versions(roads.version, demand=households, **services)
    return HouseholdReportRun({**report.parameters, "demand": p.demand, "data_versions": versions}, report,
                              names=PlaceNames.of(district))  # fmt: skip


# --- one toilet's effect -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToiletChangeParameters:
    """Coverage of the accepted toilets without and with ``toilet_id``, on a grid of ``grid_spacing`` metres."""

    toilet_id: str
    profile: str = "walk"
    threshold: str = "300m"
    grid_spacing: float = 250.0


@dataclass(frozen=True)
class ToiletChangeRun:
    """One accepted toilet's effect: coverage before (without it) and after (with it), overall and per town."""

    parameters: Mapping[str, Any]
    comparison: ScenarioComparison
    demand: gpd.GeoDataFrame = field(repr=False)
    names: PlaceNames = field(default_factory=PlaceNames, repr=False)

    SUFFIXES = (".json", ".csv", ".xlsx")

    @property
    def column(self) -> str:
        """The ``covered_*`` column of the threshold."""
        return covered_column(self._threshold())

    def _threshold(self) -> Any:
        from analyses.costs import parse_threshold

        return parse_threshold(self.parameters["threshold"])

    @property
    def summary(self) -> dict[str, Any]:
        """Weighted shares before and after, their change, points newly covered and no longer covered."""
        return {**self.comparison.summary_change[self.column], "points": len(self.comparison.after.points),
                "facilities_before": self.parameters["n_accepted"] - 1}  # fmt: skip

    @property
    def by_town(self) -> pd.DataFrame:
        """Per town (indexed by code): points, covered before and after, weighted shares before and after."""
        before, after = self.comparison.before.points, self.comparison.after.points
        c, change = self.column, self.comparison.by_town_change
        table = pd.DataFrame({
            "points": after.groupby(schema.TOWN_CODE).size(),
            "before": before.groupby(schema.TOWN_CODE)[c].sum().astype(int),
            "after": after.groupby(schema.TOWN_CODE)[c].sum().astype(int),
        })  # fmt: skip
        table["share_before"] = change[f"{c}_share_before"].reindex(table.index)
        table["share_after"] = change[f"{c}_share_after"].reindex(table.index)
        table.index.name = schema.TOWN_CODE
        return table

    def to_dict(self) -> dict[str, Any]:
        """Return ``parameters``, ``summary`` and ``by_town``."""
        return self.names.rows(jsonable({"parameters": dict(self.parameters), "summary": self.summary,
                                         "by_town": records(self.by_town)}))  # fmt: skip

    def to_file(self, path: str | Path) -> Path:
        """Write by extension: JSON, CSV (per town) or XLSX (per town, summary).

        Raises
        ------
        ValueError
            If the extension is not one of ``SUFFIXES``.
        """
        suffix = common.suffix_of(path, self.SUFFIXES, "toilet coverage change")
        if suffix == ".json":
            common.write_json(self.to_dict(), path)
        elif suffix == ".csv":
            common.write_csv(self.by_town.reset_index(), path, names=self.names)
        else:
            sheets = {"by_town": self.by_town, "summary": common.summary_sheet(self.summary)}
            common.write_sheets(path, sheets, names=self.names)
        return Path(path)


def coverage_change(
    placer: Any,
    facilities: gpd.GeoDataFrame,
    facility_id: str,
    demand: gpd.GeoDataFrame,
    *,
    profile: str,
    threshold: str,
) -> ScenarioComparison:
    """Compare the coverage of ``facilities`` without and with ``facility_id``.

    Parameters
    ----------
    placer
        The prepared network with its snapping indexes.
    facilities
        The facilities (EPSG:4326, ``id`` column), ``facility_id`` among them.
    facility_id
        The facility whose effect is measured.
    demand
        Demand points (``id``, ``town_code``).
    profile, threshold
        Travel profile and threshold, e.g. ``"walk"`` and ``"300m"``.

    Returns
    -------
    analyses.coverage.ScenarioComparison
        Before (without the facility) and after (with it), per town and overall.

    Raises
    ------
    ValueError
        If ``facility_id`` is not among ``facilities``.
    """
    ids = facilities[schema.ID].astype(str)
    if facility_id not in set(ids):
        msg = f"{facility_id!r} is not among the facilities measured (for a toilet: accept it first)."
        raise ValueError(msg)
    results = [measure_coverage(placer, chosen, demand, profile=profile, thresholds=[threshold])
               for chosen in (facilities[ids != facility_id], facilities)]  # fmt: skip
    return compare_scenarios(*results)


def run_toilet_change(
    p: ToiletChangeParameters,
    *,
    store: Store,
    district: District,
    network: Network,
    progress: Stages | None = None,
    demand: gpd.GeoDataFrame | None = None,
) -> ToiletChangeRun:
    """Measure an accepted toilet's effect on coverage of a grid over the district.

    ``demand`` is the grid when the caller keeps it (the toilet pages do); it is built otherwise.

    Raises
    ------
    ValueError
        If the toilet is not accepted.
    """
    progress = progress or Silent()
    progress.expect(3)
    progress.stage(stages.STAGE_NETWORK)
    roads = network(None)
    progress.stage(stages.STAGE_INPUTS)
    accepted = store.features(schema.ACCESSIBLE_TOILET, statuses=("accepted",))
    if demand is None:
        demand = load_points(GRID, store=store, district=district, grid_spacing_m=p.grid_spacing)
    progress.stage(stages.STAGE_COVERAGE)
    comparison = coverage_change(roads.placer, accepted, p.toilet_id, demand, profile=p.profile,
                                 threshold=p.threshold)  # fmt: skip
    parameters = {"toilet_id": p.toilet_id, "profile": p.profile, "threshold": p.threshold,
                  "grid_spacing": p.grid_spacing, "n_accepted": len(accepted),
                  "data_versions": common.data_versions(roads.version, facilities=accepted,
                                                        demand=demand)}  # fmt: skip
    return ToiletChangeRun(parameters, comparison, demand, names=PlaceNames.of(district))
