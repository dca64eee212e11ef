"""The searches the benchmark compares, each returning a :class:`MethodRun`.

* :func:`run_staged` -- lightning-dnc's staged search through the product's own loop
  (``lightning_dnc.lightning.search_loop.run_search``), with its phases timed by :mod:`_overhead`;
* :func:`run_random` -- uniform random search over the joint space (:mod:`_joint`), no model;
* :func:`run_optuna` -- an Optuna sampler (TPE, GP) over the same joint space, ask/tell.

Every method trains its candidates with the same evaluator settings (data, epochs, seed) and is
scored by the same :class:`~lightning_dnc.search.Objective` (with a fixed ``t_tr_ref``).
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from _joint import random_joint_config, suggest_joint_config
from _overhead import EVALUATION_PHASES, PhaseClock, instrument, overhead_summary
from lightning_dnc.search import Evaluation, Journal, Objective, StagedSearch, config_key

EvaluateFn = Callable[[dict[str, Any]], Evaluation]
OPTUNA_PIP = "pip install 'lightning-dnc[bench]'  # or: pip install 'optuna>=3.5'"
OPTUNA_SAMPLERS = ("tpe", "tpe-mv", "gp")


@dataclass
class MethodRun:
    """One search of one method at one seed: its trials in training order and where time went.

    Attributes
    ----------
    method : str
    seed : int
    evaluations : list of Evaluation
        Every trained candidate, in the order trained.
    trial_seconds : list of float
        Wall seconds each trial cost the search (its evaluation plus the method's own work for it).
    wall_s : float
        Wall time of the whole search.
    phases : dict
        Seconds per phase (``training``, ``validation``, ``setup_teardown`` and the method's own:
        ``acquisition``, ``journal``, ``engine_tell``, ``sampling``, ``other``).
    info : dict
        Method-specific facts (e.g. duplicates proposed).
    """

    method: str
    seed: int
    evaluations: list[Evaluation]
    trial_seconds: list[float]
    wall_s: float
    phases: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)

    def truncated(self, n: int) -> MethodRun:
        """The same run seen after its first ``n`` trainings (random search is scored for every wc
        from one run: its proposals do not depend on the objective)."""
        if n >= len(self.evaluations):
            return self
        phases = _evaluation_phase_sums(self.evaluations[:n])
        own = {k: v * n / len(self.evaluations) for k, v in self.phases.items() if k not in EVALUATION_PHASES}
        seconds = self.trial_seconds[:n]
        return MethodRun(self.method, self.seed, self.evaluations[:n], seconds, float(sum(seconds)),
                         {**phases, **own}, dict(self.info))

    def losses(self, objective: Objective) -> list[float | None]:
        """The objective of every trial (``None`` for failed ones)."""
        return [objective.loss(e) for e in self.evaluations]

    def summary(self, objective: Objective) -> dict[str, Any]:
        """Best trial and cost figures under ``objective`` (JSON-able)."""
        losses = self.losses(objective)
        scored = [(loss, i) for i, loss in enumerate(losses) if loss is not None]
        best_loss, best = min(scored) if scored else (None, None)
        chosen = self.evaluations[best] if best is not None else None
        curve, running = [], None
        for loss in losses:
            if loss is not None and (running is None or loss < running):
                running = loss
            curve.append(running)
        return {
            "method": self.method,
            "seed": self.seed,
            "best_objective": best_loss,
            "best_val_acc": None if chosen is None else chosen.best_val_acc,
            "t_tr": None if chosen is None else chosen.t_tr,
            "n_params": None if chosen is None else chosen.n_params,
            "best_trial": best,
            "best_config": None if chosen is None else dict(chosen.config),
            "trainings": len(self.evaluations),
            "failed": sum(1 for e in self.evaluations if not e.ok),
            "wall_s": self.wall_s,
            "phases": dict(self.phases),
            **overhead_summary(self.wall_s, self.phases),
            "best_so_far": curve,
            "info": dict(self.info),
        }


def run_staged(evaluate: EvaluateFn, datamodule: Any, family: str, space: Any, training_space: Any,
               objective: Objective, *, seed: int, prior_points: int, steps: int, explore: int, epochs: int,
               stage2_order: Sequence[str] | None, accelerator: str, strategy: str | None = None,
               model: str | None = None) -> MethodRun:
    """lightning-dnc's staged search, driven by the product's search loop, with its phases timed.

    The loop (``run_search``) builds the engine, the journal (a temporary file: writes are part
    of the cost) and the progress display (off); candidates go to ``evaluate`` through the
    in-process executor. ``StagedSearch.ask`` is timed as ``acquisition`` (Sobol points, candidate
    pools, GP fit and EI), ``StagedSearch.tell`` as ``engine_tell`` and ``Journal.append`` as
    ``journal``, each exclusive of the others.
    """
    from lightning_dnc.executors import InProcessExecutor
    from lightning_dnc.lightning.search_loop import run_search
    from lightning_dnc.lightning.tuner import DeepNCheapTuner

    evaluations: list[Evaluation] = []
    seconds: list[float] = []

    def timed_evaluate(config: dict[str, Any]) -> Evaluation:
        evaluation = evaluate(config)
        evaluations.append(evaluation)
        seconds.append(float(evaluation.wall_time or 0.0))
        return evaluation

    clock = PhaseClock()
    targets = [(StagedSearch, "ask", "acquisition"), (StagedSearch, "tell", "engine_tell"),
               (Journal, "append", "journal")]
    with tempfile.TemporaryDirectory(prefix="dnc-bench-") as tmp:
        tuner = DeepNCheapTuner(
            wc=objective.wc, penalize=objective.penalize, t_tr_ref=objective.t_tr_ref,
            n_params_ref=objective.n_params_ref, search_epochs=epochs, prior_points=prior_points, steps=steps,
            explore=explore, seed=seed, space=space, training_space=training_space, family=family,
            stage2_order=stage2_order, executor=InProcessExecutor(timed_evaluate),
            journal=Path(tmp) / "trials.jsonl", progress=False, strategy=strategy, model=model,
        )
        hardware = {"accelerator": accelerator, "devices": 1, "precision": None}
        started = time.perf_counter()
        with instrument(clock, targets):
            result = run_search(tuner.settings.for_family(family), tuner.run_options, datamodule, hardware)
        wall = time.perf_counter() - started
    phases = {**_evaluation_phase_sums(evaluations), **clock.seconds}
    phases["other"] = max(wall - sum(phases.values()), 0.0)
    # Spread the search's own work over its trials so truncated views and curves stay honest.
    own = (wall - sum(seconds)) / max(len(seconds), 1)
    info = {"stage_counts": _stage_counts(result.trials), "final_best_trial": result.best.trial_id,
            "asks": clock.calls.get("acquisition", 0)}
    return MethodRun("lightning-dnc", seed, evaluations, [s + own for s in seconds], wall, phases, info)


def run_random(evaluate: EvaluateFn, space: Any, training_space: Any, *, n: int, seed: int, epochs: int,
               max_redraws: int = 100) -> MethodRun:
    """Uniform random search over the joint space: ``n`` distinct configurations, no model.

    A configuration drawn before is redrawn (up to ``max_redraws`` times), as the staged search
    never trains a configuration twice.
    """
    rng = np.random.default_rng([seed, 7919])
    seen: set[str] = set()
    evaluations: list[Evaluation] = []
    seconds: list[float] = []
    clock = PhaseClock()
    started = time.perf_counter()
    redraws = 0
    for _ in range(n):
        before = clock.seconds.get("sampling", 0.0)
        with clock.phase("sampling"):
            for _attempt in range(max_redraws + 1):
                config = random_joint_config(space, training_space, rng, epochs)
                if config_key(config) not in seen:
                    break
                redraws += 1
            seen.add(config_key(config))
        evaluation = evaluate(config)
        evaluations.append(evaluation)
        seconds.append(float(evaluation.wall_time or 0.0) + clock.seconds["sampling"] - before)
    wall = time.perf_counter() - started
    phases = {**_evaluation_phase_sums(evaluations), **clock.seconds}
    phases["other"] = max(wall - sum(phases.values()), 0.0)
    return MethodRun("random", seed, evaluations, seconds, wall, phases, {"redraws": redraws})


def optuna_missing() -> str | None:
    """``None`` when Optuna (>= 3.5) imports, else why not plus the ``pip install`` line."""
    try:
        import optuna
    except ImportError as err:
        return f"optuna is not installed ({err}); {OPTUNA_PIP}"
    major, minor = (int(part) for part in optuna.__version__.split(".")[:2])
    if (major, minor) < (3, 5):
        return f"optuna {optuna.__version__} is too old (needs >= 3.5); {OPTUNA_PIP}"
    return None


def make_sampler(name: str, seed: int, n: int | None = None) -> Any:
    """The Optuna sampler ``name`` seeded with ``seed``: ``"tpe"`` (its defaults), ``"tpe-mv"``
    (``multivariate=True, group=True``, a quarter of the ``n`` trainings as start-up trials, at
    least 2) or ``"gp"``."""
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "tpe-mv":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature warning
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                              n_startup_trials=max(2, int(0.25 * (n or 40))))
    if name == "gp":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature warning
            return optuna.samplers.GPSampler(seed=seed)
    raise ValueError(f"`sampler` must be one of {list(OPTUNA_SAMPLERS)}, got {name!r}.")


def run_optuna(evaluate: EvaluateFn, space: Any, training_space: Any, objective: Objective, *, sampler: str,
               n: int, seed: int, epochs: int) -> MethodRun:
    """An Optuna study over the joint space, ``n`` trainings, minimising ``objective``.

    Trials are asked and told (Optuna's ask/tell interface); a failed candidate is told
    ``FAIL``. Optuna may propose a configuration twice (its parameters are continuous while the
    configurations are discrete); it is trained again, as a user's study would, and counted in
    ``info["duplicates"]``.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    clock = PhaseClock()
    evaluations: list[Evaluation] = []
    seconds: list[float] = []
    seen: set[str] = set()
    duplicates = 0
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental / dynamic-search-space warnings of the samplers
        with clock.phase("sampling"):
            study = optuna.create_study(direction="minimize", sampler=make_sampler(sampler, seed, n))
        for _ in range(n):
            before = sum(clock.seconds.values())
            with clock.phase("sampling"):
                trial = study.ask()
                config = suggest_joint_config(trial, space, training_space, epochs)
            key = config_key(config)
            duplicates += key in seen
            seen.add(key)
            evaluation = evaluate(config)
            loss = objective.loss(evaluation)
            with clock.phase("sampling"):
                if loss is None:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(trial, loss)
            evaluations.append(evaluation)
            seconds.append(float(evaluation.wall_time or 0.0) + sum(clock.seconds.values()) - before)
    wall = time.perf_counter() - started
    phases = {**_evaluation_phase_sums(evaluations), **clock.seconds}
    phases["other"] = max(wall - sum(phases.values()), 0.0)
    return MethodRun(f"optuna-{sampler}", seed, evaluations, seconds, wall, phases,
                     {"duplicates": duplicates, "optuna": optuna.__version__})


def _evaluation_phase_sums(evaluations: Sequence[Evaluation]) -> dict[str, float]:
    sums = dict.fromkeys(EVALUATION_PHASES, 0.0)
    for evaluation in evaluations:
        phases: Mapping[str, float] = evaluation.extra.get("phases") or {
            "training": float(sum(evaluation.extra.get("epoch_times", ()) or ())), "validation": 0.0,
            "setup_teardown": 0.0}
        for key in EVALUATION_PHASES:
            sums[key] += float(phases.get(key, 0.0))
    return sums


def _stage_counts(trials: Sequence[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in trials:
        counts[str(trial.stage)] = counts.get(str(trial.stage), 0) + 1
    return counts
