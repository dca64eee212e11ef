"""Tables and the plot of ``bench/hpo_bench.py`` (the same for both suites)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def _cell(stats: Mapping[str, Any] | None, fmt: str = ".3f", spread: bool = True) -> str:
    if not stats or stats.get("median") is None:
        return "-"
    if not spread:
        return f"{stats['median']:{fmt}}"
    return f"{stats['median']:{fmt}} [{stats['q25']:{fmt}}, {stats['q75']:{fmt}}]"


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2g}" if value >= 1e-3 else f"{value:.1e}"


def format_tables(summary: Mapping[str, Any], skipped: Mapping[str, str]) -> str:
    """One Markdown table per wc: median [25th, 75th pct] over tasks x seeds. The win/tie/loss
    column counts tasks for the row's reference, ``ours`` unless named in brackets (``dnc-asha``
    rows: their fixed-epoch twin)."""
    ours = summary["ours"]
    lines: list[str] = []
    for wc, table in summary["by_wc"].items():
        budgets = list(next(iter(table.values()))["regret_at"]) if table else []
        shown = [b for b in budgets if any(e["regret_at"][b]["median"] is not None for e in table.values())]
        lines.append(f"\n### wc = {wc}\n")
        lines.append("| method | regret at end of budget | " + "".join(f"regret at {b} | " for b in shown)
                     + f"simulated time (full trainings) | decision time (s) | evaluations | HV ratio "
                       f"| {ours} win/tie/loss (tasks) | Wilcoxon p |")
        lines.append("|---" * (8 + len(shown)) + "|")
        for method, entry in table.items():
            h2h = entry.get("vs_ours")
            versus = "-" if h2h is None else f"{h2h['win']}/{h2h['tie']}/{h2h['loss']}"
            if h2h is not None and h2h.get("reference", ours) != ours:
                versus += f" ({h2h['reference']})"
            lines.append(
                f"| {method} | {_cell(entry['regret'])} | "
                + "".join(_cell(entry["regret_at"][b], spread=False) + " | " for b in shown)
                + f"{_cell(entry['simulated_time_full'], '.1f')} | {_cell(entry['decision_time'], '.2f', False)} "
                  f"| {_cell(entry['evaluations'], '.0f', False)} | {_cell(entry['hv_ratio'], '.3f', False)} "
                  f"| {versus} | {_p(None if h2h is None else h2h['wilcoxon_p'])} |")
        for method, reason in skipped.items():
            lines.append(f"| {method} | skipped: {reason} |" + " |" * (7 + len(shown)))
    return "\n".join(lines)


def plot(summary: Mapping[str, Any], path: Path, title: str) -> Path:
    """Median regret (over tasks x seeds) vs simulated time, one panel per wc, one line per method,
    25th-75th percentile shaded; a line starts once every run of the method has a result."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    grid = np.array(summary["curve_grid"])
    panels = list(summary["by_wc"].items())
    fig, axes = plt.subplots(1, len(panels), figsize=(max(6.0, 5.6 * len(panels)), 4.4), squeeze=False)
    for ax, (wc, table) in zip(axes[0], panels):
        for method, entry in table.items():
            curve = entry.get("curve") or []
            # From the time every run has a result to the end of the longest run.
            end = entry["simulated_time_full"]["max"] or 0.0
            points = [(x, c) for x, c in zip(grid, curve)
                      if c["median"] is not None and c["n"] == entry["runs"] and x <= end * 1.05]
            if not points:
                continue
            xs = [x for x, _ in points]
            style = {"dnc": ("-", 2.4), "dnc-paper": ("--", 1.8)}.get(method, ("-", 1.2))
            line = ax.plot(xs, [c["median"] for _, c in points], style[0], label=method, linewidth=style[1])[0]
            ax.fill_between(xs, [c["q25"] for _, c in points], [c["q75"] for _, c in points],
                            color=line.get_color(), alpha=0.12, linewidth=0)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # no crowded minor labels
        ax.set_title(f"wc = {wc}")
        ax.set_xlabel("simulated time (full trainings of the centre config)")
        ax.set_ylabel("normalised regret (median)")
        ax.axhline(0.0, color="grey", linewidth=0.6)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
