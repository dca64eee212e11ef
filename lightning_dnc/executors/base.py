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
from lightning_dnc.search.core.trial import RUN_KEY

EvaluateFn = Callable[..., Evaluation]
"""``evaluate(config) -> Evaluation``, optionally with ``trial_id`` (to name its logs) and ``run``
(a multi-fidelity run: :attr:`~lightning_dnc.search.core.trial.Proposal.run`) keywords."""


def evaluate_trial(evaluate: EvaluateFn, config: dict[str, Any], trial_id: int | None,
                   run: dict[str, Any] | None = None) -> Evaluation:
    """``evaluate(config, trial_id=..., run=...)`` with the keywords ``evaluate`` takes.

    An evaluator without a ``run`` keyword gets a rung run the way earlier versions handed it on:
    inside the config under :data:`~lightning_dnc.search.core.trial.RUN_KEY`.
    """
    try:
        parameters = inspect.signature(evaluate).parameters
    except (TypeError, ValueError):
        parameters = {}  # type: ignore[assignment]
    keywords: dict[str, Any] = {"trial_id": trial_id} if "trial_id" in parameters else {}
    if run is not None:
        if "run" in parameters:
            keywords["run"] = run
        else:
            config = {**config, RUN_KEY: run}
    return evaluate(config, **keywords)


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
    def submit(self, trial_id: int, config: dict[str, Any], run: dict[str, Any] | None = None) -> None:
        """Start evaluating ``config`` (``run``: its rung run, multi-fidelity searches); raises
        ``RuntimeError`` when no slot is free."""

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
