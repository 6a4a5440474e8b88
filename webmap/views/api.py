"""Serve the JSON/GeoJSON API: public layers and counts for everyone, households and toilets for staff.

Public routes never touch households' rows, only suppressed counts. Staff routes check the role
and, for caseworkers, the town: a household outside the caller's towns answers 404 exactly like a
missing one, and the attempt is logged (user, role, record id; never personal data). JSON POSTs
use the session cookie and the CSRF token in the ``X-CSRFToken`` header (``GET /api/me`` gives it).
Errors are ``{"error": {"status": ..., "message": ...}}``. The OpenAPI description is
``GET /api/openapi.json`` (``webmap.views.openapi``).
"""

from __future__ import annotations

import json
import logging
import math
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from flask import Blueprint, abort, current_app, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from layers import schema
from layers.errors import AccessDeniedError, NotFoundError, StaleVersionError, WorkflowError
from layers.privacy import (
    FULL_VIEW_ROLES,
    HOUSEHOLD_VIEW_ROLES,
    MIN_PUBLIC_COUNT,
    check_reason,
    household_counts,
    read_households,
)
from webmap.auth import ROLE_LABELS, role_required
from webmap.security import json_error
from webmap.store import get_district, get_store
from webmap.views import openapi

if TYPE_CHECKING:
    import geopandas as gpd
    from flask import Response

logger = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api")

#: Roles that read the toilet register (all statuses, build fields, versions).
TOILET_VIEW_ROLES = ("bureau", "planner", "admin")
#: Roles that change a toilet's status.
TOILET_EDIT_ROLES = ("bureau", "admin")
#: Roles that change a household's status (caseworkers: own towns only).
HOUSEHOLD_EDIT_ROLES = ("caseworker",)
#: Grouping choices of the public household counts → store columns.
COUNT_GROUPS = {"town": schema.TOWN_CODE, "village": schema.VILLAGE_CODE, "category": schema.DISABILITY_CATEGORY}

# Row columns that are about the record, not the facility: staff names stay off public outputs.
#: Public layer and count responses, cached per data version (``Store.data_version``) and filters.
_RESPONSE_CACHE_KEY = "accessplan_api_layer_cache"
_RESPONSE_CACHE_SIZE = 256
_PUBLIC_HIDDEN = {"layer", schema.SOURCE_DATUM, schema.VERSION, schema.CREATED_BY, schema.CREATED_AT,
                  schema.UPDATED_BY}  # fmt: skip


# --- public ----------------------------------------------------------------------------------------


@bp.get("/layers")
def layers_index() -> Response:
    """List the public layers with their Chinese names, statuses and row counts."""
    store = get_store()
    return jsonify(
        {
            "layers": [
                {
                    "layer": layer,
                    "label": schema.LAYER_LABELS_ZH[layer],
                    "statuses": list(schema.STATUSES[layer]),
                    "count": store.count(layer),
                }
                for layer in schema.PUBLIC_LAYERS
            ]
        }
    )


@bp.get("/layers/<layer>")
def layer_features(layer: str) -> Response:
    """Return a public layer as a GeoJSON FeatureCollection (WGS-84), filtered by ``status`` and ``town``."""
    if layer not in schema.PUBLIC_LAYERS:
        abort(404, f"没有公开图层 {layer!r}；公开图层：{', '.join(schema.PUBLIC_LAYERS)}。")
    statuses = _statuses_arg(layer)
    towns = _towns_arg()
    store = get_store()
    key = (store.url, store.data_version(), layer, statuses, towns)
    cache = current_app.extensions.setdefault(_RESPONSE_CACHE_KEY, {})
    body = cache.get(key)
    if body is None:
        gdf = store.features(layer, statuses=statuses, towns=towns)
        payload = _feature_collection(gdf, drop=_PUBLIC_HIDDEN, town_names=_town_names())
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        _cache_put(cache, key, body)
    return current_app.response_class(body, mimetype="application/json")


@bp.get("/households/counts")
def household_count_table() -> Response:
    """Return households per town (or village, or category), small counts and their complements suppressed.

    The body is cached per data version (``Store.data_version``) and grouping, like the layer API:
    counting reads every household row, and an uncached endpoint let 18 requests a second stall the
    whole server.
    """
    by = request.args.get("by", "town")
    if by not in COUNT_GROUPS:
        abort(400, f"参数 by 只能是 {', '.join(COUNT_GROUPS)}；收到 {by!r}。")
    store = get_store()
    key = (store.url, store.data_version(), "household_counts", by)
    cache = current_app.extensions.setdefault(_RESPONSE_CACHE_KEY, {})
    body = cache.get(key)
    if body is None:
        counts = household_counts(store, by=(COUNT_GROUPS[by],))
        names = _town_names()
        rows = []
        for record in counts.to_dict("records"):
            row = {by: _plain(record[COUNT_GROUPS[by]]), "count": _plain(record["count"])}
            row["suppressed"] = bool(record["suppressed"])
            if by == "town":
                row["town_name"] = names.get(row["town"])
            rows.append(row)
        payload = {"by": by, "min_count": MIN_PUBLIC_COUNT, "counts": rows}
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        _cache_put(cache, key, body)
    return current_app.response_class(body, mimetype="application/json")


@bp.get("/openapi.json", endpoint="openapi")
def openapi_spec() -> Response:
    """Return the OpenAPI 3.1 description of this API."""
    return jsonify(openapi.spec())


# --- staff -----------------------------------------------------------------------------------------


@bp.get("/me")
@role_required("caseworker", "bureau", "planner", "admin")
def me() -> Response:
    """Return the signed-in account and the CSRF token for JSON POSTs (header ``X-CSRFToken``)."""
    return jsonify(
        {
            "name": current_user.name,
            "role": current_user.role,
            "role_label": ROLE_LABELS[current_user.role],
            "towns": list(current_user.towns),
            "csrf_token": generate_csrf(),
        }
    )


@bp.get("/households")
@role_required(*sorted(HOUSEHOLD_VIEW_ROLES))
def households() -> Response:
    """Return the households the caller may see as GeoJSON (``town`` filter); the read is access-logged.

    Caseworkers get their towns' households with personal fields masked; planners and admins only
    planning points (id, town, village, status, coordinates on a 0.001° grid: ``layers.privacy``).
    """
    towns = _towns_arg()
    if current_user.role == "caseworker":
        outside = sorted(set(towns or ()) - set(current_user.towns))
        if outside:
            log_out_of_scope("towns", outside)
            abort(404, f"没有镇街 {outside[0]!r} 的数据。")
        towns = towns or tuple(current_user.towns)
    gdf = read_households(get_store(), role=current_user.role, user=current_user.name, towns=towns,
                          purpose=f"{request.method} {request.full_path.rstrip('?')}", channel="api",
                          ip=request.remote_addr)  # fmt: skip
    return jsonify(_feature_collection(gdf, drop={"layer"}, town_names=_town_names()))


@bp.get("/households/<household_id>")
@role_required(*sorted(HOUSEHOLD_VIEW_ROLES))
def household(household_id: str) -> Response:
    """Return one household, masked, with its status history (404 outside the caller's towns)."""
    household_in_scope(household_id)
    gdf = read_households(
        get_store(), role=current_user.role, user=current_user.name, towns=_scope(), ids=[household_id]
    )
    body = _feature_collection(gdf, drop={"layer"}, town_names=_town_names())["features"][0]
    body["history"] = status_history(schema.HOUSEHOLD, household_id)
    return jsonify(body)


@bp.post("/households/<household_id>/full")
@role_required(*sorted(FULL_VIEW_ROLES))
def household_full(household_id: str) -> Response:
    """Return one household's personal fields in full; needs ``{"reason": ...}``, written to the access log."""
    household_in_scope(household_id)
    try:
        reason = check_reason(str(_json_body().get("reason") or ""))
    except AccessDeniedError:
        abort(
            400,
            "查看完整信息需要真实的理由（reason）：至少 4 个字，其中至少 2 个汉字或字母，"
            "不能只重复一两个字；理由会记入访问日志。",
        )
    gdf = read_households(
        get_store(),
        role=current_user.role,
        user=current_user.name,
        towns=_scope(),
        ids=[household_id],
        reveal=True,
        reason=reason,
        channel="api",
        ip=request.remote_addr,
    )
    return jsonify(_feature_collection(gdf, drop={"layer"}, town_names=_town_names())["features"][0])


@bp.post("/households/<household_id>/status")
@role_required(*HOUSEHOLD_EDIT_ROLES)
def household_status(household_id: str) -> Response:
    """Move a household along its workflow: ``{"status": ..., "version": ...}`` → the new version."""
    household_in_scope(household_id)
    return _change_status(schema.HOUSEHOLD, household_id)


@bp.get("/toilets")
@role_required(*TOILET_VIEW_ROLES)
def toilets() -> Response:
    """Return the accessible-toilet register: every status, build fields and versions (GeoJSON)."""
    gdf = get_store().features(schema.ACCESSIBLE_TOILET, statuses=_statuses_arg(schema.ACCESSIBLE_TOILET))
    return jsonify(_feature_collection(gdf, drop={"layer"}, town_names=_town_names()))


@bp.post("/toilets/<toilet_id>/status")
@role_required(*TOILET_EDIT_ROLES)
def toilet_status(toilet_id: str) -> Response:
    """Move a toilet along its build workflow: ``{"status": ..., "version": ...}`` → the new version."""
    get_store().feature(schema.ACCESSIBLE_TOILET, toilet_id)  # 404 if missing
    return _change_status(schema.ACCESSIBLE_TOILET, toilet_id)


# --- errors ----------------------------------------------------------------------------------------


@bp.errorhandler(NotFoundError)
def _not_found(error: NotFoundError) -> tuple[Response, int]:
    return json_error(404, str(error))


@bp.errorhandler(WorkflowError)
def _bad_value(error: WorkflowError) -> tuple[Response, int]:
    return json_error(400, str(error))


@bp.errorhandler(StaleVersionError)
def _stale(error: StaleVersionError) -> tuple[Response, int]:
    return json_error(409, str(error))


@bp.errorhandler(AccessDeniedError)
def _denied(error: AccessDeniedError) -> tuple[Response, int]:
    return json_error(403, str(error))


# --- helpers ---------------------------------------------------------------------------------------


def _cache_put(cache: dict[tuple[Any, ...], bytes], key: tuple[Any, ...], body: bytes) -> None:
    if len(cache) >= _RESPONSE_CACHE_SIZE:
        cache.clear()  # filters are few; a full cache means the data changed many times: start again
    cache[key] = body


def _scope() -> tuple[str, ...] | None:
    """Return the caller's towns if their role is town-scoped, else None (whole district)."""
    return tuple(current_user.towns) if current_user.role == "caseworker" else None


def household_in_scope(household_id: str) -> dict[str, Any]:
    """Return the household row; 404 if missing or outside a caseworker's towns (the attempt is logged)."""
    message = f"没有编号为 {household_id!r} 的家庭记录。"
    try:
        row = get_store().feature(schema.HOUSEHOLD, household_id)
    except NotFoundError:
        abort(404, message)
    scope = _scope()
    if scope is not None and row[schema.TOWN_CODE] not in scope:
        log_out_of_scope("household", [household_id])
        abort(404, message)
    return row


def log_out_of_scope(what: str, ids: list[str]) -> None:
    """Log (warning, no personal data) that the signed-in user asked for ``what`` ``ids`` outside their towns."""
    logger.warning(
        "Out-of-scope request refused (404): %s (%s, towns %s) asked for %s %s via %s %s",
        current_user.name, current_user.role, ",".join(current_user.towns), what, ids, request.method, request.path,
    )  # fmt: skip


def _change_status(layer: str, feature_id: str) -> Response:
    body = _json_body()
    status, version = body.get("status"), body.get("version")
    if status not in schema.STATUSES[layer]:
        abort(400, f"status 必须是 {', '.join(schema.STATUSES[layer])} 之一；收到 {status!r}。")
    if not isinstance(version, int) or isinstance(version, bool):
        abort(400, f"version 必须是整数（读取记录时的版本号）；收到 {version!r}。")
    new_version = get_store().update_feature(layer, feature_id, {schema.STATUS: status}, version=version,
                                             user=current_user.name)  # fmt: skip
    logger.info("%s set %s %s to %r (version %d)", current_user.name, layer, feature_id, status, new_version)
    return jsonify({"id": feature_id, "status": status, "version": new_version})


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, "请求体必须是 JSON 对象（Content-Type: application/json）。")
    return body


def _statuses_arg(layer: str) -> tuple[str, ...] | None:
    values = _list_arg("status")
    if not values:
        return None
    bad = [v for v in values if v not in schema.STATUSES[layer]]
    if bad:
        abort(400, f"status 只能是 {', '.join(schema.STATUSES[layer])}；收到 {bad!r}。")
    return tuple(values)


def _towns_arg() -> tuple[str, ...] | None:
    """Read ``town`` (codes or Chinese names, repeated or comma-separated) as town codes."""
    values = _list_arg("town")
    if not values:
        return None
    names = _town_names()
    codes = {name: code for code, name in names.items()}
    resolved, bad = [], []
    for value in values:
        code = value if value in names else codes.get(value)
        (resolved if code else bad).append(code or value)
    if bad:
        abort(400, f"未知的镇街 {bad!r}；请用镇街代码（9 位）或名称，如 {next(iter(codes))}。")
    return tuple(resolved)


def _list_arg(key: str) -> list[str]:
    return [v.strip() for raw in request.args.getlist(key) for v in raw.split(",") if v.strip()]


def _town_names() -> dict[str, str]:
    towns = get_district().towns
    return dict(zip(towns[schema.TOWN_CODE], towns["name"], strict=True))


def status_history(layer: str, feature_id: str) -> list[dict[str, Any]]:
    """Return who changed the status when (from the history table; no personal fields)."""
    rows = []
    for h in get_store().history(layer, feature_id):
        after = h["after"] or {}
        before = h["before"] or {}
        rows.append(
            {
                "at": _plain(h["at"]),
                "actor": h["actor"],
                "action": h["action"],
                "version": h[schema.VERSION],
                "status_before": before.get(schema.STATUS),
                "status": after.get(schema.STATUS),
            }
        )
    return rows


def _feature_collection(gdf: gpd.GeoDataFrame, *, drop: set[str], town_names: dict[str, str]) -> dict[str, Any]:
    """Return ``gdf`` (points in EPSG:4326) as a GeoJSON FeatureCollection with JSON-safe properties."""
    columns = [c for c in gdf.columns if c not in drop and c != gdf.geometry.name]
    features = []
    for record in gdf[columns].to_dict("records"):
        properties = {k: _plain(v) for k, v in record.items()}
        properties["town_name"] = town_names.get(properties.get(schema.TOWN_CODE))
        features.append(
            {
                "type": "Feature",
                "id": properties[schema.ID],
                "geometry": {"type": "Point", "coordinates": [properties[schema.LON], properties[schema.LAT]]},
                "properties": properties,
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _plain(value: Any) -> Any:
    """Return ``value`` as a JSON-safe scalar: ISO dates, None for missing values, Python numbers."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value
