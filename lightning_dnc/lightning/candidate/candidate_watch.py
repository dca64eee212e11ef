"""``CandidateWatch``: stop a candidate at the search's deadline, and say how a long one is doing.

The search's ``max_time`` is a wall-clock deadline; a candidate that is still training when it
passes is stopped at the next training or validation batch (:class:`CandidateStopped`), so a search
ends within about one batch of its limit instead of after its longest candidate. The evaluator
records such a candidate as interrupted by the budget: it is never ranked as finished, and a
resumed search trains it again.

When progress lines are on, a candidate that has trained longer than ``quiet_s`` prints one line
per finished epoch (epoch, validation accuracy or loss, seconds so far), so a long candidate is not
silent.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

EPOCH_LINES_AFTER_S = 10.0
"""A candidate prints its epochs once it has trained this long (shorter ones stay quiet)."""


class CandidateStopped(Exception):
    """Raised inside a candidate's training when the search's deadline has passed.

    Attributes
    ----------
    epochs_done : int
        Training epochs the candidate finished before it was stopped.
    """

    def __init__(self, epochs_done: int) -> None:
        super().__init__(f"stopped by the search's max_time after {epochs_done} finished epoch(s)")
        self.epochs_done = int(epochs_done)


class CandidateWatch(Callback):
    """Deadline and epoch lines of one candidate.

    Parameters
    ----------
    deadline : float, optional
        ``time.time()`` after which the candidate is stopped; ``None``: never.
    epoch_lines : bool, default False
        Print a line per finished epoch once the candidate has trained ``quiet_s`` seconds.
    trial_id : int, optional
        Named in the epoch lines.
    epochs : int, optional
        Planned epochs, named in the epoch lines.
    quiet_s : float, default :data:`EPOCH_LINES_AFTER_S`
    stream : text stream, optional
        Where the lines go (``sys.stdout`` by default, which a live progress panel shows above itself).
    """

    def __init__(self, deadline: float | None = None, epoch_lines: bool = False, trial_id: int | None = None,
                 epochs: int | None = None, quiet_s: float = EPOCH_LINES_AFTER_S, stream: TextIO | None = None) -> None:
        super().__init__()
        self.deadline = deadline
        self.epoch_lines = bool(epoch_lines)
        self.trial_id = trial_id
        self.epochs = epochs
        self.quiet_s = float(quiet_s)
        self.stream = stream
        self.started = time.perf_counter()
        self.epochs_done = 0

    def _check(self) -> None:
        if self.deadline is not None and time.time() >= self.deadline:
            raise CandidateStopped(self.epochs_done)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        self.started = time.perf_counter()
        self._check()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:  # noqa: D102
        self._check()

    def on_validation_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:  # noqa: D102
        if not trainer.sanity_checking:
            self._check()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        self.epochs_done += 1

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        if trainer.sanity_checking or not self.epoch_lines:
            return
        elapsed = time.perf_counter() - self.started
        if elapsed < self.quiet_s:
            return
        print(self.line(pl_module, trainer.current_epoch + 1, elapsed), file=self.stream or sys.stdout, flush=True)

    def line(self, pl_module: pl.LightningModule, epoch: int, elapsed: float) -> str:
        """``  trial 3  epoch 4/10  val_acc 0.9531  (12 s)``: the latest validation result of the candidate."""
        history = getattr(pl_module, "history", None)
        metric = ""
        if isinstance(history, dict):
            for key in ("val_acc", "val_loss"):
                values = history.get(key) or []
                if values:
                    metric = f"  {key} {float(values[-1]):.4f}"
                    break
        trial = f"trial {self.trial_id}  " if self.trial_id is not None else ""
        planned = f"/{self.epochs}" if self.epochs else ""
        return f"  {trial}epoch {epoch}{planned}{metric}  ({elapsed:.0f} s)"


__all__ = ["EPOCH_LINES_AFTER_S", "CandidateStopped", "CandidateWatch"]
