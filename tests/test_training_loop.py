"""The search's faster candidate loop trains exactly what Lightning's automatic loop trains."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from lightning_dnc.data import DigitsDataModule
from lightning_dnc.lightning.candidate.evaluator import CandidateEvaluator
from lightning_dnc.models import CandidateModule

EPOCHS = 4  # MultiStepLR milestones at epochs 2 and 3 are crossed


def fit(config, flatten, own_steps):
    dm = DigitsDataModule(flatten=flatten, batch_size=config["batch_size"])
    dm.setup()
    torch.manual_seed(0)
    module = CandidateModule(config, dm.input_shape, dm.num_outputs, epochs=EPOCHS, own_steps=own_steps)
    trainer = pl.Trainer(max_epochs=EPOCHS, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=dm)
    return module, trainer


@pytest.mark.parametrize(("config", "flatten"), [
    ({"family": "mlp", "hidden_mlp": [32], "batch_size": 200, "weight_decay": 1e-4}, True),
    ({"family": "cnn", "out_channels": [4, 8], "batch_size": 300}, False),
])
def test_own_steps_equal_the_automatic_loop(config, flatten):
    auto, auto_trainer = fit(config, flatten, own_steps=False)
    own, own_trainer = fit(config, flatten, own_steps=True)
    assert auto.history == own.history
    for (name, a), (_, b) in zip(auto.state_dict().items(), own.state_dict().items()):
        assert torch.equal(a, b), name
    assert auto_trainer.optimizers[0].param_groups[0]["lr"] == own_trainer.optimizers[0].param_groups[0]["lr"] == (
        pytest.approx(1e-3 * 0.2 ** 2))


def test_barebones_evaluation_equals_a_logging_one():
    dm = DigitsDataModule(flatten=True)
    config = {"hidden_mlp": [32], "batch_size": 128}
    fast = CandidateEvaluator(dm, epochs=3, accelerator="cpu").evaluate(config)
    logging = CandidateEvaluator(dm, epochs=3, accelerator="cpu", patience=50).evaluate(config)  # logs for EarlyStopping
    assert fast.ok and logging.ok
    assert fast.val_acc_curve == logging.val_acc_curve and fast.train_loss_curve == logging.train_loss_curve
