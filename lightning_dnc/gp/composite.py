"""Expected improvement of the composite objective ``log10(10^a + wc * 10^c)`` under two posteriors.

The search loss is ``log10(f_p + wc * f_c)``. The composite model (``model="composite"``) learns
``a = log10 f_p`` with one GP and ``c = log10 f_c`` with a cost model, each giving a Gaussian
posterior per candidate (independent of each other), and applies the known outer function
exactly (Astudillo & Frazier, "Bayesian Optimization of Composite Functions", ICML 2019):

    EI(x) = E[max(y_best - xi - log10(10^a + wc * 10^c), 0)],
    a ~ N(mean_a, var_a), c ~ N(mean_c, var_c).

The expectation has no closed form; it is an average over a fixed set of standard-normal pairs
``(z_a, z_c)`` (:func:`normal_pairs`: a scrambled Sobol sequence seeded from the search seed,
mapped through the normal quantile), the same pairs for every candidate and every pick: common
random numbers, so the ranking of candidates is smooth in their moments and a replayed search
makes the same picks. With ``wc == 0`` the objective is ``a`` alone and the exact EI is used.
"""

from __future__ import annotations

import math

import numpy as np

from lightning_dnc.gp._jit import jit

SAMPLES = 128
"""Standard-normal pairs per candidate (a power of two: a balanced Sobol sample)."""


def normal_pairs(count: int = SAMPLES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` standard-normal pairs ``(z_a, z_c)`` from a Sobol sequence scrambled by ``seed``.

    Parameters
    ----------
    count : int, default :data:`SAMPLES`
        A power of two keeps the Sobol sample balanced.
    seed : int, default 0
        Seeds the scrambling (the search derives it from its own seed and the stage).
    """
    from scipy.special import ndtri
    from scipy.stats import qmc

    points = qmc.Sobol(2, scramble=True, seed=np.random.default_rng(seed)).random(int(count))
    points = np.clip(points, 0.5 / count, 1.0 - 0.5 / count)  # finite quantiles
    z = ndtri(points)
    return np.ascontiguousarray(z[:, 0]), np.ascontiguousarray(z[:, 1])


def composite_values(a: np.ndarray, c: np.ndarray, wc: float) -> np.ndarray:
    """``log10(10^a + wc * 10^c)`` elementwise (the search loss from its two log terms)."""
    a = np.asarray(a, dtype=np.float64)
    if wc <= 0:
        return a
    return np.logaddexp(a * math.log(10.0), (np.asarray(c, dtype=np.float64) + math.log10(wc)) * math.log(10.0)) / math.log(10.0)


def composite_expected_improvement(mean_a: np.ndarray, var_a: np.ndarray, mean_c: np.ndarray, var_c: np.ndarray,
                                   wc: float, y_best: float, xi: float, pairs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Expected improvement of ``log10(10^a + wc 10^c)`` below ``y_best - xi``, shape (m,).

    Parameters
    ----------
    mean_a, var_a : ndarray, shape (m,)
        Posterior of ``a = log10 f_p`` per candidate.
    mean_c, var_c : ndarray, shape (m,)
        Posterior of ``c = log10 f_c`` per candidate (``var_c`` 0 for an exactly known cost).
    wc : float
        The cost weight (>= 0); 0 gives the exact EI of ``a``.
    y_best : float
        The best (lowest) loss observed.
    xi : float
        Exploration margin.
    pairs : (ndarray, ndarray)
        The standard-normal pairs of :func:`normal_pairs`.
    """
    arrays = [np.ascontiguousarray(x, dtype=np.float64) for x in (mean_a, var_a, mean_c, var_c)]
    if wc <= 0:
        from lightning_dnc.gp._compiled import expected_improvement_from_moments

        return expected_improvement_from_moments(arrays[0], arrays[1], float(y_best), float(xi))
    return _composite_ei(*arrays, math.log10(wc), float(y_best) - float(xi), pairs[0], pairs[1])


@jit
def _composite_ei(mean_a: np.ndarray, var_a: np.ndarray, mean_c: np.ndarray, var_c: np.ndarray, log_wc: float,
                  target: float, z_a: np.ndarray, z_c: np.ndarray) -> np.ndarray:
    """Average of ``max(target - log10(10^a + 10^(c + log_wc)), 0)`` over the pairs, per candidate.

    A candidate whose every sample has ``a`` or ``c + log_wc`` above ``target`` cannot improve
    (the loss is above both terms) and is skipped.
    """
    m = mean_a.shape[0]
    s = z_a.shape[0]
    lo_a = z_a.min()
    lo_c = z_c.min()
    ln10 = math.log(10.0)
    out = np.zeros(m, dtype=np.float64)
    for i in range(m):
        sd_a = math.sqrt(var_a[i]) if var_a[i] > 0.0 else 0.0
        sd_c = math.sqrt(var_c[i]) if var_c[i] > 0.0 else 0.0
        ma = mean_a[i]
        mc = mean_c[i] + log_wc
        if ma + sd_a * lo_a >= target or mc + sd_c * lo_c >= target:
            continue
        total = 0.0
        for k in range(s):
            a = ma + sd_a * z_a[k]
            w = mc + sd_c * z_c[k]
            if a >= target or w >= target:
                continue
            hi = a if a > w else w
            lo = w if a > w else a
            loss = hi + math.log1p(math.exp((lo - hi) * ln10)) / ln10
            if loss < target:
                total += target - loss
        out[i] = total / s
    return out


__all__ = ["SAMPLES", "composite_expected_improvement", "composite_values", "normal_pairs"]
