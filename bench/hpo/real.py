"""Suite ``real`` of ``bench/hpo_bench.py``: real training, offline (digits CNN and MLP, and a harder
synthetic classification problem for the MLP).

Tasks: ``digits-cnn`` and ``digits-mlp`` (scikit-learn's embedded digits, 1,797 8x8 images) and
``synth-mlp``: ``sklearn.datasets.make_classification`` with a fixed seed (:data:`SYNTH`: 6,000
samples, 40 features of which 20 informative, 10 classes in 2 clusters each, 5% of labels flipped),
generated in memory, so it needs no download and is far from the 100% that digits' validation set
allows; an MLP epoch on it takes well under a second here.

Today's comparison of ``bench/search_bench.py`` through the drivers of ``bench/_methods.py``
(``run_staged``, ``run_random``, ``run_optuna``): every candidate is trained for real with the same
evaluator (data, ``EPOCHS`` epochs, seed) and scored with the same objective, ``t_tr_ref`` measured
once per task on the centre of the stage-1 space with the default training (median of 3). The
spaces are the command line's ``quick`` budget's (CNN depth 2-6, first-layer channels 8-32, at most
128 channels; MLP 0-2 hidden layers of 20-200 units).

lightning-dnc (``dnc-paper`` and ``dnc``, :data:`hpo_methods.DNC_SETTINGS`) runs its three stages
with ``prior_points`` / ``steps`` from the budget and stage 2 limited to :data:`STAGE2_ORDER`;
random search (the joint sampler of ``_joint``), Optuna TPE (its defaults) and multivariate TPE
(``tpe-mv``: ``multivariate=True, group=True``, a quarter of the trainings as start-up trials) get
exactly the number of trainings lightning-dnc's run used at that seed and wc. ``one-epoch-topk``
spends the same epochs: half on one-epoch trainings of uniform joint configurations, the rest on
the best ``k`` of them by the one-epoch objective, trained again from scratch to ``EPOCHS`` epochs
with the same seed (the curve a continued run would have; the repeated first epoch is charged).
Only results at ``EPOCHS`` epochs count toward a method's best. The multi-fidelity methods
(``tpe-hyperband``, ``asha``, ``dehb``, ``smac-hb``) and SMAC need per-epoch reports or a ConfigSpace
version of the joint space that ``bench/_methods.py`` does not give; they are skipped here with
that reason.

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
from pathlib import Path
from typing import Any

import numpy as np

import hpo.methods as hm
from hpo.metrics import hypervolume, reference_stats, summarise_run
from hpo.trace import Event

TASKS = ("digits-cnn", "digits-mlp", "synth-mlp")
METHODS = ("dnc-paper", "dnc", "dnc-revisit", "dnc-train-first", "dnc-composite", "dnc-scalar", "random", "tpe", "tpe-mv",
           "one-epoch-topk")
SYNTH = {"n_samples": 6000, "n_features": 40, "n_informative": 20, "n_redundant": 10, "n_classes": 10,
         "n_clusters_per_class": 2, "flip_y": 0.05, "class_sep": 1.0, "random_state": 0}
#: Share of one-epoch-topk's epochs spent on one-epoch trainings.
SCREEN_SHARE = 0.5
EPOCHS = 10
STAGE2_ORDER = ("ac",)
STAGE2_OPTIONS = 2
LIMITS = {"cnn": {"num_conv_layers": (2, 6), "channels_first": (8, 32), "channels_upper": 128},
          "mlp": {"num_hidden_layers": (0, 2), "hidden_nodes": (20, 200)}}
SKIP_REASON = ("needs per-epoch reports from the real trainer or a ConfigSpace joint space, which "
               "bench/_methods.py does not give")


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
    dm = DigitsDataModule(flatten=family == "mlp") if task.startswith("digits") else synth_datamodule()
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
                elif method == "one-epoch-topk":
                    run = run_one_epoch_topk(evaluator.evaluate, space, training_space, objective,
                                             trainings=count or round(budget), seed=seed)
                else:
                    run = run_optuna(evaluator.evaluate, space, training_space, objective, sampler=method,
                                     n=count or round(budget), seed=seed, epochs=EPOCHS)
                events = _events(run, objective, t_tr_ref)
                settings = ({**hm.DNC_SETTINGS[method], **sizes, "stage2_order": list(STAGE2_ORDER)}
                            if method in hm.DNC_SETTINGS else {"library": "bench/_methods.py", "sampler": method,
                                                               **run.info})
                epochs = sum(_epochs_of(e) for e in run.evaluations)
                row = {"suite": "real", "task": task, "seed": seed, "method": method, "wc": float(wc),
                       "budget": epochs / EPOCHS, "evaluations": len(run.evaluations),
                       "epochs": epochs, "settings": settings,
                       "training_time": float(sum(e.wall_time or 0.0 for e in run.evaluations)),
                       "simulated_time": float(run.wall_s), "wall_s": time.perf_counter() - started,
                       "full_time": full_time, "t_tr_ref": t_tr_ref, "info": run.info}
                row["decision_time"] = max(row["simulated_time"] - row["training_time"], 0.0)
                row["simulated_time_full"] = row["simulated_time"] / full_time
                raw.append((row, events))
                log(f"[{task} seed {seed}] {method:<9} wc={wc:<4g} {row['evaluations']} trainings, "
                    f"{row['simulated_time']:.1f} s")
    return _finish(raw, full_time)


def synth_datamodule() -> Any:
    """``synth-mlp``'s data: :data:`SYNTH` from ``make_classification``, the last 20% as test split."""
    import tempfile

    from sklearn.datasets import make_classification

    from lightning_dnc.data import NpzDataModule

    x, y = make_classification(**SYNTH)
    n_test = len(x) // 5
    folder = Path(tempfile.mkdtemp(prefix="hpo-bench-synth-"))
    path = folder / "synth.npz"
    np.savez(path, xtr=x[:-n_test].astype(np.float32), ytr=y[:-n_test].astype(np.int64),
             xte=x[-n_test:].astype(np.float32), yte=y[-n_test:].astype(np.int64))
    return NpzDataModule(path, task="classification")


def topk_sizes(trainings: int) -> dict[str, int]:
    """``one-epoch-topk``'s one-epoch candidates ``n`` and full trainings ``k``: ``n + k * EPOCHS``
    equals the ``trainings * EPOCHS`` epochs every other method spends."""
    k = max(1, int(trainings * (1.0 - SCREEN_SHARE)))
    return {"n": trainings * EPOCHS - k * EPOCHS, "k": k} if trainings > k else {"n": 0, "k": trainings}


def run_one_epoch_topk(evaluate: Callable[[dict[str, Any]], Any], space: Any, training_space: Any, objective: Any,
                       *, trainings: int, seed: int) -> Any:
    """One epoch for ``n`` uniform joint configurations, then the best ``k`` (by the objective after
    that epoch; failures last) trained from scratch to ``EPOCHS`` epochs with the same seed."""
    from _joint import random_joint_config
    from _methods import MethodRun

    sizes = topk_sizes(trainings)
    rng = np.random.default_rng([seed, 6000])
    started = time.perf_counter()
    evaluations, seconds, screened = [], [], []
    for i in range(sizes["n"]):
        config = random_joint_config(space, training_space, rng, 1)
        before = time.perf_counter()
        evaluation = evaluate(config)
        evaluations.append(evaluation)
        seconds.append(time.perf_counter() - before)
        loss = objective.loss(evaluation)
        screened.append((math.inf if loss is None else loss, i))
    for _, i in sorted(screened)[:sizes["k"]] if sizes["n"] else []:
        before = time.perf_counter()
        evaluations.append(evaluate({**evaluations[i].config, "epochs": EPOCHS}))
        seconds.append(time.perf_counter() - before)
    for _ in range(sizes["k"] - (len(evaluations) - sizes["n"])):  # no screening possible: uniform draws
        before = time.perf_counter()
        evaluations.append(evaluate(random_joint_config(space, training_space, rng, EPOCHS)))
        seconds.append(time.perf_counter() - before)
    wall = time.perf_counter() - started
    return MethodRun("one-epoch-topk", seed, evaluations, seconds, wall, {}, sizes)


def _epochs_of(evaluation: Any) -> int:
    return int(evaluation.config.get("epochs", EPOCHS))


def _events(run: Any, objective: Any, t_tr_ref: float) -> list[Event]:
    events, train_s, decision_s, epochs = [], 0.0, 0.0, 0
    for evaluation, seconds in zip(run.evaluations, run.trial_seconds):
        train_s += float(evaluation.wall_time or 0.0)
        decision_s += max(float(seconds) - float(evaluation.wall_time or 0.0), 0.0)
        epochs += _epochs_of(evaluation)
        loss = objective.loss(evaluation)
        if loss is not None:
            events.append(Event(epochs, train_s, decision_s, float(loss), 1.0 - evaluation.best_val_acc,
                                float(evaluation.t_tr) / t_tr_ref, _epochs_of(evaluation)))
    return events


def _finish(raw: list[tuple[dict[str, Any], list[Event]]], full_time: float) -> list[dict[str, Any]]:
    """Metrics once every run of the task is in (the references need all of them)."""
    rows = []
    for wc in sorted({row["wc"] for row, _ in raw}):
        at_wc = [(row, events) for row, events in raw if row["wc"] == wc]
        every = [e for _, events in at_wc for e in events if e.epoch >= EPOCHS]  # full-budget results only
        randoms = [e.objective for row, events in at_wc if row["method"] == "random" for e in events
                   if e.epoch >= EPOCHS]
        ref = reference_stats(np.array([e.objective for e in every]))
        ref["median"] = float(np.median(randoms)) if randoms else ref["median"]
        ref_hv = hypervolume(np.array([[e.f_p, e.cost] for e in every]))
        for row, events in at_wc:
            metrics = summarise_run(events, ref, full_time, row["budget"], EPOCHS, ref_hv)
            rows.append({**row, **metrics, "reference": ref})
    return rows
