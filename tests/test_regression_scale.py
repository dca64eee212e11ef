"""Regression that responds to wc: standardised targets while searching, metrics in the user's units (item 6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from rich.console import Console

import lightning_dnc as dnc
from lightning_dnc.data import NpzDataModule
from lightning_dnc.lightning.final_fit import train_final_model
from lightning_dnc.results.report import write_report


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory):
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    path = tmp_path_factory.mktemp("diabetes") / "diabetes.npz"
    np.savez(path, xtr=x[:350].astype(np.float32), ytr=y[:350].astype(np.float32),
             xte=x[350:].astype(np.float32), yte=y[350:].astype(np.float32))
    return path


@pytest.fixture(scope="module")
def searched(diabetes):
    dm = NpzDataModule(diabetes, batch_size=32)
    model = dnc.DnCModel(family="mlp", datamodule=dm)
    trainer = dnc.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                          enable_model_summary=False)
    tuner = dnc.DeepNCheapTuner(wc=0.1, penalize="n_params", search_epochs=3, prior_points=4, steps=0, explore=20,
                                stage2_order=[], training_prior_points=0, training_steps=0, progress=False,
                                strategy="paper")  # stage 1 at the default lr: a stable fit in 3 epochs
    with pytest.warns(UserWarning, match="training split has 280 samples"):
        result = trainer.tune(model, dnc=tuner)
    return dm, model, trainer, result


def test_search_loss_is_on_the_standardised_scale_and_metrics_in_user_units(searched):
    dm, _, _, result = searched
    y_std = float(dm.targets("train").std())
    assert y_std > 50, "diabetes targets are in the hundreds"
    for trial in result.trials:
        ev = trial.evaluation
        assert ev.ok and ev.task == "regression"
        # The MSE of standardised targets (about 1 - R²), not ~3e4 as in the targets' units.
        assert 0.0 < ev.best_val_loss < 10.0
        metrics = ev.extra["regression"]
        assert set(metrics) == {"rmse", "mae", "r2"}
        # RMSE in the user's units is sqrt(standardised MSE) * target std (same epoch, same split).
        assert metrics["rmse"] == pytest.approx(math.sqrt(ev.best_val_loss) * y_std, rel=0.02)
        assert 0 < metrics["mae"] <= metrics["rmse"] and metrics["r2"] <= 1.0


def test_wc_changes_which_network_wins(searched):
    result = searched[3]
    accurate = result.rescore(wc=0.0).best
    cheap = result.rescore(wc=100.0).best
    assert accurate.trial_id != cheap.trial_id
    assert cheap.trial.evaluation.n_params < accurate.trial.evaluation.n_params
    assert accurate.trial.evaluation.best_val_loss < cheap.trial.evaluation.best_val_loss


def test_predictions_and_test_metrics_of_the_tuned_model_are_in_user_units(searched):
    dm, model, trainer, _ = searched
    trainer.fit(model)
    tested = trainer.test(model, verbose=False)[0]
    assert {"test_loss", "test_rmse", "test_mae", "test_r2"} <= set(tested)
    predictions = torch.cat(trainer.predict(model)).squeeze(1)
    targets = dm.targets("test")
    rmse = float(torch.sqrt(((predictions - targets) ** 2).mean()))
    assert rmse == pytest.approx(tested["test_rmse"], rel=1e-3)
    assert abs(float(predictions.mean()) - float(dm.targets("train").mean())) < float(dm.targets("train").std())


def test_final_training_and_report_show_rmse_mae_r2(searched, diabetes, tmp_path):
    result = searched[3]
    dm = NpzDataModule(diabetes, batch_size=32)
    final = train_final_model(result.best_config, dm, 2, {"accelerator": "cpu"})
    for key in ("val_rmse", "val_mae", "val_r2", "test_rmse", "test_mae", "test_r2"):
        assert math.isfinite(final[key]), key
    console = Console(record=True, width=200)
    report = write_report(tmp_path, result, final, search_seconds=1.0, wc=0.1, penalize="n_params", console=console)
    text = report.read_text()
    assert "| rank | trial | RMSE | MAE | R² |" in text
    shown = console.export_text()
    assert "search val RMSE / MAE / R²" in shown and "final test_rmse" in shown and "final test_r2" in shown
