"""Benchmark preparing a road network from an OSM file: geo.osm (pyosmium, arrays) vs osmnx.

Run from the repository root:
    .venv/bin/python benchmarks/bench_roads.py [--sizes 35k,150k,1M] [--no-old] [--timeout S]
Writes benchmarks/results/roads.json and roads.md; rows of sizes not run keep their earlier results
(each row records the machine load when it started), so the 1M size can be run on its own.

Inputs: the district's road file (data/bishan/roads.osm.bz2, SYNTHETIC, from geo.synthetic_roads:
~36,700 road nodes after simplification) tiled 1, 4 and 27 times side by side (node and way ids
shifted per tile), written with pyosmium as OSM PBF (ours) and as OSM XML (osmnx reads only XML).

Each measurement runs in a fresh subprocess; time is wall-clock from the first read to the result
(imports excluded), memory the process's peak resident set (``ru_maxrss``, imports included) and
that peak less the resident set right after the imports (what the work itself added):

- ``ours``: ``geo.osm.read_roads`` on the PBF and ``geo.prepared.prepare_roads`` (walk, wheelchair,
  drive) in EPSG:32648: the prepared network the analyses use.
- ``osmnx``: ``osmnx.graph_from_xml(xml, simplify=True, retain_all=True)`` alone: only the graph,
  before any projection or preparation (a lower bound for any osmnx-based path).
- ``old``: the previous accessplan path, ``geo.network.graph_from_file`` on the PBF (pyosmium to XML,
  osmnx, highway filter, simplify), ``project_graph`` and ``prepare_network``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BASE = ROOT / "data" / "bishan" / "roads.osm.bz2"
CACHE = Path(tempfile.gettempdir()) / "accessplan-bench-roads"  # generated inputs (1M: ~150 MB of XML)
RESULTS = ROOT / "benchmarks" / "results"
CRS = "EPSG:32648"
SIZES = {"35k": 1, "150k": 4, "1M": 27}  # tiles of the district's ~36,700-node network
ID_STEP = 10**8  # id offset per tile (the base ids stay below 10**6)
GOALS = {"speedup": 5.0, "memory_share": 1 / 3, "1M_seconds": 60.0, "1M_gb": 3.0}
CHILD_TIMEOUT_S = 3 * 3600


def write_tiles(tiles: int) -> tuple[Path, Path]:
    """Write the base network tiled ``tiles`` times as PBF and OSM XML (kept in CACHE between runs)."""
    import osmium
    from osmium.osm.mutable import Node, Way

    pbf, xml = CACHE / f"bishan_x{tiles}.osm.pbf", CACHE / f"bishan_x{tiles}.osm"
    if pbf.exists() and xml.exists():
        return pbf, xml
    CACHE.mkdir(parents=True, exist_ok=True)
    nodes = [(n.id, n.location.lon, n.location.lat) for n in osmium.FileProcessor(str(BASE), osmium.osm.NODE)]
    ways = [(w.id, [n.ref for n in w.nodes], dict(w.tags)) for w in osmium.FileProcessor(str(BASE), osmium.osm.WAY)]
    box = osmium.io.Reader(str(BASE)).header().box()
    dx = (box.top_right.lon - box.bottom_left.lon) * 1.02
    dy = (box.top_right.lat - box.bottom_left.lat) * 1.02
    cols = math.ceil(math.sqrt(tiles))
    for path in (pbf, xml):
        tmp = path.with_name(path.name.replace(".osm", ".tmp.osm"))
        with osmium.SimpleWriter(str(tmp), overwrite=True) as writer:
            for t in range(tiles):
                ox_, oy = (t % cols) * dx, (t // cols) * dy
                for node_id, lon, lat in nodes:
                    writer.add_node(Node(id=node_id + t * ID_STEP, location=(lon + ox_, lat + oy)))
            for t in range(tiles):
                for way_id, refs, tags in ways:
                    writer.add_way(Way(id=way_id + t * ID_STEP, nodes=[r + t * ID_STEP for r in refs], tags=tags))
        tmp.replace(path)
    return pbf, xml


def child(kind: str, path: str) -> None:
    """Run one measurement and print its JSON on the last line of stdout."""
    import warnings

    warnings.simplefilter("ignore")  # tiles are separate components: the share warning is expected
    if kind == "ours":
        from geo.osm import read_roads
        from geo.prepared import prepare_roads
        from geo.profiles import load_profiles

        base_mb = _maxrss_mb()
        start = time.perf_counter()
        roads = read_roads(path, min_component_share=0)
        net = prepare_roads(roads, crs=CRS, profiles=load_profiles())
        out = {"nodes": net.n_nodes, "edges": net.n_pieces, "ways_split": roads.ways_split}
    elif kind == "osmnx":
        import osmnx as ox

        base_mb = _maxrss_mb()
        start = time.perf_counter()
        G = ox.graph_from_xml(path, simplify=True, retain_all=True)
        out = {"nodes": len(G), "edges": len(G.edges)}
    elif kind == "old":
        from geo.network import graph_from_file, project_graph
        from geo.prepared import prepare_network
        from geo.profiles import load_profiles

        base_mb = _maxrss_mb()
        start = time.perf_counter()
        G = project_graph(graph_from_file(path, min_component_share=0), CRS)
        net = prepare_network(G, profiles=load_profiles())
        out = {"nodes": net.n_nodes, "edges": net.n_pieces}
    else:
        msg = f"unknown kind {kind!r}"
        raise SystemExit(msg)
    out |= {"seconds": time.perf_counter() - start, "peak_mb": _maxrss_mb(), "after_imports_mb": base_mb}
    print(json.dumps(out))


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_child(kind: str, path: Path, timeout_s: float = CHILD_TIMEOUT_S) -> dict:
    """Run ``child`` in a fresh interpreter; return its result (or the error, e.g. a timeout)."""
    cmd = [sys.executable, __file__, "--child", kind, str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"stopped after {timeout_s:.0f} s (timeout)"}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help=f"comma-separated subset of {list(SIZES)}")
    parser.add_argument("--no-old", action="store_true", help="skip the previous osmnx-based accessplan path")
    parser.add_argument(
        "--timeout", type=float, default=CHILD_TIMEOUT_S, help="seconds before a measurement is stopped"
    )
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown sizes {unknown}; choose from {list(SIZES)}")
    previous = RESULTS / "roads.json"
    kept = json.loads(previous.read_text(encoding="utf-8"))["rows"] if previous.exists() else []
    rows = {row["size"]: row for row in kept if row["size"] in SIZES}
    for size in sizes:
        pbf, xml = write_tiles(SIZES[size])
        row = {"size": size, "tiles": SIZES[size], "pbf_mb": pbf.stat().st_size / 2**20}
        row["load_at_start"] = round(os.getloadavg()[0], 1)
        row["command"] = " ".join(["python", "benchmarks/bench_roads.py", *sys.argv[1:]])
        row["ours"] = run_child("ours", pbf, args.timeout)
        row["osmnx"] = run_child("osmnx", xml, args.timeout)
        if not args.no_old:
            row["old"] = run_child("old", pbf, args.timeout)
        rows[size] = row
        print(json.dumps(row), flush=True)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs",
        "python": platform.python_version(),
        "goals": GOALS,
        "rows": [rows[s] for s in SIZES if s in rows],
    }
    sizes = [row["size"] for row in report["rows"]]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "roads.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "roads.md").write_text(markdown(report, sizes), encoding="utf-8")


def markdown(report: dict, sizes: list[str]) -> str:
    """Render the results as the Markdown page linked from the README."""
    lines = [
        "# Road network preparation benchmark",
        "",
        "From an OSM file to a prepared network. `ours`: `geo.osm.read_roads` on OSM PBF + `prepare_roads`",
        "(three profiles, projected). `osmnx`: `osmnx.graph_from_xml(simplify=True, retain_all=True)` on the",
        "same data as OSM XML, the graph only. `old`: the previous accessplan path (`graph_from_file` through",
        "osmnx, `project_graph`, `prepare_network`). Inputs: the district's SYNTHETIC road file tiled 1, 4 and",
        "27 times. Each run in a fresh process; seconds exclude imports, peak RSS includes them (the last",
        "column: peak less the RSS right after the imports).",
        "",
        f"Machine: {report['machine']}; Python {report['python']}. Sizes run: {', '.join(sizes)}.",
        "The machine was shared: other agents' tests and builds ran on the same 2 cores during these runs",
        "(load average when each size started in the last table), so the times are upper bounds.",
        "",
        "| size | road nodes (ours / osmnx) | ours s | osmnx s | old s | ×osmnx | ours MB | osmnx MB | old MB"
        " | ours/osmnx memory | same, above imports |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        ours, ox_, old = row["ours"], row["osmnx"], row.get("old", {})

        def num(d: dict, key: str, fmt: str) -> str:
            return format(d[key], fmt) if key in d else d.get("error", "—")

        speed = f"{ox_['seconds'] / ours['seconds']:.1f}" if "seconds" in ours and "seconds" in ox_ else "—"
        share = added = "—"
        if "peak_mb" in ours and "peak_mb" in ox_:
            share = f"{ours['peak_mb'] / ox_['peak_mb']:.2f}"
            work = ours["peak_mb"] - ours["after_imports_mb"], ox_["peak_mb"] - ox_["after_imports_mb"]
            added = f"{work[0]:,.0f} / {work[1]:,.0f} MB = {work[0] / work[1]:.2f}"
        lines.append(
            f"| {row['size']} | {num(ours, 'nodes', ',')} / {num(ox_, 'nodes', ',')} | {num(ours, 'seconds', '.2f')}"
            f" | {num(ox_, 'seconds', '.2f')} | {num(old, 'seconds', '.2f')} | {speed} | {num(ours, 'peak_mb', ',.0f')}"
            f" | {num(ox_, 'peak_mb', ',.0f')} | {num(old, 'peak_mb', ',.0f')} | {share} | {added} |"
        )
    lines += ["", "| size | load at start | command |", "|---|---|---|"]
    lines += [f"| {r['size']} | {r.get('load_at_start', '—')} | `{r.get('command', '—')}` |" for r in report["rows"]]
    goals = report["goals"]
    lines += [
        "",
        f"Goals: ≥ {goals['speedup']:.0f}× faster than osmnx and ≤ {goals['memory_share']:.2f} of its memory; "
        f"1M nodes within {goals['1M_seconds']:.0f} s and {goals['1M_gb']:.0f} GB.",
        "Our node count is a little higher: a piece also ends where the highway class or street name changes.",
        "`—`: not run (the `old` path at 1M: `--no-old`, it is slower than osmnx alone).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
