"""Costs known before training: the composite model's exact cost model (variance 0).

For ``penalize`` in ``n_params``, ``flops`` and CPU ``memory`` the cost of a candidate is a function
of its configuration and the data's shape (:mod:`lightning_dnc.space.exact_costs`, equal to what
the evaluator records; tested against built networks). The composite model then learns the accuracy
only and computes ``f_c`` exactly for every candidate of a pick, instead of learning it from the
trials measured so far (:class:`~lightning_dnc.search.stages.composite.GPCostModel`). The measured
times ``t_tr`` and ``latency`` are regressed on exact features instead
(:mod:`~lightning_dnc.search.stages.regression_cost_model`).

Both models read a pool's candidates without a dict per candidate where they can: the
:func:`candidate_table` of a pool from its key rows, checked against a few complete configurations
(:func:`checked_pool_values`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lightning_dnc.space.config import DEFAULT_BATCH_SIZE
from lightning_dnc.space.exact_costs import ConfigTable, DataShape, costs_from_table, exact_costs

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

        A shortcut keeps a pick fast (a CNN pool's dicts cost ~40 ms per 1000): the costs of the
        pool's :func:`candidate_table`, built from its key rows (a stage-1 or joint pool's
        architectures, or one architecture for every candidate of a training-only stage), checked
        against the complete configurations of a few candidates and dropped if they differ.
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
        return complete_configs(query, indices)

    def _shortcut(self, query: Any) -> np.ndarray | None:
        """The costs without a dict per candidate, or None where no shortcut applies or checks out."""
        return checked_pool_values(query, self.family, lambda table: costs_from_table(table, self.data, self.penalize),
                                   lambda configs: self.costs(configs))


def complete_configs(query: Any, indices: Any) -> list[dict[str, Any]]:
    """The complete configurations of the candidates of ``query`` (a ``CostQuery``) at ``indices``."""
    candidates, complete = query.candidates, query.complete
    return [dict(candidates[i]) if complete is None else complete(candidates[i]) for i in indices]


def candidate_table(query: Any, family: str) -> ConfigTable | None:
    """The :class:`ConfigTable` of the candidates of ``query`` from their key rows, without a dict per
    candidate; None where the pool has no key rows to read. Unchecked: see :func:`checked_pool_values`.

    Three layouts (the spaces' ``pool_arrays``):

    * a stage-1 pool (CNN or MLP space): the architecture keys, at the batch size of the first
      candidate's complete configuration (its dense head, dropout and uniform per-layer choices too);
    * a joint pool (architecture + training, ``JointSpace``): the architecture keys, then
      ``[lr, weight_decay, batch_size]`` as float64 bits, so each row has its own batch size;
    * a training-only pool (a ``TrainingSpace`` stage, or the training part of a joint stage-3 pool,
      :class:`~lightning_dnc.search.stages.bo.WithFixedPart`): one architecture (the first
      candidate's) at each row's batch size.
    """
    from lightning_dnc.space.cost_features import pool_table, with_batch_sizes
    from lightning_dnc.space.exact_costs import config_table

    candidates, space = query.candidates, query.space
    parts = getattr(space, "parts", None) or (space,)
    samples = getattr(candidates, "samples", candidates)  # the training part of a WithFixedPart
    keys = getattr(samples, "keys", None)
    if not isinstance(keys, np.ndarray) or len(candidates) == 0:
        return None
    first = complete_configs(query, [0])[0]
    if getattr(parts[0], "family", None) == family and samples is candidates:
        width = _key_width(parts[0])
        batch: Any = first.get("batch_size", DEFAULT_BATCH_SIZE)
        if len(parts) > 1 and getattr(parts[1], "family", None) == "training" and keys.shape[1] == width + 3:
            batch = _batch_sizes(keys[:, width:])
        head = first.get("hidden_mlp", []) if family == "cnn" else ()
        dropout = bool(any(p > 0 for p in first.get("dropout_probs_mlp", [])))
        layers = {"stride2": _uniform(first, "strides", 1) == 2, "bn": bool(_uniform(first, "apply_bns", 1)),
                  "conv_dropout": bool(_uniform(first, "apply_dropouts", 1))} if family == "cnn" else {}
        return pool_table(parts[0], np.ascontiguousarray(keys[:, :width]), batch_size=batch, head=head,
                          hidden_dropout=dropout, **layers)
    if (getattr(space, "family", None) == "training" or samples is not candidates) and keys.shape[1] == 3:
        return with_batch_sizes(config_table(family, [first]), _batch_sizes(keys))
    return None


def checked_pool_values(query: Any, family: str, of_table: Callable[[ConfigTable], np.ndarray],
                        of_configs: Callable[[list[dict[str, Any]]], np.ndarray]) -> np.ndarray | None:
    """``of_table`` of the :func:`candidate_table` of ``query``, or None where there is none or where
    it differs from ``of_configs`` of the complete configurations of the :data:`CHECKED` candidates.

    Parameters
    ----------
    query : CostQuery
    family : {"cnn", "mlp"}
    of_table, of_configs : callable
        The same per-row values (e.g. costs, or a cost model's features) from a table and from
        complete configurations; rows of ``of_table``'s result are candidates.
    """
    m = len(query.candidates)
    if m < 2 * len(CHECKED):
        return None
    try:
        table = candidate_table(query, family)
    except (ValueError, IndexError):  # key rows of another layout than the three known ones
        table = None
    if table is None:
        return None
    checked = sorted({int(f * (m - 1)) for f in CHECKED})
    values = of_table(table)
    reference = of_configs(complete_configs(query, checked))
    return values if np.array_equal(values[checked], reference, equal_nan=True) else None


def _uniform(config: Mapping[str, Any], key: str, default: Any) -> Any:
    """The value of every layer of ``config[key]`` when they are all equal (a revisit stage carries
    such choices to every candidate), else ``default`` (the shortcut's check then decides)."""
    values = config.get(key) or [default]
    return values[0] if all(v == values[0] for v in values) else default


def _batch_sizes(training_keys: np.ndarray) -> np.ndarray:
    """The batch sizes of a training pool's key rows (``[lr, weight_decay, batch_size]`` as float64 bits)."""
    return np.ascontiguousarray(training_keys[:, 2]).view(np.float64)


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


__all__ = ["CHECKED", "EXACT_PENALTIES", "UNBUILDABLE_LOG_COST", "ExactCostModel", "candidate_table", "checked_pool_values",
           "complete_configs", "exact_cost_model"]
