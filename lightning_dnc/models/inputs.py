"""The input normalisation a trained model carries, so that it takes inputs in the user's units.

A datamodule's ``input_stats`` (``{"scale": s, "mean": m, "std": d}``, see
:attr:`lightning_dnc.data.base.InMemoryDataModule.input_stats`) becomes an
:class:`InputNormalization` layer in front of the network: ``(x * s - m) / d``, the same arithmetic,
in the same order, as the datamodule's own normalisation, so a batch normalised by the model is
bit for bit the batch the datamodule would have served. Its buffers travel with the module into
TorchScript, ``torch.export`` and ONNX programs; checkpoints rebuild them from the hyperparameters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn


class InputNormalization(nn.Module):
    """``(x * scale - mean) / std`` with the statistics as (non-persistent) buffers.

    Parameters
    ----------
    scale : float
        Multiplier of the raw inputs (``1/255`` for 8-bit pixels).
    mean, std : nested sequences of float, optional
        Broadcast against one sample (``(C, 1, 1)`` per channel, or the sample's shape per
        feature); ``None``: 0 and 1 (only the scale applies).
    """

    def __init__(self, scale: float = 1.0, mean: Any = None, std: Any = None) -> None:
        super().__init__()
        self.register_buffer("scale", torch.tensor(float(scale), dtype=torch.float32), persistent=False)
        self.register_buffer("mean", torch.tensor(0.0 if mean is None else mean, dtype=torch.float32),
                             persistent=False)
        self.register_buffer("std", torch.tensor(1.0 if std is None else std, dtype=torch.float32),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise a batch ``(B, *sample_shape)`` of raw inputs (cast to float32 first when integer)."""
        if not x.is_floating_point():
            x = x.float()
        return (x * self.scale - self.mean) / self.std


def check_input_stats(stats: Mapping[str, Any] | None, input_shape: Sequence[int]) -> dict[str, Any] | None:
    """``stats`` as plain data after checking them against one sample's shape; None when not given.

    Raises
    ------
    ValueError
        When ``stats`` lacks ``scale``, holds non-finite values or a non-positive ``std``, or does
        not broadcast against ``input_shape``.
    """
    if stats is None:
        return None
    try:
        scale = float(stats["scale"])
        mean = None if stats.get("mean") is None else torch.tensor(stats["mean"], dtype=torch.float64)
        std = None if stats.get("std") is None else torch.tensor(stats["std"], dtype=torch.float64)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ValueError(f"`input_stats` must be {{'scale': s, 'mean': [...], 'std': [...]}}, got {stats!r}.") from None
    finite = math.isfinite(scale) and scale != 0 and all(
        t is None or bool(torch.isfinite(t).all()) for t in (mean, std))
    if not finite or (std is not None and bool((std <= 0).any())):
        raise ValueError(f"`input_stats` must hold a finite non-zero scale, finite means and positive stds, "
                         f"got {stats!r}.")
    sample = torch.Size(int(s) for s in input_shape)
    for name, tensor in (("mean", mean), ("std", std)):
        if tensor is not None and _broadcast(tensor.shape, sample) != sample:
            raise ValueError(f"`input_stats['{name}']` of shape {tuple(tensor.shape)} does not broadcast against "
                             f"inputs of shape {tuple(sample)}.")
    return {"scale": scale, "mean": None if mean is None else stats["mean"],
            "std": None if std is None else stats["std"]}


def _broadcast(a: torch.Size, b: torch.Size) -> torch.Size | None:
    try:
        return torch.broadcast_shapes(a, b)
    except RuntimeError:
        return None


def input_layer(stats: Mapping[str, Any] | None) -> nn.Module:
    """An :class:`InputNormalization` for checked ``stats``, or ``nn.Identity`` when there are none."""
    if stats is None:
        return nn.Identity()
    return InputNormalization(stats["scale"], stats.get("mean"), stats.get("std"))


__all__ = ["InputNormalization", "check_input_stats", "input_layer"]
