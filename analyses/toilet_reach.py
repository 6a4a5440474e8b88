"""What one toilet (planned, being built or accepted) adds: households and people within reach, per town.

The register's question is "whom would this toilet serve?", so the answer is counted in the district's
villages and communities (村/社区, ``layers.district.District.villages`` with their ``households`` and
``population``), not as a share of grid points: a village counts as reached when its point is within
the threshold (walk along the network, 300 m by default, DOMAIN.md §1) of a toilet. *Before* is the
accepted toilets without this one; *after* adds it, whatever its status, so a planned toilet shows what
it would add once accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from analyses.costs import parse_threshold
from analyses.coverage import covered_column, measure_coverage
from analyses.inputs import villages_as_demand
from layers import schema

if TYPE_CHECKING:
    import geopandas as gpd

#: The counts per town and in total, each ``<what>_before`` and ``<what>_after``.
COUNTS = ("villages", "households", "population")


@dataclass(frozen=True)
class ToiletReach:
    """Villages, households and population within the threshold without and with one toilet.

    Attributes
    ----------
    by_town
        Indexed by ``town_code``: ``villages_before`` … ``population_after`` (ints) for every town
        with at least one village.
    total
        The same counts over the district.
    threshold
        The threshold label, e.g. ``"300m"``.
    """

    by_town: pd.DataFrame
    total: dict[str, int]
    threshold: str

    @property
    def changed_towns(self) -> pd.DataFrame:
        """The towns where the toilet adds anything."""
        return self.by_town[self.by_town["households_after"] != self.by_town["households_before"]]


def toilet_reach(
    placer: Any,
    accepted: gpd.GeoDataFrame,
    toilet: gpd.GeoDataFrame,
    villages: gpd.GeoDataFrame,
    *,
    profile: str,
    threshold: str,
) -> ToiletReach:
    """Count villages, households and people within ``threshold`` without and with ``toilet``.

    Parameters
    ----------
    placer
        The prepared network with its snapping indexes (``analyses.costs.Placer``).
    accepted
        The accepted toilets (``id``; any CRS). The toilet itself is left out of *before* if among them.
    toilet
        The one toilet measured (one row, ``id``), of any status.
    villages
        The district's villages (``village_code``, ``town_code``, ``households``, ``population``).
    profile, threshold
        Travel profile and threshold, e.g. ``"walk"`` and ``"300m"``.

    Returns
    -------
    ToiletReach

    Raises
    ------
    ValueError
        If ``toilet`` is not exactly one row or ``villages`` lacks ``households``/``population``.
    """
    if len(toilet) != 1:
        msg = f"toilet_reach measures one toilet; got {len(toilet)} rows."
        raise ValueError(msg)
    missing = [c for c in ("households", "population") if c not in villages.columns]
    if missing:
        msg = f"The villages table lacks {missing!r}: households within reach cannot be counted."
        raise ValueError(msg)
    toilet_id = str(toilet[schema.ID].iloc[0])
    before = accepted[accepted[schema.ID].astype(str) != toilet_id]
    after = pd.concat([before, toilet.to_crs(before.crs) if before.crs is not None else toilet], ignore_index=True)
    demand = villages_as_demand(villages)
    column = covered_column(parse_threshold(threshold))
    covered = {}
    for name, chosen in (("before", before), ("after", after)):
        if len(chosen) == 0:
            covered[name] = pd.Series(False, index=demand[schema.ID].astype(str))
            continue
        result = measure_coverage(placer, chosen, demand, profile=profile, thresholds=[threshold])
        covered[name] = result.points[column].astype(bool)
    return reach_counts(demand, covered["before"], covered["after"], threshold=parse_threshold(threshold).label)


def reach_counts(demand: pd.DataFrame, before: pd.Series, after: pd.Series, *, threshold: str) -> ToiletReach:
    """Sum villages, households and population reached before and after, per town and in total.

    Parameters
    ----------
    demand
        Villages as demand (``id`` = village code, ``town_code``, ``households``, ``population``).
    before, after
        Whether each village (indexed by ``id``) is within the threshold.
    threshold
        The threshold label recorded in the result.
    """
    table = pd.DataFrame({
        schema.TOWN_CODE: demand[schema.TOWN_CODE].astype(str).to_numpy(),
        "households": pd.to_numeric(demand["households"], errors="coerce").fillna(0).to_numpy(),
        "population": pd.to_numeric(demand["population"], errors="coerce").fillna(0).to_numpy(),
    }, index=demand[schema.ID].astype(str))  # fmt: skip
    for name, covered in (("before", before), ("after", after)):
        reached = covered.reindex(table.index).fillna(False).astype(bool)
        table[f"villages_{name}"] = reached.astype(int)
        table[f"households_{name}"] = table["households"].where(reached, 0)
        table[f"population_{name}"] = table["population"].where(reached, 0)
    columns = [f"{what}_{name}" for what in COUNTS for name in ("before", "after")]
    by_town = table.groupby(schema.TOWN_CODE)[columns].sum().round().astype(int)
    total = {c: int(by_town[c].sum()) for c in columns}
    return ToiletReach(by_town, total, threshold)
