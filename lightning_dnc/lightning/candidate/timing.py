"""``EpochTimer``: the training time per epoch ``t_tr`` of SPEC §1.

``t_tr`` is the mean wall-clock time of one *training* epoch over epochs 2..N (epoch 1 is warm-up;
with a single epoch it is used). Data loading counts; validation does not: the clock pauses from
``on_validation_start`` to ``on_validation_end``. On CUDA the device is synchronised before every
clock reading, and on multi-process runs each epoch's time is the maximum over ranks.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn


def mean_training_epoch_time(epoch_times: Sequence[float]) -> float | None:
    """SPEC §1 ``t_tr``: mean of ``epoch_times[1:]``, ``epoch_times[0]`` for one epoch, None for none."""
    if not epoch_times:
        return None
    timed = epoch_times[1:] if len(epoch_times) > 1 else epoch_times
    return float(sum(timed) / len(timed))


def _synchronize(trainer: pl.Trainer) -> None:
    device = trainer.strategy.root_device
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class EpochTimer(Callback):
    """Measure the seconds of every training epoch, validation excluded.

    Attributes
    ----------
    epoch_times : list of float
        Seconds of each completed training epoch (maximum over ranks when distributed).
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch_times: list[float] = []
        self._started_at: float | None = None
        self._elapsed = 0.0
        self._paused = False

    @property
    def t_tr(self) -> float | None:
        """Mean training-epoch seconds over epochs 2..N (epoch 1 when N == 1); None before any epoch."""
        return mean_training_epoch_time(self.epoch_times)

    @property
    def spread(self) -> float | None:
        """Standard deviation of the epochs ``t_tr`` averages, seconds (None with fewer than two)."""
        timed = self.epoch_times[1:] if len(self.epoch_times) > 1 else self.epoch_times
        return statistics.stdev(timed) if len(timed) > 1 else None

    def state_dict(self) -> dict[str, Any]:  # noqa: D102
        return {"epoch_times": list(self.epoch_times)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # noqa: D102
        self.epoch_times = [float(t) for t in state_dict.get("epoch_times", [])]

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        if trainer.world_size > 1:
            # Every rank starts the clock together; the epoch time is then the slowest rank's.
            trainer.strategy.barrier("dnc_epoch_start")
        _synchronize(trainer)
        self._elapsed = 0.0
        self._paused = False
        self._started_at = time.perf_counter()

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        if self._started_at is None or trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        _synchronize(trainer)
        self._elapsed += time.perf_counter() - self._started_at
        self._started_at = None
        self._paused = True

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        if not self._paused:
            return
        _synchronize(trainer)
        self._paused = False
        self._started_at = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        if self._started_at is not None:
            _synchronize(trainer)
            self._elapsed += time.perf_counter() - self._started_at
            self._started_at = None
        elapsed = self._elapsed
        if trainer.world_size > 1:
            value = torch.tensor(elapsed, dtype=torch.float64, device=trainer.strategy.root_device)
            elapsed = float(trainer.strategy.reduce(value, reduce_op="max"))
        self.epoch_times.append(elapsed)
        self._elapsed = 0.0
