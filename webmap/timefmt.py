"""Show stored times in Beijing time (Asia/Shanghai), the one way every page does it."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

#: The time zone staff read times in: 北京时间 (UTC+8 all year, no daylight saving).
LOCAL_TZ = ZoneInfo("Asia/Shanghai")

_FORMATS = {True: "%Y-%m-%d %H:%M:%S", False: "%Y-%m-%d %H:%M"}


def format_local_time(value: Any, *, seconds: bool = True) -> str:
    """Return a stored time as Beijing time text, e.g. ``"2026-01-02 00:30:00"``.

    The store keeps timestamps in UTC; SQLite hands them back without a zone, so a value with no
    time zone (naive) is taken as UTC. Values that carry a zone are converted from it.

    Parameters
    ----------
    value
        A ``datetime``, pandas ``Timestamp`` or ISO 8601 string (``"2026-01-01T16:30:00Z"``,
        ``"2026-01-01 16:30:00+00:00"``, or naive and then UTC). ``None``, ``NaT``, NaN and ``""``
        mean no time.
    seconds
        Show seconds (``YYYY-MM-DD HH:MM:SS``); ``False`` gives ``YYYY-MM-DD HH:MM``.

    Returns
    -------
    str
        The time in Asia/Shanghai, or ``""`` when ``value`` holds no time.

    Raises
    ------
    ValueError
        If ``value`` is a string that is not an ISO 8601 date-time.
    TypeError
        If ``value`` is of another type (a plain ``date`` has no time of day to convert).
    """
    local = _to_local(value)
    return "" if local is None else local.strftime(_FORMATS[bool(seconds)])


def format_local_date(value: Any) -> str:
    """Return the Beijing-time date of a stored time, e.g. ``"2026-01-02"`` for 2026-01-01T16:30:00Z.

    Takes what `format_local_time` takes and raises what it raises; ``""`` when ``value`` holds no time.
    """
    local = _to_local(value)
    return "" if local is None else local.strftime("%Y-%m-%d")


def _to_local(value: Any) -> datetime | None:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            msg = f"`value` must be an ISO 8601 date-time such as '2026-01-01T16:30:00Z'; got {value!r}."
            raise ValueError(msg) from None
    if not isinstance(value, datetime):  # pd.Timestamp is a datetime
        msg = f"`value` must be a datetime, pandas Timestamp or ISO string; got {type(value).__name__} {value!r}."
        raise TypeError(msg)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(LOCAL_TZ)
