"""Check citizen ID and disability certificate numbers, and mask personal values for display.

Rules (DOMAIN.md §6): a citizen ID number is 18 characters, 17 digits and a check character; digits
7–14 are a valid birth date (not after `today`, year 1900 or later); the check character is
``"10X98765432"[sum(d_i * w_i) % 11]`` with weights ``7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2``. A lower
case ``x`` is accepted and normalised to ``X``. The region prefix (digits 1–6) is not checked: people
move, and Bishan IDs carry both 500120 and the pre-2014 500227 (DOMAIN.md §3).

A disability certificate number (残疾人证号) is the holder's 18-character ID number followed by the
category digit (1–7) and the grade digit (1–4).

The vectorised checks (`check_id_numbers`, `check_certificate_numbers`) work on whole Series with numpy;
the scalar functions wrap them. Reasons never contain the checked value (it is personal data).
"""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd

ID_LENGTH = 18
CERTIFICATE_LENGTH = 20
ID_CHECK_WEIGHTS = np.array((7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2), dtype=np.int64)
ID_CHECK_CHARS = "10X98765432"
MIN_BIRTH_YEAR = 1900

REASON_ID_FORMAT = "must be 18 characters: 17 digits and a digit or X"
REASON_ID_BIRTH_DATE = "digits 7-14 are not a valid birth date (YYYYMMDD, 1900 to today)"
REASON_ID_CHECK = "check character (18th) does not match the first 17 digits (GB 11643)"
REASON_CERT_FORMAT = "must be 20 characters: the 18-character ID number, category digit 1-7, grade digit 1-4"
REASON_CERT_CATEGORY = "category digit (19th) must be 1-7"
REASON_CERT_GRADE = "grade digit (20th) must be 1-4"

_ZERO = ord("0")
_X_CODE = ord("X") - _ZERO
_EXPECTED_CODES = np.array([ord(c) - _ZERO for c in ID_CHECK_CHARS], dtype=np.int64)
_DAYS_IN_MONTH = np.array((31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31), dtype=np.int64)
_ID_RE = re.compile(r"[0-9]{17}[0-9X]")
_CERT_RE = re.compile(r"[0-9]{17}[0-9X][0-9]{2}")


def check_id_numbers(values: pd.Series, *, today: date | None = None) -> tuple[pd.Series, pd.Series]:
    """Check citizen ID numbers, vectorised.

    Parameters
    ----------
    values
        ID numbers as text (or integers); missing values are neither normalised nor given a reason.
    today
        Latest allowed birth date; the current date when None.

    Returns
    -------
    tuple of Series
        ``(normalised, reason)`` on the index of `values`: the normalised number where valid (else
        ``<NA>``), and the reason it is invalid where invalid (else ``<NA>``). Both are ``string``.
    """
    text = _normalised_objects(values)
    codes, fmt_ok = _formatted(text, ID_LENGTH)
    reason = np.where(_present(text) & ~fmt_ok, REASON_ID_FORMAT, None).astype(object)
    if fmt_ok.any():
        reason[fmt_ok] = _id_problems(codes[fmt_ok] - _ZERO, today=today or date.today())
    return _result(text, reason, values.index)


def check_certificate_numbers(values: pd.Series, *, today: date | None = None) -> tuple[pd.Series, pd.Series]:
    """Check disability certificate numbers (ID number + category + grade), vectorised.

    Parameters
    ----------
    values
        Certificate numbers as text; missing values are neither normalised nor given a reason.
    today
        Latest allowed birth date in the ID part; the current date when None.

    Returns
    -------
    tuple of Series
        ``(normalised, reason)`` as in `check_id_numbers`.
    """
    text = _normalised_objects(values)
    codes, fmt_ok = _formatted(text, CERTIFICATE_LENGTH)
    reason = np.where(_present(text) & ~fmt_ok, REASON_CERT_FORMAT, None).astype(object)
    if fmt_ok.any():
        digits = codes[fmt_ok] - _ZERO
        bad = _id_problems(digits[:, :ID_LENGTH], today=today or date.today(), prefix="ID part: ")
        grade = digits[:, 19]
        category = digits[:, 18]
        bad[(grade < 1) | (grade > 4)] = REASON_CERT_GRADE
        bad[(category < 1) | (category > 7)] = REASON_CERT_CATEGORY
        reason[fmt_ok] = bad
    return _result(text, reason, values.index)


def check_id_number(value: object, *, today: date | None = None) -> tuple[str | None, str | None]:
    """Return ``(normalised, None)`` for a valid citizen ID number, else ``(None, reason)``."""
    return _scalar(check_id_numbers, value, today=today)


def check_certificate_number(value: object, *, today: date | None = None) -> tuple[str | None, str | None]:
    """Return ``(normalised, None)`` for a valid certificate number, else ``(None, reason)``."""
    return _scalar(check_certificate_numbers, value, today=today)


def id_check_char(first17: str) -> str:
    """Return the check character of a citizen ID number from its first 17 digits."""
    digits = np.frombuffer(first17.encode("ascii"), dtype=np.uint8).astype(np.int64) - _ZERO
    return ID_CHECK_CHARS[int(digits @ ID_CHECK_WEIGHTS) % 11]


def mask_number(value: object) -> str:
    """Mask an ID or certificate number: first 6 + ``********`` + last 4 (DOMAIN.md §7).

    Values of 11 characters or fewer (phone numbers) keep the first 3 and last 4 around ``****``
    (``138****5678``); values of 7 or fewer become ``****``. Missing values become ``''``.
    """
    if _missing(value):
        return ""
    text = str(value).strip()
    if len(text) > 11:
        return f"{text[:6]}********{text[-4:]}"
    if len(text) > 7:
        return f"{text[:3]}****{text[-4:]}"
    return "****"


def mask_name(value: object) -> str:
    """Mask a person's name as its first character (the surname, usually) + ``*`` (张三 → 张*)."""
    if _missing(value):
        return ""
    text = str(value).strip()
    return f"{text[:1]}*" if text else ""


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _scalar(check, value: object, *, today: date | None) -> tuple[str | None, str | None]:  # noqa: ANN001
    normalised, reason = check(pd.Series([value], dtype=object), today=today)
    if pd.isna(reason.iloc[0]) and pd.isna(normalised.iloc[0]):
        return None, "missing"
    if pd.isna(reason.iloc[0]):
        return str(normalised.iloc[0]), None
    return None, str(reason.iloc[0])


def _formatted(text: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the (n, width) int64 matrix of character codes of ``text`` and where it is well formed.

    Well formed: what `_ID_RE` (``width`` 18) or `_CERT_RE` (20) fully matches, vectorised on the
    character codes (``width`` characters, ASCII digits except the 18th, which may also be ``X``).

    The codes of the well-formed rows, minus ``ord("0")``, are their digits (X → 40): the checks
    reuse the matrix the format test built instead of converting the texts again.
    """
    cells = np.where(np.equal(text, None), "", text)
    lengths = np.fromiter(map(len, cells), np.int64, len(cells))
    codes = cells.astype(f"U{width}").view(np.uint32).reshape(len(text), width).astype(np.int64)
    digit = (codes >= ord("0")) & (codes <= ord("9"))
    digit[:, ID_LENGTH - 1] |= codes[:, ID_LENGTH - 1] == ord("X")
    return codes, digit.all(axis=1) & (lengths == width)


def _normalised_objects(values: pd.Series) -> np.ndarray:
    """Return an object array of upper-case text without whitespace (``x`` → ``X``), None where missing.

    Spaces inside the number (``5001 2019 ...``) are removed. Numbers read from a spreadsheet as
    integers become their digits; floats are left as text such as ``'5.00227194401117e+17'`` so that
    the format check fails (Excel keeps only 15 significant digits of a number).
    """
    cells = values.to_numpy(dtype=object)
    if isinstance(values.dtype, pd.StringDtype):
        present = values.notna().to_numpy()
        texts = cells[present]
        joined = "".join(texts)
        if all(texts) and joined.split() == [joined]:  # the usual column: no whitespace to remove, no blank
            normalised = np.full(len(cells), None, dtype=object)
            normalised[present] = np.fromiter(map(str.upper, texts), dtype=object, count=len(texts))
            return normalised
    out = []
    for v in cells:
        if v.__class__ is str and v.isalnum():  # the usual cell: nothing to remove
            out.append(v.upper())
            continue
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            out.append(None)
            continue
        text = "".join(str(v).split()).upper()
        out.append(text or None)
    return np.array(out, dtype=object)


def _present(text: np.ndarray) -> np.ndarray:
    """Return where an object array of str and None holds a str."""
    return np.not_equal(text, None)


def _result(text: np.ndarray, reason: np.ndarray, index: pd.Index) -> tuple[pd.Series, pd.Series]:
    valid = _present(text) & np.equal(reason, None)
    normalised = np.where(valid, text, None)
    return (
        pd.Series(pd.array(normalised, dtype="string"), index=index),
        pd.Series(pd.array(reason, dtype="string"), index=index),
    )


def _id_problems(digits: np.ndarray, *, today: date, prefix: str = "") -> np.ndarray:
    """Return per row None (valid) or a reason after `prefix`, for an (n, 18) digit matrix of well-formed IDs."""
    year = digits[:, 6:10] @ np.array((1000, 100, 10, 1))
    month = digits[:, 10:12] @ np.array((10, 1))
    day = digits[:, 12:14] @ np.array((10, 1))
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_ok = (month >= 1) & (month <= 12)
    max_day = _DAYS_IN_MONTH[np.clip(month, 1, 12) - 1] + ((month == 2) & leap)
    ymd = year * 10000 + month * 100 + day
    today_ymd = today.year * 10000 + today.month * 100 + today.day
    date_ok = month_ok & (day >= 1) & (day <= max_day) & (year >= MIN_BIRTH_YEAR) & (ymd <= today_ymd)
    expected = _EXPECTED_CODES[(digits[:, :17] @ ID_CHECK_WEIGHTS) % 11]
    check_ok = expected == digits[:, 17]
    out = np.full(len(digits), None, dtype=object)
    out[~check_ok] = prefix + REASON_ID_CHECK
    out[~date_ok] = prefix + REASON_ID_BIRTH_DATE
    return out
