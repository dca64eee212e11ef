"""Lightning glue: ``Trainer.tune``, ``DeepNCheapTuner``, ``DnCModel``, timing and the evaluator.

Names are imported lazily so that importing one submodule (e.g. the evaluator) does not import
the others.
"""

from __future__ import annotations

from lightning_dnc._lazy import lazy_exports

_LAZY = {
    "DeepNCheapTuner": "lightning_dnc.lightning.tuner",
    "tune": "lightning_dnc.lightning.tuner",
    "SearchAborted": "lightning_dnc.executors.driver",
    "DnCModel": "lightning_dnc.lightning.dnc_model",
    "Trainer": "lightning_dnc.lightning.trainer",
    "CandidateEvaluator": "lightning_dnc.lightning.candidate.evaluator",
    "EpochTimer": "lightning_dnc.lightning.candidate.timing",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
