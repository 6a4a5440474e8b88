"""The command line speaks the language of the environment: ``LANG=zh_CN.UTF-8`` → Chinese, else English.

Messages are written in Chinese (the source language, as in the web app) and marked with ``_``;
``pybabel extract`` collects them into the same catalogs (``webmap/translations``). English comes from
the compiled ``en`` catalog, read with the standard library's ``gettext`` so that building the CLI
stays light (no Flask-Babel, no app). The language is chosen from ``LC_ALL``, ``LC_MESSAGES`` and
``LANG``, the first one set, as the C library does.
"""

from __future__ import annotations

import gettext
import os
from functools import cache
from pathlib import Path

TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"


def cli_language(environ: os._Environ[str] | dict[str, str] | None = None) -> str:
    """Return ``"zh"`` when the locale environment names Chinese (``zh_CN.UTF-8``, ``zh_TW``...), else ``"en"``."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


@cache
def _catalog(language: str) -> gettext.NullTranslations:
    if language == "zh":
        return gettext.NullTranslations()  # the messages are Chinese already
    return gettext.translation("messages", localedir=TRANSLATIONS_DIR, languages=["en"], fallback=True)


def _(message: str, **values: object) -> str:
    """Return ``message`` in the command line's language, with ``%(name)s`` placeholders filled in."""
    text = _catalog(cli_language()).gettext(message)
    return text % values if values else text
