"""A BO pick's pool of random samples held as arrays, for spaces that can build it that way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lightning_dnc.gp.arrays import EncodedConfigs


@dataclass(frozen=True)
class ArrayPool:
    """The samples of one pool, row by row.

    Parameters
    ----------
    keys : ndarray
        (m, w) int64; two rows are equal exactly when the two samples are the same config.
    encoded : EncodedConfigs
        The samples as the space's GP encoding (``space.encode`` of their dicts).
    build : callable
        ``build(row)`` is the sample dict of that row (what ``space.sample`` gives).
    """

    keys: np.ndarray
    encoded: EncodedConfigs
    build: Callable[[int], dict[str, Any]]
