"""Every candidate's curves go to a Lightning logger the user can open, one version per trial (item 3)."""

from __future__ import annotations

import csv

import pytest
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

import lightning_dnc as dnc
from lightning_dnc import _optional
from lightning_dnc.data import DigitsDataModule
from lightning_dnc.lightning.candidate.candidate_logs import CandidateLogs
from lightning_dnc.validation import SettingError

TINY = dict(search_epochs=2, prior_points=2, steps=0, explore=20, stage2_order=[], training_prior_points=1,
            training_steps=0, progress=False)


def _tune(trainer, tuner):
    return trainer.tune(dnc.DnCModel(family="mlp"), datamodule=DigitsDataModule(flatten=True), dnc=tuner)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_host_csv_logger_gives_one_csv_version_per_trial(tmp_path):
    host = CSVLogger(tmp_path, name="experiment")
    trainer = dnc.Trainer(max_epochs=1, logger=host, enable_checkpointing=False, enable_progress_bar=False)
    result = _tune(trainer, dnc.DeepNCheapTuner(**TINY))
    root = tmp_path / "experiment" / "dnc_search"
    assert sorted(p.name for p in root.iterdir()) == [f"trial_{t.trial_id:03d}" for t in result.trials]
    for trial in result.trials:
        rows = _rows(root / f"trial_{trial.trial_id:03d}" / "metrics.csv")
        val_acc = [float(r["val_acc"]) for r in rows if r.get("val_acc")]
        train_loss = [float(r["train_loss"]) for r in rows if r.get("train_loss")]
        # The curves logged are the ones the trial recorded.
        assert val_acc == pytest.approx(list(trial.evaluation.val_acc_curve))
        assert train_loss == pytest.approx(list(trial.evaluation.train_loss_curve))
        hparams = (root / f"trial_{trial.trial_id:03d}" / "hparams.yaml").read_text()
        assert "hidden_mlp" in hparams
    assert not (tmp_path / "experiment" / "version_0").exists(), "the host's own versions are untouched"


def test_trainer_without_logger_logs_nothing_and_explicit_folder_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trainer = dnc.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    _tune(trainer, dnc.DeepNCheapTuner(**TINY))
    assert list(tmp_path.iterdir()) == []
    _tune(trainer, dnc.DeepNCheapTuner(logger="csv", log_dir=tmp_path / "mine", **TINY))
    assert (tmp_path / "mine" / "trial_000" / "metrics.csv").is_file()


def test_tensorboard_logs_when_installed(tmp_path):
    pytest.importorskip("tensorboard")
    host = TensorBoardLogger(tmp_path, name="tb")
    trainer = dnc.Trainer(max_epochs=1, logger=host, enable_checkpointing=False, enable_progress_bar=False)
    result = _tune(trainer, dnc.DeepNCheapTuner(**TINY))
    for trial in result.trials:
        folder = tmp_path / "tb" / "dnc_search" / f"trial_{trial.trial_id:03d}"
        assert any(p.name.startswith("events.out.tfevents") for p in folder.iterdir())


def test_tensorboard_without_the_extra_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(_optional, "missing", lambda extra: ["tensorboard"] if extra == "tensorboard" else [])
    with pytest.raises(ModuleNotFoundError, match=r'pip install "lightning-dnc\[tensorboard\]"$'):
        CandidateLogs("tensorboard", tmp_path)
    with pytest.raises(SettingError, match=r"`logger` must be one of \['csv', 'tensorboard', 'none'\], got 'wandb'"):
        dnc.DeepNCheapTuner(logger="wandb")


def test_a_rerun_trial_starts_a_clean_version(tmp_path):
    logs = CandidateLogs("csv", tmp_path, "logs")
    stale = tmp_path / "logs" / "trial_003"
    stale.mkdir(parents=True)
    (stale / "metrics.csv").write_text("epoch,val_acc\n0,0.1\n")
    logger = logs.logger("trial_003")
    assert not stale.exists() and logger.log_dir == str(stale)
