"""From command-line options to a checked run plan: the settings records, the data, the folder.

Every check of the user's input runs in :func:`resolve_run` before any file is written or any
candidate trains; its failures are :class:`~lightning_dnc.cli.errors.UsageError` (exit code 2).
Settings are validated by their records (:class:`~lightning_dnc.search.SearchSettings`,
:class:`~lightning_dnc.search.Objective`, :class:`~lightning_dnc.executors.RunOptions`, the
spaces); their :class:`~lightning_dnc.validation.SettingError` is shown with the ``--option``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonargparse import Namespace

from lightning_dnc.budgets import (BUDGET_CHOICES, BUDGET_SETTINGS, BUDGETS, budget_line, choose_budget,
                                   resolved_accelerator)
from lightning_dnc.cli.errors import UsageError
from lightning_dnc._optional import require
from lightning_dnc.executors import RunOptions
from lightning_dnc.results.folder import check_output_folder
from lightning_dnc.search import Objective, SearchSettings
from lightning_dnc.search.core.settings import NOT_IN_HEADER
from lightning_dnc.validation import SettingError, check_choice, check_choices
from lightning_dnc.vocabulary import EXECUTORS, JOURNAL_NAME, PENALTIES

LOGS_FOLDER = "logs"
"""Folder of the results folder holding one logger version per trial (``trial_000``, ..., ``final``)."""
CNN_LIMITS = ("num_conv_layers", "channels_first", "channels_upper")
MLP_LIMITS = ("num_hidden_layers", "hidden_nodes")
TRAINING_LIMITS = {"lr": "--lr_range", "weight_decay": "--weight_decay_range", "batch_size": "--batch_size_range"}
#: Options that define the search (every field of the settings record and the objective the command
#: line offers, and what sets their defaults): they cannot change when a run is resumed.
FIXED_ON_RESUME = (
    *(f.name for f in dataclasses.fields(SearchSettings) if f.name not in NOT_IN_HEADER),
    *(f.name for f in dataclasses.fields(Objective)),
    "budget", "candidate",
)
#: Options that define the search space or the data: changed on resume only with --force.
FORCEABLE_ON_RESUME = ("data", "val_split", "num_classes", "augment", *CNN_LIMITS, *MLP_LIMITS,
                       *(flag[2:] for flag in TRAINING_LIMITS.values()))


@dataclass(frozen=True)
class ResumeRequest:
    """``--resume RUN_DIR``: the folder, the options given on the command line and the saved ones."""

    run_dir: Path
    explicit: set[str] = field(default_factory=set)
    saved: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunPlan:
    """Everything a ``fit``/``search`` run needs, checked."""

    options: Namespace
    settings: SearchSettings
    run_options: RunOptions
    final_epochs: int
    datamodule: Any
    candidate: dict[str, Any] | None
    out: Path
    hardware: dict[str, Any]
    resume: ResumeRequest | None = None
    #: The named budget the run uses and why (``"auto: CPU, ..."``; empty when --budget named it).
    budget: tuple[str, str] = ("quick", "")

    def budget_line(self) -> str:
        """The line printed at the start: the budget, what it sets, how to change it."""
        settings = self.settings
        return budget_line(self.budget[0], self.budget[1], settings.search_epochs, settings.prior_points,
                           settings.steps, "--budget paper|quick or --prior_points/--steps/--search_epochs change it.")

    @property
    def family(self) -> str:
        """The model family searched."""
        return str(self.settings.family)


def flag_of(name: str) -> str:
    """The command-line spelling of a setting (``prior_points`` -> ``--prior_points``)."""
    return TRAINING_LIMITS.get(name, f"--{name}")


def resolve_run(options: Namespace, resume: ResumeRequest | None = None) -> RunPlan:
    """Check every option, build the settings records and the data; write nothing."""
    try:
        return _resolve_run(options, resume)
    except UsageError:
        raise
    except SettingError as err:
        raise UsageError(err.renamed(flag_of)) from err
    except (ValueError, TypeError, FileNotFoundError, KeyError, ModuleNotFoundError) as err:
        raise UsageError(str(err).strip("'\"")) from err


def _resolve_run(options: Namespace, resume: ResumeRequest | None) -> RunPlan:
    from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace, complete_config

    check_choice("budget", options.budget, BUDGET_CHOICES)
    _check_devices(options.devices)
    _check_executor_options(options)
    datamodule = _load_data(options)  # before the budget: "auto" looks at the data's size
    budget_name, budget_reason = choose_budget(options.budget, resolved_accelerator(options.accelerator),
                                               _train_samples(datamodule))
    budget = BUDGETS[budget_name]
    # --t_tr_mode unset: "step" for a new run; on --resume the run's own (0.1.0 runs measured "epoch").
    t_tr_mode = options.t_tr_mode if options.t_tr_mode is not None or resume is not None else "step"
    objective = Objective(wc=options.wc, penalize=options.penalize, t_tr_mode=t_tr_mode, t_tr_ref=options.t_tr_ref,
                          n_params_ref=options.n_params_ref)
    settings = SearchSettings(family=options.family, objective=objective)  # the family first: it picks the limits
    final_epochs = budget.epochs if options.epochs is None else options.epochs
    if final_epochs < 1:
        raise UsageError(f"--epochs must be an integer >= 1, got {final_epochs!r}.")
    if not 0.0 < options.val_split < 1.0:
        raise UsageError(f"--val_split must be in (0, 1), got {options.val_split!r}.")
    if options.pareto_costs is not None:
        check_choices("pareto_costs", options.pareto_costs, PENALTIES)
    own, other = (CNN_LIMITS, MLP_LIMITS) if options.family == "cnn" else (MLP_LIMITS, CNN_LIMITS)
    misplaced = [f"--{name}" for name in other if options.get(name) is not None]
    if misplaced:
        raise UsageError(f"{', '.join(misplaced)} only apply to --family {'mlp' if options.family == 'cnn' else 'cnn'}.")
    limits = budget.limits(options.family)
    limits.update({name: _pair_or_value(f"--{name}", options.get(name)) for name in own
                   if options.get(name) is not None})
    training_limits = {key: _pair_or_value(flag, options.get(flag[2:])) for key, flag in TRAINING_LIMITS.items()
                       if options.get(flag[2:]) is not None}
    from_budget = {name: getattr(budget, name) if options.get(name) is None else options.get(name)
                   for name in BUDGET_SETTINGS}
    settings = settings.replace(
        **from_budget, training_prior_points=options.training_prior_points, training_steps=options.training_steps,
        stage2_order=options.stage2_order, top_k=options.top_k, seed=options.seed, patience=options.patience,
        strategy=options.strategy, model=options.model,
        **_fidelity(options),
        space=CNNSpace(**limits) if options.family == "cnn" else MLPSpace(**limits),
        training_space=TrainingSpace(**training_limits),
    )
    candidate = None
    if options.candidate is not None:
        candidate = complete_config({**options.candidate, "family": options.family})
    if resume is None:
        out = check_output_folder(options.out, overwrite=options.overwrite)
        if (out / JOURNAL_NAME).exists():
            raise UsageError(
                f"--out {str(options.out)!r} holds a search journal ({JOURNAL_NAME}); continue it with --resume "
                f"{str(out)} or choose another folder (--overwrite never replaces a journal)."
            )
    else:
        out = _check_resume(options, resume)
    run_options = RunOptions(
        executor=options.executor, max_concurrent=options.max_concurrent, ray_address=options.ray_address,
        max_consecutive_failures=options.max_consecutive_failures, retry_oom=options.retry_oom,
        journal=None if resume is not None else out / JOURNAL_NAME, resume=out if resume is not None else None,
        force_resume=bool(options.force), max_trials=options.max_trials, max_time=options.max_time,
        logger=options.logger, log_dir=out / LOGS_FOLDER, threads=options.threads,
    )
    if options.logger == "tensorboard":
        require("tensorboard", "--logger tensorboard")
    hardware = {"accelerator": options.accelerator, "devices": options.devices, "precision": options.precision}
    check_hardware(hardware)
    return RunPlan(options, settings, run_options, final_epochs, datamodule, candidate, out, hardware, resume,
                   budget=(budget_name, budget_reason))


def _train_samples(datamodule: Any) -> int | None:
    from lightning_dnc.lightning.setup_checks import count_samples

    return count_samples(datamodule, "train")


def check_hardware(hardware: dict[str, Any]) -> None:
    """The accelerator, devices and precision work on this machine (before anything is written)."""
    from lightning_dnc.lightning.setup_checks import check_hardware as check

    check(hardware)


def _fidelity(options: Any) -> dict[str, Any]:
    """``--fidelity none|asha``, ``--min_epochs``, ``--reduction_factor``, ``--rung_model`` as settings (checked there)."""
    fidelity = options.get("fidelity", "none")
    if fidelity not in ("none", "asha"):
        raise UsageError(f"--fidelity must be one of ['none', 'asha'], got {fidelity!r}.")
    return {"fidelity": None if fidelity == "none" else fidelity, "min_epochs": options.get("min_epochs"),
            "reduction_factor": options.get("reduction_factor", 3), "rung_model": options.get("rung_model")}


def _check_devices(devices: int) -> None:
    if devices < 1:
        raise UsageError(f"--devices must be >= 1, got {devices!r}.")
    if devices > 1:
        raise UsageError(
            f"--devices {devices}: multi-device (DDP) candidates re-launch the running program on every "
            "rank, which the command line does not support; use the Python API "
            "(`lightning_dnc.Trainer(devices=N, strategy='ddp').tune(...)`), or --executor ray with one device per "
            "candidate."
        )


def _check_executor_options(options: Namespace) -> None:
    """--executor, --max_concurrent, --ray_address, --force (value checks live in RunOptions)."""
    check_choice("executor", options.executor, EXECUTORS)
    if options.executor == "inprocess" and (options.max_concurrent != 1 or options.ray_address is not None):
        raise UsageError(
            f"--max_concurrent {options.max_concurrent} / --ray_address {options.ray_address!r} need --executor ray; "
            "the in-process executor trains one candidate at a time."
        )
    if options.executor == "ray":
        from lightning_dnc.executors.ray_executor import RAY_AVAILABLE, RAY_INSTALL_HINT

        if not RAY_AVAILABLE:
            raise UsageError(f"--executor ray needs Ray, which is not installed: {RAY_INSTALL_HINT}")
    if options.force and options.resume is None:
        raise UsageError("--force only applies to --resume (accept a changed search space or dataset).")


def _check_resume(options: Namespace, resume: ResumeRequest) -> Path:
    """The folder to resume; refuses changed search settings (and changed space/data without --force).

    The journal itself is read once, by the search (:class:`~lightning_dnc.lightning.resume.JournalToResume`).
    """
    out = resume.run_dir
    if "out" in resume.explicit and options.out is not None and Path(options.out).expanduser().resolve() != out:
        raise UsageError(
            f"--out {options.out!r} differs from --resume {str(out)!r}; a resumed run stays in its folder."
        )
    if not (out / JOURNAL_NAME).is_file():
        raise UsageError(
            f"--resume {str(out)!r} has no {JOURNAL_NAME}: nothing to resume (a run of a given --candidate has no "
            "search)."
        )
    changed = {name: (resume.saved.get(name), options.get(name)) for name in resume.explicit
               if name in (*FIXED_ON_RESUME, *FORCEABLE_ON_RESUME) and options.get(name) != resume.saved.get(name)}
    fixed = {k: v for k, v in changed.items() if k in FIXED_ON_RESUME}
    if fixed:
        details = ", ".join(f"--{k} {new!r} (run: {old!r})" for k, (old, new) in sorted(fixed.items()))
        raise UsageError(f"Cannot resume {str(out)!r} with other search settings: {details}. Start a new run instead "
                         "(or `report RUN_DIR --wc ...` to re-rank for another trade-off).")
    if changed and not options.force:
        details = ", ".join(f"--{k} {new!r} (run: {old!r})" for k, (old, new) in sorted(changed.items()))
        raise UsageError(f"Cannot resume {str(out)!r}: the search space or data changed: {details}. Pass --force true "
                         "to continue with the new ones, or drop those options.")
    return out


def _load_data(options: Namespace) -> Any:
    """Build the datamodule and load its data now, so a bad dataset fails before anything is written."""
    import inspect

    from lightning_dnc.data import NpzDataModule, make_datamodule
    from lightning_dnc.data.factory import DATAMODULES

    data = str(options.data)
    is_npz = data.lower().endswith(".npz")
    if is_npz and not Path(data).is_file():
        raise UsageError(f"--data {data!r}: no such .npz file.")
    offered = {"val_split": options.val_split, "seed": options.seed, "root": options.root,
               "download": options.download, "augment": options.augment,
               "num_classes": options.get("num_classes")}
    target = NpzDataModule if is_npz else DATAMODULES.get(data.lower().replace("-", "_"))
    if target is None:
        raise UsageError(f"--data {data!r} is not a known dataset; use one of {list(DATAMODULES)} or a path to a .npz file.")
    accepted = inspect.signature(target.__init__).parameters
    if offered["num_classes"] is not None and "num_classes" not in accepted:
        raise UsageError(f"--num_classes applies to .npz data; --data {data!r} has its own classes, drop "
                         "--num_classes.")
    datamodule = make_datamodule(data, **{k: v for k, v in offered.items() if k in accepted})
    if hasattr(datamodule, "use_family"):
        datamodule.use_family(options.family)
    try:
        datamodule.prepare_data()
        datamodule.setup("fit")
    except (ValueError, KeyError, FileNotFoundError) as err:
        raise UsageError(f"--data {data!r}: {str(err).strip(chr(39))}") from err
    except (RuntimeError, OSError) as err:
        raise UsageError(
            f"--data {data!r} could not be loaded ({err}). Without internet access, put the files under "
            f"--root {options.root!r} and pass --download false."
        ) from err
    return datamodule


def _pair_or_value(flag: str, value: Any) -> Any:
    if isinstance(value, list):
        if len(value) != 2:
            raise UsageError(f"{flag} takes two values [lo, hi], got {value!r}.")
        return tuple(value)
    return value


__all__ = ["FIXED_ON_RESUME", "FORCEABLE_ON_RESUME", "ResumeRequest", "RunPlan", "flag_of", "resolve_run"]
