"""Stage-2 decisions against the measurement noise of ``t_tr``.

A grid group's best option replaces the incumbent only when its loss is strictly lower. When the
cost is ``t_tr`` that loss difference may come from timing noise: this module lists each
decision with the difference of the two trials' ``t_tr`` and their spreads (standard deviations
recorded with every trial), and marks the decisions whose ``t_tr`` difference is within
``spread_a + spread_b``.
"""

from __future__ import annotations

from typing import Any

from lightning_dnc.search import SearchResult


def _spread(result: SearchResult, evaluation: Any) -> float | None:
    key = "t_tr_epoch" if result.objective.t_tr_mode == "epoch" else "t_tr_step"
    value = (evaluation.spread or {}).get(key)
    if value is None and key == "t_tr_step":
        value = (evaluation.spread or {}).get("t_tr_epoch")  # a record timed by the epoch loop only
    return value


def stage2_decisions(result: SearchResult) -> list[dict[str, Any]]:
    """One row per stage-2 group: the incumbent, the group's best, the losses and the ``t_tr`` noise.

    Returns
    -------
    list of dict
        ``group``, ``incumbent``, ``best``, ``adopted``, ``loss_change`` (best minus incumbent),
        ``t_tr_change``, ``t_tr_noise`` (sum of the two spreads) and ``within_noise`` (None
        when a value is missing).
    """
    by_id = {t.trial_id: t for t in result.trials}
    incumbent = result.meta.get("stage1_best")
    rows = []
    for decision in result.meta.get("stage2_decisions", []):
        best = decision.get("best_trial")
        row: dict[str, Any] = {"group": decision["group"], "incumbent": incumbent, "best": best,
                               "adopted": bool(decision.get("adopted")), "loss_change": None, "t_tr_change": None,
                               "t_tr_noise": None, "within_noise": None}
        a = by_id.get(incumbent).evaluation if incumbent in by_id else None
        b = by_id.get(best).evaluation if best in by_id else None
        if a is not None and b is not None and a.ok and b.ok:
            loss_a, loss_b = result.loss_of(by_id[incumbent]), result.loss_of(by_id[best])
            t_a, t_b = result.objective.measure(a, "t_tr"), result.objective.measure(b, "t_tr")
            s_a, s_b = _spread(result, a), _spread(result, b)
            if loss_a is not None and loss_b is not None:
                row["loss_change"] = loss_b - loss_a
            if t_a is not None and t_b is not None:
                row["t_tr_change"] = t_b - t_a
                if s_a is not None and s_b is not None:
                    row["t_tr_noise"] = s_a + s_b
                    row["within_noise"] = abs(t_b - t_a) <= s_a + s_b
        if row["adopted"]:
            incumbent = best
        rows.append(row)
    return rows


__all__ = ["stage2_decisions"]
