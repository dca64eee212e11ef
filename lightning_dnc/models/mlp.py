"""The Deep-n-Cheap MLP (SPEC §3): flatten -> [Linear -> act -> Dropout(p)] per hidden layer -> Linear."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from lightning_dnc.models.layers import dense_stack, flat_features


class MLP(nn.Module):
    """Multilayer perceptron built from a complete MLP config.

    Parameters
    ----------
    config : mapping
        A complete MLP configuration (``hidden_mlp``, ``dropout_probs_mlp``, ``act``).
    input_shape : sequence of int
        Shape of one sample; it is flattened, so ``(64,)`` and ``(1, 8, 8)`` both work.
    num_outputs : int
        Width of the output layer.
    """

    def __init__(self, config: Mapping[str, Any], input_shape: Sequence[int], num_outputs: int) -> None:
        super().__init__()
        self.layers = dense_stack(flat_features(input_shape), config["hidden_mlp"], config["dropout_probs_mlp"],
                                  config["act"], num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, *input_shape)`` inputs to ``(B, num_outputs)`` outputs."""
        return self.layers(torch.flatten(x, 1))
