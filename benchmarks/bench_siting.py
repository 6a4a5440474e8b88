"""Benchmark siting on the embedded Bishan network: ours (HiGHS MILP, greedy+swap) against spopt (PuLP + CBC).

p = 15 over ~500 candidates (random drivable road nodes) and ~5,000 weighted demand points (a grid
over the district, town from the town areas), MCLP and p-median, with and without one site per town.
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
from analyses.coverage import assign_towns, grid_demand  # noqa: E402
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
            if name == "mclp" and quota is None:
                row.update(_spopt_mclp(costs, weights, zones.index, exact.objective, matrix_s))
            rows.append(row)
            print(json.dumps(row), flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "siting.json").write_text(json.dumps(rows, indent=2))
    header = "| model | one/town | pairs | ours exact s (+matrix) | optimal | gap | heuristic s | heur vs exact "
    lines = [header + "| spopt s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['one_per_town']} | {r['n_pairs']:,} | {r['exact_total_s']} | {r['optimal']} | "
            f"{r['gap']} | {r['heuristic_s']} | {r['heuristic_vs_exact']:.4%} | {r.get('spopt_total_s', 'not run')} |"
        )
    (OUT / "siting.md").write_text("\n".join(lines) + "\n")


def _spopt_mclp(costs, weights, cand_ids, ours, matrix_s) -> dict:
    """spopt MCLP with its documented default solver (CBC via PuLP) on the same costs, densified."""
    import pulp
    import spopt.locate

    d_pos = pd.Series(np.arange(len(weights)), index=weights.index)
    c_pos = pd.Series(np.arange(len(cand_ids)), index=cand_ids)
    dense = np.full((len(weights), len(cand_ids)), 1e9)
    dense[d_pos[costs["demand_id"]].to_numpy(), c_pos[costs["candidate_id"]].to_numpy()] = costs["cost"].to_numpy()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = spopt.locate.MCLP.from_cost_matrix(dense, weights.to_numpy(), MCLP_RADIUS_S, P)
        model.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=600))
    spopt_s = time.perf_counter() - t0
    value = float(pulp.value(model.problem.objective))
    return {"spopt_s": round(spopt_s, 2), "spopt_total_s": round(spopt_s + matrix_s, 2), "spopt_objective": value,
            "ours_minus_spopt": ours - value}  # fmt: skip


if __name__ == "__main__":
    main()
