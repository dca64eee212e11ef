"""The multi-fidelity targets of issue 13, read from a ``hpo_bench.py --suite lcbench --json`` file.

Target 1 (speed): per task, the median over seeds of fixed-epoch ``dnc``'s final regret ``R`` and
simulated time ``T``; the first simulated time at which the multi-fidelity method's median regret
curve (over seeds, on the benchmark's time grid) is at most ``R``, divided by ``T``. Median over
tasks, to be <= 1/3 (a task where it never gets there counts as infinite).

Target 2 (quality at equal time): per task and peer, both median regret curves read at the same
simulated time, the earlier of the two methods' median end times; the share of tasks where the
multi-fidelity method's regret is at most the peer's, to be >= 60% for each peer.

Usage::

    python bench/asha_targets.py bench/results/asha_lcbench.json [--ours dnc-asha] [--peers asha tpe-hyperband dehb]
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _median_curves(runs: Sequence[Mapping[str, Any]], method: str, wc: float) -> dict[str, dict[str, Any]]:
    """Per task: the median curve over seeds, the median final regret and the median end time."""
    out: dict[str, dict[str, Any]] = {}
    tasks = sorted({r["task"] for r in runs if r["method"] == method and r["wc"] == wc})
    for task in tasks:
        rows = [r for r in runs if r["method"] == method and r["wc"] == wc and r["task"] == task]
        curves = np.array([[math.inf if v is None else v for v in r["curve"]] for r in rows], dtype=np.float64)
        out[task] = {"curve": np.median(curves, axis=0), "regret": float(np.median([r["regret"] for r in rows])),
                     "time": float(np.median([r["simulated_time_full"] for r in rows]))}
    return out


def _at(curve: np.ndarray, grid: np.ndarray, time: float) -> float:
    idx = int(np.searchsorted(grid, time, side="right")) - 1
    return math.inf if idx < 0 else float(curve[idx])


def targets(report: Mapping[str, Any], ours: str, baseline: str, peers: Sequence[str]) -> dict[str, Any]:
    """Both targets at every wc of ``report``."""
    runs = report["runs"]
    grid = np.asarray(report["summary"]["curve_grid"], dtype=np.float64)
    out: dict[str, Any] = {}
    for wc in sorted({r["wc"] for r in runs}):
        mine, base = _median_curves(runs, ours, wc), _median_curves(runs, baseline, wc)
        ratios = []
        for task, b in base.items():
            if task not in mine:
                continue
            reached = np.nonzero(mine[task]["curve"] <= b["regret"] + 1e-12)[0]
            ratios.append(float(grid[reached[0]] / b["time"]) if reached.size else math.inf)
        entry: dict[str, Any] = {"time_ratio_median": float(np.median(ratios)) if ratios else None,
                                 "time_ratios": ratios, "tasks": len(ratios),
                                 "ours_time_median": float(np.median([m["time"] for m in mine.values()])),
                                 "baseline_time_median": float(np.median([b["time"] for b in base.values()]))}
        for peer in peers:
            theirs = _median_curves(runs, peer, wc)
            wins = total = 0
            for task, m in mine.items():
                if task not in theirs:
                    continue
                time = min(m["time"], theirs[task]["time"])
                total += 1
                wins += _at(m["curve"], grid, time) <= _at(theirs[task]["curve"], grid, time) + 1e-12
            entry[f"share_vs_{peer}"] = wins / total if total else None
        out[f"{wc:g}"] = entry
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", type=Path)
    parser.add_argument("--ours", default="dnc-asha")
    parser.add_argument("--baseline", default="dnc")
    parser.add_argument("--peers", nargs="+", default=["asha", "tpe-hyperband", "dehb"])
    args = parser.parse_args(argv)
    result = targets(json.loads(args.json.read_text()), args.ours, args.baseline, args.peers)
    for wc, entry in result.items():
        ratio = entry["time_ratio_median"]
        print(f"wc={wc}: {args.ours} reaches {args.baseline}'s median final regret at {ratio:.2f}x its simulated "
              f"time (median of {entry['tasks']} tasks; target <= 0.33); median end time {entry['ours_time_median']:.1f} "
              f"vs {entry['baseline_time_median']:.1f} full trainings")
        for peer in args.peers:
            share = entry.get(f"share_vs_{peer}")
            if share is not None:
                print(f"  at equal simulated time, regret <= {peer} on {100 * share:.0f}% of tasks (target >= 60%)")
    return result


if __name__ == "__main__":
    main()
