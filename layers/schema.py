"""Name the point layers, their columns, codes, status workflows and header aliases in one place.

Everything an import needs to know about a layer lives here: the columns with their dtype and
whether a value is required, which columns hold personal information (PIPL, DOMAIN.md §7), the status
workflow, the value labels staff write in their ledgers (台账), and ONE header-alias table that maps
Chinese and English spreadsheet headers to canonical column names.

Decisions (documented here so the rest of the code need not repeat them):

* Coordinates at rest are WGS-84; ``datum`` holds the datum the row was *recorded* in (``wgs84``,
  ``gcj02`` or ``bd09``), as in the store and the demo loader. A file exported from the store carries
  ``source_datum`` instead, with WGS-84 coordinates (see `layers.validate`).
* Workflows allow staying in the same status (an update of other fields). Any status of the workflow
  is accepted for a *new* row, because ledgers record work that started before the tool existed.
* Households: ``surveyed → approved → in_progress → completed → verified``; ``declined`` is reachable
  from ``surveyed``, ``approved`` and ``in_progress`` (a family may refuse until the work is done, not
  after); ``declined → surveyed`` re-opens a case when the family changes its mind. There is no way
  back from ``completed`` or ``verified``: a failed check keeps the case ``completed`` until it passes.
* Toilets: ``planned → under_construction → completed → accepted``, strictly forward; a toilet whose
  acceptance (验收) fails stays ``completed``. ``build_type`` is ``existing`` (surveyed, not part of the
  19 + 19 programme), ``rebuild`` (改建) or ``new`` (新建).
* Facilities (rehab stations, 渝馨家园, sports sites): ``planned | open | closed``, any transition.
* Chinese status labels: households 已摸底/待审批 → surveyed, 已审批 → approved, 施工中/改造中 →
  in_progress, 已完工 → completed, 已验收 → verified, 放弃/已放弃/不愿改造 → declined; toilets
  规划/规划中/计划/待建 → planned, 施工中/在建 → under_construction, 已完工 → completed, 已验收 → accepted;
  facilities 规划/计划/拟建/筹建 → planned, 运营/开放/在用/已建成 → open, 关闭/停用/撤销 → closed.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

REHAB_STATION = "rehab_station"
SERVICE_CENTRE = "service_centre"
ACCESSIBLE_TOILET = "accessible_toilet"
SPORTS_SITE = "sports_site"
HOUSEHOLD = "household"

#: Layers that may be shown to the public; households are sensitive personal information (PIPL).
PUBLIC_LAYERS = (REHAB_STATION, SERVICE_CENTRE, ACCESSIBLE_TOILET, SPORTS_SITE)
ALL_LAYERS = (*PUBLIC_LAYERS, HOUSEHOLD)

LAYER_LABELS_ZH = {
    REHAB_STATION: "康复站",
    SERVICE_CENTRE: "渝馨家园",
    ACCESSIBLE_TOILET: "无障碍厕所",
    SPORTS_SITE: "文化体育示范点",
    HOUSEHOLD: "无障碍改造户",
}

ID = "id"
#: Longest id (编号) the store keeps (``features.id`` is ``VARCHAR(64)``).
ID_MAX_LENGTH = 64
TOWN_CODE = "town_code"
VILLAGE_CODE = "village_code"
NAME = "name"
#: English name of a town (``towns.csv``); ``name`` is the Chinese one.
NAME_EN = "name_en"
ADDRESS = "address"
LON = "lon"
LAT = "lat"
DATUM = "datum"
STATUS = "status"
VERSION = "version"
CREATED_BY = "created_by"
CREATED_AT = "created_at"
UPDATED_BY = "updated_by"
UPDATED_AT = "updated_at"
#: Datum a row was recorded in, as written by store exports (their lon/lat are WGS-84).
SOURCE_DATUM = "source_datum"
SYNTHETIC = "synthetic"

#: Columns of the district's villages table (``villages.csv``) besides the codes, name and lon/lat:
#: ``community`` (社区) or ``village`` (村), the NBS urban/rural class (城乡分类代码), households and residents.
KIND = "kind"
URBAN_RURAL_CODE = "urban_rural_code"
HOUSEHOLDS = "households"
POPULATION = "population"

#: Columns every point layer has; everything else of a row is a layer attribute.
COMMON_COLUMNS = (ID, TOWN_CODE, VILLAGE_CODE, NAME, ADDRESS, LON, LAT, DATUM, STATUS)
#: Bookkeeping columns the store sets; imports never take them from a file (``version`` excepted,
#: which an edit round trip may carry for optimistic locking).
SYSTEM_COLUMNS = (VERSION, CREATED_BY, CREATED_AT, UPDATED_BY, UPDATED_AT)

# --- layer attribute columns ---------------------------------------------------------------------
TRAINING_AREA_M2 = "training_area_m2"
BEDS = "beds"
DEVICES = "devices"
INSTRUCTORS = "instructors"
CAPACITY = "capacity"
OPENED_ON = "opened_on"
BUILD_TYPE = "build_type"
CONTRACTOR = "contractor"
PLANNED_COMPLETION = "planned_completion"
AREA_M2 = "area_m2"
ACTIVITIES = "activities"
ID_NUMBER = "id_number"
CERTIFICATE_NUMBER = "certificate_number"
DISABILITY_CATEGORY = "disability_category"
DISABILITY_GRADE = "disability_grade"
PHONE = "phone"
NEEDS = "needs"
LEGAL_BASIS = "legal_basis"
#: The 村（社区） of the row was blank and inferred from its point (the nearest village of its town).
VILLAGE_INFERRED = "village_inferred"
#: Marks a ledger row as a correction (更正=是): it may change the 身份证号 or town of a stored household.
#: Read on import only, never stored.
CORRECTION = "correction"
#: A row counter (序号): never an id, since every town's ledger counts 1, 2, 3 … (ignored on import).
ROW_COUNTER = "row_counter"
#: One column holding both coordinates (经纬度 ``106.2275,29.5912``, as map pickers copy them): read on
#: import into `LON` and `LAT` when the file has neither, never stored.
LON_LAT = "lon_lat"

#: GB 50763-2012 §3.9 survey fields of an accessible toilet, exactly as named in DOMAIN.md §9.
GB50763_FIELDS = (
    "accessible_cubicle_f",
    "accessible_cubicle_m",
    "unisex_accessible_room",
    "room_area_m2",
    "turning_diameter_m",
    "door_clear_width_mm",
    "door_outward_or_emergency_unlock",
    "grab_bar_horizontal",
    "grab_bar_vertical",
    "call_button",
    "accessible_basin",
    "accessible_urinal",
    "step_free_entrance",
    "signage",
    "opening_hours",
    "survey_date",
    "source",
)

# --- codes ---------------------------------------------------------------------------------------
#: CRS of every longitude/latitude the project stores, reads and writes (WGS-84 geographic).
WGS84 = "EPSG:4326"
WGS84_DATUM = "wgs84"
GCJ02_DATUM = "gcj02"
BD09_DATUM = "bd09"
DATUMS = (WGS84_DATUM, GCJ02_DATUM, BD09_DATUM)

FACILITY_STATUSES = ("planned", "open", "closed")
TOILET_STATUSES = ("planned", "under_construction", "completed", "accepted")
HOUSEHOLD_STATUSES = ("surveyed", "approved", "in_progress", "completed", "verified", "declined")

STATUSES = {
    REHAB_STATION: FACILITY_STATUSES,
    SERVICE_CENTRE: FACILITY_STATUSES,
    SPORTS_SITE: FACILITY_STATUSES,
    ACCESSIBLE_TOILET: TOILET_STATUSES,
    HOUSEHOLD: HOUSEHOLD_STATUSES,
}

#: Statuses of facilities that serve people now (open ones; toilets once accepted after their build).
IN_SERVICE_STATUSES = {
    REHAB_STATION: ("open",),
    SERVICE_CENTRE: ("open",),
    SPORTS_SITE: ("open",),
    ACCESSIBLE_TOILET: ("accepted",),
}
#: Statuses of facilities not in service yet: the "after" of a before/after comparison.
PLANNED_STATUSES = {
    REHAB_STATION: ("planned",),
    SERVICE_CENTRE: ("planned",),
    SPORTS_SITE: ("planned",),
    ACCESSIBLE_TOILET: ("planned", "under_construction", "completed"),
}

TOILET_BUILD_TYPES = ("existing", "rebuild", "new")
LEGAL_BASES = ("statutory_duty", "consent")

#: Disability category code (19th certificate digit, DOMAIN.md §6) → Chinese name.
DISABILITY_CATEGORIES = {1: "视力", 2: "听力", 3: "言语", 4: "肢体", 5: "智力", 6: "精神", 7: "多重"}
#: Disability grade code (20th certificate digit): 1 = most severe.
DISABILITY_GRADES = {1: "一级", 2: "二级", 3: "三级", 4: "四级"}

Dtype = Literal["str", "int", "float", "bool", "date", "code"]


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a layer.

    Attributes
    ----------
    name
        Canonical column name.
    dtype
        ``str``, ``int``, ``float``, ``bool``, ``date`` (ISO ``YYYY-MM-DD`` text) or ``code`` (one of
        `choices`, written as text in the ledger, possibly as a Chinese label).
    required
        A value must be present in every row.
    personal
        Personal information (PIPL): encrypted at rest, masked in messages and on screen.
    choices
        Allowed canonical values of a ``code`` column.
    label_zh
        Chinese header used on export templates.
    minimum, maximum
        Smallest and largest plausible value of a number column (`RANGES`), None for no bound.
    """

    name: str
    dtype: Dtype
    required: bool = False
    personal: bool = False
    choices: tuple[object, ...] | None = None
    label_zh: str = ""
    minimum: float | None = None
    maximum: float | None = None

    def out_of_range(self, value: object) -> str | None:
        """Return why ``value`` is outside the column's range (zh-CN, then English), or None if it is inside.

        Missing values and values that are not numbers are left to the type checks (None).
        """
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            return None
        number = float(value)
        if number != number:
            return None
        low, high = self.minimum, self.maximum
        if (low is None or number >= low) and (high is None or number <= high):
            return None
        return range_fix(self, number)


@dataclass(frozen=True)
class Workflow:
    """Allowed statuses of a layer and the allowed changes between them.

    Attributes
    ----------
    statuses
        Canonical status names in workflow order.
    transitions
        Allowed ``(before, after)`` pairs; staying in a status is always allowed.
    labels
        Ledger label (normalised with `normalise_label`) → canonical status.
    """

    statuses: tuple[str, ...]
    transitions: frozenset[tuple[str, str]]
    labels: dict[str, str] = field(hash=False)

    def allows(self, before: str, after: str) -> bool:
        """Return True if a row may change from status `before` to status `after`."""
        return before == after or (before, after) in self.transitions

    def next_statuses(self, before: str) -> tuple[str, ...]:
        """Return the statuses reachable from `before` in one change, in workflow order."""
        return tuple(s for s in self.statuses if (before, s) in self.transitions)


@dataclass(frozen=True)
class LayerSpec:
    """The columns and workflow of one point layer."""

    name: str
    label_zh: str
    columns: tuple[ColumnSpec, ...]
    workflow: Workflow
    public: bool

    @property
    def column_names(self) -> tuple[str, ...]:
        """Canonical column names in order."""
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the columns that need a value in every row."""
        return tuple(c.name for c in self.columns if c.required)

    @property
    def personal(self) -> tuple[str, ...]:
        """Names of the columns holding personal information."""
        return tuple(c.name for c in self.columns if c.personal)

    def column(self, name: str) -> ColumnSpec:
        """Return the spec of column `name`."""
        for c in self.columns:
            if c.name == name:
                return c
        msg = f"Layer {self.name!r} has no column {name!r}; columns: {list(self.column_names)!r}."
        raise KeyError(msg)


def range_fix(column: ColumnSpec, value: float) -> str:
    """Return the message for a number outside ``column``'s range: zh-CN first, English after."""
    low = "" if column.minimum is None else f"{column.minimum:g}"
    high = "" if column.maximum is None else f"{column.maximum:g}"
    label = column.label_zh or column.name
    if column.minimum is not None and column.maximum is not None:
        zh, en = f"应在 {low} 到 {high} 之间", f"must be between {low} and {high}"
    elif column.minimum is not None:
        zh, en = f"不能小于 {low}", f"must be at least {low}"
    else:
        zh, en = f"不能大于 {high}", f"must be at most {high}"
    return f"{label} {zh}，收到 {value:g}：请改正该值 (`{column.name}` {en}; got {value:g}: correct the value)"


def normalise_label(value: object) -> str:
    """Return `value` as a lookup key: NFKC (full-width → half-width), no whitespace, lower case."""
    text = unicodedata.normalize("NFKC", str(value))
    return re.sub(r"\s+", "", text).lower()


def _labels(mapping: dict[str, tuple[str, ...]]) -> dict[str, str]:
    out = {}
    for canonical, labels in mapping.items():
        for label in (canonical, *labels):
            out[normalise_label(label)] = canonical
    return out


def _chain(*statuses: str) -> set[tuple[str, str]]:
    return set(zip(statuses, statuses[1:], strict=False))


FACILITY_WORKFLOW = Workflow(
    statuses=FACILITY_STATUSES,
    transitions=frozenset((a, b) for a in FACILITY_STATUSES for b in FACILITY_STATUSES if a != b),
    labels=_labels(
        {
            "planned": ("规划", "计划", "拟建", "筹建", "待建", "规划中"),
            "open": ("运营", "运营中", "开放", "在用", "已建成", "正常", "运行"),
            "closed": ("关闭", "已关闭", "停用", "撤销", "停运"),
        }
    ),
)
TOILET_WORKFLOW = Workflow(
    statuses=TOILET_STATUSES,
    transitions=frozenset(_chain(*TOILET_STATUSES)),
    labels=_labels(
        {
            "planned": ("规划", "规划中", "计划", "待建", "未开工", "拟建"),
            "under_construction": ("施工中", "在建", "建设中", "改造中", "已开工"),
            "completed": ("已完工", "完工", "竣工", "待验收"),
            "accepted": ("已验收", "验收合格", "验收通过", "已投用"),
        }
    ),
)
HOUSEHOLD_WORKFLOW = Workflow(
    statuses=HOUSEHOLD_STATUSES,
    transitions=frozenset(
        _chain("surveyed", "approved", "in_progress", "completed", "verified")
        | {(s, "declined") for s in ("surveyed", "approved", "in_progress")}
        | {("declined", "surveyed")}
    ),
    labels=_labels(
        {
            "surveyed": ("已摸底", "摸底", "已调查", "待审批", "已登记"),
            "approved": ("已审批", "审批通过", "已批准", "待施工"),
            "in_progress": ("施工中", "改造中", "实施中", "在建"),
            "completed": ("已完工", "完工", "待验收", "已完成改造"),
            "verified": ("已验收", "验收合格", "验收通过"),
            "declined": ("放弃", "已放弃", "不愿改造", "拒绝", "自愿放弃"),
        }
    ),
)

#: Datum label (normalised) → datum name. CGCS2000 differs from WGS-84 by < 1 m (DOMAIN.md §4).
DATUM_LABELS = _labels(
    {
        WGS84_DATUM: (
            "WGS-84",
            "WGS 84",
            "wgs_84",
            "EPSG:4326",
            "4326",
            "GPS",
            "CGCS2000",
            "2000",
            "EPSG:4490",
            "天地图",
            "国家2000",
            "北斗",
        ),
        GCJ02_DATUM: ("GCJ-02", "gcj_02", "gcj", "火星坐标", "高德", "腾讯", "amap", "gaode", "tencent"),
        BD09_DATUM: ("BD-09", "bd_09", "bd09ll", "百度", "baidu"),
    }
)

CATEGORY_LABELS = _labels(
    {str(code): (name, f"{name}残疾", f"{code}类", f"{code}.0") for code, name in DISABILITY_CATEGORIES.items()}
)
GRADE_LABELS = _labels(
    {str(code): (name, name[0], f"{code}级", f"{code}.0", f"{name}残疾") for code, name in DISABILITY_GRADES.items()}
)
BUILD_TYPE_LABELS = _labels(
    {
        "existing": ("现有", "已有", "既有", "存量"),
        "rebuild": ("改建", "改造", "提升改造"),
        "new": ("新建", "新增"),
    }
)
LEGAL_BASIS_LABELS = _labels(
    {
        "statutory_duty": ("法定职责", "履行法定职责", "法定义务", "statutory"),
        "consent": ("同意", "单独同意", "本人同意", "书面同意", "监护人同意"),
    }
)
BOOL_LABELS = {
    **dict.fromkeys(("true", "1", "是", "有", "y", "yes", "√", "✓", "✔", "☑", "t", "具备", "已设置"), True),
    **dict.fromkeys(("false", "0", "否", "无", "没有", "n", "no", "×", "✗", "✘", "☒", "f", "不具备", "未设置"), False),
}

# --- columns -------------------------------------------------------------------------------------


def _common_columns(*, household: bool) -> tuple[ColumnSpec, ...]:
    return (
        ColumnSpec(ID, "str", required=True, label_zh="编号"),
        ColumnSpec(TOWN_CODE, "str", required=True, label_zh="镇街代码"),
        ColumnSpec(VILLAGE_CODE, "str", required=household, label_zh="村（社区）代码"),
        ColumnSpec(NAME, "str", required=True, personal=household, label_zh="姓名" if household else "名称"),
        ColumnSpec(ADDRESS, "str", required=household, personal=household, label_zh="详细地址"),
        ColumnSpec(LON, "float", required=True, label_zh="经度"),
        ColumnSpec(LAT, "float", required=True, label_zh="纬度"),
        ColumnSpec(DATUM, "code", required=True, choices=DATUMS, label_zh="坐标系"),
        ColumnSpec(STATUS, "code", required=True, label_zh="状态"),
        ColumnSpec(VERSION, "int", label_zh="版本"),
    )


_SYNTHETIC_COLUMN = ColumnSpec(SYNTHETIC, "bool", label_zh="合成数据")

#: Plausible range of each number column, (minimum, maximum), None for no bound. The ONE place they are
#: defined: imports (`layers.validate`), the web edit forms (which validate through it) and the store's
#: own updates (`Store.update_feature`, used by the API) all check them. A turning diameter of −5 m or a
#: door 30 m wide is a typing error, not a survey.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "training_area_m2": (0, 100_000),
    "beds": (0, 10_000),
    "devices": (0, 100_000),
    "instructors": (0, 10_000),
    "capacity": (0, 100_000),
    "area_m2": (0, 1_000_000),
    "room_area_m2": (0, 100),
    "turning_diameter_m": (0, 10),
    "door_clear_width_mm": (0, 5_000),
}


def _ranged(column: ColumnSpec) -> ColumnSpec:
    low, high = RANGES.get(column.name, (None, None))
    return dataclasses.replace(column, minimum=low, maximum=high) if column.name in RANGES else column


_GB50763_DTYPES: dict[str, Dtype] = {
    "room_area_m2": "float",
    "turning_diameter_m": "float",
    "door_clear_width_mm": "int",
    "opening_hours": "str",
    "survey_date": "date",
    "source": "str",
}
_GB50763_LABELS_ZH = {
    "accessible_cubicle_f": "女厕无障碍厕位",
    "accessible_cubicle_m": "男厕无障碍厕位",
    "unisex_accessible_room": "无障碍厕所（独立）",
    "room_area_m2": "无障碍厕所面积",
    "turning_diameter_m": "轮椅回转直径",
    "door_clear_width_mm": "门净宽",
    "door_outward_or_emergency_unlock": "门外开或可紧急开启",
    "grab_bar_horizontal": "水平安全抓杆",
    "grab_bar_vertical": "垂直安全抓杆",
    "call_button": "求助呼叫按钮",
    "accessible_basin": "无障碍洗手盆",
    "accessible_urinal": "无障碍小便器",
    "step_free_entrance": "无障碍入口",
    "signage": "无障碍标识",
    "opening_hours": "开放时间",
    "survey_date": "调查日期",
    "source": "数据来源",
}

LAYER_SPECS: dict[str, LayerSpec] = {
    REHAB_STATION: LayerSpec(
        name=REHAB_STATION,
        label_zh=LAYER_LABELS_ZH[REHAB_STATION],
        columns=(
            *_common_columns(household=False),
            ColumnSpec(TRAINING_AREA_M2, "float", label_zh="训练场地面积"),
            ColumnSpec(BEDS, "int", label_zh="床位数"),
            ColumnSpec(DEVICES, "int", label_zh="康复设备数"),
            ColumnSpec(INSTRUCTORS, "int", label_zh="康复指导员数"),
            ColumnSpec(OPENED_ON, "date", label_zh="开放日期"),
            _SYNTHETIC_COLUMN,
        ),
        workflow=FACILITY_WORKFLOW,
        public=True,
    ),
    SERVICE_CENTRE: LayerSpec(
        name=SERVICE_CENTRE,
        label_zh=LAYER_LABELS_ZH[SERVICE_CENTRE],
        columns=(
            *_common_columns(household=False),
            ColumnSpec(CAPACITY, "int", label_zh="服务容量"),
            ColumnSpec(OPENED_ON, "date", label_zh="开放日期"),
            _SYNTHETIC_COLUMN,
        ),
        workflow=FACILITY_WORKFLOW,
        public=True,
    ),
    ACCESSIBLE_TOILET: LayerSpec(
        name=ACCESSIBLE_TOILET,
        label_zh=LAYER_LABELS_ZH[ACCESSIBLE_TOILET],
        columns=(
            *_common_columns(household=False),
            ColumnSpec(BUILD_TYPE, "code", required=True, choices=TOILET_BUILD_TYPES, label_zh="建设类型"),
            ColumnSpec(CONTRACTOR, "str", label_zh="施工单位"),
            ColumnSpec(PLANNED_COMPLETION, "date", label_zh="计划完工日期"),
            *(ColumnSpec(f, _GB50763_DTYPES.get(f, "bool"), label_zh=_GB50763_LABELS_ZH[f]) for f in GB50763_FIELDS),
            _SYNTHETIC_COLUMN,
        ),
        workflow=TOILET_WORKFLOW,
        public=True,
    ),
    SPORTS_SITE: LayerSpec(
        name=SPORTS_SITE,
        label_zh=LAYER_LABELS_ZH[SPORTS_SITE],
        columns=(
            *_common_columns(household=False),
            ColumnSpec(AREA_M2, "float", label_zh="场地面积"),
            ColumnSpec(ACTIVITIES, "str", label_zh="活动项目"),
            ColumnSpec(OPENED_ON, "date", label_zh="开放日期"),
            _SYNTHETIC_COLUMN,
        ),
        workflow=FACILITY_WORKFLOW,
        public=True,
    ),
    HOUSEHOLD: LayerSpec(
        name=HOUSEHOLD,
        label_zh=LAYER_LABELS_ZH[HOUSEHOLD],
        columns=(
            *_common_columns(household=True),
            ColumnSpec(ID_NUMBER, "str", required=True, personal=True, label_zh="身份证号"),
            ColumnSpec(CERTIFICATE_NUMBER, "str", required=True, personal=True, label_zh="残疾人证号"),
            ColumnSpec(
                DISABILITY_CATEGORY,
                "code",
                required=True,
                choices=tuple(DISABILITY_CATEGORIES),
                label_zh="残疾类别",
            ),
            ColumnSpec(DISABILITY_GRADE, "code", required=True, choices=tuple(DISABILITY_GRADES), label_zh="残疾等级"),
            ColumnSpec(PHONE, "str", personal=True, label_zh="联系电话"),
            ColumnSpec(NEEDS, "str", label_zh="改造需求"),
            ColumnSpec(LEGAL_BASIS, "code", required=True, choices=LEGAL_BASES, label_zh="处理依据"),
            ColumnSpec(VILLAGE_INFERRED, "bool", label_zh="村（社区）为推断"),
            _SYNTHETIC_COLUMN,
        ),
        workflow=HOUSEHOLD_WORKFLOW,
        public=False,
    ),
}

LAYER_SPECS = {
    name: dataclasses.replace(spec, columns=tuple(map(_ranged, spec.columns))) for name, spec in LAYER_SPECS.items()
}
WORKFLOWS = {name: spec.workflow for name, spec in LAYER_SPECS.items()}
#: Personal columns per layer (PIPL): never in logs, URLs, file names or public outputs.
PERSONAL_COLUMNS = {name: spec.personal for name, spec in LAYER_SPECS.items()}


def layer_spec(layer: str) -> LayerSpec:
    """Return the spec of `layer`.

    Raises
    ------
    ValueError
        If `layer` is not one of `ALL_LAYERS`.
    """
    try:
        return LAYER_SPECS[layer]
    except KeyError:
        msg = f"`layer` must be one of {list(ALL_LAYERS)!r}; got {layer!r}."
        raise ValueError(msg) from None


# --- header aliases ------------------------------------------------------------------------------

#: Canonical column → header aliases, highest priority first. When two headers of one file map to
#: the same column, the one listed first here wins and the other is ignored. 序号 is a row counter
#: (`ROW_COUNTER`), never an id: a household ledger without an id column is matched by 身份证号.
#: Shapefile short names (≤ 10 characters) are listed too.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    ID: ("id", "编号", "ID", "唯一编号", "户编号", "设施编号"),
    ROW_COUNTER: ("row_counter", "row_no", "序号", "行号"),
    CORRECTION: ("correction", "更正", "是否更正", "更正标记"),
    VILLAGE_INFERRED: ("village_inferred", "vill_inf", "村（社区）为推断"),
    TOWN_CODE: (
        "town_code",
        "镇街代码",
        "镇街编码",
        "town",
        "镇街",
        "镇（街道）",
        "镇(街)",
        "街镇",
        "乡镇",
        "乡镇（街道）",
        "所属镇街",
        "镇街名称",
        "所在镇街",
        "所在街镇",
        "所在乡镇",
        "所属街镇",
        "所属乡镇",
        "乡镇街道",
        "所在镇（街道）",
    ),
    VILLAGE_CODE: (
        "village_code",
        "vill_code",
        "村（社区）代码",
        "村社区代码",
        "village",
        "村（社区）",
        "村(居)",
        "村社区",
        "村居",
        "社区",
        "村",
        "所属村（社区）",
        "所在村（社区）",
        "所在村",
        "所在社区",
        "所属村",
        "所属社区",
        "村（居）委会",
        "村居委会",
        "村（社区）名称",
    ),
    NAME: (
        "name",
        "姓名",
        "名称",
        "户主姓名",
        "残疾人姓名",
        "设施名称",
        "站点名称",
        "公厕名称",
        "厕所名称",
        "点位名称",
    ),
    ADDRESS: (
        "address",
        "详细地址",
        "地址",
        "家庭住址",
        "住址",
        "现居住地址",
        "现住址",
        "居住地址",
        "现居住地",
        "具体地址",
        "详细位置",
        "具体位置",
        "所在位置",
    ),  # fmt: skip
    LON: ("lon", "经度", "longitude", "lng", "x", "东经"),
    LON_LAT: ("lon_lat", "经纬度", "经纬度坐标", "坐标", "坐标位置", "位置坐标", "lnglat", "lonlat", "coordinates"),
    LAT: ("lat", "纬度", "latitude", "y", "北纬"),
    DATUM: ("datum", "坐标系", "坐标系统", "crs", "坐标类型"),
    SOURCE_DATUM: ("source_datum", "src_datum", "原始坐标系"),
    STATUS: ("status", "状态", "改造状态", "建设状态", "运营状态", "进度"),
    VERSION: ("version", "版本"),
    CREATED_BY: ("created_by", "创建人"),
    CREATED_AT: ("created_at", "创建时间"),
    UPDATED_BY: ("updated_by", "更新人", "修改人"),
    UPDATED_AT: ("updated_at", "更新时间", "修改时间"),
    SYNTHETIC: ("synthetic", "合成数据"),
    TRAINING_AREA_M2: ("training_area_m2", "train_m2", "训练场地面积", "训练面积"),
    BEDS: ("beds", "床位数", "床位"),
    DEVICES: ("devices", "康复设备数", "设备数"),
    INSTRUCTORS: ("instructors", "instruct", "康复指导员数", "康复指导员"),
    CAPACITY: ("capacity", "服务容量", "容量"),
    OPENED_ON: ("opened_on", "开放日期", "投用日期", "建成日期"),
    BUILD_TYPE: ("build_type", "建设类型", "改建/新建", "类型"),
    CONTRACTOR: ("contractor", "施工单位"),
    PLANNED_COMPLETION: ("planned_completion", "plan_done", "计划完工日期", "计划完成时间", "计划完工时间"),
    AREA_M2: ("area_m2", "场地面积", "面积"),
    ACTIVITIES: ("activities", "activity", "活动项目"),
    ID_NUMBER: ("id_number", "id_no", "身份证号", "身份证号码", "公民身份号码", "身份证"),
    CERTIFICATE_NUMBER: ("certificate_number", "cert_no", "残疾人证号", "残疾证号", "残疾人证号码", "残疾证号码"),
    DISABILITY_CATEGORY: ("disability_category", "dis_cat", "残疾类别", "残疾类型"),
    DISABILITY_GRADE: ("disability_grade", "dis_grade", "残疾等级", "残疾级别"),
    PHONE: ("phone", "联系电话", "电话", "手机", "手机号", "手机号码", "联系方式"),
    NEEDS: ("needs", "改造需求", "需求", "改造内容"),
    LEGAL_BASIS: ("legal_basis", "legal_bas", "处理依据", "法律依据", "同意情况"),
    "accessible_cubicle_f": ("accessible_cubicle_f", "cubicle_f", "女厕无障碍厕位"),
    "accessible_cubicle_m": ("accessible_cubicle_m", "cubicle_m", "男厕无障碍厕位"),
    "unisex_accessible_room": (
        "unisex_accessible_room",
        "unisex_rm",
        "无障碍厕所（独立）",
        "独立无障碍厕所",
        "第三卫生间",
    ),
    "room_area_m2": ("room_area_m2", "room_m2", "无障碍厕所面积"),
    "turning_diameter_m": ("turning_diameter_m", "turn_dia_m", "轮椅回转直径", "回转直径"),
    "door_clear_width_mm": ("door_clear_width_mm", "door_w_mm", "门净宽", "门净宽（mm）"),
    "door_outward_or_emergency_unlock": ("door_outward_or_emergency_unlock", "door_open", "门外开或可紧急开启"),
    "grab_bar_horizontal": ("grab_bar_horizontal", "grab_h", "水平安全抓杆", "水平抓杆"),
    "grab_bar_vertical": ("grab_bar_vertical", "grab_v", "垂直安全抓杆", "垂直抓杆"),
    "call_button": ("call_button", "call_btn", "求助呼叫按钮", "呼叫按钮"),
    "accessible_basin": ("accessible_basin", "basin", "无障碍洗手盆"),
    "accessible_urinal": ("accessible_urinal", "urinal", "无障碍小便器"),
    "step_free_entrance": ("step_free_entrance", "step_free", "无障碍入口", "无台阶入口"),
    "signage": ("signage", "无障碍标识", "标识"),
    "opening_hours": ("opening_hours", "open_hours", "开放时间"),
    "survey_date": ("survey_date", "survey_dt", "调查日期", "核查日期"),
    "source": ("source", "数据来源", "来源"),
}

#: Shapefile field names (≤ 10 characters) for canonical columns longer than that.
SHAPEFILE_NAMES = {
    canonical: next(a for a in aliases if len(a) <= 10 and a.isascii())
    for canonical, aliases in HEADER_ALIASES.items()
    if len(canonical) > 10
}


def _normalise_header(header: object) -> str:
    key = normalise_label(header)
    return key.strip("*:：")


def _alias_index() -> dict[str, tuple[str, int]]:
    index: dict[str, tuple[str, int]] = {}
    for canonical, aliases in HEADER_ALIASES.items():
        for priority, alias in enumerate(aliases):
            key = _normalise_header(alias)
            if key in index and index[key][0] != canonical:
                msg = f"Header alias {alias!r} maps to both {index[key][0]!r} and {canonical!r}."
                raise AssertionError(msg)
            index.setdefault(key, (canonical, priority))
    return index


_ALIAS_INDEX = _alias_index()


def canonical_column(header: object) -> str | None:
    """Return the canonical column a spreadsheet header stands for, or None if it is not known.

    Matching ignores whitespace, case, full-/half-width forms, a leading ``*`` (required-field mark
    in templates) and, when the whole header is not known, any parenthesised part (``面积(平方米)``).
    """
    found = alias_priority(header)
    return None if found is None else found[0]


def alias_priority(header: object) -> tuple[str, int] | None:
    """Return ``(canonical column, priority)`` for a header (0 = preferred alias), or None."""
    if header is None:
        return None
    key = _normalise_header(header)
    if key in _ALIAS_INDEX:
        return _ALIAS_INDEX[key]
    stripped = re.sub(r"\([^)]*\)", "", key)
    return _ALIAS_INDEX.get(stripped) if stripped else None
