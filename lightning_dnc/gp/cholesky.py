"""A lower Cholesky factor that grows by rows: ``L L^T = K + s2 I`` for the observed points.

The factor lives in a square buffer with spare capacity (doubled when full), so appending an
observation costs one O(n^2) forward substitution (Rasmussen & Williams, Alg. 2.1 line 2, done one
row at a time) and no copy of the existing rows. If an extension fails numerically, the whole
factor is recomputed from the full matrix with a :class:`CholeskyFallbackWarning`.
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from lightning_dnc.gp import _compiled

#: An appended row fails when its pivot is not above ``PIVOT_REL_TOL * k_self``.
PIVOT_REL_TOL = 1e-12


class CholeskyFallbackWarning(RuntimeWarning):
    """A one-row Cholesky extension failed and the factor was recomputed from scratch."""


class GrowingCholesky:
    """Lower Cholesky factor of a growing symmetric positive definite matrix.

    Parameters
    ----------
    capacity : int, default 64
        Initial buffer size (rows); doubled whenever an append needs more.
    """

    def __init__(self, capacity: int = 64) -> None:
        self._buf = np.zeros((max(int(capacity), 1),) * 2, dtype=np.float64)
        self._n = 0

    @property
    def n(self) -> int:
        """Current size of the factorised matrix."""
        return self._n

    @property
    def factor(self) -> np.ndarray:
        """The factor ``L``, (n, n) lower triangular, as a read-only view of the buffer."""
        view = self._buf[: self._n, : self._n]
        view.flags.writeable = False
        return view

    def copy(self) -> "GrowingCholesky":
        """An independent copy (same capacity)."""
        out = GrowingCholesky.__new__(GrowingCholesky)
        out._buf = self._buf.copy()
        out._n = self._n
        return out

    def reset(self, matrix: np.ndarray) -> None:
        """Factorise ``matrix`` (n, n) from scratch.

        Raises
        ------
        numpy.linalg.LinAlgError
            If ``matrix`` is not numerically positive definite; the message suggests a larger
            noise variance.
        """
        n = matrix.shape[0]
        try:
            factor = np.linalg.cholesky(matrix)
        except np.linalg.LinAlgError as err:
            raise np.linalg.LinAlgError(
                f"The {n}x{n} GP covariance matrix is not positive definite ({err}); increase `noise_var` "
                "(the diagonal jitter) or remove duplicated observations."
            ) from err
        self._ensure_capacity(n)
        self._buf[:n, :n] = factor
        self._buf[:n, n:] = 0.0
        self._n = n

    def truncate(self, n: int) -> None:
        """Forget every row from ``n`` on (the leading ``n x n`` block is kept)."""
        if not 0 <= n <= self._n:
            raise ValueError(f"`n` must be in [0, {self._n}], got {n!r}.")
        self._n = n

    def append(self, k_cross: np.ndarray, k_new: np.ndarray, full_matrix: Callable[[], np.ndarray]) -> bool:
        """Append ``k`` rows: ``A' = [[A, k_cross], [k_cross^T, k_new]]``.

        Parameters
        ----------
        k_cross : ndarray, shape (n, k)
            Covariance between the points already factorised and the new ones.
        k_new : ndarray, shape (k, k)
            Covariance among the new points, noise already on its diagonal.
        full_matrix : callable
            Returns ``A'`` itself, (n + k, n + k); called only if an extension fails.

        Returns
        -------
        bool
            True if every row was appended in O(n^2); False if the factor had to be recomputed
            (a :class:`CholeskyFallbackWarning` is emitted).
        """
        n0 = self._n
        k = k_new.shape[0]
        self._ensure_capacity(n0 + k)
        for r in range(k):
            k_vec = np.ascontiguousarray(np.concatenate([k_cross[:, r], k_new[:r, r]]))
            status = _compiled.cholesky_append_row(self._buf, n0 + r, k_vec, float(k_new[r, r]), PIVOT_REL_TOL)
            if status != 0:
                warnings.warn(
                    f"Extending the Cholesky factor by observation {n0 + r} failed (pivot not positive); "
                    "recomputing the factor from scratch.",
                    CholeskyFallbackWarning,
                    stacklevel=3,
                )
                self.reset(full_matrix())
                return False
            self._n = n0 + r + 1
        return True

    def _ensure_capacity(self, n: int) -> None:
        cap = self._buf.shape[0]
        if n <= cap:
            return
        while cap < n:
            cap *= 2
        buf = np.zeros((cap, cap), dtype=np.float64)
        buf[: self._n, : self._n] = self._buf[: self._n, : self._n]
        self._buf = buf
