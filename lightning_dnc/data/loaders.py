"""Loaders over tensors held in memory (ideally on the training device).

:class:`TensorLoader` batches by slicing/indexing whole tensors, reshuffles every epoch with its own
seeded generator and shards across ranks like ``DistributedSampler`` (training ranks get equal
batch counts by repeating a few samples). No worker processes, no per-sample Python.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch


class TensorLoader:
    """Iterate ``(x, y)`` batches of in-memory tensors.

    Parameters
    ----------
    x, y : torch.Tensor
        Inputs ``(N, ...)`` and targets ``(N, ...)`` on the same device.
    batch_size : int
        Samples per batch; the last partial batch is kept.
    shuffle : bool
        Draw a new permutation every epoch (from ``seed``; the same sequence on every rank).
    seed : int
        Seed of the loader's generator (permutations and ``transform`` randomness).
    transform : callable, optional
        ``transform(x_batch, generator) -> x_batch`` applied to each input batch.
    rank, world_size : int
        This process' shard of the data.
    pad : bool
        Repeat samples so that every rank gets the same number of batches (needed for training
        with gradient synchronisation); without it ranks get disjoint, possibly unequal shards.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = False, seed: int = 0,
                 transform: Callable[[torch.Tensor, torch.Generator | None], torch.Tensor] | None = None,
                 rank: int = 0, world_size: int = 1, pad: bool = True) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be an int >= 1, got {batch_size!r}.")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"`x` and `y` must have the same length, got {x.shape[0]} and {y.shape[0]}.")
        if not 0 <= rank < world_size:
            raise ValueError(f"`rank` must be in [0, world_size={world_size}), got {rank!r}.")
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.transform = transform
        self.rank, self.world_size, self.pad = rank, world_size, pad
        self._generator: torch.Generator | None = None

    def _shard_size(self) -> int:
        n = int(self.x.shape[0])
        if self.world_size == 1:
            return n
        if self.pad:
            return math.ceil(n / self.world_size)
        return len(range(self.rank, n, self.world_size))

    def __len__(self) -> int:
        return math.ceil(self._shard_size() / self.batch_size)

    @property
    def samples_per_epoch(self) -> int:
        """Samples this rank sees per epoch (its shard, padded when ``pad``)."""
        return self._shard_size()

    @property
    def generator(self) -> torch.Generator:
        """The loader's generator, on the data's device, created (and seeded) on first use."""
        if self._generator is None:
            self._generator = torch.Generator(device=self.x.device)
            self._generator.manual_seed(self.seed)
        return self._generator

    def _indices(self) -> torch.Tensor | None:
        n = int(self.x.shape[0])
        idx = torch.randperm(n, generator=self.generator, device=self.x.device) if self.shuffle else None
        if self.world_size == 1:
            return idx
        if idx is None:
            idx = torch.arange(n, device=self.x.device)
        if self.pad:
            total = math.ceil(n / self.world_size) * self.world_size
            if total > n:
                idx = torch.cat([idx, idx[: total - n]])
        return idx[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        idx = self._indices()
        size = self._shard_size()
        gen = self.generator if self.transform is not None and _draws_random(self.transform) else None
        for start in range(0, size, self.batch_size):
            if idx is None:
                xb = self.x[start : start + self.batch_size]
                yb = self.y[start : start + self.batch_size]
            else:
                batch_idx = idx[start : start + self.batch_size]
                xb = self.x.index_select(0, batch_idx)
                yb = self.y.index_select(0, batch_idx)
            if self.transform is not None:
                xb = self.transform(xb, gen)
            yield xb, yb


def _draws_random(transform: object) -> bool:
    return bool(getattr(transform, "augments", True))


class BatchDataset(torch.utils.data.Dataset):
    """Map-style dataset over in-memory tensors that also fetches whole batches (``__getitems__``).

    Used with ``torch.utils.data.DataLoader`` when the data should stay in host memory and be fed
    by worker processes; ``collate`` applies a batched transform inside the workers.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[index], self.y[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.x.index_select(0, idx), self.y.index_select(0, idx)


class BatchCollate:
    """Collate for :class:`BatchDataset`: the batch is already stacked; apply ``transform``."""

    def __init__(self, transform: Callable[[torch.Tensor, torch.Generator | None], torch.Tensor] | None) -> None:
        self.transform = transform

    def __call__(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        return (x if self.transform is None else self.transform(x, None)), y
