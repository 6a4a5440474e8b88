"""Serve "Near me" (附近设施): the nearest in-service facility of each public layer from one origin.

The origin is the browser's location (the page's button POSTs the coordinates in the request body:
never in a URL, never logged) or a typed village/community/town name of the district, or
``lon,lat``. Without JavaScript the form POSTs and the answer is a page; with ``static/js/nearme.js``
the same POST answers JSON and the page updates in place. Anonymous requests are rate-limited
(``webmap.ratelimit.TokenBucketLimiter`` with the API's settings). The routing is
``analyses.nearme`` on the app's prepared network (``webmap.runs.app_placer``).
"""

from __future__ import annotations

import math
import re
import threading
from typing import TYPE_CHECKING, Any

from flask import Blueprint, current_app, jsonify, render_template, request
from flask_babel import gettext
from flask_login import current_user

from layers import schema
from webmap.i18n import N_
from webmap.maps.layers import LAYER_LABELS
from webmap.ratelimit import anonymous_limiter
from webmap.runs import app_placer
from webmap.store import get_district, get_store

if TYPE_CHECKING:
    from flask import Response

    from analyses.nearme import NearMeIndex

bp = Blueprint("nearme", __name__)

_INDEX_KEY = "accessplan_nearme_index"
_LIMITER_KEY = "accessplan_nearme_limiter"
_INDEX_LOCK = threading.Lock()
_LONLAT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*[,，]\s*(-?\d+(?:\.\d+)?)\s*$")
#: Profile labels, in the order shown.
PROFILE_LABELS = {"walk": N_("步行"), "wheelchair": N_("轮椅")}


class OriginError(ValueError):
    """The origin cannot be used; the message is for the visitor."""


def _index() -> NearMeIndex:
    """Return the facilities snapped for near-me queries, rebuilt only when the store has changed."""
    from analyses.nearme import IN_SERVICE, NearMeIndex

    store = get_store()
    key = (store.url, store.data_version())
    cached = current_app.extensions.get(_INDEX_KEY)
    if cached is not None and cached[0] == key:
        return cached[1]
    with _INDEX_LOCK:
        facilities = {layer: store.features(layer, statuses=IN_SERVICE[layer]) for layer in schema.PUBLIC_LAYERS}
        index = NearMeIndex(app_placer(), facilities)
        current_app.extensions[_INDEX_KEY] = (key, index)
    return index


def _places() -> list[tuple[str, float, float]]:
    """Return (label, lon, lat) of the district's villages/communities and towns, for the name box."""
    district = get_district()
    towns = dict(
        zip(district.towns[schema.TOWN_CODE].astype(str), district.towns[schema.NAME].astype(str), strict=True)
    )
    out = []
    if district.has_villages:
        v = district.villages
        for name, code, point in zip(v[schema.NAME], v[schema.TOWN_CODE].astype(str), v.geometry, strict=True):
            out.append((f"{name}（{towns.get(code, code)}）", float(point.x), float(point.y)))
        # a town is placed at its first village (the town's own point is not in the district table)
        for code, town in towns.items():
            rows = v[v[schema.TOWN_CODE].astype(str) == code]
            if len(rows):
                out.append((town, float(rows.geometry.iloc[0].x), float(rows.geometry.iloc[0].y)))
    return out


def _origin(form: Any) -> tuple[float, float, str]:
    """Return (lon, lat, label) of the posted origin.

    Raises
    ------
    OriginError
        If nothing usable was given (the message, in the visitor's language, names the fix).
    """
    lon, lat = form.get("lon", "").strip(), form.get("lat", "").strip()
    place = form.get("place", "").strip()
    if lon and lat:
        try:
            x, y = float(lon), float(lat)
        except ValueError:
            raise OriginError(gettext("浏览器提供的位置无法识别。请输入村（社区）或镇街名称。")) from None
        return x, y, gettext("您的位置")
    if not place:
        raise OriginError(gettext("请输入村（社区）或镇街名称，或点击“使用我的位置”。"))
    match = _LONLAT.match(place)
    if match:
        return float(match.group(1)), float(match.group(2)), place
    places = _places()
    for label, x, y in places:
        if place == label:
            return x, y, label
    for label, x, y in places:
        if label.split("（")[0] == place:
            return x, y, label
    raise OriginError(
        gettext("找不到地点“%(place)s”。请从列表中选择本区的村（社区）或镇街，或输入“经度,纬度”。", place=place)
    )


def _in_district(lon: float, lat: float) -> bool:
    import shapely

    if not (math.isfinite(lon) and math.isfinite(lat)):
        return False
    outline = get_district().boundary.to_crs(schema.WGS84).union_all()
    return bool(outline.covers(shapely.Point(lon, lat)))


def _distance_text(metres: float) -> str:
    if metres < 1000:
        return gettext("%(n)d 米", n=round(metres))
    return gettext("%(n)s 公里", n=f"{metres / 1000:.1f}")


def _minutes_text(seconds: float) -> str:
    return gettext("%(n)d 分钟", n=max(1, math.ceil(seconds / 60)))


def answer(lon: float, lat: float) -> dict[str, Any]:
    """Return the near-me answer for (lon, lat): per layer and profile, facility, distance, time, route.

    Raises
    ------
    OriginError
        If the origin is outside the district or off the road network.
    """
    import geopandas as gpd

    from analyses.nearme import OffNetworkError

    if not _in_district(lon, lat):
        raise OriginError(gettext("该位置不在本区范围内。请选择本区的村（社区）或镇街。"))
    index = _index()
    point = gpd.GeoSeries(gpd.points_from_xy([lon], [lat]), crs=schema.WGS84).to_crs(index.net.crs).iloc[0]
    try:
        found = index.query(point.x, point.y)
    except OffNetworkError:
        raise OriginError(
            gettext("该位置离道路太远，无法沿道路计算路线。请选择附近的村（社区）或输入道路旁的位置。")
        ) from None
    rows = []
    for layer in schema.PUBLIC_LAYERS:
        row: dict[str, Any] = {"layer": layer, "label": gettext(LAYER_LABELS[layer]), "profiles": []}
        for profile, label in PROFILE_LABELS.items():
            near = found.get(profile, {}).get(layer)
            if near is None:
                row["profiles"].append({"profile": profile, "label": gettext(label), "found": False})
                continue
            route = gpd.GeoSeries(gpd.points_from_xy(near.route[:, 0], near.route[:, 1]), crs=index.net.crs).to_crs(
                schema.WGS84
            )
            row["profiles"].append(
                {
                    "profile": profile,
                    "label": gettext(label),
                    "found": True,
                    "id": near.facility_id,
                    "name": near.name,
                    "distance_m": round(near.distance_m, 1),
                    "time_s": round(near.time_s, 1),
                    "distance": _distance_text(near.distance_m),
                    "time": _minutes_text(near.time_s),
                    "route": [[round(p.y, 6), round(p.x, 6)] for p in route],
                }
            )
        rows.append(row)
    return {"origin": [round(lat, 6), round(lon, 6)], "results": rows}


def _policy_text() -> str:
    """Say which wheelchair profile and unknown-attribute policy the answers use."""
    from analyses.costs import CostSettings

    profile = CostSettings.from_config(current_app.config).profiles().get("wheelchair")
    policies = set() if profile is None or profile.access is None else set(profile.access.unknown.values())
    if policies == {"strict"}:
        policy = gettext("无障碍属性未知的道路按“严格”处理（视为不可通行）")
    elif policies == {"lenient"}:
        policy = gettext("无障碍属性未知的道路按“宽松”处理（视为可通行）")
    else:
        policy = gettext("无障碍属性未知的道路按各属性的设置处理")
    return gettext(
        "轮椅按 geo/profiles.toml 的轮椅出行方式计算（避开台阶和标为不可通行的道路，并考虑坡度）；%(policy)s。",
        policy=policy,
    )


def _rate_limited() -> bool:
    if current_user.is_authenticated:
        return False
    limiter = anonymous_limiter(_LIMITER_KEY)
    return limiter is not None and limiter.take(request.remote_addr or "-") > 0


def _wants_json() -> bool:
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "application/json"


@bp.route("/near-me", methods=["GET", "POST"])
def near_me() -> Response | tuple[Any, int] | str:
    """Show the form; on POST answer it (a page, or JSON for the page's script)."""
    context: dict[str, Any] = {"places": [p[0] for p in _places()], "policy": _policy_text()}
    status = 200
    if request.method == "POST":
        context["place"] = request.form.get("place", "")
        if _rate_limited():
            status, context["error"] = 429, gettext("请求过于频繁，请稍后再试。")
        else:
            try:
                lon, lat, label = _origin(request.form)
                context.update(answer(lon, lat), origin_label=label)
            except OriginError as exc:
                status, context["error"] = 400, str(exc)
        if _wants_json():
            keys = ("error", "results", "origin", "origin_label")
            return jsonify({k: context[k] for k in keys if k in context}), status
    return render_template("public/nearme.html", **context), status
