"""Order a caseworker's home visits into a short route on the road network, from a start point."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.routing import CANDIDATE_ID, COST, DEMAND_ID, cost_matrix
from layers import schema

if TYPE_CHECKING:
    import numpy.typing as npt

    from analyses.costs import Placer, Weight

logger = logging.getLogger(__name__)

#: Id given to the start point inside the cost table (never a household id).
START_ID = "__start__"
#: Visit lists up to this many stops are ordered exactly (Held–Karp); longer ones by NN + 2-opt.
EXACT_MAX_STOPS = 8
_NO_CUTOFF = 1e12  # a bounded search that bounds nothing: every reachable pair is kept


@dataclass(frozen=True)
class VisitRoute:
    """Households in visiting order, an open path from the start point (no return leg).

    Attributes
    ----------
    order
        Household ids in visiting order.
    leg_length_m, leg_time_s
        Cost of each leg (previous stop, or the start, → ``order[i]``): the shortest network
        distance (metres) and the shortest travel time (seconds) of that leg.
    total_length_m, total_time_s
        Sums of the legs.
    weight
        What the order minimises: ``"travel_time"`` or ``"length"``.
    profile
        Travel profile of the costs.
    unreachable
        Households left out: farther than the snapping limit from a usable road, or not reachable
        from the start and back on this profile.
    """

    order: tuple[str, ...]
    leg_length_m: tuple[float, ...]
    leg_time_s: tuple[float, ...]
    total_length_m: float
    total_time_s: float
    weight: str
    profile: str
    unreachable: tuple[str, ...]


def order_visits(
    placer: Placer,
    start: gpd.GeoDataFrame,
    households: gpd.GeoDataFrame,
    *,
    profile: str = "drive",
    weight: Weight = "travel_time",
    id_column: str = schema.ID,
    exact_max_stops: int = EXACT_MAX_STOPS,
) -> VisitRoute:
    """Return ``households`` ordered as a short open route from ``start`` on the road network.

    Costs come from `geo.routing.cost_matrix` among the start and the households in both
    directions (one-way streets respected on the ``drive`` profile). Up to ``exact_max_stops``
    households the order is optimal (Held–Karp); beyond, it is nearest neighbour from the start
    improved by 2-opt until no reversal shortens the path.

    Parameters
    ----------
    placer
        Snaps points onto the prepared network.
    start
        One point (any CRS), e.g. the town office.
    households
        Points to visit (any CRS), labelled by ``id_column``; ids must be unique.
    profile
        Travel profile name (``"drive"``, ``"walk"``, ``"wheelchair"``).
    weight
        What to minimise: ``"travel_time"`` (seconds) or ``"length"`` (metres).
    id_column
        Column of ``households`` holding the ids.
    exact_max_stops
        Largest number of stops ordered exactly; 0 always uses the heuristic.

    Returns
    -------
    VisitRoute
        The order, leg costs in metres and seconds, totals and the households left out.

    Raises
    ------
    ValueError
        If ``start`` is not exactly one point, ``households`` is empty or has duplicate ids, or
        ``weight`` is not ``"length"``/``"travel_time"``.
    """
    if weight not in ("length", "travel_time"):
        msg = f"`weight` must be 'length' or 'travel_time'; got {weight!r}."
        raise ValueError(msg)
    if len(start) != 1:
        msg = f"`start` must hold exactly one point; got {len(start)} rows."
        raise ValueError(msg)
    if households.empty:
        msg = "`households` is empty: pick at least one household to visit."
        raise ValueError(msg)
    ids = households[id_column].astype(str)
    duplicated = sorted(set(ids[ids.duplicated()]))
    if duplicated:
        msg = f"`households` has duplicate ids in `{id_column}`: {duplicated!r}; each household is visited once."
        raise ValueError(msg)
    points = gpd.GeoDataFrame(
        {"_id": [START_ID, *ids]},
        geometry=[*start.to_crs(households.crs).geometry, *households.geometry],
        crs=households.crs,
    )
    snap = placer.snap(points, profile, id_column="_id")
    labels = [START_ID, *ids]
    matrices = {
        w: _square(cost_matrix(placer.net, profile, snap, snap, weight=w, cutoff=_NO_CUTOFF), labels)
        for w in ("length", "travel_time")
    }
    C = matrices[weight]
    reachable = np.isfinite(C[0]) & np.isfinite(C[:, 0])
    reachable[0] = True
    keep = np.flatnonzero(reachable)
    unreachable = tuple(labels[i] for i in np.flatnonzero(~reachable))
    sub = C[np.ix_(keep, keep)]
    n_stops = len(keep) - 1
    path = _held_karp(sub) if 0 < n_stops <= exact_max_stops else _two_opt(sub, _nearest_neighbour(sub))
    stops = keep[path]  # positions in `labels`, start first
    legs = {w: np.array([M[a, b] for a, b in zip(stops[:-1], stops[1:], strict=True)]) for w, M in matrices.items()}
    route = VisitRoute(
        order=tuple(labels[i] for i in stops[1:]),
        leg_length_m=tuple(float(v) for v in legs["length"]),
        leg_time_s=tuple(float(v) for v in legs["travel_time"]),
        total_length_m=float(legs["length"].sum()),
        total_time_s=float(legs["travel_time"].sum()),
        weight=weight,
        profile=profile,
        unreachable=unreachable,
    )
    logger.info(
        "Ordered %d visits (%s, by %s): %.0f m, %.0f s; %d unreachable",
        len(route.order), profile, weight, route.total_length_m, route.total_time_s, len(unreachable),
    )  # fmt: skip
    return route


def path_cost(C: npt.NDArray[np.float64], path: npt.ArrayLike) -> float:
    """Return the cost of the open ``path`` (positions in ``C``) as the sum of ``C[a, b]`` along it."""
    p = np.asarray(path)
    return float(C[p[:-1], p[1:]].sum())


def _square(table: pd.DataFrame, labels: list[str]) -> npt.NDArray[np.float64]:
    """Return the long cost table as a square matrix from → to in ``labels`` order (inf: no route)."""
    position = {label: i for i, label in enumerate(labels)}
    M = np.full((len(labels), len(labels)), np.inf)
    M[table[DEMAND_ID].map(position).to_numpy(), table[CANDIDATE_ID].map(position).to_numpy()] = table[COST]
    np.fill_diagonal(M, 0.0)
    return M


def _nearest_neighbour(C: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Return the path from position 0 that always goes to the cheapest unvisited point next."""
    n = len(C)
    path = [0]
    left = np.ones(n, dtype=bool)
    left[0] = False
    while left.any():
        costs = np.where(left, C[path[-1]], np.inf)
        nxt = int(np.argmin(costs)) if np.isfinite(costs).any() else int(np.argmax(left))
        path.append(nxt)
        left[nxt] = False
    return np.array(path)


def _two_opt(C: npt.NDArray[np.float64], path: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Reverse segments of the open ``path`` (start fixed) while that lowers its cost (asymmetric-safe)."""
    best = path.copy()
    best_cost = path_cost(C, best)
    n = len(best)
    improved = True
    while improved:
        improved = False
        for i in range(1, n - 1):
            for j in range(i + 1, n):
                candidate = np.concatenate([best[:i], best[i : j + 1][::-1], best[j + 1 :]])
                cost = path_cost(C, candidate)
                if cost < best_cost - 1e-9:
                    best, best_cost, improved = candidate, cost, True
    return best


def _held_karp(C: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Return the cheapest open path from position 0 through every other position (exact, O(2ⁿ n²))."""
    n = len(C) - 1
    stops = C[1:, 1:]
    full = (1 << n) - 1
    dp = np.full((1 << n, n), np.inf)
    parent = np.full((1 << n, n), -1, dtype=np.int64)
    for j in range(n):
        dp[1 << j, j] = C[0, j + 1]
    for mask in range(1, full + 1):
        for j in range(n):
            bit = 1 << j
            if not mask & bit or mask == bit:
                continue
            prev = mask ^ bit
            costs = dp[prev] + stops[:, j]
            k = int(np.argmin(costs))
            if costs[k] < dp[mask, j]:
                dp[mask, j], parent[mask, j] = costs[k], k
    j, mask, order = int(np.argmin(dp[full])), full, []
    while j >= 0:
        order.append(j + 1)
        j, mask = int(parent[mask, j]), mask ^ (1 << j)
    return np.array([0, *order[::-1]])
