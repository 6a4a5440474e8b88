"""Numbers as people read them: one filter set (webmap.numfmt) for counts, values and shares."""

from __future__ import annotations

import re

import pytest

from tests.webmap import staff_fixtures
from webmap.numfmt import count, number, percent, percent_value

demo_key, demo_db, demo_cache = staff_fixtures.demo_key, staff_fixtures.demo_db, staff_fixtures.demo_cache
app, client, client_as = staff_fixtures.app, staff_fixtures.client, staff_fixtures.client_as

_CELLS = re.compile(r"<td>(.*?)</td>", re.DOTALL)


@pytest.mark.parametrize(
    ("function", "value", "expected"),
    [
        (count, 118.0, "118"),
        (count, 7, "7"),
        (count, None, "—"),
        (count, float("nan"), "—"),
        (count, "12 个", "12 个"),  # text is shown as it is
        (number, 49.55673758865248, "49.6"),
        (number, 3.0, "3"),
        (number, 0.04, "0"),
        (number, -0.04, "0"),
        (number, 2.25, "2.2"),  # round half to even, as Python formats
        (number, 1234.5678, "1234.6"),
        (percent, 0.4955673758865248, "49.6%"),
        (percent, 1, "100%"),
        (percent, None, "—"),
        (percent_value, 49.55673758865248, "49.6%"),
        (percent_value, 50.0, "50%"),
        (percent_value, float("nan"), "—"),
    ],
)
def test_filters(function, value, expected):
    assert function(value) == expected


def test_number_keeps_the_digits_asked_for():
    assert number(3.14159, 2) == "3.14" and percent(0.123456, 2) == "12.35%"


@pytest.mark.parametrize("query", ["date=2025-06-30", "date=2025-06-30&lang=en"])
def test_targets_page_rounds_percentages_and_shows_counts_as_integers(client_as, query):
    page = client_as("planner").get(f"/planner/targets?{query}")
    assert page.status_code == 200
    cells = _CELLS.findall(page.get_data(as_text=True))
    assert cells
    long_decimals = [c for c in cells if re.search(r"\d+\.\d{2,}", c)]
    assert long_decimals == []  # e.g. 49.55673758865248 → 49.6%
    whole_floats = [c for c in cells if re.search(r"(?<![\d.])\d+\.0(?!\d)", c)]
    assert whole_floats == []  # e.g. 118.0 → 118
    assert any(re.fullmatch(r"\d+(\.\d)?%", c.strip()) for c in cells)  # the home-modification share


def test_targets_page_names_indicators_in_english(client_as):
    text = client_as("planner").get("/planner/targets?date=2025-06-30&lang=en").get_data(as_text=True)
    assert "Yuxin Homes (disability homes)" in text
