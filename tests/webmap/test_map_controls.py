"""Staff and public maps name Leaflet's controls in the page's language ("放大" / "Zoom in")."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import pandas as pd
import pytest

from layers import schema
from webmap.maps.base import finish_result_map, result_base_map
from webmap.maps.households import households_map

_TEXTS = re.compile(r"\}\)\((map_[0-9a-f]+), (\{\"close_popup\".*?\})\);")


def _control_texts(m) -> dict[str, str]:
    found = _TEXTS.findall(m.get_root().render())
    assert len(found) == 1
    return json.loads(found[0][1])


def _static(path: str) -> str:
    return f"/static/{path}"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"zoom_in": "放大", "zoom_out": "缩小", "close_popup": "关闭弹窗", "map": "分析结果地图"}),
        ("?lang=en", {"zoom_in": "Zoom in", "zoom_out": "Zoom out", "close_popup": "Close popup",
                      "map": "Analysis result map"}),
    ],
)  # fmt: skip
def test_result_maps_name_their_controls_in_the_page_language(app, district, query, expected):
    with app.test_request_context(f"/{query}"):
        m = finish_result_map(result_base_map(district), district, _static)
        assert _control_texts(m) == expected


def test_household_map_names_its_controls_in_english(app, district):
    empty = gpd.GeoDataFrame(pd.DataFrame({schema.ID: [], schema.STATUS: []}), geometry=[], crs=schema.WGS84)
    with app.test_request_context("/?lang=en"):
        m = households_map(district, empty, towns=("999901001",), static_url=_static)
        texts = _control_texts(m)
    assert texts["zoom_in"] == "Zoom in" and texts["map"] == "Household map"
