"""lightning-dnc: Deep-n-Cheap complexity-aware architecture and hyperparameter search for Lightning.

Public names are imported lazily so that the numeric core (``lightning_dnc.gp``,
``lightning_dnc.space``) can be used without importing torch or lightning.
"""

from __future__ import annotations

from lightning_dnc._lazy import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    "DeepNCheapTuner": "lightning_dnc.lightning.tuner",
    "DnCModel": "lightning_dnc.lightning.dnc_model",
    "CandidateModule": "lightning_dnc.models.module",
    "Trainer": "lightning_dnc.lightning.trainer",
    "tune": "lightning_dnc.lightning.tuner",
    "SearchAborted": "lightning_dnc.executors.driver",
    "SearchResult": "lightning_dnc.search.core.result",
    "CNNSpace": "lightning_dnc.space",
    "MLPSpace": "lightning_dnc.space",
    "TrainingSpace": "lightning_dnc.space",
}

__all__ = ["__version__", *_LAZY]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
