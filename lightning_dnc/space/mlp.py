"""MLP stage-1 space: number and widths of hidden layers (SPEC §4)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from lightning_dnc.gp.arrays import EncodedConfigs
from lightning_dnc.space._checks import DEFAULT_OMEGA, int_pair
from lightning_dnc.space._sampling import int_from_unit, log_uniform_exponent, unit_points
from lightning_dnc.validation import check_choice
from lightning_dnc.space.base import SearchSpace
from lightning_dnc.space.config import MLP_KEYS, complete_config
from lightning_dnc.space.pool import ArrayPool


WIDTHS = ("independent", "equal")
WIDTH_SCALES = ("linear", "log")


class MLPSpace(SearchSpace):
    """Stage-1 MLPs: ``hidden_mlp``, the widths of the hidden layers.

    Parameters
    ----------
    num_hidden_layers : (int, int), default (0, 2)
        Range of the number of hidden layers; ``0 <= lo <= hi``.
    hidden_nodes : (int, int), default (20, 400)
        Range of each layer's width, drawn independently; ``1 <= lo <= hi``.
    omega : float or {"hidden_mlp": float}, default 3.0
    weights : {"hidden_mlp": float}, optional
        Kernel hyperparameters (SPEC §7); a single variable.
    widths : {"independent", "equal"}, default "independent"
        How samples draw the widths: each layer its own (SPEC §4), or one width for every hidden
        layer (the blocks of LCBench-style funnels; small networks of many layers become as likely
        as large ones).
    width_scale : {"linear", "log"}, default "linear"
        Widths drawn uniformly (SPEC §4) or log-uniformly in ``hidden_nodes`` (narrow layers as
        likely per decade as wide ones).

    Notes
    -----
    Kernel (SPEC §7): mean of two kernels, total hidden nodes over ``[0, hi_layers * hi_nodes]``
    with root 2, and the number of hidden layers over ``num_hidden_layers`` with root 1.
    """

    family = "mlp"
    keys = ("hidden_mlp",)
    variables = ("hidden_mlp",)

    def __init__(
        self,
        num_hidden_layers: Sequence[int] = (0, 2),
        hidden_nodes: Sequence[int] = (20, 400),
        omega: float | Mapping[str, float] = DEFAULT_OMEGA,
        weights: Mapping[str, float] | None = None,
        widths: str = "independent",
        width_scale: str = "linear",
    ) -> None:
        self.num_hidden_layers = int_pair("num_hidden_layers", num_hidden_layers, minimum=0)
        self.widths = check_choice("widths", widths, WIDTHS)
        self.width_scale = check_choice("width_scale", width_scale, WIDTH_SCALES)
        self.hidden_nodes = int_pair("hidden_nodes", hidden_nodes, minimum=1)
        super().__init__(omega, weights)
        total_span = float(self.num_hidden_layers[1] * self.hidden_nodes[1])
        layer_span = float(self.num_hidden_layers[1] - self.num_hidden_layers[0])
        self._inv_span = np.array([1.0 / s if s > 0 else 0.0 for s in (total_span, layer_span)])
        self._root = np.array([2.0, 1.0])

    def _unit_dimension(self) -> int:
        return 1 + max(self.num_hidden_layers[1], 1)

    def _config_from_unit(self, u: Sequence[float]) -> dict[str, Any]:
        return {"hidden_mlp": self._hidden_from_unit(u)}

    def _hidden_from_unit(self, u: Sequence[float]) -> list[int]:
        depth = int_from_unit(u[0], *self.num_hidden_layers)
        if self.widths == "equal":
            return [self._width(u[1])] * depth
        return [self._width(u[1 + i]) for i in range(depth)]

    def pool_arrays(self, n: int, seed: int) -> ArrayPool:
        """The samples of ``sample(n, seed=seed, method="random")`` as arrays: their keys (depth and
        widths, zero-padded), their encoding, and a builder of any one sample's dict (the BO pick
        builds only its winner)."""
        return self._pool_from_units(unit_points(n, self._unit_dimension(), seed, "random"))

    def _pool_from_units(self, points: np.ndarray) -> ArrayPool:
        width = self.num_hidden_layers[1]
        if self.width_scale == "linear":  # int_from_unit's float64 operations on whole columns: the same integers
            depth = _ints_from_units(points[:, 0], *self.num_hidden_layers)
            columns = points[:, 1:1 + width] if self.widths == "independent" else np.repeat(points[:, 1:2], width, axis=1)
            widths = _ints_from_units(columns, *self.hidden_nodes)
            widths[np.arange(width)[None, :] >= depth[:, None]] = 0
            keys = np.concatenate([depth[:, None], widths], axis=1)
        else:
            hidden = [self._hidden_from_unit(u) for u in points.tolist()]
            keys = np.array([[len(h), *h, *[0] * (width - len(h))] for h in hidden],
                            dtype=np.int64).reshape(len(hidden), 1 + width)
        values = np.stack([keys[:, 1:].sum(axis=1), keys[:, 0]], axis=1).astype(np.float64)

        def build(row: int) -> dict[str, Any]:
            return {"hidden_mlp": keys[row, 1:1 + keys[row, 0]].tolist()}

        return ArrayPool(keys=keys, encoded=self._encoded(values), build=build)

    def key_row(self, key: Hashable) -> np.ndarray | None:
        """The :meth:`pool_arrays` key row of a projection key ``(hidden_mlp,)``; None when no
        sample of this space has that key."""
        width = self.num_hidden_layers[1]
        try:
            (hidden,) = key  # type: ignore[misc]
            hidden = list(hidden)
            if len(hidden) > width or not all(isinstance(h, numbers.Real) and math.isfinite(h) and h == int(h)
                                              for h in hidden):
                return None  # no sample has such a width (Python equality: 64.0 == 64 has one)
            hidden = [int(h) for h in hidden]
            return np.array([len(hidden), *hidden, *[0] * (width - len(hidden))], dtype=np.int64)
        except (TypeError, ValueError, OverflowError):
            return None

    def _width(self, u: float) -> int:
        lo, hi = self.hidden_nodes
        if self.width_scale == "log":
            return min(max(int(math.floor(10 ** log_uniform_exponent(u, lo, hi + 1))), lo), hi)
        return int_from_unit(u, lo, hi)

    def largest_config(self) -> dict[str, Any]:
        """The most hidden layers, each of the largest width."""
        return {"hidden_mlp": [self.hidden_nodes[1]] * self.num_hidden_layers[1]}

    def validate(self, config: Mapping[str, Any]) -> None:
        """Check ``config`` is a well-formed MLP config whose hidden layers lie in this space.

        Raises
        ------
        ValueError
            Naming the key, the value and the allowed range.
        """
        self._check_keys(config, MLP_KEYS)
        hidden = complete_config(config, family="mlp")["hidden_mlp"]
        lo, hi = self.num_hidden_layers
        if not lo <= len(hidden) <= hi:
            raise ValueError(
                f"`hidden_mlp` must have between {lo} and {hi} hidden layers (`num_hidden_layers`), got "
                f"{len(hidden)}: {hidden!r}."
            )
        n_lo, n_hi = self.hidden_nodes
        for i, width in enumerate(hidden):
            if not n_lo <= width <= n_hi:
                raise ValueError(
                    f"`hidden_mlp[{i}]` must be in [{n_lo}, {n_hi}] (`hidden_nodes`), got {width!r} in {hidden!r}."
                )

    def encode(self, configs: Sequence[Mapping[str, Any]]) -> EncodedConfigs:
        """Column encoding: (m, 2) float64 of [total hidden nodes, number of hidden layers]."""
        values = np.empty((len(configs), 2), dtype=np.float64)
        for i, config in enumerate(configs):
            try:
                hidden = config["hidden_mlp"]
            except (KeyError, TypeError):
                raise ValueError(f"Config {i} has no `hidden_mlp`; MLPSpace encodes MLP configs, got {config!r}.") from None
            values[i, 0] = sum(hidden)
            values[i, 1] = len(hidden)
        if not np.all(np.isfinite(values)):
            raise ValueError("Every entry of `hidden_mlp` must be a finite number.")
        return self._encoded(values)

    def _encoded(self, values: np.ndarray) -> EncodedConfigs:
        return EncodedConfigs(
            kind="columns",
            values=values,
            lengths=np.zeros(0, dtype=np.int64),
            inv_span=self._inv_span,
            root=self._root,
            variable_of=np.zeros(2, dtype=np.int64),
            share=np.array([0.5, 0.5]),
            variables=self.variables,
        )

    def _limits(self) -> dict[str, Any]:
        out: dict[str, Any] = {"num_hidden_layers": list(self.num_hidden_layers), "hidden_nodes": list(self.hidden_nodes)}
        # only when not SPEC's, so the stored space of earlier journals compares equal
        if self.widths != "independent":
            out["widths"] = self.widths
        if self.width_scale != "linear":
            out["width_scale"] = self.width_scale
        return out


def _ints_from_units(u: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """:func:`~lightning_dnc.space._sampling.int_from_unit` elementwise, int64."""
    return np.minimum(np.floor(lo + u * (hi + 1 - lo)).astype(np.int64), hi)
