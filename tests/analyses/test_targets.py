from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from cryptography.fernet import Fernet

from analyses.targets import (
    PLAN_FILES,
    load_plan_tables,
    targets_report,
    targets_report_from_store,
    window_status,
)
from layers.crypto import BlindIndex, FieldCipher
from layers.demo import load_demo_layers
from layers.district import load_district
from layers.store import Store

TOWNS = pd.DataFrame(
    {
        "town_code": [f"500120{s}" for s in "001 002 003 004 005 006 100 101 102 103 104 105 106 107 108".split()],
        "name": (
            "璧城街道 璧泉街道 青杠街道 来凤街道 丁家街道 大路街道 "
            "八塘镇 七塘镇 河边镇 福禄镇 大兴镇 正兴镇 广普镇 三合镇 健龙镇"
        ).split(),
    }
)
T = TOWNS["town_code"].tolist()
ON = date(2024, 6, 30)


@pytest.fixture(scope="module")
def plan_tables():
    return load_plan_tables(load_district().plan_dir)


def _rows(specs, **extra_columns):
    """Rows from (town index, status, *extras) tuples; ids R0, R1, ..."""
    records = []
    for i, (town, status, *extras) in enumerate(specs):
        record = {"id": f"R{i}", "town_code": T[town], "status": status}
        record.update(dict(zip(extra_columns, extras, strict=True)))
        records.append(record)
    columns = ["id", "town_code", "status", *extra_columns]
    return pd.DataFrame.from_records(records, columns=columns)


def _layers(**frames):
    empty = {
        "accessible_toilet": _rows([], build_type=None),
        "service_centre": _rows([]),
        "sports_site": _rows([]),
        "household": _rows([], village_code=None),
    }
    return {**empty, **frames}


def _huican(*windows):
    """A 惠残 table with one sub-item per (start_month, end_month, kind) in 2020."""
    n = len(windows)
    return pd.DataFrame(
        {
            "item_no": pd.array(range(1, n + 1), dtype="Int64"),
            "item_name": ["测试"] * n,
            "sub_item_no": pd.array([1] * n, dtype="Int64"),
            "content": ["内容"] * n,
            "time_limit_text": ["1-5月"] * n,
            "window_kind": [w[2] for w in windows],
            "start_month": pd.array([w[0] for w in windows], dtype="Int64"),
            "end_month": pd.array([w[1] for w in windows], dtype="Int64"),
            "year": pd.array([2020] * n, dtype="Int64"),
            "responsible_units": ["区残联"] * n,
        }
    )


def _kp(report, project_no):
    return report.key_projects.set_index("project_no").loc[project_no]


# ---- key projects --------------------------------------------------------------------------------


def test_toilets_accepted_count_per_build_type_against_19_plus_19(plan_tables):
    toilets = _rows(
        [(0, "accepted", "rebuild")] * 3
        + [(1, "completed", "rebuild")] * 2
        + [(1, "planned", "rebuild")]
        + [(2, "accepted", "new")] * 2
        + [(2, "under_construction", "new")]
        + [(0, "accepted", "existing")] * 4,
        build_type=None,
    )
    report = targets_report(_layers(accessible_toilet=toilets), plan_tables, TOWNS, on=ON)
    t = report.toilets
    assert (t.target, t.accepted, t.share, t.status, t.existing) == (38, 5, 5 / 38, "behind", 4)
    by_type = t.by_build_type.set_index("build_type")
    assert by_type.loc["rebuild", ["target", "accepted", "planned", "under_construction", "completed"]].tolist() == [
        19, 3, 1, 0, 2,
    ]  # fmt: skip
    assert by_type.loc["new", ["target", "accepted", "planned", "under_construction", "completed"]].tolist() == [
        19, 2, 0, 1, 0,
    ]  # fmt: skip
    assert by_type.loc["rebuild", "share"] == 3 / 19
    assert by_type.loc["new", "share"] == 2 / 19
    assert (_kp(report, "K03")["achieved"], _kp(report, "K03")["share"]) == (3, 3 / 19)
    assert (_kp(report, "K04")["achieved"], _kp(report, "K04")["share"]) == (2, 2 / 19)
    by_town = t.by_town.set_index("town_code")
    assert len(by_town) == 15
    assert by_town.loc[T[0], ["rebuild_accepted", "rebuild_total", "new_accepted", "new_total"]].tolist() == [
        3,
        3,
        0,
        0,
    ]
    assert by_town.loc[T[1], ["rebuild_accepted", "rebuild_total"]].tolist() == [0, 3]
    assert by_town.loc[T[2], ["new_accepted", "new_total"]].tolist() == [2, 3]
    assert by_town.loc[T[14]].drop("town_name").tolist() == [0, 0, 0, 0]


def test_service_centres_list_the_towns_without_an_open_one_by_name(plan_tables):
    centres = _rows(
        [
            (0, "open", "2019-01-01"),
            (3, "open", None),
            (7, "open", "2024-06-30"),  # opened on the report date: open
            (14, "open", "2020-05-01"),
            (5, "open", "2024-07-01"),  # opens after the report date: not yet
            (6, "closed", "2018-01-01"),
            (9, "planned", None),
        ],
        opened_on=None,
    )
    report = targets_report(_layers(service_centre=centres), plan_tables, TOWNS, on=ON)
    sc = report.service_centres
    assert (sc.target, sc.open, sc.share, sc.status) == (15, 4, 4 / 15, "behind")
    expected = [name for i, name in enumerate(TOWNS["name"]) if i not in (0, 3, 7, 14)]
    assert len(sc.towns_without) == 11
    assert list(sc.towns_without) == expected
    by_town = sc.by_town.set_index("town_code")
    assert by_town.loc[T[5], ["open", "planned", "closed"]].tolist() == [0, 1, 0]
    assert by_town.loc[T[6], ["open", "planned", "closed"]].tolist() == [0, 0, 1]
    assert _kp(report, "K01")["achieved"] == 4
    later = targets_report(_layers(service_centre=centres), plan_tables, TOWNS, on=date(2024, 7, 1))
    assert later.service_centres.open == 5


@pytest.mark.parametrize(
    ("n_open", "on", "status"),
    [(3, ON, "behind"), (3, date(2025, 12, 31), "behind"), (3, date(2026, 1, 1), "missed"), (15, ON, "met")],
)
def test_sports_sites_against_15_by_the_end_of_2025(plan_tables, n_open, on, status):
    sites = _rows([(i % 15, "open") for i in range(n_open)] + [(0, "planned")])
    report = targets_report(_layers(sports_site=sites), plan_tables, TOWNS, on=on)
    assert (report.sports_sites.open, report.sports_sites.share, report.sports_sites.status) == (
        n_open,
        n_open / 15,
        status,
    )
    assert _kp(report, "K02")["status"] == status


def test_key_projects_without_a_layer_are_not_tracked(plan_tables):
    report = targets_report(_layers(), plan_tables, TOWNS, on=ON)
    untracked = report.key_projects[report.key_projects["status"] == "not_tracked"]
    assert untracked["project_no"].tolist() == ["K05", "K06", "K07", "K08"]
    assert untracked["achieved"].isna().all()
    assert untracked["share"].isna().all()
    assert _kp(report, "K01")["quote"].startswith("在镇（街道）建立“渝馨家园”")


# ---- households ----------------------------------------------------------------------------------


def _households():
    v = "500120001001"
    w = "500120002001"
    return _rows(
        [(0, "verified", v)] * 2
        + [(0, "completed", v), (0, "in_progress", v), (0, "declined", v), (0, "surveyed", v)]
        + [(1, "verified", w)] * 3,
        village_code=None,
    )


def test_home_modification_coverage_excludes_declined_households(plan_tables):
    report = targets_report(_layers(household=_households()), plan_tables, TOWNS, on=ON)
    hm = report.home_modification
    assert (hm.households, hm.declined, hm.in_need, hm.not_started, hm.in_progress, hm.modified, hm.verified) == (
        9, 1, 8, 1, 1, 6, 5,
    )  # fmt: skip
    assert (hm.share, hm.verified_share, hm.target_share, hm.status) == (6 / 8, 5 / 8, 1.0, "behind")
    by_town = hm.by_town.set_index("town_code")
    assert by_town.loc[T[0], ["households", "declined", "in_need", "modified", "verified"]].tolist() == [6, 1, 5, 3, 2]
    assert by_town.loc[T[0], "share"] == 3 / 5
    assert by_town.loc[T[1], ["in_need", "modified", "share"]].tolist() == [3, 3, 1.0]
    assert by_town.loc[T[2], "in_need"] == 0
    assert pd.isna(by_town.loc[T[2], "share"])


def test_only_the_home_modification_indicator_is_measured(plan_tables):
    report = targets_report(_layers(household=_households()), plan_tables, TOWNS, on=ON)
    ind = report.indicators.set_index("indicator_no")
    assert ind.loc[11, ["measured", "measured_by", "value", "status"]].tolist() == [True, "household", 75.0, "behind"]
    others = ind.drop(index=11)
    assert len(others) == 10
    assert not others["measured"].any()
    assert others["value"].isna().all()
    assert set(others["status"]) == {"not_measured"}


def test_full_coverage_meets_the_100_percent_target(plan_tables):
    households = _rows([(0, "verified", "500120001001"), (0, "completed", "500120001001"), (1, "declined", "x")],
                       village_code=None)  # fmt: skip
    report = targets_report(_layers(household=households), plan_tables, TOWNS, on=ON)
    assert (report.home_modification.share, report.home_modification.status) == (1.0, "met")
    assert report.indicators.set_index("indicator_no").loc[11, "status"] == "met"


def test_no_households_gives_no_coverage_rather_than_zero(plan_tables):
    report = targets_report(_layers(), plan_tables, TOWNS, on=ON)
    assert (report.home_modification.in_need, report.home_modification.share) == (0, None)
    assert report.home_modification.status == "no_data"
    assert report.indicators.set_index("indicator_no").loc[11, "status"] == "no_data"


def test_demonstration_villages_are_not_counted_only_candidates_listed(plan_tables):
    households = _rows(
        [(0, "verified", "V1"), (0, "verified", "V1"), (0, "declined", "V1")]
        + [(1, "verified", "V2"), (1, "completed", "V2")]
        + [(2, "verified", "V3")],
        village_code=None,
    )
    villages = pd.DataFrame({"village_code": ["V1", "V3"], "name": ["一村", "三村"]})
    report = targets_report(_layers(household=households), plan_tables, TOWNS, on=ON, villages=villages)
    dv = report.demonstration_villages
    assert (dv.target, dv.status) == (2, "not_tracked")
    assert dv.candidates.to_dict(orient="records") == [
        {"village_code": "V1", "village_name": "一村", "town_code": T[0], "town_name": "璧城街道",
         "households_in_need": 2, "declined": 1},
        {"village_code": "V3", "village_name": "三村", "town_code": T[2], "town_name": "青杠街道",
         "households_in_need": 1, "declined": 0},
    ]  # fmt: skip
    strict = targets_report(_layers(household=households), plan_tables, TOWNS, on=ON, min_village_households=2)
    assert strict.demonstration_villages.candidates["village_code"].tolist() == ["V1"]
    assert strict.demonstration_villages.candidates["village_name"].isna().all()
    assert pd.isna(_kp(report, "K05")["achieved"])


# ---- tasks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on", "status", "days_to_end"),
    [
        (date(2019, 12, 31), "not_started", 152),
        (date(2020, 1, 1), "due", 151),
        (date(2020, 3, 15), "due", 77),
        (date(2020, 5, 31), "due", 0),
        (date(2020, 6, 1), "overdue", -1),
    ],
)
def test_huican_window_january_to_may(plan_tables, on, status, days_to_end):
    tables = dataclasses.replace(plan_tables, huican_tasks=_huican((1, 5, "months"), (None, None, "unscheduled")))
    rows = targets_report(_layers(), tables, TOWNS, on=on).huican_tasks
    assert rows.loc[0, ["start", "end", "status", "days_to_end"]].tolist() == [
        date(2020, 1, 1), date(2020, 5, 31), status, days_to_end,
    ]  # fmt: skip
    assert rows.loc[1, "status"] == "unscheduled"
    assert pd.isna(rows.loc[1, "days_to_end"])


def test_huican_window_ends_on_the_last_day_of_february_in_a_leap_year(plan_tables):
    tables = dataclasses.replace(plan_tables, huican_tasks=_huican((2, 2, "months")))
    rows = targets_report(_layers(), tables, TOWNS, on=date(2020, 2, 29)).huican_tasks
    assert rows.loc[0, ["end", "status"]].tolist() == [date(2020, 2, 29), "due"]


def test_window_status_done_wins_over_dates():
    assert window_status(date(2020, 1, 1), date(2020, 5, 31), date(2021, 1, 1), done=True) == "done"
    assert window_status(None, None, date(2021, 1, 1)) == "unscheduled"


@pytest.mark.parametrize(
    ("on", "status"), [(date(2020, 12, 31), "not_started"), (date(2021, 1, 1), "due"), (date(2026, 1, 1), "overdue")]
)
def test_plan_tasks_run_over_the_plan_years(plan_tables, on, status):
    tasks = targets_report(_layers(), plan_tables, TOWNS, on=on).plan_tasks
    assert len(tasks) == 30
    assert set(tasks["status"]) == {status}
    assert set(tasks["status_basis"]) == {"dates"}
    assert (tasks.loc[0, "start"], tasks.loc[0, "end"]) == (date(2021, 1, 1), date(2025, 12, 31))


def test_a_plan_task_is_done_only_when_every_linked_key_project_is_met(plan_tables):
    centres = _rows([(i, "open") for i in range(15)])
    toilets = _rows([(0, "accepted", "rebuild")] * 19 + [(0, "accepted", "new")] * 19, build_type=None)
    layers = _layers(service_centre=centres, accessible_toilet=toilets)
    tasks = targets_report(layers, plan_tables, TOWNS, on=date(2026, 1, 1)).plan_tasks.set_index("task_no")
    assert tasks.loc[25, ["key_projects", "status", "status_basis"]].tolist() == [("K01",), "done", "layers"]
    # task 27 also carries the demonstration villages (K05), which no layer tracks
    assert tasks.loc[27, ["key_projects", "status"]].tolist() == [("K03", "K04", "K05"), "overdue"]
    assert tasks.loc[1, ["key_projects", "status"]].tolist() == [(), "overdue"]


# ---- version, JSON, errors -----------------------------------------------------------------------


def test_data_version_names_files_hashes_and_layer_state(plan_tables):
    plan_dir = load_district().plan_dir
    toilets = _rows([(0, "accepted", "new", datetime(2024, 1, 2, 3, 4, 5)),
                     (0, "planned", "new", datetime(2024, 5, 6, 7, 8, 9))],
                    build_type=None, updated_at=None)  # fmt: skip
    version = targets_report(_layers(accessible_toilet=toilets), plan_tables, TOWNS, on=ON).data_version
    # Bishan's folder holds three of the four plan tables (the 惠残2020 one is Shapingba's)
    assert list(version.plan_files) == [name for name in PLAN_FILES if name != "huican2020_tasks.csv"]
    for name, digest in version.plan_files.items():
        assert digest == hashlib.sha256((plan_dir / name).read_bytes()).hexdigest()
    assert version.layer_rows == {"accessible_toilet": 2, "household": 0, "service_centre": 0, "sports_site": 0}
    assert version.layer_updated_at["accessible_toilet"] == "2024-05-06T07:08:09"
    assert version.layer_updated_at["household"] is None


def test_to_dict_is_plain_json_with_stable_keys(plan_tables):
    report = targets_report(_layers(household=_households()), plan_tables, TOWNS, on=ON)
    out = json.loads(json.dumps(report.to_dict(), allow_nan=False, ensure_ascii=False))
    assert list(out) == [
        "on", "plan_years", "key_projects", "toilets", "service_centres", "sports_sites", "home_modification",
        "demonstration_villages", "indicators", "plan_tasks", "huican_tasks", "task_summary", "data_version",
    ]  # fmt: skip
    assert (out["on"], out["plan_years"]) == ("2024-06-30", [2021, 2025])
    assert out["key_projects"][0]["task_no"] == 25
    assert out["key_projects"][5]["task_no"] is None
    assert out["home_modification"]["share"] == 0.75
    assert out["demonstration_villages"]["achieved"] is None
    assert out["plan_tasks"][24]["key_projects"] == ["K01"]
    assert out["task_summary"]["plan_tasks"] == {"due": 30}
    assert out["task_summary"]["huican_tasks"] == {} and out["huican_tasks"] == []  # not Bishan's table
    assert out["data_version"]["layers"]["household"] == {"rows": 9, "max_updated_at": None}


def test_missing_layer_is_refused(plan_tables):
    layers = _layers()
    del layers["household"]
    with pytest.raises(KeyError, match=r"missing \['household'\]"):
        targets_report(layers, plan_tables, TOWNS, on=ON)


@pytest.mark.parametrize(
    ("frames", "match"),
    [
        ({"sports_site": _rows([(0, "accepted")])}, r"`status` must be one of .*'accepted'.*\['R0'\]"),
        ({"sports_site": _rows([(0, "open")]).assign(town_code="500120999")}, r"`town_code` .*'500120999'"),
        ({"accessible_toilet": _rows([(0, "planned", "改建")], build_type=None)}, r"`build_type` .*'改建'"),
        ({"service_centre": _rows([(0, "open", "2024/01/01")], opened_on=None)}, r"`opened_on` .*'2024/01/01'"),
        ({"household": _rows([(0, "verified")])}, r"missing column\(s\) \['village_code'\]"),
    ],
)
def test_bad_layer_rows_are_refused_with_the_column_and_value(plan_tables, frames, match):
    with pytest.raises(ValueError, match=match):
        targets_report(_layers(**frames), plan_tables, TOWNS, on=ON)


def test_on_must_be_a_date(plan_tables):
    with pytest.raises(TypeError, match="`on` must be a datetime.date"):
        targets_report(_layers(), plan_tables, TOWNS, on="2024-06-30")


# ---- end to end on the embedded demo data ---------------------------------------------------------


def test_demo_data_end_to_end_matches_plain_pandas_counts(tmp_path):
    district = load_district()
    store = Store(
        f"sqlite:///{tmp_path / 's.sqlite'}",
        cipher=FieldCipher(Fernet.generate_key()),
        blind_index=BlindIndex(Fernet.generate_key()),
    )
    load_demo_layers(store, district)
    on = date(2024, 6, 30)
    report = targets_report_from_store(store, district.plan_dir, district.towns, on=on)
    store.close()

    def csv(layer):
        return pd.read_csv(district.demo_dir / f"{layer}.csv", dtype=str)

    toilets = csv("accessible_toilet")
    accepted = toilets[toilets["status"] == "accepted"]["build_type"].value_counts()
    assert _kp(report, "K03")["achieved"] == accepted["rebuild"]
    assert _kp(report, "K04")["achieved"] == accepted["new"]
    assert report.toilets.accepted == accepted["rebuild"] + accepted["new"]
    assert report.toilets.share == (accepted["rebuild"] + accepted["new"]) / 38
    assert report.toilets.existing == (toilets["build_type"] == "existing").sum()

    centres = csv("service_centre")
    is_open = (centres["status"] == "open") & ~(centres["opened_on"].fillna("") > on.isoformat())
    assert report.service_centres.open == is_open.sum()
    with_centre = set(centres.loc[is_open, "town_code"])
    towns = district.towns
    assert (
        list(report.service_centres.towns_without) == towns.loc[~towns["town_code"].isin(with_centre), "name"].tolist()
    )

    sites = csv("sports_site")
    sites_open = (sites["status"] == "open") & ~(sites["opened_on"].fillna("") > on.isoformat())
    assert report.sports_sites.open == _kp(report, "K02")["achieved"] == sites_open.sum()

    households = csv("household")
    in_need = households[households["status"] != "declined"]
    modified = in_need["status"].isin(["completed", "verified"]).sum()
    hm = report.home_modification
    assert (hm.households, hm.in_need, hm.modified) == (len(households), len(in_need), modified)
    assert hm.share == modified / len(in_need)
    assert report.indicators.set_index("indicator_no").loc[11, "value"] == modified / len(in_need) * 100

    assert report.huican_tasks.empty  # Shapingba's table is in Shapingba's folder

    assert report.data_version.layer_rows == {layer: len(csv(layer)) for layer in report.data_version.layer_rows}
    for name, digest in report.data_version.plan_files.items():
        assert digest == hashlib.sha256((district.plan_dir / name).read_bytes()).hexdigest()


SHAPINGBA = Path(__file__).resolve().parents[2] / "data" / "shapingba"


def _huican_counts(huican: pd.DataFrame, on: date) -> dict[str, int]:
    """Count windows by hand: a window of months a..b of its year is due on `on` when a <= month <= b."""
    scheduled = huican[huican["start_month"] != ""]
    start, end = scheduled["start_month"].astype(int), scheduled["end_month"].astype(int)
    year = scheduled["year"].astype(int)
    before = (year > on.year) | ((year == on.year) & (start > on.month))
    after = (year < on.year) | ((year == on.year) & (end < on.month))
    counts = {"unscheduled": int((huican["start_month"] == "").sum()), "not_started": int(before.sum()),
              "overdue": int(after.sum()), "due": int((~before & ~after).sum())}  # fmt: skip
    return {k: v for k, v in counts.items() if v}


def test_shapingba_huican_table_rolls_forward_with_plan_year():
    shapingba = load_district(SHAPINGBA)
    assert shapingba.plan_year == 2020
    on = date(2026, 3, 15)
    raw = pd.read_csv(shapingba.plan_dir / "huican2020_tasks.csv", dtype=str, keep_default_na=False)
    as_written = targets_report(_layers(), load_plan_tables(shapingba.plan_dir, plan_year=shapingba.plan_year),
                                shapingba.towns, on=on)  # fmt: skip
    # in 2020's windows every scheduled sub-item is overdue six years later: 61 of 68 (7 have no months)
    assert as_written.huican_tasks["status"].value_counts().to_dict() == {"overdue": 61, "unscheduled": 7}
    assert _huican_counts(raw, on) == {"overdue": 61, "unscheduled": 7}
    rolled = load_plan_tables(shapingba.plan_dir, plan_year=2026)
    report = targets_report(_layers(), rolled, shapingba.towns, on=on)
    expected = _huican_counts(raw.assign(year="2026"), on)
    assert report.huican_tasks["status"].value_counts().to_dict() == expected
    assert expected["due"] > 0 and expected["not_started"] > 0  # March: 全年 rows are due, 4-10月 ones not started
    assert report.huican_tasks["start"].iloc[0] == date(2026, 1, 1)
    assert report.key_projects.empty and report.indicators.empty  # Shapingba has no 十四五 tables: empty, no error
