"""Optional: fit omega by maximising the log marginal likelihood (scipy.optimize, log space).

Off by default (SPEC §6 keeps omega = 3 until a benchmark shows fitting helps).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy.optimize import minimize


def fit_omega(
    log_likelihood: Callable[[np.ndarray], float], start: np.ndarray, bounds: tuple[float, float]
) -> np.ndarray:
    """Maximise ``log_likelihood(omega)`` over ``log(omega)`` within ``bounds`` with L-BFGS-B.

    Starts from ``start`` (clipped into the bounds). Non-finite likelihoods are treated as very
    poor so the optimiser moves away. Returns the best omega found (never worse than ``start``).
    """
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    x0 = np.clip(np.log(np.asarray(start, dtype=np.float64)), lo, hi)

    def objective(log_omega: np.ndarray) -> float:
        value = log_likelihood(np.exp(log_omega))
        return -value if math.isfinite(value) else 1e300

    best_x, best_f = x0, objective(x0)
    result = minimize(objective, x0, method="L-BFGS-B", bounds=[(lo, hi)] * x0.shape[0])
    if result.fun < best_f and np.all(np.isfinite(result.x)):
        best_x = result.x
    return np.exp(best_x)
