"""The two figures of a results folder: ``history.png`` and ``pareto.png``.

Both take plain rows (one dict per finished trial with ``trial_id``, ``stage``, ``loss``,
``f_p``, ``t_tr``, ``n_params`` and ``pareto``) so they do not depend on search internals.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

STAGE_COLOURS = {1: "tab:blue", 2: "tab:orange", 3: "tab:green"}
STAGE_LABELS = {1: "stage 1: architecture BO", 2: "stage 2: grid", 3: "stage 3: training BO"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_history(rows: Sequence[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Objective of every finished trial in order, coloured by stage, with the running best."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    scored = [r for r in rows if r.get("loss") is not None]
    for stage, colour in STAGE_COLOURS.items():
        points = [r for r in scored if r["stage"] == stage]
        if points:
            ax.scatter([r["trial_id"] for r in points], [r["loss"] for r in points], s=22, color=colour,
                       label=STAGE_LABELS[stage], zorder=3)
    failed = [r for r in rows if r.get("loss") is None]
    if failed and scored:
        top = max(r["loss"] for r in scored)
        ax.scatter([r["trial_id"] for r in failed], [top] * len(failed), marker="x", color="tab:red",
                   label="failed", zorder=3)
    if scored:
        ordered = sorted(scored, key=lambda r: r["trial_id"])
        best, xs, ys = float("inf"), [], []
        for r in ordered:
            best = min(best, r["loss"])
            xs.append(r["trial_id"])
            ys.append(best)
        ax.step(xs, ys, where="post", color="black", linewidth=1.2, label="best so far")
    return _save(plt, fig, ax, path, "trial", "objective  log10(f_p + wc f_c)", title or "Search history")


def plot_pareto(rows: Sequence[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Validation error (or scaled loss) against t_tr, coloured by stage, Pareto front marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    usable = [r for r in rows if r.get("f_p") is not None and r.get("t_tr") is not None]
    for stage, colour in STAGE_COLOURS.items():
        points = [r for r in usable if r["stage"] == stage]
        if points:
            ax.scatter([r["t_tr"] for r in points], [r["f_p"] for r in points], s=24, color=colour,
                       label=STAGE_LABELS[stage], alpha=0.85, zorder=3)
    front_2d = _front_2d(usable)
    if front_2d:
        ax.step([r["t_tr"] for r in front_2d], [r["f_p"] for r in front_2d], where="post", color="black",
                linewidth=1, zorder=2, label="Pareto front of (f_p, t_tr)")
    front = [r for r in usable if r.get("pareto")]
    if front:
        ax.scatter([r["t_tr"] for r in front], [r["f_p"] for r in front], s=80, facecolors="none",
                   edgecolors="black", label="Pareto-optimal in (f_p, t_tr, N_p)", zorder=4)
    return _save(plt, fig, ax, path, "training time per epoch t_tr (s)", "f_p  (1 - best val accuracy)",
                 title or "Accuracy vs training cost")


def _save(plt: Any, fig: Any, ax: Any, path: Path, xlabel: str, ylabel: str, title: str) -> Path:
    """Label, grid and legend the axes, write the figure to ``path`` and close it."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _front_2d(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows not dominated in (t_tr, f_p), by increasing t_tr (so decreasing f_p)."""
    front: list[dict[str, Any]] = []
    for row in sorted(rows, key=lambda r: (r["t_tr"], r["f_p"])):
        if not front or row["f_p"] < front[-1]["f_p"]:
            front.append(row)
    return front
