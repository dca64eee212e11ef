"""``report.md``, ``history.png``, ``pareto.png`` and the final summary printed on the console."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lightning_dnc.results.folder import ResultsFolder
from lightning_dnc.results.outcome import report_lines, summary_rows
from lightning_dnc.results.plots import plot_history, plot_pareto
from lightning_dnc.search import SearchResult, Trial
from lightning_dnc.search.tables import describe_config
from lightning_dnc.vocabulary import STAGE_NAMES


def trial_rows(result: SearchResult) -> list[dict[str, Any]]:
    """One plain row per trial under the result's objective (loss None when failed or pending)."""
    front = {t.trial_id for t in result.pareto_front()}
    rows = []
    for trial in sorted(result.trials, key=lambda t: t.trial_id):
        ev = trial.evaluation
        rows.append({
            "trial_id": trial.trial_id,
            "stage": trial.stage,
            "group": trial.group,
            "state": trial.state,
            "loss": None if ev is None else result.objective.loss(ev),
            "f_p": None if ev is None or not ev.ok else result.objective.performance(ev),
            "val_acc": None if ev is None else ev.best_val_acc,
            "val_loss": None if ev is None else ev.best_val_loss,
            "t_tr": None if ev is None else ev.t_tr,
            "n_params": None if ev is None else ev.n_params,
            "wall_time": None if ev is None else ev.wall_time,
            "failure": None if ev is None or ev.ok else f"{ev.failure_reason}: {(ev.error or '').splitlines()[0][:60]}",
            "config": trial.trained_config,
            "pareto": trial.trial_id in front,
        })
    return rows


def _fmt(value: Any, spec: str = ".4f") -> str:
    if value is None:
        return "-"
    if isinstance(value, int) and spec == ",":
        return f"{value:,}"
    return format(value, spec)


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return lines


def _trial_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    return _markdown_table(
        ["trial", "group", "loss", "val acc", "val loss", "t_tr (s)", "N_p", "status", "configuration"],
        [[r["trial_id"], r["group"] or "", _fmt(r["loss"]), _fmt(r["val_acc"]), _fmt(r["val_loss"]),
          _fmt(r["t_tr"], ".3f"), _fmt(r["n_params"], ","), r["failure"] or r["state"], describe_config(r["config"])]
         for r in rows],
    )


def write_report(run_dir: Path, result: SearchResult | None, final: Mapping[str, Any] | None, *,
                 search_seconds: float | None, wc: float, penalize: str, console: Console | None = None,
                 suffix: str = "", plain: bool = False) -> Path:
    """Write the report and plots of a run into ``run_dir`` and print the summary.

    Parameters
    ----------
    result : SearchResult, optional
        None when a given configuration was trained without a search.
    final : mapping, optional
        Metrics of the final training (:func:`lightning_dnc.results.final.train_final_model`).
    search_seconds : float, optional
        Wall time of the search.
    wc, penalize
        The trade-off to rank by; the result is re-scored when they differ from its objective.
    suffix : str
        Appended to the file names (``report`` of another trade-off keeps the original files).
    plain : bool
        Print the summary as plain ``label: value`` lines (``--quiet true``), not a box table.
    """
    folder = ResultsFolder(Path(run_dir))
    lines = [f"# Deep-n-Cheap run: {Path(run_dir).name}", ""]
    ranked = None
    if result is not None:
        ranked = result
        if result.objective.wc != wc or result.objective.penalize != penalize or suffix:
            ranked = result.rescore(wc=wc, penalize=penalize)
        rows = trial_rows(ranked)
        objective = ranked.objective
        lines += [
            f"Objective: `log10(f_p + {objective.wc:g} * f_c)`, penalising `{objective.penalize}` "
            f"(t_tr_ref {_fmt(objective.t_tr_ref, '.4g')} s, N_p_ref {_fmt(objective.n_params_ref, ',.0f')}).",
            "",
        ]
        lines += report_lines(ranked)
        if search_seconds is not None:
            lines += [f"Search cost: {search_seconds / 3600:.3f} hours ({search_seconds:.0f} s) for "
                      f"{len(rows)} trials ({sum(r['state'] == 'failed' for r in rows)} failed).", ""]
        for stage in (1, 2, 3):
            stage_rows = [r for r in rows if r["stage"] == stage]
            if stage_rows:
                lines += [f"## Stage {stage}: {STAGE_NAMES[stage]} ({len(stage_rows)} trials)", ""]
                lines += _trial_table(stage_rows) + [""]
        lines += [f"## Top {len(ranked.top_k)}", ""]
        lines += _markdown_table(
            ["rank", "trial", "loss", "val acc", "t_tr (s)", "N_p", "configuration"],
            [[r.rank + 1, r.trial_id, _fmt(r.loss), _fmt(r.trial.evaluation.best_val_acc),
              _fmt(r.trial.evaluation.t_tr, ".3f"), _fmt(r.trial.evaluation.n_params, ","), describe_config(r.config)]
             for r in ranked.top_k],
        ) + [""]
        front = [r for r in rows if r["pareto"]]
        lines += [f"## Pareto front of (1 - val acc, t_tr, N_p): {len(front)} trials", ""]
        lines += _trial_table(front) + [""]
        history = plot_history(rows, folder.file(f"history{suffix}.png"),
                               title=f"Search history (wc={objective.wc:g}, {objective.penalize})")
        pareto = plot_pareto(rows, folder.file(f"pareto{suffix}.png"))
        lines += [f"![history]({history.name})", "", f"![pareto]({pareto.name})", ""]
    if final is not None:
        lines += ["## Final model", ""]
        lines += _markdown_table(["metric", "value"], [[k, _fmt(v, ".4f") if isinstance(v, float) else v]
                                                       for k, v in final.items()]) + [""]
    report = folder.write_text(f"report{suffix}.md", "\n".join(lines))
    if console is not None:
        print_summary(console, ranked, final, search_seconds, report, plain=plain)
    return report


def print_summary(console: Console, result: SearchResult | None, final: Mapping[str, Any] | None,
                  search_seconds: float | None, report: Path, plain: bool = False) -> None:
    """The final summary on the console: a table, or ``label: value`` lines when ``plain``."""
    table = Table(title="Deep-n-Cheap summary", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    if result is not None:
        best = result.best
        ev = best.trial.evaluation
        table.add_row("objective", f"log10(f_p + {result.objective.wc:g} * f_c), f_c = {result.objective.penalize}")
        table.add_row("trials", f"{len(result.trials)} ({sum(t.state == 'failed' for t in result.trials)} failed)")
        if search_seconds is not None:
            table.add_row("search time", f"{search_seconds:.0f} s ({search_seconds / 3600:.3f} h)")
        table.add_row("best trial", f"#{best.trial_id} (stage {best.trial.stage}), loss {best.loss:.4f}")
        table.add_row("search val acc", _fmt(ev.best_val_acc))
        table.add_row("search t_tr / N_p", f"{_fmt(ev.t_tr, '.3f')} s / {_fmt(ev.n_params, ',')}")
        table.add_row("configuration", describe_config(best.config))
    if final is not None:
        for key in ("val_acc", "test_acc", "val_loss", "test_loss"):
            if key in final:
                table.add_row(f"final {key}", _fmt(final[key]))
        table.add_row("final t_tr / N_p", f"{_fmt(final.get('t_tr'), '.3f')} s / {_fmt(final.get('n_params'), ',')}")
        table.add_row("final training", f"{final.get('epochs')} epochs, {final.get('wall_time', 0):.0f} s")
        if final.get("checkpoint"):
            table.add_row("checkpoint", str(final["checkpoint"]))
    for label, value in summary_rows(result, final):
        table.add_row(label, value)
    table.add_row("report", str(report))
    if plain:
        console.print("Deep-n-Cheap summary", highlight=False, markup=False)
        for label, value in zip(table.columns[0].cells, table.columns[1].cells):
            console.print(f"  {label}: {value}", highlight=False, markup=False, soft_wrap=True)
        return
    console.print(table)


__all__ = ["describe_config", "print_summary", "trial_rows", "write_report", "Trial"]
