"""Step-mode ``t_tr``: seconds per training epoch from the candidate's own step, timed in a tight loop.

An epoch of ``S`` batches is ``full_steps`` batches of the full batch size and, when the training
set does not divide evenly, one smaller last batch. After ``warmup`` untimed steps (and one
untimed small step), each of ``repeats`` timed repeats runs ``k`` full steps back to back and then
the small step, and estimates the epoch as ``full_steps * (seconds of the k steps / k) + seconds
of the small step``. ``t_tr`` is a robust statistic of the repeats' estimates (their minimum by
default: load on the machine only ever adds time; see ``bench/ttr_bench.py``).

``k`` is chosen from the warm-up so that the timed repeats take about ``budget_fraction`` of the
candidate's planned training time (``epochs`` epochs), never fewer than one step per repeat nor
more than an epoch's worth; ``repeats`` drops to ``min_repeats`` when even one step per repeat
would exceed that budget. The clock is read after synchronising CUDA.
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
        Untimed full steps before timing (>= 1: the last one calibrates ``k``).
    repeats, min_repeats : int, default 5, 3
        Timed repeats when the budget allows, and whatever the budget.
    budget_fraction : float, default 0.04
        Share of the planned training time the timed repeats aim for.
    statistic : {"min", "median"}, default "min"
    """

    warmup: int = 2
    repeats: int = 5
    min_repeats: int = 3
    budget_fraction: float = 0.04
    statistic: str = "min"

    def __post_init__(self) -> None:
        check_int("warmup", self.warmup, 1)
        check_int("min_repeats", self.min_repeats, 1)
        check_int("repeats", self.repeats, self.min_repeats)
        check_number("budget_fraction", self.budget_fraction, 0.0)
        check_choice("statistic", self.statistic, STATISTICS)


@dataclass(frozen=True)
class StepTiming:
    """The outcome of :func:`time_epoch`.

    Attributes
    ----------
    seconds_per_epoch : float
        The statistic of ``estimates``: step-mode ``t_tr``.
    estimates : tuple of float
        One epoch estimate per timed repeat, seconds.
    full_step_s : float
        Median seconds of one full-size step over the repeats.
    steps_per_repeat : int
        Full steps timed back to back in each repeat (``k``).
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


def _timed(function: Callable[[], object], synchronize: Callable[[], None]) -> float:
    synchronize()
    start = time.perf_counter()
    function()
    synchronize()
    return time.perf_counter() - start


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
    epoch_guess = full_s * full_steps + partial_s
    budget = plan.budget_fraction * epoch_guess * max(int(epochs), 1)
    k = 0
    if step_full is not None:
        per_repeat = budget / plan.repeats - partial_s
        k = min(max(int(per_repeat // max(full_s, 1e-9)), 1), max(full_steps, 1))
    repeat_s = k * full_s + partial_s
    repeats = plan.repeats
    if repeat_s * repeats > budget:
        repeats = min(plan.repeats, max(plan.min_repeats, int(budget // max(repeat_s, 1e-9))))
    estimates, per_step = [], []
    for _ in range(repeats):
        estimate = 0.0
        if step_full is not None:
            synchronize()
            start = time.perf_counter()
            for _ in range(k):
                step_full()
            synchronize()
            step_s = (time.perf_counter() - start) / k
            per_step.append(step_s)
            estimate += step_s * full_steps
        if step_partial is not None:
            estimate += _timed(step_partial, synchronize)
        estimates.append(estimate)
    value = min(estimates) if plan.statistic == "min" else statistics.median(estimates)
    return StepTiming(seconds_per_epoch=float(value), estimates=tuple(estimates),
                      full_step_s=float(statistics.median(per_step)) if per_step else math.nan,
                      steps_per_repeat=k, probe_s=time.perf_counter() - started)


__all__ = ["COST_THREADS", "STATISTICS", "StepPlan", "StepTiming", "fixed_threads", "time_epoch"]
