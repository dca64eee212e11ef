"""The default executor: trains one candidate at a time in the calling process."""

from __future__ import annotations

from typing import Any

from lightning_dnc.executors.base import EvaluateFn, Executor, evaluate_trial
from lightning_dnc.search.core.records import Evaluation


class InProcessExecutor(Executor):
    """Evaluate candidates sequentially, in this process, when :meth:`collect` is called.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(config) -> Evaluation`` (called with ``trial_id=`` too when it accepts it); it
        records candidate failures itself and only lets ``KeyboardInterrupt``/``SystemExit`` escape.
    """

    max_concurrent = 1

    def __init__(self, evaluate: EvaluateFn) -> None:
        self._evaluate = evaluate
        self._pending: list[tuple[int, dict[str, Any], dict[str, Any] | None]] = []

    @property
    def num_running(self) -> int:
        return len(self._pending)

    def submit(self, trial_id: int, config: dict[str, Any], run: dict[str, Any] | None = None) -> None:
        if self.num_free == 0:
            raise RuntimeError(
                f"InProcessExecutor runs one candidate at a time; collect trial "
                f"{self._pending[0][0]} before submitting trial {trial_id}."
            )
        self._pending.append((trial_id, config, run))

    def collect(self) -> list[tuple[int, Evaluation]]:
        if not self._pending:
            return []
        trial_id, config, run = self._pending[0]
        evaluation = evaluate_trial(self._evaluate, config, trial_id, run)
        self._pending.pop(0)
        return [(trial_id, evaluation)]
