"""Load the district plan's targets and task tables (``data/<district>/plan/``) with validation.

Four CSV files, transcribed from the source documents (see ``data/bishan/plan/README.md``):

- ``indicators.csv``: the main indicators (专栏1) of the Bishan 14th five-year disability plan;
- ``key_projects.csv``: countable key-project targets (渝馨家园, sports sites, accessible toilets...);
- ``tasks.csv``: the plan's task allocation table (附件 重点任务分工) with lead and responsible units;
- ``huican2020_tasks.csv``: the Shapingba "惠残2020工程" task table, one row per sub-item, with month
  windows (完成时限) parsed into ``start_month``/``end_month``.

Each loader reads every cell as text, checks every row, and raises one `PlanDataError` listing every
problem by file, spreadsheet row (the header is row 1), column and value, with the fix.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from layers.errors import PlanDataError

logger = logging.getLogger(__name__)

# ---- file names --------------------------------------------------------------------------------
INDICATORS_FILE = "indicators.csv"
KEY_PROJECTS_FILE = "key_projects.csv"
TASKS_FILE = "tasks.csv"
HUICAN_TASKS_FILE = "huican2020_tasks.csv"

# ---- columns shared by several files ------------------------------------------------------------
SOURCE = "source"
TARGET_YEAR = "target_year"
TASK_NO = "task_no"
RESPONSIBLE_UNITS = "responsible_units"

# ---- indicators.csv (专栏1) ----------------------------------------------------------------------
INDICATOR_NO = "indicator_no"
NAME_ZH = "name_zh"
NAME_EN = "name_en"
UNIT = "unit"
TARGET_TEXT = "target_text"
TARGET_OPERATOR = "target_operator"
TARGET_VALUE = "target_value"
NATURE = "nature"
BASELINE_VALUE = "baseline_value"

# ---- key_projects.csv ---------------------------------------------------------------------------
PROJECT_NO = "project_no"
SECTION = "section"
ITEM_NO = "item_no"
PROJECT_ZH = "project_zh"
PROJECT_EN = "project_en"
TARGET_COUNT = "target_count"
LAYER = "layer"
BUILD_TYPE = "build_type"
QUOTE = "quote"

# ---- tasks.csv (附件 重点任务分工) ----------------------------------------------------------------
TASK_TEXT = "task_text"
LEAD_UNITS = "lead_units"

# ---- huican2020_tasks.csv (Shapingba) -----------------------------------------------------------
ITEM_NAME = "item_name"
SUB_ITEM_NO = "sub_item_no"
CONTENT = "content"
TIME_LIMIT_TEXT = "time_limit_text"
WINDOW_KIND = "window_kind"
START_MONTH = "start_month"
END_MONTH = "end_month"
YEAR = "year"

# ---- allowed values -----------------------------------------------------------------------------
NATURES = ("约束性", "预期性")
TARGET_OPERATORS = ("=", ">")
PLAN_LAYERS = ("rehab_station", "service_centre", "accessible_toilet", "sports_site", "household")
BUILD_TYPES = ("rebuild", "new")
WindowKind = Literal["months", "full_year", "recurring", "deadline", "unscheduled", "blank"]
WINDOW_KINDS: tuple[str, ...] = ("months", "full_year", "recurring", "deadline", "unscheduled", "blank")
_KINDS_WITH_MONTHS = frozenset({"months", "full_year", "recurring", "deadline"})

_UNIT_SEPARATORS = re.compile(r"[、，,]")


@dataclass(frozen=True)
class _Column:
    name: str
    kind: Literal["text", "int", "float"] = "text"
    required: bool = True
    choices: tuple[str, ...] = ()


_INDICATOR_COLUMNS = (
    _Column(INDICATOR_NO, "int"),
    _Column(NAME_ZH),
    _Column(NAME_EN),
    _Column(UNIT),
    _Column(TARGET_TEXT),
    _Column(TARGET_OPERATOR, required=False, choices=TARGET_OPERATORS),
    _Column(TARGET_VALUE, "float", required=False),
    _Column(NATURE, choices=NATURES),
    _Column(BASELINE_VALUE, "float", required=False),
    _Column(TARGET_YEAR, "int"),
    _Column(SOURCE),
)
_KEY_PROJECT_COLUMNS = (
    _Column(PROJECT_NO),
    _Column(SECTION),
    _Column(ITEM_NO, "int", required=False),
    _Column(PROJECT_ZH),
    _Column(PROJECT_EN),
    _Column(TARGET_COUNT, "int"),
    _Column(UNIT),
    _Column(LAYER, required=False, choices=PLAN_LAYERS),
    _Column(BUILD_TYPE, required=False, choices=BUILD_TYPES),
    _Column(TASK_NO, "int", required=False),
    _Column(TARGET_YEAR, "int"),
    _Column(QUOTE),
    _Column(SOURCE),
)
_TASK_COLUMNS = (
    _Column(TASK_NO, "int"),
    _Column(TASK_TEXT),
    _Column(LEAD_UNITS),
    _Column(RESPONSIBLE_UNITS, required=False),
    _Column(SOURCE),
)
_HUICAN_COLUMNS = (
    _Column(ITEM_NO, "int"),
    _Column(ITEM_NAME),
    _Column(SUB_ITEM_NO, "int", required=False),
    _Column(CONTENT),
    _Column(TIME_LIMIT_TEXT, required=False),
    _Column(WINDOW_KIND, choices=WINDOW_KINDS),
    _Column(START_MONTH, "int", required=False),
    _Column(END_MONTH, "int", required=False),
    _Column(YEAR, "int"),
    _Column(RESPONSIBLE_UNITS, required=False),
    _Column(SOURCE),
)

_COLUMNS_BY_FILE = {
    INDICATORS_FILE: _INDICATOR_COLUMNS,
    KEY_PROJECTS_FILE: _KEY_PROJECT_COLUMNS,
    TASKS_FILE: _TASK_COLUMNS,
    HUICAN_TASKS_FILE: _HUICAN_COLUMNS,
}

_RULES = {"int": "must be a whole number", "float": "must be a number"}
_FIXES = {
    "int": "write a whole number such as 3",
    "float": "write a plain number such as 90 or 96.43 (no % sign, no full-width digits)",
}
_MAX_LISTED = 25


@dataclass(frozen=True)
class MonthWindow:
    """A 完成时限 cell read as months of the document's year.

    ``start_month``/``end_month`` are 1–12, or None when the text names no month (``kind`` is
    ``"unscheduled"`` or ``"blank"``). ``"deadline"`` means "by the end of month N" with no start
    written; the start is then taken as January.
    """

    start_month: int | None
    end_month: int | None
    kind: WindowKind


_MONTH_SPAN = re.compile(r"(\d{1,2})(?:[-—–~～至、](\d{1,2}))?\s*(?:月|底)")
_FULL_YEAR_WORDS = ("全年",)
_RECURRING_WORDS = ("每季度", "每月", "每半年")


def parse_month_window(text: str) -> MonthWindow:
    """Read a 完成时限 cell such as ``"1-4月自查摸底，5-9月建设"`` as a month window.

    Rules, in order: empty → ``blank``; contains 全年 → 1–12 ``full_year``; contains 每季度/每月/每半年
    → 1–12 ``recurring``; otherwise every month number written (``"5-9月"``, ``"10月"``, ``"4、10月"``,
    ``"10底前"``) is collected and the window runs from the smallest to the largest; a single month
    followed by 底 (``"10月底前完成"``, ``"12月底前"``) with no earlier month is a ``deadline`` starting in
    January; text with no month number (``"根据市统一安排"``) is ``unscheduled``.

    Parameters
    ----------
    text
        The cell text as written in the document.

    Returns
    -------
    MonthWindow
        Months 1–12 of the document's year, or None for ``unscheduled``/``blank``.
    """
    text = text.strip()
    if not text:
        return MonthWindow(None, None, "blank")
    if any(word in text for word in _FULL_YEAR_WORDS):
        return MonthWindow(1, 12, "full_year")
    if any(word in text for word in _RECURRING_WORDS):
        return MonthWindow(1, 12, "recurring")
    months: list[int] = []
    for match in _MONTH_SPAN.finditer(text):
        months.extend(int(g) for g in match.groups() if g is not None)
    months = [m for m in months if 1 <= m <= 12]
    if not months:
        return MonthWindow(None, None, "unscheduled")
    if len(months) == 1 and "底" in text:
        return MonthWindow(1, months[0], "deadline")
    return MonthWindow(min(months), max(months), "months")


def split_units(text: str) -> list[str]:
    """Split a units cell (``"区残联、区民政局，各镇街"``) into unit names; empty text gives ``[]``."""
    return [part.strip() for part in _UNIT_SEPARATORS.split(text) if part.strip()]


def load_indicators(plan_dir: str | Path) -> pd.DataFrame:
    """Load the plan's main indicators (专栏1) from ``plan_dir/indicators.csv``.

    Parameters
    ----------
    plan_dir
        The district's plan folder (``District.plan_dir``).

    Returns
    -------
    pandas.DataFrame
        One row per indicator, in file order. Integer columns are ``Int64``, numeric ones ``Float64``
        (null where the document gives no number, e.g. a growth rate "in step with GDP").

    Raises
    ------
    PlanDataError
        If the file or a column is missing, a number does not parse, `nature` is not 约束性/预期性,
        or indicator numbers repeat.
    """
    path = Path(plan_dir) / INDICATORS_FILE
    df, problems, bad_cells = _read_checked(path, _INDICATOR_COLUMNS)
    problems += _duplicate_problems(df, INDICATOR_NO, path)
    for i, row in df.iterrows():
        if {(i, TARGET_VALUE), (i, TARGET_OPERATOR)} & bad_cells:
            continue  # already reported
        if pd.isna(row[TARGET_VALUE]) != (not row[TARGET_OPERATOR]):
            problems.append(
                _problem(
                    path,
                    i,
                    TARGET_OPERATOR,
                    row[TARGET_OPERATOR],
                    "must be set exactly when `target_value` is",
                    "write '=' (or '>' for ＞) next to a number, or leave both empty",
                )
            )
    return _finish(df, problems, path)


def load_key_projects(plan_dir: str | Path) -> pd.DataFrame:
    """Load the countable key-project targets from ``plan_dir/key_projects.csv``.

    Parameters
    ----------
    plan_dir
        The district's plan folder (``District.plan_dir``).

    Returns
    -------
    pandas.DataFrame
        One row per target (e.g. 19 rebuilt and 19 new accessible toilets are two rows), in file order.
        ``layer`` names the point layer the count concerns, or is empty when no layer tracks it.

    Raises
    ------
    PlanDataError
        If the file or a column is missing, a count is not a positive whole number, `layer` or
        `build_type` is not an allowed value, `build_type` is set off the toilet layer, or ids repeat.
    """
    path = Path(plan_dir) / KEY_PROJECTS_FILE
    df, problems, _ = _read_checked(path, _KEY_PROJECT_COLUMNS)
    problems += _duplicate_problems(df, PROJECT_NO, path)
    for i, row in df.iterrows():
        count = row[TARGET_COUNT]
        if not pd.isna(count) and count <= 0:
            problems.append(
                _problem(path, i, TARGET_COUNT, count, "must be positive", "write the count the text states")
            )
        if row[BUILD_TYPE] and row[LAYER] != "accessible_toilet":
            problems.append(
                _problem(
                    path,
                    i,
                    BUILD_TYPE,
                    row[BUILD_TYPE],
                    "applies only to `layer` 'accessible_toilet'",
                    "clear `build_type` or fix `layer`",
                )
            )
    return _finish(df, problems, path)


def load_tasks(plan_dir: str | Path) -> pd.DataFrame:
    """Load the plan's task allocation table (附件 重点任务分工) from ``plan_dir/tasks.csv``.

    Parameters
    ----------
    plan_dir
        The district's plan folder (``District.plan_dir``).

    Returns
    -------
    pandas.DataFrame
        One row per task; ``lead_units``/``responsible_units`` keep the text as written (split them
        with `split_units`). ``responsible_units`` is empty where the document leaves it empty.

    Raises
    ------
    PlanDataError
        If the file or a column is missing, a task number is not a whole number or repeats, or a task
        has no text or lead unit.
    """
    path = Path(plan_dir) / TASKS_FILE
    df, problems, _ = _read_checked(path, _TASK_COLUMNS)
    problems += _duplicate_problems(df, TASK_NO, path)
    return _finish(df, problems, path)


def load_huican_tasks(plan_dir: str | Path) -> pd.DataFrame:
    """Load the Shapingba 惠残2020 task table from ``plan_dir/huican2020_tasks.csv``.

    Parameters
    ----------
    plan_dir
        The district's plan folder (``District.plan_dir``).

    Returns
    -------
    pandas.DataFrame
        One row per sub-item; ``start_month``/``end_month`` (``Int64``, 1–12) are months of ``year``,
        null when ``window_kind`` is ``unscheduled`` or ``blank`` (see `parse_month_window`).

    Raises
    ------
    PlanDataError
        If the file or a column is missing, a number does not parse, a month is outside 1–12, a start
        month is after its end month, months are missing for a kind that needs them (or present for
        one that does not), or an (item, sub-item) pair repeats.
    """
    path = Path(plan_dir) / HUICAN_TASKS_FILE
    df, problems, _ = _read_checked(path, _HUICAN_COLUMNS)
    for i, row in df.iterrows():
        problems += _month_problems(path, i, row)
    pairs = df[[ITEM_NO, SUB_ITEM_NO]].astype(str)
    for i in pairs.index[pairs.duplicated(keep="first")]:
        value = f"{df.at[i, ITEM_NO]}.{df.at[i, SUB_ITEM_NO]}"
        problems.append(
            _problem(path, i, SUB_ITEM_NO, value, "repeats an earlier (item_no, sub_item_no)", "renumber it")
        )
    return _finish(df, problems, path)


def empty_table(file_name: str) -> pd.DataFrame:
    """Return an empty plan table with the columns (and number types) of ``file_name``.

    A district folder holds only the plan tables its district has (Bishan: the 十四五 plan; Shapingba:
    the 惠残2020 task table); an absent table reads as this empty frame.

    Raises
    ------
    PlanDataError
        If ``file_name`` is not one of the four plan files.
    """
    columns = _COLUMNS_BY_FILE.get(file_name)
    if columns is None:
        msg = f"{file_name!r} is not a plan file; plan files: {sorted(_COLUMNS_BY_FILE)!r}."
        raise PlanDataError(msg)
    types = {"int": "Int64", "float": "Float64", "text": object}
    return pd.DataFrame({c.name: pd.Series(dtype=types[c.kind]) for c in columns})


def roll_to_year(huican: pd.DataFrame, plan_year: int) -> pd.DataFrame:
    """Return a 惠残-style task table with every sub-item's month window moved into ``plan_year``.

    Windows are months of a plan year; a table written for one year is rolled forward by setting
    ``plan_year`` in the district's ``district.toml`` instead of showing its sub-items "overdue" in
    later years.
    """
    rolled = huican.copy()
    rolled[YEAR] = pd.array([plan_year] * len(rolled), dtype="Int64")
    return rolled


# ---- private workers ----------------------------------------------------------------------------


def _month_problems(path: Path, i: int, row: pd.Series) -> list[str]:
    problems = []
    months = {}
    for col in (START_MONTH, END_MONTH):
        value = row[col]
        if not pd.isna(value) and not 1 <= value <= 12:
            problems.append(_problem(path, i, col, value, "must be a month 1–12", "write a month 1–12"))
        else:
            months[col] = value
    start, end = months.get(START_MONTH), months.get(END_MONTH)
    if start is not None and end is not None and not pd.isna(start) and not pd.isna(end) and start > end:
        problems.append(
            _problem(
                path,
                i,
                START_MONTH,
                f"{start}>{end}",
                "must not be after `end_month`",
                "swap them or check `time_limit_text`",
            )
        )
    kind = row[WINDOW_KIND]
    has_months = not pd.isna(row[START_MONTH]) and not pd.isna(row[END_MONTH])
    has_any = not pd.isna(row[START_MONTH]) or not pd.isna(row[END_MONTH])
    if kind in _KINDS_WITH_MONTHS and not has_months:
        problems.append(
            _problem(
                path,
                i,
                WINDOW_KIND,
                kind,
                "needs both `start_month` and `end_month`",
                "fill both months, or use 'unscheduled'/'blank' when the text names no month",
            )
        )
    elif kind in ("unscheduled", "blank") and has_any:
        problems.append(
            _problem(
                path,
                i,
                WINDOW_KIND,
                kind,
                "must have empty `start_month` and `end_month`",
                "clear the months or use 'months'",
            )
        )
    return problems


def _read_checked(path: Path, columns: tuple[_Column, ...]) -> tuple[pd.DataFrame, list[str], set[tuple[int, str]]]:
    """Read ``path`` as text, check columns and cells; return the typed frame, problems and bad cells.

    A cell that fails its own check is returned as null (or ``""``) and listed in the bad cells.
    """
    if not path.is_file():
        msg = (
            f"Plan file {str(path)!r} is missing; copy it from data/bishan/plan/ or write it with the "
            f"columns {[c.name for c in columns]!r}."
        )
        raise PlanDataError(msg)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    missing = [c.name for c in columns if c.name not in raw.columns]
    if missing:
        msg = (
            f"{path.name}: missing column(s) {missing!r}; found {list(raw.columns)!r}. "
            f"Add them to the header row (see data/bishan/plan/README.md)."
        )
        raise PlanDataError(msg)
    df = raw.apply(lambda s: s.str.strip())
    problems: list[str] = []
    bad_cells: set[tuple[int, str]] = set()
    for col in columns:
        values = df[col.name]
        for i, value in values.items():
            if not value:
                if col.required:
                    bad_cells.add((i, col.name))
                    problems.append(_problem(path, i, col.name, value, "must not be empty", "fill it in"))
                continue
            if col.choices and value not in col.choices:
                bad_cells.add((i, col.name))
                problems.append(_problem(path, i, col.name, value, f"must be one of {list(col.choices)!r}", "use one"))
                df.at[i, col.name] = ""
            elif col.kind != "text" and not _parses(value, col.kind):
                bad_cells.add((i, col.name))
                problems.append(_problem(path, i, col.name, value, _RULES[col.kind], _FIXES[col.kind]))
        if col.kind == "int":
            df[col.name] = pd.array([_to_int(v) for v in values], dtype="Int64")
        elif col.kind == "float":
            df[col.name] = pd.array([_to_float(v) for v in values], dtype="Float64")
    return df, problems, bad_cells


def _parses(value: str, kind: str) -> bool:
    return (_to_int(value) if kind == "int" else _to_float(value)) is not None


def _to_int(value: str) -> int | None:
    return int(value) if re.fullmatch(r"-?[0-9]+", value) else None


def _to_float(value: str) -> float | None:
    return float(value) if re.fullmatch(r"-?[0-9]+(?:\.[0-9]+)?", value) else None


def _duplicate_problems(df: pd.DataFrame, col: str, path: Path) -> list[str]:
    values = df[col]
    dup = values.notna() & values.duplicated(keep="first")
    return [
        _problem(path, i, col, values[i], "repeats an earlier row", "give it its own number") for i in df.index[dup]
    ]


def _problem(path: Path, i: int, col: str, value: object, rule: str, fix: str) -> str:
    if hasattr(value, "item"):  # numpy scalar from a typed column: show it as a plain Python value
        value = value.item()
    return f"{path.name} row {i + 2}, column `{col}`: {rule}; got {value!r}. Fix: {fix}."


def _finish(df: pd.DataFrame, problems: list[str], path: Path) -> pd.DataFrame:
    if problems:
        listed = problems[:_MAX_LISTED]
        more = f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
        head = f"{len(problems)} problem(s) in {str(path)!r} (rows numbered as in a spreadsheet, header = 1):"
        msg = head + "\n  " + "\n  ".join(listed) + more
        raise PlanDataError(msg)
    logger.info("Loaded %d rows from %r", len(df), str(path))
    return df
