"""Optuna's samplers and pruners on the LCBench surrogate, and the one-epoch-then-top-k baseline.

====================  ==============================================================================
``random``            ``RandomSampler``, full fidelity
``tpe``               ``TPESampler(seed)``: Optuna's defaults (univariate, 10 start-up trials)
``tpe-mv``            ``TPESampler(multivariate=True, group=True, n_startup_trials=...)``, as Optuna's
                      documentation recommends for conditional spaces, start-up trials scaled to the
                      budget (:func:`startup_trials`), full fidelity
``tpe-hyperband``     ``TPESampler`` + ``HyperbandPruner`` (min 1, max 52 epochs, eta 3)
``asha``              ``RandomSampler`` + ``SuccessiveHalvingPruner`` (asynchronous successive
                      halving: min 1 epoch, eta 3)
``one-epoch-topk``    every candidate of a uniform sample trains one epoch, the best ``k`` by the
                      objective after that epoch continue to 52 epochs (Egele et al. 2023's
                      "1-epoch" baseline); no package (:func:`run_one_epoch_topk`)
====================  ==============================================================================

Optuna's pruned trials report the objective after every epoch (``trial.report``) and ask
``trial.should_prune()``; a pruned or finished trial is told to the study.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import hpo.space as hs
from hpo.lcbench import MAX_EPOCHS
from hpo.trace import Trace

SETTINGS = {
    "random": {"sampler": "random", "pruner": None},
    "tpe": {"sampler": "tpe", "pruner": None},
    "tpe-mv": {"sampler": "tpe-multivariate", "pruner": None},
    "tpe-hyperband": {"sampler": "tpe", "pruner": "hyperband"},
    "asha": {"sampler": "random", "pruner": "successive-halving"},
}
REDUCTION_FACTOR = 3
#: Share of the budget's trainings that ``tpe-mv`` samples at random before TPE models them: SMAC's
#: HPO facade caps its initial design at the same share (``max_ratio=0.25``).
STARTUP_SHARE = 0.25
#: Share of the budget ``one-epoch-topk`` spends on its one-epoch screening; the rest continues the
#: top ``k`` candidates from epoch 1 to 52.
SCREEN_SHARE = 0.5


def startup_trials(budget: float) -> int:
    """``tpe-mv``'s random start-up trials: :data:`STARTUP_SHARE` of the budget, at least 2 (7 of 30)."""
    return max(2, int(STARTUP_SHARE * budget))


def topk_sizes(budget_epochs: int) -> dict[str, int]:
    """``one-epoch-topk``'s candidates screened for one epoch (``n``) and continued to 52 (``k``),
    spending exactly ``budget_epochs`` epochs: ``n + k * 51 == budget_epochs``."""
    k = max(1, int(budget_epochs * (1.0 - SCREEN_SHARE) / MAX_EPOCHS))
    n = budget_epochs - k * (MAX_EPOCHS - 1)
    if n < k:
        k = max(1, budget_epochs // MAX_EPOCHS)
        n = budget_epochs - k * (MAX_EPOCHS - 1)
    return {"n": n, "k": k}


def settings_of(method: str, budget: float) -> dict[str, Any]:
    if method == "one-epoch-topk":
        return {"library": "none (numpy uniform sample of the shared space)", "screen_epochs": 1,
                "screen_share": SCREEN_SHARE, **topk_sizes(int(math.ceil(budget * MAX_EPOCHS)))}
    import optuna

    out: dict[str, Any] = {"library": f"optuna {optuna.__version__}", **SETTINGS[method]}
    if method == "tpe-mv":
        out.update(multivariate=True, group=True, n_startup_trials=startup_trials(budget))
    if out["pruner"] is not None:
        out.update(min_resource=1, reduction_factor=REDUCTION_FACTOR)
        if out["pruner"] == "hyperband":
            out["max_resource"] = MAX_EPOCHS
    return out


def make_study(method: str, seed: int, budget: float) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = SETTINGS[method]
    if spec["sampler"] == "tpe":
        sampler: Any = optuna.samplers.TPESampler(seed=seed)
    elif spec["sampler"] == "tpe-multivariate":
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                             n_startup_trials=startup_trials(budget))
    else:
        sampler = optuna.samplers.RandomSampler(seed=seed)
    pruner: Any = optuna.pruners.NopPruner()
    if spec["pruner"] == "hyperband":
        pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=MAX_EPOCHS,
                                                reduction_factor=REDUCTION_FACTOR)
    elif spec["pruner"] == "successive-halving":
        pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=REDUCTION_FACTOR,
                                                        min_early_stopping_rate=0)
    return optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)


def run(method: str, trace: Trace, seed: int) -> dict[str, Any]:
    """An Optuna study (ask/tell); with a pruner, the trial reports every epoch and may be pruned."""
    if method == "one-epoch-topk":
        return run_one_epoch_topk(trace, seed)
    import optuna

    prunes = SETTINGS[method]["pruner"] is not None
    pruned = trials = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental / dynamic-space warnings
        with trace.deciding():
            study = make_study(method, seed, trace.budget)
        while not trace.exhausted:
            with trace.deciding():
                trial = study.ask()
                config = hs.suggest(trial)
            trials += 1
            if not prunes:
                result = trace.train(config, MAX_EPOCHS)
                with trace.deciding():
                    study.tell(trial, result.objective)
                continue
            for epoch in range(1, MAX_EPOCHS + 1):
                result = trace.train(config, epoch, epoch - 1)
                with trace.deciding():
                    trial.report(result.objective, epoch)
                    stop = trial.should_prune()
                if stop:
                    with trace.deciding():
                        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    pruned += 1
                    break
            else:
                with trace.deciding():
                    study.tell(trial, result.objective)
    return {"trials": trials, "pruned": pruned}


def run_one_epoch_topk(trace: Trace, seed: int) -> dict[str, Any]:
    """Train ``n`` uniform candidates one epoch each, continue the best ``k`` (objective after one
    epoch, ties in sampling order) from epoch 1 to 52; exactly the budget's epochs."""
    sizes = topk_sizes(trace.budget_epochs)
    with trace.deciding():
        configs = hs.sample(sizes["n"], seed, stream=hs.RUN_STREAM)
    trace.task.prefetch(configs, 1)
    screened = [(trace.train(config, 1).objective, i) for i, config in enumerate(configs)]
    with trace.deciding():
        top = [i for _, i in sorted(screened)[:sizes["k"]]]
    trace.task.prefetch([configs[i] for i in top], MAX_EPOCHS)
    for i in top:
        trace.train(configs[i], MAX_EPOCHS, 1)
    return sizes
