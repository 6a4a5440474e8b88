from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from layers.idcard import (
    REASON_CERT_CATEGORY,
    REASON_CERT_FORMAT,
    REASON_CERT_GRADE,
    REASON_ID_BIRTH_DATE,
    REASON_ID_CHECK,
    REASON_ID_FORMAT,
    check_certificate_number,
    check_certificate_numbers,
    check_id_number,
    check_id_numbers,
    id_check_char,
    mask_name,
    mask_number,
)

TODAY = date(2024, 6, 30)
# 5*7+0*9+0*10+2*5+2*8+7*4+1*2+9*1+4*6+4*3+0*7+1*9+1*10+1*5+6*8+8*4+0*2 = 240; 240 % 11 = 9 -> "3"
VALID_ID = "500227194401116803"
# Sum for 11010519491231002 = 167; 167 % 11 = 2 -> 'X' (the GB 11643 example)
X_ID = "11010519491231002X"


def test_check_char_by_hand():
    assert id_check_char(VALID_ID[:17]) == "3"
    assert id_check_char(X_ID[:17]) == "X"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (VALID_ID, (VALID_ID, None)),
        (X_ID.lower(), (X_ID, None)),
        (" 5002 2719 4401 1168 03 ", (VALID_ID, None)),
        (500227194401116803, (VALID_ID, None)),
        (VALID_ID[:-1] + "4", (None, REASON_ID_CHECK)),
        ("50022719440230680X", (None, REASON_ID_BIRTH_DATE)),  # 30 February
        ("500227202501016803", (None, REASON_ID_BIRTH_DATE)),  # after today
        ("500227189912316803", (None, REASON_ID_BIRTH_DATE)),  # before 1900
        ("50022719440111680", (None, REASON_ID_FORMAT)),
        ("5002271944011168034", (None, REASON_ID_FORMAT)),
        ("50022719440111X803", (None, REASON_ID_FORMAT)),
        (5.00227194401117e17, (None, REASON_ID_FORMAT)),
        (None, (None, "missing")),
    ],
)
def test_check_id_number(value, expected):
    assert check_id_number(value, today=TODAY) == expected


def test_leap_day_birth_date():
    first17 = "50012020000229123"
    assert check_id_number(first17 + id_check_char(first17), today=TODAY)[1] is None
    first17 = "50012019000229123"  # 1900 is not a leap year
    assert check_id_number(first17 + id_check_char(first17), today=TODAY)[1] == REASON_ID_BIRTH_DATE


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (VALID_ID + "41", (VALID_ID + "41", None)),
        (X_ID.lower() + "72", (X_ID + "72", None)),
        (VALID_ID + "81", (None, REASON_CERT_CATEGORY)),
        (VALID_ID + "01", (None, REASON_CERT_CATEGORY)),
        (VALID_ID + "45", (None, REASON_CERT_GRADE)),
        (VALID_ID + "4", (None, REASON_CERT_FORMAT)),
        (VALID_ID[:-1] + "0" + "41", (None, "ID part: " + REASON_ID_CHECK)),
    ],
)
def test_check_certificate_number(value, expected):
    assert check_certificate_number(value, today=TODAY) == expected


def test_vectorised_keeps_index_and_missing():
    values = pd.Series([VALID_ID, None, "bad"], index=[10, 11, 12], dtype=object)
    normalised, reason = check_id_numbers(values, today=TODAY)
    assert list(normalised.index) == [10, 11, 12]
    assert normalised.tolist() == [VALID_ID, pd.NA, pd.NA]
    assert reason.tolist() == [pd.NA, pd.NA, REASON_ID_FORMAT]
    normalised, reason = check_certificate_numbers(pd.Series([], dtype=object), today=TODAY)
    assert len(normalised) == 0 and len(reason) == 0


def test_reasons_never_contain_the_value():
    _, reason = check_id_numbers(pd.Series([VALID_ID[:-1] + "4", "50022719440230680X"]), today=TODAY)
    assert all("500227" not in r for r in reason)


def test_masks():
    assert mask_number(VALID_ID) == "500227********6803"
    assert mask_number(VALID_ID + "41") == "500227********0341"
    assert mask_number("13812345678") == "138****5678"
    assert mask_number("123") == "****"
    assert mask_number(None) == ""
    assert mask_name("张三丰") == "张*"
    assert mask_name(float("nan")) == ""


def test_vectorised_format_check_agrees_with_the_regular_expressions():
    from layers.idcard import _CERT_RE, _ID_RE, _formatted

    cells = [
        "500227194401116803", "50022719440111680X", "5002271944011168x3", "50022719440111680", "5002271944011168031",
        "５00227194401116803", "500227194401116803\x00", "", "50022719440111680312", "5002271944011168031X", None,
    ]  # fmt: skip
    text = np.array(cells, dtype=object)
    for width, pattern in ((18, _ID_RE), (20, _CERT_RE)):
        expected = [c is not None and pattern.fullmatch(c) is not None for c in cells]
        assert _formatted(text, width)[1].tolist() == expected
