"""Inference latency: the median over timed blocks of ``torch.utils.benchmark.Timer`` calls.

Repeat logic (:func:`plan_blocks`)
----------------------------------
``Timer.timeit(1)`` warms up (two untimed calls: lazy initialisation, allocator, kernel
selection) and times one call, which calibrates the blocks. Each timed block then makes
``number`` calls, enough for a block to last at least ``min_block_s`` (so fast networks are not
timed at the clock's resolution), and the latency is the median of the blocks' seconds per call.
``repeats`` blocks are timed, fewer (never below ``min_repeats``) when a time budget would be
exceeded. The blocks are read with the clock ``Timer`` itself uses (``torch.utils.benchmark.timer``,
which synchronises CUDA) under the timer's fixed thread count, without ``Timer.timeit``'s untimed
calls before every block, which would triple the cost of slow calls.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.benchmark import Timer, timer

from lightning_dnc.measure.steps import fixed_threads


@dataclass(frozen=True)
class LatencyPlan:
    """How long and how often to time.

    Parameters
    ----------
    min_block_s : float, default 1e-3
        Shortest timed block, seconds.
    repeats : int, default 7
        Blocks timed when the budget allows.
    min_repeats : int, default 3
        Blocks timed whatever the budget.
    budget_s : float, optional
        Seconds the timed blocks may take in all (warm-up and calibration not counted).
    """

    min_block_s: float = 1e-3
    repeats: int = 7
    min_repeats: int = 3
    budget_s: float | None = None


@dataclass(frozen=True)
class Latency:
    """One latency measurement.

    Attributes
    ----------
    seconds : float
        Median seconds per call over the blocks.
    batch_size : int
        Samples per call.
    number : int
        Calls per block.
    block_times : tuple of float
        Seconds per call of each block.
    """

    seconds: float
    batch_size: int
    number: int
    block_times: tuple[float, ...]

    @property
    def per_sample(self) -> float:
        """Seconds per sample: ``seconds / batch_size``."""
        return self.seconds / self.batch_size

    @property
    def spread(self) -> float:
        """Standard deviation of the blocks' seconds per call (0 with one block)."""
        return statistics.stdev(self.block_times) if len(self.block_times) > 1 else 0.0


def timeit_warmup_calls(number: int) -> int:
    """Untimed calls ``Timer.timeit(number)`` makes before its timed block."""
    return max(number // 100, 2)


def _block(function: Callable[[], Any], number: int) -> float:
    """Seconds per call of ``number`` back-to-back calls, on the synchronising benchmark clock."""
    start = timer()
    for _ in range(number):
        function()
    return (timer() - start) / number


def plan_blocks(call_s: float, plan: LatencyPlan) -> tuple[int, int]:
    """``(number, repeats)``: calls per block and blocks, for a call that takes ``call_s`` seconds.

    ``number`` is the smallest count whose block lasts at least ``plan.min_block_s``;
    ``repeats`` is ``plan.repeats``, lowered to what fits in ``plan.budget_s`` but never below
    ``plan.min_repeats``.
    """
    call_s = max(float(call_s), 1e-9)
    number = max(1, math.ceil(plan.min_block_s / call_s))
    repeats = plan.repeats
    if plan.budget_s is not None:
        repeats = min(plan.repeats, max(plan.min_repeats, int(plan.budget_s // (number * call_s))))
    return number, repeats


def measure_latency(function: Callable[[], Any], batch_size: int, plan: LatencyPlan | None = None,
                    num_threads: int | None = None) -> Latency:
    """Time ``function()`` (one inference call on ``batch_size`` samples) as the module docstring says.

    Parameters
    ----------
    function : callable
        Takes no argument; e.g. ``lambda: model(x)`` under ``torch.inference_mode``.
    batch_size : int
        Samples each call processes.
    plan : LatencyPlan, optional
    num_threads : int, optional
        Torch threads while timing; the current count by default.
    """
    plan = plan or LatencyPlan()
    threads = torch.get_num_threads() if num_threads is None else int(num_threads)
    calibration = Timer(stmt="function()", globals={"function": function}, num_threads=threads).timeit(1).times[0]
    number, repeats = plan_blocks(calibration, plan)
    with fixed_threads(threads):
        times = tuple(float(_block(function, number)) for _ in range(repeats))
    return Latency(seconds=float(statistics.median(times)), batch_size=int(batch_size), number=number,
                   block_times=times)


def inference_call(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], Any]:
    """A no-argument call of ``model(x)`` in inference mode (the caller sets ``model.eval()``)."""

    def call() -> Any:
        with torch.inference_mode():
            return model(x)

    return call


__all__ = ["Latency", "LatencyPlan", "inference_call", "measure_latency", "plan_blocks", "timeit_warmup_calls"]
