"""Serve the public facility map, its list view and facility pages: no sign-in, public layers only.

Filters come from the query string and are applied on the server, so the map and the list always
show the same rows and a form without JavaScript works. Households never appear as points, names,
addresses or ids: only as counts per town, with small counts suppressed (``layers.privacy``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
import os
import secrets
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pandas as pd
from flask import Blueprint, Response, abort, current_app, g, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from geo.roadlines import ROAD_BANDS, RoadBand, band_roads_geojson
from layers import schema
from layers.errors import NotFoundError
from layers.privacy import MIN_PUBLIC_COUNT, household_counts
from webmap.compress import NoncedPage, accepts_gzip
from webmap.i18n import N_, current_language, current_locale
from webmap.maps.base import MapParts, display_geojson, render_map_parts, tile_sources_from_config
from webmap.maps.layers import LAYER_LABELS, ROAD_LABELS, STATUS_LABELS
from webmap.maps.public import facility_fragment, public_map
from webmap.security import csp_nonce, nonced_map_parts
from webmap.store import get_district, get_store
from webmap.timefmt import format_local_date

if TYPE_CHECKING:
    import geopandas as gpd

    from layers.district import District

logger = logging.getLogger(__name__)

bp = Blueprint("public", __name__)

#: Statuses shown to the public, per layer: everything except closed facilities.
SHOWN_STATUSES = MappingProxyType(
    {layer: tuple(s for s in schema.STATUSES[layer] if s != "closed") for layer in schema.PUBLIC_LAYERS}
)
#: Statuses kept by the "open only" filter: usable now (the solid symbols of the legend).
USABLE_STATUSES = frozenset({"open", "completed", "accepted"})

_TRUE = "is_true"


@dataclass(frozen=True)
class AccessibilityFeature:
    """A filter on recorded accessibility fields: every ``columns`` value must be True (or all-day hours)."""

    label: str
    columns: tuple[str, ...]
    test: str = _TRUE


#: Accessibility filters people use (query value → feature). Only toilets record these fields
#: (GB 50763-2012 §3.9); a facility without the record does not match.
ACCESSIBILITY_FEATURES = MappingProxyType(
    {
        "step_free": AccessibilityFeature(N_("无障碍入口（无台阶）"), ("step_free_entrance",)),
        "grab_bars": AccessibilityFeature(N_("安全抓杆（水平和垂直）"), ("grab_bar_horizontal", "grab_bar_vertical")),
        "call_button": AccessibilityFeature(N_("求助呼叫按钮"), ("call_button",)),
        "unisex_room": AccessibilityFeature(N_("独立无障碍厕所（家属可陪同）"), ("unisex_accessible_room",)),
        "all_day": AccessibilityFeature(N_("全天开放"), ("opening_hours",), test="all_day"),
    }
)
_ALL_DAY = frozenset({"全天", "24小时", "24h", "00:00-24:00", "0:00-24:00"})

#: Facts shown on a facility page, per layer: column → (label msgid, unit msgid or None).
_LAYER_FACTS: Mapping[str, tuple[tuple[str, str, str | None], ...]] = MappingProxyType(
    {
        schema.REHAB_STATION: (
            (schema.TRAINING_AREA_M2, N_("训练场地面积"), N_("%(value)s 平方米")),
            (schema.BEDS, N_("床位数"), None),
            (schema.DEVICES, N_("康复设备数"), None),
            (schema.INSTRUCTORS, N_("康复指导员数"), None),
            (schema.OPENED_ON, N_("开放日期"), None),
        ),
        schema.SERVICE_CENTRE: (
            (schema.CAPACITY, N_("服务容量（人）"), None),
            (schema.OPENED_ON, N_("开放日期"), None),
        ),
        schema.SPORTS_SITE: (
            (schema.AREA_M2, N_("场地面积"), N_("%(value)s 平方米")),
            (schema.ACTIVITIES, N_("活动项目"), None),
            (schema.OPENED_ON, N_("开放日期"), None),
        ),
        schema.ACCESSIBLE_TOILET: (
            (schema.PLANNED_COMPLETION, N_("计划完工日期"), None),
            ("opening_hours", N_("开放时间"), None),
        ),
    }
)

#: Accessible-toilet survey fields (DOMAIN.md §9) shown on a toilet's page, in survey order.
_TOILET_FIELDS: tuple[tuple[str, str, str | None], ...] = (
    ("step_free_entrance", N_("无障碍入口（无台阶）"), None),
    ("unisex_accessible_room", N_("独立无障碍厕所（男女通用）"), None),
    ("accessible_cubicle_f", N_("女厕无障碍厕位"), None),
    ("accessible_cubicle_m", N_("男厕无障碍厕位"), None),
    ("room_area_m2", N_("无障碍厕所面积"), N_("%(value)s 平方米")),
    ("turning_diameter_m", N_("轮椅回转直径"), N_("%(value)s 米")),
    ("door_clear_width_mm", N_("门净宽"), N_("%(value)s 毫米")),
    ("door_outward_or_emergency_unlock", N_("门外开或可紧急开启"), None),
    ("grab_bar_horizontal", N_("水平安全抓杆"), None),
    ("grab_bar_vertical", N_("垂直安全抓杆"), None),
    ("call_button", N_("求助呼叫按钮"), None),
    ("accessible_basin", N_("无障碍洗手盆"), None),
    ("accessible_urinal", N_("无障碍小便器"), None),
    ("signage", N_("无障碍标识"), None),
)
_SURVEY_DATE = "survey_date"
_SURVEY_SOURCE = "source"

_ROADS_CACHE_KEY = "accessplan_main_roads"
_MAP_CACHE_KEY = "accessplan_public_maps"
_MAP_CACHE_SIZE = 64
_COUNTS_CACHE_KEY = "accessplan_public_household_counts"
_FEATURES_CACHE_KEY = "accessplan_public_features"
_PAGE_CACHE_KEY = "accessplan_public_pages"
_PAGE_CACHE_SIZE = 128
#: Stands for the CSP nonce in a cached page; replaced by each response's own nonce.
_NONCE_PLACEHOLDER = f"accessplan-nonce-{secrets.token_hex(12)}"
_ROADS_CACHE_FILE = "roads_{band}.geojson.gz"
#: Bump when the drawn roads change shape (3: bands by zoom, served apart from the page).
_ROADS_CACHE_VERSION = 3


@dataclass(frozen=True)
class FacilityFilter:
    """What the visitor asked to see; the same filter drives the map, the list and the legend.

    Attributes
    ----------
    layers
        Public layers to show; all of them when the visitor chose none.
    town
        Town code, or None for every town.
    open_only
        Keep only facilities usable now (``USABLE_STATUSES``).
    features
        Keys of ``ACCESSIBILITY_FEATURES`` a facility must all have.
    query
        Text that the name or the address must contain (NFKC, case-insensitive); empty for any.
    """

    layers: tuple[str, ...] = schema.PUBLIC_LAYERS
    town: str | None = None
    open_only: bool = False
    features: tuple[str, ...] = ()
    query: str = ""

    @classmethod
    def from_args(cls, args: MultiDict[str, str], *, town_codes: tuple[str, ...]) -> FacilityFilter:
        """Read a filter from query arguments ``layer`` (repeated), ``town``, ``open``, ``feature``, ``q``.

        Raises
        ------
        ValueError
            If a value is not one of the known layers, towns or features (the message, in the request's
            language, names it and the allowed values).
        """
        layers = tuple(dict.fromkeys(v for v in args.getlist("layer") if v))
        unknown = [v for v in layers if v not in schema.PUBLIC_LAYERS]
        if unknown:
            msg = gettext(
                "筛选条件“设施类型”（layer）只能是 %(allowed)s；收到 %(value)s。请在筛选表单中重新选择。",
                allowed="、".join(schema.PUBLIC_LAYERS),
                value="、".join(unknown),
            )
            raise ValueError(msg)
        town = args.get("town") or None
        if town is not None and town not in town_codes:
            msg = gettext(
                "筛选条件“镇街”（town）必须是本区的镇街代码；收到 %(value)s。请在筛选表单中重新选择。", value=town
            )
            raise ValueError(msg)
        features = tuple(dict.fromkeys(v for v in args.getlist("feature") if v))
        unknown = [v for v in features if v not in ACCESSIBILITY_FEATURES]
        if unknown:
            msg = gettext(
                "筛选条件“无障碍设施”（feature）只能是 %(allowed)s；收到 %(value)s。请在筛选表单中重新选择。",
                allowed="、".join(ACCESSIBILITY_FEATURES),
                value="、".join(unknown),
            )
            raise ValueError(msg)
        return cls(
            layers=tuple(layer for layer in schema.PUBLIC_LAYERS if layer in layers) or schema.PUBLIC_LAYERS,
            town=town,
            open_only=args.get("open") in ("1", "on", "true"),
            features=features,
            query=args.get("q", "").strip()[:100],
        )

    @property
    def is_active(self) -> bool:
        """True when the visitor narrowed anything down (the page then offers to clear filters)."""
        return self != FacilityFilter()

    def query_args(self) -> dict[str, Any]:
        """Return the query arguments that rebuild this filter (for links between map and list)."""
        args: dict[str, Any] = {}
        if self.layers != schema.PUBLIC_LAYERS:
            args["layer"] = list(self.layers)
        if self.town:
            args["town"] = self.town
        if self.open_only:
            args["open"] = "1"
        if self.features:
            args["feature"] = list(self.features)
        if self.query:
            args["q"] = self.query
        return args

    def apply(self, layer: str, gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """Return the rows of ``layer`` that pass every condition (closed ones are never shown)."""
        keep = gdf[schema.STATUS].isin(SHOWN_STATUSES[layer])
        if self.open_only:
            keep &= gdf[schema.STATUS].isin(USABLE_STATUSES)
        if self.town:
            keep &= gdf[schema.TOWN_CODE].astype(str) == self.town
        for key in self.features:
            keep &= _has_feature(gdf, ACCESSIBILITY_FEATURES[key])
        if self.query:
            needle = _fold(self.query)
            text = gdf[schema.NAME].fillna("").astype(str) + "\n" + _column(gdf, schema.ADDRESS).fillna("").astype(str)
            keep &= text.map(lambda value: needle in _fold(value))
        return gdf[keep]


def select_facilities(facility_filter: FacilityFilter) -> dict[str, gpd.GeoDataFrame]:
    """Return the filtered rows of each chosen public layer from the app's store, in legend order."""
    shown = _shown_features()
    return {
        layer: facility_filter.apply(layer, shown[layer]) for layer in LAYER_LABELS if layer in facility_filter.layers
    }


def _shown_features() -> dict[str, gpd.GeoDataFrame]:
    """Return every shown row of each public layer, re-read only when the store has changed.

    Every change to the store appends a history row, so the highest history ``seq`` is a data
    version: one indexed query instead of building four GeoDataFrames per request.
    """
    store = get_store()
    key = (store.url, store.data_version())
    cached = current_app.extensions.get(_FEATURES_CACHE_KEY)
    if cached is not None and cached[0] == key:
        return cached[1]
    shown = {layer: store.features(layer, statuses=SHOWN_STATUSES[layer]) for layer in LAYER_LABELS}
    current_app.extensions[_FEATURES_CACHE_KEY] = (key, shown)
    return shown


@bp.get("/")
def index() -> Response:
    """Show the public map with its filters, legend, list, household counts and data provenance."""
    return _cached_page(_render_index)


@bp.get("/list")
def facility_list() -> Response:
    """Show the facility list alone (the map's text alternative), with the same filters as the map."""
    return _cached_page(_render_list)


def _render_index() -> str:
    district = get_district()
    facility_filter = _filter_from_request(district)
    layers = select_facilities(facility_filter)
    roads = road_band_urls() if _roads_key(district) is not None else None
    language = current_language()
    return render_template(
        "public/index.html",
        district_name=district.display_name(language),
        map_parts=nonced_map_parts(_map_parts(district, layers, roads, language)),
        legend=[(layer, gettext(LAYER_LABELS[layer]), len(gdf)) for layer, gdf in layers.items()],
        roads_shown=roads is not None,
        road_labels={highway: gettext(label) for highway, label in ROAD_LABELS.items()},
        tile_attributions=[t.attribution for t in tile_sources_from_config(current_app.config)],
        household_counts=_household_counts(district, language),
        min_public_count=MIN_PUBLIC_COUNT,
        **_list_context(district, facility_filter, layers, language),
    )


def _render_list() -> str:
    district = get_district()
    facility_filter = _filter_from_request(district)
    layers = select_facilities(facility_filter)
    language = current_language()
    return render_template(
        "public/list.html",
        district_name=district.display_name(language),
        **_list_context(district, facility_filter, layers, language),
    )


@bp.get("/facility/<layer>/<facility_id>")
def facility(layer: str, facility_id: str) -> str:
    """Show one public facility: what it is, where, its accessibility record and when it was checked."""
    if layer not in schema.PUBLIC_LAYERS:  # households (and anything else) are never a facility
        abort(404, gettext("图层 %(layer)s 没有公开的设施页面。", layer=repr(layer)))
    try:
        record = get_store().feature(layer, facility_id)
    except NotFoundError:
        abort(404, gettext("没有编号为 %(id)s 的公开设施。", id=facility_id))
    if record[schema.STATUS] not in SHOWN_STATUSES[layer]:
        abort(404, gettext("没有编号为 %(id)s 的公开设施。", id=facility_id))
    district = get_district()
    language = current_language()
    towns = district.town_names(language)
    status = record[schema.STATUS]
    survey = layer == schema.ACCESSIBLE_TOILET
    return render_template(
        "public/facility.html",
        district_name=district.display_name(language),
        layer=layer,
        record=record,
        type_label=gettext(LAYER_LABELS[layer]),
        status_label=gettext(STATUS_LABELS[status]) if status in STATUS_LABELS else status,
        town=towns.get(str(record[schema.TOWN_CODE]), str(record[schema.TOWN_CODE])),
        facts=_facts(record, _LAYER_FACTS.get(layer, ())),
        accessibility=_facts(record, _TOILET_FIELDS) if survey else None,
        survey_date=_present(record.get(_SURVEY_DATE)) if survey else None,
        survey_source=_present(record.get(_SURVEY_SOURCE)) if survey else None,
        updated_on=format_local_date(record.get(schema.UPDATED_AT)) or None,
        synthetic=bool(record.get(schema.SYNTHETIC)),
        map_url=url_for(
            "public.index", layer=layer, q=record[schema.NAME], _anchor=facility_fragment(layer, facility_id)
        ),
    )


# --- helpers -------------------------------------------------------------------------------------


def _cached_page(render: Callable[[], str]) -> Response:
    """Answer with the page ``render`` makes, rendered once per data version, language and query.

    A visitor's page depends only on the endpoint, the query string (filters, ``lang``), the language
    (query or cookie), the store's data version (``Store.data_version``: any write changes it), the
    road file and the tile settings, so the last ``_PAGE_CACHE_SIZE`` pages are kept, rendered with a
    placeholder nonce and compressed (``NoncedPage``); each response gets its own CSP nonce. Signed-in
    staff see their name and a CSRF token in the header: their pages are rendered every time.
    """
    if current_user.is_authenticated:
        return current_app.response_class(render(), mimetype="text/html")
    store = get_store()
    config = current_app.config
    key = (
        request.endpoint,
        current_locale(),
        request.script_root,
        request.query_string,
        store.url,
        store.data_version(),
        _roads_key(get_district()),
        *(config.get(name) for name in ("TIANDITU_KEY", "TILE_URL", "TILE_ATTR", "TILE_DATUM")),
    )
    cache: OrderedDict[Any, NoncedPage] = current_app.extensions.setdefault(_PAGE_CACHE_KEY, OrderedDict())
    lock = current_app.extensions.setdefault(f"{_PAGE_CACHE_KEY}_lock", threading.Lock())
    with lock:
        page = cache.get(key)
        if page is not None:
            cache.move_to_end(key)
    if page is None:
        g.csp_nonce = _NONCE_PLACEHOLDER
        try:
            page = NoncedPage.from_text(render(), _NONCE_PLACEHOLDER)
        finally:
            g.pop("csp_nonce", None)
        with lock:
            cache[key] = page
            while len(cache) > _PAGE_CACHE_SIZE:
                cache.popitem(last=False)
    nonce = csp_nonce()
    if accepts_gzip():
        response = current_app.response_class(page.gzipped(nonce), mimetype="text/html")
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = current_app.response_class(page.body(nonce), mimetype="text/html")
    response.vary.add("Accept-Encoding")
    return response


def _map_parts(
    district: District, layers: dict[str, gpd.GeoDataFrame], roads: list[dict[str, Any]] | None, language: str
) -> MapParts:
    """Build and render the map, or reuse a rendering of the same rows, versions, language and tiles.

    folium compiles every rendered piece as a Jinja template, which makes a map render slow next to
    the rest of the page; the same filter on unchanged data gives the same page, so the last
    ``_MAP_CACHE_SIZE`` renderings are kept (any edit bumps a row's version and misses the cache).
    """
    config = current_app.config
    key = (
        language,
        request.script_root,
        config.get("TIANDITU_KEY"),
        config.get("TILE_URL"),
        config.get("TILE_ATTR"),
        config.get("TILE_DATUM"),
        json.dumps(roads),
        tuple(
            (layer, tuple(gdf[schema.ID]), tuple(gdf[schema.VERSION]), tuple(gdf[schema.STATUS]))
            for layer, gdf in layers.items()
        ),
    )
    cache: OrderedDict[Any, MapParts] = current_app.extensions.setdefault(_MAP_CACHE_KEY, OrderedDict())
    lock = current_app.extensions.setdefault(f"{_MAP_CACHE_KEY}_lock", threading.Lock())
    with lock:
        parts = cache.get(key)
        if parts is not None:
            cache.move_to_end(key)
            return parts
    m = public_map(
        district,
        layers,
        roads=roads,
        tiles=tile_sources_from_config(config),
        datum=config.get("TILE_DATUM") or "wgs84",
        translate=gettext,
        language=language,
        detail_url=_detail_url,
        static_url=_static_url,
    )
    parts = render_map_parts(m)
    with lock:
        cache[key] = parts
        while len(cache) > _MAP_CACHE_SIZE:
            cache.popitem(last=False)
    return parts


def _filter_from_request(district: District) -> FacilityFilter:
    try:
        return FacilityFilter.from_args(request.args, town_codes=tuple(district.towns[schema.TOWN_CODE].astype(str)))
    except ValueError as error:
        abort(400, str(error))


def _list_context(
    district: District, facility_filter: FacilityFilter, layers: dict[str, gpd.GeoDataFrame], language: str
) -> dict[str, Any]:
    """Template values shared by the map and the list: the filter form and the rows."""
    towns = district.town_names(language)
    return {
        "filter": facility_filter,
        "filter_args": facility_filter.query_args(),
        "layer_choices": [(layer, gettext(label)) for layer, label in LAYER_LABELS.items()],
        "town_choices": list(towns.items()),
        "feature_choices": [(key, gettext(f.label)) for key, f in ACCESSIBILITY_FEATURES.items()],
        "facilities": _facility_rows(layers, towns),
    }


def _has_feature(gdf: gpd.GeoDataFrame, feature: AccessibilityFeature) -> pd.Series:
    keep = pd.Series(True, index=gdf.index)
    for column in feature.columns:
        values = _column(gdf, column)
        if feature.test == "all_day":
            keep &= values.map(lambda v: isinstance(v, str) and v.strip().replace(" ", "") in _ALL_DAY)
        else:
            keep &= values.map(lambda v: v is True or v == True)  # noqa: E712 (numpy bools too)
    return keep


def _column(gdf: gpd.GeoDataFrame, column: str) -> pd.Series:
    """Return ``gdf[column]``, or a column of None when no row of the layer has that attribute."""
    if column in gdf.columns:
        return gdf[column]
    return pd.Series(None, index=gdf.index, dtype=object)


def _fold(text: str) -> str:
    """Normalise text for search: NFKC (full-width → half-width), case-folded, no spaces."""
    return unicodedata.normalize("NFKC", text).casefold().replace(" ", "")


def _facility_rows(layers: dict[str, gpd.GeoDataFrame], towns: Mapping[str, str]) -> list[dict[str, str]]:
    """List every facility drawn on the map, in legend order, then by town code (then store order: id)."""
    rows = []
    for order, (layer, gdf) in enumerate(layers.items()):
        label = gettext(LAYER_LABELS[layer])
        for record in gdf.to_dict("records"):
            town_code = str(record[schema.TOWN_CODE])
            status = record[schema.STATUS]
            address = record.get(schema.ADDRESS)
            rows.append(
                {
                    "order": (order, town_code),
                    "name": str(record[schema.NAME]),
                    "type": label,
                    "layer": layer,
                    "town": towns.get(town_code, town_code),
                    "address": address if isinstance(address, str) else "",
                    "status": gettext(STATUS_LABELS[status]) if status in STATUS_LABELS else status,
                    "url": _detail_url(layer, str(record[schema.ID])),
                }
            )
    return sorted(rows, key=lambda r: r["order"])


def _household_counts(district: District, language: str) -> list[dict[str, Any]]:
    """Return one row per town: its name and household count, None where the count is suppressed."""
    counts = _cached_household_counts()
    by_town = {str(r[schema.TOWN_CODE]): r for r in counts.to_dict("records")}
    rows = []
    for code, name in district.town_names(language).items():
        found = by_town.get(code)
        if found is None:
            rows.append({"town": name, "count": 0, "suppressed": False})
        else:
            count = None if found["suppressed"] else int(found["count"])
            rows.append({"town": name, "count": count, "suppressed": bool(found["suppressed"])})
    return rows


def _cached_household_counts() -> pd.DataFrame:
    """Return ``household_counts`` per town, counted again only when the store's data version changes.

    Counting reads every household row; the cached page it goes into is keyed by the same version.
    """
    store = get_store()
    key = (store.url, store.data_version())
    cached = current_app.extensions.get(_COUNTS_CACHE_KEY)
    if cached is not None and cached[0] == key:
        return cached[1]
    counts = household_counts(store, by=(schema.TOWN_CODE,), min_count=MIN_PUBLIC_COUNT)
    current_app.extensions[_COUNTS_CACHE_KEY] = (key, counts)
    return counts


def _facts(record: Mapping[str, Any], fields: tuple[tuple[str, str, str | None], ...]) -> list[tuple[str, str]]:
    """Return ``(label, value text)`` for each field; booleans as yes/no, missing as 'not recorded'."""
    out = []
    for column, label, unit in fields:
        value = _present(record.get(column))
        if value is None:
            text = gettext("未记录")
        elif isinstance(value, bool):
            text = gettext("有") if value else gettext("无")
        else:
            if isinstance(value, float) and value.is_integer() and column.endswith("_mm"):
                value = int(value)
            text = gettext(unit) % {"value": value} if unit else str(value)
        out.append((gettext(label), text))
    return out


def _present(value: Any) -> Any:
    """Return ``value``, or None for a missing one (None, NaN, empty text)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    return value


def _detail_url(layer: str, facility_id: str) -> str:
    return url_for("public.facility", layer=layer, facility_id=facility_id)


def _static_url(filename: str) -> str:
    return url_for("static", filename=filename)


def _roads_key(district: District) -> tuple[Any, ...] | None:
    """Return the version of the district's road file (path, size, mtime), or None when there is none."""
    path = district.roads_path
    if not path.is_file():
        return None
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns, _ROADS_CACHE_VERSION)


def road_band_urls() -> list[dict[str, Any]]:
    """Return each road band's first zoom and URL, for the map's road script (``RoadLayer``)."""
    return [{"min_zoom": band.min_zoom, "url": url_for("public.roads", band=band.name)} for band in ROAD_BANDS]


@bp.get("/map/roads/<band>.geojson")
def roads(band: str) -> Response:
    """Serve one road band (``geo.roadlines.ROAD_BANDS``) of the district's road file as GeoJSON.

    The map fetches the band its zoom needs, so no road data sits in the page. Each band is built
    once per road-file version and display datum, kept gzipped in memory and on disk
    (``CACHE_DIR``), and answered with an ETag so a browser revalidates instead of downloading again.
    """
    chosen = {b.name: b for b in ROAD_BANDS}.get(band)
    if chosen is None:
        abort(
            404,
            gettext(
                "没有道路图层 %(band)s；可用的有 %(allowed)s。",
                band=band,
                allowed="、".join(b.name for b in ROAD_BANDS),
            ),
        )
    district = get_district()
    key = _roads_key(district)
    if key is None:
        abort(404, gettext("本区没有道路数据文件，地图不显示道路。"))
    datum = current_app.config.get("TILE_DATUM") or "wgs84"
    body = _band_body(chosen, [*key, datum])
    if body is None:
        abort(404, gettext("道路数据文件无法读取，地图不显示道路。"))
    etag = hashlib.sha256(repr((key, datum, band)).encode()).hexdigest()[:32]
    if request.if_none_match.contains(etag):
        response = current_app.response_class(status=304)
    elif accepts_gzip():
        response = current_app.response_class(body, mimetype="application/geo+json")
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = current_app.response_class(gzip.decompress(body), mimetype="application/geo+json")
    response.set_etag(etag)
    response.cache_control.public = True
    response.cache_control.no_cache = True  # revalidate: a new road file must show at once
    response.vary.add("Accept-Encoding")
    return response


def _band_body(band: RoadBand, key: list[Any]) -> bytes | None:
    """Return one band's GeoJSON, gzipped, from memory, the disk cache or the road network (None: unreadable)."""
    memory = current_app.extensions.setdefault(_ROADS_CACHE_KEY, {})
    found = memory.get(band.name)
    if found is not None and found[0] == key:
        return found[1]
    cache_path = Path(current_app.config["CACHE_DIR"]) / _ROADS_CACHE_FILE.format(band=band.name)
    tag = json.dumps(key).encode()
    try:
        stored = cache_path.read_bytes()
    except OSError:
        stored = b""
    head, _sep, body = stored.partition(b"\n")
    if head != tag or not body:
        from geo.errors import NetworkError
        from webmap.runs import app_placer

        try:
            collection = band_roads_geojson(app_placer().net, band)
        except NetworkError as exc:
            logger.warning("The public map is drawn without roads: %s", exc)
            return None
        collection = display_geojson(collection, key[-1])
        body = gzip.compress(json.dumps(collection, ensure_ascii=False, separators=(",", ":")).encode(), mtime=0)
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(tag + b"\n" + body)
        tmp.replace(cache_path)
        logger.info("Cached %d road features of band %r in %r", len(collection["features"]), band.name, str(cache_path))
    memory[band.name] = (key, body)
    return body
