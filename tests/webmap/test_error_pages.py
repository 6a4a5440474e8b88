"""Error pages carry the site header, the page's language and a way back, never Werkzeug's bare page."""

from __future__ import annotations

import pytest
from flask import abort

_WERKZEUG = ("The requested URL was not found", "The method is not allowed", "Internal Server Error", "The browser")


@pytest.fixture
def failing_app(app):
    """The test app with routes that fail in the ways a page can (added before its first request)."""
    app.config["PROPAGATE_EXCEPTIONS"] = False  # what a server does: the 500 handler draws the page

    @app.get("/test-abort/<int:status>")
    def test_abort(status: int):
        abort(status)

    @app.get("/test-boom")
    def test_boom():
        raise RuntimeError("secret detail of the failure")

    return app


def _assert_site_page(text: str, lang: str) -> None:
    assert f'<html lang="{lang}">' in text
    assert 'class="site-header"' in text and 'class="skip-link"' in text  # base.html
    assert 'href="/"' in text  # a way back to the map
    assert not any(phrase in text for phrase in _WERKZEUG)


@pytest.mark.parametrize(
    ("method", "url", "status", "zh", "en"),
    [
        ("GET", "/no-such-page", 404, "找不到页面（404）", "Page not found (404)"),
        ("GET", "/facility/sports_site/nope", 404, "没有编号为 nope 的公开设施。", "No public facility with ID nope."),
        ("GET", "/?feature=sauna", 400, "筛选条件“无障碍设施”（feature）", "Filter “accessibility” (feature)"),
        ("GET", "/test-abort/400", 400, "请求有误（400）", "Bad request (400)"),
        ("GET", "/test-abort/403", 403, "没有权限（403）", "Access denied (403)"),
        ("TRACE", "/list", 405, "不支持此操作（405）", "Not supported (405)"),
        ("GET", "/test-abort/413", 413, "请求太大（413）", "Request too large (413)"),
        ("GET", "/test-abort/429", 429, "请求太频繁（429）", "Too many requests (429)"),
        ("GET", "/test-boom", 500, "服务器出错（500）", "Server error (500)"),
    ],
)
def test_error_pages_speak_the_page_language(failing_app, method, url, status, zh, en):
    client = failing_app.test_client()
    chinese = client.open(url, method=method)
    assert chinese.status_code == status
    text = chinese.get_data(as_text=True)
    _assert_site_page(text, "zh-CN")
    assert zh in text
    english = client.open(url + ("&" if "?" in url else "?") + "lang=en", method=method)
    assert english.status_code == status
    text = english.get_data(as_text=True)
    _assert_site_page(text, "en")
    assert en in text and "返回设施地图" not in text and "Back to the facility map" in text
    assert "secret detail" not in text and "Traceback" not in text


def test_error_page_links_back_to_the_page_the_visitor_came_from(client):
    text = client.get("/facility/sports_site/nope", headers={"Referer": "http://localhost/list?town=1"}).get_data(
        as_text=True
    )
    assert 'href="http://localhost/list?town=1"' in text
    other_site = client.get("/facility/sports_site/nope", headers={"Referer": "http://evil.example/x"})
    assert "evil.example" not in other_site.get_data(as_text=True)


def test_error_page_language_switch_goes_to_the_map_not_the_failed_url(client):
    text = client.get("/facility/household/HH-secret-7").get_data(as_text=True)
    assert "HH-secret-7" not in text
    assert 'href="/?lang=en"' in text
