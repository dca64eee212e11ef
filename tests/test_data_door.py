"""Data checked at the door (issue 25, item 3): bad data is refused before anything trains.

NaN inputs or targets, labels outside the declared or inferred classes and too small splits give
one line naming the problem and the fix: exit code 2 and no results folder on the command line, a
``DataCheckError`` (a ``ValueError``) from ``trainer.tune`` in Python, before any candidate trains.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import lightning.pytorch as pl

import lightning_dnc as dnc
from lightning_dnc import cli
from lightning_dnc.data import NpzDataModule
from lightning_dnc.data.door import MIN_SAMPLES, DataCheckError
from lightning_dnc.lightning.data_source import LoaderDataModule
from lightning_dnc.lightning.candidate.evaluator import CandidateEvaluator

ONE_TRIAL = dict(search_epochs=1, prior_points=1, steps=0, explore=10, training_prior_points=0, training_steps=0,
                 max_trials=1, progress=False)


def _arrays(n_train: int = 40, n_test: int = 10, features: int = 5, classes: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"xtr": rng.normal(size=(n_train, features)).astype(np.float32), "ytr": np.arange(n_train) % classes,
            "xte": rng.normal(size=(n_test, features)).astype(np.float32), "yte": np.arange(n_test) % classes}


def _nan_input(a):
    a["xtr"][13, 2] = np.nan
    return a


def _label_99(a):
    a["ytr"][7] = 99
    return a


def _three_samples(a):
    return {**a, "xtr": a["xtr"][:3], "ytr": a["ytr"][:3]}


def _nan_target(a):
    a["ytr"] = a["xtr"][:, 0].astype(np.float64)
    a["yte"] = a["xte"][:, 0].astype(np.float64)
    a["ytr"][5] = np.inf
    return a


BAD_DATA = {  # name: (how to spoil the arrays, what the one line must say)
    "nan_input": (_nan_input, "training data's inputs hold NaN or infinite values in 1 sample(s), the first at "
                              "index 13; remove or impute them"),
    "label_99": (_label_99, "labels run up to 99 but only 5 distinct labels occur (none is 4, 5, 6, 7, 8, ...), so "
                            "the model would get 100 outputs; relabel the classes as 0..4, or pass "),
    "three_samples": (_three_samples, f"The data has 2 training and 1 validation sample(s); a search needs at "
                                      f"least {MIN_SAMPLES['train']} training and {MIN_SAMPLES['val']} validation "
                                      "samples"),
    "nan_target": (_nan_target, "training data's targets hold NaN or infinite values in 1 sample(s), the first at "
                                "index 5"),
}


def _npz(tmp_path, name: str) -> str:
    spoil, _ = BAD_DATA[name]
    path = tmp_path / f"{name}.npz"
    np.savez(path, **spoil(_arrays()))
    return str(path)


@pytest.mark.parametrize("name", sorted(BAD_DATA))
def test_cli_refuses_bad_data_in_one_line_with_code_2_and_no_folder(tmp_path, capsys, name):
    out = tmp_path / "run"
    code = cli.main(["fit", "--data", _npz(tmp_path, name), "--family", "mlp", "--out", str(out), "--max_trials", "1"])
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).strip().splitlines()
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert BAD_DATA[name][1] in lines[0]
    if name == "label_99":
        assert "pass --num_classes 100 if 100 classes are meant" in lines[0]  # spelled as the CLI takes it
    assert not out.exists(), "no results folder for data that cannot be searched"


@pytest.mark.parametrize("name", sorted(BAD_DATA))
def test_tune_raises_before_any_candidate_trains(tmp_path, monkeypatch, name):
    def never(*args, **kwargs):
        raise AssertionError("a candidate trained on data that should have been refused")

    monkeypatch.setattr(CandidateEvaluator, "evaluate", never)
    trainer = dnc.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    with pytest.raises(DataCheckError, match=BAD_DATA[name][1].split(";")[0].replace("(", r"\(").replace(")", r"\)")):
        trainer.tune(dnc.DnCModel(family="mlp"), datamodule=NpzDataModule(_npz(tmp_path, name)),
                     dnc=dnc.DeepNCheapTuner(**ONE_TRIAL))
    assert issubclass(DataCheckError, ValueError)


def test_declared_classes_accept_gaps_and_refuse_labels_beyond_them(tmp_path):
    path = _npz(tmp_path, "label_99")
    assert NpzDataModule(path, num_classes=100).num_outputs == 100  # the fix the message names
    arrays = _arrays()
    arrays["yte"][2] = 12
    np.savez(tmp_path / "twelve.npz", **arrays)
    with pytest.raises(DataCheckError, match=r"The test split has the label 12, outside the 10 declared classes "
                                             r"\(labels 0\.\.9\); fix the labels, or declare num_classes=13"):
        NpzDataModule(tmp_path / "twelve.npz", num_classes=10).setup()
    arrays = _arrays()
    arrays["ytr"] = arrays["ytr"].astype(np.float32) + 0.5
    np.savez(tmp_path / "halves.npz", **arrays)
    with pytest.raises(DataCheckError, match="class labels are not whole numbers"):
        NpzDataModule(tmp_path / "halves.npz", num_classes=4).setup()


def test_cli_num_classes_option(tmp_path, capsys):
    from lightning_dnc.cli.parser import build_parser
    from lightning_dnc.cli.plan import resolve_run

    args = build_parser().parse_args(["search", "--data", _npz(tmp_path, "label_99"), "--num_classes", "100",
                                      "--family", "mlp", "--out", str(tmp_path / "ok")])
    assert resolve_run(args.search).datamodule.num_outputs == 100
    out = tmp_path / "run"
    assert cli.main(["fit", "--data", "digits", "--num_classes", "12", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "--num_classes applies to .npz data" in captured.out + captured.err
    assert not out.exists()


class _UserData(pl.LightningDataModule):
    """A user's own datamodule over tensors (not one of ours)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, num_outputs: int = 4) -> None:
        super().__init__()
        self.x, self.y, self.batch_size = x, y, 8
        self.input_shape, self.num_outputs, self.task = tuple(x.shape[1:]), num_outputs, "classification"

    def train_dataloader(self):
        return DataLoader(TensorDataset(self.x[:32], self.y[:32]), batch_size=self.batch_size)

    def val_dataloader(self):
        return DataLoader(TensorDataset(self.x[32:], self.y[32:]), batch_size=self.batch_size)


def test_a_users_own_datamodule_is_checked_before_training(monkeypatch):
    monkeypatch.setattr(CandidateEvaluator, "evaluate", lambda *a, **k: pytest.fail("trained on bad data"))
    trainer = dnc.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    x, y = torch.randn(40, 5), torch.arange(40) % 4
    bad_x = x.clone()
    bad_x[35, 1] = float("nan")
    with pytest.raises(DataCheckError, match="validation split's inputs hold NaN .* the first at index 3;"):
        trainer.tune(dnc.DnCModel(family="mlp"), datamodule=_UserData(bad_x, y), dnc=dnc.DeepNCheapTuner(**ONE_TRIAL))
    bad_y = y.clone()
    bad_y[3] = 7
    with pytest.raises(DataCheckError, match="training split has the label 7, outside the 4 declared classes"):
        trainer.tune(dnc.DnCModel(family="mlp"), datamodule=_UserData(x, bad_y), dnc=dnc.DeepNCheapTuner(**ONE_TRIAL))
    small = _UserData(x[:33], y[:33])
    with pytest.raises(DataCheckError, match="1 validation sample"):
        trainer.tune(dnc.DnCModel(family="mlp"), datamodule=small, dnc=dnc.DeepNCheapTuner(**ONE_TRIAL))


def test_plain_loaders_with_a_gap_in_the_labels_need_num_outputs():
    y = torch.arange(40) % 3
    y[0] = 9
    loaders = [DataLoader(TensorDataset(torch.randn(40, 5), y)) for _ in range(2)]
    with pytest.raises(DataCheckError, match=r"pass num_outputs=10 \(datamodule=LoaderDataModule\("):
        LoaderDataModule(*loaders)
    assert LoaderDataModule(*loaders, num_outputs=10).num_outputs == 10
