"""The figures of a results folder: ``history.png``, ``pareto.png`` and ``pareto_matrix.png``.

They take plain rows (one dict per finished trial with ``trial_id``, ``stage``, ``loss``,
``f_p``, the costs ``t_tr``, ``n_params``, ``flops``, ``latency``, ``memory``, and ``pareto``) so
they do not depend on search internals.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_dnc.vocabulary import COSTS

STAGE_COLOURS = {1: "tab:blue", 2: "tab:orange", 3: "tab:green"}
COST_LABELS = {"t_tr": "training time per epoch t_tr (s)", "n_params": "trainable parameters N_p",
               "flops": "inference FLOPs per sample", "latency": "inference latency per sample, batch 1 (s)",
               "memory": "peak training memory (bytes)", "f_p": "f_p  (1 - best val accuracy)"}
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


def plot_pareto(rows: Sequence[dict[str, Any]], path: Path, title: str = "", cost: str = "t_tr",
                costs: Sequence[str] = ("t_tr", "n_params")) -> Path:
    """Validation error (or scaled loss) against ``cost``, coloured by stage, with the 2-D front
    of (f_p, ``cost``) drawn and the trials Pareto-optimal in (f_p, ``costs``) circled."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    usable = [r for r in rows if r.get("f_p") is not None and r.get(cost) is not None]
    for stage, colour in STAGE_COLOURS.items():
        points = [r for r in usable if r["stage"] == stage]
        if points:
            ax.scatter([r[cost] for r in points], [r["f_p"] for r in points], s=24, color=colour,
                       label=STAGE_LABELS[stage], alpha=0.85, zorder=3)
    front_2d = _front_2d(usable, cost)
    if front_2d:
        ax.step([r[cost] for r in front_2d], [r["f_p"] for r in front_2d], where="post", color="black",
                linewidth=1, zorder=2, label=f"Pareto front of (f_p, {cost})")
    front = [r for r in usable if r.get("pareto")]
    if front:
        ax.scatter([r[cost] for r in front], [r["f_p"] for r in front], s=80, facecolors="none",
                   edgecolors="black", label=f"Pareto-optimal in (f_p, {', '.join(costs)})", zorder=4)
    if cost in COSTS and COSTS[cost].log_scale:
        ax.set_xscale("log")
    return _save(plt, fig, ax, path, COST_LABELS.get(cost, cost), COST_LABELS["f_p"],
                 title or f"Accuracy vs {cost}")


def plot_pareto_matrix(rows: Sequence[dict[str, Any]], costs: Sequence[str], path: Path) -> Path:
    """Scatter matrix of (f_p, ``costs``): every pair of axes, Pareto-optimal trials in black."""
    plt = _pyplot()
    names = ["f_p", *costs]
    usable = [r for r in rows if all(r.get(n) is not None for n in names)]
    size = len(names)
    fig, axes = plt.subplots(size, size, figsize=(2.4 * size, 2.4 * size), dpi=100, squeeze=False)
    for i, y in enumerate(names):
        for j, x in enumerate(names):
            ax = axes[i][j]
            if i == j:
                ax.hist([r[x] for r in usable], bins=12, color="0.7")
            else:
                others = [r for r in usable if not r.get("pareto")]
                front = [r for r in usable if r.get("pareto")]
                ax.scatter([r[x] for r in others], [r[y] for r in others], s=10, color="tab:blue", alpha=0.6)
                ax.scatter([r[x] for r in front], [r[y] for r in front], s=16, color="black")
            if i == size - 1:
                ax.set_xlabel(x)
            if j == 0:
                ax.set_ylabel(y)
            ax.tick_params(labelsize=6)
            ax.locator_params(nbins=4)
    fig.suptitle(f"Pareto front of (f_p, {', '.join(costs)}): black = Pareto-optimal", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


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


def _front_2d(rows: Sequence[dict[str, Any]], cost: str = "t_tr") -> list[dict[str, Any]]:
    """Rows not dominated in (``cost``, f_p), by increasing ``cost`` (so decreasing f_p)."""
    front: list[dict[str, Any]] = []
    for row in sorted(rows, key=lambda r: (r[cost], r["f_p"])):
        if not front or row["f_p"] < front[-1]["f_p"]:
            front.append(row)
    return front
