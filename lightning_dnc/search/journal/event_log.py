"""Append-only JSON-lines journal of a search: one event per line, durable before it counts.

Events
------
``{"event": "header", "version": 1, "package_version": ..., "seed": ..., "settings": {...},
"objective": {...}, "space": {...}, "training_space": {...}}``
    First line: everything needed to rebuild the search (spaces as their ``to_dict()``).
``{"event": "proposed", "trial_id": i, "stage": s, "group": g, "config": {...}}``
    Written before the proposal is handed out.
``{"event": "finished", "trial_id": i, "evaluation": {...}}``
    Written before the search state changes (``Evaluation.to_dict()``).

Durability rule
---------------
A record is committed once its line, *including* the final ``"\\n"``, is on disk: each append is
one write, then ``flush`` and ``os.fsync``. A last line without its newline is a torn write (the
process died mid-append) and was never acknowledged: readers ignore it, and the next append moves
it into ``<file>.corrupt`` (with a warning) and truncates the journal to the last newline, so a
new record is never glued to it. A line that is not valid JSON anywhere else is a hard
:class:`JournalCorruptError` naming the file and line.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning_dnc.vocabulary import JOURNAL_NAME

JOURNAL_VERSION = 1
EVENTS = ("header", "proposed", "finished")


class JournalCorruptError(ValueError):
    """A committed journal line is not a valid event (not a torn tail: those are tolerated)."""


class TornJournalWarning(RuntimeWarning):
    """A torn last line was found and moved aside."""


class Journal:
    """A JSON-lines event log at ``path`` (created on the first append).

    Parameters
    ----------
    path : str or os.PathLike
        The journal file, e.g. ``run_dir / "journal.jsonl"``.

    Examples
    --------
    >>> journal = Journal(tmp_path / "journal.jsonl")          # doctest: +SKIP
    >>> journal.append({"event": "proposed", "trial_id": 0})   # doctest: +SKIP
    >>> journal.read()                                          # doctest: +SKIP
    [{'event': 'proposed', 'trial_id': 0}]
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def corrupt_path(self) -> Path:
        """Where torn tails are moved: ``<file>.corrupt``."""
        return self.path.with_name(self.path.name + ".corrupt")

    def exists(self) -> bool:
        """True when the file exists and holds at least one committed event."""
        return bool(self.read()) if self.path.exists() else False

    def append(self, event: Mapping[str, Any]) -> None:
        """Append one event durably (one write, flush, fsync).

        Parameters
        ----------
        event : dict
            A JSON-serialisable dict with an ``"event"`` key from :data:`EVENTS`.

        Raises
        ------
        ValueError
            If the event is not a dict with a known ``"event"`` or holds NaN/inf or non-JSON data.
        OSError
            From the file system (e.g. disk full); the torn line it may leave is repaired by the
            next append.
        """
        if not isinstance(event, Mapping) or event.get("event") not in EVENTS:
            raise ValueError(f"A journal event must be a dict with 'event' in {list(EVENTS)}, got {event!r}.")
        try:
            line = json.dumps(dict(event), sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as err:
            kind = event.get("event")
            raise ValueError(f"Journal event {kind!r} is not plain JSON data (no NaN/inf): {err}") from err
        data = (line + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_torn_tail()
        with open(self.path, "ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    def read(self) -> list[dict[str, Any]]:
        """The committed events, in order (a torn last line is ignored).

        Raises
        ------
        FileNotFoundError
            If the journal does not exist.
        JournalCorruptError
            If a committed line is not a JSON object with a known ``"event"``; the message names
            the file and the 1-indexed line.
        """
        if not self.path.exists():
            raise FileNotFoundError(f"No journal at {str(self.path)!r}; nothing to read or resume.")
        raw = self.path.read_bytes()
        end = raw.rfind(b"\n") + 1  # bytes after the last newline are an unacknowledged torn write
        events: list[dict[str, Any]] = []
        for number, line in enumerate(raw[:end].split(b"\n")[:-1], start=1):
            if not line.strip():
                continue
            events.append(self._parse(line, number))
        return events

    def _parse(self, line: bytes, number: int) -> dict[str, Any]:
        try:
            event = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise JournalCorruptError(
                f"Journal {str(self.path)!r} line {number} is not valid JSON ({err}); the file was changed by "
                "something other than lightning-dnc. Repair or remove that line to resume."
            ) from None
        if not isinstance(event, dict) or event.get("event") not in EVENTS:
            raise JournalCorruptError(
                f"Journal {str(self.path)!r} line {number} is not a journal event (needs 'event' in "
                f"{list(EVENTS)}): {line[:200]!r}."
            )
        return event

    def _repair_torn_tail(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb+") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size == 0:
                return
            fh.seek(size - 1)
            if fh.read(1) == b"\n":
                return
            fh.seek(0)
            raw = fh.read()
            end = raw.rfind(b"\n") + 1
            with open(self.corrupt_path, "ab") as aside:
                aside.write(raw[end:] + b"\n")
                aside.flush()
                os.fsync(aside.fileno())
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
        warnings.warn(
            f"Journal {str(self.path)!r} ended with a torn line ({size - end} bytes, an interrupted write); it "
            f"was moved to {str(self.corrupt_path)!r} and the journal continues after the last complete record.",
            TornJournalWarning,
            stacklevel=3,
        )


def find_journal(resume: str | os.PathLike[str]) -> Path:
    """The journal a ``resume`` argument names: ``RUN_DIR/trials.jsonl`` or the file itself.

    Raises
    ------
    ValueError
        When the path does not exist, or is a folder without ``trials.jsonl``, or a file that is
        not a JSON-lines journal (e.g. a checkpoint: nothing is ever unpickled).
    """
    if not isinstance(resume, (str, os.PathLike)) or not str(resume):
        raise ValueError(f"`resume` must be a results folder or a journal path, got {resume!r}.")
    path = Path(resume).expanduser().resolve()
    if path.is_dir():
        path = path / JOURNAL_NAME
        if not path.is_file():
            raise ValueError(
                f"`resume` {str(resume)!r} is a folder without {JOURNAL_NAME}; pass the results folder of a search "
                "started with a journal (or the journal file itself)."
            )
    elif not path.is_file():
        raise ValueError(f"`resume` {str(resume)!r} does not exist; pass a results folder or its {JOURNAL_NAME}.")
    with open(path, "rb") as fh:
        head = fh.read(64)
    if path.suffix not in (".jsonl", ".json") or not head.lstrip().startswith(b"{"):
        raise ValueError(
            f"`resume` {str(resume)!r} is not a search journal (a .jsonl file of JSON events); checkpoints and "
            "pickles are never loaded."
        )
    return path
