"""Describe the JSON API in OpenAPI 3.1 (served at ``/api/openapi.json``; a test keeps it equal to the routes)."""

from __future__ import annotations

from typing import Any

from layers import schema


def spec() -> dict[str, Any]:
    """Return the OpenAPI 3.1 description of ``/api``."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "accessplan API",
            "version": "1",
            "description": (
                "公开接口：公开图层（GeoJSON，WGS-84）和按镇街汇总的困难家庭数量"
                "（少于 5 户不公布，另有部分数字为防推算也不公布）；"
                "未登录的客户端按 IP 限速，超出时返回 429 和 Retry-After。"
                "工作人员接口：先 POST /login 登录，之后以同一会话（Cookie）访问；POST 请求需在 X-CSRFToken "
                "请求头中提供 GET /api/me 返回的令牌。个案工作人员只能看到负责镇街的家庭，其他镇街的家庭一律返回 404。"
                '错误统一为 {"error": {"status": ..., "message": ...}}。'
            ),
        },
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRFToken"},
            },
            "schemas": _SCHEMAS,
            "responses": {str(code): _error(message) for code, message in _ERRORS.items()},
        },
        "paths": _paths(),
    }


_ERRORS = {
    400: "Bad request: a parameter or the JSON body breaks a rule, or the CSRF token is missing.",
    401: "Not signed in.",
    403: "The caller's role may not use this route.",
    404: "Not found (also for a household outside a caseworker's towns).",
    409: "The record changed since `version` was read; reload and apply the change again.",
    429: (
        "Too many requests from this address (anonymous clients only; `API_ANON_RATE_PER_S`, "
        "`API_ANON_BURST`): wait the seconds given in the `Retry-After` header."
    ),
}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["status", "message"],
                "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
            }
        },
    },
    "FeatureCollection": {
        "type": "object",
        "description": "GeoJSON FeatureCollection of points in WGS-84 (EPSG:4326); properties per layer.",
        "properties": {
            "type": {"const": "FeatureCollection"},
            "features": {"type": "array", "items": {"$ref": "#/components/schemas/Feature"}},
        },
    },
    "Feature": {
        "type": "object",
        "properties": {
            "type": {"const": "Feature"},
            "id": {"type": "string"},
            "geometry": {"type": "object"},
            "properties": {"type": "object"},
        },
    },
    "StatusChange": {
        "type": "object",
        "required": ["status", "version"],
        "properties": {"status": {"type": "string"}, "version": {"type": "integer"}},
    },
    "StatusChanged": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "status": {"type": "string"}, "version": {"type": "integer"}},
    },
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json({"$ref": "#/components/schemas/Error"})}


def _json(schema_: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema_}}


def _ok(description: str, schema_: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": _json(schema_ or {"type": "object"})}


def _refs(*codes: int) -> dict[str, Any]:
    return {str(c): {"$ref": f"#/components/responses/{c}"} for c in codes}


_GEOJSON = {"$ref": "#/components/schemas/FeatureCollection"}
_STAFF = [{"session": []}]
_STAFF_POST = [{"session": [], "csrf": []}]


def _query(name: str, description: str, **schema_: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema_ or {"type": "string"}}  # fmt: skip


def _path_param(name: str, description: str, **schema_: Any) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema_ or {"type": "string"}}  # fmt: skip


_TOWN = _query("town", "镇街代码（9 位）或名称；可重复或用逗号分隔。")
_STATUS = _query("status", "状态；可重复或用逗号分隔。")


def _paths() -> dict[str, Any]:
    household_id = _path_param("household_id", "家庭记录编号。")
    status_body = {"required": True, "content": _json({"$ref": "#/components/schemas/StatusChange"})}
    return {
        "/api/layers": {
            "get": {
                "summary": "公开图层列表（名称、状态、数量）",
                "tags": ["public"],
                "responses": {"200": _ok("Public layers."), **_refs(429)},
            }
        },
        "/api/layers/{layer}": {
            "get": {
                "summary": "一个公开图层的设施（GeoJSON）",
                "tags": ["public"],
                "parameters": [
                    _path_param("layer", "公开图层。", type="string", enum=list(schema.PUBLIC_LAYERS)),
                    _STATUS,
                    _TOWN,
                ],
                "responses": {"200": _ok("Facilities of the layer.", _GEOJSON), **_refs(400, 404, 429)},
            }
        },
        "/api/households/counts": {
            "get": {
                "summary": "困难家庭数量（按镇街、村或残疾类别；少于 5 户及可据以推算的数字不公布）",
                "tags": ["public"],
                "parameters": [_query("by", "分组方式。", type="string", enum=["town", "village", "category"])],
                "responses": {
                    "200": _ok(
                        "Counts; `count` is null and `suppressed` true below 5, and for the further cells hidden so "
                        "that no hidden count can be derived from the published ones (complementary suppression)."
                    ),
                    **_refs(400, 429),
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "summary": "本接口说明（OpenAPI 3.1）",
                "tags": ["public"],
                "responses": {"200": _ok("This document."), **_refs(429)},
            }
        },
        "/api/me": {
            "get": {
                "summary": "当前登录账户及 CSRF 令牌",
                "tags": ["staff"],
                "security": _STAFF,
                "responses": {"200": _ok("Name, role, towns and `csrf_token`."), **_refs(401)},
            }
        },
        "/api/households": {
            "get": {
                "summary": "困难家庭名单（已脱敏；个案工作人员仅限负责镇街）",
                "description": "Roles: caseworker (own towns), planner, admin.",
                "tags": ["staff"],
                "security": _STAFF,
                "parameters": [_TOWN],
                "responses": {
                    "200": _ok(
                        "Caseworkers: households, personal fields masked. Planners and admins: planning points only "
                        "(id, town_code, village_code, status, lon/lat on a 0.001° grid, ~100 m). Every call is "
                        "written to the access log.",
                        _GEOJSON,
                    ),
                    **_refs(400, 401, 403, 404),
                },
            }
        },
        "/api/households/{household_id}": {
            "get": {
                "summary": "一户家庭（已脱敏）及状态历史",
                "description": "Roles: caseworker (own towns), planner, admin.",
                "tags": ["staff"],
                "security": _STAFF,
                "parameters": [household_id],
                "responses": {"200": _ok("One household (GeoJSON Feature) with `history`."), **_refs(401, 403, 404)},
            }
        },
        "/api/households/{household_id}/full": {
            "post": {
                "summary": "查看一户家庭的完整个人信息（需填写理由，记入访问日志）",
                "description": 'Role: caseworker (own towns). Body: {"reason": "入户走访 2026-11-23"}.',
                "tags": ["staff"],
                "security": _STAFF_POST,
                "parameters": [household_id],
                "requestBody": {
                    "required": True,
                    "content": _json(
                        {"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}}
                    ),
                },
                "responses": {"200": _ok("One household in full (GeoJSON Feature)."), **_refs(400, 401, 403, 404)},
            }
        },
        "/api/households/{household_id}/status": {
            "post": {
                "summary": "更新家庭改造状态",
                "description": "Role: caseworker (own towns).",
                "tags": ["staff"],
                "security": _STAFF_POST,
                "parameters": [household_id],
                "requestBody": status_body,
                "responses": {
                    "200": _ok("New version.", {"$ref": "#/components/schemas/StatusChanged"}),
                    **_refs(400, 401, 403, 404, 409),
                },
            }
        },
        "/api/toilets": {
            "get": {
                "summary": "无障碍厕所登记（全部状态、建设信息、版本号）",
                "description": "Roles: bureau, planner, admin.",
                "tags": ["staff"],
                "security": _STAFF,
                "parameters": [_STATUS],
                "responses": {"200": _ok("The register.", _GEOJSON), **_refs(400, 401, 403)},
            }
        },
        "/api/toilets/{toilet_id}/status": {
            "post": {
                "summary": "更新无障碍厕所建设状态",
                "description": "Roles: bureau, admin.",
                "tags": ["staff"],
                "security": _STAFF_POST,
                "parameters": [_path_param("toilet_id", "厕所编号。")],
                "requestBody": status_body,
                "responses": {
                    "200": _ok("New version.", {"$ref": "#/components/schemas/StatusChanged"}),
                    **_refs(400, 401, 403, 404, 409),
                },
            }
        },
    }
