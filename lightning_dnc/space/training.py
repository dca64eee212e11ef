"""Training-hyperparameter space (stage 3, SPEC §4): learning rate, weight decay, batch size."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from lightning_dnc.gp.arrays import EncodedConfigs
from lightning_dnc.space._checks import DEFAULT_OMEGA, int_pair, positive_pair
from lightning_dnc.space._sampling import int_from_unit, log_uniform_exponent, unit_points
from lightning_dnc.space.base import SearchSpace
from lightning_dnc.space.config import CNN_KEYS, MLP_KEYS
from lightning_dnc.space.pool import ArrayPool
from lightning_dnc.validation import is_finite_number, is_int

#: Relative tolerance when checking floats against the range ends (10**log10(x) may differ from x).
REL_TOL = 1e-9


class TrainingSpace(SearchSpace):
    """Stage-3 training hyperparameters: ``lr``, ``weight_decay``, ``batch_size``.

    Parameters
    ----------
    lr : (float, float), default (1e-5, 1e-1)
        ``lr = 10 ** (a + u (b - a))`` with ``a, b = log10(lo), log10(hi)``; ``0 < lo <= hi``.
    weight_decay : (float, float), default (1e-6, 1e-3)
        Drawn log-uniformly like ``lr``; every value below ``10 * lo`` (the lowest decade) is set to
        exactly 0. ``0 < lo <= hi``.
    batch_size : (int, int), default (32, 512)
        Integer range; ``1 <= lo <= hi``.
    omega : float or mapping, default 3.0
    weights : mapping, optional
        Kernel hyperparameters per variable ``"lr"``, ``"weight_decay"``, ``"batch_size"``
        (SPEC §7: equal weights; log10 scale for lr and weight decay with 0 mapped to the lower
        end; linear for batch size; root 1 for all).
    """

    family = "training"
    keys = ("lr", "weight_decay", "batch_size")
    variables = ("lr", "weight_decay", "batch_size")

    def __init__(
        self,
        lr: Sequence[float] = (1e-5, 1e-1),
        weight_decay: Sequence[float] = (1e-6, 1e-3),
        batch_size: Sequence[int] = (32, 512),
        omega: float | Mapping[str, float] = DEFAULT_OMEGA,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        self.lr = positive_pair("lr", lr)
        self.weight_decay = positive_pair("weight_decay", weight_decay)
        self.batch_size = int_pair("batch_size", batch_size, minimum=1)
        super().__init__(omega, weights)
        self._wd_log_lo = math.log10(self.weight_decay[0])
        spans = (
            math.log10(self.lr[1]) - math.log10(self.lr[0]),
            math.log10(self.weight_decay[1]) - self._wd_log_lo,
            float(self.batch_size[1] - self.batch_size[0]),
        )
        self._inv_span = np.array([1.0 / s if s > 0 else 0.0 for s in spans])
        self._root = np.ones(3)

    def _unit_dimension(self) -> int:
        return 3

    def _config_from_unit(self, u: Sequence[float]) -> dict[str, Any]:
        lr = _clamp(10.0 ** log_uniform_exponent(u[0], *self.lr), *self.lr)
        wd_exponent = log_uniform_exponent(u[1], *self.weight_decay)
        if wd_exponent < self._wd_log_lo + 1.0:
            wd = 0.0
        else:
            wd = _clamp(10.0**wd_exponent, *self.weight_decay)
        return {"lr": lr, "weight_decay": wd, "batch_size": int_from_unit(u[2], *self.batch_size)}

    def _configs_from_units(self, points: np.ndarray) -> list[dict[str, Any]]:
        """:meth:`_config_from_unit` over the rows of ``points`` with the per-space constants
        computed once (the same scalar operations, so the same values)."""
        return [{"lr": lr, "weight_decay": wd, "batch_size": bs} for lr, wd, bs in self._unit_values(points)]

    def _unit_values(self, points: np.ndarray) -> list[tuple[float, float, int]]:
        """``(lr, weight_decay, batch_size)`` of each row of ``points`` as Python numbers."""
        (lr_lo, lr_hi), (wd_lo, wd_hi), (bs_lo, bs_hi) = self.lr, self.weight_decay, self.batch_size
        lr_a, lr_b = math.log10(lr_lo), math.log10(lr_hi)
        wd_a, wd_b = math.log10(wd_lo), math.log10(wd_hi)
        zero_below = self._wd_log_lo + 1.0
        floor = math.floor
        out = []
        for u_lr, u_wd, u_bs in points.tolist():
            wd_exponent = wd_a + u_wd * (wd_b - wd_a)
            out.append((min(max(10.0 ** (lr_a + u_lr * (lr_b - lr_a)), lr_lo), lr_hi),
                        0.0 if wd_exponent < zero_below else min(max(10.0**wd_exponent, wd_lo), wd_hi),
                        min(int(floor(bs_lo + u_bs * (bs_hi + 1 - bs_lo))), bs_hi)))
        return out

    def pool_arrays(self, n: int, seed: int) -> ArrayPool:
        """The samples of ``sample(n, seed=seed, method="random")`` as arrays: their keys (the bits
        of lr, weight decay and batch size as float64), their encoding, and a builder of any one
        sample's dict (the BO pick builds only its winner)."""
        return self._pool_from_units(unit_points(n, self._unit_dimension(), seed, "random"))

    def _pool_from_units(self, points: np.ndarray) -> ArrayPool:
        values = self._unit_values(points)
        keys = np.array(values, dtype=np.float64).reshape(len(values), 3).view(np.int64)
        log_lo, log10 = self._wd_log_lo, math.log10  # as encode() computes them, so the same floats
        encoded = self._encoded(np.array([(log10(lr), log10(wd) if wd > 0 else log_lo, float(bs)) for lr, wd, bs in values],
                                         dtype=np.float64).reshape(len(values), 3))

        def build(row: int) -> dict[str, Any]:
            lr, wd, bs = values[row]
            return {"lr": lr, "weight_decay": wd, "batch_size": bs}

        return ArrayPool(keys=keys, encoded=encoded, build=build)

    def key_row(self, key: Hashable) -> np.ndarray | None:
        """The :meth:`pool_arrays` key row of a projection key ``(lr, weight_decay, batch_size)``;
        None when no sample of this space has that key."""
        try:
            lr, wd, bs = key  # type: ignore[misc]
            if not all(is_finite_number(v) for v in (lr, wd, bs)) or bs != int(bs):
                return None
            row = np.array([float(lr), float(wd) + 0.0, float(bs)], dtype=np.float64)  # + 0.0: -0.0 is 0.0
        except (TypeError, ValueError, OverflowError):
            return None
        return row.view(np.int64)

    def largest_config(self) -> dict[str, Any]:
        """The upper corner of the box (training hyperparameters do not size a network)."""
        return {"lr": self.lr[1], "weight_decay": self.weight_decay[1], "batch_size": self.batch_size[1]}

    def validate(self, config: Mapping[str, Any]) -> None:
        """Check the training keys of ``config`` lie in this space (other config keys are allowed).

        ``weight_decay`` may be 0 or lie in the ``weight_decay`` range.

        Raises
        ------
        ValueError
            Naming the key, the value and the allowed range.
        """
        self._check_keys(config, tuple(dict.fromkeys((*CNN_KEYS, *MLP_KEYS))))
        lr = config["lr"]
        if not is_finite_number(lr) or not _within(float(lr), *self.lr):
            raise ValueError(f"`lr` must be a number in [{self.lr[0]:g}, {self.lr[1]:g}], got {lr!r}.")
        wd = config["weight_decay"]
        if not is_finite_number(wd) or not (float(wd) == 0.0 or _within(float(wd), *self.weight_decay)):
            raise ValueError(
                f"`weight_decay` must be 0 or a number in [{self.weight_decay[0]:g}, {self.weight_decay[1]:g}], "
                f"got {wd!r}."
            )
        bs = config["batch_size"]
        if not is_int(bs) or not self.batch_size[0] <= int(bs) <= self.batch_size[1]:
            raise ValueError(
                f"`batch_size` must be an integer in [{self.batch_size[0]}, {self.batch_size[1]}], got {bs!r}."
            )

    def encode(self, configs: Sequence[Mapping[str, Any]]) -> EncodedConfigs:
        """Column encoding: (m, 3) float64 of [log10 lr, log10 wd (0 -> log10 wd_lo), batch size]."""
        try:
            columns = [(c["lr"], c["weight_decay"], c["batch_size"]) for c in configs]
        except (KeyError, TypeError):
            columns = None
        plain = columns is not None and all(
            type(lr) is float and lr > 0 and type(wd) is float and wd >= 0 and type(bs) is int
            and math.isfinite(lr) and math.isfinite(wd) for lr, wd, bs in columns
        )
        if not plain:
            return self._encode_checked(configs)
        log_lo, log10 = self._wd_log_lo, math.log10
        values = np.array([(log10(lr), log10(wd) if wd > 0 else log_lo, float(bs)) for lr, wd, bs in columns],
                          dtype=np.float64).reshape(len(configs), 3)
        return self._encoded(values)

    def _encode_checked(self, configs: Sequence[Mapping[str, Any]]) -> EncodedConfigs:
        """:meth:`encode` with a clear error for each config that cannot be encoded."""
        values = np.empty((len(configs), 3), dtype=np.float64)
        for i, config in enumerate(configs):
            try:
                lr, wd, bs = config["lr"], config["weight_decay"], config["batch_size"]
            except (KeyError, TypeError):
                raise ValueError(
                    f"Config {i} needs `lr`, `weight_decay` and `batch_size` to be encoded by TrainingSpace, got {config!r}."
                ) from None
            if not is_finite_number(lr) or float(lr) <= 0:
                raise ValueError(f"Config {i}: `lr` must be a number > 0 to be encoded, got {lr!r}.")
            if not is_finite_number(wd) or float(wd) < 0:
                raise ValueError(
                    f"Config {i}: `weight_decay` must be a number >= 0 to be encoded (resolve 'auto' first), got {wd!r}."
                )
            if not is_finite_number(bs):
                raise ValueError(f"Config {i}: `batch_size` must be a number, got {bs!r}.")
            values[i, 0] = math.log10(float(lr))
            values[i, 1] = math.log10(float(wd)) if float(wd) > 0 else self._wd_log_lo
            values[i, 2] = float(bs)
        return self._encoded(values)

    def _encoded(self, values: np.ndarray) -> EncodedConfigs:
        return EncodedConfigs(
            kind="columns",
            values=values,
            lengths=np.zeros(0, dtype=np.int64),
            inv_span=self._inv_span,
            root=self._root,
            variable_of=np.arange(3, dtype=np.int64),
            share=np.ones(3),
            variables=self.variables,
        )

    def _limits(self) -> dict[str, Any]:
        return {"lr": list(self.lr), "weight_decay": list(self.weight_decay), "batch_size": list(self.batch_size)}


def _clamp(x: float, lo: float, hi: float) -> float:
    return min(max(x, lo), hi)


def _within(x: float, lo: float, hi: float) -> bool:
    return lo * (1 - REL_TOL) <= x <= hi * (1 + REL_TOL)
