"""CNN stage-1 space: depth and channels (SPEC §4), with derived max-pools and shortcuts."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from lightning_dnc.gp.arrays import EncodedConfigs
from lightning_dnc.space._checks import DEFAULT_OMEGA, int_pair, positive_int
from lightning_dnc.space._sampling import int_from_unit, unit_points
from lightning_dnc.space.base import SearchSpace
from lightning_dnc.space.config import (
    CNN_KEYS,
    MAXPOOL_THRESHOLDS,
    complete_config,
    derive_maxpools,
    shortcut_spacing_for_depth,
    shortcuts_with_spacing,
)
from lightning_dnc.space.pool import ArrayPool

MAX_ROOT = 4


class CNNSpace(SearchSpace):
    """Stage-1 CNN skeletons: ``out_channels`` with derived ``apply_maxpools`` and ``shortcuts``.

    Parameters
    ----------
    num_conv_layers : (int, int), default (4, 16)
        Range of the depth n; ``1 <= lo <= hi``.
    channels_first : (int, int), default (16, 64)
        Range of the first layer's channels c_1; ``1 <= lo <= hi <= channels_upper``.
    channels_upper : int, default 512
        Cap on every layer's channels; layer i draws c_i from ``[c_{i-1}, min(2 c_{i-1}, cap)]``.
    input_size : int, optional
        Height/width of the input images. When given, the derived max-pools are capped so that
        the feature map keeps at least 1x1 (``ceil(log2(input_size))`` halvings); otherwise at
        most 3 as in SPEC §4.
    omega : float or {"out_channels": float}, default 3.0
    weights : {"out_channels": float}, optional
        Kernel hyperparameters (SPEC §7); a single variable, so the weight is immaterial.

    Notes
    -----
    Kernel (SPEC §7): layer l (1-indexed) has root ``min(l, 4)`` and range
    ``[channels_first[0], min(channels_first[1] * 2**(l-1), channels_upper)]``; layers missing from
    the shorter network count ``d = omega``; the kernel is the mean over the longer network's
    layers.
    """

    family = "cnn"
    keys = ("out_channels", "apply_maxpools", "shortcuts")
    variables = ("out_channels",)

    def __init__(
        self,
        num_conv_layers: Sequence[int] = (4, 16),
        channels_first: Sequence[int] = (16, 64),
        channels_upper: int = 512,
        input_size: int | None = None,
        omega: float | Mapping[str, float] = DEFAULT_OMEGA,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        self.num_conv_layers = int_pair("num_conv_layers", num_conv_layers, minimum=1)
        self.channels_first = int_pair("channels_first", channels_first, minimum=1)
        self.channels_upper = positive_int("channels_upper", channels_upper)
        if self.channels_upper < self.channels_first[1]:
            raise ValueError(
                f"`channels_upper` must be >= the upper end of `channels_first` ({self.channels_first[1]}), "
                f"got {channels_upper!r}."
            )
        self.input_size = None if input_size is None else positive_int("input_size", input_size)
        super().__init__(omega, weights)
        self.max_downsamples = 3 if self.input_size is None else min(3, _halvings_to_one(self.input_size))
        lo = self.channels_first[0]
        n_max = self.num_conv_layers[1]
        self._layer_hi = [min(self.channels_first[1] * 2 ** min(layer, 62), self.channels_upper) for layer in range(n_max)]
        span = np.array([hi - lo for hi in self._layer_hi], dtype=np.float64)
        self._inv_span = np.where(span > 0, 1.0 / np.where(span > 0, span, 1.0), 0.0)
        self._root = np.minimum(np.arange(1, n_max + 1), MAX_ROOT).astype(np.float64)

    # ------------------------------------------------------------------ sampling
    def _unit_dimension(self) -> int:
        return self.num_conv_layers[1] + 1

    def _config_from_unit(self, u: Sequence[float]) -> dict[str, Any]:
        depth = int_from_unit(u[0], *self.num_conv_layers)
        channels = [int_from_unit(u[1], *self.channels_first)]
        for i in range(1, depth):
            prev = channels[-1]
            channels.append(int_from_unit(u[1 + i], prev, min(2 * prev, self.channels_upper)))
        return self._skeleton(channels)

    def _configs_from_units(self, points: np.ndarray) -> list[dict[str, Any]]:
        """Vectorised :meth:`_config_from_unit` over the rows of ``points`` (the same float64
        operations in the same order, so the same integers; a test compares the two)."""
        channels, pools, depth = self._unit_arrays(points)
        shortcuts = self._shortcut_table()
        return [{"out_channels": c[:d], "apply_maxpools": p[:d], "shortcuts": list(shortcuts[d])}
                for c, p, d in zip(channels.tolist(), pools.tolist(), depth.tolist())]

    def _unit_arrays(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(channels, pools, depth)`` of the samples of ``points``: (m, n_max) int64 each with
        zeros past a network's depth, and (m,) int64."""
        m, n_max = points.shape[0], self.num_conv_layers[1]
        lo_n, hi_n = self.num_conv_layers
        depth = np.minimum(np.floor(lo_n + points[:, 0] * (hi_n + 1 - lo_n)).astype(np.int64), hi_n)
        channels = np.zeros((m, n_max), dtype=np.int64)
        lo, hi = self.channels_first
        channels[:, 0] = np.minimum(np.floor(lo + points[:, 1] * (hi + 1 - lo)).astype(np.int64), hi)
        for i in range(1, n_max):
            prev = channels[:, i - 1]
            top = np.minimum(2 * prev, self.channels_upper)
            channels[:, i] = np.minimum(np.floor(prev + points[:, 1 + i] * (top + 1 - prev)).astype(np.int64), top)
        pools = np.zeros((m, n_max), dtype=np.int64)
        inside = np.arange(1, n_max)[None, :] < depth[:, None]
        for threshold in MAXPOOL_THRESHOLDS:
            exceeds = (channels[:, 1:] > threshold) & inside
            rows = np.flatnonzero(exceeds.any(axis=1))
            pools[rows, exceeds[rows].argmax(axis=1)] = 1
        pools[np.cumsum(pools, axis=1) > self.max_downsamples] = 0
        channels[np.arange(n_max)[None, :] >= depth[:, None]] = 0
        return channels, pools, depth

    def _shortcut_table(self) -> dict[int, list[int]]:
        lo_n, hi_n = self.num_conv_layers
        return {d: shortcuts_with_spacing(d, shortcut_spacing_for_depth(d)) for d in range(lo_n, hi_n + 1)}

    def pool_arrays(self, n: int, seed: int) -> ArrayPool:
        """The samples of ``sample(n, seed=seed, method="random")`` as arrays: their keys (depth,
        channels, max-pools per row; the shortcuts follow from the depth), their encoding, and
        a builder of any one sample's dict (the BO pick builds only its winner)."""
        return self._pool_from_units(unit_points(n, self._unit_dimension(), seed, "random"))

    def _pool_from_units(self, points: np.ndarray) -> ArrayPool:
        channels, pools, depth = self._unit_arrays(points)
        shortcuts = self._shortcut_table()

        def build(row: int) -> dict[str, Any]:
            d = int(depth[row])
            return {"out_channels": channels[row, :d].tolist(), "apply_maxpools": pools[row, :d].tolist(),
                    "shortcuts": list(shortcuts[d])}

        keys = np.concatenate([depth[:, None], channels, pools], axis=1)
        return ArrayPool(keys=keys, encoded=self._encoded(channels, depth), build=build)

    def key_row(self, key: Hashable) -> np.ndarray | None:
        """The :meth:`pool_arrays` key row of a projection key ``(out_channels, apply_maxpools,
        shortcuts)``; None when no sample of this space has that key."""
        n_max = self.num_conv_layers[1]
        try:
            channels, pools, shortcuts = (list(part) for part in key)  # type: ignore[union-attr]
            d = len(channels)
            if not self.num_conv_layers[0] <= d <= n_max or len(pools) != d or shortcuts != self._shortcut_table()[d]:
                return None
            row = np.zeros(1 + 2 * n_max, dtype=np.int64)
            row[0], row[1:1 + d], row[1 + n_max:1 + n_max + d] = d, channels, pools
        except (TypeError, ValueError, OverflowError):
            return None
        if not (np.array_equal(row[1:1 + d], channels) and np.array_equal(row[1 + n_max:1 + n_max + d], pools)):
            return None  # non-integer values: no sample has them
        return row

    def _skeleton(self, channels: list[int]) -> dict[str, Any]:
        depth = len(channels)
        return {
            "out_channels": channels,
            "apply_maxpools": self.derived_maxpools(channels),
            "shortcuts": shortcuts_with_spacing(depth, shortcut_spacing_for_depth(depth)),
        }

    def derived_maxpools(self, out_channels: Sequence[int]) -> list[int]:
        """SPEC §4 max-pool flags, capped at ``max_downsamples`` (earliest pools kept)."""
        flags = derive_maxpools(out_channels)
        kept = 0
        for i, flag in enumerate(flags):
            if flag:
                kept += 1
                if kept > self.max_downsamples:
                    flags[i] = 0
        return flags

    def largest_config(self) -> dict[str, Any]:
        """The deepest, widest skeleton: n = hi, c_1 = hi, each next layer doubling up to the cap."""
        channels = [self.channels_first[1]]
        for _ in range(1, self.num_conv_layers[1]):
            channels.append(min(2 * channels[-1], self.channels_upper))
        return self._skeleton(channels)

    # ------------------------------------------------------------------ validation
    def _optional_keys(self) -> tuple[str, ...]:
        return ("apply_maxpools", "shortcuts")

    def validate(self, config: Mapping[str, Any]) -> None:
        """Check ``config`` is a well-formed CNN config whose skeleton lies in this space.

        Structural rules (lengths, 0/1 flags, shortcut placement) are those of
        :func:`~lightning_dnc.space.config.complete_config`; ``apply_maxpools``/``shortcuts`` may
        differ from the derived ones (stage 2 changes them).

        Raises
        ------
        ValueError
            Naming the key, the value and the allowed range.
        """
        self._check_keys(config, CNN_KEYS)
        full = complete_config(config, family="cnn")
        channels = full["out_channels"]
        lo, hi = self.num_conv_layers
        if not lo <= len(channels) <= hi:
            raise ValueError(
                f"`out_channels` must have between {lo} and {hi} layers (`num_conv_layers`), got {len(channels)}: "
                f"{channels!r}."
            )
        c_lo, c_hi = self.channels_first
        if not c_lo <= channels[0] <= c_hi:
            raise ValueError(
                f"`out_channels[0]` must be in [{c_lo}, {c_hi}] (`channels_first`), got {channels[0]!r} in {channels!r}."
            )
        for i in range(1, len(channels)):
            prev, top = channels[i - 1], min(2 * channels[i - 1], self.channels_upper)
            if not prev <= channels[i] <= top:
                raise ValueError(
                    f"`out_channels[{i}]` must be in [{prev}, {top}] (from the previous layer's channels to "
                    f"min(2x that, channels_upper={self.channels_upper})), got {channels[i]!r} in {channels!r}."
                )
        downs = sum(full["apply_maxpools"]) + sum(1 for s in full["strides"] if s == 2)
        if downs > self.max_downsamples:
            raise ValueError(
                f"The config downsamples {downs} times (`apply_maxpools` + stride-2 `strides`), more than the "
                f"{self.max_downsamples} this space allows (input_size={self.input_size!r})."
            )

    # ------------------------------------------------------------------ encoding
    def encode(self, configs: Sequence[Mapping[str, Any]]) -> EncodedConfigs:
        """Layered encoding: channels (m, n_max) int64 zero-padded, depths (m,) int64, per-layer
        ``inv_span`` and ``root`` (see :mod:`lightning_dnc.gp.arrays`)."""
        n_max = self.num_conv_layers[1]
        rows, depths = [], []
        for i, config in enumerate(configs):
            try:
                channels = config["out_channels"]
            except (KeyError, TypeError):
                raise ValueError(f"Config {i} has no `out_channels`; CNNSpace encodes CNN configs, got {config!r}.") from None
            n = len(channels)
            if not 1 <= n <= n_max:
                raise ValueError(
                    f"Config {i}: `out_channels` must have 1..{n_max} layers for this space, got {n}: {channels!r}."
                )
            rows.append([*channels, *[0] * (n_max - n)])
            depths.append(n)
        values = np.array(rows, dtype=np.int64).reshape(len(configs), n_max)
        lengths = np.array(depths, dtype=np.int64)
        if values.size and (values.min() < 0 or np.any((values < 1) & (np.arange(n_max) < lengths[:, None]))):
            raise ValueError("Every entry of `out_channels` must be an integer >= 1.")
        return self._encoded(values, lengths)

    def _encoded(self, values: np.ndarray, lengths: np.ndarray) -> EncodedConfigs:
        return EncodedConfigs(
            kind="layered",
            values=values,
            lengths=lengths,
            inv_span=self._inv_span,
            root=self._root,
            variable_of=np.zeros(1, dtype=np.int64),
            share=np.ones(1),
            variables=self.variables,
        )

    def _limits(self) -> dict[str, Any]:
        return {
            "num_conv_layers": list(self.num_conv_layers),
            "channels_first": list(self.channels_first),
            "channels_upper": self.channels_upper,
            "input_size": self.input_size,
        }


def _halvings_to_one(size: int) -> int:
    """How many ``ceil(s / 2)`` halvings take ``size`` down to 1 (= ceil(log2(size)))."""
    count = 0
    while size > 1:
        size = math.ceil(size / 2)
        count += 1
    return count
