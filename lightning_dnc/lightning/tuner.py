"""``DeepNCheapTuner``: the Deep-n-Cheap search as a Lightning callback and tuner call.

The shape follows Lightning's own tuning features: the algorithm is a private function
(:func:`lightning_dnc.lightning.search_loop.run_search`), :class:`DeepNCheapTuner` is a thin ``Callback`` that stores the settings and
exposes the result, and :func:`tune` (also ``lightning_dnc.Trainer.tune``) validates, runs and
applies the result. Candidates train in fresh child Trainers under ``isolate_rng()`` so the host
run's random state is left as it was.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities.seed import isolate_rng

from lightning_dnc.executors import Executor
from lightning_dnc.lightning.data_source import resolve_datamodule
from lightning_dnc.lightning.resume import resolve_resume
from lightning_dnc.lightning.search_loop import SearchAborted, run_search
from lightning_dnc.search import SearchResult
from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace

PENALTIES = ("t_tr", "n_params")
EXECUTORS = ("inprocess", "ray")


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
    training_prior_points, training_steps : int, optional
        Stage-3 budget when it should differ from ``prior_points``/``steps``.
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
        training_prior_points: int | None = None,
        training_steps: int | None = None,
    ) -> None:
        super().__init__()
        _check_number("wc", wc, lo=0.0)
        if penalize not in PENALTIES:
            raise ValueError(f"`penalize` must be one of {list(PENALTIES)}, got {penalize!r}.")
        for name, value, lo in (("search_epochs", search_epochs, 1), ("prior_points", prior_points, 1),
                                ("steps", steps, 0), ("explore", explore, 1), ("top_k", top_k, 1)):
            _check_int(name, value, lo)
        _check_int("seed", seed, 0)
        for name, value in (("training_prior_points", training_prior_points), ("training_steps", training_steps)):
            if value is not None:
                _check_int(name, value, 0)
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
        self.training_prior_points = training_prior_points
        self.training_steps = training_steps
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
            result = run_search(dnc, datamodule, family, hardware, model_class=_candidate_class(model))
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


__all__ = ["DeepNCheapTuner", "SearchAborted", "tune"]
