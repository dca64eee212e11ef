"""The searches compared on the LCBench surrogate, each driven through a :class:`~_hpo_trace.Trace`.

====================  ==============================================================================
``dnc-paper``         lightning-dnc's staged search (``StagedSearch`` ask/tell, SPEC §5), every
                      candidate at full fidelity (52 epochs), stage sizes scaled to the budget
``dnc``               lightning-dnc with its current defaults (:data:`DNC_SETTINGS`: ``strategy="joint"``)
``dnc-revisit``       lightning-dnc with ``strategy="revisit"``
``dnc-train-first``   lightning-dnc with ``strategy="train-first"``
``random``            Optuna ``RandomSampler``, full fidelity
``tpe``               Optuna ``TPESampler``, full fidelity
``tpe-hyperband``     Optuna ``TPESampler`` + ``HyperbandPruner`` (min 1, max 52 epochs, eta 3)
``asha``              Optuna ``RandomSampler`` + ``SuccessiveHalvingPruner`` (asynchronous successive
                      halving: min 1 epoch, eta 3)
``dehb``              ``dehb.DEHB`` (ask/tell; fidelities 1-52 epochs, eta 3; every job from scratch)
``dnc-asha``          lightning-dnc with ``fidelity="asha"`` (the paper's stages; rungs 6, 18, 52 epochs,
                      eta 3; promoted candidates continue from their rung; 3x ``dnc``'s candidates),
                      see ``_hpo_asha.py``
====================  ==============================================================================

Optuna's pruned trials report the objective after every epoch (``trial.report``) and ask
``trial.should_prune()``; a pruned or finished trial is told to the study.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import _hpo_space as hs
from _hpo_lcbench import MAX_EPOCHS
from _hpo_trace import Trace

METHODS = ("dnc-paper", "dnc", "dnc-revisit", "dnc-train-first", "random", "tpe", "tpe-hyperband", "asha", "dehb",
           "dnc-asha")
#: Methods run only when named (``--methods``): the GP designs of ``dnc-asha`` compared.
EXTRA_METHODS = ("dnc-asha-highest", "dnc-asha-top", "dnc-asha-bohb")
#: Candidates per BO pick of lightning-dnc's stages 1 and 3: the paper's 1000. On 8 tasks x 3 seeds x
#: wc 0/0.1 (budget 30) 200 candidates gave median regret 0.39, 500 gave 0.32 and 1000 gave 0.30, at
#: 0.12, 0.19 and 0.37 s of decision time per search; 1000 keeps the full suite within its time.
EXPLORE = 1000
#: lightning-dnc's settings per method name. ``kwargs`` go to ``StagedSearch`` as they are;
#: later issues (multi-fidelity, stage-1 improvements) change ``dnc`` here.
DNC_SETTINGS: dict[str, dict[str, Any]] = {
    "dnc-paper": {"explore": EXPLORE, "kwargs": {"strategy": "paper"},
                  "note": "the paper's staged procedure (SPEC §5): stage-1 BO over the MLP skeleton at lr 1e-3 "
                          "and batch 256, stage-2 dropout grid, stage-3 BO over lr/weight decay/batch size; "
                          "every candidate at full fidelity; stage sizes scaled to the budget"},
    "dnc": {"explore": EXPLORE, "kwargs": {},
            "note": "lightning-dnc with its current defaults: strategy 'joint' (stage-1 BO over the MLP skeleton "
                    "and lr/weight decay/batch size together, warm stage 3; half of stage 3's budget in stage 1)"},
    "dnc-revisit": {"explore": EXPLORE, "kwargs": {"strategy": "revisit"},
                    "note": "strategy 'revisit': the paper's stages, then a second skeleton BO with the tuned "
                            "training, warm-started from stage 1 (half of stage 1's BO steps move there)"},
    "dnc-train-first": {"explore": EXPLORE, "kwargs": {"strategy": "train-first"},
                        "note": "strategy 'train-first': BO of lr/weight decay/batch size on the centre skeleton "
                                "first (half of stage 3's budget), then the paper's stages with that training"},
}
OPTUNA_SETTINGS = {
    "random": {"sampler": "random", "pruner": None},
    "tpe": {"sampler": "tpe", "pruner": None},
    "tpe-hyperband": {"sampler": "tpe", "pruner": "hyperband"},
    "asha": {"sampler": "random", "pruner": "successive-halving"},
}
REDUCTION_FACTOR = 3
#: Stage-2 options of the dropout group (the grid's six values minus stage 1's default).
DNC_STAGE2_OPTIONS = len(hs.DROPOUT_CHOICES) - 1


def missing(method: str) -> str | None:
    """Why ``method`` cannot run here (its package is missing, with the ``pip`` line), else ``None``."""
    module = {"dehb": "dehb"}.get(method, "optuna" if method in OPTUNA_SETTINGS else None)
    if module is None:
        return None
    try:
        __import__(module)
    except ImportError as err:
        return f"{err}; pip install 'lightning-dnc[bench]'"
    return None


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
    """The settings a method runs with (stored in each JSON row)."""
    if method.startswith("dnc-asha"):
        import _hpo_asha

        return _hpo_asha.settings_of(method, budget)
    if method in DNC_SETTINGS:
        entry = DNC_SETTINGS[method]
        return {"engine": "lightning_dnc.search.StagedSearch", "explore": entry["explore"], "epochs": MAX_EPOCHS,
                "stage2_order": list(hs.DNC_STAGE2_ORDER), **stage_sizes(budget), **entry["kwargs"],
                "note": entry["note"]}
    if method in OPTUNA_SETTINGS:
        import optuna

        out: dict[str, Any] = {"library": f"optuna {optuna.__version__}", **OPTUNA_SETTINGS[method]}
        if out["pruner"] is not None:
            out.update(min_resource=1, reduction_factor=REDUCTION_FACTOR)
            if out["pruner"] == "hyperband":
                out["max_resource"] = MAX_EPOCHS
        return out
    if method == "dehb":
        import dehb

        return {"library": f"dehb {getattr(dehb, '__version__', '?')}", "min_fidelity": 1, "max_fidelity": MAX_EPOCHS,
                "eta": REDUCTION_FACTOR, "n_workers": 1, "fidelity_rounding": "nearest epoch, from scratch"}
    raise ValueError(f"`method` must be one of {list(METHODS)}, got {method!r}.")


def run_method(method: str, trace: Trace, seed: int) -> dict[str, Any]:
    """Run ``method`` until ``trace``'s budget is spent (or the method ends); returns its facts."""
    if method.startswith("dnc-asha"):
        import _hpo_asha

        return _hpo_asha.run(method, trace, seed)
    if method in DNC_SETTINGS:
        return run_dnc(method, trace, seed)
    if method in OPTUNA_SETTINGS:
        return run_optuna(method, trace, seed)
    if method == "dehb":
        return run_dehb(trace, seed)
    raise ValueError(f"`method` must be one of {list(METHODS)}, got {method!r}.")


def run_dnc(method: str, trace: Trace, seed: int) -> dict[str, Any]:
    """lightning-dnc's ``StagedSearch``, every candidate at 52 epochs, through ask/tell."""
    from lightning_dnc.search import Objective, StagedSearch

    settings = settings_of(method, trace.budget)
    space, training_space = hs.dnc_spaces()
    kwargs = {k: settings[k] for k in ("prior_points", "steps", "training_prior_points", "training_steps")}
    with trace.deciding():
        search = StagedSearch("mlp", space, training_space, Objective(wc=trace.wc, t_tr_ref=trace.task.t_tr_ref),
                              explore=settings["explore"], epochs=MAX_EPOCHS, stage2_order=list(hs.DNC_STAGE2_ORDER),
                              seed=seed, **{**kwargs, **DNC_SETTINGS[method]["kwargs"]})
    return {"finished": search.finished, "stage_counts": drive_dnc(search, trace)}


def drive_dnc(search: Any, trace: Trace) -> dict[str, int]:
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


def _optuna_study(name: str, seed: int) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = OPTUNA_SETTINGS[name]
    sampler = (optuna.samplers.TPESampler(seed=seed) if spec["sampler"] == "tpe"
               else optuna.samplers.RandomSampler(seed=seed))
    pruner: Any = optuna.pruners.NopPruner()
    if spec["pruner"] == "hyperband":
        pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=MAX_EPOCHS,
                                                reduction_factor=REDUCTION_FACTOR)
    elif spec["pruner"] == "successive-halving":
        pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=REDUCTION_FACTOR,
                                                        min_early_stopping_rate=0)
    return optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)


def run_optuna(name: str, trace: Trace, seed: int) -> dict[str, Any]:
    """An Optuna study (ask/tell); with a pruner, the trial reports every epoch and may be pruned."""
    import optuna

    prunes = OPTUNA_SETTINGS[name]["pruner"] is not None
    pruned = trials = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental / dynamic-space warnings
        with trace.deciding():
            study = _optuna_study(name, seed)
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


def run_dehb(trace: Trace, seed: int) -> dict[str, Any]:
    """DEHB through its ask/tell interface; a job at fidelity f trains round(f) epochs from scratch."""
    from dehb import DEHB

    jobs = 0
    with tempfile.TemporaryDirectory(prefix="hpo-bench-dehb-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with trace.deciding():
            optimizer = DEHB(cs=hs.config_space(seed), f=_unused_objective, min_fidelity=1, max_fidelity=MAX_EPOCHS,
                             eta=REDUCTION_FACTOR, n_workers=1, seed=seed, output_path=tmp, save_freq="end",
                             log_level="ERROR")
        while not trace.exhausted:
            with trace.deciding():
                job = optimizer.ask()
                config = hs.from_values(_plain(job["config"]))
            epochs = int(min(max(round(float(job["fidelity"])), 1), MAX_EPOCHS))
            result = trace.train(config, epochs)
            jobs += 1
            with trace.deciding():
                optimizer.tell(job, {"fitness": result.objective, "cost": result.t_tr * epochs})
    return {"jobs": jobs}


def _plain(config: Any) -> Mapping[str, Any]:
    return dict(config.get_dictionary() if hasattr(config, "get_dictionary") else config)


def _unused_objective(config: Any, fidelity: float, **kwargs: Any) -> Callable[..., Any]:  # pragma: no cover
    raise RuntimeError("DEHB is driven through ask/tell here; its `f` is never called.")
