"""Overdue flags and the GB 50763-2012 §3.9 check, values derived by hand from the standard's figures."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from analyses.toilet_checks import FAIL, INCOMPLETE, PASS, beijing_today, gb50763_check, overdue, overdue_days

#: A toilet that meets every figure exactly at the limit (≥ 1.50 m, ≥ 800 mm, ≥ 4.00 m²).
AT_LIMIT = {
    "accessible_cubicle_f": True, "accessible_cubicle_m": True, "unisex_accessible_room": True,
    "room_area_m2": 4.00, "turning_diameter_m": 1.50, "door_clear_width_mm": 800,
    "door_outward_or_emergency_unlock": True, "grab_bar_horizontal": True, "grab_bar_vertical": True,
    "call_button": True, "accessible_basin": True, "accessible_urinal": True, "step_free_entrance": True,
    "signage": True,
}  # fmt: skip


def test_beijing_today_is_the_date_in_utc_plus_8():
    assert beijing_today(datetime(2025, 7, 3, 15, 59, tzinfo=UTC)) == date(2025, 7, 3)
    assert beijing_today(datetime(2025, 7, 3, 16, 0, tzinfo=UTC)) == date(2025, 7, 4)  # 00:00 in Beijing


@pytest.mark.parametrize(
    ("status", "planned", "today", "days"),
    [
        ("under_construction", "2025-07-03", date(2025, 7, 4), 1),  # passed yesterday: 1 day overdue
        ("planned", "2025-07-03", date(2025, 7, 3), 0),  # due today: not yet overdue
        ("planned", "2024-10-25", date(2025, 7, 4), 252),  # 7 days of Oct + 30 + 31 + 31 + 28 + 31 + 30 + 31 + 30 + 3
        ("completed", "2024-01-19", date(2025, 7, 4), 0),  # built: never overdue
        ("accepted", "2021-12-01", date(2025, 7, 4), 0),
        ("planned", None, date(2025, 7, 4), 0),  # no planned date: nothing to compare
    ],
)
def test_overdue_with_a_fixed_date(status, planned, today, days):
    row = {"status": status, "planned_completion": planned}
    assert overdue_days(row, today) == days
    assert overdue(row, today) is (days > 0)


def test_a_toilet_at_every_limit_passes():
    check = gb50763_check(AT_LIMIT)
    assert (check.result, check.failures, check.missing) == (PASS, (), ())


@pytest.mark.parametrize(
    ("field", "value", "minimum", "unit"),
    [
        ("room_area_m2", 3.99, 4.00, "m²"),
        ("turning_diameter_m", 1.49, 1.50, "m"),
        ("door_clear_width_mm", 799, 800, "mm"),
    ],
)
def test_just_under_a_figure_fails_with_the_standards_minimum(field, value, minimum, unit):
    check = gb50763_check({**AT_LIMIT, field: value})
    assert check.result == FAIL
    ((finding),) = check.failures
    assert (finding.field, finding.value, finding.minimum, finding.unit) == (field, value, minimum, unit)


def test_missing_fittings_and_cubicles_are_listed():
    row = {**AT_LIMIT, "unisex_accessible_room": False, "room_area_m2": None, "accessible_cubicle_m": False,
           "call_button": "False", "signage": False}  # fmt: skip
    check = gb50763_check(row)
    # women's cubicle only, no room: the cubicle rule fails; no men's cubicle, so no urinal needed;
    # no room, so its area is not asked for
    assert [f.field for f in check.failures] == ["cubicles", "call_button", "signage"]
    assert check.missing == ()


def test_a_men_s_cubicle_needs_an_accessible_urinal():
    check = gb50763_check({**AT_LIMIT, "accessible_urinal": False})
    assert [f.field for f in check.failures] == ["accessible_urinal"]


def test_a_planned_toilet_is_not_surveyed_not_failing():
    check = gb50763_check({"status": "planned", "room_area_m2": float("nan"), "signage": ""})
    assert check.result == INCOMPLETE and check.failures == ()
    assert "turning_diameter_m" in check.missing and "signage" in check.missing and len(check.missing) == 13
