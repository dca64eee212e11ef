"""End to end: ``trainer.tune``, the callback path and ``lightning_dnc.tune`` on real digits data."""

from __future__ import annotations

import json

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lightning_dnc as dnc
from lightning_dnc.data import DigitsDataModule
from lightning_dnc.models import build_network, count_parameters
from lightning_dnc.space import CNNSpace

SMALL_CNN = CNNSpace(num_conv_layers=(2, 4), channels_first=(8, 16), channels_upper=32)

TINY = dict(search_epochs=1, prior_points=2, steps=1, explore=20, progress=False)


def _trainer(**kwargs) -> dnc.Trainer:
    return dnc.Trainer(max_epochs=kwargs.pop("max_epochs", 1), logger=False, enable_checkpointing=False,
                       enable_progress_bar=False, enable_model_summary=False, **kwargs)


def _widths(module: nn.Module) -> list[int]:
    return [m.out_features for m in module.modules() if isinstance(m, nn.Linear)]


def test_tune_with_data_carried_by_model_then_fit_trains_the_winner(tmp_path):
    dm = DigitsDataModule()
    model = dnc.DnCModel(family="mlp", datamodule=dm)
    trainer = _trainer(max_epochs=2)
    rng_before = torch.get_rng_state()
    result = trainer.tune(model, dnc=dnc.DeepNCheapTuner(wc=0.1, journal=tmp_path / "trials.jsonl", **TINY))
    assert torch.equal(rng_before, torch.get_rng_state()), "tune must leave the host RNG untouched"
    best = result.best_config
    # The model is rebuilt with the winner and the datamodule uses its batch size.
    assert model.config["hidden_mlp"] == best["hidden_mlp"]
    assert model.config["lr"] == best["lr"] and model.config["act"] == best["act"]
    assert dm.batch_size == best["batch_size"]
    assert _widths(model.net) == [*best["hidden_mlp"], 10]
    best_trial = result.best.trial
    assert model.num_params == best_trial.evaluation.n_params
    # Stage counts of the default strategy ("joint"): 2 Sobol + 1 BO in stage 1 plus half of stage 3's
    # 2 + 1 moved there as one BO step, grid in stage 2, the other 2 as BO steps in stage 3; every
    # trial is journalled.
    stages = [t.stage for t in result.trials]
    assert stages.count(1) == 4 and stages.count(3) == 2
    assert len({t.config["lr"] for t in result.trials if t.stage == 1}) > 1
    events = [json.loads(line) for line in (tmp_path / "trials.jsonl").read_text().splitlines()]
    finished = [e for e in events if e.get("event") == "finished"]
    assert len(finished) == len(result.trials)
    trainer.fit(model)
    metrics = trainer.validate(model, verbose=False)[0]
    assert 0.0 <= metrics["val_acc"] <= 1.0


def test_tune_cnn_with_datamodule_argument_builds_found_architecture():
    dm = DigitsDataModule()
    model = dnc.DnCModel(family="cnn")
    trainer = _trainer()
    tuner = dnc.DeepNCheapTuner(wc=10.0, penalize="n_params", space=SMALL_CNN, stage2_order=["ac", "ds"], **TINY)
    result = trainer.tune(model, datamodule=dm, dnc=tuner)
    best = result.best_config
    convs = [m for m in model.net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == best["out_channels"]
    assert model.num_params == count_parameters(best, (1, 8, 8), 10)
    assert tuner.best_config == best
    trainer.fit(model, datamodule=dm)


def test_callback_searches_first_then_trains_the_winner():
    dm = DigitsDataModule()
    tuner = dnc.DeepNCheapTuner(wc=0.1, space=SMALL_CNN, stage2_order=["ac"], **TINY)
    model = dnc.DnCModel(family="cnn")
    trainer = _trainer(callbacks=[tuner])
    trainer.fit(model, datamodule=dm)
    assert tuner.result is not None
    assert model.config["out_channels"] == tuner.best_config["out_channels"]
    assert trainer.current_epoch == 1, "the host fit trained the winner after the search"


def test_plain_lightning_trainer_with_module_function():
    dm = DigitsDataModule()
    model = dnc.DnCModel(family="mlp")
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    result = dnc.tune(trainer, model, dm, dnc=dnc.DeepNCheapTuner(wc=0.0, stage2_order=[], **TINY))
    assert result.best_config["hidden_mlp"] == model.config["hidden_mlp"]


def test_no_data_anywhere_says_how_to_pass_it():
    model = dnc.DnCModel(family="mlp")
    with pytest.raises(ValueError, match="needs data to search on"):
        _trainer().tune(model, dnc=dnc.DeepNCheapTuner(wc=0.1))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"wc": -1}, "`wc` must be a finite number >= 0"),
        ({"penalize": "watts"}, r"`penalize` must be one of \['t_tr', 'n_params', 'flops', 'latency', 'memory'\]"),
        ({"t_tr_mode": "wall"}, r"`t_tr_mode` must be one of \['step', 'epoch'\]"),
        ({"steps": -1}, "`steps` must be an integer >= 0"),
        ({"executor": "dask"}, "`executor` must be one of"),
        ({"family": "rnn"}, r"`family` must be one of \['cnn', 'mlp'\]"),
    ],
)
def test_bad_settings_are_refused_before_anything_trains(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dnc.DeepNCheapTuner(**kwargs)


class PlainModule(pl.LightningModule):
    def __init__(self, width: int = 8):
        super().__init__()
        self.layer = nn.Linear(64, width)


class OwnMLP(pl.LightningModule):
    """A user's module: builds itself from ``config``, logs ``val_acc``."""

    family = "mlp"

    def __init__(self, config: dict, num_outputs: int = 10):
        super().__init__()
        self.save_hyperparameters()
        self.net = build_network({**config, "family": "mlp"}, (1, 8, 8), num_outputs)
        self.lr = config.get("lr", 1e-3)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def test_a_module_without_config_gets_a_clear_error():
    with pytest.raises(ValueError, match="must take a `config` dict"):
        _trainer().tune(PlainModule(), datamodule=DigitsDataModule(),
                        dnc=dnc.DeepNCheapTuner(family="mlp", **TINY))


def test_own_lightning_module_is_searched_and_rebuilt():
    dm = DigitsDataModule()
    model = OwnMLP(config={"hidden_mlp": [16]})
    result = _trainer().tune(model, datamodule=dm, dnc=dnc.DeepNCheapTuner(wc=0.1, stage2_order=["ac"], **TINY))
    assert all(t.evaluation.ok for t in result.trials)
    assert all(t.evaluation.best_val_acc is not None for t in result.trials)
    assert _widths(model.net) == [*result.best_config["hidden_mlp"], 10]


def test_stage_three_budget_can_differ_from_stage_one():
    dm = DigitsDataModule()
    model = dnc.DnCModel(family="mlp", datamodule=dm)
    settings = {**TINY, "prior_points": 2, "steps": 1}
    result = _trainer().tune(model, dnc=dnc.DeepNCheapTuner(
        wc=0.1, stage2_order=[], training_prior_points=1, training_steps=1, strategy="paper", **settings))
    stages = [t.stage for t in result.trials]
    assert stages.count(1) == 3 and stages.count(3) == 2  # the joint strategy's split: test_strategies.py
    with pytest.raises(ValueError, match="`training_steps` must be an integer >= 0"):
        dnc.DeepNCheapTuner(training_steps=-1)


def test_only_rank_zero_writes_the_journal(tmp_path, monkeypatch):
    """Under a DDP launcher every rank runs the search in lockstep; ranks > 0 never write or lock."""
    journal = tmp_path / "trials.jsonl"
    settings = dict(wc=0.1, stage2_order=[], **TINY)
    first = _trainer().tune(dnc.DnCModel(family="mlp"), datamodule=DigitsDataModule(),
                            dnc=dnc.DeepNCheapTuner(journal=journal, **settings))
    written = journal.read_bytes()
    monkeypatch.setenv("LOCAL_RANK", "1")
    other = tmp_path / "rank1.jsonl"
    _trainer().tune(dnc.DnCModel(family="mlp"), datamodule=DigitsDataModule(),
                    dnc=dnc.DeepNCheapTuner(journal=other, **settings))
    assert not other.exists() and not (tmp_path / "rank1.jsonl.lock").exists()
    resumed = _trainer().tune(dnc.DnCModel(family="mlp"), datamodule=DigitsDataModule(),
                              dnc=dnc.DeepNCheapTuner(resume=journal, **settings))
    assert journal.read_bytes() == written, "a rank > 0 replays the journal without appending"
    assert resumed.best_config == first.best_config
