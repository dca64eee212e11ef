"""Metrics of ``bench/hpo_bench.py``: regret, curves, hypervolume, head-to-head counts, Wilcoxon.

Full-budget results only
------------------------
A method's best objective, its regret curve and its hypervolume read only the events at the full
number of epochs (``full_epochs``: 52 on LCBench, the real suite's epochs there): a run stopped
before then (a pruned trial, a low rung, a one-epoch screen) never becomes the best, for every
method alike. Its epochs and seconds still count toward the budget and the simulated time.

Normalised regret
-----------------
For a task and wc, ``y*`` is the best objective of a large full-fidelity random sample (LCBench:
5,000 configurations) and ``y_med`` its median. A method whose best objective so far is ``y`` has
regret ``(y - y*) / (y_med - y*)``: 0 matches the best of the sample, 1 is a median random
configuration, below 0 beats the whole sample.

Curves
------
Regret after each event against simulated time in units of the task's full-training time of the
centre configuration (52 epochs), sampled on :data:`CURVE_GRID`.

Hypervolume
-----------
Of the archive of every (validation error ``f_p``, time per epoch over ``t_tr_ref``) a method
observed, both minimised, against the fixed reference point :data:`HV_REFERENCE`; reported as a
ratio to the hypervolume of the reference sample's points (1 = as good a front as 5,000 random
full trainings).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Simulated time (in full trainings of the centre configuration) at which curves are sampled.
CURVE_GRID = tuple(float(x) for x in np.round(np.geomspace(0.1, 300.0, 49), 4))
#: Reference point of the hypervolume: (validation error, time per epoch / t_tr_ref).
HV_REFERENCE = (1.0, 10.0)
#: Budgets (full-training equivalents) at which regret is reported.
REPORT_BUDGETS = (10, 30, 100)
#: Per-task mean regrets closer than this count as a tie.
TIE_TOLERANCE = 0.01


def reference_stats(objectives: np.ndarray) -> dict[str, float]:
    """``y*`` (best) and ``y_med`` (median) of a reference sample's objectives."""
    values = np.asarray(objectives, dtype=np.float64)
    values = values[np.isfinite(values)]
    return {"best": float(values.min()), "median": float(np.median(values)), "n": int(values.size)}


def regret(y: float | None, ref: Mapping[str, float]) -> float | None:
    """Normalised regret of objective ``y`` (``None`` stays ``None``)."""
    if y is None:
        return None
    scale = ref["median"] - ref["best"]
    return float((y - ref["best"]) / scale) if scale > 0 else float(y - ref["best"])


def hypervolume(points: np.ndarray, reference: Sequence[float] = HV_REFERENCE) -> float:
    """Area dominated by ``points`` ((n, 2), both minimised) and bounded by ``reference``."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    pts = pts[np.all(pts < np.asarray(reference), axis=1)]
    if pts.size == 0:
        return 0.0
    pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]
    area, best_y = 0.0, reference[1]
    for x, y in pts:
        if y < best_y:
            area += (reference[0] - x) * (best_y - y)
            best_y = y
    return float(area)


def summarise_run(events: Sequence[Any], ref: Mapping[str, float], full_time: float, budget: float,
                  epochs_per_training: int, ref_hv: float | None) -> dict[str, Any]:
    """The per-run metrics from its events (each with ``epochs``, ``train_s``, ``decision_s``,
    ``objective``, ``f_p``, ``cost``, ``epoch``); only events with ``epoch == epochs_per_training``
    (full budget) count."""
    events = [e for e in events if e.epoch >= epochs_per_training]
    objectives = [e.objective for e in events]
    best = min(objectives) if objectives else None
    at: dict[str, float | None] = {}
    for b in REPORT_BUDGETS:
        if b > budget + 1e-9:
            at[str(b)] = None
            continue
        within = [e.objective for e in events if e.epochs <= b * epochs_per_training]
        at[str(b)] = regret(min(within), ref) if within else None
    curve: list[float | None] = []
    times = np.array([(e.train_s + e.decision_s) / full_time for e in events])
    running = np.minimum.accumulate(np.array(objectives)) if objectives else np.zeros(0)
    for x in CURVE_GRID:
        idx = int(np.searchsorted(times, x, side="right")) - 1
        curve.append(None if idx < 0 else regret(float(running[idx]), ref))
    hv = hypervolume(np.array([[e.f_p, e.cost] for e in events])) if events else 0.0
    return {"best_objective": best, "regret": regret(best, ref), "regret_at": at, "curve": curve,
            "hypervolume": hv, "hv_ratio": hv / ref_hv if ref_hv else None, "full_results": len(events)}


def _spread(values: Sequence[float | None]) -> dict[str, float | None]:
    data = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if data.size == 0:
        return {"median": None, "q25": None, "q75": None, "max": None, "n": 0}
    q25, median, q75 = np.percentile(data, [25, 50, 75])
    return {"median": float(median), "q25": float(q25), "q75": float(q75), "max": float(data.max()),
            "n": int(data.size)}


def head_to_head(runs: Sequence[Mapping[str, Any]], ours: str, other: str, field: str = "regret") -> dict[str, Any]:
    """Per-task win/tie/loss of ``ours`` against ``other`` (mean ``field`` over the shared seeds,
    lower is better; within :data:`TIE_TOLERANCE` a tie) and the Wilcoxon signed-rank p-value over
    tasks (two-sided; ``None`` with fewer than 2 tasks or when every difference is 0)."""
    def per_task(method: str) -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = {}
        for r in runs:
            if r["method"] == method and r.get(field) is not None:
                out.setdefault(r["task"], {})[r["seed"]] = r[field]
        return out

    mine, theirs = per_task(ours), per_task(other)
    diffs = []
    counts = {"win": 0, "tie": 0, "loss": 0}
    for task in sorted(set(mine) & set(theirs)):
        seeds = sorted(set(mine[task]) & set(theirs[task]))
        if not seeds:
            continue
        d = float(np.mean([mine[task][s] for s in seeds]) - np.mean([theirs[task][s] for s in seeds]))
        diffs.append(d)
        counts["tie" if abs(d) <= TIE_TOLERANCE else ("win" if d < 0 else "loss")] += 1
    p = None
    if len(diffs) >= 2 and any(d != 0 for d in diffs):
        from scipy.stats import wilcoxon

        p = float(wilcoxon(diffs).pvalue)
    return {**counts, "tasks": len(diffs), "wilcoxon_p": p,
            "median_diff": float(np.median(diffs)) if diffs else None}


def summarise(runs: Sequence[Mapping[str, Any]], ours: str = "dnc",
              twins: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``{"by_wc": {wc: {method: {...}}}, "curve_grid": [...], "ours": ours}`` over tasks x seeds.

    A method's ``vs_ours`` counts per task how its reference did against it: the reference is
    ``twins[method]`` where given (a ``dnc-asha`` variant against its fixed-epoch twin), else
    ``ours``; ``vs_ours["reference"]`` names it. ``per_task`` holds each method's mean regret per
    task (over seeds), so the head-to-head counts can be recomputed from a summary alone."""
    twins = dict(twins or {})
    by_wc: dict[str, dict[str, Any]] = {}
    for wc in sorted({r["wc"] for r in runs}):
        at_wc = [r for r in runs if r["wc"] == wc]
        table: dict[str, Any] = {}
        for method in dict.fromkeys(r["method"] for r in at_wc):
            rows = [r for r in at_wc if r["method"] == method]
            entry: dict[str, Any] = {
                "runs": len(rows),
                "regret": _spread([r["regret"] for r in rows]),
                "regret_at": {b: _spread([r["regret_at"].get(b) for r in rows]) for b in rows[0]["regret_at"]},
                "simulated_time_full": _spread([r["simulated_time_full"] for r in rows]),
                "simulated_time": _spread([r["simulated_time"] for r in rows]),
                "decision_time": _spread([r["decision_time"] for r in rows]),
                "evaluations": _spread([r["evaluations"] for r in rows]),
                "epochs": _spread([r["epochs"] for r in rows]),
                "hv_ratio": _spread([r.get("hv_ratio") for r in rows]),
                "curve": [_spread([r["curve"][i] for r in rows if r.get("curve")])
                          for i in range(len(CURVE_GRID))] if rows[0].get("curve") else [],
            }
            reference = twins.get(method, ours)
            if method != reference and any(r["method"] == reference for r in at_wc):
                entry["vs_ours"] = {"reference": reference, **head_to_head(at_wc, reference, method)}
            tasks: dict[str, list[float]] = {}
            for r in rows:
                if r.get("regret") is not None:
                    tasks.setdefault(str(r["task"]), []).append(r["regret"])
            entry["per_task"] = {t: float(np.mean(v)) for t, v in tasks.items()}
            table[method] = entry
        by_wc[f"{wc:g}"] = table
    return {"ours": ours, "curve_grid": list(CURVE_GRID), "tie_tolerance": TIE_TOLERANCE, "by_wc": by_wc}
