"""Features of a configuration that predict its measured costs, known before it trains.

A cost model of the measured times (``t_tr``, ``latency``;
:class:`lightning_dnc.gp.cost_regression.BayesianLinearCost`) regresses their log on these columns,
all computed exactly from the configuration and the data's shape
(:mod:`lightning_dnc.space.exact_costs`):

``t_tr`` (training seconds per epoch)
    log10 training FLOPs per epoch, log10 optimizer steps per epoch, log10 ``n_params``,
    log10 training memory (bytes; activations dominate), number of layers (conv + Linear).
``latency`` (inference seconds per sample at batch 1)
    log10 inference FLOPs per sample, log10 ``n_params``, number of layers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lightning_dnc.space.exact_costs import DataShape, config_table, costs_from_table
from lightning_dnc.validation import check_choice

FEATURE_NAMES: dict[str, tuple[str, ...]] = {
    "t_tr": ("log10_flops_train", "log10_steps", "log10_n_params", "log10_memory", "layers"),
    "latency": ("log10_flops", "log10_n_params", "layers"),
}
"""The feature columns, in order, of each modelled cost."""


def cost_features(family: str, configs: Sequence[Mapping[str, Any]], data: DataShape, target: str = "t_tr") -> np.ndarray:
    """The :data:`FEATURE_NAMES` columns of ``target`` for every configuration.

    Parameters
    ----------
    family : {"cnn", "mlp"}
    configs : sequence of mapping
        Partial or complete configurations of ``family`` (a missing ``batch_size`` is 256).
    data : DataShape
    target : {"t_tr", "latency"}, default "t_tr"

    Returns
    -------
    ndarray
        (len(configs), len(FEATURE_NAMES[target])) float64; rows of networks that cannot be built
        hold NaN.
    """
    check_choice("target", target, tuple(FEATURE_NAMES))
    table = config_table(family, configs)
    layers = (table.depth + (table.hidden > 0).sum(axis=1) + 1).astype(np.float64)
    n_params = np.log10(costs_from_table(table, data, "n_params"))
    if target == "latency":
        return np.column_stack([np.log10(costs_from_table(table, data, "flops")), n_params, layers])
    steps = np.ceil(data.train_samples / table.batch_size.astype(np.float64))
    return np.column_stack([np.log10(costs_from_table(table, data, "flops_train")), np.log10(steps), n_params,
                            np.log10(costs_from_table(table, data, "memory")), layers])


__all__ = ["FEATURE_NAMES", "cost_features"]
