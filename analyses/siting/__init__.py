"""Site facilities on network costs: maximal coverage, p-median, set cover and p-center, exact or fast.

Every model is built from a labelled long cost table (``demand_id``, ``candidate_id``, ``cost``) that
lists only the pairs within a cutoff (``geo.routing.cost_matrix``); pairs not listed cannot be
assigned. ``solve(method="exact")`` builds a sparse MILP and solves it with HiGHS (through
``scipy.optimize.milp``) under a time limit, stating whether the answer is proven optimal and the gap
otherwise; ``solve(method="heuristic")`` runs greedy construction plus swap (interchange) for
interactive use. Both return a frozen ``SitingResult`` keyed by our ids.

Constraints: ``p`` sites in total (existing ones included, as in spopt), per-zone quotas (e.g. exactly
one 渝馨家园 per town), existing sites kept open, excluded sites, capacities (in units of demand
weight, single sourcing; p-median and set cover) and a maximum cost beyond which demand is unserved.

Modules: ``results`` (``SitingResult``, ``SitingComparison``, ``InfeasibleSitingError``),
``problem`` (the cost table and constraints as arrays), ``base`` (the shared model: one
``from_cost_matrix`` constructor, ``from_network`` on road costs, solving, reporting), ``models`` (the
four models, ``model_from_network`` by name, ``compare_with_current``), ``solver`` (HiGHS, the only
place that knows it),
``heuristic`` (greedy + swap, Lagrangian reduction), ``branching`` (Lagrangian branch-and-bound on
sites: the exact p-median with few sites), ``capacity`` (transportation-LP assignment,
Lagrangian heuristic for capacities) and ``toilets`` (``site_new_toilets``).

The time limit of ``solve`` covers the whole solve (heuristic, bounds, building and solving the
MILP); p-center is solved by bisection over the distinct costs with set-cover checks; a result is
either proven optimal (gap 0) or carries its bound and a positive gap.
Every public name is importable from ``analyses.siting``.
"""

from __future__ import annotations

from analyses.siting.base import MAX_HEURISTIC_CELLS, Method, Progress
from analyses.siting.models import MaxCoverage, PCenter, PMedian, SetCover, compare_with_current, model_from_network
from analyses.siting.results import IncumbentReport, InfeasibleSitingError, SitingComparison, SitingResult, jsonable
from analyses.siting.solver import MIP_REL_GAP
from analyses.siting.toilets import (
    KEPT_TOILET_BUILD_TYPES,
    KEPT_TOILET_STATUSES,
    ToiletSiting,
    kept_toilets,
    site_new_toilets,
)

__all__ = [
    "KEPT_TOILET_BUILD_TYPES",
    "KEPT_TOILET_STATUSES",
    "MAX_HEURISTIC_CELLS",
    "MIP_REL_GAP",
    "IncumbentReport",
    "InfeasibleSitingError",
    "MaxCoverage",
    "Method",
    "PCenter",
    "PMedian",
    "Progress",
    "SetCover",
    "SitingComparison",
    "SitingResult",
    "ToiletSiting",
    "compare_with_current",
    "jsonable",
    "kept_toilets",
    "model_from_network",
    "site_new_toilets",
]
