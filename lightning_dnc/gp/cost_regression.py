"""A cost model of measured costs: Bayesian linear regression of log cost on exact features.

``t_tr`` and ``latency`` are measured times, noisy on a shared machine but smooth in what the
configuration makes the machine do: log t_tr is close to linear in log training FLOPs and log steps
per epoch (:func:`lightning_dnc.space.cost_features.cost_features`). This model fits that linear map
from the trials measured so far, with a predictive variance, so a search can use the cost of a
configuration it has not trained.

Model (Bishop, *Pattern Recognition and Machine Learning*, §3.3 and §3.5): after standardising
the features on the observed rows, ``y = b + x^T w + e`` with ``w ~ N(0, I / alpha)``,
``e ~ N(0, 1 / beta)`` and a flat prior on the intercept ``b``; ``alpha`` and ``beta`` maximise the
evidence (MacKay's fixed-point updates). Prediction of a new measurement:

    mean = y_bar + x^T m_N
    var  = 1 / beta + x^T S_N x + 1 / (n beta)        (noise + weights + intercept)

with ``S_N = (alpha I + beta X^T X)^-1`` and ``m_N = beta S_N X^T (y - y_bar)``. ``1 / beta`` is
floored at ``noise_floor`` so a handful of points never claims more precision than the clock has.
The updates run in the eigenbasis of ``X^T X`` (no inverse per iteration: a fit takes ~0.1 ms, so
a search can refit at every pick); a constant target (no weight left) takes alpha to its bound.
With ``robust_dof`` the fit is robust instead: iteratively reweighted with Student-t weights
``(nu + 1) / (nu + e^2 / s^2)`` of each residual ``e`` on a robust scale ``s`` (1.4826 x the
median absolute deviation), which keeps an outlier -- a time measured while the machine was busy --
from pulling the line.
Pure numpy.
"""

from __future__ import annotations

import math

import numpy as np

EVIDENCE_ITERATIONS = 200
EVIDENCE_TOL = 1e-8
ROBUST_ITERATIONS = 50
"""At most this many reweightings of a robust fit (it stops when no weight moves by ROBUST_TOL)."""
ROBUST_DOF = 4.0
"""The degrees of freedom the search gives the Student-t noise (``robust_dof``) of its regressions of
measured times: a time measured while the machine was busy (on a shared 2-core CPU, now and then
twice the usual) gets little weight instead of pulling the line every prediction reads."""
ROBUST_TOL = 1e-2


class BayesianLinearCost:
    """Bayesian linear regression of a log cost on features, with evidence-fitted precisions.

    Parameters
    ----------
    noise_floor : float, default 1e-4
        Smallest noise variance (in squared target units: for log10 seconds, 1e-4 is a 2.3%
        standard deviation).
    prior_var : float, default 1.0
        Predictive variance with a single observation (the model then predicts its value).
    robust_dof : float, optional
        Robust fit with Student-t weights of these degrees of freedom: each row's precision is
        scaled by ``(nu + 1) / (nu + e^2 / s^2)`` of its residual ``e`` on the residuals' robust
        scale ``s`` (MAD), refitted until the weights settle, so one measurement taken while the
        machine was busy (twice as slow) barely moves the line.
        ``None`` (default): normal noise.

    Examples
    --------
    >>> model = BayesianLinearCost().fit(np.array([[0.0], [1.0], [2.0]]), np.array([0.1, 1.1, 2.1]))
    >>> mean, var = model.predict(np.array([[3.0]]))
    >>> round(float(mean[0]), 3)
    3.1
    """

    def __init__(self, noise_floor: float = 1e-4, prior_var: float = 1.0, robust_dof: float | None = None) -> None:
        for name, value in (("noise_floor", noise_floor), ("prior_var", prior_var), ("robust_dof", robust_dof)):
            if name == "robust_dof" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
                raise ValueError(f"`{name}` must be a finite number > 0, got {value!r}.")
        self.noise_floor = float(noise_floor)
        self.prior_var = float(prior_var)
        self.robust_dof = None if robust_dof is None else float(robust_dof)
        self.n = 0
        self.alpha = 1.0
        self.beta = 1.0
        self._center = np.zeros(0)
        self._scale = np.ones(0)
        self._y_bar = 0.0
        self._m = np.zeros(0)
        self._S = np.zeros((0, 0))
        self._Z, self._r = np.zeros((0, 0)), np.zeros(0)
        self._weights = np.ones(0)

    def fit(self, features: np.ndarray, log_cost: np.ndarray) -> BayesianLinearCost:
        """Fit on ``n`` observed rows.

        Parameters
        ----------
        features : ndarray
            (n, k) finite features (e.g. :func:`~lightning_dnc.space.cost_features.cost_features`).
        log_cost : ndarray
            (n,) finite targets, e.g. ``log10(t_tr)``.

        Returns
        -------
        BayesianLinearCost
            ``self``.

        Raises
        ------
        ValueError
            On mismatched shapes, no rows, or non-finite values.
        """
        X = np.asarray(features, dtype=np.float64)
        y = np.asarray(log_cost, dtype=np.float64)
        if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0] or X.shape[0] == 0:
            raise ValueError(f"`features` must be (n, k) and `log_cost` (n,) with n >= 1, got {X.shape} and {y.shape}.")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
            raise ValueError("`features` and `log_cost` must be finite (drop rows of unbuildable or unmeasured configs).")
        spread = X.std(axis=0)
        self._scale = np.where(spread > 1e-12, spread, 1.0)
        self._fit_weighted(X, y, None)
        if self.robust_dof is None or self.n < 3:
            return self
        nu = self.robust_dof
        for _ in range(ROBUST_ITERATIONS):  # a row's weight falls with its residual, on a robust scale (MAD)
            residual = self._r - self._Z @ self._m
            mad = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
            weights = (nu + 1.0) / (nu + residual ** 2 / max(mad * mad, self.noise_floor))
            previous = self._weights
            self._fit_weighted(X, y, weights, (self.alpha, self.beta))  # warm start: a few updates each
            if np.max(np.abs(weights - previous)) <= ROBUST_TOL:
                break
        return self

    def _fit_weighted(self, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None,
                      start: tuple[float, float] | None = None) -> None:
        """The evidence fit with per-row noise precisions ``beta * weights`` (None: all 1), its
        fixed-point updates started at ``start`` = (alpha, beta) when given."""
        n, k = X.shape
        self.n = n
        if weights is None:
            weights = np.ones(n)
            self._y_bar, self._center = float(y.mean()), X.mean(axis=0)
        else:
            total = float(weights.sum())
            self._y_bar, self._center = float(weights @ y) / total, (weights @ X) / total
        self._weights = weights
        Z = (X - self._center) / self._scale
        r = y - self._y_bar
        self._Z, self._r = Z, r
        if n == 1:
            self._m, self._S = np.zeros(k), np.zeros((k, k))
            return
        root = np.sqrt(weights)
        Zw, rw = Z * root[:, None], r * root
        eig, V = np.linalg.eigh(Zw.T @ Zw)
        eig = np.clip(eig, 0.0, None)
        projected = V.T @ (Zw.T @ rw)  # Z^T U r in the eigenbasis of Z^T U Z: each update is O(k), no inverse
        alpha, beta = (1.0, 1.0 / max(float(np.mean(rw ** 2)), self.noise_floor)) if start is None else start
        varies = bool(np.any(eig > 1e-9 * n))  # some standardised column is not constant
        for _ in range(EVIDENCE_ITERATIONS):
            m = V @ (beta * projected / (alpha + beta * eig))
            lam = beta * eig
            gamma = float(np.sum(lam / (lam + alpha)))
            weight = float(m @ m)
            new_alpha = gamma / max(weight, 1e-12)
            resid = float(np.sum((rw - Zw @ m) ** 2))
            dof = max(n - 1 - gamma, 1e-3)
            new_beta = min(dof / max(resid, 1e-300), 1.0 / self.noise_floor)
            if weight <= 1e-12 and varies:  # a constant target: no weight left, alpha's fixed point is its bound
                new_alpha = 1e12
            new_alpha = min(max(new_alpha, 1e-10), 1e12)  # clamped before the test, so a clamped alpha converges
            done = abs(new_alpha - alpha) <= EVIDENCE_TOL * alpha and abs(new_beta - beta) <= EVIDENCE_TOL * beta
            alpha, beta = new_alpha, new_beta
            if done:
                break
        self.alpha, self.beta = alpha, beta
        self._S = (V / (alpha + beta * eig)) @ V.T  # (alpha I + beta Z^T U Z)^-1
        self._m = beta * (self._S @ (Zw.T @ rw))

    @property
    def row_weights(self) -> np.ndarray:
        """Each fitted row's noise-precision weight (1 without ``robust_dof``; small for an outlier)."""
        return self._weights.copy()

    def leave_one_out(self) -> tuple[np.ndarray, np.ndarray]:
        """The regression's mean at each fitted row from the *other* rows (what the model said before
        that measurement), with its variance.

        Closed form for the fitted ``alpha``, ``beta``, row weights ``u`` and feature scaling: the
        model is a linear smoother with hat matrix ``H = 1 u^T / sum(u) + beta Z S_N Z^T U``, so the
        held-out residual is ``e_i / (1 - H_ii)``; the variance of the line at row ``i`` given all rows
        is ``H_ii / (beta u_i)``, and removing row ``i``'s precision ``beta u_i`` from it gives
        ``H_ii / (beta u_i (1 - H_ii))``.

        Returns
        -------
        mean, var : ndarray
            (n,) each, in the target's units (the line's uncertainty, without a new measurement's
            noise); NaN with a single row.
        """
        if self.n < 2:
            return np.full(self.n, np.nan), np.full(self.n, np.nan)
        Z, r, u = self._Z, self._r, self._weights
        hat = u * (1.0 / float(u.sum()) + self.beta * np.einsum("ij,jk,ik->i", Z, self._S, Z))
        left = np.maximum(1.0 - hat, 1e-9)
        residual = r - Z @ self._m
        return self._y_bar + r - residual / left, hat / (self.beta * u * left)

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and variance of a new measurement's log cost.

        Parameters
        ----------
        features : ndarray
            (m, k), the columns of :meth:`fit`.

        Returns
        -------
        mean, var : ndarray
            (m,) each; NaN in rows with non-finite features.
        """
        if self.n == 0:
            raise ValueError("Call `fit` before `predict`.")
        X = np.asarray(features, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self._center.shape[0]:
            raise ValueError(f"`features` must be (m, {self._center.shape[0]}), got {X.shape}.")
        if self.n == 1:
            return np.full(X.shape[0], self._y_bar), np.full(X.shape[0], self.prior_var)
        Z = (X - self._center) / self._scale
        mean = self._y_bar + Z @ self._m
        var = 1.0 / self.beta + np.einsum("ij,jk,ik->i", Z, self._S, Z) + 1.0 / (float(self._weights.sum()) * self.beta)
        bad = ~np.all(np.isfinite(X), axis=1)
        return np.where(bad, np.nan, mean), np.where(bad, np.nan, var)


__all__ = ["ROBUST_DOF", "BayesianLinearCost"]
