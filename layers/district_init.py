"""Build a district folder from real files: ``accessplan district init``.

The folder holds what `layers.district.load_district` reads: ``district.toml`` (code, name, the projected
CRS chosen from the boundary's UTM zone, the files), the boundary in WGS-84, the towns, approximate town
areas when the towns have seats (Voronoi cells of the seats clipped to the boundary), the villages when
given, the road file as given (OSM XML, PBF or GraphML) and a README that states each file's source,
licence, CRS and whether it is real or synthetic.

Every input is checked before anything is written; each problem is one line, Chinese first then English,
naming the file, row, column and value and the fix (`DistrictInitError`). The folder is written next to
its destination and moved into place only when complete, so a refused or failed init leaves nothing.
"""

from __future__ import annotations

import hashlib
import shutil
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers.district import SEAT_LAT, SEAT_LON, District, load_district
from layers.errors import DistrictDataError
from layers.schema import NAME, TOWN_CODE, VILLAGE_CODE, WGS84
from layers.spreadsheet import neutralise_formulas

#: Road files the network loader reads (`geo.network.graph_from_file`).
ROAD_SUFFIXES = (".osm", ".osm.bz2", ".xml", ".osm.pbf", ".pbf", ".graphml")
#: Raster elevation models accepted by ``--dem``.
DEM_SUFFIXES = (".tif", ".tiff")
#: Keys of the files a folder can hold, in README order.
FILE_KEYS = ("boundary", "towns", "town_areas", "villages", "roads", "dem")
#: Say "approximate" for town areas built here: no township polygons are published.
APPROXIMATE = "approximate"
SUBDISTRICT, TOWN = "subdistrict", "town"

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_TOWN_REQUIRED = ("code", NAME)
_VILLAGE_REQUIRED = (VILLAGE_CODE, NAME, TOWN_CODE, "lon", "lat")


class DistrictInitError(DistrictDataError):
    """The inputs of a district folder are missing or inconsistent; ``lines`` holds one problem each."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = list(lines)


@dataclass(frozen=True)
class FileNote:
    """What the README says about one input file.

    Attributes
    ----------
    source
        Where the file comes from (publisher, product, version); None: "supplied by the user".
    licence
        Its licence or terms; None: "not stated", to be filled in before the folder is shared.
    synthetic
        True for generated data (says nothing about the district).
    """

    source: str | None = None
    licence: str | None = None
    synthetic: bool = False


def utm_crs(boundary: gpd.GeoDataFrame) -> str:
    """Return the WGS 84 / UTM zone CRS (``EPSG:326zz`` north, ``327zz`` south) of the boundary's centre.

    The centre is the centroid of the outline's bounding box in longitude/latitude: Bishan (106.2° E,
    29.6° N) gives zone 48, ``EPSG:32648``.
    """
    west, south, east, north = boundary.to_crs(WGS84).total_bounds
    lon, lat = (west + east) / 2.0, (south + north) / 2.0
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def approximate_town_areas(boundary: gpd.GeoDataFrame, towns: gpd.GeoDataFrame, *, crs: str) -> gpd.GeoDataFrame:
    """Split the district into approximate town areas: Voronoi cells of the seats clipped to the boundary.

    Parameters
    ----------
    boundary
        The district outline (one or more polygons, any CRS; dissolved here).
    towns
        One row per town with ``town_code``, ``name`` and the seat as point geometry (any CRS).
    crs
        Projected CRS (metres) in which the cells are built.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``town_code``, ``name``, ``approximate`` (always True) and the area polygon, in EPSG:4326,
        in the order of ``towns``. Cells cover the boundary without overlapping and contain their seat.

    Raises
    ------
    ValueError
        If a seat lies outside the boundary or two seats coincide.
    """
    outline = shapely.union_all(boundary.to_crs(crs).geometry.to_numpy())
    seats = towns.to_crs(crs).geometry.to_numpy()
    outside = [code for code, seat in zip(towns[TOWN_CODE], seats, strict=True) if not outline.covers(seat)]
    if outside:
        msg = f"Every town seat must lie inside the `boundary`; seats of towns {outside!r} lie outside."
        raise ValueError(msg)
    if len(set(shapely.to_wkb(seats))) != len(seats):
        msg = "Two `towns` share the same seat point; each town needs its own seat to get a Voronoi cell."
        raise ValueError(msg)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.MultiPoint(list(seats)), extend_to=outline))
    areas = []
    for seat in seats:
        cell = next(c for c in cells if c.covers(seat))
        areas.append(shapely.make_valid(cell.intersection(outline)))
    gdf = gpd.GeoDataFrame(
        {TOWN_CODE: towns[TOWN_CODE].astype(str).to_numpy(), NAME: towns[NAME].to_numpy(), APPROXIMATE: True},
        geometry=areas,
        crs=crs,
    )
    return gdf.to_crs(WGS84)


def init_district(
    folder: str | Path,
    *,
    name: str,
    code: str,
    boundary: str | Path,
    roads: str | Path,
    towns: str | Path | None = None,
    villages: str | Path | None = None,
    dem: str | Path | None = None,
    name_en: str | None = None,
    plan_year: int | None = None,
    notes: Mapping[str, FileNote] | None = None,
    prepare: Callable[[District], str] | None = None,
) -> District:
    """Check the inputs and write a complete district folder at ``folder``.

    Parameters
    ----------
    folder
        Destination; must not exist or be an empty folder (nothing is ever overwritten).
    name, code
        The district's Chinese name and 6-digit GB/T 2260 code (e.g. 沙坪坝区, 500106).
    boundary
        The outline: any vector file GDAL reads, with a CRS (CGCS2000 is used as WGS-84).
    roads
        OSM XML (``.osm``, ``.osm.bz2``), OSM PBF or an osmnx GraphML, copied in as given.
    towns
        CSV ``code,name[,seat_lon,seat_lat]`` (UTF-8, 9-digit codes starting with ``code``); without seats
        the town areas are unknown. None: the towns are unknown too (a one-row table is not invented).
    villages
        CSV ``village_code,name,town_code,lon,lat[,urban_rural_code,households,population]``; None: no
        village tables (not an error).
    dem
        A GeoTIFF elevation model, copied in as ``dem.tif``.
    name_en
        English name (the Chinese name when None).
    plan_year
        Written as ``plan_year`` (the year of the plan's month windows).
    notes
        Per file key (``boundary``, ``towns``, ``villages``, ``roads``, ``dem``): source, licence, synthetic.
    prepare
        Called with the loaded district before the folder is moved into place, to prepare its road
        network (the command passes the app's cached loader); returns a one-line summary for the README.
        A ``ValueError`` from it refuses the init.

    Returns
    -------
    District
        The new folder, loaded.

    Raises
    ------
    DistrictInitError
        One line per missing or inconsistent input; nothing is written.
    """
    folder = Path(folder)
    notes = dict(notes or {})
    given = {"boundary": boundary, "roads": roads, "towns": towns, "villages": villages, "dem": dem}
    paths = {key: Path(value) for key, value in given.items() if value is not None}
    problems = _argument_problems(folder, name=name, code=code, paths=paths)
    if villages is not None and towns is None:
        problems.append(
            "给了 --villages 却没有 --towns：村（社区）要归属到镇街，请同时给出 --towns。 "
            "--villages needs --towns: every village belongs to a town; pass --towns as well."
        )
    if problems:
        raise DistrictInitError(problems)
    outline, boundary_crs = _read_boundary(paths["boundary"], problems)
    town_table = _read_towns(paths["towns"], code, outline, problems) if "towns" in paths else None
    village_table = None
    if "villages" in paths and town_table is not None:
        village_table = _read_villages(paths["villages"], set(town_table["code"]), outline, problems)
    if problems:
        raise DistrictInitError(problems)
    assert outline is not None  # noqa: S101 - no problems means the boundary was read
    crs = utm_crs(outline)
    staging = folder.parent / f".{folder.name}.init-partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        files, crs_of = _write_inputs(staging, paths, outline, town_table, village_table, crs)
        prepared = None
        _write_toml(staging, name=name, name_en=name_en or name, code=code, crs=crs, plan_year=plan_year, files=files)
        if prepare is not None:
            try:
                prepared = prepare(load_district(staging))
            except ValueError as exc:
                raise DistrictInitError([
                    f"道路网文件 {str(paths['roads'])!r} 无法用作路网：{exc} "
                    f"The road file {str(paths['roads'])!r} cannot be used as a network: {exc}"
                ]) from None  # fmt: skip
        readme = _readme(name=name, code=code, crs=crs, files=files, paths=paths, crs_of=crs_of,
                         boundary_crs=boundary_crs, notes=notes, town_table=town_table, prepared=prepared)  # fmt: skip
        (staging / "README.md").write_text(readme, encoding="utf-8")
        if folder.exists():
            folder.rmdir()  # empty (checked above)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return load_district(folder)


# ---- checks ---------------------------------------------------------------------------------------


def _argument_problems(folder: Path, *, name: str, code: str, paths: dict[str, Path]) -> list[str]:
    problems = []
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        problems.append(
            f"目标文件夹 {str(folder)!r} 已存在且不为空：请换一个新文件夹（不会覆盖任何文件）。 "
            f"The folder {str(folder)!r} exists and is not empty: choose a new folder (nothing is overwritten)."
        )
    if not (len(code) == 6 and code.isdigit()):
        problems.append(
            f"--code {code!r} 不是 6 位区县代码（GB/T 2260，例如 500106）。 "
            f"--code {code!r} is not a 6-digit county code (GB/T 2260, e.g. 500106)."
        )
    if not name.strip():
        problems.append("--name 为空：请给出区县名称，例如 沙坪坝区。 --name is empty: give the district's name.")
    for key, path in paths.items():
        if not path.is_file():
            problems.append(f"--{key} 文件 {str(path)!r} 不存在。 --{key} file {str(path)!r} does not exist.")
    roads = paths["roads"]
    if roads.is_file() and not roads.name.lower().endswith(ROAD_SUFFIXES):
        problems.append(
            f"--roads {roads.name!r} 不是可读的路网格式（{', '.join(ROAD_SUFFIXES)}）。 "
            f"--roads {roads.name!r} is not a road format the loader reads ({', '.join(ROAD_SUFFIXES)})."
        )
    dem = paths.get("dem")
    if dem is not None and dem.is_file():
        with dem.open("rb") as f:
            magic = f.read(4)
        if not dem.name.lower().endswith(DEM_SUFFIXES) or magic not in _TIFF_MAGIC:
            problems.append(f"--dem {dem.name!r} 不是 GeoTIFF（.tif）。 --dem {dem.name!r} is not a GeoTIFF (.tif).")
    return problems


def _read_boundary(path: Path, problems: list[str]) -> tuple[gpd.GeoDataFrame | None, str | None]:
    """Return the outline dissolved to one row in EPSG:4326 and the file's own CRS, or None after a problem."""
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - GDAL raises several types; one line names the file
        problems.append(
            f"--boundary {path.name!r} 无法读取（{type(exc).__name__}）：请给出 GeoJSON、GeoPackage 或 Shapefile。 "
            f"--boundary {path.name!r} cannot be read ({type(exc).__name__}): give a GeoJSON, GeoPackage or Shapefile."
        )
        return None, None
    if gdf.crs is None:
        problems.append(
            f"--boundary {path.name!r} 没有坐标系：请在文件中写明（WGS-84 或 CGCS2000）。 "
            f"--boundary {path.name!r} has no CRS: add one to the file (WGS-84 or CGCS2000)."
        )
        return None, None
    polygons = gdf[gdf.geometry.notna() & gdf.geom_type.isin(["Polygon", "MultiPolygon"])]
    if polygons.empty:
        problems.append(
            f"--boundary {path.name!r} 中没有面要素：边界须为多边形。 "
            f"--boundary {path.name!r} holds no polygon: the boundary must be a (multi)polygon."
        )
        return None, None
    if len(polygons) > 1:
        problems.append(
            f"--boundary {path.name!r} 有 {len(polygons)} 个面要素：请只保留本区县的一个（例如按 gb 代码筛选）。 "
            f"--boundary {path.name!r} holds {len(polygons)} polygon features: keep only this district's one "
            "(e.g. filter by its code)."
        )
        return None, None
    source_crs = gdf.crs.to_string()
    # CGCS2000 (EPSG:4490) differs from WGS-84 by well under a metre (DOMAIN.md §4): relabel only.
    polygons = polygons.set_crs(WGS84, allow_override=True) if gdf.crs.to_epsg() == 4490 else polygons.to_crs(WGS84)
    return polygons[["geometry"]].reset_index(drop=True), source_crs


def _read_csv_text(path: Path, flag: str, problems: list[str]) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8").apply(lambda s: s.str.strip())
    except UnicodeDecodeError:
        problems.append(
            f"{flag} {path.name!r} 不是 UTF-8 编码：请另存为 UTF-8 CSV。 "
            f"{flag} {path.name!r} is not UTF-8: save it as a UTF-8 CSV."
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        problems.append(
            f"{flag} {path.name!r} 无法按 CSV 读取：{exc} {flag} {path.name!r} is not a readable CSV: {exc}"
        )
    return None


def _missing_columns(df: pd.DataFrame, required: tuple[str, ...], path: Path, flag: str) -> str | None:
    missing = [c for c in required if c not in df.columns]
    if not missing:
        return None
    return (
        f"{flag} {path.name!r} 缺少列 {missing}（表头为 {list(df.columns)}）。 "
        f"{flag} {path.name!r} lacks the column(s) {missing} (header: {list(df.columns)})."
    )


def _coordinates(
    df: pd.DataFrame,
    lon_col: str,
    lat_col: str,
    outline: gpd.GeoDataFrame | None,
    path: Path,
    flag: str,
    problems: list[str],
) -> None:
    """Check that every row's lon/lat are numbers inside the boundary (rows are 1-based data rows)."""
    lon = pd.to_numeric(df[lon_col], errors="coerce")
    lat = pd.to_numeric(df[lat_col], errors="coerce")
    shape = None if outline is None else outline.geometry.iloc[0]
    for i in df.index:
        row = i + 2  # the header is line 1
        if pd.isna(lon[i]) or pd.isna(lat[i]):
            problems.append(
                f"{flag} {path.name!r} 第 {row} 行 {lon_col}/{lat_col} = {df.at[i, lon_col]!r}/{df.at[i, lat_col]!r}"
                f" 不是数字：请填写经纬度（WGS-84 十进制度）。 {flag} {path.name!r} row {row}: {lon_col}/{lat_col} = "
                f"{df.at[i, lon_col]!r}/{df.at[i, lat_col]!r} is not a number: write decimal degrees (WGS-84)."
            )
        elif shape is not None and not shape.covers(shapely.Point(lon[i], lat[i])):
            problems.append(
                f"{flag} {path.name!r} 第 {row} 行 ({lon[i]}, {lat[i]}) 在区县边界之外："
                "请核对经纬度（是否把经度和纬度写反，或用了 GCJ-02）。 "
                f"{flag} {path.name!r} row {row}: ({lon[i]}, {lat[i]}) lies outside the boundary: "
                "check the coordinates (swapped lon/lat, or GCJ-02 instead of WGS-84?)."
            )


def _read_towns(path: Path, code: str, outline: gpd.GeoDataFrame | None, problems: list[str]) -> pd.DataFrame | None:
    df = _read_csv_text(path, "--towns", problems)
    if df is None:
        return None
    missing = _missing_columns(df, _TOWN_REQUIRED, path, "--towns")
    if missing:
        problems.append(missing)
        return None
    if df.empty:
        problems.append(f"--towns {path.name!r} 没有数据行。 --towns {path.name!r} has no rows.")
        return None
    for i, value in df["code"].items():
        if not (len(value) == 9 and value.isdigit() and value.startswith(code)):
            problems.append(
                f"--towns {path.name!r} 第 {i + 2} 行 code = {value!r} 不是以区县代码 {code} 开头的 9 位镇街代码。 "
                f"--towns {path.name!r} row {i + 2}: code = {value!r} is not a 9-digit town code starting with "
                f"the district's code {code}."
            )
    for i in df.index[df["code"].duplicated()]:
        problems.append(
            f"--towns {path.name!r} 第 {i + 2} 行 code = {df.at[i, 'code']!r} 与前面的行重复。 "
            f"--towns {path.name!r} row {i + 2}: code = {df.at[i, 'code']!r} repeats an earlier row."
        )
    for i in df.index[df[NAME] == ""]:
        problems.append(
            f"--towns {path.name!r} 第 {i + 2} 行 name 为空。 --towns {path.name!r} row {i + 2}: name is empty."
        )
    has = [c in df.columns for c in (SEAT_LON, SEAT_LAT)]
    if any(has) and not all(has):
        problems.append(
            f"--towns {path.name!r} 只有 seat_lon 和 seat_lat 中的一列：驻地须两列都有，或都不写。 "
            f"--towns {path.name!r} has only one of seat_lon/seat_lat: give both, or neither."
        )
    elif all(has):
        _coordinates(df, SEAT_LON, SEAT_LAT, outline, path, "--towns", problems)
    return df


def _read_villages(path: Path, town_codes: set[str], outline: gpd.GeoDataFrame | None,
                   problems: list[str]) -> pd.DataFrame | None:  # fmt: skip
    df = _read_csv_text(path, "--villages", problems)
    if df is None:
        return None
    missing = _missing_columns(df, _VILLAGE_REQUIRED, path, "--villages")
    if missing:
        problems.append(missing)
        return None
    for i, row in df.iterrows():
        village, town = row[VILLAGE_CODE], row[TOWN_CODE]
        if town not in town_codes:
            problems.append(
                f"--villages {path.name!r} 第 {i + 2} 行 town_code = {town!r} 不在 --towns 中。 "
                f"--villages {path.name!r} row {i + 2}: town_code = {town!r} is not in --towns."
            )
        elif not (len(village) == 12 and village.isdigit() and village.startswith(town)):
            problems.append(
                f"--villages {path.name!r} 第 {i + 2} 行 village_code = {village!r} "
                f"不是以镇街代码 {town} 开头的 12 位代码。 "
                f"--villages {path.name!r} row {i + 2}: village_code = {village!r} is not a 12-digit code "
                f"starting with its town code {town}."
            )
    for i in df.index[df[VILLAGE_CODE].duplicated()]:
        problems.append(
            f"--villages {path.name!r} 第 {i + 2} 行 village_code = {df.at[i, VILLAGE_CODE]!r} 与前面的行重复。 "
            f"--villages {path.name!r} row {i + 2}: village_code = {df.at[i, VILLAGE_CODE]!r} repeats an earlier row."
        )
    _coordinates(df, "lon", "lat", outline, path, "--villages", problems)
    return df


# ---- writing --------------------------------------------------------------------------------------


def _write_inputs(
    folder: Path,
    paths: dict[str, Path],
    outline: gpd.GeoDataFrame,
    towns: pd.DataFrame | None,
    villages: pd.DataFrame | None,
    crs: str,
) -> tuple[dict[str, str], dict[str, str]]:
    """Write every input into ``folder``; return ``[files]`` and each file's CRS for the README."""
    files: dict[str, str] = {}
    crs_of: dict[str, str] = {}
    outline.to_file(folder / "boundary.geojson", driver="GeoJSON", engine="pyogrio", WRITE_BBOX="NO",
                    COORDINATE_PRECISION=6)  # fmt: skip
    files["boundary"], crs_of["boundary"] = "boundary.geojson", "EPSG:4326 (WGS-84)"
    if towns is not None:
        table = towns.copy()
        if "name_en" not in table.columns:
            table.insert(2, "name_en", table[NAME])
        if "kind" not in table.columns:
            table.insert(3, "kind", np.where(table[NAME].str.endswith("街道"), SUBDISTRICT, TOWN))
        neutralise_formulas(table).to_csv(folder / "towns.csv", index=False, encoding="utf-8", lineterminator="\n")
        files["towns"], crs_of["towns"] = "towns.csv", "EPSG:4326 (WGS-84) seats" if SEAT_LON in table else "—"
        if SEAT_LON in table.columns:
            seats = gpd.GeoDataFrame(
                {TOWN_CODE: table["code"], NAME: table[NAME]},
                geometry=gpd.points_from_xy(table[SEAT_LON].astype(float), table[SEAT_LAT].astype(float)),
                crs=WGS84,
            )
            areas = approximate_town_areas(outline, seats, crs=crs)
            areas.to_file(folder / "town_areas.geojson", driver="GeoJSON", engine="pyogrio", WRITE_BBOX="NO",
                          COORDINATE_PRECISION=6)  # fmt: skip
            files["town_areas"], crs_of["town_areas"] = "town_areas.geojson", "EPSG:4326 (WGS-84)"
    if villages is not None:
        table = villages.copy()
        if "urban_rural_code" not in table.columns:
            table["urban_rural_code"] = ""
        neutralise_formulas(table).to_csv(folder / "villages.csv", index=False, encoding="utf-8", lineterminator="\n")
        files["villages"], crs_of["villages"] = "villages.csv", "EPSG:4326 (WGS-84)"
    roads = paths["roads"]
    suffix = next(s for s in sorted(ROAD_SUFFIXES, key=len, reverse=True) if roads.name.lower().endswith(s))
    shutil.copyfile(roads, folder / f"roads{suffix}")
    files["roads"] = f"roads{suffix}"
    crs_of["roads"] = "as in the file (GraphML: its own `crs`)" if suffix == ".graphml" else "EPSG:4326 (OSM)"
    if "dem" in paths:
        shutil.copyfile(paths["dem"], folder / "dem.tif")
        files["dem"], crs_of["dem"] = "dem.tif", "as in the GeoTIFF"
    return files, crs_of


def _write_toml(
    folder: Path, *, name: str, name_en: str, code: str, crs: str, plan_year: int | None, files: dict[str, str]
) -> None:
    lines = [
        "# A district folder made by `accessplan district init`; provenance of every file: README.md.",
        f"code = {_toml_str(code)}",
        f"name = {_toml_str(name)}",
        f"name_en = {_toml_str(name_en)}",
        f"projected_crs = {_toml_str(crs)}    # WGS 84 / UTM zone of the boundary's centre: metres",
        f"id_prefixes = [{_toml_str(code)}]    # region prefixes of residents' ID numbers, current code first",
    ]
    if plan_year is not None:
        lines.append(f"plan_year = {int(plan_year)}    # the year of the plan's month windows")
    lines += ["", "[files]", *(f"{key} = {_toml_str(value)}" for key, value in files.items())]
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)  # what is written must read back
    (folder / "district.toml").write_text(text, encoding="utf-8")


def _toml_str(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _readme(
    *,
    name: str,
    code: str,
    crs: str,
    files: dict[str, str],
    paths: dict[str, Path],
    crs_of: dict[str, str],
    boundary_crs: str | None,
    notes: dict[str, FileNote],
    town_table: pd.DataFrame | None,
    prepared: str | None,
) -> str:
    has_seats = town_table is not None and SEAT_LON in town_table.columns
    rows = []
    for key in FILE_KEYS:
        if key not in files:
            continue
        if key == "town_areas":
            rows.append(f"| `{files[key]}` | **approximate** | ours: Voronoi cells of the town seats clipped to the "
                        f"boundary (no township polygons were given) | — | {crs_of[key]} |")  # fmt: skip
            continue
        note = notes.get(key, FileNote())
        kind = "**synthetic**" if note.synthetic else "**real**"
        source = note.source or "supplied by the user"
        original = paths[key]
        source += f"; given as `{original.name}`, sha256 `{_sha256(original)[:16]}…`"
        if key == "boundary" and boundary_crs:
            source += f" (in {boundary_crs}, written here in WGS-84)"
        licence = note.licence or "not stated: fill in before sharing this folder"
        rows.append(f"| `{files[key]}` | {kind} | {source} | {licence} | {crs_of[key]} |")
    if town_table is None:
        areas = "**Towns and town areas are unknown** (no `--towns` was given): per-town results are empty."
    elif has_seats:
        areas = ("**Town areas are approximate**: Voronoi cells of the town seats, clipped to the boundary; a point "
                 "near a town border may be given the neighbouring town.")  # fmt: skip
    else:
        areas = (
            "**Town areas are unknown** (`towns.csv` has no seats): points keep the town of their own "
            "`town_code`, and per-town results group by it; points from a file without `town_code` get no town."
        )
    villages = (
        ""
        if "villages" in files
        else "\nNo villages table was given: village tables (per-village results, village demand) are absent.\n"
    )
    network = f"\nRoad network: {prepared}\n" if prepared else ""
    return (
        f"# {name} ({code}) — district folder\n\n"
        f"Made by `accessplan district init` on {date.today().isoformat()}. Distances are computed in {crs} "
        f"(the WGS 84 / UTM zone of the boundary's centre). **Real** means taken from a published source; "
        f"**synthetic** means generated and says nothing about {name}.\n\n"
        "| file | real or synthetic | source | licence / terms | CRS |\n|---|---|---|---|---|\n"
        f"| `district.toml` | — | ours: name, code, projected CRS, file list | — | — |\n"
        + "\n".join(rows)
        + "\n\n"
        + areas
        + "\n"
        + villages
        + network
    )
