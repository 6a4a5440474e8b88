"""Numbers as people read them: the Jinja filters every template uses for counts, values and shares.

``count``: whole numbers (``118.0`` → ``118``). ``number``: at most ``digits`` decimals, trailing zeros
dropped (``49.55673758865248`` → ``49.6``; ``3.0`` → ``3``). ``percent``: a share 0–1 as a percentage
(``0.4955`` → ``49.6%``). ``percent_value``: a value already in percent (``49.556`` → ``49.6%``). Missing
values (None, NaN) read ``—``. Values that are not numbers are shown as they are.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

MISSING = "—"


def init_app(app: Flask) -> None:
    """Register the filters ``count``, ``number``, ``percent`` and ``percent_value`` on ``app``."""
    for name, function in FILTERS.items():
        app.add_template_filter(function, name)


def _real(value: Any) -> float | None:
    """Return ``value`` as a float, None for a missing value; raise TypeError for text and other things."""
    if value is None or isinstance(value, bool):
        raise TypeError
    if not isinstance(value, Real):
        raise TypeError
    number = float(value)
    return None if math.isnan(number) else number


def count(value: Any) -> str:
    """Return a count as a whole number (``118.0`` → ``'118'``), ``—`` when missing."""
    if value is None:
        return MISSING
    try:
        number = _real(value)
    except TypeError:
        return str(value)
    return MISSING if number is None else str(round(number))


def number(value: Any, digits: int = 1) -> str:
    """Return ``value`` rounded to ``digits`` decimals without trailing zeros (``3.0`` → ``'3'``)."""
    if value is None:
        return MISSING
    try:
        real = _real(value)
    except TypeError:
        return str(value)
    if real is None:
        return MISSING
    if math.isinf(real):
        return "∞" if real > 0 else "−∞"
    text = f"{real:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def percent(value: Any, digits: int = 1) -> str:
    """Return a share (0–1) as a percentage: ``0.49556`` → ``'49.6%'``; ``—`` when missing."""
    return _as_percent(value, digits, scale=100.0)


def percent_value(value: Any, digits: int = 1) -> str:
    """Return a value already in percent: ``49.55673758865248`` → ``'49.6%'``; ``—`` when missing."""
    return _as_percent(value, digits, scale=1.0)


def _as_percent(value: Any, digits: int, *, scale: float) -> str:
    if value is None:
        return MISSING
    try:
        real = _real(value)
    except TypeError:
        return str(value)
    return MISSING if real is None else f"{number(real * scale, digits)}%"


#: Filter name → function (what ``init_app`` registers).
FILTERS = {"count": count, "number": number, "percent": percent, "percent_value": percent_value}
