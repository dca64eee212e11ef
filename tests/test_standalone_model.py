"""Models that stand alone (issue 25, item 4): the input normalisation is part of the trained model.

A model from ``best.ckpt`` and its TorchScript, ``torch.export`` and ONNX programs take inputs in
the user's units and predict what the search's network predicts on normalised inputs; the search
itself trains exactly as when the datamodule normalised; ``to_onnx(path)`` and the model summary's
FLOPs work without an input; checkpoints from before still load.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from lightning.pytorch.utilities.model_summary import ModelSummary

import lightning_dnc as dnc
from lightning_dnc.data import CIFAR10DataModule, DigitsDataModule
from lightning_dnc.lightning.candidate.evaluator import CandidateEvaluator
from lightning_dnc.lightning.final_fit import train_final_model
from lightning_dnc.models import CandidateModule
from lightning_dnc.models.inputs import InputNormalization, check_input_stats

CNN = {"family": "cnn", "out_channels": [8, 12, 16, 16], "shortcuts": [1, 0, 0, 0], "strides": [1, 2, 1, 1],
       "apply_maxpools": [0, 0, 1, 0], "lr": 3e-3, "batch_size": 64}
CPU = {"accelerator": "cpu", "devices": 1, "precision": None}


class DataNormalised(CandidateModule):
    """A CandidateModule that takes no ``input_stats``: the datamodule normalises for it (the old way)."""

    def __init__(self, config, input_shape, num_outputs, task="classification", epochs=None, target_stats=None,
                 own_steps=False):
        super().__init__(config, input_shape, num_outputs, task, epochs, target_stats, own_steps)


def _running(module):
    """What a datamodule reads of the trainer that runs ``module`` (a CPU, one process)."""
    return SimpleNamespace(lightning_module=module, strategy=SimpleNamespace(root_device=torch.device("cpu")),
                           global_rank=0, world_size=1)


def _write_cifar(root, per_file: int = 8) -> None:
    import pickle

    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(base / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (per_file, 3072), dtype=np.uint8),
                         "labels": list(rng.integers(0, 10, per_file))}, f)


def test_model_normalised_batches_equal_datamodule_normalised_ones_bit_for_bit(tmp_path):
    """Augmented uint8 images: crop, flip, scale and normalise give the same floats either way."""
    _write_cifar(tmp_path)
    served = {}
    for who, module in (("model", CandidateModule(CNN, (3, 32, 32), 10, input_stats={"scale": 1.0})),
                        ("datamodule", DataNormalised(CNN, (3, 32, 32), 10))):
        dm = CIFAR10DataModule(root=tmp_path, batch_size=16, augment=True, seed=3)
        dm.trainer = _running(module)
        served[who] = {stage: [xb for xb, _ in getattr(dm, f"{stage}_dataloader")()] for stage in ("train", "val")}
    layer = InputNormalization(**check_input_stats(dm.input_stats, dm.input_shape))
    assert float(served["model"]["train"][0].max()) > 1.0, "the model is served pixels in 0..255"
    for stage in ("train", "val"):
        for raw, normalised in zip(served["model"][stage], served["datamodule"][stage], strict=True):
            assert torch.equal(layer(raw), normalised)


def test_search_trains_the_same_whether_model_or_datamodule_normalises():
    runs = {}
    for who, module_class in (("model", None), ("datamodule", DataNormalised)):
        evaluator = CandidateEvaluator(DigitsDataModule(), accelerator="cpu", module_class=module_class,
                                       measure_costs=False)
        runs[who] = evaluator.evaluate({**CNN, "epochs": 2})
    assert runs["model"].status == "ok"
    for curve in ("val_acc_curve", "val_loss_curve", "train_loss_curve"):
        assert getattr(runs["model"], curve) == getattr(runs["datamodule"], curve)


def test_best_ckpt_and_its_exports_take_raw_inputs(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    dm = DigitsDataModule()
    ckpt = tmp_path / "best.ckpt"
    final = train_final_model(CNN, dm, epochs=2, hardware=CPU, checkpoint=ckpt)
    loaded = CandidateModule.load_from_checkpoint(ckpt, weights_only=True).eval()
    assert loaded.expects_raw_inputs
    raw, labels = dm.arrays("test")  # pixels 0..16, as sklearn gives them
    assert float(raw.max()) == 16.0
    # The search's network (no normalisation of its own) on the datamodule's normalised inputs.
    network = DataNormalised(CNN, dm.input_shape, 10).eval()
    network.load_state_dict(loaded.state_dict())
    with torch.no_grad():
        expected = network(dm.arrays("test", normalized=True)[0])
        got = loaded(raw)
    assert torch.allclose(got, expected, atol=1e-5)
    accuracy = (got.argmax(1) == labels).float().mean().item()
    assert accuracy == pytest.approx(final["test_acc"], abs=1e-6) and accuracy > 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated upstream; it must still work
        scripted = loaded.to_torchscript()
    assert torch.allclose(scripted(raw), expected, atol=1e-5)
    exported = torch.export.export(loaded, (raw[:4],), dynamic_shapes=({0: torch.export.Dim("batch")},))
    assert torch.allclose(exported.module()(raw), expected, atol=1e-5)
    path = tmp_path / "model.onnx"
    loaded.to_onnx(path)  # no input: example_input_array, any batch size
    session = ort.InferenceSession(str(path))
    out = session.run(None, {session.get_inputs()[0].name: raw.numpy()})[0]
    assert np.abs(out - expected.numpy()).max() < 1e-4


def test_example_input_array_gives_onnx_and_summary_flops_without_an_input(tmp_path):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    dm = DigitsDataModule(flatten=True)
    model = dnc.DnCModel(family="mlp", datamodule=dm).eval()
    assert tuple(model.example_input_array.shape) == (1, 64) and model.expects_raw_inputs
    assert ModelSummary(model).total_flops > 0
    raw = dm.arrays("test")[0][:5]
    for dynamo in (True, False):  # torch.export-based and TorchScript-based exporters: any batch size
        path = tmp_path / f"mlp_{dynamo}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated upstream
            model.to_onnx(path, dynamo=dynamo)
        session = ort.InferenceSession(str(path))
        out = session.run(None, {session.get_inputs()[0].name: raw.numpy()})[0]
        assert np.abs(out - model(raw).detach().numpy()).max() < 1e-4


def test_checkpoints_without_input_stats_still_load_and_get_normalised_batches(tmp_path):
    """A module saved before models normalised (no ``input_stats``): identity layer, normalised batches."""
    dm = DigitsDataModule()
    old = CandidateModule({**CNN, "epochs": 1}, dm.input_shape, 10)
    path = tmp_path / "old.ckpt"
    trainer = dnc.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                          enable_model_summary=False, accelerator="cpu")
    trainer.fit(old, datamodule=dm)
    trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=False)
    del saved["hyper_parameters"]["input_stats"]
    torch.save(saved, path)
    loaded = CandidateModule.load_from_checkpoint(path, weights_only=False).eval()
    assert not loaded.expects_raw_inputs
    predicted = torch.cat(trainer.predict(loaded, datamodule=dm))
    with torch.no_grad():
        assert torch.allclose(predicted, loaded(dm.arrays("test", normalized=True)[0]), atol=1e-5)
