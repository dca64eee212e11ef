"""The ask/tell driver loop: ask the engine, run candidates on an executor, tell the engine, until done.

Torch-free: the engine, the executor, the evaluator and the progress display are passed in, so the
loop runs (and is tested) without Lightning.

Reliability
-----------
Failed candidates
    A candidate that raises, produces a NaN/inf loss or metric, or runs out of memory is recorded
    as a failed trial (``failure_reason`` ``"exception"``, ``"nan"`` or ``"oom"``, plus the error
    text) and the search goes on. A failed trial is never ranked or chosen as best. In the BO stages
    the GP is told a pessimistic stand-in loss so it steers away from the region
    (:func:`lightning_dnc.search.pessimistic_loss`).
Out of memory
    :class:`OomRetry` trains a candidate that ran out of memory once more at half its batch size;
    the trial then records what was really trained (``Evaluation.config`` and
    ``Trial.trained_config`` hold the halved batch size, ``Evaluation.extra["oom_retry"]`` the
    proposed one and the first error). The GP of stage 3 keeps the proposed point.
Too many failures
    ``max_consecutive_failures`` failed candidates in a row stop the search with
    :class:`SearchAborted`, which carries a summary and the partial result; everything is in the
    journal, so after fixing the cause the search can be resumed.
Budget
    ``max_trials`` and ``max_time`` (:class:`~lightning_dnc.executors.budget.SearchBudget`) stop
    the loop early: no new trial starts, running ones finish, and :func:`drive` returns the limit
    that ended it.
Interruption
    Any exception while candidates run (Ctrl+C, SIGTERM): the running trials are journaled as
    ``"interrupted"`` and the exception propagates; a resume re-runs each of them once.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from lightning_dnc.executors.base import Executor, evaluate_trial
from lightning_dnc.executors.budget import SearchBudget
from lightning_dnc.executors.checkpoints import CheckpointFolder
from lightning_dnc.search import SearchResult, StagedSearch
from lightning_dnc.search.core.records import Evaluation
from lightning_dnc.search.core.trial import RUN_KEY


class SearchAborted(RuntimeError):
    """Too many consecutive candidates failed; the search stopped.

    Attributes
    ----------
    result : SearchResult or None
        The ranking of the trials finished so far (None when none succeeded).
    failures : list of tuple
        ``(trial_id, failure_reason, error)`` of the consecutive failures that stopped it.
    journal : Path or None
        The journal holding every trial, to resume from after fixing the cause.
    """

    def __init__(self, message: str, result: SearchResult | None, failures: list[tuple[int, str, str]],
                 journal: Path | None) -> None:
        super().__init__(message)
        self.result = result
        self.failures = failures
        self.journal = journal


class ProgressDisplay(Protocol):
    """What the loop reports to (``lightning_dnc.lightning.progress.SearchProgress`` draws it).

    ``estimate`` is True while ``planned_total`` is an estimate (during stage 1). A display may also
    have ``search_started(finished_trials, planned_total, estimate)``, called once before the first
    trial (a resumed search has finished trials already).
    """

    def trial_started(self, trial_id: int, stage: int, planned_total: int,  # noqa: D102
                      estimate: bool = False) -> None: ...

    def trial_finished(self, trial_id: int, stage: int, evaluation: Evaluation, loss: float | None,  # noqa: D102
                       planned_total: int, estimate: bool = False) -> None: ...

    def stage_finished(self, stage: int, rows: list[tuple[int, float | None, Evaluation]]) -> None: ...  # noqa: D102


class OomRetry:
    """Wraps an evaluator: a candidate that ran out of memory is trained once more at half its batch size.

    The returned :class:`Evaluation` is the retry's, so ``Evaluation.config`` is the configuration
    really trained; ``extra["oom_retry"]`` keeps the proposed batch size and the first error. A
    retry that fails again is returned as it is (failed).
    """

    def __init__(self, evaluator: Any) -> None:
        self.evaluator = evaluator

    @property
    def datamodule(self) -> Any:
        """The wrapped evaluator's datamodule (Ray ships a copy without its trainer link)."""
        return getattr(self.evaluator, "datamodule", None)

    @datamodule.setter
    def datamodule(self, value: Any) -> None:
        self.evaluator = copy.copy(self.evaluator)  # never change the caller's evaluator
        self.evaluator.datamodule = value

    def evaluate(self, config: Mapping[str, Any], trial_id: int | None = None,
                 run: Mapping[str, Any] | None = None) -> Evaluation:
        """Evaluate ``config`` (of trial ``trial_id``, ``run`` its rung run); on ``"oom"`` evaluate it
        again at half the batch size (the same rung run)."""
        run = None if run is None else dict(run)
        first = evaluate_trial(self.evaluator.evaluate, dict(config), trial_id, run)  # type: ignore[arg-type]
        if first.ok or first.failure_reason != "oom":
            return first
        batch_size = int((first.config or config).get("batch_size", 0))
        if batch_size < 2:
            return first
        rung = {RUN_KEY: config[RUN_KEY]} if RUN_KEY in config else {}  # legacy: a rung run inside the config
        retry = evaluate_trial(self.evaluator.evaluate,
                               {**(first.config or config), "batch_size": batch_size // 2, **rung},
                               trial_id, run)  # type: ignore[arg-type]
        extra = {**retry.extra, "oom_retry": {"proposed_batch_size": batch_size, "trained_batch_size": batch_size // 2,
                                              "first_error": first.error}}
        return dataclasses.replace(retry, extra=extra, wall_time=first.wall_time + retry.wall_time)


def drive(engine: StagedSearch, executor: Executor, progress: ProgressDisplay,
          max_consecutive_failures: int | None = None, journal: Path | None = None,
          budget: SearchBudget | None = None, checkpoints: CheckpointFolder | None = None) -> str | None:
    """Run ``engine`` to the end (or to the end of ``budget``) on ``executor``, reporting to ``progress``.

    Pending trials of a resumed engine (interrupted or running when it stopped) are re-run first,
    each once. Raises :class:`SearchAborted` after ``max_consecutive_failures`` failures in a row.

    ``checkpoints`` (multi-fidelity searches) is synced after every batch of told trials: rung
    checkpoints the engine no longer needs are deleted.

    Returns
    -------
    str or None
        ``"max_trials"`` or ``"max_time"`` when that limit of ``budget`` ended the search early
        (see :mod:`lightning_dnc.executors.budget`), else None.
    """
    budget = budget or SearchBudget()
    stage_of: dict[int, int] = {}
    stage_rows: dict[int, list[tuple[int, float | None, Evaluation]]] = {}
    backlog = list(engine.pending)
    failures: list[tuple[int, str, str]] = []
    ended_by: str | None = None
    started = getattr(progress, "search_started", None)  # optional hook: the counter goes on after a resume
    if started is not None:
        started(engine.progress.finished_trials, _planned(engine, budget), engine.stage == 1)
    while not engine.finished or backlog:
        stop = budget.exhausted(len(engine.trials)) if not engine.finished else None
        free = executor.num_free if not (stop == "max_time") else 0
        proposals = [backlog.pop(0) for _ in range(min(free, len(backlog)))]
        if free > len(proposals) and not backlog and stop is None:
            wanted = free - len(proposals)
            remaining = budget.remaining_trials(len(engine.trials))
            proposals += engine.ask(wanted if remaining is None else min(wanted, remaining))
        for proposal in proposals:
            stage_of[proposal.trial_id] = proposal.stage
            progress.trial_started(proposal.trial_id, proposal.stage, _planned(engine, budget), engine.stage == 1)
            run = proposal.run  # a fixed-epoch trial has none: executors written before `run` still work
            executor.submit(proposal.trial_id, dict(proposal.config), *([] if run is None else [run]))
        if executor.num_running == 0:
            if engine.finished and not backlog:
                break
            if stop is not None:
                ended_by = stop
                break
            raise RuntimeError("The search engine proposed nothing while no trial was running.")
        try:
            finished = executor.collect()
        except BaseException:
            _mark_running_interrupted(engine, stage_of)
            raise
        for trial_id, evaluation in finished:
            stage = stage_of[trial_id]
            engine.tell(trial_id, evaluation)
            loss = engine.loss_of(trial_id)
            progress.trial_finished(trial_id, stage, evaluation, loss, _planned(engine, budget), engine.stage == 1)
            stage_rows.setdefault(stage, []).append((trial_id, loss, evaluation))
            if engine.progress.stage != stage or engine.finished:
                progress.stage_finished(stage, stage_rows.pop(stage, []))
            if evaluation.ok:
                failures = []
            elif not evaluation.extra.get("stopped_by"):  # a candidate the budget stopped did not fail
                failures.append((trial_id, str(evaluation.failure_reason), str(evaluation.error or "")))
        if checkpoints is not None:
            checkpoints.sync(engine.released_checkpoints())
        if max_consecutive_failures is not None and len(failures) >= max_consecutive_failures:
            _mark_running_interrupted(engine, stage_of)
            raise aborted(engine, failures, journal)
    for stage in sorted(stage_rows):
        progress.stage_finished(stage, stage_rows[stage])
    return ended_by


def _planned(engine: StagedSearch, budget: SearchBudget) -> int:
    """The planned trials of the whole search, cut to the budget's ``max_trials``."""
    return budget.capped(engine.progress.planned_total, len(engine.trials))


def final_result(engine: StagedSearch, journal: Path | None, ended_by: str | None = None,
                 budget: SearchBudget | None = None) -> SearchResult:
    """The engine's result; a search in which no candidate succeeded ends as :class:`SearchAborted`.

    ``ended_by`` (what :func:`drive` returned) is recorded in ``result.meta["budget_ended"]``.
    """
    try:
        result = engine.result()
        if ended_by is not None:
            budget = budget or SearchBudget()
            result.meta["budget_ended"] = budget.describe(ended_by, len(engine.trials), engine.stage)
        return result
    except RuntimeError:
        failed = [(t.trial_id, str(t.evaluation.failure_reason), str(t.evaluation.error or ""))
                  for t in engine.trials if t.evaluation is not None]
        if not failed and ended_by == "max_time":
            limit = budget.max_time if budget is not None else None
            raise SearchAborted(
                f"`max_time` ({limit} s) ended the search before any candidate finished its training; the "
                "stopped candidate is in the journal and a resume trains it again. Give the search more time "
                "(`max_time` / --max_time) or a smaller budget (`search_epochs`, --budget quick).",
                None, [], journal) from None
        if not failed:
            raise
        raise aborted(engine, failed, journal, every=True) from None


def aborted(engine: StagedSearch, failures: list[tuple[int, str, str]], journal: Path | None,
            every: bool = False) -> SearchAborted:
    """The :class:`SearchAborted` that explains ``failures`` (``every``: no candidate of stage 1 succeeded)."""
    reasons = ", ".join(f"{reason} x{count}" for reason, count in Counter(r for _, r, _ in failures).items())
    try:
        result: SearchResult | None = engine.result()
    except RuntimeError:
        result = None
    done = sum(1 for t in engine.trials if t.finished)
    best = "no successful trial yet" if result is None else (
        f"best so far trial {result.best.trial.trial_id} (loss {result.best.loss:.4f})")
    last = failures[-1][2].splitlines()[0] if failures[-1][2] else "no error text"
    where = f" The journal {str(journal)!r} keeps every trial: fix the cause, then resume it." if journal else ""
    if every:
        message = (f"Search stopped: every candidate of stage 1 failed ({len(failures)} trials: {reasons}), so there "
                   f"is no architecture to refine; last error: {last}.{where}")
    else:
        message = (
            f"Search stopped: {len(failures)} candidates in a row failed (trials {failures[0][0]}-{failures[-1][0]}: "
            f"{reasons}); last error: {last}. {done} trials finished, {best}.{where} Raise "
            "`max_consecutive_failures` to tolerate more failures."
        )
    return SearchAborted(message, result, list(failures), journal)


def _mark_running_interrupted(engine: StagedSearch, stage_of: Mapping[int, int]) -> None:
    for trial_id in list(stage_of):
        if not engine.is_told(trial_id):
            engine.mark_interrupted(trial_id)


__all__ = ["OomRetry", "ProgressDisplay", "SearchAborted", "aborted", "drive", "final_result"]
