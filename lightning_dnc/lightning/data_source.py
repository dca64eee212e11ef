"""Find the data a search trains on: a datamodule, plain dataloaders, or data the model carries.

The search needs four things from its data: ``batch_size`` (it changes per candidate),
``input_shape``, ``num_outputs`` and ``task``. Our datamodules expose them; for anything else
this module wraps the user's loaders in :class:`LoaderDataModule`, which infers them once.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from lightning_dnc.data.base import check_datamodule
from lightning_dnc.data.door import check_classes, class_labels


NO_DATA_MESSAGE = (
    "Deep-n-Cheap needs data to search on, and none was found. Pass it in one of these ways: "
    "`trainer.tune(model, datamodule=dm, dnc=...)`; "
    "`trainer.tune(model, train_dataloaders=..., val_dataloaders=..., dnc=...)`; "
    "`DnCModel(family=..., datamodule=dm)`; or give your LightningModule `train_dataloader()` and "
    "`val_dataloader()` methods. `lightning_dnc.data.DigitsDataModule()` works offline."
)


class LoaderDataModule(pl.LightningDataModule):
    """A datamodule around user dataloaders whose batch size the search can change.

    Parameters
    ----------
    train_loader, val_loader : DataLoader
        Loaders over map-style datasets yielding ``(x, y)`` pairs.
    test_loader : DataLoader, optional
    task : {"classification", "regression"}, optional
        Inferred from the target dtype when omitted (integers -> classification).
    num_outputs : int, optional
        Inferred from the targets when omitted (classes = max label + 1, which must be the number of
        distinct training labels; else pass it).
    """

    def __init__(
        self,
        train_loader: DataLoader,
        val_loader: DataLoader,
        test_loader: DataLoader | None = None,
        task: str | None = None,
        num_outputs: int | None = None,
    ) -> None:
        super().__init__()
        for name, loader in (("train_dataloaders", train_loader), ("val_dataloaders", val_loader)):
            if not isinstance(loader, DataLoader):
                raise TypeError(
                    f"`{name}` must be a torch DataLoader over a map-style dataset, got "
                    f"{type(loader).__name__}."
                )
        self._loaders = {"train": train_loader, "val": val_loader, "test": test_loader}
        self.batch_size = int(train_loader.batch_size or 1)
        first_x, first_y = _first_sample(train_loader.dataset)
        self.input_shape = tuple(int(s) for s in first_x.shape)
        inferred_task, targets = _infer_targets(train_loader.dataset, first_y)
        self.task = task or inferred_task
        if num_outputs is None and self.task == "classification":
            declare = "num_outputs={n} (datamodule=LoaderDataModule(train_loader, val_loader, num_outputs={n}))"
            num_outputs = check_classes({"train": class_labels("train", targets)}, None, declare)
        elif num_outputs is None:
            num_outputs = 1 if targets.ndim <= 1 else int(targets.shape[1])
        self.num_outputs = int(num_outputs)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        original = self._loaders[split]
        return DataLoader(
            original.dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=original.num_workers,
            collate_fn=original.collate_fn,
            pin_memory=original.pin_memory,
            persistent_workers=original.persistent_workers if original.num_workers > 0 else False,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        if self._loaders["test"] is None:
            raise ValueError("No test dataloader was given to this LoaderDataModule.")
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """The test loader's batches, for ``trainer.predict``."""
        return self.test_dataloader()


def resolve_datamodule(
    model: pl.LightningModule | None,
    datamodule: pl.LightningDataModule | None = None,
    train_dataloaders: DataLoader | None = None,
    val_dataloaders: DataLoader | None = None,
) -> pl.LightningDataModule:
    """Return the datamodule the search uses, in order of precedence.

    1. ``datamodule``; 2. ``train_dataloaders`` + ``val_dataloaders``; 3. the model's
    ``datamodule`` attribute (e.g. ``DnCModel(datamodule=dm)``); 4. the model's own
    ``train_dataloader``/``val_dataloader`` methods.

    Raises
    ------
    ValueError
        When no data is found (the message lists every way to pass it), or when the datamodule
        lacks an attribute the search needs.
    """
    if datamodule is not None and train_dataloaders is not None:
        raise ValueError("Pass either `datamodule` or `train_dataloaders`/`val_dataloaders`, not both.")
    if datamodule is None and train_dataloaders is not None:
        if val_dataloaders is None:
            raise ValueError(
                "`val_dataloaders` is required with `train_dataloaders`: the search ranks candidates "
                "by validation accuracy (or loss)."
            )
        datamodule = LoaderDataModule(train_dataloaders, val_dataloaders)
    if datamodule is None and model is not None:
        carries_attribute = "datamodule" in vars(model)
        datamodule = getattr(model, "datamodule", None) if carries_attribute else None
        if (datamodule is None and not carries_attribute and _overrides(model, "train_dataloader")
                and _overrides(model, "val_dataloader")):
            datamodule = LoaderDataModule(model.train_dataloader(), model.val_dataloader())
    if datamodule is None:
        raise ValueError(NO_DATA_MESSAGE)
    check_datamodule(datamodule)
    return datamodule


def _overrides(model: pl.LightningModule, hook: str) -> bool:
    own = getattr(type(model), hook, None)
    return own is not None and own is not getattr(pl.LightningModule, hook, None)


def _first_sample(dataset: Dataset) -> tuple[torch.Tensor, Any]:
    try:
        x, y = dataset[0][:2]
    except (TypeError, ValueError, IndexError) as err:
        raise ValueError(
            "The training dataset must be map-style and yield `(x, y)` pairs so the search can read "
            f"one sample's shape; reading dataset[0] failed: {err}"
        ) from err
    return torch.as_tensor(x), y


def _infer_targets(dataset: Dataset, first_target: Any) -> tuple[str, torch.Tensor]:
    """The task the targets suggest (integers: classification) and all training targets."""
    targets = getattr(dataset, "targets", None)
    if targets is None and hasattr(dataset, "tensors"):
        targets = dataset.tensors[1]
    if targets is None:
        targets = [dataset[i][1] for i in range(len(dataset))]  # type: ignore[arg-type]
        if torch.is_tensor(first_target):
            targets = torch.stack([torch.as_tensor(t) for t in targets])
    targets = torch.as_tensor(targets)
    return ("regression" if targets.is_floating_point() else "classification"), targets
