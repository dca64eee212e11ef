"""Regression metrics in the user's units (RMSE, MAE, R²), accumulated batch by batch.

Per output ``d`` a batch contributes the means of four terms: squared and absolute error
(``se{d}``, ``ae{d}``) and the target and its square, centred on the training mean
(``y{d}``, ``yy{d}``; centring keeps ``E[y²] - E[y]²`` exact for targets far from zero). The
epoch's sample-weighted means of these terms give

    RMSE = sqrt(mean_d se_d)      MAE = mean_d ae_d      R² = mean_d (1 - se_d / (yy_d - y_d²))

(``R²`` averaged uniformly over outputs, like scikit-learn's ``r2_score``; NaN for an output whose
targets do not vary).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch


class RegressionMeter:
    """Names and arithmetic of the regression metrics; holds no state."""

    NAMES = ("rmse", "mae", "r2")
    """The metrics reported: root mean squared error, mean absolute error, coefficient of determination."""

    @staticmethod
    def term_names(num_outputs: int) -> list[str]:
        """The per-batch terms accumulated for ``num_outputs`` outputs."""
        return [f"{term}{d}" for d in range(int(num_outputs)) for term in ("se", "ae", "y", "yy")]

    @staticmethod
    def batch_terms(predictions: torch.Tensor, targets: torch.Tensor,
                    center: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The batch means of every term (0-d tensors, no host sync).

        Parameters
        ----------
        predictions : torch.Tensor
            ``(N, d)`` predictions in the user's units.
        targets : torch.Tensor
            ``(N,)`` (``d == 1``) or ``(N, d)`` targets in the user's units.
        center : torch.Tensor, optional
            ``(d,)`` value subtracted from the targets before their moments are taken.
        """
        y = targets.float().reshape(predictions.shape[0], -1)
        p = predictions.float().reshape(y.shape)
        error = p - y
        centred = y - (center.float().reshape(1, -1) if center is not None else 0.0)
        terms: dict[str, torch.Tensor] = {}
        for d in range(y.shape[1]):
            terms[f"se{d}"] = error[:, d].square().mean()
            terms[f"ae{d}"] = error[:, d].abs().mean()
            terms[f"y{d}"] = centred[:, d].mean()
            terms[f"yy{d}"] = centred[:, d].square().mean()
        return terms

    @staticmethod
    def metrics(terms: Mapping[str, float]) -> dict[str, float]:
        """``{"rmse", "mae", "r2"}`` from the epoch means of :meth:`term_names`."""
        outputs = sum(1 for name in terms if name.startswith("se"))
        se = [terms[f"se{d}"] for d in range(outputs)]
        ae = [terms[f"ae{d}"] for d in range(outputs)]
        r2 = []
        for d in range(outputs):
            variance = terms[f"yy{d}"] - terms[f"y{d}"] ** 2
            r2.append(1.0 - se[d] / variance if variance > 1e-12 * max(1.0, terms[f"yy{d}"]) else math.nan)
        mse = sum(se) / outputs
        return {"rmse": math.sqrt(mse) if mse >= 0 else math.nan, "mae": sum(ae) / outputs, "r2": sum(r2) / outputs}


__all__ = ["RegressionMeter"]
