"""Build a network from a configuration and count its parameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from lightning_dnc.models.cnn import CNN
from lightning_dnc.models.layers import count_trainable, init_linear_layers
from lightning_dnc.models.mlp import MLP
from lightning_dnc.space.config import complete_config


def _check_shape(family: str, input_shape: Sequence[int], num_outputs: int) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"`input_shape` must be a sequence of positive ints, got {input_shape!r}.") from None
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"`input_shape` must be a non-empty sequence of positive ints, got {input_shape!r}.")
    if family == "cnn" and len(shape) != 3:
        raise ValueError(
            f"A CNN needs `input_shape` = (channels, height, width), got {input_shape!r}. "
            "Use image-shaped data (e.g. `DigitsDataModule(flatten=False)`) or an MLP config."
        )
    if isinstance(num_outputs, bool) or not isinstance(num_outputs, int) or num_outputs < 1:
        raise ValueError(f"`num_outputs` must be an int >= 1, got {num_outputs!r}.")
    return shape


def build_network(config: Mapping[str, Any], input_shape: Sequence[int], num_outputs: int) -> nn.Module:
    """Build the CNN or MLP that ``config`` describes (SPEC §3), with SPEC §2 Linear init.

    Parameters
    ----------
    config : mapping
        A partial or complete configuration; missing keys take the SPEC defaults
        (:func:`lightning_dnc.space.config.complete_config`), unknown keys raise ``ValueError``.
    input_shape : sequence of int
        Shape of one sample: ``(C, H, W)`` for a CNN; any shape for an MLP (it is flattened).
    num_outputs : int
        Number of classes (classification) or target dimensions (regression).

    Returns
    -------
    torch.nn.Module
        Maps ``(B, *input_shape)`` float tensors to ``(B, num_outputs)``. Built on the current
        default device and with the current global torch RNG.
    """
    full = complete_config(config)
    shape = _check_shape(full["family"], input_shape, num_outputs)
    net: nn.Module = CNN(full, shape, num_outputs) if full["family"] == "cnn" else MLP(full, shape, num_outputs)
    init_linear_layers(net)
    return net


def count_parameters(config: Mapping[str, Any], input_shape: Sequence[int], num_outputs: int) -> int:
    """Trainable parameter count ``N_p`` of the network ``config`` describes, without allocating it.

    The network is built on the ``meta`` device, so this is cheap even for very large networks and
    leaves the global RNG untouched.

    Returns
    -------
    int
        ``sum(p.numel() for p in net.parameters() if p.requires_grad)``.
    """
    with torch.device("meta"):
        net = build_network(config, input_shape, num_outputs)
    return count_trainable(net)


def largest_network_params(space: Any, input_shape: Sequence[int], num_outputs: int) -> int:
    """N_p of the largest network ``space`` allows: the default ``N_p_ref`` of SPEC §1.

    Parameters
    ----------
    space : CNNSpace or MLPSpace
    input_shape : sequence of int
        One sample's shape.
    num_outputs : int
    """
    largest = complete_config({**space.largest_config(), "family": space.family})
    return count_parameters(largest, input_shape, num_outputs)
