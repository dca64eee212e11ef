"""``report.md``, ``history.png``, ``pareto.png`` (+ ``pareto_matrix.png``), ``pareto.json`` and the
console summary.

Every trial's costs are shown: ``t_tr`` (the search's mode, with its spread), ``N_p``, inference
FLOPs per sample, inference latency per sample at batch 1 and peak training memory. The Pareto
front is taken over the validation error and the chosen costs (default: the penalised cost and
``n_params``) and exported with each point's configuration.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lightning_dnc.results.decisions import stage2_decisions
from lightning_dnc.results.folder import ResultsFolder
from lightning_dnc.results.outcome import FINAL_LABELS, final_metrics, report_lines, summary_rows
from lightning_dnc.results.plots import plot_history, plot_pareto, plot_pareto_matrix
from lightning_dnc.results.rungs import plot_rung_curves, rung_lines
from lightning_dnc.search import SearchResult, Trial
from lightning_dnc.search.core.tables import describe_config, si_text
from lightning_dnc.vocabulary import FINAL_EPOCH_KEY, STAGE_NAMES


def default_pareto_costs(penalize: str) -> tuple[str, ...]:
    """The penalised cost and ``n_params`` (``n_params`` and ``flops`` when ``n_params`` is penalised)."""
    return (penalize, "n_params") if penalize != "n_params" else ("n_params", "flops")


def trial_rows(result: SearchResult, pareto_costs: Sequence[str] = ("t_tr", "n_params")) -> list[dict[str, Any]]:
    """One plain row per trial under the result's objective (loss None when failed or pending)."""
    front = {t.trial_id for t in result.pareto_front(pareto_costs)}
    objective = result.objective
    spread_key = "t_tr_epoch" if objective.t_tr_mode == "epoch" else "t_tr_step"
    rows = []
    for trial in sorted(result.trials, key=lambda t: t.trial_id):
        ev = trial.evaluation
        ok = ev is not None and ev.ok
        rows.append({
            "trial_id": trial.trial_id,
            "stage": trial.stage,
            "group": trial.group,
            "state": trial.state,
            "loss": None if ev is None else result.loss_of(trial),
            "loss_measured": None if ev is None else objective.loss(ev),
            "f_p": objective.performance(ev) if ok else None,
            "val_acc": None if ev is None else ev.best_val_acc,
            "val_loss": None if ev is None else ev.best_val_loss,
            "t_tr": objective.measure(ev, "t_tr") if ok else None,
            "t_tr_spread": (ev.spread or {}).get(spread_key) if ok else None,
            "t_tr_epoch": None if ev is None else ev.t_tr_epoch,
            "t_tr_step": None if ev is None else ev.t_tr_step,
            "n_params": None if ev is None else ev.n_params,
            "flops": None if ev is None else ev.flops,
            "flops_train": None if ev is None else ev.flops_train,
            "latency": None if ev is None else ev.latency,
            "memory": None if ev is None else ev.memory,
            "wall_time": None if ev is None else ev.wall_time,
            "failure": None if ev is None or ev.ok else f"{ev.failure_reason}: {(ev.error or '').splitlines()[0][:60]}",
            "diverged": ev is not None and ev.diverged,
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


_si = si_text


def _t_tr(row: Mapping[str, Any]) -> str:
    if row["t_tr"] is None:
        return "-"
    spread = row.get("t_tr_spread")
    return f"{row['t_tr']:.4f}" + ("" if spread is None else f" ± {spread:.4f}")


def _cost_cells(row: Mapping[str, Any]) -> list[str]:
    latency = None if row["latency"] is None else row["latency"] * 1e3
    return [_t_tr(row), _fmt(row["n_params"], ","), _si(row["flops"]), _fmt(latency, ".3f"), _si(row["memory"], "B")]


COST_HEADER = ["t_tr (s)", "N_p", "FLOPs/sample", "latency (ms)", "memory"]


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return lines


def _trial_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    return _markdown_table(
        ["trial", "group", "loss", "val acc", "val loss", *COST_HEADER, "status", "configuration"],
        [[r["trial_id"], r["group"] or "", _fmt(r["loss"]), _fmt(r["val_acc"]), _fmt(r["val_loss"]),
          *_cost_cells(r), r["failure"] or ("ok (diverged: scored before it)" if r["diverged"] else r["state"]),
          describe_config(r["config"])]
         for r in rows],
    )


def _decision_table(result: SearchResult) -> list[str]:
    decisions = stage2_decisions(result)
    if not decisions or result.objective.penalize != "t_tr" or result.objective.wc == 0:
        return []
    noisy = sum(1 for d in decisions if d["within_noise"])
    lines = ["## Stage-2 decisions and t_tr noise", "",
             f"{noisy} of {len(decisions)} decisions compared networks whose t_tr differ by no more than the "
             "sum of their spreads (standard deviations of the measurement).", ""]
    return lines + _markdown_table(
        ["group", "incumbent", "group best", "adopted", "loss change", "t_tr change (s)", "t_tr noise (s)",
         "within noise"],
        [[d["group"], _fmt(d["incumbent"], "d"), _fmt(d["best"], "d"), "yes" if d["adopted"] else "no",
          _fmt(d["loss_change"]), _fmt(d["t_tr_change"]), _fmt(d["t_tr_noise"]),
          "-" if d["within_noise"] is None else ("yes" if d["within_noise"] else "no")] for d in decisions],
    ) + [""]


COST_ROWS = 5
"""Ranked trials the report's measured-vs-modelled cost table shows (at least ``top_k``)."""


def _cost_model_lines(result: SearchResult) -> list[str]:
    """For the best ranked trials: the penalised time as measured, as the cost model predicted it from
    the other trials, and the denoised estimate the decisions used (none without estimates)."""
    ce = result.cost_estimates
    if ce is None:
        return []
    unit = "s" if ce.penalize == "t_tr" else "ms"
    scale = 1.0 if ce.penalize == "t_tr" else 1e3
    shown = result.ranking[:max(COST_ROWS, result.k)]
    rows = []
    for r in shown:
        est = result.cost_estimate(r.trial_id) or {}
        measured, held_out = est.get("measured"), est.get("held_out")
        error = None if measured is None or held_out is None else held_out / measured - 1.0
        rows.append([r.rank, r.trial_id, _fmt(_scaled(measured, scale), ".4g"), _fmt(_scaled(held_out, scale), ".4g"),
                     "-" if error is None else f"{error:+.0%}", _fmt(_scaled(est.get("estimate"), scale), ".4g"),
                     _fmt(result.objective.loss(r.trial.evaluation)), _fmt(r.loss)])
    spread = 10 ** ce.noise_sd - 1.0
    deviation = 10 ** ce.deviation_sd - 1.0
    return [f"## Measured and modelled {ce.penalize} (top {len(shown)})", "",
            f"Decisions and this ranking read each trial's estimated `{ce.penalize}`: its measurement shrunk toward a "
            f"regression of log `{ce.penalize}` on counts the configuration fixes (fitted on {len(ce.measured)} trials). "
            f"Timing noise about {spread:.0%}, configurations off the line by about {deviation:.0%} beyond it, so an "
            f"estimate keeps {ce.weight:.0%} of its measurement's distance from the line. 'Predicted' is the "
            "regression fitted on the other trials: what the cost model said before the trial trained.", ""
            ] + _markdown_table(
        ["rank", "trial", f"measured ({unit})", f"predicted ({unit})", "predicted vs measured",
         f"estimate used ({unit})", "loss (measured)", "loss (ranked)"], rows) + [""]


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale


def write_report(run_dir: Path, result: SearchResult | None, final: Mapping[str, Any] | None, *,
                 search_seconds: float | None, wc: float, penalize: str, console: Console | None = None,
                 suffix: str = "", pareto_costs: Sequence[str] | None = None, n_params_ref: float | None = None,
                 earlier_seconds: float = 0.0, plain: bool = False) -> Path:
    """Write the report, the plots and ``pareto.json`` of a run into ``run_dir`` and print the summary.

    Parameters
    ----------
    result : SearchResult, optional
        None when a given configuration was trained without a search.
    final : mapping, optional
        Metrics of the final training (:func:`lightning_dnc.lightning.final_fit.train_final_model`).
    search_seconds : float, optional
        Wall time of the search.
    wc, penalize
        The trade-off to rank by. With the search's own, the report shows the search's final
        ranking (SPEC §5: the stage-3 trials and the stage-2 winner); with another, every
        successful trial is re-ranked (``SearchResult.rescore``). The report says which.
    suffix : str
        Appended to the file names (``report`` of another trade-off keeps the original files).
    pareto_costs : sequence of str, optional
        Costs of the Pareto front besides the validation error (:func:`default_pareto_costs`).
    n_params_ref : float, optional
        N_p of the largest network of the searched space, for a result that lacks it (0.1.0).
    earlier_seconds : float, default 0
        Part of ``search_seconds`` spent in earlier sessions of a resumed search.
    plain : bool
        Print the summary as plain ``label: value`` lines (``--quiet true``), not a box table.
    """
    folder = ResultsFolder(Path(run_dir))
    lines = [f"# Deep-n-Cheap run: {Path(run_dir).name}", ""]
    ranked = None
    if result is not None:
        own = result.objective.wc == wc and result.objective.penalize == penalize
        ranked = ranked_for(result, wc, penalize, n_params_ref)
        costs = tuple(pareto_costs) if pareto_costs else default_pareto_costs(penalize)
        rows = trial_rows(ranked, costs)
        lines += _objective_lines(ranked) + [_ranking_note(result, own), ""]
        lines += report_lines(ranked)
        if search_seconds is not None:
            earlier = (f", of which {earlier_seconds:.0f} s in earlier sessions (their trials' training time)"
                       if earlier_seconds else "")
            lines += [f"Search cost: {search_seconds / 3600:.3f} hours ({search_seconds:.0f} s{earlier}) for "
                      f"{len(rows)} trials ({sum(r['state'] == 'failed' for r in rows)} failed).", ""]
        for stage in sorted({r["stage"] for r in rows}):
            stage_rows = [r for r in rows if r["stage"] == stage]
            if stage_rows:
                lines += [f"## Stage {stage}: {STAGE_NAMES[stage]} ({len(stage_rows)} trials)", ""]
                lines += _trial_table(stage_rows) + [""]
        lines += _decision_table(ranked) + _cost_model_lines(ranked) + rung_lines(ranked)
        curves = plot_rung_curves(ranked, folder.file(f"rungs{suffix}.png"))
        if curves is not None:
            lines += [f"![validation curves and stopping points]({curves.name})", ""]
        by_id = {r["trial_id"]: r for r in rows}
        lines += [f"## Top {len(ranked.top_k)}", ""]
        lines += _markdown_table(
            ["rank", "trial", "loss", "val acc", *COST_HEADER, "configuration"],
            [[r.rank, r.trial_id, _fmt(r.loss), _fmt(r.trial.evaluation.best_val_acc),
              *_cost_cells(by_id[r.trial_id]), describe_config(r.config)] for r in ranked.top_k],
        ) + [""]
        front = [r for r in rows if r["pareto"]]
        pareto_json = folder.write_text(f"pareto{suffix}.json",
                                        json.dumps({"costs": list(costs), "points": ranked.pareto_points(costs)},
                                                   indent=2, allow_nan=False))
        lines += [f"## Pareto front of (f_p, {', '.join(costs)}): {len(front)} trials ({pareto_json.name})", ""]
        lines += _trial_table(front) + [""]
        history = plot_history(rows, folder.file(f"history{suffix}.png"),
                               title=f"Search history (wc={ranked.objective.wc:g}, {ranked.objective.penalize})")
        pareto = plot_pareto(rows, folder.file(f"pareto{suffix}.png"), cost=costs[0], costs=costs)
        lines += [f"![history]({history.name})", "", f"![pareto]({pareto.name})", ""]
        if len(costs) > 1:
            matrix = plot_pareto_matrix(rows, costs, folder.file(f"pareto_matrix{suffix}.png"))
            lines += [f"![pareto matrix]({matrix.name})", ""]
    if final is not None:
        final = final_metrics(final)
        lines += ["## Final model", ""]
        lines += _markdown_table(["metric", "value"], [[FINAL_LABELS.get(k, k), _fmt(v, ".4f") if isinstance(v, float)
                                                        else v] for k, v in final.items()]) + [""]
    report = folder.write_text(f"report{suffix}.md", "\n".join(lines))
    if console is not None:
        print_summary(console, ranked, final, search_seconds, report, plain=plain)
    return report


def ranked_for(result: SearchResult, wc: float, penalize: str, n_params_ref: float | None = None) -> SearchResult:
    """``result`` itself for its own trade-off, else every successful trial re-ranked for ``wc``/``penalize``."""
    if result.objective.wc == wc and result.objective.penalize == penalize:
        return result
    return result.rescore(wc=wc, penalize=penalize, n_params_ref=n_params_ref)


def _ranking_note(result: SearchResult, own: bool) -> str:
    """Which ranking the report shows: the search's own (SPEC §5) or a re-rank of every trial."""
    searched = f"wc={result.objective.wc:g}, penalize={result.objective.penalize}"
    if not own or "rescored_from" in result.meta:
        return "Ranking: every successful trial re-ranked for this trade-off, without training."
    if result.candidate_ids is None:
        return f"Ranking: every successful trial so far ({searched}; the search has not finished)."
    return (f"Ranking: the search's own final ranking ({searched}; SPEC §5 candidates: the stage-3 trials and the "
            "stage-2 winner).")


def _objective_lines(result: SearchResult) -> list[str]:
    objective = result.objective
    refs = (f"t_tr_ref {_fmt(objective.t_tr_ref, '.4g')} s, N_p_ref {_fmt(objective.n_params_ref, ',.0f')}, "
            f"FLOPs_ref {_si(objective.flops_ref)}, latency_ref {_fmt(objective.latency_ref, '.3g')} s, "
            f"memory_ref {_si(objective.memory_ref, 'B')}")
    mode = {"step": "the training step timed in a tight loop", "epoch": "the loop's mean epoch (SPEC §1)"}
    lines = [f"Objective: `log10(f_p + {objective.wc:g} * f_c)`, penalising `{objective.penalize}` ({refs}).", "",
             f"t_tr: {mode.get(objective.t_tr_mode or 'step')}; ± is the standard deviation of its measurement. "
             "N_p and FLOPs are exact counts; latency (batch 1) and t_tr are measured; memory is measured on CUDA "
             "and estimated elsewhere.", ""]
    unmeasured = [t.trial_id for t in result.trials
                  if t.evaluation is not None and t.evaluation.ok and objective.measure(t.evaluation) is None]
    if unmeasured and objective.wc > 0:
        lines += [f"Trials {unmeasured} have no `{objective.penalize}` record (run by lightning-dnc 0.1.0) and are "
                  "not ranked.", ""]
    return lines


def print_summary(console: Console, result: SearchResult | None, final: Mapping[str, Any] | None,
                  search_seconds: float | None, report: Path | None, plain: bool = False) -> None:
    """The final summary on the console: a table, or ``label: value`` lines when ``plain``.

    ``report`` is the written ``report.md`` (None: nothing was written, e.g. a run read while it runs).
    """
    table = Table(title="Deep-n-Cheap summary", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    if result is not None:
        best = result.best
        ev = best.trial.evaluation
        table.add_row("objective", f"log10(f_p + {result.objective.wc:g} * f_c), f_c = {result.objective.penalize}")
        pending = sum(t.state == "pending" for t in result.trials)
        table.add_row("trials", f"{len(result.trials)} ({sum(t.state == 'failed' for t in result.trials)} failed"
                                f"{f', {pending} not finished' if pending else ''})")
        if search_seconds is not None:
            table.add_row("search time", f"{search_seconds:.0f} s ({search_seconds / 3600:.3f} h)")
        table.add_row("best trial", f"#{best.trial_id} (stage {best.trial.stage}), loss {best.loss:.4f}")
        table.add_row("search val acc", _fmt(ev.best_val_acc))
        timed = "timed step" if (result.objective.t_tr_mode or "step") == "step" else "mean epoch"
        table.add_row(f"search t_tr ({timed}) / N_p", f"{_fmt(result.objective.measure(ev, 't_tr'), '.3f')} s / "
                      f"{_fmt(ev.n_params, ',')}")
        table.add_row("FLOPs / latency / memory", f"{_si(ev.flops)} per sample / "
                      f"{_fmt(None if ev.latency is None else ev.latency * 1e3, '.3f')} ms / {_si(ev.memory, 'B')}")
        table.add_row("configuration", describe_config(best.config))
    if final is not None:
        final = final_metrics(final)
        for key in ("val_acc", "test_acc", "val_loss", "test_loss"):
            if key in final:
                table.add_row(f"final {key}", _fmt(final[key]))
        table.add_row("epoch time (final training) / N_p",
                      f"{_fmt(final.get(FINAL_EPOCH_KEY), '.3f')} s / {_fmt(final.get('n_params'), ',')}")
        table.add_row("final training", f"{final.get('epochs')} epochs, {final.get('wall_time', 0):.0f} s")
        if final.get("checkpoint"):
            table.add_row("checkpoint", str(final["checkpoint"]))
    for label, value in summary_rows(result, final):
        table.add_row(label, value)
    if report is not None:
        table.add_row("report", str(report))
    if plain:
        console.print("Deep-n-Cheap summary", highlight=False, markup=False)
        for label, value in zip(table.columns[0].cells, table.columns[1].cells):
            console.print(f"  {label}: {value}", highlight=False, markup=False, soft_wrap=True)
        return
    console.print(table)


__all__ = ["Trial", "default_pareto_costs", "describe_config", "print_summary", "ranked_for", "trial_rows",
           "write_report"]
