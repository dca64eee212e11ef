"""References of the costs: the largest network of the searched space (SPEC §1 says so for ``N_p``).

``n_params``, ``flops`` (inference FLOPs per sample) and ``memory`` are counted on the ``meta``
device: nothing is allocated or computed, so this is instant even for the largest CNN. The memory
estimate is the one :mod:`lightning_dnc.measure.memory` describes, at the configuration's batch
size. When the search penalises a measured cost the reference is measured the way candidates are:
``latency`` on the training device at batch 1, and ``memory`` on CUDA as the peak of one training
step (the estimate when that runs out of memory). ``t_tr_ref`` is not set here: it is the centre
of the stage-1 space, the search's first candidate, measured the way every candidate is (after
the measurement's warm-up), see :meth:`lightning_dnc.search.Objective.with_references`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from lightning_dnc.measure import inference_flops_per_sample, measure_latency
from lightning_dnc.measure.latency import inference_call
from lightning_dnc.measure.memory import (MemoryEstimate, SavedForBackward, cuda_peak_scope, gradient_bytes,
                                          model_bytes, optimizer_state_bytes)
from lightning_dnc.models import build_network
from lightning_dnc.models.layers import count_trainable


def training_device(hardware: Mapping[str, Any]) -> torch.device:
    """The device a candidate trains on for ``hardware`` (``accelerator`` ``"gpu"``/``"cuda"``/``"auto"``)."""
    accelerator = str(hardware.get("accelerator", "auto")).lower()
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _batch(batch_size: int, input_shape: Sequence[int], num_outputs: int, task: str,
           device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.zeros(batch_size, *input_shape, device=device)
    if task == "classification":
        return x, torch.zeros(batch_size, dtype=torch.long, device=device)
    return x, torch.zeros(batch_size, num_outputs, device=device)


def _loss(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if y.dtype == torch.long:
        return torch.nn.functional.cross_entropy(outputs, y)
    return torch.nn.functional.mse_loss(outputs, y)


def _one_step(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float) -> tuple[torch.optim.Optimizer, int]:
    """One Adam step (SPEC §2); returns the optimizer and the bytes autograd saved for backward."""
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    saved = SavedForBackward(exclude=list(net.parameters()))
    with saved.counting():
        loss = _loss(net(x), y)
    loss.backward()
    optimizer.step()
    return optimizer, saved.bytes


def memory_estimate(config: Mapping[str, Any], input_shape: Sequence[int], num_outputs: int,
                    task: str = "classification") -> MemoryEstimate:
    """The training-memory estimate of ``config`` at its batch size, counted on the ``meta`` device."""
    with torch.device("meta"):
        net = build_network(config, input_shape, num_outputs)
    x, y = _batch(int(config["batch_size"]), input_shape, num_outputs, task, torch.device("meta"))
    optimizer, activations = _one_step(net, x, y, float(config["lr"]))
    return MemoryEstimate(model_bytes(net), gradient_bytes(net), optimizer_state_bytes([optimizer]), activations)


def _measured_memory(config: Mapping[str, Any], input_shape: Sequence[int], num_outputs: int, task: str,
                     device: torch.device) -> float | None:
    try:
        net = build_network(config, input_shape, num_outputs).to(device)
        x, y = _batch(int(config["batch_size"]), input_shape, num_outputs, task, device)
        with cuda_peak_scope(device) as peak:
            _one_step(net, x, y, float(config["lr"]))
        return float(peak["peak"] - peak["start"] + model_bytes(net))
    except torch.cuda.OutOfMemoryError:
        return None
    finally:
        torch.cuda.empty_cache()


def largest_network_references(config: Mapping[str, Any], input_shape: Sequence[int], num_outputs: int,
                               task: str = "classification", penalize: str = "t_tr",
                               hardware: Mapping[str, Any] | None = None) -> dict[str, float]:
    """``n_params_ref``, ``flops_ref``, ``memory_ref`` (and ``latency_ref`` when penalised) of ``config``.

    Parameters
    ----------
    config : mapping
        The complete configuration of the space's largest network (its batch size and lr count
        for the memory estimate).
    input_shape, num_outputs, task
        Of the data.
    penalize : str
        The penalised measure: ``"latency"`` is measured on the training device, ``"memory"``
        measured there when it is CUDA.
    hardware : mapping, optional
        ``accelerator`` of the candidates' trainers.
    """
    with torch.device("meta"):
        net = build_network(config, input_shape, num_outputs)
    refs = {"n_params_ref": float(count_trainable(net)),
            "flops_ref": inference_flops_per_sample(net, torch.zeros(1, *input_shape, device="meta")),
            "memory_ref": float(memory_estimate(config, input_shape, num_outputs, task).total)}
    device = training_device(hardware or {})
    if penalize == "memory" and device.type == "cuda":
        refs["memory_ref"] = _measured_memory(config, input_shape, num_outputs, task, device) or refs["memory_ref"]
    if penalize == "latency":
        with torch.random.fork_rng(devices=[device.index] if device.type == "cuda" else []):
            model = build_network(config, input_shape, num_outputs).to(device).eval()
        refs["latency_ref"] = measure_latency(inference_call(model, torch.zeros(1, *input_shape, device=device)),
                                              1).per_sample
    return refs


__all__ = ["largest_network_references", "memory_estimate", "training_device"]
