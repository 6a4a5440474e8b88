"""Generate the synthetic demo layers of a district: facilities, toilets and households.

Every row is invented (``synthetic`` is True). The layers exist so that the planner, the maps and the
tests have realistic data to work on; they must never be read as facts about the district.

Randomness comes from ``numpy.random.default_rng(seed)`` and from Faker ``zh_CN`` seeded with
``Faker.seed_instance(seed)`` (names, phone numbers, company and street names), so one seed gives the
same frames and byte-identical CSV files on every run (for the pinned Faker version).

Layers (ids, counts and statuses):

* ``rehab_station`` RS-0001…: 30 community rehab stations 社区康复站, at least one per town, 24 open,
  4 planned, 2 closed; ``training_area_m2`` ≥ 20, ``beds`` ≥ 2, ``devices`` ≥ 5, ``instructors`` ≥ 1.
* ``service_centre`` SC-01…: 5 existing 渝馨家园, open, in 5 distinct towns (the rest are to be sited).
* ``accessible_toilet`` AT-001…: 25 ``existing`` (accepted), 19 ``rebuild`` and 19 ``new`` across
  planned → under_construction → completed → accepted; GB 50763 fields filled once completed.
* ``sports_site`` SS-01…: 20 残健融合文化体育示范点, 12 open, 8 planned.
* ``household`` HH-00001…: 1,150–1,250 households needing home modification, spread over villages in
  proportion to their households; fake names/phones, valid ID and certificate numbers.

Choices worth knowing:

* ``as_of`` (default 2024-06-30, mid 十四五 plan) is the date the demo data describe: ages, survey
  dates and planned completion dates are relative to it, never to today, so output does not drift.
* Citizen ID numbers are assembled here (prefix + birth date + sequence + check character, DOMAIN.md
  §6) instead of by Faker's ``ssn()``, because Faker derives birth dates from ``date.today()``.
  The prefixes are the district's own (``id_prefixes`` in district.toml); in Bishan people born before
  2014 mostly keep the old county prefix (500227 璧山县), later ones get 500120.
* Coordinates are sampled around the village point and kept only when the true WGS-84 position lies
  inside the row's town area and the district boundary, at least ``_EDGE_MARGIN_DEG`` from their edges.
* About a quarter of the households are recorded in GCJ-02 (as staff using Amap would record them):
  their ``lon``/``lat`` are the GCJ-02 coordinates and ``datum`` is ``"gcj02"``; all other rows are
  ``"wgs84"``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely
from faker import Faker

from geo.datums import convert
from layers import schema
from layers.district import load_district
from layers.idcard import id_check_char
from layers.schema import (
    ACTIVITIES,
    AREA_M2,
    BEDS,
    BUILD_TYPE,
    CAPACITY,
    CERTIFICATE_NUMBER,
    CONTRACTOR,
    DEVICES,
    DISABILITY_CATEGORY,
    DISABILITY_GRADE,
    GB50763_FIELDS,
    GCJ02_DATUM,
    HOUSEHOLDS,
    ID_NUMBER,
    INSTRUCTORS,
    KIND,
    LEGAL_BASIS,
    NEEDS,
    OPENED_ON,
    PHONE,
    PLANNED_COMPLETION,
    SYNTHETIC,
    TRAINING_AREA_M2,
    WGS84_DATUM,
)
from synthetic.villages import COMMUNITY, VILLAGE

if TYPE_CHECKING:
    import geopandas as gpd
    import numpy.typing as npt

    from layers.district import District

logger = logging.getLogger(__name__)

#: Date the demo data describe ("as of"); ages and workflow dates are relative to it.
DEFAULT_AS_OF = date(2024, 6, 30)

LAYER_COLUMNS: dict[str, tuple[str, ...]] = {
    schema.REHAB_STATION: (
        *schema.COMMON_COLUMNS,
        TRAINING_AREA_M2,
        BEDS,
        DEVICES,
        INSTRUCTORS,
        OPENED_ON,
        SYNTHETIC,
    ),
    schema.SERVICE_CENTRE: (*schema.COMMON_COLUMNS, CAPACITY, OPENED_ON, SYNTHETIC),
    schema.ACCESSIBLE_TOILET: (
        *schema.COMMON_COLUMNS,
        BUILD_TYPE,
        CONTRACTOR,
        PLANNED_COMPLETION,
        *GB50763_FIELDS,
        SYNTHETIC,
    ),
    schema.SPORTS_SITE: (*schema.COMMON_COLUMNS, AREA_M2, ACTIVITIES, OPENED_ON, SYNTHETIC),
    schema.HOUSEHOLD: (
        *schema.COMMON_COLUMNS,
        ID_NUMBER,
        CERTIFICATE_NUMBER,
        DISABILITY_CATEGORY,
        DISABILITY_GRADE,
        PHONE,
        NEEDS,
        LEGAL_BASIS,
        SYNTHETIC,
    ),
}

#: Decimals written for each float column (fixed, so that CSV bytes depend on the seed only).
FLOAT_DECIMALS = {
    schema.LON: 6,
    schema.LAT: 6,
    TRAINING_AREA_M2: 1,
    AREA_M2: 0,
    "room_area_m2": 2,
    "turning_diameter_m": 2,
}

TOILET_BUILD_TYPES = ("existing", "rebuild", "new")
#: Accessible toilets per build type, and their statuses in workflow order (planned, under_construction,
#: completed, accepted). 19 rebuilt + 19 new is the Bishan 十四五 target.
_TOILET_STATUS_COUNTS = {
    "existing": (0, 0, 0, 25),
    "rebuild": (3, 5, 4, 7),
    "new": (8, 6, 3, 2),
}
_REHAB_STATUS_COUNTS = {"planned": 4, "open": 24, "closed": 2}
_SERVICE_CENTRES_OPEN = 5
_SPORTS_STATUS_COUNTS = {"planned": 8, "open": 12}
_HOUSEHOLDS_MIN, _HOUSEHOLDS_MAX = 1150, 1250

HOUSEHOLD_STATUS_SHARES = {
    "surveyed": 0.15,
    "approved": 0.15,
    "in_progress": 0.18,
    "completed": 0.17,
    "verified": 0.30,
    "declined": 0.05,
}
#: Disability category (DOMAIN.md §6: 1 视力 2 听力 3 言语 4 肢体 5 智力 6 精神 7 多重) shares among
#: severely disabled people needing home modification (assumption; physical disability dominates).
_CATEGORY_SHARES = {1: 0.16, 2: 0.05, 3: 0.03, 4: 0.48, 5: 0.09, 6: 0.07, 7: 0.12}
#: Grade 1 = most severe; these households are "重度" so grades 1-2 dominate.
_GRADE_SHARES = {1: 0.48, 2: 0.40, 3: 0.08, 4: 0.04}
LEGAL_BASES = ("statutory_duty", "consent")
_STATUTORY_SHARE = 0.7
_GCJ02_SHARE = 0.25

NEED_TYPES = ("坡道", "扶手", "卫生间改造", "厨房改造", "门槛去除", "呼叫装置")
NEEDS_SEPARATOR = "；"
# Weight of each need per disability category (order of NEED_TYPES).
_NEED_WEIGHTS = {
    1: (1, 5, 2, 2, 3, 4),
    2: (1, 1, 1, 1, 1, 6),
    3: (1, 1, 1, 1, 1, 5),
    4: (6, 5, 5, 2, 5, 1),
    5: (1, 3, 2, 2, 2, 3),
    6: (1, 2, 2, 2, 1, 3),
    7: (4, 5, 5, 3, 4, 4),
}


#: Bishan's ID prefixes: current county code, then the pre-2014 璧山县 code (DOMAIN.md §3). Another district
#: passes its own (``id_prefixes`` in its district.toml, current code first).
BISHAN_ID_PREFIXES = ("500120", "500227")
#: With a second prefix, people born before this year mostly carry it (璧山县 became 璧山区 in 2014).
_PREFIX_CHANGE_YEAR = 2014
_OLD_PREFIX_SHARE = 0.8

# Sampling spread around the village point (metres), by kind of place.
_SIGMA_M = {COMMUNITY: 250.0, VILLAGE: 600.0}
_FACILITY_SIGMA_M = 120.0
_EDGE_MARGIN_DEG = 3e-5  # ~3 m: stays inside after 6-decimal rounding and GCJ-02 round trips
_MAX_TRIES = 200
_M_PER_DEG_LAT = 111_320.0

_STREET_SUFFIXES = ("路", "街", "大道")
_SPORTS_ACTIVITIES = ("轮椅篮球", "盲人门球", "坐式排球", "轮椅太极", "残健融合健身操", "聋人足球", "象棋")
_SURVEY_SOURCE = "合成数据：模拟现场核查（非实测）"

_VILLAGE_COLUMNS = (schema.VILLAGE_CODE, schema.NAME, schema.TOWN_CODE, KIND, schema.LON, schema.LAT, HOUSEHOLDS)
_TOWN_COLUMNS = (schema.TOWN_CODE, schema.NAME)


@dataclass(frozen=True)
class _Places:
    """Villages (sorted by code, with ``town_name``) and the shrunken polygons points must fall in."""

    villages: pd.DataFrame
    areas: dict[str, object] | None
    boundary: object | None


def generate_demo_layers(
    towns: pd.DataFrame,
    villages: pd.DataFrame,
    *,
    seed: int,
    town_areas: gpd.GeoDataFrame | None = None,
    boundary: gpd.GeoDataFrame | None = None,
    district_name: str = "璧山区",
    as_of: date = DEFAULT_AS_OF,
    id_prefixes: tuple[str, ...] = BISHAN_ID_PREFIXES,
) -> dict[str, pd.DataFrame]:
    """Generate the five synthetic demo layers for a district.

    Parameters
    ----------
    towns
        Towns as from ``District.towns``: ``town_code`` (9 digits) and ``name``.
    villages
        Villages as from ``District.villages``: ``village_code``, ``name``, ``town_code``, ``kind``
        (``community`` or ``village``), ``lon``, ``lat`` (WGS-84) and ``households`` (> 0 somewhere).
    seed
        Seed of numpy's generator and of Faker; the same seed gives equal frames.
    town_areas
        Town polygons in EPSG:4326 with ``town_code``; when given, every point's true WGS-84 position
        lies inside its town's polygon.
    boundary
        District outline in EPSG:4326; when given, every point lies inside it.
    district_name
        Chinese district name that starts every address.
    as_of
        Date the data describe: ages, survey and completion dates are relative to it.
    id_prefixes
        The district's six-digit ID-number prefixes, current code first (``District.id_prefixes``); with a
        second one, people born before 2014 mostly carry it (Bishan's 500227 璧山县).

    Returns
    -------
    dict
        Layer name (``schema.ALL_LAYERS``) to DataFrame with the columns of ``LAYER_COLUMNS``.
        ``lon``/``lat`` are rounded to 6 decimals in the row's ``datum``; missing values are None/NaN.

    Raises
    ------
    ValueError
        If a required column is missing, a village's town is not in `towns`, or no village has
        households.
    """
    places = _prepare_places(towns, villages, town_areas, boundary)
    rng = np.random.default_rng(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    ctx = _Context(rng=rng, fake=fake, places=places, district_name=district_name, as_of=as_of,
                   id_prefixes=tuple(id_prefixes))  # fmt: skip
    layers = {
        schema.REHAB_STATION: _rehab_stations(ctx),
        schema.SERVICE_CENTRE: _service_centres(ctx),
        schema.ACCESSIBLE_TOILET: _accessible_toilets(ctx),
        schema.SPORTS_SITE: _sports_sites(ctx),
        schema.HOUSEHOLD: _households(ctx),
    }
    logger.info(
        "Generated synthetic demo layers (seed %d): %s",
        seed,
        ", ".join(f"{name} {len(df):,}" for name, df in layers.items()),
    )
    return layers


def household_ledger(n_rows: int, *, district: District | None = None) -> pd.DataFrame:
    """Return ``n_rows`` valid households: the demo rows repeated with new ids, ID and phone numbers.

    For load tests and benchmarks of the import path. Row ``i`` is born ``i // 1000`` days after
    1940-01-01 with sequence number ``i % 1000``, so every ID number is distinct (the validator refuses
    one person on two rows) and carries its check character; the certificate number is that ID number
    plus the demo row's category and grade digits. All cells are text, as a ledger file holds them.
    """
    district = district or load_district()
    demo = pd.read_csv(district.demo_dir / "household.csv", dtype=str, keep_default_na=False)
    df = demo.iloc[[i % len(demo) for i in range(n_rows)]].reset_index(drop=True)
    born = date(1940, 1, 1)
    ids, certificates = [], []
    for i, (id_number, certificate) in enumerate(zip(df["id_number"], df["certificate_number"], strict=True)):
        first17 = f"{id_number[:6]}{born + timedelta(days=i // 1000):%Y%m%d}{i % 1000:03d}"
        ids.append(first17 + id_check_char(first17))
        certificates.append(ids[-1] + certificate[18:20])
    df["id"] = [f"HH-{i:06d}" for i in range(n_rows)]
    df["id_number"] = ids
    df["certificate_number"] = certificates
    df["phone"] = [f"13{i:09d}" for i in range(n_rows)]
    return df


def write_demo_layers(layers: dict[str, pd.DataFrame], folder: str | Path) -> dict[str, Path]:
    """Write each layer to ``folder/<layer>.csv`` (UTF-8, LF line ends, fixed float decimals).

    Parameters
    ----------
    layers
        Output of `generate_demo_layers`.
    folder
        Target folder; created if missing. Existing files of the same names are replaced.

    Returns
    -------
    dict
        Layer name to the path written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, df in layers.items():
        path = folder / f"{name}.csv"
        text = _format_frame(df).to_csv(index=False, lineterminator="\n")
        path.write_bytes(text.encode("utf-8"))
        paths[name] = path
        logger.info("Wrote %s rows of layer %r to %s", f"{len(df):,}", name, path)
    return paths


def generate_district_demo(
    district: District | None = None,
    *,
    folder: str | Path | None = None,
    town_areas: gpd.GeoDataFrame | None = None,
) -> dict[str, Path]:
    """Generate a district's demo layers with its seed and write them to its demo folder.

    Parameters
    ----------
    district
        A loaded district; the embedded Bishan default when None.
    folder
        Output folder; ``district.demo_dir`` when None.
    town_areas
        Polygons the points are placed in; ``district.town_areas`` when None (a district without seats
        passes ``synthetic.reference.demo_town_areas``).

    Returns
    -------
    dict
        Layer name to the path written.
    """
    district = district if district is not None else load_district()
    layers = generate_demo_layers(
        district.towns,
        district.villages,
        seed=district.seed,
        town_areas=district.town_areas if town_areas is None else town_areas,
        boundary=district.boundary,
        district_name=district.name,
        id_prefixes=district.id_prefixes,
    )
    return write_demo_layers(layers, folder if folder is not None else district.demo_dir)


def _prepare_places(
    towns: pd.DataFrame,
    villages: pd.DataFrame,
    town_areas: gpd.GeoDataFrame | None,
    boundary: gpd.GeoDataFrame | None,
) -> _Places:
    for arg, df, required in (("towns", towns, _TOWN_COLUMNS), ("villages", villages, _VILLAGE_COLUMNS)):
        missing = [c for c in required if c not in df.columns]
        if missing:
            msg = (
                f"`{arg}` lacks the column(s) {missing!r}; got {list(df.columns)!r}. "
                "Load it with `layers.district.load_district()`."
            )
            raise ValueError(msg)
    town_names = dict(zip(towns[schema.TOWN_CODE].astype(str), towns[schema.NAME], strict=True))
    v = pd.DataFrame({c: villages[c] for c in _VILLAGE_COLUMNS}).reset_index(drop=True)
    v[schema.TOWN_CODE] = v[schema.TOWN_CODE].astype(str)
    v[schema.VILLAGE_CODE] = v[schema.VILLAGE_CODE].astype(str)
    unknown = sorted(set(v[schema.TOWN_CODE]) - set(town_names))
    if unknown:
        msg = f"`villages.town_code` has codes not in `towns`: {unknown!r}; fix villages.csv or towns.csv."
        raise ValueError(msg)
    if not (v[HOUSEHOLDS] > 0).any():
        msg = "`villages.households` is zero everywhere; at least one village needs households."
        raise ValueError(msg)
    v["town_name"] = v[schema.TOWN_CODE].map(town_names)
    v = v.sort_values(schema.VILLAGE_CODE, kind="stable").reset_index(drop=True)
    areas = None
    if town_areas is not None:
        area_codes = town_areas[schema.TOWN_CODE]
        areas = {str(code): _shrink(geom) for code, geom in zip(area_codes, town_areas.geometry, strict=True)}
        missing_areas = sorted(set(v[schema.TOWN_CODE]) - set(areas))
        if missing_areas:
            msg = f"`town_areas` has no polygon for town code(s) {missing_areas!r}."
            raise ValueError(msg)
    outline = _shrink(shapely.union_all(boundary.geometry.values)) if boundary is not None else None
    return _Places(villages=v, areas=areas, boundary=outline)


def _shrink(geom: object) -> object:
    shrunk = shapely.buffer(geom, -_EDGE_MARGIN_DEG)
    shapely.prepare(shrunk)
    return shrunk


@dataclass(frozen=True)
class _Context:
    rng: np.random.Generator
    fake: Faker
    places: _Places
    district_name: str
    as_of: date
    id_prefixes: tuple[str, ...] = BISHAN_ID_PREFIXES


# --- sampling helpers --------------------------------------------------------------------------------


def _inside(places: _Places, town_codes: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    ok = np.ones(len(lon), dtype=bool)
    if places.boundary is not None:
        ok &= shapely.contains_xy(places.boundary, lon, lat)
    if places.areas is not None:
        for code in np.unique(town_codes):
            sel = town_codes == code
            ok[sel] &= shapely.contains_xy(places.areas[code], lon[sel], lat[sel])
    return ok


def _scatter(ctx: _Context, rows: pd.DataFrame, sigma_m: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Return WGS-84 points near each row's village point, inside its town area and the boundary."""
    n = len(rows)
    lon0 = rows[schema.LON].to_numpy(dtype=float)
    lat0 = rows[schema.LAT].to_numpy(dtype=float)
    codes = rows[schema.TOWN_CODE].to_numpy(dtype=str)
    sigma = np.broadcast_to(np.asarray(sigma_m, dtype=float), (n,))
    lon, lat = np.empty(n), np.empty(n)
    todo = np.arange(n)
    for _ in range(_MAX_TRIES):
        if todo.size == 0:
            break
        dx, dy = ctx.rng.normal(0.0, 1.0, size=(2, todo.size)) * sigma[todo]
        cand_lat = np.round(lat0[todo] + dy / _M_PER_DEG_LAT, 6)
        cand_lon = np.round(lon0[todo] + dx / (_M_PER_DEG_LAT * np.cos(np.radians(lat0[todo]))), 6)
        ok = _inside(ctx.places, codes[todo], cand_lon, cand_lat)
        lon[todo[ok]], lat[todo[ok]] = cand_lon[ok], cand_lat[ok]
        todo = todo[~ok]
    if todo.size:
        bad = sorted(set(rows[schema.VILLAGE_CODE].to_numpy(dtype=str)[todo]))
        msg = (
            f"Could not place points inside their town area near village(s) {bad!r} after {_MAX_TRIES} "
            "tries; check that these village points lie inside their town area (`town_areas`)."
        )
        raise ValueError(msg)
    return lon, lat


def _pick_villages(
    ctx: _Context, n: int, *, community_weight: float, replace: bool, mask: np.ndarray | None = None
) -> pd.DataFrame:
    """Pick `n` village rows weighted by households (communities weighted up by `community_weight`)."""
    v = ctx.places.villages
    w = v[HOUSEHOLDS].to_numpy(dtype=float) * np.where(v[KIND] == COMMUNITY, community_weight, 1.0)
    if mask is not None:
        w = w * mask
    available = int((w > 0).sum())
    if not replace and n > available:
        n = available
    idx = ctx.rng.choice(len(v), size=n, replace=replace, p=w / w.sum())
    if not replace:
        idx = np.sort(idx)
    return v.iloc[idx].reset_index(drop=True)


def _statuses(ctx: _Context, counts: dict[str, int]) -> list[str]:
    statuses = [s for s, k in counts.items() for _ in range(k)]
    return [statuses[i] for i in ctx.rng.permutation(len(statuses))]


def _street(ctx: _Context) -> str:
    return f"{ctx.fake.city_name()}{ctx.rng.choice(_STREET_SUFFIXES)}"


def _address(ctx: _Context, row: pd.Series) -> str:
    prefix = f"{ctx.district_name}{row['town_name']}{row['name']}"
    number = int(ctx.rng.integers(1, 300))
    if row[KIND] == COMMUNITY:
        return f"{prefix}{_street(ctx)}{number}号"
    return f"{prefix}{int(ctx.rng.integers(1, 13))}组{number}号"


def _date_between(ctx: _Context, start: date, end: date) -> date:
    return start + timedelta(days=int(ctx.rng.integers(0, (end - start).days + 1)))


def _common(
    ctx: _Context, rows: pd.DataFrame, prefix: str, width: int, names: list[str], statuses: list[str]
) -> pd.DataFrame:
    lon, lat = _scatter(ctx, rows, _FACILITY_SIGMA_M)
    return pd.DataFrame(
        {
            schema.ID: [f"{prefix}-{i + 1:0{width}d}" for i in range(len(rows))],
            schema.TOWN_CODE: rows[schema.TOWN_CODE].to_numpy(dtype=str),
            schema.VILLAGE_CODE: rows[schema.VILLAGE_CODE].to_numpy(dtype=str),
            schema.NAME: names,
            schema.ADDRESS: [_address(ctx, r) for _, r in rows.iterrows()],
            schema.LON: lon,
            schema.LAT: lat,
            schema.DATUM: WGS84_DATUM,
            schema.STATUS: statuses,
        }
    )


def _finish(df: pd.DataFrame, layer: str) -> pd.DataFrame:
    df[SYNTHETIC] = True
    return df[list(LAYER_COLUMNS[layer])]


# --- layers ------------------------------------------------------------------------------------------


def _rehab_stations(ctx: _Context) -> pd.DataFrame:
    v = ctx.places.villages
    n = sum(_REHAB_STATUS_COUNTS.values())
    # At least one station per town (at its largest community/village), the rest weighted by households.
    weight = v[HOUSEHOLDS] * np.where(v[KIND] == COMMUNITY, 3.0, 1.0)
    first = v.loc[weight.groupby(v[schema.TOWN_CODE]).idxmax().sort_values()]
    mask = ~v.index.isin(first.index)
    rest = _pick_villages(ctx, max(n - len(first), 0), community_weight=3.0, replace=False, mask=mask)
    rows = pd.concat([first, rest]).sort_values(schema.VILLAGE_CODE).reset_index(drop=True).iloc[:n]
    statuses = _statuses(ctx, _REHAB_STATUS_COUNTS)[: len(rows)]
    names = [f"{r['name']}康复站" for _, r in rows.iterrows()]
    df = _common(ctx, rows, "RS", 4, names, statuses)
    k = len(df)
    df[TRAINING_AREA_M2] = np.round(ctx.rng.uniform(20.0, 80.0, size=k), 1)
    df[BEDS] = ctx.rng.integers(2, 7, size=k)
    df[DEVICES] = ctx.rng.integers(5, 26, size=k)
    df[INSTRUCTORS] = ctx.rng.integers(1, 4, size=k)
    opened = [_date_between(ctx, date(2012, 1, 1), ctx.as_of).isoformat() for _ in range(k)]
    df[OPENED_ON] = [d if s != "planned" else None for d, s in zip(opened, df[schema.STATUS], strict=True)]
    return _finish(df, schema.REHAB_STATION)


def _service_centres(ctx: _Context) -> pd.DataFrame:
    v = ctx.places.villages
    codes = sorted(set(v[schema.TOWN_CODE]))
    n = min(_SERVICE_CENTRES_OPEN, len(codes))
    chosen = sorted(ctx.rng.choice(codes, size=n, replace=False))
    # Each centre sits in its town's largest community (or village when the town has none).
    weight = v[HOUSEHOLDS] * np.where(v[KIND] == COMMUNITY, 100.0, 1.0)
    in_chosen = v[schema.TOWN_CODE].isin(chosen)
    rows = v.loc[weight[in_chosen].groupby(v.loc[in_chosen, schema.TOWN_CODE]).idxmax()].reset_index(drop=True)
    names = [f"{t}渝馨家园" for t in rows["town_name"]]
    df = _common(ctx, rows, "SC", 2, names, ["open"] * len(rows))
    df[CAPACITY] = ctx.rng.integers(2, 7, size=len(df)) * 10
    df[OPENED_ON] = [_date_between(ctx, date(2016, 1, 1), date(2020, 12, 31)).isoformat() for _ in range(len(df))]
    return _finish(df, schema.SERVICE_CENTRE)


def _accessible_toilets(ctx: _Context) -> pd.DataFrame:
    frames = []
    statuses_order = schema.TOILET_STATUSES
    for build_type in TOILET_BUILD_TYPES:
        counts = dict(zip(statuses_order, _TOILET_STATUS_COUNTS[build_type], strict=True))
        n = sum(counts.values())
        community_weight = {"existing": 6.0, "rebuild": 3.0, "new": 1.0}[build_type]
        rows = _pick_villages(ctx, n, community_weight=community_weight, replace=True)
        part = rows.assign(build_type=build_type, status=_statuses(ctx, counts))
        frames.append(part)
    rows = pd.concat(frames, ignore_index=True)
    names = [f"{r['name']}{_street(ctx)}公厕" for _, r in rows.iterrows()]
    df = _common(ctx, rows, "AT", 3, names, rows["status"].tolist())
    df[BUILD_TYPE] = rows[BUILD_TYPE].to_numpy()
    contractors, planned = [], []
    for build_type, status in zip(df[BUILD_TYPE], df[schema.STATUS], strict=True):
        if build_type == "existing":
            contractors.append(None)
            planned.append(None)
            continue
        contractors.append(f"重庆{ctx.fake.company_prefix()}建筑工程有限公司")
        if status in ("completed", "accepted"):
            due = _date_between(ctx, date(2021, 10, 1), ctx.as_of)
        else:
            due = _date_between(ctx, ctx.as_of + timedelta(days=30), date(2025, 12, 31))
        planned.append(due.isoformat())
    df[CONTRACTOR] = contractors
    df[PLANNED_COMPLETION] = planned
    surveys = [_toilet_survey(ctx, b, s) for b, s in zip(df[BUILD_TYPE], df[schema.STATUS], strict=True)]
    for col in GB50763_FIELDS:
        # object dtype keeps ints as ints and None as None (no float NaN for door widths)
        df[col] = pd.Series([s[col] for s in surveys], dtype=object).to_numpy()
    return _finish(df, schema.ACCESSIBLE_TOILET)


def _toilet_survey(ctx: _Context, build_type: str, status: str) -> dict[str, object]:
    """Return GB 50763 survey values; all None unless the toilet was surveyed (completed/accepted)."""
    if status not in ("completed", "accepted"):
        return dict.fromkeys(GB50763_FIELDS)
    rng = ctx.rng
    # Existing toilets and not-yet-accepted builds fail some checks; accepted builds pass all.
    fail_share = {"existing": 0.08, "rebuild": 0.0, "new": 0.0}[build_type]
    if status == "completed":
        fail_share = 0.25
    unisex = bool(rng.random() < 0.7)
    survey = {
        "accessible_cubicle_f": bool(rng.random() < 0.9),
        "accessible_cubicle_m": bool(rng.random() < 0.9),
        "unisex_accessible_room": unisex,
        "room_area_m2": round(float(rng.uniform(4.0, 6.5)), 2) if unisex else None,
        "turning_diameter_m": round(float(rng.uniform(1.5, 1.9)), 2),
        "door_clear_width_mm": int(rng.integers(80, 101)) * 10,
        "door_outward_or_emergency_unlock": True,
        "grab_bar_horizontal": True,
        "grab_bar_vertical": True,
        "call_button": True,
        "accessible_basin": True,
        "accessible_urinal": bool(rng.random() < 0.8),
        "step_free_entrance": True,
        "signage": True,
        "opening_hours": str(rng.choice(["全天", "06:00-22:00", "07:00-21:00"])),
        "survey_date": _date_between(ctx, date(2021, 3, 1), ctx.as_of).isoformat(),
        "source": _SURVEY_SOURCE,
    }
    if rng.random() < fail_share:
        # One realistic failure: small room, narrow door, tight turning circle or a missing fitting.
        failure = str(rng.choice(["room", "door", "turning", "call_button", "grab_bar_vertical", "step"]))
        if failure == "room" and unisex:
            survey["room_area_m2"] = round(float(rng.uniform(3.2, 3.9)), 2)
        elif failure == "door":
            survey["door_clear_width_mm"] = int(rng.integers(65, 80)) * 10
        elif failure == "turning":
            survey["turning_diameter_m"] = round(float(rng.uniform(1.2, 1.49)), 2)
        elif failure == "step":
            survey["step_free_entrance"] = False
        elif failure == "grab_bar_vertical":
            survey["grab_bar_vertical"] = False
        else:  # call_button, or a small room where there is no unisex room to measure
            survey["call_button"] = False
    return survey


def _sports_sites(ctx: _Context) -> pd.DataFrame:
    n = sum(_SPORTS_STATUS_COUNTS.values())
    rows = _pick_villages(ctx, n, community_weight=4.0, replace=False)
    statuses = _statuses(ctx, _SPORTS_STATUS_COUNTS)[: len(rows)]
    names = [f"{r['name']}残健融合文化体育示范点" for _, r in rows.iterrows()]
    df = _common(ctx, rows, "SS", 2, names, statuses)
    df[AREA_M2] = np.round(ctx.rng.uniform(150.0, 1200.0, size=len(df)), 0)
    acts = []
    for _ in range(len(df)):
        k = int(ctx.rng.integers(1, 4))
        picked = sorted(ctx.rng.choice(len(_SPORTS_ACTIVITIES), size=k, replace=False))
        acts.append(NEEDS_SEPARATOR.join(_SPORTS_ACTIVITIES[i] for i in picked))
    df[ACTIVITIES] = acts
    df[OPENED_ON] = [
        _date_between(ctx, date(2021, 1, 1), ctx.as_of).isoformat() if s == "open" else None for s in df[schema.STATUS]
    ]
    return _finish(df, schema.SPORTS_SITE)


def _households(ctx: _Context) -> pd.DataFrame:
    rng, fake = ctx.rng, ctx.fake
    v = ctx.places.villages
    total = int(rng.integers(_HOUSEHOLDS_MIN, _HOUSEHOLDS_MAX + 1))
    p = v[HOUSEHOLDS].to_numpy(dtype=float)
    per_village = rng.multinomial(total, p / p.sum())
    rows = v.loc[v.index.repeat(per_village)].reset_index(drop=True)
    n = len(rows)
    sigma = rows[KIND].map(_SIGMA_M).fillna(_SIGMA_M[VILLAGE]).to_numpy()
    lon, lat = _scatter(ctx, rows, sigma)
    gcj = rng.random(n) < _GCJ02_SHARE
    glon, glat = convert(lon[gcj], lat[gcj], WGS84_DATUM, GCJ02_DATUM)
    lon, lat = lon.copy(), lat.copy()
    lon[gcj], lat[gcj] = np.round(glon, 6), np.round(glat, 6)

    categories = rng.choice(list(_CATEGORY_SHARES), size=n, p=list(_CATEGORY_SHARES.values()))
    grades = rng.choice(list(_GRADE_SHARES), size=n, p=list(_GRADE_SHARES.values()))
    statuses = rng.choice(list(HOUSEHOLD_STATUS_SHARES), size=n, p=list(HOUSEHOLD_STATUS_SHARES.values()))
    bases = np.where(rng.random(n) < _STATUTORY_SHARE, LEGAL_BASES[0], LEGAL_BASES[1])
    names, ids, phones, needs = [], [], [], []
    seen: set[str] = set()
    for category in categories:
        female = bool(rng.random() < 0.48)
        id_number = _id_number(ctx, female=female)
        while id_number in seen:
            id_number = _id_number(ctx, female=female)
        seen.add(id_number)
        ids.append(id_number)
        names.append(fake.name_female() if female else fake.name_male())
        phones.append(fake.phone_number())
        needs.append(_needs(rng, int(category)))
    df = pd.DataFrame(
        {
            schema.ID: [f"HH-{i + 1:05d}" for i in range(n)],
            schema.TOWN_CODE: rows[schema.TOWN_CODE].to_numpy(dtype=str),
            schema.VILLAGE_CODE: rows[schema.VILLAGE_CODE].to_numpy(dtype=str),
            schema.NAME: names,
            schema.ADDRESS: [_address(ctx, r) for _, r in rows.iterrows()],
            schema.LON: lon,
            schema.LAT: lat,
            schema.DATUM: np.where(gcj, GCJ02_DATUM, WGS84_DATUM),
            schema.STATUS: statuses,
            ID_NUMBER: ids,
            CERTIFICATE_NUMBER: [f"{i}{c}{g}" for i, c, g in zip(ids, categories, grades, strict=True)],
            DISABILITY_CATEGORY: categories.astype(int),
            DISABILITY_GRADE: grades.astype(int),
            PHONE: phones,
            NEEDS: needs,
            LEGAL_BASIS: bases,
        }
    )
    return _finish(df, schema.HOUSEHOLD)


def _id_number(ctx: _Context, *, female: bool) -> str:
    """Return an 18-character citizen ID of a resident of the district (valid check character, DOMAIN.md §6)."""
    rng = ctx.rng
    age_years = float(np.clip(rng.normal(62.0, 16.0), 3.0, 98.0))
    birth = ctx.as_of - timedelta(days=int(age_years * 365.25))
    prefixes = ctx.id_prefixes
    if len(prefixes) > 1 and birth.year < _PREFIX_CHANGE_YEAR and rng.random() < _OLD_PREFIX_SHARE:
        prefix = prefixes[1]
    else:
        prefix = prefixes[0]
    sequence = int(rng.integers(0, 100))
    sex_digit = 2 * int(rng.integers(0, 5)) + (0 if female else 1)
    first17 = f"{prefix}{birth:%Y%m%d}{sequence:02d}{sex_digit}"
    return first17 + id_check_char(first17)


def _needs(rng: np.random.Generator, category: int) -> str:
    w = np.asarray(_NEED_WEIGHTS[category], dtype=float)
    k = int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.20]))
    picked = sorted(rng.choice(len(NEED_TYPES), size=k, replace=False, p=w / w.sum()))
    return NEEDS_SEPARATOR.join(NEED_TYPES[i] for i in picked)


# --- output ------------------------------------------------------------------------------------------


def _format_value(value: object, decimals: int | None) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if decimals is not None:
        return f"{float(value):.{decimals}f}"
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (float, np.floating)):
        msg = f"Float value {value!r} has no fixed decimals; add its column to FLOAT_DECIMALS."
        raise TypeError(msg)
    return str(value)


def _format_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Return `df` as strings with fixed float decimals and empty strings for missing values."""
    out = {}
    for col in df.columns:
        decimals = FLOAT_DECIMALS.get(col)
        out[col] = [_format_value(x, decimals) for x in df[col].tolist()]
    return pd.DataFrame(out, columns=df.columns)
