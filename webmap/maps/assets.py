"""Point folium's JavaScript and CSS links at our vendored copies in ``webmap/static/vendor/``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from types import MappingProxyType

from branca.element import Element
from folium.elements import JSCSSMixin

logger = logging.getLogger(__name__)

LEAFLET_VERSION = "1.9.4"
JQUERY_VERSION = "3.7.1"
MARKERCLUSTER_VERSION = "1.5.3"

#: folium asset name → file under ``webmap/static/`` (npm dist layout kept; licence next to each).
VENDOR_FILES = MappingProxyType(
    {
        "leaflet": f"vendor/leaflet/{LEAFLET_VERSION}/leaflet.js",
        "jquery": f"vendor/jquery/{JQUERY_VERSION}/jquery.min.js",
        "leaflet_css": f"vendor/leaflet/{LEAFLET_VERSION}/leaflet.css",
        "markercluster": f"vendor/leaflet.markercluster/{MARKERCLUSTER_VERSION}/leaflet.markercluster.js",
        "markercluster_css": f"vendor/leaflet.markercluster/{MARKERCLUSTER_VERSION}/MarkerCluster.css",
    }
)

#: folium defaults we do not use (our markers are DivIcons and CircleMarkers, our legend is HTML).
DROPPED_ASSETS = frozenset(
    {
        "bootstrap",
        "awesome_markers",
        "bootstrap_css",
        "glyphicons_css",
        "awesome_markers_font_css",
        "awesome_markers_css",
        "awesome_rotate_css",
    }
)


def default_static_url(filename: str) -> str:
    """Return the URL of ``filename`` under Flask's default static route (``/static/``)."""
    return f"/static/{filename}"


def localize_assets_inplace(element: Element, *, static_url: Callable[[str], str] = default_static_url) -> None:
    """Give ``element`` and every descendant with asset links new lists of local links.

    folium keeps ``default_js``/``default_css`` as class attributes, and ``add_js_link`` edits those
    shared lists; this function assigns new lists on each instance instead, so other maps in the
    process are untouched.

    Parameters
    ----------
    element
        A folium map (or any element); changed in place once all children are added.
    static_url
        Turns a path under ``webmap/static/`` into a URL; in a view pass
        ``lambda f: url_for("static", filename=f)``.

    Raises
    ------
    ValueError
        If an element asks for an asset we have not vendored (it would load from a CDN).
    """
    count = 0
    for item in _walk(element):
        if not isinstance(item, JSCSSMixin):
            continue
        item.default_js = _localize(item, item.default_js, static_url)
        item.default_css = _localize(item, item.default_css, static_url)
        count += 1
    logger.debug("Pointed the assets of %d element(s) at local files", count)


def _localize(
    item: JSCSSMixin, links: list[tuple[str, str]], static_url: Callable[[str], str]
) -> list[tuple[str, str]]:
    unknown = [name for name, _url in links if name not in VENDOR_FILES and name not in DROPPED_ASSETS]
    if unknown:
        msg = (
            f"`{type(item).__name__}` needs the asset(s) {unknown!r}, which are not vendored; "
            "copy them from npm into webmap/static/vendor/ and list them in `webmap.maps.assets.VENDOR_FILES`."
        )
        raise ValueError(msg)
    return [(name, static_url(VENDOR_FILES[name])) for name, _url in links if name in VENDOR_FILES]


def _walk(element: Element) -> Iterator[Element]:
    yield element
    for child in element._children.values():  # branca has no public iterator over children
        yield from _walk(child)
