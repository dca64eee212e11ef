"""EpochTimer: t_tr counts training epochs 2..N only; validation time is excluded."""

from __future__ import annotations

import time

import lightning.pytorch as pl
import pytest
import torch

from lightning_dnc.data import TensorLoader
from lightning_dnc.lightning.candidate.timing import EpochTimer, mean_training_epoch_time

FIRST_EPOCH_SLEEP = 0.25
STEP_SLEEP = 0.01
VALIDATION_SLEEP = 0.3


class SlowValidationModule(pl.LightningModule):
    """Two cheap training steps per epoch (slow in epoch 1) and one very slow validation step."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        time.sleep(FIRST_EPOCH_SLEEP if self.current_epoch == 0 else STEP_SLEEP)
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        time.sleep(VALIDATION_SLEEP)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _fit(epochs: int, **trainer_kwargs) -> EpochTimer:
    timer = EpochTimer()
    trainer = pl.Trainer(max_epochs=epochs, accelerator=trainer_kwargs.pop("accelerator", "cpu"), logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, callbacks=[timer], **trainer_kwargs)
    x, y = torch.randn(4, 2), torch.zeros(4)
    trainer.fit(SlowValidationModule(), TensorLoader(x, y, 2, shuffle=True), TensorLoader(x, y, 4))
    return timer


def test_validation_and_first_epoch_are_excluded():
    timer = _fit(3)
    assert len(timer.epoch_times) == 3
    first, *rest = timer.epoch_times
    assert first >= 2 * FIRST_EPOCH_SLEEP
    # Validation sleeps 0.3 s every epoch; if it were counted each epoch would exceed it.
    assert all(2 * STEP_SLEEP <= t < VALIDATION_SLEEP for t in rest)
    assert timer.t_tr == pytest.approx(sum(rest) / 2)
    assert timer.t_tr < FIRST_EPOCH_SLEEP


def test_single_epoch_uses_epoch_one():
    timer = _fit(1)
    assert timer.t_tr == timer.epoch_times[0] >= 2 * FIRST_EPOCH_SLEEP


def test_validation_in_the_middle_of_an_epoch_is_excluded():
    timer = _fit(2, val_check_interval=1)  # validation after every training batch
    assert timer.epoch_times[1] < VALIDATION_SLEEP


def test_mean_training_epoch_time():
    assert mean_training_epoch_time([]) is None
    assert mean_training_epoch_time([5.0]) == 5.0
    assert mean_training_epoch_time([9.0, 1.0, 3.0]) == 2.0


def test_state_dict_round_trip():
    timer = EpochTimer()
    timer.epoch_times = [1.0, 2.0]
    other = EpochTimer()
    other.load_state_dict(timer.state_dict())
    assert other.epoch_times == [1.0, 2.0]


class _CudaEventTimer(pl.Callback):
    """Reference: CUDA events around the same training-epoch span (validation excluded)."""

    def __init__(self) -> None:
        self.spans: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.spans.append((torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)))
        self.spans[-1][0].record()

    def on_validation_start(self, trainer, pl_module):
        self.spans[-1][1].record()

    def seconds(self) -> list[float]:
        torch.cuda.synchronize()
        return [start.elapsed_time(end) / 1000 for start, end in self.spans]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_synchronised_timing_agrees_with_cuda_events():
    from lightning_dnc.models import CandidateModule

    device = torch.device("cuda", 0)
    x = torch.randn(20_000, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (20_000,), device=device)
    module = CandidateModule({"out_channels": [64, 128, 128, 256], "batch_size": 512}, (3, 32, 32), 10, epochs=3)
    timer, events = EpochTimer(), _CudaEventTimer()
    trainer = pl.Trainer(max_epochs=3, accelerator="gpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         callbacks=[events, timer])
    trainer.fit(module, TensorLoader(x, y, 512, shuffle=True), TensorLoader(x[:1000], y[:1000], 512))
    reference = events.seconds()
    for ours, ref in zip(timer.epoch_times[1:], reference[1:]):
        assert ours == pytest.approx(ref, rel=0.05)
