"""The regression metrics a candidate reached, in the user's units, for ``Evaluation.extra``.

The search ranks regression candidates by ``val_loss``, the MSE of standardised targets (so ``f_p``
and the cost are on comparable scales). What a person reads are RMSE, MAE and R² in the targets'
own units, taken at the epoch of the best ``val_loss``; they are stored as
``Evaluation.extra["regression"] = {"rmse": ..., "mae": ..., "r2": ...}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

REGRESSION_KEY = "regression"
"""Key of the user-unit metrics in ``Evaluation.extra``."""


def user_unit_metrics(module: Any, fallback_history: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    """``{"regression": {...}}`` at the best-``val_loss`` epoch, or ``{}`` when not reported.

    Reads the module's ``history`` (``val_rmse``, ``val_mae``, ``val_r2`` per epoch), else the
    logged metrics of ``fallback_history``.
    """
    history = getattr(module, "history", None) if module is not None else None
    if not isinstance(history, Mapping) or not history.get("val_loss"):
        history = fallback_history
    losses = list(history.get("val_loss", ()))
    curves = {name: list(history.get(f"val_{name}", ())) for name in ("rmse", "mae", "r2")}
    if not losses or not any(curves.values()):
        return {}
    finite = [(loss, i) for i, loss in enumerate(losses) if math.isfinite(loss)]
    if not finite:
        return {}
    best = min(finite)[1]
    picked = {name: float(curve[best]) for name, curve in curves.items() if best < len(curve)}
    return {REGRESSION_KEY: {k: (v if math.isfinite(v) else None) for k, v in picked.items()}}


__all__ = ["REGRESSION_KEY", "user_unit_metrics"]
