"""Hostile text in every layer stays text on every page that draws a map, for every role (issue 13, finding 1).

Names (and household ids) holding a backtick, ``${…}``, ``</script>``, an ``<img onerror>``, quotes, a
backslash and Jinja delimiters are imported through the normal paths: the bureau's web import for toilets
(in the browser), ``layers.importer.import_layer`` (what ``accessplan import`` runs) for the other layers.
Then every map page is opened as each role that may see it, with the planner jobs run to completion;
every tooltip and popup is opened, and the page must raise no dialog, no script error, no request for
the injected image and no global set by a payload, and must show each payload as the literal text.

The app is a separate one on its own store (the shared demo store stays clean for the other tests).
"""

from __future__ import annotations

import io
import time
from urllib.parse import urlencode

import pandas as pd
import pytest
from openpyxl import Workbook

from layers import schema, users
from layers.idcard import id_check_char
from layers.importer import import_layer
from tests.browser.harness import build_demo_app, close_app, open_page, serve

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

PASSWORD = "hostile text 123"
TOWN = "500120001"  # 璧城街道: the hostile households and toilets lie here
#: Each would run script (or break the map's script) if it reached the page as markup or code.
PAYLOADS = (
    "`+alert(1)+(window.xssHit=1)+`",
    "${alert(2)}${window.xssHit=2}",
    "</script><script>alert(3);window.xssHit=3</script>",
    "<img src=x onerror=alert(4)>",
    "q\"uo'te \\u{zz} \\x \\",
    "{{ 'ss' ~ 'ti' }}{% if 1 %}jinja{% endif %}",
)
DONE = ("done", "failed")
ROLES = {"public": None, "caseworker": "caseworker", "bureau": "bureau", "planner": "planner", "admin": "admin"}
TOILET_HEADERS = ["编号", "名称", "镇街", "详细地址", "经度", "纬度", "状态", "建设类型", "施工单位", "计划完工日期"]

#: Opens every tooltip and popup of every Leaflet map on the page; returns their texts and the count.
OPEN_ALL = """() => {
    const texts = [];
    const maps = [];
    for (const key of Object.keys(window)) {
        try { if (window[key] instanceof L.Map) maps.push(window[key]); } catch (e) { /* not ours */ }
    }
    for (const map of maps) {
        const clusters = [];  // clustered markers are off the map: draw them plain to open each one
        map.eachLayer(l => { if (L.MarkerClusterGroup && l instanceof L.MarkerClusterGroup) clusters.push(l); });
        clusters.forEach(c => {
            const markers = c.getLayers();
            map.removeLayer(c);
            L.featureGroup(markers).addTo(map);
        });
        const layers = [];
        map.eachLayer(l => layers.push(l));
        for (const layer of layers) {
            if (layer.getTooltip && layer.getTooltip()) {
                const members = layer instanceof L.FeatureGroup ? layer.getLayers() : [layer];
                for (const member of members) {
                    const at = member.getBounds ? member.getBounds().getCenter() : member.getLatLng();
                    if (layer !== member) layer.getTooltip()._source = member;  // Leaflet 1.9: a group opens
                    layer.openTooltip(at);                                         // its source's tooltip
                    const el = layer.getTooltip().getElement();
                    texts.push(el ? el.textContent : "");
                    layer.closeTooltip();
                }
            }
            if (layer.getPopup && layer.getPopup() && !(layer instanceof L.FeatureGroup)) {
                layer.openPopup();
                const el = layer.getPopup().getElement();
                texts.push(el ? el.textContent : "");
                layer.closePopup();
            }
        }
    }
    return {maps: maps.length, texts: texts};
}"""


def _hostile_name(i: int) -> str:
    return f"恶意{i}{PAYLOADS[i]}"


def _hostile_rows(demo: pd.DataFrame, prefix: str, *, hostile_ids: bool = False) -> pd.DataFrame:
    """The first demo rows (one person each), moved a few metres, named (ids too, optionally) by the payloads."""
    rows = demo.iloc[[i % len(demo) for i in range(len(PAYLOADS))]].reset_index(drop=True)
    rows["name"] = [_hostile_name(i) for i in range(len(PAYLOADS))]
    rows["id"] = [f"{prefix}-{i}{PAYLOADS[i] if hostile_ids else ''}" for i in range(len(PAYLOADS))]
    rows["lon"] = [round(float(lon) + 0.0002 * (i + 1), 6) for i, lon in enumerate(rows["lon"])]
    rows["lat"] = [round(float(lat) + 0.0002 * (i + 1), 6) for i, lat in enumerate(rows["lat"])]
    if "id_number" in rows:  # other people than the demo's (one household per person): new sequence numbers
        first17 = [f"{number[:14]}9{i:02d}" for i, number in enumerate(rows["id_number"])]
        new = [f + id_check_char(f) for f in first17]
        rows["certificate_number"] = [n + c[18:] for n, c in zip(new, rows["certificate_number"], strict=True)]
        rows["id_number"] = new
    return rows


def _toilet_sheet(folder) -> str:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(TOILET_HEADERS)
    for i in range(len(PAYLOADS)):
        sheet.append([f"AT-X{i}", _hostile_name(i), "璧城街道", f"测试路{i}号", round(106.227 + 0.0004 * i, 6),
                      round(29.591 + 0.0003 * i, 6), "规划", "新建", "甲公司", "2025-06-30"])  # fmt: skip
    buffer = io.BytesIO()
    workbook.save(buffer)
    path = folder / "恶意台账.xlsx"
    path.write_bytes(buffer.getvalue())
    return str(path)


def _log_in(page, name: str) -> None:
    page.goto(page.base_url + "/login?next=/account")  # not the role's workspace: the tests open their pages
    page.fill("#login-name", name)
    page.fill("#login-password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/account")


@pytest.fixture(scope="module")
def hostile_site(browser, demo_app, tmp_path_factory):
    """A served app whose every layer holds the payloads; yields its base URL and the hostile household ids."""
    from webmap.store import get_district, get_store

    folder = tmp_path_factory.mktemp("hostile-app")
    jobs_dir = tmp_path_factory.mktemp("hostile-jobs")
    # The road network cache of the shared demo app is reused: building it again would cost seconds.
    app = build_demo_app(folder, CACHE_DIR=demo_app.config["CACHE_DIR"], JOBS_DIR=str(jobs_dir),
                         SESSION_COOKIE_SECURE=False)  # fmt: skip
    household_ids = []
    with app.app_context():
        store, district = get_store(), get_district()
        for role in ("caseworker", "bureau", "planner", "admin"):
            users.add_user(store, role, role=role, password=PASSWORD, towns=(TOWN,) if role == "caseworker" else ())
        for layer in (schema.SERVICE_CENTRE, schema.REHAB_STATION, schema.SPORTS_SITE, schema.HOUSEHOLD):
            demo = pd.read_csv(district.demo_dir / f"{layer}.csv", dtype=str)
            if layer == schema.HOUSEHOLD:
                demo = demo[demo[schema.TOWN_CODE] == TOWN]
            rows = _hostile_rows(demo, f"X-{layer}", hostile_ids=layer == schema.HOUSEHOLD)
            path = folder / f"{layer}.csv"
            rows.to_csv(path, index=False)
            outcome = import_layer(store, layer, path, district=district, user="hostile-test")
            assert outcome.ok, outcome.validation.report()
            if layer == schema.HOUSEHOLD:
                household_ids = list(rows["id"])
    with serve(app) as url:
        with open_page(browser, url) as page:  # the bureau's own web import, as in the attack
            _log_in(page, "bureau")
            page.goto(url + "/toilets/import")
            page.set_input_files("#i-file", _toilet_sheet(folder))
            page.select_option("#i-datum", "wgs84")
            page.click("text=检查文件")
            page.click("text=确认导入")
            page.wait_for_load_state("load")
        with app.app_context():
            toilets = set(get_store().features(schema.ACCESSIBLE_TOILET)[schema.ID])
            centres = len(get_store().features(schema.SERVICE_CENTRE))
        assert {f"AT-X{i}" for i in range(len(PAYLOADS))} <= toilets
        yield {"url": url, "households": household_ids, "service_centres": centres}
    close_app(app)


#: Planner jobs kept small: one short threshold, few candidates, the heuristic siting method.
JOB_FORMS = {
    "coverage": {"#facilities": schema.REHAB_STATION, "#thresholds": "300m"},
    "gaps": {"#threshold": "300m", "#hex_size": "1000"},
    "service-areas": {"#thresholds": "300m", "#shape": "hull"},
    "siting": {
        "#per_town": "",
        "#threshold": "5min",
        "#candidates_per_town": "1",
        "#method": "heuristic",
        "#time_limit": "5",
    },  # fmt: skip
}


@pytest.fixture(scope="module")
def job_urls(browser, hostile_site):
    """Run each planner job through its form to completion; return kind → result page path."""
    urls = {}
    with open_page(browser, hostile_site["url"]) as page:
        _log_in(page, "planner")
        for kind, fields in JOB_FORMS.items():
            if kind == "siting":  # every centre kept (the hostile ones too) and one new site
                fields = {**fields, "#p": str(hostile_site["service_centres"] + 1)}
            page.goto(f"{page.base_url}/planner/{kind}")
            for selector, value in fields.items():
                if page.locator(selector).evaluate("e => e.tagName") == "SELECT":
                    page.select_option(selector, value)
                else:
                    page.fill(selector, value)
            page.click("main form button[type=submit]")
            page.wait_for_url("**/planner/jobs/*")
            urls[kind] = page.url.removeprefix(page.base_url)
        for kind, path in urls.items():
            deadline = time.monotonic() + 300
            while (record := page.request.get(f"{page.base_url}{path}.json").json())["status"] not in DONE:
                assert time.monotonic() < deadline, f"{kind} job did not finish"
                time.sleep(0.5)
            assert record["status"] == "done", record
    return urls


def _assert_inert(page, path: str, dialogs: list[str]) -> None:
    """Assert that no payload ran on the open page: no dialog, script error, injected element or global."""
    side_effects = page.evaluate(
        "() => ({hit: window.xssHit === undefined ? null : String(window.xssHit),"
        " images: document.querySelectorAll('img[src=\"x\"], [onerror]').length})"
    )
    assert dialogs == [], path
    assert page.traffic.errors == [], path  # no script error, no CSP violation
    assert side_effects == {"hit": None, "images": 0}, path
    assert page.traffic.failed == [] and page.traffic.blocked == [], path


def _open_and_check(page, path: str, *, dialogs: list[str], open_all: bool) -> list[str]:
    """Open ``path`` (and with ``open_all`` every tooltip and popup); assert nothing ran; return the texts opened.

    A page another role has opened every tooltip of holds the same map: its load is checked, not each hover.
    """
    response = page.goto(page.base_url + path, wait_until="load")
    assert response is not None and response.status == 200, path
    _assert_inert(page, path, dialogs)  # the page's scripts have run by "load"
    page.wait_for_selector(".leaflet-container")
    if not open_all:
        return []
    opened = page.evaluate(OPEN_ALL)
    assert opened["maps"] >= 1, path
    _assert_inert(page, path, dialogs)
    return opened["texts"]


def _assert_shown_literally(texts: list[str], payloads) -> None:
    shown = "\n".join(texts)
    missing = [p for p in payloads if p not in shown]
    assert missing == [], "payloads not shown as text"
    assert "ssti" not in shown and "jinja" not in shown.replace("{% if 1 %}jinja{% endif %}", "")


def _pages(hostile_site, job_urls) -> list[tuple[str, str]]:
    ids = hostile_site["households"]
    visits = "/caseworker/visits?" + urlencode([("start", TOWN), *(("id", i) for i in ids)])
    pages = [("public", "/"), ("public", "/?lang=en"), ("caseworker", "/caseworker/"), ("caseworker", visits)]
    for role in ("bureau", "planner", "admin"):
        pages.append((role, "/toilets/"))
    for role in ("planner", "admin"):
        pages += [(role, path) for path in job_urls.values()]
    return pages


def test_hostile_names_stay_text_on_every_map_for_every_role(browser, hostile_site, job_urls):
    by_role: dict[str, list[str]] = {}
    for role, path in _pages(hostile_site, job_urls):
        by_role.setdefault(role, []).append(path)
    checked, hovered = [], set()
    for role, paths in by_role.items():
        with open_page(browser, hostile_site["url"]) as page:
            dialogs: list[str] = []
            page.on("dialog", lambda d, seen=dialogs: (seen.append(d.message), d.dismiss()))
            if ROLES[role]:
                _log_in(page, ROLES[role])
            for path in paths:
                texts = _open_and_check(page, path, dialogs=dialogs, open_all=path not in hovered)
                if path not in hovered:
                    _assert_shown_literally(texts, PAYLOADS)
                    hovered.add(path)
                checked.append((role, path))
    assert len(checked) == 4 + 3 + 2 * len(JOB_FORMS) and len(hovered) == 4 + 1 + len(JOB_FORMS)
