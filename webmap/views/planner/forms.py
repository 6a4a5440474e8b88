"""What the planner's forms share: the choice lists and the checks of thresholds, numbers and choices.

Every message names the field and the value received, in the page's language.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from webmap.i18n import N_
from webmap.maps.layers import LAYER_LABELS

PROFILES = {"walk": N_("步行"), "wheelchair": N_("轮椅"), "drive": N_("驾车")}
DEMANDS = {
    "household": N_("需求家庭（仅编号、镇街、村社区）"),
    "village": N_("村（社区），按人口加权"),
    "grid": N_("规则网格（覆盖全区）"),
}
FACILITY_LAYERS = dict(LAYER_LABELS)


def choice_errors(form: dict[str, Any], choices: dict[str, Any]) -> list[str]:
    """Return a problem for each ``form[key]`` that is not one of ``choices[key]``."""
    return [_("“%(field)s”须为 %(choices)s 之一；收到 %(value)r。", field=key, choices=", ".join(options),
              value=form[key]) for key, options in choices.items() if form[key] not in options]  # fmt: skip


def threshold_list(text: str) -> list[str]:
    """Split a comma-separated list of thresholds (ASCII or full-width commas), dropping blanks."""
    return [t.strip() for t in text.replace("，", ",").split(",") if t.strip()]


def threshold_errors(values: list[str]) -> list[str]:
    """Return a problem for each threshold that ``analyses.costs.parse_threshold`` cannot read."""
    from analyses.costs import parse_threshold

    errors = []
    for value in values:
        try:
            parse_threshold(value)
        except ValueError:
            errors.append(_("阈值 %(value)r 无法识别：请写成 800m、1.5km 或 15min。", value=value))
    return errors


def thresholds(text: str, *, limit: int) -> tuple[list[str], list[str]]:
    """Return the thresholds of ``text`` and the problems: unreadable ones, none at all, more than ``limit``."""
    values = threshold_list(text)
    errors = threshold_errors(values)
    if not values:
        errors.append(_("请至少填写一个阈值（如 800m 或 15min）。"))
    if len(values) > limit:
        errors.append(_("最多填写 %(n)s 个阈值。", n=limit))
    return values, errors


def number(text: Any, label: str, low: float, high: float, *, integer: bool = False) -> tuple[Any, list[str]]:
    """Return ``text`` as a number in ``[low, high]`` and no problem, or ``text`` and the problem (naming ``label``)."""
    try:
        value = int(text) if integer else float(text)
        if not low <= value <= high:
            raise ValueError
    except (TypeError, ValueError):
        kind = _("整数") if integer else _("数字")
        return text, [_("%(label)s须为 %(low)s–%(high)s 之间的%(kind)s；收到 %(value)r。", label=label, low=low,
                        high=high, kind=kind, value=text)]  # fmt: skip
    return value, []


def joined(values: Any) -> str:
    """Return a list of thresholds as the text a form shows (``"300m, 800m"``)."""
    return ", ".join(values) if isinstance(values, list) else str(values)


def shown_thresholds(form: dict[str, Any], key: str = "thresholds") -> dict[str, Any]:
    """Return ``form`` with its list of thresholds as one text, for showing the form again."""
    return {**form, key: joined(form[key])}
