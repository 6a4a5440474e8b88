"""A job for people: its name, a one-line summary of its parameters and its labelled parameter table.

A job's name is the one its planner gave (``parameters["name"]``: the forms' optional name field, a
saved what-if's scenario name) or one made of its kind and main parameters
(``AnalysisKind.summary_fields``), e.g. "选址 · 最大覆盖 · 渝馨家园 · 15min". The job page's parameters
panel lists every parameter and data version under its name in the page's language
(``webmap.fieldnames.field_label``), choices by their labels, times in Beijing time and files by their
name only (never a server path).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _

from webmap.fieldnames import field_label
from webmap.timefmt import format_local_time

if TYPE_CHECKING:
    from layers.jobs import Job
    from webmap.views.planner.kind import AnalysisKind

#: The key of a job's own name in its parameters.
NAME_KEY = "name"
MAX_NAME_CHARS = 100
#: Lists longer than this are shown by their length.
MAX_LISTED = 20
#: Main parameters shown in a generated name.
NAME_FIELDS = 4


def read_name(data: Any) -> tuple[str, list[str]]:
    """Return the optional job name of a submitted form (stripped) and the problems (too long)."""
    name = " ".join(str(data.get(NAME_KEY, "") or "").split())
    if len(name) > MAX_NAME_CHARS:
        return name, [_("“名称”最多 %(n)s 个字；收到 %(m)s 个字。", n=MAX_NAME_CHARS, m=len(name))]
    return name, []


def value_labels(kinds: Mapping[str, AnalysisKind]) -> dict[str, Mapping[str, str]]:
    """Return parameter key → {value: label msgid} over every kind's ``summary_fields`` that are choices."""
    out: dict[str, Mapping[str, str]] = {}
    for kind in kinds.values():
        for key, choices in kind.summary_fields.items():
            if choices:
                out.setdefault(key, choices)
    return out


def shown_value(key: str, value: Any, labels: Mapping[str, Mapping[str, str]], *, short: bool = False) -> str:
    """Return one parameter's value as people read it.

    Choices by their translated label (``short``: without the explanation in brackets), yes/no, lists
    joined (their length beyond ``MAX_LISTED``), times (keys ending ``_at``) in Beijing time, file paths
    as the file's name; nothing as "—".
    """
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return _("是") if value else _("否")
    if isinstance(value, list | tuple):
        if len(value) > MAX_LISTED or any(isinstance(v, dict) for v in value):
            return _("%(n)s 项", n=len(value))
        return ", ".join(shown_value(key, v, labels, short=short) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    choices = labels.get(key.rsplit(".", 1)[-1])
    if choices and text in choices:
        label = _(choices[text])
        return label.split("（")[0].split(" (")[0].strip() if short else label
    if key.endswith("sha256"):
        return text[:12]
    if key.endswith("_at"):
        try:
            return format_local_time(text)
        except (TypeError, ValueError):
            return text
    if "/" in text or "\\" in text:
        return PurePath(text.replace("\\", "/")).name or text
    return text


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Return nested parameters as dotted key → value (lists kept as lists)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def job_name(record: Job, kind: AnalysisKind | None, labels: Mapping[str, Mapping[str, str]]) -> str:
    """Return the job's own name, or its kind and main parameters ("选址 · 最大覆盖 · 渝馨家园 · 15min")."""
    own = str((record.parameters or {}).get(NAME_KEY) or "").strip()
    if own:
        return own
    title = _(kind.label) if kind is not None else record.kind
    if kind is None:
        return title
    parts = [title]
    for key in list(kind.summary_fields)[:NAME_FIELDS]:
        value = (record.parameters or {}).get(key)
        if value not in (None, "", []):
            shown = shown_value(key, value, labels, short=True)
            parts.append(f"{key}={shown}" if key in ("p", "per_town") else shown)
    return " · ".join(parts)


def job_summary(record: Job, kind: AnalysisKind | None, labels: Mapping[str, Mapping[str, str]]) -> str:
    """Return the job's main parameters on one line ("设施：渝馨家园；出行方式：步行；阈值：800m")."""
    if kind is None:
        return ""
    parameters = record.parameters or {}
    parts = [_("%(label)s：%(value)s", label=field_label(key), value=shown_value(key, parameters.get(key), labels))
             for key in kind.summary_fields if key in parameters]  # fmt: skip
    return _("；").join(parts)


def parameter_rows(values: Mapping[str, Any], labels: Mapping[str, Mapping[str, str]]) -> list[dict[str, str]]:
    """Return ``values`` (parameters or data versions) as rows of ``key``, ``label`` and shown ``value``."""
    return [{"key": key, "label": field_label(key), "value": shown_value(key, value, labels)}
            for key, value in flatten(dict(values)).items()]  # fmt: skip
