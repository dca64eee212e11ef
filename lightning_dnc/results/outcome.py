"""What the report and the console summary add about how a search ended and what it reached.

- A search ended by its budget (``max_trials``/``max_time``) says so, with the limit.
- Regression results are read in the targets' own units: RMSE, MAE and R² of the top trials (the
  search itself ranks by the MSE of standardised targets).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning_dnc.search import SearchResult
from lightning_dnc.search.tables import regression_metrics

REGRESSION_FINAL_KEYS = ("val_rmse", "val_mae", "val_r2", "test_rmse", "test_mae", "test_r2")
"""Final-training metrics of a regression model shown in the summary."""


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


__all__ = ["REGRESSION_FINAL_KEYS", "budget_text", "report_lines", "summary_rows"]
