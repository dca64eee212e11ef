"""The search loop: ask the engine, train candidates on an executor, tell the engine, until done.

Reliability
-----------
Failed candidates
    A candidate that raises, produces a NaN/inf loss or metric, or runs out of memory is recorded
    as a failed trial (``failure_reason`` ``"exception"``, ``"nan"`` or ``"oom"``, plus the error
    text) and the search goes on. A failed trial is never ranked or chosen as best. In the BO stages
    the GP is told a pessimistic stand-in loss so it steers away from the region: the worst
    finished loss of the same stage plus 0.5 (about 3x worse ``f_p + wc f_c``); with no finished
    loss in the stage, the worst loss elsewhere plus 0.5; with no loss at all, 1.0
    (:func:`lightning_dnc.search.pessimistic_loss`).
Out of memory
    With ``retry_oom=True`` (default) a candidate that runs out of memory is trained once more at
    half its batch size; the trial then records what was really trained (``Evaluation.config`` and
    ``Trial.trained_config`` hold the halved batch size, ``Evaluation.extra["oom_retry"]`` the
    proposed one and the first error) and the ranking returns that trained configuration. The GP
    of stage 3 keeps the proposed point, so its model is of "what happens when we ask for this".
Too many failures
    ``max_consecutive_failures`` (default 5) failed candidates in a row stop the search with
    :class:`SearchAborted`, which carries a summary and the partial result; everything is in the
    journal, so after fixing the cause the search can be resumed.
Interruption
    Ctrl+C / SIGTERM while a candidate trains: the trial is journaled as ``"interrupted"`` and the
    exception propagates; a resume re-runs that trial once with the same configuration.
Journal lock and resume
    A search with a journal holds ``<journal>.lock`` (see :class:`~lightning_dnc.search.lock.RunLock`);
    a second search on the same journal is refused, a lock of a dead process is taken over.
    ``DeepNCheapTuner(resume=RUN_DIR_or_journal)`` rebuilds the search by replaying the journal
    (finished trials are never re-run, proposals continue exactly as an uninterrupted run would).
    The journal header stores a fingerprint of the dataset; a different dataset or search space is
    refused unless ``force_resume=True``; other settings (budget, seed, objective) must be equal.
    Resuming a finished search trains nothing and returns its result.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_dnc.executors import Executor, make_executor
from lightning_dnc.lightning.progress import SearchProgress
from lightning_dnc.lightning.resume import dataset_fingerprint, journal_header, resumed_engine, stored_space
from lightning_dnc.search import Journal, Objective, SearchResult, StagedSearch
from lightning_dnc.search.lock import RunLock
from lightning_dnc.search.records import Evaluation
from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace, complete_config

if TYPE_CHECKING:
    from lightning_dnc.lightning.tuner import DeepNCheapTuner


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


def is_rank_zero() -> bool:
    """False in the extra processes a DDP launcher starts (``RANK``/``LOCAL_RANK``/``NODE_RANK`` set)."""
    return all(int(os.environ.get(name) or 0) == 0 for name in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def run_search(dnc: DeepNCheapTuner, datamodule: Any, family: str, hardware: Mapping[str, Any],
                model_class: type | None = None, console: Any = None, live: bool | None = None,
                lock_held: bool = False) -> SearchResult:
    """Run the search ``dnc`` describes on ``datamodule`` and return its result.

    ``lock_held``: the caller (the CLI) already holds the journal's lock.
    """
    from lightning_dnc.lightning.evaluator import CandidateEvaluator
    from lightning_dnc.models import count_parameters

    _prepare(datamodule)
    header = journal_header(dnc.resume) if dnc.resume is not None else {}
    space = dnc.space or (stored_space(header, "space") or (CNNSpace() if family == "cnn" else MLPSpace()))
    if space.family != family:
        raise ValueError(f"`space` is a {space.family} space but the model family is {family!r}.")
    training_space = dnc.training_space or stored_space(header, "training_space") or TrainingSpace()
    n_params_ref = dnc.n_params_ref
    if n_params_ref is None and dnc.penalize == "n_params":
        largest = complete_config({**space.largest_config(), "family": family})
        n_params_ref = count_parameters(largest, datamodule.input_shape, datamodule.num_outputs)
    objective = Objective(wc=dnc.wc, penalize=dnc.penalize, t_tr_ref=dnc.t_tr_ref,
                          n_params_ref=n_params_ref, regression_scale=dnc.regression_scale)
    settings = dict(
        prior_points=dnc.prior_points, steps=dnc.steps, explore=dnc.explore,
        epochs=dnc.search_epochs, stage2_order=dnc.stage2_order, top_k=dnc.top_k, seed=dnc.seed,
        training_prior_points=dnc.training_prior_points, training_steps=dnc.training_steps,
    )
    metadata = {"dataset": dataset_fingerprint(datamodule)}
    # Under a DDP launcher every rank runs the search in lockstep; only rank 0 writes the journal.
    writes_journal = dnc.journal is not None and is_rank_zero()
    lock = RunLock.for_journal(dnc.journal) if writes_journal and not lock_held else None
    if lock is not None:
        lock.acquire()
    try:
        if dnc.resume is not None:
            engine = resumed_engine(dnc, header, family, space, training_space, objective, settings, metadata,
                                    read_only=not writes_journal)
        else:
            journal = Journal(dnc.journal) if writes_journal else None
            engine = StagedSearch(family, space, training_space, objective, journal=journal, metadata=metadata,
                                  **settings)
        if engine.finished:
            return engine.result()
        evaluator_kwargs: dict[str, Any] = dict(epochs=dnc.search_epochs, seed=dnc.seed, **hardware)
        if model_class is not None:
            evaluator_kwargs["module_class"] = model_class
        evaluator: Any = CandidateEvaluator(datamodule, **evaluator_kwargs)
        if dnc.retry_oom:
            evaluator = OomRetry(evaluator)
        executor = make_executor(dnc.executor, evaluator, max_concurrent=dnc.max_concurrent,
                                 resources_per_trial=dnc.resources_per_trial, ray_address=dnc.ray_address)
        try:
            with SearchProgress(enabled=dnc.progress and is_rank_zero(), console=console, live=live) as progress:
                drive(engine, executor, progress, dnc.max_consecutive_failures, dnc.journal)
        finally:
            executor.shutdown()
        return _final_result(engine, dnc.journal)
    finally:
        if lock is not None:
            lock.release()


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

    def evaluate(self, config: Mapping[str, Any]) -> Evaluation:
        """Evaluate ``config``; on ``"oom"`` evaluate it again at half the batch size."""
        first = self.evaluator.evaluate(config)
        if first.ok or first.failure_reason != "oom":
            return first
        batch_size = int((first.config or config).get("batch_size", 0))
        if batch_size < 2:
            return first
        retry = self.evaluator.evaluate({**(first.config or config), "batch_size": batch_size // 2})
        extra = {**retry.extra, "oom_retry": {"proposed_batch_size": batch_size, "trained_batch_size": batch_size // 2,
                                              "first_error": first.error}}
        return dataclasses.replace(retry, extra=extra, wall_time=first.wall_time + retry.wall_time)


def drive(engine: StagedSearch, executor: Executor, progress: SearchProgress,
           max_consecutive_failures: int | None = None, journal: Path | None = None) -> None:
    stage_of: dict[int, int] = {}
    stage_rows: dict[int, list[tuple[int, float | None, Evaluation]]] = {}
    backlog = list(engine.pending)  # interrupted or running when the search stopped: re-run each once
    failures: list[tuple[int, str, str]] = []
    while not engine.finished or backlog:
        free = executor.num_free
        proposals = [backlog.pop(0) for _ in range(min(free, len(backlog)))]
        if free > len(proposals) and not backlog:
            proposals += engine.ask(free - len(proposals))
        for proposal in proposals:
            stage_of[proposal.trial_id] = proposal.stage
            progress.trial_started(proposal.trial_id, proposal.stage, engine.progress.planned_total)
            executor.submit(proposal.trial_id, proposal.config)
        if executor.num_running == 0:
            if engine.finished:
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
            progress.trial_finished(trial_id, stage, evaluation, loss, engine.progress.planned_total)
            stage_rows.setdefault(stage, []).append((trial_id, loss, evaluation))
            if engine.progress.stage != stage or engine.finished:
                progress.stage_finished(stage, stage_rows.pop(stage, []))
            if evaluation.ok:
                failures = []
            else:
                failures.append((trial_id, str(evaluation.failure_reason), str(evaluation.error or "")))
        if max_consecutive_failures is not None and len(failures) >= max_consecutive_failures:
            _mark_running_interrupted(engine, stage_of)
            raise _aborted(engine, failures, journal)
    for stage in sorted(stage_rows):
        progress.stage_finished(stage, stage_rows[stage])


def _final_result(engine: StagedSearch, journal: Path | None) -> SearchResult:
    """The engine's result; a search in which no candidate succeeded ends as :class:`SearchAborted`."""
    try:
        return engine.result()
    except RuntimeError:
        failed = [(t.trial_id, str(t.evaluation.failure_reason), str(t.evaluation.error or ""))
                  for t in engine.trials if t.evaluation is not None]
        if not failed:
            raise
        raise _aborted(engine, failed, journal, every=True) from None


def _mark_running_interrupted(engine: StagedSearch, stage_of: Mapping[int, int]) -> None:
    for trial_id in list(stage_of):
        if not engine.is_told(trial_id):
            engine.mark_interrupted(trial_id)


def _aborted(engine: StagedSearch, failures: list[tuple[int, str, str]], journal: Path | None,
             every: bool = False) -> SearchAborted:
    from collections import Counter

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


def _prepare(datamodule: Any) -> None:
    if hasattr(datamodule, "prepare_data"):
        datamodule.prepare_data()
    if hasattr(datamodule, "setup"):
        datamodule.setup("fit")
