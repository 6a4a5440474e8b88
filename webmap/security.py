"""Protect every response: CSRF on every form, security headers with a per-request CSP nonce, JSON errors.

Content-Security-Policy: ``script-src 'self'`` plus a per-request nonce. Templates put
``nonce="{{ csp_nonce() }}"`` on every inline ``<script>`` they (or folium, through
``nonce_inline_scripts``) emit; no ``'unsafe-inline'`` for scripts. Styles keep ``'unsafe-inline'``
because folium writes ``<style>`` blocks into the page head and Leaflet popups carry style attributes
(styles cannot run code). Tiles from ``TILE_URL`` are allowed as images.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flask import current_app, g, jsonify, request
from flask_babel import gettext
from flask_login import current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge

from layers.crypto import write_private_file
from webmap.errors import error_page

if TYPE_CHECKING:
    from flask import Flask, Response

    from webmap.maps.base import MapParts

logger = logging.getLogger(__name__)

#: Settings with their defaults (the instance config.py may change them).
DEFAULTS = {
    "LOGIN_MAX_FAILURES": 5,  # failed logins of one account (any address) before it is locked
    "LOGIN_MAX_FAILURES_PER_IP": 30,  # failed logins per IP address (any name) within the window
    "LOGIN_WINDOW_S": 15 * 60,  # the address window and an account's first lock (doubled per further failure)
    "LOGIN_MAX_LOCK_S": 4 * 3600,  # the longest lock of an account
    "SESSION_IDLE_S": 30 * 60,  # a session unused this long ends
    "SESSION_MAX_S": 12 * 3600,  # a session ends this long after sign-in, used or not
    "WTF_CSRF_TIME_LIMIT": 8 * 3600,  # a form stays valid for a working day
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,  # larger request bodies are refused (413) before they are read
}
#: The file in the instance folder holding the generated ``SECRET_KEY`` (when none is configured).
SECRET_KEY_FILE = "secret.key"
#: The shortest ``SECRET_KEY`` `accessplan serve` accepts.
MIN_SECRET_KEY_LENGTH = 32

_TIANDITU_TILES = "https://t{s}.tianditu.gov.cn/"  # the hosts of webmap.maps.base.tianditu_tiles
_SCRIPT_OPEN = re.compile(r"<script(?![^>]*\bnonce=)(?=[\s>])", re.IGNORECASE)


def init_app(app: Flask) -> None:
    """Add CSRF protection, the security headers, the ``csp_nonce()`` template function and JSON errors."""
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    if not app.config.get("SECRET_KEY"):  # tests get a key of their own; no file in the source tree
        path = Path(app.instance_path) / SECRET_KEY_FILE
        app.config["SECRET_KEY"] = secrets.token_hex(32) if app.testing else instance_secret_key(path)
    problem = secret_key_problem(app.config["SECRET_KEY"])
    if problem and not (app.testing or app.debug):
        logger.warning("%s", problem)
    CSRFProtect(app)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.after_request(_add_security_headers)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(HTTPException, _http_error)


def instance_secret_key(path: Path) -> str:
    """Return the session signing key kept in ``path``, made there (random, mode 0600) on first use."""
    if not path.exists():
        try:
            write_private_file(path, secrets.token_hex(32).encode("ascii"))
            logger.info("Generated a new SECRET_KEY in %s (mode 0600)", path)
        except FileExistsError:  # another process made it first
            pass
    return path.read_text(encoding="ascii").strip()


def secret_key_problem(key: str | bytes) -> str | None:
    """Return why ``key`` must not sign sessions on a production server (one line), or None if it may.

    The development key ``dev`` and any key shorter than ``MIN_SECRET_KEY_LENGTH`` characters are
    refused: whoever guesses the key can sign a session cookie for any account.
    """
    if key in ("dev", b"dev"):
        reason = "is the development key 'dev'"
    elif len(key) < MIN_SECRET_KEY_LENGTH:
        reason = f"has {len(key)} characters, fewer than {MIN_SECRET_KEY_LENGTH}"
    else:
        return None
    return (
        f"SECRET_KEY {reason}: anyone could sign a session cookie. Remove it from instance/config.py and "
        f"ACCESSPLAN_SECRET_KEY to use a generated one (instance/{SECRET_KEY_FILE}), or set a random key, "
        "e.g. python -c 'import secrets; print(secrets.token_hex())'."
    )


def csp_nonce() -> str:
    """Return this request's CSP nonce (made on first use; the header allows it only if used)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def nonce_inline_scripts(html: str) -> str:
    """Put this request's nonce on every ``<script>`` tag of ``html`` that has none.

    Only for markup our own code generated (folium's rendered map parts), never for text that
    contains user input, which must stay escaped.
    """
    return _SCRIPT_OPEN.sub(f'<script nonce="{csp_nonce()}"', html)


def nonced_map_parts(parts: MapParts) -> MapParts:
    """Return folium's rendered map ``parts`` with this request's nonce on their inline scripts.

    Rendered (and cached) parts carry no nonce; ``script`` needs none, since templates put it inside our
    own ``<script nonce=...>`` tag.
    """
    return dataclasses.replace(parts, header=nonce_inline_scripts(parts.header), html=nonce_inline_scripts(parts.html))


def content_security_policy(*, nonce: str | None, tile_urls: Sequence[str] = ()) -> str:
    """Return the Content-Security-Policy header value.

    Parameters
    ----------
    nonce
        The request's script nonce, or None when the page has no inline script.
    tile_urls
        Tile URL templates (``TILE_URL``, Tianditu); their hosts are allowed for images.
    """
    scripts = "'self'" + (f" 'nonce-{nonce}'" if nonce else "")
    images = " ".join(["'self' data:", *(_tile_source(u) for u in tile_urls)])
    directives = {
        "default-src": "'self'",
        "script-src": scripts,
        "style-src": "'self' 'unsafe-inline'",
        "img-src": images,
        "font-src": "'self'",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{k} {v}" for k, v in directives.items())


def is_api_request() -> bool:
    """Return True when the current request is for the JSON API (``/api/...``)."""
    return request.path == "/api" or request.path.startswith("/api/")


def json_error(status: int, message: str) -> tuple[Response, int]:
    """Return the API's error body ``{"error": {"status": ..., "message": ...}}`` with ``status``."""
    return jsonify({"error": {"status": status, "message": message}}), status


def _tile_source(tile_url: str) -> str:
    """Return a CSP source for a Leaflet tile template: ``https://t{s}.example.cn/...`` → ``https://*.example.cn``."""
    parts = urlsplit(tile_url)
    host = parts.netloc
    first, _, rest = host.partition(".")
    if "{" in first and rest:
        host = f"*.{rest}"
    return f"{parts.scheme}://{host}" if parts.scheme else host


def _add_security_headers(response: Response) -> Response:
    nonce = g.get("csp_nonce")
    response.headers["Content-Security-Policy"] = content_security_policy(nonce=nonce, tile_urls=_tile_urls())
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"  # CSRF checks the referrer over HTTPS
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(self)"
    if request.is_secure:
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    if current_user and current_user.is_authenticated:
        response.headers["Cache-Control"] = "no-store"  # staff pages and data stay out of shared caches
    return response


def _tile_urls() -> list[str]:
    urls = [current_app.config["TILE_URL"]] if current_app.config.get("TILE_URL") else []
    if current_app.config.get("TIANDITU_KEY"):
        urls.append(_TIANDITU_TILES)
    return urls


def _csrf_error(error: CSRFError) -> tuple[Response | str, int]:
    logger.info("Refused a %s to %s: %s", request.method, request.path, error.description)
    message = gettext("安全令牌（CSRF）缺失或已过期：请刷新页面后重新提交。")
    if is_api_request():
        return json_error(400, f"{message} JSON 请求请在 X-CSRFToken 请求头中提供令牌（见 /api/me）。")
    return error_page(BadRequest(message))


def _too_large(error: RequestEntityTooLarge) -> tuple[Response | str, int]:
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    logger.info("Refused a %s to %s: body of %s bytes", request.method, request.path, request.content_length)
    message = gettext("请求太大：最多 %(mb)s MB。请上传更小的文件。", mb=f"{limit / 1024 / 1024:g}")
    if is_api_request():
        return json_error(413, message)
    return error_page(RequestEntityTooLarge(message))


def _http_error(error: HTTPException) -> tuple[str, int] | tuple[Response, int]:
    if not is_api_request():
        return error_page(error)
    return json_error(error.code or 500, error.description or error.name)
