"""The HiGHS wrapper (``scipy.optimize.milp``): the only place that knows the exact solver."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy
import scipy.sparse as sp

#: Relative MIP gap under which HiGHS may stop and call a solution optimal.
MIP_REL_GAP = 1e-6
#: Seconds scipy and HiGHS's first presolve pass take per variable and non-zero before HiGHS checks its time
#: limit (measured: ~0.4 s for 300k variables; 1.5 s for 145k binaries with 575k non-zeros).
WRAPPER_S_PER_ENTRY = 3e-6
#: Largest model (non-zeros) HiGHS presolves: on an 800k one it ran 15 s past a 30 s limit.
MAX_PRESOLVE_NNZ = 500_000
#: Least time worth starting HiGHS with, seconds (its presolve does not stop sooner).
MIN_HIGHS_S = 0.1


@dataclass(frozen=True)
class MilpOutcome:
    """What HiGHS returned: solution, objective, proven bound, status and solver name."""

    x: np.ndarray | None
    objective: float | None
    bound: float | None
    optimal: bool
    status: int
    message: str
    solver: str


def solver_name() -> str:
    """Return the exact solver's name and version, e.g. ``"HiGHS via scipy 1.17.1"``."""
    return f"HiGHS via scipy {scipy.__version__}"


def solve_milp(
    c: np.ndarray,
    A: sp.csr_matrix,
    row_lo: np.ndarray,
    row_hi: np.ndarray,
    integrality: np.ndarray,
    var_lo: np.ndarray,
    var_hi: np.ndarray,
    *,
    time_limit_s: float,
    presolve: bool = True,
) -> MilpOutcome:
    """Minimise ``c @ x`` subject to ``row_lo <= A x <= row_hi`` with HiGHS (scipy.optimize.milp).

    ``time_limit_s`` covers scipy's copying of the model too (about a microsecond per variable and
    non-zero, ``WRAPPER_S_PER_ENTRY``): HiGHS gets what is left, and is not started (status 1, time
    limit, no solution) when under ``MIN_HIGHS_S`` is.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    highs_s = time_limit_s - WRAPPER_S_PER_ENTRY * (len(c) + A.nnz)
    presolve = presolve and A.nnz <= MAX_PRESOLVE_NNZ
    if highs_s < MIN_HIGHS_S:
        return MilpOutcome(None, None, None, False, 1, "No time left for HiGHS within the time limit.", solver_name())

    constraints = [LinearConstraint(A, row_lo, row_hi)] if A.shape[0] else []
    res = milp(
        c,
        integrality=integrality,
        bounds=Bounds(var_lo, var_hi),
        constraints=constraints,
        options={"time_limit": float(highs_s), "mip_rel_gap": MIP_REL_GAP, "disp": False, "presolve": presolve},
    )
    bound = getattr(res, "mip_dual_bound", None)
    bound = None if bound is None or not np.isfinite(bound) else float(bound)
    x = None if res.x is None else np.asarray(res.x)
    if res.status == 2:  # infeasible
        return MilpOutcome(None, None, None, False, 2, res.message, solver_name())
    objective = None if x is None else float(c @ x)
    if res.status == 0 and bound is None:
        bound = objective
    return MilpOutcome(x, objective, bound, res.status == 0, int(res.status), res.message, solver_name())
