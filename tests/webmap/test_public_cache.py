"""Public pages under load: rendered once per data version, language and query; gzipped; one nonce each."""

from __future__ import annotations

import gzip
import re
import zlib

import pytest
from flask import template_rendered

from layers import schema, users
from tests.webmap.staff_fixtures import PASSWORD, log_in
from webmap.compress import MIN_SIZE, NoncedPage, gzip_bytes
from webmap.store import get_store

_NONCE = re.compile(r"'nonce-([^']+)'")


@pytest.fixture
def renders(app):
    """Names of the templates the app renders while the test runs (Flask's ``template_rendered`` signal)."""
    seen: list[str] = []

    def record(_sender, template, context, **_extra):
        seen.append(template.name)

    template_rendered.connect(record, app)
    yield seen
    template_rendered.disconnect(record, app)


def _nonce(response) -> str:
    return _NONCE.search(response.headers["Content-Security-Policy"]).group(1)


def _strict_gunzip(data: bytes) -> bytes:
    """Decompress one gzip member and check that nothing follows it (what browsers and httpx read)."""
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    plain = decoder.decompress(data)
    assert decoder.eof and decoder.unused_data == b""
    return plain


@pytest.mark.parametrize("path", ["/", "/list", "/?layer=accessible_toilet&lang=en"])
def test_a_page_is_rendered_once_until_the_data_change(app, client, renders, make_rows, path):
    first = client.get(path)
    second = client.get(path)
    page_renders = [name for name in renders if name.startswith("public/")]
    assert page_renders == [page_renders[0]]  # the second view came from the cache
    assert _nonce(first) != _nonce(second)  # ... with a nonce of its own
    assert first.get_data(as_text=True).replace(_nonce(first), "N") == second.get_data(as_text=True).replace(
        _nonce(second), "N"
    )
    with app.app_context():
        get_store().upsert_features(schema.SPORTS_SITE, make_rows("s", ["体育点丙"], ["open"]), user="t")
    third = client.get(path)
    assert len([name for name in renders if name.startswith("public/")]) == 2  # a write: rendered again
    assert ("体育点丙" in third.get_data(as_text=True)) == ("layer=" not in path)


def test_language_cookie_and_query_are_separate_pages(client):
    chinese = client.get("/list").get_data(as_text=True)
    english = client.get("/list?lang=en").get_data(as_text=True)
    by_cookie = client.get("/list").get_data(as_text=True)  # the cookie set by ?lang=en
    assert 'lang="zh-CN"' in chinese and 'lang="en"' in english and 'lang="en"' in by_cookie


def test_pages_are_gzipped_for_clients_that_accept_it(client):
    plain = client.get("/", headers={"Accept-Encoding": "identity"})
    packed = client.get("/", headers={"Accept-Encoding": "gzip, deflate"})
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"] and "Accept-Encoding" in plain.headers["Vary"]
    text = _strict_gunzip(packed.get_data()).decode("utf-8")
    assert text.replace(_nonce(packed), "N") == plain.get_data(as_text=True).replace(_nonce(plain), "N")
    assert f'nonce="{_nonce(packed)}"' in text
    assert len(packed.get_data()) < len(plain.get_data()) / 3


def test_signed_in_staff_pages_are_not_served_from_the_visitors_cache(app, client):
    assert "工作人员登录" in client.get("/list").get_data(as_text=True)  # cached for visitors
    with app.app_context():
        users.add_user(get_store(), "planner1", role="planner", password=PASSWORD)
    staff = app.test_client()
    assert log_in(staff, "planner1").status_code == 302
    text = staff.get("/list").get_data(as_text=True)
    assert "退出登录" in text and "planner1" in text and "工作人员登录" not in text
    assert "planner1" not in client.get("/list").get_data(as_text=True)  # the visitors' page stays theirs


def test_api_json_is_gzipped_and_small_bodies_are_not(app, client, make_rows):
    with app.app_context():  # 20 rows: a body of several kB
        get_store().upsert_features(
            schema.REHAB_STATION, make_rows("r", [f"站{i}" for i in range(20)], ["open"] * 20), user="t"
        )
    packed = client.get("/api/layers/rehab_station", headers={"Accept-Encoding": "gzip"})
    plain = client.get("/api/layers/rehab_station", headers={"Accept-Encoding": ""})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert _strict_gunzip(packed.get_data()) == plain.get_data()
    small = client.get("/api/layers", headers={"Accept-Encoding": "gzip"})
    assert (len(small.get_data()) < MIN_SIZE) == ("Content-Encoding" not in small.headers)


def test_nonced_page_joins_independent_deflate_pieces():
    text = '<head><script nonce="@@">a()</script></head>' + "x" * 5000 + '<script nonce="@@">b()</script>'
    page = NoncedPage.from_text(text, "@@")
    assert len(page.pieces) == 3
    assert page.body("n1") == text.replace("@@", "n1").encode()
    assert _strict_gunzip(page.gzipped("n1")) == page.body("n1")
    assert _strict_gunzip(page.gzipped("other")) == page.body("other")
    assert gzip.decompress(gzip_bytes(b"y" * 3000)) == b"y" * 3000
    assert gzip_bytes(b"z" * 3000) is gzip_bytes(b"z" * 3000)  # the same body is compressed once
