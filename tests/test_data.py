"""Datamodules: digits, torchvision formats on tiny files, npz, splits, loaders, augmentation."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
import torch

from lightning_dnc.data import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    DigitsDataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
    NpzDataModule,
    TensorLoader,
    check_datamodule,
    make_datamodule,
    random_crop,
    random_hflip,
)

# ----------------------------------------------------------------------------- tiny on-disk files


def _write_idx(path, array: np.ndarray) -> None:
    """torchvision's MNIST on-disk format: big-endian magic (0, 0, 8=uint8, ndim) then dims."""
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _write_mnist(root, name: str, n_train: int = 30, n_test: int = 10) -> np.ndarray:
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    _write_idx(raw / "train-images-idx3-ubyte", images)
    _write_idx(raw / "train-labels-idx1-ubyte", np.arange(n_train) % 10)
    _write_idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8))
    _write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(n_test) % 10)
    return images


def _write_cifar(root, folder: str, train_files, test_files, label_key: str, classes: int, per_file: int = 8):
    base = root / folder
    base.mkdir(parents=True)
    rng = np.random.default_rng(1)
    first = None
    for name in (*train_files, *test_files):
        data = rng.integers(0, 256, (per_file, 3072), dtype=np.uint8)
        first = data if first is None else first
        with open(base / name, "wb") as f:
            pickle.dump({"data": data, label_key: list(rng.integers(0, classes, per_file))}, f)
    return first


# ----------------------------------------------------------------------------- digits


def test_digits_shapes_splits_and_normalisation():
    dm = DigitsDataModule()
    assert dm.input_shape == (1, 8, 8) and dm.num_outputs == 10 and dm.task == "classification"
    n_train, n_val, n_test = (dm.num_samples(s) for s in ("train", "val", "test"))
    assert n_train + n_val + n_test == 1797 and n_test == 359 and n_val == round(0.2 * 1438)
    x, y = dm.arrays("train", normalized=True)
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.05
    assert float(dm.arrays("train")[0].max()) == 16.0, "by default inputs in the user's units (pixels 0..16)"
    flat = DigitsDataModule(flatten=True)
    assert flat.input_shape == (64,)
    assert torch.allclose(flat.arrays("val")[0], dm.arrays("val")[0].reshape(-1, 64))


def test_tail_and_random_validation_splits():
    from sklearn.datasets import load_digits

    target = torch.as_tensor(load_digits().target)
    tail = DigitsDataModule(split="tail")
    n_val = tail.num_samples("val")
    assert torch.equal(tail.arrays("val")[1], target[1438 - n_val : 1438])
    rand_a, rand_b = DigitsDataModule(split="random", seed=3), DigitsDataModule(split="random", seed=3)
    assert torch.equal(rand_a.arrays("val")[1], rand_b.arrays("val")[1])
    assert not torch.equal(rand_a.arrays("val")[1], tail.arrays("val")[1])
    assert rand_a.num_samples("val") == n_val


def test_train_loader_shuffles_each_epoch_keeps_last_partial_batch():
    dm = DigitsDataModule(batch_size=500)
    loader = dm.train_dataloader()
    n = dm.num_samples("train")
    assert len(loader) == -(-n // 500)
    epoch1 = [y for _, y in loader]
    epoch2 = [y for _, y in loader]
    assert [len(b) for b in epoch1][-1] == n - 500 * (len(loader) - 1)
    assert not torch.equal(torch.cat(epoch1), torch.cat(epoch2))
    assert torch.equal(torch.cat(epoch1).sort().values, dm.arrays("train")[1].sort().values)
    val = [y for _, y in dm.val_dataloader()]
    assert torch.equal(torch.cat(val), dm.arrays("val")[1])  # in order, no shuffling
    dm.batch_size = 100
    assert len(dm.train_dataloader()) == -(-n // 100)


def test_dataloader_path_matches_tensor_path():
    dm = DigitsDataModule(loader="dataloader", num_workers=0, batch_size=128)
    loader = dm.val_dataloader()
    assert isinstance(loader, torch.utils.data.DataLoader)
    x = torch.cat([xb for xb, _ in loader])
    assert torch.allclose(x, dm.arrays("val")[0])


def test_tensor_loader_shards_ranks_equally():
    x = torch.arange(10).float()[:, None]
    y = torch.arange(10)
    shards = [TensorLoader(x, y, 2, shuffle=True, seed=5, rank=r, world_size=3) for r in range(3)]
    got = [torch.cat([yb for _, yb in s]) for s in shards]
    assert {len(g) for g in got} == {4}
    assert set(torch.cat(got).tolist()) == set(range(10))
    with pytest.raises(ValueError, match="`batch_size` must be an int >= 1"):
        TensorLoader(x, y, 0)


# ----------------------------------------------------------------------------- augmentation


def test_random_crop_and_flip_are_batched_and_shape_preserving():
    gen = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5) + 1
    crops = random_crop(x, 4, gen)
    assert crops.shape == x.shape
    for i in range(2):  # every crop is a window of the zero-padded image
        padded = torch.nn.functional.pad(x[i], (4, 4, 4, 4))
        windows = [padded[:, r : r + 5, c : c + 5] for r in range(9) for c in range(9)]
        assert any(torch.equal(crops[i], w) for w in windows)
    flips = torch.stack([random_hflip(x, gen) for _ in range(20)])
    assert any(torch.equal(f, x.flip(3)[0]) for f in flips[:, 0]) and any(torch.equal(f, x[0]) for f in flips[:, 0])


# ----------------------------------------------------------------------------- torchvision formats


@pytest.mark.parametrize("cls,name", [(MNISTDataModule, "MNIST"), (FashionMNISTDataModule, "FashionMNIST")])
def test_idx_datasets_read_torchvision_files(tmp_path, cls, name):
    images = _write_mnist(tmp_path, name)
    dm = cls(root=tmp_path, download=False, batch_size=8, val_split=0.2)
    assert dm.input_shape == (1, 28, 28) and dm.num_outputs == 10
    assert dm.num_samples("train") == 24 and dm.num_samples("val") == 6 and dm.num_samples("test") == 10
    x, y = dm.arrays("train", normalized=True)
    mean, std = dm.mean[0], dm.std[0]
    assert torch.allclose(x[0, 0], (torch.as_tensor(images[0]).float() / 255 - mean) / std, atol=1e-5)
    assert y[:3].tolist() == [0, 1, 2]
    xb, _ = next(iter(dm.train_dataloader()))
    assert xb.shape == (8, 1, 28, 28) and xb.dtype == torch.float32
    assert dm.augments == (cls is FashionMNISTDataModule)
    if cls is FashionMNISTDataModule:  # augment="auto": CNN inputs only, as in the paper
        assert dm.augment == "auto"
        dm.use_family("mlp")
        assert not dm.augments and not dm._transforms["train"].augments
        dm.use_family("cnn")
        assert dm.augments and dm._transforms["train"].augments


def test_missing_files_give_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        MNISTDataModule(root=tmp_path).input_shape
    with pytest.raises(FileNotFoundError, match="data_batch_1.*download=True"):
        CIFAR10DataModule(root=tmp_path).input_shape


def test_cifar10_reads_python_batches_and_augments(tmp_path):
    first = _write_cifar(tmp_path, "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)],
                         ["test_batch"], "labels", 10)
    dm = CIFAR10DataModule(root=tmp_path, batch_size=16, val_split=0.25)
    assert dm.input_shape == (3, 32, 32) and dm.num_outputs == 10
    assert dm.num_samples("train") == 30 and dm.num_samples("val") == 10 and dm.num_samples("test") == 8
    raw = torch.as_tensor(first[0]).reshape(3, 32, 32).float() / 255
    mean, std = torch.tensor(dm.mean)[:, None, None], torch.tensor(dm.std)[:, None, None]
    assert torch.allclose(dm.arrays("train", normalized=True)[0][0], (raw - mean) / std, atol=1e-5)
    train_x = torch.cat([xb for xb, _ in dm.train_dataloader()])
    assert train_x.shape == (30, 3, 32, 32)
    # augmented training batches differ from the plain images; validation batches do not
    assert not torch.allclose(train_x.sort(0).values, dm.arrays("train")[0].sort(0).values)
    assert torch.allclose(torch.cat([xb for xb, _ in dm.val_dataloader()]), dm.arrays("val")[0])
    plain = CIFAR10DataModule(root=tmp_path, batch_size=64, val_split=0.25, augment=False, split="tail")
    assert torch.allclose(torch.cat([xb for xb, _ in plain.train_dataloader()]).sort(0).values,
                          plain.arrays("train")[0].sort(0).values)


def test_cifar100_reads_fine_labels(tmp_path):
    _write_cifar(tmp_path, "cifar-100-python", ["train"], ["test"], "fine_labels", 100, per_file=10)
    dm = CIFAR100DataModule(root=tmp_path, batch_size=4)
    assert dm.num_outputs == 100 and dm.num_samples("train") == 8 and dm.num_samples("test") == 10


# ----------------------------------------------------------------------------- npz


def _write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_npz_classification_images_and_flat(tmp_path):
    rng = np.random.default_rng(0)
    path = _write_npz(tmp_path / "img.npz", xtr=rng.random((20, 2, 5, 5), dtype=np.float32),
                      ytr=np.arange(20) % 4, xte=rng.random((6, 2, 5, 5), dtype=np.float32), yte=np.arange(6) % 4)
    dm = NpzDataModule(path, batch_size=8)
    assert dm.input_shape == (2, 5, 5) and dm.num_outputs == 4 and dm.task == "classification"
    assert dm.num_samples("test") == 6
    flat = _write_npz(tmp_path / "flat.npz", xtr=rng.random((20, 7)), ytr=np.arange(20) % 3,
                      xte=rng.random((5, 7)), yte=np.arange(5) % 3)
    dm = make_datamodule(flat, batch_size=4)
    assert isinstance(dm, NpzDataModule) and dm.input_shape == (7,) and dm.num_outputs == 3


@pytest.mark.parametrize("target_shape", [(30,), (30, 1), (30, 2)])
def test_npz_regression_targets(tmp_path, target_shape):
    rng = np.random.default_rng(1)
    path = _write_npz(tmp_path / "reg.npz", xtr=rng.random((30, 4)), ytr=rng.random(target_shape),
                      xte=rng.random((5, 4)), yte=rng.random((5, *target_shape[1:])))
    dm = NpzDataModule(path)
    assert dm.task == "regression"
    assert dm.num_outputs == (1 if len(target_shape) == 1 else target_shape[1])
    _, y = next(iter(dm.train_dataloader()))
    assert y.dtype == torch.float32 and y.shape[1:] == target_shape[1:]


def test_npz_missing_key_is_named(tmp_path):
    path = _write_npz(tmp_path / "bad.npz", xtr=np.zeros((4, 2)), ytr=np.zeros(4), xte=np.zeros((2, 2)))
    with pytest.raises(KeyError, match=r"lacks the key\(s\) \['yte'\]"):
        NpzDataModule(path).input_shape


# ----------------------------------------------------------------------------- factory and checks


def test_make_datamodule_names_and_errors(tmp_path):
    assert isinstance(make_datamodule("digits", flatten=True), DigitsDataModule)
    assert isinstance(make_datamodule("Fashion-MNIST", root=tmp_path), FashionMNISTDataModule)
    assert isinstance(make_datamodule("cifar100", root=tmp_path), CIFAR100DataModule)
    with pytest.raises(ValueError, match=r"Unknown dataset 'imagenet'; use one of \['digits', 'mnist'"):
        make_datamodule("imagenet")


def test_check_datamodule_requires_batch_size():
    import lightning.pytorch as pl

    class NoBatch(pl.LightningDataModule):
        input_shape, num_outputs, task = (3,), 2, "classification"

    with pytest.raises(TypeError, match=r"no `batch_size` attribute.*self.batch_size = batch_size"):
        check_datamodule(NoBatch())
    dm = NoBatch()
    dm.batch_size = 4
    assert check_datamodule(dm).input_shape == (3,)
    del NoBatch.num_outputs
    with pytest.raises(TypeError, match="no `num_outputs` attribute"):
        check_datamodule(dm)
    assert check_datamodule(dm, num_outputs=5).num_outputs == 5


def test_constructor_arguments_are_validated():
    with pytest.raises(ValueError, match="`val_split` must be a fraction in \\(0, 1\\), got 1.5"):
        DigitsDataModule(val_split=1.5)
    with pytest.raises(ValueError, match="`split` must be one of \\['tail', 'random'\\]"):
        DigitsDataModule(split="head")
    with pytest.raises(ValueError, match="`batch_size` must be an int >= 1"):
        DigitsDataModule(batch_size=0)


def test_cifar_batch_with_a_planted_object_is_refused(tmp_path):
    import os
    import pickle

    from lightning_dnc.data import CIFAR10DataModule

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        with open(folder / name, "wb") as f:
            pickle.dump({"data": Payload(), "labels": [0]}, f)
    dm = CIFAR10DataModule(root=str(tmp_path), download=False)
    with pytest.raises(pickle.UnpicklingError, match="may only hold arrays"):
        dm.setup("fit")


def test_tuning_an_mlp_switches_auto_augmentation_off(tmp_path):
    import lightning_dnc as dnc
    from lightning_dnc.executors import InProcessExecutor
    from lightning_dnc.search import Evaluation

    _write_mnist(tmp_path, "FashionMNIST")
    dm = FashionMNISTDataModule(root=tmp_path, download=False, batch_size=8)
    assert dm.augments  # "auto" before the family is known
    fake = InProcessExecutor(lambda c: Evaluation(config=dict(c), best_val_acc=0.5, t_tr=0.1, n_params=10))
    tuner = dnc.DeepNCheapTuner(prior_points=1, steps=0, explore=5, search_epochs=1, stage2_order=[],
                                training_prior_points=0, training_steps=0, progress=False, executor=fake)
    trainer = dnc.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu")
    trainer.tune(dnc.DnCModel(family="mlp"), datamodule=dm, dnc=tuner)
    assert dm.family == "mlp" and not dm.augments
