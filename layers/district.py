"""Load a district data folder: boundary, towns, town areas, villages and file locations."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import geopandas as gpd
import pandas as pd

from layers.errors import DistrictDataError
from layers.schema import NAME, NAME_EN, TOWN_CODE, URBAN_RURAL_CODE, VILLAGE_CODE, WGS84

DEFAULT_DISTRICT_DIR = Path(__file__).resolve().parent.parent / "data" / "bishan"
#: Environment variable that chooses the district folder (below the ``DISTRICT_DIR`` config key and ``--district``).
DISTRICT_DIR_ENV_VAR = "ACCESSPLAN_DISTRICT_DIR"
SEAT_LON, SEAT_LAT = "seat_lon", "seat_lat"


@dataclass(frozen=True)
class Office:
    """A service office caseworkers set out from (``[[offices]]`` in ``district.toml``), in WGS 84."""

    name: str
    lon: float
    lat: float


@dataclass(frozen=True)
class District:
    """A district as described by its data folder (see ``data/bishan/district.toml``).

    Geometries are returned in WGS-84 (EPSG:4326); ``crs`` is the projected CRS (metres) in which
    every distance of this district is computed.
    """

    folder: Path
    code: str
    name: str
    name_en: str
    crs: str
    seed: int
    files: dict[str, str] = field(repr=False)
    #: Year of the plan's month windows (``plan_year`` in ``district.toml``); None: each table's own year.
    plan_year: int | None = None
    #: Six-digit region prefixes of residents' ID numbers, current code first (``id_prefixes``).
    id_prefixes: tuple[str, ...] = ()
    #: Keys of ``files`` that are generated, not real (``synthetic`` in ``district.toml``): maps say so.
    synthetic_files: tuple[str, ...] = ()
    #: Offices a caseworker's visit route may start from (``[[offices]]``: ``name``, ``lon``, ``lat``).
    offices: tuple[Office, ...] = ()

    def display_name(self, language: str = "zh") -> str:
        """Return the district's name in ``language``: ``"en"`` gives ``name_en``, anything else ``name``."""
        return self.name_en if language == "en" else self.name

    def town_names(self, language: str = "zh") -> dict[str, str]:
        """Return town code → town name in ``language`` (``"en"``: the ``name_en`` column, else ``name``)."""
        column = NAME_EN if language == "en" else NAME
        return dict(zip(self.towns[TOWN_CODE], self.towns[column].astype(str), strict=True))

    def path(self, key: str) -> Path:
        """Return the path of the district file named ``key`` in ``district.toml`` ``[files]``."""
        try:
            return self.folder / self.files[key]
        except KeyError:
            msg = (
                f"{self.folder / 'district.toml'} 的 [files] 中没有 `{key}`（已列出：{sorted(self.files)!r}）。 "
                f"`{key}` is not listed under [files] in {self.folder / 'district.toml'}; "
                f"listed: {sorted(self.files)!r}."
            )
            raise DistrictDataError(msg) from None

    @cached_property
    def boundary(self) -> gpd.GeoDataFrame:
        """The district outline, one (Multi)Polygon row, in EPSG:4326."""
        gdf = _read_geo(self.path("boundary"))
        return gdf[["geometry"]].dissolve().reset_index(drop=True)

    @cached_property
    def towns(self) -> gpd.GeoDataFrame:
        """Towns and subdistricts (镇街) with 9-digit codes and seat points (empty where unknown), in EPSG:4326.

        A folder without a towns table (``district init`` without ``--towns``) has no towns: an empty table.
        """
        if "towns" not in self.files:
            df = pd.DataFrame({c: pd.Series(dtype=str) for c in ("code", NAME)})
        else:
            df = _read_csv(self.path("towns"), dtype={"code": str})
        for column in (SEAT_LON, SEAT_LAT):
            if column not in df.columns:
                df[column] = float("nan")
        if "name_en" not in df.columns:
            df["name_en"] = df["name"]
        if "seat_approximate" not in df.columns:
            df["seat_approximate"] = False
        known = df[SEAT_LON].notna() & df[SEAT_LAT].notna()
        points = gpd.points_from_xy(df[SEAT_LON].fillna(0.0), df[SEAT_LAT].fillna(0.0), crs=WGS84)
        geometry = gpd.GeoSeries(points, crs=WGS84).where(known.to_numpy(), None)
        return gpd.GeoDataFrame(df.rename(columns={"code": TOWN_CODE}), geometry=geometry, crs=WGS84)

    @property
    def has_seats(self) -> bool:
        """True when every town has a seat point (towns.csv has ``seat_lon``/``seat_lat`` on every row)."""
        return bool(len(self.towns)) and bool(self.towns.geometry.notna().all())

    @property
    def has_town_areas(self) -> bool:
        """True when the folder lists town areas; False means the town areas are unknown."""
        return "town_areas" in self.files

    @cached_property
    def town_areas(self) -> gpd.GeoDataFrame:
        """Approximate town areas (polygons), one per town, in EPSG:4326; empty when unknown (not listed)."""
        if not self.has_town_areas:
            return gpd.GeoDataFrame({TOWN_CODE: pd.Series(dtype=str), NAME: pd.Series(dtype=str)},
                                    geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84)  # fmt: skip
        gdf = _read_geo(self.path("town_areas"))
        gdf[TOWN_CODE] = gdf[TOWN_CODE].astype(str)
        return gdf

    @property
    def has_villages(self) -> bool:
        """True when the folder lists a villages table; without one, village tables are simply absent."""
        return "villages" in self.files

    @cached_property
    def villages(self) -> gpd.GeoDataFrame:
        """Villages and communities (村/社区) with 12-digit codes as points, in EPSG:4326 (empty when not listed)."""
        if not self.has_villages:
            empty = {c: pd.Series(dtype=str) for c in (VILLAGE_CODE, NAME, TOWN_CODE, URBAN_RURAL_CODE)}
            return gpd.GeoDataFrame({**empty, "lon": pd.Series(dtype=float), "lat": pd.Series(dtype=float)},
                                    geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84)  # fmt: skip
        df = _read_csv(
            self.path("villages"),
            dtype={VILLAGE_CODE: str, TOWN_CODE: str, URBAN_RURAL_CODE: str},
        )
        geometry = gpd.points_from_xy(df["lon"], df["lat"], crs=WGS84)
        return gpd.GeoDataFrame(df, geometry=geometry)

    @property
    def roads_path(self) -> Path:
        """Path of the district's road network file (OSM XML, PBF or GraphML)."""
        return self.path("roads")

    @property
    def demo_dir(self) -> Path:
        """Folder of the demo layers, one CSV per layer."""
        return self.path("demo")

    @property
    def plan_dir(self) -> Path:
        """Folder of the plan's targets and task tables."""
        return self.path("plan")


def load_district(folder: str | Path | None = None) -> District:
    """Load the district described by ``folder/district.toml``.

    Parameters
    ----------
    folder
        A district data folder; the embedded Bishan default when None.

    Returns
    -------
    District
        Light object; each layer is read on first access.

    Raises
    ------
    DistrictDataError
        If ``district.toml`` is missing or lacks a required key.
    """
    folder = Path(folder) if folder is not None else DEFAULT_DISTRICT_DIR
    config_path = folder / "district.toml"
    if not config_path.is_file():
        msg = (
            f"{str(folder)!r} 中没有 district.toml：请用 `accessplan district init` 建立区县文件夹。 "
            f"No district.toml in {str(folder)!r}: build a district folder with `accessplan district init`."
        )
        raise DistrictDataError(msg)
    with config_path.open("rb") as f:
        config = tomllib.load(f)
    missing = [k for k in ("code", "name", "projected_crs", "files") if k not in config]
    if missing:
        msg = (
            f"{config_path} 缺少键 {missing!r}，请按 data/bishan/district.toml 补上。 "
            f"{config_path} lacks the key(s) {missing!r}; see data/bishan/district.toml for an example."
        )
        raise DistrictDataError(msg)
    code = str(config["code"])
    plan_year = config.get("plan_year")
    return District(
        folder=folder,
        code=code,
        name=config["name"],
        name_en=config.get("name_en", config["name"]),
        crs=config["projected_crs"],
        seed=int(config.get("synthetic_seed", 0)),
        files=dict(config["files"]),
        plan_year=None if plan_year is None else int(plan_year),
        id_prefixes=tuple(str(p) for p in config.get("id_prefixes", [code])),
        synthetic_files=tuple(str(k) for k in config.get("synthetic", ())),
        offices=_offices(config.get("offices", []), config_path),
    )


def _offices(entries: object, config_path: Path) -> tuple[Office, ...]:
    """Read ``[[offices]]`` (name, lon, lat in WGS 84); a malformed entry is one clear error naming it."""
    offices = []
    for i, entry in enumerate(entries if isinstance(entries, list) else [entries], start=1):
        try:
            office = Office(str(entry["name"]).strip(), float(entry["lon"]), float(entry["lat"]))
        except (TypeError, KeyError, ValueError):
            office = None
        if office is None or not office.name or not (-180 <= office.lon <= 180 and -90 <= office.lat <= 90):
            msg = (
                f"{config_path} 的第 {i} 个 [[offices]] 须有 name、lon、lat（WGS 84 经纬度），收到 {entry!r}。 "
                f"{config_path}: [[offices]] entry {i} needs name, lon and lat (WGS 84 degrees); got {entry!r}."
            )
            raise DistrictDataError(msg)
        offices.append(office)
    return tuple(offices)


def _require_file(path: Path) -> None:
    if not path.is_file():
        listed = path.parent / "district.toml"
        msg = (
            f"区县数据文件 {str(path)!r} 不存在：请从其来源（见该文件夹的 README.md）复制回来，"
            f"或在 {str(listed)!r} 的 [files] 中改列其他文件。 "
            f"District file {str(path)!r} is missing: copy it back from its source (see the folder's README.md) "
            f"or list another file under [files] in {str(listed)!r}."
        )
        raise DistrictDataError(msg)


def _read_csv(path: Path, *, dtype: dict[str, type]) -> pd.DataFrame:
    _require_file(path)
    return pd.read_csv(path, dtype=dtype, encoding="utf-8")


def _read_geo(path: Path) -> gpd.GeoDataFrame:
    _require_file(path)
    gdf = gpd.read_file(path)
    if gdf.crs is None:
        msg = f"{str(path)!r} has no CRS; add one (WGS-84 or CGCS2000) to the file."
        raise DistrictDataError(msg)
    # CGCS2000 (EPSG:4490) differs from WGS-84 by well under a metre (DOMAIN.md §4): relabel only.
    if gdf.crs.to_epsg() == 4490:
        return gdf.set_crs(WGS84, allow_override=True)
    return gdf.to_crs(WGS84)
