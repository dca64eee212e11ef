"""Leave a model exactly as it was after measuring it: weights, buffers, gradients, optimizer state, RNG.

Measuring a candidate at the start of its training runs real optimizer steps; the training that
follows must not see them. :func:`preserved_training_state` copies what those steps change and
puts it back, so a candidate trains to the same weights and metrics with or without the measurement.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch


def _cuda_devices(model: torch.nn.Module) -> list[int]:
    return sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})


@contextlib.contextmanager
def preserved_training_state(model: torch.nn.Module, optimizers: Sequence[torch.optim.Optimizer] = (),
                             generators: Iterable[torch.Generator] = (), stateful: Iterable[Any] = ()) -> Iterator[None]:
    """Run the block, then restore ``model``, ``optimizers``, ``generators`` and the global RNG.

    Parameters
    ----------
    model : torch.nn.Module
        Its parameters, buffers (batch-norm statistics), gradients and train/eval mode are restored.
    optimizers : sequence of torch.optim.Optimizer
        Their state (Adam moments, step counts) and parameter groups are restored.
    generators : iterable of torch.Generator
        E.g. the data loader's shuffling generator.
    stateful : iterable
        Further objects with ``state_dict``/``load_state_dict`` (a gradient scaler).
    """
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    grads = [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()]
    optimizer_states = [copy.deepcopy(o.state_dict()) for o in optimizers]
    generators = [(g, g.get_state()) for g in generators]
    others = [(s, copy.deepcopy(s.state_dict())) for s in stateful]
    training = {m: m.training for m in model.modules()}
    try:
        with torch.random.fork_rng(devices=_cuda_devices(model)):
            yield
    finally:
        with torch.no_grad():
            model.load_state_dict(weights)
        for p, g in zip(model.parameters(), grads):
            p.grad = g
        for optimizer, state in zip(optimizers, optimizer_states):
            optimizer.load_state_dict(state)
        for generator, state in generators:
            generator.set_state(state)
        for obj, state in others:
            obj.load_state_dict(state)
        for module, mode in training.items():
            module.training = mode


__all__ = ["preserved_training_state"]
