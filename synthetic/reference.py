"""Generate the SYNTHETIC reference data of a district folder: town areas, villages and roads."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import shapely

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

    A district whose towns have no seats gets synthetic villages and roads around `synthetic_seats`, and no
    town areas (they stay unknown).

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
    if not district.has_seats:  # real towns without seats: the town areas stay unknown, nothing is written for them
        _, villages, xml = generate_unseated_reference(district.boundary, district.towns, crs=district.crs, seed=seed)
        villages.to_csv(district.path("villages"), index=False, encoding="utf-8", lineterminator="\n")
        write_osm_bz2(xml, district.path("roads"))
        logger.info("Generated the reference data of %s (no seats) in %.1f s", district.name,
                    time.perf_counter() - started)  # fmt: skip
        return
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


def demo_town_areas(district: District, *, seed: int | None = None) -> gpd.GeoDataFrame:
    """Return the town areas demo layers are placed in: the district's own, else the SYNTHETIC ones.

    A district without seats has no town areas; its synthetic demo points are placed in the Voronoi cells
    of `synthetic_seats` (the same seed gives the same cells as `generate_unseated_reference`).
    """
    if district.has_town_areas:
        return district.town_areas
    seed = district.seed if seed is None else seed
    seats = synthetic_seats(district.boundary, district.towns, crs=district.crs, seed=seed)
    return generate_town_areas(district.boundary, seats, crs=district.crs)


def synthetic_seats(boundary: gpd.GeoDataFrame, towns: pd.DataFrame, *, crs: str, seed: int) -> gpd.GeoDataFrame:
    """Return SYNTHETIC seat points for towns whose real seats are unknown, spread over the district.

    Points of a 250 m grid inside the boundary are split into one k-means cluster per town (seeded); each
    town gets the grid point nearest its cluster's centre, subdistricts (街道) the clusters nearest the
    district's centre and towns (镇) the outer ones. They exist only to generate synthetic villages, roads
    and demo layers; they are never written as the district's seats or town areas.

    Parameters
    ----------
    boundary
        The district outline (EPSG:4326).
    towns
        ``town_code``, ``name`` and ``kind`` (``subdistrict`` or ``town``), one row per town.
    crs
        Projected CRS (metres).
    seed
        Seed of the k-means initialisation.

    Returns
    -------
    geopandas.GeoDataFrame
        ``towns`` with the synthetic seats as point geometry, in EPSG:4326.
    """
    from scipy.cluster.vq import kmeans2

    outline = boundary.to_crs(crs).union_all()
    west, south, east, north = outline.bounds
    gx, gy = np.meshgrid(np.arange(west, east, 250.0), np.arange(south, north, 250.0))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    grid = grid[shapely.contains_xy(outline, grid[:, 0], grid[:, 1])]
    centres, _ = kmeans2(grid, len(towns), seed=seed, minit="++")
    nearest = np.array([np.argmin(((grid - c) ** 2).sum(axis=1)) for c in centres])
    points = grid[nearest]
    middle = np.array(outline.centroid.coords[0])
    ring = np.argsort(((points - middle) ** 2).sum(axis=1), kind="stable")  # inner clusters first
    order = np.argsort(towns[KIND].to_numpy() != SUBDISTRICT, kind="stable")  # subdistricts first
    xy = np.empty_like(points)
    xy[order] = points[ring]
    seats = gpd.GeoDataFrame(towns.reset_index(drop=True), geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=crs)
    return seats.to_crs(WGS84)


def generate_unseated_reference(
    boundary: gpd.GeoDataFrame, towns: pd.DataFrame, *, crs: str, seed: int
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, bytes]:
    """Generate SYNTHETIC town areas, villages and an OSM road network for a district without town seats.

    Parameters
    ----------
    boundary
        The real outline (EPSG:4326).
    towns
        The real towns (``town_code``, ``name``, ``kind``), without seats.
    crs, seed
        Projected CRS and the seed of every draw (the same seed gives the same outputs).

    Returns
    -------
    tuple
        Synthetic town areas (Voronoi cells of `synthetic_seats`: for generating demo layers only), the
        villages table (``synthetic`` True; populations drawn to Bishan's census totals, so they say nothing
        about the district) and the road network as OSM XML bytes.
    """
    seats = synthetic_seats(boundary, towns, crs=crs, seed=seed)
    areas = generate_town_areas(boundary, seats, crs=crs)
    villages = generate_villages(areas, seats, seed=seed, crs=crs)
    xml = generate_road_network(**_road_inputs(boundary, seats, villages, crs), crs=crs, seed=seed)
    return areas, villages, xml


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
    return _road_inputs(district.boundary, district.towns, villages, district.crs)


def _road_inputs(boundary: gpd.GeoDataFrame, towns: gpd.GeoDataFrame, villages: pd.DataFrame, crs: str) -> dict:
    outline = boundary.to_crs(crs).geometry.iloc[0]
    towns = towns.to_crs(crs)
    seats_xy = np.column_stack([towns.geometry.x, towns.geometry.y])
    points = gpd.GeoSeries(gpd.points_from_xy(villages[LON], villages[LAT]), crs=WGS84).to_crs(crs)
    villages_xy = np.column_stack([points.x, points.y])
    urban = villages[villages[KIND] == COMMUNITY].groupby(TOWN_CODE)[POPULATION].sum()
    centres = []
    for town, x, y in zip(towns.itertuples(), seats_xy[:, 0], seats_xy[:, 1], strict=True):
        lo, hi = GRID_RADIUS_M[town.kind]
        people = float(urban.get(getattr(town, TOWN_CODE), 0.0))
        radius = float(np.clip(np.sqrt(people / URBAN_DENSITY_PER_KM2 / np.pi) * 1000.0, lo, hi))
        centres.append((x, y, radius))
    return {
        "boundary": outline,
        "seats_xy": seats_xy,
        "villages_xy": villages_xy,
        "urban_centres": np.array(centres),
    }
