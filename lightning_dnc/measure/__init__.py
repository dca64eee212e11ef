"""Measuring what a candidate costs, in plain PyTorch: step-mode ``t_tr``, FLOPs, latency, memory.

Modules: ``steps`` (the training step timed in a tight loop), ``flops`` (``FlopCounterMode``),
``latency`` (``torch.utils.benchmark.Timer`` blocks), ``memory`` (CUDA peak, or parameters +
gradients + optimizer state + saved activations), ``state`` (restore what a measurement changed),
``costs`` (all of them on one batch). No Lightning and no search code: the Lightning callback
:class:`lightning_dnc.lightning.candidate.cost_probe.CostProbe` feeds it from a ``Trainer``.
"""

from lightning_dnc.measure.costs import CandidateCosts, EpochShape, measure_costs
from lightning_dnc.measure.flops import count_flops, inference_flops_per_sample
from lightning_dnc.measure.latency import Latency, LatencyPlan, measure_latency
from lightning_dnc.measure.memory import MemoryEstimate
from lightning_dnc.measure.state import preserved_training_state
from lightning_dnc.measure.steps import StepPlan, StepTiming, time_epoch

__all__ = ["CandidateCosts", "EpochShape", "Latency", "LatencyPlan", "MemoryEstimate", "StepPlan", "StepTiming",
           "count_flops", "inference_flops_per_sample", "measure_costs", "measure_latency",
           "preserved_training_state", "time_epoch"]
