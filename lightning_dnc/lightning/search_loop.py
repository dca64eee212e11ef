"""``run_search``: a search on a datamodule, with Lightning-trained candidates, from two records.

It takes the :class:`~lightning_dnc.search.core.settings.SearchSettings` (what to search) and the
:class:`~lightning_dnc.executors.options.RunOptions` (how to run), never the ``DeepNCheapTuner``
callback, so the command line and tests call it directly. It fills what needs the data or torch
(the spaces' defaults, the cost references of the largest network, the dataset fingerprint), builds
or resumes the engine, and hands it to the torch-free driver loop
(:func:`lightning_dnc.executors.driver.drive`), whose docstring describes failures, out-of-memory
retries and interruptions.

Journal lock and resume
-----------------------
A search with a journal holds ``<journal>.lock`` (see :class:`~lightning_dnc.search.journal.lock.RunLock`);
a second search on the same journal is refused, a lock of a dead process is taken over.
``RunOptions(resume=RUN_DIR_or_journal)`` rebuilds the search by replaying the journal (read
once; finished trials are never re-run, proposals continue exactly as an uninterrupted run
would). The journal header stores a fingerprint of the dataset; a different dataset or search
space is refused unless ``force_resume``; other settings (budget, seed, objective) must be equal
(:func:`lightning_dnc.search.check_same_search`). Resuming a finished search trains nothing and
returns its result.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning_dnc.data.door import check_data
from lightning_dnc.executors import OomRetry, RunOptions, SearchAborted, drive, make_executor
from lightning_dnc.executors.checkpoints import CheckpointFolder
from lightning_dnc.executors.driver import final_result
from lightning_dnc.lightning.candidate.candidate_logs import make_candidate_logs
from lightning_dnc.lightning.candidate.child_trainer import quiet_lightning
from lightning_dnc.lightning.progress import SearchProgress
from lightning_dnc.lightning.setup_checks import warn_small_data
from lightning_dnc.lightning.resume import JournalToResume, dataset_fingerprint
from lightning_dnc.search import Journal, SearchResult, SearchSettings, StagedSearch
from lightning_dnc.search.journal.lock import RunLock
from lightning_dnc.search.core.settings import DEFAULT_STRATEGY, default_model, normalise_header_settings
from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace, complete_config


def is_rank_zero() -> bool:
    """False in the extra processes a DDP launcher starts (``RANK``/``LOCAL_RANK``/``NODE_RANK`` set)."""
    return all(int(os.environ.get(name) or 0) == 0 for name in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def run_search(settings: SearchSettings, options: RunOptions, datamodule: Any, hardware: Mapping[str, Any],
               model_class: type | None = None, console: Any = None, live: bool | None = None,
               lock_held: bool = False, plain: bool = False) -> SearchResult:
    """Run the search ``settings`` describe on ``datamodule`` and return its result.

    Parameters
    ----------
    settings : SearchSettings
        Its ``family`` must be set (:meth:`SearchSettings.for_family`).
    options : RunOptions
    datamodule : LightningDataModule
    hardware : mapping
        ``accelerator``, ``devices``, ``precision`` of every candidate's child ``Trainer``.
    model_class : type, optional
        The user's LightningModule class to search (``None``: ``CandidateModule``).

    Raises
    ------
    DataCheckError
        Before anything trains, for data a search cannot use (:mod:`lightning_dnc.data.door`).
    console, live, plain
        Progress display (a rich console; ``live=False`` prints one line per trial; ``plain`` also
        prints each stage's summary as a line instead of a table).
    lock_held : bool, default False
        The caller (the command line) already holds the journal's lock.
    """
    from lightning_dnc.lightning.candidate.evaluator import CandidateEvaluator

    if settings.family is None:
        raise ValueError("`settings.family` must be set: call settings.for_family('cnn' | 'mlp') first.")
    _prepare(datamodule)
    check_data(datamodule, getattr(datamodule, "task", "classification"), int(datamodule.num_outputs))
    resuming = JournalToResume(options) if options.resume is not None else None
    settings = _complete_settings(settings, resuming, datamodule, hardware)
    settings = settings.replace(data_shape=exact_data_shape(settings, datamodule, hardware, model_class))
    warn_small_data(datamodule, settings.training_space, settings.strategy)
    metadata = {"dataset": dataset_fingerprint(datamodule)}
    # Under a DDP launcher every rank runs the search in lockstep; only rank 0 writes the journal.
    writes_journal = options.journal is not None and is_rank_zero()
    lock = RunLock.for_journal(options.journal) if writes_journal and not lock_held else None
    if lock is not None:
        lock.acquire()
    try:
        if resuming is not None:
            engine = resuming.engine(settings, metadata, read_only=not writes_journal)
        else:
            journal = Journal(options.journal) if writes_journal else None  # type: ignore[arg-type]
            engine = StagedSearch.from_settings(settings, settings.space, settings.training_space, journal=journal,
                                                metadata=metadata)
        if engine.finished:
            return engine.result()
        logs = make_candidate_logs(options.logger, options.log_dir) if is_rank_zero() else None  # rank 0 logs
        checkpoints = rung_checkpoints(settings, options, hardware)
        budget = options.budget  # its clock starts now; running candidates stop at its deadline
        deadline = None if budget.max_time is None else time.time() + budget.max_time
        evaluator: Any = CandidateEvaluator(datamodule, seed=settings.seed, module_class=model_class,
                                            patience=settings.patience, logs=logs,
                                            t_tr_mode=settings.objective.t_tr_mode, **hardware,
                                            checkpoint_dir=None if checkpoints is None else checkpoints.path,
                                            threads=options.threads, max_threads=options.threads_per_candidate(),
                                            deadline=deadline, epoch_lines=options.progress and is_rank_zero())
        if options.retry_oom:
            evaluator = OomRetry(evaluator)
        executor = make_executor(options.executor, evaluator, max_concurrent=options.max_concurrent,
                                 resources_per_trial=options.resources_per_trial, ray_address=options.ray_address)
        try:
            with SearchProgress(enabled=options.progress and is_rank_zero(), console=console, live=live,
                                plain=plain, penalize=settings.objective.penalize) as progress, quiet_lightning():  # once for every candidate
                ended_by = drive(engine, executor, progress, options.max_consecutive_failures, options.journal,
                                 budget=budget, checkpoints=checkpoints)
        finally:
            executor.shutdown()
            if checkpoints is not None:
                checkpoints.close()
        result = final_result(engine, options.journal, ended_by, budget)
        if checkpoints is not None and "rungs" in result.meta:
            result.meta["rungs"]["checkpoints"] = checkpoints.report()
        return result
    finally:
        if lock is not None:
            lock.release()


def rung_checkpoints(settings: SearchSettings, options: RunOptions,
                     hardware: Mapping[str, Any] | None = None) -> CheckpointFolder | None:
    """Multi-fidelity searches: the results folder's ``checkpoints/`` (beside the journal, so a resume
    continues from them; every DDP rank reads the same files), or a temporary folder without a
    journal; ``None`` for fixed-epoch searches."""
    if settings.fidelity is None:
        return None
    if options.journal is None:
        devices = (hardware or {}).get("devices", 1)
        if isinstance(devices, int) and devices > 1 or isinstance(devices, (list, tuple)) and len(devices) > 1:
            raise ValueError("fidelity='asha' with several devices per candidate needs a results folder (`journal`) "
                             "so that every rank reads the same rung checkpoints; pass journal=... or use one device.")
        return CheckpointFolder()
    return CheckpointFolder(Path(options.journal).parent / "checkpoints")


def _complete_settings(settings: SearchSettings, resuming: JournalToResume | None, datamodule: Any,
                       hardware: Mapping[str, Any]) -> SearchSettings:
    """``settings`` with both spaces, the strategy, ``t_tr_mode`` and the cost references filled in.

    Spaces not given are the journal's on resume, else the SPEC spaces. ``t_tr_mode`` not given
    is the journal's on resume (``"epoch"`` for journals of 0.1.0), else ``"step"``; so is the
    strategy (``"paper"`` for journals written before strategies existed). References
    not given are the journal's on resume (so old losses stay comparable), else those of the
    largest network the space allows (SPEC §1; :mod:`lightning_dnc.lightning.references`);
    ``t_tr_ref`` is left to the first candidate, the centre of the space.
    """
    from lightning_dnc.lightning.references import largest_network_references

    family = settings.family
    stored = (lambda key: resuming.stored_space(key)) if resuming is not None else (lambda key: None)
    space = settings.space or stored("space") or (CNNSpace() if family == "cnn" else MLPSpace())
    training_space = settings.training_space or stored("training_space") or TrainingSpace()
    objective = settings.objective
    journal = resuming.stored_objective() if resuming is not None else {}
    changes: dict[str, Any] = {}
    if objective.t_tr_mode is None:
        changes["t_tr_mode"] = journal.get("t_tr_mode", "epoch") if resuming is not None else "step"
    missing = [name for name in ("n_params_ref", "flops_ref", "latency_ref", "memory_ref")
               if getattr(objective, name) is None]
    if resuming is not None:
        changes.update({name: journal.get(name) for name in missing})
    elif missing:
        largest = complete_config({**space.largest_config(), "family": family})
        refs = largest_network_references(largest, datamodule.input_shape, datamodule.num_outputs,
                                          getattr(datamodule, "task", "classification"), objective.penalize, hardware)
        changes.update({name: refs[name] for name in missing if name in refs})
    objective = dataclasses.replace(objective, **changes)
    strategy = settings.strategy
    if strategy is None:  # the run's own on resume (journals from before strategies: "paper")
        strategy = (normalise_header_settings(resuming.header.get("settings") or {})["strategy"]
                    if resuming is not None else DEFAULT_STRATEGY)
    model, time_model = settings.model, settings.time_model
    if resuming is not None:  # the run's own (journals from before models: "scalar"; before time models: "gp")
        stored = normalise_header_settings(resuming.header.get("settings") or {})
        model = stored["model"] if model is None else model
        time_model = stored["time_model"] if time_model is None else time_model
    return settings.replace(space=space, training_space=training_space, objective=objective, strategy=strategy,
                            model=model, time_model=time_model)


def exact_data_shape(settings: SearchSettings, datamodule: Any, hardware: Mapping[str, Any],
                     model_class: Any = None) -> Any:
    """The data's shape when the search can compute its penalty exactly (the composite model's exact
    cost model) or regress its measured time on exact features (the regression cost model and the
    denoised costs of :mod:`~lightning_dnc.search.core.cost_estimates`), else None.

    Both assume the default network (no ``model_class``) on data a built-in in-memory datamodule
    serves; exact counts also 32-bit precision, and CPU ``memory`` a CPU run (on CUDA it is a
    measured peak, modelled by the accuracy GP's second target). A regression learns a measured
    time's scale from the trials, so any precision will do.
    """
    import torch

    from lightning_dnc.data.base import InMemoryDataModule
    from lightning_dnc.search.stages.exact_cost_model import EXACT_PENALTIES
    from lightning_dnc.search.stages.regression_cost_model import REGRESSION_FEATURES
    from lightning_dnc.space.exact_costs import DataShape

    penalize = settings.objective.penalize
    model = settings.model or default_model(settings.strategy, settings.fidelity)  # what the engine will run
    known = penalize in EXACT_PENALTIES or penalize in REGRESSION_FEATURES
    if model != "composite" or not known or model_class is not None:
        return None
    if penalize in EXACT_PENALTIES and str(hardware.get("precision", "32")) not in ("32", "32-true", "None"):
        return None
    if penalize == "memory" and (hardware.get("accelerator") not in ("cpu",) and torch.cuda.is_available()):
        return None
    if not isinstance(datamodule, InMemoryDataModule):
        return None
    try:
        return DataShape.from_datamodule(datamodule)
    except (TypeError, ValueError, AttributeError, RuntimeError):
        return None


def _prepare(datamodule: Any) -> None:
    if hasattr(datamodule, "prepare_data"):
        datamodule.prepare_data()
    if hasattr(datamodule, "setup"):
        datamodule.setup("fit")


__all__ = ["SearchAborted", "is_rank_zero", "run_search"]
