"""What every run shares: the prepared network, data versions, JSON and file writing (stages: ``stages``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from analyses.inputs import file_sha256, layer_version
from analyses.siting.results import jsonable
from layers import schema
from layers.errors import DistrictDataError
from layers.spreadsheet import neutralise_formulas

if TYPE_CHECKING:
    from analyses.costs import CostSettings, Placer
    from layers.district import District


@dataclass(frozen=True)
class PreparedRoads:
    """A prepared network with its snapping indexes and the version of the road file it came from."""

    placer: Placer
    version: Mapping[str, Any]


class Network(Protocol):
    """Returns the prepared network of a road file (None: the district's own roads).

    ``flat=True`` asks for the same network without the DEM (flat costs; ``incline`` tags still
    count), for the flat-vs-slope comparison.
    """

    def __call__(self, roads: str | None = None, *, flat: bool = False) -> PreparedRoads:
        """Return the prepared network of ``roads`` (None: the district's), flat when asked."""


class DistrictNetwork:
    """A ``Network`` that prepares the district's (or a given) road file, cached in ``cache_dir``.

    Parameters
    ----------
    district
        Whose roads (``district.roads_path``) are the default.
    cache_dir
        Folder of the prepared networks (``CACHE_DIR/networks``).
    settings
        Profile table, unknown-value policy and slopes (``analyses.costs.CostSettings``); defaults
        when None. Every result's data versions record them.
    """

    def __init__(self, district: District, cache_dir: str | Path, settings: CostSettings | None = None) -> None:
        from analyses.costs import CostSettings

        self.district, self.cache_dir = district, Path(cache_dir)
        self.settings = CostSettings() if settings is None else settings

    def __call__(self, roads: str | None = None, *, flat: bool = False) -> PreparedRoads:
        """Prepare (or load from the cache) the network of ``roads`` or the district's roads (no DEM if ``flat``)."""
        from analyses.costs import Placer, load_district_network

        settings = replace(self.settings, slopes=False) if flat else self.settings
        path = Path(roads) if roads else self.district.roads_path
        net = load_district_network(self.district, cache_dir=self.cache_dir, roads_path=path, settings=settings)
        return PreparedRoads(Placer(net), {**roads_version(path), **settings.version(self.district)})


#: Name columns written beside each code column of a result: ``town_code`` → ``town_name`` ...
NAME_OF_CODE = {schema.TOWN_CODE: "town_name", schema.VILLAGE_CODE: "village_name"}


@dataclass(frozen=True)
class PlaceNames:
    """Town and village names by code, written beside the codes of every result table and JSON row.

    Parameters
    ----------
    towns, villages
        Code → name (``District.towns`` and ``District.villages``); a code not listed gets no name (None).
    """

    towns: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    villages: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, district: District) -> PlaceNames:
        """Return the names of ``district``'s towns and villages (no village names without a villages table)."""
        towns = district.towns
        towns = dict(zip(towns[schema.TOWN_CODE].astype(str), towns[schema.NAME].astype(str), strict=True))
        try:
            table = district.villages
        except (OSError, DistrictDataError):
            table = None
        villages = {} if table is None else dict(zip(table[schema.VILLAGE_CODE].astype(str),
                                                       table[schema.NAME].astype(str), strict=True))  # fmt: skip
        return cls(MappingProxyType(towns), MappingProxyType(villages))

    def _names(self, code_column: str) -> Mapping[str, str]:
        return self.towns if code_column == schema.TOWN_CODE else self.villages

    def table(self, table: pd.DataFrame) -> pd.DataFrame:
        """Return a copy of ``table`` with ``town_name``/``village_name`` right after each code column.

        A code in the index (per-town tables) gets its name as the first column. Tables without codes,
        or that already carry the names, come back unchanged.
        """
        out = table
        for code, name in NAME_OF_CODE.items():
            if name in out.columns:
                continue
            if code in out.columns:
                at = out.columns.get_loc(code) + 1
            elif code in (out.index.names or ()):
                at = 0
            else:
                continue
            values = out[code] if code in out.columns else out.index.get_level_values(code)
            names = self._names(code)
            out = out.copy() if out is table else out
            out.insert(at, name, [None if pd.isna(v) else names.get(str(v)) for v in values])
        return out

    def rows(self, payload: Any) -> Any:
        """Return ``payload`` (JSON-like) with ``town_name``/``village_name`` after each ``*_code`` key of a dict."""
        if isinstance(payload, list):
            return [self.rows(item) for item in payload]
        if not isinstance(payload, dict):
            return payload
        out: dict[str, Any] = {}
        for key, value in payload.items():
            out[key] = self.rows(value)
            name = NAME_OF_CODE.get(key)
            if name is not None and name not in payload and (value is None or isinstance(value, str | int)):
                out[name] = None if value is None else self._names(key).get(str(value))
        return out


def roads_version(path: str | Path) -> dict[str, Any]:
    """Return the version of a road file: its path and SHA-256."""
    return {"roads": str(path), "roads_sha256": file_sha256(path)}


def data_versions(roads: Mapping[str, Any], **layers: pd.DataFrame) -> dict[str, Any]:
    """Return the data versions of a run: the road file's and each input layer's (rows, last change)."""
    return {**roads, **{name: layer_version(frame) for name, frame in layers.items()}}


def as_tuple(values: Any) -> tuple[str, ...]:
    """Return a list, tuple or comma-separated text (``，`` too) as a tuple of stripped, non-empty strings."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = values.replace("，", ",").split(",")
    return tuple(str(v).strip() for v in values if str(v).strip())


#: The status option's value that counts every facility, whatever its status.
ALL_STATUSES = "all"


def status_option(values: Any) -> tuple[str, ...] | None:
    """Read repeated ``--status`` values: None when none is given (the default), ``()`` for ``all``.

    Raises
    ------
    ValueError
        If ``all`` is given together with other statuses.
    """
    statuses = as_tuple(values)
    if not statuses:
        return None
    if ALL_STATUSES in statuses:
        if len(statuses) > 1:
            msg = f"`--status {ALL_STATUSES}` counts every facility; drop the other statuses {statuses!r}."
            raise ValueError(msg)
        return ()
    return statuses


def default_statuses(source: str | None, statuses: tuple[str, ...] | None, table: dict[str, tuple]) -> tuple:
    """Return the statuses a run counts: ``statuses`` when given, else ``table[source]`` for a layer.

    ``table`` is ``schema.IN_SERVICE_STATUSES`` (facilities: in service, as the planner's forms count
    them) or ``schema.PLANNED_STATUSES`` (a scenario's extra facilities). A point file (not a layer) has
    no default: every row counts (``()``), as does ``statuses=()``.
    """
    if statuses is not None:
        return tuple(statuses)
    return tuple(table.get(source, ())) if source in schema.ALL_LAYERS else ()


def text_or_none(value: Any) -> str | None:
    """Return ``value`` as stripped text, None when it is None or blank."""
    text = str(value).strip() if value is not None else ""
    return text or None


def write_json(payload: Mapping[str, Any], path: str | Path) -> None:
    """Write ``payload`` as UTF-8 JSON (Chinese kept readable, NaN as null)."""
    text = json.dumps(jsonable(payload), ensure_ascii=False, indent=2, default=str)
    Path(path).write_text(text, encoding="utf-8")


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Return a table's rows as dicts, its index as columns."""
    return table.reset_index().to_dict("records")


def suffix_of(path: str | Path, allowed: tuple[str, ...], kind: str) -> str:
    """Return the lower-case extension of ``path`` after checking it is one of ``allowed``.

    Raises
    ------
    ValueError
        If it is not (the message names the kind, the allowed extensions and the path).
    """
    suffix = Path(path).suffix.lower()
    if suffix not in allowed:
        msg = f"A {kind} result is written as {', '.join(allowed)}; got {str(path)!r}."
        raise ValueError(msg)
    return suffix


def write_csv(table: pd.DataFrame, path: str | Path, *, names: PlaceNames | None = None) -> None:
    """Write ``table`` as UTF-8 CSV with a BOM (Excel opens it), text that reads as a formula neutralised.

    With ``names``, town and village names stand beside their codes (``PlaceNames.table``).
    """
    table = table if names is None else names.table(table)
    neutralise_formulas(table).to_csv(path, index=False, encoding="utf-8-sig")


def write_sheets(path: str | Path, sheets: Mapping[str, pd.DataFrame], *, names: PlaceNames | None = None) -> None:
    """Write one XLSX sheet per table (index kept when it is named, as the per-town tables).

    Text that reads as a formula is neutralised (`layers.spreadsheet.neutralise_formulas`); with
    ``names``, town and village names stand beside their codes (``PlaceNames.table``).
    """
    with pd.ExcelWriter(path) as writer:
        for name, table in sheets.items():
            named = table if names is None else names.table(table)
            neutralise_formulas(named).to_excel(writer, sheet_name=name, index=table.index.name is not None)


def summary_sheet(summary: Mapping[str, Any]) -> pd.DataFrame:
    """Return a nested summary flattened to one ``key → value`` column (the XLSX ``summary`` sheet)."""
    flat = pd.json_normalize(jsonable(summary)).T
    flat.index.name = "key"
    return flat.rename(columns={0: "value"})
