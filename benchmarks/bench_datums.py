"""Benchmark geo.datums.convert on 1,000,000 points against a pure-Python per-point loop.

Run from the repository root:  .venv/bin/python benchmarks/bench_datums.py [--n 1000000]

For each of the six directions it times `convert` on random points over China (median of 5 runs,
wall clock and CPU time of this process), and the way a user would otherwise do it: a per-point
loop of the coordtransform-style formula in plain Python (written below), timed on a 10,000-point
sample (median of 3) and scaled to the full count. CPU times are the steadier figure on a busy
machine. coordtransform's GCJ-02 -> WGS-84 is the one-step approximation; the "iterative loop" row
times a per-point fixed-point loop as accurate as ours. Results are printed and written to
benchmarks/results/datums.json. It only measures: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from geo.datums import convert  # noqa: E402

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "datums.json"
EARTH_RADIUS_M = 6_371_008.8
RUNS = 5
SAMPLE_N = 10_000
DIRECTIONS = [
    ("wgs84", "gcj02"),
    ("gcj02", "wgs84"),
    ("gcj02", "bd09"),
    ("bd09", "gcj02"),
    ("wgs84", "bd09"),
    ("bd09", "wgs84"),
]

# --- reference: the per-point formula as commonly pasted into projects (pure Python) -------------

A = 6378245.0
EE = 0.00669342162296594323
X_PI = math.pi * 3000.0 / 180.0


def _out_of_china(lng, lat):
    return not (72.004 <= lng <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _delta(lng, lat):
    x, y = lng - 105.0, lat - 35.0
    s = (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x)) + s
    dlat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    dlat += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    dlng = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x)) + s
    dlng += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    dlng += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    rad = lat / 180.0 * math.pi
    magic = 1 - EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((A * (1 - EE)) / (magic * sqrt_magic) * math.pi)
    dlng = (dlng * 180.0) / (A / sqrt_magic * math.cos(rad) * math.pi)
    return dlng, dlat


def py_wgs84_to_gcj02(lng, lat):
    if _out_of_china(lng, lat):
        return lng, lat
    dlng, dlat = _delta(lng, lat)
    return lng + dlng, lat + dlat


def py_gcj02_to_wgs84(lng, lat):
    """One-step approximation, as coordtransform does it."""
    if _out_of_china(lng, lat):
        return lng, lat
    dlng, dlat = _delta(lng, lat)
    return lng - dlng, lat - dlat


def py_gcj02_to_wgs84_iterative(lng, lat, tol=1e-9, max_iter=10):
    """Per-point fixed-point inverse w <- target - offset(w), as accurate as geo.datums."""
    if _out_of_china(lng, lat):
        return lng, lat
    w_lng, w_lat = lng, lat
    for _ in range(max_iter):
        dlng, dlat = _delta(w_lng, w_lat)
        new_lng, new_lat = lng - dlng, lat - dlat
        done = abs(new_lng - w_lng) < tol and abs(new_lat - w_lat) < tol
        w_lng, w_lat = new_lng, new_lat
        if done:
            break
    return w_lng, w_lat


def py_gcj02_to_bd09(lng, lat):
    z = math.sqrt(lng * lng + lat * lat) + 0.00002 * math.sin(lat * X_PI)
    theta = math.atan2(lat, lng) + 0.000003 * math.cos(lng * X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def py_bd09_to_gcj02(lng, lat):
    x, y = lng - 0.0065, lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * X_PI)
    return z * math.cos(theta), z * math.sin(theta)


PY_LOOPS = {
    ("wgs84", "gcj02"): py_wgs84_to_gcj02,
    ("gcj02", "wgs84"): py_gcj02_to_wgs84,
    ("gcj02", "bd09"): py_gcj02_to_bd09,
    ("bd09", "gcj02"): py_bd09_to_gcj02,
    ("wgs84", "bd09"): lambda lng, lat: py_gcj02_to_bd09(*py_wgs84_to_gcj02(lng, lat)),
    ("bd09", "wgs84"): lambda lng, lat: py_gcj02_to_wgs84(*py_bd09_to_gcj02(lng, lat)),
}

# --- timing helpers --------------------------------------------------------------------------------


def haversine_m(lon1, lat1, lon2, lat2):
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    dlam = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin((phi2 - phi1) / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))


def time_numpy(lon, lat, src, dst):
    walls, cpus = [], []
    for _ in range(RUNS):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        out = convert(lon, lat, src, dst)
        cpus.append(time.process_time() - cpu0)
        walls.append(time.perf_counter() - wall0)
    return out, walls, cpus


def time_loop(func, lon, lat, runs=3):
    """Return the loop's output and the median wall and CPU seconds of `runs` runs."""
    pairs = list(zip(lon.tolist(), lat.tolist(), strict=True))
    walls, cpus = [], []
    for _ in range(runs):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        out = [func(x, y) for x, y in pairs]
        cpus.append(time.process_time() - cpu0)
        walls.append(time.perf_counter() - wall0)
    return np.array(out), statistics.median(walls), statistics.median(cpus)


def machine_info():
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "loadavg_1min_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def main(n):
    info = machine_info()
    rng = np.random.default_rng(0)
    wgs_lon, wgs_lat = rng.uniform(73.0, 135.0, n), rng.uniform(18.0, 53.0, n)
    inputs = {
        "wgs84": (wgs_lon, wgs_lat),
        "gcj02": convert(wgs_lon, wgs_lat, "wgs84", "gcj02"),
        "bd09": convert(wgs_lon, wgs_lat, "wgs84", "bd09"),
    }
    sample = min(SAMPLE_N, n)
    scale = n / sample
    rows = []
    print(f"{n:,} points, numpy median of {RUNS} runs; Python loop on {sample:,} points scaled x{scale:g}")
    print(
        f"{'direction':16} {'numpy wall s':>12} {'numpy cpu s':>11} {'py loop s':>10} {'py cpu s':>9} "
        f"{'speedup':>8} {'cpu x':>7} {'diff m':>8}"
    )
    for src, dst in DIRECTIONS:
        lon, lat = inputs[src]
        (out_lon, out_lat), walls, cpus = time_numpy(lon, lat, src, dst)
        ref, loop_s, loop_cpu_s = time_loop(PY_LOOPS[(src, dst)], lon[:sample], lat[:sample])
        diff_m = float(haversine_m(out_lon[:sample], out_lat[:sample], ref[:, 0], ref[:, 1]).max())
        row = {
            "direction": f"{src}->{dst}",
            "numpy_wall_median_s": statistics.median(walls),
            "numpy_cpu_median_s": statistics.median(cpus),
            "numpy_wall_runs_s": walls,
            "python_loop_sample_s": loop_s,
            "python_loop_scaled_s": loop_s * scale,
            "python_loop_scaled_cpu_s": loop_cpu_s * scale,
            "speedup_wall": loop_s * scale / statistics.median(walls),
            "speedup_cpu": loop_cpu_s * scale / statistics.median(cpus),
            "max_diff_vs_python_loop_m": diff_m,
        }
        rows.append(row)
        print(
            f"{row['direction']:16} {row['numpy_wall_median_s']:12.3f} {row['numpy_cpu_median_s']:11.3f} "
            f"{row['python_loop_scaled_s']:10.2f} {row['python_loop_scaled_cpu_s']:9.2f} "
            f"{row['speedup_wall']:7.1f}x {row['speedup_cpu']:6.1f}x {diff_m:8.3f}"
        )

    # The accurate per-point alternative for the inverse.
    lon, lat = inputs["gcj02"]
    ref, loop_s, loop_cpu_s = time_loop(py_gcj02_to_wgs84_iterative, lon[:sample], lat[:sample])
    gcj_row = next(r for r in rows if r["direction"] == "gcj02->wgs84")
    iterative = {
        "direction": "gcj02->wgs84 (python_loop_iterative)",
        "python_loop_sample_s": loop_s,
        "python_loop_scaled_s": loop_s * scale,
        "python_loop_scaled_cpu_s": loop_cpu_s * scale,
        "speedup_wall": loop_s * scale / gcj_row["numpy_wall_median_s"],
        "speedup_cpu": loop_cpu_s * scale / gcj_row["numpy_cpu_median_s"],
        "max_diff_vs_python_loop_m": float(
            haversine_m(*convert(lon[:sample], lat[:sample], "gcj02", "wgs84"), ref[:, 0], ref[:, 1]).max()
        ),
    }
    print(
        f"{'gcj02->wgs84, iterative loop':42} {iterative['python_loop_scaled_s']:10.2f} "
        f"{iterative['python_loop_scaled_cpu_s']:9.2f} {iterative['speedup_wall']:7.1f}x "
        f"{iterative['speedup_cpu']:6.1f}x {iterative['max_diff_vs_python_loop_m']:8.1e}"
    )
    one_step, _, _ = time_loop(py_gcj02_to_wgs84, lon[:sample], lat[:sample], runs=1)
    one_step_m = haversine_m(wgs_lon[:sample], wgs_lat[:sample], one_step[:, 0], one_step[:, 1])
    info["loadavg_1min_at_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result = {
        "benchmark": "geo.datums.convert vs pure-Python per-point loop",
        "n_points": n,
        "numpy_runs": RUNS,
        "python_loop_sample": sample,
        "points": "uniform lon 73-135, lat 18-53 (WGS-84, seed 0), converted to each source datum",
        "machine": info,
        "results": [*rows, iterative],
        "one_step_inverse_error_m": {
            "max": float(one_step_m.max()),
            "median": float(np.median(one_step_m)),
        },
    }
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"one-step inverse error on the sample: max {one_step_m.max():.2f} m, median {np.median(one_step_m):.2f} m")
    print(f"machine: {info}")
    print(f"wrote {RESULTS_PATH}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="number of points (default 1,000,000)")
    main(parser.parse_args().n)
