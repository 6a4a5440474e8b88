"""Benchmark analyses.coverage and analyses.service_areas on the embedded Bishan data against networkx/osmnx.

Run from the repository root:  .venv/bin/python benchmarks/bench_analyses.py [--quick]
Writes benchmarks/results/analyses.json and analyses.md.

The networkx way is what a user would write with osmnx: the graph from ``geo.network.graph_from_file``
projected, travel times per profile on the edges, nearest-node snapping with
``osmnx.distance.nearest_nodes`` and ``nx.multi_source_dijkstra_path_length`` (coverage), or
``nx.ego_graph`` per facility with a convex hull of its nodes / buffered edges and nodes as in the
osmnx isochrone example (service areas).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analyses.costs import CostSettings, Placer, load_district_network  # noqa: E402
from analyses.coverage import measure_coverage  # noqa: E402
from analyses.inputs import assign_towns, grid_demand  # noqa: E402
from analyses.service_areas import service_areas  # noqa: E402
from geo.datums import convert  # noqa: E402
from geo.network import add_travel_times_inplace, graph_from_file, project_graph  # noqa: E402
from geo.profiles import load_profiles  # noqa: E402
from layers.district import load_district  # noqa: E402

logger = logging.getLogger("bench_analyses")
PROFILES = ("walk", "wheelchair", "drive")
LAYERS = {"rehab_station": None, "service_centre": None, "accessible_toilet": "accepted", "sports_site": None}
THRESHOLD = "15min"
SA_CUTOFF_M = 3000.0
SA_BUFFER_M = 50.0
N_SA_FACILITIES = 60
GRID_POINTS = 5000
#: Flat costs: the networkx graphs compared here carry no slopes (bench_slopes.py measures those).
FLAT = CostSettings(slopes=False)
#: analyses.md keeps the section that bench_slopes.py writes between these lines.
SLOPES_BEGIN, SLOPES_END = "<!-- bench_slopes.py -->", "<!-- /bench_slopes.py -->"


def timed(fn, repeat):
    wall, _, out = timed_cpu(fn, repeat)
    return wall, out


def timed_cpu(fn, repeat):
    """Return the median wall time, the median CPU time of this process (less sensitive to other load)
    and the last result."""
    times, cpu, out = [], [], None
    for _ in range(repeat):
        gc.collect()
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(times), statistics.median(cpu), out


def read_points(district, layer: str, status: str | None) -> gpd.GeoDataFrame:
    """Read a demo layer, converting GCJ-02/BD-09 rows to WGS-84."""
    df = pd.read_csv(district.demo_dir / f"{layer}.csv", dtype=str)
    if status is not None:
        df = df[df["status"] == status].reset_index(drop=True)
    lon, lat = df["lon"].to_numpy(dtype=float, copy=True), df["lat"].to_numpy(dtype=float, copy=True)
    for datum in ("gcj02", "bd09"):
        rows = (df["datum"] == datum).to_numpy()
        if rows.any():
            lon[rows], lat[rows] = convert(lon[rows], lat[rows], datum, "wgs84")
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")


def user_graph(G, name: str, profile) -> nx.MultiDiGraph:
    """The osmnx graph as a user prepares it for a profile: usable edges, undirected unless one-way rules apply."""
    attr = f"travel_time_{name}_s"
    keep = [(u, v, k) for u, v, k, d in G.edges(keys=True, data=True) if np.isfinite(d[attr])]
    H = G.edge_subgraph(keep).copy()
    return H if profile.respect_oneway else H.to_undirected()


def nx_coverage(H, attr: str, fac_xy, dem_xy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (cost per demand point, demand nearest node, facility nearest nodes) the networkx way."""
    import osmnx as ox

    fac_nodes = ox.distance.nearest_nodes(H, fac_xy[:, 0], fac_xy[:, 1])
    dem_nodes = ox.distance.nearest_nodes(H, dem_xy[:, 0], dem_xy[:, 1])
    search = H.reverse(copy=False) if H.is_directed() else H  # costs FROM demand TO facility
    dist = nx.multi_source_dijkstra_path_length(search, set(np.asarray(fac_nodes).tolist()), weight=attr)
    cost = np.array([dist.get(n, np.inf) for n in np.asarray(dem_nodes).tolist()])
    return cost, np.asarray(dem_nodes), np.asarray(fac_nodes)


def node_of_snap(net, snap) -> np.ndarray:
    """Node position where a snap sits exactly on a piece end; -1 elsewhere."""
    return np.where(
        snap.fraction == 0.0, net.piece_u[snap.piece], np.where(snap.fraction == 1.0, net.piece_v[snap.piece], -1)
    )


def access_cost(net, pg, snap, weight: str) -> np.ndarray:
    return snap.distance_m if weight == "length" else snap.distance_m / pg.piece_speed_mps[snap.piece]


def bench_coverage(net, placer, G_by_profile, facilities, demands, reps, nx_reps) -> list[dict]:
    rows = []
    for profile in PROFILES:
        H = G_by_profile[profile]
        attr = f"travel_time_{profile}_s"
        pg = net.profile(profile)
        for layer, fac in facilities.items():
            fac_xy = shapely.get_coordinates(fac.to_crs(net.crs).geometry.to_numpy())
            fac_snap = placer.snap(fac, profile)
            for demand_name, dem in demands.items():
                dem_xy = shapely.get_coordinates(dem.to_crs(net.crs).geometry.to_numpy())
                ours_s, res = timed(
                    lambda f=fac, d=dem, p=profile: measure_coverage(placer, f, d, profile=p, thresholds=[THRESHOLD]),
                    reps,
                )
                nx_s, (nx_cost, nx_dem_node, nx_fac_node) = timed(
                    lambda h=H, a=attr, fx=fac_xy, dx=dem_xy: nx_coverage(h, a, fx, dx), nx_reps
                )
                ours_cost = res.points["cost_s"].to_numpy()
                # sanity: points whose snap sits on the node networkx picked, served by a facility whose
                # snap sits on its networkx node; compare the node-to-node part of our cost
                dem_snap = placer.snap(dem, profile)
                pos_to_id = net.node_id
                dem_node = node_of_snap(net, dem_snap)
                fac_node = node_of_snap(net, fac_snap)
                fac_ok = (fac_node >= 0) & (
                    np.where(fac_node >= 0, pos_to_id[np.maximum(fac_node, 0)], -1) == nx_fac_node
                )
                fac_index = pd.Index(fac_snap.ids)
                nearest = res.points["facility_id_s"].astype(str).to_numpy()
                fpos = fac_index.get_indexer(nearest)
                same = (
                    (dem_node >= 0)
                    & (np.where(dem_node >= 0, pos_to_id[np.maximum(dem_node, 0)], -1) == nx_dem_node)
                    & (fpos >= 0)
                    & np.isfinite(ours_cost)
                    & np.isfinite(nx_cost)
                )
                same &= np.where(fpos >= 0, fac_ok[np.maximum(fpos, 0)], False)
                legs = access_cost(net, pg, dem_snap, "travel_time") + np.where(
                    fpos >= 0, access_cost(net, pg, fac_snap, "travel_time")[np.maximum(fpos, 0)], 0.0
                )
                signed = (ours_cost - legs - nx_cost)[same]
                diff = np.abs(signed)
                covered_nx = float(np.mean(nx_cost <= 15 * 60))
                row = {
                    "profile": profile,
                    "layer": layer,
                    "demand": demand_name,
                    "facilities": len(fac),
                    "demand_points": len(dem),
                    "ours_s": ours_s,
                    "networkx_s": nx_s,
                    "x_vs_networkx": nx_s / ours_s,
                    "covered_share_ours": res.summary[f"covered_{THRESHOLD}"]["share"],
                    "covered_share_networkx_nearest_node": covered_nx,
                    "same_node_points": int(same.sum()),
                    "max_diff_same_node_s": float(diff.max()) if len(diff) else None,
                    # ours minus legs is the node cost to one facility, networkx the minimum over all:
                    # never below it; above only where the access legs made another facility nearest
                    "min_signed_diff_same_node_s": float(signed.min()) if len(signed) else None,
                    "same_node_points_equal": int((diff < 1e-6).sum()),
                }
                logger.info("coverage %s", {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
                rows.append(row)
    return rows


def nx_service_areas(H, centre_nodes, *, radius_m: float, buffer_m: float, edges: bool) -> list:
    """The osmnx isochrone example: ego_graph per facility, convex hull of nodes or buffered edges and nodes."""
    polys = []
    for node in centre_nodes:
        sub = nx.ego_graph(H, node, radius=radius_m, distance="length")
        pts = [shapely.Point(d["x"], d["y"]) for _, d in sub.nodes(data=True)]
        if not edges:
            polys.append(gpd.GeoSeries(pts).union_all().convex_hull)
            continue
        nodes_gdf = gpd.GeoDataFrame({"id": list(sub.nodes)}, geometry=pts).set_index("id")
        lines = []
        for u, v in sub.edges():
            f, t = nodes_gdf.loc[u].geometry, nodes_gdf.loc[v].geometry
            lines.append(H.get_edge_data(u, v)[0].get("geometry", shapely.LineString([f, t])))
        shapes = list(nodes_gdf.buffer(buffer_m)) + list(gpd.GeoSeries(lines).buffer(buffer_m))
        polys.append(gpd.GeoSeries(shapes).union_all())
    return polys


def bench_service_areas(net, placer, H_walk, fac, reps, nx_reps) -> dict:
    import osmnx as ox

    out = {"facilities": len(fac), "cutoff_m": SA_CUTOFF_M, "buffer_m": SA_BUFFER_M, "profile": "walk"}
    threshold = f"{SA_CUTOFF_M:.0f}m"
    # roads twice in the same run: one thread (workers=1) and the default thread per core
    for key, shape, workers, r in (
        ("hull", "hull", None, reps),
        ("roads_1thread", "roads", 1, max(1, reps // 2)),
        ("roads", "roads", None, max(1, reps // 2)),
    ):
        sec, cpu, res = timed_cpu(
            lambda s=shape, w=workers: service_areas(
                placer, fac, profile="walk", thresholds=[threshold], shape=s, buffer_m=SA_BUFFER_M, workers=w
            ),
            r,
        )
        out[f"ours_{key}_s"] = sec
        out[f"ours_{key}_cpu_s"] = cpu
        out[f"ours_{key}_median_area_km2"] = float(res.areas["area_m2"].median() / 1e6)
        out[f"ours_{key}_dissolved_km2"] = float(res.dissolved["area_m2"].iloc[0] / 1e6)
        logger.info("service areas ours %s: %.3f s wall, %.3f CPU-s", key, sec, cpu)
    out["load_average_1min"] = os.getloadavg()[0]
    xy = shapely.get_coordinates(fac.to_crs(net.crs).geometry.to_numpy())
    t = time.perf_counter()
    centres = np.asarray(ox.distance.nearest_nodes(H_walk, xy[:, 0], xy[:, 1])).tolist()
    snap_s = time.perf_counter() - t
    for shape, edges in (("hull", False), ("roads", True)):
        sec, polys = timed(
            lambda e=edges: nx_service_areas(H_walk, centres, radius_m=SA_CUTOFF_M, buffer_m=SA_BUFFER_M, edges=e),
            nx_reps,
        )
        sec += snap_s
        areas = shapely.area(np.asarray(polys, dtype=object))
        out[f"networkx_{shape}_s"] = sec
        out[f"networkx_{shape}_median_area_km2"] = float(np.median(areas) / 1e6)
        out[f"x_vs_networkx_{shape}"] = sec / out[f"ours_{shape}_s"]
        logger.info("service areas networkx %s: %.3f s", shape, sec)
    return out


def run(quick: bool) -> dict:
    district = load_district()
    profiles = load_profiles()
    with tempfile.TemporaryDirectory() as cold:
        t = time.perf_counter()
        net = load_district_network(district, cache_dir=cold, settings=FLAT)
        prepare_s = time.perf_counter() - t
        reload_s, net = timed(lambda: load_district_network(district, cache_dir=cold, settings=FLAT), 3)
    placer = Placer(net)
    t = time.perf_counter()
    G = project_graph(graph_from_file(district.roads_path, boundary=district.boundary.union_all()), net.crs)
    add_travel_times_inplace(G, profiles)
    G_by_profile = {p: user_graph(G, p, profiles[p]) for p in PROFILES}
    nx_graph_s = time.perf_counter() - t

    households = read_points(district, "household", None)
    area_m2 = float(district.boundary.to_crs(net.crs).area.sum())
    n_grid = 500 if quick else GRID_POINTS
    spacing = (area_m2 / n_grid) ** 0.5
    grid = assign_towns(
        grid_demand(district.boundary, crs=net.crs, spacing_m=spacing), district.town_areas, crs=net.crs
    )
    demands = {"households": households, "grid": grid}
    facilities = {layer: read_points(district, layer, status) for layer, status in LAYERS.items()}
    if quick:
        demands["households"] = households.iloc[:300]
    reps, nx_reps = (1, 1) if quick else (5, 3)
    for profile in PROFILES:  # spatial indexes built once, as in the app
        placer.snap(households.iloc[:1], profile)

    coverage = bench_coverage(net, placer, G_by_profile, facilities, demands, reps, nx_reps)
    every = pd.concat(list(facilities.values()), ignore_index=True)
    sa_fac = every.iloc[: 10 if quick else N_SA_FACILITIES][["id", "geometry"]].reset_index(drop=True)
    sa = bench_service_areas(net, placer, G_by_profile["walk"], sa_fac, reps if not quick else 1, 1)
    return {
        "network": {
            "nodes": net.n_nodes,
            "road_pieces": net.n_pieces,
            "prepare_cold_s": prepare_s,
            "cache_reload_s": reload_s,
            "networkx_graph_build_s": nx_graph_s,
        },  # fmt: skip
        "demand": {"households": len(demands["households"]), "grid": len(grid), "grid_spacing_m": spacing},
        "threshold": THRESHOLD,
        "coverage": coverage,
        "service_areas": sa,
    }


def markdown(out: dict) -> str:
    n = out["run"]["network"]
    lines = [
        f"# Analyses benchmark ({'quick' if out['quick'] else 'full'})",
        "",
        f"{out['machine']}; Python {out['python']}. Bishan: {n['nodes']:,} nodes, {n['road_pieces']:,} road pieces; "
        f"prepare (cold) {n['prepare_cold_s']:.1f} s, cache reload {n['cache_reload_s']:.3f} s; "
        f"networkx graphs built in {n['networkx_graph_build_s']:.1f} s (not in the timings below).",
        "",
        f"## Coverage ({out['run']['threshold']}; {out['run']['demand']['households']:,} households, "
        f"{out['run']['demand']['grid']:,} grid points at {out['run']['demand']['grid_spacing_m']:.0f} m)",
        "",
        "| profile | layer | demand | F | ours s | networkx s | ×nx | covered ours | covered nx | same-node pts "
        "(equal) | max Δ s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out["run"]["coverage"]:
        d = "—" if r["max_diff_same_node_s"] is None else f"{r['max_diff_same_node_s']:.1e}"
        lines.append(
            f"| {r['profile']} | {r['layer']} | {r['demand']} | {r['facilities']} | {r['ours_s']:.3f} | "
            f"{r['networkx_s']:.2f} | {r['x_vs_networkx']:.0f} | {r['covered_share_ours']:.3f} | "
            f"{r['covered_share_networkx_nearest_node']:.3f} | {r['same_node_points']} ({r['same_node_points_equal']}) "
            f"| {d} |"
        )
    s = out["run"]["service_areas"]
    lines += [
        "",
        f"## Service areas ({s['facilities']} facilities, walk, {s['cutoff_m']:.0f} m, buffer {s['buffer_m']:.0f} m)",
        "",
        "| shape | ours s | ours CPU s | networkx/osmnx s | ×nx | median area ours km² | median area nx km² |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, shape in (("hull", "hull"), ("roads", "roads"), ("roads_1thread", "roads")):
        label = "roads (1 thread)" if key == "roads_1thread" else shape
        lines.append(
            f"| {label} | {s[f'ours_{key}_s']:.2f} | {s[f'ours_{key}_cpu_s']:.2f} | "
            f"{s[f'networkx_{shape}_s']:.2f} | "
            f"{s[f'networkx_{shape}_s'] / s[f'ours_{key}_s']:.1f} | {s[f'ours_{key}_median_area_km2']:.2f} | "
            f"{s[f'networkx_{shape}_median_area_km2']:.2f} |"
        )
    load = s["load_average_1min"]
    lines += ["", f"1-minute load average when the service areas finished: {load:.1f} (2 cores, shared)."]
    lines += ["", out["notes"], ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one repeat, 300 households, 500 grid points")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("analyses").setLevel(logging.WARNING)
    logging.getLogger("geo").setLevel(logging.WARNING)
    result = run(args.quick)
    out = {
        "quick": args.quick,
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip() + f", {os.cpu_count()} cores (shared)",
        "run": result,
        "notes": (
            "Times are medians (ours: 5 runs, networkx: 3; service-area roads: 2 runs, networkx 1); ours includes "
            "snapping and summaries, networkx includes nearest-node snapping. Coverage is measured FROM demand TO "
            "facility (drive: on the reversed directed graph for networkx). 'max Δ' compares our cost minus the two "
            "access legs with networkx's node-to-node cost, for points whose snap sits on the node networkx picked "
            "and whose nearest facility does too. networkx service areas: whole edges within the radius (no "
            "frontier cut), buffered edges and nodes as in the osmnx isochrone example; ours cut the frontier pieces. "
            "'ours CPU s' is this process's CPU time, all threads (the machine is shared; wall time includes waiting). "
            "Service-area roads: the GEOS unions dominate and run on a thread per core (they release the GIL), so wall "
            "time falls towards CPU/cores only when the cores are free; '1 thread' is the same code with workers=1. "
            "History: before the shared road union (commit 0d415f4) 9.04 s wall; with it, one thread, 6.39 s wall / "
            "5.89 CPU-s (commit f5e3226). A/B of f5e3226 against the threaded code in one process (load average 5-7 "
            "on 2 cores): 5.1-5.9 CPU-s both, shapes identical (symmetric difference 0); faster unions tried and "
            "measured slower are listed in the analyses.service_areas docstring."
        ),
    }
    res_dir = ROOT / "benchmarks" / "results"
    res_dir.mkdir(parents=True, exist_ok=True)
    (res_dir / "analyses.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    (res_dir / "analyses.md").write_text(markdown(out) + slopes_section(res_dir / "analyses.md"), encoding="utf-8")


def slopes_section(path: Path) -> str:
    """Return the section bench_slopes.py wrote into ``path`` (with its marker lines), or ``""``."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if SLOPES_BEGIN not in text or SLOPES_END not in text:
        return ""
    return "\n" + text[text.index(SLOPES_BEGIN) : text.index(SLOPES_END) + len(SLOPES_END)] + "\n"


if __name__ == "__main__":
    main()
