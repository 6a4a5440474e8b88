"""What every run shares: the prepared network, data versions, JSON and file writing (stages: ``stages``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from analyses.inputs import file_sha256, layer_version
from analyses.siting.results import jsonable
from layers.spreadsheet import neutralise_formulas

if TYPE_CHECKING:
    from analyses.costs import CostSettings, Placer
    from layers.district import District


@dataclass(frozen=True)
class PreparedRoads:
    """A prepared network with its snapping indexes and the version of the road file it came from."""

    placer: Placer
    version: Mapping[str, Any]


#: Returns the prepared network of a road file (None: the district's own roads).
Network = Callable[[str | None], PreparedRoads]


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

    def __call__(self, roads: str | None = None) -> PreparedRoads:
        """Prepare (or load from the cache) the network of ``roads`` or the district's road file."""
        from analyses.costs import Placer, load_district_network

        path = Path(roads) if roads else self.district.roads_path
        net = load_district_network(self.district, cache_dir=self.cache_dir, roads_path=path, settings=self.settings)
        return PreparedRoads(Placer(net), {**roads_version(path), **self.settings.version(self.district)})


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


def write_csv(table: pd.DataFrame, path: str | Path) -> None:
    """Write ``table`` as UTF-8 CSV with a BOM (Excel opens it), text that reads as a formula neutralised."""
    neutralise_formulas(table).to_csv(path, index=False, encoding="utf-8-sig")


def write_sheets(path: str | Path, sheets: Mapping[str, pd.DataFrame]) -> None:
    """Write one XLSX sheet per table (index kept when it is named, as the per-town tables).

    Text that reads as a formula is neutralised (`layers.spreadsheet.neutralise_formulas`).
    """
    with pd.ExcelWriter(path) as writer:
        for name, table in sheets.items():
            neutralise_formulas(table).to_excel(writer, sheet_name=name, index=table.index.name is not None)


def summary_sheet(summary: Mapping[str, Any]) -> pd.DataFrame:
    """Return a nested summary flattened to one ``key → value`` column (the XLSX ``summary`` sheet)."""
    flat = pd.json_normalize(jsonable(summary)).T
    flat.index.name = "key"
    return flat.rename(columns={0: "value"})
