from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from geo.datums import convert
from geo.errors import DatumError
from layers import schema
from layers import validate as v
from layers.district import load_district
from layers.errors import ValidationError
from layers.idcard import id_check_char
from layers.validate import Problem, validate_layer

TODAY = date(2024, 6, 30)


def _id(first17: str) -> str:
    return first17 + id_check_char(first17)


ID_A = _id("50022719440111680")  # 500227194401116803
ID_B = _id("50012019800229123")
ID_C = _id("50012019551010004")


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    """Two towns, four villages (新民村 in both towns), square boundary 106.1-106.3 E, 29.5-29.7 N."""
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
        "code,name,seat_lon,seat_lat\n500120001,璧城街道,106.2,29.6\n500120100,八塘镇,106.25,29.65\n",
        encoding="utf-8",
    )
    (folder / "villages.csv").write_text(
        "village_code,name,town_code,urban_rural_code,lon,lat\n"
        "500120001001,东林社区,500120001,111,106.2,29.6\n"
        "500120001201,新民村,500120001,220,106.21,29.61\n"
        "500120100201,新民村,500120100,220,106.25,29.65\n"
        "500120100202,石院村,500120100,220,106.26,29.66\n",
        encoding="utf-8",
    )
    return load_district(folder)


def _households(n: int = 3, **columns) -> pd.DataFrame:
    base = {
        "编号": ["H1", "H2", "H3"],
        "姓名": ["张三", "李四", "王五"],
        "身份证号": [ID_A, ID_B, ID_C],
        "残疾人证号": [ID_A + "41", ID_B + "12", ID_C + "72"],
        "残疾类别": ["肢体", "视力", 7],
        "残疾等级": ["一级", "2", "二级"],
        "镇（街道）": ["璧城街道", "500120100", "八塘"],
        "村（社区）": ["东林社区", "石院村", "500120100201"],
        "详细地址": ["璧山区东林路1号", "石院村3组", "新民村5组"],
        "联系电话": ["13812345678", "023-4123 4567", None],
        "改造需求": ["坡道", "扶手；呼叫装置", None],
        "改造状态": ["已摸底", "approved", "施工中"],
        "经度": [106.2, "106.25", 106.26],
        "纬度": [29.6, "29.65", 29.66],
        "处理依据": ["法定职责", "单独同意", "statutory_duty"],
    }
    base.update(columns)
    return pd.DataFrame({k: pd.Series(val[:n], dtype=object) for k, val in base.items()})


def _validate(table, layer="household", **kwargs):
    kwargs.setdefault("datum", "wgs84")
    return validate_layer(layer, table, district=kwargs.pop("district"), today=TODAY, **kwargs)


def _rules(result) -> list[tuple[int | None, str | None, str]]:
    return [(p.row, p.column, p.rule) for p in result.problems]


def test_clean_household_table(district):
    result = _validate(_households(), district=district)
    assert result.ok, result.report()
    f = result.frame
    assert list(f.index) == [2, 3, 4]
    assert f["id"].tolist() == ["H1", "H2", "H3"]
    assert f["town_code"].tolist() == ["500120001", "500120100", "500120100"]
    assert f["village_code"].tolist() == ["500120001001", "500120100202", "500120100201"]
    assert f["disability_category"].tolist() == [4, 1, 7]
    assert f["disability_grade"].tolist() == [1, 2, 2]
    assert f["status"].tolist() == ["surveyed", "approved", "in_progress"]
    assert f["legal_basis"].tolist() == ["statutory_duty", "consent", "statutory_duty"]
    assert f["phone"].tolist() == ["13812345678", "02341234567", pd.NA]
    assert f["datum"].tolist() == ["wgs84"] * 3
    assert f["lon"].tolist() == [106.2, 106.25, 106.26]
    assert result.headers["id_number"] == "身份证号"
    assert result.new_ids == ("H1", "H2", "H3")


def test_gcj02_input_is_converted_to_wgs84(district):
    gcj_lon, gcj_lat = convert(106.2, 29.6, "wgs84", "gcj02")
    assert abs(gcj_lon - 106.2038) < 1e-4  # ~370 m east, ~300 m south near Bishan
    table = _households(1, 经度=[gcj_lon], 纬度=[gcj_lat], 坐标系=["GCJ-02"])
    result = _validate(table, district=district, datum=None)
    assert result.ok, result.report()
    assert result.frame["lon"].iloc[0] == pytest.approx(106.2, abs=1e-6)
    assert result.frame["lat"].iloc[0] == pytest.approx(29.6, abs=1e-6)
    assert result.frame["datum"].iloc[0] == "gcj02"


def test_untagged_coordinates_are_refused(district):
    result = _validate(_households(), district=district, datum=None)
    assert _rules(result) == [(None, "datum", v.DATUM_MISSING)]
    assert "--datum" in result.problems[0].fix
    assert result.frame.empty


def test_datum_column_blank_unknown_and_conflict(district):
    table = _households(坐标系=["wgs84", None, "火星"])
    result = _validate(table, district=district, datum=None)
    assert _rules(result) == [(3, "datum", v.DATUM_MISSING), (4, "datum", v.DATUM_UNKNOWN)]
    table = _households(坐标系=["wgs84", None, "gcj02"])
    result = _validate(table, district=district, datum="wgs84")
    assert _rules(result) == [(4, "datum", v.DATUM_CONFLICT)]
    assert result.frame["datum"].tolist() == ["wgs84", "wgs84"]  # the blank took --datum


def test_bad_datum_argument_raises(district):
    with pytest.raises(DatumError, match="`datum` must be one of"):
        _validate(_households(), district=district, datum="utm")


def test_source_datum_column_means_wgs84_coordinates(district):
    table = _households(1, source_datum=["gcj02"])
    result = _validate(table, district=district, datum=None)
    assert result.ok, result.report()
    assert result.frame["lon"].iloc[0] == 106.2  # not converted again
    assert result.frame["datum"].iloc[0] == "gcj02"


def test_missing_unparseable_and_swapped_coordinates(district):
    table = _households(经度=[None, "106,25", 29.66], 纬度=[29.6, 29.65, 106.26])
    result = _validate(table, district=district)
    assert _rules(result) == [(2, "lon", v.COORDINATES), (3, "lon", v.COORDINATES), (4, "lat", v.COORDINATES),
                              (4, "lon", v.COORDINATES)]  # fmt: skip
    assert result.problems[1].value == "106,25"
    assert "swapped" in result.problems[3].fix


def test_coordinates_in_degrees_minutes_seconds_or_with_a_hemisphere_are_read(district):
    # 106.2275 = 106°13′39″; 29.6 = 29°36′; 106°15′ = 106.25, 29°39′ = 29.65, 106°15′36″ = 106.26, 29°39′36″ = 29.66
    table = _households(经度=["106°13′39″", "东经106°15′", "１０６．２６"], 纬度=["29°36'N", "29度39分", "29°39′36″"])
    result = _validate(table, district=district)
    assert result.ok, result.report()
    assert result.frame["lon"].tolist() == pytest.approx([106.2275, 106.25, 106.26], abs=1e-12)
    assert result.frame["lat"].tolist() == pytest.approx([29.6, 29.65, 29.66], abs=1e-12)

    # 75 minutes; a 纬度's N on a 经度; a fraction before the last part: refused, the cell named
    table = _households(经度=["106°75′", "106.25N", "106.5°13′"])
    result = _validate(table, district=district)
    assert _rules(result) == [(2, "lon", v.COORDINATES), (3, "lon", v.COORDINATES), (4, "lon", v.COORDINATES)]
    assert result.problems[1].value == "106.25N"
    assert "106°13′39″" in result.problems[0].fix


def test_one_column_with_both_coordinates_is_split_in_either_order(district):
    # as a map picker copies it (经度 first), in the other order, and in degrees with hemispheres
    pairs = ["106.2,29.6", "29.65， 106.25", "29°39′36″N 106°15′36″E"]
    table = _households(经纬度=pairs).drop(columns=["经度", "纬度"])
    result = _validate(table, district=district)
    assert result.ok, result.report()
    assert result.frame["lon"].tolist() == pytest.approx([106.2, 106.25, 106.26], abs=1e-12)
    assert result.frame["lat"].tolist() == pytest.approx([29.6, 29.65, 29.66], abs=1e-12)
    assert result.headers["lon"] == result.headers["lat"] == "经纬度"

    # one number: no 纬度; three parts: neither; the row and the column's header are named
    table = _households(坐标=["106.2", "106.25,29.65", "106,25,29"]).drop(columns=["经度", "纬度"])
    result = _validate(table, district=district)
    assert _rules(result) == [(2, "lat", v.COORDINATES), (4, "lon", v.COORDINATES), (4, "lat", v.COORDINATES)]
    assert "坐标" in result.report()

    # 经度 and 纬度 columns of their own come first: the pair column is ignored
    result = _validate(_households(坐标=["1,2", "3,4", "5,6"]), district=district)
    assert result.ok, result.report()
    assert "坐标" in result.ignored_columns


def test_point_outside_district_suggests_datum(district):
    # A WGS-84 point 0.002 deg inside the east edge, recorded in GCJ-02 but declared WGS-84.
    gcj_lon, gcj_lat = convert(106.298, 29.6, "wgs84", "gcj02")
    table = _households(2, 经度=[107.0, gcj_lon], 纬度=[29.6, gcj_lat])
    result = _validate(table, district=district, datum="wgs84")
    assert _rules(result) == [(2, "lon", v.OUTSIDE_DISTRICT), (3, "lon", v.OUTSIDE_DISTRICT)]
    assert "read as" not in result.problems[0].fix
    assert "inside if read as gcj02" in result.problems[1].fix
    assert result.problems[0].value == "107.000000, 29.600000"


def test_towns_and_villages(district):
    table = _households(
        4,
        **{
            "编号": ["H1", "H2", "H3", "H4"],
            "镇（街道）": ["黄泥镇", "璧城街道", None, None],
            "村（社区）": ["东林社区", "石院村", "东林社区", "新民村"],
        },
    )
    for col in ("姓名", "身份证号", "残疾人证号", "残疾类别", "残疾等级", "详细地址", "联系电话", "改造状态",
                "经度", "纬度", "处理依据"):  # fmt: skip
        table[col] = [table[col].iloc[0]] * 4
    table["身份证号"] = [ID_A, ID_B, ID_C, _id("50012019700101001")]
    table["残疾人证号"] = table["身份证号"] + "41"
    result = _validate(table, district=district)
    assert _rules(result) == [
        (2, "town_code", v.UNKNOWN_TOWN),
        (3, "village_code", v.VILLAGE_NOT_IN_TOWN),
        (5, "village_code", v.UNKNOWN_VILLAGE),
    ]
    assert "500120100" in result.problems[1].fix
    assert "several towns" in result.problems[2].fix
    assert result.frame.loc[4, "town_code"] == "500120001"  # derived from the village


def test_towns_and_villages_named_as_ledgers_write_them(district):
    # the district before the name, the office after it, a town before a village (测试区 is the district)
    table = _households(
        **{
            "镇（街道）": ["重庆市测试区璧城街道", "八塘镇人民政府", "璧城街办"],
            "村（社区）": ["东林社区居民委员会", "石院村村民委员会", "璧城街道新民村委会"],
        }
    )
    result = _validate(table, district=district)
    assert result.ok, result.report()
    assert result.frame["town_code"].tolist() == ["500120001", "500120100", "500120001"]
    assert result.frame["village_code"].tolist() == ["500120001001", "500120100202", "500120001201"]

    table = _households(
        **{"镇（街道）": [None, None, "八塘镇"], "村（社区）": ["测试区东林社区", "新民村委会", "黄泥村委会"]}
    )
    result = _validate(table, district=district)
    assert _rules(result) == [(3, "village_code", v.UNKNOWN_VILLAGE), (4, "village_code", v.UNKNOWN_VILLAGE)]
    assert "several towns" in result.problems[0].fix  # 新民村 is in both towns: the town is needed
    assert result.frame.loc[2, "village_code"] == "500120001001"

    # a town written in the village cell is the village's town: 东林社区 is not in 八塘镇
    cells = {"镇（街道）": [None, None, None], "村（社区）": ["八塘镇东林社区", "八塘镇新民村委会", "璧城街道新民村"]}
    result = _validate(_households(**cells), district=district)
    assert _rules(result) == [(2, "village_code", v.UNKNOWN_VILLAGE)]
    assert result.frame["village_code"].tolist() == ["500120100201", "500120001201"]


def test_personal_numbers(district):
    table = _households(
        **{
            "身份证号": [ID_A[:-1] + "0", 5.00120198002291e17, ID_C],
            "残疾人证号": [ID_A + "91", ID_B + "12", ID_A + "72"],
            "残疾类别": ["肢体", "视力", "智力"],
            "残疾等级": ["一级", "3", "二级"],
            "联系电话": ["13812345678", "12345", None],
        }
    )
    result = _validate(table, district=district)
    assert _rules(result) == [
        (2, "id_number", v.ID_NUMBER),
        (2, "certificate_number", v.CERTIFICATE_NUMBER),
        (3, "id_number", v.ID_NUMBER),
        (3, "disability_grade", v.GRADE_MISMATCH),
        (3, "phone", v.PHONE),
        (4, "certificate_number", v.CERTIFICATE_ID_MISMATCH),
        (4, "disability_category", v.CATEGORY_MISMATCH),
    ]
    by_key = {(p.row, p.column): p for p in result.problems}
    assert "check character" in by_key[(2, "id_number")].fix
    assert "category digit" in by_key[(2, "certificate_number")].fix
    assert "15 digits" in by_key[(3, "id_number")].fix
    assert by_key[(2, "id_number")].value == "500227********6800"
    assert by_key[(3, "phone")].value == "****"


def test_category_and_grade_come_from_the_certificate(district):
    table = _households().drop(columns=["残疾类别", "残疾等级"])
    result = _validate(table, district=district)
    assert result.ok, result.report()
    assert result.frame["disability_category"].tolist() == [4, 1, 7]
    assert result.frame["disability_grade"].tolist() == [1, 2, 2]


def test_duplicates_in_file(district):
    table = _households(
        编号=["H1", "H1", "H3"], 身份证号=[ID_A, ID_B, ID_A], 残疾人证号=[ID_A + "41", ID_B + "12", ID_A + "72"]
    )
    table["残疾类别"] = ["肢体", "视力", "多重"]
    result = _validate(table, district=district)
    assert _rules(result) == [
        (2, "id", v.DUPLICATE_ID),
        (2, "id_number", v.DUPLICATE_PERSON),
        (3, "id", v.DUPLICATE_ID),
        (4, "id_number", v.DUPLICATE_PERSON),
    ]
    assert result.problems[0].fix == "ids must be unique in a file; 'H1' appears on 2 rows: 2, 3"
    assert result.problems[1].fix == "the same person appears on 2 rows: 2, 4: keep one row per person"


def test_filled_down_id_names_five_rows_and_the_count(district):
    """An id filled down a whole ledger (Excel slip): each problem names 5 rows and the count, not all."""
    n = 2_000
    table = pd.DataFrame(
        {"编号": ["h1"] * n, "名称": ["东林公厕"] * n, "镇街": ["璧城街道"] * n, "状态": ["规划"] * n,
         "建设类型": ["新建"] * n, "经度": [106.2] * n, "纬度": [29.6] * n}
    )  # fmt: skip
    result = _validate(table, layer="accessible_toilet", district=district)
    assert len(result.problems) == n and {p.rule for p in result.problems} == {v.DUPLICATE_ID}
    fix = "ids must be unique in a file; 'h1' appears on 2,000 rows: 2, 3, 4, 5, 6 …"
    assert {p.fix for p in result.problems} == {fix}
    assert len(result.report()) < 200 * n  # the old report listed 2,000 rows on each of 2,000 lines (~20 MB)


def test_existing_rows_are_updates_and_transitions_are_checked(district):
    existing = {"H1": "surveyed", "H2": "verified", "OLD": "approved"}
    result = _validate(_households(), district=district, existing=existing)
    assert _rules(result) == [(3, "status", v.STATUS_TRANSITION)]
    assert result.problems[0].value == "approved"
    assert "'verified'" in result.problems[0].fix
    assert result.updated_ids == ("H1",)
    assert result.new_ids == ("H3",)
    table = _households(改造状态=["放弃", "approved", "已完工"])
    result = _validate(table, district=district, existing={"H3": "in_progress", "H1": "approved"})
    assert result.ok, result.report()
    assert result.frame["status"].tolist() == ["declined", "approved", "completed"]


def test_unknown_status_and_required_values(district):
    table = _households(改造状态=["已摸底", "进行中啦", None], 姓名=["张三", None, "王五"], 编号=["H1", None, "H3"])
    result = _validate(table, district=district)
    assert _rules(result) == [
        (3, "id", v.REQUIRED),
        (3, "status", v.UNKNOWN_STATUS),
        (3, "name", v.REQUIRED),
        (4, "status", v.REQUIRED),
    ]


def test_missing_required_columns(district):
    table = _households().drop(columns=["身份证号", "处理依据", "改造状态"])
    result = _validate(table, district=district)
    file_level = [(p.column, p.rule) for p in result.problems if p.row is None]
    assert file_level == [("status", v.MISSING_COLUMN), ("id_number", v.MISSING_COLUMN),
                          ("legal_basis", v.MISSING_COLUMN)]  # fmt: skip
    assert "身份证号" in result.problems[1].fix
    assert result.frame.empty


def test_toilet_codes_and_types(district):
    table = pd.DataFrame(
        {
            "编号": ["T1", "T2"],
            "名称": ["东林路公厕", "石院村公厕"],
            "镇街": ["璧城街道", "八塘镇"],
            "状态": ["施工中", "已验收"],
            "建设类型": ["改建", "扩建"],
            "经度": [106.2, 106.26],
            "纬度": [29.6, 29.66],
            "门净宽": ["850", "八百"],
            "呼叫按钮": ["有", "也许"],
            "调查日期": ["2024年6月3日", "2024-02-30"],
        }
    )
    result = _validate(table, layer="accessible_toilet", district=district)
    assert _rules(result) == [
        (3, "build_type", v.UNKNOWN_CODE),
        (3, "door_clear_width_mm", v.BAD_TYPE),
        (3, "call_button", v.BAD_TYPE),
        (3, "survey_date", v.BAD_TYPE),
    ]
    result = _validate(table.iloc[:1], layer="accessible_toilet", district=district)
    row = result.frame.iloc[0]
    assert (row["build_type"], row["door_clear_width_mm"], row["call_button"], row["survey_date"]) == (
        "rebuild",
        850,
        True,
        "2024-06-03",
    )
    assert row["status"] == "under_construction"


def test_report_masks_personal_values_and_counts(district):
    table = _households(身份证号=[ID_A[:-1] + "0", ID_B, ID_C], 联系电话=["13812345678", "1381234567", None])
    table["姓名"] = ["张三", "李四", "王五"]
    table["编号"] = ["H1", "H1", "H3"]
    result = _validate(table, district=district)
    with pytest.raises(ValidationError, match=r"^4 problem\(s\) in layer `household`: 2 of 3 row\(s\)") as info:
        result.raise_for_problems()
    text = str(info.value)
    assert len(text.splitlines()) == 1 + 4
    for secret in (ID_A, ID_A[:-1] + "0", ID_B, "13812345678", "1381234567", "张三", "李四"):
        assert secret not in text
    assert "500227********6800" in text
    assert "138****4567" in text
    assert "row 2, id 'H1', column `身份证号 (id_number)`, value '500227********6800': [id_number]" in text


def test_problem_describe_without_headers():
    p = Problem(row=7, id="T1", column="lon", value="abc", rule="coordinates", fix="fix it")
    assert p.describe() == "row 7, id 'T1', column `lon`, value 'abc': [coordinates] fix it"
    assert (
        Problem(None, None, "datum", None, "datum_missing", "x").describe() == "file, column `datum`: [datum_missing] x"
    )


def test_rows_come_from_the_index_and_ignored_columns(district):
    table = _households(备注=["a", "b", "c"]).set_axis(pd.Index([5, 6, 9], name="row"))
    table.loc[9, "经度"] = "x"
    result = _validate(table, district=district)
    assert _rules(result) == [(9, "lon", v.COORDINATES)]
    assert list(result.frame.index) == [5, 6]
    assert result.ignored_columns == ("备注",)


def test_records_are_json_safe(district):
    records = _validate(_households(), district=district).records()
    assert records[2]["phone"] is None
    assert records[0]["disability_category"] == 4 and type(records[0]["disability_category"]) is int
    json.dumps(records, ensure_ascii=False)


def test_control_characters_are_refused_with_row_and_column(district):
    table = _households(编号=["H1", "H\x002", "H3"], 详细地址=["东林路\x001号", "石院村3组", "新民村\n5组"])
    table["改造需求"] = ["坡道\x1b", None, None]
    result = _validate(table, district=district)
    assert _rules(result) == [(2, "address", v.CONTROL_CHARACTER), (2, "needs", v.CONTROL_CHARACTER),
                              (3, "id", v.CONTROL_CHARACTER)]  # fmt: skip
    # the address is personal (encrypted at rest): shown escaped and masked, never as a raw NUL
    assert result.problems[0].value == "东林路****001号"
    assert result.problems[1].fix.startswith("holds the invisible control character U+001B")
    assert result.problems[2].id == "H\\x002" and result.problems[2].value == "H\\x002"
    assert "\x00" not in result.report()  # a line break inside a cell (row 4's address) is fine


def test_over_long_id_is_refused_before_the_store_sees_it(district):
    long_id = "H" * 65
    table = _households(编号=["H" * 64, long_id, "H3"])
    result = _validate(table, district=district)
    assert _rules(result) == [(3, "id", v.TOO_LONG)]
    assert result.problems[0].value == "H" * 20 + "…" and result.problems[0].id == "H" * 20 + "…"
    assert "at most 64 characters" in result.problems[0].fix
    assert long_id not in result.report() and "石院村3组" not in result.report()  # no other cell is echoed


def test_a_huge_number_in_a_whole_number_column_is_a_problem_not_a_crash(district):
    table = pd.DataFrame(
        {"编号": ["T1", "T2"], "名称": ["东林公厕", "石院公厕"], "镇街": ["璧城街道", "八塘镇"],
         "状态": ["规划", "规划"], "建设类型": ["新建", "新建"], "经度": [106.2, 106.25], "纬度": [29.6, 29.65],
         "门净宽": ["1e30", 900]}
    )  # fmt: skip
    result = _validate(table, layer="accessible_toilet", district=district)
    assert _rules(result) == [(2, "door_clear_width_mm", v.BAD_TYPE)]
    assert result.problems[0].fix == "must be a whole number (at most 9,007,199,254,740,992)"


def test_the_id_length_limit_is_the_stores():
    from layers.store import features_table, history_table

    assert features_table.c.id.type.length == schema.ID_MAX_LENGTH == history_table.c.feature_id.type.length


def test_control_characters_that_strip_removes_are_refused_too(district):
    # str.strip() counts U+001C-U+001F as whitespace: the check reads the cells as written, not their text
    table = _households(改造需求=["坡道\x1f", " \x1c ", None])
    result = _validate(table, district=district)
    assert _rules(result) == [(2, "needs", v.CONTROL_CHARACTER), (3, "needs", v.CONTROL_CHARACTER)]
    assert [p.value for p in result.problems] == ["坡道", None]
    assert [p.fix.split(":")[0] for p in result.problems] == [
        "holds the invisible control character U+001F",
        "holds the invisible control character U+001C",
    ]


def test_clean_frame_dtypes_and_cells_read_once_per_distinct_value(district):
    # the same value written three ways, in every row, reads the same; the frame keeps the documented dtypes
    table = _households(
        **{"镇（街道）": ["璧城街道", " 璧城街道", 500120001], "村（社区）": ["东林社区", "东林社区 ", 500120001001],
           "经度": [106.2, "106.2", " 106.2 "], "纬度": [29.6, 29.6, "29.6"], "残疾类别": ["肢体", "4", 4],
           "残疾等级": ["一级", "1", 1]},
    )  # fmt: skip
    table["残疾人证号"] = [n + "41" for n in table["身份证号"]]
    table["合成数据"] = ["是", True, "否"]
    result = _validate(table, district=district)
    assert result.ok, result.report()
    f = result.frame
    assert f["town_code"].tolist() == ["500120001"] * 3 and f["village_code"].tolist() == ["500120001001"] * 3
    assert f["lon"].tolist() == [106.2] * 3 and f["lat"].tolist() == [29.6] * 3
    assert f["disability_category"].tolist() == [4] * 3 and f["disability_grade"].tolist() == [1] * 3
    assert f["synthetic"].tolist() == [True, True, False]
    assert {c: str(t) for c, t in f.dtypes.items()} == {
        "id": "string", "town_code": "string", "village_code": "string", "name": "string", "address": "string",
        "lon": "float64", "lat": "float64", "datum": "string", "status": "string", "id_number": "string",
        "certificate_number": "string", "disability_category": "Int64", "disability_grade": "Int64",
        "phone": "string", "needs": "string", "legal_basis": "string", "village_inferred": "boolean",
        "synthetic": "boolean",
    }  # fmt: skip
    assert f.index.name == "row" and f.index.dtype == "int64"
    assert type(result.new_ids[0]) is str


def test_an_unknown_town_beside_a_blank_village_is_reported_not_a_crash(district):
    """One row's town is unknown (NA once checked) while another's 村（社区） is blank: the blank is still
    inferred within its own town, and the unknown town is a problem of its row (it raised TypeError)."""
    towns, villages = ["不存在镇", "500120100", "八塘"], ["东林社区", None, "500120100201"]
    table = _households(**{"镇（街道）": towns, "村（社区）": villages})
    result = _validate(table, district=district)
    assert _rules(result) == [(2, "town_code", v.UNKNOWN_TOWN)]
    assert result.inferred_villages == (3,)
    inferred = result.frame.loc[3]
    assert inferred["village_code"].startswith("500120100") and inferred["village_inferred"]


def _toilets(n: int, **columns) -> pd.DataFrame:
    base = {"编号": [f"T{i}" for i in range(1, n + 1)], "名称": ["东林公厕"] * n, "镇街": ["璧城街道"] * n,
            "状态": ["规划"] * n, "建设类型": ["新建"] * n, "经度": [106.2] * n, "纬度": [29.6] * n}  # fmt: skip
    base.update(columns)
    return pd.DataFrame(base, dtype=object)


def test_yes_and_no_as_survey_forms_mark_them(district):
    marks = ["✔", "☑", "具备", "✘", "☒", "没有"]
    result = _validate(_toilets(6, 呼叫按钮=marks), layer="accessible_toilet", district=district)
    assert result.ok, result.report()
    assert result.frame["call_button"].tolist() == [True, True, True, False, False, False]


def test_dates_as_clerks_write_them(district):
    dates = ["2024年6月3日", "2024/6/3", "2024.06.03", "20240603", "2024-6-3 00:00:00", "20241340"]
    result = _validate(_toilets(6, 调查日期=dates), layer="accessible_toilet", district=district)
    assert _rules(result) == [(7, "survey_date", v.BAD_TYPE)]  # month 13
    assert result.frame["survey_date"].tolist() == ["2024-06-03"] * 5


def test_a_town_filled_down_is_ten_problems_and_one_summary(district):
    """60 rows (file rows 2-61), all in an unknown town: the head counts 60, rows 2-11 are listed, and one
    line sums up the other 50, rows 12-61, with no value."""
    result = _validate(_toilets(60, 镇街=["黄泥镇"] * 60), layer="accessible_toilet", district=district)
    assert len(result.problems) == 60
    assert {(p.column, p.rule) for p in result.problems} == {("town_code", v.UNKNOWN_TOWN)}
    lines = result.report().splitlines()
    assert lines[0] == (
        "60 problem(s) in layer `accessible_toilet`: 60 of 60 row(s) affected, 0 about the whole file. "
        "Nothing was imported."
    )
    assert len(lines) == 1 + v.SHOWN_PROBLEMS + 1 == 12
    assert lines[1].startswith("  row 2, id 'T1', column `镇街 (town_code)`, value '黄泥镇': [unknown_town]")
    assert lines[10].startswith("  row 11, id 'T10', ")
    assert lines[11] == (
        "  … 50 more row(s) with the same problem (rule `unknown_town`) in column `镇街 (town_code)`: rows 12–61"
    )
    assert result.grouped_problems()[-1] == v.ProblemSummary("town_code", v.UNKNOWN_TOWN, 50, tuple(range(12, 62)))


def _problem(row: int | None, column: str | None = "town_code", rule: str = v.UNKNOWN_TOWN) -> Problem:
    if row is None:  # a problem of the whole file has no id and no value
        return Problem(None, None, column, None, rule, "fix")
    return Problem(row, f"T{row}", column, "黄泥镇", rule, "fix")


def test_groups_keep_file_order_and_each_summary_follows_its_last_problem_shown():
    """Town problems on rows 2-11 and 20-25, 30, 40-41, 50, 60, 70 (7 ranges past the first 10, 5 named);
    a datum problem of the whole file and phone problems on rows 3 and 100 are all shown."""
    town_rows = [*range(2, 12), *range(20, 26), 30, 40, 41, 50, 60, 70]
    problems = [_problem(None, "datum", v.DATUM_MISSING), _problem(3, "phone", v.PHONE)]
    problems += [_problem(r) for r in town_rows] + [_problem(100, "phone", v.PHONE)]
    grouped = v.group_problems(problems)
    summary = v.ProblemSummary("town_code", v.UNKNOWN_TOWN, 12, (20, 21, 22, 23, 24, 25, 30, 40, 41, 50, 60, 70))
    assert grouped == [*problems[:12], summary, problems[-1]]
    assert summary.row_ranges == "20–25, 30, 40–41, 50, 60, …"
    assert summary.describe({"town_code": "镇街"}) == (
        "… 12 more row(s) with the same problem (rule `unknown_town`) in column `镇街 (town_code)`: "
        "rows 20–25, 30, 40–41, 50, 60, …"
    )
    assert v.group_problems(problems, shown=2)[:5] == [
        problems[0], problems[1], problems[2], problems[3],
        v.ProblemSummary("town_code", v.UNKNOWN_TOWN, 20, tuple(town_rows[2:])),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="`shown` must be at least 1"):
        v.group_problems(problems, shown=0)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([7], "7"),
        ([5, 3, 4, 4], "3–5"),  # any order, repeats once
        ([22, 23, 24, 45, 47, 48], "22–24, 45, 47–48"),
        ([1, 3, 5, 7, 9, 11], "1, 3, 5, 7, 9, …"),
        ([1, 3, 5, 7, 9], "1, 3, 5, 7, 9"),
    ],
)
def test_row_ranges(rows, expected):
    assert v.row_ranges(rows) == expected


def test_a_report_of_small_groups_is_one_line_per_problem_as_before():
    """Ten problems of one column and rule (the most listed), a file problem and a few others: no summary."""
    problems = (
        _problem(None, "datum", v.DATUM_MISSING),
        *(_problem(r) for r in range(2, 12)),
        _problem(4, "phone", v.PHONE),
    )
    result = v.ValidationResult(
        layer="accessible_toilet", frame=pd.DataFrame(), problems=problems, headers={"town_code": "镇街"},
        ignored_columns=(), n_rows=12, new_ids=(), updated_ids=(),
    )  # fmt: skip
    assert v.group_problems(problems) == list(problems)
    expected = [
        "12 problem(s) in layer `accessible_toilet`: 10 of 12 row(s) affected, 1 about the whole file. "
        "Nothing was imported.",
        "  file, column `datum`: [datum_missing] fix",
        *(f"  row {r}, id 'T{r}', column `镇街 (town_code)`, value '黄泥镇': [unknown_town] fix" for r in range(2, 12)),
        "  row 4, id 'T4', column `phone`, value '黄泥镇': [phone] fix",
    ]  # fmt: skip
    assert result.report() == "\n".join(expected)
