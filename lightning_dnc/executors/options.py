"""How a search runs (not what it searches): executor, concurrency, failures, journal and resume.

:class:`RunOptions` is the second record ``DeepNCheapTuner`` and the command line fill, beside
:class:`~lightning_dnc.search.core.settings.SearchSettings`. None of its fields changes which
candidates are proposed, so none of them has to match when a search is resumed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_dnc.executors.base import Executor
from lightning_dnc.executors.budget import SearchBudget
from lightning_dnc.search.journal.event_log import find_journal
from lightning_dnc.validation import (
    SettingError,
    check_bool,
    check_choice,
    check_duration,
    check_int,
    check_optional_int,
    check_threads,
)
from lightning_dnc.vocabulary import EXECUTORS, LOGGERS


@dataclass(frozen=True)
class RunOptions:
    """Where candidates train and how the search survives failures and interruptions.

    Parameters
    ----------
    executor : {"inprocess", "ray"} or Executor, optional
        Where candidates train; in this process by default.
    max_concurrent : int, default 1
        Candidates trained at once (``executor="ray"``); batch BO proposes that many at a time.
    resources_per_trial : dict, optional
        Ray resources of one candidate, e.g. ``{"cpu": 1, "gpu": 1}``.
    ray_address : str, optional
        An existing Ray cluster to join (``"auto"``); a local one is started otherwise.
    max_consecutive_failures : int, default 5
        Stop with ``SearchAborted`` after this many failed candidates in a row.
    retry_oom : bool, default True
        Train a candidate that ran out of memory once more at half its batch size.
    journal : str or Path, optional
        JSON-lines file every proposed and finished trial is appended to.
    resume : str or Path, optional
        A results folder (holding ``trials.jsonl``) or a journal to continue; resolved to the
        journal file, which new trials are appended to.
    force_resume : bool, default False
        Resume even though the search space or the dataset differ from the journal's.
    progress : bool, default True
        Show a live panel (terminal) or one line per trial.
    max_trials : int, optional
        Stop proposing once the search holds this many trials (the journal's included).
    max_time : float or str, optional
        Start no new trial after this much wall time of this invocation: seconds, ``"90s"``,
        ``"30m"``, ``"1h30m"`` or ``"DD:HH:MM:SS"``; stored as seconds. See
        :mod:`lightning_dnc.executors.budget` for why both limits live here and how they resume.
    logger : {"csv", "tensorboard", "none"}, optional
        Lightning logger of every candidate's curves (one version per trial, in ``log_dir``).
        ``None``: the Python API follows the host trainer's logger; nothing else logs.
    log_dir : str or Path, optional
        Folder of the candidates' versions (``trial_000``, ...); needed with ``logger``.
    threads : "auto" or int, default "auto"
        Torch intra-op threads of each candidate on a CPU: ``"auto"`` times the candidate's own
        training step with each count it may use (all cores in-process; a Ray worker's share) and
        trains with the fastest now; an int fixes the count. Fixed counts give bit-identical
        trainings from run to run; ``"auto"`` may pick another count under another load.
    """

    executor: str | Executor | None = None
    max_concurrent: int = 1
    resources_per_trial: Mapping[str, float] | None = None
    ray_address: str | None = None
    max_consecutive_failures: int = 5
    retry_oom: bool = True
    journal: Path | None = None
    resume: Path | None = None
    force_resume: bool = False
    progress: bool = True
    max_trials: int | None = None
    max_time: float | str | None = None
    logger: str | None = None
    log_dir: Path | None = None
    threads: str | int = "auto"

    def __post_init__(self) -> None:
        if self.executor is not None and not isinstance(self.executor, Executor):
            check_choice("executor", self.executor, EXECUTORS)
        check_int("max_concurrent", self.max_concurrent, 1)
        check_int("max_consecutive_failures", self.max_consecutive_failures, 1)
        for name in ("retry_oom", "force_resume", "progress"):
            check_bool(name, getattr(self, name))
        check_optional_int("max_trials", self.max_trials, 1)
        if self.threads is None:
            raise SettingError("threads", "`threads` must be 'auto' or a number of threads >= 1, got None.")
        object.__setattr__(self, "threads", check_threads(self.threads))
        object.__setattr__(self, "max_time", check_duration("max_time", self.max_time))
        if self.logger is not None:
            check_choice("logger", self.logger, LOGGERS)
        if self.log_dir is not None:
            object.__setattr__(self, "log_dir", Path(self.log_dir))
        if self.resources_per_trial is not None:
            object.__setattr__(self, "resources_per_trial", dict(self.resources_per_trial))
        resume = find_journal(self.resume) if self.resume is not None else None
        journal = Path(self.journal) if self.journal is not None else None
        if resume is not None and journal is not None and journal.resolve() != resume:
            raise SettingError(
                "journal",
                f"`journal` {str(self.journal)!r} and `resume` {str(self.resume)!r} name different journals; a resumed "
                "search appends to the journal it resumes, so pass only `resume`.",
            )
        object.__setattr__(self, "resume", resume)
        object.__setattr__(self, "journal", resume or journal)

    @property
    def budget(self) -> SearchBudget:
        """A fresh :class:`SearchBudget` (its clock starts now) with this record's limits."""
        return SearchBudget(self.max_trials, self.max_time)  # type: ignore[arg-type]

    def threads_per_candidate(self) -> int | None:
        """Most torch threads one candidate may use when candidates train side by side on Ray.

        ``None`` in this process (torch's own count, every core). On Ray: the CPUs a trial reserves
        (``resources_per_trial["cpu"]``, 1 by default), so K workers share the cores they reserved.
        """
        if self.executor != "ray":
            return None
        return max(1, int((self.resources_per_trial or {}).get("cpu", 1)))

    def replace(self, **changes: Any) -> RunOptions:
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)


__all__ = ["RunOptions"]
