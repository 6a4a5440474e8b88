"""Write the hand-made ledgers of tests/data/ledgers (run once from the repository root; the files are committed)."""

import csv
import io
from pathlib import Path

import openpyxl
import pandas as pd

from layers.idcard import id_check_char

OUT = Path("tests/data/ledgers")
V = pd.read_csv("data/bishan/villages.csv", dtype={"village_code": str, "town_code": str})
V = V.set_index("village_code")


def pid(birth, seq):
    first = f"500227{birth}{seq:03d}"
    return first + id_check_char(first)


BICHENG = [
    "500120001001",
    "500120001002",
    "500120001003",
    "500120001004",
    "500120001005",
    "500120001006",
    "500120001007",
    "500120001008",
    "500120001009",
    "500120001200",
    "500120001201",
    "500120001008",
]
SURN = "王李张刘陈杨黄赵周吴徐孙"


def bicheng_rows():
    rows = []
    for i, code in enumerate(BICHENG, start=1):
        v = V.loc[code]
        number = pid("19500101", i)
        rows.append(
            {
                "序号": str(i),
                "姓名": f"{SURN[i - 1]}秀英",
                "身份证号": number,
                "残疾人证号": number + "42",
                "镇（街道）": "璧城街道",
                "村（社区）": "" if i == 12 else v["name"],
                "详细地址": f"璧山区璧城街道{v['name']}璧城路{i}号",
                "经度": f"{v['lon']}",
                "纬度": f"{v['lat']}",
                "坐标系": "WGS-84",
                "改造状态": "已摸底",
                "处理依据": "法定职责",
                "联系电话": f"136000000{i:02d}",
            }
        )
    return rows


def write_csv(rows, path, encoding, total=None):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\r\n")
    w.writeheader()
    w.writerows(rows)
    if total:
        w.writerow(total)
    path.write_bytes(buf.getvalue().encode(encoding))


rows = bicheng_rows()
total = {k: "" for k in rows[0]}
total["序号"] = "合计"
total["姓名"] = "12户"
write_csv(rows, OUT / "bicheng_gbk_totals.csv", "gbk", total)

# the same people again: 地址 blank on rows 1-3, 改造状态 of 序号 1 now 已审批 (UTF-8 with BOM)
again = [dict(r) for r in rows]
for r in again[:3]:
    r["详细地址"] = ""
again[0]["改造状态"] = "已审批"

write_csv(again, OUT / "bicheng_blank_address.csv", "utf-8-sig")
# the same people again: only 联系电话 of 序号 4 blank
phone = [dict(r) for r in rows]
phone[3]["联系电话"] = ""

write_csv(phone, OUT / "bicheng_blank_phone.csv", "utf-8-sig")

# a second town's XLSX: 序号 1..12, no id column, no 处理依据 column
QING = [
    "500120003001",
    "500120003002",
    "500120003003",
    "500120003004",
    "500120003005",
    "500120003006",
    "500120003007",
    "500120003008",
    "500120003200",
    "500120003201",
    "500120003202",
    "500120003203",
]
wb = openpyxl.Workbook()
ws = wb.active
ws.title = "青杠街道"
ws.append(["青杠街道残疾人家庭无障碍改造台账（2024年）"])
header = [
    "序号",
    "姓名",
    "身份证号",
    "残疾人证号",
    "镇（街道）",
    "村（社区）",
    "详细地址",
    "经度",
    "纬度",
    "坐标系",
    "改造状态",
]
ws.append(header)
for i, code in enumerate(QING, start=1):
    v = V.loc[code]
    number = pid("19600101", i)
    ws.append(
        [
            i,
            f"{SURN[i - 1]}建国",
            number,
            number + "41",
            "青杠街道",
            v["name"],
            f"璧山区青杠街道{v['name']}青杠路{i}号",
            float(v["lon"]),
            float(v["lat"]),
            "WGS-84",
            "已摸底",
        ]
    )
for row in ws.iter_rows(min_row=3, min_col=3, max_col=4):
    for c in row:
        c.number_format = "@"
wb.save(OUT / "qinggang_xuhao_no_id.xlsx")

# 来凤街道 with ids; then LF-002 with another person's 身份证号 and LF-003 moved to 璧城街道
LAI = ["500120004001", "500120004002", "500120004003"]
lrows = []
for i, code in enumerate(LAI, start=1):
    v = V.loc[code]
    number = pid("19700101", i)
    lrows.append(
        {
            "编号": f"LF-00{i}",
            "姓名": f"{SURN[i - 1]}红",
            "身份证号": number,
            "残疾人证号": number + "13",
            "镇（街道）": "来凤街道",
            "村（社区）": v["name"],
            "详细地址": f"璧山区来凤街道{v['name']}来凤路{i}号",
            "经度": f"{v['lon']}",
            "纬度": f"{v['lat']}",
            "坐标系": "WGS-84",
            "改造状态": "已摸底",
            "处理依据": "单独同意",
        }
    )
write_csv(lrows, OUT / "laifeng_with_ids.csv", "utf-8-sig")
changed = [dict(r) for r in lrows]
other = pid("19800101", 7)
changed[1]["身份证号"], changed[1]["残疾人证号"] = other, other + "13"
wen = V.loc["500120001001"]
changed[2].update(
    {"镇（街道）": "璧城街道", "村（社区）": "文星社区", "经度": f"{wen['lon']}", "纬度": f"{wen['lat']}"}
)
write_csv(changed, OUT / "laifeng_changed_person.csv", "utf-8-sig")
marked = [dict(r, **{"更正": ""}) for r in changed]
marked[1]["更正"] = "是"
marked[2]["更正"] = "是"
write_csv(marked, OUT / "laifeng_changed_person_corrected.csv", "utf-8-sig")

# 丁家街道's XLSX with a header on two rows (groups merged across, the other labels merged down), and
# the same sheet saved by Excel as CSV UTF-8 (a merged cell's value in its first cell, the others empty)
DING = ["500120005001", "500120005002", "500120005003"]
top = ["序号", "姓名", "身份证号", "残疾人证号", "残疾情况", None, "所在地", None, "详细地址", "坐标", None,
       "坐标系", "改造状态", "处理依据", "联系电话"]  # fmt: skip
sub = [None, None, None, None, "类别", "等级", "镇（街道）", "村（社区）", None, "经度", "纬度", None, None, None, None]
drows = []
for i, code in enumerate(DING, start=1):
    v = V.loc[code]
    number = pid("19550101", i)
    drows.append([i, f"{SURN[i - 1]}桂兰", number, number + "41", "肢体", "一级", "丁家街道", v["name"],
                  f"璧山区丁家街道{v['name']}丁家路{i}号", float(v["lon"]), float(v["lat"]), "WGS-84", "已摸底",
                  "法定职责", f"137000000{i:02d}"])  # fmt: skip
wb = openpyxl.Workbook()
ws = wb.active
ws.title = "丁家街道"
ws.append(["丁家街道重度残疾人家庭无障碍改造台账"])
ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(top))
ws.append(top)
ws.append(sub)
for j, (t_, s_) in enumerate(zip(top, sub, strict=True), start=1):
    if t_ is not None and s_ is None:
        ws.merge_cells(start_row=2, start_column=j, end_row=3, end_column=j)
for first, last in ((5, 6), (7, 8), (10, 11)):
    ws.merge_cells(start_row=2, start_column=first, end_row=2, end_column=last)
for r in drows:
    ws.append(r)
for row in ws.iter_rows(min_row=4, min_col=3, max_col=4):
    for c in row:
        c.number_format = "@"
wb.save(OUT / "dingjia_two_row_header.xlsx")
buf = io.StringIO()
w = csv.writer(buf, lineterminator="\r\n")
w.writerow(["丁家街道重度残疾人家庭无障碍改造台账", *[""] * (len(top) - 1)])
w.writerow(["" if c is None else c for c in top])
w.writerow(["" if c is None else c for c in sub])
w.writerows(drows)
(OUT / "dingjia_two_row_header.csv").write_bytes(buf.getvalue().encode("utf-8-sig"))

# 大路街道's workbook as the district's template has it: a 填表说明 sheet first, the ledger on the second
DALU = ["500120006001", "500120006002"]
wb = openpyxl.Workbook()
ws = wb.active
ws.title = "填表说明"
for line in ["填表说明", "1. 身份证号、残疾人证号请设为文本格式，不要以数字保存", "2. 经纬度请用 WGS-84（GPS）坐标",
             "3. 每户一行，不要合并单元格"]:  # fmt: skip
    ws.append([line])
ws = wb.create_sheet("台账")
ws.append(["序号", "姓名", "身份证号", "残疾人证号", "镇（街道）", "村（社区）", "详细地址", "经度", "纬度", "坐标系",
           "改造状态", "处理依据"])  # fmt: skip
for i, code in enumerate(DALU, start=1):
    v = V.loc[code]
    number = pid("19650101", i)
    ws.append([i, f"{SURN[i - 1]}志强", number, number + "22", "大路街道", v["name"], f"璧山区大路街道{v['name']}{i}号",
               float(v["lon"]), float(v["lat"]), "WGS-84", "已摸底", "法定职责"])  # fmt: skip
for row in ws.iter_rows(min_row=2, min_col=3, max_col=4):
    for c in row:
        c.number_format = "@"
wb.save(OUT / "dalu_instructions_first.xlsx")

# 正兴镇's ledger with the town written once and merged down over its rows, and each village merged
# down over its households (as clerks lay out a block per village)
ZHENG = ["500120105200", "500120105200", "500120105201"]
wb = openpyxl.Workbook()
ws = wb.active
ws.title = "正兴镇"
ws.append(["序号", "姓名", "身份证号", "残疾人证号", "镇（街道）", "村（社区）", "详细地址", "经度", "纬度", "坐标系",
           "改造状态", "处理依据"])  # fmt: skip
for i, code in enumerate(ZHENG, start=1):
    v = V.loc[code]
    number = pid("19700101", 20 + i)
    first_of_village = i == 1 or ZHENG[i - 2] != code
    ws.append([i, f"{SURN[i - 1]}德明", number, number + "43", "正兴镇" if i == 1 else None,
               v["name"] if first_of_village else None, f"璧山区正兴镇{v['name']}{i}组", float(v["lon"]),
               float(v["lat"]), "WGS-84", "已摸底", "法定职责"])  # fmt: skip
ws.merge_cells("E2:E4")  # 正兴镇 over rows 2-4
ws.merge_cells("F2:F3")  # the first village over rows 2-3
for row in ws.iter_rows(min_row=2, min_col=3, max_col=4):
    for c in row:
        c.number_format = "@"
wb.save(OUT / "zhengxing_merged_town.xlsx")

# a toilet with a turning diameter of -5
t = pd.read_csv("data/bishan/demo/accessible_toilet.csv", dtype=str, keep_default_na=False).iloc[[0]].copy()
t["id"] = "AT-900"
t["turning_diameter_m"] = "-5"
t.to_csv(OUT / "toilet_negative_turning.csv", index=False, encoding="utf-8-sig")
print(pid("19500101", 1), pid("19600101", 1), pid("19700101", 2), other)
