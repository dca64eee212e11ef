"""Decisions on a denoised cost: a measured time shrunk toward what the configuration predicts.

A measured cost (``t_tr``, ``latency``) is noisy on a shared machine (10-20% between two runs of
the same configuration here), and one noisy measurement should not decide which candidate wins.
But these times are close to a linear function, in log, of counts the configuration fixes exactly
(training FLOPs and optimizer steps per epoch for ``t_tr``; inference FLOPs, parameters and layers
for ``latency``: :mod:`lightning_dnc.space.cost_features`). So with the composite model
(``model="composite"``) every decision that compares losses -- a stage's winner, the grid's greedy
adoption, the incumbent of the expected improvement and the final ranking -- reads each trial's
cost as its *estimate given all measurements* instead of its raw measurement:

1. Fit :class:`~lightning_dnc.gp.cost_regression.BayesianLinearCost` of ``y = log10(measure)`` on
   the features of every successful trial (evidence-fitted, robustly reweighted with Student-t
   weights so one measurement taken under load does not pull the line; its residual variance
   ``1 / beta``).
2. The measurement noise ``s2`` (log10 units squared) is the median over those trials of their
   own timing spread, ``(spread / value / ln 10)^2`` (``Evaluation.spread``: the timed repeats of
   the step, the epochs, the latency blocks).
3. What the features do not explain and the noise does not either is the configuration's own
   deviation, ``t2 = max(1 / beta - s2, 0)``. The other trials predict trial ``i``'s true log time
   as the regression fitted without it, ``m_i`` with variance ``t2 + v_i`` (``v_i``: the line's own
   uncertainty there, large while few trials are in, :meth:`BayesianLinearCost.leave_one_out`,
   computed with a noise variance of at least ``s2``);
   its measurement says ``y_i`` with variance ``s2 / u_i`` (``u_i``: its Student-t weight, small
   for an outlier). The estimate is the normal-normal combination
   ``d_i = m_i + w_i (y_i - m_i)``, ``w_i = (t2 + v_i) / (t2 + v_i + s2 / u_i)``: the raw
   measurement (``w = 1``) when no trial recorded a spread, the line when it explains everything
   beyond the noise and is well determined.
4. ``f_c = 10^(d_i - d_ref)`` where the reference was measured (the first successful trial, SPEC
   §1: its estimate, not its raw time, so one slow first measurement does not rescale every cost),
   else ``10^d_i / reference``.

Everything is a pure function of the told trials and the data's shape, so a replayed or resumed
search makes the same decisions. The raw measurements stay in the records; the result keeps the
estimates (:meth:`CostEstimates.to_dict`) and the report shows both. Without the data's shape
(a user's own datamodule or network, the LCBench surrogate) or with the scalar model, decisions use
the raw measurements.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lightning_dnc.gp.cost_regression import ROBUST_DOF, BayesianLinearCost
from lightning_dnc.search.core.objective import Objective
from lightning_dnc.space.cost_features import REGRESSION_FEATURES, table_features
from lightning_dnc.space.exact_costs import config_table

MODELLED_COSTS: tuple[str, ...] = tuple(REGRESSION_FEATURES)
"""Penalties whose measurements are denoised (the others are exact counts or unmodelled); the
regression reads the columns :data:`~lightning_dnc.space.cost_features.REGRESSION_FEATURES` names,
as the search's regression cost model does."""


TABLES = ("measured", "line", "estimate", "held_out")
"""The per-trial tables of :class:`CostEstimates`."""


@dataclass(frozen=True)
class CostEstimates:
    """Each successful trial's measured cost, the regression line at it, and the estimate decisions use.

    Attributes
    ----------
    penalize : {"t_tr", "latency"}
    measured, line, estimate, held_out : dict of int to float
        Per trial id, in the measure's units (seconds): the raw measurement, the regression's mean at
        the trial's features, the shrunk estimate, and what the regression predicts from the *other*
        trials (leave-one-out: how well the cost model predicts a configuration before it trains).
    reference_trial : int or None
        The trial whose estimate is the reference (``None``: the objective's reference was given).
    weight : float
        The median ``w_i``: how much of a measurement's deviation from the prediction is kept (1 = raw).
    noise_sd, deviation_sd : float
        ``sqrt(s2)`` and ``sqrt(t2)`` in log10 units.
    """

    penalize: str
    measured: dict[int, float]
    line: dict[int, float]
    estimate: dict[int, float]
    held_out: dict[int, float]
    reference_trial: int | None
    weight: float
    noise_sd: float
    deviation_sd: float

    def cost(self, trial_id: int, objective: Objective) -> float | None:
        """``f_c`` of ``trial_id`` from the estimates (``None`` when the trial has no estimate)."""
        value = self.estimate.get(trial_id)
        if value is None:
            return None
        if self.reference_trial is not None and self.reference_trial in self.estimate:
            return value / self.estimate[self.reference_trial]
        reference = objective.reference
        return None if reference is None else value / reference

    def to_dict(self) -> dict[str, Any]:
        """Plain data (trial ids as strings, for JSON)."""
        return {
            "penalize": self.penalize, "reference_trial": self.reference_trial, "weight": self.weight,
            "noise_sd": self.noise_sd, "deviation_sd": self.deviation_sd,
            **{name: {str(k): v for k, v in getattr(self, name).items()} for name in TABLES},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CostEstimates:
        """Inverse of :meth:`to_dict`."""
        tables = {name: {int(k): float(v) for k, v in data.get(name, {}).items()} for name in TABLES}
        reference = data.get("reference_trial")
        return cls(penalize=str(data["penalize"]), reference_trial=None if reference is None else int(reference),
                   weight=float(data["weight"]), noise_sd=float(data["noise_sd"]),
                   deviation_sd=float(data["deviation_sd"]), **tables)


def estimate_costs(trials: Iterable[Any], objective: Objective, family: str | None, data_shape: Any) -> CostEstimates | None:
    """The :class:`CostEstimates` of ``trials`` under ``objective``, or ``None`` where decisions use raw costs.

    Parameters
    ----------
    trials : iterable of Trial
        Every trial by id (pending and failed ones are skipped).
    objective : Objective
        The search's objective as set (a ``None`` reference means "the first successful trial's").
    family : {"cnn", "mlp"} or None
    data_shape : DataShape or None
        What the features need; ``None`` gives ``None``.

    Returns
    -------
    CostEstimates or None
        ``None`` when ``wc == 0``, the penalty is not a measured time, the family or data shape is
        unknown, or fewer than two successful trials measured it.
    """
    if objective.wc <= 0 or objective.penalize not in MODELLED_COSTS or family is None or data_shape is None:
        return None
    ids, configs, values, noise = [], [], [], []
    spread_key = _spread_key(objective)
    for trial in trials:
        evaluation = trial.evaluation
        if evaluation is None or not evaluation.ok or not trial.at_top:
            continue
        value = objective.measure(evaluation)
        if value is None or value <= 0:
            continue
        ids.append(trial.trial_id)
        configs.append(evaluation.config)
        values.append(value)
        spread = evaluation.spread.get(spread_key)
        if spread is not None and math.isfinite(spread) and spread >= 0:
            noise.append((spread / value / math.log(10)) ** 2)
    if len(ids) < 2:
        return None
    features = table_features(config_table(family, configs), data_shape, objective.penalize,
                              REGRESSION_FEATURES[objective.penalize])
    usable = np.all(np.isfinite(features), axis=1)
    if usable.sum() < 2:
        return None
    y = np.log10(np.asarray(values, dtype=np.float64))
    model = BayesianLinearCost(robust_dof=ROBUST_DOF).fit(features[usable], y[usable])
    line, held_out, line_var, row_weight = (np.full(len(ids), np.nan) for _ in range(4))
    line[usable] = model.predict(features[usable])[0]
    held_out[usable], line_var[usable] = model.leave_one_out()
    row_weight[usable] = model.row_weights
    s2 = float(np.median(noise)) if noise else 0.0
    t2 = max(1.0 / model.beta - s2, 0.0)
    line_var = line_var * max(1.0, s2 * model.beta)  # the line is no surer than the clock's noise allows
    prior = t2 + line_var  # what the other trials say of this configuration's true log time, and how surely
    kept = np.ones(len(ids)) if s2 <= 0 else prior / (prior + s2 / row_weight)
    shrunk = np.where(usable & np.isfinite(kept), held_out + kept * (y - held_out), y)  # unbuildable: the raw value
    kept = np.where(np.isfinite(kept), kept, 1.0)
    reference_trial = _reference_trial(ids, objective)
    return CostEstimates(
        penalize=objective.penalize,
        measured={i: float(v) for i, v in zip(ids, values)},
        line={i: float(10.0 ** v) for i, v in zip(ids, np.where(usable, line, y))},
        estimate={i: float(10.0 ** v) for i, v in zip(ids, shrunk)},
        held_out={i: float(10.0 ** v) for i, v in zip(ids, held_out) if math.isfinite(v)},
        reference_trial=reference_trial, weight=float(np.median(kept)), noise_sd=math.sqrt(s2),
        deviation_sd=math.sqrt(t2),
    )


def decision_loss(objective: Objective, evaluation: Any, trial_id: int, estimates: CostEstimates | None) -> float | None:
    """The loss decisions read: ``objective.loss`` with the estimated ``f_c`` where there is one."""
    if estimates is None or evaluation is None:
        return None if evaluation is None else objective.loss(evaluation)
    f_c = estimates.cost(trial_id, objective)
    return objective.loss(evaluation) if f_c is None else objective.loss_at(evaluation, f_c)


def _spread_key(objective: Objective) -> str:
    """The ``Evaluation.spread`` entry of the penalised measure."""
    if objective.penalize == "t_tr":
        return "t_tr_epoch" if objective.t_tr_mode == "epoch" else "t_tr_step"
    return objective.penalize


def _reference_trial(ids: list[int], objective: Objective) -> int | None:
    """The first successful trial (by id) when the objective's reference is measured, else None."""
    return min(ids) if objective.reference is None else None


__all__ = ["MODELLED_COSTS", "CostEstimates", "decision_loss", "estimate_costs"]
