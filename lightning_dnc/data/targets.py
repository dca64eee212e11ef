"""Statistics of a datamodule's training targets, for standardising regression targets."""

from __future__ import annotations

from typing import Any

import torch

MIN_STD = 1e-8
"""Standard deviations below this (constant targets) are replaced by 1."""


def target_statistics(datamodule: Any, task: str | None = None) -> dict[str, list[float]] | None:
    """Per-output mean and standard deviation of the training targets of a regression datamodule.

    Reads ``datamodule.targets("train")`` when it has it (the in-memory datamodules), else one
    pass over ``datamodule.train_dataloader()``. The batch size is whatever the datamodule has.

    Returns
    -------
    dict or None
        ``{"mean": [...], "std": [...]}`` with one value per output (``std`` of a constant
        output is 1), or None when ``task`` (default: the datamodule's) is not ``"regression"``.
    """
    if (task or getattr(datamodule, "task", None)) != "regression":
        return None
    reader = getattr(datamodule, "targets", None)
    if callable(reader):
        y = reader("train")
    else:
        y = torch.cat([torch.as_tensor(batch[1]).reshape(len(batch[1]), -1).cpu()
                       for batch in datamodule.train_dataloader()])
    y = y.detach().double().reshape(len(y), -1).cpu()
    mean = y.mean(dim=0)
    std = y.std(dim=0, unbiased=False) if len(y) > 1 else torch.ones_like(mean)
    std = torch.where(std > MIN_STD, std, torch.ones_like(std))
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}


__all__ = ["target_statistics"]
