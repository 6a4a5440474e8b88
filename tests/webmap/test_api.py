from __future__ import annotations

import json
import logging
import re

import pandas as pd
import pytest

from layers import schema
from tests.webmap import staff_fixtures
from tests.webmap.staff_fixtures import ROLE_KEYS, TOWN_A, TOWN_B, csrf_token
from webmap.store import get_store

demo_key, demo_db, demo_cache = staff_fixtures.demo_key, staff_fixtures.demo_db, staff_fixtures.demo_cache
demo_households = staff_fixtures.demo_households
app, client, client_as = staff_fixtures.app, staff_fixtures.client, staff_fixtures.client_as

HH_A = "HH-00013"  # 璧城街道 (town A), status surveyed
HH_B = "HH-00119"  # 璧泉街道 (town B)
TOILET = "AT-026"  # planned
REASON = {"reason": "入户走访"}
STATUS_HH = {"status": "approved", "version": 1}
STATUS_TOILET = {"status": "under_construction", "version": 1}
NEW_USER = {"name": "new-planner", "role": "planner", "password": "a long password 1"}

# Expected status per role, in ROLE_KEYS order: public, caseworker_a, caseworker_b, bureau, planner, admin.
MATRIX = [
    ("GET", "/login", None, (200, 200, 200, 200, 200, 200)),
    ("GET", "/account", None, (302, 200, 200, 200, 200, 200)),
    ("GET", "/admin/users", None, (302, 403, 403, 403, 403, 200)),
    ("POST", "/admin/users", NEW_USER, (302, 403, 403, 403, 403, 200)),
    ("POST", "/admin/users/planner/active", {"active": "0"}, (302, 403, 403, 403, 403, 302)),
    ("GET", "/admin/users/planner/password", None, (302, 403, 403, 403, 403, 200)),
    ("POST", "/admin/users/planner/password", {"confirm": "yes"}, (302, 403, 403, 403, 403, 200)),
    ("GET", "/admin/users/planner/edit", None, (302, 403, 403, 403, 403, 200)),
    ("POST", "/admin/users/planner/edit", {"role": "bureau"}, (302, 403, 403, 403, 403, 302)),
    ("GET", "/admin/access-log", None, (302, 403, 403, 403, 403, 200)),
    ("GET", "/admin/access-log/export?format=xlsx", None, (302, 403, 403, 403, 403, 200)),
    ("GET", "/account/password", None, (302, 200, 200, 200, 200, 200)),
    ("POST", "/account/password", {"current_password": "wrong password 1"}, (302, 400, 400, 400, 400, 400)),
    ("GET", "/api/layers", None, (200, 200, 200, 200, 200, 200)),
    ("GET", "/api/layers/rehab_station", None, (200, 200, 200, 200, 200, 200)),
    ("GET", "/api/layers/household", None, (404, 404, 404, 404, 404, 404)),
    ("GET", "/api/households/counts", None, (200, 200, 200, 200, 200, 200)),
    ("GET", "/api/openapi.json", None, (200, 200, 200, 200, 200, 200)),
    ("GET", "/api/me", None, (401, 200, 200, 200, 200, 200)),
    ("GET", "/api/households", None, (401, 200, 200, 403, 200, 200)),
    ("GET", f"/api/households?town={TOWN_B}", None, (401, 404, 200, 403, 200, 200)),
    ("GET", f"/api/households/{HH_A}", None, (401, 200, 404, 403, 200, 200)),
    ("GET", f"/api/households/{HH_B}", None, (401, 404, 200, 403, 200, 200)),
    ("GET", "/api/households/HH-99999", None, (401, 404, 404, 403, 404, 404)),
    ("JSON", f"/api/households/{HH_A}/full", REASON, (401, 200, 404, 403, 403, 403)),
    ("JSON", f"/api/households/{HH_A}/status", STATUS_HH, (401, 200, 404, 403, 403, 403)),
    ("GET", "/api/toilets", None, (401, 403, 403, 200, 200, 200)),
    ("JSON", f"/api/toilets/{TOILET}/status", STATUS_TOILET, (401, 403, 403, 200, 403, 200)),
]


def _request(client, method, path, body):
    if method == "GET":
        return client.get(path)
    token = csrf_token(client)  # every POST carries a valid token: the matrix tests roles, not CSRF
    if method == "JSON":
        return client.post(path, json=body, headers={"X-CSRFToken": token})
    return client.post(path, data={**body, "csrf_token": token})


@pytest.mark.parametrize("role", ROLE_KEYS)
@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
def test_every_route_for_every_role(client_as, role, method, path, body, expected):
    response = _request(client_as(role), method, path, body)
    assert response.status_code == expected[ROLE_KEYS.index(role)]
    if path.startswith("/api/") and response.status_code >= 400:
        error = response.get_json()["error"]
        assert error["status"] == response.status_code and error["message"]


@pytest.mark.parametrize(("role", "status_text"), [("public", "工作人员登录"), ("caseworker_a", "已登录：cw-a")])
def test_the_public_map_shows_the_login_status(client_as, role, status_text):
    response = client_as(role).get("/")
    assert response.status_code == 200
    assert status_text in response.get_data(as_text=True)


def test_the_matrix_covers_every_route(app):
    covered = {re.sub(r"\?.*", "", path) for _, path, _, _ in MATRIX}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] not in ("auth", "api", "admin"):
            continue
        pattern = re.sub(r"<[^>]+>", "[^/]+", rule.rule)
        assert any(re.fullmatch(pattern, p) for p in covered) or rule.rule == "/logout", rule.rule


def test_a_household_of_another_town_answers_like_a_missing_one_and_is_logged(client_as, caplog):
    client = client_as("caseworker_b")
    with caplog.at_level(logging.WARNING, logger="webmap.views.api"):
        other = client.get(f"/api/households/{HH_A}")
    missing = client.get("/api/households/HH-99999")
    assert other.status_code == missing.status_code == 404
    assert other.get_json()["error"]["message"] == f"没有编号为 '{HH_A}' 的家庭记录。"
    assert missing.get_json()["error"]["message"] == "没有编号为 'HH-99999' 的家庭记录。"
    records = [r for r in caplog.records if "Out-of-scope" in r.getMessage()]
    assert len(records) == 1
    assert "cw-b" in records[0].getMessage() and HH_A in records[0].getMessage()


def test_a_caseworker_lists_only_their_towns_households_masked(client_as, demo_households):
    features = client_as("caseworker_a").get("/api/households").get_json()["features"]
    expected = demo_households[demo_households["town_code"] == TOWN_A]
    assert sorted(f["id"] for f in features) == sorted(expected["id"])
    full = dict(zip(expected["id"], expected["name"], strict=True))
    ids = dict(zip(expected["id"], expected["id_number"], strict=True))
    for f in features:
        props = f["properties"]
        assert props["name"] != full[f["id"]] and props["name"].startswith(full[f["id"]][0])
        assert props["id_number"] == ids[f["id"]][:6] + "********" + ids[f["id"]][-4:]
        assert props["town_name"] == "璧城街道"


def test_the_full_view_needs_a_reason_and_is_written_to_the_access_log(app, client_as, demo_households):
    client = client_as("caseworker_a")
    headers = {"X-CSRFToken": csrf_token(client)}
    missing = client.post(f"/api/households/{HH_A}/full", json={"reason": " "}, headers=headers)
    assert missing.status_code == 400
    response = client.post(f"/api/households/{HH_A}/full", json=REASON, headers=headers)
    row = demo_households.set_index("id").loc[HH_A]
    props = response.get_json()["properties"]
    assert (props["name"], props["id_number"], props["phone"]) == (row["name"], row["id_number"], row["phone"])
    with app.app_context():
        log = get_store().access_log()
    assert [(e["actor"], e["feature_id"], e["reason"]) for e in log] == [("cw-a", HH_A, "入户走访")]


def test_status_changes_follow_the_workflow_and_refuse_stale_versions(client_as):
    client = client_as("caseworker_a")
    headers = {"X-CSRFToken": csrf_token(client)}
    url = f"/api/households/{HH_A}/status"
    skip = client.post(url, json={"status": "verified", "version": 1}, headers=headers)
    assert skip.status_code == 400
    assert "may not change from 'surveyed' to 'verified'" in skip.get_json()["error"]["message"]
    assert client.post(url, json=STATUS_HH, headers=headers).get_json()["version"] == 2
    stale = client.post(url, json={"status": "in_progress", "version": 1}, headers=headers)
    assert stale.status_code == 409
    history = client.get(f"/api/households/{HH_A}").get_json()["history"]
    assert [(h["status_before"], h["status"], h["actor"]) for h in history] == [
        (None, "surveyed", "demo-loader"),
        ("surveyed", "approved", "cw-a"),
    ]
    for bad in ({"status": "done", "version": 2}, {"status": "in_progress", "version": "2"}):
        assert client.post(url, json=bad, headers=headers).status_code == 400


def test_public_layers_are_geojson_filtered_by_status_and_town(client):
    toilets = pd.read_csv(
        staff_fixtures.load_district().demo_dir / "accessible_toilet.csv", dtype={"town_code": str, "id": str}
    )
    everything = client.get("/api/layers/accessible_toilet").get_json()
    assert everything["type"] == "FeatureCollection"
    assert sorted(f["id"] for f in everything["features"]) == sorted(toilets["id"])
    by_name = client.get("/api/layers/accessible_toilet?status=planned,accepted&town=璧城街道").get_json()
    by_code = client.get(f"/api/layers/accessible_toilet?status=planned&status=accepted&town={TOWN_A}").get_json()
    expected = toilets[toilets["status"].isin(["planned", "accepted"]) & (toilets["town_code"] == TOWN_A)]
    assert (
        sorted(f["id"] for f in by_name["features"])
        == sorted(expected["id"])
        == sorted(f["id"] for f in by_code["features"])
    )
    feature = everything["features"][0]
    assert feature["geometry"]["coordinates"] == [feature["properties"]["lon"], feature["properties"]["lat"]]
    assert not {"created_by", "updated_by", "version"} & set(feature["properties"])


@pytest.mark.parametrize(
    ("query", "message"),
    [("status=open", "status 只能是"), ("town=火星镇", "未知的镇街 ['火星镇']")],
)
def test_bad_filters_are_json_400s_naming_the_value(client, query, message):
    response = client.get(f"/api/layers/accessible_toilet?{query}")
    assert response.status_code == 400
    assert message in response.get_json()["error"]["message"]


@pytest.mark.parametrize(("by", "column"), [("town", "town_code"), ("village", "village_code"), ("category", None)])
def test_household_counts_are_suppressed_below_five(client, demo_households, by, column):
    column = column or "disability_category"
    body = client.get(f"/api/households/counts?by={by}").get_json()
    expected = demo_households.groupby(column).size()
    got = {str(row[by]): row for row in body["counts"]}
    assert sorted(got) == sorted(expected.index)
    for key, n in expected.items():
        if n < 5:
            assert got[key]["suppressed"] and got[key]["count"] is None
        else:  # shown as it is, or hidden as a complement (tests/layers/test_privacy.py attacks them)
            assert got[key]["count"] == (None if got[key]["suppressed"] else n)
    if by == "village":
        assert sum(row["suppressed"] for row in body["counts"]) >= int((expected < 5).sum()) > 0


def test_household_counts_are_cached_per_data_version(app, client):
    from webmap.views.api import household_count_table

    first = client.get("/api/households/counts?by=town")
    with app.app_context():
        store = get_store()
        cached = app.extensions["accessplan_api_layer_cache"]
        key = (store.url, store.data_version(), "household_counts", "town")
        assert cached[key] == first.get_data()  # the body is kept under the data version
        cached[key] = b'{"marker": 1}'  # what the next request serves comes from the cache
    assert client.get("/api/households/counts?by=town").get_json() == {"marker": 1}
    with app.app_context():
        row = get_store().feature(schema.HOUSEHOLD, HH_A)
        get_store().update_feature(schema.HOUSEHOLD, HH_A, {"status": "approved"}, version=row["version"], user="t")
    assert client.get("/api/households/counts?by=town").get_json() == first.get_json()  # new version: recounted
    assert household_count_table.__doc__ and "data version" in household_count_table.__doc__


@pytest.mark.parametrize("role", ["planner", "admin"])
def test_planners_get_generalised_points_only_and_the_read_is_logged(app, client_as, demo_households, role):
    response = client_as(role).get(f"/api/households?town={TOWN_B}")
    features = response.get_json()["features"]
    expected = demo_households[demo_households["town_code"] == TOWN_B].set_index("id")
    assert sorted(f["id"] for f in features) == sorted(expected.index)
    text = response.get_data(as_text=True)
    with app.app_context():  # the stored WGS-84 points (the demo file mixes datums)
        stored = get_store().features(schema.HOUSEHOLD, towns=(TOWN_B,)).set_index("id")
    for f in features:
        props = f["properties"]
        assert set(props) == {"id", "town_code", "village_code", "status", "lon", "lat", "town_name"}
        lon, lat = f["geometry"]["coordinates"]
        assert (lon, lat) == (props["lon"], props["lat"]) == (round(lon, 3), round(lat, 3))
        true = stored.loc[f["id"]]
        assert abs(lon - float(true["lon"])) <= 0.0005 + 1e-9 and abs(lat - float(true["lat"])) <= 0.0005 + 1e-9
    for column in ("address", "name", "certificate_number", "id_number"):
        assert not any(v in text for v in expected[column]), column
    with app.app_context():
        log = get_store().access_log()
    assert [(e["actor"], e["feature_id"], e["reason"]) for e in log] == [
        (role, "*", f"bulk read of {len(expected)} rows ({role}): GET /api/households?town={TOWN_B}")
    ]


def test_anonymous_api_clients_are_rate_limited_per_address(app, client_as):
    app.config.update(API_ANON_BURST=3, API_ANON_RATE_PER_S=0.01)
    client = client_as("public")
    assert [client.get("/api/households/counts").status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get("/api/layers")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "100"  # 1 token at 0.01/s
    assert refused.get_json()["error"] == {
        "status": 429,
        "message": "请求过于频繁：每个地址每秒最多 0.01 次（可连续 3 次）。请 100 秒后再试。",
    }
    english = client.get("/api/layers?lang=en").get_json()["error"]["message"]
    assert english.startswith("Too many requests: at most 0.01 a second per address (3 in a row).")
    assert client.get("/").status_code == 200  # pages are not limited, only the API
    other = app.test_client()
    assert other.get("/api/layers", environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 200
    assert client_as("planner").get("/api/layers").status_code == 200  # signed-in staff: not limited here


def test_token_bucket_refills_at_its_rate():
    from webmap.ratelimit import TokenBucketLimiter

    now = [0.0]
    limiter = TokenBucketLimiter(2.0, 2, clock=lambda: now[0])
    assert [limiter.take("a"), limiter.take("a")] == [0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)  # empty: one token comes in 1/2 s
    assert limiter.take("b") == 0.0  # another address has its own bucket
    now[0] = 0.5
    assert limiter.take("a") == 0.0 and limiter.take("a") == pytest.approx(0.5)
    now[0] = 100.0
    assert [limiter.take("a") for _ in range(3)][-1] == pytest.approx(0.5)  # refilled to the burst, not more


def _public_responses(app, client):
    """Every public page and API response: GET routes without arguments, layers, counts, a household URL."""
    paths = [r.rule for r in app.url_map.iter_rules() if "GET" in r.methods and not r.arguments]
    paths += [f"/api/layers/{layer}" for layer in (*schema.PUBLIC_LAYERS, schema.HOUSEHOLD)]
    paths += [f"/api/households/counts?by={by}" for by in ("town", "village", "category")]
    paths += ["/?lang=en", "/facility/household/HH-00001", "/api/households/HH-00001"]
    with app.app_context():
        store = get_store()
        first_ids = {layer: store.features(layer)[schema.ID].iloc[0] for layer in schema.PUBLIC_LAYERS}
    for rule in app.url_map.iter_rules():  # public detail pages, e.g. /facility/<layer>/<facility_id>
        if rule.endpoint.startswith("public.") and rule.arguments == {"layer", "facility_id"}:
            paths += [rule.rule.replace("<layer>", k).replace("<facility_id>", v) for k, v in first_ids.items()]
    for path in paths:
        response = client.get(path)
        if response.status_code in (301, 302):  # staff pages: the redirect to the login page
            continue
        text = response.get_data(as_text=True)
        if response.is_json:
            text = json.dumps(response.get_json(), ensure_ascii=False)  # names, not \\u escapes
        yield path, text


def test_no_household_name_id_or_address_in_any_public_page_or_api_response(app, client, demo_households):
    with app.app_context():
        public_text = _public_source_text()
    secrets_by_column = {c: set(demo_households[c].dropna()) for c in
                         ("id", "name", "address", "id_number", "certificate_number", "phone")}  # fmt: skip
    # A two-character name can also be part of a public place or facility name (e.g. a village); those
    # are no leak, and are listed so the test shows how many names it could not check.
    unverifiable = {n for n in secrets_by_column["name"] if n in public_text}
    assert len(unverifiable) < 0.05 * len(secrets_by_column["name"])
    checked = 0
    for path, text in _public_responses(app, client):
        checked += 1
        for column, values in secrets_by_column.items():
            leaked = sorted(v for v in values if v in text and v not in unverifiable)
            assert not leaked, f"{path} shows household {column} {leaked[:3]}"
    assert checked >= 20


def _public_source_text() -> str:
    """All public text the pages may show: facilities of the public layers, towns, villages."""
    from webmap.store import get_district

    store, district = get_store(), get_district()
    parts = [" ".join(district.towns["name"]), " ".join(district.villages["name"].astype(str))]
    for layer in schema.PUBLIC_LAYERS:
        parts.append(store.features(layer).drop(columns="geometry").astype(str).to_csv())
    return "\n".join(parts)


def test_unknown_api_routes_and_methods_answer_json(client):
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404 and missing.get_json()["error"]["status"] == 404
    wrong_method = client.delete("/api/layers")
    assert wrong_method.status_code in (400, 405)  # CSRF runs first for unsafe methods
    assert wrong_method.get_json()["error"]["status"] == wrong_method.status_code


def test_openapi_documents_exactly_the_api_routes(app, client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            served |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == served
