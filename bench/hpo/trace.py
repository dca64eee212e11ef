"""Cost accounting of one search on the surrogate: the budget, simulated time, decision time, events.

Every method trains through :meth:`Trace.train`, which charges the epochs it trains and the
surrogate's training seconds of those epochs (a candidate trained from epoch ``a`` to ``b`` costs
``time(b) - time(a)``; one trained from scratch to ``e`` costs ``time(e)``). The method's own work
(``ask``/``tell``, Optuna's ``report``/``should_prune``) runs inside :meth:`Trace.deciding`, whose
wall time is the decision time. Simulated time = training seconds + decision seconds.

Budget
------
The budget is counted in full-training equivalents: ``budget`` x 52 epochs. A method starts no new
candidate once the budget is used up and may finish the one it is training, so it spends the
budget to within one candidate (52 epochs).

Objective
---------
SPEC §1 with the surrogate's numbers: after ``e`` epochs, ``f_p = 1 - max(val_accuracy[1..e])``,
``t_tr = time(e) / e`` (the surrogate's seconds per epoch) and
``loss = log10(max(f_p + wc * t_tr / t_tr_ref, 1e-6))`` with ``t_tr_ref`` the task's centre
configuration's time per epoch at 52 epochs. Every result a method observes, at any fidelity, is an
event and carries the epoch it was observed at; only events at 52 epochs count toward a method's
best objective (``hpo_metrics.summarise_run``), for every method alike: a run stopped early never
becomes the best, though its epochs are charged.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpo.lcbench import MAX_EPOCHS, Task

LOSS_FLOOR = 1e-6


def objective(f_p: float | np.ndarray, cost: float | np.ndarray, wc: float) -> Any:
    """``log10(max(f_p + wc * cost, 1e-6))`` (the floor of lightning-dnc's :class:`Objective`)."""
    return np.log10(np.maximum(np.asarray(f_p) + wc * np.asarray(cost), LOSS_FLOOR))


@dataclass(frozen=True)
class Result:
    """What a method sees after training a candidate to ``epoch``."""

    objective: float
    f_p: float
    t_tr: float
    epoch: int


@dataclass(frozen=True)
class Event:
    """One observed result and the totals spent when it was observed."""

    epochs: int
    train_s: float
    decision_s: float
    objective: float
    f_p: float
    cost: float  # t_tr / t_tr_ref
    epoch: int = MAX_EPOCHS  # the fidelity of this result (epochs the candidate has trained)


class Trace:
    """Budget and accounting of one search (one task, seed, method, wc).

    Parameters
    ----------
    task : Task
    wc : float
    budget : float
        Full-training equivalents (x 52 epochs).
    """

    def __init__(self, task: Task, wc: float, budget: float) -> None:
        self.task = task
        self.wc = float(wc)
        self.budget = float(budget)
        self.budget_epochs = int(math.ceil(budget * MAX_EPOCHS))
        self.epochs = 0
        self.train_s = 0.0
        self.decision_s = 0.0
        self.events: list[Event] = []
        self.configs: list[dict[str, Any]] = []

    @property
    def exhausted(self) -> bool:
        """True once the budget's epochs are spent: start no new candidate."""
        return self.epochs >= self.budget_epochs

    @contextlib.contextmanager
    def deciding(self) -> Iterator[None]:
        """Time the method's own work (counted as decision time)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.decision_s += time.perf_counter() - start

    def result(self, config: Mapping[str, Any], epoch: int) -> Result:
        """The objective of ``config`` after ``epoch`` epochs (no charge: use :meth:`train`)."""
        acc, seconds = self.task.curve(config, epoch)
        f_p = 1.0 - float(acc.max())
        t_tr = float(seconds[-1]) / epoch
        return Result(float(objective(f_p, t_tr / self.task.t_tr_ref, self.wc)), f_p, t_tr, epoch)

    def train(self, config: Mapping[str, Any], to_epoch: int, from_epoch: int = 0, observe: bool = True) -> Result:
        """Train ``config`` from ``from_epoch`` (0: from scratch) to ``to_epoch``; charge and record it."""
        if not 0 <= from_epoch < to_epoch <= MAX_EPOCHS:
            raise ValueError(f"Cannot train from epoch {from_epoch} to {to_epoch} (1..{MAX_EPOCHS}).")
        _, seconds = self.task.curve(config, to_epoch)
        self.epochs += to_epoch - from_epoch
        self.train_s += float(seconds[to_epoch - 1] - (seconds[from_epoch - 1] if from_epoch else 0.0))
        if from_epoch == 0:
            self.configs.append(dict(config))
        result = self.result(config, to_epoch)
        if observe:
            self.observe(result)
        return result

    def observe(self, result: Result) -> None:
        """Record a result the method has seen (an event)."""
        self.events.append(Event(self.epochs, self.train_s, self.decision_s, result.objective, result.f_p,
                                 result.t_tr / self.task.t_tr_ref, result.epoch))

    @property
    def simulated_s(self) -> float:
        return self.train_s + self.decision_s
