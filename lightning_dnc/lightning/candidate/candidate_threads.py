"""``CandidateThreads``: train each candidate with the torch thread count that is fastest for it now.

With ``threads="auto"`` the first full-size training batches of the candidate race the thread
counts this process may use (:class:`~lightning_dnc.measure.threads.ThreadRace`: all cores
in-process, a Ray worker's share on Ray), each batch timed from ``on_train_batch_start`` to
``on_train_batch_end`` (forward, backward and optimizer step as the loop runs them); the rest of the
training runs with the winner. When the load changes later (the median batch of a window of
:data:`DRIFT_WINDOW` batches exceeds :data:`DRIFT_FACTOR` times that of the first window after the
race), the counts race again, and the next window is twice as long. A fixed count is simply set. Only CPU runs of one process are
tuned. The process's own count is restored when the training ends (``teardown``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from lightning_dnc.measure.threads import ThreadRace, available_threads, thread_counts


DRIFT_WINDOW = 5
"""Full batches per load check after a race (doubled after each new race)."""
DRIFT_FACTOR = 1.5
"""A check whose median is this many times the first check's starts a new race (the load changed)."""
DRIFT_MIN_S = 0.005
"""... and at least this many seconds more per batch (sub-millisecond batches are noisy, and cheap)."""


class CandidateThreads(Callback):
    """Set (``int``) or race (``"auto"``) the torch intra-op threads of one candidate's training.

    Parameters
    ----------
    threads : "auto" or int
    max_threads : int, optional
        Most threads ``"auto"`` races; this process's torch thread count by default.
    prefer : int, optional
        The count the candidate starts with and races first (the previous candidate's choice).

    Attributes
    ----------
    record : dict or None
        What the trial records in ``extra["threads"]``: the count it trained with (``threads``),
        ``mode``, and for ``"auto"`` the median seconds per raced batch of each count.
    """

    def __init__(self, threads: str | int, max_threads: int | None = None, prefer: int | None = None) -> None:
        super().__init__()
        self.threads = threads
        self.max_threads = max_threads
        self.prefer = prefer
        self.race: ThreadRace | None = None
        self._timing: tuple[int, float] | None = None
        self._full_batch: int | None = None
        self._fixed: int | None = None
        self._batches = 0
        self._before: int | None = None
        self._since: list[float] = []
        self._window = DRIFT_WINDOW
        self._baseline: float | None = None
        #: Earlier races of this candidate (when the load changed after one, it raced again).
        self.races: list[dict[str, Any]] = []

    @property
    def record(self) -> dict[str, Any] | None:  # noqa: D102
        if self.race is not None:
            out = self.race.to_dict()
            if not self.race.decided:  # trained fewer full batches than the race needs
                out["threads"] = torch.get_num_threads()
                out["undecided"] = True
            if self.races:
                out["earlier_races"] = list(self.races)
            return out
        if self._fixed is not None:
            return {"threads": self._fixed, "mode": "fixed"}
        return None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        if trainer.world_size > 1 or trainer.strategy.root_device.type != "cpu":
            return
        self._before = torch.get_num_threads()
        if self.threads != "auto":
            self._fixed = int(self.threads)
            torch.set_num_threads(self._fixed)
            return
        self.race = ThreadRace(thread_counts(self.max_threads or available_threads()), prefer=self.prefer)
        self._full_batch = getattr(trainer.train_dataloader, "batch_size", None)
        torch.set_num_threads(self.race.next_count())  # the untimed first batch too

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:  # noqa: D102
        race = self.race
        self._batches += 1
        if race is None or self._batches == 1 or not self._is_full(batch) or len(race.counts) == 1:
            return  # the candidate's first batch warms up (first optimizer state, caches): not timed
        count = race.next_count()
        if torch.get_num_threads() != count:
            torch.set_num_threads(count)
        self._timing = (count, time.perf_counter())

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:  # noqa: D102
        if self.race is None or self._timing is None:
            return
        count, started = self._timing
        self._timing = None
        seconds = time.perf_counter() - started
        if not self.race.decided:
            self.race.record(count, seconds)
            if self.race.decided and torch.get_num_threads() != self.race.threads:
                torch.set_num_threads(int(self.race.threads))  # type: ignore[arg-type]
            return
        self._since.append(seconds)
        if len(self._since) < self._window:
            return
        window, self._since = statistics.median(self._since), []
        if self._baseline is None:
            self._baseline = window  # the chosen count's typical batch right after the race
        elif window > DRIFT_FACTOR * self._baseline and window - self._baseline > DRIFT_MIN_S:
            # The load changed since the race: race again (the earlier races stay in the record), and
            # wait twice as long before the next check, so noise cannot make the races add up.
            self.races.append(self.race.to_dict())
            self.race = ThreadRace(self.race.counts, prefer=self.race.threads)
            self._baseline = None
            self._window *= 2

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:  # noqa: D102
        if self._before is not None and torch.get_num_threads() != self._before:
            torch.set_num_threads(self._before)  # the process's own count again, after fit, error or interrupt

    def _is_full(self, batch: Any) -> bool:
        """False for the smaller last batch of an epoch (its time is not comparable)."""
        size = _batch_size(batch)
        if size is None or self._full_batch is None:
            return True
        return size >= self._full_batch


def _batch_size(batch: Any) -> int | None:
    if torch.is_tensor(batch):
        return int(batch.shape[0]) if batch.dim() else None
    if isinstance(batch, Sequence) and batch and torch.is_tensor(batch[0]) and batch[0].dim():
        return int(batch[0].shape[0])
    return None


__all__ = ["CandidateThreads"]
