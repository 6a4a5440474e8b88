from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from layers import plan
from layers.district import load_district
from layers.errors import PlanDataError

PLAN_DIR = load_district().plan_dir
#: The 惠残2020 task table is Shapingba's (data/shapingba/plan/), not Bishan's.
SHAPINGBA_PLAN_DIR = load_district(Path(__file__).resolve().parents[2] / "data" / "shapingba").plan_dir


@pytest.fixture(scope="module")
def indicators():
    return plan.load_indicators(PLAN_DIR)


@pytest.fixture(scope="module")
def key_projects():
    return plan.load_key_projects(PLAN_DIR)


@pytest.fixture(scope="module")
def tasks():
    return plan.load_tasks(PLAN_DIR)


@pytest.fixture(scope="module")
def huican():
    return plan.load_huican_tasks(SHAPINGBA_PLAN_DIR)


# ---- counts against the documents ---------------------------------------------------------------


def test_eleven_indicators_numbered_1_to_11(indicators):
    assert indicators[plan.INDICATOR_NO].tolist() == list(range(1, 12))


def test_thirty_tasks_numbered_1_to_30(tasks):
    assert tasks[plan.TASK_NO].tolist() == list(range(1, 31))


def test_twenty_two_shapingba_items_with_68_sub_items(huican):
    assert sorted(huican[plan.ITEM_NO].unique()) == list(range(1, 23))
    assert len(huican) == 68
    # item 2 精准康复服务工作 has six numbered sub-items; item 5 has one unnumbered content
    assert huican.loc[huican[plan.ITEM_NO] == 2, plan.SUB_ITEM_NO].tolist() == [1, 2, 3, 4, 5, 6]
    assert huican.loc[huican[plan.ITEM_NO] == 5, plan.SUB_ITEM_NO].isna().all()


def test_every_file_names_its_document(indicators, key_projects, tasks, huican):
    bishan = "重庆市璧山区“十四五”残疾人保障和发展规划（2021—2025年）"
    for df in (indicators, key_projects, tasks):
        assert df[plan.SOURCE].str.startswith(bishan).all()
    assert (huican[plan.SOURCE] == "重庆市沙坪坝区“惠残2020工程”任务分解表").all()
    assert (huican[plan.YEAR] == 2020).all()


# ---- spot checks, read by hand in shared/seeds/ --------------------------------------------------


def test_indicator_natures_as_in_the_table(indicators):
    by_nature = indicators.groupby(plan.NATURE)[plan.INDICATOR_NO].apply(list).to_dict()
    assert by_nature == {"约束性": [3, 4, 5, 9, 10, 11], "预期性": [1, 2, 6, 7, 8]}


def test_pension_indicator_target_is_more_than_90_percent(indicators):
    row = indicators.set_index(plan.INDICATOR_NO).loc[6]
    assert row[plan.NAME_ZH] == "残疾人城乡居民基本养老保险参保率（%）"
    assert (row[plan.TARGET_TEXT], row[plan.TARGET_OPERATOR], row[plan.TARGET_VALUE]) == ("＞90", ">", 90.0)
    assert row[plan.NATURE] == "预期性"


def test_income_indicator_has_no_number_and_training_keeps_its_unit(indicators):
    rows = indicators.set_index(plan.INDICATOR_NO)
    assert rows.loc[1, plan.TARGET_TEXT] == "与全区地区生产总值增长基本同步"
    assert pd.isna(rows.loc[1, plan.TARGET_VALUE])
    assert rows.loc[2, plan.TARGET_TEXT] == "900人次"
    assert rows.loc[2, plan.TARGET_VALUE] == 900
    assert rows.loc[11, plan.TARGET_VALUE] == 100
    assert rows.loc[11, plan.NATURE] == "约束性"


def test_toilets_19_rebuilt_and_19_new(key_projects):
    toilets = key_projects[key_projects[plan.LAYER] == "accessible_toilet"]
    assert dict(zip(toilets[plan.BUILD_TYPE], toilets[plan.TARGET_COUNT], strict=True)) == {
        "rebuild": 19,
        "new": 19,
    }
    assert (toilets[plan.TASK_NO] == 27).all()


@pytest.mark.parametrize(
    ("layer", "count"),
    [("service_centre", 15), ("sports_site", 15), ("household", 2)],
)
def test_layer_targets(key_projects, layer, count):
    assert key_projects.loc[key_projects[plan.LAYER] == layer, plan.TARGET_COUNT].tolist() == [count]


def test_employment_bases_5_and_training_base_1(key_projects):
    counts = dict(zip(key_projects[plan.PROJECT_ZH], key_projects[plan.TARGET_COUNT], strict=True))
    assert counts["农村残疾人就业帮扶基地"] == 5
    assert counts["残疾人职业技能培训和创业孵化基地"] == 1


def test_each_quote_states_its_count_and_task_links_exist(key_projects, tasks):
    for quote, count in zip(key_projects[plan.QUOTE], key_projects[plan.TARGET_COUNT], strict=True):
        assert str(count) in quote
    linked = key_projects[plan.TASK_NO].dropna()
    assert set(linked) <= set(tasks[plan.TASK_NO])
    task_text = tasks.set_index(plan.TASK_NO)[plan.TASK_TEXT]
    assert "改建无障碍厕所19座，新建无障碍厕所19座" in task_text[27]
    assert "“渝馨家园”（残疾人之家）等15个服务机构" in task_text[25]


def test_task_lead_and_responsible_units(tasks):
    rows = tasks.set_index(plan.TASK_NO)
    assert rows.loc[1, plan.LEAD_UNITS] == "区农业农村委"
    assert plan.split_units(rows.loc[27, plan.LEAD_UNITS]) == ["区住房城乡建委", "区残联", "区城市管理局"]
    assert plan.split_units(rows.loc[5, plan.LEAD_UNITS]) == ["区民政局", "各镇街"]
    assert rows.loc[22, plan.RESPONSIBLE_UNITS] == ""  # empty in the document
    assert plan.split_units("") == []


def test_home_modification_window_1_to_10(huican):
    row = huican[huican[plan.ITEM_NO] == 20].iloc[0]
    assert row[plan.CONTENT] == "强化无障碍环境建设，实施残疾人家庭无障碍改造"
    assert row[plan.TIME_LIMIT_TEXT] == "1-5月摸底，10底前完成改造"
    assert (row[plan.START_MONTH], row[plan.END_MONTH]) == (1, 10)


def test_rehab_station_window_and_units(huican):
    row = huican[(huican[plan.ITEM_NO] == 1) & (huican[plan.SUB_ITEM_NO] == 3)].iloc[0]
    assert row[plan.TIME_LIMIT_TEXT] == "1-4月自查摸底，5-9月建设"
    assert (row[plan.START_MONTH], row[plan.END_MONTH]) == (1, 9)
    assert plan.split_units(row[plan.RESPONSIBLE_UNITS]) == [
        "区残联",
        "区教委",
        "区民政局",
        "区卫健委",
        "各镇街",
    ]


def test_csv_windows_agree_with_the_parser(huican):
    for _, row in huican.iterrows():
        window = plan.parse_month_window(row[plan.TIME_LIMIT_TEXT])
        start = None if pd.isna(row[plan.START_MONTH]) else row[plan.START_MONTH]
        end = None if pd.isna(row[plan.END_MONTH]) else row[plan.END_MONTH]
        assert (window.start_month, window.end_month, window.kind) == (start, end, row[plan.WINDOW_KIND])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("全年", (1, 12, "full_year")),
        ("1-3月完成摸底，4月发卡；全年开展服务", (1, 12, "full_year")),
        ("每季度", (1, 12, "recurring")),
        ("1-4月筛查；5-10月验配", (1, 10, "months")),
        ("7月完成申报工作；8-9月，完成实地审核；10月，完成扶持资金发放", (7, 10, "months")),
        ("4、10月分两次完成申报及发放", (4, 10, "months")),
        ("5-7月完成", (5, 7, "months")),
        ("10月底前完成", (1, 10, "deadline")),
        ("12月底前", (1, 12, "deadline")),
        ("根据市统一安排", (None, None, "unscheduled")),
        ("元旦、春节、助残日、残疾人日等", (None, None, "unscheduled")),
        ("", (None, None, "blank")),
    ],
)
def test_parse_month_window(text, expected):
    window = plan.parse_month_window(text)
    assert (window.start_month, window.end_month, window.kind) == expected


def test_reading_twice_gives_equal_frames(tasks):
    pd.testing.assert_frame_equal(plan.load_tasks(PLAN_DIR), tasks)


# ---- validation errors on small bad files ---------------------------------------------------------

_LOADERS = {
    plan.INDICATORS_FILE: plan.load_indicators,
    plan.KEY_PROJECTS_FILE: plan.load_key_projects,
    plan.TASKS_FILE: plan.load_tasks,
    plan.HUICAN_TASKS_FILE: plan.load_huican_tasks,
}


def _write_bad(tmp_path, file_name, edits, *, n_rows=4):
    """Copy the first rows of a real plan file into tmp_path with cells replaced: {(index, col): value}."""
    folder = SHAPINGBA_PLAN_DIR if file_name == plan.HUICAN_TASKS_FILE else PLAN_DIR
    df = pd.read_csv(folder / file_name, dtype=str, keep_default_na=False).head(n_rows)
    for (i, col), value in edits.items():
        df.loc[i, col] = value
    df.to_csv(tmp_path / file_name, index=False)
    return tmp_path


@pytest.mark.parametrize("file_name", list(_LOADERS))
def test_small_copies_of_real_files_load(tmp_path, file_name):
    assert len(_LOADERS[file_name](_write_bad(tmp_path, file_name, {}))) == 4


@pytest.mark.parametrize("file_name", list(_LOADERS))
def test_missing_file(tmp_path, file_name):
    with pytest.raises(PlanDataError, match=re.escape(file_name) + ".* is missing"):
        _LOADERS[file_name](tmp_path)


def test_missing_column_is_named(tmp_path):
    df = pd.read_csv(PLAN_DIR / plan.INDICATORS_FILE, dtype=str, keep_default_na=False)
    df.drop(columns=[plan.NATURE]).to_csv(tmp_path / plan.INDICATORS_FILE, index=False)
    with pytest.raises(PlanDataError, match=r"indicators\.csv: missing column\(s\) \['nature'\]"):
        plan.load_indicators(tmp_path)


@pytest.mark.parametrize(
    ("file_name", "edits", "pattern"),
    [
        (
            plan.INDICATORS_FILE,
            {(2, plan.NATURE): "约束"},
            r"indicators\.csv row 4, column `nature`: must be one of \['约束性', '预期性'\]; got '约束'\.",
        ),
        (
            plan.INDICATORS_FILE,
            {(1, plan.TARGET_VALUE): "９００"},
            r"row 3, column `target_value`: must be a number; got '９００'\. Fix: write a plain number",
        ),
        (
            plan.INDICATORS_FILE,
            {(2, plan.TARGET_VALUE): ""},
            r"row 4, column `target_operator`: must be set exactly when `target_value` is; got '='",
        ),
        (
            plan.KEY_PROJECTS_FILE,
            {(0, plan.TARGET_COUNT): "十五"},
            r"key_projects\.csv row 2, column `target_count`: must be a whole number; got '十五'\. Fix",
        ),
        (
            plan.KEY_PROJECTS_FILE,
            {(0, plan.TARGET_COUNT): "0"},
            r"row 2, column `target_count`: must be positive; got 0",
        ),
        (
            plan.KEY_PROJECTS_FILE,
            {(2, plan.LAYER): "toilet"},
            r"row 4, column `layer`: must be one of \[.*'accessible_toilet'.*\]; got 'toilet'",
        ),
        (
            plan.KEY_PROJECTS_FILE,
            {(1, plan.BUILD_TYPE): "new"},
            r"row 3, column `build_type`: applies only to `layer` 'accessible_toilet'; got 'new'\. Fix",
        ),
        (
            plan.KEY_PROJECTS_FILE,
            {(3, plan.PROJECT_NO): "K01"},
            r"row 5, column `project_no`: repeats an earlier row; got 'K01'",
        ),
        (
            plan.TASKS_FILE,
            {(1, plan.TASK_NO): "1"},
            r"tasks\.csv row 3, column `task_no`: repeats an earlier row; got 1",
        ),
        (
            plan.TASKS_FILE,
            {(0, plan.LEAD_UNITS): ""},
            r"tasks\.csv row 2, column `lead_units`: must not be empty; got ''\. Fix: fill it in",
        ),
        (
            plan.HUICAN_TASKS_FILE,
            {(2, plan.START_MONTH): "13"},
            r"huican2020_tasks\.csv row 4, column `start_month`: must be a month 1–12; got 13",
        ),
        (
            plan.HUICAN_TASKS_FILE,
            {(2, plan.START_MONTH): "10", (2, plan.END_MONTH): "5"},
            r"row 4, column `start_month`: must not be after `end_month`; got '10>5'",
        ),
        (
            plan.HUICAN_TASKS_FILE,
            {(0, plan.END_MONTH): ""},
            r"row 2, column `window_kind`: needs both `start_month` and `end_month`; got 'full_year'",
        ),
        (
            plan.HUICAN_TASKS_FILE,
            {(1, plan.START_MONTH): "1", (1, plan.END_MONTH): "12"},
            r"row 3, column `window_kind`: must have empty `start_month` and `end_month`; got 'blank'",
        ),
        (
            plan.HUICAN_TASKS_FILE,
            {(3, plan.YEAR): "二〇二〇"},
            r"row 5, column `year`: must be a whole number; got '二〇二〇'",
        ),
        (
            plan.HUICAN_TASKS_FILE,
            {(3, plan.ITEM_NO): "1", (3, plan.SUB_ITEM_NO): "1"},
            r"row 5, column `sub_item_no`: repeats an earlier \(item_no, sub_item_no\); got '1\.1'",
        ),
    ],
)
def test_validation_error_names_file_row_column_value_and_fix(tmp_path, file_name, edits, pattern):
    folder = _write_bad(tmp_path, file_name, edits)
    with pytest.raises(PlanDataError, match=pattern):
        _LOADERS[file_name](folder)


def test_all_problems_are_reported_at_once(tmp_path):
    folder = _write_bad(tmp_path, plan.INDICATORS_FILE, {(0, plan.NATURE): "x", (3, plan.INDICATOR_NO): "四"})
    with pytest.raises(PlanDataError, match=r"^2 problem\(s\)") as excinfo:
        plan.load_indicators(folder)
    assert "row 2, column `nature`" in str(excinfo.value)
    assert "row 5, column `indicator_no`" in str(excinfo.value)


def test_loaders_accept_a_copied_plan_folder(tmp_path):
    shutil.copytree(SHAPINGBA_PLAN_DIR, tmp_path / "plan")
    assert len(plan.load_huican_tasks(tmp_path / "plan")) == 68


def test_a_bad_number_is_reported_once(tmp_path):
    folder = _write_bad(tmp_path, plan.INDICATORS_FILE, {(1, plan.TARGET_VALUE): "900人次"})
    with pytest.raises(PlanDataError, match=r"^1 problem\(s\)"):
        plan.load_indicators(folder)


def test_each_district_holds_only_its_own_plan_tables():
    assert not (PLAN_DIR / plan.HUICAN_TASKS_FILE).exists()  # Shapingba's table left Bishan's folder
    assert sorted(p.name for p in SHAPINGBA_PLAN_DIR.glob("*.csv")) == [plan.HUICAN_TASKS_FILE]


def test_an_absent_table_is_empty_with_its_columns_and_types():
    empty = plan.empty_table(plan.HUICAN_TASKS_FILE)
    assert empty.empty and plan.START_MONTH in empty.columns and str(empty[plan.YEAR].dtype) == "Int64"
    with pytest.raises(PlanDataError, match="'budget.csv' is not a plan file"):
        plan.empty_table("budget.csv")


def test_roll_to_year_moves_every_window_and_keeps_the_months(huican):
    rolled = plan.roll_to_year(huican, 2026)
    assert (rolled[plan.YEAR] == 2026).all() and (huican[plan.YEAR] == 2020).all()  # the input is not changed
    pd.testing.assert_series_equal(rolled[plan.START_MONTH], huican[plan.START_MONTH])
