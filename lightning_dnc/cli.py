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

Reliability
-----------
- ``fit --resume RUN_DIR`` (or ``search --resume RUN_DIR``) continues a stopped search from its
  ``config.yaml`` and ``trials.jsonl``: finished trials are never re-run, an interrupted one is
  re-run once, the proposals are those of an uninterrupted run. Options given next to
  ``--resume`` override the saved ones; a changed search space or dataset is refused unless
  ``--force true``, a changed budget, seed or objective always. Resuming a finished run does
  nothing (``fit`` trains the final model if that had not happened yet).
- Ctrl+C and SIGTERM stop the run: the running trial is journaled as interrupted and the process
  exits with 130 (SIGINT) or 143 (SIGTERM) after one line saying how to resume.
- ``--max_consecutive_failures N`` failed candidates in a row stop the search (exit code 3) with
  a summary; ``--retry_oom`` retries an out-of-memory candidate once at half its batch size.
- Exit codes: 0 done, 1 failed, 2 bad input (nothing written), 3 too many failed candidates,
  130/143 interrupted.
- ``--config`` and ``config.yaml`` are read as YAML with a safe loader (no Python tags); binary
  files (pickles, checkpoints) are refused before parsing; nothing is ever unpickled.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

from lightning_dnc.results.budgets import BUDGETS

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_ABORTED = 3
BINARY_MAGIC = (b"\x80", b"PK\x03\x04", b"\x1f\x8b")  # pickle (protocol >= 2), zip (torch.save), gzip


class RunInterrupted(BaseException):
    """Raised in the main thread by the CLI's SIGINT/SIGTERM handler.

    A ``BaseException`` but not a ``KeyboardInterrupt``: Lightning turns a ``KeyboardInterrupt`` in
    ``fit`` into ``SystemExit(1)`` and ignores further Ctrl+C, while other exceptions pass through
    its clean-up unchanged, so the search sees the signal as it is.
    """

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"received {signal.Signals(self.signum).name}")


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
    parser.add_argument("--augment", type=bool, default=True, help="Augment image training data (SPEC §2).")
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
    from rich.console import Console

    from lightning_dnc.results import commands

    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console(highlight=False)
    debug = _debug_requested(argv)
    try:
        _check_config_files(argv)
        parser = build_parser()
        args = parser.parse_args(argv)
        command = args.command
        options: Namespace = args[command]
        resume = None
        if command != "report" and options.resume is not None:
            options, resume = _resume_options(parser, argv, command, options)
    except commands.UsageError as err:
        if debug:
            raise
        console.print(f"[bold red]error:[/] {err}", soft_wrap=True)
        return EXIT_BAD_INPUT
    debug = bool(getattr(options, "debug", False))
    context: dict[str, Any] = {}
    try:
        with _signals_raise():
            if command == "report":
                return commands.run_report(options, console)
            return commands.run_fit(options, console, train_final=(command == "fit"), resume=resume, context=context)
    except commands.UsageError as err:
        if debug:
            raise
        console.print(f"[bold red]error:[/] {err}", soft_wrap=True)
        return EXIT_BAD_INPUT
    except (RunInterrupted, KeyboardInterrupt, SystemExit) as err:
        signum = err.signum if isinstance(err, RunInterrupted) else signal.SIGINT
        name = signal.Signals(signum).name
        hint = _resume_hint(command, context)
        console.print(f"[bold red]interrupted[/] ({name}): the running trial is recorded as interrupted and the "
                      f"journal is saved.{hint}", soft_wrap=True)
        return 128 + int(signum)
    except Exception as err:  # noqa: BLE001 - one clear line unless --debug
        if debug:
            raise
        from lightning_dnc.lightning.tuner import SearchAborted

        hint = _resume_hint(command, context)
        if isinstance(err, SearchAborted):
            console.print(f"[bold red]aborted:[/] {err}{hint}", soft_wrap=True)
            return EXIT_ABORTED
        console.print(f"[bold red]failed:[/] {type(err).__name__}: {err} (run again with --debug for the traceback)"
                      f"{hint}", soft_wrap=True)
        return EXIT_FAILED


def _debug_requested(argv: Sequence[str]) -> bool:
    """``--debug true`` before the parser ran (so that errors while parsing can show a traceback)."""
    for i, token in enumerate(argv):
        value = token.split("=", 1)[1] if token.startswith("--debug=") else None
        if token == "--debug" and i + 1 < len(argv):
            value = argv[i + 1]
        if value is not None:
            return value.lower() in ("true", "1", "yes")
    return False


def _resume_hint(command: str, context: dict[str, Any]) -> str:
    """`` Resume with: ...`` when the run got as far as writing a journal, else ``""``."""
    out = context.get("out")
    if command == "report" or out is None or not (Path(out) / "trials.jsonl").is_file():
        return ""
    return f" Resume with: python -m lightning_dnc.cli {command} --resume {out}"


def _check_config_files(argv: Sequence[str]) -> None:
    """Refuse ``--config`` files that are not text (pickles, checkpoints) before jsonargparse reads them."""
    from lightning_dnc.results.commands import UsageError

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
    from lightning_dnc.results.commands import UsageError

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


def _resume_options(parser: ArgumentParser, argv: list[str], command: str,
                    options: Namespace) -> tuple[Namespace, Any]:
    """Re-parse with the run's ``config.yaml`` first and the command line on top of it."""
    from lightning_dnc.results.commands import ResumeRequest, UsageError

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


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`RunInterrupted` in the main thread (once; repeats are ignored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if received:
            return  # already stopping: let the clean-up finish
        received.append(signum)
        raise RunInterrupted(signum)

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


def _entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    _entry()


__all__: list[Any] = ["RunInterrupted", "build_parser", "main"]
