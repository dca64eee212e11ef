"""The multi-fidelity targets (issues 13 and 24), read from ``hpo_bench.py --suite lcbench --json`` files.

Target 1 (speed): per task, the median over seeds of fixed-epoch ``dnc``'s final regret ``R`` and
simulated time ``T``; the first simulated time at which the multi-fidelity method's median regret
curve (over seeds, on the benchmark's time grid) is at most ``R``, divided by ``T``. Median over
tasks, to be <= ``--time-target`` (issue 13: 1/3, issue 24: 1/2, the default; a task where it
never gets there counts as infinite).

Target 2 (quality at equal time): per task and peer, both median regret curves read at the same
simulated time, the earlier of the two methods' median end times; the share of tasks where the
multi-fidelity method's regret is at most the peer's, to be >= 60% for each peer.

Several JSON files (e.g. the peers' runs and the multi-fidelity runs of the same suite, tasks,
seeds and budget) are read as one. Usage::

    python bench/asha_targets.py RUNS.json [MORE.json ...] [--ours dnc-asha] [--peers asha tpe-hyperband]
        [--time-target 0.5] [--out bench/results/hpo_rungs_test.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
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


def _win_tie_loss(runs: Sequence[Mapping[str, Any]], ours: str, other: str, wc: float,
                  tie: float = 0.01) -> dict[str, int]:
    """Tasks where ``ours``'s mean final regret over seeds is lower / within ``tie`` / higher than ``other``'s."""
    def means(method: str) -> dict[str, float]:
        out: dict[str, list[float]] = {}
        for r in runs:
            if r["method"] == method and r["wc"] == wc and r.get("regret") is not None:
                out.setdefault(str(r["task"]), []).append(r["regret"])
        return {task: float(np.mean(v)) for task, v in out.items()}

    mine, theirs = means(ours), means(other)
    diffs = [mine[t] - theirs[t] for t in mine if t in theirs]
    return {"win": sum(d < -tie for d in diffs), "tie": sum(abs(d) <= tie for d in diffs),
            "loss": sum(d > tie for d in diffs)}


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
        entry["vs_baseline_final"] = _win_tie_loss(runs, ours, baseline, wc)
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
    parser.add_argument("json", type=Path, nargs="+")
    parser.add_argument("--ours", nargs="+", default=["dnc-asha"], help="one or more multi-fidelity methods")
    parser.add_argument("--baseline", default="dnc")
    parser.add_argument("--peers", nargs="+", default=["asha", "tpe-hyperband"])
    parser.add_argument("--time-target", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=None, help="write the targets and per-method medians there")
    args = parser.parse_args(argv)
    reports = [json.loads(path.read_text()) for path in args.json]
    report = {"runs": [r for rep in reports for r in rep["runs"]], "summary": reports[0]["summary"]}
    out: dict[str, Any] = {"command": "python bench/asha_targets.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                           "time_target": args.time_target, "share_target": 0.6, "baseline": args.baseline,
                           "peers": args.peers, "medians": _medians(report["runs"]), "targets": {}}
    for ours in args.ours:
        result = out["targets"][ours] = targets(report, ours, args.baseline, args.peers)
        for wc, entry in result.items():
            ratio = entry["time_ratio_median"]
            entry["time_met"] = ratio is not None and ratio <= args.time_target
            print(f"wc={wc}: {ours} reaches {args.baseline}'s median final regret at {ratio:.2f}x its simulated "
                  f"time (median of {entry['tasks']} tasks; target <= {args.time_target:g}: "
                  f"{'met' if entry['time_met'] else 'missed'}); median end time {entry['ours_time_median']:.1f} "
                  f"vs {entry['baseline_time_median']:.1f} full trainings; final regret vs {args.baseline} per task "
                  f"(win/tie/loss) {entry['vs_baseline_final']}")
            for peer in args.peers:
                share = entry.get(f"share_vs_{peer}")
                if share is not None:
                    entry[f"share_met_vs_{peer}"] = share >= 0.6
                    print(f"  at equal simulated time, regret <= {peer} on {100 * share:.0f}% of tasks (target >= 60%: "
                          f"{'met' if share >= 0.6 else 'missed'})")
    if args.out is not None:
        args.out.write_text(json.dumps(out, indent=1, default=_plain) + "\n")
    return out


def _plain(value: Any) -> Any:
    """JSON for the infinite time ratios (a task where the curve never got there)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _medians(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per wc and method: the median final regret and simulated time (full trainings) over tasks x seeds."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for wc in sorted({r["wc"] for r in runs}):
        for method in sorted({r["method"] for r in runs if r["wc"] == wc}):
            rows = [r for r in runs if r["wc"] == wc and r["method"] == method and r.get("regret") is not None]
            out.setdefault(f"{wc:g}", {})[method] = {
                "regret": float(np.median([r["regret"] for r in rows])),
                "simulated_time_full": float(np.median([r["simulated_time_full"] for r in rows])), "runs": len(rows)}
    return out


if __name__ == "__main__":
    main()
