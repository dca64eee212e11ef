"""What a user sees while a search runs: a rich live panel, or one plain line per trial.

The panel shows the stage, trial i/N, elapsed and estimated remaining time and the best trial so
far. When stdout is not a terminal (CI, log files) each finished trial prints one concise line.

The counter ``i/N`` counts every finished trial of the search, a resumed journal's included, so it
goes on from where an interrupted run stopped. ``N`` is the planned total (cut to ``max_trials``);
it is marked ``~`` while it is an estimate: during stage 1 the size of stage 2 depends on the
skeleton stage 1 will choose (an MLP without hidden layers has no stage-2 options at all).

Each trial shows the cost the objective penalises (``t_tr``, ``FLOPs``, ``latency``, ``memory`` or
``N_p``) and the parameter count ``N_p``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from lightning_dnc.search.core.records import Evaluation
from lightning_dnc.search.core.tables import si_text
from lightning_dnc.search.core.trial import at_top
from lightning_dnc.vocabulary import COSTS, STAGE_NAMES

COST_COLUMNS = {"t_tr": "t_tr (s)", "n_params": "N_p", "flops": "FLOPs/sample", "latency": "latency (ms)",
                "memory": "memory"}
"""Column title of each penalised cost in a stage's table."""


@dataclass
class _Best:
    trial_id: int
    loss: float
    evaluation: Evaluation


def cost_value(evaluation: Evaluation, cost: str) -> str:
    """The value of one cost as the progress shows it (``-`` when not measured).

    ``t_tr`` in seconds per epoch (the search's measure), ``n_params`` with thousands separators,
    ``flops`` per sample with an SI prefix, ``latency`` in milliseconds per sample, ``memory`` in bytes
    with an SI prefix.
    """
    value: Any = getattr(evaluation, cost, None)
    if value is None:
        return "-"
    if cost == "t_tr":
        return f"{value:.3f}"
    if cost == "n_params":
        return f"{value:,}"
    if cost == "latency":
        return f"{value * 1e3:.3f}"
    return si_text(float(value), "B" if cost == "memory" else "")


def cost_text(evaluation: Evaluation, cost: str) -> str:
    """``t_tr 0.123s``, ``N_p 12,345``, ``FLOPs 1.2 M``, ``latency 0.500ms`` or ``memory 3.4 MB``."""
    value = cost_value(evaluation, cost)
    unit = COSTS[cost].unit
    unit = "" if value == "-" or value.endswith(unit) else unit  # memory's si_text already ends with B
    return f"{COSTS[cost].label} {value}{unit}"


def shown_costs(penalize: str) -> tuple[str, ...]:
    """The costs a progress line shows: the penalised one, then ``n_params``."""
    return (penalize,) if penalize == "n_params" else (penalize, "n_params")


def describe(evaluation: Evaluation, penalize: str = "t_tr") -> str:
    """One short human summary of an evaluation: accuracy or loss, the penalised cost and N_p."""
    if not evaluation.ok:
        return f"failed ({evaluation.failure_reason}): {(evaluation.error or '').splitlines()[0][:80] if evaluation.error else ''}"
    regression = evaluation.extra.get("regression") or {}
    if evaluation.task == "classification" and evaluation.best_val_acc is not None:
        metric = f"val_acc {evaluation.best_val_acc:.4f}"
    elif regression.get("r2") is not None:
        metric = f"val_r2 {regression['r2']:.4f}  val_rmse {regression.get('rmse') or float('nan'):.4g}"
    else:
        metric = f"val_loss {evaluation.best_val_loss:.4g}"
    costs = "  ".join(cost_text(evaluation, cost) for cost in shown_costs(penalize))
    diverged = "  (diverged: scored before it)" if evaluation.diverged else ""
    return f"{metric}  {costs}{diverged}"


def _stage_line(stage: int, rows: Sequence[tuple[int, float | None, Evaluation]], penalize: str = "t_tr") -> str:
    """One plain line summing up a finished stage: trials, failures, its best trial."""
    scored = [(loss, trial_id, ev) for trial_id, loss, ev in rows if loss is not None]
    failed = sum(1 for _, _, ev in rows if not ev.ok)
    text = f"stage {stage} ({STAGE_NAMES.get(stage, '')}) done: {len(rows)} trials, {failed} failed"
    if scored:
        loss, trial_id, ev = min(scored, key=lambda item: (item[0], item[1]))
        text += f"; best trial {trial_id}: loss {loss:+.4f}  {describe(ev, penalize)}"
    return text


def _format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:d}:{secs:02d}"


class SearchProgress:
    """Progress display of one search.

    Parameters
    ----------
    enabled : bool, default True
        False prints nothing at all.
    console : rich.console.Console, optional
        Where to print; a new console on stdout by default.
    live : bool, optional
        Force the live panel on or off; by default it is on when the console is a terminal.
    plain : bool, default False
        Plain text lines only (no panel, no box tables): ``--quiet true``.
    penalize : {"t_tr", "n_params", "flops", "latency", "memory"}, default "t_tr"
        The cost the objective penalises: every line and table shows it (and ``N_p``).
    """

    def __init__(self, enabled: bool = True, console: Console | None = None, live: bool | None = None,
                 plain: bool = False, penalize: str = "t_tr") -> None:
        if penalize not in COST_COLUMNS:
            raise ValueError(f"`penalize` must be one of {list(COST_COLUMNS)}, got {penalize!r}.")
        self.penalize = penalize
        self.enabled = enabled
        self.console = console or Console()
        self.plain = bool(plain)
        self.use_live = False if self.plain else (self.console.is_terminal if live is None else live)
        self._estimate = True
        self._live: Live | None = None
        self._start = time.perf_counter()
        self._finished = 0
        self._planned = 0
        self._stage = 1
        self._current = ""
        self._best: _Best | None = None

    def __enter__(self) -> SearchProgress:
        self._start = time.perf_counter()
        if self.enabled and self.use_live:
            self._live = Live(self._panel(), console=self.console, refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def search_started(self, finished_trials: int, planned_total: int, estimate: bool = True) -> None:
        """The driver starts (or resumes with ``finished_trials`` already told)."""
        self._finished = int(finished_trials)
        self._planned = max(planned_total, self._finished)
        self._estimate = estimate

    def trial_started(self, trial_id: int, stage: int, planned_total: int, estimate: bool = False) -> None:
        """A candidate starts training."""
        self._stage = stage
        self._estimate = estimate
        self._planned = max(planned_total, self._finished + 1)
        self._current = f"trial {trial_id}"
        self._refresh()

    def trial_finished(self, trial_id: int, stage: int, evaluation: Evaluation, loss: float | None,
                       planned_total: int, estimate: bool = False) -> None:
        """A candidate finished (ok or failed); ``loss`` is its objective (None when failed).

        ``estimate``: ``planned_total`` is still an estimate (shown as ``~N``).
        """
        self._finished += 1
        self._estimate = estimate
        self._planned = max(planned_total, self._finished)
        rung = evaluation.extra.get("rung")  # multi-fidelity: only full-budget runs can be best
        full = at_top(rung, evaluation.config)
        if loss is not None and full and (self._best is None or loss < self._best.loss):
            self._best = _Best(trial_id, loss, evaluation)
        if not self.enabled:
            return
        loss_text = f"{loss:+.4f}" if loss is not None else "   n/a "
        at = "" if rung is None else f" rung {rung.get('rung')} ({rung.get('epochs')} ep)"
        line = (
            f"[stage {stage}]{at} trial {trial_id:>3} ({self._counter()}) "
            f"loss {loss_text}  {describe(evaluation, self.penalize)}  ({evaluation.wall_time:.1f}s)"
        )
        if self._live is not None:
            self._live.console.print(line, highlight=False, markup=False)
        else:
            self.console.print(line, highlight=False, markup=False, soft_wrap=True)
        self._refresh()

    def stage_finished(self, stage: int, rows: Sequence[tuple[int, float | None, Evaluation]]) -> None:
        """Print one table for a finished stage: ``rows`` are (trial_id, loss, evaluation)."""
        if not self.enabled or not rows:
            return
        if self.plain:
            self.console.print(_stage_line(stage, rows, self.penalize), highlight=False, markup=False, soft_wrap=True)
            return
        table = Table(title=f"Stage {stage}: {STAGE_NAMES.get(stage, '')}", show_lines=False)
        costs = shown_costs(self.penalize)
        for column in ("trial", "loss", "val_acc / loss", *(COST_COLUMNS[c] for c in costs), "status"):
            table.add_column(column, justify="right" if column != "status" else "left")
        for trial_id, loss, ev in rows:
            metric = ev.best_val_acc if ev.task == "classification" else ev.best_val_loss
            table.add_row(
                str(trial_id),
                "-" if loss is None else f"{loss:.4f}",
                "-" if metric is None else f"{metric:.4f}",
                *(cost_value(ev, c) for c in costs),
                ("ok (diverged)" if ev.diverged else ev.status) if ev.ok else f"failed: {ev.failure_reason}",
            )
        target = self._live.console if self._live is not None else self.console
        target.print(table)

    def _counter(self) -> str:
        """``i/N`` (``i/~N`` while ``N`` is an estimate)."""
        return f"{self._finished}/{'~' if self._estimate else ''}{self._planned}"

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._panel())

    def _panel(self) -> Table:
        elapsed = time.perf_counter() - self._start
        eta = elapsed / self._finished * max(0, self._planned - self._finished) if self._finished else None
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        table.add_row("Deep-n-Cheap", f"stage {self._stage}: {STAGE_NAMES.get(self._stage, '')}")
        table.add_row("trial", f"{self._counter()}  ({self._current})")
        table.add_row("elapsed", _format_seconds(elapsed) + (f"   ETA {_format_seconds(eta)}" if eta is not None else ""))
        if self._best is not None:
            table.add_row("best", f"trial {self._best.trial_id}: loss {self._best.loss:.4f}  "
                                  f"{describe(self._best.evaluation, self.penalize)}")
        return table
