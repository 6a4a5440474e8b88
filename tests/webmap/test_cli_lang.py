"""The command line speaks the language of LANG: zh_CN.UTF-8 → Chinese, anything else → English."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from layers.crypto import KEY_ENV_VAR
from webmap.cli import main
from webmap.cli.lang import cli_language


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LANG": "zh_TW.UTF-8"}, "zh"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({}, "en"),
        ({"LANG": "zh_CN.UTF-8", "LC_ALL": "en_GB.UTF-8"}, "en"),  # LC_ALL wins, as in the C library
        ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "zh_CN.UTF-8"}, "zh"),
        ({"LC_ALL": "", "LANG": "zh_CN.UTF-8"}, "zh"),  # an empty variable is not set
    ],
)
def test_language_follows_the_locale_variables(environ, expected):
    assert cli_language(environ) == expected


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCESSPLAN_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite'}")
    monkeypatch.setenv(KEY_ENV_VAR, Fernet.generate_key().decode())

    def run(lang: str, *args: str):
        return CliRunner(env={"LANG": lang}).invoke(main, list(args))

    return run


def test_outputs_and_errors_speak_chinese_under_a_chinese_locale(cli):
    added = cli("zh_CN.UTF-8", "users", "add", "wang", "--role", "planner", "--password", "a long test password 1")
    assert added.exit_code == 0, added.output
    assert added.output.strip() == "已添加 wang（planner）。"
    assert cli("zh_CN.UTF-8", "users", "list").output.strip() == "wang\tplanner\t-\t在用"
    missing = cli("zh_CN.UTF-8", "history", "sports_site", "SS-nope")
    assert missing.exit_code == 1
    assert "图层 sports_site 中没有 'SS-nope' 的历史记录：请检查图层和编号。" in missing.output


def test_outputs_and_errors_speak_english_otherwise(cli):
    added = cli("en_US.UTF-8", "users", "add", "wang", "--role", "planner", "--password", "a long test password 1")
    assert added.output.strip() == "Added wang (planner)."
    assert cli("C.UTF-8", "users", "deactivate", "wang").output.strip() == "Deactivated wang."
    assert cli("C.UTF-8", "users", "list").output.strip() == "wang\tplanner\t-\tinactive"
    missing = cli("en_US.UTF-8", "history", "sports_site", "SS-nope")
    assert "No history for `sports_site` 'SS-nope': check the layer and id." in missing.output


def test_a_refused_import_is_reported_in_the_locales_language(cli, tmp_path):
    import pandas as pd

    from layers.district import load_district

    rows = pd.read_csv(load_district().demo_dir / "sports_site.csv", dtype=str).head(2)
    rows.loc[1, "lat"] = "95.5"  # no latitude is above 90
    path = tmp_path / "sports.csv"
    rows.to_csv(path, index=False)
    zh = cli("zh_CN.UTF-8", "import", "sports_site", str(path))
    assert zh.exit_code == 1
    assert "图层 sports_site 有 1 个问题：1 行（共 2 行）有问题，0 个关于整个文件。未导入任何数据。" in zh.output
    assert "第 3 行，编号 SS-02，“lat”列，值 '95.5'：经纬度不对。经度应在 -180 到 180 之间" in zh.output
    en = cli("en_US.UTF-8", "import", "sports_site", str(path))
    assert en.exit_code == 1 and "1 problem(s) in layer `sports_site`" in en.output and "row 3" in en.output
    assert "经纬度不对" not in en.output
    # a file over a read limit: Chinese first, then the same in English
    (tmp_path / "bomb.xlsx").write_bytes(b"not a zip")
    bad = cli("zh_CN.UTF-8", "import", "sports_site", str(tmp_path / "bomb.xlsx"))
    assert bad.exit_code == 1 and "'bomb.xlsx' 不是 XLSX 工作簿" in bad.output and "Traceback" not in bad.output


def test_a_town_code_filled_down_is_ten_lines_and_a_summary_in_both_languages(cli, tmp_path):
    """60 sports sites (file rows 2-61) all with the town code 500120999, not a town of the district."""
    import pandas as pd

    from layers.district import load_district

    row = pd.read_csv(load_district().demo_dir / "sports_site.csv", dtype=str).head(1)
    rows = pd.concat([row] * 60, ignore_index=True)
    rows = rows.assign(id=[f"SS-{i}" for i in range(101, 161)], town_code="500120999")
    path = tmp_path / "sports.csv"
    rows.to_csv(path, index=False)
    zh = cli("zh_CN.UTF-8", "import", "sports_site", str(path))
    assert zh.exit_code == 1
    lines = zh.output.splitlines()[-12:]  # after the file's notes (its encoding)
    assert lines[0] == "图层 sports_site 有 60 个问题：60 行（共 60 行）有问题，0 个关于整个文件。未导入任何数据。"
    assert lines[1] == (
        "  第 2 行，编号 SS-101，“town_code”列，值 '500120999'：镇街不对。"
        "“town_code”不是本区的镇街：请填写镇街名称或 9 位代码。"
    )
    assert lines[10].startswith("  第 11 行，编号 SS-110，")
    assert lines[11] == "  ……另有 50 行有同样的问题（镇街不对），在“town_code”列：第 12–61 行；改正方法同上。"
    en = cli("en_US.UTF-8", "import", "sports_site", str(path))
    assert en.exit_code == 1
    lines = en.output.splitlines()[-12:]
    assert lines[0] == (
        "60 problem(s) in layer `sports_site`: 60 of 60 row(s) affected, 0 about the whole file. Nothing was imported."
    )
    assert lines[1].startswith("  row 2, id 'SS-101', column `town_code`, value '500120999': [unknown_town]")
    assert lines[11] == (
        "  … 50 more row(s) with the same problem (rule `unknown_town`) in column `town_code`: rows 12–61"
    )
    assert "500120999" not in lines[11]
