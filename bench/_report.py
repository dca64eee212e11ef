"""Summaries over seeds, the per-wc tables, the head-to-head counts and ``search_bench.png``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Per-run fields summarised over seeds (median and spread).
FIELDS = ("best_objective", "best_val_acc", "t_tr", "n_params", "trainings", "wall_s", "framework_frac",
          "non_training_frac")
OURS = "lightning-dnc"


def spread(values: Sequence[float | None]) -> dict[str, float | None]:
    """Median, quartiles, min and max of the non-missing ``values`` (all ``None`` when none)."""
    data = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if data.size == 0:
        return {"median": None, "q25": None, "q75": None, "min": None, "max": None, "n": 0}
    q25, median, q75 = np.percentile(data, [25, 50, 75])
    return {"median": float(median), "q25": float(q25), "q75": float(q75), "min": float(data.min()),
            "max": float(data.max()), "n": int(data.size)}


def summarise(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{wc: {method: {field: spread}}}`` over seeds, plus head-to-head counts against ours.

    ``vs_ours`` of a method counts the seeds where lightning-dnc's best objective is lower
    (``ours_better``), equal, or higher than the method's at the same number of trainings.
    """
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for wc in sorted({r["wc"] for r in runs}):
        at_wc = [r for r in runs if r["wc"] == wc]
        methods = list(dict.fromkeys(r["method"] for r in at_wc))
        ours = {r["seed"]: r["best_objective"] for r in at_wc if r["method"] == OURS}
        table: dict[str, dict[str, Any]] = {}
        for method in methods:
            rows = [r for r in at_wc if r["method"] == method]
            entry: dict[str, Any] = {name: spread([r.get(name) for r in rows]) for name in FIELDS}
            entry["seeds"] = sorted(r["seed"] for r in rows)
            if method != OURS:
                counts = {"ours_better": 0, "tie": 0, "ours_worse": 0}
                for r in rows:
                    mine = ours.get(r["seed"])
                    if mine is None or r["best_objective"] is None:
                        continue
                    key = "tie" if math.isclose(mine, r["best_objective"], abs_tol=1e-12) else (
                        "ours_better" if mine < r["best_objective"] else "ours_worse")
                    counts[key] += 1
                entry["vs_ours"] = counts
            table[method] = entry
        out[_wc_key(wc)] = table
    return out


def _wc_key(wc: float) -> str:
    return f"{wc:g}"


def _cell(stats: Mapping[str, Any], fmt: str, scale: float = 1.0) -> str:
    if stats["median"] is None:
        return "-"
    m, lo, hi = (stats[k] * scale for k in ("median", "q25", "q75"))
    return f"{m:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def format_tables(summary: Mapping[str, Mapping[str, Mapping[str, Any]]], skipped: Mapping[str, str]) -> str:
    """Markdown tables, one per wc: median [25th, 75th percentile] over seeds."""
    lines: list[str] = []
    for wc, table in summary.items():
        lines.append(f"\n### wc = {wc}\n")
        lines.append("| method | best objective | best val acc % | t_tr of chosen (ms/epoch) | N_p of chosen | "
                     "trainings | wall (s) | overhead % (framework) | outside training epochs % "
                     "| ours better/tie/worse |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        for method, entry in table.items():
            h2h = entry.get("vs_ours")
            versus = "-" if h2h is None else f"{h2h['ours_better']}/{h2h['tie']}/{h2h['ours_worse']}"
            lines.append(
                f"| {method} | {_cell(entry['best_objective'], '.3f')} | {_cell(entry['best_val_acc'], '.1f', 100)} "
                f"| {_cell(entry['t_tr'], '.0f', 1000)} | {_cell(entry['n_params'], '.0f')} "
                f"| {_cell(entry['trainings'], '.0f')} | {_cell(entry['wall_s'], '.0f')} "
                f"| {_cell(entry['framework_frac'], '.1f', 100)} | {_cell(entry['non_training_frac'], '.1f', 100)} "
                f"| {versus} |"
            )
        for method, reason in skipped.items():
            lines.append(f"| {method} | skipped: {reason} | | | | | | | | |")
    return "\n".join(lines)


def format_overhead(runs: Sequence[Mapping[str, Any]]) -> str:
    """Where lightning-dnc's search time went, summed over all its runs (seconds and % of wall)."""
    ours = [r for r in runs if r["method"] == OURS]
    if not ours:
        return ""
    wall = sum(r["wall_s"] for r in ours)
    totals: dict[str, float] = {}
    for r in ours:
        for phase, seconds in r["phases"].items():
            totals[phase] = totals.get(phase, 0.0) + seconds
    trainings = sum(r["trainings"] for r in ours)
    lines = [f"\nlightning-dnc time budget over {len(ours)} searches ({trainings} trainings, {wall:.1f} s wall):",
             "| phase | seconds | % of wall | ms per training |", "|---|---|---|---|"]
    for phase in ("training", "validation", "setup_teardown", "acquisition", "engine_tell", "journal", "other"):
        s = totals.get(phase, 0.0)
        lines.append(f"| {phase} | {s:.2f} | {100 * s / wall:.2f} | {1000 * s / max(trainings, 1):.1f} |")
    return "\n".join(lines)


def plot(runs: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """``search_bench.png``: best objective so far vs number of trainings, one panel per wc,
    one line per method (median over seeds), shaded between the 25th and 75th percentiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wcs = sorted({r["wc"] for r in runs})
    fig, axes = plt.subplots(1, len(wcs), figsize=(max(6.0, 5.0 * len(wcs)), 4.2), squeeze=False)
    for ax, wc in zip(axes[0], wcs):
        at_wc = [r for r in runs if r["wc"] == wc]
        for method in dict.fromkeys(r["method"] for r in at_wc):
            curves = [r["best_so_far"] for r in at_wc if r["method"] == method]
            length = max(len(c) for c in curves)
            xs, med, lo, hi = [], [], [], []
            for i in range(length):
                values = [c[i] for c in curves if i < len(c) and c[i] is not None]
                if not values:
                    continue
                q25, q50, q75 = np.percentile(values, [25, 50, 75])
                xs.append(i + 1)
                med.append(q50)
                lo.append(q25)
                hi.append(q75)
            line = ax.plot(xs, med, label=method, linewidth=2 if method == OURS else 1.3)[0]
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.18, linewidth=0)
        ax.set_title(f"wc = {wc:g}")
        ax.set_xlabel("number of trainings")
        ax.set_ylabel("best objective so far (lower is better)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Best objective vs trainings (median over seeds, 25-75th pct shaded)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
