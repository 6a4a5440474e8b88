"""Random graphs of the p-median literature's kind (Beasley's OR-Library recipe), for tests and benchmarks."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path


def beasley_costs(n: int, seed: int) -> np.ndarray:
    """Return the all-pairs shortest-path costs of a Beasley-style random graph on ``n`` vertices.

    Beasley's recipe (OR-Library ``pmed``): a ring through every vertex, then random edges until there are
    n²/50, each with an integer weight drawn from 1–100; every vertex is a demand point and a candidate.
    """
    rng = np.random.default_rng(seed)
    u, v = list(range(n)), [(i + 1) % n for i in range(n)]
    seen = {(min(a, b), max(a, b)) for a, b in zip(u, v, strict=True)}
    while len(u) < n * n // 50:
        a, b = (int(x) for x in rng.integers(0, n, 2))
        if a != b and (min(a, b), max(a, b)) not in seen:
            seen.add((min(a, b), max(a, b)))
            u.append(a)
            v.append(b)
    graph = sp.coo_matrix((rng.integers(1, 101, len(u)).astype(float), (u, v)), shape=(n, n)).tocsr()
    return shortest_path(graph, directed=False)
