"""Measured times known before training, up to a fitted line: the composite model's regression cost model.

``t_tr`` and ``latency`` are measured, so no formula gives them; but their log is close to linear in
what the configuration makes the machine do, and that is known exactly before training
(:mod:`lightning_dnc.space.cost_features`). :class:`RegressionCostModel` fits a Bayesian linear
regression (:class:`~lightning_dnc.gp.cost_regression.BayesianLinearCost`) of the measured
``log10 f_c`` of a stage's rows on those features at every pick, and predicts every candidate's
mean and variance from its features. Its targets are the trials' *denoised* costs where the
search has them (:mod:`~lightning_dnc.search.core.cost_estimates`, fitted robustly, so a time
measured while the machine was busy does not pull the line), which keeps this per-pick fit a plain
one. On digits (``python bench/cost_model_bench.py``,
``bench/results/cost_model.json``) this predicts held-out ``log10 t_tr`` with an RMSE of 0.17 where
the accuracy GP's second target (:class:`~lightning_dnc.search.stages.composite.GPCostModel`) has
0.24-0.28, and its two-sigma intervals hold about 95% of the held-out rows instead of 35-70%.

Feature columns (:data:`REGRESSION_FEATURES`, chosen on that benchmark's held-out error):

``t_tr``
    log10 training FLOPs per epoch and log10 optimizer steps per epoch: as good as all five
    columns (mean RMSE 0.168 vs 0.172) and better calibrated after 10 trainings.
``latency``
    log10 inference FLOPs, log10 ``n_params`` and the number of layers (0.194, vs 0.210 with the
    FLOPs alone).

A candidate's features come from its pool's key rows where the pool has them
(:func:`~lightning_dnc.search.stages.exact_cost_model.checked_pool_values`, checked against the
complete configurations of a few candidates), so a 1000-candidate pick builds no dict per candidate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lightning_dnc.gp.cost_regression import BayesianLinearCost
from lightning_dnc.search.stages.exact_cost_model import UNBUILDABLE_LOG_COST, checked_pool_values, complete_configs
from lightning_dnc.space.cost_features import FEATURE_NAMES, REGRESSION_FEATURES, table_features
from lightning_dnc.space.exact_costs import DataShape, config_table

CACHE_LIMIT = 10_000
"""Observed configurations whose features are kept between picks (the cache starts over beyond)."""


class RegressionCostModel:
    """``log10 f_c`` of a measured time by Bayesian linear regression on exact features.

    Parameters
    ----------
    family : {"cnn", "mlp"}
    data : DataShape
        The shape of the training data.
    penalize : {"t_tr", "latency"}
    columns : sequence of str, optional
        Feature columns (of ``FEATURE_NAMES[penalize]``); default :data:`REGRESSION_FEATURES`.

    Notes
    -----
    With no measured row the prediction is the prior of a log10 cost (mean 0, variance 1); with one,
    its value with variance 1 (as :class:`~lightning_dnc.search.stages.composite.GPCostModel`).
    Rows whose network cannot be built do not enter the fit; candidates that cannot be built get
    :data:`~lightning_dnc.search.stages.exact_cost_model.UNBUILDABLE_LOG_COST` with variance 0.
    Pending rows carry their believed cost (the composite model's kriging believer) and enter the
    fit like measured ones.
    """

    def __init__(self, family: str, data: DataShape, penalize: str, columns: Sequence[str] | None = None) -> None:
        if penalize not in REGRESSION_FEATURES:
            raise ValueError(f"`penalize` must be one of {tuple(REGRESSION_FEATURES)} for a regression cost model, "
                             f"got {penalize!r}.")
        self.family, self.data, self.penalize = family, data, penalize
        self.columns = tuple(REGRESSION_FEATURES[penalize] if columns is None else columns)
        for name in self.columns:
            if name not in FEATURE_NAMES[penalize]:
                raise ValueError(f"`columns` must name features of {penalize!r} {FEATURE_NAMES[penalize]}, got {name!r}.")
        self._cache: dict[int, tuple[Mapping[str, Any], np.ndarray]] = {}  # id -> (config kept alive, features)

    def features(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The model's feature columns of complete configurations, (n, k); NaN rows where unbuildable."""
        return table_features(config_table(self.family, configs), self.data, self.penalize, self.columns)

    def predict(self, query: Any) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of ``log10 f_c`` of the candidates of ``query`` (a ``CostQuery``), each (m,)."""
        m = len(query.candidates)
        y = np.asarray(query.log_costs, dtype=np.float64)
        X = self._observed_features(query.observed)
        usable = np.isfinite(y) & np.all(np.isfinite(X), axis=1)
        if not usable.any():
            return np.zeros(m), np.ones(m)
        model = BayesianLinearCost().fit(X[usable], y[usable])
        candidates = self._candidate_features(query)
        mean, var = model.predict(candidates)
        bad = ~np.all(np.isfinite(candidates), axis=1)
        return np.where(bad, UNBUILDABLE_LOG_COST, mean), np.where(bad, 0.0, var)

    # ------------------------------------------------------------------ internals
    def _observed_features(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Features of the GP rows' configurations, each computed once (rows are kept between picks)."""
        if len(self._cache) > CACHE_LIMIT:
            self._cache = {}
        new = [c for c in dict.fromkeys(map(id, configs)) if c not in self._cache]
        if new:
            by_id = {id(c): c for c in configs}
            rows = self.features([by_id[i] for i in new])
            self._cache.update({i: (by_id[i], row) for i, row in zip(new, rows)})
        out = np.empty((len(configs), len(self.columns)))
        for row, config in enumerate(configs):
            out[row] = self._cache[id(config)][1]
        return out

    def _candidate_features(self, query: Any) -> np.ndarray:
        """Features of every candidate: from the pool's key rows where they check out, else from dicts."""
        values = checked_pool_values(query, self.family,
                                     lambda table: table_features(table, self.data, self.penalize, self.columns),
                                     self.features)
        if values is None:
            values = self.features(complete_configs(query, range(len(query.candidates))))
        return values


def regression_cost_model(objective: Any, family: str | None, data: DataShape | None) -> RegressionCostModel | None:
    """The regression cost model of ``objective``'s measured-time penalty, or None where the search
    cannot compute the features (an unknown family or data shape, another penalty)."""
    if objective.penalize not in REGRESSION_FEATURES or family is None or data is None:
        return None
    return RegressionCostModel(family, data, objective.penalize)


__all__ = ["REGRESSION_FEATURES", "RegressionCostModel", "regression_cost_model"]
