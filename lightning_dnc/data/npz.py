"""User data in a ``.npz`` file with arrays ``xtr, ytr, xte, yte``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from lightning_dnc.data.base import TASKS, InMemoryDataModule, RawData

NPZ_KEYS = ("xtr", "ytr", "xte", "yte")


class NpzDataModule(InMemoryDataModule):
    """Train/test arrays from a ``.npz`` file.

    ``xtr``/``xte`` are ``(N, C, H, W)`` images (channels first), ``(N, H, W)`` single-channel
    images, or ``(N, F)`` flat features; ``ytr``/``yte`` are ``(N,)`` integer labels
    (classification) or ``(N,)``/``(N, d)`` float targets (regression). Inputs of dtype uint8 are
    scaled to [0, 1]. Validation is split off the training arrays.

    Parameters
    ----------
    path : str or path-like
        The ``.npz`` file.
    task : {"auto", "classification", "regression"}
        ``"auto"``: classification for 1-D integer labels, regression otherwise.
    normalize : bool
        Standardise inputs with the training split's per-channel (images) or per-feature mean/std.
    num_classes : int, optional
        The number of classes (implies classification when ``task="auto"``). By default the
        largest label + 1, which must then be the number of distinct labels (see
        :mod:`lightning_dnc.data.door`).
    batch_size, val_split, split, seed, loader, num_workers
        See :class:`~lightning_dnc.data.base.InMemoryDataModule`.
    """

    def __init__(self, path: str | os.PathLike[str], task: str = "auto", normalize: bool = True,
                 batch_size: int = 256, val_split: float = 0.2, split: str = "tail", seed: int = 0,
                 loader: str = "auto", num_workers: int | None = None, num_classes: int | None = None) -> None:
        super().__init__(batch_size=batch_size, val_split=val_split, split=split, seed=seed, augment=False,
                         loader=loader, num_workers=num_workers)
        if task not in ("auto", *TASKS):
            raise ValueError(f"`task` must be one of {['auto', *TASKS]}, got {task!r}.")
        self.path = Path(path)
        self.normalize_inputs = bool(normalize)
        self._task = None if task == "auto" else task
        if num_classes is not None:
            if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
                raise ValueError(f"`num_classes` must be an int >= 1 or None, got {num_classes!r}.")
            if task == "regression":
                raise ValueError("`num_classes` applies to classification; drop it or pass task='classification'.")
            self._task = "classification"
        self._num_outputs = num_classes

    def _load(self) -> RawData:
        if not self.path.is_file():
            raise FileNotFoundError(f"`path` {str(self.path)!r} is not a file; give a .npz with keys {list(NPZ_KEYS)}.")
        with np.load(self.path, allow_pickle=False) as data:
            missing = [k for k in NPZ_KEYS if k not in data.files]
            if missing:
                raise KeyError(
                    f"{str(self.path)!r} lacks the key(s) {missing}; an npz dataset needs {list(NPZ_KEYS)}, "
                    f"found {sorted(data.files)}."
                )
            arrays = {k: data[k] for k in NPZ_KEYS}
        for split in ("tr", "te"):
            x, y = arrays["x" + split], arrays["y" + split]
            if x.ndim < 2 or len(x) != len(y):
                raise ValueError(
                    f"`x{split}` must be (N, ...) with N = len(`y{split}`); got shapes {x.shape} and {y.shape}."
                )
        if arrays["xtr"].shape[1:] != arrays["xte"].shape[1:]:
            raise ValueError(f"`xtr` and `xte` samples differ in shape: {arrays['xtr'].shape[1:]} vs "
                             f"{arrays['xte'].shape[1:]}.")
        if arrays["xtr"].dtype == np.uint8:
            self.scale = 1.0 / 255.0
        out = []
        for key in NPZ_KEYS:
            a = arrays[key]
            if key.startswith("x"):
                a = a[:, None] if a.ndim == 3 else a
                t = torch.from_numpy(np.ascontiguousarray(a if a.dtype == np.uint8 else a.astype(np.float32)))
            else:
                t = torch.from_numpy(np.ascontiguousarray(a))
            out.append(t)
        return RawData(*out)
