from __future__ import annotations

import io

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from webmap import i18n

LOCALES = ("en", "zh_Hans_CN")


def _catalog(locale: str, suffix: str):
    path = i18n.TRANSLATIONS_DIR / locale / "LC_MESSAGES" / f"messages.{suffix}"
    with path.open("rb") as f:
        return (read_po if suffix == "po" else read_mo)(f)


def _extracted() -> set:
    keywords = {**DEFAULT_KEYWORDS, **{k: None for k in i18n.EXTRACT_KEYWORDS}}
    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    return {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            i18n.TRANSLATIONS_DIR.parent, method_map=method_map, keywords=keywords
        )
    }


@pytest.mark.parametrize("locale", LOCALES)
def test_compiled_catalog_matches_its_po_file(locale):
    po = _catalog(locale, "po")
    buffer = io.BytesIO()
    write_mo(buffer, po)
    committed = (i18n.TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.mo").read_bytes()
    assert committed == buffer.getvalue(), "recompile: pybabel compile -d webmap/translations"


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_in_the_code_is_translated(locale):
    catalog = _catalog(locale, "po")
    extracted = _extracted()
    assert len(extracted) > 100
    missing = []
    for message in extracted:
        entry = catalog.get(message if isinstance(message, str) else message[0])
        strings = entry.string if entry is not None else None
        if not strings or (isinstance(strings, tuple) and not all(strings)):
            missing.append(message)
    assert missing == []


def test_chinese_catalog_is_the_identity():
    for message in _catalog("zh_Hans_CN", "po"):
        if message.id:
            expected = message.id if isinstance(message.id, str) else (message.id[0],)
            assert message.string == expected


def test_english_keeps_placeholders():
    for message in _catalog("en", "po"):
        if isinstance(message.id, str) and "%(" in message.id:
            names = sorted(part.split(")")[0] for part in message.id.split("%(")[1:])
            assert sorted(part.split(")")[0] for part in message.string.split("%(")[1:]) == names, message.id
