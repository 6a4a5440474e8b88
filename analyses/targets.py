"""Compare the plan's targets and tasks with what the layers show on a given date.

The plan tables come from ``data/<district>/plan/`` (`layers.plan`); the layers are plain frames such
as `layers.store.Store.features` returns. Nothing here reads the store or draws; `targets_report`
is pure and returns a frozen `TargetsReport` whose `TargetsReport.to_dict` has stable snake_case keys.

Rules (every number in the report follows one of these; nothing is estimated):

* **State of a layer.** The frames are taken as the state of the layers on ``on``: statuses are what
  the rows say now. The only dated attribute used is ``opened_on`` of facilities: a facility counts as
  open on ``on`` when its status is ``open`` and ``opened_on`` is empty or not after ``on``.
* **Key projects** (``key_projects.csv``): ``achieved`` is the number of open facilities for
  ``service_centre``, ``sports_site`` and ``rehab_station``; the number of ``accepted`` toilets of the
  row's ``build_type`` (``existing`` toilets never count) for ``accessible_toilet``. Rows with no layer,
  and the ``household`` row (demonstration villages: no layer records which village is designated),
  are ``not_tracked`` with ``achieved`` None. Status: ``met`` when achieved ≥ target, else ``behind``
  up to 31 December of ``target_year`` and ``missed`` after it.
* **Home modification** (专栏1 indicator “…无障碍改造覆盖率”, target 100 %): every household row is a
  household identified as needing modification; ``declined`` ones are counted apart and leave the
  denominator. ``in_need`` = households not declined; ``modified`` = ``completed`` + ``verified``;
  ``share`` = modified / in_need (None when nobody is in need). ``verified_share`` is the stricter
  variant (acceptance passed).
* **Demonstration villages**: not tracked. As a lead for the planner, ``candidates`` lists villages
  whose households in need (at least ``min_village_households``) are all ``verified``; candidates
  are not counted towards the target.
* **Indicators** (专栏1): only indicators a layer can measure get a value (today: home-modification
  coverage, matched on its Chinese name); the others are ``not_measured``. Status for a measured one:
  ``met`` when the value reaches the target (``=``: value ≥ target; ``>``: value > target), else
  ``behind``/``missed`` as for key projects.
* **Plan tasks** (``tasks.csv``, no dates of their own): the window is the plan's horizon
  ``plan_years`` (1 January of the first year to 31 December of the last). A task is ``done`` only when
  it is linked to key projects (``key_projects.task_no``) and every one of them is ``met``; otherwise
  ``not_started`` before the window, ``due`` inside it, ``overdue`` after it.
* **惠残2020 sub-items** (``huican2020_tasks.csv``): the window runs from the 1st of ``start_month`` to
  the last day of ``end_month`` of ``year``: ``not_started`` before, ``due`` inside, ``overdue`` after.
  No layer records their completion, so none is ever ``done``: ``overdue`` means "window passed, no
  completion recorded". Sub-items without months (``unscheduled``/``blank``) are ``unscheduled``.

Household counts per town and village are for staff; public outputs must suppress counts below 5
(ARCHITECTURE.md §4) before showing them.
"""

from __future__ import annotations

import calendar
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from analyses.inputs import file_sha256, layer_version
from layers import plan, schema

if TYPE_CHECKING:
    from layers.store import Store

logger = logging.getLogger(__name__)

#: Years of the Bishan 14th five-year plan (重庆市璧山区“十四五”残疾人保障和发展规划（2021—2025年）).
BISHAN_PLAN_YEARS = (2021, 2025)
#: Plan files hashed into `DataVersion.plan_files`, in this order.
PLAN_FILES = (plan.INDICATORS_FILE, plan.KEY_PROJECTS_FILE, plan.TASKS_FILE, plan.HUICAN_TASKS_FILE)

# statuses of targets and tasks
MET = "met"
BEHIND = "behind"
MISSED = "missed"
NOT_TRACKED = "not_tracked"
NOT_MEASURED = "not_measured"
NO_DATA = "no_data"
DONE = "done"
NOT_STARTED = "not_started"
DUE = "due"
OVERDUE = "overdue"
UNSCHEDULED = "unscheduled"

#: Status a facility must have to count as open, a toilet to count as built, by layer.
_ACHIEVED_STATUS = {
    schema.SERVICE_CENTRE: "open",
    schema.SPORTS_SITE: "open",
    schema.REHAB_STATION: "open",
    schema.ACCESSIBLE_TOILET: "accepted",
}
#: Toilet statuses before acceptance, counted per build type next to ``accepted``.
_TOILET_PIPELINE = tuple(s for s in schema.TOILET_STATUSES if s != "accepted")
_FACILITY_LAYERS = (schema.SERVICE_CENTRE, schema.SPORTS_SITE, schema.REHAB_STATION)
#: Households whose modification work is done (completed, or completed and accepted).
_MODIFIED = ("completed", "verified")
_NOT_STARTED_HOUSEHOLD = ("surveyed", "approved")
#: 专栏1 indicators a layer measures: a fragment of ``name_zh`` → measure key.
_MEASURED_INDICATORS = {"无障碍改造覆盖率": "home_modification_coverage"}
_LAYERS_NEEDED = (schema.ACCESSIBLE_TOILET, schema.SERVICE_CENTRE, schema.SPORTS_SITE, schema.HOUSEHOLD)
_TOWN_NAME = "town_name"
_MAX_LISTED = 10


# ---- result objects -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DataVersion:
    """What produced a report: plan files with their SHA-256 and the state of each layer frame.

    Attributes
    ----------
    plan_files
        File name → SHA-256 hex digest; empty when the tables were passed without their files.
    layer_rows
        Layer → number of rows in its frame.
    layer_updated_at
        Layer → latest ``updated_at`` (ISO 8601) in its frame, None when the frame has no such column
        or no rows.
    """

    plan_files: Mapping[str, str]
    layer_rows: Mapping[str, int]
    layer_updated_at: Mapping[str, str | None]

    def to_dict(self) -> dict[str, Any]:
        """Return the version as JSON-ready values."""
        return {
            "plan_files": dict(self.plan_files),
            "layers": {
                layer: {"rows": self.layer_rows[layer], "max_updated_at": self.layer_updated_at[layer]}
                for layer in self.layer_rows
            },
        }


@dataclass(frozen=True, eq=False)
class PlanTables:
    """The four validated plan tables and the SHA-256 of the files they were read from.

    Build it with `load_plan_tables`, or directly from frames (then ``files`` may stay empty).
    """

    indicators: pd.DataFrame
    key_projects: pd.DataFrame
    tasks: pd.DataFrame
    huican_tasks: pd.DataFrame
    files: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class ToiletProgress:
    """Accessible toilets accepted against the 改建 + 新建 targets.

    Attributes
    ----------
    target, accepted, share, status
        Totals over the build types with a target (e.g. 38 = 19 rebuild + 19 new).
    by_build_type
        One row per build type with a target: ``build_type``, ``target``, ``accepted``, ``share``,
        ``status``, and the count of toilets not yet accepted per status (``planned``,
        ``under_construction``, ``completed``).
    by_town
        One row per town: ``town_code``, ``town_name``, then ``<build_type>_accepted`` and
        ``<build_type>_total`` (all statuses) for each build type with a target.
    existing
        Toilets of ``build_type`` ``existing`` (surveyed, outside the programme; not counted).
    """

    target: int
    accepted: int
    share: float | None
    status: str
    by_build_type: pd.DataFrame
    by_town: pd.DataFrame
    existing: int


@dataclass(frozen=True, eq=False)
class FacilityProgress:
    """Open facilities of one layer against the plan's count.

    Attributes
    ----------
    layer
        Layer name (``service_centre``, ``sports_site``).
    target
        Target count, None when the plan sets none for the layer.
    open
        Facilities open on the report date.
    share, status
        ``open / target`` and met/behind/missed (``not_tracked`` without a target).
    by_town
        One row per town: ``town_code``, ``town_name``, ``open``, ``planned``, ``closed`` (``planned``
        includes open rows whose ``opened_on`` is after the report date).
    towns_without
        Names of the towns with no open facility, in the towns table's order.
    """

    layer: str
    target: int | None
    open: int
    share: float | None
    status: str
    by_town: pd.DataFrame
    towns_without: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class HomeModification:
    """Coverage of home modification (无障碍改造) among households in need.

    Attributes
    ----------
    target_share
        Target as a share (1.0 for 100 %), None when no indicator gives one.
    households, declined, in_need, not_started, in_progress, modified, verified
        Counts; ``in_need`` = households − declined; ``not_started`` = surveyed + approved;
        ``modified`` = completed + verified.
    share, verified_share
        ``modified / in_need`` and ``verified / in_need``; None when ``in_need`` is 0.
    status
        met/behind/missed against ``target_share``; ``no_data`` without households in need.
    by_town
        The same counts and shares per town (``town_code``, ``town_name`` first).
    """

    target_share: float | None
    households: int
    declined: int
    in_need: int
    not_started: int
    in_progress: int
    modified: int
    verified: int
    share: float | None
    verified_share: float | None
    status: str
    by_town: pd.DataFrame


@dataclass(frozen=True, eq=False)
class DemonstrationVillages:
    """Home-modification demonstration villages: a designation no layer records.

    Attributes
    ----------
    target
        Target count from the plan (None when the plan has no such row).
    status
        Always ``not_tracked``; ``achieved`` is never estimated.
    note
        Why the count is not measured.
    candidates
        Villages whose households in need are all verified: ``village_code``, ``village_name`` (None
        without a villages table), ``town_code``, ``town_name``, ``households_in_need``, ``declined``;
        most households first.
    """

    target: int | None
    status: str
    note: str
    candidates: pd.DataFrame


@dataclass(frozen=True, eq=False)
class TargetsReport:
    """The plan's targets and tasks against the layers on one date.

    Attributes
    ----------
    on
        The report date.
    plan_years
        First and last year of the plan (the window of the plan tasks).
    key_projects
        One row per ``key_projects.csv`` row: ``project_no``, ``project_zh``, ``project_en``,
        ``layer``, ``build_type``, ``target``, ``achieved``, ``share``, ``status``, ``unit``,
        ``target_year``, ``task_no``, ``section``, ``quote``, ``source``.
    toilets, service_centres, sports_sites, home_modification, demonstration_villages
        Details per target (see each class).
    indicators
        One row per 专栏1 indicator: ``indicator_no``, ``name_zh``, ``name_en``, ``unit``,
        ``target_text``, ``target_operator``, ``target_value``, ``nature``, ``target_year``,
        ``measured``, ``measured_by``, ``value``, ``status``.
    plan_tasks
        One row per ``tasks.csv`` task: ``task_no``, ``task_text``, ``lead_units``,
        ``responsible_units``, ``start``, ``end``, ``key_projects`` (linked ``project_no`` tuple),
        ``status``, ``status_basis`` (``layers`` or ``dates``).
    huican_tasks
        One row per 惠残2020 sub-item: ``item_no``, ``item_name``, ``sub_item_no``, ``content``,
        ``time_limit_text``, ``window_kind``, ``start``, ``end``, ``status``, ``days_to_end``
        (negative when overdue; None when unscheduled), ``responsible_units``.
    data_version
        Plan files and layer state that produced the report.
    """

    on: date
    plan_years: tuple[int, int]
    key_projects: pd.DataFrame
    toilets: ToiletProgress
    service_centres: FacilityProgress
    sports_sites: FacilityProgress
    home_modification: HomeModification
    demonstration_villages: DemonstrationVillages
    indicators: pd.DataFrame
    plan_tasks: pd.DataFrame
    huican_tasks: pd.DataFrame
    data_version: DataVersion

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready dicts and lists (dates as ISO text, missing as None)."""
        t, hm, dv = self.toilets, self.home_modification, self.demonstration_villages
        return {
            "on": self.on.isoformat(),
            "plan_years": list(self.plan_years),
            "key_projects": _records(self.key_projects),
            "toilets": {
                "target": t.target,
                "accepted": t.accepted,
                "share": t.share,
                "status": t.status,
                "existing": t.existing,
                "by_build_type": _records(t.by_build_type),
                "by_town": _records(t.by_town),
            },
            "service_centres": _facility_dict(self.service_centres),
            "sports_sites": _facility_dict(self.sports_sites),
            "home_modification": {
                "target_share": hm.target_share,
                "households": hm.households,
                "declined": hm.declined,
                "in_need": hm.in_need,
                "not_started": hm.not_started,
                "in_progress": hm.in_progress,
                "modified": hm.modified,
                "verified": hm.verified,
                "share": hm.share,
                "verified_share": hm.verified_share,
                "status": hm.status,
                "by_town": _records(hm.by_town),
            },
            "demonstration_villages": {
                "target": dv.target,
                "achieved": None,
                "status": dv.status,
                "note": dv.note,
                "candidates": _records(dv.candidates),
            },
            "indicators": _records(self.indicators),
            "plan_tasks": _records(self.plan_tasks),
            "huican_tasks": _records(self.huican_tasks),
            "task_summary": {
                "plan_tasks": _status_counts(self.plan_tasks),
                "huican_tasks": _status_counts(self.huican_tasks),
            },
            "data_version": self.data_version.to_dict(),
        }


# ---- public functions ---------------------------------------------------------------------------


def load_plan_tables(plan_dir: str | Path, *, plan_year: int | None = None) -> PlanTables:
    """Load and validate the plan tables of ``plan_dir`` and hash their files.

    A district holds only the tables it has: an absent file reads as an empty table (`layers.plan.empty_table`)
    and is left out of ``files``.

    Parameters
    ----------
    plan_dir
        The district's plan folder (``District.plan_dir``).
    plan_year
        The district's plan year (``District.plan_year``): the 惠残 sub-items' month windows are moved
        into it (`layers.plan.roll_to_year`); None keeps each row's own ``year``.

    Returns
    -------
    PlanTables
        The tables as `layers.plan` loads them, with file name → SHA-256.

    Raises
    ------
    layers.errors.PlanDataError
        If a file holds invalid rows (see `layers.plan`).
    """
    plan_dir = Path(plan_dir)
    loaders = {
        plan.INDICATORS_FILE: plan.load_indicators,
        plan.KEY_PROJECTS_FILE: plan.load_key_projects,
        plan.TASKS_FILE: plan.load_tasks,
        plan.HUICAN_TASKS_FILE: plan.load_huican_tasks,
    }
    present = [name for name in PLAN_FILES if (plan_dir / name).is_file()]
    frames = {name: loaders[name](plan_dir) if name in present else plan.empty_table(name) for name in PLAN_FILES}
    huican = frames[plan.HUICAN_TASKS_FILE]
    return PlanTables(
        indicators=frames[plan.INDICATORS_FILE],
        key_projects=frames[plan.KEY_PROJECTS_FILE],
        tasks=frames[plan.TASKS_FILE],
        huican_tasks=huican if plan_year is None else plan.roll_to_year(huican, plan_year),
        files={name: file_sha256(plan_dir / name) for name in present},
    )


def targets_report(
    layers: Mapping[str, pd.DataFrame],
    plan_tables: PlanTables,
    towns: pd.DataFrame,
    *,
    on: date,
    plan_years: tuple[int, int] = BISHAN_PLAN_YEARS,
    villages: pd.DataFrame | None = None,
    min_village_households: int = 1,
) -> TargetsReport:
    """Compare the plan's targets and tasks with the layers on date ``on``.

    See the module docstring for every counting rule.

    Parameters
    ----------
    layers
        Layer name → frame with at least ``id``, ``town_code``, ``status`` (``village_code`` for
        households, ``build_type`` for toilets; ``opened_on`` ISO dates optional for facilities;
        ``updated_at`` optional). Needs ``accessible_toilet``, ``service_centre``, ``sports_site`` and
        ``household``; an empty frame means "no rows", a missing key is an error.
    plan_tables
        The plan tables (`load_plan_tables`).
    towns
        The district's towns: ``town_code`` and ``name`` (``District.towns``).
    on
        The report date.
    plan_years
        First and last year of the plan: the window of the plan tasks.
    villages
        Optional villages table (``village_code``, ``name``) to name demonstration-village candidates.
    min_village_households
        Least number of households in need for a village to be a demonstration-village candidate.

    Returns
    -------
    TargetsReport
        Frozen; tables keyed by plan numbers, town and village codes.

    Raises
    ------
    TypeError
        If ``on`` is not a date.
    KeyError
        If a needed layer is missing from ``layers``.
    ValueError
        If a needed column is missing, a status is not in its layer's workflow, a row names a town
        not in ``towns``, ``opened_on`` is not an ISO date, or ``plan_years`` is not ordered.
    """
    on = _check_date(on)
    first, last = plan_years
    if first > last:
        msg = f"`plan_years` must be (first, last) with first ≤ last; got {plan_years!r}."
        raise ValueError(msg)
    frames = _checked_layers(layers, towns)
    town_names = _town_names(towns)

    open_flags = {layer: _open_on(frames[layer], layer, on) for layer in _FACILITY_LAYERS if layer in frames}
    key_projects = _key_project_rows(plan_tables.key_projects, frames, open_flags, on)
    indicators_target = _coverage_target(plan_tables.indicators)
    home = _home_modification(frames[schema.HOUSEHOLD], town_names, indicators_target, on)
    report = TargetsReport(
        on=on,
        plan_years=(first, last),
        key_projects=key_projects,
        toilets=_toilets(frames[schema.ACCESSIBLE_TOILET], plan_tables.key_projects, town_names, on),
        service_centres=_facility(schema.SERVICE_CENTRE, frames, open_flags, plan_tables.key_projects, town_names, on),
        sports_sites=_facility(schema.SPORTS_SITE, frames, open_flags, plan_tables.key_projects, town_names, on),
        home_modification=home,
        demonstration_villages=_demonstration_villages(
            frames[schema.HOUSEHOLD], plan_tables.key_projects, town_names, villages, min_village_households
        ),
        indicators=_indicator_rows(plan_tables.indicators, home, on),
        plan_tasks=_plan_task_rows(plan_tables.tasks, key_projects, on, (first, last)),
        huican_tasks=_huican_rows(plan_tables.huican_tasks, on),
        data_version=_data_version(layers, plan_tables.files),
    )
    logger.info(
        "Targets on %s: %d key projects, %d plan tasks, %d 惠残2020 sub-items",
        on.isoformat(),
        len(report.key_projects),
        len(report.plan_tasks),
        len(report.huican_tasks),
    )
    return report


def targets_report_from_store(
    store: Store,
    plan_dir: str | Path,
    towns: pd.DataFrame,
    *,
    on: date,
    plan_years: tuple[int, int] = BISHAN_PLAN_YEARS,
    villages: pd.DataFrame | None = None,
    min_village_households: int = 1,
    plan_year: int | None = None,
) -> TargetsReport:
    """Read every layer from ``store`` and the plan from ``plan_dir``, then run `targets_report`.

    Parameters
    ----------
    store
        The layer store (`layers.store.Store`); households come without personal fields.
    plan_dir
        The district's plan folder (``District.plan_dir``).
    towns, on, plan_years, villages, min_village_households
        As in `targets_report`.
    plan_year
        The district's plan year (``District.plan_year``), as in `load_plan_tables`.

    Returns
    -------
    TargetsReport
        As `targets_report`, with the plan files' SHA-256 in ``data_version``.
    """
    layers = {layer: store.features(layer) for layer in schema.ALL_LAYERS}
    return targets_report(
        layers,
        load_plan_tables(plan_dir, plan_year=plan_year),
        towns,
        on=on,
        plan_years=plan_years,
        villages=villages,
        min_village_households=min_village_households,
    )


def toilet_progress(
    toilets: pd.DataFrame, *, district_towns: pd.DataFrame, plan_dir: str | Path, on: date | None = None
) -> ToiletProgress:
    """Return the toilets' progress against the plan's targets on ``on`` (today when None).

    Parameters
    ----------
    toilets
        Every accessible-toilet row (``id``, ``town_code``, ``status``, ``build_type``).
    district_towns
        The district's towns (``town_code``, ``name``).
    plan_dir
        The district's plan folder (``key_projects.csv`` holds the 19 + 19).
    on
        The day of the report.

    Returns
    -------
    ToiletProgress
        Accepted builds per build type and per town.
    """
    empty = pd.DataFrame(columns=[schema.ID, schema.TOWN_CODE, schema.VILLAGE_CODE, schema.STATUS])
    layers = {
        schema.ACCESSIBLE_TOILET: toilets,
        schema.SERVICE_CENTRE: empty,
        schema.SPORTS_SITE: empty,
        schema.HOUSEHOLD: empty,
    }
    report = targets_report(layers, load_plan_tables(plan_dir), district_towns, on=on or date.today())
    return report.toilets


def window_status(start: date | None, end: date | None, on: date, *, done: bool = False) -> str:
    """Return the status of a task window on date ``on``.

    Parameters
    ----------
    start, end
        First and last day of the window (inclusive); both None for a task with no dates.
    on
        The date to judge.
    done
        The task's completion is recorded.

    Returns
    -------
    str
        ``done`` when done; ``unscheduled`` without dates; else ``not_started`` (before ``start``),
        ``due`` (``start`` ≤ ``on`` ≤ ``end``) or ``overdue`` (after ``end``).
    """
    if done:
        return DONE
    if start is None or end is None:
        return UNSCHEDULED
    if on < start:
        return NOT_STARTED
    if on <= end:
        return DUE
    return OVERDUE


def target_status(achieved: float | None, target: float | None, deadline: date, on: date) -> str:
    """Return ``met``, ``behind`` (before or on ``deadline``), ``missed`` (after it) or ``not_tracked``.

    ``not_tracked`` when ``achieved`` or ``target`` is None; ``met`` when ``achieved >= target``.
    """
    if achieved is None or target is None:
        return NOT_TRACKED
    if achieved >= target:
        return MET
    return BEHIND if on <= deadline else MISSED


# ---- private workers ----------------------------------------------------------------------------


def _check_date(on: object) -> date:
    if isinstance(on, datetime):
        return on.date()
    if not isinstance(on, date):
        msg = f"`on` must be a datetime.date such as date(2024, 6, 30); got {on!r}."
        raise TypeError(msg)
    return on


def _checked_layers(layers: Mapping[str, pd.DataFrame], towns: pd.DataFrame) -> dict[str, pd.DataFrame]:
    missing = [layer for layer in _LAYERS_NEEDED if layer not in layers]
    if missing:
        msg = (
            f"`layers` is missing {missing!r}; got {sorted(layers)!r}. Pass every layer, an empty frame "
            f"for a layer without rows (e.g. `store.features(layer)`)."
        )
        raise KeyError(msg)
    for col in (schema.TOWN_CODE, schema.NAME):
        if col not in towns.columns:
            msg = f"`towns` needs column `{col}`; got {list(towns.columns)!r}. Pass `District.towns`."
            raise ValueError(msg)
    known_towns = set(towns[schema.TOWN_CODE].astype(str))
    frames = {}
    for layer, df in layers.items():
        if layer not in schema.STATUSES:
            continue
        needed = [schema.ID, schema.TOWN_CODE, schema.STATUS]
        needed += [schema.VILLAGE_CODE] if layer == schema.HOUSEHOLD else []
        needed += [schema.BUILD_TYPE] if layer == schema.ACCESSIBLE_TOILET else []
        absent = [c for c in needed if c not in df.columns]
        if absent:
            msg = f"`layers[{layer!r}]` is missing column(s) {absent!r}; got {list(df.columns)!r}."
            raise ValueError(msg)
        bad = ~df[schema.STATUS].isin(schema.STATUSES[layer])
        if bad.any():
            msg = (
                f"`layers[{layer!r}]` column `status` must be one of {list(schema.STATUSES[layer])!r}; got "
                f"{sorted(set(df.loc[bad, schema.STATUS].astype(str)))!r} in ids {_ids(df, bad)!r}."
            )
            raise ValueError(msg)
        unknown = ~df[schema.TOWN_CODE].astype(str).isin(known_towns)
        if unknown.any():
            msg = (
                f"`layers[{layer!r}]` column `town_code` must be a town of `towns`; got "
                f"{sorted(set(df.loc[unknown, schema.TOWN_CODE].astype(str)))!r} in ids {_ids(df, unknown)!r}. "
                f"Fix the rows or pass the district's towns."
            )
            raise ValueError(msg)
        if layer == schema.ACCESSIBLE_TOILET:
            bad = ~df[schema.BUILD_TYPE].isin(schema.TOILET_BUILD_TYPES)
            if bad.any():
                msg = (
                    f"`layers['accessible_toilet']` column `build_type` must be one of "
                    f"{list(schema.TOILET_BUILD_TYPES)!r}; got "
                    f"{sorted(set(df.loc[bad, schema.BUILD_TYPE].astype(str)))!r} in ids {_ids(df, bad)!r}."
                )
                raise ValueError(msg)
        frames[layer] = pd.DataFrame(df).assign(**{schema.TOWN_CODE: df[schema.TOWN_CODE].astype(str)})
    return frames


def _ids(df: pd.DataFrame, mask: pd.Series) -> list[str]:
    return [str(i) for i in df.loc[mask, schema.ID].head(_MAX_LISTED)]


def _town_names(towns: pd.DataFrame) -> pd.Series:
    names = pd.Series(towns[schema.NAME].astype(str).to_numpy(), index=towns[schema.TOWN_CODE].astype(str))
    names.index.name = schema.TOWN_CODE
    return names


def _open_on(df: pd.DataFrame, layer: str, on: date) -> pd.Series:
    """Return True for rows open on ``on``: status open and ``opened_on`` empty or not after ``on``."""
    is_open = df[schema.STATUS] == "open"
    if schema.OPENED_ON not in df.columns:
        return is_open
    opened = []
    for fid, value in zip(df[schema.ID], df[schema.OPENED_ON], strict=True):
        if pd.isna(value) or value == "":
            opened.append(None)
            continue
        try:
            opened.append(value if isinstance(value, date) else date.fromisoformat(str(value)[:10]))
        except ValueError:
            rule = "must be an ISO date (YYYY-MM-DD)"
            msg = f"`layers[{layer!r}]` column `opened_on` {rule}; got {value!r} in id {fid!r}."
            raise ValueError(msg) from None
    not_yet = pd.Series([d is not None and d > on for d in opened], index=df.index, dtype=bool)
    return is_open & ~not_yet


def _share(achieved: int | None, target: int | None) -> float | None:
    if achieved is None or not target:
        return None
    return achieved / target


def _deadline(year: object) -> date:
    """Return 31 December of ``year``; `date.max` when no year is given (no target to miss)."""
    return date.max if year is None or pd.isna(year) else date(int(year), 12, 31)


def _key_project_rows(
    key_projects: pd.DataFrame, frames: dict[str, pd.DataFrame], open_flags: dict[str, pd.Series], on: date
) -> pd.DataFrame:
    rows = []
    for _, kp in key_projects.iterrows():
        layer = kp[plan.LAYER] or None
        build_type = kp[plan.BUILD_TYPE] or None
        achieved: int | None = None
        if layer in open_flags:
            achieved = int(open_flags[layer].sum())
        elif layer == schema.ACCESSIBLE_TOILET:
            df = frames[layer]
            built = df[schema.STATUS] == _ACHIEVED_STATUS[layer]
            achieved = (
                int((built & (df[schema.BUILD_TYPE] == build_type)).sum())
                if build_type
                else int((built & (df[schema.BUILD_TYPE] != "existing")).sum())
            )
        target = int(kp[plan.TARGET_COUNT])
        rows.append(
            {
                "project_no": kp[plan.PROJECT_NO],
                "project_zh": kp[plan.PROJECT_ZH],
                "project_en": kp[plan.PROJECT_EN],
                "layer": layer,
                "build_type": build_type,
                "target": target,
                "achieved": achieved,
                "share": _share(achieved, target),
                "status": target_status(achieved, target, _deadline(kp[plan.TARGET_YEAR]), on),
                "unit": kp[plan.UNIT],
                "target_year": int(kp[plan.TARGET_YEAR]),
                "task_no": None if pd.isna(kp[plan.TASK_NO]) else int(kp[plan.TASK_NO]),
                "section": kp[plan.SECTION],
                "quote": kp[plan.QUOTE],
                "source": kp[plan.SOURCE],
            }
        )
    out = pd.DataFrame.from_records(rows, columns=_KEY_PROJECT_COLUMNS)
    return out.astype({"target": "Int64", "achieved": "Int64", "target_year": "Int64", "task_no": "Int64"})


_KEY_PROJECT_COLUMNS = [
    "project_no", "project_zh", "project_en", "layer", "build_type", "target", "achieved", "share", "status",
    "unit", "target_year", "task_no", "section", "quote", "source",
]  # fmt: skip


def _layer_target(key_projects: pd.DataFrame, layer: str) -> tuple[int | None, int | None]:
    """Return the summed target of ``layer`` and its latest target year (both None without rows)."""
    rows = key_projects[key_projects[plan.LAYER] == layer]
    if rows.empty:
        return None, None
    return int(rows[plan.TARGET_COUNT].sum()), int(rows[plan.TARGET_YEAR].max())


def _per_town(town_names: pd.Series, counts: pd.DataFrame) -> pd.DataFrame:
    """Return one row per town (towns-table order) with ``counts`` joined on ``town_code``, zeros filled."""
    out = pd.DataFrame({schema.TOWN_CODE: town_names.index, _TOWN_NAME: town_names.to_numpy()})
    out = out.merge(counts, how="left", left_on=schema.TOWN_CODE, right_index=True)
    value_cols = [c for c in counts.columns]
    out[value_cols] = out[value_cols].fillna(0).astype(int)
    return out.reset_index(drop=True)


def _toilets(df: pd.DataFrame, key_projects: pd.DataFrame, town_names: pd.Series, on: date) -> ToiletProgress:
    rows = key_projects[(key_projects[plan.LAYER] == schema.ACCESSIBLE_TOILET) & (key_projects[plan.BUILD_TYPE] != "")]
    by_type = []
    town_counts = {}
    for build_type, group in rows.groupby(plan.BUILD_TYPE, sort=False):
        target = int(group[plan.TARGET_COUNT].sum())
        of_type = df[df[schema.BUILD_TYPE] == build_type]
        statuses = of_type[schema.STATUS].value_counts()
        accepted = int(statuses.get("accepted", 0))
        deadline = _deadline(group[plan.TARGET_YEAR].max())
        by_type.append(
            {
                "build_type": build_type,
                "target": target,
                "accepted": accepted,
                "share": _share(accepted, target),
                "status": target_status(accepted, target, deadline, on),
                **{status: int(statuses.get(status, 0)) for status in _TOILET_PIPELINE},
            }
        )
        town_counts[f"{build_type}_accepted"] = (
            of_type[of_type[schema.STATUS] == "accepted"].groupby(schema.TOWN_CODE).size()
        )
        town_counts[f"{build_type}_total"] = of_type.groupby(schema.TOWN_CODE).size()
    by_build_type = pd.DataFrame.from_records(
        by_type, columns=["build_type", "target", "accepted", "share", "status", *_TOILET_PIPELINE]
    )
    target = int(by_build_type["target"].sum())
    accepted = int(by_build_type["accepted"].sum())
    year = rows[plan.TARGET_YEAR].max() if len(rows) else None
    counts = pd.DataFrame(town_counts) if town_counts else pd.DataFrame(index=pd.Index([], name=schema.TOWN_CODE))
    return ToiletProgress(
        target=target,
        accepted=accepted,
        share=_share(accepted, target),
        status=target_status(accepted, target if len(rows) else None, _deadline(year), on),
        by_build_type=by_build_type,
        by_town=_per_town(town_names, counts),
        existing=int((df[schema.BUILD_TYPE] == "existing").sum()),
    )


def _facility(
    layer: str,
    frames: dict[str, pd.DataFrame],
    open_flags: dict[str, pd.Series],
    key_projects: pd.DataFrame,
    town_names: pd.Series,
    on: date,
) -> FacilityProgress:
    df = frames[layer]
    is_open = open_flags[layer]
    target, year = _layer_target(key_projects, layer)
    n_open = int(is_open.sum())
    state = pd.Series("planned", index=df.index)
    state[is_open] = "open"
    state[df[schema.STATUS] == "closed"] = "closed"
    counts = pd.crosstab(df[schema.TOWN_CODE], state).reindex(columns=["open", "planned", "closed"], fill_value=0)
    counts.columns.name = None
    by_town = _per_town(town_names, counts)
    return FacilityProgress(
        layer=layer,
        target=target,
        open=n_open,
        share=_share(n_open, target),
        status=target_status(n_open, target, _deadline(year), on),
        by_town=by_town,
        towns_without=tuple(by_town.loc[by_town["open"] == 0, _TOWN_NAME]),
    )


def _coverage_target(indicators: pd.DataFrame) -> pd.Series | None:
    for _, row in indicators.iterrows():
        if _measure_of(row[plan.NAME_ZH]) == "home_modification_coverage":
            return row
    return None


def _measure_of(name_zh: str) -> str | None:
    return next((key for fragment, key in _MEASURED_INDICATORS.items() if fragment in name_zh), None)


def _household_counts(df: pd.DataFrame, by: str) -> pd.DataFrame:
    status = df[schema.STATUS]
    parts = {
        "households": df.groupby(by).size(),
        "declined": (status == "declined").groupby(df[by]).sum(),
        "not_started": status.isin(_NOT_STARTED_HOUSEHOLD).groupby(df[by]).sum(),
        "in_progress": (status == "in_progress").groupby(df[by]).sum(),
        "modified": status.isin(_MODIFIED).groupby(df[by]).sum(),
        "verified": (status == "verified").groupby(df[by]).sum(),
    }
    counts = pd.DataFrame(parts).fillna(0).astype(int)
    counts.insert(2, "in_need", counts["households"] - counts["declined"])
    return counts


def _home_modification(
    df: pd.DataFrame, town_names: pd.Series, indicator: pd.Series | None, on: date
) -> HomeModification:
    if df.empty:
        counts = pd.DataFrame(columns=_HOUSEHOLD_COUNT_COLUMNS, index=pd.Index([], name=schema.TOWN_CODE), dtype=int)
    else:
        counts = _household_counts(df, schema.TOWN_CODE)
    by_town = _per_town(town_names, counts)
    in_need = by_town["in_need"]
    by_town["share"] = [m / n if n else None for m, n in zip(by_town["modified"], in_need, strict=True)]
    by_town["verified_share"] = [v / n if n else None for v, n in zip(by_town["verified"], in_need, strict=True)]
    totals = {c: int(by_town[c].sum()) for c in _HOUSEHOLD_COUNT_COLUMNS}
    share = totals["modified"] / totals["in_need"] if totals["in_need"] else None
    target_share = None
    status = NOT_TRACKED
    if indicator is not None and not pd.isna(indicator[plan.TARGET_VALUE]):
        target_share = float(indicator[plan.TARGET_VALUE]) / 100
        deadline = _deadline(indicator[plan.TARGET_YEAR])
        status = NO_DATA if share is None else _indicator_status(share * 100, indicator, deadline, on)
    return HomeModification(
        target_share=target_share,
        share=share,
        verified_share=totals["verified"] / totals["in_need"] if totals["in_need"] else None,
        status=status,
        by_town=by_town,
        **totals,
    )


_HOUSEHOLD_COUNT_COLUMNS = ["households", "declined", "in_need", "not_started", "in_progress", "modified", "verified"]


def _indicator_status(value: float, indicator: pd.Series, deadline: date, on: date) -> str:
    target = float(indicator[plan.TARGET_VALUE])
    reached = value > target if indicator[plan.TARGET_OPERATOR] == ">" else value >= target
    if reached:
        return MET
    return BEHIND if on <= deadline else MISSED


def _demonstration_villages(
    df: pd.DataFrame,
    key_projects: pd.DataFrame,
    town_names: pd.Series,
    villages: pd.DataFrame | None,
    min_households: int,
) -> DemonstrationVillages:
    target, _ = _layer_target(key_projects, schema.HOUSEHOLD)
    columns = [schema.VILLAGE_CODE, "village_name", schema.TOWN_CODE, _TOWN_NAME, "households_in_need", "declined"]
    candidates = pd.DataFrame(columns=columns)
    if not df.empty:
        counts = _household_counts(df, schema.VILLAGE_CODE)
        towns_of = df.groupby(schema.VILLAGE_CODE)[schema.TOWN_CODE].first()
        keep = (counts["in_need"] >= max(min_households, 1)) & (counts["verified"] == counts["in_need"])
        chosen = counts[keep]
        names = (
            pd.Series(villages[schema.NAME].to_numpy(), index=villages[schema.VILLAGE_CODE].astype(str))
            if villages is not None
            else pd.Series(dtype=object)
        )
        candidates = pd.DataFrame(
            {
                schema.VILLAGE_CODE: chosen.index.astype(str),
                "village_name": [names.get(str(v)) for v in chosen.index],
                schema.TOWN_CODE: towns_of[chosen.index].to_numpy(),
                _TOWN_NAME: [town_names.get(t) for t in towns_of[chosen.index]],
                "households_in_need": chosen["in_need"].to_numpy(),
                "declined": chosen["declined"].to_numpy(),
            },
            columns=columns,
        )
        candidates = candidates.sort_values(["households_in_need", schema.VILLAGE_CODE], ascending=[False, True])
    note = (
        "No layer records which villages are designated 无障碍改造示范村（社区）; the count is not measured. "
        "Candidates: villages whose households in need are all verified."
    )
    return DemonstrationVillages(
        target=target, status=NOT_TRACKED, note=note, candidates=candidates.reset_index(drop=True)
    )


def _indicator_rows(indicators: pd.DataFrame, home: HomeModification, on: date) -> pd.DataFrame:
    rows = []
    for _, ind in indicators.iterrows():
        measure = _measure_of(ind[plan.NAME_ZH])
        value = None
        status = NOT_MEASURED
        if measure == "home_modification_coverage":
            value = None if home.share is None else home.share * 100
            if value is None:
                status = NO_DATA
            elif pd.isna(ind[plan.TARGET_VALUE]):
                status = NOT_TRACKED
            else:
                status = _indicator_status(value, ind, _deadline(ind[plan.TARGET_YEAR]), on)
        rows.append(
            {
                "indicator_no": int(ind[plan.INDICATOR_NO]),
                "name_zh": ind[plan.NAME_ZH],
                "name_en": ind[plan.NAME_EN],
                "unit": ind[plan.UNIT],
                "target_text": ind[plan.TARGET_TEXT],
                "target_operator": ind[plan.TARGET_OPERATOR] or None,
                "target_value": None if pd.isna(ind[plan.TARGET_VALUE]) else float(ind[plan.TARGET_VALUE]),
                "nature": ind[plan.NATURE],
                "target_year": int(ind[plan.TARGET_YEAR]),
                "measured": measure is not None,
                "measured_by": schema.HOUSEHOLD if measure else None,
                "value": value,
                "status": status,
            }
        )
    columns = [
        "indicator_no", "name_zh", "name_en", "unit", "target_text", "target_operator", "target_value",
        "nature", "target_year", "measured", "measured_by", "value", "status",
    ]  # fmt: skip
    return pd.DataFrame.from_records(rows, columns=columns)


def _plan_task_rows(
    tasks: pd.DataFrame, key_projects: pd.DataFrame, on: date, plan_years: tuple[int, int]
) -> pd.DataFrame:
    start, end = date(plan_years[0], 1, 1), date(plan_years[1], 12, 31)
    linked: dict[int, list[str]] = {}
    met: dict[int, bool] = {}
    for _, kp in key_projects.iterrows():
        if pd.isna(kp["task_no"]):
            continue
        task_no = int(kp["task_no"])
        linked.setdefault(task_no, []).append(kp["project_no"])
        met[task_no] = met.get(task_no, True) and kp["status"] == MET
    rows = []
    for _, task in tasks.iterrows():
        task_no = int(task[plan.TASK_NO])
        done = met.get(task_no, False)
        rows.append(
            {
                "task_no": task_no,
                "task_text": task[plan.TASK_TEXT],
                "lead_units": task[plan.LEAD_UNITS],
                "responsible_units": task[plan.RESPONSIBLE_UNITS] or None,
                "start": start,
                "end": end,
                "key_projects": tuple(linked.get(task_no, ())),
                "status": window_status(start, end, on, done=done),
                "status_basis": "layers" if done else "dates",
            }
        )
    columns = [
        "task_no", "task_text", "lead_units", "responsible_units", "start", "end", "key_projects", "status",
        "status_basis",
    ]  # fmt: skip
    return pd.DataFrame.from_records(rows, columns=columns)


def _huican_rows(huican: pd.DataFrame, on: date) -> pd.DataFrame:
    rows = []
    for _, item in huican.iterrows():
        start = end = None
        if not pd.isna(item[plan.START_MONTH]) and not pd.isna(item[plan.END_MONTH]):
            year, end_month = int(item[plan.YEAR]), int(item[plan.END_MONTH])
            start = date(year, int(item[plan.START_MONTH]), 1)
            end = date(year, end_month, calendar.monthrange(year, end_month)[1])
        rows.append(
            {
                "item_no": int(item[plan.ITEM_NO]),
                "item_name": item[plan.ITEM_NAME],
                "sub_item_no": None if pd.isna(item[plan.SUB_ITEM_NO]) else int(item[plan.SUB_ITEM_NO]),
                "content": item[plan.CONTENT],
                "time_limit_text": item[plan.TIME_LIMIT_TEXT] or None,
                "window_kind": item[plan.WINDOW_KIND],
                "start": start,
                "end": end,
                "status": window_status(start, end, on),
                "days_to_end": None if end is None else (end - on).days,
                "responsible_units": item[plan.RESPONSIBLE_UNITS] or None,
            }
        )
    columns = [
        "item_no", "item_name", "sub_item_no", "content", "time_limit_text", "window_kind", "start", "end",
        "status", "days_to_end", "responsible_units",
    ]  # fmt: skip
    out = pd.DataFrame.from_records(rows, columns=columns)
    return out.astype({"item_no": "Int64", "sub_item_no": "Int64", "days_to_end": "Int64"})


def _data_version(layers: Mapping[str, pd.DataFrame], files: Mapping[str, str]) -> DataVersion:
    versions = {layer: layer_version(layers[layer]) for layer in sorted(layers)}
    return DataVersion(
        plan_files=dict(files),
        layer_rows={layer: v["rows"] for layer, v in versions.items()},
        layer_updated_at={layer: v["max_updated_at"] for layer, v in versions.items()},
    )


def _facility_dict(progress: FacilityProgress) -> dict[str, Any]:
    return {
        "layer": progress.layer,
        "target": progress.target,
        "open": progress.open,
        "share": progress.share,
        "status": progress.status,
        "towns_without": list(progress.towns_without),
        "by_town": _records(progress.by_town),
    }


def _status_counts(df: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in df["status"].value_counts().sort_index().items()}


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): _jsonable(v) for k, v in row.items()} for row in df.to_dict(orient="records")]


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if value is None or value is pd.NA:
        return None
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
