"""Checks of the data at the door: before any candidate trains, refuse data a search cannot use.

Three problems are refused, each with one line naming it and the fix (a :class:`DataCheckError`,
a ``ValueError``; the command line exits with code 2 before it writes anything):

- non-finite inputs or targets (NaN, inf);
- class labels that are not whole numbers in ``0 .. num_classes - 1``; when the class count is
  inferred (largest label + 1) it must also equal the number of distinct labels, else the model
  would get outputs for classes that never occur (a label 99 among ten classes gives a 100-class
  model): such data needs ``num_classes=`` (``--num_classes``) or relabelling;
- fewer samples than :data:`MIN_SAMPLES` in the training or validation split.

The in-memory datamodules run these checks on all their tensors when they load
(:meth:`~lightning_dnc.data.base.InMemoryDataModule.setup`). Any other datamodule is checked by
:func:`check_data`: whole when its loaders hold in-memory tensors (``TensorDataset``), else its
first :data:`PEEK_BATCHES` batches per split.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

MIN_SAMPLES = {"train": 8, "val": 2}
"""Fewest samples per split a search accepts (fewer cannot train and rank candidates)."""
PEEK_BATCHES = 20
"""Batches per split :func:`check_data` reads from a loader whose tensors it cannot see whole."""
SPLIT_NAMES = {"train": "training split", "val": "validation split", "test": "test split",
               "train_data": "training data"}
"""How the messages name the data: a split, or the training data before the validation split is taken."""


class DataCheckError(ValueError):
    """The data cannot be searched on; the message is one line with the problem and the fix."""


def check_finite(split: str, what: str, values: torch.Tensor, offset: int = 0) -> None:
    """Raise :class:`DataCheckError` when ``values`` (samples first) hold NaN or infinite entries.

    Parameters
    ----------
    split : {"train", "val", "test", "train_data"}
    what : {"inputs", "targets"}
    values : torch.Tensor
        ``(N, ...)``; integer tensors are finite by definition and not scanned.
    offset : int
        Index of ``values[0]`` in its split (for the message).
    """
    if not values.is_floating_point() or values.numel() == 0:
        return
    bad = ~torch.isfinite(values.reshape(len(values), -1)).all(dim=1)
    if bool(bad.any()):
        rows = bad.nonzero().flatten()
        raise DataCheckError(
            f"The {SPLIT_NAMES.get(split, split)}'s {what} hold NaN or infinite values in {len(rows)} "
            f"sample(s), the first at index {int(rows[0]) + offset}; remove or impute them before the search."
        )


def class_labels(split: str, labels: torch.Tensor) -> torch.Tensor:
    """``labels`` as ``int64`` after checking that they are finite whole numbers >= 0."""
    if labels.is_floating_point():
        check_finite(split, "targets", labels)
        if not bool((labels == labels.round()).all()):
            raise DataCheckError(
                f"The {SPLIT_NAMES.get(split, split)}'s class labels are not whole numbers (e.g. "
                f"{float(labels[labels != labels.round()][0])!r}); give integer labels 0, 1, ... or pass "
                "task='regression' for continuous targets."
            )
    if labels.numel() and int(labels.min()) < 0:
        raise DataCheckError(
            f"Class labels must be >= 0, the {SPLIT_NAMES.get(split, split)} has {int(labels.min())}; "
            "number the classes 0, 1, ..., num_classes - 1."
        )
    return labels.long()


DECLARE = "num_classes={n} (--num_classes {n})"
"""How a user declares ``n`` classes, for the messages (``{n}`` is filled in)."""


def check_classes(labels: Mapping[str, torch.Tensor], num_classes: int | None, declare: str = DECLARE) -> int:
    """Check class labels against the declared or inferred class count and return the count.

    Parameters
    ----------
    labels : mapping
        Split name -> ``int64`` labels ``(N,)`` (every split the data has).
    num_classes : int, optional
        The declared class count (a dataset's own, or ``num_classes=``). ``None``: inferred as
        the largest label + 1, which must equal the number of distinct labels.
    declare : str
        How the user declares ``{n}`` classes where the data comes from (for the message).

    Raises
    ------
    DataCheckError
        A label at or above a declared ``num_classes``, or an inferred count with labels missing.
    """
    present = [y for y in labels.values() if y.numel()]
    if not present:
        raise DataCheckError("The data holds no class labels; give every sample a label 0, 1, ....")
    everything = torch.cat(present)
    largest = int(everything.max())
    if num_classes is not None:
        if largest >= num_classes:
            split = next(s for s, y in labels.items() if y.numel() and int(y.max()) == largest)
            raise DataCheckError(
                f"The {SPLIT_NAMES.get(split, split)} has the label {largest}, outside the {num_classes} "
                f"declared classes (labels 0..{num_classes - 1}); fix the labels, or declare "
                f"{declare.format(n=largest + 1)} if there are that many classes."
            )
        return int(num_classes)
    distinct = torch.unique(everything)
    if len(distinct) != largest + 1:
        missing = sorted(set(range(largest + 1)) - set(distinct.tolist()))
        shown = ", ".join(str(m) for m in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise DataCheckError(
            f"The labels run up to {largest} but only {len(distinct)} distinct labels occur (none is {shown}), so "
            f"the model would get {largest + 1} outputs; relabel the classes as 0..{len(distinct) - 1}, or pass "
            f"{declare.format(n=largest + 1)} if {largest + 1} classes are meant."
        )
    return largest + 1


def check_sizes(counts: Mapping[str, int | None]) -> None:
    """Raise :class:`DataCheckError` when a split has fewer samples than :data:`MIN_SAMPLES` says.

    ``counts`` maps split names to sample counts (``None``: unknown, not checked).
    """
    short = [(split, counts[split], least) for split, least in MIN_SAMPLES.items()
             if counts.get(split) is not None and int(counts[split]) < least]  # type: ignore[arg-type]
    if short:
        have = " and ".join(f"{n} {SPLIT_NAMES[s].split()[0]}" for s, n, _ in short)
        need = " and ".join(f"{least} {SPLIT_NAMES[s].split()[0]}" for s, _, least in short)
        raise DataCheckError(
            f"The data has {have} sample(s); a search needs at least {need} samples to train and rank "
            "candidates: use more data (or change val_split / --val_split)."
        )


def check_data(datamodule: Any, task: str, num_outputs: int) -> None:
    """Check a datamodule's training and validation data before a search (see the module docstring).

    The in-memory datamodules checked themselves when they loaded; for any other datamodule the
    training and validation loaders are read (whole for in-memory tensors, else the first
    :data:`PEEK_BATCHES` batches) and their sample counts taken where the datasets are sized.

    Parameters
    ----------
    datamodule : LightningDataModule
    task : {"classification", "regression"}
    num_outputs : int
        The class count the model will get (classification).

    Raises
    ------
    DataCheckError
    """
    if getattr(datamodule, "checks_itself", False):
        return
    counts: dict[str, int | None] = {}
    for split in ("train", "val"):
        loader = getattr(datamodule, f"{split}_dataloader")()
        counts[split] = _length(getattr(loader, "dataset", None))
        for offset, x, y in _batches(loader):
            check_finite(split, "inputs", x, offset)
            if task == "classification":
                check_classes({split: class_labels(split, y)}, num_outputs)
            else:
                check_finite(split, "targets", y, offset)
    check_sizes(counts)


def _length(dataset: Any) -> int | None:
    try:
        return int(len(dataset))
    except TypeError:
        return None


def _batches(loader: Any) -> Any:
    """``(offset, x, y)`` of the whole in-memory tensors, or of the loader's first batches."""
    tensors = getattr(getattr(loader, "dataset", None), "tensors", None)
    if isinstance(tensors, tuple) and len(tensors) >= 2 and all(torch.is_tensor(t) for t in tensors[:2]):
        yield 0, tensors[0], tensors[1]
        return
    offset = 0
    for index, batch in enumerate(loader):
        if index >= PEEK_BATCHES:
            return
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            return  # not (x, y) pairs: nothing this check can read
        x, y = torch.as_tensor(batch[0]), torch.as_tensor(batch[1])
        yield offset, x, y
        offset += len(x)


__all__ = ["MIN_SAMPLES", "PEEK_BATCHES", "DataCheckError", "check_classes", "check_data", "check_finite",
           "check_sizes", "class_labels"]
