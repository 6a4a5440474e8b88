"""The service-areas run: each facility's catchment along the roads, and the demand points inside."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd

from analyses.inputs import load_demand, load_points
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
from analyses.runs.coverage import facility_points
from analyses.runs.stages import Silent, Stages
from layers import schema

if TYPE_CHECKING:
    from analyses.service_areas import ServiceAreasResult
    from layers.district import District
    from layers.privacy import Reader
    from layers.store import Store

#: The planner form's status filters → the statuses drawn (None: all).
STATUS_FILTERS = ("in_service", "planned", "all")


@dataclass(frozen=True)
class ServiceAreasParameters:
    """What a service-areas run draws.

    Parameters
    ----------
    facilities
        Facility layer or point file.
    thresholds
        One or more thresholds (``800m``, ``15min``).
    profile, shape, buffer_m
        Travel profile; ``roads`` (follow the reached roads, buffered by ``buffer_m``) or ``hull``.
    statuses
        Only facilities with these statuses; ``()`` draws all. None (the default): a layer's
        facilities in service (``schema.IN_SERVICE_STATUSES``), as the planner's default filter; every
        row of a point file.
    demand
        Demand points counted inside the areas (None: no counts).
    datum, roads
        Datum of CSV/XLSX point files; road file (None: the district's).
    """

    facilities: str
    thresholds: tuple[str, ...]
    profile: str = "walk"
    statuses: tuple[str, ...] | None = None
    shape: str = "roads"
    buffer_m: float = 50.0
    demand: str | None = None
    datum: str | None = None
    roads: str | None = None

    def __post_init__(self) -> None:
        statuses = default_statuses(self.facilities, self.statuses, schema.IN_SERVICE_STATUSES)
        object.__setattr__(self, "statuses", statuses)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ServiceAreasParameters:
        """Read ``accessplan service-areas``'s options."""
        return cls(facilities=options["facilities"], thresholds=as_tuple(options["thresholds"]),
                   profile=options["profile"], statuses=status_option(options["statuses"]), shape=options["shape"],
                   buffer_m=float(options["buffer_m"]), demand=text_or_none(options.get("demand")),
                   datum=options["datum"], roads=options["roads"])  # fmt: skip

    @classmethod
    def from_form(cls, form: Mapping[str, Any]) -> ServiceAreasParameters:
        """Read the planner's service-areas form (``status_filter``: in service, planned or all)."""
        layer = form["facilities"]
        statuses = {"in_service": schema.IN_SERVICE_STATUSES[layer], "planned": schema.PLANNED_STATUSES[layer],
                    "all": ()}[form["status_filter"]]  # fmt: skip
        return cls(facilities=layer, thresholds=as_tuple(form["thresholds"]), profile=form["profile"],
                   statuses=tuple(statuses), shape=form["shape"], buffer_m=float(form["buffer_m"]),
                   demand=text_or_none(form.get("demand")))  # fmt: skip


@dataclass(frozen=True)
class ServiceAreasRun:
    """A service-areas run's complete result.

    Parameters
    ----------
    parameters
        The drawing's parameters, the facility statuses, the demand and the data versions.
    areas
        One area per facility and threshold, and dissolved (``analyses.service_areas.ServiceAreasResult``).
    facilities
        The facilities drawn.
    points
        The demand points (EPSG:4326) with one ``covered_<threshold>`` flag per threshold (inside that
        threshold's dissolved area); None without demand.
    per_facility
        Per facility and threshold: name, town, ``too_far``, road length, area (km²) and, with demand,
        ``points_inside`` (points inside the facility's own area).
    """

    parameters: Mapping[str, Any]
    areas: ServiceAreasResult
    facilities: gpd.GeoDataFrame
    points: gpd.GeoDataFrame | None
    per_facility: pd.DataFrame
    names: PlaceNames = field(default_factory=PlaceNames, repr=False)

    SUFFIXES = (".gpkg", ".geojson", ".csv", ".xlsx", ".json")

    @property
    def coverage_columns(self) -> list[str]:
        """The ``covered_<threshold>`` columns of ``points`` (none without demand)."""
        return [] if self.points is None else [c for c in self.points.columns if c.startswith("covered_")]

    @property
    def summary(self) -> list[dict[str, Any]]:
        """Per threshold: the dissolved area's row and, with demand, the points and how many it covers."""
        rows = self.areas.dissolved.drop(columns="geometry").to_dict("records")
        if self.points is None:
            return rows
        return [{**row, "points": len(self.points), "covered": int(self.points[c].sum())}
                for row, c in zip(rows, self.coverage_columns, strict=True)]  # fmt: skip

    @property
    def by_town(self) -> pd.DataFrame:
        """Per town (indexed by code): demand points and the count and share covered per threshold."""
        if self.points is None:
            return pd.DataFrame(index=pd.Index([], name=schema.TOWN_CODE))
        grouped = self.points.groupby(schema.TOWN_CODE)
        table = grouped.size().rename("points").to_frame()
        for c in self.coverage_columns:
            table[f"{c}_count"] = grouped[c].sum().astype(int)
            table[f"{c}_share"] = table[f"{c}_count"] / table["points"]
        return table

    def to_dict(self, *, points: bool = True) -> dict[str, Any]:
        """Return the stable JSON.

        Keys: ``parameters``, ``coverage_columns``, ``summary``, ``by_town``, ``per_facility`` and, unless
        ``points=False`` or without demand, ``points`` (ids, town, village, covered flags).
        """
        payload = {"parameters": dict(self.parameters), "coverage_columns": self.coverage_columns,
                   "summary": self.summary, "by_town": records(self.by_town),
                   "per_facility": self.per_facility.to_dict("records")}  # fmt: skip
        if points and self.points is not None:
            payload["points"] = pd.DataFrame(self.points.drop(columns="geometry")).to_dict("records")
        return self.names.rows(jsonable(payload))

    def to_file(self, path: str | Path) -> Path:
        """Write the result by extension.

        GeoPackage (``service_areas``, ``service_areas_dissolved``, ``facilities``,
        ``points``), GeoJSON (one area per facility and threshold), CSV (per facility), XLSX (per facility,
        dissolved, per town, points) or JSON.

        Raises
        ------
        ValueError
            If the extension is not one of ``SUFFIXES``.
        """
        from layers.io import write_features

        suffix = common.suffix_of(path, self.SUFFIXES, "service-areas")
        if suffix == ".gpkg":
            self.areas.to_file(path)
            facilities = self.names.table(facility_points(self.facilities))
            write_features(facilities, path, layer_name="facilities", append=True)
            if self.points is not None:
                write_features(self.names.table(self.points), path, layer_name="points", append=True)
        elif suffix == ".geojson":
            self.areas.to_file(path, layer="areas")
        elif suffix == ".csv":
            common.write_csv(self.per_facility, path, names=self.names)
        elif suffix == ".xlsx":
            sheets = {"per_facility": self.per_facility,
                      "dissolved": pd.DataFrame(self.areas.dissolved.drop(columns="geometry")),
                      "by_town": self.by_town}  # fmt: skip
            if self.points is not None:
                sheets["points"] = pd.DataFrame(self.points.drop(columns="geometry"))
            common.write_sheets(path, sheets, names=self.names)
        else:
            common.write_json(self.to_dict(), path)
        return Path(path)


def points_in_areas(areas: ServiceAreasResult, demand: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return the demand points (EPSG:4326: ``demand_id``, town, village) with ``covered_<threshold>`` flags.

    A point is covered at a threshold when it lies inside that threshold's dissolved area.
    """
    wgs = demand.to_crs(schema.WGS84)
    keep = [c for c in (schema.TOWN_CODE, schema.VILLAGE_CODE) if c in wgs.columns]
    points = gpd.GeoDataFrame(
        {"demand_id": wgs[schema.ID].astype(str).to_numpy(), **{c: wgs[c].astype(str).to_numpy() for c in keep}},
        geometry=wgs.geometry.to_numpy(),
        crs=schema.WGS84,
    )
    for row in areas.dissolved.itertuples():
        points[f"covered_{row.threshold}"] = points.within(row.geometry) if row.geometry is not None else False
    return points


def per_facility_table(
    areas: ServiceAreasResult, facilities: gpd.GeoDataFrame, points: gpd.GeoDataFrame | None
) -> pd.DataFrame:
    """Return per facility and threshold: name, town, too far, road length, area and points inside its area."""
    table = areas.areas.reset_index(drop=True)
    ids = table["facility_id"].astype(str)
    info = facilities.assign(**{schema.ID: facilities[schema.ID].astype(str)}).set_index(schema.ID)
    per_facility = pd.DataFrame(
        {
            "facility_id": ids,
            schema.NAME: info[schema.NAME].reindex(ids).to_numpy() if schema.NAME in info else None,
            schema.TOWN_CODE: info[schema.TOWN_CODE].astype(str).reindex(ids).to_numpy(),
            "threshold": table["threshold"],
            "too_far": table["too_far"].astype(bool),
            "road_length_m": table["road_length_m"].round(1),
            "area_km2": (table["area_m2"] / 1e6).round(4),
        }
    )
    if points is not None:
        joined = gpd.sjoin(points[["demand_id", "geometry"]], table[["geometry"]], predicate="within")
        per_facility["points_inside"] = joined.groupby("index_right").size().reindex(table.index, fill_value=0)
    return per_facility


def run_service_areas(
    p: ServiceAreasParameters,
    *,
    store: Store,
    district: District,
    network: Network,
    reader: Reader,
    progress: Stages | None = None,
) -> ServiceAreasRun:
    """Draw each facility's catchment along the roads (one per facility and dissolved); count demand inside.

    Stages: network, inputs, areas, points (with demand); the caller adds one for writing.

    Raises
    ------
    ValueError
        If no facility matches the statuses (the message, in Chinese, names the layer and filter), or an
        input cannot be read.
    """
    from analyses.service_areas import service_areas

    progress = progress or Silent()
    progress.expect(4 + (p.demand is not None))
    progress.stage(stages.STAGE_NETWORK)
    roads = network(p.roads)
    progress.stage(stages.STAGE_INPUTS)
    facilities = load_points(p.facilities, store=store, district=district, statuses=p.statuses or None,
                             datum=p.datum)  # fmt: skip
    if not len(facilities):
        msg = (f"图层 {p.facilities} 没有符合状态筛选（{', '.join(p.statuses)}）的设施；"
               "请换一个筛选或先录入设施。")  # fmt: skip
        raise ValueError(msg)
    demand = None
    if p.demand is not None:
        demand = load_demand(p.demand, store=store, district=district, reader=reader, datum=p.datum)
    progress.stage(stages.STAGE_AREAS)
    areas = service_areas(roads.placer, facilities, profile=p.profile, thresholds=p.thresholds, shape=p.shape,
                          buffer_m=p.buffer_m, progress=lambda share: progress(stages.STAGE_AREAS, share))  # fmt: skip
    points = None
    if demand is not None:
        progress.stage(stages.STAGE_AREA_POINTS)
        points = points_in_areas(areas, demand)
    layers = {"facilities": facilities, **({"demand": demand} if demand is not None else {})}
    parameters = {**areas.parameters, "facilities": p.facilities, "facility_statuses": list(p.statuses),
                  "demand": p.demand, "data_versions": common.data_versions(roads.version, **layers)}  # fmt: skip
    return ServiceAreasRun(parameters, areas, facilities, points, per_facility_table(areas, facilities, points),
                           names=PlaceNames.of(district))  # fmt: skip
