"""Read ledgers and layer files into raw tables, and write layers for QGIS, Excel and the web.

`read_table` returns the cells as they are (text, numbers, dates), with the original headers and the
row number a person sees in the file as the index (named ``row``), so that `layers.validate` can name
every bad cell. It does no validation: coordinates keep the datum they were recorded in.

`write_layer` writes a layer whose ``lon``/``lat`` are WGS-84 (the store's frames, or
``ValidationResult.frame``). The ``datum`` column (the datum each row was recorded in) is written
as ``source_datum``, so re-importing an export never converts WGS-84 coordinates a second time.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import csv
import gc
import io as _io
import itertools
import logging
import posixpath
import re
import threading
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree
from xml.parsers import expat

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
from openpyxl.utils import get_column_letter

from geo.datums import convert, convert_geometries
from layers import schema
from layers.errors import FileLimitError, UnreadableFileError
from layers.spreadsheet import neutralise_formulas

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from typing import BinaryIO

logger = logging.getLogger(__name__)

#: Index name of the tables `read_table` returns: the row number as the file shows it.
ROW = "row"
WGS84 = "EPSG:4326"
#: A row with at least this many known headers (see `schema.canonical_column`) is the header row.
MIN_HEADER_MATCHES = 3
#: Rows searched for the header (title rows and notes above it are skipped).
MAX_HEADER_SEARCH_ROWS = 30

_TEXT_ENCODINGS = ("utf-8-sig", "gb18030")
#: How the report names each encoding (GBK, what Chinese Excel writes as "CSV", is a subset of GB18030).
ENCODING_NAMES = {"utf-8-sig": "UTF-8", "gb18030": "GBK/GB18030"}
#: Keys of ``DataFrame.attrs`` that `read_table` sets: the text encoding of a CSV, and the row numbers
#: of totals rows (合计, 总计) at the bottom that were skipped.
ENCODING_ATTR = "encoding"
TOTALS_ATTR = "skipped_totals_rows"
#: Key of ``DataFrame.attrs``: how the cells of a text table are separated, when not by commas.
DELIMITER_ATTR = "delimiter"
#: Key of ``DataFrame.attrs``: the rows (as the sheet numbers them) that a merged cell above them filled.
MERGED_ATTR = "merged_rows_filled"
#: Key of ``DataFrame.attrs``: the (first, read) sheet names of an XLSX whose first sheet has no header.
SHEET_ATTR = "sheet_read"
#: A cell that makes a row at the bottom of a ledger its totals row.
_TOTALS_RE = re.compile(r"(合\s*计|总\s*计|小\s*计|total)[:：]?", re.IGNORECASE)


@dataclass(frozen=True)
class ReadLimits:
    """The largest spreadsheet `read_table` reads; a larger one is refused before it is loaded.

    The XLSX reader holds the used range of a sheet (A1 to the last row and column with a value) as a
    dense grid, so a stray value in column XFD or a zip bomb would otherwise take gigabytes.

    Attributes
    ----------
    max_uncompressed_bytes
        Sum of the decompressed sizes of an XLSX's parts (a 100,000-row ledger has ~100 MB).
    max_compression_ratio
        Largest decompressed/compressed size of one part over 1 MiB (sheets have ~10; zip bombs ~1,000).
    max_rows
        Last row with a value, counted from row 1.
    max_columns
        Last column with a value, counted from column A.
    max_cells
        Rows × columns of the used range.
    """

    max_uncompressed_bytes: int = 256 * 1024 * 1024
    max_compression_ratio: float = 200.0
    max_rows: int = 200_000
    max_columns: int = 256
    max_cells: int = 5_000_000


#: A used range above this many cells must hold values in at least 1 of `_SPARSE_FACTOR` cells.
_SPARSE_MIN_CELLS = 1_000_000
_SPARSE_FACTOR = 20
#: Parts smaller than this are not checked for their compression ratio.
_RATIO_MIN_BYTES = 1024 * 1024
_MB = 1024 * 1024
#: Bytes read at a time from a zip part. The array scan's temporaries (positions of every ``<`` of a chunk,
#: 8 bytes each) stay small enough to be reused, not mapped afresh: 256 KB scanned the 12 MB sheet of a
#: 20,000-row ledger in 0.10 s, 1 MB in 0.13-0.15 s (14,000 page faults), 64 KB in 0.14 s (per-chunk overhead).
_CHUNK_BYTES = 256 * 1024


def read_table(path: str | Path, *, sheet: str | int | None = None, limits: ReadLimits | None = None) -> pd.DataFrame:
    """Read a ledger or layer file into a raw table, one row per record.

    Parameters
    ----------
    path
        ``.csv`` (UTF-8 with or without BOM, else GB18030), ``.xlsx``/``.xlsm``, ``.geojson``/``.json``,
        ``.gpkg`` or ``.shp``.
    sheet
        Worksheet name or 0-based position for XLSX; when None, the first sheet, or the first with a
        header when the first has none (a 填表说明 sheet before the ledger: ``attrs[SHEET_ATTR]`` then
        names both); layer name or position for GeoPackage.
    limits
        Largest XLSX read (`ReadLimits()` when None): checked on the zip and by streaming the sheet's XML
        before the sheet is loaded.

    Returns
    -------
    pandas.DataFrame
        Object columns with the file's own headers; empty cells are None. The index, named ``row``,
        is the row number as the spreadsheet shows it (the header is found as the first row with at
        least three known headers, so title rows and merged banners above it are skipped; the first
        record is the header row + 1). For vector files the index is the 1-based feature number, and
        point geometries become ``lon``/``lat`` columns in the file's own coordinates (a projected CRS
        is transformed to EPSG:4326 first).

    Raises
    ------
    ValueError
        If the extension is not supported, the sheet does not exist, or a vector layer holds non-point
        geometries.
    layers.errors.UnreadableFileError
        If an XLSX is empty, not a zip archive, or damaged (a subclass of ``ValueError``).
    layers.errors.FileLimitError
        If an XLSX or a CSV is over one of `limits` (a subclass of ``ValueError``); the message (Chinese
        first, then English) names the limit.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        reader = _READERS[suffix]
    except KeyError:
        kinds = "、".join(sorted(_READERS))
        if suffix in (".xls", ".et"):
            msg = (
                f"{path.name!r} 是旧版 Excel/WPS 工作簿：请在 Excel 或 WPS 中打开，"
                "另存为 .xlsx（Excel 工作簿）后再导入。 "
                f"({path.name!r} is an old Excel/WPS workbook: save it as .xlsx (Excel: 文件 → 另存为 → Excel 工作簿).)"
            )
        else:
            msg = (
                f"{path.name!r} 不是可导入的文件类型：请用 {kinds} 之一。 "
                f"({path.name!r} is not a file type imports read: use one of {kinds}.)"
            )
        raise ValueError(msg) from None
    with gc_paused():  # reading allocates ~1M acyclic objects (cells, rows): nothing to collect
        table = reader(path, sheet, limits or ReadLimits())
    logger.info("Read %s rows and %d columns from %s", f"{len(table):,}", table.shape[1], path.name)
    return table


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a file is read or validated; thread-safe and nestable.

    Reading a 20,000-row XLSX creates ~1M container objects (calamine's row lists, the cells) that all
    stay alive until the table is built, and validating it more (values, masks, frames): each
    collection the allocations trigger traverses them and frees nothing (0.06 of 1.1 CPU s of reading).
    Reference counting still frees everything at once; cycles made meanwhile (by any thread) are
    collected after the last pause ends. The collector is re-enabled only if it was enabled when the
    first of overlapping pauses began.
    """
    global _gc_pauses, _gc_was_enabled  # noqa: PLW0603 (one process-wide collector)
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def write_layer(gdf: pd.DataFrame, path: str | Path, *, layer_name: str | None = None) -> Path:
    """Write a layer to GeoPackage, GeoJSON, Shapefile, CSV or XLSX, chosen by the extension.

    Parameters
    ----------
    gdf
        Rows of one layer with ``lon``/``lat`` in WGS-84 (a GeoDataFrame's geometry is ignored when
        ``lon``/``lat`` exist). Personal columns are written as given: callers decide what to export.
    path
        Target file; replaced if it exists. ``.gpkg`` (opens in QGIS), ``.geojson``, ``.shp`` (long
        column names shortened to `schema.SHAPEFILE_NAMES`), ``.csv`` (UTF-8 with BOM, so Excel shows
        Chinese correctly) or ``.xlsx`` (header in row 1).
    layer_name
        Layer name inside a GeoPackage; the file stem when None.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        If the extension is not supported, ``lon``/``lat`` are missing for a vector format, or a column
        name is too long for a Shapefile.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        writer = _WRITERS[suffix]
    except KeyError:
        msg = f"`path` must end in one of {sorted(_WRITERS)!r}; got {path.name!r}."
        raise ValueError(msg) from None
    frame = _export_frame(gdf)
    writer(frame, path, layer_name or path.stem)
    logger.info("Wrote %s rows to %s", f"{len(frame):,}", path)
    return path


def write_features(gdf: gpd.GeoDataFrame, path: str | Path, *, layer_name: str, append: bool = False) -> Path:
    """Write features of any geometry (lines, polygons, points) to GeoPackage or GeoJSON in EPSG:4326.

    For map and analysis outputs (gap roads, hexagons, catchments). ``append=True`` adds ``layer_name``
    to an existing GeoPackage, so one file holds several layers.

    Raises
    ------
    ValueError
        If the extension is not ``.gpkg`` or ``.geojson``, or ``gdf`` has no CRS.
    """
    path = Path(path)
    drivers = {".gpkg": "GPKG", ".geojson": "GeoJSON"}
    if path.suffix.lower() not in drivers:
        msg = f"`path` must end in .gpkg or .geojson for map layers; got {path.name!r}."
        raise ValueError(msg)
    if gdf.crs is None:
        msg = f"Layer {layer_name!r} has no CRS; set one before writing."
        raise ValueError(msg)
    if not append and path.exists():
        path.unlink()
    plain = gpd.GeoDataFrame(
        _plain_dtypes(pd.DataFrame(gdf.drop(columns=gdf.geometry.name))).reset_index(drop=True),
        geometry=gdf.geometry.to_crs(WGS84).reset_index(drop=True),
        crs=WGS84,
    )
    plain.to_file(path, driver=drivers[path.suffix.lower()], layer=layer_name, engine="pyogrio",
                  append=append and path.exists())  # fmt: skip
    logger.info("Wrote %s features to layer %r of %s", f"{len(plain):,}", layer_name, path.name)
    return path


# --- readers -------------------------------------------------------------------------------------


def _read_csv(path: Path, sheet: str | int | None, limits: ReadLimits) -> pd.DataFrame:
    size = path.stat().st_size
    if size > limits.max_uncompressed_bytes:
        msg = (
            f"{path.name!r} 有 {size / _MB:,.0f} MB，"
            f"导入最多读取 {limits.max_uncompressed_bytes / _MB:,.0f} MB：请拆分台账。 "
            f"({path.name!r} has {size / _MB:,.0f} MB; imports read at most "
            f"{limits.max_uncompressed_bytes / _MB:,.0f} MB: split the ledger.)"
        )
        raise FileLimitError(msg)
    raw = path.read_bytes()
    lines = raw.count(b"\n") + (not raw.endswith(b"\n"))
    if lines > limits.max_rows:
        msg = (
            f"{path.name!r} 有 {lines:,} 行，导入最多读取 {limits.max_rows:,} 行：请删除多余的行，或拆分台账。 "
            f"({path.name!r} has {lines:,} lines; imports read at most {limits.max_rows:,} rows: delete the extra "
            "rows, or split the ledger.)"
        )
        raise FileLimitError(msg)
    for encoding in _TEXT_ENCODINGS:
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        msg = (
            f"{path.name!r} 既不是 UTF-8 也不是 GBK/GB18030 文本：请在 Excel 中另存为“CSV UTF-8（逗号分隔）”"
            f"或 XLSX ({path.name!r} is neither UTF-8 nor GB18030 text; save it as CSV UTF-8 from Excel)."
        )
        raise ValueError(msg)
    utf8 = None
    if encoding == "utf-8-sig":  # pandas parses the bytes themselves (no re-encoding of the text)
        utf8 = raw[len(codecs.BOM_UTF8) :] if raw.startswith(codecs.BOM_UTF8) else raw
    table = _table_from_csv_text(text, path, utf8=utf8)
    if table.shape[1] > limits.max_columns:
        msg = (
            f"{path.name!r} 有 {table.shape[1]:,} 列，导入最多读取 {limits.max_columns:,} 列：请删除数据右侧多余的列。 "
            f"({path.name!r} has {table.shape[1]:,} columns; imports read at most {limits.max_columns:,}: delete the "
            "columns right of the data.)"
        )
        raise FileLimitError(msg)
    table.attrs[ENCODING_ATTR] = ENCODING_NAMES[encoding]
    logger.info("Read %s as %s text", path.name, ENCODING_NAMES[encoding])
    return table


def _table_from_csv_text(text: str, path: Path, *, utf8: bytes | None = None) -> pd.DataFrame:
    """Build the raw table of a CSV: pandas' C tokenizer for the columns, `csv` for the header rows.

    The first rows (where the header is searched) are read with the `csv` module too; if pandas
    tokenizes them differently, or a later row is wider than all of them, the whole file goes through
    the `csv` module instead (same table, slower). ``utf8``, when given, is ``text`` as UTF-8 bytes
    without a BOM: pandas reads those directly instead of encoding ``text`` again. The cells are
    separated by commas, or by tabs, semicolons or bars when only those split the header (`_delimiter`).
    """
    delimiter, head = _delimiter(text)
    table = _table_from_delimited_text(text, path, delimiter, head, utf8=utf8)
    if delimiter != ",":
        table.attrs[DELIMITER_ATTR] = DELIMITER_NAMES[delimiter]
    return table


#: Cell separators a text table may use besides the comma, and how the report names each.
DELIMITER_NAMES = {",": "逗号 (comma)", "\t": "制表符 (tab)", ";": "分号 (semicolon)", "|": "竖线 (bar)"}


def _delimiter(text: str) -> tuple[str, list[list[str]]]:
    """Return a text table's cell separator and its first rows split at it (the header's rows and one more).

    A comma, unless the header is found (`MIN_HEADER_MATCHES` known labels in a row) only when the
    rows are split at another of `DELIMITER_NAMES`: then the one that finds the most.
    """
    best: tuple[str, list[list[str]]] | None = None
    best_matches = -1
    for delimiter in DELIMITER_NAMES:
        reader = csv.reader(_io.StringIO(text, newline=""), delimiter=delimiter)
        # the rows searched for the header, and one more (a header's second row, see `_header`)
        head = list(itertools.islice(reader, MAX_HEADER_SEARCH_ROWS + 1))
        matches = max((_known_labels(row) for row in head[:MAX_HEADER_SEARCH_ROWS]), default=0)
        if delimiter == "," and matches >= MIN_HEADER_MATCHES:
            return delimiter, head
        if matches > best_matches and (delimiter == "," or matches >= MIN_HEADER_MATCHES):
            best, best_matches = (delimiter, head), matches
    assert best is not None  # the comma always counts
    return best


def _known_labels(row: Sequence[object]) -> int:
    """Return how many cells of a row are known column labels (`schema.canonical_column`)."""
    return sum(schema.canonical_column(c) is not None for c in row if not _blank(c))


def _table_from_delimited_text(
    text: str, path: Path, delimiter: str, head: list[list[str]], *, utf8: bytes | None
) -> pd.DataFrame:
    """Build the raw table of a text table whose cells ``delimiter`` separates (``head``: its first rows)."""
    width = max(map(len, head), default=0)
    if width:
        try:
            source = _io.StringIO(text) if utf8 is None else _io.BytesIO(utf8)  # encoding: for the bytes
            frame = pd.read_csv(
                source, encoding="utf-8", header=None, names=range(width), index_col=False, dtype=object,
                na_filter=False, keep_default_na=False, skip_blank_lines=False, engine="c", sep=delimiter,
            )  # fmt: skip
        except pd.errors.ParserError:
            frame = None
        if frame is not None and frame.iloc[: len(head)].to_numpy().tolist() == [
            [*r, *([""] * (width - len(r)))] for r in head
        ]:
            header, h = _header(head, _find_header(head[:MAX_HEADER_SEARCH_ROWS]))
            columns = [frame[j].to_numpy(dtype=object)[h + 1 :] for j in range(width)]
            return _table_from_columns(header, h, columns, path, text_only=True)
    return _table_from_rows(list(csv.reader(_io.StringIO(text, newline=""), delimiter=delimiter)), path)


def _read_xlsx(path: Path, sheet: str | int | None, limits: ReadLimits) -> pd.DataFrame:
    table, names = _read_xlsx_sheet(path, sheet, limits)
    if sheet is not None or _names_columns(table):
        return table
    # the first sheet has no header (a 填表说明, say): the first of the next visible sheets with one (a
    # chart sheet, or one over the limits, is not it)
    for later in names[1 : 1 + MAX_SHEETS_SEARCHED]:
        try:
            found, _ = _read_xlsx_sheet(path, later, limits)
        except (UnreadableFileError, FileLimitError):
            continue
        if _names_columns(found):
            found.attrs[SHEET_ATTR] = (names[0], later)
            logger.info("The first sheet of %s has no header: read the sheet %r", path.name, later)
            return found
    return table


#: Sheets after the first searched for the ledger when the first has no header.
MAX_SHEETS_SEARCHED = 10


def _read_xlsx_sheet(path: Path, sheet: str | int | None, limits: ReadLimits) -> tuple[pd.DataFrame, list[str]]:
    """Check and read one sheet of an XLSX (see `_check_xlsx`); return its table and the visible sheets' names."""
    import python_calamine  # only XLSX imports need it

    name, names = _check_xlsx(path, sheet, limits)
    try:
        with python_calamine.CalamineWorkbook.from_path(path) as wb:
            found = wb.get_sheet_by_name(name)
            rows = found.to_python(skip_empty_area=False)  # rows from row 1, cells from A
            merged = found.merged_cell_ranges or []  # ((first row, column), (last row, column)), from 0
    except python_calamine.CalamineError as error:
        raise _damaged(repr(path.name), str(error), str(error)) from None
    return _table_from_rows(rows, path, merged=merged), names


def _damaged(where: str, zh: str, en: str) -> UnreadableFileError:
    """Return the error of a damaged XLSX: ``where`` (the file, or a sheet of it) and what is wrong, Chinese first."""
    return UnreadableFileError(
        f"{where} 已损坏（{zh}）：请在 Excel 或 WPS 中打开并重新另存为 .xlsx。 "
        f"({where} is damaged ({en}): open it in Excel or WPS and save it again as .xlsx (Excel 工作簿).)"
    )


def _names_columns(table: pd.DataFrame) -> bool:
    """Return True if at least `MIN_HEADER_MATCHES` of a table's columns are known (`schema.canonical_column`)."""
    return _known_labels(table.columns) >= MIN_HEADER_MATCHES


def _check_xlsx(path: Path, sheet: str | int | None, limits: ReadLimits) -> tuple[str, list[str]]:
    """Check an XLSX against `limits` without loading it; return the name of the sheet to read, and all names.

    Every part is decompressed once as a stream (so a part larger than its zip entry says fails its
    CRC check); the sheet's XML is scanned for its used range on the way.
    """
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        msg = (
            f"{path.name!r} 不是 XLSX 工作簿（空文件、已损坏或不是 zip 压缩包，"
            "例如改了扩展名的旧 .xls 或加了密码的文件）："
            "请在 Excel 或 WPS 中打开，另存为 .xlsx（Excel 工作簿）。 "
            f"({path.name!r} is not an XLSX workbook (empty, damaged, or not a zip archive, e.g. an old .xls "
            "renamed or a password-protected file): open it in Excel or WPS and save it again as .xlsx (Excel 工作簿).)"
        )
        raise UnreadableFileError(msg) from None
    with zf:
        infos = zf.infolist()
        total = sum(info.file_size for info in infos)
        if total > limits.max_uncompressed_bytes:
            msg = (
                f"{path.name!r} 解压后有 {total / _MB:,.0f} MB，"
                f"导入最多读取 {limits.max_uncompressed_bytes / _MB:,.0f} MB："
                "请只把台账所在的工作表另存为新工作簿，或拆分文件。 "
                f"({path.name!r} holds {total / _MB:,.0f} MB once decompressed; imports read at most "
                f"{limits.max_uncompressed_bytes / _MB:,.0f} MB: save only the ledger's sheet in a new workbook, "
                "or split it.)"
            )
            raise FileLimitError(msg)
        for info in infos:
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > _RATIO_MIN_BYTES and ratio > limits.max_compression_ratio:
                msg = (
                    f"{path.name!r} 中的 {info.filename!r} 解压后放大 {ratio:,.0f} 倍"
                    f"（到 {info.file_size / _MB:,.0f} MB），"
                    f"导入最多允许 {limits.max_compression_ratio:,.0f} 倍（疑似 zip 炸弹）："
                    "请在 Excel 或 WPS 中打开并重新"
                    "另存为 .xlsx。 "
                    f"({path.name!r}: the part {info.filename!r} decompresses {ratio:,.0f} times (to "
                    f"{info.file_size / _MB:,.0f} MB); imports allow at most {limits.max_compression_ratio:,.0f} "
                    "times (a zip bomb): open the file in Excel or WPS and save it again as .xlsx.)"
                )
                raise FileLimitError(msg)
        try:
            names, parts, hidden = _xlsx_sheets(zf)
            name = _pick_sheet(names, sheet, path)
            for info in infos:
                if info.filename != parts[name]:
                    with zf.open(info) as part:
                        while part.read(_CHUNK_BYTES):
                            pass
            n_rows, n_columns, filled = _used_range(zf, parts[name], limits, f"sheet {name!r} of {path.name!r}")
        except _DAMAGED as error:
            what = f"{type(error).__name__}: {error}"
            raise _damaged(repr(path.name), what, what) from None
    cells = n_rows * n_columns
    where = f"sheet {name!r} of {path.name!r}: the used range A1:{get_column_letter(max(n_columns, 1))}{n_rows}"
    if cells > limits.max_cells:
        msg = (
            f"{where}：有 {cells:,} 个单元格，导入最多读取 {limits.max_cells:,} 个："
            "请删除数据以外的行和列，或拆分台账。 "
            f"({where} has {cells:,} cells; imports read at most {limits.max_cells:,}: delete the rows and columns "
            "beyond the data, or split the ledger.)"
        )
        raise FileLimitError(msg)
    if cells > _SPARSE_MIN_CELLS and cells > _SPARSE_FACTOR * filled:
        msg = (
            f"{where}：有 {cells:,} 个单元格，但只有 {filled:,} 个有值：请删除远离数据的零散单元格"
            "（在 Excel 中按 Ctrl+End 可跳到最后一个）后重新保存。 "
            f"({where} has {cells:,} cells but only {filled:,} hold values: delete the stray cells far from the "
            "data (in Excel, Ctrl+End goes to the last one) and save again.)"
        )
        raise FileLimitError(msg)
    return name, [n for n in names if n not in hidden]


def _pick_sheet(names: Sequence[str], sheet: str | int | None, path: Path) -> str:
    if sheet is None and names:
        return names[0]
    if isinstance(sheet, int) and 0 <= sheet < len(names):
        return names[sheet]
    if isinstance(sheet, str) and sheet in names:
        return sheet
    msg = f"`sheet` {sheet!r} is not in {path.name!r}; its sheets are {list(names)!r}."
    raise ValueError(msg)


def _xlsx_sheets(zf: zipfile.ZipFile) -> tuple[list[str], dict[str, str], set[str]]:
    """Return the sheet names in workbook order, the zip part of each (from the workbook's relations), the hidden ones.

    A hidden sheet (``state`` hidden or veryHidden) is where templates keep their drop-down lists.
    """
    package = _relations(zf, "_rels/.rels")
    workbook = next(target for kind, target in package.values() if kind.endswith("/officeDocument")).lstrip("/")
    folder, file = posixpath.split(workbook)
    targets = _relations(zf, posixpath.join(folder, "_rels", f"{file}.rels"))
    names, parts, hidden = [], {}, set()
    for element in ElementTree.fromstring(zf.read(workbook)).iter():
        if _local(element.tag) == "sheet":
            rid = next(v for k, v in element.attrib.items() if _local(k) == "id")
            name = element.attrib["name"]
            names.append(name)
            if element.attrib.get("state") in ("hidden", "veryHidden"):
                hidden.add(name)
            target = targets[rid][1]  # relative to the workbook's folder, or absolute ("/xl/...")
            parts[name] = target[1:] if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
    return names, parts, hidden


def _relations(zf: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """Return relation id → (type, target) of one ``.rels`` part."""
    out = {}
    for element in ElementTree.fromstring(zf.read(part)).iter():
        if _local(element.tag) == "Relationship":
            target = element.attrib["Target"]
            out[element.attrib["Id"]] = (element.attrib.get("Type", ""), target)
    return out


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


_WORKSHEET_RE = re.compile(rb"<(?:([A-Za-z_][\w.-]*):)?worksheet\b")
#: What reading a damaged workbook raises (a bad zip, deflate stream or XML, a missing part).
_DAMAGED = (zipfile.BadZipFile, zlib.error, ElementTree.ParseError, expat.ExpatError, KeyError, StopIteration, EOFError)
#: A ``c`` tag with a namespace prefix (calamine places cells by their local name, whatever the prefix).
_PREFIXED_CELL_RE = re.compile(rb"<[^\s<>/!?:]+:c[\s>/]")
#: Bytes of a cell tag's leading ref ``<c r="ABC1234567"``, as vectorised by `_RangeScan.add_fast`.
_LT, _GT, _QUOTE, _APOSTROPHE, _SLASH = b"<>\"'/"
_REF_START = np.frombuffer(b' r="', dtype=np.uint8)
_MAX_LETTERS, _MAX_DIGITS = 3, 7  # XFD and 1048576: a longer ref is no cell a reader would place
_AFTER_NAME = np.zeros(256, dtype=bool)  # what may follow ``<c``: white space or ``>`` (``<cols`` is no cell)
_AFTER_NAME[[ord(c) for c in " \t\n\r\f\v>"]] = True
_UPPER = np.zeros(256, dtype=bool)
_UPPER[ord("A") : ord("Z") + 1] = True
_DIGIT = np.zeros(256, dtype=bool)
_DIGIT[ord("0") : ord("9") + 1] = True
_WHITE = np.zeros(256, dtype=bool)  # XML's white space: Excel writes none before ``=``
_WHITE[[ord(c) for c in " \t\n\r"]] = True


def _used_range(zf: zipfile.ZipFile, part: str, limits: ReadLimits, where: str) -> tuple[int, int, int]:
    """Return (last row, last column, cells) of the cells of a sheet that may hold a value.

    The cells are found as python-calamine's XML reader finds them (by local name, ``r`` attribute,
    position after the last cell and row otherwise; a self-closed cell holds no value). While every cell
    tag starts ``<c r="A1"`` and has no second ``r`` (Excel, WPS, openpyxl, XlsxWriter and pandas write
    them so) each chunk of the streamed XML is scanned with array operations
    (`_RangeScan.add_fast`; the next chunk is decompressed in a second thread meanwhile: zlib runs
    without the GIL). A sheet with any other cell tag is parsed again from its start by expat
    (`_RangeScan.walk`): comments, CDATA, quoted ``>`` and prefixes are then read as XML, not as text.
    Stops as soon as a row or column limit is passed.
    """
    with zf.open(part) as stream, _read_ahead(stream, _CHUNK_BYTES) as chunks:
        head = next(chunks, b"")
        found = _WORKSHEET_RE.search(head)
        if found is None:
            msg = f"{where} is not a worksheet (a chart sheet or a damaged part): choose the sheet with the ledger."
            raise UnreadableFileError(msg)
        opener = b"<" + (found.group(1) + b":" if found.group(1) else b"") + b"c"
        state = _RangeScan(limits, where)
        tail = b""
        for chunk in itertools.chain([head], chunks, [b""]):
            data = tail + chunk
            if chunk:  # keep the last, maybe cut, tag for the next chunk
                cut = max(data.rfind(b"<"), 0)
                data, tail = data[:cut], data[cut:]
            if not state.add_fast(data, opener):
                break
            if not chunk:
                return state.rows, state.columns, state.cells
    state = _RangeScan(limits, where)
    with zf.open(part) as stream:
        state.walk(stream)
    return state.rows, state.columns, state.cells


@contextlib.contextmanager
def _read_ahead(stream: BinaryIO, size: int) -> Iterator[Iterator[bytes]]:
    """Yield an iterator over ``size``-byte chunks of ``stream``, each read while the last is in use.

    The reads run in one worker thread (decompressing a zip member releases the GIL); the stream is
    only ever read by it. Leaving the block waits for the read under way.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xlsx-read") as pool:

        def chunks() -> Iterator[bytes]:
            pending = pool.submit(stream.read, size)
            while chunk := pending.result():
                pending = pool.submit(stream.read, size)
                yield chunk

        yield chunks()


def _cell_position(ref: str, where: str) -> tuple[int, int]:
    """Return (row, column) of a ref as calamine reads it: letters of either case, then digits ("b7": 7, 2).

    A ref calamine refuses (another character, or letters after the digits) makes the file damaged.
    """
    letters = ref.rstrip("0123456789")
    digits = ref[len(letters) :]  # ASCII digits only: rstrip took no others
    if not (letters.isascii() and letters.isalpha() or not letters) or not digits:
        raise _damaged(where, f"单元格位置 {ref[:20]!r} 无效", f"the cell position {ref[:20]!r} is not valid")
    return int(digits), _column_number(letters.upper().encode())


class _RangeScan:
    """Running used range of a sheet's cells, checked against the row and column limits."""

    def __init__(self, limits: ReadLimits, where: str) -> None:
        self.limits, self.where = limits, where
        self.rows = self.columns = self.cells = 0
        # the walk's place, as calamine keeps it: the row (1-based) and the last column used in it;
        # how deep in a cell the parser is (0: outside any), and the cell until its first child
        self.row, self.column, self.depth = 1, 0, 0
        self.cell: tuple[int, int] | None = None

    def add_fast(self, data: bytes, opener: bytes) -> bool:
        """Add the cells of a chunk whose cell tags are all plain; False (nothing added) otherwise.

        ``opener`` is ``<c`` with the sheet's namespace prefix. Works on the bytes as an array (no
        Python object per cell): the cell tags are the ``<`` followed by ``opener`` and white space or
        ``>``; each must go on ``␠r="``, 1 to 3 capitals, 1 to 7 digits and ``"``, with no other ``r``
        attribute up to its end (calamine would read the last) and no ``=`` after white space in the
        chunk. A tag ends at the first ``>`` after the ref when no ``'`` and an even number of ``"`` lie
        between (``>`` and ``/>`` may stand inside a quoted value); a cell whose tag ends ``/>`` holds no
        value. A chunk without ``/>`` whose ``r=`` are as many as its cells and its rows that start
        ``<row r="`` needs no tag ends. A ``c`` tag with another prefix, or any other tag, leaves the
        sheet to `walk`.
        """
        n, width = len(data), len(opener)
        pad = width + len(_REF_START) + _MAX_LETTERS + _MAX_DIGITS + 2  # every look-ahead stays in the array
        arr = np.frombuffer(data + bytes(pad), dtype=np.uint8)
        if opener != b"<c":
            if _other_cells(data, opener):
                return False
        elif (arr[np.flatnonzero(arr[:n] == ord(":")) + 1] == ord("c")).any() and _PREFIXED_CELL_RE.search(data):
            return False
        tags = np.flatnonzero(arr[:n] == _LT)
        at = _starting(arr, tags, opener)
        at = at[_AFTER_NAME[arr[at + width]]]
        if at.size == 0:
            return True
        ok = np.ones(at.size, dtype=bool)
        for k, byte in enumerate(_REF_START, start=width):
            ok &= arr[at + k] == byte
        start = at + width + len(_REF_START)
        letters = np.zeros(at.size, dtype=np.int64)
        end = start.copy()
        run = np.ones(at.size, dtype=bool)
        for k in range(_MAX_LETTERS + 1):  # one more than a ref may have: a fourth capital fails it
            byte = arr[start + k]
            run &= _UPPER[byte]
            if k < _MAX_LETTERS:
                letters = np.where(run, letters * 26 + (byte - (ord("A") - 1)), letters)
            end += run
        ok &= (end > start) & (end - start <= _MAX_LETTERS)
        digits, row = end.copy(), np.zeros(at.size, dtype=np.int64)
        run[:] = True
        for k in range(_MAX_DIGITS + 1):  # likewise: an eighth digit fails it
            byte = arr[end + k]
            run &= _DIGIT[byte]
            if k < _MAX_DIGITS:
                row = np.where(run, row * 10 + (byte - ord("0")), row)  # b"009" is row 9, as readers read it
            digits += run
        ok &= (digits > end) & (digits - end <= _MAX_DIGITS) & (arr[digits] == _QUOTE)
        if not ok.all():
            return False
        equals = np.flatnonzero(arr[:n] == ord("="))
        named = arr[equals - 1]
        if _WHITE[named].any():
            return False  # a spaced ``r =`` would escape the search for a second ``r`` below
        r_at = equals[named == ord("r")] - 1
        closes = np.flatnonzero(arr[:n] == _GT)
        rows = _starting(arr, tags, opener[:-1] + b'row r="')
        if r_at.size == at.size + rows.size and not (arr[closes - 1] == _SLASH).any():
            # every ``r=`` is a cell's ref or a row's (no cell has two) and no tag is self-closed
            self._extend(int(row.max()), int(letters.max()), int(row.size))
            return True
        close = np.searchsorted(closes, digits + 1)
        if close[-1] == closes.size:  # a tag left open at the end of the sheet
            return False
        close = closes[close]
        for mark, even in ((_APOSTROPHE, False), (_QUOTE, True)):  # how many of each lie between
            marks = np.flatnonzero(arr[:n] == mark)
            between = np.searchsorted(marks, close) - np.searchsorted(marks, digits, side="right")
            if (between % 2 if even else between).any():
                return False
        tag = np.searchsorted(at, r_at, side="right") - 1  # a second ``r`` in a cell tag: calamine reads the last
        inside = (tag >= 0) & (r_at < close[tag]) & (r_at != at[tag] + width + 1)
        if inside.any():
            return False
        value = arr[close - 1] != _SLASH
        letters, row = letters[value], row[value]
        if row.size:
            self._extend(int(row.max()), int(letters.max()), int(row.size))
        return True

    def walk(self, stream: BinaryIO) -> None:
        """Add every cell of the sheet's XML, parsed by expat from its start (see `start` and `end`).

        A document type declaration (which could define entities) or a row or cell inside a cell makes
        the file damaged, like any XML error (`_check_xlsx` reports ``ExpatError``): calamine would read
        the inner one as the outer cell's value, not as a row or cell of its own.
        """
        parser = expat.ParserCreate()
        parser.StartElementHandler, parser.EndElementHandler = self.start, self.end
        parser.StartDoctypeDeclHandler = self._refuse_doctype
        while chunk := stream.read(_CHUNK_BYTES):
            parser.Parse(chunk, False)
        parser.Parse(b"", True)

    def start(self, name: str, attributes: dict[str, str]) -> None:
        """Take an element's start: a row moves to its ``r``; a cell takes its ``r`` or the next column.

        A cell counts once an element starts inside it (its value: ``v``, ``is``, ``f``); an empty or
        self-closed one holds no value, as calamine reads it.
        """
        local = name.rpartition(":")[2]
        if self.depth:  # inside a cell
            if local in ("row", "c", "sheetData"):
                raise expat.ExpatError(f"a {local} element inside a cell")
            if self.cell is not None:  # its first child
                self._extend(*self.cell, 1)
                self.cell = None
            self.depth += 1
        elif local == "sheetData":  # calamine's reader starts here
            self.row, self.column = 1, 0
        elif local == "row":
            if "r" in attributes:
                self.row = _cell_position(attributes["r"], self.where)[0]
        elif local == "c":
            if "r" in attributes:
                row, self.column = _cell_position(attributes["r"], self.where)
            else:
                row, self.column = self.row, self.column + 1
            self.cell, self.depth = (row, self.column), 1

    def end(self, name: str) -> None:
        """Take an element's end: after a row, the next starts one row down at its first column."""
        if self.depth:
            self.depth -= 1
        elif name.rpartition(":")[2] == "row":
            self.row, self.column = self.row + 1, 0

    def _refuse_doctype(self, *_args: object) -> None:
        raise expat.ExpatError("a document type declaration (DOCTYPE)")

    def _extend(self, row: int, column: int, cells: int) -> None:
        self.rows, self.columns, self.cells = max(self.rows, row), max(self.columns, column), self.cells + cells
        if self.rows > self.limits.max_rows:
            msg = (
                f"{self.where}：第 {self.limits.max_rows:,} 行以后还有值（第 {self.rows:,} 行），导入最多读取 "
                f"{self.limits.max_rows:,} 行：请删除数据下方的行，或拆分台账。 "
                f"({self.where} has values beyond row {self.limits.max_rows:,} (in row {self.rows:,}); imports read "
                f"at most {self.limits.max_rows:,} rows: delete the rows below the data, or split the ledger.)"
            )
            raise FileLimitError(msg)
        if self.columns > self.limits.max_columns:
            msg = (
                f"{self.where}：{_column_name(self.columns)} 列（第 {self.columns:,} 列）有值，导入最多读取 "
                f"{self.limits.max_columns:,} 列（A 到 {get_column_letter(self.limits.max_columns)}）："
                "请删除数据右侧的列后"
                "重新保存。 "
                f"({self.where} has values in column {_column_name(self.columns)} (column {self.columns:,}); "
                f"imports read at most {self.limits.max_columns:,} columns (A to "
                f"{get_column_letter(self.limits.max_columns)}): delete the columns right of the data and save again.)"
            )
            raise FileLimitError(msg)


def _starting(arr: np.ndarray, tags: np.ndarray, name: bytes) -> np.ndarray:
    """Return the positions among ``tags`` (of ``<``) where ``arr`` goes on with the bytes of ``name``."""
    for k in range(1, len(name)):
        tags = tags[arr[tags + k] == name[k]]
    return tags


def _other_cells(data: bytes, opener: bytes) -> bool:
    """Return True if a prefixed sheet's chunk holds a ``c`` tag without the sheet's prefix (or with another)."""
    return any(not tag.startswith(opener) for tag in re.findall(rb"<(?:[^\s<>/!?:]+:)?c[\s>/]", data))


def _column_number(letters: bytes) -> int:
    """Return the number of a column (``A`` 1, ``AA`` 27), also past Excel's last (``XFD``), as a hostile ref may be."""
    number = 0
    for letter in letters:
        number = number * 26 + letter - (ord("A") - 1)
    return number


def _column_name(number: int) -> str:
    """Return the letters of column ``number`` (the inverse of `_column_number`)."""
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _read_vector(path: Path, sheet: str | int | None, limits: ReadLimits) -> pd.DataFrame:
    kwargs = {} if sheet is None else {"layer": sheet}
    gdf = gpd.read_file(path, engine="pyogrio", **kwargs)
    if gdf.crs is not None and gdf.crs.is_projected:
        gdf = gdf.to_crs(WGS84)
    geoms = gdf.geometry
    kinds = set(geoms.geom_type.dropna())
    if kinds - {"Point"}:
        msg = (
            f"{path.name!r} 含有 {sorted(kinds)!r} 几何，点图层只能导入点：请先把面转成点"
            "（QGIS：矢量 → 几何工具 → 质心）再导入。 "
            f"({path.name!r} holds {sorted(kinds)!r} geometries; point layers need Point geometries. "
            "Convert polygons to points (QGIS: 质心/Centroids) before importing.)"
        )
        raise ValueError(msg)
    empty = geoms.isna() | geoms.is_empty
    lon = np.where(empty, np.nan, geoms.x.where(~empty))
    lat = np.where(empty, np.nan, geoms.y.where(~empty))
    df = pd.DataFrame(gdf.drop(columns=gdf.geometry.name)).astype(object)
    df = df.where(df.notna(), None)
    df[schema.LON] = pd.Series(lon, index=df.index, dtype=object)
    df[schema.LAT] = pd.Series(lat, index=df.index, dtype=object)
    df.index = pd.RangeIndex(1, len(df) + 1, name=ROW)
    return df


_READERS: dict[str, Callable[[Path, str | int | None, ReadLimits], pd.DataFrame]] = {
    ".csv": _read_csv,
    ".txt": _read_csv,
    ".xlsx": _read_xlsx,
    ".xlsm": _read_xlsx,
    ".geojson": _read_vector,
    ".json": _read_vector,
    ".gpkg": _read_vector,
    ".shp": _read_vector,
}


def _find_header(rows: Sequence[Sequence[object]]) -> int:
    """Return the position of the header among the first rows (see `MIN_HEADER_MATCHES`)."""
    best, best_matches = None, 0
    for i, row in enumerate(rows[:MAX_HEADER_SEARCH_ROWS]):
        matches = _known_labels(row)
        if matches >= MIN_HEADER_MATCHES:
            return i
        if matches > best_matches:
            best, best_matches = i, matches
    if best is not None:
        return best
    return next((i for i, row in enumerate(rows) if any(not _blank(c) for c in row)), 0)


def _header(rows: Sequence[Sequence[object]], h: int) -> tuple[list[object], int]:
    """Return the labels of the header found at position ``h`` and the position of its last row.

    Ledgers often name their columns on two rows: a group label merged across its columns (残疾情况,
    坐标) over the labels of each (类别 and 等级, 经度 and 纬度), every other label merged down over
    both rows. Row ``h`` and the row above it, or row ``h`` and the row below it, then make one header
    (see `_two_row_header`) and the data start under both; otherwise the header is row ``h`` alone.
    """
    for upper in (h - 1, h):
        if 0 <= upper and upper + 1 < len(rows):
            labels = _two_row_header(rows[upper], rows[upper + 1])
            if labels is not None:
                return labels, upper + 1
    return list(rows[h]), h


#: Endings of a group label left out when it is joined to a label under it (残疾情况 over 类别: 残疾类别).
_GROUP_ENDINGS = ("基本情况", "情况", "信息")


def _two_row_header(upper: Sequence[object], lower: Sequence[object]) -> list[object] | None:
    """Return the labels of a header on two rows, or None when ``lower`` is not the second row of one.

    ``lower`` is the second row when every cell of it is blank or text, each text stands under a group
    label (a cell of ``upper`` over several columns, or a blank one right of one, as a merged cell
    reads), and the two rows together name more known columns (`schema.canonical_column`) than either
    does alone. A label of ``upper`` over one column keeps its column (what stands under it is a note,
    or a data row's value); under a group, a column takes the label under it when that is known and
    names no column the header names already (监护人情况 over 姓名 is the guardian's: 监护人姓名), else the
    group's label joined to it when that is known (残疾情况 + 类别: 残疾类别), else the group's label joined
    to it as it is; a column blank in ``lower`` keeps the label of ``upper``.
    """
    width = max(len(upper), len(lower))
    tops = [None if _blank(c) else str(_cell(c)) for c in [*upper, *[None] * (width - len(upper))]]
    subs = [*lower, *[None] * (width - len(lower))]
    labels: list[object] = list(tops)
    starts: list[int] = [-1] * width  # per column: the first column of its group (-1: none)
    start = -1
    for j, (top, sub) in enumerate(zip(tops, subs, strict=True)):
        if _blank(sub):
            start = -1
            continue
        if not isinstance(sub, str):
            return None  # a number or a date: a data row
        if top is not None:
            start = j
        elif start < 0:
            return None  # a label under no group
        starts[j] = start
    sizes = collections.Counter(starts)
    grouped = [j for j, start in enumerate(starts) if start >= 0 and sizes[start] > 1]
    if not grouped:
        return None
    in_groups = set(grouped)
    named = {schema.canonical_column(labels[j]) for j in range(width) if j not in in_groups} - {None}
    for j in grouped:
        group, sub = tops[starts[j]], str(subs[j]).strip()
        assert group is not None  # the first column of a group has its label
        stem = next((group[: -len(e)] for e in _GROUP_ENDINGS if group.endswith(e) and len(group) > len(e)), group)
        own = schema.canonical_column(sub)
        if own is not None and own not in named:
            labels[j] = sub
        else:
            labels[j] = next((g + sub for g in (stem, group) if schema.canonical_column(g + sub)), group + sub)

    def known(row: Sequence[object]) -> int:
        return len({schema.canonical_column(c) for c in row if not _blank(c)} - {None})

    return labels if known(labels) > max(known(tops), known(subs)) else None


def _table_from_rows(
    rows: Iterable[Sequence[object]],
    path: Path,
    *,
    merged: Sequence[tuple[tuple[int, int], tuple[int, int]]] = (),
) -> pd.DataFrame:
    """Build a raw table from spreadsheet rows (first row = sheet row 1); ``merged``: the sheet's merged cells.

    A cell merged down over rows below the header (a 镇（街道） or 村（社区） written once for a block of
    rows) stands for each of them: its value is filled down (`_fill_merged`).
    """
    all_rows = rows if isinstance(rows, list) else list(rows)
    if not all_rows:
        return pd.DataFrame(index=pd.RangeIndex(0, name=ROW))
    header, h = _header(all_rows, _find_header(all_rows[:MAX_HEADER_SEARCH_ROWS]))
    filled = _fill_merged(all_rows, merged, h + 1, path) if merged else []
    body = all_rows[h + 1 :]
    lengths = set(map(len, body))
    width = max(len(header), *lengths) if body else len(header)
    if lengths - {width}:
        body = [(*r, *([None] * (width - len(r)))) for r in body]
    columns = list(zip(*body, strict=True)) if body else [() for _ in range(width)]
    table = _table_from_columns(header, h, columns, path)
    if filled:
        table.attrs[MERGED_ATTR] = sorted(set(filled) & set(table.index))
    return table


def _fill_merged(
    rows: list[Sequence[object]], merged: Sequence[tuple[tuple[int, int], tuple[int, int]]], first: int, path: Path
) -> list[int]:
    """Fill each cell merged down over rows from position ``first`` on into the rows below it; return them.

    Only the merged cell's own column is filled (a merge across columns leaves the others blank, as
    they read), only within the rows read, and only in rows holding something else. Excel and WPS
    never write overlapping merged cells; a file whose merges would fill more cells than the rows hold
    is refused as damaged, so a crafted file cannot make the fill grow past the sheet.
    """
    budget = sum(map(len, rows[first:]))
    filled: list[int] = []
    for (top, column), (bottom, _last) in merged:
        if top < first or bottom <= top or top >= len(rows) or column >= len(rows[top]):
            continue  # a title's or the header's merge, or one row only
        value = rows[top][column]
        if _blank(value):
            continue
        below = range(top + 1, min(bottom, len(rows) - 1) + 1)
        budget -= len(below)
        if budget < 0:
            raise _damaged(repr(path.name), "合并单元格相互重叠", "its merged cells overlap")
        for r in below:
            row = rows[r]
            if column < len(row) and not all(map(_blank, row)):  # a blank row stays blank
                if not isinstance(row, list):
                    row = rows[r] = list(row)
                row[column] = value
                filled.append(r + 1)
    return filled


def _table_from_columns(
    header_row: Sequence[object],
    h: int,
    columns: Sequence[Sequence[object]],
    path: Path,
    *,
    text_only: bool = False,
) -> pd.DataFrame:
    """Build a raw table from the header row (at position ``h``) and the columns of the rows below it.

    Works column by column: a 100,000-row ledger is cleaned in tight per-column loops, not one
    Python loop per row. Blank rows are dropped (the row numbers of the others stay as in the file).
    ``text_only`` says every cell is a str (a CSV's): then no cell needs `_cell` or can be NaN.
    """
    header = [None if _blank(c) else str(_cell(c)).strip() for c in header_row]
    width = max(len(header), len(columns))
    header += [None] * (width - len(header))
    n = len(columns[0]) if columns else 0
    blank = np.ones(n, dtype=bool)
    arrays = []
    for values in columns:
        cells, empty = _column_cells(values, n, text_only=text_only)
        blank &= empty
        arrays.append(cells)
    arrays += [np.full(n, None, dtype=object)] * (width - len(arrays))
    keep = ~blank
    totals = []
    for pos in np.flatnonzero(keep)[::-1]:  # totals rows at the bottom (合计): not records
        if not any(isinstance(a[pos], str) and _TOTALS_RE.fullmatch(a[pos]) for a in arrays):
            break
        keep[pos] = False
        totals.append(int(h + 2 + pos))
    numbers = np.arange(h + 2, h + 2 + n, dtype=np.int64)[keep]
    kept, names, seen = [], [], set()
    for j, name in enumerate(header):
        cells = arrays[j][keep]
        if name is None and not any(c is not None for c in cells):
            continue  # an empty, unnamed column (formatting only)
        label = name if name is not None else f"({get_column_letter(j + 1)})"
        while label in seen:
            label = f"{label}.{get_column_letter(j + 1)}"
        seen.add(label)
        kept.append(cells)
        names.append(label)
    table = pd.DataFrame(dict(enumerate(kept)), index=pd.Index(numbers, name=ROW, dtype=np.int64), dtype=object)
    table.columns = names
    table.attrs[TOTALS_ATTR] = sorted(totals)
    if totals:
        logger.info("Skipped the totals row(s) %s at the bottom of %s", sorted(totals), path.name)
    logger.debug("Header of %s found on row %d: %r", path.name, h + 1, names)
    return table


def _column_cells(values: Sequence[object], n: int, *, text_only: bool) -> tuple[np.ndarray, np.ndarray]:
    """Return one column's cells as `_cell` makes them (NaN/NaT as None too) and where a cell is blank.

    A NaN/NaT cell reads as None but does not make its row blank. The usual columns are converted in
    C: all text (``str.strip``, blanks → None), or all floats (whole ones → int, NaN → None); any
    other column goes cell by cell.
    """
    cells = np.empty(n, dtype=object)
    kinds = {str} if text_only else set(map(type, values))
    if kinds == {str}:
        cells[:] = list(map(str.strip, values))
        empty = cells == ""
        cells[empty] = None
        return cells, empty
    if kinds == {float}:
        number = np.fromiter(values, np.float64, n)
        whole = np.isfinite(number) & (np.trunc(number) == number)
        small = whole & (np.abs(number) < 2**63)
        cells[:] = number.astype(object)
        cells[small] = number[small].astype(np.int64).astype(object)
        for pos in np.flatnonzero(whole & ~small):
            cells[pos] = int(number[pos])
        cells[np.isnan(number)] = None
        return cells, np.zeros(n, dtype=bool)
    cells[:] = [(c.strip() or None) if c.__class__ is str else _cell(c) for c in values]
    empty = np.equal(cells, None)
    cells[pd.isna(cells)] = None  # NaN/NaT cells read as blanks too (but do not make a row blank)
    return cells, empty


def _cell(value: object) -> object:
    """Return a cell as the table holds it: stripped text, None for blanks, other values as they are."""
    if _blank(value):
        return None
    if isinstance(value, str):
        return value.strip()
    if value.__class__ is float and value.is_integer():
        return int(value)  # XLSX numbers are floats; whole ones read as int (as Excel shows them)
    if value.__class__ is date:
        return datetime(value.year, value.month, value.day)  # a date cell, as openpyxl and pandas give it
    return value


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# --- writers -------------------------------------------------------------------------------------


def _export_frame(gdf: pd.DataFrame) -> pd.DataFrame:
    """Return a plain DataFrame with ``source_datum`` instead of ``datum`` and no geometry."""
    df = pd.DataFrame(gdf).copy()
    if isinstance(gdf, gpd.GeoDataFrame) and gdf.geometry.name in df.columns:
        geometry_name = gdf.geometry.name
        if schema.LON not in df.columns or schema.LAT not in df.columns:
            geoms = gpd.GeoSeries(gdf.geometry).to_crs(WGS84) if gdf.crs is not None else gdf.geometry
            df[schema.LON] = geoms.x.to_numpy()
            df[schema.LAT] = geoms.y.to_numpy()
        df = df.drop(columns=geometry_name)
    if schema.DATUM in df.columns:
        if schema.SOURCE_DATUM in df.columns:
            df = df.drop(columns=schema.DATUM)
        else:
            df = df.rename(columns={schema.DATUM: schema.SOURCE_DATUM})
    return df.reset_index(drop=True)


def _to_geodataframe(df: pd.DataFrame) -> gpd.GeoDataFrame:
    missing = [c for c in (schema.LON, schema.LAT) if c not in df.columns]
    if missing:
        msg = f"Vector output needs the columns {missing!r} (WGS-84 degrees); got {list(df.columns)!r}."
        raise ValueError(msg)
    lon = pd.to_numeric(df[schema.LON], errors="coerce").to_numpy(dtype=np.float64)
    lat = pd.to_numeric(df[schema.LAT], errors="coerce").to_numpy(dtype=np.float64)
    geometry = gpd.points_from_xy(lon, lat, crs=WGS84)
    attrs = _plain_dtypes(df.drop(columns=[schema.LON, schema.LAT]))
    return gpd.GeoDataFrame(attrs, geometry=geometry, crs=WGS84)


def _plain_dtypes(df: pd.DataFrame) -> pd.DataFrame:
    """Replace pandas extension dtypes by numpy/object ones the OGR and Excel writers accept."""
    out = {}
    for col in df.columns:
        s = df[col]
        if isinstance(s.dtype, pd.BooleanDtype | pd.StringDtype) or (
            s.dtype.kind in "iu" and isinstance(s.dtype, pd.api.extensions.ExtensionDtype)
        ):
            out[col] = s.astype(object).where(s.notna(), None)
        elif isinstance(s.dtype, pd.DatetimeTZDtype):
            out[col] = s.dt.tz_convert("UTC").dt.tz_localize(None)
        else:
            out[col] = s
    return pd.DataFrame(out, index=df.index)


def _write_gpkg(df: pd.DataFrame, path: Path, layer_name: str) -> None:
    if path.exists():
        path.unlink()
    _to_geodataframe(df).to_file(path, driver="GPKG", layer=layer_name, engine="pyogrio")


def _write_geojson(df: pd.DataFrame, path: Path, layer_name: str) -> None:
    if path.exists():
        path.unlink()
    _to_geodataframe(df).to_file(path, driver="GeoJSON", engine="pyogrio")


def _write_shp(df: pd.DataFrame, path: Path, layer_name: str) -> None:
    renamed = df.rename(columns=schema.SHAPEFILE_NAMES)
    too_long = [c for c in renamed.columns if len(str(c).encode("utf-8")) > 10]
    if too_long:
        msg = (
            f"Shapefile column names are limited to 10 bytes; {too_long!r} are longer and have no short "
            "name in `schema.SHAPEFILE_NAMES`. Write a GeoPackage (.gpkg) instead."
        )
        raise ValueError(msg)
    _to_geodataframe(renamed).to_file(path, driver="ESRI Shapefile", engine="pyogrio", encoding="UTF-8")


def _write_csv(df: pd.DataFrame, path: Path, layer_name: str) -> None:
    neutralise_formulas(_plain_dtypes(df)).to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\r\n")


def _write_xlsx(df: pd.DataFrame, path: Path, layer_name: str) -> None:
    plain = neutralise_formulas(_plain_dtypes(df))
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(title=(layer_name or "layer")[:31])
    ws.append([str(c) for c in plain.columns])
    columns = [plain[c].to_numpy(dtype=object) for c in plain.columns]
    for values in zip(*columns, strict=True):
        ws.append([_xlsx_cell(v) for v in values])
    wb.save(path)


def _xlsx_cell(value: object) -> object:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


_WRITERS: dict[str, Callable[[pd.DataFrame, Path, str], None]] = {
    ".gpkg": _write_gpkg,
    ".geojson": _write_geojson,
    ".shp": _write_shp,
    ".csv": _write_csv,
    ".xlsx": _write_xlsx,
}


def convert_datum_file(
    source: str | Path,
    target: str | Path,
    *,
    src: str,
    dst: str,
    lon_column: str | None = None,
    lat_column: str | None = None,
) -> int:
    """Convert the coordinates of a CSV, XLSX or GeoJSON file between datums; return the rows written.

    CSV/XLSX keep every column and replace the longitude/latitude values (found by ``lon_column`` /
    ``lat_column`` or by the known headers 经度/纬度, lon/lat, lng …); GeoJSON converts every vertex
    of every geometry. Empty coordinates stay empty.

    Raises
    ------
    ValueError
        If the extension is unsupported or the coordinate columns cannot be found.
    """
    source, target = Path(source), Path(target)
    suffix = source.suffix.lower()
    if suffix in (".geojson", ".json"):
        gdf = gpd.read_file(source)
        converted = gdf.set_geometry(convert_geometries(gdf.geometry.to_numpy(), src, dst), crs=gdf.crs)
        converted.to_file(target, driver="GeoJSON")
        return len(converted)
    readers = {
        ".csv": lambda p: pd.read_csv(p, dtype=str, encoding="utf-8-sig"),
        ".xlsx": lambda p: pd.read_excel(p, dtype=str, engine="calamine"),
    }
    if suffix not in readers or target.suffix.lower() not in readers:
        msg = f"Datum conversion reads and writes .csv, .xlsx or .geojson; got {source.name!r} → {target.name!r}."
        raise ValueError(msg)
    df = readers[suffix](source)
    lon_column = lon_column or _find_column(df, schema.LON, "--lon-col")
    lat_column = lat_column or _find_column(df, schema.LAT, "--lat-col")
    for column in (lon_column, lat_column):
        if column not in df.columns:
            msg = f"Column {column!r} is not in {source.name!r}; columns: {list(df.columns)!r}."
            raise ValueError(msg)
    lon, lat = convert(pd.to_numeric(df[lon_column]).to_numpy(), pd.to_numeric(df[lat_column]).to_numpy(), src, dst)
    df[lon_column], df[lat_column] = np.round(lon, 7), np.round(lat, 7)
    if target.suffix.lower() == ".csv":
        neutralise_formulas(df).to_csv(target, index=False, encoding="utf-8-sig")
    else:
        neutralise_formulas(df).to_excel(target, index=False)
    return len(df)


def _find_column(df: pd.DataFrame, canonical: str, option: str) -> str:
    matches = [c for c in df.columns if schema.canonical_column(c) == canonical]
    if len(matches) != 1:
        msg = f"Cannot tell which column holds `{canonical}` (found {matches!r}); name it with {option}."
        raise ValueError(msg)
    return matches[0]
