"""Suite ``real`` of ``bench/hpo_bench.py``: real training on the embedded digits data (CNN and MLP).

Today's comparison of ``bench/search_bench.py`` through the drivers of ``bench/_methods.py``
(``run_staged``, ``run_random``, ``run_optuna``): every candidate is trained for real with the same
evaluator (data, ``EPOCHS`` epochs, seed) and scored with the same objective, ``t_tr_ref`` measured
once per task on the centre of the stage-1 space with the default training (median of 3). The
spaces are the command line's ``quick`` budget's (CNN depth 2-6, first-layer channels 8-32, at most
128 channels; MLP 0-2 hidden layers of 20-200 units).

lightning-dnc (``dnc-paper`` and ``dnc``, :data:`_hpo_methods.DNC_SETTINGS`) runs its three stages
with ``prior_points`` / ``steps`` from the budget and stage 2 limited to :data:`STAGE2_ORDER`;
random search (the joint sampler of ``_joint``) and Optuna TPE get exactly the number of trainings
lightning-dnc's run used at that seed and wc. The multi-fidelity methods (``tpe-hyperband``,
``asha``, ``dehb``) need per-epoch reports from the trainer that ``bench/_methods.py`` does not
give; they are skipped here with that reason.

Regret
------
No large random sample exists for real training, so ``y*`` is the best objective any method
found on the task and wc (over every seed) and ``y_med`` the median objective of the random
search's trainings there. The hypervolume ratio compares with the union of every method's points.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import _hpo_methods as hm
from _hpo_metrics import hypervolume, reference_stats, summarise_run
from _hpo_trace import Event

TASKS = ("digits-cnn", "digits-mlp")
METHODS = ("dnc-paper", "dnc", "dnc-revisit", "dnc-train-first", "random", "tpe")
EPOCHS = 10
STAGE2_ORDER = ("ac",)
STAGE2_OPTIONS = 2
LIMITS = {"cnn": {"num_conv_layers": (2, 6), "channels_first": (8, 32), "channels_upper": 128},
          "mlp": {"num_hidden_layers": (0, 2), "hidden_nodes": (20, 200)}}
SKIP_REASON = "needs per-epoch reports from the real trainer, which bench/_methods.py does not give"


def skipped(methods: Sequence[str]) -> dict[str, str]:
    return {m: SKIP_REASON for m in methods if m not in METHODS}


def stage_budget(budget: float) -> dict[str, int]:
    """``prior_points`` and ``steps`` (both BO stages) so that 2 x (prior + steps) + stage 2 ~ budget."""
    per_stage = max(math.ceil((round(budget) - STAGE2_OPTIONS) / 2), 1)
    return {"prior_points": math.ceil(per_stage / 2), "steps": per_stage - math.ceil(per_stage / 2)}


def run_task(task: str, seeds: Sequence[int], wcs: Sequence[float], methods: Sequence[str], budget: float,
             threads: int | None, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every seed x wc x method of one real task; rows with their metrics."""
    import torch
    from _joint import centre_config
    from _methods import run_optuna, run_random, run_staged
    from _overhead import TimedEvaluator

    from lightning_dnc.data import DigitsDataModule
    from lightning_dnc.search import Objective
    from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace

    if threads:
        torch.set_num_threads(threads)
    family = task.split("-")[1]
    dm = DigitsDataModule(flatten=family == "mlp")
    dm.prepare_data()
    dm.setup("fit")
    space = (CNNSpace(**LIMITS["cnn"], input_size=int(dm.input_shape[-1])) if family == "cnn"
             else MLPSpace(**LIMITS["mlp"]))
    training_space = TrainingSpace()
    reference = TimedEvaluator(dm, epochs=EPOCHS, accelerator="cpu", seed=0)
    centre = [reference.evaluate(centre_config(space, EPOCHS)) for _ in range(3)]
    if not all(e.ok and e.t_tr for e in centre):
        raise SystemExit(f"The reference candidate of {task} failed to train: {centre[0].error}")
    t_tr_ref = statistics.median(e.t_tr for e in centre)
    full_time = statistics.median(e.wall_time for e in centre)
    log(f"[{task}] t_tr_ref {t_tr_ref * 1000:.1f} ms/epoch, centre training {full_time:.2f} s")
    sizes = stage_budget(budget)
    raw: list[tuple[dict[str, Any], list[Event]]] = []
    for seed in seeds:
        evaluator = TimedEvaluator(dm, epochs=EPOCHS, accelerator="cpu", seed=seed)
        for wc in wcs:
            objective = Objective(wc=wc, t_tr_ref=t_tr_ref)
            count = None
            for method in [m for m in methods if m in METHODS]:
                started = time.perf_counter()
                if method in hm.DNC_SETTINGS:
                    run = run_staged(evaluator.evaluate, dm, family, space, training_space, objective, seed=seed,
                                     explore=hm.DNC_SETTINGS[method]["explore"], epochs=EPOCHS,
                                     stage2_order=list(STAGE2_ORDER), accelerator="cpu", **sizes,
                                     **hm.DNC_SETTINGS[method]["kwargs"])
                    count = len(run.evaluations) if count is None else count
                elif method == "random":
                    run = run_random(evaluator.evaluate, space, training_space, n=count or round(budget), seed=seed,
                                     epochs=EPOCHS)
                else:
                    run = run_optuna(evaluator.evaluate, space, training_space, objective, sampler="tpe",
                                     n=count or round(budget), seed=seed, epochs=EPOCHS)
                events = _events(run, objective, t_tr_ref)
                settings = ({**hm.DNC_SETTINGS[method], **sizes, "stage2_order": list(STAGE2_ORDER)}
                            if method in hm.DNC_SETTINGS else {"library": "bench/_methods.py", "sampler": method})
                row = {"suite": "real", "task": task, "seed": seed, "method": method, "wc": float(wc),
                       "budget": float(len(run.evaluations)), "evaluations": len(run.evaluations),
                       "epochs": EPOCHS * len(run.evaluations), "settings": settings,
                       "training_time": float(sum(e.wall_time or 0.0 for e in run.evaluations)),
                       "simulated_time": float(run.wall_s), "wall_s": time.perf_counter() - started,
                       "full_time": full_time, "t_tr_ref": t_tr_ref, "info": run.info}
                row["decision_time"] = max(row["simulated_time"] - row["training_time"], 0.0)
                row["simulated_time_full"] = row["simulated_time"] / full_time
                raw.append((row, events))
                log(f"[{task} seed {seed}] {method:<9} wc={wc:<4g} {row['evaluations']} trainings, "
                    f"{row['simulated_time']:.1f} s")
    return _finish(raw, full_time)


def _events(run: Any, objective: Any, t_tr_ref: float) -> list[Event]:
    events, train_s, decision_s = [], 0.0, 0.0
    for i, (evaluation, seconds) in enumerate(zip(run.evaluations, run.trial_seconds)):
        train_s += float(evaluation.wall_time or 0.0)
        decision_s += max(float(seconds) - float(evaluation.wall_time or 0.0), 0.0)
        loss = objective.loss(evaluation)
        if loss is not None:
            events.append(Event((i + 1) * EPOCHS, train_s, decision_s, float(loss), 1.0 - evaluation.best_val_acc,
                                float(evaluation.t_tr) / t_tr_ref))
    return events


def _finish(raw: list[tuple[dict[str, Any], list[Event]]], full_time: float) -> list[dict[str, Any]]:
    """Metrics once every run of the task is in (the references need all of them)."""
    rows = []
    for wc in sorted({row["wc"] for row, _ in raw}):
        at_wc = [(row, events) for row, events in raw if row["wc"] == wc]
        every = [e for _, events in at_wc for e in events]
        randoms = [e.objective for row, events in at_wc if row["method"] == "random" for e in events]
        ref = reference_stats(np.array([e.objective for e in every]))
        ref["median"] = float(np.median(randoms)) if randoms else ref["median"]
        ref_hv = hypervolume(np.array([[e.f_p, e.cost] for e in every]))
        for row, events in at_wc:
            metrics = summarise_run(events, ref, full_time, row["budget"], EPOCHS, ref_hv)
            rows.append({**row, **metrics, "reference": ref})
    return rows
