"""Siting results keyed by our ids, the infeasibility error, and JSON conversion."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd


class InfeasibleSitingError(ValueError):
    """The constraints of a siting model cannot all be met (e.g. a town with a quota but no candidate).

    The message reads Chinese first, then the English in brackets (``f"{zh} ({en})"``, as the import
    errors of ``layers.io``); ``str(error)`` is that whole text, ``zh`` and ``en`` keep the two parts.

    Parameters
    ----------
    zh
        The message in Chinese (zh-CN): what cannot be met and the fix, code names in backticks.
    en
        The same message in English.
    """

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(f"{zh} ({en})")
        self.zh = zh
        self.en = en

    def __reduce__(self) -> tuple[type[InfeasibleSitingError], tuple[str, str]]:
        """Pickle the two parts (the default would call the class with the joined text alone)."""
        return type(self), (self.zh, self.en)


class IncumbentReport(str):
    """A model's progress on the best solution so far: the text a command prints, with its numbers kept.

    ``"p_median: best 1,234, bound 1,200, gap 2.76%"``; a planner job stores the numbers (``model``,
    ``objective``, ``bound``, ``gap``) and shows them in the page's language.

    Parameters
    ----------
    model
        The model's name (``SitingModel.name``).
    objective
        The best solution's objective.
    bound
        The proven bound, None (or not finite) when there is none yet.
    """

    model: str
    objective: float
    bound: float | None
    gap: float | None

    def __new__(cls, model: str, objective: float, bound: float | None = None) -> IncumbentReport:
        """Return the report's text with its numbers as attributes (the gap relative to ``objective``)."""
        known = bound is not None and bool(np.isfinite(bound))
        gap = (abs(objective - bound) / abs(objective) if objective else 0.0) if known else None
        text = f"{model}: best {objective:,.6g}"
        if known:
            text += f", bound {bound:,.6g}, gap {gap:.2%}"
        report = super().__new__(cls, text)
        report.model, report.objective = model, float(objective)
        report.bound, report.gap = (float(bound), gap) if known else (None, None)
        return report


@dataclass(frozen=True)
class SitingResult:
    """A siting solution keyed by our ids.

    Parameters
    ----------
    model
        ``"max_coverage"``, ``"p_median"``, ``"set_cover"`` or ``"p_center"``.
    selected
        Chosen candidate ids (existing ones included), sorted.
    assignment
        Demand id → assigned candidate id, or None where the demand is unserved (no chosen site
        within the cutoff / ``max_cost``).
    costs
        Demand id → cost to the assigned site (NaN where unserved), in the cost table's unit.
    objective
        Covered weight (max coverage), Σ weight × cost with unserved demand at ``max_cost``
        (p-median), number of sites (set cover) or the largest assigned cost (p-center).
    covered_share
        Weighted share of all demand within ``threshold`` of its site (served within ``max_cost``
        when the model has no threshold).
    by_town
        Per demand zone (town code): ``points``, ``weight``, ``covered_weight``, ``covered_share``,
        ``sites`` (chosen sites in the zone), ``new_sites`` and ``mean_cost`` (weighted, served demand).
    optimal
        True when the solver proved the objective optimal (within ``MIP_REL_GAP``).
    gap
        Relative gap ``|objective - bound| / |objective|`` when a bound is known, else None.
    bound
        Best proven bound on the objective (upper for max coverage, lower otherwise), or None.
    solver
        What produced the solution, e.g. ``"HiGHS 1.x via scipy 1.17"`` or ``"greedy+swap"``.
    time_s
        Wall time of the solve (model building included), seconds.
    parameters
        The model's inputs: p, threshold, max_cost, quotas, existing, excluded, counts.
    """

    model: str
    selected: tuple[str, ...]
    assignment: Mapping[str, str | None]
    costs: Mapping[str, float]
    objective: float
    covered_share: float
    by_town: pd.DataFrame
    optimal: bool
    gap: float | None
    bound: float | None
    solver: str
    time_s: float
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def unserved(self) -> tuple[str, ...]:
        """Demand ids with no assigned site."""
        return tuple(d for d, s in self.assignment.items() if s is None)

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON-ready data with stable keys.

        Keys: ``model``, ``parameters``, ``selected``, ``assignment``, ``objective``, ``covered_share``,
        ``optimal``, ``gap``, ``bound``, ``solver``, ``time_s``, ``unserved``, ``by_town`` (records with
        ``town_code``).
        """
        by_town = self.by_town.reset_index().to_dict(orient="records")
        return {
            "model": self.model,
            "parameters": jsonable(dict(self.parameters)),
            "selected": list(self.selected),
            "assignment": dict(self.assignment),
            "objective": float(self.objective),
            "covered_share": float(self.covered_share),
            "optimal": bool(self.optimal),
            "gap": None if self.gap is None else float(self.gap),
            "bound": None if self.bound is None else float(self.bound),
            "solver": self.solver,
            "time_s": float(self.time_s),
            "unserved": len(self.unserved),
            "by_town": jsonable(by_town),
        }


@dataclass(frozen=True)
class SitingComparison:
    """Coverage and objective with the current sites only (before) and with a solution (after).

    ``by_town`` has ``covered_share_before``, ``covered_share_after``, ``covered_share_change``,
    ``sites_before`` and ``sites_after`` per town; ``summary`` the same overall plus objectives.
    """

    before: SitingResult
    after: SitingResult
    by_town: pd.DataFrame
    summary: Mapping[str, Any]


def jsonable(value: Any) -> Any:
    """Return ``value`` with numpy scalars, tuples, dates and NaN made JSON-friendly (NaN, NA, NaT → None).

    Dates and timestamps become ISO text; other objects are returned as they are.
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, date):
        return value.isoformat()
    return value
