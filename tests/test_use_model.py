"""After the search: test, predict, save, load and export the found model (issue 17, item 1)."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch

import lightning_dnc as dnc
from lightning_dnc import _optional
from lightning_dnc.data import DigitsDataModule

TINY = dict(search_epochs=1, prior_points=2, steps=0, explore=20, training_prior_points=1, training_steps=0,
            stage2_order=[], progress=False)
CNN_CONFIG = {"family": "cnn", "out_channels": [8, 12, 16, 16], "shortcuts": [1, 0, 0, 0], "strides": [1, 2, 1, 1],
              "apply_maxpools": [0, 0, 1, 0], "epochs": 1}


def _trainer(**kwargs) -> pl.Trainer:
    return pl.Trainer(max_epochs=kwargs.pop("max_epochs", 1), logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, **kwargs)


def test_candidate_module_is_public_and_tests_and_predicts():
    from lightning_dnc.models import CandidateModule

    assert dnc.CandidateModule is CandidateModule
    dm = DigitsDataModule()
    module = dnc.CandidateModule(CNN_CONFIG, (1, 8, 8), 10)
    trainer = _trainer()
    trainer.fit(module, datamodule=dm)
    tested = trainer.test(module, datamodule=dm, verbose=False)[0]
    assert set(tested) == {"test_loss", "test_acc"} and 0.0 <= tested["test_acc"] <= 1.0
    batches = trainer.predict(module, datamodule=dm)
    logits = torch.cat(batches)
    assert logits.shape == (dm.num_samples("test"), 10)
    # trainer.test reports what the predictions score.
    accuracy = (logits.argmax(1) == dm.targets("test")).float().mean().item()
    assert accuracy == pytest.approx(tested["test_acc"], abs=1e-6)


@pytest.mark.parametrize("family", ["cnn", "mlp"])
def test_torchscript_and_torch_export_match_the_module(family):
    config = CNN_CONFIG if family == "cnn" else {"family": "mlp", "hidden_mlp": [20, 12], "epochs": 1}
    module = dnc.CandidateModule(config, (1, 8, 8), 10).eval()
    x = torch.randn(5, 1, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated upstream; it must still work
        scripted = module.to_torchscript()
    assert torch.allclose(scripted(x), module(x), atol=1e-5)
    exported = torch.export.export(module, (x,))
    assert torch.allclose(exported.module()(x), module(x), atol=1e-5)


def test_to_onnx_runs_in_onnxruntime(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    module = dnc.CandidateModule(CNN_CONFIG, (1, 8, 8), 10).eval()
    x = torch.randn(3, 1, 8, 8)
    path = tmp_path / "model.onnx"
    module.to_onnx(path, x)
    session = ort.InferenceSession(str(path))
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert out.shape == (3, 10)
    assert abs(out - module(x).detach().numpy()).max() < 1e-4


def test_to_onnx_without_the_extra_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(_optional, "missing", lambda extra: ["onnx"] if extra == "onnx" else [])
    module = dnc.CandidateModule(CNN_CONFIG, (1, 8, 8), 10)
    with pytest.raises(ModuleNotFoundError, match=r'`to_onnx` needs onnx.*pip install "lightning-dnc\[onnx\]"$'):
        module.to_onnx(tmp_path / "m.onnx", torch.randn(1, 1, 8, 8))


def test_tuned_dnc_model_train_test_save_load_predict_export(tmp_path):
    """The README's way on: tune -> fit -> test -> save -> load -> predict -> export."""
    dm = DigitsDataModule()
    model = dnc.DnCModel(family="cnn", datamodule=dm)
    trainer = dnc.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                          enable_model_summary=False)
    space = dnc.CNNSpace(num_conv_layers=(2, 3), channels_first=(8, 12), channels_upper=24)
    trainer.tune(model, dnc=dnc.DeepNCheapTuner(wc=0.1, space=space, **TINY))
    trainer.fit(model)
    tested = trainer.test(model, verbose=False)[0]  # the carried datamodule's test split
    assert 0.0 <= tested["test_acc"] <= 1.0
    predictions = torch.cat(trainer.predict(model))
    assert predictions.shape == (dm.num_samples("test"), 10)
    path = tmp_path / "tuned.ckpt"
    trainer.save_checkpoint(path)
    loaded = dnc.DnCModel.load_from_checkpoint(path, weights_only=True).eval()
    assert loaded.config == model.config
    again = torch.cat(_trainer().predict(loaded, datamodule=dm))
    assert torch.allclose(again, predictions, atol=1e-5)
    x = dm.arrays("test")[0][:8]
    exported = torch.export.export(loaded, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    assert torch.allclose(exported.module()(x[:3]), predictions[:3], atol=1e-5), "any batch size"


def test_regression_predictions_are_in_the_targets_units():
    stats = {"mean": [150.0], "std": [75.0]}
    module = dnc.CandidateModule({"family": "mlp", "hidden_mlp": [], "epochs": 1}, (4,), 1, task="regression",
                                 target_stats=stats).eval()
    x = torch.randn(6, 4)
    raw = module.net(x)
    assert torch.allclose(module(x), raw * 75.0 + 150.0)
    assert torch.allclose(module.predict_step((x, torch.zeros(6)), 0), module(x))
    with pytest.raises(ValueError, match="`target_stats` must hold finite means and positive stds"):
        dnc.CandidateModule({"family": "mlp"}, (4,), 1, task="regression", target_stats={"mean": [0], "std": [0]})
