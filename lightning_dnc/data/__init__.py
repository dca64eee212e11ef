"""Datasets as LightningDataModules that expose ``batch_size``, ``input_shape``, ``num_outputs``, ``task``."""

from lightning_dnc.data.base import DataModuleContractError, DatasetInfo, InMemoryDataModule, RawData, check_datamodule
from lightning_dnc.data.digits import DigitsDataModule
from lightning_dnc.data.door import MIN_SAMPLES, DataCheckError, check_data
from lightning_dnc.data.factory import DATAMODULES, make_datamodule
from lightning_dnc.data.loaders import TensorLoader
from lightning_dnc.data.npz import NpzDataModule
from lightning_dnc.data.transforms import BatchTransform, random_crop, random_hflip
from lightning_dnc.data.vision import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
)

__all__ = [
    "DATAMODULES",
    "MIN_SAMPLES",
    "DataCheckError",
    "BatchTransform",
    "CIFAR100DataModule",
    "CIFAR10DataModule",
    "DatasetInfo",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "InMemoryDataModule",
    "MNISTDataModule",
    "NpzDataModule",
    "RawData",
    "TensorLoader",
    "DataModuleContractError",
    "check_data",
    "check_datamodule",
    "make_datamodule",
    "random_crop",
    "random_hflip",
]
