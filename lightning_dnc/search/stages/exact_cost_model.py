"""Costs known before training: the composite model's exact cost model (variance 0).

For ``penalize`` in ``n_params``, ``flops`` and CPU ``memory`` the cost of a candidate is a function
of its configuration and the data's shape (:mod:`lightning_dnc.space.exact_costs`, equal to what
the evaluator records; tested against built networks). The composite model then learns the accuracy
only and computes ``f_c`` exactly for every candidate of a pick, instead of learning it from the
trials measured so far (:class:`~lightning_dnc.search.stages.composite.GPCostModel`, still the model
of the measured times ``t_tr`` and ``latency``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from lightning_dnc.space.exact_costs import DataShape, exact_costs

EXACT_PENALTIES: tuple[str, ...] = ("n_params", "flops", "memory")
"""Penalties whose cost the search computes instead of modelling."""

CHECKED: tuple[float, ...] = (0.0, 0.37, 0.71, 1.0)
"""Where in a pool a shortcut's costs are checked against the complete configurations (fractions)."""

UNBUILDABLE_LOG_COST = 6.0
"""``log10 f_c`` given to a candidate that cannot be built (its training would fail): a cost of a
million references, so its expected improvement is nil."""


class ExactCostModel:
    """``log10 f_c`` of every candidate from its complete configuration, with variance 0.

    Parameters
    ----------
    family : {"cnn", "mlp"}
    data : DataShape
        The shape of the training data (input shape, outputs, training samples, normalisation).
    penalize : {"n_params", "flops", "memory"}
    reference : float
        The penalised measure's reference (``f_c = cost / reference``).
    """

    def __init__(self, family: str, data: DataShape, penalize: str, reference: float) -> None:
        if penalize not in EXACT_PENALTIES:
            raise ValueError(f"`penalize` must be one of {EXACT_PENALTIES} for an exact cost model, got {penalize!r}.")
        if not reference > 0:
            raise ValueError(f"`reference` must be > 0, got {reference!r}.")
        self.family, self.data, self.penalize, self.reference = family, data, penalize, float(reference)

    def costs(self, configs: list[Mapping[str, Any]]) -> np.ndarray:
        """The penalised measure of each complete configuration (NaN where it cannot be built)."""
        return exact_costs(self.family, configs, self.data, self.penalize)

    def predict(self, query: Any) -> tuple[np.ndarray, np.ndarray]:
        """Exact ``log10 f_c`` of the candidates of ``query`` (a :class:`CostQuery`), variance 0.

        Two shortcuts keep a pick fast (a CNN pool's dicts cost ~40 ms per 1000): a stage-1 pool's
        costs from its key rows (:func:`~lightning_dnc.space.cost_features.pool_table`), and one
        architecture's ``n_params`` / ``flops`` for every candidate of a training-only stage. Each is
        checked against the complete configurations of a few candidates and dropped if they differ.
        """
        values = self._shortcut(query)
        if values is None:
            values = self.costs(self._configs(query, range(len(query.candidates))))
        with np.errstate(divide="ignore", invalid="ignore"):
            log_costs = np.log10(np.maximum(values / self.reference, 1e-12))
        log_costs = np.where(np.isfinite(log_costs), log_costs, UNBUILDABLE_LOG_COST)
        return log_costs, np.zeros(len(log_costs))

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _configs(query: Any, indices: Any) -> list[dict[str, Any]]:
        candidates, complete = query.candidates, query.complete
        return [dict(candidates[i]) if complete is None else complete(candidates[i]) for i in indices]

    def _shortcut(self, query: Any) -> np.ndarray | None:
        """The costs without a dict per candidate, or None where no shortcut applies or checks out."""
        m = len(query.candidates)
        if self.penalize == "memory" or m < 2 * len(CHECKED):  # memory depends on the batch size: no shortcut
            return None
        space = query.space
        parts = getattr(space, "parts", None) or (space,)
        checked = sorted({int(f * (m - 1)) for f in CHECKED})
        reference = self.costs(self._configs(query, checked))
        if getattr(parts[0], "family", None) == self.family and hasattr(query.candidates, "keys"):
            from lightning_dnc.space.cost_features import pool_table
            from lightning_dnc.space.exact_costs import costs_from_table

            first = self._configs(query, [0])[0]
            head = first.get("hidden_mlp", []) if self.family == "cnn" else ()
            dropout = bool(any(p > 0 for p in first.get("dropout_probs_mlp", [])))
            width = _key_width(parts[0])
            table = pool_table(parts[0], np.ascontiguousarray(query.candidates.keys[:, :width]), head=head,
                               hidden_dropout=dropout)
            values = costs_from_table(table, self.data, self.penalize)
        elif getattr(space, "family", None) == "training" or hasattr(query.candidates, "_fixed"):
            values = np.full(m, reference[0])  # one architecture: n_params and FLOPs do not depend on training
        else:
            return None
        same = np.allclose(values[checked], reference, rtol=0, atol=0, equal_nan=True)
        return values if same else None


def _key_width(space: Any) -> int:
    """Columns of a stage-1 space's key rows: CNN ``[depth, channels, max-pools]``, MLP ``[layers, widths]``."""
    if space.family == "cnn":
        return 1 + 2 * int(space.num_conv_layers[1])
    return 1 + int(space.num_hidden_layers[1])


def exact_cost_model(objective: Any, family: str | None, data: DataShape | None) -> ExactCostModel | None:
    """The exact cost model of ``objective``'s penalty, or None where the cost must be modelled
    (a measured time, an unknown family, data shape or reference)."""
    reference = objective.reference
    if (objective.penalize not in EXACT_PENALTIES or family is None or data is None or reference is None
            or not math.isfinite(reference) or reference <= 0):
        return None
    return ExactCostModel(family, data, objective.penalize, reference)


__all__ = ["EXACT_PENALTIES", "ExactCostModel", "exact_cost_model"]
