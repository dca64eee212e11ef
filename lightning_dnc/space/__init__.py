"""What can be searched: CNN, MLP and training spaces, sampling, validation, config <-> arrays."""

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

__all__ = [
    "ACTIVATIONS",
    "FAMILIES",
    "auto_weight_decay",
    "complete_config",
    "derive_maxpools",
    "infer_family",
    "shortcut_spacing_for_depth",
    "shortcuts_with_spacing",
]
