"""Tests for webmap.timefmt: stored UTC times shown in Beijing time (UTC+8)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pandas as pd
import pytest

from webmap.timefmt import format_local_date, format_local_time

# 16:30 UTC on 1 January is 00:30 the next day in Beijing (UTC+8, no daylight saving).
BEIJING = "2026-01-02 00:30:00"


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 1, 1, 16, 30, tzinfo=UTC),
        datetime(2026, 1, 1, 16, 30),  # naive: taken as UTC, as SQLite returns stored times
        pd.Timestamp("2026-01-01 16:30", tz="UTC"),
        pd.Timestamp("2026-01-01 16:30"),
        "2026-01-01T16:30:00Z",
        "2026-01-01T16:30:00+00:00",
        "2026-01-01 16:30:00",
        datetime(2026, 1, 1, 11, 30, tzinfo=timezone(timedelta(hours=-5))),  # 11:30 at UTC-5 is 16:30 UTC
    ],
)
def test_times_are_shown_in_beijing_time(value):
    assert format_local_time(value) == BEIJING


def test_seconds_can_be_left_out():
    assert format_local_time("2026-01-01T16:30:59Z", seconds=False) == "2026-01-02 00:30"


def test_a_time_already_in_beijing_is_unchanged():
    assert format_local_time("2026-06-30T08:05:09+08:00") == "2026-06-30 08:05:09"


@pytest.mark.parametrize("value", [None, pd.NaT, float("nan"), "", "  "])
def test_no_time_gives_empty_text(value):
    assert format_local_time(value) == ""


def test_a_string_that_is_not_a_time_is_refused():
    with pytest.raises(ValueError, match=r"ISO 8601 .*got 'yesterday'"):
        format_local_time("yesterday")


def test_a_date_without_time_is_refused():
    with pytest.raises(TypeError, match="got date"):
        format_local_time(date(2026, 1, 1))


def test_the_date_is_the_beijing_date():
    assert format_local_date("2026-01-01T16:30:00Z") == "2026-01-02"
    assert format_local_date(datetime(2026, 1, 1, 15, 59)) == "2026-01-01"  # naive: UTC, 23:59 in Beijing
    assert format_local_date(None) == ""
