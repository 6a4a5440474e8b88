from __future__ import annotations

import pytest

from layers import schema


def test_every_layer_has_a_spec_with_common_columns():
    assert set(schema.LAYER_SPECS) == set(schema.ALL_LAYERS)
    for name, spec in schema.LAYER_SPECS.items():
        assert spec.name == name
        assert set(schema.COMMON_COLUMNS) <= set(spec.column_names)
        assert spec.workflow.statuses == schema.STATUSES[name]
        assert spec.public == (name in schema.PUBLIC_LAYERS)


def test_personal_columns():
    personal = ("name", "address", "id_number", "certificate_number", "phone")
    assert schema.layer_spec(schema.HOUSEHOLD).personal == personal
    assert schema.layer_spec(schema.ACCESSIBLE_TOILET).personal == ()


def test_toilet_columns_carry_build_type_and_gb50763_fields():
    spec = schema.layer_spec(schema.ACCESSIBLE_TOILET)
    assert spec.column(schema.BUILD_TYPE).choices == ("existing", "rebuild", "new")
    assert set(schema.GB50763_FIELDS) <= set(spec.column_names)
    assert spec.column("door_clear_width_mm").dtype == "int"
    assert spec.column("call_button").dtype == "bool"


def test_unknown_layer():
    with pytest.raises(ValueError, match="`layer` must be one of"):
        schema.layer_spec("toilets")


@pytest.mark.parametrize(
    ("before", "after", "allowed"),
    [
        ("planned", "under_construction", True),
        ("under_construction", "completed", True),
        ("completed", "accepted", True),
        ("planned", "accepted", False),
        ("accepted", "planned", False),
        ("completed", "completed", True),
    ],
)
def test_toilet_workflow(before, after, allowed):
    assert schema.TOILET_WORKFLOW.allows(before, after) is allowed


@pytest.mark.parametrize(
    ("before", "after", "allowed"),
    [
        ("surveyed", "approved", True),
        ("approved", "in_progress", True),
        ("in_progress", "completed", True),
        ("completed", "verified", True),
        ("surveyed", "declined", True),
        ("in_progress", "declined", True),
        ("completed", "declined", False),
        ("verified", "declined", False),
        ("declined", "surveyed", True),
        ("declined", "approved", False),
        ("surveyed", "in_progress", False),
    ],
)
def test_household_workflow(before, after, allowed):
    assert schema.HOUSEHOLD_WORKFLOW.allows(before, after) is allowed


def test_facility_workflow_any_transition():
    wf = schema.FACILITY_WORKFLOW
    assert all(wf.allows(a, b) for a in wf.statuses for b in wf.statuses)
    assert wf.next_statuses("open") == ("planned", "closed")


@pytest.mark.parametrize(
    ("header", "canonical"),
    [
        ("序号", "row_counter"),
        ("编号", "id"),
        ("ID", "id"),
        ("姓名", "name"),
        ("*姓名", "name"),
        ("身份证号", "id_number"),
        ("身份证号码", "id_number"),
        ("身份证\n号码", "id_number"),
        ("残疾人证号", "certificate_number"),
        ("残疾类别", "disability_category"),
        ("残疾等级", "disability_grade"),
        ("镇街", "town_code"),
        ("镇（街道）", "town_code"),
        ("村（社区）", "village_code"),
        ("村(社区)", "village_code"),
        ("详细地址", "address"),
        ("联系电话", "phone"),
        ("改造需求", "needs"),
        ("改造状态", "status"),
        ("状态", "status"),
        ("经度", "lon"),
        ("纬度", "lat"),
        ("坐标系", "datum"),
        ("面积（平方米）", "area_m2"),
        ("cert_no", "certificate_number"),
        ("所在镇街", "town_code"),
        ("所在镇(街道)", "town_code"),
        ("所在村（社区）", "village_code"),
        ("村（居）委会", "village_code"),
        ("现住址", "address"),
        ("经纬度", "lon_lat"),
        ("坐标", "lon_lat"),
        ("户籍地址", None),  # where a person is registered, not where the home to modify is
        ("备注", None),
    ],
)
def test_header_aliases(header, canonical):
    assert schema.canonical_column(header) == canonical


def test_xuhao_is_a_row_counter_never_an_id():
    # every town's ledger counts 1, 2, 3 …: read as ids they replaced another town's households
    assert schema.canonical_column("序号") == schema.ROW_COUNTER
    assert "序号" not in schema.HEADER_ALIASES[schema.ID]


def test_ranges_are_defined_once_in_the_schema_and_name_column_value_and_fix():
    column = schema.layer_spec(schema.ACCESSIBLE_TOILET).column("turning_diameter_m")
    assert (column.minimum, column.maximum) == schema.RANGES["turning_diameter_m"] == (0, 10)
    why = column.out_of_range(-5)
    assert why.startswith("轮椅回转直径 应在 0 到 10 之间，收到 -5")
    assert "turning_diameter_m" in why
    assert column.out_of_range(1.5) is None
    assert column.out_of_range(None) is None


def test_labels():
    wf = schema.HOUSEHOLD_WORKFLOW
    got = {
        label: wf.labels[schema.normalise_label(label)]
        for label in ("已摸底", "已审批", "施工中", "已完工", "已验收", "放弃")
    }
    assert got == {"已摸底": "surveyed", "已审批": "approved", "施工中": "in_progress", "已完工": "completed",
                   "已验收": "verified", "放弃": "declined"}  # fmt: skip
    assert schema.TOILET_WORKFLOW.labels["已验收"] == "accepted"
    assert schema.CATEGORY_LABELS["肢体"] == "4"
    assert schema.CATEGORY_LABELS["视力残疾"] == "1"
    assert schema.GRADE_LABELS["二级"] == "2"
    assert schema.DATUM_LABELS[schema.normalise_label("GCJ-02")] == "gcj02"
    assert schema.DATUM_LABELS["百度"] == "bd09"


def test_shapefile_names_are_short_and_unique():
    names = schema.SHAPEFILE_NAMES
    assert all(len(v) <= 10 for v in names.values())
    assert len(set(names.values())) == len(names)
    assert all(schema.canonical_column(v) == k for k, v in names.items())
