"""SPEC §7 covariance on encoded configurations: validation and dispatch to compiled kernels.

:func:`cross_covariance` is the one entry point. It checks shapes and hyperparameters, converts
them to the arrays the compiled kernels expect (``omega``/``weights`` per kernel variable become
per-column arrays), and picks the serial or the parallel kernel by problem size.
"""

from __future__ import annotations

import math

import numpy as np

from lightning_dnc.gp import _compiled
from lightning_dnc.gp.arrays import EncodedConfigs

#: Below this many kernel entries (m * n) the serial kernels are used. Waking the thread pool
#: costs from tens of microseconds (idle machine) to a scheduler time slice (~8 ms measured on a
#: shared, busy 2-core machine), so threads only pay off for steps of several milliseconds.
PARALLEL_MIN_ENTRIES = 500_000


def hyperparameter_arrays(omega: object, weights: object, n_variables: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``omega`` and ``weights`` and return them as float64 arrays of length ``n_variables``.

    ``omega`` may be a scalar (same for every variable) or a sequence; ``weights`` may be ``None``
    (equal weights) or a sequence of non-negative numbers with a positive sum.
    """
    om = np.asarray(omega, dtype=np.float64)
    if om.ndim == 0:
        om = np.full(n_variables, float(om))
    if om.shape != (n_variables,) or not np.all(np.isfinite(om)) or np.any(om <= 0):
        raise ValueError(
            f"`omega` must be a positive number or {n_variables} positive numbers (one per kernel variable), "
            f"got {omega!r}."
        )
    if weights is None:
        w = np.ones(n_variables)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim == 0:
            w = np.full(n_variables, float(w))
    if w.shape != (n_variables,) or not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
        raise ValueError(
            f"`weights` must be {n_variables} non-negative numbers with a positive sum (one per kernel "
            f"variable), got {weights!r}."
        )
    return np.ascontiguousarray(om), np.ascontiguousarray(w)


def cross_covariance(
    a: EncodedConfigs,
    b: EncodedConfigs,
    omega: np.ndarray | float = 3.0,
    weights: np.ndarray | None = None,
    *,
    parallel: bool | None = None,
) -> np.ndarray:
    """Kernel matrix ``K[i, j] = k(a_i, b_j)`` (SPEC §7).

    Parameters
    ----------
    a, b : EncodedConfigs
        Batches from the same space (same layout).
    omega : float or ndarray, shape (n_variables,)
        Length-scale factor per kernel variable (SPEC default 3).
    weights : ndarray, shape (n_variables,), optional
        Combination weights per variable; equal when ``None``.
    parallel : bool, optional
        Force the serial (``False``) or threaded (``True``) kernel; by default threads are used
        when ``len(a) * len(b) >= PARALLEL_MIN_ENTRIES``.

    Returns
    -------
    ndarray, shape (len(a), len(b)), float64
        Exactly symmetric when ``a is b``; exactly 1 for identical configurations.
    """
    a.check_same_layout(b)
    om, w = hyperparameter_arrays(omega, weights, a.n_variables)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    if a.kind == "joint":  # architecture and training together (lightning_dnc.gp.joint)
        from lightning_dnc.gp.joint import joint_cross_covariance

        return joint_cross_covariance(a, b, om, w, parallel, cross_covariance)  # type: ignore[arg-type]
    use_parallel = (len(a) * len(b) >= PARALLEL_MIN_ENTRIES) if parallel is None else parallel
    if a.kind == "layered":
        width = int(max(a.values.max(), b.values.max())) + 1
        if min(a.values.min(), b.values.min()) < 0:
            raise ValueError("Encoded channel counts must be >= 0; re-encode the configs with their space.")
        table = _compiled.layer_sigma_table(a.inv_span, a.root, float(om[0]), width)
        miss = math.exp(-0.5 * float(om[0]) ** 2)
        fn = _compiled.layered_cross_parallel if use_parallel else _compiled.layered_cross_serial
        return fn(a.values, a.lengths, b.values, b.lengths, table, miss)
    half_w2 = np.ascontiguousarray(0.5 * om[a.variable_of] ** 2)
    col_weight = np.ascontiguousarray(w[a.variable_of] * a.share)
    fn = _compiled.columns_cross_parallel if use_parallel else _compiled.columns_cross_serial
    return fn(a.values, b.values, a.inv_span, a.root, half_w2, col_weight)
