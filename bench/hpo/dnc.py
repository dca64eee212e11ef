"""lightning-dnc on the LCBench surrogate at fixed epochs: its settings per bench method and the
ask/train/tell loop every lightning-dnc method (fixed epochs and ``dnc-asha``) shares.

Every candidate trains 52 epochs (a proposal with a ``rung`` trains from its rung's start epoch to
its epochs, see ``hpo.asha``). Stage sizes are scaled to the budget (:func:`stage_sizes`). The
Sobol prior points of every strategy but ``paper`` are scrambled from the run's seed
(``lightning_dnc.search.stages.bo.prior_seed``); ``paper`` keeps the unscrambled sequence.
"""

from __future__ import annotations

import math
from typing import Any

import hpo.space as hs
from hpo.lcbench import MAX_EPOCHS
from hpo.trace import Trace

#: Candidates per BO pick of lightning-dnc's stages 1 and 3: the paper's 1000. On 8 tasks x 3 seeds x
#: wc 0/0.1 (budget 30) 200 candidates gave median regret 0.39, 500 gave 0.32 and 1000 gave 0.30, at
#: 0.12, 0.19 and 0.37 s of decision time per search (chosen on all 34 tasks, before the tune/test split).
EXPLORE = 1000
#: lightning-dnc's settings per method name. ``kwargs`` go to ``StagedSearch`` as they are. A
#: strategy or setting variant is a new entry here (a named method), never a runtime patch.
DNC_SETTINGS: dict[str, dict[str, Any]] = {
    "dnc-paper": {"explore": EXPLORE, "kwargs": {"strategy": "paper"},
                  "note": "the paper's staged procedure (SPEC §5): stage-1 BO over the MLP skeleton at lr 1e-3 "
                          "and batch 256, stage-2 dropout grid, stage-3 BO over lr/weight decay/batch size; "
                          "every candidate at full fidelity; stage sizes scaled to the budget; unscrambled Sobol"},
    "dnc": {"explore": EXPLORE, "kwargs": {},
            "note": "lightning-dnc with its current defaults: strategy 'joint' (stage-1 BO over the MLP skeleton "
                    "and lr/weight decay/batch size together, warm stage 3; half of stage 3's budget in stage 1), "
                    "model 'composite' (results before issue 22: model 'scalar')"},
    "dnc-composite": {"explore": EXPLORE, "kwargs": {"model": "composite"},
                      "note": "the default strategy with model 'composite': a GP on log10 f_p, the cost log10 f_c as a "
                              "second target on the same factor (its cost model), EI of log10(f_p + wc f_c) from both"},
    "dnc-scalar": {"explore": EXPLORE, "kwargs": {"model": "scalar"},
                   "note": "the default strategy with model 'scalar': one GP on the whole loss (the paper's model)"},
    "dnc-revisit": {"explore": EXPLORE, "kwargs": {"strategy": "revisit"},
                    "note": "strategy 'revisit': the paper's stages, then a second skeleton BO with the tuned "
                            "training, warm-started from stage 1 (half of stage 1's BO steps move there)"},
    "dnc-train-first": {"explore": EXPLORE, "kwargs": {"strategy": "train-first"},
                        "note": "strategy 'train-first': BO of lr/weight decay/batch size on the centre skeleton "
                                "first (half of stage 3's budget), then the paper's stages with that training"},
}
#: Stage-2 options of the dropout group (the grid's six values minus stage 1's default).
DNC_STAGE2_OPTIONS = len(hs.DROPOUT_CHOICES) - 1


def stage_sizes(budget: float, stage2: int = DNC_STAGE2_OPTIONS) -> dict[str, int]:
    """Stage budgets of lightning-dnc summing to ``round(budget)`` full trainings.

    Stage 2 takes its ``stage2`` options; the rest is split between stage 1 (the larger half) and
    stage 3, each half Sobol prior points and half BO steps, as the paper's 15 + 15.
    """
    total = max(int(round(budget)), 2)
    rest = max(total - stage2, 2)
    stage1 = math.ceil(rest / 2)
    stage3 = rest - stage1
    return {"prior_points": math.ceil(stage1 / 2), "steps": stage1 - math.ceil(stage1 / 2),
            "training_prior_points": math.ceil(stage3 / 2), "training_steps": stage3 - math.ceil(stage3 / 2)}


def settings_of(method: str, budget: float) -> dict[str, Any]:
    """The settings a fixed-epoch lightning-dnc method runs with (stored in each JSON row)."""
    entry = DNC_SETTINGS[method]
    return {"engine": "lightning_dnc.search.StagedSearch", "explore": entry["explore"], "epochs": MAX_EPOCHS,
            "stage2_order": list(hs.DNC_STAGE2_ORDER), **stage_sizes(budget), **entry["kwargs"],
            "note": entry["note"]}


def run(method: str, trace: Trace, seed: int) -> dict[str, Any]:
    """lightning-dnc's ``StagedSearch``, every candidate at 52 epochs, through ask/tell."""
    from lightning_dnc.search import Objective, StagedSearch

    settings = settings_of(method, trace.budget)
    space, training_space = hs.dnc_spaces()
    kwargs = {k: settings[k] for k in ("prior_points", "steps", "training_prior_points", "training_steps")}
    with trace.deciding():
        search = StagedSearch("mlp", space, training_space, Objective(wc=trace.wc, t_tr_ref=trace.task.t_tr_ref),
                              explore=settings["explore"], epochs=MAX_EPOCHS, stage2_order=list(hs.DNC_STAGE2_ORDER),
                              seed=seed, **{**kwargs, **DNC_SETTINGS[method]["kwargs"]})
    return {"finished": search.finished, "stage_counts": drive(search, trace)}


def drive(search: Any, trace: Trace) -> dict[str, int]:
    """Ask, train on the surrogate and tell, one proposal at a time, until the budget or the search
    ends; a proposal with a ``rung`` trains from its rung's start epoch to its epochs, any other one
    52 epochs. Returns the trials per stage."""
    from lightning_dnc.search import Evaluation

    while not trace.exhausted:
        with trace.deciding():
            proposals = [] if search.finished else search.ask(1)
        if not proposals:
            break
        proposal = proposals[0]
        rung = getattr(proposal, "rung", None)
        to_epoch, from_epoch = (MAX_EPOCHS, 0) if rung is None else (rung.epochs, rung.from_epoch)
        result = trace.train(hs.dnc_to_lcbench(proposal.config), to_epoch, from_epoch)
        evaluation = Evaluation(config=dict(proposal.config), best_val_acc=1.0 - result.f_p, t_tr=result.t_tr,
                                epochs_run=to_epoch, wall_time=result.t_tr * (to_epoch - from_epoch))
        with trace.deciding():
            search.tell(proposal.trial_id, evaluation)
    stages: dict[str, int] = {}
    for trial in search.trials:
        stages[str(trial.stage)] = stages.get(str(trial.stage), 0) + 1
    return stages
