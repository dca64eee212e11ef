"""Measure every cost of one candidate from one real batch: step-mode ``t_tr``, FLOPs, latency, memory.

:func:`measure_costs` is plain PyTorch (no Lightning): the caller gives the model, its optimizers,
a function that runs one training step on a batch and one that returns the batch's loss, the
batches, and the shape of an epoch. Everything it changes is restored afterwards
(:func:`~lightning_dnc.measure.state.preserved_training_state`), so it can run at the start of a
candidate's training. Each part runs after the one before, on the same warm process:

1. the timed training steps (:func:`~lightning_dnc.measure.steps.time_epoch`), under a CUDA
   peak-memory scope;
2. one forward and backward pass counted by ``FlopCounterMode`` and by the saved-tensor hooks
   (training FLOPs and activation bytes);
3. in eval mode: forward FLOPs of one sample and the inference latency at batch 1 and at the
   evaluation batch size (:func:`~lightning_dnc.measure.latency.measure_latency`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from lightning_dnc.measure.flops import count_flops, inference_flops_per_sample
from lightning_dnc.measure.latency import LatencyPlan, inference_call, measure_latency
from lightning_dnc.measure.memory import (MemoryEstimate, SavedForBackward, cuda_peak_scope, gradient_bytes,
                                          model_bytes, optimizer_state_bytes)
from lightning_dnc.measure.state import preserved_training_state
from lightning_dnc.measure.steps import StepPlan, fixed_threads, time_epoch

COST_BUDGET_FRACTION = 0.025
"""Share of the planned training time the latency blocks aim for (both batch sizes together)."""


@dataclass(frozen=True)
class EpochShape:
    """The batches of one training epoch.

    Attributes
    ----------
    samples : int
        Training samples per epoch (on this process).
    batch_size : int
        Samples of a full batch.
    """

    samples: int
    batch_size: int

    @property
    def full_steps(self) -> int:
        """Full-size batches per epoch."""
        return self.samples // self.batch_size

    @property
    def last_batch(self) -> int:
        """Samples of the smaller last batch (0 when the epoch divides evenly)."""
        return self.samples - self.full_steps * self.batch_size


@dataclass(frozen=True)
class CandidateCosts:
    """What :func:`measure_costs` measured; plain data (``None`` where a part could not be measured).

    Attributes
    ----------
    t_tr_step : float
        Step-mode seconds per training epoch.
    t_tr_step_spread : float
        Standard deviation of the repeats' epoch estimates, seconds.
    t_tr_step_estimates : list of float
    flops_train : float
        Training FLOPs per epoch (forward + backward of every sample once).
    flops_infer : float
        Inference FLOPs per sample (forward).
    latency : float
        Inference seconds per sample at batch 1 (median of blocks).
    latency_batch : float
        Inference seconds per sample at the evaluation batch size.
    latency_batch_size : int
    memory : float
        Peak training bytes: CUDA's ``max_memory_allocated`` above what was allocated before the
        steps, plus the model's own bytes; elsewhere the estimate.
    memory_method : {"cuda_peak", "estimate"}
    memory_estimate : dict
        :class:`~lightning_dnc.measure.memory.MemoryEstimate` parts, bytes.
    seconds : dict
        Wall time of each part (``steps``, ``counts``, ``latency``) and ``total``.
    error : str or None
        Why a part is missing.
    """

    t_tr_step: float | None = None
    t_tr_step_spread: float | None = None
    t_tr_step_estimates: list[float] = field(default_factory=list)
    flops_train: float | None = None
    flops_infer: float | None = None
    latency: float | None = None
    latency_batch: float | None = None
    latency_batch_size: int | None = None
    memory: float | None = None
    memory_method: str | None = None
    memory_estimate: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict."""
        return asdict(self)


def _synchronizer(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def tile_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """``size`` samples taken cyclically from the batch ``x``."""
    index = torch.arange(int(size), device=x.device) % int(x.shape[0])
    return x.index_select(0, index)


def measure_costs(model: torch.nn.Module, optimizers: Sequence[torch.optim.Optimizer],
                  train_step: Callable[[Any], object], loss_of: Callable[[Any], torch.Tensor] | None,
                  batch: Any, slice_batch: Callable[[Any, int], Any], inputs_of: Callable[[Any], torch.Tensor],
                  shape: EpochShape, epochs: int, eval_batch_size: int, device: torch.device,
                  step_plan: StepPlan | None = None, num_threads: int | None = None,
                  generators: Sequence[torch.Generator] = (), stateful: Sequence[Any] = ()) -> CandidateCosts:
    """Measure the costs of training ``model`` (see the module docstring); the training state is restored.

    Parameters
    ----------
    model : torch.nn.Module
        Called as ``model(x)`` for inference.
    optimizers : sequence of torch.optim.Optimizer
    train_step : callable
        ``train_step(batch)``: zero the gradients, forward, backward, optimizer step.
    loss_of : callable, optional
        ``loss_of(batch)``: the training loss (forward only); ``None`` counts ``train_step``.
    batch : any
        One full batch from the training loader, already on ``device``.
    slice_batch : callable
        ``slice_batch(batch, n)``: its first ``n`` samples.
    inputs_of : callable
        ``inputs_of(batch)``: its input tensor.
    shape : EpochShape
    epochs : int
        Planned training epochs (the time budget of the measurement scales with them).
    eval_batch_size : int
        Batch size of the inference latency besides 1.
    device : torch.device
    step_plan : StepPlan, optional
    num_threads : int, optional
        Torch threads while timing (the current count by default).
    generators, stateful
        Further state to restore (:func:`~lightning_dnc.measure.state.preserved_training_state`).
    """
    started = time.perf_counter()
    sync = _synchronizer(device)
    values: dict[str, Any] = {"seconds": {}}
    errors: list[str] = []
    full = batch if shape.full_steps > 0 else None
    partial = slice_batch(batch, shape.last_batch) if shape.last_batch > 0 else None
    first = full if full is not None else partial
    with preserved_training_state(model, optimizers, generators, stateful), fixed_threads(num_threads):
        with _part("steps", values, errors), cuda_peak_scope(device) as peak:
            timing = time_epoch(None if full is None else (lambda: train_step(full)),
                                None if partial is None else (lambda: train_step(partial)),
                                shape.full_steps, epochs, step_plan, sync)
            values.update(t_tr_step=timing.seconds_per_epoch, t_tr_step_spread=timing.spread,
                          t_tr_step_estimates=list(timing.estimates))
        with _part("counts", values, errors):
            values.update(_counts(model, optimizers, train_step, loss_of, first, inputs_of, shape, peak))
        training_s = values.get("t_tr_step", 0.0) * epochs
        with _part("latency", values, errors):
            values.update(_inference(model, inputs_of(first), eval_batch_size, training_s, num_threads))
    values["seconds"]["total"] = time.perf_counter() - started
    return CandidateCosts(**values, error="; ".join(errors) or None)


@contextlib.contextmanager
def _part(name: str, values: dict[str, Any], errors: list[str]) -> Iterator[None]:
    """Time one part into ``values["seconds"]``; an error (not running out of memory) is noted, not raised.

    A part the candidate's own training cannot do either (a step that raises) fails the same way when
    the training runs it; running out of memory propagates so the evaluation is an ``"oom"`` failure.
    """
    mark = time.perf_counter()
    try:
        yield
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as err:  # noqa: BLE001 - a cost that cannot be measured stays None
        errors.append(f"{name}: {type(err).__name__}: {err}")
    finally:
        values["seconds"][name] = time.perf_counter() - mark


def _counts(model: torch.nn.Module, optimizers: Sequence[torch.optim.Optimizer], train_step: Callable[[Any], object],
            loss_of: Callable[[Any], torch.Tensor] | None, batch: Any, inputs_of: Callable[[Any], torch.Tensor],
            shape: EpochShape, peak: dict[str, int]) -> dict[str, Any]:
    """Training FLOPs per epoch and the memory (estimate; CUDA peak when measured) from one counted step."""
    counted = int(inputs_of(batch).shape[0])
    saved = SavedForBackward(exclude=list(model.parameters()))
    with saved.counting():
        if loss_of is None:
            flops = count_flops(train_step, batch)
        else:
            flops = count_flops(lambda: loss_of(batch).backward())
    for p in model.parameters():
        p.grad = None
    estimate = MemoryEstimate(model_bytes(model), gradient_bytes(model), optimizer_state_bytes(optimizers),
                              saved.bytes)
    values: dict[str, Any] = {"flops_train": float(flops) / counted * shape.samples,
                              "memory_estimate": asdict(estimate)}
    if "peak" in peak:
        values.update(memory=float(peak["peak"] - peak["start"] + model_bytes(model)), memory_method="cuda_peak")
    else:
        values.update(memory=float(estimate.total), memory_method="estimate")
    return values


def _inference(model: torch.nn.Module, x: torch.Tensor, eval_batch_size: int, training_s: float,
               num_threads: int | None) -> dict[str, Any]:
    model.eval()
    one = x[:1]
    values: dict[str, Any] = {"flops_infer": inference_flops_per_sample(model, one)}
    plan = LatencyPlan(budget_s=COST_BUDGET_FRACTION * training_s / 2)
    values["latency"] = measure_latency(inference_call(model, one), 1, plan, num_threads).per_sample
    size = max(int(eval_batch_size), 1)
    batch = measure_latency(inference_call(model, tile_batch(x, size)), size, plan, num_threads)
    values.update(latency_batch=batch.per_sample, latency_batch_size=size)
    return values


__all__ = ["COST_BUDGET_FRACTION", "CandidateCosts", "EpochShape", "measure_costs", "tile_batch"]
