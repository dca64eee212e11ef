"""Where a search's wall time goes: exclusive phase timers and an evaluator that times validation.

``PhaseClock`` keeps *exclusive* seconds per phase: when a timed call runs inside another (a
journal write inside ``StagedSearch.ask``), its time counts for the inner phase only, so the phases
add up to at most the wall time. :func:`instrument` wraps methods of existing classes with the
clock for the duration of a ``with`` block and restores them afterwards; the product code is
measured as it ships, without edits.

:class:`TimedEvaluator` is a :class:`~lightning_dnc.lightning.candidate.evaluator.CandidateEvaluator` that
also records the seconds spent in validation, so an evaluation's wall time splits into training
epochs (``extra["epoch_times"]``), validation, and the rest (Trainer set-up and teardown, model
construction, clean-up).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from lightning_dnc.lightning.candidate.evaluator import CandidateEvaluator
from lightning_dnc.search.core.records import Evaluation

#: Phases of one candidate evaluation, as stored in ``Evaluation.extra["phases"]``.
EVALUATION_PHASES = ("training", "validation", "setup_teardown")


class PhaseClock:
    """Exclusive wall-clock seconds per named phase (nested phases are subtracted from the outer one).

    Examples
    --------
    >>> clock = PhaseClock()
    >>> with clock.phase("acquisition"):
    ...     with clock.phase("journal"):
    ...         pass
    >>> sorted(clock.seconds)
    ['acquisition', 'journal']
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._stack: list[list[float]] = []  # per open phase: [start, seconds of nested phases]

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block as phase ``name`` (exclusive of phases opened inside it)."""
        frame = [time.perf_counter(), 0.0]
        self._stack.append(frame)
        try:
            yield
        finally:
            self._stack.pop()
            total = time.perf_counter() - frame[0]
            self.seconds[name] = self.seconds.get(name, 0.0) + total - frame[1]
            self.calls[name] = self.calls.get(name, 0) + 1
            if self._stack:
                self._stack[-1][1] += total

    def add(self, name: str, seconds: float) -> None:
        """Add ``seconds`` measured elsewhere to phase ``name``."""
        self.seconds[name] = self.seconds.get(name, 0.0) + float(seconds)


@contextlib.contextmanager
def instrument(clock: PhaseClock, targets: Sequence[tuple[type, str, str]]) -> Iterator[PhaseClock]:
    """Time calls of ``cls.method`` as phase ``name`` for every ``(cls, method, name)`` in ``targets``.

    The original methods are put back when the block exits, also on error.

    Parameters
    ----------
    clock : PhaseClock
    targets : sequence of (class, method name, phase name)
    """
    originals: list[tuple[type, str, Any]] = []
    try:
        for cls, method, name in targets:
            original = cls.__dict__.get(method)
            if original is None:
                raise ValueError(f"`targets`: {cls.__name__} defines no method {method!r} to time.")
            originals.append((cls, method, original))
            setattr(cls, method, _timed(original, clock, name))
        yield clock
    finally:
        for cls, method, original in reversed(originals):
            setattr(cls, method, original)


def _timed(function: Any, clock: PhaseClock, name: str) -> Any:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with clock.phase(name):
            return function(*args, **kwargs)

    return wrapper


class _ValidationClock(Callback):
    """Seconds spent between ``on_validation_start`` and ``on_validation_end`` (sanity checks excluded)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start: float | None = None

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        if not trainer.sanity_checking:
            self._start = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        if self._start is not None:
            self.seconds += time.perf_counter() - self._start
            self._start = None


class TimedEvaluator(CandidateEvaluator):
    """A ``CandidateEvaluator`` whose evaluations carry ``extra["phases"]``.

    ``phases`` maps ``training`` (sum of the training-epoch times), ``validation`` and
    ``setup_teardown`` (the rest of ``wall_time``) to seconds. Takes the arguments of
    :class:`~lightning_dnc.lightning.candidate.evaluator.CandidateEvaluator`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._validation: _ValidationClock | None = None

    def _make_trainer(self, epochs: int, callbacks: list[Callback], trial_id: int | None = None,
                      **kwargs: Any) -> pl.Trainer:
        self._validation = _ValidationClock()
        return super()._make_trainer(epochs, [*callbacks, self._validation], trial_id, **kwargs)

    def evaluate(self, config: Mapping[str, Any], trial_id: int | None = None) -> Evaluation:
        """Train ``config`` as the parent does and add ``extra["phases"]``."""
        self._validation = None
        evaluation = super().evaluate(config, trial_id)
        return dataclasses.replace(evaluation, extra={**evaluation.extra, "phases": evaluation_phases(
            evaluation, 0.0 if self._validation is None else self._validation.seconds)})


def evaluation_phases(evaluation: Evaluation, validation_s: float) -> dict[str, float]:
    """Split ``evaluation.wall_time`` into :data:`EVALUATION_PHASES` (seconds, summing to the wall time)."""
    wall = float(evaluation.wall_time or 0.0)
    training = float(sum(evaluation.extra.get("epoch_times", ()) or ()))
    validation = float(validation_s)
    return {"training": training, "validation": validation, "setup_teardown": max(wall - training - validation, 0.0)}


def overhead_summary(wall_s: float, phases: Mapping[str, float]) -> dict[str, float]:
    """Overhead shares of a search from its wall time and phase seconds.

    Returns ``framework_s`` (everything outside the candidates' training epochs and validation),
    ``framework_frac``, ``non_training_s`` (everything outside the training epochs, validation
    included: the issue's definition) and ``non_training_frac``; fractions are of ``wall_s``.
    """
    training = float(phases.get("training", 0.0))
    validation = float(phases.get("validation", 0.0))
    framework = max(wall_s - training - validation, 0.0)
    non_training = max(wall_s - training, 0.0)
    return {
        "framework_s": framework,
        "framework_frac": framework / wall_s if wall_s > 0 else 0.0,
        "non_training_s": non_training,
        "non_training_frac": non_training / wall_s if wall_s > 0 else 0.0,
    }
