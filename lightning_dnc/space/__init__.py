"""What can be searched: CNN, MLP and training spaces, sampling, validation, config <-> arrays."""

from collections.abc import Mapping
from typing import Any

from lightning_dnc.space.base import SearchSpace
from lightning_dnc.space.cnn import CNNSpace
from lightning_dnc.space.config import (
    ACTIVATIONS,
    FAMILIES,
    auto_weight_decay,
    complete_config,
    derive_maxpools,
    infer_family,
    shortcut_spacing_for_depth,
    shortcuts_with_spacing,
)
from lightning_dnc.space.mlp import MLPSpace
from lightning_dnc.space.training import TrainingSpace

SPACES = {cls.family: cls for cls in (CNNSpace, MLPSpace, TrainingSpace)}


def space_from_dict(d: Mapping[str, Any]) -> SearchSpace:
    """Rebuild any space from its :meth:`SearchSpace.to_dict` output (dispatch on ``family``)."""
    family = d.get("family") if isinstance(d, Mapping) else None
    if family not in SPACES:
        raise ValueError(f"`family` of a space dict must be one of {list(SPACES)}, got {family!r}.")
    return SPACES[family].from_dict(d)


__all__ = [
    "CNNSpace",
    "MLPSpace",
    "SearchSpace",
    "TrainingSpace",
    "space_from_dict",
    "ACTIVATIONS",
    "FAMILIES",
    "auto_weight_decay",
    "complete_config",
    "derive_maxpools",
    "infer_family",
    "shortcut_spacing_for_depth",
    "shortcuts_with_spacing",
]
