"""Features of a configuration that predict its measured costs, known before it trains; pools as tables.

A cost model of the measured times (``t_tr``, ``latency``;
:class:`lightning_dnc.gp.cost_regression.BayesianLinearCost`) regresses their log on these columns,
all computed exactly from the configuration and the data's shape
(:mod:`lightning_dnc.space.exact_costs`):

``t_tr`` (training seconds per epoch)
    log10 training FLOPs per epoch, log10 optimizer steps per epoch, log10 ``n_params``,
    log10 training memory (bytes; activations dominate), number of layers (conv + Linear).
``latency`` (inference seconds per sample at batch 1)
    log10 inference FLOPs per sample, log10 ``n_params``, number of layers.

On digits (``python bench/cost_model_bench.py``, ``bench/results/cost_model.json``) the first two
``t_tr`` columns alone predict held-out ``log10 t_tr`` as well as all five (mean RMSE 0.168 vs 0.172)
and are better calibrated after 10 trainings; for ``latency`` all three columns do better (0.194 vs
0.210, with inference FLOPs alone).

:func:`pool_table` turns the key rows of a stage-1 BO pool (``space.pool_arrays(n, seed).keys``) into
the :class:`~lightning_dnc.space.exact_costs.ConfigTable` of its samples without building a dict,
so the exact costs of a 1000-candidate pool take about a millisecond; :func:`with_batch_sizes` does
the same for a stage-3 pool (one architecture, many batch sizes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lightning_dnc.space.config import DEFAULT_BATCH_SIZE
from lightning_dnc.space.exact_costs import ConfigTable, DataShape, config_table, costs_from_table
from lightning_dnc.validation import check_choice

FEATURE_NAMES: dict[str, tuple[str, ...]] = {
    "t_tr": ("log10_flops_train", "log10_steps", "log10_n_params", "log10_memory", "layers"),
    "latency": ("log10_flops", "log10_n_params", "layers"),
}
"""The feature columns, in order, of each modelled cost."""

REGRESSION_FEATURES: dict[str, tuple[str, ...]] = {
    "t_tr": ("log10_flops_train", "log10_steps"),
    "latency": FEATURE_NAMES["latency"],
}
"""The columns the search regresses each measured time on (its cost model and its denoised costs),
chosen on ``bench/cost_model_bench.py``'s held-out error: for ``t_tr`` the first two are as good as
all five (mean RMSE 0.168 vs 0.172) and better calibrated after 10 trainings; for ``latency`` all
three (0.194, vs 0.210 with the FLOPs alone)."""


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
    return table_features(config_table(family, configs), data, target)


def table_features(table: ConfigTable, data: DataShape, target: str = "t_tr",
                   columns: Sequence[str] | None = None) -> np.ndarray:
    """The feature columns of ``target`` for every row of ``table`` (:func:`cost_features` on a table).

    Parameters
    ----------
    table : ConfigTable
        E.g. :func:`pool_table` of a BO pool, or ``config_table`` of configurations.
    data : DataShape
    target : {"t_tr", "latency"}, default "t_tr"
    columns : sequence of str, optional
        A subset of ``FEATURE_NAMES[target]``, in the order wanted (only these are computed);
        default all of them.

    Returns
    -------
    ndarray
        (rows, len(columns)) float64; NaN in rows of networks that cannot be built.
    """
    check_choice("target", target, tuple(FEATURE_NAMES))
    names = FEATURE_NAMES[target] if columns is None else tuple(columns)
    for name in names:
        check_choice("columns", name, FEATURE_NAMES[target])
    compute = {
        "log10_flops_train": lambda: np.log10(costs_from_table(table, data, "flops_train")),
        "log10_steps": lambda: np.log10(np.ceil(data.train_samples / table.batch_size.astype(np.float64))),
        "log10_n_params": lambda: np.log10(costs_from_table(table, data, "n_params")),
        "log10_memory": lambda: np.log10(costs_from_table(table, data, "memory")),
        "log10_flops": lambda: np.log10(costs_from_table(table, data, "flops")),
        "layers": lambda: (table.depth + (table.hidden > 0).sum(axis=1) + 1).astype(np.float64),
    }
    out = np.empty((table.batch_size.shape[0], len(names)))
    for j, name in enumerate(names):
        out[:, j] = compute[name]()
    return out


def pool_table(space: Any, keys: np.ndarray, batch_size: int | np.ndarray = DEFAULT_BATCH_SIZE,
               head: Sequence[int] = (), hidden_dropout: bool = True, stride2: bool = False, bn: bool = True,
               conv_dropout: bool = True) -> ConfigTable:
    """The :class:`ConfigTable` of a stage-1 pool's samples, from its key rows.

    Parameters
    ----------
    space : CNNSpace or MLPSpace
        The space whose ``pool_arrays(n, seed).keys`` are given.
    keys : ndarray
        (m, w) int64 key rows: CNN ``[depth, channels (n_max), max-pools (n_max)]``, MLP
        ``[hidden layers, widths (max layers)]``.
    batch_size : int or ndarray, default 256
        One for every row, or (m,) per row.
    head : sequence of int, default ()
        CNN only: the hidden widths of the dense head every sample shares.
    hidden_dropout : bool, default True
        Whether hidden Linear layers (the MLP's, or the CNN head's) have dropout with p > 0 (SPEC: 0.2).
    stride2, bn, conv_dropout : bool, default False, True, True
        CNN only: the same choice on every conv layer (stride 2 asked for, batch norm, dropout with
        p > 0); the defaults are the stage-1 layers of ``complete_config``, other values a
        revisit stage's carried uniform choices.

    Returns
    -------
    ConfigTable
        CNN rows have these layer choices on every layer and the shortcuts of the depth's default
        spacing.
    """
    keys = np.asarray(keys, dtype=np.int64)
    m = keys.shape[0]
    depth = keys[:, 0].copy()
    batch = np.broadcast_to(np.asarray(batch_size, dtype=np.int64), (m,)).copy()
    if space.family == "mlp":
        width = space.num_hidden_layers[1]
        hidden = keys[:, 1:1 + width].copy()
        empty = np.zeros((m, 0), dtype=np.int64)
        return ConfigTable("mlp", batch, np.zeros(m, dtype=np.int64), empty, *[empty.astype(bool)] * 5, hidden,
                           (hidden > 0) & hidden_dropout)
    check_choice("space.family", space.family, ("cnn", "mlp"))
    n_max = space.num_conv_layers[1]
    index = np.arange(n_max)[None, :]
    inside = index < depth[:, None]
    spacing = np.where(depth <= 8, 0, np.where(depth <= 14, 4, 2))[:, None]
    shortcuts = (spacing > 0) & (index % np.maximum(spacing, 1) == 0) & (index < (depth - 2)[:, None])
    hidden = np.tile(np.asarray(list(head), dtype=np.int64), (m, 1))
    return ConfigTable("cnn", batch, depth, keys[:, 1:1 + n_max].copy(), inside & stride2,
                       keys[:, 1 + n_max:1 + 2 * n_max] == 1, inside & bn, inside & conv_dropout, shortcuts, hidden,
                       np.full(hidden.shape, hidden_dropout, dtype=bool))


def with_batch_sizes(table: ConfigTable, batch_sizes: np.ndarray) -> ConfigTable:
    """A table of one architecture (row 0 of ``table``) at each of ``batch_sizes`` (a stage-3 pool).

    Parameters
    ----------
    table : ConfigTable
        Its first row is the architecture.
    batch_sizes : ndarray
        (m,) integers >= 1 (for a training-space pool: ``keys[:, 2].view(np.float64)``).
    """
    batch = np.asarray(batch_sizes, dtype=np.float64)
    if batch.ndim != 1 or np.any(batch < 1) or np.any(batch != np.floor(batch)):
        raise ValueError(f"`batch_sizes` must be a 1-d array of integers >= 1, got {batch_sizes!r}.")
    rows = np.zeros(batch.shape[0], dtype=np.int64)
    fields = {name: getattr(table, name)[rows] for name in ("depth", "channels", "stride2", "maxpool", "bn", "dropout",
                                                            "shortcut", "hidden", "hidden_dropout")}
    return ConfigTable(family=table.family, batch_size=batch.astype(np.int64), **fields)


__all__ = ["FEATURE_NAMES", "REGRESSION_FEATURES", "cost_features", "pool_table", "table_features", "with_batch_sizes"]
