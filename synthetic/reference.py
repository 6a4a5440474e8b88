"""Generate the SYNTHETIC reference data of a district folder: town areas, villages and roads."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np

from layers.schema import KIND, LAT, LON, POPULATION, TOWN_CODE, WGS84
from synthetic.roads import generate_road_network, write_osm_bz2
from synthetic.terrain import write_district_dem
from synthetic.villages import (
    COMMUNITY,
    SUBDISTRICT,
    TOWN,
    generate_town_areas,
    generate_villages,
)

if TYPE_CHECKING:
    import pandas as pd

    from layers.district import District

logger = logging.getLogger(__name__)

#: Urban density used to size the street grid of each town centre (residents per km²).
URBAN_DENSITY_PER_KM2 = 9000.0
#: Radius limits of a centre's street grid, in metres, per town kind.
GRID_RADIUS_M = {SUBDISTRICT: (1200.0, 3000.0), TOWN: (350.0, 700.0)}


def generate_reference_data(district: District, *, seed: int | None = None) -> None:
    """Write the district's SYNTHETIC ``town_areas``, ``villages``, ``roads`` and ``dem`` files into its folder.

    Parameters
    ----------
    district
        A loaded district (``layers.district.load_district``) with a real boundary and towns.
    seed
        Seed of every random draw; ``district.seed`` (``synthetic_seed`` in ``district.toml``) when None.
        The same seed rewrites byte-identical files.
    """
    seed = district.seed if seed is None else seed
    started = time.perf_counter()
    town_areas = generate_town_areas(district.boundary, district.towns, crs=district.crs)
    path = district.path("town_areas")
    town_areas.to_file(path, driver="GeoJSON", engine="pyogrio", WRITE_BBOX="NO", COORDINATE_PRECISION=6)
    logger.info("Wrote %d approximate town areas to %r", len(town_areas), str(path))

    villages = generate_villages(town_areas, district.towns, seed=seed, crs=district.crs)
    path = district.path("villages")
    villages.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
    logger.info("Wrote %d synthetic villages to %r", len(villages), str(path))

    xml = generate_road_network(**road_inputs(district, villages), crs=district.crs, seed=seed)
    write_osm_bz2(xml, district.path("roads"))
    if "dem" in district.files:
        bounds = tuple(district.boundary.to_crs(district.crs).total_bounds)
        write_district_dem(bounds, str(district.path("dem")), crs=district.crs, seed=seed)
    logger.info("Generated the reference data of %s in %.1f s", district.name, time.perf_counter() - started)


def road_inputs(district: District, villages: pd.DataFrame) -> dict[str, object]:
    """Return the projected inputs of ``synthetic.roads.generate_road_network`` for a district.

    Parameters
    ----------
    district
        The district (boundary, towns with seats, projected CRS).
    villages
        The villages table (``lon``, ``lat``, ``town_code``, ``kind``, ``population``).

    Returns
    -------
    dict
        ``boundary`` (shapely polygon), ``seats_xy``, ``villages_xy`` and ``urban_centres`` (x, y, radius
        in metres, one per town, sized by the population of its communities), all in ``district.crs``.
    """
    boundary = district.boundary.to_crs(district.crs).geometry.iloc[0]
    towns = district.towns.to_crs(district.crs)
    seats_xy = np.column_stack([towns.geometry.x, towns.geometry.y])
    points = gpd.GeoSeries(gpd.points_from_xy(villages[LON], villages[LAT]), crs=WGS84).to_crs(district.crs)
    villages_xy = np.column_stack([points.x, points.y])
    urban = villages[villages[KIND] == COMMUNITY].groupby(TOWN_CODE)[POPULATION].sum()
    centres = []
    for town, x, y in zip(towns.itertuples(), seats_xy[:, 0], seats_xy[:, 1], strict=True):
        lo, hi = GRID_RADIUS_M[town.kind]
        people = float(urban.get(getattr(town, TOWN_CODE), 0.0))
        radius = float(np.clip(np.sqrt(people / URBAN_DENSITY_PER_KM2 / np.pi) * 1000.0, lo, hi))
        centres.append((x, y, radius))
    return {
        "boundary": boundary,
        "seats_xy": seats_xy,
        "villages_xy": villages_xy,
        "urban_centres": np.array(centres),
    }
