"""Slow, obvious twins of every GP kernel and of the GP posterior, written from SPEC §6-§7.

They read config dicts and the spaces' public limits directly, never the encoded arrays, so a
mistake in the encoding shows up as a mismatch. Two flavours:

- ``*_pair`` / :func:`covariance_pairwise`: one Python call per pair (the "first implementation").
- ``*_numpy``: vectorised numpy on arrays built here from the config dicts (the baseline the
  benchmark compares the Numba path with).

Also used by ``bench/kernel_bench.py``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.stats import norm


# ---------------------------------------------------------------- per-pair Python
def scalar_sigma(x: float, y: float, lo: float, hi: float, root: float, omega: float) -> float:
    """``exp(-d^2 / 2)``, ``d = omega * (|x - y| / (hi - lo)) ** (1 / root)`` (0 if hi == lo)."""
    if hi == lo:
        return 1.0
    d = omega * (abs(x - y) / (hi - lo)) ** (1.0 / root)
    return math.exp(-d * d / 2.0)


def cnn_kernel_pair(space: Any, a: dict, b: dict, omega: float | None = None) -> float:
    """SPEC §7 ``out_channels`` kernel of two CNN configs."""
    om = space.omega["out_channels"] if omega is None else omega
    ca, cb = a["out_channels"], b["out_channels"]
    longest = max(len(ca), len(cb))
    total = 0.0
    for layer in range(1, longest + 1):
        if layer > len(ca) or layer > len(cb):
            total += math.exp(-om * om / 2.0)
            continue
        lo = space.channels_first[0]
        hi = min(space.channels_first[1] * 2 ** (layer - 1), space.channels_upper)
        total += scalar_sigma(ca[layer - 1], cb[layer - 1], lo, hi, min(layer, 4), om)
    return total / longest


def mlp_kernel_pair(space: Any, a: dict, b: dict, omega: float | None = None) -> float:
    """SPEC §7 ``hidden_mlp`` kernel: mean of total-nodes (root 2) and layer-count (root 1) kernels."""
    om = space.omega["hidden_mlp"] if omega is None else omega
    ha, hb = a["hidden_mlp"], b["hidden_mlp"]
    lo, hi = space.num_hidden_layers
    total = scalar_sigma(sum(ha), sum(hb), 0, hi * space.hidden_nodes[1], 2, om)
    count = scalar_sigma(len(ha), len(hb), lo, hi, 1, om)
    return (total + count) / 2.0


def training_kernel_pair(space: Any, a: dict, b: dict, omega: dict | None = None, weights: dict | None = None) -> float:
    """SPEC §7 stage-3 kernel: weighted mean of the lr, weight-decay and batch-size kernels."""
    om = space.omega if omega is None else omega
    w = space.weights if weights is None else weights
    c = math.log10(space.weight_decay[0])

    def log_wd(x: float) -> float:
        return math.log10(x) if x > 0 else c

    parts = {
        "lr": scalar_sigma(
            math.log10(a["lr"]), math.log10(b["lr"]), math.log10(space.lr[0]), math.log10(space.lr[1]), 1, om["lr"]
        ),
        "weight_decay": scalar_sigma(
            log_wd(a["weight_decay"]), log_wd(b["weight_decay"]), c, math.log10(space.weight_decay[1]), 1,
            om["weight_decay"],
        ),
        "batch_size": scalar_sigma(
            a["batch_size"], b["batch_size"], space.batch_size[0], space.batch_size[1], 1, om["batch_size"]
        ),
    }
    return sum(w[k] * parts[k] for k in parts) / sum(w[k] for k in parts)


def kernel_pair(space: Any, a: dict, b: dict) -> float:
    """Dispatch on ``space.family``."""
    if space.family == "cnn":
        return cnn_kernel_pair(space, a, b)
    if space.family == "mlp":
        return mlp_kernel_pair(space, a, b)
    return training_kernel_pair(space, a, b)


def covariance_pairwise(space: Any, configs_a: Sequence[dict], configs_b: Sequence[dict]) -> np.ndarray:
    """``K[i, j] = kernel_pair(a_i, b_j)`` with a double Python loop."""
    out = np.empty((len(configs_a), len(configs_b)))
    for i, a in enumerate(configs_a):
        for j, b in enumerate(configs_b):
            out[i, j] = kernel_pair(space, a, b)
    return out


# ---------------------------------------------------------------- vectorised numpy
def numpy_arrays(space: Any, configs: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Arrays for the numpy twin: CNN -> (channels (m, n_max) padded with 0, depths (m,));
    MLP -> ([total nodes, layers] (m, 2), empty); training -> ([log10 lr, log10 wd, bs] (m, 3), empty)."""
    if space.family == "cnn":
        n_max = space.num_conv_layers[1]
        chans = np.zeros((len(configs), n_max))
        depth = np.zeros(len(configs), dtype=int)
        for i, c in enumerate(configs):
            chans[i, : len(c["out_channels"])] = c["out_channels"]
            depth[i] = len(c["out_channels"])
        return chans, depth
    if space.family == "mlp":
        return np.array([[sum(c["hidden_mlp"]), len(c["hidden_mlp"])] for c in configs], dtype=float).reshape(-1, 2), np.zeros(0)
    c0 = math.log10(space.weight_decay[0])
    rows = [
        [math.log10(c["lr"]), math.log10(c["weight_decay"]) if c["weight_decay"] > 0 else c0, c["batch_size"]]
        for c in configs
    ]
    return np.array(rows, dtype=float).reshape(-1, 3), np.zeros(0)


def _sigma_numpy(diff: np.ndarray, lo: np.ndarray, hi: np.ndarray, root: np.ndarray, omega: np.ndarray) -> np.ndarray:
    span = hi - lo
    t = np.divide(diff, span, out=np.zeros_like(diff), where=span > 0)
    d = omega * t ** (1.0 / root)
    return np.exp(-d * d / 2.0)


def covariance_numpy(
    space: Any, xa: tuple[np.ndarray, np.ndarray], xb: tuple[np.ndarray, np.ndarray], chunk: int = 4_000_000
) -> np.ndarray:
    """Vectorised twin on :func:`numpy_arrays` output; rows of ``a`` in chunks to bound memory."""
    va, la = xa
    vb, lb = xb
    out = np.empty((va.shape[0], vb.shape[0]))
    width = max(va.shape[1], 1)
    rows = max(1, chunk // max(1, vb.shape[0] * width))
    for start in range(0, va.shape[0], rows):
        sl = slice(start, start + rows)
        out[sl] = _covariance_block(space, va[sl], la[sl] if la.size else la, vb, lb)
    return out


def _covariance_block(space: Any, va: np.ndarray, la: np.ndarray, vb: np.ndarray, lb: np.ndarray) -> np.ndarray:
    diff = np.abs(va[:, None, :] - vb[None, :, :])
    if space.family == "cnn":
        om = space.omega["out_channels"]
        n_max = va.shape[1]
        layers = np.arange(1, n_max + 1)
        lo = np.full(n_max, float(space.channels_first[0]))
        hi = np.minimum(space.channels_first[1] * 2.0 ** (layers - 1), space.channels_upper)
        sig = _sigma_numpy(diff, lo, hi, np.minimum(layers, 4).astype(float), om)
        short = np.minimum(la[:, None], lb[None, :])
        long = np.maximum(la[:, None], lb[None, :])
        mask = layers[None, None, :] <= short[:, :, None]
        total = (sig * mask).sum(axis=2) + (long - short) * math.exp(-om * om / 2.0)
        return total / long
    if space.family == "mlp":
        om = space.omega["hidden_mlp"]
        lo = np.array([0.0, space.num_hidden_layers[0]])
        hi = np.array([space.num_hidden_layers[1] * space.hidden_nodes[1], space.num_hidden_layers[1]], dtype=float)
        return _sigma_numpy(diff, lo, hi, np.array([2.0, 1.0]), om).mean(axis=2)
    names = ("lr", "weight_decay", "batch_size")
    lo = np.array([math.log10(space.lr[0]), math.log10(space.weight_decay[0]), space.batch_size[0]])
    hi = np.array([math.log10(space.lr[1]), math.log10(space.weight_decay[1]), space.batch_size[1]])
    om = np.array([space.omega[k] for k in names])
    w = np.array([space.weights[k] for k in names])
    sig = _sigma_numpy(diff, lo, hi, np.ones(3), om)
    return (sig * w).sum(axis=2) / w.sum()


# ---------------------------------------------------------------- GP posterior and EI
def posterior_dense(k_xx: np.ndarray, k_sx: np.ndarray, y: np.ndarray, noise_var: float) -> tuple[np.ndarray, np.ndarray]:
    """Posterior (mean, var) with ``numpy.linalg.solve`` on the dense matrix (prior var 1)."""
    mu = y.mean()
    a = k_xx + noise_var * np.eye(len(y))
    mean = mu + k_sx @ np.linalg.solve(a, y - mu)
    var = 1.0 - np.einsum("ij,ji->i", k_sx, np.linalg.solve(a, k_sx.T))
    return mean, np.maximum(var, 0.0)


def posterior_cholesky(k_xx: np.ndarray, k_sx: np.ndarray, y: np.ndarray, noise_var: float) -> tuple[np.ndarray, np.ndarray]:
    """Posterior (mean, var) via scipy's Cholesky (what the vectorised baseline uses)."""
    mu = y.mean()
    factor = cho_factor(k_xx + noise_var * np.eye(len(y)), lower=True)
    mean = mu + k_sx @ cho_solve(factor, y - mu)
    v = solve_triangular(factor[0], k_sx.T, lower=True)
    return mean, np.maximum(1.0 - (v * v).sum(axis=0), 0.0)


def expected_improvement_closed_form(mean: np.ndarray, var: np.ndarray, y_best: float, xi: float = 1e-4) -> np.ndarray:
    """SPEC §6 EI with scipy.stats.norm; ``Z = 0`` where ``sigma == 0``."""
    sigma = np.sqrt(np.maximum(var, 0.0))
    imp = y_best - mean - xi
    z = np.divide(imp, sigma, out=np.zeros_like(imp), where=sigma > 0)
    return imp * norm.cdf(z) + sigma * norm.pdf(z)


def expected_improvement_pairwise(mean: Sequence[float], var: Sequence[float], y_best: float, xi: float = 1e-4) -> list[float]:
    """The same EI one candidate at a time with ``math.erf``."""
    out = []
    for mu, v in zip(mean, var):
        sigma = math.sqrt(max(v, 0.0))
        imp = y_best - mu - xi
        z = imp / sigma if sigma > 0 else 0.0
        out.append(imp * 0.5 * (1 + math.erf(z / math.sqrt(2))) + sigma * math.exp(-z * z / 2) / math.sqrt(2 * math.pi))
    return out
