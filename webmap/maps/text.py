"""Text on a map made inert: every tooltip, popup, label, GeoJSON property and script JSON goes through here.

folium writes such text into a JavaScript template literal that Leaflet parses as HTML and branca renders
as a Jinja template once more; these helpers are the only place a webmap module builds a folium tooltip,
popup or label icon (``tests/webmap/test_maps.py`` checks).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import folium

if TYPE_CHECKING:
    import geopandas as gpd

#: Characters written as HTML character references by ``map_text``: those that mean something in HTML
#: (``&<>"'``), in a JavaScript string or template literal (backtick, ``$``, backslash) or to Jinja (braces:
#: branca compiles every rendered map piece as a Jinja template and renders it a second time).
_MAP_TEXT_REFERENCES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "'": "&#39;",
        "`": "&#96;",
        "$": "&#36;",
        "\\": "&#92;",
        "{": "&#123;",
        "}": "&#125;",
    }
)
#: A brace that would open a Jinja tag, comment or expression inside a JSON string (see ``script_json``).
_JINJA_OPENING = re.compile(r"\{(?=[{%#])")
#: Characters ``script_json`` writes as JSON escapes.
_SCRIPT_JSON_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("`", "\\u0060"), ("$", "\\u0024"))


def map_text(value: object) -> str:
    """Return ``value`` as text that is inert wherever a map puts it: HTML, a JavaScript literal, Jinja.

    Every tooltip, popup, label and attribution of our folium maps is built from this (through
    ``map_tooltip``, ``map_popup``, ``map_label_icon`` and ``labelled_geojson``): folium writes such text
    unescaped into a JavaScript template literal of the page's nonced script, Leaflet then parses it as
    HTML, and branca renders the script as a Jinja template once more. HTML-escaping alone leaves a
    backtick, ``${`` and ``{{`` working; here every character that means something in any of the three
    is written as an HTML character reference, which only the final HTML parse turns back into the
    character, so the text is shown exactly as recorded.

    Parameters
    ----------
    value
        Any value (``str()`` is taken): a name, an id, a label.

    Returns
    -------
    str
        Markup holding no ``<``, ``>``, quote, backtick, ``$``, backslash or brace.
    """
    return str(value).translate(_MAP_TEXT_REFERENCES)


def map_tooltip(text: object, **options: Any) -> folium.Tooltip:
    """Return a folium tooltip showing ``text`` as plain text (see ``map_text``); ``options`` go to Leaflet."""
    return folium.Tooltip(map_text(text), **options)


def map_popup(text: object, *, link: tuple[str, str] | None = None, max_width: int = 240) -> folium.Popup:
    """Return a folium popup showing ``text`` as plain text, then optionally a link.

    Parameters
    ----------
    text
        The popup's text (see ``map_text``).
    link
        ``(url, link text)``, shown on a line of its own; both are made inert like ``text``.
    max_width
        Largest width in pixels.
    """
    markup = map_text(text)
    if link is not None:
        url, label = link
        markup += f'<br><a href="{map_text(url)}">{map_text(label)}</a>'
    return folium.Popup(markup, max_width=max_width)


def map_label_icon(
    text: object,
    *,
    css: str,
    icon_size: tuple[int, int],
    icon_anchor: tuple[int, int],
    class_name: str,
    dot: bool = False,
) -> folium.DivIcon:
    """Return a DivIcon that shows ``text`` (plain text, see ``map_text``) in a ``<span class=css>``.

    ``css`` and ``class_name`` are our own class names, never data; ``dot`` puts a ``town-dot`` span first.
    """
    inner = '<span class="town-dot"></span>' if dot else ""
    return folium.DivIcon(
        html=f'<span class="{css}">{inner}{map_text(text)}</span>',
        icon_size=icon_size,
        icon_anchor=icon_anchor,
        class_name=class_name,
    )


def geojson_dict(gdf: gpd.GeoDataFrame) -> dict[str, Any]:
    """Return ``gdf`` (any CRS) as a GeoJSON dict in EPSG:4326 whose text properties are made inert (``map_text``).

    Every GeoJSON a map draws goes through here: its properties are written into the page's script.
    """
    collection = json.loads(gdf.to_crs("EPSG:4326").to_json(drop_id=True))
    for feature in collection["features"]:
        properties = feature.get("properties") or {}
        feature["properties"] = {k: map_text(v) if isinstance(v, str) else v for k, v in properties.items()}
    return collection


def labelled_geojson(
    gdf: gpd.GeoDataFrame, labels: Iterable[object], *, name: str, style_function: Callable[[dict], dict]
) -> folium.GeoJson:
    """Return a GeoJSON layer of ``gdf`` whose features show ``labels`` (plain text) as their tooltips.

    Parameters
    ----------
    gdf
        The features; numeric columns stay as they are (``style_function`` may read them).
    labels
        One tooltip text per row of ``gdf``.
    name
        Name in the layer control (made inert too).
    style_function
        Leaflet path style of a feature (folium's ``style_function``).
    """
    data = gdf.assign(label=[str(label) for label in labels])
    return folium.GeoJson(
        geojson_dict(data),
        name=map_text(name),
        style_function=style_function,
        tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False),
    )


def script_json(value: object) -> str:
    """Return ``value`` as compact UTF-8 JSON that can stand inside a ``<script>`` folium renders.

    ``<``, ``>``, ``&``, backtick and ``$`` are written as JSON ``u`` escapes (no ``</script>``, and as with
    ``map_text`` no character from the data that means something in HTML or a template literal), and so is
    each ``{`` that would open a Jinja tag (``{{``, ``{%``, ``{#``; branca renders the script as a Jinja
    template). Outside a JSON string a ``{`` is always followed by ``"`` or ``}``, and a backtick or ``$``
    never stands, so every character replaced is inside a string.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escape in _SCRIPT_JSON_ESCAPES:
        text = text.replace(char, escape)
    return _JINJA_OPENING.sub(r"\\u007b", text)
