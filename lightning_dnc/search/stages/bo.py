"""One Bayesian-optimisation pick (stages 1 and 3): prior points, candidate pool, EI, constant liar.

Everything here is a pure function of its arguments, so a search that replays the same trials
makes the same picks:

* prior points are the first distinct configs of the space's Sobol sequence: unscrambled for the
  paper's strategy (the same points for every seed), scrambled from ``SeedSequence([seed, stage])``
  for the others (:func:`prior_seed`: other points for every seed);
* the candidate pool of the pick at stage index ``i`` is ``space.sample(explore, seed=s,
  method="random")`` with ``s`` drawn from ``numpy.random.SeedSequence([seed, stage, i,
  attempt])`` -- no generator state to save or restore -- reduced to its distinct samples that
  would not complete to a configuration already proposed. A sample holds exactly the stage's
  variables and completion keeps them, so samples are compared by their variables
  (:func:`projection_key`) and only the winner is completed; a space that builds its pool as
  arrays (``pool_arrays``, ``key_row``: the CNN, MLP, training and joint spaces) is compared row
  by row, scored from its encoding and only the winner's dict is built (:class:`PoolCandidates`),
  with the same candidates in the same order;
* one GP per stage (:class:`StageGP`) holds the stage's told trials: each is added once, as one
  more row of the Cholesky factor, and the losses are refreshed at every pick (the objective's
  reference and the stand-in loss of failed trials may change); pending trials are fantasies at
  the best loss observed in the stage (the "constant liar"), so ``ask(n)`` equals ``n`` successive
  ``ask(1)`` calls and gives distinct configs;
* the pick is the first candidate with the largest expected improvement.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from lightning_dnc.search.core.trial import config_key
from lightning_dnc.space.pool import ArrayPool

Completer = Callable[[dict[str, Any]], dict[str, Any]]

POOL_ATTEMPTS = 4
"""Fresh pools drawn for one pick before the stage is declared exhausted (every candidate
already evaluated)."""

SOBOL_OVERSAMPLE = 4
"""Sobol points drawn per prior point wanted, to replace duplicates (e.g. several MLPs without
hidden layers map to the same config)."""


def prior_configs(space: Any, count: int, complete: Completer, seed: int | None = None) -> list[dict[str, Any]]:
    """The first ``count`` distinct complete configs of the space's Sobol sequence (fewer when the
    space has fewer distinct configs): unscrambled when ``seed`` is None, else scrambled from ``seed``.

    Parameters
    ----------
    space : SearchSpace
        Its ``sample(n, method="sobol")`` gives the stage variables.
    count : int
        Prior points wanted.
    complete : callable
        Turns a sample into the complete configuration to train.
    seed : int, optional
        Seed of the scrambling (:func:`prior_seed`); None keeps the unscrambled sequence, whose
        first point is the centre of the space (the paper's strategy, so its proposals stay fixed).
    """
    if count <= 0:
        return []
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    method = "sobol" if seed is None else "scrambled-sobol"
    for sample in space.sample(SOBOL_OVERSAMPLE * count + 16, seed=seed, method=method):
        config = complete(sample)
        key = config_key(config)
        if key not in seen:
            seen.add(key)
            out.append(config)
            if len(out) == count:
                break
    return out


def prior_seed(seed: int, stage: int) -> int:
    """The seed of a stage's scrambled Sobol prior points, derived from the search seed."""
    return int(np.random.SeedSequence([seed, stage]).generate_state(1)[0])


def pool_seed(seed: int, stage: int, index: int, attempt: int) -> int:
    """The seed of the candidate pool of one pick, derived from the search seed."""
    return int(np.random.SeedSequence([seed, stage, index, attempt]).generate_state(1)[0])


def projection_key(space: Any, config: Mapping[str, Any]) -> Hashable:
    """The stage variables of ``config`` as a hashable key (lists become tuples)."""
    return tuple([tuple(v) if type(v) is list else v for v in map(config.__getitem__, space.keys)])


def candidate_samples(space: Any, explore: int, seed: int, stage: int, index: int,
                      known: set[Hashable]) -> Sequence[dict[str, Any]]:
    """Distinct samples of ``explore`` uniform random ones whose :func:`projection_key` is not ``known``.

    Up to :data:`POOL_ATTEMPTS` pools are drawn until one has a candidate left; an empty result
    means the stage has nothing new to offer. A list of dicts, or :class:`PoolCandidates` (the
    same samples) when the space builds its pool as arrays.
    """
    pool_arrays = getattr(space, "pool_arrays", None)
    for attempt in range(POOL_ATTEMPTS):
        pool_seed_ = pool_seed(seed, stage, index, attempt)
        if pool_arrays is not None:
            out: Sequence[dict[str, Any]] = _new_rows(space, pool_arrays(explore, pool_seed_), known)
        else:
            out = _new_samples(space, space.sample(explore, seed=pool_seed_, method="random"), known)
        if out:
            return out
    return []


def _new_samples(space: Any, samples: list[dict[str, Any]], known: set[Hashable]) -> list[dict[str, Any]]:
    """The first sample of every distinct :func:`projection_key` that is not ``known``."""
    out = []
    seen = set(known)
    for sample in samples:
        key = projection_key(space, sample)
        if key not in seen:
            seen.add(key)
            out.append(sample)
    return out


class PoolCandidates(Sequence[dict[str, Any]]):
    """The new samples of an :class:`~lightning_dnc.space.pool.ArrayPool`, in pool order; a
    sample's dict is built when it is read, and :attr:`encoded` lets the GP skip the dicts."""

    def __init__(self, pool: ArrayPool, rows: list[int]) -> None:
        self._pool = pool
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._pool.build(row) for row in self._rows[index]]
        return self._pool.build(self._rows[index])

    @property
    def keys(self) -> np.ndarray:
        """The samples' key rows (:attr:`ArrayPool.keys`), row for row."""
        return self._pool.keys[np.asarray(self._rows, dtype=np.int64)]

    @property
    def encoded(self) -> Any:
        """The samples' GP encoding, row for row."""
        return self._pool.encoded.take(np.asarray(self._rows, dtype=np.int64))


class WithFixedPart(Sequence[dict[str, Any]]):
    """Candidates of a joint space's second part, each with the same first part ``fixed``; when
    the candidates come as arrays (:class:`PoolCandidates`), so does their joint encoding."""

    def __init__(self, fixed: dict[str, Any], first_space: Any, candidates: Sequence[dict[str, Any]]) -> None:
        self._fixed = fixed
        self._first_space = first_space
        self._candidates = candidates

    def __len__(self) -> int:
        return len(self._candidates)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [{**self._fixed, **sample} for sample in self._candidates[index]]
        return {**self._fixed, **self._candidates[index]}

    @property
    def fixed(self) -> dict[str, Any]:
        """The first part every candidate shares."""
        return self._fixed

    @property
    def samples(self) -> Sequence[dict[str, Any]]:
        """The second part's candidates (e.g. :class:`PoolCandidates` with their key rows)."""
        return self._candidates

    @property
    def encoded(self) -> Any:
        """The joint encoding, or None when the candidates are plain dicts."""
        second = getattr(self._candidates, "encoded", None)
        if second is None:
            return None
        from lightning_dnc.gp.joint import JointEncoded

        first = self._first_space.encode([self._fixed]).take(np.zeros(len(self), dtype=np.int64))
        return JointEncoded((first, second))


def _new_rows(space: Any, pool: ArrayPool, known: set[Hashable]) -> PoolCandidates:
    """The first row of every distinct key of ``pool`` that is not a ``known`` projection key."""
    keys = np.ascontiguousarray(pool.keys, dtype=np.int64)
    as_bytes = keys.view(np.dtype((np.void, keys.shape[1] * 8))).ravel().tolist()
    seen = {row.tobytes() for row in (space.key_row(key) for key in known) if row is not None}
    rows = []
    for row, key in enumerate(as_bytes):
        if key not in seen:
            seen.add(key)
            rows.append(row)
    return PoolCandidates(pool, rows)


class StageGP:
    """The GP of one BO stage, kept between picks.

    Parameters
    ----------
    space : SearchSpace
        The stage's space; only its ``keys`` of each config reach the GP.
    xi : float, default 1e-4
        EI exploration margin (SPEC §6).
    """

    def __init__(self, space: Any, xi: float = 1e-4) -> None:
        self.space = space
        self.xi = xi
        self._gp: Any = None
        self._rows: dict[int, int] = {}  # trial id -> row of the GP

    def prepare(self, state: Any, complete: Completer | None) -> None:
        """Read what the model needs of the search before :meth:`pick` (nothing: the losses come
        with ``observed``); the composite model reads each trial's terms here."""

    def pick(self, candidates: Sequence[dict[str, Any]], observed: Sequence[tuple[int, dict[str, Any], float]],
             pending: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The candidate with the largest EI (first one on ties).

        Parameters
        ----------
        candidates : list of dict
            Non-empty list of samples (or complete configs) of the stage.
        observed : list of (trial_id, config, loss)
            Told trials of the stage with their (real or pessimistic) loss.
        pending : list of dict
            Proposed but unfinished configs; observed with the constant-liar loss
            ``min(observed losses)`` (0 when nothing is observed yet).
        """
        if not candidates:
            raise ValueError("`candidates` must not be empty.")
        if not observed and not pending:
            return candidates[0]
        model = self._model(observed, pending)
        encoded = getattr(candidates, "encoded", None)  # PoolCandidates: no dicts for the EI
        projected = encoded if encoded is not None else self._project(candidates)
        ei = np.asarray(model.expected_improvement(projected, xi=self.xi), dtype=np.float64)
        ei = np.where(np.isfinite(ei), ei, -np.inf)
        return candidates[int(np.argmax(ei))]

    def _retargeted(self, observed: Sequence[tuple[int, dict[str, Any], float]], targets: Sequence[float]) -> np.ndarray:
        """Give the stage's GP every observed trial as a row (each added once, in the order first
        seen) and ``targets`` (one per observed trial, in ``observed`` order); returns the targets
        by GP row."""
        from lightning_dnc.gp import GaussianProcess  # numba loads on first BO pick only

        if self._gp is None:
            self._gp = GaussianProcess(self.space)
        new = [(trial_id, config) for trial_id, config, _ in observed if trial_id not in self._rows]
        if new:
            self._gp.observe(self._project([config for _, config in new]), np.zeros(len(new)))
            for trial_id, _ in new:
                self._rows[trial_id] = len(self._rows)
        y = np.empty(len(self._rows))
        for (trial_id, _, _), value in zip(observed, targets):
            y[self._rows[trial_id]] = value
        self._gp.retarget(y)
        return y

    def _model(self, observed: Sequence[tuple[int, dict[str, Any], float]], pending: Sequence[dict[str, Any]]) -> Any:
        losses = self._retargeted(observed, [loss for _, _, loss in observed])
        if not pending:
            return self._gp
        lie = float(losses.min()) if len(losses) else 0.0
        return self._gp.with_fantasies(self._project(pending), np.full(len(pending), lie))

    def _project(self, configs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The stage variables of each config; a sample that holds exactly them is passed as it is."""
        keys = self.space.keys
        key_set = set(keys)
        return [config if config.keys() == key_set else {key: config[key] for key in keys} for config in configs]
