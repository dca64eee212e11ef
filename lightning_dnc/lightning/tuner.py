"""``DeepNCheapTuner``: the Deep-n-Cheap search as a Lightning callback and tuner call.

The shape follows Lightning's own tuning features: the algorithm is a function that takes plain
records (:func:`lightning_dnc.lightning.search_loop.run_search` with a
:class:`~lightning_dnc.search.SearchSettings` and a :class:`~lightning_dnc.executors.RunOptions`),
:class:`DeepNCheapTuner` is a thin ``Callback`` that packs its arguments into those records and
exposes the result, and :func:`tune` (also ``lightning_dnc.Trainer.tune``) validates, runs and
applies the result. Candidates train in fresh child Trainers under ``isolate_rng()`` so the host
run's random state is left as it was.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities.seed import isolate_rng

from lightning_dnc.executors import Executor, RunOptions, SearchAborted
from lightning_dnc.lightning.candidate.candidate_logs import HOST_LOGS_NAME, logs_like_host
from lightning_dnc.lightning.data_source import resolve_datamodule
from lightning_dnc.lightning.module_probe import ignored_message, ignored_settings
from lightning_dnc.lightning.search_loop import run_search
from lightning_dnc.models.module import CandidateModule
from lightning_dnc.lightning.setup_checks import check_namespaces, count_samples
from lightning_dnc.budgets import BUDGET_CHOICES, BUDGETS, budget_line, choose_budget
from lightning_dnc.search import Objective, SearchResult, SearchSettings
from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace, complete_config
from lightning_dnc.validation import SetupWarning, check_choice
from lightning_dnc.vocabulary import FAMILIES


class DeepNCheapTuner(pl.Callback):
    """Settings of a Deep-n-Cheap search, usable as a tuner argument or as a callback.

    As a tuner argument: ``trainer.tune(model, dnc=DeepNCheapTuner(wc=0.1))``. As a callback:
    ``Trainer(callbacks=[DeepNCheapTuner(wc=0.1)]).fit(model, datamodule=dm)`` searches first,
    then trains the winner.

    Parameters
    ----------
    wc : float, default 0.1
        Weight of the cost term; 0 = accuracy only, 10 = cheapness first (SPEC §1).
    penalize : {"t_tr", "n_params", "flops", "latency", "memory"}, default "t_tr"
        Cost penalised: training seconds per epoch, trainable parameter count, inference FLOPs
        per sample, inference seconds per sample at batch 1, or peak training bytes. Every
        trial records all of them; ``n_params`` and ``flops`` do not depend on the machine.
    search_epochs : int, optional
        Epochs each candidate trains for during the search (the budget's: 10 quick, 100 paper).
    prior_points, steps, explore : int, optional
        Bayesian optimisation budget of stages 1 and 3: Sobol prior points, BO steps, random
        candidates scored by expected improvement at each step (the budget's: 4, 4, 300 quick;
        15, 15, 1000 paper).
    budget : {"auto", "quick", "paper"}, default "auto"
        What the settings above and the architecture space default to when not given
        (:mod:`lightning_dnc.budgets`): ``"quick"`` finishes in minutes on a CPU with small data
        (smaller networks), ``"paper"`` is SPEC §5's; ``"auto"`` picks ``"paper"`` on an accelerator
        with 10,000 training samples or more, else ``"quick"``. The search prints which it runs.
    threads : "auto" or int, default "auto"
        Torch intra-op threads of each candidate on a CPU: ``"auto"`` races the thread counts on
        the candidate's first training batches and trains on with the fastest, which on a shared
        machine is often fewer than the cores; an int fixes the count (bit-identical reruns).
        Recorded per trial in ``extra["threads"]``.
    training_prior_points, training_steps : int, optional
        Stage-3 budget when it should differ from ``prior_points``/``steps``.
    top_k : int, default 1
        Number of best configurations returned.
    seed : int, default 0
        Seed of the search (sampling and candidate training).
    space : CNNSpace or MLPSpace, optional
        Architecture space with user limits; defaults to the budget's limits of the model's family
        (the SPEC space for ``"paper"``).
    training_space : TrainingSpace, optional
        Limits of lr, weight decay and batch size.
    executor : {"inprocess", "ray"} or Executor, optional
        Where candidates train; in this process by default.
    stage2_order : sequence of str, optional
        Order of the stage-2 grid groups (default ``ac ds bn do sc`` for CNN, ``ac do`` for MLP).
    t_tr_ref, n_params_ref, flops_ref, latency_ref, memory_ref : float, optional
        Normalisers of the costs; by default the t_tr of the first candidate (the centre of the
        space) and the other costs of the largest network the space allows.
    t_tr_mode : {"step", "epoch"}, optional
        How ``t_tr`` is measured: ``"step"`` times the candidate's training step in a tight loop
        after a warm-up (robust to machine load); ``"epoch"`` is the Lightning loop's mean epoch
        over epochs 2..N (SPEC §1, the paper's procedure). ``None``: ``"step"`` for a new search,
        the journal's mode when resuming.
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
    training_prior_points, training_steps : int, optional
        See above.
    max_trials : int, optional
        Stop once the search holds this many trials (a resumed journal's included).
    max_time : float or str, optional
        Start no new trial after this wall time: seconds, ``"90s"``, ``"30m"``, ``"1h"``,
        ``"1h30m"``, ``"DD:HH:MM:SS"``; a candidate still training then is stopped at its next
        batch (journaled as interrupted, never ranked). A search ended by ``max_trials``/``max_time`` skips the
        rest of its current stage and the stages after it, ranks every successful trial and says
        so in ``result.meta["budget_ended"]`` (see :mod:`lightning_dnc.executors.budget`).
    patience : int, optional
        Stop a candidate after this many epochs without a better ``val_acc`` (``val_loss`` for
        regression); None trains every epoch (SPEC §2).
    strategy : {"paper", "joint", "revisit", "train-first"}, optional
        Which stages run. ``"paper"``: SPEC §5 exactly (stage 1 judges architectures with lr 1e-3 and
        batch 256); the others change how stage 1 meets the training settings (see
        :mod:`lightning_dnc.search.stages.strategies`). ``None``: the journal's when resuming, else the
        default (:data:`lightning_dnc.search.core.settings.DEFAULT_STRATEGY`).
    model : {"composite", "scalar"}, optional
        What the GP of the BO stages learns: ``"scalar"``, one GP on the whole loss (the paper's);
        ``"composite"``, a GP on the error and a cost model, the expected improvement of the loss
        computed from both (:mod:`lightning_dnc.search.stages.composite`; not with ``strategy="paper"``).
        ``None``: the journal's when resuming, else the default
        (:func:`lightning_dnc.search.core.settings.default_model`).
    logger : {"csv", "tensorboard", "none"}, optional
        Where each candidate's curves go (one logger version per trial: ``trial_000``, ...).
        By default the host trainer's logger class is used (``CSVLogger``/``TensorBoardLogger``,
        under ``<its root_dir>/dnc_search``); a trainer without a logger logs nothing.
    log_dir : str or Path, optional
        Folder of the candidates' logger versions; ``<host logger root_dir>/dnc_search`` by default.
    fidelity : {None, "asha"}, default None
        ``None`` trains every candidate ``search_epochs`` epochs (the paper). ``"asha"`` starts every
        candidate at ``min_epochs`` and promotes the best ``1/reduction_factor`` of each rung
        (asynchronous successive halving around every stage of the strategy, each stage-2 group
        its own bracket); promoted candidates continue from their checkpoint (kept in the results
        folder's ``checkpoints/``) and only candidates that trained ``search_epochs`` are ranked.
    min_epochs : int, optional
        Epochs of the lowest rung; default ``search_epochs / reduction_factor**3`` rounded (>= 1).
    reduction_factor : int, default 3
        Rungs at ``min_epochs * reduction_factor**k`` epochs up to ``search_epochs`` (>= 2).
    rung_model : {"highest", "shifted", "top"}, optional
        ``fidelity="asha"``: the point each stage's GP sees per candidate from its rung results
        (:mod:`lightning_dnc.search.fidelity.rungs`); default
        :data:`~lightning_dnc.search.fidelity.rungs.DEFAULT_RUNG_MODEL`.
    """

    def __init__(
        self,
        wc: float = 0.1,
        penalize: str = "t_tr",
        search_epochs: int | None = None,
        prior_points: int | None = None,
        steps: int | None = None,
        explore: int | None = None,
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
        training_prior_points: int | None = None,
        training_steps: int | None = None,
        t_tr_mode: str | None = None,
        flops_ref: float | None = None,
        latency_ref: float | None = None,
        memory_ref: float | None = None,
        max_trials: int | None = None,
        max_time: float | str | None = None,
        patience: int | None = None,
        strategy: str | None = None,
        model: str | None = None,
        logger: str | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        fidelity: str | None = None,
        min_epochs: int | None = None,
        reduction_factor: int = 3,
        rung_model: str | None = None,
        budget: str = "auto",
        threads: str | int = "auto",
    ) -> None:
        super().__init__()
        self.budget = check_choice("budget", budget, BUDGET_CHOICES)
        given = {"search_epochs": search_epochs, "prior_points": prior_points, "steps": steps, "explore": explore}
        #: Settings the budget fills (those the user left unset), and whether the space is the budget's.
        self.from_budget = tuple(name for name, value in given.items() if value is None)
        self.space_from_budget = space is None
        # Until the search knows the hardware and data, "auto" stands for "paper" (the full SPEC budget).
        named = BUDGETS["paper" if budget == "auto" else budget]
        search_epochs, prior_points, steps, explore = (
            getattr(named, name) if value is None else value for name, value in given.items())
        objective = Objective(wc=wc, penalize=penalize, t_tr_ref=t_tr_ref, n_params_ref=n_params_ref,
                              regression_scale=regression_scale, t_tr_mode=t_tr_mode, flops_ref=flops_ref,
                              latency_ref=latency_ref, memory_ref=memory_ref)
        self.settings = SearchSettings(
            family=family, objective=objective, prior_points=prior_points, steps=steps,
            training_prior_points=training_prior_points, training_steps=training_steps, explore=explore,
            search_epochs=search_epochs, stage2_order=stage2_order, top_k=top_k, seed=seed, space=space,
            training_space=training_space, patience=patience, strategy=strategy, model=model, fidelity=fidelity,
            min_epochs=min_epochs, reduction_factor=reduction_factor, rung_model=rung_model,
        )
        self.run_options = RunOptions(
            executor=executor, max_concurrent=max_concurrent, resources_per_trial=resources_per_trial,
            ray_address=ray_address, max_consecutive_failures=max_consecutive_failures, retry_oom=retry_oom,
            journal=None if journal is None else Path(journal), resume=None if resume is None else Path(resume),
            force_resume=force_resume, progress=progress, max_trials=max_trials, max_time=max_time, logger=logger,
            log_dir=None if log_dir is None else Path(log_dir), threads=threads,
        )
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
        check_namespaces(model=pl_module, datamodule=trainer.datamodule)
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
    check_namespaces(model=model, datamodule=datamodule)
    dm = resolve_datamodule(model, datamodule, train_dataloaders, val_dataloaders)
    return _search_and_apply(dnc, trainer, model, dm)


def _search_and_apply(dnc: DeepNCheapTuner, trainer: pl.Trainer, model: pl.LightningModule,
                      datamodule: Any) -> SearchResult:
    family = _model_family(model, dnc)
    if callable(getattr(datamodule, "use_family", None)):
        datamodule.use_family(family)  # resolves augment="auto" (CNN inputs only)
    configure = _config_applier(model, datamodule)
    hardware = _hardware_of(trainer)
    model_class = _candidate_class(model)
    settings = settings_for_budget(dnc, dnc.settings.for_family(family), hardware, datamodule)
    if model_class is not None and not issubclass(model_class, CandidateModule):  # that one reads every key
        settings = _skip_ignored_groups(model_class, settings, datamodule)
    options = dnc.run_options
    if options.logger is None:
        kind, folder = logs_like_host(trainer)
        options = options.replace(logger=kind, log_dir=options.log_dir or folder)
    elif options.logger != "none" and options.log_dir is None:
        options = options.replace(log_dir=Path(trainer.default_root_dir) / HOST_LOGS_NAME)
    host_trainer = getattr(datamodule, "trainer", None)
    try:
        with isolate_rng():
            result = run_search(settings, options, datamodule, hardware, model_class=model_class)
            dnc.result = result
            best = dict(result.best_config)
            configure(best)
    finally:
        if hasattr(datamodule, "trainer"):
            # Child trainers detach the datamodule when they finish; give it back to its host.
            datamodule.trainer = host_trainer
    datamodule.batch_size = int(best["batch_size"])
    model._dnc_searched_by = dnc  # type: ignore[attr-defined]
    from lightning_dnc.lightning.dnc_model import DnCModel

    if isinstance(model, DnCModel):
        model.threads = options.threads  # its final training races the thread counts as the candidates did
    return result


def settings_for_budget(dnc: DeepNCheapTuner, settings: SearchSettings, hardware: Mapping[str, Any],
                        datamodule: Any) -> SearchSettings:
    """``settings`` with the unset budget settings and space of the budget ``dnc.budget`` stands for here.

    ``"auto"`` is resolved from the candidates' accelerator and the training samples
    (:func:`lightning_dnc.budgets.choose_budget`); the line saying which budget runs is printed when
    progress is on. A resumed search keeps its journal's settings (the engine checks they match).
    """
    if callable(getattr(datamodule, "prepare_data", None)):
        datamodule.prepare_data()
    if callable(getattr(datamodule, "setup", None)):
        datamodule.setup("fit")
    name, reason = choose_budget(dnc.budget, str(hardware.get("accelerator", "cpu")), count_samples(datamodule, "train"))
    budget = BUDGETS[name]
    changes: dict[str, Any] = {key: getattr(budget, key) for key in dnc.from_budget}
    limits = budget.limits(str(settings.family))
    if dnc.space_from_budget and limits:
        changes["space"] = (CNNSpace if settings.family == "cnn" else MLPSpace)(**limits)
    settings = settings.replace(**changes) if changes else settings
    if dnc.run_options.progress:
        print(budget_line(name, reason, settings.search_epochs, settings.prior_points, settings.steps,
                          "DeepNCheapTuner(budget='paper'|'quick', prior_points=, steps=, search_epochs=, space=) "
                          "changes it."), flush=True)
    return settings


def _skip_ignored_groups(model_class: type, settings: SearchSettings, datamodule: Any) -> SearchSettings:
    """Warn about searched keys ``model_class`` ignores and drop the stage-2 groups it cannot use."""
    from lightning_dnc.data.base import check_datamodule
    from lightning_dnc.lightning.dnc_model import default_config

    info = check_datamodule(datamodule)
    space = settings.space
    base = (complete_config({**space.sample(1, seed=0, method="sobol")[0], "family": settings.family})
            if space is not None else default_config(str(settings.family)))
    offered = {"input_shape": info.input_shape, "num_outputs": info.num_outputs, "task": info.task,
               "epochs": settings.search_epochs}
    order = tuple(settings.stage2_order or ())
    ignored = ignored_settings(model_class, base, order, offered)
    if not ignored:
        return settings
    skipped = [group for group in order if group in ignored]
    warnings.warn(ignored_message(model_class.__name__, ignored, skipped), SetupWarning, stacklevel=4)
    return settings.replace(stage2_order=[group for group in order if group not in ignored])


def _hardware_of(trainer: pl.Trainer) -> dict[str, Any]:
    """The accelerator/devices/precision the host trainer was given, for the child trainers."""
    accelerator = type(trainer.accelerator).__name__.replace("Accelerator", "").lower() or "cpu"
    accelerator = {"cuda": "gpu"}.get(accelerator, accelerator)
    devices = trainer.num_devices if accelerator != "cpu" else 1
    return {"accelerator": accelerator, "devices": devices, "precision": trainer.precision}


def _model_family(model: pl.LightningModule, dnc: DeepNCheapTuner) -> str:
    space = dnc.settings.space
    family = getattr(model, "family", None) or dnc.settings.family or (space.family if space is not None else None)
    if family is None:
        raise ValueError(
            f"Cannot tell whether {type(model).__name__} is a CNN or an MLP. Use "
            "`lightning_dnc.DnCModel(family='cnn'|'mlp')`, give your module a `family` attribute, or "
            "pass `DeepNCheapTuner(family=...)`."
        )
    return check_choice("family", family, FAMILIES)


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
    """Rebuild a user module in place with ``config`` (its other saved hyperparameters that ``__init__`` takes kept)."""
    import inspect

    params = inspect.signature(type(model).__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in dict(getattr(model, "hparams", {})).items()
              if k != "config" and (takes_any or k in params)}
    type(model).__init__(model, config=config, **kwargs)


__all__ = ["DeepNCheapTuner", "SearchAborted", "settings_for_budget", "tune"]
