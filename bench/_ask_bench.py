"""``StagedSearch.ask`` per BO pick, today's path against the 0.1.0 path on the same search states.

The 0.1.0 path (the baseline, re-created here from public pieces): sample the pool one row at a
time, complete and key every candidate, drop the ones already proposed, and build a fresh GP from
the stage's told and pending trials for every pick. Today's path (``StagedSearch.ask``): a
vectorised pool, candidates compared by their stage variables and only the winner completed, and
one GP per stage whose Cholesky factor grows by one row per told trial. Both are timed on the same
state before each pick of a search driven by a synthetic objective, and the baseline's pick is
checked to be the configuration ``ask`` returns.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_golden_proposals import synthetic_evaluation  # noqa: E402

from lightning_dnc.gp import GaussianProcess  # noqa: E402
from lightning_dnc.search import Objective, StagedSearch, config_key  # noqa: E402
from lightning_dnc.search.stages.bo import POOL_ATTEMPTS, pool_seed  # noqa: E402
from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace  # noqa: E402
from lightning_dnc.space._sampling import unit_points  # noqa: E402


def old_pick(search: StagedSearch) -> dict[str, Any] | None:
    """The 0.1.0 engine's BO pick for the search's current state (None: not a BO pick)."""
    stage = search._stages[search.stage]  # noqa: SLF001 - the bench re-creates the old internals
    index = len(stage.own_trials(search))
    if index < len(stage.priors):
        return None
    space, complete = stage.space, stage._complete  # noqa: SLF001
    pool: list[dict[str, Any]] = []
    for attempt in range(POOL_ATTEMPTS):
        points = unit_points(search.explore, space._unit_dimension(), pool_seed(search.seed, stage.number, index, attempt),
                             "random").tolist()  # noqa: SLF001
        seen = set(search.known_keys())
        for sample in (space._config_from_unit(u) for u in points):  # noqa: SLF001
            config = complete(sample)
            key = config_key(config)
            if key not in seen:
                seen.add(key)
                pool.append(config)
        if pool:
            break
    observed, pending = stage._gp_data(search)  # noqa: SLF001
    if not observed and not pending:
        return pool[0]
    losses = [loss for _, _, loss in observed]
    lie = min(losses) if losses else 0.0
    project = lambda c: {k: c[k] for k in space.keys}  # noqa: E731
    gp = GaussianProcess(space)
    gp.observe([project(c) for _, c, _ in observed] + [project(c) for c in pending], losses + [lie] * len(pending))
    ei = np.asarray(gp.expected_improvement([project(c) for c in pool]))
    return pool[int(np.argmax(np.where(np.isfinite(ei), ei, -np.inf)))]


def bench_picks(explore: int = 1000, steps: int = 12, seed: int = 0) -> list[dict[str, Any]]:
    """Median ms per BO pick, old path and ``ask``, for the CNN and MLP skeleton and the training stage."""
    rows = []
    for family, space in (("cnn", CNNSpace()), ("mlp", MLPSpace())):
        search = StagedSearch(family, space, TrainingSpace(), Objective(wc=0.1), prior_points=5, steps=steps,
                              explore=explore, epochs=3, seed=seed, stage2_order=[], training_prior_points=5,
                              training_steps=steps, strategy="paper")  # the 0.1.0 path exists for these stages
        times: dict[int, dict[str, list[float]]] = {1: {"old": [], "new": []}, 3: {"old": [], "new": []}}
        mismatches = 0
        while not search.finished:
            stage = search.stage
            started = time.perf_counter()
            expected = old_pick(search)
            old_s = time.perf_counter() - started
            started = time.perf_counter()
            proposals = search.ask(1)
            new_s = time.perf_counter() - started
            if expected is not None:
                times[stage]["old"].append(old_s)
                times[stage]["new"].append(new_s)
                mismatches += config_key(expected) != config_key(proposals[0].config)
            for p in proposals:
                search.tell(p.trial_id, synthetic_evaluation(p.config, False))
        for stage, name in ((1, f"{family} skeleton"), (3, f"training (after {family})")):
            old_ms = statistics.median(times[stage]["old"]) * 1e3
            new_ms = statistics.median(times[stage]["new"]) * 1e3
            rows.append({"stage": name, "explore": explore, "picks": len(times[stage]["new"]), "old_ms": old_ms,
                         "ask_ms": new_ms, "speedup": old_ms / new_ms, "different_picks": mismatches})
    return rows


def bench_default_picks(explore: int = 1000, steps: int = 12, seed: int = 0, model: str | None = None) -> list[dict[str, Any]]:
    """Median ms per BO pick of ``ask`` with the default strategy (joint: stage 1 over skeleton and
    training together, stage 3 a GP over both), which has no 0.1.0 counterpart; ``model`` names the
    BO model (``"composite"``: accuracy GP + cost model + composite EI), the default when None."""
    rows = []
    for family, space in (("cnn", CNNSpace()), ("mlp", MLPSpace())):
        search = StagedSearch(family, space, TrainingSpace(), Objective(wc=0.1), prior_points=5, steps=steps,
                              explore=explore, epochs=3, seed=seed, stage2_order=[], training_prior_points=5,
                              training_steps=steps, model=model)
        times = {1: [], 3: [], **timed_bo_picks(search, lambda config: synthetic_evaluation(config, False))}
        tag = f" {search.search_settings.model}"
        for stage, name in ((1, f"joint{tag} {family} skeleton+training"), (3, f"joint{tag} training (after {family})")):
            rows.append({"stage": name, "explore": explore, "picks": len(times[stage]),
                         "ask_ms": statistics.median(times[stage]) * 1e3, "strategy": search.search_settings.strategy,
                         "model": search.search_settings.model})
    return rows


def timed_bo_picks(search: Any, evaluate: Any) -> dict[int, list[float]]:
    """Run ``search`` to the end one ``ask(1)`` at a time, telling ``evaluate(config)``; the seconds
    of each BO pick (prior points left out) by stage."""
    times: dict[int, list[float]] = {}
    while not search.finished:
        started = time.perf_counter()
        proposals = search.ask(1)
        elapsed = time.perf_counter() - started
        for p in proposals:
            stage = search._stages[p.stage]  # noqa: SLF001 - only to tell BO picks from prior points
            if hasattr(stage, "priors") and len(stage.own_trials(search)) - 1 >= len(stage.priors):
                times.setdefault(p.stage, []).append(elapsed)
            search.tell(p.trial_id, evaluate(p.config))
    return times


COST_MODEL_DATA = {"cnn": ((3, 32, 32), 10, 50_000), "mlp": ((64,), 10, 1_437)}
"""Data shapes of the cost-model rows: CIFAR-10-like images for the CNN, digits for the MLP."""


def _timed_evaluation(config: dict[str, Any]) -> Any:
    """:func:`synthetic_evaluation` with a latency too (both times grow with the network's size)."""
    import dataclasses

    evaluation = synthetic_evaluation(config, False)
    return dataclasses.replace(evaluation, latency=1e-4 * evaluation.t_tr)


def bench_cost_model_picks(explore: int = 1000, steps: int = 12, seed: int = 0,
                           strategies: tuple[str, ...] = ("joint", "revisit", "train-first"),
                           penalties: tuple[str, ...] = ("t_tr", "latency"), shape: bool = True) -> list[dict[str, Any]]:
    """Median ms per BO pick of ``ask`` with the composite model and a data shape, per strategy,
    penalty, family and stage: the cost model is then the regression on exact features for the
    measured times (``RegressionCostModel``), the exact model for ``n_params`` / ``flops``;
    ``shape=False``: the same searches without a data shape (``GPCostModel``)."""
    from lightning_dnc.search.core.settings import SearchSettings
    from lightning_dnc.space.exact_costs import DataShape

    rows = []
    for strategy in strategies:
        for penalize in penalties:
            for family, space in (("cnn", CNNSpace()), ("mlp", MLPSpace())):
                dims, outputs, samples = COST_MODEL_DATA[family]
                settings = SearchSettings(family=family, objective=Objective(wc=0.1, penalize=penalize), prior_points=5,
                                          steps=steps, explore=explore, search_epochs=3, seed=seed, stage2_order=(),
                                          training_prior_points=5, training_steps=steps, strategy=strategy,
                                          model="composite",
                                          data_shape=DataShape(dims, outputs, samples) if shape else None)
                search = StagedSearch.from_settings(settings, space, TrainingSpace())
                times = timed_bo_picks(search, _timed_evaluation)
                models = {number: type(getattr(getattr(stage, "_gp", None), "cost_model", None)).__name__
                          for number, stage in search._stages.items()}  # noqa: SLF001 - which model each stage ran
                for number, picks in sorted(times.items()):
                    rows.append({"stage": f"{strategy} {penalize} {family} stage {number}", "explore": explore,
                                 "picks": len(picks), "ask_ms": statistics.median(picks) * 1e3,
                                 "max_ms": max(picks) * 1e3, "strategy": strategy, "penalize": penalize,
                                 "cost_model": models[number]})
    return rows
