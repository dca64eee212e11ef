"""Batched transforms applied to whole batches of tensors (no per-sample Python work).

Augmentation and normalisation run on the device the batch lives on, drawing randomness from a
``torch.Generator`` on that device (or the global RNG when none is given, e.g. in DataLoader
workers).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-pad ``(B, C, H, W)`` images by ``padding`` and take a random ``H x W`` crop of each."""
    b, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dev = x.device
    oy = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=dev)
    ox = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=dev)
    rows = (oy[:, None] + torch.arange(h, device=dev))[:, :, None]  # (B, H, 1)
    cols = (ox[:, None] + torch.arange(w, device=dev))[:, None, :]  # (B, 1, W)
    batch = torch.arange(b, device=dev)[:, None, None]
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2).contiguous()  # (B, H, W, C) -> (B, C, H, W)


def random_hflip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each ``(B, C, H, W)`` image left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


class BatchTransform:
    """Cast to float, scale, optionally augment (images), normalise.

    Parameters
    ----------
    scale : float
        Multiplier applied after the cast (``1/255`` for uint8 images).
    mean, std : sequence of float or torch.Tensor, optional
        Normalisation, broadcast against ``(B, *sample_shape)`` after a leading batch axis is
        added (per channel for images: shape ``(C, 1, 1)``; per feature for flat data).
    crop_padding : int
        Random crop padding (0: no crop). Only for 4-D image batches.
    hflip : bool
        Random horizontal flips. Only for 4-D image batches.
    """

    def __init__(self, scale: float = 1.0, mean: Sequence[float] | torch.Tensor | None = None,
                 std: Sequence[float] | torch.Tensor | None = None, crop_padding: int = 0,
                 hflip: bool = False) -> None:
        self.scale = float(scale)
        self.mean = None if mean is None else torch.as_tensor(mean, dtype=torch.float32)
        self.std = None if std is None else torch.as_tensor(std, dtype=torch.float32)
        self.crop_padding = int(crop_padding)
        self.hflip = bool(hflip)
        self._on: dict[torch.device, tuple[torch.Tensor | None, torch.Tensor | None]] = {}

    @property
    def augments(self) -> bool:
        """Whether this transform draws random numbers."""
        return self.crop_padding > 0 or self.hflip

    def _stats(self, device: torch.device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if device not in self._on:
            self._on[device] = (None if self.mean is None else self.mean.to(device),
                                None if self.std is None else self.std.to(device))
        return self._on[device]

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Transform one batch ``x`` of shape ``(B, *sample_shape)``."""
        if x.dim() == 4 and self.crop_padding > 0:
            x = random_crop(x, self.crop_padding, generator)
        if not x.is_floating_point():
            x = x.float()
        if self.scale != 1.0:
            x = x * self.scale
        if x.dim() == 4 and self.hflip:
            x = random_hflip(x, generator)
        mean, std = self._stats(x.device)
        if mean is not None:
            x = x - mean
        if std is not None:
            x = x / std
        return x
