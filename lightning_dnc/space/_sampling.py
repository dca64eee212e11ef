"""Points in the unit cube and the SPEC §4 integer mapping.

Prior points come from an unscrambled Sobol sequence that skips its all-zeros first point, so the
first point is the centre (0.5, ..., 0.5), or from a Sobol sequence scrambled from a seed (one per
search); candidate pools are uniform random from a seed.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

METHODS = ("sobol", "scrambled-sobol", "random")


def unit_points(n: int, dim: int, seed: int | None = 0, method: str = "sobol") -> np.ndarray:
    """``n`` points in ``[0, 1)^dim``, shape (n, dim), float64.

    Parameters
    ----------
    n : int
        Number of points (>= 0).
    dim : int
        Dimension (>= 1).
    seed : int or None, default 0
        Seed of the uniform generator for ``method="random"`` and of the scrambling for
        ``"scrambled-sobol"``; the unscrambled Sobol sequence (``"sobol"``) ignores it.
    method : {"sobol", "scrambled-sobol", "random"}
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"`n` must be an integer >= 0, got {n!r}.")
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {list(METHODS)}, got {method!r}.")
    if method != "sobol":
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"`seed` must be an integer >= 0 or None, got {seed!r}.")
        if method == "random":
            return np.random.default_rng(seed).random((int(n), dim))
    from scipy.stats import qmc  # scipy.stats is slow to import; only Sobol needs it

    if method == "scrambled-sobol":
        engine = qmc.Sobol(d=dim, scramble=True, seed=seed)
    else:
        engine = qmc.Sobol(d=dim, scramble=False)
        engine.fast_forward(1)  # skip the all-zeros point: the first point is the centre
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*balance properties.*", category=UserWarning)
        return engine.random(int(n))


def int_from_unit(u: float, lo: int, hi: int) -> int:
    """SPEC §4: ``floor(lo + u * (hi + 1 - lo))`` for ``u`` in ``[0, 1)``, kept within [lo, hi]."""
    return min(int(math.floor(lo + u * (hi + 1 - lo))), hi)


def log_uniform_exponent(u: float, lo: float, hi: float) -> float:
    """The exponent ``a + u (b - a)`` with ``a = log10(lo)``, ``b = log10(hi)``."""
    a, b = math.log10(lo), math.log10(hi)
    return a + u * (b - a)
