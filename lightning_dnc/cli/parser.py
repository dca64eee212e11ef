"""The command line's parser: options, subcommands, YAML config files and ``--resume`` re-parsing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Optional

from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

from lightning_dnc.budgets import BUDGET_CHOICES
from lightning_dnc.cli.errors import UsageError
from lightning_dnc.vocabulary import LOGGERS, MODELS, STRATEGIES

BINARY_MAGIC = (b"\x80", b"PK\x03\x04", b"\x1f\x8b")  # pickle (protocol >= 2), zip (torch.save), gzip


def add_search_options(parser: ArgumentParser, report_only: bool = False) -> None:
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with any of these options.")
    parser.add_argument("--wc", type=float, default=0.1,
                        help="Cost weight: 0 = accuracy only, 0.1 = balanced, 10 = cheapness first.")
    parser.add_argument("--penalize", type=str, default="t_tr",
                        help="Cost to penalise: t_tr (training seconds per epoch), n_params, flops (inference FLOPs "
                             "per sample), latency (inference seconds per sample at batch 1) or memory (peak "
                             "training bytes).")
    parser.add_argument("--t_tr_mode", type=str | None, default=None,
                        help="How t_tr is measured: step (the training step timed in a tight loop; default for a new "
                             "run) or epoch (the loop's mean epoch, SPEC §1). Unset on --resume: the run's own.")
    parser.add_argument("--pareto_costs", type=list[str] | None, default=None,
                        help="Costs of the report's Pareto front besides the validation error (default: the "
                             "penalised cost and n_params).")
    if report_only:
        return
    parser.add_argument("--t_tr_ref", type=float | None, default=None,
                        help="Seconds per epoch that make f_c = 1 (default: the first candidate's t_tr).")
    parser.add_argument("--n_params_ref", type=float | None, default=None,
                        help="Parameter count that makes f_c = 1 (default: the largest network of the space).")
    parser.add_argument("--data", type=str, default="digits",
                        help="digits (embedded, offline), mnist, fashion_mnist, cifar10, cifar100, or a .npz path.")
    parser.add_argument("--family", type=str, default="cnn", help="Model family: cnn or mlp.")
    parser.add_argument("--budget", type=Literal[BUDGET_CHOICES], default="auto",  # type: ignore[valid-type]
                        help="Search budget preset: quick (minutes on a CPU with small data), paper (SPEC §5, "
                             "hours on a GPU) or auto (quick on a CPU or with fewer than 10,000 training samples, "
                             "else paper); the options below override it.")
    parser.add_argument("--threads", type=str, default="auto",
                        help="Torch threads of each candidate on a CPU: auto (race the thread counts on the "
                             "candidate's first batches and keep the fastest now) or a number (bit-identical reruns).")
    parser.add_argument("--max_trials", type=int | None, default=None,
                        help="Stop the search after this many trials (then rank and train the best so far).")
    parser.add_argument("--max_time", type=str | None, default=None,
                        help='Start no new trial after this wall time: "90s", "30m", "1h", "1h30m", DD:HH:MM:SS or '
                             "seconds (then rank and train the best so far).")
    parser.add_argument("--patience", type=int | None, default=None,
                        help="Stop a candidate after this many epochs without a better val_acc (val_loss for "
                             "regression); unset: train every epoch.")
    parser.add_argument("--strategy", type=Optional[Literal[STRATEGIES]], default=None,  # type: ignore[valid-type]
                        help="Which stages run: paper (SPEC §5 exactly), joint, revisit or train-first "
                             "(default: the run's own on --resume, else the package default).")
    parser.add_argument("--model", type=Optional[Literal[MODELS]], default=None,  # type: ignore[valid-type]
                        help="What the BO stages' GP learns: scalar (one GP on the loss, the paper's) or composite "
                             "(a GP on the error and a cost model; not with --strategy paper) (default: the run's "
                             "own on --resume, else the package default).")
    parser.add_argument("--fidelity", type=str, default="none",
                        help="none: every candidate trains --search_epochs (the paper); asha: candidates start at "
                             "--min_epochs and the best 1/--reduction_factor of each rung go on from their checkpoint.")
    parser.add_argument("--min_epochs", type=int | None, default=None,
                        help="--fidelity asha: epochs of the lowest rung (default search_epochs / eta^3, >= 1).")
    parser.add_argument("--reduction_factor", type=int, default=3,
                        help="--fidelity asha: rungs at min_epochs * eta^k up to --search_epochs (eta >= 2).")
    parser.add_argument("--rung_model", type=str | None, default=None,
                        help="--fidelity asha: the point each stage's GP sees per candidate: highest (its highest "
                             "rung's result), shifted (that, moved to the top rung's scale) or top (top-rung results "
                             "only); default: the package's.")
    parser.add_argument("--search_epochs", type=int | None, default=None,
                        help="Epochs per candidate during the search (budget's value when unset).")
    parser.add_argument("--epochs", type=int | None, default=None,
                        help="Epochs of the final training of the best configuration (budget's value when unset).")
    parser.add_argument("--prior_points", type=int | None, default=None, help="Sobol prior points per BO stage.")
    parser.add_argument("--steps", type=int | None, default=None, help="Bayesian optimisation steps per BO stage.")
    parser.add_argument("--explore", type=int | None, default=None, help="Random candidates scored per BO step.")
    parser.add_argument("--training_prior_points", type=int | None, default=None,
                        help="Stage-3 Sobol prior points (--prior_points when unset).")
    parser.add_argument("--training_steps", type=int | None, default=None,
                        help="Stage-3 BO steps (--steps when unset).")
    parser.add_argument("--top_k", type=int, default=1, help="Number of best configurations kept.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the search and of the final training.")
    parser.add_argument("--num_conv_layers", type=list[int] | None, default=None,
                        help="CNN depth range [lo, hi] (SPEC default [4, 16]).")
    parser.add_argument("--channels_first", type=list[int] | None, default=None,
                        help="CNN first-layer channels range [lo, hi] (SPEC default [16, 64]).")
    parser.add_argument("--channels_upper", type=int | None, default=None, help="CNN channel cap (SPEC default 512).")
    parser.add_argument("--num_hidden_layers", type=list[int] | None, default=None,
                        help="MLP hidden layers range [lo, hi] (SPEC default [0, 2]).")
    parser.add_argument("--hidden_nodes", type=list[int] | None, default=None,
                        help="MLP hidden width range [lo, hi] (SPEC default [20, 400]).")
    parser.add_argument("--lr_range", type=list[float] | None, default=None,
                        help="Learning-rate range [lo, hi] (SPEC default [1e-5, 1e-1]).")
    parser.add_argument("--weight_decay_range", type=list[float] | None, default=None,
                        help="Weight-decay range [lo, hi] (SPEC default [1e-6, 1e-3]).")
    parser.add_argument("--batch_size_range", type=list[int] | None, default=None,
                        help="Batch-size range [lo, hi] (SPEC default [32, 512]).")
    parser.add_argument("--val_split", type=float, default=0.2, help="Fraction of the training set used for validation.")
    parser.add_argument("--num_classes", type=int | None, default=None,
                        help="Classes of a .npz dataset (default: largest label + 1, which must be the number of "
                             "distinct labels).")
    parser.add_argument("--augment", type=bool | Literal["auto"], default="auto",
                        help="Augment image training data (SPEC §2): true, false, or auto (CNN only, as the paper).")
    parser.add_argument("--root", type=str, default="data", help="Folder of downloaded torchvision data sets.")
    parser.add_argument("--download", type=bool, default=True, help="Download torchvision data sets when missing.")
    parser.add_argument("--accelerator", type=str, default="auto", help="cpu, gpu, mps or auto.")
    parser.add_argument("--devices", type=int, default=1, help="Devices per candidate.")
    parser.add_argument("--precision", type=str | None, default=None, help="Lightning precision, e.g. 16-mixed.")
    parser.add_argument("--stage2_order", type=list[str] | None, default=None,
                        help="Stage-2 grid groups in order (default ac ds bn do sc for cnn, ac do for mlp; [] skips).")
    parser.add_argument("--candidate", type=dict | None, default=None,
                        help="A found configuration (as in best.yaml): skip the search and train it.")
    parser.add_argument("--resume", type=str | None, default=None,
                        help="Continue the stopped search in this results folder (its config.yaml + trials.jsonl).")
    parser.add_argument("--force", type=bool, default=False,
                        help="With --resume: accept a changed search space or dataset.")
    parser.add_argument("--max_consecutive_failures", type=int, default=5,
                        help="Stop the search after this many failed candidates in a row.")
    parser.add_argument("--retry_oom", type=bool, default=True,
                        help="Retry a candidate that ran out of memory once at half its batch size.")
    parser.add_argument("--executor", type=str, default="inprocess",
                        help="Where candidates train: inprocess or ray.")
    parser.add_argument("--max_concurrent", type=int, default=1,
                        help="Candidates trained at once (--executor ray).")
    parser.add_argument("--ray_address", type=str | None, default=None,
                        help="Ray cluster to join, e.g. auto (--executor ray); a local one is started otherwise.")
    parser.add_argument("--logger", type=Literal[LOGGERS], default="csv",  # type: ignore[valid-type]
                        help="Where every candidate's curves go, one version per trial under <out>/logs: csv, "
                             "tensorboard (needs the tensorboard extra) or none.")
    parser.add_argument("--out", type=str | None, default=None, help="Results folder (default runs/<timestamp>).")
    parser.add_argument("--overwrite", type=bool, default=False, help="Allow writing into a non-empty --out folder.")
    parser.add_argument("--quiet", type=bool, default=False, help="Plain lines only: no live panel, no box tables.")
    parser.add_argument("--debug", type=bool, default=False, help="Show full tracebacks.")


def build_parser() -> ArgumentParser:
    """The parser with its three subcommands.

    Its errors raise ``jsonargparse.ArgumentError`` (no usage text, no exit): the entry point
    prints them as one line (:func:`~lightning_dnc.cli.messages.parser_error_line`) and exits
    with code 2. ``--help`` and ``--print_config`` print and exit as usual.
    """
    parser = ArgumentParser(
        prog="python -m lightning_dnc.cli",
        description="Deep-n-Cheap: search cheap, accurate CNN/MLP models and their training settings.",
        exit_on_error=False,
    )
    subcommands = parser.add_subcommands(required=True, dest="command")
    fit = ArgumentParser(description="Search, then train the best configuration and save it.", exit_on_error=False)
    add_search_options(fit)
    subcommands.add_subcommand("fit", fit, help="Search, then train and save the best model.")
    search = ArgumentParser(description="Run the search only and save its results.", exit_on_error=False)
    add_search_options(search)
    subcommands.add_subcommand("search", search, help="Run the search only.")
    report = ArgumentParser(description="Re-rank a run (finished, interrupted or still running) for another "
                                        "trade-off, without training.", exit_on_error=False)
    report.add_argument("run_dir", type=str, help="A results folder written by fit or search (finished, "
                                                  "interrupted or still running; the latter two are only read).")
    add_search_options(report, report_only=True)
    report.add_argument("--quiet", type=bool, default=False, help="Plain output.")
    report.add_argument("--debug", type=bool, default=False, help="Show full tracebacks.")
    subcommands.add_subcommand("report", report, help="Re-rank a run without training.")
    return parser


def option_names(parser: ArgumentParser, command: str | None) -> list[str]:
    """The option names of ``command`` (all commands' when None), without dashes: ``["config", "wc", ...]``."""
    action = parser._subcommands_action  # jsonargparse keeps the subcommand parsers here
    parsers = action._name_parser_map if action is not None else {}
    chosen = [parsers[command]] if command in parsers else list(parsers.values())
    names: dict[str, None] = {}
    for sub in chosen:
        for act in sub._actions:
            for flag in act.option_strings:
                if flag.startswith("--") and not flag.endswith("+") and flag not in ("--help", "--print_config"):
                    names[flag[2:]] = None
    return list(names)


def command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (the first of fit/search/report), or None."""
    return next((token for token in argv if token in ("fit", "search", "report")), None)


def debug_requested(argv: Sequence[str]) -> bool:
    """``--debug true`` before the parser ran (so that errors while parsing can show a traceback)."""
    for i, token in enumerate(argv):
        value = token.split("=", 1)[1] if token.startswith("--debug=") else None
        if token == "--debug" and i + 1 < len(argv):
            value = argv[i + 1]
        if value is not None:
            return value.lower() in ("true", "1", "yes")
    return False


def check_config_files(argv: Sequence[str]) -> None:
    """Refuse ``--config`` files that are not text (pickles, checkpoints) before jsonargparse reads them."""
    for i, token in enumerate(argv):
        if token == "--config" and i + 1 < len(argv):
            value = argv[i + 1]
        elif token.startswith("--config="):
            value = token.split("=", 1)[1]
        else:
            continue
        path = Path(value)
        if not path.is_file():
            if value.lstrip().startswith(("{", "[")) or ":" in value and "\n" in value:
                continue  # inline YAML/JSON
            raise UsageError(f"--config {value!r}: no such file; pass a YAML file such as a run's best.yaml.")
        _require_text_yaml("--config", path)


def _require_text_yaml(flag: str, path: Path) -> None:
    head = path.read_bytes()[:4096]
    binary = head.startswith(BINARY_MAGIC) or b"\x00" in head
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        binary = binary or err.start < len(head) - 4  # a cut multi-byte character at the end is fine
    if binary:
        raise UsageError(
            f"{flag} {str(path)!r} is a binary file (a pickle or checkpoint?), not YAML. {flag} takes a YAML file "
            "such as a run's config.yaml or best.yaml; lightning-dnc never unpickles files."
        )


def resume_options(parser: ArgumentParser, argv: list[str], command: str,
                    options: Namespace) -> tuple[Namespace, Any]:
    """Re-parse with the run's ``config.yaml`` first and the command line on top of it."""
    from lightning_dnc.cli.plan import ResumeRequest

    if options.get("config"):
        raise UsageError("--resume uses the run's own config.yaml; do not combine it with --config.")
    run_dir = Path(options.resume).expanduser()
    if run_dir.is_symlink():
        raise UsageError(
            f"--resume {options.resume!r} is a symbolic link; pass the real folder ({str(run_dir.resolve())!r})."
        )
    if not run_dir.is_dir():
        what = "does not exist" if not run_dir.exists() else "is a file, not a results folder"
        raise UsageError(f"--resume {options.resume!r} {what}; pass the results folder of a stopped fit/search "
                         "(it holds config.yaml and trials.jsonl). Checkpoints are never loaded.")
    settings = run_dir / "config.yaml"
    if not settings.is_file():
        raise UsageError(f"--resume {options.resume!r} has no config.yaml; it is not a lightning-dnc results folder.")
    _require_text_yaml("--resume", settings)
    position = argv.index(command)
    rest = argv[position + 1:]
    explicit = {token[2:].split("=", 1)[0] for token in rest if token.startswith("--")}
    args = parser.parse_args([*argv[:position], command, "--config", str(settings), *rest])
    import yaml

    saved = yaml.safe_load(settings.read_text(encoding="utf-8"))
    if not isinstance(saved, dict):
        raise UsageError(f"{str(settings)!r} does not hold the settings of a run (expected a mapping).")
    return args[command], ResumeRequest(run_dir=run_dir.resolve(), explicit=explicit, saved=saved)
