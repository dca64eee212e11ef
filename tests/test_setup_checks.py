"""Set-up checks before anything trains (item 5) and both Lightning namespaces (item 9)."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lightning_dnc as dnc
from lightning_dnc import cli
from lightning_dnc.data import DigitsDataModule, NpzDataModule
from lightning_dnc.models import build_network
from lightning_dnc.validation import SetupWarning

ONE_TRIAL = dict(search_epochs=1, prior_points=1, steps=0, explore=10, training_prior_points=0, training_steps=0,
                 max_trials=1, progress=False)


def _trainer(**kwargs):
    return dnc.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                       enable_model_summary=False, **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_missing_accelerator_is_one_line_code_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["fit", "--accelerator", "gpu", "--out", str(out), "--max_trials", "1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--accelerator 'gpu' is not available on this machine" in lines[0]
    assert "'cpu'" in lines[0]
    assert not out.exists(), "no results folder for a run that cannot start"


def test_undownloadable_dataset_says_where_to_put_files_and_leaves_no_folder(tmp_path, monkeypatch, capsys):
    import torchvision

    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])  # refused at once
    root, out = tmp_path / "data", tmp_path / "run"
    code = cli.main(["fit", "--data", "mnist", "--root", str(root), "--download", "true", "--out", str(out)])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "MNIST could not be downloaded" in lines[0] and str(root / "MNIST" / "raw") in lines[0]
    assert "train-images-idx3-ubyte" in lines[0] and "--download false" in lines[0]
    assert "download=True to fetch" not in lines[0]
    assert not root.exists() and not out.exists(), "nothing left behind"
    code = cli.main(["fit", "--data", "mnist", "--root", str(root), "--download", "false", "--out", str(out)])
    assert code == 2 and "or pass --download true" in capsys.readouterr().err


def test_tiny_data_warns_before_training(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(path, xtr=rng.normal(size=(30, 5)).astype(np.float32), ytr=np.arange(30) % 10,
             xte=rng.normal(size=(10, 5)).astype(np.float32), yte=np.arange(10))
    dm = NpzDataModule(path)
    model = dnc.DnCModel(family="mlp")
    with pytest.warns(SetupWarning) as caught:
        _trainer().tune(model, datamodule=dm, dnc=dnc.DeepNCheapTuner(**ONE_TRIAL))
    texts = [str(w.message) for w in caught if issubclass(w.category, SetupWarning)]
    assert any("validation split has 6 samples for 10 classes" in t for t in texts), texts
    assert any("training split has 24 samples, fewer than the batch sizes" in t for t in texts), texts


class HiddenOnly(pl.LightningModule):
    """Reads only ``hidden_mlp`` and ``lr`` from the searched config."""

    family = "mlp"

    def __init__(self, config: dict) -> None:
        super().__init__()
        width, layers = 64, [nn.Flatten()]
        for units in config["hidden_mlp"]:
            layers += [nn.Linear(width, units), nn.ReLU()]
            width = units
        self.net = nn.Sequential(*layers, nn.Linear(width, 10))
        self.lr = config["lr"]

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        logits = self(batch[0])
        self.log("val_loss", F.cross_entropy(logits, batch[1]))
        self.log("val_acc", (logits.argmax(1) == batch[1]).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class UsesEverything(HiddenOnly):
    """Builds the Deep-n-Cheap network from the whole config and trains with its lr and weight decay."""

    def __init__(self, config: dict) -> None:
        pl.LightningModule.__init__(self)
        self.config = config
        self.net = build_network(config, (64,), 10)

    def forward(self, x):
        return self.net(x.flatten(1))

    def configure_optimizers(self):
        wd = 0.0 if self.config["weight_decay"] == "auto" else self.config["weight_decay"]
        return torch.optim.Adam(self.parameters(), lr=self.config["lr"], weight_decay=wd)


def test_module_ignoring_searched_keys_is_warned_and_its_groups_skipped():
    tuner = dnc.DeepNCheapTuner(wc=0.1, search_epochs=1, prior_points=2, steps=0, explore=10, training_prior_points=1,
                                training_steps=0, progress=False)
    with pytest.warns(SetupWarning, match=r"HiddenOnly ignores the searched setting\(s\) "
                                          r"\['act', 'dropout_probs_mlp', 'weight_decay'\]") as caught:
        result = _trainer().tune(HiddenOnly(config={"hidden_mlp": [32], "lr": 1e-3}), datamodule=DigitsDataModule(),
                                 dnc=tuner)
    message = next(str(w.message) for w in caught if issubclass(w.category, SetupWarning))
    assert "Stage-2 group(s) ['ac', 'do'] are skipped" in message and "['weight_decay']" in message
    assert [t.stage for t in result.trials] == [1, 1, 3], "no stage-2 trial trains the same network again"
    assert result.meta["settings"]["stage2_order"] == []


def test_module_using_every_key_gets_no_warning():
    tuner = dnc.DeepNCheapTuner(wc=0.1, **{**ONE_TRIAL, "stage2_order": ["ac", "do"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error", SetupWarning)
        config = dnc.DnCModel(family="mlp").config
        result = _trainer().tune(UsesEverything(config=config), datamodule=DigitsDataModule(), dnc=tuner)
    assert result.meta["settings"]["stage2_order"] == ["ac", "do"]


# -- both namespaces ----------------------------------------------------------------------------
legacy = pytest.importorskip("pytorch_lightning")


class LegacyModule(legacy.LightningModule):
    family = "mlp"

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.net = nn.Linear(64, 10)

    def training_step(self, batch, batch_idx):
        raise AssertionError("nothing may train")

    def train_dataloader(self):
        return DigitsDataModule(flatten=True).train_dataloader()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_pytorch_lightning_module_gets_one_line_before_training():
    with pytest.raises(TypeError, match=r"^`model` is a `pytorch_lightning.LightningModule` \(LegacyModule\); "
                                        r"lightning-dnc trains with `lightning.pytorch`: import it with "
                                        r"`from lightning.pytorch import LightningModule`"):
        _trainer().tune(LegacyModule({}), datamodule=DigitsDataModule(), dnc=dnc.DeepNCheapTuner(**ONE_TRIAL))


def test_pytorch_lightning_datamodule_gets_one_line_before_training():
    class LegacyData(legacy.LightningDataModule):
        pass

    with pytest.raises(TypeError, match=r"`datamodule` is a `pytorch_lightning.LightningDataModule`"):
        _trainer().tune(dnc.DnCModel(family="mlp"), datamodule=LegacyData(), dnc=dnc.DeepNCheapTuner(**ONE_TRIAL))


def test_pytorch_lightning_trainer_works_with_tune():
    trainer = legacy.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False)
    model = dnc.DnCModel(family="mlp")
    result = dnc.tune(trainer, model, DigitsDataModule(), dnc=dnc.DeepNCheapTuner(**ONE_TRIAL))
    assert len(result.trials) == 1 and model.config["hidden_mlp"] == result.best_config["hidden_mlp"]


def test_pytorch_lightning_trainer_and_module_with_the_callback_get_one_line():
    trainer = legacy.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, callbacks=[dnc.DeepNCheapTuner(**ONE_TRIAL)])
    with pytest.raises(TypeError, match=r"`model` is a `pytorch_lightning.LightningModule`"):
        trainer.fit(LegacyModule({}))
