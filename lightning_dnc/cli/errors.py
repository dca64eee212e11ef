"""Bad input on the command line, and the exit codes of a run."""

from __future__ import annotations

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_ABORTED = 3


class UsageError(ValueError):
    """Bad input from the user: one line on the console, exit code 2, nothing written."""


__all__ = ["EXIT_ABORTED", "EXIT_BAD_INPUT", "EXIT_FAILED", "UsageError"]
