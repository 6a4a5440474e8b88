from __future__ import annotations

import gzip
import json
import posixpath
import re
from html.parser import HTMLParser

import osmium
import osmnx as ox
import pytest

from geo.datums import convert
from layers import schema
from webmap.store import get_store

_ANY_URL = re.compile(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)
TOWN_1, TOWN_2 = "999901001", "999901100"
# Shown facilities of the `app` fixture, in list order (legend order, then town, then id).
ALL_SHOWN = ["渝馨家园甲", "康复站甲", "康复站乙", "无障碍厕所甲", "无障碍厕所乙", "体育点甲"]


class _Page(HTMLParser):
    """Collect what the tests look at: src/href values, tags, facility rows and household counts."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.row_names: list[str] = []  # facility table: the name in each row's header cell
        self.row_links: list[str] = []
        self.count_rows: list[list[str]] = []  # household count table: [town, count]
        self._facility_row = False
        self._in_th = False
        self._section: str | None = None
        self._cells: list[str] | None = None
        self._header_row = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self.links += [v for k, v in attrs.items() if k in ("src", "href") and v is not None]
        if tag == "section":
            self._section = attrs.get("class")
        if tag == "tr":
            self._facility_row = "data-layer" in attrs
            self._cells = [] if self._section == "household-counts" else None
            self._header_row = False
        if tag in ("th", "td") and self._cells is not None:
            self._cells.append("")
        if tag == "th" and attrs.get("scope") == "row":
            self._in_th = True
        if tag == "th" and attrs.get("scope") == "col":
            self._header_row = True
        if tag == "a" and self._in_th and self._facility_row:
            self.row_links.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "th":
            self._in_th = False
        if tag == "tr" and self._cells:
            if not self._header_row:
                self.count_rows.append(self._cells)
            self._cells = None

    def handle_data(self, data):
        if self._in_th and self._facility_row and data.strip():
            self.row_names.append(data.strip())
        if self._cells:
            self._cells[-1] += data.strip()


def _parse(response) -> tuple[str, _Page]:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    text = response.get_data(as_text=True)
    page = _Page()
    page.feed(text)
    return text, page


def _marker_names(text: str, read_facilities) -> list[str]:
    return [f["lines"][0] for rows in read_facilities(text).values() for f in rows]


# --- page structure ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/list", "/facility/rehab_station/r0"])
def test_pages_are_chinese_with_one_h1_landmarks_and_a_skip_link(client, url):
    text, page = _parse(client.get(url))
    assert re.search(r'<html lang="zh-CN">', text)
    tags = [tag for tag, _ in page.tags]
    assert tags.count("h1") == 1
    for landmark in ("header", "nav", "main", "footer", "title"):
        assert landmark in tags
    assert page.links[0] == "/static/css/accessplan.css" and "#main" in page.links  # the skip link
    assert any(a.get("id") == "main" for t, a in page.tags if t == "main")
    viewports = [a["content"] for t, a in page.tags if t == "meta" and a.get("name") == "viewport"]
    assert viewports == ["width=device-width, initial-scale=1"]  # zoomable: no user-scalable=no


def test_every_shown_facility_is_listed_once_and_closed_ones_are_not(client, names):
    text, page = _parse(client.get("/"))
    assert page.row_names == ALL_SHOWN
    assert sorted(page.row_names) == sorted(names["shown"])
    assert names["closed"] not in text
    assert "<td>规划中</td>" in text and "<td>在建</td>" in text and "<td>已验收</td>" in text
    assert page.row_links[:2] == ["/facility/service_centre/c0", "/facility/rehab_station/r0"]


def test_every_facility_has_a_map_marker_linking_to_its_page(client, names, read_facilities):
    data = read_facilities(client.get("/").get_data(as_text=True))
    assert sorted(f["lines"][0] for rows in data.values() for f in rows) == sorted(names["shown"])
    assert set(data) == {schema.REHAB_STATION, schema.SERVICE_CENTRE, schema.ACCESSIBLE_TOILET, schema.SPORTS_SITE}
    assert data[schema.REHAB_STATION][1]["url"] == "/facility/rehab_station/r1"
    assert data[schema.REHAB_STATION][1]["title"] == "康复站乙（康复站，规划中）"


def test_no_external_url_anywhere(client):
    for url in ("/", "/list", "/facility/accessible_toilet/t1", "/?lang=en"):
        text, page = _parse(client.get(url))
        assert page.links, "the page should reference its assets"
        assert [link for link in page.links if _ANY_URL.match(link)] == []
        assert _ANY_URL.findall(text) == []


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


# --- filters: the list and the map always show the same rows -------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ALL_SHOWN),
        ("?layer=rehab_station", ["康复站甲", "康复站乙"]),
        ("?layer=rehab_station&layer=sports_site", ["康复站甲", "康复站乙", "体育点甲"]),
        ("?open=1", ["渝馨家园甲", "康复站甲", "无障碍厕所乙", "体育点甲"]),  # planned, under construction out
        ("?q=厕所", ["无障碍厕所甲", "无障碍厕所乙"]),
        ("?q=乙", ["康复站乙", "无障碍厕所乙"]),
        ("?q=测试路", ALL_SHOWN),  # the address matches every row
        ("?q=测试路１号", ALL_SHOWN),  # full-width digit, folded by NFKC
        ("?q=不存在", []),
        (f"?town={TOWN_1}", ALL_SHOWN),
        (f"?town={TOWN_2}", []),
        ("?layer=accessible_toilet&open=1&q=厕所", ["无障碍厕所乙"]),
    ],
)
def test_filters_give_the_same_rows_on_map_and_list(client, read_facilities, query, expected):
    map_text, map_page = _parse(client.get(f"/{query}"))
    _list_text, list_page = _parse(client.get(f"/list{query}"))
    assert map_page.row_names == expected
    assert list_page.row_names == expected
    assert sorted(_marker_names(map_text, read_facilities)) == sorted(expected)


def test_filter_form_works_without_javascript_and_keeps_its_values(client):
    text, page = _parse(client.get(f"/list?layer=accessible_toilet&town={TOWN_1}&open=1&q=厕所&feature=call_button"))
    forms = [a for t, a in page.tags if t == "form"]
    assert forms == [{"class": "filters", "method": "get", "action": "/list", "aria-labelledby": "filters-heading"}]
    assert ("button", {"type": "submit"}) in page.tags
    checked = {(a["name"], a["value"]) for t, a in page.tags if t == "input" and "checked" in a}
    assert checked == {("layer", "accessible_toilet"), ("open", "1"), ("feature", "call_button")}
    assert ("option", {"value": TOWN_1, "selected": None}) in page.tags
    assert 'value="厕所"' in text
    # the navigation carries the same filter to the map
    assert f"/?layer=accessible_toilet&town={TOWN_1}&open=1&feature=call_button&q=%E5%8E%95%E6%89%80" in page.links


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("layer=household", "筛选条件“设施类型”（layer）只能是 rehab_station、service_centre"),
        ("town=500120001", "筛选条件“镇街”（town）必须是本区的镇街代码；收到 500120001。"),
        ("feature=sauna", "筛选条件“无障碍设施”（feature）只能是 step_free、grab_bars"),
    ],
)
def test_unknown_filter_values_are_refused(client, query, message):
    for url in (f"/?{query}", f"/list?{query}"):
        response = client.get(url)
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)


@pytest.fixture
def surveyed_toilets(app, make_rows):
    """Three more toilets with GB 50763 survey fields, to filter on accessibility features."""
    rows = make_rows("v", ["全配厕所", "无呼叫厕所", "有台阶厕所"], ["accepted", "accepted", "completed"])
    rows["build_type"] = "existing"
    rows["step_free_entrance"] = [True, True, False]
    rows["grab_bar_horizontal"] = [True, True, True]
    rows["grab_bar_vertical"] = [True, False, True]
    rows["call_button"] = [True, False, True]
    rows["unisex_accessible_room"] = [True, False, True]
    rows["opening_hours"] = ["全天", "06:00-22:00", "全天"]
    rows["door_clear_width_mm"] = [900.0, 800.0, 850.0]
    rows["survey_date"] = ["2024-05-06", "2023-11-02", None]
    rows["source"] = "现场核查"
    with app.app_context():
        get_store().upsert_features(schema.ACCESSIBLE_TOILET, rows, user="test")


@pytest.mark.parametrize(
    ("features", "expected"),
    [
        (["step_free"], ["全配厕所", "无呼叫厕所"]),
        (["call_button"], ["全配厕所", "有台阶厕所"]),
        (["grab_bars"], ["全配厕所", "有台阶厕所"]),  # both bars needed
        (["unisex_room"], ["全配厕所", "有台阶厕所"]),
        (["all_day"], ["全配厕所", "有台阶厕所"]),
        (["step_free", "call_button"], ["全配厕所"]),
    ],
)
def test_accessibility_filters_keep_only_recorded_matches(
    surveyed_toilets, client, read_facilities, features, expected
):
    query = "&".join(f"feature={f}" for f in features)
    map_text, map_page = _parse(client.get(f"/?{query}"))
    _list_text, list_page = _parse(client.get(f"/list?{query}"))
    # facilities without a survey record (other layers, unsurveyed toilets) never match
    assert map_page.row_names == list_page.row_names == expected
    assert sorted(_marker_names(map_text, read_facilities)) == sorted(expected)


# --- facility pages ------------------------------------------------------------------------------


def test_toilet_page_shows_accessibility_fields_and_last_verification(surveyed_toilets, client):
    text, page = _parse(client.get("/facility/accessible_toilet/v1"))
    assert "<h1>无障碍厕所</h1>" not in text and "<h1>无呼叫厕所</h1>" in text
    facts = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]*)</dd>", text))
    assert facts["无障碍入口（无台阶）"] == "有"
    assert facts["求助呼叫按钮"] == "无"
    assert facts["垂直安全抓杆"] == "无"
    assert facts["无障碍洗手盆"] == "未记录"
    assert facts["门净宽"] == "800 毫米"
    assert facts["开放时间"] == "06:00-22:00"
    assert facts["最近核查日期"] == "2023-11-02"
    assert facts["核查来源"] == "现场核查"
    assert facts["镇街"] == "甲街道" and facts["状态"] == "已验收"
    assert "/?layer=accessible_toilet&q=" in " ".join(page.links)


def test_toilet_without_survey_says_not_recorded(surveyed_toilets, client):
    text, _page = _parse(client.get("/facility/accessible_toilet/v2"))
    facts = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]*)</dd>", text))
    assert facts["最近核查日期"] == "未记录"
    assert facts["无障碍入口（无台阶）"] == "无"


def test_other_facility_page_has_no_survey_section(client):
    text, _page = _parse(client.get("/facility/rehab_station/r1"))
    assert "<h1>康复站乙</h1>" in text
    assert "GB 50763" not in text
    facts = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]*)</dd>", text))
    assert facts["状态"] == "规划中" and facts["地址"] == "测试路 1 号" and facts["床位数"] == "未记录"
    assert facts["最近核查日期"] == "未记录"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", facts["记录更新日期"])


@pytest.mark.parametrize(
    "url",
    [
        "/facility/rehab_station/nope",
        "/facility/rehab_station/r2",  # closed: not public
        "/facility/household/hh-secret-001",  # a real household id: households are never a facility
        "/facility/nothing/r0",
    ],
)
def test_unknown_closed_or_household_pages_are_404(client, url):
    response = client.get(url)
    assert response.status_code == 404
    text = response.get_data(as_text=True)
    assert "张三丰" not in text and "13800000000" not in text


# --- households: counts per town only ------------------------------------------------------------


def test_households_never_appear_as_points_names_or_ids(client, names, app, read_facilities):
    with app.app_context():
        assert get_store().count(schema.HOUSEHOLD) == 2  # they are in the store ...
    for url in ("/", "/list", "/?lang=en", "/list?q=测试路"):
        text = client.get(url).get_data(as_text=True)
        for secret in [*names["households"], *names["household_ids"], "13800000000", "hh-secret"]:
            assert secret not in text  # ... and not on any page
        assert "/facility/household" not in text
    assert schema.HOUSEHOLD not in read_facilities(client.get("/").get_data(as_text=True))
    _text, page = _parse(client.get("/list?q=测试路"))
    assert page.row_names == ALL_SHOWN  # the search matches facilities only ...
    _text, page = _parse(client.get("/list?q=张三丰"))
    assert page.row_names == []  # ... never a household's name


def test_household_counts_per_town_suppress_small_counts(client):
    _text, page = _parse(client.get("/"))
    assert page.count_rows == [["甲街道", "不公布"], ["乙镇", "0"]]  # 2 households in 甲街道: suppressed


def test_household_counts_at_the_threshold_are_shown(app, client, make_rows):
    rows = make_rows("hx", [f"户{i}" for i in range(3)], ["surveyed"] * 3)
    with app.app_context():
        get_store().upsert_features(schema.HOUSEHOLD, rows, user="test")
    _text, page = _parse(client.get("/"))
    assert page.count_rows == [["甲街道", "5"], ["乙镇", "0"]]
    _text, page = _parse(client.get("/?lang=en"))
    assert page.count_rows == [["Jia Subdistrict", "5"], ["Yi Town", "0"]]


# --- languages -----------------------------------------------------------------------------------


def test_english_switch_sets_a_cookie_and_translates_the_page(client, read_facilities):
    text, page = _parse(client.get("/?lang=en&layer=rehab_station"))
    assert '<html lang="en">' in text
    assert "<h1>Disability service facilities in Test District</h1>" in text
    assert "Skip to main content" in text and "跳到主要内容" not in text
    assert page.row_names == ["康复站甲", "康复站乙"]  # names are data: kept as recorded
    assert "<td>Rehabilitation station</td>" in text and "<td>Jia Subdistrict</td>" in text
    data = read_facilities(text)
    assert data[schema.REHAB_STATION][1]["title"] == "康复站乙 (Rehabilitation station, planned)"
    # the switch back keeps the filter; the cookie keeps English on the next page
    assert "/?layer=rehab_station&lang=zh-CN" in page.links
    assert client.get_cookie("lang").value == "en"
    text, _page = _parse(client.get("/list"))
    assert '<html lang="en">' in text and "Facility list" in text
    text, _page = _parse(client.get("/list?lang=zh-CN"))
    assert '<html lang="zh-CN">' in text and client.get_cookie("lang").value == "zh_CN"


def test_english_household_counts_say_withheld(client):
    # "fewer than 5" would be false for a count withheld only so that a small one cannot be derived
    text, page = _parse(client.get("/?lang=en"))
    assert page.count_rows == [["Jia Subdistrict", "withheld"], ["Yi Town", "0"]]
    assert "so that the withheld ones cannot be worked out from the totals" in text


def test_unknown_language_falls_back_to_chinese(client):
    text, _page = _parse(client.get("/?lang=fr"))
    assert '<html lang="zh-CN">' in text and client.get_cookie("lang") is None


# --- roads and tiles -----------------------------------------------------------------------------


def test_page_without_road_file_says_so(client):
    text = client.get("/").get_data(as_text=True)
    assert "道路数据暂缺" in text
    assert "主干道" not in text


@pytest.fixture
def roads_file(district_dir, osm_path):
    (district_dir / "roads.osm").write_bytes(osm_path.read_bytes())


def _roads(client, band: str, **headers) -> tuple[dict, object]:
    response = client.get(f"/map/roads/{band}.geojson", headers=headers)
    assert response.status_code == 200 and response.mimetype == "application/geo+json"
    return json.loads(response.get_data(as_text=True)), response


def test_roads_are_served_per_band_not_written_into_the_page(roads_file, app, client, tmp_path):
    text = client.get("/").get_data(as_text=True)
    assert "道路数据暂缺" not in text and "主干道" in text  # legend line of the primary roads
    assert "/map/roads/district.geojson" in text and "/map/roads/street.geojson" in text
    assert '"highway"' not in text and "璧山大道" not in text  # the road data stay out of the page
    # district zoom: main classes only, names dropped, one feature per class (1 -> 2 -> 5 merged)
    district, _response = _roads(client, "district")
    assert [f["properties"] for f in district["features"]] == [{"highway": "primary", "name": "", "pieces": 2}]
    assert district["features"][0]["geometry"]["coordinates"] == [
        [[106.001, 29.505], [106.019, 29.505], [106.019, 29.512]]
    ]
    # street zoom (>= 14): residential streets too, and the street name
    street, _response = _roads(client, "street")
    assert [f["properties"] for f in street["features"]] == [
        {"highway": "primary", "name": "", "pieces": 1},
        {"highway": "primary", "name": "璧山大道", "pieces": 1},
        {"highway": "residential", "name": "", "pieces": 1},
    ]
    assert (tmp_path / "cache" / "roads_street.geojson.gz").is_file()


def test_road_band_is_gzipped_and_revalidated_by_etag(roads_file, client):
    response = client.get("/map/roads/town.geojson", headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(response.get_data()))["type"] == "FeatureCollection"
    etag = response.headers["ETag"]
    assert client.get("/map/roads/town.geojson", headers={"If-None-Match": etag}).status_code == 304
    assert client.get("/map/roads/street.geojson").headers["ETag"] != etag  # one version per band


def test_road_band_in_gcj02_for_amap_tiles(roads_file, app, client):
    app.config.update(TILE_URL="/amap/{z}/{x}/{y}.png", TILE_ATTR="高德", TILE_DATUM="gcj02")
    street, _response = _roads(client, "street")
    x0, y0 = convert(106.001, 29.505, "wgs84", "gcj02")
    named = next(f for f in street["features"] if f["properties"]["name"] == "璧山大道")
    assert named["geometry"]["coordinates"][0][0] == pytest.approx([x0, y0], abs=1e-5)


def test_unknown_road_band_and_missing_road_file_get_a_clear_404(roads_file, client, district_dir):
    text = client.get("/map/roads/city.geojson").get_data(as_text=True)
    assert "没有道路图层 city" in text and "district、town、street" in text
    (district_dir / "roads.osm").unlink()
    response = client.get("/map/roads/street.geojson")
    assert response.status_code == 404 and "本区没有道路数据文件" in response.get_data(as_text=True)


@pytest.mark.parametrize("kind", ["osm.pbf", "graphml"])
def test_pbf_and_graphml_districts_draw_their_roads_with_names(kind, district_dir, osm_path, request):
    # the old map read only OSM XML itself and drew nothing for a PBF or GraphML district
    target = district_dir / f"roads.{kind}"
    if kind == "osm.pbf":
        with osmium.SimpleWriter(str(target)) as writer:
            for obj in osmium.FileProcessor(str(osm_path)):
                writer.add(obj)
    else:
        ox.io.save_graphml(ox.graph_from_xml(osm_path, simplify=True, retain_all=True), target)
    toml = district_dir / "district.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('"roads.osm"', f'"roads.{kind}"'), encoding="utf-8")
    client = request.getfixturevalue("client")
    assert "道路数据暂缺" not in client.get("/").get_data(as_text=True)
    street, _response = _roads(client, "street")
    assert "璧山大道" in [f["properties"]["name"] for f in street["features"]]


def _tile_urls(text: str) -> list[str]:
    return [json.loads(u) for u in re.findall(r'L\.tileLayer\(\s*("[^"]+")', text)]


def test_tianditu_key_adds_vector_and_label_tiles(app, client):
    app.config["TIANDITU_KEY"] = "abc123"
    text = client.get("/").get_data(as_text=True)
    urls = _tile_urls(text)
    assert [re.search(r"LAYER=(\w+)", u).group(1) for u in urls] == ["vec", "cva"]
    assert all(u.startswith("https://t{s}.tianditu.gov.cn/") and u.endswith("&tk=abc123") for u in urls)
    assert "TILEMATRIXSET=w" in urls[0] and "/vec_w/wmts?" in urls[0] and "/cva_w/wmts?" in urls[1]
    assert '"subdomains": "01234567"' in text
    assert "底图：© 天地图" in text


def test_intranet_tile_server(app, client):
    app.config.update(TILE_URL="/tiles/{z}/{x}/{y}.png", TILE_ATTR="内网底图")
    text = client.get("/").get_data(as_text=True)
    assert _tile_urls(text) == ["/tiles/{z}/{x}/{y}.png"]
    assert _ANY_URL.findall(text) == []


def test_gcj02_tiles_move_markers_for_display_only(app, client, read_facilities):
    app.config.update(TILE_URL="/amap/{z}/{x}/{y}.png", TILE_ATTR="高德", TILE_DATUM="gcj02")
    data = read_facilities(client.get("/").get_data(as_text=True))
    marker = data[schema.REHAB_STATION][0]  # stored at 106.002, 29.51 (WGS-84)
    lon, lat = convert(106.002, 29.51, "wgs84", "gcj02")
    assert (marker["lon"], marker["lat"]) == (round(lon, 6), round(lat, 6))
    assert abs(marker["lon"] - 106.002) > 0.003  # hundreds of metres: the conversion happened
    with app.app_context():
        row = get_store().feature(schema.REHAB_STATION, "r0")
    assert (row[schema.LON], row[schema.LAT]) == (106.002, 29.51)  # the store is untouched


def test_every_inline_script_carries_the_csp_nonce(client):
    response = client.get("/")
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    _text, page = _parse(response)
    inline = [a for t, a in page.tags if t == "script" and "src" not in a]
    assert len(inline) >= 1
    assert all(a.get("nonce") == nonce for a in inline)
    assert client.get("/").headers["Content-Security-Policy"] != response.headers["Content-Security-Policy"]


def test_an_edit_shows_on_the_next_page_view(app, client, make_rows, read_facilities):
    _text, page = _parse(client.get("/?layer=sports_site"))
    assert page.row_names == ["体育点甲"]
    with app.app_context():
        get_store().upsert_features(
            schema.SPORTS_SITE, make_rows("s", ["体育点甲", "体育点乙"], ["open", "open"]), user="t"
        )
    text, page = _parse(client.get("/?layer=sports_site"))
    assert page.row_names == ["体育点甲", "体育点乙"]  # the cached rows and map were replaced
    assert sorted(_marker_names(text, read_facilities)) == ["体育点乙", "体育点甲"]
