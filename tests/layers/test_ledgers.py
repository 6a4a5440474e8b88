"""Ledgers as town clerks fill them in (tests/data/ledgers, see its README), imported into real SQLite and PostgreSQL.

Every expected value is read off the small files by hand: row numbers as Excel shows them (header on
row 1, or row 2 under the XLSX's title row), ID numbers built in ``make_ledgers.py``, villages whose
points the rows sit on.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from layers import schema
from layers.crypto import BlindIndex, FieldCipher
from layers.importer import FieldChange, RowChange, import_layer
from layers.store import Store
from layers.validate import (
    LEGAL_BASIS_CONFLICT,
    MISSING_COLUMN,
    OUT_OF_RANGE,
    PERSON_CHANGED,
    REQUIRED,
    TOWN_CHANGED,
)

LEDGERS = Path(__file__).resolve().parents[1] / "data" / "ledgers"
BICHENG, QINGGANG, LAIFENG = "500120001", "500120003", "500120004"
#: 序号 12 of the 璧城街道 ledger: 村（社区） blank, point on 宝峰社区 (500120001008, 106.23698, 29.59469).
BAOFENG = "500120001008"


@pytest.fixture
def store(database_url):
    s = Store(database_url, cipher=FieldCipher(Fernet.generate_key()), blind_index=BlindIndex(Fernet.generate_key()))
    yield s
    s.close()


def _import(store, district, name, layer=schema.HOUSEHOLD, **kwargs):
    return import_layer(store, layer, LEDGERS / name, district=district, user="clerk", **kwargs)


def _households(store) -> dict[str, dict]:
    ids = store.statuses(schema.HOUSEHOLD)
    return store.records(schema.HOUSEHOLD, list(ids))


def _history_rows(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM history")).scalar_one()


def _rules(outcome) -> list[tuple[int | None, str | None, str]]:
    return [(p.row, p.column, p.rule) for p in outcome.validation.problems]


def test_a_gbk_csv_with_a_totals_row_imports_matched_by_id_number_and_says_so(store, bishan):
    outcome = _import(store, bishan, "bicheng_gbk_totals.csv")

    assert outcome.ok, outcome.validation.report()
    assert outcome.counts.inserted == 12
    notes = "\n".join(outcome.notes)
    assert "文件编码：GBK/GB18030" in notes
    assert "第 14 行是合计行，已跳过" in notes  # header row 1, 序号 1..12 on rows 2..13, 合计 on row 14
    assert "按身份证号匹配" in notes
    stored = _households(store)
    # no id is a row counter: every id comes from the person (H + blind index)
    assert not set(stored) & {str(i) for i in range(1, 13)}
    assert all(fid.startswith("H") and len(fid) == 17 for fid in stored)
    by_number = {r[schema.ID_NUMBER]: r for r in stored.values()}
    assert by_number["500227195001010019"][schema.VILLAGE_CODE] == "500120001001"  # 文星社区, as written
    # 序号 12 (row 13): blank 村（社区）, inferred as the village its point is on, marked and counted
    twelfth = by_number["500227195001010123"]
    assert twelfth[schema.VILLAGE_CODE] == BAOFENG
    assert twelfth[schema.VILLAGE_INFERRED] is True
    assert by_number["500227195001010019"][schema.VILLAGE_INFERRED] is False
    assert outcome.validation.inferred_villages == (13,)
    assert "1 行的村（社区）为空，已按坐标推断" in notes


def test_a_second_towns_xlsx_numbered_1_to_12_adds_its_people_and_replaces_nobody(store, bishan):
    _import(store, bishan, "bicheng_gbk_totals.csv")
    before = _households(store)
    history = _history_rows(store)

    refused = _import(store, bishan, "qinggang_xuhao_no_id.xlsx")  # no 处理依据 column, no --legal-basis
    assert _rules(refused) == [(None, schema.LEGAL_BASIS, MISSING_COLUMN)]
    assert "--legal-basis statutory_duty|consent" in refused.validation.problems[0].fix
    assert _history_rows(store) == history

    outcome = _import(store, bishan, "qinggang_xuhao_no_id.xlsx", legal_basis="consent")
    assert outcome.ok, outcome.validation.report()
    assert (outcome.counts.inserted, outcome.counts.updated, outcome.counts.unchanged) == (12, 0, 0)
    after = _households(store)
    assert len(after) == 24
    assert {fid: after[fid] for fid in before} == before  # 璧城街道's 12 people untouched
    towns = [r[schema.TOWN_CODE] for r in after.values()]
    assert towns.count(BICHENG) == 12
    assert towns.count(QINGGANG) == 12
    assert {r[schema.LEGAL_BASIS] for fid, r in after.items() if fid not in before} == {"consent"}

    again = _import(store, bishan, "qinggang_xuhao_no_id.xlsx", legal_basis="consent")
    assert again.counts.unchanged == 12  # the same people again: matched, nothing changes


def test_a_ledger_with_its_header_on_two_rows_imports_from_xlsx_and_from_its_csv(store, bishan):
    # header on rows 2-3 (残疾情况 over 类别/等级, 所在地 over 镇/村, 坐标 over 经度/纬度): data on rows 4-6
    outcome = _import(store, bishan, "dingjia_two_row_header.xlsx")
    assert outcome.ok, outcome.validation.report()
    assert outcome.counts.inserted == 3
    assert list(outcome.validation.frame.index) == [4, 5, 6]
    stored = {r[schema.ID_NUMBER]: r for r in _households(store).values()}
    first = stored["500227195501010015"]  # 王桂兰 on 丽景社区's point (106.1467, 29.41159)
    assert (first[schema.TOWN_CODE], first[schema.VILLAGE_CODE]) == ("500120005", "500120005001")
    assert (first[schema.DISABILITY_CATEGORY], first[schema.DISABILITY_GRADE]) == (4, 1)  # 肢体, 一级
    assert (first[schema.LON], first[schema.LAT]) == pytest.approx((106.1467, 29.41159), abs=1e-9)

    again = _import(store, bishan, "dingjia_two_row_header.csv")  # the same sheet saved as CSV UTF-8
    assert again.ok, again.validation.report()
    assert (again.counts.inserted, again.counts.updated, again.counts.unchanged) == (0, 0, 3)


def test_a_workbook_with_its_instructions_on_the_first_sheet_imports_the_ledger_sheet(store, bishan):
    outcome = _import(store, bishan, "dalu_instructions_first.xlsx")
    assert outcome.ok, outcome.validation.report()
    assert outcome.counts.inserted == 2
    assert list(outcome.validation.frame.index) == [2, 3]  # rows of the sheet 台账
    assert "第一个工作表“填表说明”没有表头，读取的是工作表“台账”" in "\n".join(outcome.notes)
    villages = {r[schema.VILLAGE_CODE] for r in _households(store).values()}
    assert villages == {"500120006001", "500120006002"}  # 新华社区, 翠湖社区


def test_a_town_and_villages_merged_down_over_their_rows_stand_for_each_row(store, bishan):
    # 正兴镇 merged over rows 2-4, 凤鞍村 over rows 2-3; row 4 has its own village (鹤寺村)
    outcome = _import(store, bishan, "zhengxing_merged_town.xlsx")
    assert outcome.ok, outcome.validation.report()
    assert outcome.counts.inserted == 3
    assert "合并单元格的值已填入其下合并的各行：第 3–4 行" in "\n".join(outcome.notes)
    assert not outcome.validation.inferred_villages  # no village was blank: none inferred
    stored = {r[schema.ID_NUMBER]: r for r in _households(store).values()}
    assert {r[schema.TOWN_CODE] for r in stored.values()} == {"500120105"}
    assert [stored[n][schema.VILLAGE_CODE] for n in sorted(stored)] == ["500120105200", "500120105200", "500120105201"]


def test_a_blank_address_keeps_the_stored_one_and_the_dry_run_shows_each_change(store, bishan):
    _import(store, bishan, "bicheng_gbk_totals.csv")
    before = _households(store)

    dry = _import(store, bishan, "bicheng_blank_address.csv", dry_run=True)
    assert dry.ok, dry.validation.report()
    fid = next(f for f, r in before.items() if r[schema.ID_NUMBER] == "500227195001010019")
    # 地址 blank on rows 2-4 (kept); only 序号 1's status changed (已摸底 → 已审批)
    assert dry.changes == (RowChange(2, fid, (FieldChange(schema.STATUS, "surveyed", "approved"),)),)
    assert dry.changes[0].describe() == f"第 2 行 (row 2, id {fid!r})：状态 surveyed → approved"
    assert "空白单元格保留已存的值" in "\n".join(dry.notes)
    assert _households(store) == before

    outcome = _import(store, bishan, "bicheng_blank_address.csv")
    assert (outcome.counts.inserted, outcome.counts.updated, outcome.counts.unchanged) == (0, 1, 11)
    after = _households(store)
    assert {f: r[schema.ADDRESS] for f, r in after.items()} == {f: r[schema.ADDRESS] for f, r in before.items()}
    assert after[fid][schema.ADDRESS] == "璧山区璧城街道文星社区璧城路1号"
    assert after[fid][schema.STATUS] == "approved"

    # asked to clear blanks, a required 地址 cannot be cleared: rows 2, 3, 4 named, nothing written
    cleared = _import(store, bishan, "bicheng_blank_address.csv", blank_clears=True)
    assert _rules(cleared) == [(r, schema.ADDRESS, REQUIRED) for r in (2, 3, 4)]
    assert _households(store) == after


def test_a_blank_phone_is_kept_unless_blanks_clear(store, bishan):
    _import(store, bishan, "bicheng_gbk_totals.csv")
    fourth = next(f for f, r in _households(store).items() if r[schema.ID_NUMBER] == "500227195001010043")

    kept = _import(store, bishan, "bicheng_blank_phone.csv")
    assert kept.counts.unchanged == 12
    assert _households(store)[fourth][schema.PHONE] == "13600000004"

    cleared = _import(store, bishan, "bicheng_blank_phone.csv", blank_clears=True, dry_run=True)
    assert cleared.changes == (RowChange(5, fourth, (FieldChange(schema.PHONE, "136****0004", ""),)),)
    cleared = _import(store, bishan, "bicheng_blank_phone.csv", blank_clears=True)
    assert (cleared.counts.updated, cleared.counts.unchanged) == (1, 11)
    assert _households(store)[fourth][schema.PHONE] is None


def test_a_changed_id_number_or_town_is_refused_by_row_unless_marked_as_a_correction(store, bishan):
    _import(store, bishan, "laifeng_with_ids.csv")
    before = _households(store)
    history = _history_rows(store)

    refused = _import(store, bishan, "laifeng_changed_person.csv")
    # LF-002 (row 3) now has another person's 身份证号; LF-003 (row 4) now says 璧城街道
    assert _rules(refused) == [(3, schema.ID_NUMBER, PERSON_CHANGED), (4, schema.TOWN_CODE, TOWN_CHANGED)]
    person, town = refused.validation.problems
    assert person.id == "LF-002"
    assert person.fix.startswith("编号 'LF-002' 已存为另一个人（身份证号不同）")
    assert "更正" in person.fix
    assert "500227198001010071" not in refused.validation.report()  # the number is never shown
    assert town.value == BICHENG
    assert f"已存为镇街 {LAIFENG}" in town.fix
    assert _households(store) == before
    assert _history_rows(store) == history

    dry = _import(store, bishan, "laifeng_changed_person_corrected.csv", dry_run=True)
    assert dry.ok, dry.validation.report()
    second = dry.changes[0]
    assert (second.row, second.id) == (3, "LF-002")
    assert FieldChange(schema.ID_NUMBER, "500227********0026", "500227********0071") in second.fields
    assert FieldChange(schema.CERTIFICATE_NUMBER, "500227********2613", "500227********7113") in second.fields

    outcome = _import(store, bishan, "laifeng_changed_person_corrected.csv")
    assert (outcome.counts.updated, outcome.counts.unchanged) == (2, 1)
    after = _households(store)
    assert after["LF-002"][schema.ID_NUMBER] == "500227198001010071"
    assert store.household_keys(["LF-002"])["LF-002"][0] == store.blind_index.digest("500227198001010071")
    assert after["LF-003"][schema.TOWN_CODE] == BICHENG


def test_a_turning_diameter_of_minus_5_is_refused_on_import_and_on_update(store, bishan):
    refused = _import(store, bishan, "toilet_negative_turning.csv", layer=schema.ACCESSIBLE_TOILET)
    assert _rules(refused) == [(2, "turning_diameter_m", OUT_OF_RANGE)]
    problem = refused.validation.problems[0]
    assert problem.value == "-5"
    assert problem.fix.startswith("轮椅回转直径 应在 0 到 10 之间，收到 -5：请改正该值")
    assert store.count() == 0

    demo = LEDGERS.parents[2] / "data" / "bishan" / "demo" / "accessible_toilet.csv"
    import_layer(store, schema.ACCESSIBLE_TOILET, demo, district=bishan, user="clerk")
    row = store.feature(schema.ACCESSIBLE_TOILET, "AT-001")
    with pytest.raises(ValueError, match="轮椅回转直径 应在 0 到 10 之间，收到 -5"):
        store.update_feature(
            schema.ACCESSIBLE_TOILET, "AT-001", {"turning_diameter_m": -5}, version=row[schema.VERSION], user="api"
        )
    assert store.feature(schema.ACCESSIBLE_TOILET, "AT-001")["turning_diameter_m"] == 1.86


def test_a_file_wide_legal_basis_fills_blanks_but_never_overrides_a_cell(store, bishan):
    # laifeng_with_ids.csv says 单独同意 (consent) on rows 2-4
    refused = _import(store, bishan, "laifeng_with_ids.csv", legal_basis="statutory_duty")
    assert _rules(refused) == [(r, schema.LEGAL_BASIS, LEGAL_BASIS_CONFLICT) for r in (2, 3, 4)]
    assert refused.validation.problems[0].fix.startswith("处理依据与整个文件指定的 --legal-basis statutory_duty 不一致")
    assert store.count() == 0
    with pytest.raises(
        ValueError, match="处理依据只能是 statutory_duty（法定职责）或 consent（单独同意）；收到 'maybe'"
    ):
        _import(store, bishan, "laifeng_with_ids.csv", legal_basis="maybe")


def test_a_csv_in_an_unknown_encoding_is_one_zh_cn_line(store, bishan, tmp_path):
    path = tmp_path / "utf16.csv"
    path.write_bytes("姓名,身份证号\n王秀英,500227195001010019\n".encode("utf-16"))
    with pytest.raises(ValueError, match=r"^'utf16.csv' 既不是 UTF-8 也不是 GBK/GB18030 文本"):
        import_layer(store, schema.HOUSEHOLD, path, district=bishan, user="clerk")


def test_an_import_that_decrypts_stored_rows_writes_one_bulk_read_to_the_access_log(store, bishan):
    _import(store, bishan, "bicheng_gbk_totals.csv")  # all 12 new: nothing stored is read
    assert store.access_log() == []

    _import(store, bishan, "bicheng_blank_address.csv", dry_run=True)  # the diff decrypts all 12 updated rows
    _import(store, bishan, "bicheng_blank_address.csv", channel="web", ip="10.0.0.7")  # 地址 blank on rows 2-4
    _import(store, bishan, "bicheng_blank_phone.csv", blank_clears=True)  # blanks clear: nothing decrypted

    log = store.access_log()
    assert [(r["actor"], r["layer"], r["feature_id"], r["channel"], r["ip"], r["reason"]) for r in log] == [
        ("clerk", schema.HOUSEHOLD, "*", "cli", None,
         "bulk read of 12 rows: dry run of import of bicheng_blank_address.csv into household"),
        ("clerk", schema.HOUSEHOLD, "*", "web", "10.0.0.7",
         "bulk read of 3 rows: import of bicheng_blank_address.csv into household"),
    ]  # fmt: skip
    assert all(r["at"] is not None for r in log)
