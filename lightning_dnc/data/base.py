"""In-memory datamodules: the shared machinery (splits, normalisation, loaders, device residency).

A subclass implements :meth:`InMemoryDataModule._load` returning train and test tensors; this base
class splits off the validation set (SPEC §2: the last ``val_split`` fraction, or a seeded random
split), normalises, augments the training batches, and serves loaders. Data that fits on the
training device is kept there and batched by :class:`~lightning_dnc.data.loaders.TensorLoader`;
otherwise a ``DataLoader`` with worker processes feeds it from host memory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from lightning_dnc.data.door import check_classes, check_finite, check_sizes, class_labels
from lightning_dnc.data.loaders import BatchCollate, BatchDataset, TensorLoader
from lightning_dnc.data.transforms import BatchTransform

TASKS = ("classification", "regression")
SPLITS = ("tail", "random")
LOADERS = ("auto", "tensor", "dataloader")
DEVICE_MEMORY_FRACTION = 0.4
EVAL_BATCH_SIZE = 1024
"""Default smallest batch of the validation and test loaders (the training batch size when larger);
lower ``datamodule.eval_batch_size`` if evaluation runs out of device memory."""


@dataclass(frozen=True)
class RawData:
    """What a loader returns: train and (optional) test tensors, samples first."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """What the evaluator needs to know about a datamodule."""

    input_shape: tuple[int, ...]
    num_outputs: int
    task: str


class DataModuleContractError(TypeError, ValueError):
    """A datamodule lacks what the search needs (a ``TypeError`` and a ``ValueError``)."""


HINTS = {
    "input_shape": "one sample's shape, e.g. (1, 28, 28)",
    "num_outputs": "classes, or regression targets",
    "task": "'classification' or 'regression'",
}


def check_datamodule(datamodule: Any, input_shape: Sequence[int] | None = None, num_outputs: int | None = None,
                     task: str | None = None) -> DatasetInfo:
    """Check that ``datamodule`` can be used for a search and return its shape information.

    Parameters
    ----------
    datamodule : LightningDataModule
        Must have a settable ``batch_size`` attribute (the search sets it per candidate) and
        ``input_shape``, ``num_outputs`` and ``task`` attributes unless they are given here.
    input_shape, num_outputs, task : optional
        Override / supply what the datamodule does not expose.

    Raises
    ------
    DataModuleContractError
        When ``batch_size`` or a needed attribute is missing, with what to add (a ``TypeError``
        and a ``ValueError``).
    ValueError
        When ``task`` is not one of the allowed values.
    """
    name = type(datamodule).__name__
    if not hasattr(datamodule, "batch_size"):
        raise DataModuleContractError(
            f"The datamodule {name} has no `batch_size` attribute. The search sets the batch size of every "
            "candidate, so add `self.batch_size = batch_size` in its __init__ and use `self.batch_size` in "
            "its dataloaders."
        )
    values = {"input_shape": input_shape, "num_outputs": num_outputs, "task": task}
    for key in values:
        if values[key] is None:
            if not hasattr(datamodule, key):
                raise DataModuleContractError(
                    f"The datamodule {name} has no `{key}` attribute ({HINTS[key]}); add one (e.g. "
                    f"`self.{key} = ...`), pass `{key}=` to the evaluator, or wrap your loaders with "
                    "`lightning_dnc.lightning.data_source.LoaderDataModule(train_loader, val_loader)`."
                )
            values[key] = getattr(datamodule, key)
    if values["task"] not in TASKS:
        raise ValueError(f"`task` must be one of {list(TASKS)}, got {values['task']!r}.")
    n_out = values["num_outputs"]
    if isinstance(n_out, bool) or not isinstance(n_out, int) or n_out < 1:
        raise ValueError(f"`num_outputs` must be an int >= 1, got {n_out!r}.")
    return DatasetInfo(tuple(int(s) for s in values["input_shape"]), n_out, values["task"])


class InMemoryDataModule(pl.LightningDataModule):
    """Base class of the datamodules whose data fits in host memory.

    Parameters
    ----------
    batch_size : int
        Samples per batch (settable; the search changes it per candidate).
    val_split : float
        Fraction of the training set held out for validation, in (0, 1).
    split : {"tail", "random"}
        ``"tail"``: the last ``val_split`` fraction (SPEC §2); ``"random"``: a random subset drawn
        from ``seed``.
    seed : int
        Seed of the random split and of the per-epoch shuffling and augmentation.
    augment : bool or "auto"
        Random crop (``crop_padding``) and horizontal flip on training batches, where the dataset
        defines them. ``"auto"``: on for CNNs, off for MLPs (the paper augments CNN inputs only);
        the search tells the datamodule the family (:meth:`use_family`); before that, on.
    loader : {"auto", "tensor", "dataloader"}
        ``"auto"`` keeps the data on the training device and slices it when it fits there (always on
        CPU; on CUDA when it takes under 40% of the free memory), else uses a ``DataLoader``.
    num_workers : int, optional
        Worker processes of the ``DataLoader`` path (default ``min(4, cpu_count - 1)``).

    Notes
    -----
    Normalisation belongs to the model: :attr:`input_stats` holds ``scale``, ``mean`` and ``std``,
    and a LightningModule built with them (:class:`~lightning_dnc.models.CandidateModule`,
    ``DnCModel``; their ``expects_raw_inputs`` is true) applies them in its ``forward``. So the
    loaders and :meth:`arrays` give inputs in the user's units (cast to float32; training batches
    augmented), except to a module that does not normalise itself: while a trainer runs a module
    whose ``expects_raw_inputs`` is missing or false (your own LightningModule), its loaders
    scale and normalise the batches as well.

    The data is checked when it loads (:mod:`lightning_dnc.data.door`): NaN or infinite inputs or
    targets, labels outside the declared or inferred classes and too small splits raise
    :class:`~lightning_dnc.data.door.DataCheckError`.
    """

    #: The data was checked when it loaded (:func:`lightning_dnc.data.door.check_data` skips it).
    checks_itself: bool = True
    eval_batch_size: int = EVAL_BATCH_SIZE

    #: Per-channel mean/std of the dataset (after ``scale``); ``None``: computed from the training split.
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    #: Multiplier applied before normalisation (``1/255`` for uint8 images).
    scale: float = 1.0
    #: Augmentation the dataset uses when ``augment=True`` (SPEC §2).
    crop_padding: int = 0
    hflip: bool = False
    #: Whether inputs are normalised at all (by ``mean``/``std``, else training-split statistics).
    normalize_inputs: bool = True

    def __init__(self, batch_size: int = 256, val_split: float = 0.2, split: str = "tail", seed: int = 0,
                 augment: bool = False, loader: str = "auto", num_workers: int | None = None) -> None:
        super().__init__()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be an int >= 1, got {batch_size!r}.")
        if not isinstance(val_split, (int, float)) or not 0.0 < float(val_split) < 1.0:
            raise ValueError(f"`val_split` must be a fraction in (0, 1), got {val_split!r}.")
        if split not in SPLITS:
            raise ValueError(f"`split` must be one of {list(SPLITS)}, got {split!r}.")
        if loader not in LOADERS:
            raise ValueError(f"`loader` must be one of {list(LOADERS)}, got {loader!r}.")
        if num_workers is not None and (not isinstance(num_workers, int) or num_workers < 0):
            raise ValueError(f"`num_workers` must be an int >= 0 or None, got {num_workers!r}.")
        self.batch_size = batch_size
        self.val_split = float(val_split)
        self.split = split
        self.seed = int(seed)
        if augment not in (True, False, "auto"):
            raise ValueError(f"`augment` must be True, False or 'auto', got {augment!r}.")
        self.augment: bool | str = augment
        self.family: str | None = None
        self.loader = loader
        self.num_workers = num_workers
        self._splits: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None
        self._task: str | None = None
        self._num_outputs: int | None = None
        self._on_device: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}
        self._transforms: dict[str, BatchTransform] = {}
        self._raw_transforms: dict[str, BatchTransform] = {}
        self._stats: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)

    # -- to implement -------------------------------------------------------------------------
    def _load(self) -> RawData:
        """Return the whole dataset as tensors (called once, lazily). Subclasses implement it."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement `_load()` returning a RawData of its train (and test) tensors."
        )

    def _infer_task(self, y: torch.Tensor) -> str:
        return "classification" if not y.is_floating_point() and y.dim() == 1 else "regression"

    # -- public information -----------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input sample, e.g. ``(1, 28, 28)`` or ``(64,)``."""
        return tuple(int(s) for s in self._data()["train"][0].shape[1:])

    @property
    def num_outputs(self) -> int:
        """Number of classes (classification) or target dimension (regression)."""
        self._data()
        assert self._num_outputs is not None  # set by _data()
        return self._num_outputs

    @property
    def task(self) -> str:
        """``"classification"`` or ``"regression"``."""
        self._data()
        assert self._task is not None  # set by _data()
        return self._task

    @property
    def input_stats(self) -> dict[str, Any] | None:
        """How the model normalises raw inputs: ``(x * scale - mean) / std``; None when it does not.

        ``{"scale": float, "mean": nested list, "std": nested list}``; ``mean`` and ``std`` have
        the shape that broadcasts against one sample (``(C, 1, 1)`` per channel for images, the
        sample's shape per feature), or are None when only ``scale`` applies.
        """
        self._data()
        mean, std = self._stats
        if mean is None and self.scale == 1.0:
            return None
        return {"scale": float(self.scale), "mean": None if mean is None else mean.tolist(),
                "std": None if std is None else std.tolist()}

    def targets(self, stage: str = "train") -> torch.Tensor:
        """All targets of ``stage`` (``"train"``, ``"val"`` or ``"test"``), in the user's units."""
        return self._data()[stage][1]

    def num_samples(self, stage: str) -> int:
        """Number of samples in ``stage`` (``"train"``, ``"val"`` or ``"test"``)."""
        return int(self._data()[stage][0].shape[0]) if stage in self._data() else 0

    def setup(self, stage: str | None = None) -> None:
        """Load (once) and split the data."""
        self._data()

    # -- loading and splitting --------------------------------------------------------------
    def _data(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        if self._splits is None:
            raw = self._load()
            task = self._task or self._infer_task(raw.y_train)
            if task not in TASKS:
                raise ValueError(f"`task` must be one of {list(TASKS)}, got {task!r}.")
            x, y = raw.x_train, self._targets("train_data", raw.y_train, task)
            check_finite("train_data", "inputs", x)
            n = int(x.shape[0])
            n_val = int(round(self.val_split * n))
            if n_val < 1 or n_val >= n:
                raise ValueError(
                    f"`val_split`={self.val_split!r} leaves {n - n_val} training and {n_val} validation samples of "
                    f"{n}; choose a fraction that keeps both non-empty."
                )
            if self.split == "tail":
                train_idx, val_idx = torch.arange(n - n_val), torch.arange(n - n_val, n)
            else:
                perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
                train_idx, val_idx = perm[: n - n_val].sort().values, perm[n - n_val :].sort().values
            splits = {"train": (x[train_idx], y[train_idx]), "val": (x[val_idx], y[val_idx])}
            if raw.x_test is not None and raw.y_test is not None:
                check_finite("test", "inputs", raw.x_test)
                splits["test"] = (raw.x_test, self._targets("test", raw.y_test, task))
            check_sizes({split: int(xy[0].shape[0]) for split, xy in splits.items()})
            if task == "classification":
                self._num_outputs = check_classes({s: xy[1] for s, xy in splits.items()}, self._num_outputs)
            else:
                self._num_outputs = 1 if y.dim() == 1 else int(y[0].numel())
            self._task = task
            self._splits = splits
            self._build_transforms()
        return self._splits

    @staticmethod
    def _targets(split: str, y: torch.Tensor, task: str) -> torch.Tensor:
        """Targets checked (finite; whole class labels >= 0) and cast (int64 labels, float32 values)."""
        if task == "classification":
            return class_labels(split, y)
        check_finite(split, "targets", y)
        return y.float()

    @property
    def augments(self) -> bool:
        """Whether training batches are augmented now (``"auto"`` resolved by :attr:`family`)."""
        if self.augment == "auto":
            return self.family != "mlp"
        return bool(self.augment)

    def use_family(self, family: str) -> None:
        """Tell the datamodule which model family trains on it (resolves ``augment="auto"``)."""
        before = self.augments
        self.family = family
        if self._splits is not None and self.augments != before:
            self._build_transforms()

    def _build_transforms(self) -> None:
        assert self._splits is not None
        mean, std = self.mean, self.std
        x_train = self._splits["train"][0]
        mean_t: torch.Tensor | None
        std_t: torch.Tensor | None
        if not self.normalize_inputs:
            mean_t = std_t = None
        elif mean is None or std is None:
            mean_t, std_t = _statistics(x_train.float() * self.scale)
        else:
            shape = (-1, 1, 1) if x_train.dim() == 4 else (-1,)
            mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(shape)
            std_t = torch.as_tensor(std, dtype=torch.float32).reshape(shape)
        self._stats = (mean_t, std_t)
        augment = self.augments
        crop, flip = (self.crop_padding if augment else 0), self.hflip and augment
        plain = BatchTransform(self.scale, mean_t, std_t)
        train = BatchTransform(self.scale, mean_t, std_t, crop_padding=crop, hflip=flip)
        self._transforms = {"train": train, "val": plain, "test": plain}
        # For modules that normalise in forward: the same batches up to the scale and normalisation.
        raw = BatchTransform()
        self._raw_transforms = {"train": BatchTransform(crop_padding=crop, hflip=flip), "val": raw, "test": raw}

    def arrays(self, stage: str = "val", normalized: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """All of ``stage``'s samples as ``(x, y)`` float tensors, without augmentation.

        ``normalized=False``: in the user's units (float32), what a trained model takes;
        ``True``: scaled and normalised, what the network inside it sees.
        """
        x, y = self._data()[stage]
        return (self._transforms if normalized else self._raw_transforms)["val"](x), y

    def _serves_raw(self) -> bool:
        """False only while a trainer runs a module that does not normalise itself (no ``expects_raw_inputs``)."""
        trainer = self.trainer
        module = getattr(trainer, "lightning_module", None) if trainer is not None else None
        return module is None or bool(getattr(module, "expects_raw_inputs", False))

    # -- loaders ----------------------------------------------------------------------------
    def _placement(self) -> tuple[torch.device, int, int]:
        trainer = self.trainer
        if trainer is None:
            return torch.device("cpu"), 0, 1
        return trainer.strategy.root_device, trainer.global_rank, trainer.world_size

    def _fits_on(self, device: torch.device) -> bool:
        if device.type != "cuda":
            return device.type == "cpu"
        needed = sum(t.numel() * t.element_size() for xy in self._data().values() for t in xy)
        free, _ = torch.cuda.mem_get_info(device)
        return needed <= DEVICE_MEMORY_FRACTION * free

    def _tensors_on(self, stage: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (stage, str(device))
        if key not in self._on_device:
            x, y = self._data()[stage]
            self._on_device[key] = (x.to(device), y.to(device))
        return self._on_device[key]

    def _make_loader(self, stage: str) -> Any:
        data = self._data()
        if stage not in data:
            raise ValueError(f"{type(self).__name__} has no {stage!r} split; available: {sorted(data)}.")
        device, rank, world = self._placement()
        train = stage == "train"
        # Evaluation is batch-size independent (eval mode), so it uses large batches: faster.
        batch_size = self.batch_size if train else max(self.batch_size, self.eval_batch_size)
        transform = (self._raw_transforms if self._serves_raw() else self._transforms)[stage]
        # A copy already cached on the device fits by definition (free memory no longer counts it).
        fits = any(key[1] == str(device) for key in self._on_device) or self._fits_on(device)
        if self.loader == "tensor" or (self.loader == "auto" and fits):
            x, y = self._tensors_on(stage, device if fits else torch.device("cpu"))
            seed = self.seed + 1 + (1000 if stage != "train" else 0)
            return TensorLoader(x, y, batch_size, shuffle=train, seed=seed, transform=transform,
                                rank=rank, world_size=world, pad=train)
        x, y = data[stage]
        workers = self.num_workers if self.num_workers is not None else min(4, max(0, (os.cpu_count() or 1) - 1))
        return DataLoader(
            BatchDataset(x, y), batch_size=batch_size, shuffle=train, num_workers=workers,
            collate_fn=BatchCollate(transform), pin_memory=device.type == "cuda",
            persistent_workers=workers > 0, generator=torch.Generator().manual_seed(self.seed + 1),
        )

    def train_dataloader(self) -> Any:
        """Shuffled (every epoch), augmented training batches."""
        return self._make_loader("train")

    def val_dataloader(self) -> Any:
        """Validation batches in order, without augmentation."""
        return self._make_loader("val")

    def test_dataloader(self) -> Any:
        """Test batches in order, without augmentation."""
        return self._make_loader("test")

    def predict_dataloader(self) -> Any:
        """The test split's batches (``(x, y)`` pairs; ``predict_step`` uses ``x``) for ``trainer.predict``."""
        return self._make_loader("test")

    def teardown(self, stage: str | None = None) -> None:
        """Keep the cached tensors (the next candidate reuses them); see :meth:`release`."""

    def release(self) -> None:
        """Drop the copies of the data kept on accelerator devices."""
        self._on_device.clear()


def _statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (images ``(N, C, H, W)``) or per-feature mean and std; zero std becomes 1."""
    if x.dim() == 4:
        mean = x.mean(dim=(0, 2, 3)).reshape(-1, 1, 1)
        std = x.std(dim=(0, 2, 3)).reshape(-1, 1, 1)
    else:
        mean, std = x.mean(dim=0), x.std(dim=0)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return mean, std
