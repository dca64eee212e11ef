"""The executor interface: where candidates are trained.

The search driver submits ``(trial_id, config)`` pairs and collects ``(trial_id, Evaluation)``
pairs as they finish. An executor never decides what to train and never touches the journal; it
only runs an *evaluate* callable somewhere (this process, a Ray worker, ...).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from lightning_dnc.search.core.records import Evaluation

EvaluateFn = Callable[..., Evaluation]
"""``evaluate(config) -> Evaluation``, optionally with a ``trial_id`` keyword (to name its logs)."""


def evaluate_trial(evaluate: EvaluateFn, config: dict[str, Any], trial_id: int | None) -> Evaluation:
    """``evaluate(config, trial_id=trial_id)`` when ``evaluate`` takes ``trial_id``, else ``evaluate(config)``."""
    try:
        takes_id = "trial_id" in inspect.signature(evaluate).parameters
    except (TypeError, ValueError):
        takes_id = False
    return evaluate(config, trial_id=trial_id) if takes_id else evaluate(config)


class Executor(ABC):
    """Runs candidate evaluations and hands back their records.

    Attributes
    ----------
    max_concurrent : int
        How many candidates may be in flight at once.
    """

    max_concurrent: int = 1

    @property
    @abstractmethod
    def num_running(self) -> int:
        """Number of submitted candidates whose records have not been collected yet."""

    @property
    def num_free(self) -> int:
        """Free slots: how many more candidates :meth:`submit` accepts right now."""
        return max(0, self.max_concurrent - self.num_running)

    @abstractmethod
    def submit(self, trial_id: int, config: dict[str, Any]) -> None:
        """Start evaluating ``config``; raises ``RuntimeError`` when no slot is free."""

    @abstractmethod
    def collect(self) -> list[tuple[int, Evaluation]]:
        """Block until at least one running candidate finishes and return all finished ones.

        Returns an empty list when nothing is running.
        """

    def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Release workers; the default has nothing to release."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
