"""Inference latency: the median over timed blocks of ``torch.utils.benchmark.Timer`` calls.

Repeat logic (:func:`plan_blocks`)
----------------------------------
One untimed call warms up (lazy initialisation, allocator, kernel selection) and a second, timed
call calibrates. Each timed block then makes ``number`` calls, enough for a block to last at least
``min_block_s`` (so fast networks are not timed at the clock's resolution), and the latency is the
median of the blocks' seconds per call. ``repeats`` blocks are timed, fewer (never below
``min_repeats``) when a time budget would be exceeded. ``Timer.timeit`` makes a few untimed calls
before each block; the budget counts them. The timer fixes the thread count and synchronises
CUDA before reading the clock.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.benchmark import Timer


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


def plan_blocks(call_s: float, plan: LatencyPlan) -> tuple[int, int]:
    """``(number, repeats)``: calls per block and blocks, for a call that takes ``call_s`` seconds.

    ``number`` is the smallest count whose block lasts at least ``plan.min_block_s``;
    ``repeats`` is ``plan.repeats``, lowered to what fits in ``plan.budget_s`` (warm-up calls of
    every block included) but never below ``plan.min_repeats``.
    """
    call_s = max(float(call_s), 1e-9)
    number = max(1, math.ceil(plan.min_block_s / call_s))
    repeats = plan.repeats
    if plan.budget_s is not None:
        block_s = (number + timeit_warmup_calls(number)) * call_s
        repeats = min(plan.repeats, max(plan.min_repeats, int(plan.budget_s // block_s)))
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
    timer = Timer(stmt="function()", globals={"function": function},
                  num_threads=torch.get_num_threads() if num_threads is None else int(num_threads))
    function()  # warm-up
    calibration = timer.timeit(1).times[0]
    number, repeats = plan_blocks(calibration, plan)
    times = tuple(float(timer.timeit(number).times[0]) for _ in range(repeats))
    return Latency(seconds=float(statistics.median(times)), batch_size=int(batch_size), number=number,
                   block_times=times)


def inference_call(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], Any]:
    """A no-argument call of ``model(x)`` in inference mode (the caller sets ``model.eval()``)."""

    def call() -> Any:
        with torch.inference_mode():
            return model(x)

    return call


__all__ = ["Latency", "LatencyPlan", "inference_call", "measure_latency", "plan_blocks", "timeit_warmup_calls"]
