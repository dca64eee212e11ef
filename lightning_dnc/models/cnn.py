"""The Deep-n-Cheap CNN (SPEC §3).

Per conv layer ``i``, in this order::

    Conv2d(k=3, padding=1, stride s_i) -> [MaxPool2d(2, ceil_mode=True)] -> [BatchNorm2d]
    -> (+ shortcut if i is a rejoin point) -> activation -> [Dropout(p_i)]

then global average pooling, flatten and the dense head (optional hidden layers, then the
output Linear). A shortcut saved at layer ``j`` (``shortcuts[j] == 1``) is added to layer ``j + 2``
before its activation; it is average-pooled (2, ceil_mode=True) once per downsampling in layers
``j + 1`` and ``j + 2`` and zero-padded in channels up to layer ``j + 2``'s count.

Downsampling is capped: a stride-2 conv or a max-pool that would act on a 1x1 feature map is
dropped (it would not change the shape), so any input size from 1x1 upwards works.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lightning_dnc.models.layers import dense_stack, make_activation, make_dropout


@dataclass(frozen=True)
class ConvLayerPlan:
    """The effective geometry of one conv layer once the downsampling cap is applied.

    Attributes
    ----------
    in_channels, out_channels : int
    stride : int
        1 or 2 (2 only where the input map is larger than 1x1).
    maxpool : bool
        Whether a max-pool follows the conv (only where the map is still larger than 1x1).
    downsamplings : int
        Number of halvings this layer applies (0, 1 or 2).
    out_hw : tuple of int
        Spatial size of the layer's output.
    """

    in_channels: int
    out_channels: int
    stride: int
    maxpool: bool
    downsamplings: int
    out_hw: tuple[int, int]


def _halve(size: int) -> int:
    return (size + 1) // 2


def plan_conv_layers(config: Mapping[str, Any], input_shape: Sequence[int]) -> list[ConvLayerPlan]:
    """Effective per-layer geometry of a complete CNN config on inputs of ``input_shape``.

    Parameters
    ----------
    config : mapping
        A complete CNN configuration (``complete_config`` output).
    input_shape : sequence of int
        ``(C, H, W)`` of one sample.

    Returns
    -------
    list of ConvLayerPlan
        One entry per conv layer.
    """
    channels, h, w = (int(s) for s in input_shape)
    plans = []
    for i, c_out in enumerate(config["out_channels"]):
        stride = int(config["strides"][i])
        downs = 0
        if stride == 2 and max(h, w) > 1:
            h, w = _halve(h), _halve(w)
            downs += 1
        else:
            stride = 1
        maxpool = bool(config["apply_maxpools"][i]) and max(h, w) > 1
        if maxpool:
            h, w = _halve(h), _halve(w)
            downs += 1
        plans.append(ConvLayerPlan(channels, int(c_out), stride, maxpool, downs, (h, w)))
        channels = int(c_out)
    return plans


class ConvBlock(nn.Module):
    """Conv -> [MaxPool] -> [BN] -> (+ shortcut) -> activation -> [Dropout].

    ``rejoins`` is True when the shortcut saved two layers earlier is added to this layer's
    pre-activation; ``shortcut`` then pools and pads it (an ``Identity`` otherwise).
    """

    def __init__(self, plan: ConvLayerPlan, batch_norm: bool, act: str, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(plan.in_channels, plan.out_channels, kernel_size=3, stride=plan.stride, padding=1)
        self.pool = nn.MaxPool2d(2, ceil_mode=True) if plan.maxpool else nn.Identity()
        self.bn = nn.BatchNorm2d(plan.out_channels) if batch_norm else nn.Identity()
        self.act = make_activation(act)
        self.drop = make_dropout(dropout)
        self.rejoins = False
        self.shortcut: nn.Module = nn.Identity()

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """Conv, pool and batch norm of ``x``."""
        return self.bn(self.pool(self.conv(x)))


class Shortcut(nn.Module):
    """Parameter-free shortcut: ``pools`` average-pools (2, ceil_mode) then zero channel padding."""

    def __init__(self, pools: int, pad_channels: int) -> None:
        super().__init__()
        self.pools = pools
        self.pad_channels = pad_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        for _ in range(self.pools):
            x = F.avg_pool2d(x, 2, ceil_mode=True)
        if self.pad_channels > 0:
            x = F.pad(x, (0, 0, 0, 0, 0, self.pad_channels))
        return x

    def extra_repr(self) -> str:  # noqa: D102
        return f"pools={self.pools}, pad_channels={self.pad_channels}"


class CNN(nn.Module):
    """Deep-n-Cheap CNN built from a complete config (see the module docstring).

    Parameters
    ----------
    config : mapping
        A complete CNN configuration.
    input_shape : sequence of int
        ``(C, H, W)`` of one sample.
    num_outputs : int
        Classes (classification) or target dimensions (regression).
    """

    def __init__(self, config: Mapping[str, Any], input_shape: Sequence[int], num_outputs: int) -> None:
        super().__init__()
        plans = plan_conv_layers(config, input_shape)
        self.plans = plans
        self.blocks = nn.ModuleList(
            ConvBlock(
                plan,
                batch_norm=bool(config["apply_bns"][i]),
                act=config["act"],
                dropout=float(config["dropout_probs"][i]) if config["apply_dropouts"][i] else 0.0,
            )
            for i, plan in enumerate(plans)
        )
        for j, flag in enumerate(config["shortcuts"]):
            if not flag:
                continue
            if j + 2 >= len(plans):
                raise ValueError(
                    f"`shortcuts[{j}]` = 1 needs layers {j + 1} and {j + 2}, but there are only {len(plans)} layers."
                )
            c_from, c_to = plans[j].out_channels, plans[j + 2].out_channels
            if c_to < c_from:
                raise ValueError(
                    f"A shortcut from layer {j} ({c_from} channels) to layer {j + 2} ({c_to} channels) would "
                    f"need fewer channels; `out_channels` must not decrease across a shortcut, got "
                    f"{list(config['out_channels'])!r}. Remove the shortcut or widen layer {j + 2}."
                )
            pools = plans[j + 1].downsamplings + plans[j + 2].downsamplings
            target = self.blocks[j + 2]
            target.rejoins = True
            target.shortcut = Shortcut(pools, c_to - c_from)
        self.head = dense_stack(plans[-1].out_channels, config["hidden_mlp"], config["dropout_probs_mlp"],
                                config["act"], num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, C, H, W)`` inputs to ``(B, num_outputs)`` outputs (TorchScript and ``torch.export`` safe)."""
        one_back = x  # output of the previous layer
        two_back = x  # output of the layer before it: what a shortcut rejoining here saved
        for block in self.blocks:
            y = block.pre_activation(x)
            if block.rejoins:
                y = y + block.shortcut(two_back)
            x = block.drop(block.act(y))
            two_back = one_back
            one_back = x
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.head(x)

    def shortcut_into(self, layer: int) -> Shortcut | None:
        """The shortcut added to layer ``layer`` (0-indexed) before its activation, or None."""
        block = self.blocks[layer]
        return block.shortcut if block.rejoins else None  # type: ignore[return-value]
