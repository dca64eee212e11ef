"""What state a results folder is in, and its result so far, read without writing or locking anything.

A folder is

- ``finished``: its search wrote ``result.json`` and no live process holds its lock (a ``fit`` whose
  final training was stopped is finished without a final model: ``fit --resume`` trains it);
- ``running``: a live process holds the lock of its journal (``trials.jsonl.lock``), searching or
  training the final model;
- ``interrupted``: no ``result.json`` and no live lock: killed, stopped by a signal, or stopped by
  failing candidates.

An unfinished search's result is rebuilt by replaying its journal in memory (the journal is read,
never repaired: a half-written last line of a running search is skipped), so ``report`` can rank it
while the search goes on. Nothing here takes the lock, moves a stale lock aside or writes a file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_dnc.results.outcome import final_metrics
from lightning_dnc.search import SearchResult
from lightning_dnc.search.journal.event_log import Journal
from lightning_dnc.search.journal.lock import RunLock
from lightning_dnc.vocabulary import JOURNAL_NAME

FINISHED, RUNNING, INTERRUPTED = "finished", "running", "interrupted"
RUN_STATES = (FINISHED, RUNNING, INTERRUPTED)


@dataclass(frozen=True)
class RunState:
    """A results folder as ``report`` finds it.

    Attributes
    ----------
    run_dir : Path
    state : {"finished", "running", "interrupted"}
    result : SearchResult or None
        The search's result (``result.json``), or the ranking so far rebuilt from the journal;
        None when no trial succeeded yet.
    trials_finished : int
        Trials told (successful or failed; interrupted ones excluded).
    search_done : bool
        The search wrote ``result.json``.
    final : dict or None
        ``final.json``'s metrics (today's names), None when no final model was trained.
    owner : dict or None
        The lock's ``pid``/``host`` while running.
    """

    run_dir: Path
    state: str
    result: SearchResult | None
    trials_finished: int
    search_done: bool
    final: dict[str, Any] | None = None
    owner: Mapping[str, Any] | None = None

    @property
    def read_only(self) -> bool:
        """True unless finished: ``report`` then writes nothing into the folder."""
        return self.state != FINISHED

    def describe(self) -> str:
        """One line: the state, the trials finished and whether a final model exists."""
        trials = f"{self.trials_finished} trial{'s' if self.trials_finished != 1 else ''} finished"
        model = "final model trained" if self.final is not None else "no final model"
        if self.state == FINISHED:
            return f"finished: {trials}, {model}" + ("." if self.final is not None else
                                                    " (a search-only run, or fit --resume trains it).")
        if self.state == RUNNING:
            who = ""
            if self.owner:
                who = f" (pid {self.owner.get('pid')!r} on host {self.owner.get('host')!r})"
            doing = "training the final model" if self.search_done else "searching"
            return (f"running{who}: {doing}, {trials} so far; read only, nothing written into its folder "
                    "(run report again later for more).")
        return (f"interrupted: {trials}, {model}; read only, nothing written. Continue it with "
                f"python -m lightning_dnc.cli fit --resume {self.run_dir} (or search --resume).")


def read_run(run_dir: str | Path) -> RunState:
    """The state and result of the results folder ``run_dir``, read-only.

    Raises
    ------
    ValueError
        When ``run_dir`` is not a results folder (neither ``result.json`` nor a journal), or its
        files cannot be read (the message names the file).
    """
    run_dir = Path(run_dir)
    journal = run_dir / JOURNAL_NAME
    source = run_dir / "result.json"
    if not source.is_file() and not journal.is_file():
        raise ValueError(f"{str(run_dir)!r} is not a results folder: it has neither result.json nor {JOURNAL_NAME}; "
                         "pass a folder written by fit or search.")
    lock = RunLock.for_journal(journal)
    owner = lock.owner()
    running = lock.held_by_another_process()
    final = _final(run_dir)
    if source.is_file():
        result = SearchResult.from_json(source.read_text(encoding="utf-8"))
        told = sum(1 for t in result.trials if t.evaluation is not None and t.evaluation.failure_reason != "interrupted")
        return RunState(run_dir, RUNNING if running else FINISHED, result, told, True, final,
                        owner if running else None)
    result, told = _result_so_far(journal)
    return RunState(run_dir, RUNNING if running else INTERRUPTED, result, told, False, final,
                    owner if running else None)


def _final(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "final.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # being written, or damaged: the report goes on without it
    return final_metrics(data) if isinstance(data, dict) else None


def _result_so_far(journal: Path) -> tuple[SearchResult | None, int]:
    """The ranking of every successful trial in ``journal`` (replayed in memory) and the trials told."""
    from lightning_dnc.search import StagedSearch
    from lightning_dnc.search.journal.same_search import journal_header
    from lightning_dnc.search.core.settings import SearchSettings
    from lightning_dnc.space import space_from_dict

    events = Journal(journal).read()
    if not events:
        return None, 0
    header = journal_header(events, str(journal))
    settings = SearchSettings.from_header(header["settings"], header["objective"])
    engine = StagedSearch.resume(events, settings, space_from_dict(header["space"]),
                                 space_from_dict(header["training_space"]), journal=None,
                                 metadata=header.get("metadata"), strict=False)
    told = sum(1 for t in engine.trials if t.evaluation is not None and t.evaluation.failure_reason != "interrupted")
    try:
        return engine.result(), told
    except RuntimeError:  # no successful trial yet
        return None, told


__all__ = ["FINISHED", "INTERRUPTED", "RUNNING", "RUN_STATES", "RunState", "read_run"]
