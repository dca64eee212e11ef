"""Gaussian-process core of the search: numpy + numba (+ scipy) only, no torch/lightning.

Notation glossary (used in every docstring of this package)
-----------------------------------------------------------
x, a, b      a configuration (a config dict, or one row of :class:`EncodedConfigs`)
X            the n observed configurations; X_* the m candidate configurations
n, m         number of observed points, number of candidates
y            observed losses, shape (n,); y_best = min(y)
mu           constant prior mean = mean(y), recomputed on every observation (SPEC §6)
k(a, b)      SPEC §7 kernel; k(x, x) = 1 exactly
K            k(X, X), (n, n); K_* = k(X_*, X), (m, n)
s2           noise variance on the diagonal (``noise_var``, default 1e-4)
L            lower Cholesky factor, L L^T = K + s2 I (never an explicit inverse)
alpha        (K + s2 I)^{-1} (y - mu) = L^{-T} L^{-1} (y - mu)
omega_k      length-scale factor of kernel variable k (default 3); travels as an array
s_k          combination weight of kernel variable k (default equal); travels as an array
r_k          root of variable k; l_k, u_k its range; inv_span = 1 / (u_k - l_k) (0 if u_k == l_k)
d_k          omega_k * (|a_k - b_k| * inv_span_k) ** (1 / r_k); sigma_k = exp(-d_k^2 / 2)
mean, var    posterior mean mu + K_* alpha and variance max(1 - ||L^{-1} K_*^T||^2, 0)
EI           imp Phi(Z) + sigma phi(Z), imp = y_best - mean - xi, Z = imp / sigma (0 if sigma = 0)

Modules: ``arrays`` (the encoded layout), ``_jit`` (decorator policy), ``_compiled`` (numba
kernels), ``kernels`` (dispatch), ``cholesky`` (growing factor), ``process`` (the GP),
``fitting`` (optional omega fit).

Public names are imported lazily so that ``lightning_dnc.gp.arrays`` loads without numba.
"""

from __future__ import annotations

from lightning_dnc._lazy import lazy_exports

_LAZY = {
    "GaussianProcess": "lightning_dnc.gp.process",
    "EncodedConfigs": "lightning_dnc.gp.arrays",
    "cross_covariance": "lightning_dnc.gp.kernels",
    "CholeskyFallbackWarning": "lightning_dnc.gp.cholesky",
    "GrowingCholesky": "lightning_dnc.gp.cholesky",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
