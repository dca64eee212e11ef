"""The composite model of a BO stage (``model="composite"``): model what is unknown, compute the rest.

The loss is ``log10(f_p + wc * f_c)``. Instead of one GP on that number (``model="scalar"``, the
paper's), a composite stage keeps

* an **accuracy GP** on ``a = log10(max(f_p, ACCURACY_FLOOR))`` -- the error on the scale of the
  objective itself (errors span decades, and at ``wc = 0`` the loss *is* this term, so the two
  models coincide there), with the stage's kernels, prior-point rules and constant liar; its
  predictive variance is scaled by the maximum-likelihood signal variance of the targets (a
  closed form for fixed kernels: ``(y - mu)^T (K + s2 I)^{-1} (y - mu) / n``), since the error
  of a task may vary over a tenth of a decade or over several (on LCBench's tune half this took
  the median regret at wc 0.1 from 0.215 to 0.147);
* a **cost model** of ``c = log10 f_c`` (:class:`CostModel`, chosen by :func:`cost_model_for`):
  where the search knows the data's shape, exact costs or a regression of the measured times on
  exact features; otherwise :class:`GPCostModel`, a second target on the accuracy GP's own
  Cholesky factor (the factor depends on the configurations only, so it costs one triangular
  solve and one matrix-vector product), with its maximum-likelihood signal variance as the
  predictive scale;

and picks by the expected improvement of ``log10(10^a + wc * 10^c)`` under both posteriors
(:func:`lightning_dnc.gp.composite.composite_expected_improvement`, a fixed deterministic
quadrature). A candidate's cost comes only from the cost model
(never from a measurement it does not have yet). Everything is a pure function of the told trials,
so a replayed search makes the same picks.

Pending trials (``ask(n)``, Ray): fantasies at the best accuracy observed in the stage (the
constant liar of the scalar model) with the cost model's predicted cost (kriging believer).

Other cost models plug in through :func:`cost_model_for` (the acquisition code does not change):
exact parameter counts, FLOPs and CPU memory (variance 0), and a Bayesian linear regression of the
measured times on exact features, when the search knows the data's shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from lightning_dnc.search.core.cost_estimates import decision_loss
from lightning_dnc.search.stages.bo import Completer, StageGP

ACCURACY_FLOOR = 1e-3
"""``f_p`` is floored here before the log of the accuracy target (an error of 0 on a small
validation set would otherwise be a -6 outlier that no kernel fits); below it, ``wc * f_c``
decides anyway."""

COST_FLOOR = 1e-12
"""``f_c`` is floored here before the log of the cost target."""

MIN_SIGNAL_VARIANCE = 1e-3
"""Floor of a target's maximum-likelihood signal variance (log10 units squared): never fully certain."""

COST_VARIANCE_FACTOR = 0.25
"""The GP cost model's predictive variance is its shared posterior variance times its
maximum-likelihood signal variance times this. Chosen on LCBench's tune half (17 tasks x 5 seeds,
budget 30, wc 0.1; median regret 0.147 with 1, 0.128 with 0.25, 0.128 with 0 but worse after 10
trainings): the kernel's length scales are the accuracy's, and the cost is smoother than that."""


@dataclass(frozen=True)
class CostQuery:
    """What a cost model may read to predict the cost of a pick's candidates.

    Attributes
    ----------
    candidates : sequence of dict
        The stage's candidate samples (dicts built on access; ``len`` is cheap).
    complete : callable
        Turns a candidate into the complete configuration that would train (for costs that are
        functions of the configuration, e.g. parameter counts).
    observed : list of dict
        The configurations of the accuracy GP's rows, in row order (told trials, then pending).
    log_costs : ndarray
        ``log10 f_c`` measured for each row; NaN where unknown (failed or pending).
    shared : SharedFactor
        A GP with the accuracy GP's kernel and factor at the candidates: the nearly free second target.
    space : SearchSpace, optional
        The stage's GP space (lets a cost model read a pool's key rows instead of dicts).
    """

    candidates: Sequence[Mapping[str, Any]]
    complete: Completer | None
    observed: Sequence[Mapping[str, Any]]
    log_costs: np.ndarray
    shared: SharedFactor
    space: Any = None


class SharedFactor:
    """Second targets on the accuracy GP's factor, at a pick's candidates (``K_*`` computed once).

    Attributes
    ----------
    unit_variance : ndarray, shape (m,)
        The posterior variance at the candidates for a signal variance of 1.
    """

    def __init__(self, gp: Any, k_star: np.ndarray, unit_variance: np.ndarray) -> None:
        self._gp, self._k_star = gp, k_star
        self.unit_variance = unit_variance

    def mean(self, targets: np.ndarray) -> np.ndarray:
        """Posterior mean at the candidates of ``targets`` observed at the GP's rows (one each)."""
        return self._gp.target_mean(self._k_star, targets)

    def signal_variance(self, targets: np.ndarray) -> float:
        """The maximum-likelihood signal variance of ``targets`` for the shared kernel."""
        return self._gp.signal_variance(targets)


class CostModel(Protocol):
    """Predicts ``log10 f_c`` (mean, variance) of candidates that have not trained."""

    def predict(self, query: CostQuery) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of ``log10 f_c`` per candidate of ``query``, each shape (m,)."""


class GPCostModel:
    """``log10 f_c`` as a second target of the accuracy GP (same kernel, same factor).

    Rows without a measured cost (failed trials, pending fantasies) take the mean of the measured
    ones, a neutral value. The predictive variance is the shared posterior variance times the
    target's maximum-likelihood signal variance (at least :data:`MIN_SIGNAL_VARIANCE`; 1 with fewer
    than two measurements: the prior of a log10 cost) times :data:`COST_VARIANCE_FACTOR`.
    """

    def predict(self, query: CostQuery) -> tuple[np.ndarray, np.ndarray]:
        y = np.asarray(query.log_costs, dtype=np.float64)
        known = np.isfinite(y)
        if not known.any():
            m = len(query.candidates)
            return np.zeros(m), np.ones(m)
        y = np.where(known, y, y[known].mean())
        scale = max(query.shared.signal_variance(y), MIN_SIGNAL_VARIANCE) if known.sum() >= 2 else 1.0
        return query.shared.mean(y), query.shared.unit_variance * scale * COST_VARIANCE_FACTOR


def cost_model_for(objective: Any, family: str | None = None, data: Any = None) -> CostModel:
    """The cost model of a composite search penalising ``objective.penalize``.

    When the search knows the family and the data's shape (``SearchSettings.data_shape``, which
    ``run_search`` fills for the built-in network and in-memory datamodules in 32-bit precision):

    * ``n_params``, ``flops`` and CPU ``memory``:
      :class:`~lightning_dnc.search.stages.exact_cost_model.ExactCostModel`, computed from the
      candidate's complete configuration (variance 0; it needs the objective's reference);
    * the measured times ``t_tr`` and ``latency``:
      :class:`~lightning_dnc.search.stages.regression_cost_model.RegressionCostModel`, a Bayesian
      linear regression of the measured ``log10 f_c`` on exact features of the configurations.

    Otherwise (no data shape, e.g. an ask/tell search or a tabular benchmark; CUDA ``memory``, a
    measured peak), :class:`GPCostModel`.
    """
    from lightning_dnc.search.stages.exact_cost_model import exact_cost_model
    from lightning_dnc.search.stages.regression_cost_model import regression_cost_model

    model = exact_cost_model(objective, family, data) or regression_cost_model(objective, family, data)
    return GPCostModel() if model is None else model


class CompositeGP(StageGP):
    """The composite model of one BO stage: an accuracy GP (rows kept between picks, like
    :class:`~lightning_dnc.search.stages.bo.StageGP`), a :class:`CostModel` and the composite EI.

    Parameters
    ----------
    space : SearchSpace
        The stage's GP space.
    cost_model : CostModel, optional
        :func:`cost_model_for` the objective when not given (again whenever the bound objective
        changes, e.g. when a reference is measured).
    xi : float, default 1e-4
    family : {"cnn", "mlp"}, optional
    data_shape : DataShape, optional
        With ``family``, what the exact and the regression cost models need (:func:`cost_model_for`).
    """

    def __init__(self, space: Any, cost_model: CostModel | None = None, xi: float = 1e-4,
                 family: str | None = None, data_shape: Any = None) -> None:
        super().__init__(space, xi)
        self.cost_model = cost_model
        self._chosen_cost_model = cost_model is None
        self._family, self._data_shape = family, data_shape
        self._rules: tuple[np.ndarray, ...] | None = None
        self._objective: Any = None
        self._estimates: Any = None  # the search's denoised costs (search.core.cost_estimates), if any
        self._terms: dict[int, tuple[float, float | None, float]] = {}
        self._complete: Completer | None = None
        self._trials: Sequence[Any] = ()
        self._row_order = np.zeros(0, dtype=np.int64)  # observed position of each told GP row

    def prepare(self, state: Any, complete: Completer | None) -> None:
        """Keep what :meth:`pick` reads of the search: the told trials and the bound objective."""
        objective = state.bound_objective
        estimates = getattr(state, "cost_estimates", None)
        if objective != self._objective or estimates is not self._estimates:  # new reference or estimates
            self._terms = {}
            if self._chosen_cost_model and objective != self._objective:
                self.cost_model = cost_model_for(objective, self._family, self._data_shape)
        self._objective, self._complete, self._trials = objective, complete, state.trials
        self._estimates = estimates

    def _terms_of(self, trial_id: int) -> tuple[float, float | None, float] | None:
        """(log10 f_p, log10 f_c or None, loss) of a told trial; None when it has no loss."""
        if trial_id not in self._terms:
            evaluation = self._trials[trial_id].evaluation
            loss = decision_loss(self._objective, evaluation, trial_id, self._estimates)
            if loss is None:
                return None
            f_p = self._objective.performance(evaluation)
            f_c = None
            if self._objective.wc > 0:
                f_c = None if self._estimates is None else self._estimates.cost(trial_id, self._objective)
                f_c = self._objective.cost(evaluation) if f_c is None else f_c
            log_fc = math.log10(max(f_c, COST_FLOOR)) if f_c is not None else None
            self._terms[trial_id] = (math.log10(max(f_p, ACCURACY_FLOOR)), log_fc, loss)
        return self._terms[trial_id]

    def pick(self, candidates: Sequence[dict[str, Any]], observed: Sequence[tuple[int, dict[str, Any], float]],
             pending: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The candidate with the largest composite EI (first one on ties); at ``wc = 0``, or before
        any trial is told, the scalar model's pick (the loss is then the accuracy term alone)."""
        if self._objective is None or self._objective.wc <= 0:  # the loss is the accuracy term alone
            return super().pick(candidates, observed, pending)
        if not candidates:
            raise ValueError("`candidates` must not be empty.")
        if not observed:  # nothing measured yet: the scalar model's fantasies decide
            return super().pick(candidates, observed, pending)
        accuracy, log_costs = self._targets(observed)
        gp = self._accuracy_gp(observed, accuracy)
        encoded = getattr(candidates, "encoded", None)
        projected = encoded if encoded is not None else self._project(candidates)
        configs = [config for _, config, _ in observed]
        if pending:
            lie = float(accuracy.min()) if len(accuracy) else 0.0
            believed = self._cost(gp, gp.cross(self._project(pending)), pending, configs, log_costs)[0]
            gp = gp.with_fantasies(self._project(pending), np.full(len(pending), lie))
            log_costs = np.concatenate([log_costs, believed])
            configs = configs + list(pending)
        k_star = gp.cross(projected)
        mean_a, unit_var = gp.moments(k_star)
        mean_c, var_c = self._cost(gp, k_star, candidates, configs, log_costs, unit_var)
        var_a = unit_var * max(gp.signal_variance(), MIN_SIGNAL_VARIANCE)
        from lightning_dnc.gp.composite import composite_expected_improvement, quadrature_rules

        if self._rules is None:
            self._rules = quadrature_rules()
        best = min(loss for _, _, loss in observed)
        ei = composite_expected_improvement(mean_a, var_a, mean_c, var_c, self._objective.wc, best, self.xi, self._rules,
                                            best_only=True)
        ei = np.where(np.isfinite(ei), ei, -np.inf)
        if not np.any(ei > 0):  # nothing can improve by the samples: the best composite mean
            from lightning_dnc.gp.composite import composite_values

            ei = -composite_values(mean_a, mean_c, self._objective.wc)
        return candidates[int(np.argmax(ei))]

    # ------------------------------------------------------------------ internals
    def _targets(self, observed: Sequence[tuple[int, dict[str, Any], float]]) -> tuple[np.ndarray, np.ndarray]:
        """Accuracy and cost targets per observed row; a failed trial's accuracy is its stand-in
        loss, a shifted loss (warm-started stages) shifts the accuracy alike, unknown costs are NaN."""
        accuracy = np.empty(len(observed))
        costs = np.full(len(observed), np.nan)
        for row, (trial_id, _, loss) in enumerate(observed):
            terms = self._terms_of(trial_id)
            if terms is None:
                accuracy[row] = loss
                continue
            log_fp, log_fc, own_loss = terms
            accuracy[row] = log_fp + (loss - own_loss)
            if log_fc is not None:
                costs[row] = log_fc
        return accuracy, costs

    def _accuracy_gp(self, observed: Sequence[tuple[int, dict[str, Any], float]], accuracy: np.ndarray) -> Any:
        """The stage's GP with every told trial as a row (added once) and the accuracy targets."""
        self._retargeted(observed, accuracy)
        order = np.empty(len(observed), dtype=np.int64)
        for row, (trial_id, _, _) in enumerate(observed):
            order[self._rows[trial_id]] = row
        self._row_order = order
        return self._gp

    def _cost(self, gp: Any, k_star: np.ndarray, candidates: Sequence[Mapping[str, Any]],
              configs: list[Mapping[str, Any]], log_costs: np.ndarray,
              unit_var: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The cost model's (mean, variance) of ``log10 f_c`` at the candidates of ``k_star``."""
        n_told = len(self._row_order)
        by_row = np.concatenate([log_costs[:n_told][self._row_order], log_costs[n_told:]])
        configs_by_row = [configs[i] for i in self._row_order] + list(configs[n_told:])
        if unit_var is None:
            unit_var = gp.moments(k_star)[1]
        query = CostQuery(candidates=candidates, complete=self._complete, observed=configs_by_row,
                          log_costs=by_row, shared=SharedFactor(gp, k_star, unit_var), space=self.space)
        assert self.cost_model is not None
        mean, var = self.cost_model.predict(query)
        return np.asarray(mean, dtype=np.float64), np.asarray(var, dtype=np.float64)


__all__ = ["ACCURACY_FLOOR", "CompositeGP", "CostModel", "CostQuery", "GPCostModel", "SharedFactor", "cost_model_for"]
