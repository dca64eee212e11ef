"""Step-mode ``t_tr``: seconds per training epoch from the candidate's own step, timed in a tight loop.

An epoch of ``S`` batches is ``full_steps`` batches of the full batch size and, when the training
set does not divide evenly, one smaller last batch. After ``warmup`` untimed full steps (and one
untimed small step) the steps are timed in short blocks: ``k`` full steps back to back, then (in
the first ``partial_repeats`` repeats) ``k'`` small steps, ``k`` and ``k'`` just large enough for a
block to last ``min_block_s`` (so fast steps are not timed at the clock's resolution). Each repeat
gives one epoch estimate, ``full_steps * (seconds per full step) + seconds per small step``, and
``t_tr`` takes a robust statistic per step kind over the repeats (the minimum by default: load
from other processes only ever adds time, and short blocks often run untouched by it; see
``bench/ttr_bench.py``).

The number of repeats is chosen from the warm-up so that the timed blocks take about
``budget_fraction`` of the candidate's planned training time (``epochs`` epochs), between
``min_repeats`` and ``repeats``. The clock is read after synchronising CUDA.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from lightning_dnc.validation import check_choice, check_int, check_number

STATISTICS = ("min", "median")
"""How the repeats' epoch estimates become one value."""

COST_THREADS = 1
"""Torch threads while costs are timed, by default (as ``torch.utils.benchmark.Timer``): timings
of one thread do not depend on how many cores other processes leave free."""


@dataclass(frozen=True)
class StepPlan:
    """How the training step is timed.

    Parameters
    ----------
    warmup : int, default 2
        Untimed full steps before timing (>= 1: the last one calibrates the blocks).
    repeats, min_repeats : int, default 15, 3
        Timed repeats when the budget allows, and whatever the budget.
    partial_repeats : int, default 3
        Repeats that also time the smaller last batch (one step of the epoch: fewer samples suffice).
    budget_fraction : float, default 0.04
        Share of the planned training time the timed repeats aim for.
    min_block_s : float, default 1e-3
        Shortest timed block, seconds.
    statistic : {"min", "median"}, default "min"
        Of the seconds per step over the repeats, per step kind.
    """

    warmup: int = 2
    repeats: int = 15
    min_repeats: int = 3
    partial_repeats: int = 3
    budget_fraction: float = 0.04
    min_block_s: float = 1e-3
    statistic: str = "min"

    def __post_init__(self) -> None:
        check_int("warmup", self.warmup, 1)
        check_int("min_repeats", self.min_repeats, 1)
        check_int("repeats", self.repeats, self.min_repeats)
        check_int("partial_repeats", self.partial_repeats, 1)
        check_number("budget_fraction", self.budget_fraction, 0.0)
        check_number("min_block_s", self.min_block_s, 0.0)
        check_choice("statistic", self.statistic, STATISTICS)


@dataclass(frozen=True)
class StepTiming:
    """The outcome of :func:`time_epoch`.

    Attributes
    ----------
    seconds_per_epoch : float
        Step-mode ``t_tr``: ``full_steps`` times the statistic of the full steps' seconds, plus the
        statistic of the small step's.
    estimates : tuple of float
        One epoch estimate per timed repeat, seconds.
    full_step_s : float
        The statistic of the seconds of one full-size step over the repeats.
    steps_per_repeat : int
        Full steps timed back to back in each block (``k``).
    probe_s : float
        Wall time of the whole measurement, warm-up included.
    """

    seconds_per_epoch: float
    estimates: tuple[float, ...]
    full_step_s: float
    steps_per_repeat: int
    probe_s: float

    @property
    def spread(self) -> float:
        """Standard deviation of the repeats' estimates, seconds (0 with one repeat)."""
        return statistics.stdev(self.estimates) if len(self.estimates) > 1 else 0.0


@contextlib.contextmanager
def fixed_threads(num_threads: int | None) -> Iterator[None]:
    """Run the block with ``num_threads`` torch threads (unchanged for ``None``), then restore them."""
    before = torch.get_num_threads()
    if num_threads is not None and num_threads != before:
        torch.set_num_threads(int(num_threads))
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _timed(function: Callable[[], object], synchronize: Callable[[], None], number: int = 1) -> float:
    """Seconds per call of ``number`` back-to-back calls."""
    synchronize()
    start = time.perf_counter()
    for _ in range(number):
        function()
    synchronize()
    return (time.perf_counter() - start) / number


def _calls_per_block(call_s: float, min_block_s: float) -> int:
    return max(1, math.ceil(min_block_s / max(call_s, 1e-9)))


def time_epoch(step_full: Callable[[], object] | None, step_partial: Callable[[], object] | None, full_steps: int,
               epochs: int = 1, plan: StepPlan | None = None,
               synchronize: Callable[[], None] = lambda: None) -> StepTiming:
    """Estimate the seconds of one training epoch from timed steps.

    Parameters
    ----------
    step_full : callable or None
        One training step (forward, backward, optimizer step) on a full-size batch; None when the
        epoch has no full-size batch.
    step_partial : callable or None
        One step on the smaller last batch; None when the training set divides evenly.
    full_steps : int
        Full-size batches per epoch.
    epochs : int
        Planned training epochs (sets the time budget).
    plan : StepPlan, optional
    synchronize : callable
        Waits for the device (``torch.cuda.synchronize``); a no-op on CPU.
    """
    plan = plan or StepPlan()
    if step_full is None and step_partial is None:
        raise ValueError("`time_epoch` needs a full or a partial step to time.")
    full_steps = int(full_steps) if step_full is not None else 0
    started = time.perf_counter()
    full_s = partial_s = 0.0
    if step_full is not None:
        for _ in range(plan.warmup):
            full_s = _timed(step_full, synchronize)
    if step_partial is not None:
        partial_s = _timed(step_partial, synchronize)
    k_full = _calls_per_block(full_s, plan.min_block_s) if step_full is not None else 0
    k_partial = _calls_per_block(partial_s, plan.min_block_s) if step_partial is not None else 0
    budget = plan.budget_fraction * (full_s * full_steps + partial_s) * max(int(epochs), 1)
    budget -= min(plan.partial_repeats, plan.repeats) * k_partial * partial_s
    repeats = min(plan.repeats, max(plan.min_repeats, int(budget // max(k_full * full_s, 1e-9))))
    if step_full is None:
        repeats = max(plan.min_repeats, min(plan.repeats, plan.partial_repeats))
    per_full, per_partial = [], []
    for i in range(repeats):
        if step_full is not None:
            per_full.append(_timed(step_full, synchronize, k_full))
        if step_partial is not None and (i < plan.partial_repeats or step_full is None):
            per_partial.append(_timed(step_partial, synchronize, k_partial))
    pick = min if plan.statistic == "min" else statistics.median
    full_value = pick(per_full) if per_full else 0.0
    partial_value = pick(per_partial) if per_partial else 0.0
    value = full_value * full_steps + partial_value
    estimates = [(per_full[i] if per_full else 0.0) * full_steps
                 + (per_partial[i] if i < len(per_partial) else partial_value) for i in range(repeats)]
    return StepTiming(seconds_per_epoch=float(value), estimates=tuple(estimates),
                      full_step_s=float(full_value) if per_full else math.nan,
                      steps_per_repeat=k_full, probe_s=time.perf_counter() - started)


__all__ = ["COST_THREADS", "STATISTICS", "StepPlan", "StepTiming", "fixed_threads", "time_epoch"]
