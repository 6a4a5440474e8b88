"""Benchmark slope-aware wheelchair coverage against flat walking coverage on the embedded Bishan data.

Run from the repository root:  .venv/bin/python benchmarks/bench_slopes.py
Writes benchmarks/results/slopes.json and the "Slopes" section of benchmarks/results/analyses.md.

Two prepared networks of the same roads: flat (``CostSettings(slopes=False)``) and slope-aware (the
district's DEM, ``data/bishan/dem.tif``: synthetic, two ridges and the valley between). For each
facility layer the households' coverage within 15 minutes is timed for walking on the flat network
and for the wheelchair on the slope-aware one (directed costs, grades above 1:12 impassable that
way); the target is a ratio ≤ 1.5. The comparison counts the households covered per town for the
wheelchair and for walking, flat against slopes.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_analyses import LAYERS, SLOPES_BEGIN, SLOPES_END, THRESHOLD, read_points, timed_cpu  # noqa: E402

from analyses.costs import CostSettings, Placer, load_district_network  # noqa: E402
from analyses.coverage import measure_coverage  # noqa: E402
from layers.district import load_district  # noqa: E402

logger = logging.getLogger("bench_slopes")
REPEAT = 7
TARGET_RATIO = 1.5


def run() -> dict:
    district = load_district()
    with tempfile.TemporaryDirectory() as cold:
        t = time.perf_counter()
        flat_net = load_district_network(district, cache_dir=cold, settings=CostSettings(slopes=False))
        flat_prepare_s = time.perf_counter() - t
        t = time.perf_counter()
        slope_net = load_district_network(district, cache_dir=cold, settings=CostSettings())
        slope_prepare_s = time.perf_counter() - t
    flat, slope = Placer(flat_net), Placer(slope_net)
    households = read_points(district, "household", None)
    for placer in (flat, slope):  # spatial indexes built once, as in the app
        for profile in ("walk", "wheelchair"):
            placer.snap(households.iloc[:1], profile)
    wc = slope_net.profile("wheelchair")
    grade = np.abs(slope_net.piece_grade)
    usable_flat = flat_net.profile("wheelchair").piece_usable
    network = {
        "nodes": slope_net.n_nodes,
        "road_pieces": slope_net.n_pieces,
        "prepare_flat_s": flat_prepare_s,
        "prepare_slopes_s": slope_prepare_s,
        "pieces_steeper_than_1_12": int((grade > 0.0833).sum()),
        "wheelchair_pieces_closed_both_ways": int((usable_flat & ~wc.piece_usable).sum()),
        "wheelchair_pieces_one_way_by_slope": int((wc.piece_fwd ^ wc.piece_bwd).sum()),
        "median_abs_grade": float(np.nanmedian(grade)),
    }
    rows, towns = [], []
    for layer, status in LAYERS.items():
        fac = read_points(district, layer, status)
        cases = {
            ("walk", "flat"): (flat, "walk"),
            ("walk", "slopes"): (slope, "walk"),
            ("wheelchair", "flat"): (flat, "wheelchair"),
            ("wheelchair", "slopes"): (slope, "wheelchair"),
        }
        timings, covered = {}, {}
        for key, (placer, profile) in cases.items():
            wall, cpu, res = timed_cpu(
                lambda pl=placer, pr=profile, f=fac: measure_coverage(
                    pl, f, households, profile=pr, thresholds=[THRESHOLD]
                ),
                REPEAT,
            )
            timings[key] = (wall, cpu)
            points = res.points
            covered[key] = points.groupby("town_code")[f"covered_{THRESHOLD}"].sum()
        base_wall, base_cpu = timings["walk", "flat"]
        wall, cpu = timings["wheelchair", "slopes"]
        rows.append(
            {
                "layer": layer,
                "facilities": len(fac),
                "households": len(households),
                "walk_flat_s": base_wall,
                "walk_flat_cpu_s": base_cpu,
                "wheelchair_slopes_s": wall,
                "wheelchair_slopes_cpu_s": cpu,
                "ratio_wall": wall / base_wall,
                "ratio_cpu": cpu / base_cpu,
                **{f"covered_{p}_{m}": int(covered[p, m].sum()) for p, m in cases},
            }
        )
        logger.info("%s", rows[-1])
        table = pd.DataFrame({f"{p}_{m}": covered[p, m] for p, m in cases}).fillna(0).astype(int)
        table.insert(0, "layer", layer)
        towns.append(table.reset_index())
    names = district.town_names()
    by_town = pd.concat(towns, ignore_index=True)
    by_town.insert(1, "town", by_town["town_code"].map(names))
    return {"network": network, "coverage": rows, "by_town": by_town.to_dict("records")}


def markdown(out: dict) -> str:
    n = out["run"]["network"]
    lines = [
        SLOPES_BEGIN,
        "## Slopes: wheelchair on the DEM against walking on the flat (bench_slopes.py)",
        "",
        f"{out['machine']}; Python {out['python']}. DEM `data/bishan/dem.tif` (**synthetic**: two ridges, "
        f"缙云山 east and 云雾山 west, the valley between). {n['road_pieces']:,} road pieces, "
        f"{n['pieces_steeper_than_1_12']:,} steeper than 1:12; for the wheelchair "
        f"{n['wheelchair_pieces_closed_both_ways']:,} closed both ways and "
        f"{n['wheelchair_pieces_one_way_by_slope']:,} passable one way only; median |grade| "
        f"{n['median_abs_grade']:.3f}. Prepare (cold): flat {n['prepare_flat_s']:.1f} s, with the DEM "
        f"{n['prepare_slopes_s']:.1f} s.",
        "",
        f"Coverage of {out['run']['coverage'][0]['households']:,} households within {THRESHOLD}, medians of "
        f"{REPEAT} runs. Target: wheelchair on slopes ≤ {TARGET_RATIO}× walking on the flat.",
        "",
        "| layer | F | walk flat s | wheelchair slopes s | ratio (wall) | ratio (CPU) | covered walk flat "
        "| walk slopes | wheelchair flat | wheelchair slopes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out["run"]["coverage"]:
        lines.append(
            f"| {r['layer']} | {r['facilities']} | {r['walk_flat_s']:.3f} | {r['wheelchair_slopes_s']:.3f} | "
            f"{r['ratio_wall']:.2f} | {r['ratio_cpu']:.2f} | {r['covered_walk_flat']} | {r['covered_walk_slopes']} | "
            f"{r['covered_wheelchair_flat']} | {r['covered_wheelchair_slopes']} |"
        )
    lines += [
        "",
        f"Households covered per town (rehab stations, {THRESHOLD}): flat → slopes",
        "",
        "| town | walk flat | walk slopes | wheelchair flat | wheelchair slopes |",
        "|---|---|---|---|---|",
    ]
    for r in out["run"]["by_town"]:
        if r["layer"] == "rehab_station":
            lines.append(
                f"| {r['town']} | {r['walk_flat']} | {r['walk_slopes']} | {r['wheelchair_flat']} | "
                f"{r['wheelchair_slopes']} |"
            )
    lines += ["", out["notes"], SLOPES_END]
    return "\n".join(lines)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("analyses").setLevel(logging.WARNING)
    logging.getLogger("geo").setLevel(logging.WARNING)
    out = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip() + f", {os.cpu_count()} cores (shared)",
        "run": run(),
        "notes": (
            "Both runs use the same code path (analyses.coverage.measure_coverage: snapping, one multi-source "
            "search on the reversed graph, summaries); the slope-aware graph has more asymmetric arcs, so fewer "
            "dead ends peel off and fewer road nodes are passed through without queueing. The households are "
            "synthetic and the DEM is synthetic: the counts show what slopes change, not Bishan's real coverage."
        ),
    }
    res_dir = ROOT / "benchmarks" / "results"
    (res_dir / "slopes.json").write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md = res_dir / "analyses.md"
    text = md.read_text(encoding="utf-8")
    if SLOPES_BEGIN in text and SLOPES_END in text:
        text = text[: text.index(SLOPES_BEGIN)].rstrip("\n") + "\n" + text[text.index(SLOPES_END) + len(SLOPES_END) :]
    md.write_text(text.rstrip("\n") + "\n\n" + markdown(out) + "\n", encoding="utf-8")
    worst = max(r["ratio_wall"] for r in out["run"]["coverage"])
    logger.info("worst wheelchair-slopes / walk-flat ratio: %.2f (target ≤ %.1f)", worst, TARGET_RATIO)


if __name__ == "__main__":
    main()
