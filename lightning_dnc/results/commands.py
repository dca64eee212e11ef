"""What ``fit``, ``search`` and ``report`` do; the parser lives in :mod:`lightning_dnc.cli`.

Every check of the user's input runs in :func:`resolve_run` before any file is written or any
candidate trains; its failures are :class:`UsageError` (exit code 2).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
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


class UsageError(ValueError):
    """Bad input from the user: one line on the console, exit code 2, nothing written."""


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


def resolve_run(options: Namespace) -> RunPlan:
    """Check every option, build the spaces, the tuner settings and the data; write nothing."""
    try:
        return _resolve_run(options)
    except UsageError:
        raise
    except (ValueError, TypeError, FileNotFoundError, KeyError) as err:
        raise UsageError(str(err).strip("'\"")) from err


def _resolve_run(options: Namespace) -> RunPlan:
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
    own, other = (CNN_LIMITS, MLP_LIMITS) if options.family == "cnn" else (MLP_LIMITS, CNN_LIMITS)
    misplaced = [f"--{name}" for name in other if options.get(name) is not None]
    if misplaced:
        raise UsageError(f"{', '.join(misplaced)} only apply to --family {'mlp' if options.family == 'cnn' else 'cnn'}.")
    limits = {name: _pair_or_value(name, options.get(name)) for name in own if options.get(name) is not None}
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
    candidate = None
    if options.candidate is not None:
        candidate = complete_config({**options.candidate, "family": options.family})
    out = check_output_folder(options.out, overwrite=options.overwrite)
    tuner = DeepNCheapTuner(
        wc=float(options.wc), penalize=options.penalize, search_epochs=search_epochs, top_k=options.top_k,
        seed=options.seed, space=space, training_space=training_space, family=options.family,
        journal=out / "trials.jsonl", progress=True, **budget_values,
    )
    datamodule = _load_data(options)
    hardware = {"accelerator": options.accelerator, "devices": options.devices, "precision": options.precision}
    return RunPlan(options, options.family, budget, search_epochs, final_epochs, tuner, datamodule, candidate,
                   out, hardware)


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


def run_fit(options: Namespace, console: Console, train_final: bool = True) -> int:
    """``fit`` (search + final training) and ``search`` (search only)."""
    from lightning_dnc.lightning.tuner import _run_search
    from lightning_dnc.results.final import train_final_model
    from lightning_dnc.results.report import write_report
    from lightning_dnc.search import SearchResult

    plan = resolve_run(options)
    if options.quiet:
        console = Console(highlight=False, force_terminal=False, force_interactive=False)
    folder = ResultsFolder.create(plan.out)
    folder.write_yaml("config.yaml", _settings_dict(options))
    started = time.perf_counter()
    result: SearchResult | None = None
    if plan.candidate is None:
        console.print(f"Deep-n-Cheap search: family {plan.family}, data {options.data}, wc {options.wc}, "
                      f"penalize {options.penalize}, budget {options.budget} -> {plan.out}")
        result = _run_search(plan.tuner, plan.datamodule, plan.family, plan.hardware, console=console,
                             live=None if not options.quiet else False)
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


def _settings_dict(options: Namespace) -> dict[str, Any]:
    data = options.as_dict()
    for key in ("config", "__path__", "overwrite"):
        data.pop(key, None)
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

