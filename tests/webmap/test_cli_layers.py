from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from layers.crypto import KEY_ENV_VAR
from layers.district import load_district
from webmap.cli import main


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCESSPLAN_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite'}")
    monkeypatch.setenv(KEY_ENV_VAR, Fernet.generate_key().decode())
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args))

    return run


@pytest.fixture
def sports_csv(tmp_path):
    path = tmp_path / "sports.csv"
    pd.read_csv(load_district().demo_dir / "sports_site.csv", dtype=str).head(4).to_csv(path, index=False)
    return path


def test_import_counts_then_reimport_is_unchanged(cli, sports_csv):
    first = cli("import", "sports_site", str(sports_csv))
    assert first.exit_code == 0, first.output
    assert "inserted 4, updated 0, unchanged 0" in first.output
    second = cli("import", "sports_site", str(sports_csv))
    assert "inserted 0, updated 0, unchanged 4" in second.output


def test_a_bad_row_rejects_the_file_with_the_full_report(cli, sports_csv, tmp_path):
    bad = pd.read_csv(sports_csv, dtype=str)
    bad.loc[2, "lon"] = "not a number"
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    result = cli("import", "sports_site", str(path))
    assert result.exit_code == 1
    assert "Nothing was imported" in result.output and "row 4" in result.output
    assert cli("export", "sports_site", str(tmp_path / "out.csv")).output.startswith("Exported 0 rows")


def test_dry_run_writes_nothing(cli, sports_csv, tmp_path):
    result = cli("import", "sports_site", str(sports_csv), "--dry-run")
    assert result.exit_code == 0 and "4 rows valid (4 new, 0 existing); nothing written" in result.output
    assert "Exported 0 rows" in cli("export", "sports_site", str(tmp_path / "o.csv")).output


def test_export_to_geopackage_opens_as_points(cli, sports_csv, tmp_path):
    cli("import", "sports_site", str(sports_csv))
    out = tmp_path / "sports.gpkg"
    result = cli("export", "sports_site", str(out))
    assert result.exit_code == 0, result.output
    gdf = gpd.read_file(out)
    assert len(gdf) == 4 and gdf.crs.to_epsg() == 4326 and set(gdf.geom_type) == {"Point"}


def test_households_export_is_masked_and_refused_for_planners(cli, tmp_path):
    households = pd.read_csv(load_district().demo_dir / "household.csv", dtype=str).head(3)
    path = tmp_path / "hh.csv"
    households.to_csv(path, index=False)
    assert cli("import", "household", str(path)).exit_code == 0
    refused = cli("export", "household", str(tmp_path / "x.csv"), "--role", "planner")
    assert refused.exit_code != 0 and "may not export households" in refused.output
    out = tmp_path / "hh_out.csv"
    assert cli("export", "household", str(out), "--role", "admin").exit_code == 0
    text = out.read_text(encoding="utf-8-sig")
    for _, row in households.iterrows():
        assert row["id_number"] not in text and row["name"] not in text and row["phone"] not in text
        assert row["address"] not in text
    # an admin gets planning points only (layers.privacy.PLANNING_COLUMNS, 0.001° grid)
    assert text.splitlines()[0] == "id,town_code,village_code,status,lon,lat"
    caseworker = tmp_path / "hh_cw.csv"
    town = households.iloc[0]["town_code"]
    assert cli("export", "household", str(caseworker), "--role", "caseworker", "--town", town).exit_code == 0
    assert households.iloc[0]["id_number"][:6] + "********" in caseworker.read_text(encoding="utf-8-sig")


def test_history_prints_json_and_names_a_missing_row(cli, sports_csv):
    cli("import", "sports_site", str(sports_csv), "--as", "wang")
    first_id = pd.read_csv(sports_csv, dtype=str).iloc[0]["id"]
    result = cli("history", "sports_site", first_id)
    rows = json.loads(result.output)
    assert [(r["action"], r["actor"], r["version"]) for r in rows] == [("insert", "wang", 1)]
    missing = cli("history", "sports_site", "NOPE")
    assert missing.exit_code != 0 and "No history for `sports_site` 'NOPE'" in missing.output


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_export_writes_formula_like_names_as_text(cli, sports_csv, tmp_path, suffix):
    import openpyxl

    evil = pd.read_csv(sports_csv, dtype=str)
    evil.loc[0, "name"] = '=HYPERLINK("http://evil.example","点我")'
    evil.loc[1, "name"] = "+1+cmd|' /C calc'!A0"
    path = tmp_path / "evil.csv"
    evil.to_csv(path, index=False)
    assert cli("import", "sports_site", str(path)).exit_code == 0
    out = tmp_path / f"sports{suffix}"
    assert cli("export", "sports_site", str(out)).exit_code == 0
    if suffix == ".xlsx":
        ws = openpyxl.load_workbook(out).active
        column = [c.value for c in ws[1]].index("name")
        cells = [row[column] for row in ws.iter_rows(min_row=2)]
        assert {c.data_type for c in cells} == {"s"}
        names = {c.value for c in cells}
    else:
        names = set(pd.read_csv(out, dtype=str, encoding="utf-8-sig")["name"])
    assert {'\'=HYPERLINK("http://evil.example","点我")', "'+1+cmd|' /C calc'!A0"} <= names
    assert not any(n.startswith(("=", "+", "-", "@")) for n in names)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "'empty.xlsx' is not an XLSX workbook"),
        (b"id,name\n", "'empty.xlsx' is not an XLSX workbook"),
        ("wide", "values in column XFD (column 16,384); imports read at most 256 columns"),
    ],
)
def test_an_unreadable_or_oversized_xlsx_is_one_message_not_a_traceback(cli, tmp_path, content, message):
    path = tmp_path / "empty.xlsx"
    if content == "wide":
        wb = openpyxl.Workbook()
        wb.active.append(["编号", "名称"])
        wb.active.cell(row=2, column=16384).value = 1
        wb.save(path)
    else:
        path.write_bytes(content)
    result = cli("import", "accessible_toilet", str(path), "--datum", "wgs84")
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


LEDGERS = Path(__file__).resolve().parents[1] / "data" / "ledgers"


def test_a_town_clerks_ledgers_through_the_command_line(cli):
    first = cli("import", "household", str(LEDGERS / "bicheng_gbk_totals.csv"))
    assert first.exit_code == 0, first.output
    assert "文件编码：GBK/GB18030" in first.output
    assert "第 14 行是合计行，已跳过" in first.output
    assert "inserted 12, updated 0, unchanged 0" in first.output

    dry = cli("import", "household", str(LEDGERS / "bicheng_blank_address.csv"), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert re.search(r"第 2 行 \(row 2, id 'H[0-9a-f]{16}'\)：状态 surveyed → approved", dry.output)
    assert "空白单元格保留已存的值" in dry.output
    cleared = cli("import", "household", str(LEDGERS / "bicheng_blank_address.csv"), "--blank-clears")
    assert cleared.exit_code == 1 and "row 2" in cleared.output and "address" in cleared.output

    second = cli("import", "household", str(LEDGERS / "qinggang_xuhao_no_id.xlsx"))
    assert second.exit_code == 1 and "--legal-basis statutory_duty|consent" in second.output
    second = cli("import", "household", str(LEDGERS / "qinggang_xuhao_no_id.xlsx"), "--legal-basis", "consent")
    assert "inserted 12, updated 0, unchanged 0" in second.output, second.output
