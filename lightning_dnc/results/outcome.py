"""What the report and the console summary add about how a search ended and what it reached.

- A search ended by its budget (``max_trials``/``max_time``) says so, with the limit.
- Regression results are read in the targets' own units: RMSE, MAE and R² of the top trials (the
  search itself ranks by the MSE of standardised targets).
- The final training's epoch time has its own name (``final_epoch_s``, "epoch time (final
  training)"), never ``t_tr``: the search's ``t_tr`` times a training step, the final training's
  number is its whole epoch loop, and the two can differ many times over.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning_dnc.search import SearchResult
from lightning_dnc.search.core.tables import regression_metrics
from lightning_dnc.vocabulary import FINAL_EPOCH_KEY

REGRESSION_FINAL_KEYS = ("val_rmse", "val_mae", "val_r2", "test_rmse", "test_mae", "test_r2")
"""Final-training metrics of a regression model shown in the summary."""

FINAL_LABELS = {FINAL_EPOCH_KEY: "epoch time (final training), s"}
"""How the report's final-model table names a key of ``final.json`` (others: the key itself)."""


def final_metrics(final: Mapping[str, Any]) -> dict[str, Any]:
    """``final.json``'s metrics under today's names: the old ``"t_tr"`` becomes ``"final_epoch_s"``."""
    out = dict(final)
    if "t_tr" in out:
        legacy = out.pop("t_tr")
        out.setdefault(FINAL_EPOCH_KEY, legacy)
    return out


def budget_text(result: SearchResult | None) -> str | None:
    """One sentence when a budget ended the search early, else None."""
    ended = (result.meta.get("budget_ended") if result is not None else None) or None
    if not ended:
        return None
    limit = f"{ended['limit']:g} s" if ended["by"] == "max_time" else f"{ended['limit']:g} trials"
    return (f"Search ended early by its budget: {ended['by']} ({limit}) reached after {ended['trials']} trials, "
            f"in stage {ended['stage']}; the remaining stages were skipped and every successful trial is ranked.")


def _number(value: Any, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def report_lines(result: SearchResult) -> list[str]:
    """Markdown lines for ``report.md``: the budget sentence and, for regression, user-unit metrics."""
    lines: list[str] = []
    text = budget_text(result)
    if text:
        lines += [f"**{text}**", ""]
    rows = [(r, regression_metrics(r.trial.evaluation)) for r in result.top_k]
    if any(metrics for _, metrics in rows):
        lines += ["## Regression metrics of the top trials (targets' units; the search ranks by the MSE of "
                  "standardised targets)", "", "| rank | trial | RMSE | MAE | R² |", "|---|---|---|---|---|"]
        lines += [f"| {r.rank} | {r.trial_id} | {_number(m.get('rmse'))} | {_number(m.get('mae'))} | "
                  f"{_number(m.get('r2'), '.4f')} |" for r, m in rows]
        lines.append("")
    return lines


def summary_rows(result: SearchResult | None, final: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Extra ``(label, value)`` rows of the console summary."""
    rows: list[tuple[str, str]] = []
    ended = (result.meta.get("budget_ended") if result is not None else None) or None
    if ended:
        rows.append(("ended by budget", f"{ended['by']} = {ended['limit']:g} after {ended['trials']} trials "
                                        f"(stage {ended['stage']})"))
    if result is not None:
        metrics = regression_metrics(result.best.trial.evaluation)
        if metrics:
            rows.append(("search val RMSE / MAE / R²", f"{_number(metrics.get('rmse'))} / "
                         f"{_number(metrics.get('mae'))} / {_number(metrics.get('r2'), '.4f')}"))
    for key in REGRESSION_FINAL_KEYS:
        if final is not None and final.get(key) is not None:
            rows.append((f"final {key}", _number(final[key], ".4f" if key.endswith("r2") else ".4g")))
    return rows


__all__ = ["FINAL_LABELS", "REGRESSION_FINAL_KEYS", "budget_text", "final_metrics", "report_lines", "summary_rows"]
