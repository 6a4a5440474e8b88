"""Check accessible-toilet records: overdue builds and each surveyed field against GB 50763-2012.

Two checks the housing bureau reads on the register, a toilet's page and the register export:

* `overdue`: the planned completion date (计划完工日期) has passed and the toilet is neither
  completed nor accepted. "Today" is a Beijing date (`beijing_today`) and always an argument, so
  tests pass a fixed date.
* `gb50763_check`: each surveyed field against GB 50763-2012 《无障碍设计规范》 §3.9 (public
  toilets, 公共厕所、无障碍厕所), with the figures listed in /work/shared/DOMAIN.md §9:

  ========================================  ==========================================
  field                                      requirement (GB 50763-2012 §3.9)
  ========================================  ==========================================
  accessible_cubicle_f / _m,                 an accessible cubicle in both the women's and
  unisex_accessible_room                     the men's toilet, or an independent
                                             accessible toilet (§3.9.1, §3.9.3)
  room_area_m2                               ≥ 4.00 m² (§3.9.3, independent accessible toilet)
  turning_diameter_m                         ≥ 1.50 m wheelchair turning circle (§3.9.2, §3.9.3)
  door_clear_width_mm                        ≥ 800 mm clear door width (§3.9.2, §3.9.3)
  door_outward_or_emergency_unlock           door opens outward or unlocks from outside
  grab_bar_horizontal                        present (700 mm high, ≥ 700 mm long)
  grab_bar_vertical                          present (1.40 m)
  call_button                                present (400–500 mm above the floor)
  accessible_basin                           present
  accessible_urinal                          present where there is a men's toilet cubicle
  step_free_entrance                         present (无障碍入口)
  signage                                    present (无障碍标识)
  ========================================  ==========================================

  ``opening_hours``, ``survey_date`` and ``source`` are record-keeping, not requirements. A field that
  was not recorded is listed as *not surveyed*, never as a failure: planned toilets have no survey.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from layers import schema

#: Beijing time (UTC+8 all year): the date "today" means for the bureau.
BEIJING = ZoneInfo("Asia/Shanghai")
#: Statuses in which a toilet is built; anything else past its planned completion is overdue.
DONE_STATUSES = ("completed", "accepted")

#: GB 50763-2012 §3.9.3: an independent accessible toilet's floor area is at least 4.00 m².
MIN_ROOM_AREA_M2 = 4.00
#: GB 50763-2012 §3.9.2/§3.9.3: a wheelchair turning circle of at least 1.50 m diameter.
MIN_TURNING_DIAMETER_M = 1.50
#: GB 50763-2012 §3.9.2/§3.9.3: a clear door width of at least 800 mm.
MIN_DOOR_CLEAR_WIDTH_MM = 800

#: Minimum figures: field → (minimum, unit shown).
MINIMUMS: dict[str, tuple[float, str]] = {
    "room_area_m2": (MIN_ROOM_AREA_M2, "m²"),
    "turning_diameter_m": (MIN_TURNING_DIAMETER_M, "m"),
    "door_clear_width_mm": (MIN_DOOR_CLEAR_WIDTH_MM, "mm"),
}
#: Fittings GB 50763-2012 §3.9 requires to be present (a ``True`` record).
REQUIRED_FITTINGS = (
    "door_outward_or_emergency_unlock",
    "grab_bar_horizontal",
    "grab_bar_vertical",
    "call_button",
    "accessible_basin",
    "step_free_entrance",
    "signage",
)
#: Required only where the men's toilet has an accessible cubicle (GB 50763-2012 §3.9.1).
URINAL = "accessible_urinal"
#: Either both cubicles, or the independent room (GB 50763-2012 §3.9.1, §3.9.3).
CUBICLES = ("accessible_cubicle_f", "accessible_cubicle_m")
ROOM = "unisex_accessible_room"
#: The result of a check: every field recorded and meets the standard; something fails; nothing failed
#: but some fields were not surveyed.
PASS, FAIL, INCOMPLETE = "pass", "fail", "incomplete"


@dataclass(frozen=True)
class Finding:
    """One field that fails GB 50763-2012.

    Attributes
    ----------
    field
        The toilet layer's column (``layers.schema.GB50763_FIELDS``), or ``"cubicles"`` for the
        cubicle-or-room rule.
    value
        What the record holds.
    minimum
        The standard's figure for a measured field; ``None`` for a fitting that must be present.
    unit
        Unit of ``value`` and ``minimum`` (``"m²"``, ``"m"``, ``"mm"``; ``""`` for fittings).
    """

    field: str
    value: Any
    minimum: float | None = None
    unit: str = ""


@dataclass(frozen=True)
class Gb50763Check:
    """A toilet checked against GB 50763-2012.

    Attributes
    ----------
    result
        `PASS`, `FAIL` or `INCOMPLETE`.
    failures
        The fields that fail, in `layers.schema.GB50763_FIELDS` order.
    missing
        The requirement fields not recorded (not surveyed).
    """

    result: str
    failures: tuple[Finding, ...]
    missing: tuple[str, ...]


def beijing_today(now: datetime | None = None) -> date:
    """Return today's date in Beijing (``now`` given for tests; aware, or naive meaning UTC)."""
    moment = now if now is not None else datetime.now(BEIJING)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(BEIJING).date()


def overdue(row: dict[str, Any] | pd.Series, today: date) -> bool:
    """Tell whether a toilet is overdue: its planned completion is before ``today`` and it is not built.

    Parameters
    ----------
    row
        A toilet record (``status`` and ``planned_completion``: a date, ``YYYY-MM-DD`` text or missing).
    today
        The Beijing date to compare with (`beijing_today` in the app; a fixed date in tests).

    Returns
    -------
    bool
        ``False`` for completed or accepted toilets and toilets without a planned completion date.
    """
    if row.get(schema.STATUS) in DONE_STATUSES:
        return False
    planned = _date(row.get(schema.PLANNED_COMPLETION))
    return planned is not None and planned < today


def overdue_days(row: dict[str, Any] | pd.Series, today: date) -> int:
    """Return how many days past its planned completion an overdue toilet is (0 if not overdue)."""
    if not overdue(row, today):
        return 0
    planned = _date(row.get(schema.PLANNED_COMPLETION))
    assert planned is not None  # overdue() checked it
    return (today - planned).days


def gb50763_check(row: dict[str, Any] | pd.Series) -> Gb50763Check:
    """Check a toilet's surveyed fields against GB 50763-2012 §3.9 (the table in the module docstring).

    Parameters
    ----------
    row
        A toilet record with the ``layers.schema.GB50763_FIELDS``; booleans may be ``True``/``False``
        or their text; missing values are ``None``, NaN or ``""``.

    Returns
    -------
    Gb50763Check
        `FAIL` when any recorded field fails, else `INCOMPLETE` when a requirement field was not
        recorded, else `PASS`.
    """
    failures: list[Finding] = []
    missing: list[str] = []
    cubicles = [_bool(row.get(f)) for f in (*CUBICLES, ROOM)]
    if all(v is None for v in cubicles):
        missing.extend((*CUBICLES, ROOM))
    elif not ((cubicles[0] and cubicles[1]) or cubicles[2]):
        if None in cubicles:
            missing.extend(f for f, v in zip((*CUBICLES, ROOM), cubicles, strict=True) if v is None)
        else:
            failures.append(Finding("cubicles", ", ".join(f"{f}={v}" for f, v in zip((*CUBICLES, ROOM), cubicles,
                                                                                    strict=True))))  # fmt: skip
    for field in schema.GB50763_FIELDS:
        if field in MINIMUMS:
            minimum, unit = MINIMUMS[field]
            value = _number(row.get(field))
            if value is None:
                if field != "room_area_m2" or cubicles[2] is not False:  # the area is the room's
                    missing.append(field)
            elif value < minimum:
                failures.append(Finding(field, value, minimum, unit))
        elif field in REQUIRED_FITTINGS or (field == URINAL and cubicles[1]):
            present = _bool(row.get(field))
            if present is None:
                missing.append(field)
            elif not present:
                failures.append(Finding(field, False))
    result = FAIL if failures else INCOMPLETE if missing else PASS
    return Gb50763Check(result, tuple(failures), tuple(missing))


def _missing(value: Any) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)) or value == ""


def _date(value: Any) -> date | None:
    if _missing(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _number(value: Any) -> float | None:
    return None if _missing(value) else float(value)


def _bool(value: Any) -> bool | None:
    if _missing(value):
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "是", "yes")
    return bool(value)
