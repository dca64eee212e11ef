"""Short, readable text of trials and results: one-line configurations and small tables.

Torch-free plain text (no rich), used by ``repr``/``print`` of :class:`~lightning_dnc.search.Trial`,
:class:`~lightning_dnc.search.RankedTrial` and :class:`~lightning_dnc.search.SearchResult`, by
their ``to_dataframe()``, and by the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lightning_dnc.search.core.records import MEASURES, Evaluation

COLUMNS = ("id", "stage", "loss", "metric", "t_tr (s)", "N_p", "configuration")
"""Columns of a trial table; ``metric`` is ``val_acc`` (classification) or ``val_r2`` (regression)."""

SHOWN_ROWS = 10
"""Rows a result prints before saying how many more there are."""


def describe_config(config: Mapping[str, Any]) -> str:
    """A one-line summary of a configuration (architecture and training settings)."""
    parts = []
    if "out_channels" in config:
        parts.append(f"conv {list(config['out_channels'])}")
        if any(s == 2 for s in config.get("strides", [])):
            parts.append(f"strides {list(config['strides'])}")
        n = len(config["out_channels"])
        if "apply_bns" in config:
            parts.append(f"bn {sum(config['apply_bns'])}/{n}")
        if "apply_dropouts" in config:
            probs = sorted({p for p, on in zip(config.get("dropout_probs", []), config["apply_dropouts"]) if on})
            parts.append(f"dropout {sum(config['apply_dropouts'])}/{n}" + (f" p {probs}" if probs else ""))
        if sum(config.get("shortcuts", [])):
            parts.append(f"shortcuts {sum(config['shortcuts'])}")
    if config.get("hidden_mlp") or "out_channels" not in config:
        parts.append(f"hidden {list(config.get('hidden_mlp', []))}")
    parts.append(str(config.get("act", "relu")))
    wd = config.get("weight_decay", "auto")
    wd_text = wd if isinstance(wd, str) else f"{wd:.2g}"
    parts.append(f"lr {config.get('lr', 1e-3):.2g} wd {wd_text} bs {config.get('batch_size', 256)}")
    return ", ".join(parts)


def si_text(value: float | None, unit: str = "") -> str:
    """``value`` with an SI prefix: ``si_text(1.23e6, "B")`` is ``"1.23 MB"``; ``-`` for None."""
    if value is None:
        return "-"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".strip()


def regression_metrics(evaluation: Evaluation | None) -> dict[str, float | None]:
    """``{"rmse", "mae", "r2"}`` in the user's units (empty when the evaluation has none)."""
    if evaluation is None:
        return {}
    return dict(evaluation.extra.get("regression") or {})


def metric_name(evaluation: Evaluation | None) -> str:
    """``val_acc`` or ``val_r2``: the number a person reads first for this task."""
    return "val_r2" if evaluation is not None and evaluation.task == "regression" else "val_acc"


def metric_value(evaluation: Evaluation | None) -> float | None:
    """The value of :func:`metric_name`."""
    if evaluation is None:
        return None
    if evaluation.task == "regression":
        return regression_metrics(evaluation).get("r2")
    return evaluation.best_val_acc


def _fmt(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value != value:
        return "nan"
    return format(value, spec)


def trial_row(trial: Any, loss: float | None, config: Mapping[str, Any] | None = None) -> list[str]:
    """The cells of one trial: id, stage (and group), loss (or state), metric, t_tr, N_p, configuration.

    ``config`` replaces the trained configuration in the last cell (a ranked trial shows what a
    final training uses).
    """
    ev = trial.evaluation
    stage = f"{trial.stage}{'/' + trial.group if trial.group else ''}"
    if loss is not None:
        loss_text = f"{loss:.4f}"
    else:
        loss_text = trial.state if ev is None or not ev.ok else "-"
        if ev is not None and not ev.ok:
            loss_text = f"failed:{ev.failure_reason}"
    return [str(trial.trial_id), stage, loss_text, _fmt(metric_value(ev), ".4f"),
            _fmt(None if ev is None else ev.t_tr, ".3f"), _fmt(None if ev is None else ev.n_params, ","),
            describe_config(trial.trained_config if config is None else config)]


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain aligned columns; the last column is left as it is (it may be long)."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)] if rows else [len(h) for h in header]
    lines = []
    for row in (header, *rows):
        cells = [str(c).rjust(w) for c, w in zip(row[:-1], widths[:-1])] + [str(row[-1])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def header_for(evaluations: Sequence[Evaluation | None]) -> list[str]:
    """:data:`COLUMNS` with ``metric`` named for the task of ``evaluations``."""
    name = next((metric_name(ev) for ev in evaluations if ev is not None), "val_acc")
    return [name if c == "metric" else c for c in COLUMNS]


def result_records(result: Any) -> list[dict[str, Any]]:
    """One plain record per trial of ``result`` (a :class:`~lightning_dnc.search.SearchResult`), by trial id.

    Keys: ``trial_id``, ``stage``, ``group``, ``state``, ``rank`` (1 for the best, None when not
    ranked), ``loss`` (the ranking's: with the denoised cost where the result has one),
    ``loss_measured`` (with the measured cost), ``cost_estimate`` (the denoised penalised measure or
    None), ``f_p``, ``val_acc``, ``val_loss``, ``val_rmse``, ``val_mae``, ``val_r2``
    (regression, user's units), every cost: ``t_tr`` (the search's measure), ``n_params`` and the
    :data:`~lightning_dnc.search.core.records.MEASURES` (``t_tr_epoch``, ``t_tr_step``, ``flops``,
    ``flops_train``, ``latency``, ``memory``), then ``epochs_run``, ``wall_time``,
    ``failure_reason``, ``config`` (one line) and ``config_dict``.
    """
    ranks = {r.trial_id: r.rank for r in result.ranking}
    records = []
    for trial in sorted(result.trials, key=lambda t: t.trial_id):
        ev = trial.evaluation
        reg = regression_metrics(ev)
        ok = ev is not None and ev.ok
        records.append({
            "trial_id": trial.trial_id, "stage": trial.stage, "group": trial.group, "state": trial.state,
            "rank": ranks.get(trial.trial_id), "loss": result.loss_of(trial),
            "loss_measured": result.objective.loss(ev) if ev is not None else None,
            "cost_estimate": (result.cost_estimate(trial.trial_id) or {}).get("estimate"),
            "f_p": result.objective.performance(ev) if ok else None,
            "val_acc": None if ev is None else ev.best_val_acc, "val_loss": None if ev is None else ev.best_val_loss,
            "val_rmse": reg.get("rmse"), "val_mae": reg.get("mae"), "val_r2": reg.get("r2"),
            "t_tr": None if ev is None else ev.t_tr, "n_params": None if ev is None else ev.n_params,
            **{name: None if ev is None else getattr(ev, name) for name in MEASURES},
            "epochs_run": None if ev is None else ev.epochs_run, "wall_time": None if ev is None else ev.wall_time,
            "failure_reason": None if ev is None or ev.ok else ev.failure_reason,
            "config": describe_config(trial.trained_config), "config_dict": trial.trained_config,
        })
    return records


def result_text(result: Any) -> str:
    """What ``print(result)`` shows: objective, counts, budget end, then the best ranked trials."""
    trials = result.trials
    failed = sum(1 for t in trials if t.state == "failed")
    objective = result.objective
    lines = [f"SearchResult: {result.family or '?'} family, {len(trials)} trials ({failed} failed), objective "
             f"log10(f_p + {objective.wc:g} * f_c[{objective.penalize}])"]
    ended = result.meta.get("budget_ended")
    if ended:
        lines.append(f"ended early by {ended['by']} = {ended['limit']:g} after {ended['trials']} trials "
                     f"(in stage {ended['stage']}); every successful trial is ranked")
    shown = result.ranking[:SHOWN_ROWS]
    header = ["rank", *header_for([r.trial.evaluation for r in shown])]
    rows = [[str(r.rank), *trial_row(r.trial, r.loss, r.config)] for r in shown]
    lines.append(text_table(header, rows))
    if len(result.ranking) > len(shown):
        more = len(result.ranking) - len(shown)
        lines.append(f"... {more} more ranked trials (result.ranking, result.to_dataframe())")
    return "\n".join(lines)


__all__ = ["COLUMNS", "SHOWN_ROWS", "describe_config", "header_for", "metric_name", "metric_value",
           "regression_metrics", "result_records", "result_text", "si_text", "text_table", "trial_row"]
