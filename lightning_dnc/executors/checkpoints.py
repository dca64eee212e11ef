"""The folder of rung checkpoints of a multi-fidelity search, and its disk use.

The evaluator writes one checkpoint per finished rung below the top
(:mod:`lightning_dnc.lightning.candidate.rung_runs`); the driver calls :meth:`CheckpointFolder.sync` after
every batch of told trials, which measures the folder (its peak is reported) and deletes the
checkpoints the engine no longer needs (:meth:`~lightning_dnc.search.StagedSearch.released_checkpoints`:
the candidate went on to its next rung, or can no longer be promoted). Torch-free.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lightning_dnc.search.core.trial import checkpoint_name


class CheckpointFolder:
    """Rung checkpoints on disk.

    Parameters
    ----------
    path : path, optional
        The folder (created on demand); ``None``: a temporary folder removed by :meth:`close`.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.temporary = path is None
        self.path = Path(tempfile.mkdtemp(prefix="dnc-rungs-")) if path is None else Path(path)
        self.peak_bytes = 0
        self.peak_files = 0
        self.deleted = 0

    def sync(self, released: Iterable[int]) -> None:
        """Record the folder's size, then delete the checkpoints of the ``released`` trials."""
        files = list(self.path.glob("*.ckpt")) if self.path.is_dir() else []
        size = sum(f.stat().st_size for f in files if f.is_file())
        if size > self.peak_bytes:
            self.peak_bytes = size
        self.peak_files = max(self.peak_files, len(files))
        for trial_id in released:
            target = self.path / checkpoint_name(trial_id)
            if target.is_file():
                target.unlink()
                self.deleted += 1

    def report(self) -> dict[str, Any]:
        """Peak bytes and files held at once, checkpoints deleted, and where they were kept."""
        return {"folder": None if self.temporary else str(self.path), "peak_bytes": self.peak_bytes,
                "peak_files": self.peak_files, "deleted": self.deleted}

    def close(self) -> None:
        """Remove a temporary folder (a results folder's is kept, holding what a resume needs)."""
        if self.temporary:
            shutil.rmtree(self.path, ignore_errors=True)


__all__ = ["CheckpointFolder"]
