"""CostProbe: the measurement at the start of training leaves the training exactly as without it, and
every successful evaluation records all costs."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from lightning_dnc.data import DigitsDataModule
from lightning_dnc.lightning.candidate.cost_probe import CostProbe
from lightning_dnc.lightning.candidate.evaluator import CandidateEvaluator
from lightning_dnc.models import CandidateModule

EPOCHS = 2


def train(config, flatten, probe):
    dm = DigitsDataModule(flatten=flatten, batch_size=config["batch_size"])
    dm.setup()
    torch.manual_seed(0)
    module = CandidateModule(config, dm.input_shape, dm.num_outputs, epochs=EPOCHS)
    callbacks = [CostProbe(EPOCHS)] if probe else []
    trainer = pl.Trainer(max_epochs=EPOCHS, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         callbacks=callbacks)
    trainer.fit(module, datamodule=dm)
    return module, callbacks


@pytest.mark.parametrize(("config", "flatten"), [
    ({"family": "cnn", "out_channels": [4, 8], "batch_size": 100}, False),  # batch norm, dropout, last batch
    ({"family": "mlp", "hidden_mlp": [32], "batch_size": 64, "weight_decay": 1e-4}, True),
])
def test_probe_leaves_the_training_unchanged(config, flatten):
    plain, _ = train(config, flatten, probe=False)
    probed, (probe,) = train(config, flatten, probe=True)
    assert probe.costs is not None and probe.costs.t_tr_step > 0 and probe.costs.error is None
    assert plain.history == probed.history
    for (name, a), (_, b) in zip(plain.state_dict().items(), probed.state_dict().items()):
        assert torch.equal(a, b), name


def test_evaluation_records_every_cost_and_both_t_tr():
    dm = DigitsDataModule(flatten=True)
    config = {"hidden_mlp": [32], "batch_size": 64}
    step = CandidateEvaluator(dm, epochs=3, accelerator="cpu").evaluate(config)  # 3 epochs: a spread of epochs 2..3
    epoch = CandidateEvaluator(dm, epochs=3, accelerator="cpu", t_tr_mode="epoch").evaluate(config)
    for ev in (step, epoch):
        assert ev.ok
        assert ev.flops == 2 * (64 * 32 + 32 * 10)
        assert ev.latency > 0 and ev.memory > 0 and ev.t_tr_epoch > 0 and ev.t_tr_step > 0
        assert set(ev.spread) == {"t_tr_epoch", "t_tr_step"}
        costs = ev.extra["costs"]
        assert costs["memory_method"] == "estimate" and costs["latency_batch_size"] == dm.num_samples("val")
    assert step.t_tr == step.t_tr_step and epoch.t_tr == epoch.t_tr_epoch
    assert step.val_acc_curve == epoch.val_acc_curve  # the mode changes what is recorded, not the training


def test_training_flops_per_epoch_are_per_sample_counts_times_the_samples():
    dm = DigitsDataModule(flatten=True)
    ev = CandidateEvaluator(dm, epochs=1, accelerator="cpu").evaluate({"hidden_mlp": [32], "batch_size": 100})
    per_sample = 2 * (64 * 32 + 32 * 10) + 2 * 64 * 32 + 2 * 2 * 32 * 10  # forward + backward, hand count
    assert ev.flops_train == dm.num_samples("train") * per_sample


def test_evaluator_rejects_an_unknown_t_tr_mode():
    with pytest.raises(ValueError, match=r"`t_tr_mode` must be one of \['step', 'epoch'\], got 'wall'"):
        CandidateEvaluator(DigitsDataModule(flatten=True), t_tr_mode="wall")
