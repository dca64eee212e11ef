"""One Bayesian-optimisation pick (stages 1 and 3): prior points, candidate pool, EI, constant liar.

Everything here is a pure function of its arguments, so a search that replays the same trials
makes the same picks:

* prior points are the first distinct configs of the space's unscrambled Sobol sequence;
* the candidate pool of the pick at stage index ``i`` is ``space.sample(explore, seed=s,
  method="random")`` with ``s`` drawn from ``numpy.random.SeedSequence([seed, stage, i,
  attempt])`` -- no generator state to save or restore;
* the GP is rebuilt for every pick from the stage's finished trials (in trial-id order) and its
  pending trials, which are told a fantasised loss equal to the best loss observed in the stage
  (the "constant liar"), so ``ask(n)`` equals ``n`` successive ``ask(1)`` calls and gives
  distinct configs;
* the pick is the first candidate with the largest expected improvement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lightning_dnc.search.trial import config_key

Completer = Callable[[dict[str, Any]], dict[str, Any]]

POOL_ATTEMPTS = 4
"""Fresh pools drawn for one pick before the stage is declared exhausted (every candidate
already evaluated)."""

SOBOL_OVERSAMPLE = 4
"""Sobol points drawn per prior point wanted, to replace duplicates (e.g. several MLPs without
hidden layers map to the same config)."""


def prior_configs(space: Any, count: int, complete: Completer) -> list[dict[str, Any]]:
    """The first ``count`` distinct complete configs of the space's Sobol sequence (fewer when the
    space has fewer distinct configs).

    Parameters
    ----------
    space : SearchSpace
        Its ``sample(n, method="sobol")`` gives the stage variables.
    count : int
        Prior points wanted.
    complete : callable
        Turns a sample into the complete configuration to train.
    """
    if count <= 0:
        return []
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for sample in space.sample(SOBOL_OVERSAMPLE * count + 16, method="sobol"):
        config = complete(sample)
        key = config_key(config)
        if key not in seen:
            seen.add(key)
            out.append(config)
            if len(out) == count:
                break
    return out


def pool_seed(seed: int, stage: int, index: int, attempt: int) -> int:
    """The seed of the candidate pool of one pick, derived from the search seed."""
    return int(np.random.SeedSequence([seed, stage, index, attempt]).generate_state(1)[0])


def candidate_pool(
    space: Any, explore: int, seed: int, stage: int, index: int, complete: Completer, exclude: set[str]
) -> list[dict[str, Any]]:
    """Distinct complete configs from ``explore`` uniform random samples, minus ``exclude`` keys.

    Up to :data:`POOL_ATTEMPTS` pools are drawn until one has a candidate left; ``[]`` means the
    stage has nothing new to offer.
    """
    for attempt in range(POOL_ATTEMPTS):
        samples = space.sample(explore, seed=pool_seed(seed, stage, index, attempt), method="random")
        out: list[dict[str, Any]] = []
        seen = set(exclude)
        for sample in samples:
            config = complete(sample)
            key = config_key(config)
            if key not in seen:
                seen.add(key)
                out.append(config)
        if out:
            return out
    return []


def pick_by_expected_improvement(
    space: Any,
    candidates: Sequence[dict[str, Any]],
    observed: Sequence[tuple[dict[str, Any], float]],
    pending: Sequence[dict[str, Any]],
    xi: float = 1e-4,
) -> dict[str, Any]:
    """The candidate with the largest EI (first one on ties) under a GP of the stage.

    Parameters
    ----------
    space : SearchSpace
        The stage's space; only its ``keys`` of each config reach the GP.
    candidates : list of dict
        Non-empty list of complete configs.
    observed : list of (config, loss)
        Finished trials of the stage with their (real or pessimistic) loss.
    pending : list of dict
        Proposed but unfinished configs of the stage; they are observed with the constant-liar
        loss ``min(observed losses)`` (0 when nothing is observed yet).
    xi : float, default 1e-4
        EI exploration margin (SPEC §6).
    """
    if not candidates:
        raise ValueError("`candidates` must not be empty.")
    if not observed and not pending:
        return candidates[0]
    from lightning_dnc.gp import GaussianProcess  # numba loads on first BO pick only

    def project(config: dict[str, Any]) -> dict[str, Any]:
        return {key: config[key] for key in space.keys}

    losses = [loss for _, loss in observed]
    lie = min(losses) if losses else 0.0
    gp = GaussianProcess(space)
    gp.observe([project(c) for c, _ in observed] + [project(c) for c in pending], losses + [lie] * len(pending))
    ei = np.asarray(gp.expected_improvement([project(c) for c in candidates], xi=xi), dtype=np.float64)
    ei = np.where(np.isfinite(ei), ei, -np.inf)
    return candidates[int(np.argmax(ei))]
