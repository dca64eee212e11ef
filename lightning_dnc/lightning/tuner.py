"""``DeepNCheapTuner``: the Deep-n-Cheap search as a Lightning callback and tuner call.

The shape follows Lightning's own tuning features: the algorithm is a private function
(:func:`_run_search`), :class:`DeepNCheapTuner` is a thin ``Callback`` that stores the settings and
exposes the result, and :func:`tune` (also ``lightning_dnc.Trainer.tune``) validates, runs and
applies the result. Candidates train in fresh child Trainers under ``isolate_rng()`` so the host
run's random state is left as it was.

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
import hashlib
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities.seed import isolate_rng

from lightning_dnc.executors import Executor, make_executor
from lightning_dnc.lightning.data_source import resolve_datamodule
from lightning_dnc.lightning.progress import SearchProgress
from lightning_dnc.search import Journal, JournalMismatchError, Objective, SearchResult, StagedSearch
from lightning_dnc.search.lock import RunLock
from lightning_dnc.search.records import STATUS_FAILED, Evaluation
from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace, complete_config

PENALTIES = ("t_tr", "n_params")
EXECUTORS = ("inprocess", "ray")
JOURNAL_NAME = "trials.jsonl"


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


class DeepNCheapTuner(pl.Callback):
    """Settings of a Deep-n-Cheap search, usable as a tuner argument or as a callback.

    As a tuner argument: ``trainer.tune(model, dnc=DeepNCheapTuner(wc=0.1))``. As a callback:
    ``Trainer(callbacks=[DeepNCheapTuner(wc=0.1)]).fit(model, datamodule=dm)`` searches first,
    then trains the winner.

    Parameters
    ----------
    wc : float, default 0.1
        Weight of the cost term; 0 = accuracy only, 10 = cheapness first (SPEC §1).
    penalize : {"t_tr", "n_params"}, default "t_tr"
        Cost measured: training time per epoch or trainable parameter count.
    search_epochs : int, default 100
        Epochs each candidate trains for during the search.
    prior_points, steps, explore : int, default 15, 15, 1000
        Bayesian optimisation budget of stages 1 and 3: Sobol prior points, BO steps, random
        candidates scored by expected improvement at each step.
    top_k : int, default 1
        Number of best configurations returned.
    seed : int, default 0
        Seed of the search (sampling and candidate training).
    space : CNNSpace or MLPSpace, optional
        Architecture space with user limits; defaults to the SPEC space of the model's family.
    training_space : TrainingSpace, optional
        Limits of lr, weight decay and batch size.
    executor : {"inprocess", "ray"} or Executor, optional
        Where candidates train; in this process by default.
    stage2_order : sequence of str, optional
        Order of the stage-2 grid groups (default ``ac ds bn do sc`` for CNN, ``ac do`` for MLP).
    t_tr_ref, n_params_ref : float, optional
        Normalisers of the cost; by default the t_tr of the first candidate and the N_p of the
        largest network the space allows.
    regression_scale : float, default 10
        ``f_p = regression_scale * best val MSE`` for regression.
    journal : str or Path, optional
        JSON-lines file every proposed and finished trial is appended to.
    progress : bool, default True
        Show a live panel (terminal) or one line per trial.
    family : {"cnn", "mlp"}, optional
        Model family when the model does not say it (``DnCModel`` does).
    max_concurrent : int, default 1
        Candidates trained at once (``executor="ray"``); batch BO proposes that many at a time.
    resources_per_trial : dict, optional
        Ray resources of one candidate, e.g. ``{"cpu": 1, "gpu": 1}``.
    ray_address : str, optional
        An existing Ray cluster to join (``"auto"``); a local one is started otherwise.
    max_consecutive_failures : int, default 5
        Stop with :class:`SearchAborted` after this many failed candidates in a row.
    retry_oom : bool, default True
        Train a candidate that ran out of memory once more at half its batch size.
    resume : str or Path, optional
        A results folder (holding ``trials.jsonl``) or a journal file to continue; finished
        trials are not re-run. New trials are appended to that journal.
    force_resume : bool, default False
        Resume even though the search space or the dataset differ from the journal's.
    """

    def __init__(
        self,
        wc: float = 0.1,
        penalize: str = "t_tr",
        search_epochs: int = 100,
        prior_points: int = 15,
        steps: int = 15,
        explore: int = 1000,
        top_k: int = 1,
        seed: int = 0,
        space: CNNSpace | MLPSpace | None = None,
        training_space: TrainingSpace | None = None,
        executor: str | Executor | None = None,
        stage2_order: Sequence[str] | None = None,
        t_tr_ref: float | None = None,
        n_params_ref: float | None = None,
        regression_scale: float = 10.0,
        journal: str | os.PathLike[str] | None = None,
        progress: bool = True,
        family: str | None = None,
        max_concurrent: int = 1,
        resources_per_trial: Mapping[str, float] | None = None,
        ray_address: str | None = None,
        max_consecutive_failures: int = 5,
        retry_oom: bool = True,
        resume: str | os.PathLike[str] | None = None,
        force_resume: bool = False,
    ) -> None:
        super().__init__()
        _check_number("wc", wc, lo=0.0)
        if penalize not in PENALTIES:
            raise ValueError(f"`penalize` must be one of {list(PENALTIES)}, got {penalize!r}.")
        for name, value, lo in (("search_epochs", search_epochs, 1), ("prior_points", prior_points, 1),
                                ("steps", steps, 0), ("explore", explore, 1), ("top_k", top_k, 1)):
            _check_int(name, value, lo)
        _check_int("seed", seed, 0)
        if space is not None and not isinstance(space, (CNNSpace, MLPSpace)):
            raise ValueError(f"`space` must be a CNNSpace or MLPSpace, got {type(space).__name__}.")
        if training_space is not None and not isinstance(training_space, TrainingSpace):
            raise ValueError(f"`training_space` must be a TrainingSpace, got {type(training_space).__name__}.")
        if isinstance(executor, str) and executor not in EXECUTORS:
            raise ValueError(f"`executor` must be one of {list(EXECUTORS)} or an Executor, got {executor!r}.")
        if family is not None and family not in ("cnn", "mlp"):
            raise ValueError(f"`family` must be 'cnn' or 'mlp', got {family!r}.")
        if space is not None and family is not None and space.family != family:
            raise ValueError(f"`space` is a {space.family} space but `family` is {family!r}; make them agree.")
        for name, value in (("t_tr_ref", t_tr_ref), ("n_params_ref", n_params_ref)):
            if value is not None:
                _check_number(name, value, lo=0.0, strict=True)
        _check_number("regression_scale", regression_scale, lo=0.0, strict=True)
        _check_int("max_concurrent", max_concurrent, 1)
        _check_int("max_consecutive_failures", max_consecutive_failures, 1)
        for name, flag in (("retry_oom", retry_oom), ("force_resume", force_resume), ("progress", progress)):
            if not isinstance(flag, bool):
                raise ValueError(f"`{name}` must be True or False, got {flag!r}.")
        resume_journal = resolve_resume(resume) if resume is not None else None
        if resume_journal is not None and journal is not None and Path(journal).resolve() != resume_journal:
            raise ValueError(
                f"`journal` {str(journal)!r} and `resume` {str(resume)!r} name different journals; a resumed search "
                "appends to the journal it resumes, so pass only `resume`."
            )
        self.wc = float(wc)
        self.penalize = penalize
        self.search_epochs = int(search_epochs)
        self.prior_points = int(prior_points)
        self.steps = int(steps)
        self.explore = int(explore)
        self.top_k = int(top_k)
        self.seed = int(seed)
        self.space = space
        self.training_space = training_space
        self.executor = executor
        self.stage2_order = list(stage2_order) if stage2_order is not None else None
        self.t_tr_ref = t_tr_ref
        self.n_params_ref = n_params_ref
        self.regression_scale = float(regression_scale)
        self.journal = resume_journal or (Path(journal) if journal is not None else None)
        self.resume = resume_journal
        self.force_resume = force_resume
        self.max_consecutive_failures = int(max_consecutive_failures)
        self.retry_oom = retry_oom
        self.progress = progress
        self.family = family
        self.max_concurrent = int(max_concurrent)
        self.resources_per_trial = dict(resources_per_trial) if resources_per_trial is not None else None
        self.ray_address = ray_address
        self.result: SearchResult | None = None

    @property
    def best_config(self) -> dict[str, Any] | None:
        """The complete configuration of the best candidate, once a search has run."""
        return None if self.result is None else self.result.best_config

    # -- callback path -------------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Search before fitting, then leave ``pl_module`` rebuilt with the winner."""
        if stage != "fit" or getattr(pl_module, "_dnc_searched_by", None) is self:
            return
        datamodule = trainer.datamodule
        if datamodule is None:
            raise ValueError(
                "DeepNCheapTuner as a callback needs a datamodule: call "
                "`trainer.fit(model, datamodule=dm)` (the search changes `dm.batch_size`)."
            )
        _search_and_apply(self, trainer, pl_module, datamodule)


def tune(
    trainer: pl.Trainer,
    model: pl.LightningModule,
    datamodule: pl.LightningDataModule | None = None,
    dnc: DeepNCheapTuner | None = None,
    train_dataloaders: Any = None,
    val_dataloaders: Any = None,
) -> SearchResult:
    """Run a Deep-n-Cheap search with a plain ``lightning.Trainer``'s hardware settings.

    Parameters
    ----------
    trainer : lightning.Trainer
        Candidates train on its accelerator, devices and precision.
    model : LightningModule
        A :class:`~lightning_dnc.DnCModel`, or your own module whose ``__init__`` takes ``config``.
        Rebuilt with the best configuration when the search ends.
    datamodule : LightningDataModule, optional
        Data to search on; else the dataloaders, else the data the model carries.
    dnc : DeepNCheapTuner, optional
        Search settings; ``DeepNCheapTuner()`` by default.

    Returns
    -------
    SearchResult
    """
    dnc = DeepNCheapTuner() if dnc is None else dnc
    if not isinstance(dnc, DeepNCheapTuner):
        raise ValueError(f"`dnc` must be a DeepNCheapTuner, got {type(dnc).__name__}.")
    dm = resolve_datamodule(model, datamodule, train_dataloaders, val_dataloaders)
    return _search_and_apply(dnc, trainer, model, dm)


def _search_and_apply(dnc: DeepNCheapTuner, trainer: pl.Trainer, model: pl.LightningModule,
                      datamodule: Any) -> SearchResult:
    family = _model_family(model, dnc)
    configure = _config_applier(model, datamodule)
    hardware = _hardware_of(trainer)
    host_trainer = getattr(datamodule, "trainer", None)
    try:
        with isolate_rng():
            result = _run_search(dnc, datamodule, family, hardware, model_class=_candidate_class(model))
            dnc.result = result
            best = {k: v for k, v in result.best_config.items() if k != "epochs"}
            configure(best)
    finally:
        if hasattr(datamodule, "trainer"):
            # Child trainers detach the datamodule when they finish; give it back to its host.
            datamodule.trainer = host_trainer
    datamodule.batch_size = int(best["batch_size"])
    model._dnc_searched_by = dnc  # type: ignore[attr-defined]
    return result


def _run_search(dnc: DeepNCheapTuner, datamodule: Any, family: str, hardware: Mapping[str, Any],
                model_class: type | None = None, console: Any = None, live: bool | None = None,
                lock_held: bool = False) -> SearchResult:
    """The search loop: ask the engine, train on the executor, tell the engine, until done.

    ``lock_held``: the caller (the CLI) already holds the journal's lock.
    """
    from lightning_dnc.lightning.evaluator import CandidateEvaluator
    from lightning_dnc.models import count_parameters

    _prepare(datamodule)
    header = _journal_header(dnc.resume) if dnc.resume is not None else {}
    space = dnc.space or (_stored_space(header, "space") or (CNNSpace() if family == "cnn" else MLPSpace()))
    if space.family != family:
        raise ValueError(f"`space` is a {space.family} space but the model family is {family!r}.")
    training_space = dnc.training_space or _stored_space(header, "training_space") or TrainingSpace()
    n_params_ref = dnc.n_params_ref
    if n_params_ref is None and dnc.penalize == "n_params":
        largest = complete_config({**space.largest_config(), "family": family})
        n_params_ref = count_parameters(largest, datamodule.input_shape, datamodule.num_outputs)
    objective = Objective(wc=dnc.wc, penalize=dnc.penalize, t_tr_ref=dnc.t_tr_ref,
                          n_params_ref=n_params_ref, regression_scale=dnc.regression_scale)
    settings = dict(
        prior_points=dnc.prior_points, steps=dnc.steps, explore=dnc.explore,
        epochs=dnc.search_epochs, stage2_order=dnc.stage2_order, top_k=dnc.top_k, seed=dnc.seed,
    )
    metadata = {"dataset": dataset_fingerprint(datamodule)}
    lock = RunLock.for_journal(dnc.journal) if dnc.journal is not None and not lock_held else None
    if lock is not None:
        lock.acquire()
    try:
        if dnc.resume is not None:
            engine = _resumed_engine(dnc, header, family, space, training_space, objective, settings, metadata)
        else:
            journal = Journal(dnc.journal) if dnc.journal is not None else None
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
            with SearchProgress(enabled=dnc.progress, console=console, live=live) as progress:
                _drive(engine, executor, progress, dnc.max_consecutive_failures, dnc.journal)
        finally:
            executor.shutdown()
        return _final_result(engine, dnc.journal)
    finally:
        if lock is not None:
            lock.release()


def _journal_header(path: Path) -> dict[str, Any]:
    events = Journal(path).read()
    header = events[0] if events else {}
    if header.get("event") != "header":
        raise JournalMismatchError(f"Journal {str(path)!r} does not start with a header event; it cannot be resumed.")
    return header


def _stored_space(header: Mapping[str, Any], key: str) -> Any:
    from lightning_dnc.space import space_from_dict

    return space_from_dict(header[key]) if key in header else None


def _resumed_engine(dnc: DeepNCheapTuner, header: Mapping[str, Any], family: str, space: Any, training_space: Any,
                    objective: Objective, settings: Mapping[str, Any], metadata: Mapping[str, Any]) -> StagedSearch:
    """Rebuild the search from ``dnc.resume`` after checking it is the same search on the same data."""
    path = dnc.resume
    journal = Journal(path)  # type: ignore[arg-type] # only called when resuming
    for name, given in (("space", space), ("training_space", training_space)):
        if given.to_dict() != header.get(name) and not dnc.force_resume:
            raise JournalMismatchError(
                f"Cannot resume {str(path)!r}: `{name}` {given.to_dict()!r} differs from the journal's "
                f"{header.get(name)!r}. Resume with the run's own space, or pass force (--force) to continue with "
                "the new one."
            )
    # The settings and the objective must be equal: the journal's proposals depend on them. A derived
    # n_params_ref (from the largest network of the space) is the journal's, so old losses stay comparable.
    fresh = StagedSearch(family, space, training_space, objective, metadata=metadata, **settings)
    stored_objective = dict(header.get("objective") or {})
    expected_objective = objective.to_dict()
    if dnc.n_params_ref is None:
        expected_objective["n_params_ref"] = stored_objective.get("n_params_ref")
    expected = {**fresh.settings(), "objective": expected_objective}
    stored = {**dict(header.get("settings") or {}), "objective": stored_objective}
    changed = sorted(k for k in set(expected) | set(stored) if expected.get(k) != stored.get(k))
    if changed:
        details = "; ".join(f"{k}: journal {stored.get(k)!r}, now {expected.get(k)!r}" for k in changed)
        raise JournalMismatchError(
            f"Cannot resume {str(path)!r}: the search settings differ from the journal's ({details}). Resume with "
            "the run's own settings, or start a new run."
        )
    stored_data = (header.get("metadata") or {}).get("dataset")
    if stored_data is not None and stored_data != metadata["dataset"] and not dnc.force_resume:
        diff = sorted(k for k in set(stored_data) | set(metadata["dataset"])
                      if stored_data.get(k) != metadata["dataset"].get(k))
        raise JournalMismatchError(
            f"Cannot resume {str(path)!r}: the dataset differs from the one the search started on (fields "
            f"{diff}: journal {[stored_data.get(k) for k in diff]!r}, now "
            f"{[metadata['dataset'].get(k) for k in diff]!r}). Resume on the same data, or pass force (--force) to "
            "continue on this one."
        )
    return StagedSearch.from_journal(journal, space=space, training_space=training_space, force=dnc.force_resume,
                                     strict=not dnc.force_resume)


def resolve_resume(resume: str | os.PathLike[str]) -> Path:
    """The journal a ``resume`` argument names: ``RUN_DIR/trials.jsonl`` or the file itself.

    Raises
    ------
    ValueError
        When the path does not exist, or is a folder without ``trials.jsonl``, or a file that is
        not a JSON-lines journal (e.g. a checkpoint: nothing is ever unpickled).
    """
    if not isinstance(resume, (str, os.PathLike)) or not str(resume):
        raise ValueError(f"`resume` must be a results folder or a journal path, got {resume!r}.")
    path = Path(resume).expanduser().resolve()
    if path.is_dir():
        path = path / JOURNAL_NAME
        if not path.is_file():
            raise ValueError(
                f"`resume` {str(resume)!r} is a folder without {JOURNAL_NAME}; pass the results folder of a search "
                "started with a journal (or the journal file itself)."
            )
    elif not path.is_file():
        raise ValueError(f"`resume` {str(resume)!r} does not exist; pass a results folder or its {JOURNAL_NAME}.")
    with open(path, "rb") as fh:
        head = fh.read(64)
    if path.suffix not in (".jsonl", ".json") or not head.lstrip().startswith(b"{"):
        raise ValueError(
            f"`resume` {str(resume)!r} is not a search journal (a .jsonl file of JSON events); checkpoints and "
            "pickles are never loaded."
        )
    return path


def dataset_fingerprint(datamodule: Any) -> dict[str, Any]:
    """Plain-data identity of a datamodule, stored in the journal header and checked on resume.

    Holds the class name, input shape, outputs, task, sample counts per split (when the
    datamodule offers ``num_samples``) and a SHA-256 of the first and last 32 training and
    validation samples and labels (when it offers ``arrays(stage)``).
    """
    import numpy as np

    info: dict[str, Any] = {"class": type(datamodule).__name__}
    for key in ("input_shape", "num_outputs", "task"):
        value = getattr(datamodule, key, None)
        info[key] = list(value) if isinstance(value, tuple) else value
    counter = getattr(datamodule, "num_samples", None)
    if callable(counter):
        info["num_samples"] = {stage: int(counter(stage)) for stage in ("train", "val", "test")}
    arrays = getattr(datamodule, "arrays", None)
    if callable(arrays):
        digest = hashlib.sha256()
        for stage in ("train", "val"):
            x, y = arrays(stage)
            for tensor in (x[:32], x[-32:], y[:32], y[-32:]):
                data = np.ascontiguousarray(tensor.detach().cpu().numpy())
                digest.update(str(data.dtype).encode() + str(data.shape).encode() + data.tobytes())
        info["sha256"] = digest.hexdigest()
    return info


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


def _drive(engine: StagedSearch, executor: Executor, progress: SearchProgress,
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


def _hardware_of(trainer: pl.Trainer) -> dict[str, Any]:
    """The accelerator/devices/precision the host trainer was given, for the child trainers."""
    accelerator = type(trainer.accelerator).__name__.replace("Accelerator", "").lower() or "cpu"
    accelerator = {"cuda": "gpu"}.get(accelerator, accelerator)
    devices = trainer.num_devices if accelerator != "cpu" else 1
    return {"accelerator": accelerator, "devices": devices, "precision": trainer.precision}


def _model_family(model: pl.LightningModule, dnc: DeepNCheapTuner) -> str:
    family = getattr(model, "family", None) or dnc.family or (dnc.space.family if dnc.space else None)
    if family is None:
        raise ValueError(
            f"Cannot tell whether {type(model).__name__} is a CNN or an MLP. Use "
            "`lightning_dnc.DnCModel(family='cnn'|'mlp')`, give your module a `family` attribute, or "
            "pass `DeepNCheapTuner(family=...)`."
        )
    if family not in ("cnn", "mlp"):
        raise ValueError(f"The model's `family` must be 'cnn' or 'mlp', got {family!r}.")
    return str(family)


def _candidate_class(model: pl.LightningModule) -> type | None:
    """None for DnCModel (candidates are CandidateModules); the user's class otherwise."""
    from lightning_dnc.lightning.dnc_model import DnCModel

    if isinstance(model, DnCModel):
        return None
    _check_user_module(model)
    return type(model)


def _config_applier(model: pl.LightningModule, datamodule: Any) -> Any:
    from lightning_dnc.lightning.dnc_model import DnCModel

    if isinstance(model, DnCModel):
        def apply(config: dict[str, Any]) -> None:
            model.apply_config(config)
            model.learn_data_info(datamodule)

        return apply
    if hasattr(model, "apply_config"):
        return model.apply_config
    return lambda config: _reinitialise(model, config)


def _check_user_module(model: pl.LightningModule) -> None:
    import inspect

    params = inspect.signature(type(model).__init__).parameters
    if "config" not in params:
        raise ValueError(
            f"{type(model).__name__} cannot be searched: its `__init__` must take a `config` dict "
            "(architecture + training keys, see `lightning_dnc.space.complete_config`) and build its "
            "network from it. Or use `lightning_dnc.DnCModel(family=...)`."
        )


def _reinitialise(model: pl.LightningModule, config: dict[str, Any]) -> None:
    """Rebuild a user module in place with ``config`` (its other saved hyperparameters kept)."""
    kwargs = {k: v for k, v in dict(getattr(model, "hparams", {})).items() if k != "config"}
    type(model).__init__(model, config=config, **kwargs)


def _check_number(name: str, value: Any, lo: float, strict: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= lo if strict else value < lo):
        bound = f"> {lo:g}" if strict else f">= {lo:g}"
        raise ValueError(f"`{name}` must be a finite number {bound}, got {value!r}.")


def _check_int(name: str, value: Any, lo: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ValueError(f"`{name}` must be an integer >= {lo}, got {value!r}.")


__all__ = ["DeepNCheapTuner", "OomRetry", "SearchAborted", "STATUS_FAILED", "dataset_fingerprint", "resolve_resume",
           "tune"]
