"""Generate approximate town areas and SYNTHETIC villages/communities for a district.

Nothing here is real data: town areas are Voronoi cells of the town seats, and villages are drawn from a
seeded random generator so that the tool has a plausible, reproducible village layer to work with until
the client supplies the real one (DOMAIN.md §8: Bishan's village list was not obtained).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers.district_init import approximate_town_areas
from layers.schema import (
    HOUSEHOLDS,
    KIND,
    LAT,
    LON,
    NAME,
    POPULATION,
    SYNTHETIC,
    TOWN_CODE,
    URBAN_RURAL_CODE,
    VILLAGE_CODE,
    WGS84,
)

if TYPE_CHECKING:
    import numpy.typing as npt

logger = logging.getLogger(__name__)

APPROXIMATE = "approximate"

#: Column order of the villages table (``villages.csv``).
VILLAGE_COLUMNS = (
    VILLAGE_CODE,
    NAME,
    TOWN_CODE,
    KIND,
    URBAN_RURAL_CODE,
    LON,
    LAT,
    HOUSEHOLDS,
    POPULATION,
    SYNTHETIC,
)

COMMUNITY = "community"
VILLAGE = "village"
SUBDISTRICT = "subdistrict"
TOWN = "town"

#: 2020 census (DOMAIN.md §8): resident population and its urban part.
CENSUS_POPULATION = 756_022
CENSUS_URBAN_POPULATION = 535_680
#: Share of the urban population living in subdistrict (街道) communities; the rest in town (镇) centres.
SUBDISTRICT_URBAN_SHARE = 0.88

#: Count ranges (inclusive) per town kind: (communities, villages). Totals fall in 207-300.
_COUNT_RANGES = {SUBDISTRICT: ((6, 10), (6, 10)), TOWN: ((1, 3), (14, 17))}

#: Village suffix ranges by kind (NBS structure, DOMAIN.md §3): 社区 001-099, 村 200-399.
SUFFIX_START = {COMMUNITY: 1, VILLAGE: 200}
SUFFIX_RANGE = {COMMUNITY: (1, 99), VILLAGE: (200, 399)}

#: 城乡分类代码 allowed per (town kind, village kind): (core, fringe) — DOMAIN.md §3.
URBAN_RURAL_CODES = {
    (SUBDISTRICT, COMMUNITY): ("111", "112"),
    (TOWN, COMMUNITY): ("121", "122"),
    (SUBDISTRICT, VILLAGE): ("210", "220"),
    (TOWN, VILLAGE): ("210", "220"),
}

EDGE_MARGIN_M = 150.0
_PERSONS_PER_HOUSEHOLD = (2.45, 2.95)

_COMMUNITY_NAMES = (
    "凤凰 东林 南湖 文星 金剑 双星 翠湖 书院 紫薇 秀湖 东岳 玉屏 永嘉 桂湖 碧泉 宝峰 白羊 黛山 "
    "茅莱 滨河 御湖 剑山 青龙 红宇 东风 西城 南门 北街 新华 和平 同心 惠民 锦绣 花园 丽景 明珠 "
    "梧桐 枫林 杏坛 龙泉 清溪 映月 天星 瑞丰 兴隆 嘉禾 福泽 安康 晨曦 望江 观澜 竹韵 梅岭 鹿鸣"
).split()
_VILLAGE_FIRST = "石龙黄高马双新柏五大青桥观白长金红花凤松竹梅兴永太和清水田茶狮鹤"
_VILLAGE_SECOND = "院井桷庙鞍河坝店林湾岭山坪沟桥塘滩岩坡垭堰冲口湖寺园"


def generate_town_areas(boundary: gpd.GeoDataFrame, towns: gpd.GeoDataFrame, *, crs: str) -> gpd.GeoDataFrame:
    """Split the district into approximate town areas (`layers.district_init.approximate_town_areas`)."""
    return approximate_town_areas(boundary, towns, crs=crs)


def generate_villages(
    town_areas: gpd.GeoDataFrame, towns: gpd.GeoDataFrame, *, seed: int, crs: str | None = None
) -> pd.DataFrame:
    """Draw a SYNTHETIC village and community (村/社区) table for the towns of a district.

    Communities cluster around each town seat; villages spread over the town area. Points keep
    ``EDGE_MARGIN_M`` (150 m) inside their town area so none sits on a border. Populations add up to the
    2020 census total (``CENSUS_POPULATION``) with the urban part in the communities.

    Parameters
    ----------
    town_areas
        One polygon per town with ``town_code`` (as from :func:`generate_town_areas`), any CRS.
    towns
        One row per town with ``town_code``, ``kind`` (``subdistrict`` or ``town``) and the seat point.
    seed
        Seed of ``numpy.random.default_rng``: the same seed gives the same table.
    crs
        Projected CRS (metres) used for placing points; the local UTM zone when None.

    Returns
    -------
    pandas.DataFrame
        Columns ``VILLAGE_COLUMNS``; one row per village, ordered by ``village_code``; lon/lat in WGS-84
        rounded to 5 decimals; ``synthetic`` always True.

    Raises
    ------
    ValueError
        If a town has no area or an unknown ``kind``.
    """
    if crs is None:
        crs = town_areas.estimate_utm_crs() if town_areas.crs.is_geographic else town_areas.crs
    areas = dict(zip(town_areas[TOWN_CODE].astype(str), town_areas.to_crs(crs).geometry, strict=True))
    towns = towns.assign(**{TOWN_CODE: towns[TOWN_CODE].astype(str)}).sort_values(TOWN_CODE)
    missing = sorted(set(towns[TOWN_CODE]) - set(areas))
    if missing:
        msg = f"`town_areas` has no area for the towns {missing!r}; generate them with `generate_town_areas`."
        raise ValueError(msg)
    bad_kinds = sorted(set(towns[KIND]) - set(_COUNT_RANGES))
    if bad_kinds:
        msg = f"`towns.kind` must be one of {sorted(_COUNT_RANGES)!r}; got {bad_kinds!r}."
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    seats = towns.to_crs(crs).geometry
    rows = []
    for (_, town), seat in zip(towns.iterrows(), seats, strict=True):
        rows.extend(_town_villages(town[TOWN_CODE], town[KIND], areas[town[TOWN_CODE]], seat, rng))
    df = pd.DataFrame(rows)
    df[POPULATION] = _allocate_population(df, rng)
    ratio = rng.uniform(*_PERSONS_PER_HOUSEHOLD, size=len(df))
    df[HOUSEHOLDS] = np.maximum(1, np.round(df[POPULATION] / ratio)).astype(np.int64)
    lon, lat = _to_wgs84(df, crs)
    df[LON] = np.round(lon, 5)
    df[LAT] = np.round(lat, 5)
    df[SYNTHETIC] = True
    df = df.sort_values(VILLAGE_CODE).reset_index(drop=True)
    logger.info(
        "Generated %d synthetic villages/communities (%d communities) with %s residents in %d towns",
        len(df),
        int((df[KIND] == COMMUNITY).sum()),
        f"{int(df[POPULATION].sum()):,}",
        len(towns),
    )
    return df[list(VILLAGE_COLUMNS)]


def _to_wgs84(df: pd.DataFrame, crs: object) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    points = gpd.GeoSeries(gpd.points_from_xy(df["x"], df["y"]), crs=crs).to_crs(WGS84)
    return points.x.to_numpy(), points.y.to_numpy()


def _town_villages(
    town_code: str, town_kind: str, area: shapely.Geometry, seat: shapely.Point, rng: np.random.Generator
) -> list[dict[str, object]]:
    """Place the communities and villages of one town (projected coordinates ``x``, ``y``)."""
    (c_lo, c_hi), (v_lo, v_hi) = _COUNT_RANGES[town_kind]
    n_communities = int(rng.integers(c_lo, c_hi + 1))
    n_villages = int(rng.integers(v_lo, v_hi + 1))
    inner = area.buffer(-EDGE_MARGIN_M)
    if inner.is_empty:
        inner = area.buffer(-min(EDGE_MARGIN_M, 10.0))
    shapely.prepare(inner)
    sigma_m = 1100.0 if town_kind == SUBDISTRICT else 350.0
    community_xy = _sample_near(inner, (seat.x, seat.y), sigma_m, n_communities, rng, min_gap_m=250.0)
    spacing_m = 0.6 * np.sqrt(inner.area / max(n_villages, 1))
    village_xy = _sample_spread(inner, community_xy, n_villages, rng, min_gap_m=spacing_m)
    names_c = _pick_names(rng, n_communities, kind=COMMUNITY)
    names_v = _pick_names(rng, n_villages, kind=VILLAGE)
    seat_xy = np.array([seat.x, seat.y])
    rows = []
    for kind, xy, names in ((COMMUNITY, community_xy, names_c), (VILLAGE, village_xy, names_v)):
        dist = np.hypot(*(xy - seat_xy).T)
        order = np.argsort(dist, kind="stable")
        core, fringe = URBAN_RURAL_CODES[(town_kind, kind)]
        # The nearer half of the communities are core urban; for villages only the nearest is 乡中心区 (210).
        n_core = (len(order) + 1) // 2 if kind == COMMUNITY else 1
        for rank, i in enumerate(order):
            suffix = SUFFIX_START[kind] + rank
            rows.append(
                {
                    VILLAGE_CODE: f"{town_code}{suffix:03d}",
                    NAME: names[rank],
                    TOWN_CODE: town_code,
                    KIND: kind,
                    URBAN_RURAL_CODE: core if rank < n_core else fringe,
                    "town_kind": town_kind,
                    "x": float(xy[i, 0]),
                    "y": float(xy[i, 1]),
                }
            )
    return rows


def _sample_near(
    inner: shapely.Geometry,
    centre: tuple[float, float],
    sigma_m: float,
    n: int,
    rng: np.random.Generator,
    *,
    min_gap_m: float,
) -> npt.NDArray[np.float64]:
    """Draw ``n`` points around ``centre`` (normal, ``sigma_m``) inside ``inner``, ``min_gap_m`` apart."""
    points: list[tuple[float, float]] = []
    gap = min_gap_m
    while len(points) < n:
        for _ in range(400):
            x, y = rng.normal(centre, sigma_m)
            if _accept(inner, points, x, y, gap):
                points.append((x, y))
                break
        else:
            gap *= 0.8
            sigma_m *= 1.2
    return np.array(points, dtype=np.float64).reshape(-1, 2)


def _sample_spread(
    inner: shapely.Geometry,
    taken: npt.NDArray[np.float64],
    n: int,
    rng: np.random.Generator,
    *,
    min_gap_m: float,
) -> npt.NDArray[np.float64]:
    """Draw ``n`` points uniformly in ``inner``, ``min_gap_m`` apart from each other and from ``taken``."""
    minx, miny, maxx, maxy = inner.bounds
    points: list[tuple[float, float]] = []
    others = [tuple(p) for p in taken]
    gap = min_gap_m
    while len(points) < n:
        for _ in range(400):
            x, y = rng.uniform((minx, miny), (maxx, maxy))
            if _accept(inner, others + points, x, y, gap):
                points.append((x, y))
                break
        else:
            gap *= 0.8
    return np.array(points, dtype=np.float64).reshape(-1, 2)


def _accept(inner: shapely.Geometry, points: list[tuple[float, float]], x: float, y: float, gap: float) -> bool:
    if not shapely.contains_xy(inner, x, y):
        return False
    return all((x - px) ** 2 + (y - py) ** 2 >= gap**2 for px, py in points)


def _pick_names(rng: np.random.Generator, n: int, *, kind: str) -> list[str]:
    """Return ``n`` distinct plausible names ending in 社区 or 村."""
    if kind == COMMUNITY:
        pool = [f"{s}社区" for s in _COMMUNITY_NAMES]
    else:
        pool = [f"{a}{b}村" for a in _VILLAGE_FIRST for b in _VILLAGE_SECOND]
    return [pool[i] for i in rng.choice(len(pool), size=n, replace=False)]


def _allocate_population(df: pd.DataFrame, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """Split the census population over the rows: urban part to communities, the rest to villages."""
    urban_subdistrict = round(CENSUS_URBAN_POPULATION * SUBDISTRICT_URBAN_SHARE)
    totals = {
        (SUBDISTRICT, COMMUNITY): urban_subdistrict,
        (TOWN, COMMUNITY): CENSUS_URBAN_POPULATION - urban_subdistrict,
        (VILLAGE,): CENSUS_POPULATION - CENSUS_URBAN_POPULATION,
    }
    weights = rng.lognormal(mean=0.0, sigma=0.35, size=len(df))
    # Core urban communities are denser than fringe ones.
    weights = np.where(df[URBAN_RURAL_CODE].isin(["111", "121"]), weights * 1.5, weights)
    population = np.zeros(len(df), dtype=np.int64)
    for key, total in totals.items():
        mask = (
            (df[KIND] == VILLAGE).to_numpy()
            if key == (VILLAGE,)
            else ((df["town_kind"] == key[0]) & (df[KIND] == key[1])).to_numpy()
        )
        population[mask] = _largest_remainder(weights[mask], total)
    return population


def _largest_remainder(weights: npt.NDArray[np.float64], total: int) -> npt.NDArray[np.int64]:
    """Integers proportional to ``weights`` that add up exactly to ``total``."""
    quota = weights / weights.sum() * total
    base = np.floor(quota).astype(np.int64)
    short = total - int(base.sum())
    base[np.argsort(-(quota - base), kind="stable")[:short]] += 1
    return base
