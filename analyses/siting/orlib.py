"""Read the p-median instances of Beasley's OR-Library (``pmed1.txt`` … ``pmed40.txt``), the field's reference.

A file's first line is ``n edges p``; each further line an undirected edge ``a b cost`` with 1-based vertices.
Every vertex is a demand point and a candidate; costs between them are shortest paths along the edges.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path


def read_pmed(path: str | Path) -> tuple[np.ndarray, int]:
    """Return (the n × n shortest-path costs, p) of an OR-Library pmed file; a repeated edge keeps its last cost."""
    lines = Path(path).read_text().split("\n")
    n, _, p = map(int, lines[0].split())
    weights: dict[tuple[int, int], float] = {}
    for line in lines[1:]:
        if line.strip():
            a, b, c = map(int, line.split())
            weights[(a - 1, b - 1)] = weights[(b - 1, a - 1)] = float(c)
    u, v = zip(*weights, strict=True)
    graph = sp.coo_matrix((list(weights.values()), (u, v)), shape=(n, n)).tocsr()
    return shortest_path(graph, directed=False), p
