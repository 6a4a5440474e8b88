"""Choose the page language (zh-CN first, English on request) and wire Flask-Babel into the app.

Messages are written in Chinese in the code and templates (zh-CN is the source language); the
catalogs live in ``webmap/translations/``: ``en`` translates them, ``zh_Hans_CN`` (Babel's name for
zh_CN; gettext would not find a ``zh_CN`` folder for it) is the identity catalog where Chinese wording
can be edited without touching code. The compiled ``.mo`` files are committed next to their ``.po``
files, so a fresh clone serves both languages without a build step; tests check that each ``.mo``
matches its ``.po`` and that every extracted message is translated.

Update the catalogs after changing a message::

    pybabel extract -F webmap/translations/babel.cfg -k N_ -k translate --no-location \
        --sort-output -o webmap/translations/messages.pot webmap
    pybabel update -i webmap/translations/messages.pot -d webmap/translations --no-fuzzy-matching --ignore-obsolete
    (translate the new entries of en/LC_MESSAGES/messages.po; copy msgid to msgstr in zh_Hans_CN)
    pybabel compile -d webmap/translations
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import MappingProxyType
from typing import Any

from flask import Flask, Response, g, request, url_for
from flask_babel import Babel, get_locale

logger = logging.getLogger(__name__)

TRANSLATIONS_DIR = Path(__file__).with_name("translations")
#: Marker functions ``pybabel extract`` must know besides gettext's own (``-k`` options).
EXTRACT_KEYWORDS = ("N_", "translate")


def N_(message: str) -> str:  # noqa: N802 (gettext convention)
    """Mark ``message`` for translation without translating it (``pybabel extract`` keyword)."""
    return message


#: Supported locales (Babel names) → the name of the language in itself, for the switch link.
LANGUAGES = MappingProxyType({"zh_CN": "中文", "en": "English"})
DEFAULT_LOCALE = "zh_CN"
#: Set on ``flask.g`` while an error page is drawn (``webmap.errors``): its language switch goes to the map.
ERROR_PAGE_FLAG = "accessplan_error_page"
#: Cookie that remembers a language chosen with ``?lang=``.
LANG_COOKIE = "lang"
_LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600

#: What ``?lang=`` accepts (lower case) → Babel locale.
_LANG_ALIASES = MappingProxyType(
    {"zh": "zh_CN", "zh_cn": "zh_CN", "zh-cn": "zh_CN", "zh-hans": "zh_CN", "cn": "zh_CN", "en": "en", "en-us": "en"}
)


def init_app(app: Flask) -> None:
    """Set up Flask-Babel on ``app``: locale from ``?lang=``, then the cookie, else zh-CN."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    Babel(app, locale_selector=select_locale)
    app.after_request(_remember_language)
    app.context_processor(_template_globals)


def select_locale() -> str:
    """Return the Babel locale of this request: ``?lang=`` wins, then the cookie, else zh-CN."""
    chosen = _requested_locale()
    if chosen is not None:
        return chosen
    return _LANG_ALIASES.get(request.cookies.get(LANG_COOKIE, "").lower(), DEFAULT_LOCALE)


def current_locale() -> str:
    """Return the key in ``LANGUAGES`` of this request's locale (Babel spells zh_CN ``zh_Hans_CN``)."""
    locale = get_locale()
    return "en" if locale is not None and locale.language == "en" else DEFAULT_LOCALE


def current_language() -> str:
    """Return ``"en"`` or ``"zh"``: which place-name column (``name_en`` or ``name``) to show."""
    return "en" if current_locale() == "en" else "zh"


def html_lang() -> str:
    """Return the BCP 47 tag of the current locale for ``<html lang>`` (``zh-CN`` or ``en``)."""
    return current_locale().replace("_", "-")


def switch_language_url(locale: str) -> str:
    """Return the current page's URL with its query kept and ``lang`` set to ``locale``."""
    args: dict[str, Any] = request.args.to_dict(flat=False)
    args.pop("lang", None)  # last in the URL, after the page's own arguments
    args["lang"] = "zh-CN" if locale == "zh_CN" else locale
    # an error page (or a 404 with no endpoint) switches to the map: its URL may hold what must not be repeated
    if request.endpoint is None or request.endpoint == "static" or g.get(ERROR_PAGE_FLAG):
        return url_for("public.index", lang=args["lang"])
    return url_for(request.endpoint, **(request.view_args or {}), **args)


def _requested_locale() -> str | None:
    value = request.args.get("lang")
    return None if value is None else _LANG_ALIASES.get(value.lower())


def _remember_language(response: Response) -> Response:
    chosen = _requested_locale()
    if chosen is not None and request.cookies.get(LANG_COOKIE) != chosen:
        response.set_cookie(
            LANG_COOKIE, chosen, max_age=_LANG_COOKIE_MAX_AGE_S, httponly=True, samesite="Lax", path="/"
        )
    return response


def _template_globals() -> dict[str, Any]:
    locale = current_locale()
    others = [(code, name, switch_language_url(code)) for code, name in LANGUAGES.items() if code != locale]
    return {"html_lang": html_lang(), "other_languages": others}
