"""Import problems on the web: rule names and fixes in the page's language, no CLI flags or source files."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from flask_babel import force_locale

from layers import schema, validate
from layers.district import load_district
from layers.validate import validate_layer
from webmap.problems import OWN_FIX_RULES, RULE_TEXTS, fix_text, rule_label

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
