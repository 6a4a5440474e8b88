"""Benchmark geo.routing against networkx, igraph, pandana and the raw scipy floor.

Run from the repository root:  .venv/bin/python benchmarks/bench_routing.py [--quick] [--scale4]
Writes benchmarks/results/routing.json and routing.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import networkx as nx
import numpy as np
from scipy.sparse.csgraph import dijkstra

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geo.network import graph_from_file  # noqa: E402
from geo.prepared import load_or_prepare  # noqa: E402
from geo.profiles import load_profiles, travel_time_s  # noqa: E402
from geo.routing import cost_matrix, nearest_facility  # noqa: E402
from geo.snapping import build_edge_index, snap_points  # noqa: E402

logger = logging.getLogger("bench_routing")
CRS = "EPSG:32648"
PROFILE = "walk"
WEIGHT = "length"


def timed(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def peak_mb(fn):
    gc.collect()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def user_graph(G, profile):
    """The osmnx graph as a networkx user would prepare it for walking: undirected, walkable edges.

    Every directed edge becomes its own undirected edge with a fresh key. ``G.to_undirected()`` is not
    used: it keys undirected edges by the directed key, so ``u→v`` key 0 (e.g. a one-way road) and
    ``v→u`` key 0 (the reverse of another, two-way road between the same nodes) collapse into one
    edge and one of the two roads is lost.
    """
    Gu = nx.MultiGraph(crs=G.graph.get("crs"))
    Gu.add_nodes_from(G.nodes(data=True))
    Gu.add_edges_from(
        (u, v, d) for u, v, d in G.edges(data=True) if travel_time_s(1.0, d["highway"], profile) is not None
    )
    return Gu


def run(source: Path, label: str, quick: bool, cache_dir: Path) -> dict:
    profiles = load_profiles()
    t = time.perf_counter()
    G = graph_from_file(source)
    from geo.network import project_graph

    G = project_graph(G, CRS)
    load_graph_s = time.perf_counter() - t
    net = load_or_prepare(source, CRS, profiles, cache_dir, build_graph=lambda p: G)
    reload_s, net = timed(lambda: load_or_prepare(source, CRS, profiles, cache_dir, build_graph=None), 3)
    pg = net.profile(PROFILE)
    n = net.n_nodes
    rng = np.random.default_rng(0)
    usable_nodes = np.flatnonzero(np.diff(pg.indptr) > 0)
    reps = 3 if quick else 15
    result = {"network": label, "source": str(source.relative_to(ROOT)) if source.is_relative_to(ROOT) else str(source)}
    result.update(nodes=n, road_pieces=net.n_pieces, arcs=int(len(pg.indices)), osmnx_load_project_s=load_graph_s)
    result["cache_reload_s"] = reload_s

    # snapping 5,000 random points near roads
    piece = rng.choice(np.flatnonzero(pg.piece_usable), 5000)
    start = net.piece_coords[net.piece_coord_ptr[piece]]
    px, py = start[:, 0] + rng.uniform(-80, 80, 5000), start[:, 1] + rng.uniform(-80, 80, 5000)
    build_s, index = timed(lambda: build_edge_index(net, PROFILE), reps)
    snap_s, _ = timed(lambda: snap_points(net, px, py, profile=PROFILE, index=index), reps)
    result["snap_5000"] = {"index_build_s": build_s, "query_s": snap_s}

    Gu = user_graph(G, profiles[PROFILE])
    node_ids = net.node_id
    csr_rev = pg.csr(WEIGHT, reverse=True)
    # the same arcs over the Hilbert-curve node order our searches use (a second, reordered floor)
    from scipy.sparse import csr_matrix

    indptr, indices, data = net.search_graph(PROFILE, WEIGHT, reverse=True)
    csr_rev_ordered = csr_matrix((data, indices, indptr), shape=(n, n))
    rank = net.search_rank

    import igraph as ig

    coo = pg.csr(WEIGHT).tocoo()
    # igraph searches from a super source (node n) over the reversed arcs
    rev = csr_rev.tocoo()
    gi_rev = ig.Graph(n=n + 1, edges=np.column_stack([rev.row, rev.col]).tolist(), directed=True)
    w_rev = rev.data.tolist()

    import pandana
    import pandas as pd

    t = time.perf_counter()
    pnet = pandana.Network(
        pd.Series(net.node_x, index=node_ids),
        pd.Series(net.node_y, index=node_ids),
        pd.Series(node_ids[coo.row]),
        pd.Series(node_ids[coo.col]),
        pd.DataFrame({"w": coo.data}),
        twoway=False,
    )
    pandana_setup_s = time.perf_counter() - t
    result["pandana_setup_s"] = pandana_setup_s

    nf = []
    for F in (15, 60, 300) if not quick else (15, 60):
        fac_idx = rng.choice(usable_nodes, F, replace=False)
        fac_snap = snap_points(
            net, net.node_x[fac_idx], net.node_y[fac_idx], profile=PROFILE, index=index, ids=[f"f{i}" for i in range(F)]
        )
        dem_idx = rng.choice(usable_nodes, 5000)
        dem_snap = snap_points(
            net, net.node_x[dem_idx], net.node_y[dem_idx], profile=PROFILE, index=index, ids=np.arange(5000)
        )
        row = {"facilities": F, "demand_points": 5000}
        if "first_call_s" not in result:  # numba compiles the search, or loads it from its cache
            result["first_call_s"], _ = timed(
                lambda fs=fac_snap, ds=dem_snap: nearest_facility(net, PROFILE, fs, ds, weight=WEIGHT), 1
            )
        ours_s, res = timed(
            lambda fs=fac_snap, ds=dem_snap: nearest_facility(net, PROFILE, fs, ds, weight=WEIGHT), reps
        )
        tables_s, _ = timed(
            lambda fs=fac_snap, ds=dem_snap: (lambda r: (r.demand, r.nodes))(
                nearest_facility(net, PROFILE, fs, ds, weight=WEIGHT)
            ),
            reps,
        )
        floor_s, floor = timed(
            lambda fi=fac_idx: dijkstra(csr_rev, indices=fi, min_only=True, return_predecessors=True), reps
        )
        floor_ordered_s, _ = timed(
            lambda fi=fac_idx: dijkstra(csr_rev_ordered, indices=rank[fi], min_only=True, return_predecessors=True),
            reps,
        )
        fac_nodes = node_ids[fac_idx].tolist()
        nx_s, nx_d = timed(
            lambda fn=fac_nodes: nx.multi_source_dijkstra_path_length(Gu, fn, weight="length"), 1 if quick else 3
        )

        def igraph_run(fi=fac_idx, g0=gi_rev, w0=w_rev):
            g = g0.copy()
            g.add_edges([(n, int(i)) for i in fi])
            return np.asarray(g.distances(source=[n], weights=w0 + [0.0] * len(fi), mode="out")[0][:n])

        ig_s, ig_d = timed(igraph_run, reps)
        maxdist = float(np.nanmax(np.where(np.isfinite(floor[0]), floor[0], np.nan))) + 1.0

        def pandana_run(fi=fac_idx, md=maxdist):
            pnet.set_pois("fac", md * 1.01, 1, pd.Series(net.node_x[fi]), pd.Series(net.node_y[fi]))
            return pnet.nearest_pois(md, "fac", num_pois=1, include_poi_ids=True)

        pd_s, pd_res = timed(pandana_run, 1 if quick else 3)

        ours = res.nodes["cost"].to_numpy()
        fin = np.isfinite(floor[0])
        nx_arr = np.full(n, np.inf)
        pos = {v: i for i, v in enumerate(node_ids.tolist())}
        nx_arr[[pos[k] for k in nx_d]] = list(nx_d.values())
        pd_arr = pd_res[1].reindex(node_ids).to_numpy(float)
        row.update(
            ours_s=ours_s,
            ours_with_labelled_tables_s=tables_s,
            scipy_floor_s=floor_s,
            scipy_floor_search_order_s=floor_ordered_s,
            networkx_s=nx_s,
            igraph_s=ig_s,
            pandana_s=pd_s,
            x_vs_networkx=nx_s / ours_s,
            x_vs_pandana=pd_s / ours_s,
            x_vs_igraph=ig_s / ours_s,
            ratio_to_floor=ours_s / floor_s,
            ratio_to_floor_search_order=ours_s / floor_ordered_s,
            max_diff_vs_networkx_m=float(np.max(np.abs(ours[fin] - nx_arr[fin]))),
            same_reachable_as_networkx=bool(np.array_equal(np.isfinite(ours), np.isfinite(nx_arr))),
            max_diff_vs_scipy_floor_m=float(np.max(np.abs(ours[fin] - floor[0][fin]))),
            max_diff_vs_igraph_m=float(np.max(np.abs(ours[fin] - ig_d[fin]))),
            max_diff_vs_pandana_m=float(np.nanmax(np.abs(ours[fin] - pd_arr[fin]))),
            peak_mb_ours=peak_mb(
                lambda fs=fac_snap, ds=dem_snap: nearest_facility(net, PROFILE, fs, ds, weight=WEIGHT)
            ),
            peak_mb_floor=peak_mb(
                lambda fi=fac_idx: dijkstra(csr_rev, indices=fi, min_only=True, return_predecessors=True)
            ),
            peak_mb_networkx=peak_mb(
                lambda fn=fac_nodes: nx.multi_source_dijkstra_path_length(Gu, fn, weight="length")
            ),
        )
        logger.info(
            "nearest facility F=%d: %s", F, {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
        )
        nf.append(row)
    result["nearest_facility"] = nf

    # 5,000 x 500 cost table within 3 km
    n_dem, n_cand, cutoff = (5000, 500, 3000.0) if not quick else (1000, 100, 3000.0)
    cand_idx = rng.choice(usable_nodes, n_cand, replace=False)
    dem_idx = rng.choice(usable_nodes, n_dem)
    cand_snap = snap_points(
        net,
        net.node_x[cand_idx],
        net.node_y[cand_idx],
        profile=PROFILE,
        index=index,
        ids=[f"c{i}" for i in range(n_cand)],
    )
    dem_snap = snap_points(
        net, net.node_x[dem_idx], net.node_y[dem_idx], profile=PROFILE, index=index, ids=np.arange(n_dem)
    )
    ours_s, table = timed(lambda: cost_matrix(net, PROFILE, dem_snap, cand_snap, weight=WEIGHT, cutoff=cutoff), reps)
    floor_s, D = timed(lambda: dijkstra(csr_rev, indices=cand_idx, limit=cutoff)[:, dem_idx], reps)
    cand_nodes = node_ids[cand_idx].tolist()

    def nx_matrix():
        return [nx.single_source_dijkstra_path_length(Gu, c, cutoff=cutoff, weight="length") for c in cand_nodes]

    nx_s, nx_m = timed(nx_matrix, 1)
    ig_s, _ = timed(
        lambda: gi_rev.distances(
            source=cand_idx.tolist(), target=np.unique(dem_idx).tolist(), weights=w_rev, mode="out"
        ),
        1,
    )
    # compare: every pair within the cutoff
    expected = {}
    dem_nodes = node_ids[dem_idx]
    for ci, d in enumerate(nx_m):
        for di, dn in enumerate(dem_nodes.tolist()):
            c = d.get(dn)
            if c is not None:
                expected[(di, f"c{ci}")] = c
    got = {(d, c): v for d, c, v in table.itertuples(index=False)}
    same_pairs = set(got) == set(expected)
    diff = max(abs(got[k] - expected[k]) for k in set(got) & set(expected))
    result["cost_matrix"] = {
        "demand_points": n_dem,
        "candidates": n_cand,
        "cutoff_m": cutoff,
        "pairs_within_cutoff": len(table),
        "ours_s": ours_s,
        "scipy_floor_s": floor_s,
        "networkx_s": nx_s,
        "igraph_no_cutoff_s": ig_s,
        "pandana": "no cost-matrix-with-cutoff API (nearest_pois/aggregate only); not run",
        "ratio_to_floor": ours_s / floor_s,
        "x_vs_networkx": nx_s / ours_s,
        "same_pairs_as_networkx": same_pairs,
        "max_diff_vs_networkx_m": diff,
        "peak_mb_ours": peak_mb(lambda: cost_matrix(net, PROFILE, dem_snap, cand_snap, weight=WEIGHT, cutoff=cutoff)),
        "peak_mb_floor": peak_mb(lambda: dijkstra(csr_rev, indices=cand_idx, limit=cutoff)),
    }
    logger.info("cost matrix: %s", result["cost_matrix"])
    return result


def scaled_network(out: Path, factor: float) -> Path:
    """Generate a SYNTHETIC network on the Bishan boundary scaled by ``factor`` (area × factor²)."""
    import shapely.affinity

    from layers.district import load_district
    from synthetic.reference import road_inputs
    from synthetic.roads import generate_road_network, write_osm_bz2

    if out.exists():
        return out
    import pandas as pd

    district = load_district(ROOT / "data" / "bishan")
    villages = pd.read_csv(district.path("villages"))
    inputs = road_inputs(district, villages)
    c = inputs["boundary"].centroid
    inputs["boundary"] = shapely.affinity.scale(inputs["boundary"], factor, factor, origin=c)
    for key in ("seats_xy", "villages_xy"):
        inputs[key] = (inputs[key] - [c.x, c.y]) * factor + [c.x, c.y]
    cen = inputs["urban_centres"].copy()
    cen[:, :2] = (cen[:, :2] - [c.x, c.y]) * factor + [c.x, c.y]
    cen[:, 2] *= factor
    inputs["urban_centres"] = cen
    xml = generate_road_network(**inputs, crs=district.crs, seed=district.seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_osm_bz2(xml, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller inputs")
    parser.add_argument("--scale4", action="store_true", help="also run on a generated network of 4x the area")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/accessplan-bench-cache"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    runs = [run(ROOT / "data" / "bishan" / "roads.osm.bz2", "bishan", args.quick, args.cache_dir)]
    if args.scale4:
        src = scaled_network(args.cache_dir / "bishan_x4.osm.bz2", 2.0)
        runs.append(run(src, "bishan_x4 (SYNTHETIC, boundary scaled 2x)", args.quick, args.cache_dir))
    out = {
        "quick": args.quick,
        "profile": PROFILE,
        "weight": WEIGHT,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores (shared)",
        "runs": runs,
        "notes": "Facilities and demand sit on nodes so every library answers the same question; "
        "times are medians; peak memory by tracemalloc (Python/numpy allocations only, not igraph/pandana C++).",
    }
    res_dir = ROOT / "benchmarks" / "results"
    res_dir.mkdir(parents=True, exist_ok=True)
    (res_dir / "routing.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    (res_dir / "routing.md").write_text(markdown(out), encoding="utf-8")


def markdown(out: dict) -> str:
    lines = [
        f"# Routing benchmark ({'quick' if out['quick'] else 'full'}; {out['profile']}, {out['weight']})",
        "",
        "Nearest facility: `ours` is `geo.routing.nearest_facility` end to end (5,000 demand points and every node; "
        "a multi-source Dijkstra compiled with numba, on the core left after peeling dead-end trees); the scipy "
        "floor is one `scipy.sparse.csgraph.dijkstra(min_only=True)` over the whole graph (nodes only); networkx is "
        "`multi_source_dijkstra_path_length` on the osmnx graph; pandana is `nearest_pois` after `set_pois`. "
        "Medians of repeated runs in one process on the same inputs.",
        "",
    ]
    for r in out["runs"]:
        lines += [
            f"## {r['network']}: {r['nodes']:,} nodes, {r['arcs']:,} arcs",
            "",
            f"Cache reload {r['cache_reload_s']:.3f} s; snap 5,000 points "
            f"{r['snap_5000']['query_s'] * 1000:.1f} ms (index build "
            f"{r['snap_5000']['index_build_s'] * 1000:.0f} ms); pandana setup {r['pandana_setup_s']:.2f} s; "
            f"first nearest-facility call in the process {r['first_call_s']:.2f} s "
            "(numba compiles or loads its cache).",
            "",
            "| F | ours s | scipy floor s | floor, our node order s | networkx s | igraph s | pandana s | ×nx "
            "| ×pandana | ours/floor | ours/ordered floor | max Δ nx m |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for x in r["nearest_facility"]:
            lines.append(
                f"| {x['facilities']} | {x['ours_s']:.4f} | {x['scipy_floor_s']:.4f} | "
                f"{x['scipy_floor_search_order_s']:.4f} | {x['networkx_s']:.3f} | "
                f"{x['igraph_s']:.4f} | {x['pandana_s']:.3f} | {x['x_vs_networkx']:.0f} | {x['x_vs_pandana']:.0f} | "
                f"{x['ratio_to_floor']:.2f} | {x['ratio_to_floor_search_order']:.2f} | "
                f"{x['max_diff_vs_networkx_m']:.1e} |"
            )
        m = r["cost_matrix"]
        lines += [
            "",
            f"Cost table {m['demand_points']:,} × {m['candidates']} within {m['cutoff_m']:.0f} m: ours "
            f"{m['ours_s']:.3f} s, scipy floor {m['scipy_floor_s']:.3f} s (ratio {m['ratio_to_floor']:.2f}), "
            f"networkx {m['networkx_s']:.2f} s, igraph (no cutoff) {m['igraph_no_cutoff_s']:.2f} s; "
            f"{m['pairs_within_cutoff']:,} pairs, same pairs as networkx: {m['same_pairs_as_networkx']}, "
            f"max Δ {m['max_diff_vs_networkx_m']:.1e} m.",
            "",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
