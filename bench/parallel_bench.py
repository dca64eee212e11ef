"""Parallel candidates: in-process vs Ray wall time, and batch vs sequential BO quality.

Part 1 (real training): the same digits MLP search with a fixed number of trials with the
in-process executor (torch's default thread count, then 1 thread: the Ray workers' policy) and
with the Ray executor and K=2 workers (1 CPU and 1 torch thread each, a local cluster started
before the clock; worker start-up is inside the timed region). Reports the wall times and the
ratio Ray / in-process (1 thread). Best losses are not comparable across runs: t_tr_ref is the
first candidate's own t_tr.

Part 2 (no training): search quality at equal trial count. The staged engine is driven
sequentially (K=1) and asynchronously with K=2 and K=4 simulated workers (seeded random trial
durations decide the completion order) on a smooth synthetic objective; the best loss is reported
as the median over seeds with the seed-to-seed spread (interquartile range of the sequential run).

Usage::

    python bench/parallel_bench.py            # 4+6 BO points per stage, 3 epochs, 9 seeds
    python bench/parallel_bench.py --quick    # smaller budget, 5 seeds
    python bench/parallel_bench.py --family cnn   # part 1 on the CLI's quick digits CNN search

The machine may be shared with other jobs; wall times are only comparable within one run.
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

from lightning_dnc.data import DigitsDataModule
from lightning_dnc.executors import Executor
from lightning_dnc.lightning.progress import SearchProgress
from lightning_dnc.executors import drive
from lightning_dnc.lightning.search_loop import run_search
from lightning_dnc.lightning.tuner import DeepNCheapTuner
from lightning_dnc.search import Evaluation, Objective, StagedSearch
from lightning_dnc.space import MLPSpace, TrainingSpace

CPU = {"accelerator": "cpu", "devices": 1, "precision": None}


# -- part 1: wall time with real training -------------------------------------------------------
def timed_search(executor: str, budget: dict[str, Any], workers: int, family: str) -> tuple[float, Any]:
    tuner = DeepNCheapTuner(family=family, progress=False, executor=executor,
                            max_concurrent=workers if executor == "ray" else 1, **budget)
    started = time.perf_counter()
    result = run_search(tuner.settings.for_family(family), tuner.run_options, DigitsDataModule(flatten=family == "mlp"),
                        CPU)
    return time.perf_counter() - started, result


def wall_time_budget(quick: bool, family: str) -> dict[str, Any]:
    """The search timed in part 1: a small MLP search, or the CLI's quick digits CNN search."""
    if family == "cnn":
        from lightning_dnc.budgets import BUDGETS
        from lightning_dnc.space import CNNSpace

        quick_budget = BUDGETS["quick"]
        return dict(search_epochs=4 if quick else quick_budget.search_epochs, prior_points=quick_budget.prior_points,
                    steps=quick_budget.steps, explore=quick_budget.explore, seed=0,
                    space=CNNSpace(**quick_budget.cnn_limits), stage2_order=["ac", "bn", "sc"] if quick else None)
    return dict(search_epochs=3 if quick else 5, prior_points=4 if quick else 6, steps=2 if quick else 6,
                explore=200, stage2_order=["ac", "do"], seed=0)


def wall_time_part(quick: bool, workers: int, family: str = "mlp") -> dict[str, Any]:
    import ray

    budget = wall_time_budget(quick, family)
    import torch

    threads = torch.get_num_threads()
    t_default, _ = timed_search("inprocess", budget, 1, family)
    torch.set_num_threads(1)  # the Ray workers' policy: one thread per CPU reserved for a trial
    try:
        t_inprocess, r_inprocess = timed_search("inprocess", budget, 1, family)
    finally:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    t_init = time.perf_counter() - started
    try:
        t_ray, r_ray = timed_search("ray", budget, workers, family)
    finally:
        ray.shutdown()
    per_trial = [t.evaluation.wall_time for t in r_inprocess.trials]
    return {
        "family": family,
        "trials": len(r_inprocess.trials),
        "trials_ray": len(r_ray.trials),
        "inprocess_s": t_inprocess,
        "inprocess_default_threads_s": t_default,
        "default_threads": threads,
        "ray_s": t_ray,
        "ray_init_s": t_init,
        "ratio": t_ray / t_inprocess,
        "ratio_vs_default_threads": t_ray / t_default,
        "mean_trial_s": statistics.mean(per_trial),
        "best_loss_inprocess": r_inprocess.best.loss,
        "best_loss_ray": r_ray.best.loss,
        "t_tr_median_inprocess": statistics.median(t.evaluation.t_tr for t in r_inprocess.trials),
        "t_tr_median_ray": statistics.median(t.evaluation.t_tr for t in r_ray.trials),
    }


# -- part 2: batch vs sequential quality, simulated workers --------------------------------------
def synthetic(config: dict[str, Any]) -> Evaluation:
    """Smooth objective: accuracy peaks near 300 hidden nodes, lr 10^-2.5, small wd, batch ~128."""
    size = sum(config["hidden_mlp"]) + 1
    acc = 0.95 - abs(size - 300) / 4000
    acc -= 0.04 * (math.log10(config["lr"]) + 2.5) ** 2
    wd = config["weight_decay"]
    acc -= 0.0 if wd == "auto" or wd == 0 else 20 * wd
    acc -= 0.02 * abs(math.log2(config["batch_size"] / 128))
    acc += {"relu": 0.0, "tanh": 0.005, "sigmoid": -0.03}[config["act"]]
    acc -= 0.01 * abs(config["dropout_probs_mlp"][0] - 0.1) if config["dropout_probs_mlp"] else 0.0
    return Evaluation(config=config, best_val_acc=max(0.0, min(acc, 0.999)), t_tr=1.0 + size / 1000,
                      n_params=100 * size)


class SimulatedWorkers(Executor):
    """K workers; each trial takes a seeded random time; collect returns the earliest to finish."""

    def __init__(self, max_concurrent: int, seed: int) -> None:
        self.max_concurrent = max_concurrent
        self._rng = np.random.default_rng(seed)
        self._now = 0.0
        self._heap: list[tuple[float, int, dict[str, Any]]] = []

    @property
    def num_running(self) -> int:
        return len(self._heap)

    def submit(self, trial_id: int, config: dict[str, Any]) -> None:
        duration = float(self._rng.lognormal(0.0, 0.5))
        heapq.heappush(self._heap, (self._now + duration, trial_id, config))

    def collect(self) -> list[tuple[int, Evaluation]]:
        if not self._heap:
            return []
        self._now, trial_id, config = heapq.heappop(self._heap)
        return [(trial_id, synthetic(config))]


def quality_part(quick: bool) -> dict[str, Any]:
    seeds = range(5 if quick else 9)
    budget = dict(prior_points=4, steps=6 if quick else 10, explore=300 if quick else 1000, epochs=1,
                  stage2_order=["ac", "do"])
    out: dict[str, Any] = {}
    for workers in (1, 2, 4):
        losses, trials = [], []
        for seed in seeds:
            search = StagedSearch("mlp", MLPSpace(), TrainingSpace(), Objective(wc=0.1), seed=seed, **budget)
            drive(search, SimulatedWorkers(workers, seed), SearchProgress(enabled=False))
            losses.append(search.result().best.loss)
            trials.append(len(search.trials))
        q1, _, q3 = statistics.quantiles(losses, n=4)
        out[workers] = {"median": statistics.median(losses), "iqr": q3 - q1, "trials": sorted(set(trials))}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller budget and fewer seeds")
    parser.add_argument("--workers", type=int, default=2, help="Ray workers (default 2)")
    parser.add_argument("--skip-wall", action="store_true", help="only the (training-free) quality part")
    parser.add_argument("--family", choices=["mlp", "cnn"], default="mlp",
                        help="part 1 search: a small MLP search, or the CLI's quick digits CNN search")
    args = parser.parse_args(argv)
    print(f"parallel_bench: {os.cpu_count()} CPUs, quick={args.quick}")
    if not args.skip_wall:
        w = wall_time_part(args.quick, args.workers, args.family)
        print(f"\n[wall time] digits {args.family.upper()} search, {w['trials']} trials (ray: {w['trials_ray']}), "
              f"mean trial {w['mean_trial_s']:.2f} s in process")
        print(f"  in-process, {w['default_threads']} threads {w['inprocess_default_threads_s']:8.1f} s   (torch default)")
        print(f"  in-process, 1 thread {w['inprocess_s']:8.1f} s   (baseline of the ratio)")
        print(f"  ray, {args.workers} workers        {w['ray_s']:8.1f} s   (+ ray.init {w['ray_init_s']:.1f} s, not timed)")
        print(f"  ratio ray/in-process {w['ratio']:8.2f}   (vs 1 thread; {w['ratio_vs_default_threads']:.2f} vs torch default)")
        print(f"  best loss: in-process {w['best_loss_inprocess']:.4f}, ray {w['best_loss_ray']:.4f}; "
              f"median t_tr: in-process {w['t_tr_median_inprocess']:.4f} s, ray {w['t_tr_median_ray']:.4f} s")
    q = quality_part(args.quick)
    print("\n[quality] synthetic objective, best loss at equal trial count (median over seeds)")
    for workers, row in q.items():
        label = "sequential" if workers == 1 else f"batch K={workers}"
        print(f"  {label:12s} median {row['median']:.4f}  IQR {row['iqr']:.4f}  trials {row['trials']}")
    spread = q[1]["iqr"]
    for workers in (2, 4):
        gap = q[workers]["median"] - q[1]["median"]
        verdict = "within" if gap <= spread else "OUTSIDE"
        print(f"  K={workers} - sequential = {gap:+.4f} ({verdict} the seed-to-seed spread {spread:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
