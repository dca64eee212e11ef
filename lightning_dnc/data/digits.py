"""scikit-learn's handwritten digits: an embedded, offline default dataset (1797 8x8 images)."""

from __future__ import annotations

import torch

from lightning_dnc.data.base import InMemoryDataModule, RawData

DIGITS_TEST_FRACTION = 0.2


class DigitsDataModule(InMemoryDataModule):
    """``sklearn.datasets.load_digits`` as a datamodule: 10 classes, pixel values 0..16.

    The last 20% of the samples (file order) are the held-out test split; validation is taken from
    the rest as :class:`~lightning_dnc.data.base.InMemoryDataModule` describes. Inputs are scaled to
    [0, 1] and normalised by the training split's mean and standard deviation.

    Parameters
    ----------
    flatten : bool
        ``True``: samples of shape ``(64,)`` (for MLPs); ``False``: ``(1, 8, 8)`` images.
    batch_size, val_split, split, seed, loader, num_workers
        See :class:`~lightning_dnc.data.base.InMemoryDataModule`.
    """

    scale = 1.0 / 16.0

    def __init__(self, flatten: bool = False, batch_size: int = 256, val_split: float = 0.2, seed: int = 0,
                 split: str = "tail", loader: str = "auto", num_workers: int | None = None) -> None:
        super().__init__(batch_size=batch_size, val_split=val_split, split=split, seed=seed, augment=False,
                         loader=loader, num_workers=num_workers)
        self.flatten = bool(flatten)
        self._task = "classification"
        self._num_outputs = 10

    def _load(self) -> RawData:
        from sklearn.datasets import load_digits

        data = load_digits()
        x = torch.as_tensor(data.images, dtype=torch.float32)
        x = x.reshape(len(x), 64) if self.flatten else x.reshape(len(x), 1, 8, 8)
        y = torch.as_tensor(data.target, dtype=torch.long)
        n_test = int(round(DIGITS_TEST_FRACTION * len(x)))
        # One scalar mean/std from the non-test samples, so both layouts are normalised alike.
        self.mean = [float(x[:-n_test].mean() * self.scale)]
        self.std = [float(x[:-n_test].std() * self.scale)]
        return RawData(x[:-n_test], y[:-n_test], x[-n_test:], y[-n_test:])
