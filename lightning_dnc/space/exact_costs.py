"""Exact costs of candidate networks from their configurations, before anything is built or trained.

``n_params``, inference ``flops``, training ``flops_train`` and the CPU ``memory`` estimate that the
evaluator records (:mod:`lightning_dnc.measure`, through
:class:`~lightning_dnc.lightning.candidate.cost_probe.CostProbe`) are functions of the
configuration and of the data's shape only. This module computes them in closed form, vectorised
with numpy over a pool of configurations (no torch), so a search can know them for every candidate
of a BO pool. Each value equals, to the last bit, the ``Evaluation`` field of a 32-bit, single-process
run (``tests/test_exact_costs.py`` builds the networks and measures them):

==============  ===========================  ==================================================
measure         ``Evaluation`` field         what it is
==============  ===========================  ==================================================
``n_params``    ``n_params``                 trainable parameters of the network
``flops``       ``flops``                    forward FLOPs of one sample (eval mode)
``flops_train`` ``flops_train``              forward + backward FLOPs of one step, per sample,
                                             times the training samples of an epoch
``memory``      ``memory`` (CPU, estimate)   parameters and buffers + gradients + Adam state +
                                             the tensors autograd saves for one training step
==============  ===========================  ==================================================

FLOPs follow ``FlopCounterMode`` (a multiply-add is 2 FLOPs; only convolutions and matrix products
count). A layer whose input needs no gradient (the first conv or Linear) has no input-gradient
product in the backward pass. Memory is bytes: float32 tensors (4 bytes), max-pool indices and class
targets int64 (8 bytes); CPU dropout saves a float32 noise tensor.

Where the counts are not exact
------------------------------
- ``memory`` on CUDA is a measured peak (``memory_method == "cuda_peak"``): model it, do not compute it.
  The estimate recorded beside it differs there too (CUDA dropout saves a 1-byte mask).
- Mixed or 16-bit precision, several processes (DDP: nothing is measured) or a custom
  ``module_class`` change what is stored; these counts assume the default ``CandidateModule`` in
  32-bit precision on one process, fed fresh contiguous float32 batches (what the project's loaders
  serve when they shuffle).
- A CNN config that cannot be built (a shortcut into a layer with fewer channels, a shortcut past
  the last layer) gets NaN in every measure: its evaluation fails before any cost is measured.
- ``t_tr`` and ``latency`` are times: they raise ``ValueError`` here (see
  :mod:`lightning_dnc.gp.cost_regression` for a model of them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from lightning_dnc.space.config import DEFAULT_BATCH_SIZE, DEFAULT_MLP_DROPOUT, MAXPOOL_THRESHOLDS
from lightning_dnc.validation import check_choice

EXACT_MEASURES: tuple[str, ...] = ("n_params", "flops", "flops_train", "memory")
"""Measures computed exactly here."""

MEASURED_ONLY: tuple[str, ...] = ("t_tr", "latency")
"""Penalties that are times: only a cost model predicts them."""

TASKS: tuple[str, ...] = ("classification", "regression")
FLOAT_BYTES = 4
INDEX_BYTES = 8
KERNEL_AREA = 9  # 3x3 convolutions
BN_SAVED_VECTORS = 4  # running mean and variance, saved mean and inverse std: saved for backward
ADAM_STEP_BYTES = 4  # Adam's per-parameter ``step`` (a float32 scalar tensor)
LOSS_SCALAR_BYTES = 4  # cross entropy's saved ``total_weight``


@dataclass(frozen=True)
class DataShape:
    """What the exact costs need to know about the data (frozen, plain numbers).

    Parameters
    ----------
    input_shape : tuple of int
        One sample's shape: ``(C, H, W)`` for a CNN, any shape for an MLP (flattened).
    num_outputs : int
        Classes (classification) or target dimensions (regression).
    train_samples : int
        Training samples per epoch (the training split).
    task : {"classification", "regression"}, default "classification"
        Regression targets ``(N,)`` or ``(N, d)`` cost the same.
    input_stats : (int, int) or None, default None
        Elements of the input normalisation's ``mean`` and ``std`` buffers (1 for a scalar or an
        absent one), or None when the module does not normalise its inputs (``input_stats`` None).
    """

    input_shape: tuple[int, ...]
    num_outputs: int
    train_samples: int
    task: str = "classification"
    input_stats: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        shape = _int_tuple("input_shape", self.input_shape)
        if not shape:
            raise ValueError(f"`input_shape` must be a non-empty tuple of ints >= 1, got {self.input_shape!r}.")
        object.__setattr__(self, "input_shape", shape)
        for name in ("num_outputs", "train_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"`{name}` must be an int >= 1, got {value!r}.")
            object.__setattr__(self, name, int(value))
        check_choice("task", self.task, TASKS)
        if self.input_stats is not None:
            stats = _int_tuple("input_stats", self.input_stats)
            if len(stats) != 2:
                raise ValueError(f"`input_stats` must be None or (mean elements, std elements), got {self.input_stats!r}.")
            object.__setattr__(self, "input_stats", stats)

    @property
    def features(self) -> int:
        """Elements of one sample."""
        return math.prod(self.input_shape)

    @classmethod
    def from_datamodule(cls, datamodule: Any) -> DataShape:
        """The data shape of an :class:`~lightning_dnc.data.base.InMemoryDataModule` (loads its data).

        Parameters
        ----------
        datamodule : InMemoryDataModule
            Read through ``input_shape``, ``num_outputs``, ``task``, ``num_samples("train")``,
            and ``input_stats``.
        """
        stats = datamodule.input_stats
        sizes = None
        if stats is not None:
            sizes = tuple(int(np.asarray(1.0 if stats.get(k) is None else stats[k]).size) for k in ("mean", "std"))
        return cls(tuple(datamodule.input_shape), int(datamodule.num_outputs), int(datamodule.num_samples("train")),
                   datamodule.task, sizes)


def _int_tuple(name: str, value: Any) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a tuple of ints >= 1, got {value!r}.") from None
    if any(v < 1 for v in out) or any(float(v) != o for v, o in zip(value, out)):
        raise ValueError(f"`{name}` must be a tuple of ints >= 1, got {value!r}.")
    return out


@dataclass(frozen=True)
class ConfigTable:
    """A pool of configurations as padded arrays (what :func:`costs_from_table` computes on).

    Attributes
    ----------
    family : {"cnn", "mlp"}
    batch_size : ndarray
        (m,) int64.
    depth : ndarray
        (m,) int64 conv layers (0 for an MLP).
    channels, stride2, maxpool, bn, dropout, shortcut : ndarray
        (m, L) per conv layer, zero past ``depth``: int64 channels and bool flags (``dropout``:
        applied with p > 0; ``stride2``: stride 2 asked for).
    hidden : ndarray
        (m, H) int64 hidden Linear widths, zero past each row's count.
    hidden_dropout : ndarray
        (m, H) bool, dropout with p > 0 after the hidden layer.
    """

    family: str
    batch_size: np.ndarray
    depth: np.ndarray
    channels: np.ndarray
    stride2: np.ndarray
    maxpool: np.ndarray
    bn: np.ndarray
    dropout: np.ndarray
    shortcut: np.ndarray
    hidden: np.ndarray
    hidden_dropout: np.ndarray


def _padded(rows: list[Any], lengths: np.ndarray, width: int, key: str,
            default: np.ndarray | None = None) -> np.ndarray:
    """``rows`` (lists, or None where ``default`` applies) as an (m, width) float64 array, zero-padded.

    Raises ``ValueError`` naming ``key`` when a given row's length is not its ``lengths`` entry.
    """
    given = [i for i, r in enumerate(rows) if r is not None]
    if not given:
        return np.zeros((len(rows), width)) if default is None else default.astype(np.float64)
    every = len(given) == len(rows)
    kept = rows if every else [rows[i] for i in given]
    try:
        sizes = np.fromiter(map(len, kept), dtype=np.int64, count=len(kept))
        if not np.array_equal(sizes, lengths if every else lengths[given]):
            raise TypeError
        flat = np.fromiter(chain.from_iterable(kept), dtype=np.float64, count=int(sizes.sum()))
    except (TypeError, ValueError):
        bad = next((i for i in given if not isinstance(rows[i], Sequence) or len(rows[i]) != lengths[i]), given[0])
        raise ValueError(f"Config {bad}: `{key}` must be a list of {int(lengths[bad])} numbers (one per layer), "
                         f"got {rows[bad]!r}.") from None
    mask = np.arange(width)[None, :] < sizes[:, None]
    if every:
        out = np.zeros((len(rows), width))
        out[mask] = flat
        return out
    out = np.zeros((len(rows), width)) if default is None else default.astype(np.float64)
    sub = np.zeros((len(given), width))
    sub[mask] = flat
    out[given] = sub
    return out


CNN_COLUMNS = ("out_channels", "strides", "apply_maxpools", "apply_bns", "apply_dropouts", "dropout_probs", "shortcuts")
HEAD_COLUMNS = ("hidden_mlp", "dropout_probs_mlp", "batch_size")


def _columns(configs: Sequence[Mapping[str, Any]], keys: tuple[str, ...]) -> dict[str, list[Any]]:
    """``{key: [config.get(key) for config in configs]}`` in one pass."""
    if not configs:
        return {k: [] for k in keys}
    return dict(zip(keys, map(list, zip(*[tuple(map(c.get, keys)) for c in configs]))))


def _cnn_layers(configs: Sequence[Mapping[str, Any]], cols: dict[str, list[Any]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Depths and the per-layer arrays (channels, stride 2, max-pool, BN, dropout, shortcut) of CNN configs."""
    channels_rows = cols["out_channels"]
    m = len(configs)
    try:
        depth = np.fromiter(map(len, channels_rows), dtype=np.int64, count=m)
    except TypeError:
        depth = np.zeros(m, dtype=np.int64)
    if m and depth.min() < 1:
        i = next(j for j, r in enumerate(channels_rows) if not isinstance(r, Sequence) or not r)
        raise ValueError(f"Config {i} is not a CNN config: `out_channels` must be a non-empty list of ints, "
                         f"got {configs[i]!r}.")
    width = int(depth.max(initial=0))
    index = np.arange(width)[None, :]
    inside = index < depth[:, None]
    channels = _padded(channels_rows, depth, width, "out_channels").astype(np.int64)
    derived = np.zeros((m, width))  # SPEC §4 max-pools: after layer i-1 where channels first exceed 64, 128, 256
    for threshold in MAXPOOL_THRESHOLDS:
        exceeds = (channels[:, 1:] > threshold) & inside[:, 1:]
        rows = np.flatnonzero(exceeds.any(axis=1))
        derived[rows, exceeds[rows].argmax(axis=1)] = 1
    spacing = np.where(depth <= 8, 0, np.where(depth <= 14, 4, 2))[:, None]
    spaced = (spacing > 0) & (index % np.maximum(spacing, 1) == 0) & (index < (depth - 2)[:, None])
    zeros = np.zeros((m, width))
    strides = _padded(cols["strides"], depth, width, "strides", zeros)
    pools = _padded(cols["apply_maxpools"], depth, width, "apply_maxpools", derived)
    bns = _padded(cols["apply_bns"], depth, width, "apply_bns", inside * 1.0)
    applied = _padded(cols["apply_dropouts"], depth, width, "apply_dropouts", inside * 1.0)
    probs = _padded(cols["dropout_probs"], depth, width, "dropout_probs", inside * 1.0)
    shortcuts = _padded(cols["shortcuts"], depth, width, "shortcuts", spaced * 1.0)
    return depth, [channels, strides == 2, pools == 1, bns == 1, (applied == 1) & (probs > 0), shortcuts == 1]


def config_table(family: str, configs: Sequence[Mapping[str, Any]]) -> ConfigTable:
    """The padded arrays of ``configs`` (partial configs take the SPEC defaults of ``complete_config``).

    Parameters
    ----------
    family : {"cnn", "mlp"}
    configs : sequence of mapping
        Configurations as the search proposes them (stage-1 skeletons, stage-2 variants, complete
        configs); a missing ``batch_size`` is the default 256.

    Raises
    ------
    ValueError
        On an unknown family, a config of the other family, or per-layer lists of the wrong length.
    """
    check_choice("family", family, ("cnn", "mlp"))
    m = len(configs)
    cols = _columns(configs, (CNN_COLUMNS if family == "cnn" else ()) + HEAD_COLUMNS)
    if family == "cnn":
        depth, layers = _cnn_layers(configs, cols)
    else:
        for i, config in enumerate(configs):
            if "out_channels" in config:
                raise ValueError(f"Config {i} has `out_channels`: it is a CNN config, not an MLP one: {config!r}.")
        depth = np.zeros(m, dtype=np.int64)
        layers = [np.zeros((m, 0), dtype=np.int64)] + [np.zeros((m, 0), dtype=bool)] * 5
    hidden_rows = [h or [] for h in cols["hidden_mlp"]]
    h_len = np.fromiter(map(len, hidden_rows), dtype=np.int64, count=m)
    h_width = int(h_len.max(initial=0))
    hidden = _padded(hidden_rows, h_len, h_width, "hidden_mlp").astype(np.int64)
    head_inside = (np.arange(h_width)[None, :] < h_len[:, None]) * 1.0
    probs = _padded(cols["dropout_probs_mlp"], h_len, h_width, "dropout_probs_mlp",
                       head_inside * DEFAULT_MLP_DROPOUT)
    batch = np.array([DEFAULT_BATCH_SIZE if b is None else b for b in cols["batch_size"]], dtype=np.float64)
    if np.any(batch < 1) or np.any(batch != np.floor(batch)):
        raise ValueError(f"`batch_size` must be an integer >= 1 in every config, got {batch[batch < 1][:3]!r}.")
    return ConfigTable(family, batch.astype(np.int64), depth, *layers, hidden, probs > 0)


def _cnn_parts(t: ConfigTable, data: DataShape, memory: bool) -> dict[str, Any]:
    """Per-sample counts of the conv trunk (the saved-tensor terms only when ``memory``)."""
    if len(data.input_shape) != 3:
        raise ValueError(f"A CNN needs `input_shape` = (channels, height, width), got {data.input_shape!r}.")
    c0, h, w = data.input_shape
    m, width = t.channels.shape
    index = np.arange(width)[None, :]
    inside = index < t.depth[:, None]
    cap = (max(h, w) - 1).bit_length()  # ceil-halvings that take max(h, w) to 1
    k = np.arange(cap + 5)
    area_after = (((h - 1) >> k) + 1) * (((w - 1) >> k) + 1)  # map area after k ceil-halvings (k <= cap + 4)
    asked = (t.stride2 & inside) * 1 + (t.maxpool & inside)
    before = np.minimum(np.cumsum(asked, axis=1) - asked, cap)
    after_stride = np.minimum(before + t.stride2, cap)
    after = np.minimum(after_stride + t.maxpool, cap)
    ch = t.channels
    c_in = np.concatenate([np.full((m, 1), c0, dtype=np.int64), ch[:, :-1]], axis=1) * inside
    conv_area = area_after[after_stride]
    macs = c_in * ch * (KERNEL_AREA * conv_area)
    bn_ch = ch * t.bn
    parts: dict[str, Any] = {"params": (c_in * ch * KERNEL_AREA + ch + 2 * bn_ch).sum(axis=1), "macs": macs.sum(axis=1),
                             "first_macs": macs[:, 0] if width else np.zeros(m, np.int64),
                             "features": ch[np.arange(m), np.maximum(t.depth - 1, 0)]}
    allowed = index < (t.depth - 2)[:, None]  # a shortcut needs the two layers after it
    bad = (t.shortcut & inside & ~allowed).any(axis=1) | (t.shortcut[:, 1:] & t.shortcut[:, :-1]).any(axis=1)
    src = t.shortcut[:, :-2] & allowed[:, :-2]
    parts["bad"] = bad | (src & (ch[:, 2:] < ch[:, :-2])).any(axis=1)
    if not memory:
        return parts
    out = ch * area_after[after]  # per-sample elements of each layer's output
    pooled = (after > after_stride) & inside
    last = index == (t.depth - 1)[:, None]
    # max-pool: its input and int64 indices; BN: its input; activation: its result; dropout: noise and output
    # (the output is saved by the next conv, never after the last layer)
    saved = (pooled * (ch * conv_area * FLOAT_BYTES + out * INDEX_BYTES) + (t.bn + 1) * out * FLOAT_BYTES
             + (t.dropout * (2 - last)) * out * FLOAT_BYTES).sum(axis=1)
    # shortcuts j -> j + 2 are average-pooled once per downsampling of layers j+1, j+2; the pooled
    # intermediates after the first pool are new tensors autograd saves
    pools = after[:, 2:] - after[:, :-2]
    for q in range(1, 4):
        take = src & (pools > q)
        if take.any():
            saved = saved + (take * ch[:, :-2] * area_after[after[:, :-2] + q] * FLOAT_BYTES).sum(axis=1)
    parts.update(saved=saved, fixed=bn_ch.sum(axis=1) * (BN_SAVED_VECTORS * FLOAT_BYTES),
                 tensors=2 * t.depth + 2 * t.bn.sum(axis=1),
                 buffers=bn_ch.sum(axis=1) * (2 * FLOAT_BYTES) + t.bn.sum(axis=1) * INDEX_BYTES)
    return parts


def _check_measure(measure: str) -> None:
    if measure in MEASURED_ONLY:
        raise ValueError(f"`{measure}` is a measured time, not a count: predict it with a cost model "
                         f"(lightning_dnc.gp.cost_regression); exact measures are {list(EXACT_MEASURES)}.")
    check_choice("measure", measure, EXACT_MEASURES)


def costs_from_table(table: ConfigTable, data: DataShape, measure: str) -> np.ndarray:
    """One exact measure of every row of ``table`` (see the module docstring for units).

    Parameters
    ----------
    table : ConfigTable
        From :func:`config_table`.
    data : DataShape
    measure : {"n_params", "flops", "flops_train", "memory"}

    Returns
    -------
    ndarray
        (m,) float64; NaN where the network cannot be built.
    """
    _check_measure(measure)
    m = table.batch_size.shape[0]
    if table.family == "cnn":
        trunk = _cnn_parts(table, data, measure == "memory")
    else:
        zero = np.zeros(m, dtype=np.int64)
        trunk = {"params": zero, "macs": zero, "first_macs": None, "saved": zero, "fixed": zero, "tensors": zero,
                 "buffers": zero, "features": np.full(m, data.features, dtype=np.int64), "bad": zero.astype(bool)}
    # dense head: [Linear -> act -> dropout] per hidden width, then Linear to the outputs
    widths = np.concatenate([trunk["features"][:, None], table.hidden, np.zeros((m, 1), dtype=np.int64)], axis=1)
    counts = (table.hidden > 0).sum(axis=1)
    widths[np.arange(m), counts + 1] = data.num_outputs
    fan_in, fan_out = widths[:, :-1], widths[:, 1:]
    linear_macs = (fan_in * fan_out).sum(axis=1)
    params = trunk["params"] + linear_macs + fan_out.sum(axis=1)
    macs = trunk["macs"] + linear_macs
    first = trunk["first_macs"] if trunk["first_macs"] is not None else fan_in[:, 0] * fan_out[:, 0]
    if measure == "n_params":
        return np.where(trunk["bad"], np.nan, params.astype(np.float64))
    if measure == "flops":
        return np.where(trunk["bad"], np.nan, (2 * macs).astype(np.float64))
    counted = np.minimum(table.batch_size, data.train_samples)
    if measure == "flops_train":
        step = counted * 2 * (3 * macs - first)
        return np.where(trunk["bad"], np.nan, step.astype(np.float64) / counted * data.train_samples)
    return np.where(trunk["bad"], np.nan, _memory(table, data, trunk, params, counted).astype(np.float64))


def _memory(table: ConfigTable, data: DataShape, trunk: dict[str, np.ndarray], params: np.ndarray,
            counted: np.ndarray) -> np.ndarray:
    """Bytes of :class:`~lightning_dnc.measure.memory.MemoryEstimate` ``total`` per row."""
    outputs = data.num_outputs
    buffers = trunk["buffers"] + 2 * outputs * FLOAT_BYTES  # + the module's target mean and std
    if data.input_stats is not None:
        buffers = buffers + FLOAT_BYTES * (1 + sum(data.input_stats))
    tensors = trunk["tensors"] + 2 * ((table.hidden > 0).sum(axis=1) + 1)
    optimizer = 2 * params * FLOAT_BYTES + tensors * ADAM_STEP_BYTES
    head = table.hidden * FLOAT_BYTES * (1 + 2 * table.hidden_dropout)  # activation, dropout noise and output
    per_sample = data.features * FLOAT_BYTES + trunk["saved"] + head.sum(axis=1)
    if table.family == "cnn":
        per_sample = per_sample + trunk["features"] * FLOAT_BYTES  # the pooled features the head Linear saves
    if data.task == "classification":
        per_sample = per_sample + outputs * FLOAT_BYTES + INDEX_BYTES  # log-softmax, class indices
        fixed = trunk["fixed"] + LOSS_SCALAR_BYTES
    else:
        per_sample = per_sample + 2 * outputs * FLOAT_BYTES  # outputs and standardised targets
        fixed = trunk["fixed"]
    return params * FLOAT_BYTES + buffers + params * FLOAT_BYTES + optimizer + counted * per_sample + fixed


def exact_costs(family: str, configs: Sequence[Mapping[str, Any]], data: DataShape, measure: str) -> np.ndarray:
    """Exact ``measure`` of every configuration (see the module docstring for the fields and units).

    Parameters
    ----------
    family : {"cnn", "mlp"}
    configs : sequence of mapping
        Partial or complete configurations of ``family``.
    data : DataShape
    measure : {"n_params", "flops", "flops_train", "memory"}
        ``"t_tr"`` and ``"latency"`` raise ``ValueError`` (measured times).

    Returns
    -------
    ndarray
        (len(configs),) float64, NaN where the network cannot be built.

    Examples
    --------
    >>> data = DataShape((1, 8, 8), num_outputs=10, train_samples=1000)
    >>> exact_costs("mlp", [{"hidden_mlp": [32]}], data, "n_params").tolist()
    [2410.0]
    """
    _check_measure(measure)
    return costs_from_table(config_table(family, configs), data, measure)


__all__ = ["EXACT_MEASURES", "MEASURED_ONLY", "ConfigTable", "DataShape", "config_table", "costs_from_table",
           "exact_costs"]
