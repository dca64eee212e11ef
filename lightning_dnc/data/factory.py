"""``make_datamodule``: a datamodule from a dataset name or an ``.npz`` path."""

from __future__ import annotations

import os
from typing import Any

from lightning_dnc.data.base import InMemoryDataModule
from lightning_dnc.data.digits import DigitsDataModule
from lightning_dnc.data.npz import NpzDataModule
from lightning_dnc.data.vision import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
)

DATAMODULES: dict[str, type[InMemoryDataModule]] = {
    "digits": DigitsDataModule,
    "mnist": MNISTDataModule,
    "fashion_mnist": FashionMNISTDataModule,
    "cifar10": CIFAR10DataModule,
    "cifar100": CIFAR100DataModule,
}


def make_datamodule(name_or_path: str | os.PathLike[str], **kwargs: Any) -> InMemoryDataModule:
    """Build the datamodule for a dataset name or an ``.npz`` file.

    Parameters
    ----------
    name_or_path : str or path-like
        One of ``digits``, ``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100`` (case and ``-``
        insensitive), or a path ending in ``.npz``.
    **kwargs
        Passed to the datamodule (e.g. ``batch_size``, ``root``, ``download``, ``flatten``).

    Raises
    ------
    ValueError
        For an unknown name (the message lists the allowed ones).
    """
    text = os.fspath(name_or_path)
    if text.lower().endswith(".npz"):
        return NpzDataModule(text, **kwargs)
    key = text.lower().replace("-", "_")
    if key == "fashionmnist":
        key = "fashion_mnist"
    if key not in DATAMODULES:
        raise ValueError(
            f"Unknown dataset {text!r}; use one of {list(DATAMODULES)} or a path to a .npz file with keys "
            "xtr, ytr, xte, yte."
        )
    return DATAMODULES[key](**kwargs)
