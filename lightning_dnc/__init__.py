"""lightning-dnc: Deep-n-Cheap complexity-aware architecture and hyperparameter search for Lightning.

Public names are imported lazily so that the numeric core (``lightning_dnc.gp``,
``lightning_dnc.space``) can be used without importing torch or lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "DeepNCheapTuner": "lightning_dnc.lightning.tuner",
    "DnCModel": "lightning_dnc.lightning.dnc_model",
    "Trainer": "lightning_dnc.lightning.trainer",
    "tune": "lightning_dnc.lightning.tuner",
    "SearchAborted": "lightning_dnc.lightning.search_loop",
    "SearchResult": "lightning_dnc.search.result",
    "CNNSpace": "lightning_dnc.space",
    "MLPSpace": "lightning_dnc.space",
    "TrainingSpace": "lightning_dnc.space",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lightning_dnc' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
