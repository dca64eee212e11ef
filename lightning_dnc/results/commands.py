"""What ``fit``, ``search`` and ``report`` do; the parser lives in :mod:`lightning_dnc.cli`.

Every check of the user's input runs in :func:`resolve_run` before any file is written or any
candidate trains; its failures are :class:`UsageError` (exit code 2). A run holds the lock of its
journal (``trials.jsonl.lock``) from before its first write to its end, so two runs never write
the same folder.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from rich.console import Console

from lightning_dnc.results.budgets import BUDGETS, Budget
from lightning_dnc.results.folder import ResultsFolder, check_output_folder

FAMILIES = ("cnn", "mlp")
PENALTIES = ("t_tr", "n_params")
CNN_LIMITS = ("num_conv_layers", "channels_first", "channels_upper")
MLP_LIMITS = ("num_hidden_layers", "hidden_nodes")
EXECUTORS = ("inprocess", "ray")
JOURNAL = "trials.jsonl"
#: Options that define the search: they cannot change when a run is resumed.
FIXED_ON_RESUME = ("family", "wc", "penalize", "budget", "search_epochs", "prior_points", "steps", "explore",
                   "training_prior_points", "training_steps", "top_k", "seed", "stage2_order", "candidate")
#: Options that define the search space or the data: changed on resume only with --force.
FORCEABLE_ON_RESUME = ("data", "val_split", "augment", *CNN_LIMITS, *MLP_LIMITS, "lr_range", "weight_decay_range",
                       "batch_size_range")
#: Never saved in config.yaml: they describe one invocation, not the run.
NOT_SAVED = ("config", "__path__", "overwrite", "resume", "force")


class UsageError(ValueError):
    """Bad input from the user: one line on the console, exit code 2, nothing written."""


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
    family: str
    budget: Budget
    search_epochs: int
    final_epochs: int
    tuner: Any
    datamodule: Any
    candidate: dict[str, Any] | None
    out: Path
    hardware: dict[str, Any]
    resume: ResumeRequest | None = None


def resolve_run(options: Namespace, resume: ResumeRequest | None = None) -> RunPlan:
    """Check every option, build the spaces, the tuner settings and the data; write nothing."""
    try:
        return _resolve_run(options, resume)
    except UsageError:
        raise
    except (ValueError, TypeError, FileNotFoundError, KeyError) as err:
        raise UsageError(str(err).strip("'\"")) from err


def _resolve_run(options: Namespace, resume: ResumeRequest | None) -> RunPlan:
    from lightning_dnc.lightning.tuner import DeepNCheapTuner
    from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace, complete_config

    _choice("--family", options.family, FAMILIES)
    _choice("--penalize", options.penalize, PENALTIES)
    _choice("--budget", options.budget, tuple(BUDGETS))
    if options.wc is None or not options.wc >= 0:
        raise UsageError(f"--wc must be a number >= 0 (0 = accuracy only, 10 = cheapness first), got {options.wc!r}.")
    budget = BUDGETS[options.budget]
    search_epochs = _positive("--search_epochs", options.search_epochs, budget.search_epochs)
    final_epochs = _positive("--epochs", options.epochs, budget.epochs)
    if not 0.0 < options.val_split < 1.0:
        raise UsageError(f"--val_split must be in (0, 1), got {options.val_split!r}.")
    if options.devices < 1:
        raise UsageError(f"--devices must be >= 1, got {options.devices!r}.")
    if options.devices > 1:
        raise UsageError(
            f"--devices {options.devices}: multi-device (DDP) candidates re-launch the running program on every "
            "rank, which the command line does not support; use the Python API "
            "(`lightning_dnc.Trainer(devices=N, strategy='ddp').tune(...)`), or --executor ray with one device per "
            "candidate."
        )
    _check_reliability_options(options)
    own, other = (CNN_LIMITS, MLP_LIMITS) if options.family == "cnn" else (MLP_LIMITS, CNN_LIMITS)
    misplaced = [f"--{name}" for name in other if options.get(name) is not None]
    if misplaced:
        raise UsageError(f"{', '.join(misplaced)} only apply to --family {'mlp' if options.family == 'cnn' else 'cnn'}.")
    limits = dict(budget.cnn_limits if options.family == "cnn" else budget.mlp_limits)
    limits.update({name: _pair_or_value(name, options.get(name)) for name in own if options.get(name) is not None})
    space = CNNSpace(**limits) if options.family == "cnn" else MLPSpace(**limits)
    training_limits = {
        key: _pair_or_value(f"{key}_range", options.get(f"{key}_range"))
        for key in ("lr", "weight_decay", "batch_size") if options.get(f"{key}_range") is not None
    }
    training_space = TrainingSpace(**training_limits)
    budget_values = {
        name: options.get(name) if options.get(name) is not None else getattr(budget, name)
        for name in ("prior_points", "steps", "explore")
    }
    if options.stage2_order is not None:
        from lightning_dnc.search.grid import validate_order

        try:
            validate_order(options.family, options.stage2_order)
        except ValueError as err:
            raise UsageError(f"--stage2_order {options.stage2_order!r}: {err}") from err
    candidate = None
    if options.candidate is not None:
        candidate = complete_config({**options.candidate, "family": options.family})
    if resume is None:
        out = check_output_folder(options.out, overwrite=options.overwrite)
        if (out / JOURNAL).exists():
            raise UsageError(
                f"--out {str(options.out)!r} holds a search journal ({JOURNAL}); continue it with --resume {str(out)} "
                "or choose another folder (--overwrite never replaces a journal)."
            )
    else:
        out = _check_resume(options, resume)
    tuner = DeepNCheapTuner(
        wc=float(options.wc), penalize=options.penalize, search_epochs=search_epochs, top_k=options.top_k,
        seed=options.seed, space=space, training_space=training_space, family=options.family,
        journal=None if resume is not None else out / JOURNAL, progress=True,
        stage2_order=options.stage2_order, max_consecutive_failures=options.max_consecutive_failures,
        training_prior_points=options.training_prior_points, training_steps=options.training_steps,
        retry_oom=options.retry_oom, executor=options.executor, max_concurrent=options.max_concurrent,
        ray_address=options.ray_address, resume=out if resume is not None else None,
        force_resume=bool(options.force), **budget_values,
    )
    datamodule = _load_data(options)
    hardware = {"accelerator": options.accelerator, "devices": options.devices, "precision": options.precision}
    return RunPlan(options, options.family, budget, search_epochs, final_epochs, tuner, datamodule, candidate,
                   out, hardware, resume)


def _check_reliability_options(options: Namespace) -> None:
    """--max_consecutive_failures, --executor, --max_concurrent, --ray_address, --force."""
    if options.max_consecutive_failures is None or options.max_consecutive_failures < 1:
        raise UsageError(
            f"--max_consecutive_failures must be an integer >= 1, got {options.max_consecutive_failures!r}."
        )
    _choice("--executor", options.executor, EXECUTORS)
    if options.max_concurrent is None or options.max_concurrent < 1:
        raise UsageError(f"--max_concurrent must be an integer >= 1, got {options.max_concurrent!r}.")
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
    """The folder to resume; refuses changed search settings (and changed space/data without --force)."""
    out = resume.run_dir
    if "out" in resume.explicit and options.out is not None and Path(options.out).expanduser().resolve() != out:
        raise UsageError(
            f"--out {options.out!r} differs from --resume {str(out)!r}; a resumed run stays in its folder."
        )
    if not (out / JOURNAL).is_file():
        raise UsageError(
            f"--resume {str(out)!r} has no {JOURNAL}: nothing to resume (a run of a given --candidate has no search)."
        )
    from lightning_dnc.search.journal import Journal, JournalCorruptError

    try:
        events = Journal(out / JOURNAL).read()
    except JournalCorruptError as err:
        raise UsageError(str(err)) from err
    if not events or events[0].get("event") != "header":
        raise UsageError(f"{str(out / JOURNAL)!r} does not start with a search header; it cannot be resumed.")
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

    from lightning_dnc.data import make_datamodule
    from lightning_dnc.data.factory import DATAMODULES

    data = str(options.data)
    is_npz = data.lower().endswith(".npz")
    if is_npz and not Path(data).is_file():
        raise UsageError(f"--data {data!r}: no such .npz file.")
    offered = {"val_split": options.val_split, "seed": options.seed, "root": options.root,
               "download": options.download, "augment": options.augment}
    target = None if is_npz else DATAMODULES.get(data.lower().replace("-", "_"))
    if is_npz:
        from lightning_dnc.data import NpzDataModule as target
    if target is None:
        raise UsageError(f"--data {data!r} is not a known dataset; use one of {list(DATAMODULES)} or a path to a .npz file.")
    accepted = inspect.signature(target.__init__).parameters
    datamodule = make_datamodule(data, **{k: v for k, v in offered.items() if k in accepted})
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


def run_fit(options: Namespace, console: Console, train_final: bool = True, resume: ResumeRequest | None = None,
            context: dict[str, Any] | None = None) -> int:
    """``fit`` (search + final training) and ``search`` (search only), new or resumed.

    ``context["out"]`` is set to the results folder once it is known (for the caller's messages).
    """
    from lightning_dnc.lightning.search_loop import run_search
    from lightning_dnc.search.lock import LockHeldError, RunLock

    plan = resolve_run(options, resume)
    if options.quiet:
        console = Console(highlight=False, force_terminal=False, force_interactive=False)
    if resume is not None and _nothing_to_do(plan.out, train_final):
        console.print(f"{str(plan.out)!r} is complete (search{' and final training' if train_final else ''} "
                      "done); nothing to do.")
        return 0
    lock = RunLock.for_journal(plan.out / JOURNAL)
    try:
        lock.acquire()
    except LockHeldError as err:
        raise UsageError(str(err)) from err
    try:
        folder = ResultsFolder.create(plan.out)
        if context is not None:
            context["out"] = plan.out
        if resume is None:
            folder.write_yaml("config.yaml", _settings_dict(options, plan.out))
        return _search_and_finish(plan, folder, console, train_final, run_search)
    finally:
        lock.release()


def _nothing_to_do(out: Path, train_final: bool) -> bool:
    """True when the run's search finished (``result.json``) and, for ``fit``, its final model was trained."""
    return (out / "result.json").is_file() and (not train_final or (out / "final.json").is_file())


def _search_and_finish(plan: RunPlan, folder: ResultsFolder, console: Console, train_final: bool,
                       run_search: Any) -> int:
    from lightning_dnc.results.final import train_final_model
    from lightning_dnc.results.report import write_report
    from lightning_dnc.search import SearchResult

    options = plan.options
    started = time.perf_counter()
    result: SearchResult | None = None
    if plan.candidate is None:
        verb = "Resuming" if plan.resume is not None else "Deep-n-Cheap search:"
        console.print(f"{verb} family {plan.family}, data {options.data}, wc {options.wc}, "
                      f"penalize {options.penalize}, budget {options.budget} -> {plan.out}")
        result = run_search(plan.tuner, plan.datamodule, plan.family, plan.hardware, console=console,
                            live=None if not options.quiet else False, lock_held=True)
        folder.write_text("result.json", result.to_json())
        best = dict(result.best_config)
    else:
        best = dict(plan.candidate)
    search_seconds = time.perf_counter() - started
    best.pop("epochs", None)
    folder.write_yaml("best.yaml", {"family": plan.family, "data": str(options.data), "epochs": plan.final_epochs,
                                    "candidate": best})
    final = None
    if train_final:
        console.print(f"Training the best configuration for {plan.final_epochs} epochs ...")
        final = train_final_model(best, plan.datamodule, plan.final_epochs, plan.hardware, seed=options.seed,
                                  checkpoint=folder.file("best.ckpt"))
        folder.write_text("final.json", json.dumps(final, indent=2))
    write_report(folder.path, result, final, search_seconds=search_seconds, wc=float(options.wc),
                 penalize=options.penalize, console=console)
    return 0


def run_report(options: Namespace, console: Console) -> int:
    """``report RUN_DIR``: re-rank a finished run for another trade-off, without training."""
    from lightning_dnc.results.report import write_report
    from lightning_dnc.search import SearchResult

    _choice("--penalize", options.penalize, PENALTIES)
    if options.wc is None or not options.wc >= 0:
        raise UsageError(f"--wc must be a number >= 0, got {options.wc!r}.")
    run_dir = Path(options.run_dir)
    source = run_dir / "result.json"
    if not source.is_file():
        raise UsageError(f"{str(run_dir)!r} is not a finished search folder (no result.json in it).")
    result = SearchResult.from_json(source.read_text(encoding="utf-8"))
    write_report(run_dir, result, None, search_seconds=None, wc=float(options.wc), penalize=options.penalize,
                 console=console, suffix=f"_wc{options.wc:g}_{options.penalize}")
    return 0


def _settings_dict(options: Namespace, out: Path) -> dict[str, Any]:
    data = options.as_dict()
    for key in NOT_SAVED:
        data.pop(key, None)
    data["out"] = str(out)  # resolved: a resume from another working directory finds the same folder
    return data


def _choice(flag: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UsageError(f"{flag} must be one of {list(allowed)}, got {value!r}.")


def _positive(flag: str, value: int | None, default: int) -> int:
    if value is None:
        return default
    if value < 1:
        raise UsageError(f"{flag} must be an integer >= 1, got {value!r}.")
    return int(value)


def _pair_or_value(name: str, value: Any) -> Any:
    if isinstance(value, list):
        if len(value) != 2:
            raise UsageError(f"--{name} takes two values [lo, hi], got {value!r}.")
        return tuple(value)
    return value

