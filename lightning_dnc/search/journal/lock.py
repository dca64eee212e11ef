"""A lock file that stops two searches from writing the same journal.

The lock is a small JSON file (``{"pid": ..., "host": ..., "created": ...}``) created next to the
journal with ``O_CREAT | O_EXCL``, so exactly one process wins. A lock whose process is gone (same
host, pid not alive) is stale: it is moved aside and taken over, with a warning. A lock from
another host is never taken over automatically (its pid means nothing here); remove it by hand
when that search is known to be dead.
"""

from __future__ import annotations

import contextlib

import json
import os
import socket
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any


class LockHeldError(RuntimeError):
    """Another live search holds the lock of this journal."""


class StaleLockWarning(RuntimeWarning):
    """A lock left by a dead process was taken over."""


class RunLock:
    """An exclusive, process-level lock stored in the file ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        The lock file, e.g. ``run_dir / "trials.jsonl.lock"``.

    Examples
    --------
    >>> with RunLock(tmp_path / "trials.jsonl.lock"):   # doctest: +SKIP
    ...     run_the_search()
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._held = False

    @classmethod
    def for_journal(cls, journal_path: str | os.PathLike[str]) -> RunLock:
        """The lock of a journal: ``<journal>.lock`` beside it."""
        journal_path = Path(journal_path)
        return cls(journal_path.with_name(journal_path.name + ".lock"))

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._held

    def owner(self) -> dict[str, Any] | None:
        """The lock file's content, or None when there is no (readable) lock."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def held_by_another_process(self) -> bool:
        """True when a live process other than this object holds the lock (always for another host's lock).

        Only reads the lock file: takes nothing and never moves a stale lock aside, so a reader
        (``report``) can ask while a search runs.
        """
        if self._held:
            return False
        owner = self.owner()
        return owner is not None and _alive(owner)

    def acquire(self) -> RunLock:
        """Take the lock, taking over a stale one.

        Raises
        ------
        LockHeldError
            When a live process (or one on another host) holds it; the message names the pid,
            the host and what to do.
        """
        if self._held:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._try_create():
                self._held = True
                return self
            owner = self.owner()
            if owner is None:
                # Being written by its creator right now, or garbage: give a creator a moment.
                if time.time() - _mtime(self.path) < 2.0:
                    time.sleep(0.2)
                    continue
            elif _alive(owner):
                raise LockHeldError(
                    f"{str(self.path.parent)!r} is in use by another search (pid {owner.get('pid')!r} on host "
                    f"{owner.get('host')!r}, lock file {str(self.path)!r}). Wait for it to finish or stop it; if "
                    "that process is gone, delete the lock file."
                )
            self._move_aside(owner)
        raise LockHeldError(f"Could not take the lock {str(self.path)!r}; another process keeps re-creating it.")

    def release(self) -> None:
        """Remove the lock file if this object holds it (idempotent)."""
        if not self._held:
            return
        self._held = False
        owner = self.owner()
        if owner is not None and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    # -- pieces ---------------------------------------------------------------------------------
    def _try_create(self) -> bool:
        content = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "created": time.time()})
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        return True

    def _move_aside(self, owner: dict[str, Any] | None) -> None:
        aside = self.path.with_name(f"{self.path.name}.stale-{os.getpid()}")
        try:
            os.replace(self.path, aside)  # atomic: of two processes taking over, one moves it
        except FileNotFoundError:
            return
        aside.unlink(missing_ok=True)
        who = "an unreadable lock" if owner is None else f"pid {owner.get('pid')!r}, no longer running"
        warnings.warn(f"Took over the stale lock {str(self.path)!r} ({who}).", StaleLockWarning, stacklevel=4)


def _alive(owner: dict[str, Any]) -> bool:
    """True when the lock's process may still be running (always True for another host)."""
    if owner.get("host") != socket.gethostname():
        return True
    pid = owner.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return True  # another search in this very process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    """A killed child not yet reaped still answers ``kill(pid, 0)``; its /proc state is ``Z``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
