from __future__ import annotations

import re

import pytest

from layers import users
from tests.webmap import staff_fixtures
from tests.webmap.staff_fixtures import PASSWORD, csrf_token, log_in
from webmap.cli import main
from webmap.store import get_store

demo_key, demo_db, demo_cache = staff_fixtures.demo_key, staff_fixtures.demo_db, staff_fixtures.demo_cache
app, client, client_as = staff_fixtures.app, staff_fixtures.client, staff_fixtures.client_as

_SHOWN_PASSWORD = re.compile(r"<code>([^<]+)</code>")


@pytest.fixture
def admin(client_as):
    return client_as("admin")


def _post(client, path, data):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, "/admin/users")})


def test_the_page_lists_every_account_with_role_and_towns(admin):
    page = admin.get("/admin/users").get_data(as_text=True)
    assert "全部账户（5 个）" in page
    row = re.search(r"<th scope=\"row\">cw-b</th>\s*<td>(.*?)</td>\s*<td>(.*?)</td>", page)
    assert row.groups() == ("个案工作人员（按镇街）", "璧泉街道")


def test_adding_a_caseworker_with_two_towns_and_a_generated_password(app, admin):
    response = _post(admin, "/admin/users", {"name": "wang", "role": "caseworker", "towns": ["500120001", "500120003"]})
    assert response.status_code == 200
    password = _SHOWN_PASSWORD.search(response.get_data(as_text=True)).group(1)
    with app.app_context():
        user = users.get_user(get_store(), "wang")
    assert (user.role, user.towns) == ("caseworker", ("500120001", "500120003"))
    assert log_in(app.test_client(), "wang", password).status_code == 302


def test_a_typed_password_is_not_shown_back(admin):
    response = _post(admin, "/admin/users", {"name": "li", "role": "bureau", "password": PASSWORD})
    page = response.get_data(as_text=True)
    assert "已添加用户 li" in page and PASSWORD not in page and "<code>" not in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "zhao", "role": "caseworker"}, "个案工作人员按镇街负责：请至少勾选一个负责镇街。"),
        ({"name": "zhao", "role": "mayor"}, "没有“mayor”这个角色：请从列表中选择一个角色。"),
        ({"name": "cw-a", "role": "planner"}, "用户名“cw-a”已被使用：请换一个用户名。"),
        ({"name": "z", "role": "planner"}, "用户名“z”不可用：用户名为 2–64 个字母、数字或 _ . @ - 字符，请换一个。"),
        ({"name": "zhao", "role": "planner", "password": "short"}, "密码至少需要 10 个字符（现在是 5 个）"),
        ({"name": "zhao", "role": "planner", "password": "aaaaaaaaaa"}, "密码由重复的字符或片段组成（如 aaaa、abab）"),
        ({"name": "zhao", "role": "planner", "password": "woaini1314520"}, "这是常见密码，很容易被猜中"),
        ({"name": "zhao", "role": "planner", "password": "abcdefghijk"}, "密码是连续的字符"),
        ({"name": "zhao", "role": "planner", "password": "zhao-is-here"}, "密码不能包含用户名"),
        ({"name": "zhao", "role": "caseworker", "towns": ["火星镇"]}, "所选镇街不在本区：请从列表中勾选镇街。"),
    ],
)
def test_bad_accounts_are_refused_with_the_reason_on_the_page(app, admin, data, message):
    response = _post(admin, "/admin/users", data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert len(users.list_users(get_store())) == 5


def test_a_refused_password_is_explained_in_english_too(admin):
    response = _post(admin, "/admin/users?lang=en", {"name": "zhao", "role": "planner", "password": "aaaaaaaaaa"})
    assert response.status_code == 400
    assert "The password repeats a character or a piece (like aaaa or abab)" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "cw-a", "role": "planner"}, "The user name “cw-a” is taken: choose another name."),
        ({"name": "z", "role": "planner"}, "The user name “z” cannot be used: use 2–64 letters, digits, _ . @ or -."),
        ({"name": "zhao", "role": "caseworker", "towns": ["火星镇"]}, "A chosen town is not in this district: tick"),
    ],
)
def test_a_refused_name_or_town_is_explained_in_english_too(admin, data, message):
    response = _post(admin, "/admin/users?lang=en", data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_deactivating_a_user_stops_their_login_and_reactivating_restores_it(app, admin):
    assert _post(admin, "/admin/users/bureau/active", {"active": "0"}).status_code == 302
    assert "已停用用户 bureau" in admin.get("/admin/users").get_data(as_text=True)
    assert log_in(app.test_client(), "bureau").status_code == 401
    _post(admin, "/admin/users/bureau/active", {"active": "1"})
    assert log_in(app.test_client(), "bureau").status_code == 302


def test_an_admin_cannot_deactivate_themselves_and_unknown_users_are_404(admin):
    assert _post(admin, "/admin/users/admin/active", {"active": "0"}).status_code == 400
    assert _post(admin, "/admin/users/nobody/active", {"active": "0"}).status_code == 404
    assert _post(admin, "/admin/users/nobody/password", {}).status_code == 404
    assert admin.get("/api/me").status_code == 200


def test_a_password_reset_shows_a_new_password_once_and_the_old_one_stops_working(app, admin):
    response = _post(admin, "/admin/users/planner/password", {"confirm": "yes"})
    new_password = _SHOWN_PASSWORD.search(response.get_data(as_text=True)).group(1)
    assert new_password != PASSWORD
    assert log_in(app.test_client(), "planner").status_code == 401
    assert log_in(app.test_client(), "planner", new_password).status_code == 302


def test_a_password_reset_asks_for_confirmation_first_and_resets_nothing_without_it(app, admin):
    page = admin.get("/admin/users").get_data(as_text=True)
    assert 'href="/admin/users/planner/password"' in page  # a link to the confirmation page, not a one-click POST
    confirm = admin.get("/admin/users/planner/password")
    text = confirm.get_data(as_text=True)
    assert confirm.status_code == 200
    assert "重置用户 planner 的密码" in text and 'name="confirm" value="yes" required' in text
    refused = _post(admin, "/admin/users/planner/password", {})
    assert refused.status_code == 400
    assert "请先勾选确认框，再重置密码。密码未重置。" in refused.get_data(as_text=True)
    assert _post(admin, "/admin/users/planner/password", {"confirm": "on"}).status_code == 400
    assert log_in(app.test_client(), "planner").status_code == 302  # the old password still works
    english = _post(admin, "/admin/users/planner/password?lang=en", {})
    assert "Tick the confirmation box before resetting the password. The password was not reset." in english.get_data(
        as_text=True
    )
    assert admin.get("/admin/users/nobody/password").status_code == 404


def test_an_admin_changes_a_planners_role_to_caseworker_of_two_towns_and_their_session_follows(app, admin, client_as):
    planner = client_as("planner")
    assert planner.get("/planner/").status_code == 200
    page = admin.get("/admin/users/planner/edit").get_data(as_text=True)
    assert '<option value="planner" selected>' in page
    response = _post(admin, "/admin/users/planner/edit", {"role": "caseworker", "towns": ["500120002", "500120003"]})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/users"
    assert "已修改用户 planner 的角色和负责镇街。" in admin.get("/admin/users").get_data(as_text=True)
    with app.app_context():
        user = users.get_user(get_store(), "planner")
    assert (user.role, user.towns) == ("caseworker", ("500120002", "500120003"))
    # the open session carries on with the new role: the planner pages are closed, the caseworker list opens
    assert planner.get("/planner/").status_code == 403
    assert planner.get("/caseworker/").status_code == 200
    assert planner.get("/api/me").get_json()["towns"] == ["500120002", "500120003"]
    # back to a district-wide role: the towns are dropped
    _post(admin, "/admin/users/planner/edit", {"role": "bureau", "towns": ["500120002"]})
    with app.app_context():
        assert users.get_user(get_store(), "planner").towns == ()


@pytest.mark.parametrize(
    ("path", "data", "message"),
    [
        ("/admin/users/cw-a/edit", {"role": "caseworker"}, "个案工作人员按镇街负责：请至少勾选一个负责镇街。"),
        ("/admin/users/cw-a/edit?lang=en", {"role": "caseworker"},
         "A caseworker works for towns: tick at least one town."),
        ("/admin/users/cw-a/edit", {"role": "mayor"}, "没有“mayor”这个角色：请从列表中选择一个角色。"),
        ("/admin/users/cw-a/edit", {"role": "caseworker", "towns": ["999999999"]},
         "所选镇街不在本区：请从列表中勾选镇街。"),
        ("/admin/users/admin/edit", {"role": "planner"},
         "不能修改自己的角色（以免系统没有管理员）：请另一位管理员修改。"),
    ],
)  # fmt: skip
def test_a_role_change_that_does_not_fit_is_refused_and_changes_nothing(app, admin, path, data, message):
    before = {u.name: (u.role, u.towns) for u in users.list_users(_store(app))}
    response = _post(admin, path, data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert {u.name: (u.role, u.towns) for u in users.list_users(_store(app))} == before


def test_role_edits_are_for_admins_only_and_unknown_users_are_404(client_as, admin):
    for role_key in ("caseworker_a", "bureau", "planner"):
        client = client_as(role_key)
        assert client.get("/admin/users/cw-a/edit").status_code == 403
        token = csrf_token(client, "/account")
        assert client.post("/admin/users/cw-a/edit", data={"role": "admin", "csrf_token": token}).status_code == 403
    assert admin.get("/admin/users/nobody/edit").status_code == 404
    assert _post(admin, "/admin/users/nobody/edit", {"role": "planner"}).status_code == 404


def _store(app):
    with app.app_context():
        return get_store()


# --- `accessplan users ...` ------------------------------------------------------------------------


def test_cli_add_resolves_town_names_and_codes_and_lists_the_user(app):
    runner = app.test_cli_runner()
    args = ["users", "add", "wang", "--role", "caseworker", "--town", "璧城街道", "--town", "500120003",
            "--password", PASSWORD]  # fmt: skip
    result = runner.invoke(main, args=args)
    assert result.exit_code == 0, result.output
    listed = runner.invoke(main, args=["users", "list"]).output.splitlines()
    assert "wang\tcaseworker\t璧城街道,青杠街道\tactive" in listed
    assert len(listed) == 6


def test_cli_add_prompts_for_the_password(app):
    result = app.test_cli_runner().invoke(
        main, args=["users", "add", "sun", "--role", "planner"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert log_in(app.test_client(), "sun").status_code == 302


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["users", "add", "x1", "--role", "caseworker", "--town", "火星镇", "--password", PASSWORD], "火星镇"),
        (["users", "add", "x1", "--role", "caseworker", "--password", PASSWORD], "at least one town"),
        (["users", "add", "x1", "--role", "mayor", "--password", PASSWORD], "'mayor' is not one of"),
        (["users", "passwd", "nobody", "--password", PASSWORD], "No user named 'nobody'"),
        (["users", "remove", "nobody"], "No user named 'nobody'"),
        (["users", "add", "x1", "--role", "planner", "--password", "aaaaaaaaaa"], "repeats a character"),
        (["users", "add", "x1", "--role", "planner", "--password", "1234567890"], "common password"),
        (["users", "passwd", "bureau", "--password", "qwertyuiop"], "common password"),
        (["users", "passwd", "bureau", "--password", "abcdefghijk"], "is a sequence"),
    ],
)
def test_cli_errors_name_the_problem(app, args, message):
    result = app.test_cli_runner().invoke(main, args=args)
    assert result.exit_code != 0
    assert message in result.output


def test_cli_passwd_deactivate_activate_remove(app):
    runner = app.test_cli_runner()
    assert runner.invoke(main, args=["users", "passwd", "bureau", "--password", "another password 9"]).exit_code == 0
    assert log_in(app.test_client(), "bureau", "another password 9").status_code == 302
    assert runner.invoke(main, args=["users", "deactivate", "bureau"]).exit_code == 0
    assert "bureau\tbureau\t-\tinactive" in runner.invoke(main, args=["users", "list"]).output
    assert runner.invoke(main, args=["users", "activate", "bureau"]).exit_code == 0
    assert runner.invoke(main, args=["users", "remove", "bureau"]).exit_code == 0
    assert "bureau" not in runner.invoke(main, args=["users", "list"]).output


def test_cli_demo_creates_one_account_per_role_only_when_there_is_none(app):
    runner = app.test_cli_runner()
    assert "Accounts exist already" in runner.invoke(main, args=["users", "demo"]).output
    for name in ("cw-a", "cw-b", "bureau", "planner", "admin"):
        runner.invoke(main, args=["users", "remove", name])
    output = runner.invoke(main, args=["users", "demo"]).output
    passwords = dict(re.findall(r"^\s+(demo-\w+)\s+(\S+)$", output, flags=re.MULTILINE))
    assert sorted(passwords) == ["demo-admin", "demo-bureau", "demo-caseworker", "demo-planner"]
    assert "demo data only" in output
    with app.app_context():
        assert users.get_user(get_store(), "demo-caseworker").towns == ("500120001",)  # 璧城街道
    assert log_in(app.test_client(), "demo-caseworker", passwords["demo-caseworker"]).status_code == 302
