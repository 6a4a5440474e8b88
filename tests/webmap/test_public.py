from __future__ import annotations

import json
import posixpath
import re
from html.parser import HTMLParser

import pytest

from layers import schema

_ANY_URL = re.compile(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)


class _Page(HTMLParser):
    """Collect what the tests look at: src/href values, tags, and the text of row headers."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.row_names: list[str] = []
        self._in_row_header = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self.links += [v for k, v in attrs.items() if k in ("src", "href") and v is not None]
        self._in_row_header = tag == "th" and attrs.get("scope") == "row"

    def handle_endtag(self, tag):
        self._in_row_header = False

    def handle_data(self, data):
        if self._in_row_header:
            self.row_names.append(data.strip())


def _parse(response) -> tuple[str, _Page]:
    text = response.get_data(as_text=True)
    page = _Page()
    page.feed(text)
    return text, page


def test_page_is_chinese_with_one_h1_and_landmarks(client):
    response = client.get("/")
    assert response.status_code == 200
    text, page = _parse(response)
    assert re.search(r'<html lang="zh-CN">', text)
    tags = [tag for tag, _ in page.tags]
    assert tags.count("h1") == 1
    for landmark in ("header", "nav", "main", "footer", "title"):
        assert landmark in tags
    assert page.links[page.links.index("#main")] == "#main"  # the skip link exists
    assert any(a.get("id") == "main" for t, a in page.tags if t == "main")


def test_every_shown_facility_is_listed_once_and_closed_ones_are_not(client, names):
    text, page = _parse(client.get("/"))
    assert sorted(page.row_names) == sorted(names["shown"])
    assert names["closed"] not in text
    # service centre first (legend order), then rehab stations, toilets, sports sites
    assert page.row_names == ["渝馨家园甲", "康复站甲", "康复站乙", "无障碍厕所甲", "无障碍厕所乙", "体育点甲"]
    assert "<td>规划中</td>" in text and "<td>在建</td>" in text and "<td>已验收</td>" in text


def test_every_facility_has_a_map_marker(client, names, read_facilities):
    data = read_facilities(client.get("/").get_data(as_text=True))
    assert sorted(f["lines"][0] for rows in data.values() for f in rows) == sorted(names["shown"])
    assert set(data) == {schema.REHAB_STATION, schema.SERVICE_CENTRE, schema.ACCESSIBLE_TOILET, schema.SPORTS_SITE}


def test_no_external_url_anywhere(client):
    text, page = _parse(client.get("/"))
    assert page.links, "the page should reference its assets"
    assert [link for link in page.links if _ANY_URL.match(link)] == []
    assert _ANY_URL.findall(text) == []


def test_households_never_appear(client, names, app):
    with app.app_context():
        from webmap.store import get_store

        assert get_store().count(schema.HOUSEHOLD) == 2  # they are in the store ...
    text = client.get("/").get_data(as_text=True)
    for secret in [*names["households"], *names["household_ids"], "household", "住户"]:
        assert secret not in text  # ... and not on the page


def test_every_local_asset_is_served(client):
    _text, page = _parse(client.get("/"))
    assets = [link for link in page.links if link.startswith("/static/")]
    assert "/static/vendor/leaflet/1.9.4/leaflet.js" in assets
    assert "/static/vendor/jquery/3.7.1/jquery.min.js" in assets
    assert "/static/vendor/leaflet/1.9.4/leaflet.css" in assets
    images = []
    for url in assets:
        with client.get(url) as response:
            assert response.status_code == 200, url
            if url.endswith(".css"):  # images referenced by the stylesheets (leaflet's images/ folder)
                refs = re.findall(r"url\(([^)#]+)\)", response.get_data(as_text=True))
                images += [posixpath.normpath(posixpath.join(posixpath.dirname(url), r.strip("'\""))) for r in refs]
    assert "/static/vendor/leaflet/1.9.4/images/layers.png" in images
    for image in images:
        with client.get(image) as response:
            assert response.status_code == 200, image


def test_page_without_road_file_says_so(client):
    text = client.get("/").get_data(as_text=True)
    assert "道路数据暂缺" in text
    assert "主干道" not in text


@pytest.fixture
def roads_file(district_dir, osm_path):
    (district_dir / "roads.osm").write_bytes(osm_path.read_bytes())


def test_main_roads_are_drawn_and_cached(roads_file, app, client, tmp_path):
    text = client.get("/").get_data(as_text=True)
    assert "道路数据暂缺" not in text
    assert "主干道" in text  # legend line of the one primary road
    assert '"highway": "primary", "ways": 2' in text  # its GeoJSON feature
    assert "residential" not in text
    cached = json.loads((tmp_path / "cache" / "main_roads.json").read_text(encoding="utf-8"))
    assert [f["properties"]["highway"] for f in cached["roads"]["features"]] == ["primary"]
    assert client.get("/").get_data(as_text=True).count('"highway": "primary"') == 1
