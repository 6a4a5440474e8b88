"""Import and form problems as the web shows them: what rule was broken and how to fix it, translated.

``layers.validate`` writes each problem's ``fix`` for the command line (English, naming CLI flags and
``layers/schema.py``). A web page shows instead the rule's name and fix from here, in the page's
language (zh-CN first): how to correct the cell in the spreadsheet or the form, with the column as
the page shows it. A rule without a text of its own (a new rule) falls back to a general one.
Pages and the Chinese command line group problems as the validator's report does
(``ValidationResult.grouped_problems``): a few per column and rule, then one summary naming the rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from flask_babel import gettext

from layers import validate
from layers.validate import Problem, ProblemSummary, ValidationResult
from webmap.i18n import N_

#: A gettext: msgid and ``%(name)s`` values → text in the reader's language.
Translate = Callable[..., str]

#: Rule → (short name, how to fix) msgids; ``%(column)s`` is the column as the page shows it.
RULE_TEXTS = MappingProxyType(
    {
        validate.MISSING_COLUMN: (N_("缺少列"), N_("表格缺少“%(column)s”列：请加上这一列（表头可以用中文），再上传。")),
        validate.REQUIRED: (N_("必填"), N_("“%(column)s”必须填写。")),
        validate.BAD_TYPE: (
            N_("格式不对"),
            N_("“%(column)s”的格式不对：数字请填数字，日期请填 2024-01-31 这样的日期，是否请填“是”或“否”。"),
        ),
        validate.UNKNOWN_CODE: (N_("取值不在范围内"), N_("“%(column)s”的值不在可选范围内：请从可选的取值中选择。")),
        validate.COORDINATES: (
            N_("经纬度不对"),
            N_("经度应在 -180 到 180 之间，纬度应在 -90 到 90 之间，用小数表示的度（如 106.2311）。"),
        ),
        validate.DATUM_MISSING: (
            N_("没有说明坐标系"),
            N_("请加一列“坐标系”：GPS 或天地图的坐标填 wgs84，高德或腾讯地图填 gcj02，百度地图填 bd09。"),
        ),
        validate.DATUM_UNKNOWN: (
            N_("坐标系不对"),
            N_("坐标系只能是 wgs84（GPS、天地图）、gcj02（高德、腾讯地图）或 bd09（百度地图）。"),
        ),
        validate.DATUM_CONFLICT: (N_("坐标系不一致"), N_("这一行的“坐标系”与整个文件声明的坐标系不同：请统一成一种。")),
        validate.OUTSIDE_DISTRICT: (
            N_("不在本区范围内"),
            N_("这个位置不在本区范围内：请检查经度和纬度是否填反，坐标系是否正确。"),
        ),
        validate.UNKNOWN_TOWN: (N_("镇街不对"), N_("“%(column)s”不是本区的镇街：请填写镇街名称或 9 位代码。")),
        validate.UNKNOWN_VILLAGE: (
            N_("村（社区）不对"),
            N_("“%(column)s”不在本区的村（社区）名单中：请填写村（社区）名称或 12 位代码。"),
        ),
        validate.VILLAGE_NOT_IN_TOWN: (
            N_("村（社区）与镇街不符"),
            N_("这个村（社区）不属于这一行填写的镇街：请改正镇街或村（社区）。"),
        ),
        validate.ID_NUMBER: (
            N_("身份证号不对"),
            N_(
                "身份证号应为 18 位（最后一位可以是 X），且校验位正确。"
                "若 Excel 把它存成了数字，请把这一列设为“文本”后重新输入。"
            ),
        ),
        validate.CERTIFICATE_NUMBER: (
            N_("残疾证号不对"),
            N_(
                "残疾证号应为 20 位：身份证号加残疾类别和等级。"
                "若 Excel 把它存成了数字，请把这一列设为“文本”后重新输入。"
            ),
        ),
        validate.CERTIFICATE_ID_MISMATCH: (N_("证号与身份证号不符"), N_("残疾证号的前 18 位应与身份证号相同。")),
        validate.CATEGORY_MISMATCH: (N_("残疾类别不符"), N_("残疾类别应与残疾证号第 19 位表示的类别相同。")),
        validate.GRADE_MISMATCH: (N_("残疾等级不符"), N_("残疾等级应与残疾证号第 20 位表示的等级相同。")),
        validate.PHONE: (N_("电话号码不对"), N_("手机号为 11 位；固定电话请带区号，如 023-41420000。")),
        validate.DUPLICATE_ID: (N_("编号重复"), N_("编号在文件中出现了不止一次：每个编号只能用一次。")),
        validate.DUPLICATE_PERSON: (N_("同一人重复"), N_("同一个人在文件中出现了不止一次：每人只保留一行。")),
        validate.UNKNOWN_STATUS: (N_("状态不对"), N_("“%(column)s”只能是页面上列出的状态之一。")),
        validate.STATUS_TRANSITION: (
            N_("状态不能这样改"),
            N_(
                "状态不能从原来的状态直接改成这个状态（例如已验收的设施不能改回规划中）；如确需更改，请联系系统管理员。"
            ),
        ),
        validate.TOO_LONG: (N_("内容太长"), N_("“%(column)s”的内容太长：请缩短。")),
        validate.OUT_OF_RANGE: (N_("超出范围"), N_("“%(column)s”超出允许的取值范围：请改正该值。")),
        validate.PERSON_CHANGED: (
            N_("与已存的人不符"),
            N_("这个编号已存的是另一个人（身份证号不同）：请核对编号；确属更正时在“更正”列填“是”。"),
        ),
        validate.TOWN_CHANGED: (
            N_("与已存的镇街不符"),
            N_("这个编号已存在另一个镇街：请核对编号和镇街；确属更正时在“更正”列填“是”。"),
        ),
        validate.TOWN_NOT_ALLOWED: (
            N_("不是您负责的镇街"),
            N_(
                "这一行的户属于您负责范围以外的镇街：只能导入本人负责镇街的户；请从文件中删去这一行，或请该镇街的工作人员导入。"
            ),
        ),
        validate.LEGAL_BASIS_CONFLICT: (
            N_("处理依据不一致"),
            N_("这一行的“处理依据”与导入时为整个文件选择的处理依据不同：请统一。"),
        ),
        validate.CONTROL_CHARACTER: (
            N_("含有控制字符"),
            N_("单元格里有看不见的控制字符（常见于从其他系统复制的内容）：请删除这些字符后重新输入。"),
        ),
    }
)
_OTHER_RULE = (N_("不符合要求"), N_("“%(column)s”不符合要求：请检查后改正。"))
#: Rules whose own fix (``Problem.fix``: zh-CN, then English) names the allowed values: shown as written.
OWN_FIX_RULES = frozenset({validate.OUT_OF_RANGE})
#: Where a duplicate appears, as ``layers.validate`` writes it: "... appears on 300 rows: 2, 3, 4, 5, 6 …".
_APPEARS_ON = re.compile(r"appears on ([\d,]+) rows: ([\d, …]+)")  # counts of 1,000 and more have commas
_DUPLICATES = frozenset({validate.DUPLICATE_ID, validate.DUPLICATE_PERSON})


def rule_label(rule: str, translate: Translate = gettext) -> str:
    """Return the short name of ``rule`` in this request's language (``translate``: the CLI passes its own)."""
    return translate(RULE_TEXTS.get(rule, _OTHER_RULE)[0])


def fix_text(problem: Problem, column: str | None = None, translate: Translate = gettext) -> str:
    """Return how to fix ``problem`` in this request's language; ``column`` is the column as the page names it.

    ``translate`` is Flask-Babel's ``gettext`` on the web and ``webmap.cli.lang._`` on the command line.
    """
    if problem.rule in OWN_FIX_RULES and problem.fix:
        return problem.fix
    label = column or problem.column or translate("这一列")
    text = translate(RULE_TEXTS.get(problem.rule, _OTHER_RULE)[1], column=label)
    where = _APPEARS_ON.search(problem.fix) if problem.rule in _DUPLICATES else None
    if where is not None:
        text += translate("共 %(n)s 行：第 %(rows)s 行。", n=where.group(1), rows=where.group(2))
    return text


def summary_text(summary: ProblemSummary, column: str | None = None, translate: Translate = gettext) -> str:
    """Return a problem summary in this request's language: how many more rows, the rule, the column, which rows.

    ``column`` is the column as the page names it; ``translate`` as in `fix_text`. No value is named.
    """
    values = {"n": f"{len(summary.rows):,}", "rule": rule_label(summary.rule, translate), "rows": summary.row_ranges}
    if column:
        return translate("另有 %(n)s 行有同样的问题（%(rule)s），在“%(column)s”列：第 %(rows)s 行；改正方法同上。",
                         column=column, **values)  # fmt: skip
    return translate("另有 %(n)s 行有同样的问题（%(rule)s）：第 %(rows)s 行；改正方法同上。", **values)


def problem_rows(
    result: ValidationResult | None,
    labels: Mapping[str, str],
    fix: Callable[[Problem, str], str] = fix_text,
) -> list[dict[str, Any]]:
    """Return an import's problems as an import page lists them: row, id, column, value, rule and fix.

    The column is the file's own header, else its page label (``labels``), else its canonical name;
    ``fix`` turns a problem and that column into the text shown (a page may name its own form fields).
    Problems are grouped (``ValidationResult.grouped_problems``): past the first few of a column and
    rule, one row has ``summary`` True, the row ranges as its row, no id or value, and `summary_text`
    as its fix; every other row has ``summary`` False.
    """
    rows = []
    for p in result.grouped_problems() if result is not None else ():
        header = result.headers.get(p.column or "", "")
        column = header or labels.get(p.column or "", p.column or "")
        if isinstance(p, ProblemSummary):
            rows.append({"row": p.row_ranges, "id": "", "column": column, "value": "", "rule": rule_label(p.rule),
                         "fix": summary_text(p, column), "summary": True})  # fmt: skip
            continue
        rows.append({"row": gettext("整个文件") if p.row is None else p.row, "id": p.id or "", "column": column,
                     "value": "" if p.value is None else p.value, "rule": rule_label(p.rule),
                     "fix": fix(p, column), "summary": False})  # fmt: skip
    return rows
