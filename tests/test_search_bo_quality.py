"""BO over the training space beats random search with the same budget (median over seeds)."""

from __future__ import annotations

import math
import statistics

from lightning_dnc.search import Evaluation, Objective, StagedSearch
from lightning_dnc.space import MLPSpace, TrainingSpace

BUDGET_PRIOR, BUDGET_STEPS = 5, 10
SEEDS = range(5)


def smooth_error(config):
    """A smooth bowl over (log10 lr, log10 wd, batch size), minimum 0.02 at (-2.3, -4.5, 100)."""
    wd = config["weight_decay"]
    log_wd = math.log10(wd) if wd > 0 else -6.0
    return (
        0.02
        + 0.4 * ((math.log10(config["lr"]) + 2.3) / 4) ** 2
        + 0.2 * ((config["batch_size"] - 100) / 480) ** 2
        + 0.1 * ((log_wd + 4.5) / 3) ** 2
    )


def evaluate(config):
    if config["weight_decay"] == "auto":  # the fixed stage-1 architecture, untouched by stage 3
        return Evaluation(config=config, best_val_acc=0.5, t_tr=1.0, n_params=10)
    return Evaluation(config=config, best_val_acc=1 - smooth_error(config), t_tr=1.0, n_params=10)


def bo_best(seed):
    # One-config stage-1 space and no grid: the search is stage 3, BO over the training space.
    search = StagedSearch(
        "mlp", MLPSpace(num_hidden_layers=(0, 0)), TrainingSpace(), Objective(wc=0.0),
        prior_points=1, steps=0, explore=300, epochs=1, seed=seed, strategy="paper",
        training_prior_points=BUDGET_PRIOR, training_steps=BUDGET_STEPS,
    )
    while not search.finished:
        for p in search.ask():
            search.tell(p.trial_id, evaluate(p.config))
    stage3 = [t for t in search.trials if t.stage == 3]
    assert len(stage3) == BUDGET_PRIOR + BUDGET_STEPS
    return min(smooth_error(t.config) for t in stage3)


def random_best(seed):
    samples = TrainingSpace().sample(BUDGET_PRIOR + BUDGET_STEPS, seed=1000 + seed, method="random")
    return min(smooth_error(c) for c in samples)


def test_bo_beats_random_search_on_a_smooth_objective():
    bo = [bo_best(s) for s in SEEDS]
    rnd = [random_best(s) for s in SEEDS]
    assert statistics.median(bo) < statistics.median(rnd), (bo, rnd)
