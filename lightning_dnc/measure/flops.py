"""Floating-point operations of a network, counted by ``torch.utils.flop_counter.FlopCounterMode``.

The counter follows PyTorch's convention: a multiply-add is two FLOPs, and only the matrix
products and convolutions are counted (``mm``, ``addmm``, ``bmm``, convolutions and their
backward passes); element-wise operations, activations, normalisation and pooling count zero.
Counts are exact integers and depend only on the network and the batch shape, never on the
machine or its load. Counting works on the ``meta`` device too (nothing is computed or allocated).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_flops(function: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """FLOPs of one call of ``function(*args, **kwargs)`` (forward, and backward if it runs one).

    Parameters
    ----------
    function : callable
        Runs the work to count, e.g. a forward pass, or a forward pass and ``loss.backward()``.

    Returns
    -------
    int
        Total FLOPs counted while ``function`` ran.
    """
    with FlopCounterMode(display=False) as counter:
        function(*args, **kwargs)
    return int(counter.get_total_flops())


def inference_flops_per_sample(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Forward FLOPs of ``model`` per sample, counted on the batch ``x`` in eval mode without autograd.

    Parameters
    ----------
    model : torch.nn.Module
    x : torch.Tensor
        A batch ``(B, ...)``; the count is divided by ``B`` (FLOPs of these networks are linear
        in the batch size, so the result is exact).
    """
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            flops = count_flops(model, x)
    finally:
        model.train(was_training)
    return flops / int(x.shape[0])


__all__ = ["count_flops", "inference_flops_per_sample"]
