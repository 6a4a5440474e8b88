"""Accessible toilets: which stay open, and where the new ones go (maximal coverage)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from analyses.siting.base import Method, Progress
from analyses.siting.models import MaxCoverage, compare_with_current
from analyses.siting.results import SitingComparison, SitingResult, jsonable
from layers import schema

if TYPE_CHECKING:
    import geopandas as gpd

    from analyses.costs import Placer, Threshold


#: A toilet stays open in a toilet plan when accepted after its build, or when it is an existing or
#: rebuilt (改造) one: only the new-build (新建) toilets not yet accepted are still to be sited.
KEPT_TOILET_STATUSES = ("accepted",)


KEPT_TOILET_BUILD_TYPES = ("existing", "rebuild")


def kept_toilets(toilets: pd.DataFrame) -> pd.Series:
    """Return a boolean mask of the toilets that stay open (``KEPT_TOILET_STATUSES``/``_BUILD_TYPES``).

    Raises
    ------
    ValueError
        If ``toilets`` has neither ``status`` nor ``build_type``.
    """
    if schema.STATUS not in toilets.columns and schema.BUILD_TYPE not in toilets.columns:
        msg = f"`toilets` needs `status` or `build_type` to tell which stay open; it has {list(toilets.columns)!r}."
        raise ValueError(msg)
    kept = pd.Series(False, index=toilets.index)
    if schema.STATUS in toilets.columns:
        kept |= toilets[schema.STATUS].isin(KEPT_TOILET_STATUSES)
    if schema.BUILD_TYPE in toilets.columns:
        kept |= toilets[schema.BUILD_TYPE].isin(KEPT_TOILET_BUILD_TYPES)
    return kept


@dataclass(frozen=True)
class ToiletSiting:
    """New accessible-toilet sites chosen by maximal coverage, with coverage before and after.

    Parameters
    ----------
    result
        The MCLP solution (kept toilets included in ``selected``).
    comparison
        Kept toilets only (before) against the solution (after), overall and per town.
    kept
        Ids of the toilets kept open.
    new_sites
        Ids of the chosen new sites.
    """

    result: SitingResult
    comparison: SitingComparison
    kept: tuple[str, ...]
    new_sites: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the result's ``to_dict()`` plus ``kept``, ``new_sites`` and ``comparison``."""
        by_town = self.comparison.by_town.reset_index().to_dict(orient="records")
        return {
            **self.result.to_dict(),
            "kept": list(self.kept),
            "new_sites": list(self.new_sites),
            "comparison": {"summary": jsonable(dict(self.comparison.summary)), "by_town": jsonable(by_town)},
        }


def site_new_toilets(
    placer: Placer,
    toilets: gpd.GeoDataFrame,
    demand: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame,
    *,
    n_new: int = 19,
    profile: str = "wheelchair",
    threshold: str | Threshold = "500m",
    weight_column: str | None = None,
    planned_as_candidates: bool = True,
    excluded: Collection[str] | None = None,
    method: Method = "exact",
    time_limit_s: float = 60.0,
    zone_labels: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> ToiletSiting:
    """Choose ``n_new`` accessible-toilet sites maximising the demand covered, keeping today's toilets.

    Toilets accepted after their build, and existing or rebuilt ones (``kept_toilets``), stay open;
    the model (``MaxCoverage``, ``p`` = kept + ``n_new``) adds the ``n_new`` sites that cover the
    most demand weight within ``threshold`` along the network.

    Parameters
    ----------
    placer
        The prepared network with its snapping indexes.
    toilets
        The toilet layer (any CRS) with ``id``, ``town_code`` and ``status``/``build_type``.
    demand
        What the toilets should be near (households, public facilities, dense streets...), any CRS,
        with ``id`` and ``town_code``.
    candidates
        Possible new sites (any CRS) with ``id`` and ``town_code``, e.g.
        ``analyses.candidates.candidates_near_seats``; ids must differ from the toilets'.
    n_new
        New sites to open.
    profile
        Travel profile (``"wheelchair"`` by default).
    threshold
        Coverage radius with a unit, e.g. ``"500m"`` or ``"10min"``.
    weight_column
        Demand weight column; 1 per point when None.
    planned_as_candidates
        Also offer the toilets that are not kept (planned new builds) as candidate sites.
    excluded
        Candidate ids that may not be chosen.
    method, time_limit_s
        As in ``MaxCoverage.solve``.
    zone_labels
        Town code → name, for messages.
    progress
        Called with (stage, fraction).

    Returns
    -------
    ToiletSiting

    Raises
    ------
    ValueError
        If ids collide or a column is missing.
    InfeasibleSitingError
        If there are fewer candidates than ``n_new``.
    """
    if int(n_new) != n_new or n_new < 1:
        msg = f"`n_new` must be a positive whole number of sites; got {n_new!r}."
        raise ValueError(msg)
    kept_mask = kept_toilets(toilets).to_numpy()
    kept = toilets.loc[kept_mask]
    pool = [kept, candidates]
    if planned_as_candidates:
        pool.append(toilets.loc[~kept_mask])
    crs = candidates.crs or toilets.crs
    columns = [schema.ID, schema.TOWN_CODE, "geometry"]
    for name, gdf in (("toilets", toilets), ("candidates", candidates)):
        lacking = [c for c in columns if c not in gdf.columns]
        if lacking:
            msg = f"`{name}` lacks the column(s) {lacking!r}; it has {list(gdf.columns)!r}."
            raise ValueError(msg)
    sites = pd.concat([g[columns].to_crs(crs) for g in pool], ignore_index=True)
    sites[schema.ID] = sites[schema.ID].astype(str)
    clash = sorted(set(candidates[schema.ID].astype(str)) & set(toilets[schema.ID].astype(str)))
    if clash:
        msg = f"`candidates` reuse toilet ids {clash[:5]!r}; give candidate sites their own ids."
        raise ValueError(msg)
    kept_ids = tuple(sorted(kept[schema.ID].astype(str)))
    model = MaxCoverage.from_network(
        placer,
        demand,
        sites,
        profile=profile,
        cutoff=threshold,
        weight_column=weight_column,
        p=len(kept_ids) + int(n_new),
        existing=kept_ids,
        excluded=excluded,
        zone_labels=zone_labels,
        progress=progress,
    )
    result = model.solve(method=method, time_limit_s=time_limit_s)
    comparison = compare_with_current(model, result, kept_ids)
    new_sites = tuple(s for s in result.selected if s not in set(kept_ids))
    return ToiletSiting(result, comparison, kept_ids, new_sites)
