from __future__ import annotations

import shutil
import threading
import time
from collections import Counter

import pytest
from flask import Flask, g

from layers import users
from tests.webmap import staff_fixtures
from tests.webmap.staff_fixtures import ACCOUNTS, PASSWORD, csrf_token, log_in
from webmap import create_app
from webmap.security import content_security_policy, nonce_inline_scripts
from webmap.store import get_store

# The demo-store fixtures (they replace conftest's tiny `app` in this module).
demo_key, demo_db, demo_cache = staff_fixtures.demo_key, staff_fixtures.demo_db, staff_fixtures.demo_cache
app, client, client_as = staff_fixtures.app, staff_fixtures.client, staff_fixtures.client_as


def test_the_account_page_names_the_user_and_towns(client):
    response = log_in(client, "cw-a")
    assert response.status_code == 302
    page = client.get("/account").get_data(as_text=True)
    assert "cw-a" in page and "个案工作人员" in page and "璧城街道" in page
    assert "退出登录" in page  # the login status in the header


@pytest.mark.parametrize(("name", "password"), [("cw-a", "wrong password 1"), ("nobody", PASSWORD)])
def test_a_wrong_password_or_name_is_refused_with_one_message(client, name, password):
    response = log_in(client, name, password)
    assert response.status_code == 401
    assert "用户名或密码错误" in response.get_data(as_text=True)
    assert client.get("/api/me").status_code == 401


def test_an_inactive_user_cannot_sign_in(app, client):
    with app.app_context():
        users.set_active(get_store(), "planner", False)
    assert log_in(client, "planner").status_code == 401


def test_the_sixth_failed_login_is_refused_with_429_even_with_the_right_password(client):
    for _ in range(5):
        assert log_in(client, "cw-a", "wrong password 1").status_code == 401
    response = log_in(client, "cw-a", PASSWORD)
    assert response.status_code == 429
    assert "登录失败次数过多，请 15 分钟后再试" in response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "900"
    assert log_in(client, "cw-b").status_code == 302  # another name from the same address is not locked


def test_an_address_beyond_its_failure_limit_does_not_lock_out_a_colleague(app, client):
    app.config["LOGIN_MAX_FAILURES_PER_IP"] = 3
    for name in ("x1", "x2", "x3"):
        assert log_in(client, name, "wrong password 1").status_code == 401
    assert log_in(client, "x4", "wrong password 1").status_code == 429  # beyond the address's limit
    colleague = app.test_client()  # same address (the test client's 127.0.0.1), right password
    assert log_in(colleague, "admin").status_code == 302
    assert log_in(client, "planner", "typo password").status_code == 429  # a failure now locks the account
    assert log_in(app.test_client(), "planner").status_code == 429


def test_forty_concurrent_guesses_check_only_five_passwords(app):
    clients = [app.test_client() for _ in range(40)]
    tokens = [csrf_token(c) for c in clients]
    start = threading.Barrier(len(clients))
    statuses: list[int] = []

    def guess(client, token, i):
        start.wait()
        data = {"name": "cw-a", "password": f"wrong password {i}", "csrf_token": token}
        statuses.append(client.post("/login", data=data).status_code)

    threads = [
        threading.Thread(target=guess, args=(c, t, i)) for i, (c, t) in enumerate(zip(clients, tokens, strict=True))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert Counter(statuses) == Counter({401: 5, 429: 35})
    assert log_in(app.test_client(), "cw-a").status_code == 429  # locked, even with the right password


def _copy_of(client, app):
    """Return a new client holding a copy of ``client``'s session cookie (as a thief would)."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def test_logout_ends_every_copy_of_the_session_cookie(app, client_as):
    client = client_as("planner")
    other_device = client_as("planner")
    thief = _copy_of(client, app)
    assert thief.get("/api/me").get_json()["name"] == "planner"
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    assert thief.get("/api/me").status_code == 401
    assert other_device.get("/api/me").status_code == 401  # sign-out ends every session of the account
    assert client_as("bureau").get("/api/me").status_code == 200  # other accounts keep theirs
    assert client_as("planner").get("/api/me").status_code == 200  # and the planner can sign in again


def _age(client, **seconds_ago):
    """Move the session's times (``signed_in_at``, ``seen_at``) the given seconds into the past."""
    with client.session_transaction() as session:
        for key, ago in seconds_ago.items():
            session[key] = time.time() - ago


def test_a_session_ends_after_30_idle_minutes(app, client_as):
    client = client_as("planner")
    _age(client, seen_at=30 * 60 + 5)
    assert client.get("/api/me").status_code == 401
    assert client.get("/account").headers["Location"] == "/login?next=/account"


def test_a_used_session_stays_open_and_notes_the_request(app, client_as):
    client = client_as("planner")
    _age(client, signed_in_at=11 * 3600, seen_at=29 * 60)
    assert client.get("/api/me").status_code == 200
    with client.session_transaction() as session:
        assert time.time() - session["seen_at"] < 60  # the idle clock starts again


def test_a_session_ends_12_hours_after_sign_in_even_when_used(app, client_as):
    client = client_as("planner")
    _age(client, signed_in_at=12 * 3600 + 5, seen_at=10)
    assert client.get("/api/me").status_code == 401


def test_idle_and_absolute_limits_are_settings(app, client_as):
    app.config.update(SESSION_IDLE_S=10, SESSION_MAX_S=100)
    client = client_as("planner")
    _age(client, seen_at=11)
    assert client.get("/api/me").status_code == 401
    client = client_as("planner")
    _age(client, signed_in_at=101)
    assert client.get("/api/me").status_code == 401


def test_without_a_configured_key_a_random_one_signs_sessions_and_dev_cookies_are_refused(tmp_path, demo_db, demo_key):
    path = tmp_path / "accessplan.sqlite"
    shutil.copyfile(demo_db, path)
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{path}", "ENCRYPTION_KEY": demo_key})
    assert len(app.secret_key) == 64 and app.secret_key != "dev"
    with app.app_context():
        token = users.get_user(get_store(), "admin").session_token
    forger = Flask("forger")
    forger.secret_key = "dev"
    now = time.time()
    payload = {"_user_id": f"admin:{token}", "_fresh": True, "signed_in_at": now, "seen_at": now}
    cookie = forger.session_interface.get_signing_serializer(forger).dumps(payload)
    client = app.test_client()
    client.set_cookie("session", cookie)
    assert client.get("/api/me").status_code == 401
    app.extensions["accessplan_store"].close()


def test_logout_needs_a_post_with_the_csrf_token_and_ends_the_session(client):
    log_in(client, "admin")
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400  # no token
    assert client.get("/api/me").status_code == 200
    response = client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    assert response.status_code == 302
    assert client.get("/api/me").status_code == 401


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/login", {"name": "admin", "password": PASSWORD}),
        ("/admin/users", {"name": "new-user", "role": "planner", "password": PASSWORD}),
        ("/admin/users/planner/active", {"active": "0"}),
        ("/admin/users/planner/password", {"confirm": "yes"}),
        ("/admin/users/planner/edit", {"role": "bureau"}),
        ("/account/password", {"current_password": PASSWORD, "new_password": "x" * 12, "new_password_again": "x" * 12}),
    ],
)
def test_every_form_refuses_a_post_without_or_with_a_wrong_csrf_token(client_as, path, data):
    client = client_as("admin")
    for token in (None, "forged-token"):
        body = data if token is None else {**data, "csrf_token": token}
        response = client.post(path, data=body)
        assert response.status_code == 400
        assert "安全令牌（CSRF）缺失或已过期" in response.get_data(as_text=True)


def test_json_posts_need_the_csrf_header(client_as):
    client = client_as("bureau")
    body = {"status": "under_construction", "version": 1}
    toilet = _planned_toilet(client)
    response = client.post(f"/api/toilets/{toilet}/status", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]["status"] == 400
    assert "X-CSRFToken" in response.get_json()["error"]["message"]
    token = client.get("/api/me").get_json()["csrf_token"]
    response = client.post(f"/api/toilets/{toilet}/status", json=body, headers={"X-CSRFToken": token})
    assert response.status_code == 200
    assert response.get_json() == {"id": toilet, "status": "under_construction", "version": 2}


def _planned_toilet(client) -> str:
    features = client.get("/api/toilets?status=planned").get_json()["features"]
    return next(f["id"] for f in features if f["properties"]["version"] == 1)


def test_session_cookie_is_httponly_samesite_lax_and_secure(client):
    response = client.get("/login")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


@pytest.mark.parametrize("path", ["/", "/login", "/api/layers", "/api/nope", "/account"])
def test_security_headers_are_on_every_response(client, path):
    headers = client.get(path).headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    script_src = next(d for d in csp.split("; ") if d.startswith("script-src"))
    assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"


def test_staff_responses_are_not_cached(client_as):
    assert client_as("planner").get("/api/households").headers["Cache-Control"] == "no-store"


def test_the_csp_allows_the_request_nonce_and_the_tile_hosts():
    csp = content_security_policy(nonce="abc", tile_urls=["https://t{s}.tianditu.gov.cn/x", "http://10.0.0.5/{z}"])
    assert "script-src 'self' 'nonce-abc';" in csp
    assert "img-src 'self' data: https://*.tianditu.gov.cn http://10.0.0.5;" in csp
    assert "script-src 'self';" in content_security_policy(nonce=None)


def test_nonce_goes_on_inline_scripts_and_into_the_header(app):
    with app.test_request_context("/"):
        html = nonce_inline_scripts('<script>var a;</script><script src="/s.js"></script><script nonce="x">b</script>')
        nonce = g.csp_nonce
    assert html == (f'<script nonce="{nonce}">var a;</script><script nonce="{nonce}" src="/s.js"></script>'
                    '<script nonce="x">b</script>')  # fmt: skip
    assert len(nonce) >= 24


def test_anonymous_staff_pages_redirect_to_login_and_back(client):
    response = client.get("/admin/users")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/admin/users"
    token = csrf_token(client)
    response = client.post(
        "/login", data={"name": "admin", "password": PASSWORD, "csrf_token": token, "next": "/admin/users"}
    )
    assert response.headers["Location"] == "/admin/users"


@pytest.mark.parametrize(
    "next_url",
    ["//evil.example/x", "https://evil.example/", "/\\evil.example", "/\t/evil.example", "/\n/x",
     "/account\r\nSet-Cookie: a=b", "/ /evil.example", "/\x7f/evil.example"],
)  # fmt: skip
def test_login_never_redirects_off_site(client, next_url):
    token = csrf_token(client)
    response = client.post(
        "/login", data={"name": "admin", "password": PASSWORD, "csrf_token": token, "next": next_url}
    )
    assert response.headers["Location"] == "/admin/users"  # the admin's own workspace, never the given URL


@pytest.mark.parametrize(
    ("role_key", "landing"),
    [("admin", "/admin/users"), ("planner", "/planner/"), ("caseworker_a", "/caseworker/"), ("bureau", "/toilets/")],
)
def test_each_role_lands_on_its_own_workspace_which_opens(client, role_key, landing):
    response = log_in(client, ACCOUNTS[role_key][0])
    assert response.status_code == 302 and response.headers["Location"] == landing
    assert client.get(landing).status_code == 200


def test_an_explicit_next_wins_over_the_landing_page(client):
    token = csrf_token(client)
    data = {"name": "cw-a", "password": PASSWORD, "csrf_token": token, "next": "/account"}
    assert client.post("/login", data=data).headers["Location"] == "/account"


@pytest.mark.parametrize("change", ["password", "deactivate"])
def test_a_new_password_or_deactivation_ends_open_sessions(app, client_as, change):
    client = client_as("planner")
    assert client.get("/api/me").status_code == 200
    with app.app_context():
        if change == "password":
            users.set_password(get_store(), "planner", "a brand new password")
        else:
            users.set_active(get_store(), "planner", False)
    assert client.get("/api/me").status_code == 401
    if change == "deactivate":  # the cookie of before stays dead when the account is active again
        with app.app_context():
            users.set_active(get_store(), "planner", True)
        assert client.get("/api/me").status_code == 401


def test_me_returns_the_account_and_a_csrf_token(client_as):
    body = client_as("caseworker_b").get("/api/me").get_json()
    assert {k: body[k] for k in ("name", "role", "towns")} == {
        "name": "cw-b",
        "role": "caseworker",
        "towns": ["500120002"],
    }
    assert len(body["csrf_token"]) > 20
    assert ACCOUNTS["caseworker_b"][0] == "cw-b"


def test_a_next_with_a_tab_in_the_query_string_is_dropped_from_the_form(client):
    page = client.get("/login?next=/%09/evil.example").get_data(as_text=True)
    assert 'name="next"' not in page
    assert 'name="next"' in client.get("/login?next=/planner/").get_data(as_text=True)


def test_a_local_next_is_kept(client):
    token = csrf_token(client)
    data = {"name": "admin", "password": PASSWORD, "csrf_token": token, "next": "/planner/?tab=a%20b"}
    assert client.post("/login", data=data).headers["Location"] == "/planner/?tab=a%20b"


# --- changing one's own password ----------------------------------------------------------------------

NEW_PASSWORD = "lantern orchard 47"


def _change(client, current: str, new: str, again: str | None = None, *, lang: str = ""):
    data = {"current_password": current, "new_password": new, "new_password_again": new if again is None else again}
    token = csrf_token(client, "/account/password")
    return client.post(f"/account/password{lang}", data={**data, "csrf_token": token})


def test_a_user_changes_their_password_and_only_their_other_sessions_end(app, client_as):
    here, elsewhere = client_as("caseworker_a"), client_as("caseworker_a")
    other_user = client_as("caseworker_b")
    response = _change(here, PASSWORD, NEW_PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    assert "密码已修改。您在其他设备或浏览器上的登录已全部退出。" in here.get("/account").get_data(as_text=True)
    assert here.get("/api/me").status_code == 200  # this session carries on
    assert elsewhere.get("/api/me").status_code == 401  # the other session of the account ended
    assert other_user.get("/api/me").status_code == 200  # another account is untouched
    assert log_in(app.test_client(), "cw-a").status_code == 401
    assert log_in(app.test_client(), "cw-a", NEW_PASSWORD).status_code == 302


@pytest.mark.parametrize(
    ("current", "new", "again", "message"),
    [
        ("wrong password 1", NEW_PASSWORD, None, "当前密码不正确：请输入您现在登录用的密码。"),
        (PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x", "两次输入的新密码不一致：请在两个框中输入同一个新密码。"),
        (PASSWORD, PASSWORD, None, "新密码与当前密码相同：请换一个新密码。"),
        (PASSWORD, "short", None, "密码至少需要 10 个字符（现在是 5 个）"),
        (PASSWORD, "woaini1314520", None, "这是常见密码，很容易被猜中"),
        (PASSWORD, "cw-a-lantern-9", None, "密码不能包含用户名"),
    ],
)
def test_a_refused_password_change_says_why_and_changes_nothing(app, client_as, current, new, again, message):
    client, elsewhere = client_as("caseworker_a"), client_as("caseworker_a")
    response = _change(client, current, new, again)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert client.get("/api/me").status_code == 200 and elsewhere.get("/api/me").status_code == 200
    assert log_in(app.test_client(), "cw-a").status_code == 302  # the old password still works


def test_a_wrong_current_password_is_explained_in_english(client_as):
    response = _change(client_as("planner"), "wrong password 1", NEW_PASSWORD, lang="?lang=en")
    assert response.status_code == 400
    assert "The current password is wrong: type the password you signed in with." in response.get_data(as_text=True)


def test_wrong_current_passwords_count_as_failed_logins_and_lock_after_five(app, client_as):
    client = client_as("bureau")
    for _ in range(5):
        assert _change(client, "wrong password 1", NEW_PASSWORD).status_code == 400
    locked = _change(client, PASSWORD, NEW_PASSWORD)  # even the right one: the account is locked for 15 minutes
    assert locked.status_code == 429 and locked.headers["Retry-After"] == "900"
    assert "当前密码错误次数过多，请 15 分钟后再试。" in locked.get_data(as_text=True)
    assert log_in(app.test_client(), "bureau").status_code == 429


def test_the_password_page_is_for_signed_in_staff(client, client_as):
    assert client.get("/account/password").headers["Location"] == "/login?next=/account/password"
    page = client_as("planner").get("/account/password").get_data(as_text=True)
    assert 'autocomplete="current-password"' in page and page.count('autocomplete="new-password"') == 2
    assert 'href="/account/password"' in client_as("planner").get("/account").get_data(as_text=True)
