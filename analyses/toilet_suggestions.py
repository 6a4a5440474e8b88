"""Suggest sites for the programme's new accessible toilets and accept one into the plan.

The suggestions come from the siting engine (``analyses.runs.siting.run_siting``): the toilet layer's
kept toilets stay open (``analyses.siting.toilets.kept_toilets``), demand is the district's villages
weighted by households, and the model maximises the households within the threshold (walk 300 m by
default, DOMAIN.md §1) when ``n`` toilets are added. Each new site is named by
``analyses.places.PlaceNamer`` (town · village · road), never by a node number.

Accepting a site adds a *planned* ``new`` toilet through the store's normal import path
(``layers.importer.import_layer``): the same validation as a spreadsheet row (inside the district, a
valid town code, the workflow), one history row with who added it; nothing is written when a rule fails.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pandas as pd

from analyses.runs.siting import SitingParameters
from analyses.siting.toilets import kept_toilets
from layers import schema
from layers.importer import import_layer

if TYPE_CHECKING:
    from analyses.runs.siting import SitingRun
    from layers.district import District
    from layers.importer import ImportOutcome
    from layers.store import Store

#: Plan target of new builds (the "十四五" plan's 19 new accessible toilets, ``analyses.targets``).
NEW_TARGET = 19
_ID = re.compile(r"^AT-(\d+)$")


def suggestion_parameters(
    n: int, toilets: pd.DataFrame, *, threshold: str = "300m", profile: str = "walk"
) -> SitingParameters:
    """Return the siting run behind the suggestions: ``n`` new toilets, villages weighted by households.

    The register's toilets that are not kept open (``analyses.siting.toilets.kept_toilets``: planned
    and unaccepted new builds) are excluded from the candidates, so every suggestion is a new place.

    Raises
    ------
    ValueError
        If ``n`` is not between 1 and `NEW_TARGET`.
    """
    if not 1 <= n <= NEW_TARGET:
        msg = f"The number of suggested sites must be between 1 and {NEW_TARGET}; got {n!r}."
        raise ValueError(msg)
    return SitingParameters(layer=schema.ACCESSIBLE_TOILET, demand="village", threshold=threshold,
                            model="max_coverage", n_new=n, profile=profile, weight_column="households",
                            keep_existing=True, excluded=tuple(sorted(toilets.loc[~kept_toilets(toilets), schema.ID]
                                                                      .astype(str))),
                            method="exact", time_limit=60.0)  # fmt: skip


def remaining_new(toilets: pd.DataFrame) -> int:
    """Return how many new builds the plan still lacks in the register (`NEW_TARGET` minus registered ``new``)."""
    return max(NEW_TARGET - int((toilets[schema.BUILD_TYPE] == "new").sum()), 0)


def suggested_sites(run: SitingRun) -> pd.DataFrame:
    """Return the run's new sites (not a toilet of the register): ``id``, ``town_code``, ``lon``, ``lat``, ``place``."""
    chosen = run.chosen
    new = chosen[~chosen["current"].astype(bool) & (chosen["source"] != schema.ACCESSIBLE_TOILET)]
    points = new.to_crs(schema.WGS84)
    return pd.DataFrame({
        schema.ID: new[schema.ID].astype(str).to_numpy(),
        schema.TOWN_CODE: new[schema.TOWN_CODE].astype(str).to_numpy(),
        schema.LON: points.geometry.x.round(6).to_numpy(), schema.LAT: points.geometry.y.round(6).to_numpy(),
        "place": new["place"].astype(str).to_numpy(),
    })  # fmt: skip


def next_toilet_id(ids: pd.Series) -> str:
    """Return the next free ``AT-nnn`` id after the largest one in ``ids`` (``AT-001`` when none)."""
    numbers = [int(m.group(1)) for m in (_ID.match(str(i)) for i in ids) if m]
    return f"AT-{max(numbers, default=0) + 1:03d}"


def planned_toilet_row(site: dict[str, Any], toilet_id: str) -> pd.DataFrame:
    """Return a one-row table (import columns) that adds ``site`` as a planned new-build toilet."""
    name = f"{site['place']}（建议新建）" if site.get("place") else f"建议新建无障碍厕所 {toilet_id}"
    return pd.DataFrame([{
        schema.ID: toilet_id, schema.TOWN_CODE: str(site[schema.TOWN_CODE]), schema.NAME: name,
        schema.ADDRESS: site.get("place") or None, schema.LON: str(site[schema.LON]), schema.LAT: str(site[schema.LAT]),
        schema.DATUM: schema.WGS84_DATUM, schema.STATUS: "planned", schema.BUILD_TYPE: "new",
    }], dtype=object)  # fmt: skip


def accept_site(store: Store, district: District, site: dict[str, Any], *, user: str) -> tuple[str, ImportOutcome]:
    """Add ``site`` as a planned new toilet through ``layers.importer.import_layer``; return its id and the outcome.

    Check ``outcome.ok``: when a rule fails nothing is written and ``outcome.validation`` names the problem.
    """
    toilet_id = next_toilet_id(store.features(schema.ACCESSIBLE_TOILET)[schema.ID])
    outcome = import_layer(store, schema.ACCESSIBLE_TOILET, planned_toilet_row(site, toilet_id),
                           district=district, user=user)  # fmt: skip
    return toilet_id, outcome
