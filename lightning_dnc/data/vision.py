"""torchvision image datasets (MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100) held in memory as uint8.

Files are read from torchvision's on-disk layout under ``root`` (``root/MNIST/raw/*-ubyte``,
``root/cifar-10-batches-py/data_batch_*``, ...). With ``download=True`` torchvision fetches and
verifies them first. SPEC §2 augmentation (random crop with padding 4 and horizontal flip for
CIFAR and Fashion-MNIST, none for MNIST) runs batched on the training device and can be switched
off with ``augment=False``.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightning_dnc.data.base import InMemoryDataModule, RawData

# Per-channel statistics of each training set, on [0, 1] pixel values.
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
FASHION_MEAN, FASHION_STD = (0.2860,), (0.3530,)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)


class _TorchvisionDataModule(InMemoryDataModule):
    scale = 1.0 / 255.0
    num_classes = 10
    default_augment: bool | str = "auto"

    def __init__(self, root: str | os.PathLike[str] = "data", download: bool = False, batch_size: int = 256,
                 val_split: float = 0.2, split: str = "tail", seed: int = 0, augment: bool | str | None = None,
                 loader: str = "auto", num_workers: int | None = None) -> None:
        super().__init__(batch_size=batch_size, val_split=val_split, split=split, seed=seed,
                         augment=self.default_augment if augment is None else augment, loader=loader,
                         num_workers=num_workers)
        self.root = Path(root)
        self.download = bool(download)
        self._task = "classification"
        self._num_outputs = self.num_classes


class _IdxDataModule(_TorchvisionDataModule):
    """MNIST-format datasets: torchvision reads ``root/<Name>/raw/*-idx?-ubyte``."""

    torchvision_name = "MNIST"

    def _load(self) -> RawData:
        import torchvision

        cls = getattr(torchvision.datasets, self.torchvision_name)
        folder = self.root / self.torchvision_name / "raw"
        files = [name.rsplit(".gz", 1)[0] for name, _ in cls.resources]
        where = f"put {', '.join(files)} (or their .gz) into {str(folder)!r}"
        with fetching(self.torchvision_name, self.download, [self.root, folder.parent, folder], where):
            train = cls(str(self.root), train=True, download=self.download)
            test = cls(str(self.root), train=False, download=self.download)
        return RawData(train.data.unsqueeze(1).contiguous(), train.targets.long(),
                       test.data.unsqueeze(1).contiguous(), test.targets.long())


class MNISTDataModule(_IdxDataModule):
    """MNIST (1x28x28, 10 classes); no augmentation (SPEC §2). See the module docstring."""

    torchvision_name = "MNIST"
    mean, std = MNIST_MEAN, MNIST_STD
    default_augment = False


class FashionMNISTDataModule(_IdxDataModule):
    """Fashion-MNIST (1x28x28, 10 classes); crop (padding 4) + flip when ``augment``."""

    torchvision_name = "FashionMNIST"
    mean, std = FASHION_MEAN, FASHION_STD
    crop_padding, hflip = 4, True


class CIFAR10DataModule(_TorchvisionDataModule):
    """CIFAR-10 (3x32x32, 10 classes); crop (padding 4) + flip when ``augment``.

    Reads the python pickle batches in ``root/cifar-10-batches-py`` directly (no checksum check,
    so small test files work); ``download=True`` lets torchvision download and verify them first.
    """

    mean, std = CIFAR10_MEAN, CIFAR10_STD
    crop_padding, hflip = 4, True
    folder = "cifar-10-batches-py"
    train_files = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
    test_files = ("test_batch",)
    label_key = "labels"
    torchvision_name = "CIFAR10"

    def _read(self, names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = [], []
        for name in names:
            path = self.root / self.folder / name
            if not path.is_file():
                raise FileNotFoundError(
                    f"{self.torchvision_name} file {str(path)!r} not found under `root`={str(self.root)!r}. "
                    "Pass `download=True` to fetch the dataset."
                )
            with open(path, "rb") as f:
                entry = _CifarUnpickler(f, encoding="latin1").load()
            images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(entry[self.label_key], dtype=np.int64))
        return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))

    def _load(self) -> RawData:
        if self.download:
            import torchvision

            cls = getattr(torchvision.datasets, self.torchvision_name)
            where = (f"extract {cls.filename} ({cls.url}) into {str(self.root)!r} so that "
                     f"{str(self.root / self.folder)!r} holds {', '.join((*self.train_files, *self.test_files))}")
            created = [self.root, self.root / cls.filename, self.root / self.folder]
            with fetching(self.torchvision_name, True, created, where):
                cls(str(self.root), train=True, download=True)
        x_train, y_train = self._read(self.train_files)
        x_test, y_test = self._read(self.test_files)
        return RawData(x_train, y_train, x_test, y_test)


class CIFAR100DataModule(CIFAR10DataModule):
    """CIFAR-100 (3x32x32, 100 fine classes); crop (padding 4) + flip when ``augment``."""

    mean, std = CIFAR100_MEAN, CIFAR100_STD
    num_classes = 100
    folder = "cifar-100-python"
    train_files = ("train",)
    test_files = ("test",)
    label_key = "fine_labels"
    torchvision_name = "CIFAR100"


@contextlib.contextmanager
def fetching(name: str, download: bool, created: Sequence[Path], where: str) -> Iterator[None]:
    """Run torchvision's loading quietly; on failure remove what it created and raise one clear line.

    Parameters
    ----------
    name : str
        The dataset, for the message.
    download : bool
        Whether torchvision was asked to download.
    created : sequence of Path
        Files and folders the attempt may create; those that did not exist before are removed
        again when it fails (no empty or half-downloaded leftovers).
    where : str
        What the user should put where, e.g. ``"put train-images-idx3-ubyte, ... into 'data/MNIST/raw'"``.

    Raises
    ------
    FileNotFoundError
        One line: what failed, where the files go, and ``download`` advice that fits.
    """
    created = sorted({*created, *(parent for path in created for parent in path.parents)})
    before = {path: path.exists() for path in created}
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            yield
    except (RuntimeError, OSError, ValueError) as err:
        for path in sorted(created, key=lambda p: len(p.absolute().parts), reverse=True):
            if not before[path] and path.exists():
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        if download:
            message = (f"{name} could not be downloaded ({reason}); without internet access {where}, then pass "
                       "download=False (--download false).")
        else:
            message = f"{name} is not under `root` ({reason}): {where}, or pass download=True (--download true)."
        raise FileNotFoundError(message) from err


class _CifarUnpickler(pickle.Unpickler):
    """Reads CIFAR's python batches (dicts of bytes, lists and numpy arrays) and nothing else.

    The format is a pickle; refusing every other global means a planted file under ``root``
    cannot run code on load.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"CIFAR batch files may only hold arrays; refusing to load {module}.{name} from a file under `root`."
            )
        return super().find_class(module, name)

