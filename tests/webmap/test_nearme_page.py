"""The "Near me" page (webmap.views.nearme) on Bishan demo data: form, answers, errors, nothing logged."""

from __future__ import annotations

import http.cookiejar
import logging
import re
import threading
import urllib.parse
import urllib.request

import pytest
from werkzeug.serving import make_server

from analyses.nearme import IN_SERVICE
from layers import schema
from tests.browser.harness import build_demo_app, close_app
from webmap.store import get_district, get_store

# Inside Bishan, in the town centre (璧城街道), near 文星社区.
LON, LAT = "106.22712", "29.59461"


@pytest.fixture(scope="module")
def app(tmp_path_factory, app_cache_dir):
    app = build_demo_app(tmp_path_factory.mktemp("nearme-app"), CACHE_DIR=str(app_cache_dir))
    yield app
    close_app(app)


@pytest.fixture
def client(app):
    return app.test_client()


def _token(client) -> str:
    html = client.get("/near-me").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_form_offers_the_villages_and_names_the_wheelchair_policy(app, client):
    html = client.get("/near-me").get_data(as_text=True)
    with app.app_context():
        first = get_district().villages[schema.NAME].iloc[0]
    assert f'<option value="{first}（' in html
    assert 'list="nearme-places"' in html
    assert "无障碍属性未知的道路按“宽松”处理" in html
    assert 'href="/near-me" aria-current="page"' in html  # the nav link


def test_typed_village_without_javascript_answers_a_page(app, client):
    with app.app_context():
        village = get_district().villages[schema.NAME].iloc[0]
    response = client.post("/near-me", data={"csrf_token": _token(client), "place": village})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for label in ("康复站", "渝馨家园", "无障碍厕所", "文化体育示范点"):
        assert label in html
    assert html.count("分钟") >= 8  # walk and wheelchair for four layers
    assert "米" in html


def test_located_origin_answers_json_for_the_four_layers(app, client):
    response = client.post(
        "/near-me", data={"csrf_token": _token(client), "lon": LON, "lat": LAT}, headers={"Accept": "application/json"}
    )
    data = response.get_json()
    assert response.status_code == 200
    assert [r["layer"] for r in data["results"]] == list(schema.PUBLIC_LAYERS)
    with app.app_context():
        in_service = {
            layer: set(get_store().features(layer, statuses=IN_SERVICE[layer])[schema.ID]) for layer in IN_SERVICE
        }
    for row in data["results"]:
        assert [p["profile"] for p in row["profiles"]] == ["walk", "wheelchair"]
        for p in row["profiles"]:
            assert p["found"] and p["distance_m"] > 0 and len(p["route"]) >= 2
            assert p["time_s"] > p["distance_m"] / 3  # never faster than 10.8 km/h
            assert p["id"] in in_service[row["layer"]]  # in service, of that layer (never a household)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"place": "106.9,29.1"}, "该位置不在本区范围内"),
        ({"place": "没有这个村"}, "找不到地点“没有这个村”"),
        ({"place": ""}, "请输入村（社区）或镇街名称"),
    ],
)
def test_bad_origins_get_a_clear_message(client, form, message):
    response = client.post("/near-me", data={"csrf_token": _token(client), **form})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_bad_origin_message_in_english(client):
    response = client.post(
        "/near-me?lang=en", data={"csrf_token": _token(client), "place": "106.9,29.1"}
    )
    assert "This location is outside the district" in response.get_data(as_text=True)


def test_anonymous_requests_are_rate_limited(app, client):
    app.config.update(API_ANON_RATE_PER_S=0.001, API_ANON_BURST=1)
    app.extensions.pop("accessplan_nearme_limiter", None)
    try:
        token = _token(client)
        statuses = [client.post("/near-me", data={"csrf_token": token, "place": "x"}).status_code for _ in range(3)]
    finally:
        app.extensions.pop("accessplan_nearme_limiter", None)
    assert statuses[0] == 400 and statuses[1:] == [429, 429]


@pytest.mark.allow_hosts(["127.0.0.1"])
def test_coordinates_are_never_in_the_url_or_the_logs(app, caplog, monkeypatch):
    """Through werkzeug's own server (which logs each request line) the located POST leaves no coordinate behind."""
    monkeypatch.setitem(app.config, "SESSION_COOKIE_SECURE", False)  # plain HTTP on loopback
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    try:
        with caplog.at_level(logging.DEBUG):
            html = opener.open(base + "/near-me").read().decode()
            token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
            body = urllib.parse.urlencode({"csrf_token": token, "lon": LON, "lat": LAT}).encode()
            request = urllib.request.Request(base + "/near-me", data=body, headers={"Accept": "application/json"})
            with opener.open(request) as response:
                assert response.status == 200
                assert response.url == base + "/near-me"
    finally:
        server.shutdown()
        thread.join(timeout=10)
    werkzeug_lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("POST /near-me HTTP/1.1" in line and " 200 " in line for line in werkzeug_lines)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for part in (LON, LAT, LON[:7], LAT[:6]):
        assert part not in logged
