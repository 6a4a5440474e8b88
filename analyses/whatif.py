"""What-if coverage: add, move and remove sites and see coverage change at once, equal to a full run.

A `WhatIfSession` starts from a set of facilities (a layer's current ones, or the sites of a stored
siting result) and a demand layer. Each edit — a planned site added at a point, a site moved, a
facility closed or reopened — updates the nearest facility of only the demand it affects
(``geo.whatif.IncrementalNearest``) and returns the same `analyses.coverage.CoverageResult` a full
`measure_coverage` run would give for the facilities in service after the edit (the tables are built
by the same ``coverage_from_costs``).

Examples
--------
>>> session = WhatIfSession(placer, centres, households, profile="walk", thresholds=["800m"])  # doctest: +SKIP
>>> session.add_site("new-1", lon=106.21, lat=29.59)  # doctest: +SKIP
>>> session.close("SC-03").summary["covered_800m"]["weighted_share"]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import geopandas as gpd

from analyses.coverage import CoverageResult, CoverageThresholds, check_coverage_inputs, coverage_from_costs
from geo.whatif import IncrementalNearest
from layers import schema

if TYPE_CHECKING:
    from analyses.costs import Placer, Threshold


class WhatIfSession:
    """Coverage of ``demand`` by facilities that the planner adds, moves and removes one edit at a time.

    Parameters
    ----------
    placer
        The prepared network with its snapping indexes.
    facilities
        The starting facilities (any CRS) with an ``id`` column; all in service.
    demand
        Demand points as for `analyses.coverage.measure_coverage`.
    profile, thresholds, class_thresholds, weight_column
        As for `analyses.coverage.measure_coverage`.
    parameters
        Extra context recorded in every result.

    Raises
    ------
    ValueError
        As `measure_coverage` does for bad thresholds, ids or columns.
    """

    def __init__(
        self,
        placer: Placer,
        facilities: gpd.GeoDataFrame,
        demand: gpd.GeoDataFrame,
        *,
        profile: str,
        thresholds: Sequence[str | Threshold],
        class_thresholds: Mapping[str, str | Threshold] | None = None,
        weight_column: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> None:
        self._limits = CoverageThresholds.parse(thresholds, class_thresholds)
        check_coverage_inputs(facilities, demand, weight_column)
        self.placer, self.profile, self.weight_column = placer, profile, weight_column
        self.demand = demand
        self._demand_snap = placer.snap(demand, profile)
        self._parameters = dict(parameters or {})
        self._nearest = {
            weight: IncrementalNearest(placer.net, profile, self._demand_snap, weight=weight)
            for weight in self._limits.weights
        }
        #: Facilities known to the session (started with or added), by id: lon/lat and whether in service.
        self.sites: dict[str, dict[str, Any]] = {}
        if len(facilities):
            self._put(facilities.to_crs(schema.WGS84))

    # --- edits ---------------------------------------------------------------------------------------

    def add_site(self, site_id: str, *, lon: float, lat: float) -> CoverageResult:
        """Put a new site in service at (``lon``, ``lat``) (WGS-84); return the coverage after.

        Raises
        ------
        ValueError
            If ``site_id`` is already known to the session.
        """
        site_id = str(site_id)
        if site_id in self.sites:
            msg = f"站点编号 {site_id} 已存在；请换一个编号，或用移动修改它的位置。"
            raise ValueError(msg)
        self._put(_point(site_id, lon, lat))
        return self.result()

    def move_site(self, site_id: str, *, lon: float, lat: float) -> CoverageResult:
        """Move a site (new or existing) to (``lon``, ``lat``); it is in service after; return the coverage after."""
        self._known(site_id)
        if self.sites[site_id]["in_service"]:
            self._take_out(site_id)
        del self.sites[site_id]
        self._put(_point(site_id, lon, lat))
        return self.result()

    def close(self, site_id: str) -> CoverageResult:
        """Take a facility or site out of service; return the coverage after.

        Raises
        ------
        ValueError
            If ``site_id`` is unknown or already out of service.
        """
        self._known(site_id)
        if not self.sites[site_id]["in_service"]:
            msg = f"设施 {site_id} 已不在服务中。"
            raise ValueError(msg)
        self._take_out(site_id)
        return self.result()

    def reopen(self, site_id: str) -> CoverageResult:
        """Put a closed facility or site back in service where it was; return the coverage after."""
        self._known(site_id)
        site = self.sites.pop(site_id)
        if site["in_service"]:
            self.sites[site_id] = site
            msg = f"设施 {site_id} 已在服务中。"
            raise ValueError(msg)
        self._put(_point(site_id, site["lon"], site["lat"]))
        return self.result()

    def remove_site(self, site_id: str) -> CoverageResult:
        """Forget a site (taken out of service first if it is in); return the coverage after.

        For a planned site the planner no longer wants; an existing facility is closed instead (`close`),
        so that it can be reopened.

        Raises
        ------
        ValueError
            If ``site_id`` is unknown.
        """
        self._known(site_id)
        if self.sites[site_id]["in_service"]:
            self._take_out(site_id)
        del self.sites[site_id]
        return self.result()

    # --- reading -------------------------------------------------------------------------------------

    @property
    def in_service(self) -> list[str]:
        """Ids of the facilities in service now."""
        return [i for i, site in self.sites.items() if site["in_service"]]

    def facilities(self) -> gpd.GeoDataFrame:
        """Return the facilities in service now (``id``, ``lon``, ``lat``, point geometry in WGS-84)."""
        ids = self.in_service
        lon = [self.sites[i]["lon"] for i in ids]
        lat = [self.sites[i]["lat"] for i in ids]
        return gpd.GeoDataFrame({schema.ID: ids, schema.LON: lon, schema.LAT: lat},
                                geometry=gpd.points_from_xy(lon, lat), crs=schema.WGS84)  # fmt: skip

    def result(self) -> CoverageResult:
        """Return the coverage by the facilities in service now."""
        nearest = {w: (inc.demand_cost, inc.demand_facility_ids()) for w, inc in self._nearest.items()}
        context = {"profile": self.profile, "max_snap_m": self.placer.max_snap_m,
                   "n_facilities": len(self.in_service), **self._parameters}  # fmt: skip
        return coverage_from_costs(self.demand, self._demand_snap, self._limits, nearest,
                                   weight_column=self.weight_column, parameters=context)  # fmt: skip

    # --- inside --------------------------------------------------------------------------------------

    def _known(self, site_id: str) -> None:
        if site_id not in self.sites:
            msg = f"没有编号为 {site_id} 的设施或站点。"
            raise ValueError(msg)

    def _put(self, points: gpd.GeoDataFrame) -> None:
        snap = self.placer.snap(points, self.profile)
        for inc in self._nearest.values():
            inc.add(snap)
        for row in points.itertuples():
            geometry = row.geometry
            self.sites[str(getattr(row, schema.ID))] = {"lon": geometry.x, "lat": geometry.y, "in_service": True}

    def _take_out(self, site_id: str) -> None:
        for inc in self._nearest.values():
            inc.remove([site_id])
        self.sites[site_id]["in_service"] = False


def _point(site_id: str, lon: float, lat: float) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({schema.ID: [site_id]}, geometry=gpd.points_from_xy([lon], [lat]), crs=schema.WGS84)
