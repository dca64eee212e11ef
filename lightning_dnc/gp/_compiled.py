"""Compiled (Numba) kernels on flat arrays. No Python objects, no exceptions: callers validate.

Notation follows the glossary in :mod:`lightning_dnc.gp`. Every public function here has a slow,
obvious twin in ``tests/naive.py``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from lightning_dnc.gp._jit import jit, jit_parallel


@jit
def _pow_two_over_root(t: float, r: float) -> float:
    """``t ** (2 / r)`` with the common roots special-cased (``d_k^2 = omega^2 * this``)."""
    if r == 1.0:
        return t * t
    if r == 2.0:
        return t
    if r == 4.0:
        return math.sqrt(t)
    return t ** (2.0 / r)


@jit
def layer_sigma_table(inv_span: np.ndarray, root: np.ndarray, omega: float, width: int) -> np.ndarray:
    """``table[l, d] = exp(-(omega * (d * inv_span[l]) ** (1 / root[l])) ** 2 / 2)``.

    Channel counts are integers, so the per-layer similarity of two CNNs depends only on the layer
    and the absolute channel difference ``d`` in ``[0, width)``; the table turns the inner loop of
    the CNN kernel into lookups. ``table[l, 0] == 1`` exactly.
    """
    n_layers = inv_span.shape[0]
    table = np.empty((n_layers, width), dtype=np.float64)
    half_w2 = 0.5 * omega * omega
    for layer in range(n_layers):
        for d in range(width):
            t = d * inv_span[layer]
            table[layer, d] = math.exp(-half_w2 * _pow_two_over_root(t, root[layer]))
    return table


@jit
def _layered_row(
    ca: np.ndarray, la: int, cb: np.ndarray, lb: np.ndarray, table: np.ndarray, miss: float, out: np.ndarray
) -> None:
    """One row of the CNN kernel: config ``a`` (channels ``ca``, depth ``la``) against all of ``b``."""
    for j in range(cb.shape[0]):
        lj = lb[j]
        short = la if la < lj else lj
        long = la if la > lj else lj
        s = 0.0
        for layer in range(short):
            d = ca[layer] - cb[j, layer]
            if d < 0:
                d = -d
            s += table[layer, d]
        if long > 0:
            out[j] = (s + (long - short) * miss) / long
        else:
            out[j] = 1.0


@jit
def layered_cross_serial(
    ca: np.ndarray, la: np.ndarray, cb: np.ndarray, lb: np.ndarray, table: np.ndarray, miss: float
) -> np.ndarray:
    """CNN cross-covariance ``K[i, j] = k(a_i, b_j)``, (m_a, m_b) float64, one thread."""
    out = np.empty((ca.shape[0], cb.shape[0]), dtype=np.float64)
    for i in range(ca.shape[0]):
        _layered_row(ca[i], la[i], cb, lb, table, miss, out[i])
    return out


@jit_parallel
def layered_cross_parallel(
    ca: np.ndarray, la: np.ndarray, cb: np.ndarray, lb: np.ndarray, table: np.ndarray, miss: float
) -> np.ndarray:
    """CNN cross-covariance, rows of ``a`` spread over threads (each writes its own row)."""
    out = np.empty((ca.shape[0], cb.shape[0]), dtype=np.float64)
    for i in prange(ca.shape[0]):
        _layered_row(ca[i], la[i], cb, lb, table, miss, out[i])
    return out


@jit
def _columns_row(
    xa: np.ndarray,
    xb: np.ndarray,
    inv_span: np.ndarray,
    root: np.ndarray,
    half_w2: np.ndarray,
    weight: np.ndarray,
    out: np.ndarray,
) -> None:
    """One row of the column kernel: ``sum_k s_k sigma_k / sum_k s_k`` for ``a`` against all of ``b``."""
    n_cols = xa.shape[0]
    wsum = 0.0
    for k in range(n_cols):
        wsum += weight[k]
    for j in range(xb.shape[0]):
        s = 0.0
        for k in range(n_cols):
            t = abs(xa[k] - xb[j, k]) * inv_span[k]
            s += weight[k] * math.exp(-half_w2[k] * _pow_two_over_root(t, root[k]))
        out[j] = s / wsum


@jit
def columns_cross_serial(
    xa: np.ndarray, xb: np.ndarray, inv_span: np.ndarray, root: np.ndarray, half_w2: np.ndarray, weight: np.ndarray
) -> np.ndarray:
    """Column-kernel cross-covariance (MLP, training), (m_a, m_b) float64, one thread."""
    out = np.empty((xa.shape[0], xb.shape[0]), dtype=np.float64)
    for i in range(xa.shape[0]):
        _columns_row(xa[i], xb, inv_span, root, half_w2, weight, out[i])
    return out


@jit_parallel
def columns_cross_parallel(
    xa: np.ndarray, xb: np.ndarray, inv_span: np.ndarray, root: np.ndarray, half_w2: np.ndarray, weight: np.ndarray
) -> np.ndarray:
    """Column-kernel cross-covariance, rows of ``a`` spread over threads."""
    out = np.empty((xa.shape[0], xb.shape[0]), dtype=np.float64)
    for i in prange(xa.shape[0]):
        _columns_row(xa[i], xb, inv_span, root, half_w2, weight, out[i])
    return out


@jit
def cholesky_append_row(factor: np.ndarray, n: int, k_vec: np.ndarray, k_self: float, rel_tol: float) -> int:
    """Extend a lower Cholesky factor by one row in O(n^2).

    ``factor[:n, :n]`` holds ``L`` with ``L L^T = A``. For ``A' = [[A, k], [k^T, k_self]]`` this
    writes row ``n``: ``l = L^{-1} k`` (forward substitution) and ``L'[n, n] = sqrt(k_self - l.l)``.
    ``factor`` must have at least ``n + 1`` rows and columns.

    Returns
    -------
    int
        0 on success; 1 if the new pivot ``k_self - l.l`` is not above ``rel_tol * k_self`` (or is
        not finite): the extended matrix is not numerically positive definite. Row ``n`` is then
        left partially written and must be discarded by the caller.
    """
    row = factor[n]
    for i in range(n):
        s = k_vec[i]
        li = factor[i]
        for j in range(i):
            s -= li[j] * row[j]
        row[i] = s / li[i]
    pivot = k_self
    for j in range(n):
        pivot -= row[j] * row[j]
    if not (pivot > rel_tol * k_self) or not math.isfinite(pivot):
        return 1
    row[n] = math.sqrt(pivot)
    for j in range(n + 1, factor.shape[1]):
        row[j] = 0.0
    return 0


@jit
def expected_improvement_from_moments(mean: np.ndarray, var: np.ndarray, y_best: float, xi: float) -> np.ndarray:
    """SPEC §6 expected improvement for minimisation.

    ``imp = y_best - mu - xi``; ``Z = imp / sigma`` (0 where ``sigma == 0``);
    ``EI = imp * Phi(Z) + sigma * phi(Z)``, with ``sigma = sqrt(max(var, 0))``.
    """
    out = np.empty(mean.shape[0], dtype=np.float64)
    inv_sqrt2 = 1.0 / math.sqrt(2.0)
    inv_sqrt2pi = 1.0 / math.sqrt(2.0 * math.pi)
    for i in range(mean.shape[0]):
        v = var[i]
        sigma = math.sqrt(v) if v > 0.0 else 0.0
        imp = y_best - mean[i] - xi
        z = imp / sigma if sigma > 0.0 else 0.0
        cdf = 0.5 * math.erfc(-z * inv_sqrt2)
        pdf = inv_sqrt2pi * math.exp(-0.5 * z * z)
        out[i] = imp * cdf + sigma * pdf
    return out


#: Candidates per block in the posterior kernels: the (n, block) work array stays in cache.
POSTERIOR_BLOCK = 64


@jit
def _posterior_block(
    k_star: np.ndarray, factor: np.ndarray, alpha: np.ndarray, mu: float, start: int, mean: np.ndarray, var: np.ndarray
) -> None:
    """Posterior moments of candidates ``start : start + POSTERIOR_BLOCK``.

    ``v = L^{-1} k_*^T`` by forward substitution on a (n, block) work array, so the inner loop is
    an axpy over the block's candidates; ``var = max(1 - v.v, 0)``, ``mean = mu + k_* . alpha``.
    """
    n = factor.shape[0]
    stop = min(start + POSTERIOR_BLOCK, k_star.shape[0])
    nb = stop - start
    v = np.empty((n, nb), dtype=np.float64)
    for i in range(n):
        vi = v[i]
        for c in range(nb):
            vi[c] = k_star[start + c, i]
        li = factor[i]
        for j in range(i):
            lij = li[j]
            vj = v[j]
            for c in range(nb):
                vi[c] -= lij * vj[c]
        inv = 1.0 / li[i]
        for c in range(nb):
            vi[c] *= inv
    for c in range(nb):
        ss = 0.0
        mm = 0.0
        row = k_star[start + c]
        for i in range(n):
            ss += v[i, c] * v[i, c]
            mm += row[i] * alpha[i]
        mean[start + c] = mu + mm
        rest = 1.0 - ss
        var[start + c] = rest if rest > 0.0 else 0.0


@jit
def posterior_moments_serial(
    k_star: np.ndarray, factor: np.ndarray, alpha: np.ndarray, mu: float
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior ``(mean, var)`` of m candidates from ``K_*`` (m, n), ``L`` (n, n) and ``alpha``
    (n,); prior variance 1 (SPEC §7), variance clipped at 0. One thread."""
    m = k_star.shape[0]
    mean = np.empty(m, dtype=np.float64)
    var = np.empty(m, dtype=np.float64)
    for b in range((m + POSTERIOR_BLOCK - 1) // POSTERIOR_BLOCK):
        _posterior_block(k_star, factor, alpha, mu, b * POSTERIOR_BLOCK, mean, var)
    return mean, var


@jit_parallel
def posterior_moments_parallel(
    k_star: np.ndarray, factor: np.ndarray, alpha: np.ndarray, mu: float
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior ``(mean, var)`` as :func:`posterior_moments_serial`, candidate blocks over threads."""
    m = k_star.shape[0]
    mean = np.empty(m, dtype=np.float64)
    var = np.empty(m, dtype=np.float64)
    for b in prange((m + POSTERIOR_BLOCK - 1) // POSTERIOR_BLOCK):
        _posterior_block(k_star, factor, alpha, mu, b * POSTERIOR_BLOCK, mean, var)
    return mean, var
