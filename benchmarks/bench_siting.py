"""Benchmark siting on the embedded Bishan network: ours (HiGHS MILP, greedy+swap) against spopt (PuLP + CBC).

p = 15 over ~500 candidates (random drivable road nodes) and ~5,000 weighted demand points (a grid
over the district, town from the town areas), MCLP and p-median, with and without one site per town.
spopt runs on the same costs (one site per town added to its PuLP problem as constraints): MCLP on
the full instance; p-median, whose dense assignment model is too big for CBC here, on a subset of
1,000 demand points × 200 candidates where both tools run (clearly labelled ``subset``).
Writes benchmarks/results/siting.json and .md. Run: ``.venv/bin/python benchmarks/bench_siting.py``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analyses.costs import Placer, load_district_network  # noqa: E402
from analyses.inputs import assign_towns, grid_demand  # noqa: E402
from analyses.siting import MaxCoverage, PMedian  # noqa: E402
from geo.routing import cost_matrix  # noqa: E402
from layers.district import load_district  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
PROFILE, P, TIME_LIMIT_S = "drive", 15, 60.0
MCLP_RADIUS_S, PMEDIAN_CUTOFF_S = 300.0, 900.0


def main() -> None:
    rng = np.random.default_rng(0)
    district = load_district()
    net = load_district_network(district, cache_dir=Path(tempfile.gettempdir()) / "accessplan-bench-cache")
    placer = Placer(net)
    demand = grid_demand(district.boundary, crs=district.crs, spacing_m=430.0)
    demand = assign_towns(demand, district.town_areas, crs=district.crs)
    demand["weight"] = rng.integers(1, 60, len(demand)).astype(float)
    usable = np.unique(
        np.r_[net.piece_u[net.profile(PROFILE).piece_usable], net.piece_v[net.profile(PROFILE).piece_usable]]
    )
    pick = rng.choice(usable, size=min(500, len(usable)), replace=False)
    cand = gpd.GeoDataFrame(
        {"id": [f"N{k}" for k in pick]}, geometry=gpd.points_from_xy(net.node_x[pick], net.node_y[pick]), crs=net.crs
    )
    cand = assign_towns(cand, district.town_areas, crs=district.crs)
    # one candidate at each town seat so every town can hold its centre
    seats = district.towns.to_crs(net.crs)[["town_code", "geometry"]].assign(id=lambda d: "SEAT-" + d["town_code"])
    cand = pd.concat([cand.to_crs(net.crs), seats], ignore_index=True)
    t0 = time.perf_counter()
    d_snap, c_snap = placer.snap(demand, PROFILE), placer.snap(cand, PROFILE)
    costs = cost_matrix(net, PROFILE, d_snap, c_snap, weight="travel_time", cutoff=PMEDIAN_CUTOFF_S)
    matrix_s = time.perf_counter() - t0
    weights = pd.Series(demand["weight"].to_numpy(), index=demand["id"].astype(str))
    zones = pd.Series(cand["town_code"].astype(str).to_numpy(), index=cand["id"].astype(str))
    dz = pd.Series(demand["town_code"].astype(str).to_numpy(), index=demand["id"].astype(str))
    rows = []
    for name, cls, kw in (
        ("mclp", MaxCoverage, {"threshold": MCLP_RADIUS_S}),
        ("p_median", PMedian, {"max_cost": PMEDIAN_CUTOFF_S}),
    ):
        for quota in (None, 1):
            model = cls.from_cost_matrix(
                costs, weights, p=P, zones=zones, demand_zones=dz, quota=quota, candidates=zones.index, **kw
            )
            exact = model.solve(time_limit_s=TIME_LIMIT_S)
            heur = model.solve(method="heuristic")
            row = {
                "model": name,
                "one_per_town": quota == 1,
                "n_demand": len(weights),
                "n_candidates": len(zones),
                "n_pairs": len(costs),
                "matrix_s": round(matrix_s, 2),
                "exact_s": round(exact.time_s, 2),
                "exact_total_s": round(exact.time_s + matrix_s, 2),
                "exact_objective": exact.objective,
                "optimal": exact.optimal,
                "gap": exact.gap,
                "heuristic_s": round(heur.time_s, 3),
                "heuristic_objective": heur.objective,
                "heuristic_vs_exact": abs(heur.objective - exact.objective) / abs(exact.objective),
                "heuristic_gap_to_bound": heur.gap,
                "covered_share": exact.covered_share,
            }
            if name == "mclp":
                row.update(
                    _spopt(
                        "mclp",
                        costs,
                        weights,
                        zones if quota else None,
                        exact.objective,
                        matrix_s,
                        cand_ids=zones.index,
                    )
                )
            else:
                row.update(_pmedian_subset(costs, weights, zones, dz, quota, rng=np.random.default_rng(1)))
            rows.append(row)
            print(json.dumps(row), flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "siting.json").write_text(json.dumps(rows, indent=2))
    header = "| model | one/town | pairs | ours exact s (+matrix) | optimal | gap | heuristic s | heur vs exact "
    lines = [header + "| spopt s (+matrix) | spopt = ours |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['one_per_town']} | {r['n_pairs']:,} | {r['exact_total_s']} | {r['optimal']} | "
            f"{r['gap']:.1e} | {r['heuristic_s']} | {r['heuristic_vs_exact']:.4%} | "
            f"{r.get('spopt_total_s', 'not run')} | "
            f"{r.get('ours_minus_spopt') == 0 if 'spopt_s' in r else 'see subset'} |"
        )
    lines += ["", "p-median on a subset (1,000 demand points × 200 candidates, same costs capped at 15 min), "
              "both tools:", "", "| one/town | ours exact s | spopt s | spopt / ours | same objective |",
              "|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        if "subset_ours_s" in r:
            ratio = r["subset_spopt_s"] / r["subset_ours_s"]
            same = abs(r["subset_ours_objective"] - r["subset_spopt_objective"]) < 1e-6 * r["subset_ours_objective"]
            lines.append(f"| {r['one_per_town']} | {r['subset_ours_s']} | {r['subset_spopt_s']} | {ratio:.0f}× | "
                         f"{same} |")  # fmt: skip
    (OUT / "siting.md").write_text("\n".join(lines) + "\n")


def _dense(costs, weights, cand_ids, fill):
    d_pos = pd.Series(np.arange(len(weights)), index=weights.index)
    c_pos = pd.Series(np.arange(len(cand_ids)), index=cand_ids)
    dense = np.full((len(weights), len(cand_ids)), fill)
    dense[d_pos[costs["demand_id"]].to_numpy(), c_pos[costs["candidate_id"]].to_numpy()] = costs["cost"].to_numpy()
    return dense


def _spopt(kind, costs, weights, zones, ours, matrix_s, *, cand_ids=None) -> dict:
    """Solve with spopt and its documented default solver (CBC via PuLP) on the same costs, densified.

    ``zones`` (candidate id → town) adds one site per town as constraints on spopt's PuLP problem.
    """
    import pulp
    import spopt.locate

    cand_ids = zones.index if cand_ids is None and zones is not None else cand_ids
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if kind == "mclp":
            dense = _dense(costs, weights, cand_ids, 1e9)
            model = spopt.locate.MCLP.from_cost_matrix(dense, weights.to_numpy(), MCLP_RADIUS_S, P)
        else:
            dense = np.minimum(_dense(costs, weights, cand_ids, PMEDIAN_CUTOFF_S), PMEDIAN_CUTOFF_S)
            model = spopt.locate.PMedian.from_cost_matrix(dense, weights.to_numpy(), P)
        if zones is not None:
            town = pd.Series(zones.reindex(cand_ids).to_numpy())
            for _, members in town.groupby(town).groups.items():
                model.problem += pulp.lpSum(model.fac_vars[j] for j in members) == 1
        model.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=900))
    spopt_s = time.perf_counter() - t0
    value = float(pulp.value(model.problem.objective))
    return {"spopt_s": round(spopt_s, 2), "spopt_total_s": round(spopt_s + matrix_s, 2), "spopt_objective": value,
            "ours_minus_spopt": ours - value}  # fmt: skip


def _pmedian_subset(costs, weights, zones, dz, quota, *, rng) -> dict:
    """p-median on 1,000 demand points × 200 candidates (every town seat kept): ours and spopt."""
    demand_ids = pd.Index(rng.choice(weights.index, size=1000, replace=False))
    seats = [c for c in zones.index if c.startswith("SEAT-")]
    others = [c for c in zones.index if not c.startswith("SEAT-")]
    cand_ids = pd.Index(seats + list(rng.choice(others, size=200 - len(seats), replace=False)))
    sub = costs[costs["demand_id"].isin(demand_ids) & costs["candidate_id"].isin(cand_ids)]
    w = weights.reindex(demand_ids)
    model = PMedian.from_cost_matrix(sub, w, p=P, zones=zones.reindex(cand_ids), demand_zones=dz.reindex(demand_ids),
                                     quota=quota, candidates=cand_ids, max_cost=PMEDIAN_CUTOFF_S)  # fmt: skip
    ours = model.solve(time_limit_s=TIME_LIMIT_S)
    theirs = _spopt("pmedian", sub, w, zones.reindex(cand_ids) if quota else None, ours.objective, 0.0,
                    cand_ids=cand_ids)  # fmt: skip
    return {"subset": "1000 demand x 200 candidates", "subset_ours_s": round(ours.time_s, 2),
            "subset_ours_objective": ours.objective, "subset_ours_optimal": ours.optimal,
            "subset_spopt_s": theirs["spopt_s"], "subset_spopt_objective": theirs["spopt_objective"]}  # fmt: skip


if __name__ == "__main__":
    main()
