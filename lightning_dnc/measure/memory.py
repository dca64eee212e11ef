"""Training memory of a network: measured on CUDA, estimated from what autograd keeps on any device.

Estimate (any device)
---------------------
``parameters + gradients + optimizer state + activations``, in bytes, where

- parameters: every parameter and buffer of the model;
- gradients: one tensor per trainable parameter;
- optimizer state: the tensors the optimizer holds after a step (Adam: two per parameter);
- activations: the distinct tensors autograd saves for the backward pass of one training step
  (counted with :func:`torch.autograd.graph.saved_tensors_hooks`), parameters excluded, the input
  batch included.

It leaves out short-lived temporaries, allocator rounding and library workspaces, so it is a lower
bound of what an allocator would hold; it is exact, machine-independent and works on the ``meta``
device. On CUDA the evaluator also reads ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of one training step, by part (see the module docstring)."""

    parameters: int
    gradients: int
    optimizer_state: int
    activations: int

    @property
    def total(self) -> int:
        """The sum of the four parts."""
        return self.parameters + self.gradients + self.optimizer_state + self.activations


def _storage_key(tensor: torch.Tensor) -> int:
    return int(tensor.untyped_storage()._cdata)  # noqa: SLF001 - the storage's identity, also on `meta`


def model_bytes(model: torch.nn.Module) -> int:
    """Bytes of every parameter and buffer of ``model``."""
    return sum(t.nbytes for t in (*model.parameters(), *model.buffers()))


def gradient_bytes(model: torch.nn.Module) -> int:
    """Bytes of the gradients of the trainable parameters."""
    return sum(p.nbytes for p in model.parameters() if p.requires_grad)


def optimizer_state_bytes(optimizers: Iterable[torch.optim.Optimizer]) -> int:
    """Bytes of the tensors the optimizers hold in their state (distinct storages)."""
    seen: dict[int, int] = {}
    for optimizer in optimizers:
        for state in optimizer.state.values():
            for value in state.values():
                if torch.is_tensor(value):
                    seen[_storage_key(value)] = value.untyped_storage().nbytes()
    return sum(seen.values())


class SavedForBackward:
    """Count the distinct tensors autograd saves for backward while the block runs.

    Parameters
    ----------
    exclude : iterable of torch.Tensor
        Tensors not to count (the model's parameters: they are counted apart).

    Attributes
    ----------
    bytes : int
        Sum of the storage sizes of the distinct saved tensors.
    """

    def __init__(self, exclude: Iterable[torch.Tensor] = ()) -> None:
        self._exclude = {_storage_key(t) for t in exclude}
        self._seen: dict[int, int] = {}

    @property
    def bytes(self) -> int:  # noqa: D102
        return sum(self._seen.values())

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        key = _storage_key(tensor)
        if key not in self._exclude:
            self._seen[key] = tensor.untyped_storage().nbytes()
        return tensor

    @contextlib.contextmanager
    def counting(self) -> Iterator[SavedForBackward]:
        """Count inside the ``with`` block."""
        with torch.autograd.graph.saved_tensors_hooks(self._pack, lambda tensor: tensor):
            yield self


def cuda_peak_scope(device: torch.device) -> contextlib.AbstractContextManager[dict[str, int]]:
    """A ``with`` block whose result dict gets ``peak`` (bytes) and ``start`` (bytes allocated at entry) on CUDA.

    Outside CUDA the dict stays empty.
    """

    @contextlib.contextmanager
    def scope() -> Iterator[dict[str, int]]:
        out: dict[str, int] = {}
        if device.type != "cuda":
            yield out
            return
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        out["start"] = int(torch.cuda.memory_allocated(device))
        try:
            yield out
        finally:
            torch.cuda.synchronize(device)
            out["peak"] = int(torch.cuda.max_memory_allocated(device))

    return scope()


__all__ = ["MemoryEstimate", "SavedForBackward", "cuda_peak_scope", "gradient_bytes", "model_bytes",
           "optimizer_state_bytes"]
