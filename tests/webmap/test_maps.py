from __future__ import annotations

import bz2
import html
import json
import re
from pathlib import Path

import folium
import geopandas as gpd
import osmium
import osmnx as ox
import pytest
from folium.plugins import Fullscreen

from analyses.costs import load_network
from geo.datums import convert
from geo.roadlines import main_roads_geojson
from layers import schema
from webmap.maps import assets
from webmap.maps.base import TileSource, render_map_parts, tianditu_tiles, tile_sources_from_config
from webmap.maps.public import public_map
from webmap.maps.text import map_text, script_json

_EXTERNAL_URL = re.compile(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def make_layer(make_rows):
    def make(prefix, names, statuses):
        df = make_rows(prefix, names, statuses)
        geometry = gpd.points_from_xy(df[schema.LON], df[schema.LAT])
        return gpd.GeoDataFrame(df, geometry=geometry, crs="EPSG:4326")

    return make


@pytest.fixture
def layers(make_layer):
    return {
        schema.REHAB_STATION: make_layer("r", ["康复站甲", "康复站乙"], ["open", "planned"]),
        schema.ACCESSIBLE_TOILET: make_layer("t", ["厕所甲"], ["under_construction"]),
    }


@pytest.fixture
def main_roads(osm_path, tmp_path):
    """The tiny OSM file's main roads, drawn from its prepared network."""
    return main_roads_geojson(load_network(osm_path, crs="EPSG:32648", cache_dir=tmp_path / "networks"))


def _page(m: folium.Map) -> str:
    return m.get_root().render()


def test_one_facility_marker_per_row(district, layers, read_facilities):
    script = render_map_parts(public_map(district, layers)).script
    data = read_facilities(script)
    assert {layer: len(rows) for layer, rows in data.items()} == {
        schema.REHAB_STATION: 2,
        schema.ACCESSIBLE_TOILET: 1,
    }
    assert [f["fill"] for f in data[schema.REHAB_STATION]] == ["ready", "pending"]
    assert [f["fill"] for f in data[schema.ACCESSIBLE_TOILET]] == ["pending"]  # under construction
    assert script.count('"className": "town-label"') == 2


def test_marker_title_and_popup_name_the_facility(district, layers, read_facilities):
    data = read_facilities(render_map_parts(public_map(district, layers)).script)
    titles = [f["title"] for rows in data.values() for f in rows]
    assert titles == ["康复站甲（康复站，开放）", "康复站乙（康复站，规划中）", "厕所甲（无障碍厕所，在建）"]
    assert data[schema.ACCESSIBLE_TOILET][0]["lines"] == ["厕所甲", "无障碍厕所 · 在建", "甲街道", "测试路 1 号"]
    assert data[schema.ACCESSIBLE_TOILET][0]["lat"] == 29.51


#: Where the map fetches its roads (``webmap.views.public.road_band_urls`` in a request).
ROAD_BANDS = [
    {"min_zoom": 0, "url": "/map/roads/district.geojson"},
    {"min_zoom": 12, "url": "/map/roads/town.geojson"},
    {"min_zoom": 14, "url": "/map/roads/street.geojson"},
]


def test_no_external_url_in_rendered_map(district, layers):
    m = public_map(district, layers, roads=ROAD_BANDS)
    page = _page(m)
    parts = render_map_parts(m)
    assert "/static/vendor/leaflet/1.9.4/leaflet.js" in parts.header
    for text in (page, parts.header, parts.html, parts.script):
        assert _EXTERNAL_URL.findall(text) == []


def test_class_asset_lists_are_not_mutated(district, layers):
    js_before, css_before = list(folium.Map.default_js), list(folium.Map.default_css)
    m = public_map(district, layers, static_url=lambda f: f"/s/{f}")
    assert [name for name, _ in m.default_js] == ["leaflet", "jquery"]
    assert m.default_css == [("leaflet_css", "/s/vendor/leaflet/1.9.4/leaflet.css")]
    assert folium.Map.default_js == js_before and folium.Map.default_css == css_before
    assert folium.Map().default_js[0][1].startswith("https://cdn.jsdelivr.net/")


def test_header_allows_zoom_and_has_one_charset(district, layers):
    header = render_map_parts(public_map(district, layers)).header
    assert "user-scalable" not in header
    assert "http-equiv" not in header
    assert "html, body" not in header


def test_household_layer_is_refused(district, layers, make_layer):
    with pytest.raises(ValueError, match=r"only hold public layers .*\['household'\]"):
        public_map(district, {**layers, schema.HOUSEHOLD: make_layer("h", ["张三"], ["surveyed"])})


def test_tile_sources_from_config():
    assert tile_sources_from_config({}) == ()  # the default: no tiles at all
    assert tile_sources_from_config({"TILE_URL": None, "TIANDITU_KEY": None}) == ()
    intranet = tile_sources_from_config({"TILE_URL": "/tiles/{z}/{x}/{y}.png", "TILE_ATTR": "内网底图"})
    assert intranet == (TileSource(url="/tiles/{z}/{x}/{y}.png", attribution="内网底图"),)
    with pytest.raises(ValueError, match="`TILE_ATTR` is required"):
        tile_sources_from_config({"TILE_URL": "/tiles/{z}/{x}/{y}.png"})
    both = tile_sources_from_config({"TILE_URL": "/t/{z}/{x}/{y}.png", "TILE_ATTR": "x", "TIANDITU_KEY": "k1"})
    assert [t.name for t in both] == ["天地图矢量", "天地图注记"]  # the key wins


def test_tianditu_tiles_follow_the_wmts_template():
    vec, cva = tianditu_tiles(" k1 ")
    assert vec.url == (
        "https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=vec"
        "&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=k1"
    )
    assert cva.url == vec.url.replace("vec", "cva")
    assert vec.subdomains == cva.subdomains == "01234567"
    with pytest.raises(ValueError, match="`TIANDITU_KEY` must be"):
        tianditu_tiles("  ")


def test_tiles_are_drawn_in_order(district, layers):
    tiles = (TileSource("/a/{z}/{x}/{y}.png", "甲"), TileSource("/b/{z}/{x}/{y}.png", "乙"))
    script = render_map_parts(public_map(district, layers, tiles=tiles)).script
    assert re.findall(r'L\.tileLayer\(\s*"([^"]+)"', script) == ["/a/{z}/{x}/{y}.png", "/b/{z}/{x}/{y}.png"]
    plain = render_map_parts(public_map(district, layers)).script
    assert "L.tileLayer" not in plain


def test_gcj02_moves_every_drawn_coordinate_and_not_the_inputs(district, layers, read_facilities):
    before = layers[schema.REHAB_STATION].copy()
    m = public_map(district, layers, roads=ROAD_BANDS, datum="gcj02")
    parts = render_map_parts(m)
    marker = read_facilities(parts.script)[schema.REHAB_STATION][0]
    lon, lat = convert(106.002, 29.51, "wgs84", "gcj02")
    assert (marker["lon"], marker["lat"]) == (round(lon, 6), round(lat, 6))
    corner = convert(106.0, 29.5, "wgs84", "gcj02")  # boundary corner
    assert f"[{corner[0]}, {corner[1]}]" in parts.script
    assert layers[schema.REHAB_STATION].equals(before)
    with pytest.raises(ValueError, match="`datum` must be 'wgs84' or 'gcj02'"):
        public_map(district, layers, datum="bd09")


def test_translate_language_and_detail_links(district, layers, read_facilities):
    english = {"康复站": "Rehab", "开放": "open", "%(name)s（%(type)s，%(status)s）": "%(name)s (%(type)s, %(status)s)"}
    m = public_map(
        district,
        layers,
        translate=lambda s: english.get(s, s),
        language="en",
        detail_url=lambda layer, fid: f"/facility/{layer}/{fid}",
    )
    parts = render_map_parts(m)
    marker = read_facilities(parts.script)[schema.REHAB_STATION][0]
    assert marker["title"] == "康复站甲 (Rehab, open)"
    assert marker["lines"][1:3] == ["Rehab · open", "Jia Subdistrict"]
    assert marker["url"] == "/facility/rehab_station/r0"
    assert "Yi Town" in parts.script and "乙镇" not in parts.script  # town labels in English
    assert "url" not in read_facilities(render_map_parts(public_map(district, layers)).script)[schema.REHAB_STATION][0]


def test_names_cannot_inject_html_or_script(district, make_layer, read_facilities):
    evil = "</script><script>alert(1)</script>`${x}`&"
    layers = {schema.SPORTS_SITE: make_layer("s", [evil], ["open"])}
    script = render_map_parts(public_map(district, layers)).script
    assert "<" not in script.split("facility_layer_")[-1]  # no tag can open inside the data
    assert read_facilities(script)[schema.SPORTS_SITE][0]["lines"][0] == evil  # ... and the name is intact


def test_main_roads_keep_main_classes_one_feature_per_street_name(main_roads):
    # way 10 (璧山大道, nodes 1 -> 2) and way 12 (unnamed, 2 -> 5) are both primary; way 11 is residential
    assert [f["properties"] for f in main_roads["features"]] == [
        {"highway": "primary", "name": "", "pieces": 1},
        {"highway": "primary", "name": "璧山大道", "pieces": 1},
    ]
    assert [f["geometry"] for f in main_roads["features"]] == [
        {"type": "MultiLineString", "coordinates": [[[106.019, 29.505], [106.019, 29.512]]]},
        {"type": "MultiLineString", "coordinates": [[[106.001, 29.505], [106.019, 29.505]]]},
    ]


def test_main_roads_read_the_same_from_pbf_and_bz2(osm_path, main_roads, tmp_path):
    pbf = tmp_path / "roads.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(osm_path)):
            writer.add(obj)
    compressed = tmp_path / "roads.osm.bz2"
    compressed.write_bytes(bz2.compress(osm_path.read_bytes()))
    for path in (pbf, compressed):
        net = load_network(path, crs="EPSG:32648", cache_dir=tmp_path / "networks")
        assert main_roads_geojson(net) == main_roads


def test_main_roads_from_an_osmnx_graphml(osm_path, tmp_path):
    # osmnx merges ways 10, 12 and 11 into one edge 1 -> 3 (it splits neither where the name nor where the
    # class changes); the edge's most important class, primary, draws it whole
    graphml = tmp_path / "roads.graphml"
    ox.io.save_graphml(ox.graph_from_xml(osm_path, simplify=True, retain_all=True), graphml)
    roads = main_roads_geojson(load_network(graphml, crs="EPSG:32648", cache_dir=tmp_path / "networks"))
    assert [f["properties"] for f in roads["features"]] == [{"highway": "primary", "name": "璧山大道", "pieces": 1}]
    line = [[106.001, 29.505], [106.019, 29.505], [106.019, 29.515], [106.001, 29.515]]  # node 5 simplified away
    assert roads["features"][0]["geometry"]["coordinates"] == [line]


def test_roads_are_fetched_not_written_into_the_page_and_take_no_tab_stop(district, layers):
    script = render_map_parts(public_map(district, layers, roads=ROAD_BANDS)).script
    without = render_map_parts(public_map(district, layers, roads=None)).script
    # the page names the three band files and the label zoom; the roads themselves are fetched
    assert json.dumps(ROAD_BANDS) in script and "/map/roads/" not in without
    assert '"highway"' not in script and "MultiLineString" not in script
    # lines on a canvas, labels in an aria-hidden pane, markers without keyboard: nothing to Tab to
    assert "interactive: false, keyboard: false" in script and 'setAttribute("aria-hidden", "true")' in script
    assert script.count("bindTooltip") == without.count("bindTooltip")


def test_unvendored_plugin_asset_is_refused(district, layers):
    m = public_map(district, layers)
    Fullscreen().add_to(m)
    with pytest.raises(ValueError, match="`Fullscreen` needs the asset.*not vendored"):
        assets.localize_assets_inplace(m)


def test_localize_sets_instance_lists(district, layers):
    m = folium.Map(tiles=None)
    assets.localize_assets_inplace(m, static_url=lambda f: f"/x/{f}")
    assert m.default_js == [
        ("leaflet", "/x/vendor/leaflet/1.9.4/leaflet.js"),
        ("jquery", "/x/vendor/jquery/3.7.1/jquery.min.js"),
    ]
    assert "default_js" in vars(m) and folium.Map.default_js is folium.folium._default_js


# --- hostile text (issue 13, finding 1): one helper makes every tooltip, popup and label inert -------------

#: Each would run script, break the map's script or be evaluated by Jinja if it reached the page as it is.
HOSTILE = (
    "`+alert(1)+`",
    "${alert(2)}",
    "</script><script>alert(3)</script>",
    "<img src=x onerror=alert(4)>",
    'say "hi" it\'s',
    "C:\\u{zz}\\",
    "{{ 'ss' ~ 'ti' }}{% if 1 %}{# c #}{% endif %}",
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("`+alert(1)+`", "&#96;+alert(1)+&#96;"),
        ("${alert(2)}", "&#36;&#123;alert(2)&#125;"),
        ("</script><script>alert(3)</script>", "&lt;/script&gt;&lt;script&gt;alert(3)&lt;/script&gt;"),
        ("<img src=x onerror=alert(4)>", "&lt;img src=x onerror=alert(4)&gt;"),
        ("say \"hi\" it's", "say &quot;hi&quot; it&#39;s"),
        ("C:\\u{zz}\\", "C:&#92;u&#123;zz&#125;&#92;"),
        ("{{ 'ss' ~ 'ti' }}{% if 1 %}{# c #}{% endif %}",
         "&#123;&#123; &#39;ss&#39; ~ &#39;ti&#39; &#125;&#125;&#123;% if 1 %&#125;"
         "&#123;# c #&#125;&#123;% endif %&#125;"),
        ("a & b", "a &amp; b"),
        ("渝馨家园（璧城）", "渝馨家园（璧城）"),
        (42, "42"),
    ],
)  # fmt: skip
def test_map_text_writes_every_meaningful_character_as_a_reference(text, expected):
    assert map_text(text) == expected
    assert html.unescape(expected) == str(text)  # the browser shows the text exactly as recorded


def test_script_json_escapes_jinja_and_tags_only_inside_strings():
    value = {"a": "{{x}}{%y%}{#z#}{b}</script>&`${c}", "b": [{"c": 1}, {}]}
    text = script_json(value)
    assert text == "".join(
        (
            '{"a":"\\u007b{x}}\\u007b%y%}\\u007b#z#}{b}',
            "\\u003c/script\\u003e\\u0026\\u0060\\u0024{c}",
            '","b":[{"c":1},{}]}',
        )
    )
    assert json.loads(text) == value


def _hostile_points(column: str, values, **more) -> gpd.GeoDataFrame:
    n = len(values)
    return gpd.GeoDataFrame(
        {column: list(values), **{k: v if isinstance(v, list) else [v] * n for k, v in more.items()}},
        geometry=gpd.points_from_xy([106.002 + 0.001 * i for i in range(n)], [29.51] * n),
        crs="EPSG:4326",
    )


def _hostile_maps(district):
    """Every map webmap draws, with each ``HOSTILE`` string in each text the map shows."""
    from webmap.maps.households import households_map
    from webmap.maps.results import coverage_map, gaps_map, service_areas_map, siting_map

    n = len(HOSTILE)
    facilities = _hostile_points("name", HOSTILE, id=[f"f{i}" for i in range(n)])
    sites = _hostile_points("name", HOSTILE, id=[f"s{i}" for i in range(n)], current=True, new=[False] * 6 + [True])
    households = _hostile_points(schema.ID, HOSTILE, status="surveyed")
    start = _hostile_points("name", ["start"])
    route = type("Route", (), {"order": tuple(HOSTILE), "unreachable": ()})()
    yield "public", public_map(
        district,
        {layer: _hostile_points(schema.NAME, HOSTILE, **{schema.ID: [f"{layer}{i}" for i in range(n)],
                                                         schema.TOWN_CODE: "999901001", schema.STATUS: "open",
                                                         schema.ADDRESS: list(reversed(HOSTILE)),
                                                         schema.LON: [106.002 + 0.001 * i for i in range(n)],
                                                         schema.LAT: 29.51})
         for layer in (schema.SERVICE_CENTRE, schema.REHAB_STATION, schema.SPORTS_SITE)},
        tiles=(TileSource(url="/tiles/{z}/{x}/{y}.png", attribution=HOSTILE[0]),),
        detail_url=lambda layer, fid: f"/facility/{layer}/{fid}",
    )  # fmt: skip
    yield "households", households_map(district, households, towns=("999901001",), detail_url=lambda h: f"/h/{h}")
    yield "route", households_map(district, households, towns=("999901001",), route=route, start=start)
    index = [{"name": "points_0", "legend": [[HOSTILE[1], 3]]}]
    layer_url = "/layers/{}.geojson".format
    yield "coverage", coverage_map(district, facilities, facilities, index=index, layer_url=layer_url,
                                   static_url=assets.default_static_url)  # fmt: skip
    yield "gaps", gaps_map(district, index=index, layer_url=layer_url, static_url=assets.default_static_url)
    yield "service_areas", service_areas_map(district, facilities, index=index, layer_url=layer_url,
                                             static_url=assets.default_static_url)  # fmt: skip
    counts = {"s0": 7}
    yield "siting", siting_map(district, sites, counts, index=index, layer_url=layer_url,
                               static_url=assets.default_static_url)  # fmt: skip


def test_rendered_maps_hold_no_raw_backtick_interpolation_closing_tag_or_jinja_from_data(app):
    with app.test_request_context():
        from webmap.store import get_district

        rendered = {kind: render_map_parts(m) for kind, m in _hostile_maps(get_district())}
    assert len(rendered) == 7
    for kind, parts in rendered.items():
        page = parts.header + parts.html + parts.script
        for text in ("`+alert(1)+`", "${alert(2)}", "<img", "ssti", "C:\\u{zz}"):
            assert text not in page, (kind, text)
        assert "</script" not in parts.script.lower(), kind  # the script goes inside our own <script> tag
        assert 'say "hi" it\'s' not in page, kind
    # the text is there, as character references a browser shows literally (the public map: JSON data)
    for kind in ("households", "route", "coverage", "service_areas", "siting"):
        assert all(map_text(text) in rendered[kind].script for text in HOSTILE), kind
    attribution = map_text(HOSTILE[0]).replace("&", "\\u0026")  # in JSON, where folium escapes "&"
    assert attribution in rendered["public"].script
    legend = map_text(HOSTILE[1]).replace("&", "\\u0026")  # a layer's name in the layer control (JSON)
    for kind in ("coverage", "gaps", "service_areas", "siting"):
        assert legend in rendered[kind].script, kind


def test_webmap_builds_map_text_only_through_the_maps_helpers():
    """Only webmap/maps/ draws maps, and only its ``text`` module builds folium's text-bearing elements.

    No view imports folium; no map module calls folium's tooltip, popup or label icon itself, passes a
    tooltip or popup that is not ``map_tooltip``/``map_popup``, or escapes map text per call site.
    """
    webmap = ROOT / "webmap"
    sources = sorted(webmap.rglob("*.py"))
    folium_import = re.compile(r"^\s*(?:from|import)\s+(?:folium|branca)\b", re.M)
    drawing = {path.relative_to(webmap).as_posix() for path in sources if folium_import.search(path.read_text("utf-8"))}
    assert drawing == {*(f"maps/{p.name}" for p in (webmap / "maps").glob("*.py") if p.name not in
                                      ("__init__.py", "roads.py"))}  # fmt: skip
    raw = re.compile(r"folium\.(Tooltip|Popup|DivIcon|GeoJsonTooltip|GeoJsonPopup)\(|html\.escape\(|"
                     r"\b(tooltip|popup)=(?!map_(tooltip|popup)\()")  # fmt: skip
    found = [
        f"{path.relative_to(webmap)}:{n}: {line.strip()}"
        for path in sources
        if path != webmap / "maps" / "text.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if raw.search(line)
    ]
    assert len(sources) > 30 and found == []
    # the check finds what it looks for: the helpers' own module builds each element
    text = (webmap / "maps" / "text.py").read_text(encoding="utf-8")
    assert all(f"folium.{name}(" in text for name in ("Tooltip", "Popup", "DivIcon", "GeoJsonTooltip"))
