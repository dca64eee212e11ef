"""The Deep-n-Cheap Gaussian process (SPEC §6): constant mean, Cholesky updates, EI.

Notation as in the glossary of :mod:`lightning_dnc.gp`. Algebra follows Rasmussen & Williams,
*Gaussian Processes for Machine Learning*, Algorithm 2.1, with the constant mean ``mu`` subtracted
from the targets.
"""

from __future__ import annotations

import math
from typing import Any, Protocol, Sequence, Union

import numpy as np
from scipy.linalg import cho_solve

from lightning_dnc.gp import _compiled
from lightning_dnc.gp.arrays import EncodedConfigs
from lightning_dnc.gp.cholesky import GrowingCholesky
from lightning_dnc.gp.kernels import PARALLEL_MIN_ENTRIES, cross_covariance, hyperparameter_arrays

Configs = Union[EncodedConfigs, Sequence[dict]]


class SpaceLike(Protocol):
    """What the GP needs from a search space (see :mod:`lightning_dnc.space`)."""

    variables: tuple[str, ...]

    def encode(self, configs: Sequence[dict]) -> EncodedConfigs: ...

    def hyperparameter_arrays(self) -> tuple[np.ndarray, np.ndarray]: ...


class GaussianProcess:
    """GP surrogate of the search loss over one search space.

    Parameters
    ----------
    space : CNNSpace, MLPSpace or TrainingSpace
        Turns configs into :class:`EncodedConfigs` and supplies the default ``omega``/``weights``.
    noise_var : float, default 1e-4
        ``s2``, added to the diagonal of the observed covariance (SPEC §6).
    omega, weights : array-like, optional
        Kernel hyperparameters per variable (``space.variables`` order); the space's by default.
    fit_omega : bool, default False
        Refit ``omega`` by maximum marginal likelihood after every :meth:`observe` (then the
        factor is recomputed rather than extended). Off by default: SPEC §6 keeps omega = 3.
    omega_bounds : (float, float), default (0.1, 30.0)
        Bounds of the fit.
    parallel : bool, optional
        Force serial/threaded kernels; chosen by problem size when ``None``.

    Examples
    --------
    >>> gp = GaussianProcess(space)                       # doctest: +SKIP
    >>> gp.observe(configs, losses)                       # doctest: +SKIP
    >>> mean, var = gp.predict(candidates)                # doctest: +SKIP
    >>> ei = gp.expected_improvement(candidates)          # doctest: +SKIP
    """

    def __init__(
        self,
        space: SpaceLike,
        noise_var: float = 1e-4,
        *,
        omega: Any = None,
        weights: Any = None,
        fit_omega: bool = False,
        omega_bounds: tuple[float, float] = (0.1, 30.0),
        parallel: bool | None = None,
    ) -> None:
        if not (isinstance(noise_var, (int, float)) and not isinstance(noise_var, bool)) or not (
            math.isfinite(noise_var) and noise_var >= 0
        ):
            raise ValueError(f"`noise_var` must be a finite number >= 0, got {noise_var!r}.")
        lo, hi = (float(v) for v in omega_bounds)
        if not (0 < lo <= hi and math.isfinite(hi)):
            raise ValueError(f"`omega_bounds` must be (lo, hi) with 0 < lo <= hi, got {omega_bounds!r}.")
        self.space = space
        self.noise_var = float(noise_var)
        default_omega, default_weights = space.hyperparameter_arrays()
        n_vars = len(default_omega)
        self._omega, self._weights = hyperparameter_arrays(
            default_omega if omega is None else omega, default_weights if weights is None else weights, n_vars
        )
        self.fit_omega = bool(fit_omega)
        self.omega_bounds = (lo, hi)
        self.parallel = parallel
        self._layout = space.encode([])  # an empty batch: the space's array layout
        self._X: EncodedConfigs | None = None
        self._y = np.zeros(0)
        self._chol = GrowingCholesky()
        self._mu = 0.0
        self._alpha = np.zeros(0)
        self._factor = np.zeros((0, 0))

    # ------------------------------------------------------------------ state
    @property
    def n_observed(self) -> int:
        """Number of observations ``n``."""
        return int(self._y.shape[0])

    @property
    def X(self) -> EncodedConfigs | None:
        """The observed configurations, encoded (``None`` before the first observation)."""
        return self._X

    @property
    def y(self) -> np.ndarray:
        """Observed losses, shape (n,) (a copy)."""
        return self._y.copy()

    @property
    def mean_value(self) -> float:
        """The constant prior mean ``mu`` = mean of the observed losses (0 before any)."""
        return self._mu

    @property
    def omega(self) -> np.ndarray:
        """Current ``omega`` per kernel variable (a copy)."""
        return self._omega.copy()

    @property
    def weights(self) -> np.ndarray:
        """Current combination weights per kernel variable (a copy)."""
        return self._weights.copy()

    @property
    def cholesky_factor(self) -> np.ndarray:
        """``L`` with ``L L^T = K(X, X) + s2 I``, (n, n) (a copy)."""
        return np.array(self._chol.factor)

    def copy(self) -> "GaussianProcess":
        """An independent copy; observing on it leaves this GP unchanged."""
        out = GaussianProcess.__new__(GaussianProcess)
        out.__dict__.update(self.__dict__)
        out._omega = self._omega.copy()
        out._weights = self._weights.copy()
        out._y = self._y.copy()
        out._chol = self._chol.copy()
        out._alpha = self._alpha.copy()
        out._factor = self._factor.copy()
        return out

    def with_fantasies(self, configs: Configs, losses: Sequence[float] | np.ndarray) -> "GaussianProcess":
        """A copy that has also observed ``configs`` with made-up ``losses`` (batch BO, e.g. the
        "kriging believer" fills in the predicted mean for pending points)."""
        out = self.copy()
        out.observe(configs, losses)
        return out

    # ------------------------------------------------------------------ updates
    def observe(self, configs: Configs, losses: Sequence[float] | np.ndarray) -> None:
        """Add observations and update the factor, ``mu`` and ``alpha``.

        Parameters
        ----------
        configs : list of dict or EncodedConfigs
            The configurations evaluated, length k.
        losses : array-like, shape (k,)
            Their losses; must be finite.

        Raises
        ------
        ValueError
            On a length mismatch or a NaN/inf loss (the offending positions are listed).
        """
        enc = self.encode(configs)
        y_new = np.asarray(losses, dtype=np.float64).reshape(-1)
        if y_new.shape[0] != len(enc):
            raise ValueError(
                f"`losses` must have one value per configuration ({len(enc)}), got {y_new.shape[0]} values."
            )
        bad = np.flatnonzero(~np.isfinite(y_new))
        if bad.size:
            raise ValueError(
                f"`losses` must be finite; got {y_new[bad].tolist()!r} at positions {bad.tolist()}. Record failed "
                "trials as failures instead of telling the GP a NaN/inf loss."
            )
        if len(enc) == 0:
            return
        old, old_y, old_n, old_omega = self._X, self._y, self._chol.n, self._omega
        self._X = enc if old is None else old.concat(enc)
        self._y = np.concatenate([self._y, y_new])
        try:
            if self.fit_omega and self.n_observed >= 2:
                self._fit_omega()
                self._refactor()
            elif old is None or old_n != len(old):
                self._refactor()
            else:
                k_cross = self._kernel(old, enc)
                k_new = self._kernel(enc, enc) + self.noise_var * np.eye(len(enc))
                self._chol.append(k_cross, k_new, self._full_matrix)
        except BaseException:
            # leave the GP as it was: a failed factorisation never overwrites the old rows
            self._X, self._y, self._omega = old, old_y, old_omega
            self._chol.truncate(old_n)
            raise
        self._update_alpha()

    def retarget(self, losses: Sequence[float] | np.ndarray) -> None:
        """Replace the losses of every observed configuration; the factor is kept.

        ``L`` depends on the configurations only, so new targets (e.g. after the objective's
        reference or a failed trial's stand-in changed) cost one ``cho_solve``, not a factorisation.

        Parameters
        ----------
        losses : array-like, shape (n_observed,)
            Finite losses, in the order the configurations were observed.
        """
        y = np.asarray(losses, dtype=np.float64).reshape(-1)
        if y.shape[0] != self.n_observed:
            raise ValueError(f"`losses` must have one value per observation ({self.n_observed}), got {y.shape[0]}.")
        bad = np.flatnonzero(~np.isfinite(y))
        if bad.size:
            raise ValueError(f"`losses` must be finite; got {y[bad].tolist()!r} at positions {bad.tolist()}.")
        self._y = y
        if self.n_observed:
            self._update_alpha()

    def refit(self) -> np.ndarray:
        """Fit ``omega`` by maximum marginal likelihood now, refactor, and return the new omega."""
        if self.n_observed < 2:
            raise ValueError(f"Fitting `omega` needs at least 2 observations, have {self.n_observed}.")
        self._fit_omega()
        self._refactor()
        self._update_alpha()
        return self.omega

    # ------------------------------------------------------------------ queries
    def encode(self, configs: Configs) -> EncodedConfigs:
        """``configs`` as :class:`EncodedConfigs` of this GP's space (encoded input passes through)."""
        if isinstance(configs, EncodedConfigs) or getattr(configs, "kind", None) == "joint":
            self._layout.check_same_layout(configs)
            return configs
        if isinstance(configs, dict):
            raise ValueError("`configs` must be a list of config dicts (or EncodedConfigs), got a single dict.")
        return self.space.encode(list(configs))

    def predict(self, configs: Configs) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of the latent loss.

        ``mean = mu + K_* alpha``; ``var = max(1 - ||L^{-1} K_*^T||^2, 0)`` column-wise, with
        ``k(x, x) = 1`` (SPEC §7). Before any observation: the prior (0, 1).

        Returns
        -------
        mean, var : ndarray, shape (m,), float64
        """
        enc = self.encode(configs)
        m = len(enc)
        if self._X is None or m == 0:
            return np.full(m, self._mu), np.ones(m)
        k_star = self._kernel(enc, self._X)  # (m, n)
        fn = _compiled.posterior_moments_parallel if self._use_parallel(k_star.size) else _compiled.posterior_moments_serial
        return fn(k_star, self._factor, self._alpha, self._mu)

    def cross(self, configs: Configs) -> np.ndarray:
        """``K_*``, the covariance of ``configs`` with the observed configurations, (m, n).

        With :meth:`moments` and :meth:`target_mean` several targets observed at the same
        configurations share it (and the factor): one kernel evaluation for all of them.
        """
        if self._X is None:
            raise ValueError("`cross` needs at least one observation; call `observe` first.")
        return self._kernel(self.encode(configs), self._X)

    def moments(self, k_star: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of the losses from ``K_*`` (:meth:`cross`); as :meth:`predict`."""
        fn = _compiled.posterior_moments_parallel if self._use_parallel(k_star.size) else _compiled.posterior_moments_serial
        return fn(np.ascontiguousarray(k_star), self._factor, self._alpha, self._mu)

    def target_mean(self, k_star: np.ndarray, targets: Sequence[float] | np.ndarray) -> np.ndarray:
        """Posterior mean of another target observed at the same configurations (e.g. a cost), (m,).

        Same kernel, factor and constant-mean rule as the losses (``mu`` = mean of ``targets``);
        its posterior variance is :meth:`moments`' variance times :meth:`signal_variance` of it.
        """
        y = self._checked_targets(targets)
        alpha = cho_solve((self._factor, True), y - y.mean(), check_finite=False)
        return y.mean() + np.einsum("ij,j->i", k_star, alpha)  # no BLAS threads to wake for a (m, n) x (n,)

    def signal_variance(self, targets: Sequence[float] | np.ndarray | None = None) -> float:
        """The maximum-likelihood signal variance of ``targets`` (default: the losses) for this
        kernel: ``(y - mu)^T (K + s2 I)^{-1} (y - mu) / n`` (0 before any observation)."""
        y = self._y if targets is None else self._checked_targets(targets)
        if not self.n_observed:
            return 0.0
        centred = y - y.mean()
        return float(centred @ cho_solve((self._factor, True), centred, check_finite=False)) / self.n_observed

    def _checked_targets(self, targets: Sequence[float] | np.ndarray) -> np.ndarray:
        y = np.asarray(targets, dtype=np.float64).reshape(-1)
        if y.shape[0] != self.n_observed or not np.all(np.isfinite(y)):
            raise ValueError(f"`targets` must be {self.n_observed} finite values, one per observation, got {y!r}.")
        return y

    def expected_improvement(self, configs: Configs, xi: float = 1e-4) -> np.ndarray:
        """Expected improvement below the best observed loss (SPEC §6), shape (m,).

        Raises
        ------
        ValueError
            Before any observation (there is no best loss yet).
        """
        if self.n_observed == 0:
            raise ValueError("expected_improvement needs at least one observation; call `observe` first.")
        if not math.isfinite(xi):
            raise ValueError(f"`xi` must be a finite number, got {xi!r}.")
        mean, var = self.predict(configs)
        return _compiled.expected_improvement_from_moments(mean, var, float(self._y.min()), float(xi))

    def log_marginal_likelihood(self, omega: Any = None) -> float:
        """``log p(y | X, omega)`` of the centred losses (R&W Alg. 2.1 line 8); ``-inf`` if the
        covariance is not positive definite for this ``omega``."""
        if self._X is None:
            raise ValueError("log_marginal_likelihood needs at least one observation; call `observe` first.")
        om = self._omega if omega is None else hyperparameter_arrays(omega, self._weights, len(self._omega))[0]
        k = cross_covariance(self._X, self._X, om, self._weights, parallel=False)
        k[np.diag_indices_from(k)] += self.noise_var
        try:
            factor = np.linalg.cholesky(k)
        except np.linalg.LinAlgError:
            return -math.inf
        yc = self._y - self._y.mean()
        alpha = cho_solve((factor, True), yc, check_finite=False)
        n = yc.shape[0]
        return float(-0.5 * yc @ alpha - np.log(np.diag(factor)).sum() - 0.5 * n * math.log(2 * math.pi))

    # ------------------------------------------------------------------ internals
    def _kernel(self, a: EncodedConfigs, b: EncodedConfigs) -> np.ndarray:
        return cross_covariance(a, b, self._omega, self._weights, parallel=self._use_parallel(len(a) * len(b)))

    def _use_parallel(self, entries: int) -> bool:
        return entries >= PARALLEL_MIN_ENTRIES if self.parallel is None else self.parallel

    def _full_matrix(self) -> np.ndarray:
        if self._X is None:
            raise RuntimeError("internal error: the GP has no observations to factorise")
        k = cross_covariance(self._X, self._X, self._omega, self._weights, parallel=False)
        k[np.diag_indices_from(k)] += self.noise_var
        return k

    def _refactor(self) -> None:
        self._chol.reset(self._full_matrix())

    def _update_alpha(self) -> None:
        self._mu = float(self._y.mean())
        self._factor = np.ascontiguousarray(self._chol.factor)
        self._alpha = cho_solve((self._factor, True), self._y - self._mu, check_finite=False)

    def _fit_omega(self) -> None:
        from lightning_dnc.gp.fitting import fit_omega

        self._omega = fit_omega(self.log_marginal_likelihood, self._omega, self.omega_bounds)
