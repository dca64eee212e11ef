"""Where each candidate's training curves go: one Lightning logger version per trial.

A search with logs gives every candidate's child ``Trainer`` a fresh ``CSVLogger`` or
``TensorBoardLogger`` whose version is ``trial_007`` (and ``final`` for the final training), all
under ``<save_dir>/<name>/``. The command line writes them to ``<results folder>/logs``; the
Python API follows the host trainer's logger (see
:func:`lightning_dnc.lightning.candidate.candidate_logs.logs_like_host`).
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_dnc._optional import require
from lightning_dnc.validation import SettingError, check_choice
from lightning_dnc.vocabulary import LOGGERS

HOST_LOGS_NAME = "dnc_search"
"""Folder beside the host logger's versions that holds the candidates' versions."""


@dataclass(frozen=True)
class CandidateLogs:
    """A logger kind and a folder; :meth:`logger` makes the logger of one trial.

    Parameters
    ----------
    kind : {"csv", "tensorboard"}
    save_dir : Path
        Parent folder of ``name``.
    name : str, default "candidates"
        Folder under ``save_dir`` holding one version folder per trial.
    """

    kind: str
    save_dir: Path
    name: str = "candidates"

    def __post_init__(self) -> None:
        check_choice("logger", self.kind, tuple(k for k in LOGGERS if k != "none"))
        if self.kind == "tensorboard":
            require("tensorboard", "`logger='tensorboard'`")
        object.__setattr__(self, "save_dir", Path(self.save_dir))

    @property
    def root(self) -> Path:
        """The folder holding every version (``save_dir / name``)."""
        return self.save_dir / self.name

    def logger(self, version: str) -> Any:
        """A fresh logger writing to ``root / version``.

        A version folder left by an interrupted attempt of the same trial is removed first, so
        a re-run trial's curves start clean.
        """
        from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

        stale = self.root / version
        if stale.is_dir():
            shutil.rmtree(stale)
        if self.kind == "tensorboard":
            return TensorBoardLogger(self.save_dir, name=self.name, version=version, default_hp_metric=False)
        return CSVLogger(self.save_dir, name=self.name, version=version)


def trial_version(trial_id: int | None) -> str:
    """The version name of a trial's logs: ``trial_007``."""
    return "trial_unnamed" if trial_id is None else f"trial_{int(trial_id):03d}"


def make_candidate_logs(kind: str | None, log_dir: Path | None) -> CandidateLogs | None:
    """The logs of a search from ``RunOptions.logger``/``log_dir``; None for ``"none"`` or no folder."""
    if kind is None or kind == "none":
        return None
    if log_dir is None:
        raise SettingError("log_dir", f"`logger={kind!r}` needs `log_dir`, the folder the candidates' logs go to.")
    folder = Path(log_dir)
    return CandidateLogs(kind, folder.parent, folder.name)


def logs_like_host(trainer: Any) -> tuple[str, Path | None]:
    """``(kind, log_dir)`` following the host trainer's logger.

    A ``CSVLogger`` or ``TensorBoardLogger`` (or a subclass) gives the same kind, in
    ``<its root_dir>/dnc_search``; no logger gives ``("none", None)``; another logger class gives
    CSV logs in the trainer's ``default_root_dir`` with a warning (its constructor is unknown).
    """
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    host = getattr(trainer, "logger", None)
    if host is None:
        return "none", None
    if isinstance(host, (CSVLogger, TensorBoardLogger)):
        kind = "tensorboard" if isinstance(host, TensorBoardLogger) else "csv"
        return kind, Path(host.root_dir) / HOST_LOGS_NAME
    warnings.warn(
        f"Candidate logs go to CSV files in {trainer.default_root_dir!r}/{HOST_LOGS_NAME}: lightning-dnc builds "
        f"CSVLogger and TensorBoardLogger per candidate, not {type(host).__name__}; pass "
        "`DeepNCheapTuner(logger='none')` to turn them off.",
        UserWarning,
        stacklevel=3,
    )
    return "csv", Path(trainer.default_root_dir) / HOST_LOGS_NAME


__all__ = ["CandidateLogs", "HOST_LOGS_NAME", "logs_like_host", "make_candidate_logs", "trial_version"]
