"""``python -m lightning_dnc.cli``: search, train, and report from the command line.

Subcommands
-----------
fit      search (unless ``--candidate`` gives a configuration), then train the best configuration
         for ``--epochs``, report validation and test accuracy and save the checkpoint.
search   the search only.
report   re-rank a finished run for another ``--wc``/``--penalize`` without training.

Every option can come from a YAML file (``--config search.yaml``) and be overridden on the
command line; ``--print_config`` prints the fully resolved settings, which ``--config`` accepts
back. Built on jsonargparse (the parser behind LightningCLI): LightningCLI itself instantiates one
model and one datamodule class, while our ``fit`` runs a search, a final training and a report,
so we use its parser directly.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

from lightning_dnc.results.budgets import BUDGETS

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def _add_search_options(parser: ArgumentParser, report_only: bool = False) -> None:
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with any of these options.")
    parser.add_argument("--wc", type=float, default=0.1,
                        help="Cost weight: 0 = accuracy only, 0.1 = balanced, 10 = cheapness first.")
    parser.add_argument("--penalize", type=str, default="t_tr",
                        help="Cost to penalise: t_tr (training seconds per epoch) or n_params.")
    if report_only:
        return
    parser.add_argument("--data", type=str, default="digits",
                        help="digits (embedded, offline), mnist, fashion_mnist, cifar10, cifar100, or a .npz path.")
    parser.add_argument("--family", type=str, default="cnn", help="Model family: cnn or mlp.")
    parser.add_argument("--budget", type=str, default="quick",
                        help=f"Search budget preset: {', '.join(BUDGETS)}; the options below override it.")
    parser.add_argument("--search_epochs", type=int | None, default=None,
                        help="Epochs per candidate during the search (budget's value when unset).")
    parser.add_argument("--epochs", type=int | None, default=None,
                        help="Epochs of the final training of the best configuration (budget's value when unset).")
    parser.add_argument("--prior_points", type=int | None, default=None, help="Sobol prior points per BO stage.")
    parser.add_argument("--steps", type=int | None, default=None, help="Bayesian optimisation steps per BO stage.")
    parser.add_argument("--explore", type=int | None, default=None, help="Random candidates scored per BO step.")
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
    parser.add_argument("--augment", type=bool, default=True, help="Augment image training data (SPEC §2).")
    parser.add_argument("--root", type=str, default="data", help="Folder of downloaded torchvision data sets.")
    parser.add_argument("--download", type=bool, default=True, help="Download torchvision data sets when missing.")
    parser.add_argument("--accelerator", type=str, default="auto", help="cpu, gpu, mps or auto.")
    parser.add_argument("--devices", type=int, default=1, help="Devices per candidate.")
    parser.add_argument("--precision", type=str | None, default=None, help="Lightning precision, e.g. 16-mixed.")
    parser.add_argument("--candidate", type=dict | None, default=None,
                        help="A found configuration (as in best.yaml): skip the search and train it.")
    parser.add_argument("--out", type=str | None, default=None, help="Results folder (default runs/<timestamp>).")
    parser.add_argument("--overwrite", type=bool, default=False, help="Allow writing into a non-empty --out folder.")
    parser.add_argument("--quiet", type=bool, default=False, help="Plain lines only, no live panel.")
    parser.add_argument("--debug", type=bool, default=False, help="Show full tracebacks.")


def build_parser() -> ArgumentParser:
    """The parser with its three subcommands."""
    parser = ArgumentParser(
        prog="python -m lightning_dnc.cli",
        description="Deep-n-Cheap: search cheap, accurate CNN/MLP models and their training settings.",
        exit_on_error=True,
    )
    subcommands = parser.add_subcommands(required=True, dest="command")
    fit = ArgumentParser(description="Search, then train the best configuration and save it.")
    _add_search_options(fit)
    subcommands.add_subcommand("fit", fit, help="Search, then train and save the best model.")
    search = ArgumentParser(description="Run the search only and save its results.")
    _add_search_options(search)
    subcommands.add_subcommand("search", search, help="Run the search only.")
    report = ArgumentParser(description="Re-rank a finished run for another trade-off, without training.")
    report.add_argument("run_dir", type=str, help="A results folder written by fit or search.")
    _add_search_options(report, report_only=True)
    report.add_argument("--quiet", type=bool, default=False, help="Plain output.")
    report.add_argument("--debug", type=bool, default=False, help="Show full tracebacks.")
    subcommands.add_subcommand("report", report, help="Re-rank a finished run without training.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    command = args.command
    options: Namespace = args[command]
    debug = bool(getattr(options, "debug", False))
    from rich.console import Console

    console = Console(highlight=False)
    from lightning_dnc.results import commands

    try:
        if command == "report":
            return commands.run_report(options, console)
        return commands.run_fit(options, console, train_final=(command == "fit"))
    except commands.UsageError as err:
        if debug:
            raise
        console.print(f"[bold red]error:[/] {err}", soft_wrap=True)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/]")
        return 130
    except Exception as err:  # noqa: BLE001 - one clear line unless --debug
        if debug:
            raise
        console.print(f"[bold red]failed:[/] {type(err).__name__}: {err} (run again with --debug for the traceback)",
                      soft_wrap=True)
        return EXIT_FAILED


def _entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    _entry()


__all__: list[Any] = ["build_parser", "main"]
