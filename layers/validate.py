"""Validate an imported layer table: map headers, check every rule, collect every problem at once.

`validate_layer` never stops at the first bad cell. It returns a `ValidationResult` holding every
`Problem` (row as the spreadsheet shows it, id, column, display-safe value, rule, fix) and the clean
rows in canonical columns, with coordinates converted to WGS-84 and the recorded datum kept in
``datum``. ``result.raise_for_problems()`` raises one `ValidationError` whose message is the report:
every problem counted, the first `SHOWN_PROBLEMS` of each column and rule listed and the rest summed
up in one line with their rows (`group_problems`; the command line and the import pages group the
same way, and `ValidationResult.problems` keeps them all). Personal values (household name, ID,
certificate and phone numbers) only ever appear masked in problems and messages (DOMAIN.md §7).

All checks are vectorised with pandas/numpy; points are tested against the prepared district
boundary with ``shapely.contains_xy``. Python loops run only over the problems found.

Coordinates: the datum of the coordinates comes from a ``datum`` column (坐标系), else from the
`datum` argument (``--datum`` on the command line), else from a ``source_datum`` column (files
exported by `layers.io.write_layer`/the store: their coordinates are already WGS-84). A ``datum``
argument also fills blank cells of a ``datum`` column; a cell that contradicts it is a problem.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd
import shapely

from geo.datums import convert
from geo.errors import DatumError
from layers import schema
from layers.errors import ValidationError
from layers.idcard import check_certificate_numbers, check_id_numbers, mask_name, mask_number

if TYPE_CHECKING:
    import geopandas as gpd
    import numpy.typing as npt

logger = logging.getLogger(__name__)

# --- rule names (Problem.rule) -------------------------------------------------------------------
MISSING_COLUMN = "missing_column"
REQUIRED = "required"
BAD_TYPE = "bad_type"
UNKNOWN_CODE = "unknown_code"
COORDINATES = "coordinates"
DATUM_MISSING = "datum_missing"
DATUM_UNKNOWN = "datum_unknown"
DATUM_CONFLICT = "datum_conflict"
OUTSIDE_DISTRICT = "outside_district"
UNKNOWN_TOWN = "unknown_town"
UNKNOWN_VILLAGE = "unknown_village"
VILLAGE_NOT_IN_TOWN = "village_not_in_town"
ID_NUMBER = "id_number"
CERTIFICATE_NUMBER = "certificate_number"
CERTIFICATE_ID_MISMATCH = "certificate_id_mismatch"
CATEGORY_MISMATCH = "category_mismatch"
GRADE_MISMATCH = "grade_mismatch"
PHONE = "phone"
DUPLICATE_ID = "duplicate_id"
DUPLICATE_PERSON = "duplicate_person"
UNKNOWN_STATUS = "unknown_status"
STATUS_TRANSITION = "status_transition"
TOO_LONG = "too_long"
CONTROL_CHARACTER = "control_character"
OUT_OF_RANGE = "out_of_range"
PERSON_CHANGED = "person_changed"
TOWN_CHANGED = "town_changed"
LEGAL_BASIS_CONFLICT = "legal_basis_conflict"
TOWN_NOT_ALLOWED = "town_not_allowed"

#: Rows named in a duplicate report (the count says how many more there are).
SHOWN_ROWS = 5
#: Problems of one (column, rule) shown one by one in a report; the rest are summed up in one line.
SHOWN_PROBLEMS = 10
#: Row ranges a summary names ("22–30, 45, 47–60, …"); more end in "…".
SHOWN_RANGES = 5
#: Characters of an over-long value shown in its problem.
_SHOWN_CHARACTERS = 20
#: C0 control characters and DEL, except tab, line feed and carriage return (line breaks in a cell are
#: fine): invisible in Excel, refused by PostgreSQL (NUL) and never meant.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_FIX = "holds the invisible control character U+{:04X}: delete it (retype the cell)"

_DATUM_FIX = (
    "declare the datum of the coordinates: `accessplan import LAYER FILE --datum wgs84|gcj02|bd09` "
    "(GPS/Tianditu = wgs84, Amap/Tencent = gcj02, Baidu = bd09) or add a 坐标系 column"
)
_EXCEL_NUMBER_FIX = (
    "Excel stored the number as a number and kept only 15 digits: format the column as text (文本) and re-enter it"
)
_PHONE_RE = re.compile(r"1[3-9][0-9]{9}|0[0-9]{2,3}[0-9]{7,8}|[0-9]{7,8}")
_PHONE_SEPARATORS = re.compile(r"[\s\-()（）]")
_PHONE_PREFIX = re.compile(r"^\+?86(?=1[3-9][0-9]{9}$)")
#: Largest whole number a cell may hold (2**53: every whole number up to it is exact as a float).
_MAX_WHOLE_NUMBER = 2**53
_COORD_RANGES = {schema.LON: (-180.0, 180.0), schema.LAT: (-90.0, 90.0)}


class DistrictLike(Protocol):
    """What validation needs of a district (`layers.district.District` has it)."""

    @property
    def name(self) -> str: ...  # noqa: D102

    @property
    def towns(self) -> pd.DataFrame: ...  # noqa: D102

    @property
    def villages(self) -> pd.DataFrame: ...  # noqa: D102

    @property
    def boundary(self) -> gpd.GeoDataFrame: ...  # noqa: D102


class PeopleLike(Protocol):
    """What validation needs to match households by person (`layers.store.Store` has it)."""

    def households_with_id_numbers(self, id_numbers: list[str]) -> dict[str, str]: ...  # noqa: D102

    def new_household_ids(self, id_numbers: list[str]) -> list[str]: ...  # noqa: D102


@dataclass(frozen=True)
class Problem:
    """One broken rule.

    Attributes
    ----------
    row
        Row number as the file shows it (header row + 1 for the first record); None for a problem of
        the whole file (a missing column, an undeclared datum).
    id
        The row's id as written in the file, or None.
    column
        Canonical column name, or None.
    value
        The offending value as text, masked for personal columns; None when there is no value.
    rule
        Rule name, one of this module's rule constants (e.g. ``"id_number"``).
    fix
        What the rule requires and how to fix the cell or the file.
    """

    row: int | None
    id: str | None
    column: str | None
    value: str | None
    rule: str
    fix: str

    def describe(self, headers: Mapping[str, str] | None = None) -> str:
        """Return one report line; `headers` maps canonical columns to the file's own headers."""
        where = "file" if self.row is None else f"row {self.row}"
        parts = [where]
        if self.id is not None:
            parts.append(f"id {self.id!r}")
        if self.column is not None:
            parts.append(f"column `{_column_label(self.column, headers)}`")
        if self.value is not None:
            parts.append(f"value {self.value!r}")
        return f"{', '.join(parts)}: [{self.rule}] {self.fix}"


@dataclass(frozen=True)
class ProblemSummary:
    """The problems of one column and rule beyond the first `SHOWN_PROBLEMS`, summed up: no value, no id.

    Attributes
    ----------
    column
        Canonical column name, or None.
    rule
        Rule name, as in `Problem.rule`.
    count
        Number of problems summed up.
    rows
        Their row numbers, each once, ascending.
    """

    column: str | None
    rule: str
    count: int
    rows: tuple[int, ...]

    @property
    def row_ranges(self) -> str:
        """Return `rows` as ranges, at most `SHOWN_RANGES` of them ("22–30, 45, 47–60, …")."""
        return row_ranges(self.rows)

    def describe(self, headers: Mapping[str, str] | None = None) -> str:
        """Return one report line; `headers` maps canonical columns to the file's own headers."""
        where = "" if self.column is None else f" in column `{_column_label(self.column, headers)}`"
        return (
            f"… {len(self.rows):,} more row(s) with the same problem (rule `{self.rule}`){where}: "
            f"rows {self.row_ranges}"
        )


def group_problems(problems: Iterable[Problem], *, shown: int = SHOWN_PROBLEMS) -> list[Problem | ProblemSummary]:
    """Return `problems` as a report shows them: per column and rule the first `shown`, then one summary.

    Problems keep their order; a group's `ProblemSummary` follows its last problem shown, and only a
    group of more than `shown` problems has one. Problems of the whole file (row None) are all shown.
    A report whose groups are all small is `problems` unchanged.

    Parameters
    ----------
    problems
        Problems in file order (`ValidationResult.problems`).
    shown
        Problems shown one by one per column and rule; at least 1.

    Returns
    -------
    list
        `Problem` and `ProblemSummary` items, in the order to show them.
    """
    if shown < 1:
        msg = f"`shown` must be at least 1 (a summary follows the last problem shown); got {shown!r}."
        raise ValueError(msg)
    problems = list(problems)
    groups: dict[tuple[str | None, str], list[Problem]] = {}
    for p in problems:
        if p.row is not None:
            groups.setdefault((p.column, p.rule), []).append(p)
    out: list[Problem | ProblemSummary] = []
    seen: dict[tuple[str | None, str], int] = {}
    for p in problems:
        if p.row is None:
            out.append(p)
            continue
        key = (p.column, p.rule)
        k = seen[key] = seen.get(key, 0) + 1
        if k <= shown:
            out.append(p)
        if k == shown and len(groups[key]) > shown:
            rest = groups[key][shown:]
            rows = tuple(sorted({q.row for q in rest if q.row is not None}))
            out.append(ProblemSummary(column=p.column, rule=p.rule, count=len(rest), rows=rows))
    return out


def row_ranges(rows: Iterable[int], *, limit: int = SHOWN_RANGES) -> str:
    """Return row numbers as ranges, "22–30, 45, 47–60", the first `limit` of them, then "…" when cut.

    Parameters
    ----------
    rows
        Row numbers, in any order; repeats count once.
    limit
        Ranges named at most.

    Returns
    -------
    str
        Ascending ranges joined by ", "; a range of one row is the row alone.
    """
    ranges: list[list[int]] = []
    for row in sorted(set(rows)):
        if ranges and row == ranges[-1][1] + 1:
            ranges[-1][1] = row
        else:
            ranges.append([row, row])
    text = [str(a) if a == b else f"{a}–{b}" for a, b in ranges[:limit]]
    return ", ".join(text + (["…"] if len(ranges) > limit else []))


def _column_label(column: str, headers: Mapping[str, str] | None) -> str:
    header = (headers or {}).get(column)
    return f"{header} ({column})" if header and header != column else column


@dataclass(frozen=True)
class ValidationResult:
    """Outcome of `validate_layer`.

    Attributes
    ----------
    layer
        Layer name.
    frame
        Rows without problems in canonical columns (``schema.LayerSpec.column_names``; ``version``
        only when the file has it), indexed by the file's row numbers (index ``row``). ``lon``/``lat``
        are WGS-84; ``datum`` is the datum each row was recorded in. Empty when a problem concerns
        the whole file. Dtypes: text ``string``, integers and codes ``Int64``, floats ``float64``,
        booleans ``boolean``, dates ISO ``YYYY-MM-DD`` text.
    problems
        Every problem found, file-level first, then by row.
    headers
        Canonical column → the file's header it was read from.
    ignored_columns
        Headers of the file that are not columns of this layer (not imported).
    n_rows
        Number of data rows in the table.
    new_ids, updated_ids
        Ids of problem-free rows absent from / present in `existing`.
    corrections
        Row numbers marked as corrections (更正=是): they may change a stored household's 身份证号 or town.
    inferred_villages
        Row numbers whose blank 村（社区） was inferred from the point (``village_inferred`` is True).
    matched_by_person
        True when the file had no id column and households were matched by 身份证号.
    """

    layer: str
    frame: pd.DataFrame
    problems: tuple[Problem, ...]
    headers: dict[str, str]
    ignored_columns: tuple[str, ...]
    n_rows: int
    new_ids: tuple[str, ...]
    updated_ids: tuple[str, ...]
    corrections: tuple[int, ...] = ()
    inferred_villages: tuple[int, ...] = ()
    matched_by_person: bool = False

    @property
    def ok(self) -> bool:
        """True when there is no problem."""
        return not self.problems

    @property
    def n_problem_rows(self) -> int:
        """Number of rows with at least one problem."""
        return len({p.row for p in self.problems if p.row is not None})

    @property
    def n_file_problems(self) -> int:
        """Number of problems of the whole file (row None)."""
        return sum(p.row is None for p in self.problems)

    def grouped_problems(self) -> list[Problem | ProblemSummary]:
        """Return the problems as reports show them (`group_problems`): a few per column and rule, then a summary."""
        return group_problems(self.problems)

    def report(self) -> str:
        """Return the report: a count header of every problem, then one line per problem or summary."""
        head = (
            f"{len(self.problems)} problem(s) in layer `{self.layer}`: {self.n_problem_rows} of {self.n_rows} "
            f"row(s) affected, {self.n_file_problems} about the whole file. Nothing was imported."
        )
        return "\n".join([head, *(f"  {p.describe(self.headers)}" for p in self.grouped_problems())])

    def raise_for_problems(self) -> None:
        """Raise `ValidationError` with the report (`report`) if there is any problem."""
        if self.problems:
            msg = self.report()
            raise ValidationError(msg)

    def records(self) -> list[dict[str, object]]:
        """Return the clean rows as JSON-safe dicts (None for missing values, Python scalars)."""
        columns = [str(c) for c in self.frame.columns]
        values = [_column_objects(self.frame.iloc[:, j]) for j in range(len(columns))]
        return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


def validate_layer(
    layer: str,
    table: pd.DataFrame,
    *,
    district: DistrictLike,
    datum: str | None = None,
    existing: Mapping[str, str] | None = None,
    today: date | None = None,
    people: PeopleLike | None = None,
    blank_clears: bool = False,
    legal_basis: str | None = None,
) -> ValidationResult:
    """Validate a raw table of one layer against its schema, the district and the stored rows.

    Parameters
    ----------
    layer
        One of ``schema.ALL_LAYERS``.
    table
        Raw table, e.g. from `layers.io.read_table`: any known header (Chinese or English, see
        ``schema.HEADER_ALIASES``); cells as text, numbers or dates. Row numbers are taken from the
        index when it is named ``row``, else the first row counts as row 2 (header on row 1).
    district
        The district (towns with ``town_code``/``name``, villages with ``village_code``/``name``/
        ``town_code``, boundary in EPSG:4326). Town and village cells may hold names or codes.
    datum
        Datum of the coordinates for the whole file (``wgs84``, ``gcj02``, ``bd09`` or a label such as
        ``GCJ-02``/``高德``), for files without a 坐标系 column; fills blank cells of such a column.
    existing
        Current status of every stored row of this layer, by id (``Store.statuses(layer)``). A row
        whose id is present is an update: only its status change is checked against the workflow.
    today
        Latest valid birth date in ID numbers; the current date when None.
    people
        Matches households by person: a household file without an id column (序号 is a row counter,
        never an id) gets the id of the stored household with the row's 身份证号 (blind index), or a new
        id (`Store.new_household_ids`). None: such a file is refused for its missing id column.
    blank_clears
        False (the default): a blank cell of a row that updates a stored row keeps the stored value, so
        its required columns may be blank. True: blank cells clear stored values (required ones cannot).
    legal_basis
        PIPL basis (``statutory_duty`` or ``consent``, or a label such as 法定职责) for every household
        row of a file without a 处理依据 column; fills blank cells of such a column.

    Returns
    -------
    ValidationResult
        The clean rows and every problem; call ``raise_for_problems()`` to refuse a bad import.

    Raises
    ------
    ValueError
        If `layer` is unknown.
    geo.errors.DatumError
        If `datum` is not a known datum name or label.
    """
    spec = schema.layer_spec(layer)
    datum_arg = _datum_argument(datum)
    basis_arg = _legal_basis_argument(legal_basis)
    ctx = _Context(spec, table, existing or {}, today=today or date.today(), blank_clears=blank_clears)
    ctx.check_columns(people=people, legal_basis=basis_arg)
    ctx.check_text()
    ctx.check_ids(people)
    ctx.check_places(district)
    ctx.check_coordinates(datum_arg, district)
    ctx.infer_villages(district)
    ctx.check_status()
    ctx.check_attributes(basis_arg)
    if spec.name == schema.HOUSEHOLD:
        ctx.check_personal_numbers()
    return ctx.result()


# --- implementation ------------------------------------------------------------------------------


class _Context:
    """Working state of one validation: canonical columns as positional Series, and problems."""

    def __init__(
        self,
        spec: schema.LayerSpec,
        table: pd.DataFrame,
        existing: Mapping[str, str],
        *,
        today: date,
        blank_clears: bool,
    ) -> None:
        self.spec = spec
        self.existing = existing
        self.today = today
        self.blank_clears = blank_clears
        self.matched_by_person = False
        self.corrections: tuple[int, ...] = ()
        self.inferred: tuple[int, ...] = ()
        self.n = len(table)
        if table.index.name == "row":
            self.rows = np.asarray(table.index, dtype=np.int64)
        else:
            self.rows = np.arange(2, self.n + 2, dtype=np.int64)
        self.problems: list[Problem] = []
        self.bad = np.zeros(self.n, dtype=bool)
        self.out: dict[str, object] = {}
        self.raw, self.headers, self.ignored = _map_headers(spec, table)
        self._cells: dict[str, _Cells] = {}
        id_cells = self.cells(schema.ID)
        self.ids = id_cells.text
        #: Rows whose blank cells keep the stored values (updates, unless blanks clear): set by `check_ids`.
        self.keep = np.zeros(self.n, dtype=bool)
        self._id_checked: tuple[pd.Series, pd.Series] | None = None
        #: Rows whose 村（社区） cell is blank (`check_places`), and those filled from the point (`infer_villages`).
        self._village_blank = np.zeros(self.n, dtype=bool)
        self._inferred_mask = np.zeros(self.n, dtype=bool)
        # The id as problems show it: control characters escaped, an over-long id cut short.
        shown = [
            t if t is None or len(t) <= schema.ID_MAX_LENGTH else t[:_SHOWN_CHARACTERS] + "…"
            for t in id_cells.printable()
        ]
        self._id_values = np.array(shown, dtype=object)[id_cells.codes]

    # -- problems --
    def add(
        self,
        mask: npt.NDArray[np.bool_],
        column: str | None,
        values: pd.Series | None,
        rule: str,
        fix: str | pd.Series,
    ) -> None:
        """Record a problem for every row where `mask` is True."""
        positions = np.flatnonzero(mask)
        if positions.size == 0:
            return
        self.bad[positions] = True
        shown = self._display(column, values, positions)
        fixes = fix.to_numpy(dtype=object)[positions] if isinstance(fix, pd.Series) else None
        fix_text = fix if isinstance(fix, str) else ""
        for k, pos in enumerate(positions):
            self.problems.append(
                Problem(
                    row=int(self.rows[pos]),
                    id=None if pd.isna(self._id_values[pos]) else str(self._id_values[pos]),
                    column=column,
                    value=shown[k],
                    rule=rule,
                    fix=str(fixes[k]) if fixes is not None else fix_text,
                )
            )

    def add_file(self, column: str | None, rule: str, fix: str) -> None:
        """Record a problem of the whole file."""
        self.problems.append(Problem(None, None, column, None, rule, fix))

    def _display(self, column: str | None, values: pd.Series | None, positions: np.ndarray) -> list[str | None]:
        if values is None:
            return [None] * len(positions)
        picked = values.iloc[positions].astype(object)
        masker = None
        if column in self.spec.personal:
            masker = mask_name if column == schema.NAME else mask_number
        out: list[str | None] = []
        for v in picked:
            if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
                out.append(None)
            else:
                out.append(masker(v) if masker else str(v))
        return out

    def raw_or_empty(self, column: str) -> pd.Series:
        return self.raw[column] if column in self.raw else pd.Series([None] * self.n, dtype=object)

    def cells(self, column: str) -> _Cells:
        """Return the raw column factorized (once per validation; every cell missing when there is no such column)."""
        if column not in self._cells:
            self._cells[column] = _Cells(self.raw_or_empty(column))
        return self._cells[column]

    # -- checks --
    def check_columns(self, *, people: PeopleLike | None, legal_basis: str | None) -> None:
        present = set(self.raw)
        household = self.spec.name == schema.HOUSEHOLD
        derivable = {
            schema.ID: household and people is not None and schema.ID_NUMBER in present,
            schema.TOWN_CODE: schema.VILLAGE_CODE in present,
            schema.VILLAGE_CODE: household,  # inferred from the point (`infer_villages`)
            schema.DATUM: True,  # handled by the datum rules
            schema.DISABILITY_CATEGORY: schema.CERTIFICATE_NUMBER in present,
            schema.DISABILITY_GRADE: schema.CERTIFICATE_NUMBER in present,
            schema.LEGAL_BASIS: legal_basis is not None,
        }
        for col in self.spec.required:
            if col in present or derivable.get(col, False):
                continue
            examples = "/".join(a for a in schema.HEADER_ALIASES[col][:4])
            label = self.spec.column(col).label_zh
            fix = f"文件没有“{label}”列：请加一列，表头写 {label}（{examples}）"
            if col == schema.ID and household:
                fix += "；或加“身份证号”列，按身份证号匹配已有的户（序号只是行号，不能当编号）"
            if col == schema.LEGAL_BASIS:
                fix += "；或为整个文件指定 --legal-basis statutory_duty|consent（网页：处理依据下拉框）"
            self.add_file(col, MISSING_COLUMN, f"{fix} (the file has no `{col}` column)")

    def check_text(self) -> None:
        """Refuse text cells holding control characters (NUL and the like), in every imported column."""
        for column in self.raw:
            cells = self.cells(column)
            found = cells.control_characters()
            if found is None:
                continue
            fixes = [None if code is None else _CONTROL_FIX.format(code) for code in found]
            mask = np.not_equal(found, None)[cells.codes]
            shown = pd.Series(pd.array(cells.printable()[cells.codes], dtype="string"))
            self.add(mask, column, shown, CONTROL_CHARACTER, pd.Series(np.array(fixes, dtype=object)[cells.codes]))

    def check_ids(self, people: PeopleLike | None = None) -> None:
        ids = self.ids
        if schema.ID in self.raw:
            self.add(~self.cells(schema.ID).present, schema.ID, None, REQUIRED, "every row needs an id (编号)")
        too_long = (ids.str.len() > schema.ID_MAX_LENGTH).fillna(False).to_numpy(dtype=bool)
        if too_long.any():
            self.add(
                too_long,
                schema.ID,
                ids.str.slice(0, _SHOWN_CHARACTERS) + "…",
                TOO_LONG,
                f"an id (编号) may have at most {schema.ID_MAX_LENGTH} characters: shorten it",
            )
        dup, where = _duplicates(ids, self.rows)
        if dup.any():
            fix = ids.map({v: f"ids must be unique in a file; {v!r} appears on {w}" for v, w in where.items()})
            self.add(dup, schema.ID, ids, DUPLICATE_ID, fix)
        if schema.ID not in self.raw and people is not None and schema.ID_NUMBER in self.raw:
            ids = self._ids_by_person(people)
        self.out[schema.ID] = ids
        update = ids.isin(list(self.existing)).fillna(False).to_numpy(dtype=bool) if self.existing else self.keep
        self.keep = update & (not self.blank_clears)
        if schema.CORRECTION in self.raw:
            cells = self.cells(schema.CORRECTION)
            text = cells.text
            flag = cells.lookup(schema.BOOL_LABELS, dtype="boolean")
            self.add(
                cells.present & flag.isna().to_numpy(),
                schema.CORRECTION,
                text,
                BAD_TYPE,
                "更正列只能填 是 或 否（或留空）(correction must be yes or no)",
            )
            self.corrections = tuple(int(r) for r in self.rows[flag.fillna(False).to_numpy(dtype=bool)])

    def _ids_by_person(self, people: PeopleLike) -> pd.Series:
        """Return the ids of a household file without an id column: the stored household of each person, or new.

        Rows whose 身份证号 is missing or invalid keep no id (their number is a problem of its own).
        """
        self.matched_by_person = True
        numbers = self._id_numbers()[0]
        objects = _objects(numbers)
        valid = [n for n in objects if n is not None]
        owners = people.households_with_id_numbers(valid)
        unknown = [n for n in dict.fromkeys(valid) if n not in owners]
        owners.update(zip(unknown, people.new_household_ids(unknown), strict=True))
        ids = pd.Series(pd.array([None if n is None else owners[n] for n in objects], dtype="string"))
        self.ids = ids
        self._id_values = ids.to_numpy(dtype=object, na_value=None)
        logger.info("Layer %r: %d rows matched by 身份证号 (no id column)", self.spec.name, len(valid))
        return ids

    def _id_numbers(self) -> tuple[pd.Series, pd.Series]:
        """Return the normalised 身份证号 of each row (NA when missing or invalid) and why each invalid one is."""
        if self._id_checked is None:
            text = self.cells(schema.ID_NUMBER).text
            self._id_checked = check_id_numbers(text, today=self.today)
        return self._id_checked

    def required(self, blank: pd.Series | npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        """Return the blank cells that break a required column (rows whose blanks keep stored values are fine)."""
        mask = blank.to_numpy(dtype=bool) if isinstance(blank, pd.Series) else blank
        return mask & ~self.keep

    def check_places(self, district: DistrictLike) -> None:
        towns = district.towns
        villages = district.villages
        town_codes = towns[schema.TOWN_CODE].astype(str)
        town_lookup = _place_lookup(town_codes, towns[schema.NAME], suffixes=("街道", "镇", "乡"))
        v_codes = villages[schema.VILLAGE_CODE].astype(str)
        v_towns = villages[schema.TOWN_CODE].astype(str)
        v_names = villages[schema.NAME].astype(str).map(schema.normalise_label)
        village_town = dict(zip(v_codes, v_towns, strict=True))
        district_name = schema.normalise_label(district.name)
        town_names = dict(zip(town_codes, towns[schema.NAME].astype(str).map(schema.normalise_label), strict=True))

        town_cells = self.cells(schema.TOWN_CODE)
        town_text = town_cells.text
        # a name as the clerk wrote it (璧山区来凤街道, 来凤街道办事处) when it is not one as it stands
        towns_found = [
            found if found is not None or key is None
            else next(filter(None, map(town_lookup.get, _bare_places(key, [district_name], _TOWN_OFFICES))), None)
            for found, key in zip(town_cells.found(town_lookup), town_cells.found(None), strict=True)
        ]  # fmt: skip
        unknown_town = town_cells.present & np.equal(np.array(towns_found, dtype=object), None)[town_cells.codes]
        examples = ", ".join(towns[schema.NAME].astype(str).head(3))
        self.add(
            unknown_town,
            schema.TOWN_CODE,
            town_text,
            UNKNOWN_TOWN,
            f"not a town of this district: write its name (e.g. {examples}) or its 9-digit code "
            f"(e.g. {town_codes.iloc[0]})",
        )

        village_cells = self.cells(schema.VILLAGE_CODE)
        village_text = village_cells.text
        village_codes = set(v_codes)
        pair_lookup = dict(zip(v_towns + "|" + v_names, v_codes, strict=True))
        name_counts = v_names.value_counts().to_dict()
        unique_names = dict(zip(v_names, v_codes, strict=True))
        unique_names = {k: c for k, c in unique_names.items() if name_counts[k] == 1}
        # Each distinct (town, village) pair of cells is resolved once (15 towns and 216 villages in a
        # 20,000-row ledger): the village by code, else by the town and its name, else by a name that is
        # unique in the district; then the village's own town, which fills a blank town cell.
        keys = village_cells.found(None)
        pair_of_row, pairs = _pairs(town_cells, village_cells)
        code_of, own_of, town_of, ambiguous_of, wrong_of = [], [], [], [], []
        for t, v in pairs:
            town_code, key = towns_found[t], keys[v]
            code = key if key in village_codes else pair_lookup.get(f"{town_code or ''}|{key or ''}")
            if code is None and key is not None:
                code = unique_names.get(key)
            if code is None and key is not None:  # 璧山区来凤街道鹿鸣社区, 鹿鸣社区居委会, 石院村村民委员会
                # a town written in the cell is the village's town (the row's, when it has one, must agree)
                named_town = next((c for c, name in town_names.items() if name in key), None)
                in_town = town_code or named_town
                prefixes = [district_name, *([town_names[in_town]] if in_town else [])]
                for bare in _bare_places(key, prefixes, _VILLAGE_OFFICES):
                    code = pair_lookup.get(f"{in_town}|{bare}") if in_town else unique_names.get(bare)
                    if code is not None or (in_town is None and name_counts.get(bare, 0) > 1):
                        key = bare
                        break
            own = None if code is None else village_town[code]
            code_of.append(code)
            own_of.append(own)
            town_of.append(own if town_code is None and town_cells.texts[t] is None else town_code)
            ambiguous_of.append(name_counts.get(key, 0) > 1)
            wrong_of.append(town_code is not None and own is not None and town_code != own)
        village = pd.Series(pd.array(np.array(code_of, dtype=object)[pair_of_row], dtype="string"))
        unknown_village = village_cells.present & np.equal(np.array(code_of, dtype=object), None)[pair_of_row]
        if unknown_village.any():
            fix = np.where(
                np.array(ambiguous_of, dtype=bool)[pair_of_row],
                "this name is used in several towns: give the town (镇街) or the 12-digit village code",
                "not a village/community of this district (or not of the row's town): check the name or "
                "write the 12-digit code",
            )
            self.add(unknown_village, schema.VILLAGE_CODE, village_text, UNKNOWN_VILLAGE, pd.Series(fix))
        wrong_town = np.array(wrong_of, dtype=bool)[pair_of_row]
        if wrong_town.any():
            fix = np.array([f"this village belongs to town {t}, not to the row's town; fix either" for t in own_of])
            self.add(wrong_town, schema.VILLAGE_CODE, village_text, VILLAGE_NOT_IN_TOWN, pd.Series(fix[pair_of_row]))
        town = pd.Series(pd.array(np.array(town_of, dtype=object)[pair_of_row], dtype="string"))
        if schema.TOWN_CODE in self.raw or schema.VILLAGE_CODE in self.raw:
            self.add(
                self.required(~town_cells.present & ~village_cells.present),
                schema.TOWN_CODE,
                None,
                REQUIRED,
                "every row needs its town (镇街 name or 9-digit code) or a village that identifies it",
            )
        if schema.VILLAGE_CODE in self.spec.required and schema.VILLAGE_CODE in self.raw and not self.inferable:
            self.add(
                ~village_cells.present,
                schema.VILLAGE_CODE,
                None,
                REQUIRED,
                "every row needs its village/community (村（社区）name or 12-digit code)",
            )
        self.out[schema.TOWN_CODE] = town
        self.out[schema.VILLAGE_CODE] = village
        self._village_blank = ~village_cells.present

    @property
    def inferable(self) -> bool:
        """True when a blank 村（社区） is inferred from the point (households, where it is required)."""
        return self.spec.name == schema.HOUSEHOLD

    def infer_villages(self, district: DistrictLike) -> None:
        """Fill a blank 村（社区） of a located row with the nearest village of the row's own town.

        Rows whose blanks keep stored values are left blank (the stored village stays). The rows filled
        are marked in ``village_inferred`` and listed in ``ValidationResult.inferred_villages``.
        """
        if not self.inferable:
            return
        village = self.out[schema.VILLAGE_CODE]
        town = self.out[schema.TOWN_CODE]
        lon, lat = np.asarray(self.out[schema.LON], dtype=float), np.asarray(self.out[schema.LAT], dtype=float)
        cell_blank = self._village_blank & ~self.keep  # an unknown village is a problem of its own, not inferred
        blank = cell_blank & town.notna().to_numpy() & ~np.isnan(lon) & ~np.isnan(lat)
        inferred = np.zeros(self.n, dtype=bool)
        villages = district.villages
        if blank.any() and {schema.LON, schema.LAT} <= set(villages.columns):
            v_town = villages[schema.TOWN_CODE].astype(str).to_numpy()
            v_code = villages[schema.VILLAGE_CODE].astype(str).to_numpy()
            v_lon = villages[schema.LON].to_numpy(dtype=float)
            v_lat = villages[schema.LAT].to_numpy(dtype=float)
            filled = village.astype(object).to_numpy().copy()
            towns = town.to_numpy(dtype=object, na_value=None)  # an unknown town is NA: compare None, not NA
            for code in pd.unique(towns[blank]):
                rows = np.flatnonzero(blank & (towns == code))
                own = np.flatnonzero(v_town == code)
                if own.size == 0:
                    continue
                scale = np.cos(np.radians(lat[rows]))[:, None]  # degrees of longitude shrink with latitude
                d2 = ((lon[rows, None] - v_lon[own]) * scale) ** 2 + (lat[rows, None] - v_lat[own]) ** 2
                filled[rows] = v_code[own[np.argmin(d2, axis=1)]]
                inferred[rows] = True
            self.out[schema.VILLAGE_CODE] = pd.Series(pd.array(filled, dtype="string"))
        still = cell_blank & ~inferred
        self.add(
            still,
            schema.VILLAGE_CODE,
            None,
            REQUIRED,
            "村（社区）为空，且无法由坐标推断（镇街没有村社区表或坐标无效）：请填写村（社区）名称或 12 位代码 "
            "(every row needs its village/community; it could not be inferred from the point)",
        )
        self.inferred = tuple(int(r) for r in self.rows[inferred])
        self._inferred_mask = inferred

    def check_coordinates(self, datum_arg: str | None, district: DistrictLike) -> None:
        conv, recorded = self._datums(datum_arg)
        coords, raw_numbers = {}, {}
        for col in (schema.LON, schema.LAT):
            raw = self.raw_or_empty(col)
            number, present = _coordinates(self.cells(col), col)
            lo, hi = _COORD_RANGES[col]
            label = "经度 (longitude, e.g. 106.227)" if col == schema.LON else "纬度 (latitude, e.g. 29.591)"
            example = "106.2275 或 106°13′39″" if col == schema.LON else "29.5912 或 29°35′28″"
            self.add(~present, col, None, COORDINATES, f"缺少{label[:2]}：请填写度数，如 {example} (missing {label})")
            bad = present & ~((number >= lo) & (number <= hi))
            self.add(
                bad, col, raw, COORDINATES,
                f"不是有效的{label[:2]}：请填写十进制度数或度分秒，如 {example} (not a valid {label}: enter decimal "
                "degrees or degrees, minutes and seconds)",
            )  # fmt: skip
            coords[col] = np.where((number >= lo) & (number <= hi), number, np.nan)
            raw_numbers[col] = number
        lon, lat = coords[schema.LON], coords[schema.LAT]
        swapped = (np.abs(raw_numbers[schema.LON]) <= 90) & (np.abs(raw_numbers[schema.LAT]) > 90)  # NaN → False
        if swapped.any():
            self.add(swapped, schema.LON, None, COORDINATES, "经度 and 纬度 look swapped: exchange the two columns")
        wlon, wlat = np.full(self.n, np.nan), np.full(self.n, np.nan)
        if conv is not None:
            for name in schema.DATUMS:
                rows = (conv == name).fillna(False).to_numpy(dtype=bool) & ~np.isnan(lon) & ~np.isnan(lat)
                if rows.any():
                    wlon[rows], wlat[rows] = convert(lon[rows], lat[rows], name, schema.WGS84_DATUM)
            self._check_inside(wlon, wlat, lon, lat, conv, district)
        self.out[schema.LON] = wlon
        self.out[schema.LAT] = wlat
        self.out[schema.DATUM] = recorded

    def _datums(self, datum_arg: str | None) -> tuple[pd.Series | None, pd.Series]:
        """Return (datum of the coordinates as given, datum recorded) per row; record problems."""
        if schema.DATUM in self.raw:
            cells = self.cells(schema.DATUM)
            text = cells.text
            value = cells.lookup(schema.DATUM_LABELS)
            unknown = cells.present & value.isna().to_numpy()
            self.add(
                unknown,
                schema.DATUM,
                text,
                DATUM_UNKNOWN,
                "unknown 坐标系: write wgs84, gcj02 or bd09 (or WGS-84, 高德, 百度)",
            )
            if datum_arg is not None:
                conflict = (value.notna() & (value != datum_arg)).fillna(False).to_numpy(dtype=bool)
                self.add(
                    conflict,
                    schema.DATUM,
                    text,
                    DATUM_CONFLICT,
                    f"the 坐标系 cell contradicts --datum {datum_arg}: fix the cell or drop --datum",
                )
                value = value.fillna(datum_arg)
            else:
                self.add((text.isna()).to_numpy(), schema.DATUM, None, DATUM_MISSING, _DATUM_FIX)
            return value, value
        if datum_arg is not None:
            value = pd.Series([datum_arg] * self.n, dtype="string")
            return value, value
        if schema.SOURCE_DATUM in self.raw:
            cells = self.cells(schema.SOURCE_DATUM)
            text = cells.text
            recorded = cells.lookup(schema.DATUM_LABELS)
            self.add(
                cells.present & recorded.isna().to_numpy(),
                schema.DATUM,
                text,
                DATUM_UNKNOWN,
                "unknown source_datum: write wgs84, gcj02 or bd09",
            )
            recorded = recorded.where(text.notna(), schema.WGS84_DATUM)
            return pd.Series([schema.WGS84_DATUM] * self.n, dtype="string"), recorded
        self.add_file(
            schema.DATUM, DATUM_MISSING, f"the coordinates have no datum; untagged data are refused: {_DATUM_FIX}"
        )
        return None, pd.Series(pd.NA, index=range(self.n), dtype="string")

    def _check_inside(
        self,
        wlon: np.ndarray,
        wlat: np.ndarray,
        lon: np.ndarray,
        lat: np.ndarray,
        conv: pd.Series,
        district: DistrictLike,
    ) -> None:
        outline = shapely.union_all(np.asarray(district.boundary.geometry.values))
        shapely.prepare(outline)
        located = ~np.isnan(wlon) & ~np.isnan(wlat)
        inside = np.zeros(self.n, dtype=bool)
        inside[located] = shapely.contains_xy(outline, wlon[located], wlat[located])
        outside = located & ~inside
        if not outside.any():
            return
        # Suggest the datum under which the point would fall inside (a mislabelled GCJ-02 point is
        # the usual cause near Bishan: ~470 m off).
        hint = np.full(self.n, "", dtype=object)
        declared = conv.to_numpy(dtype=object)
        for name in schema.DATUMS:
            pos = np.flatnonzero(outside)
            if pos.size == 0:
                break
            alt_lon, alt_lat = convert(lon[pos], lat[pos], name, schema.WGS84_DATUM)
            fits = shapely.contains_xy(outline, alt_lon, alt_lat) & (declared[pos] != name)
            hint[pos[fits & (hint[pos] == "")]] = f"; it lies inside if read as {name}: check 坐标系"
        fix = pd.Series(
            [f"the point (converted to WGS-84) lies outside the district boundary{h}" for h in hint],
            dtype=object,
        )
        shown = pd.Series([f"{x:.6f}, {y:.6f}" for x, y in zip(lon, lat, strict=True)], dtype=object)
        self.add(outside, schema.LON, shown, OUTSIDE_DISTRICT, fix)

    def check_status(self) -> None:
        wf = self.spec.workflow
        cells = self.cells(schema.STATUS)
        text = cells.text
        status = cells.lookup(wf.labels)
        if schema.STATUS in self.raw:
            self.add(self.required(~cells.present), schema.STATUS, None, REQUIRED, "every row needs a status (状态)")
        labels = ", ".join(wf.statuses)
        self.add(
            cells.present & status.isna().to_numpy(),
            schema.STATUS,
            text,
            UNKNOWN_STATUS,
            f"unknown status: use one of {labels} (Chinese labels: see layers/schema.py)",
        )
        if self.existing:
            before = self.ids.map(self.existing).astype("string")
            allowed = {f"{a}>{b}" for a, b in wf.transitions} | {f"{s}>{s}" for s in wf.statuses}
            pair = before + ">" + status
            illegal = (before.notna() & status.notna() & ~pair.isin(allowed)).fillna(False).to_numpy(dtype=bool)
            fix = before.map(
                lambda b: (
                    f"the stored status is {b!r}; from there the workflow allows "
                    f"{list(wf.next_statuses(b)) or 'no further change'}"
                    if not pd.isna(b)
                    else ""
                )
            )
            self.add(illegal, schema.STATUS, status, STATUS_TRANSITION, fix)
        self.out[schema.STATUS] = status

    def check_attributes(self, legal_basis: str | None = None) -> None:
        handled = {
            schema.ID,
            schema.TOWN_CODE,
            schema.VILLAGE_CODE,
            schema.LON,
            schema.LAT,
            schema.DATUM,
            schema.STATUS,
            schema.ID_NUMBER,
            schema.CERTIFICATE_NUMBER,
            schema.PHONE,
        }
        for col in self.spec.columns:
            if col.name in handled:
                continue
            if col.name == schema.VERSION and col.name not in self.raw:
                continue
            if col.name == schema.VILLAGE_INFERRED and self.inferable:
                inferred = pd.Series(self._inferred_mask)
                given = self.out[schema.VILLAGE_CODE].notna().reset_index(drop=True) & ~inferred
                marks = pd.Series(pd.array(np.where(inferred, True, False), dtype="boolean"))
                # a row that keeps its stored village keeps its mark too; a village written in the file is not inferred
                self.out[col.name] = marks.where(~pd.Series(self.keep) | given)
                continue
            cells = self.cells(col.name)
            if col.name == schema.LEGAL_BASIS and legal_basis is not None:
                cells = self._legal_basis(cells, legal_basis)
            text = cells.text
            derivable = col.name in (schema.DISABILITY_CATEGORY, schema.DISABILITY_GRADE)
            if (
                col.required
                and (col.name in self.raw or legal_basis is not None and col.name == schema.LEGAL_BASIS)
                and not derivable
            ):
                fix = f"every row needs {col.label_zh or col.name}"
                self.add(self.required(~cells.present), col.name, None, REQUIRED, fix)
            value, bad, fix = _parse(col, cells)
            self.add(bad, col.name, text, BAD_TYPE if col.dtype != "code" else UNKNOWN_CODE, fix)
            if col.minimum is not None or col.maximum is not None:
                numbers = pd.to_numeric(value, errors="coerce").astype("Float64").to_numpy(dtype=float, na_value=np.nan)
                low = -np.inf if col.minimum is None else col.minimum
                high = np.inf if col.maximum is None else col.maximum
                outside = ~np.isnan(numbers) & ((numbers < low) | (numbers > high))
                if outside.any():
                    fixes = pd.Series([col.out_of_range(float(v)) or "" for v in numbers], dtype=object)
                    self.add(outside, col.name, text, OUT_OF_RANGE, fixes)
                    value = value.where(pd.Series(~outside))
            self.out[col.name] = value

    def _legal_basis(self, cells: _Cells, legal_basis: str) -> _Cells:
        """Fill blank 处理依据 cells with the file-wide basis; a cell naming another basis is a problem."""
        text = cells.text
        if schema.LEGAL_BASIS in self.raw:
            given = cells.lookup(schema.LEGAL_BASIS_LABELS)
            conflict = (given.notna() & (given != legal_basis)).fillna(False).to_numpy(dtype=bool)
            self.add(
                conflict,
                schema.LEGAL_BASIS,
                text,
                LEGAL_BASIS_CONFLICT,
                f"处理依据与整个文件指定的 --legal-basis {legal_basis} 不一致：改正该格或去掉 --legal-basis "
                f"(the cell contradicts --legal-basis {legal_basis})",
            )
        return _Cells(text.fillna(legal_basis))

    def check_personal_numbers(self) -> None:
        today = self.today
        id_cells = self.cells(schema.ID_NUMBER)
        id_text = id_cells.text
        id_norm, id_reason = self._id_numbers()
        if schema.ID_NUMBER in self.raw:
            missing = self.required(~id_cells.present)
            self.add(missing, schema.ID_NUMBER, None, REQUIRED, "every household needs 身份证号")
        self._add_invalid_numbers(schema.ID_NUMBER, id_reason, ID_NUMBER)
        dup, where = _duplicates(id_norm, self.rows)
        if dup.any():
            fix = id_norm.map({v: f"the same person appears on {w}: keep one row per person" for v, w in where.items()})
            self.add(dup, schema.ID_NUMBER, id_text, DUPLICATE_PERSON, fix)

        cert_cells = self.cells(schema.CERTIFICATE_NUMBER)
        cert_text = cert_cells.text
        cert_norm, cert_reason = check_certificate_numbers(cert_text, today=today)
        if schema.CERTIFICATE_NUMBER in self.raw:
            self.add(
                self.required(~cert_cells.present),
                schema.CERTIFICATE_NUMBER,
                None,
                REQUIRED,
                "every household needs 残疾人证号",
            )
        self._add_invalid_numbers(schema.CERTIFICATE_NUMBER, cert_reason, CERTIFICATE_NUMBER)

        # Valid numbers (the others are None) are ASCII digits (X as the 18th character of the ID part) of
        # their exact width: compared, and their category and grade read, as character codes.
        cert_objects, id_objects = _objects(cert_norm), _objects(id_norm)
        has_cert = np.not_equal(cert_objects, None)
        cert_digits = np.zeros((len(cert_objects), 20), dtype=np.int64)
        if has_cert.any():
            cert_digits[has_cert] = _digit_codes(cert_objects[has_cert], 20)
        both = has_cert & np.not_equal(id_objects, None)
        mismatch = np.zeros(len(cert_objects), dtype=bool)
        if both.any():
            mismatch[both] = (cert_digits[both, :18] != _digit_codes(id_objects[both], 18)).any(axis=1)
        self.add(
            mismatch,
            schema.CERTIFICATE_NUMBER,
            cert_text,
            CERTIFICATE_ID_MISMATCH,
            "the first 18 characters of 残疾人证号 must equal the row's 身份证号",
        )

        for col, pos, rule, label in (
            (schema.DISABILITY_CATEGORY, 18, CATEGORY_MISMATCH, "类别 (19th digit)"),
            (schema.DISABILITY_GRADE, 19, GRADE_MISMATCH, "等级 (20th digit)"),
        ):
            from_cert = pd.Series(pd.arrays.IntegerArray(cert_digits[:, pos], ~has_cert))
            given = self.out[col]
            differ = (given.notna() & from_cert.notna() & (given != from_cert)).fillna(False).to_numpy(dtype=bool)
            self.add(differ, col, given, rule, f"disagrees with the 残疾人证号's {label}: correct one of the two")
            self.out[col] = given.fillna(from_cert)

        phone_text = self.cells(schema.PHONE).text
        phone = np.array(
            [
                None
                if v is None
                else v  # plain digits without the 86 prefix: nothing to remove (the usual cell)
                if v.isdigit() and v.isascii() and not v.startswith("86")
                else _PHONE_PREFIX.sub("", _PHONE_SEPARATORS.sub("", v))
                for v in _objects(phone_text)
            ],
            dtype=object,
        )
        valid = np.fromiter((v is not None and _PHONE_RE.fullmatch(v) is not None for v in phone), bool, len(phone))
        self.add(
            phone_text.notna().to_numpy() & ~valid,
            schema.PHONE,
            phone_text,
            PHONE,
            "not a phone number: 11-digit mobile (1xxxxxxxxxx) or landline with area code (023xxxxxxxx)",
        )
        self.out[schema.ID_NUMBER] = id_norm
        self.out[schema.CERTIFICATE_NUMBER] = cert_norm
        self.out[schema.PHONE] = pd.Series(pd.array(np.where(valid, phone, None), dtype="string"))

    def _add_invalid_numbers(self, column: str, reason: pd.Series, rule: str) -> None:
        """Record the invalid ID or certificate numbers (`reason` not NA); cells Excel stored as numbers get a hint."""
        invalid = reason.notna()
        if not invalid.any():
            return
        text = self.cells(column).text
        numeric = _numeric_cells(self.raw_or_empty(column), text, invalid)
        fix = reason.astype(object).where(~numeric, reason.astype(object) + "; " + _EXCEL_NUMBER_FIX)
        self.add(invalid.to_numpy(), column, text, rule, fix)

    # -- result --
    def result(self) -> ValidationResult:
        columns = [c for c in self.spec.column_names if c in self.out]
        frame = pd.DataFrame(
            {c: _typed(self.out[c], _FIXED.get(c, _DTYPES[self.spec.column(c).dtype])) for c in columns},
            index=pd.Index(self.rows, name="row"),
        )
        file_level = any(p.row is None for p in self.problems)
        clean = frame.iloc[0:0] if file_level else frame[~self.bad]
        ids = clean[schema.ID].astype(str)
        in_store = ids.isin(list(self.existing)) if self.existing else pd.Series(False, index=ids.index)
        id_values = ids.to_numpy(dtype=object)  # tuples of Python str (iterating the Series boxes each id)
        in_store_mask = in_store.to_numpy(dtype=bool)
        clean_rows = set(clean.index)
        problems = sorted(self.problems, key=lambda p: (p.row is not None, p.row or 0))
        if problems:
            logger.info("Layer %r: %d problem(s) in %d row(s)", self.spec.name, len(problems), self.n)
        return ValidationResult(
            layer=self.spec.name,
            frame=clean,
            problems=tuple(problems),
            headers=self.headers,
            ignored_columns=tuple(self.ignored),
            n_rows=self.n,
            new_ids=tuple(id_values[~in_store_mask]),
            updated_ids=tuple(id_values[in_store_mask]),
            corrections=self.corrections,
            inferred_villages=tuple(r for r in self.inferred if r in clean_rows),
            matched_by_person=self.matched_by_person,
        )


_DTYPES = {"str": "string", "int": "Int64", "float": "float64", "bool": "boolean", "date": "string", "code": "string"}
_FIXED = {schema.DISABILITY_CATEGORY: "Int64", schema.DISABILITY_GRADE: "Int64"}

_CODE_LABELS = {
    schema.BUILD_TYPE: schema.BUILD_TYPE_LABELS,
    schema.LEGAL_BASIS: schema.LEGAL_BASIS_LABELS,
    schema.DISABILITY_CATEGORY: schema.CATEGORY_LABELS,
    schema.DISABILITY_GRADE: schema.GRADE_LABELS,
}
_CODE_FIXES = {
    schema.BUILD_TYPE: "use existing, rebuild or new (现有, 改建, 新建)",
    schema.LEGAL_BASIS: "use statutory_duty or consent (法定职责, 单独同意): record the PIPL basis",
    schema.DISABILITY_CATEGORY: "use 1-7 or 视力, 听力, 言语, 肢体, 智力, 精神, 多重",
    schema.DISABILITY_GRADE: "use 1-4 or 一级, 二级, 三级, 四级",
}


def _parse(col: schema.ColumnSpec, cells: _Cells) -> tuple[pd.Series, np.ndarray, str]:
    """Return (typed values, mask of unparseable cells, fix) for one attribute column."""
    text, present = cells.text, cells.present
    if col.dtype == "str":
        return text, np.zeros(len(text), dtype=bool), ""
    if col.dtype in ("int", "float"):
        number = pd.to_numeric(text, errors="coerce").astype("float64")
        ok = number.notna().to_numpy()
        if col.dtype == "int":
            whole = (number.round() == number) & (number.abs() <= _MAX_WHOLE_NUMBER)
            ok = ok & whole.fillna(False).to_numpy(dtype=bool)
            value = number.where(pd.Series(ok, index=number.index)).astype("Int64")
            return value, present & ~ok, f"must be a whole number (at most {_MAX_WHOLE_NUMBER:,})"
        return number.where(pd.Series(ok, index=number.index)), present & ~ok, "must be a number"
    if col.dtype == "bool":
        value = cells.lookup(schema.BOOL_LABELS, dtype="boolean")
        return value, present & value.isna().to_numpy(), "must be yes or no (是/否, 有/无, true/false, 1/0)"
    if col.dtype == "date":
        cleaned = (
            text.str.replace(r"^(\d{4})(\d{2})(\d{2})$", r"\1-\2-\3", regex=True)  # 20240630
            .str.replace(r"[年月/.]", "-", regex=True)
            .str.replace("日", "", regex=False)
            .str.split(" ")
            .str[0]
        )
        parsed = pd.to_datetime(cleaned, format="%Y-%m-%d", errors="coerce")
        value = parsed.dt.strftime("%Y-%m-%d").astype("string")
        return value, present & parsed.isna().to_numpy(), "must be a date such as 2024-06-30 (2024年6月30日, 20240630)"
    labels = _CODE_LABELS[col.name]
    if col.name in _FIXED:  # numbers converted once per distinct value
        found = pd.Series(pd.array(np.array(cells.found(labels), dtype=object), dtype="string"))
        value = cells.take(pd.to_numeric(found, errors="coerce").astype("Int64").array)
    else:
        value = cells.lookup(labels)
    return value, present & value.isna().to_numpy(), _CODE_FIXES[col.name]


def _map_headers(spec: schema.LayerSpec, table: pd.DataFrame) -> tuple[dict[str, pd.Series], dict[str, str], list[str]]:
    """Return canonical column → raw Series (positional index), canonical → header, ignored headers."""
    wanted = set(spec.column_names) | {schema.SOURCE_DATUM, schema.CORRECTION}
    if schema.LON in wanted:
        wanted.add(schema.LON_LAT)
    best: dict[str, tuple[int, int, str]] = {}
    ignored: list[str] = []
    for j, header in enumerate(table.columns):
        found = schema.alias_priority(header)
        if found is None or found[0] not in wanted:
            ignored.append(str(header))
            continue
        canonical, priority = found
        if canonical in best and best[canonical][0] <= priority:
            ignored.append(str(header))
            continue
        if canonical in best:
            ignored.append(best[canonical][2])
        best[canonical] = (priority, j, str(header))
    raw = {c: pd.Series(table.iloc[:, j].to_numpy(dtype=object), dtype=object) for c, (_, j, _) in best.items()}
    headers = {c: h for c, (_, _, h) in best.items()}
    if schema.LON_LAT in raw:
        header = headers.pop(schema.LON_LAT)
        pairs = raw.pop(schema.LON_LAT)
        if schema.LON in raw or schema.LAT in raw:
            ignored.append(header)  # 经度 and 纬度 columns of their own come first
        else:
            raw[schema.LON], raw[schema.LAT] = _split_coordinates(pairs)
            headers[schema.LON] = headers[schema.LAT] = header
    if ignored:
        logger.info("Layer %r: ignored column(s) %r", spec.name, ignored)
    return raw, headers, ignored


_PAIR_SEPARATOR_RE = re.compile(r"\s*[,，;；、/]\s*|\s+")


def _split_coordinates(pairs: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Return the 经度 and 纬度 cells of a column holding both (``106.2275,29.5912``, ``29°35′N 106°13′E``).

    The two are in either order: a hemisphere (E, 北纬) or a number over 90 (no latitude is) tells which
    is the 经度; without either the 经度 is taken to come first, as map pickers copy it. A cell that is
    not two parts gives its text as the 经度 and no 纬度, so both are reported on its row.
    """
    cells = _Cells(pairs)
    split: list[tuple[object, object]] = []
    for text in cells.texts:
        parts = None if text is None else _PAIR_SEPARATOR_RE.split(text)
        if parts is None or len(parts) != 2:
            split.append((text, None))
            continue
        first, second = parts
        as_lon = [_degrees(p, schema.LON) for p in parts]
        as_lat = [_degrees(p, schema.LAT) for p in parts]
        latitude_first = (np.isnan(as_lon[0]) and not np.isnan(as_lat[0]) and not np.isnan(as_lon[1])) or (
            abs(as_lon[0]) <= 90 < abs(as_lon[1])  # NaN compares False
        )
        split.append((second, first) if latitude_first else (first, second))
    lon = [split[code][0] for code in cells.codes.tolist()]
    lat = [split[code][1] for code in cells.codes.tolist()]
    return pd.Series(lon, dtype=object), pd.Series(lat, dtype=object)


class _Cells:
    """The cells of one column, factorized once: distinct values, their text, and each row's code.

    Ledger columns repeat a lot (15 towns in 20,000 rows), and several checks read the same column
    (its text, its labels, its control characters). Each works on the distinct values only and takes
    the answer back per row through ``codes``, so a column is hashed once per validation, not once per
    check.

    Attributes
    ----------
    codes
        Position of each row's value in ``uniques``; -1 for a missing cell (None, NaN, NA).
    uniques
        The distinct values as the cells hold them.
    texts
        Stripped text of each distinct value (None for blanks; integral floats lose their ``.0``),
        then None for the missing cells: ``texts[codes]`` is the text of each row.
    present
        True for the rows whose text is not blank.
    """

    def __init__(self, values: pd.Series | np.ndarray) -> None:
        self.codes, self.uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)

    @functools.cached_property
    def texts(self) -> np.ndarray:
        """Stripped text of each distinct value, then None (computed on first use: numbers may not need it)."""
        return np.array(
            [*((v.strip() or None) if v.__class__ is str else _cell_text(v) for v in self.uniques), None],
            dtype=object,
        )

    @functools.cached_property
    def present(self) -> npt.NDArray[np.bool_]:
        """True for the rows whose text is not blank."""
        return np.not_equal(self.texts, None)[self.codes]

    @functools.cached_property
    def text(self) -> pd.Series:
        """The text of each row (``string``): cells stripped, blanks NA, integral floats without their ``.0``."""
        return pd.Series(pd.array(self.texts[self.codes], dtype="string"))

    def found(self, table: Mapping[str, object] | None) -> list[object]:
        """Return `table[normalise_label(text)]` per ``texts`` entry (the normalised text when `table` is None).

        Texts not in `table` and blanks give None.
        """
        keys = [None if t is None else schema.normalise_label(t) for t in self.texts]
        return keys if table is None else [None if k is None else table.get(k) for k in keys]

    def lookup(self, table: Mapping[str, object] | None, *, dtype: str = "string") -> pd.Series:
        """Return `table[normalise_label(text)]` per row as a Series of `dtype` (see `found`); NA for None."""
        return self.take(pd.array(np.array(self.found(table), dtype=object), dtype=dtype))

    def take(self, values: pd.api.extensions.ExtensionArray) -> pd.Series:
        """Return a Series of one value per ``texts`` entry taken per row (the last one for missing cells)."""
        return pd.Series(values.take(self.codes))

    def control_characters(self) -> list[int | None] | None:
        """Return the code point of the first control character of each distinct value (None where none).

        One entry per ``texts`` entry; None instead of the list when no cell holds one (the usual file).
        """
        try:
            clean = not _holds_control_character(self.uniques)
        except TypeError:  # numbers among the values
            clean = not _holds_control_character([v for v in self.uniques if v.__class__ is str])
        if clean:
            return None
        return [
            ord(m.group()) if v.__class__ is str and (m := _CONTROL_RE.search(v)) is not None else None
            for v in [*self.uniques, None]
        ]

    def printable(self) -> np.ndarray:
        """Return ``texts`` with each control character written as a backslash escape (for messages and pages)."""
        if not _holds_control_character(self.texts[np.not_equal(self.texts, None)]):
            return self.texts
        return np.array([None if t is None else _CONTROL_RE.sub(_escape, t) for t in self.texts], dtype=object)


def _holds_control_character(strings: Iterable[str]) -> bool:
    """Return whether any of `strings` holds a `_CONTROL_RE` character.

    One pass over the strings joined (the pattern matches single characters); a text that is all
    printable (control characters are not) needs no search at all.
    """
    joined = "".join(strings)
    return not joined.isprintable() and _CONTROL_RE.search(joined) is not None


def _pairs(first: _Cells, second: _Cells) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Return each row's position among the distinct pairs of two columns, and those pairs.

    A pair is the positions of the two cells' values in each column's ``texts`` (missing cells: the
    last, None).
    """
    width = len(second.texts)
    combined = (first.codes % len(first.texts)).astype(np.int64) * width + second.codes % width
    pair_of_row, distinct = pd.factorize(combined)
    return pair_of_row, [(int(p // width), int(p % width)) for p in distinct]


def _cell_text(value: object) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return None
        return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))
    if isinstance(value, np.generic):
        value = value.item()
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value).strip() or None


def _objects(text: pd.Series) -> np.ndarray:
    """Return a ``string`` Series as an object array with None for missing values."""
    return text.to_numpy(dtype=object, na_value=None)


def _numbers(cells: _Cells) -> tuple[np.ndarray, np.ndarray]:
    """Return cells as float64 (NaN where missing or not a number) and the mask of non-blank cells.

    Works on the distinct values: numeric ones are converted in C; only the others (text, blanks)
    are read as text (`_cell_text`) and parsed.
    """
    number = np.asarray(pd.to_numeric(cells.uniques, errors="coerce"), dtype=np.float64)
    present = ~np.isnan(number)
    retry = ~present
    if retry.any():
        retry_text = pd.Series(pd.array([_cell_text(v) for v in cells.uniques[retry]], dtype="string"))
        present[retry] = retry_text.notna().to_numpy()
        number[retry] = pd.to_numeric(retry_text, errors="coerce").astype("float64").to_numpy()
    # missing cells (code -1) take the last entry: not a number, not present
    return np.append(number, np.nan)[cells.codes], np.append(present, False)[cells.codes]


#: A coordinate written in degrees, minutes and seconds, or with its hemisphere (NFKC-normalised text):
#: ``106°13′39.5″``, ``106度13分39秒``, ``29°35.47'N``, ``东经106.2275``, ``106.2275E``.
_DEGREES_RE = re.compile(
    r"(?P<before>[EWNS]|东经|西经|北纬|南纬)?\s*(?P<deg>\d+(?:\.\d+)?)\s*"
    r"(?:[°度]\s*(?:(?P<min>\d+(?:\.\d+)?)\s*['′’分]\s*(?:(?P<sec>\d+(?:\.\d+)?)\s*(?:\"|″|”|''|′′|秒)\s*)?)?)?"
    r"(?P<after>[EWNS]|东经|西经|北纬|南纬)?",
    re.IGNORECASE,
)
#: Hemisphere marks: the coordinate they belong to and their sign.
_HEMISPHERES = {
    "e": (schema.LON, 1), "东经": (schema.LON, 1), "w": (schema.LON, -1), "西经": (schema.LON, -1),
    "n": (schema.LAT, 1), "北纬": (schema.LAT, 1), "s": (schema.LAT, -1), "南纬": (schema.LAT, -1),
}  # fmt: skip


def _degrees(text: str | None, column: str) -> float:
    """Return a coordinate written as degrees, minutes and seconds or with a hemisphere, in decimal degrees.

    Full-width digits and marks are read as their ASCII forms. NaN when the text is none of these
    forms, when minutes or seconds are 60 or more (or follow a fraction), or when the hemisphere
    belongs to the other coordinate (``N`` on a 经度).
    """
    if text is None:
        return np.nan
    # º and ˚ (read as degrees) first: NFKC would make them an "o" and a combining ring
    found = _DEGREES_RE.fullmatch(unicodedata.normalize("NFKC", text.replace("º", "°").replace("˚", "°")).strip())
    if found is None or (found["before"] and found["after"]):
        return np.nan
    sign = 1
    mark = (found["before"] or found["after"] or "").lower()
    if mark:
        belongs, sign = _HEMISPHERES[mark]
        if belongs != column:
            return np.nan
    parts = [found["deg"], found["min"], found["sec"]]
    given = [float(p) for p in parts if p is not None]
    if any(float(p) != int(float(p)) for p in parts[: len(given) - 1] if p is not None):
        return np.nan  # only the last part may have a fraction
    if any(v >= 60 for v in given[1:]):
        return np.nan
    return sign * sum(v / 60**k for k, v in enumerate(given))


def _coordinates(cells: _Cells, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Return `_numbers` of a 经度 or 纬度 column, texts in degrees, minutes and seconds read too (`_degrees`)."""
    number, present = _numbers(cells)
    retry = present & np.isnan(number)
    if retry.any():
        parsed = {code: _degrees(cells.texts[code], column) for code in np.unique(cells.codes[retry]).tolist()}
        number[retry] = [parsed[code] for code in cells.codes[retry].tolist()]
    return number, present


def _digit_codes(text: np.ndarray, width: int) -> np.ndarray:
    """Return the (len(text), width) matrix of ``ord(c) - ord("0")`` of texts of ``width`` ASCII characters."""
    return np.asarray(text.astype(f"U{width}")).view(np.uint32).reshape(-1, width).astype(np.int64) - ord("0")


def _numeric_cells(raw: pd.Series, text: pd.Series, among: pd.Series) -> pd.Series:
    """Return True where a cell was a spreadsheet number (int/float) or scientific notation.

    Only the cells where ``among`` is True are looked at (the rows with a problem); others are False.
    """
    out = np.zeros(len(text), dtype=bool)
    where = np.flatnonzero(among.to_numpy(dtype=bool, na_value=False))
    if where.size:
        kinds = raw.reset_index(drop=True).iloc[where].map(type)
        numeric = kinds.isin((int, float, np.int64, np.float64)).to_numpy(dtype=bool)
        sci = text.iloc[where].str.fullmatch(r"\d(\.\d+)?[eE]\+?\d+").fillna(False).to_numpy(dtype=bool)
        out[where] = numeric | sci
    return pd.Series(out)


#: How ledgers name a town's or a village's office after its name, and the name each ending stands
#: for: 来凤街道办事处, 八塘镇人民政府, 来凤街办; 鹿鸣社区居委会, 石院村村民委员会, 石院村委会.
_TOWN_OFFICES = (("人民政府", ""), ("办事处", ""), ("街办", "街道"))
_VILLAGE_OFFICES = (("居民委员会", ""), ("居委会", ""), ("村民委员会", "村"), ("村委会", "村"))


def _bare_places(key: str, prefixes: Iterable[str], offices: tuple[tuple[str, str], ...]) -> list[str]:
    """Return the names a place cell may stand for without the places written before it and its office after it.

    ``key`` is a normalised cell (`schema.normalise_label`). Each of ``prefixes`` it starts with, in
    order, is dropped (the district, with a city or province before it: 重庆市璧山区; then the town);
    then an office ending: the name without it, and with the word it stands for (石院村委会: 石院村).
    """
    for prefix in prefixes:
        at = key.find(prefix) if prefix else -1
        if at >= 0 and (at == 0 or key[:at].endswith(("市", "省"))) and len(key) > at + len(prefix):
            key = key[at + len(prefix) :]
    names = [key]
    for ending, word in offices:
        if key.endswith(ending) and len(key) > len(ending):
            base = key[: -len(ending)]
            names += [base, base + word] if word and not base.endswith(word) else [base]
            break
    return names


def _place_lookup(codes: pd.Series, names: pd.Series, *, suffixes: tuple[str, ...]) -> dict[str, str]:
    """Map normalised codes, names and unique short names (without `suffixes`) to codes."""
    lookup = {schema.normalise_label(c): c for c in codes}
    short: dict[str, list[str]] = {}
    for code, name in zip(codes, names.astype(str), strict=True):
        key = schema.normalise_label(name)
        lookup[key] = code
        for suffix in suffixes:
            if key.endswith(suffix) and len(key) > len(suffix):
                short.setdefault(key[: -len(suffix)], []).append(code)
    for key, found in short.items():
        if len(found) == 1:
            lookup.setdefault(key, found[0])
    return lookup


def _legal_basis_argument(legal_basis: str | None) -> str | None:
    if legal_basis is None:
        return None
    value = schema.LEGAL_BASIS_LABELS.get(schema.normalise_label(legal_basis))
    if value is None:
        msg = (
            f"处理依据只能是 statutory_duty（法定职责）或 consent（单独同意）；收到 {legal_basis!r} "
            f"(`legal_basis` must be one of {list(schema.LEGAL_BASES)!r})."
        )
        raise ValueError(msg)
    return value


def _datum_argument(datum: str | None) -> str | None:
    if datum is None:
        return None
    value = schema.DATUM_LABELS.get(schema.normalise_label(datum))
    if value is None:
        msg = f"`datum` must be one of {list(schema.DATUMS)!r} (or a label such as 'GCJ-02'); got {datum!r}."
        raise DatumError(msg)
    return value


def _typed(values: object, dtype: str) -> object:
    """Return a column of `ValidationResult.frame` as an array of `dtype` (a Series of that dtype as it is)."""
    if isinstance(values, pd.Series) and values.dtype == dtype:
        return values.to_numpy() if isinstance(values.dtype, np.dtype) else values.array
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=object) if not isinstance(values.dtype, np.dtype) else values.to_numpy()
    typed = pd.Series(values).astype(dtype)
    return typed.to_numpy() if isinstance(typed.dtype, np.dtype) else typed.array


def _column_objects(values: pd.Series) -> list[object]:
    """Return a column as Python scalars with None for missing values (built column-wise, for speed)."""
    out = values.astype(object).to_numpy(dtype=object, na_value=None).tolist()
    if values.dtype.kind == "f":
        return [None if v != v else v for v in out]  # NaN
    if values.dtype == object:
        return [None if v is None or pd.isna(v) else _python_scalar(v) for v in out]
    return out


def _python_scalar(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _duplicates(keys: pd.Series, rows: np.ndarray) -> tuple[npt.NDArray[np.bool_], dict[object, str]]:
    """Return the rows whose key is on other rows too, and per such key where it is.

    The description names the first `SHOWN_ROWS` rows and the count ("3 rows: 2, 5, 9", "10,000 rows:
    2, 3, 4, 5, 6 …"): one string per key, so a column filled down with one value costs O(rows).
    """
    dup = (keys.duplicated(keep=False) & keys.notna()).to_numpy(dtype=bool)
    if not dup.any():
        return dup, {}
    frame = pd.DataFrame({"key": keys[dup].to_numpy(dtype=object), "row": rows[dup]})
    counts = frame.groupby("key", sort=False).size()
    shown = frame[frame.groupby("key", sort=False).cumcount().to_numpy() < SHOWN_ROWS]
    firsts = shown.groupby("key", sort=False)["row"].agg(lambda r: ", ".join(map(str, r)))
    where = {key: f"{n:,} rows: {firsts[key]}{' …' if n > SHOWN_ROWS else ''}" for key, n in counts.items()}
    return dup, where


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"
