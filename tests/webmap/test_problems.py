"""Import problems on the web: rule names and fixes in the page's language, no CLI flags or source files."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from flask_babel import force_locale

from layers import schema, validate
from layers.district import load_district
from layers.validate import validate_layer
from webmap.problems import OWN_FIX_RULES, RULE_TEXTS, fix_text, problem_rows, rule_label, summary_text

_RULES = {v for k, v in vars(validate).items() if k.isupper() and isinstance(v, str) and re.fullmatch(r"[a-z_]+", v)}


def _problems() -> list[validate.Problem]:
    """Two rows of a Bishan sports-site sheet with the same id, the first without a name."""
    table = pd.DataFrame(
        {
            schema.ID: ["s1", "s1"],
            schema.TOWN_CODE: ["500120001", "500120001"],
            schema.NAME: ["", "体育点"],
            schema.LON: ["106.23", "106.23"],
            schema.LAT: ["29.59", "29.59"],
            schema.DATUM: ["wgs84", "wgs84"],
            schema.STATUS: ["open", "open"],
        },
        dtype=object,
    )
    return validate_layer(schema.SPORTS_SITE, table, district=load_district()).problems


def test_every_rule_of_the_validator_has_a_web_text():
    assert _RULES and _RULES <= set(RULE_TEXTS)


def test_web_fixes_name_no_command_line_flag_or_source_file(app):
    for locale in ("zh_CN", "en"):
        with app.test_request_context("/"), force_locale(locale):
            for rule in RULE_TEXTS:
                if rule in OWN_FIX_RULES:  # the validator's own text names the allowed values: shown as written
                    spec = schema.layer_spec(schema.ACCESSIBLE_TOILET).column("turning_diameter_m")
                    fix = schema.range_fix(spec, -5.0)
                    problem = validate.Problem(3, "s1", spec.name, "-5", rule, fix)
                    assert fix_text(problem, "名称") == fix and "应在 0 到" in fix
                else:
                    problem = validate.Problem(3, "s1", schema.NAME, "x", rule, "English fix naming layers/schema.py")
                text = fix_text(problem, "名称")
                assert "schema.py" not in text and "--" not in text and "accessplan " not in text
                assert rule_label(rule) != rule


def test_a_real_report_reads_in_chinese_then_english(app):
    problems = _problems()
    rules = {p.rule for p in problems}
    assert {validate.REQUIRED, validate.DUPLICATE_ID} <= rules, problems
    required = next(p for p in problems if p.rule == validate.REQUIRED)
    assert required.fix == "every row needs 名称"  # the command line's own English text
    with app.test_request_context("/"):
        assert rule_label(validate.REQUIRED) == "必填"
        assert fix_text(required, "名称") == "“名称”必须填写。"
    with app.test_request_context("/?lang=en"):
        assert rule_label(validate.REQUIRED) == "Required"
        assert fix_text(required, "Name") == "“Name” must be filled in."
        duplicate = next(p for p in problems if p.rule == validate.DUPLICATE_ID)
        assert fix_text(duplicate) == (
            "The ID appears more than once in the file: each ID may be used once. 2 rows in all: rows 2, 3."
        )


@pytest.mark.parametrize("rule", ["some_new_rule"])
def test_a_rule_without_its_own_text_gets_the_general_one(app, rule):
    with app.test_request_context("/"):
        problem = validate.Problem(2, None, schema.NAME, "x", rule, "fix")
        assert rule_label(rule) == "不符合要求"
        assert fix_text(problem, "名称") == "“名称”不符合要求：请检查后改正。"


def test_problem_rows_sum_up_a_group_past_the_first_ten_in_one_row(app):
    """Unknown towns on rows 2-11, 15, 16 and 20, and a phone on row 3: 11 rows listed, then one summary row."""
    town_rows = [*range(2, 12), 15, 16, 20]
    problems = [
        validate.Problem(r, f"s{r}", schema.TOWN_CODE, "黄泥镇", validate.UNKNOWN_TOWN, "fix") for r in town_rows
    ]
    problems.insert(2, validate.Problem(3, "s3", schema.PHONE, "123", validate.PHONE, "fix"))
    result = validate.ValidationResult(
        layer=schema.SPORTS_SITE, frame=pd.DataFrame(), problems=tuple(problems), headers={"town_code": "镇街"},
        ignored_columns=(), n_rows=20, new_ids=(), updated_ids=(),
    )  # fmt: skip
    with app.test_request_context("/"):
        rows = problem_rows(result, {})
    assert [(r["row"], r["summary"]) for r in rows] == [(r, False) for r in (2, 3, 3, *range(4, 12))] + [
        ("15–16, 20", True)
    ]
    assert rows[-1] == {"row": "15–16, 20", "id": "", "column": "镇街", "value": "", "rule": "镇街不对",
                        "fix": "另有 3 行有同样的问题（镇街不对），在“镇街”列：第 15–16, 20 行；改正方法同上。",
                        "summary": True}  # fmt: skip
    summary = validate.ProblemSummary(None, validate.UNKNOWN_TOWN, 3, (15, 16, 20))
    with app.test_request_context("/?lang=en"):
        assert summary_text(summary) == (
            "3 more row(s) with the same problem (Unknown town): rows 15–16, 20; fix them as above."
        )
    with app.test_request_context("/"):
        assert summary_text(summary) == "另有 3 行有同样的问题（镇街不对）：第 15–16, 20 行；改正方法同上。"


def test_a_duplicate_on_a_thousand_rows_or_more_keeps_its_count_and_rows_in_chinese(app):
    """The validator writes counts with thousands separators ("1,200 rows"): the Chinese fix keeps them."""
    problem = validate.Problem(
        2, "s1", schema.ID, "s1", validate.DUPLICATE_ID, "the same id appears on 1,200 rows: 2, 3, 4, 5, 6 …: keep one"
    )
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        text = fix_text(problem)
    assert text.endswith("共 1,200 行：第 2, 3, 4, 5, 6 … 行。")
