"""Entry point of the command line: parse, run a command, turn every outcome into one line and an exit code.

Results go to stdout; errors are one line each on stderr.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from jsonargparse import Namespace

from lightning_dnc.cli.errors import EXIT_ABORTED, EXIT_BAD_INPUT, EXIT_FAILED, UsageError
from lightning_dnc.cli.messages import cli_spelling, one_line, parser_error_line
from lightning_dnc.cli.parser import (build_parser, check_config_files, command_of, debug_requested, option_names,
                                      resume_options)
from lightning_dnc.vocabulary import JOURNAL_NAME


class RunInterrupted(BaseException):
    """Raised in the main thread by the CLI's SIGINT/SIGTERM handler.

    A ``BaseException`` but not a ``KeyboardInterrupt``: Lightning turns a ``KeyboardInterrupt`` in
    ``fit`` into ``SystemExit(1)`` and ignores further Ctrl+C, while other exceptions pass through
    its clean-up unchanged, so the search sees the signal as it is.
    """

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"received {signal.Signals(self.signum).name}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code.

    Results and progress go to stdout. Every error is one line on stderr: a bad option, value or
    config file (``error:``, exit code 2, nothing written), a failed run (``failed:``, 1) or a
    search stopped by failing candidates (``aborted:``, 3). The usage text is shown only by
    ``--help``.
    """
    from jsonargparse import ArgumentError
    from rich.console import Console

    from lightning_dnc.cli import commands

    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console(highlight=False)
    errors = Console(stderr=True, highlight=False)
    debug = debug_requested(argv)
    parser = build_parser()
    command = command_of(argv)
    try:
        check_config_files(argv)
        args = parser.parse_args(argv)
        command = args.command
        options: Namespace = args[command]
        resume = None
        if command != "report" and options.resume is not None:
            options, resume = resume_options(parser, argv, command, options)
    except ArgumentError as err:
        if debug:
            raise
        _print_error(errors, "error", parser_error_line(str(err), command, option_names(parser, command), argv))
        return EXIT_BAD_INPUT
    except UsageError as err:
        if debug:
            raise
        _print_error(errors, "error", cli_spelling(str(err), option_names(parser, command)))
        return EXIT_BAD_INPUT
    debug = bool(getattr(options, "debug", False))
    context: dict[str, Any] = {}
    try:
        with _signals_raise(), _setup_warnings_as_lines(console):
            if command == "report":
                return commands.run_report(options, console)
            return commands.run_fit(options, console, train_final=(command == "fit"), resume=resume, context=context)
    except UsageError as err:
        if debug:
            raise
        _print_error(errors, "error", cli_spelling(str(err), option_names(parser, command)))
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
        from lightning_dnc.executors import SearchAborted

        hint = _resume_hint(command, context)
        if isinstance(err, SearchAborted):
            _print_error(errors, "aborted", f"{one_line(str(err))}{hint}")
            return EXIT_ABORTED
        _print_error(errors, "failed", f"{type(err).__name__}: {one_line(str(err))} (run again with --debug for the "
                                       f"traceback){hint}")
        return EXIT_FAILED


def _print_error(errors: Any, label: str, message: str) -> None:
    """``label: message`` as one line on the error console (the message is never read as markup)."""
    from rich.markup import escape

    errors.print(f"[bold red]{label}:[/] {escape(one_line(message))}", soft_wrap=True)


def _resume_hint(command: str, context: dict[str, Any]) -> str:
    """`` Resume with: ...`` when the run got as far as writing a journal, else ``""``."""
    out = context.get("out")
    if command == "report" or out is None or not (Path(out) / JOURNAL_NAME).is_file():
        return ""
    return f" Resume with: python -m lightning_dnc.cli {command} --resume {out}"


@contextlib.contextmanager
def _setup_warnings_as_lines(console: Any) -> Iterator[None]:
    """Show :class:`~lightning_dnc.validation.SetupWarning` as one ``warning:`` line each (others unchanged)."""
    import warnings

    from lightning_dnc.validation import SetupWarning

    previous = warnings.showwarning

    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        if issubclass(category, SetupWarning):
            console.print(f"[bold yellow]warning:[/] {message}", soft_wrap=True, highlight=False)
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


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


def run() -> None:
    """Console-script entry: exit with :func:`main`'s code."""
    sys.exit(main())


__all__ = ["RunInterrupted", "main", "run"]
