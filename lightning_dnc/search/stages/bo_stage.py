"""Stages 1 and 3 (SPEC §5): Sobol prior points, then expected-improvement picks of a GP.

Stage 1 searches the architecture skeleton with the default training settings; stage 3 searches
lr, weight decay and batch size with the architecture the grid stage handed on. Both are the same
strategy over another space and another way to complete a sample into a configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from lightning_dnc.search.stages import bo
from lightning_dnc.search.core.objective import pessimistic_loss
from lightning_dnc.search.stages.stage import SearchState, Stage, best_of
from lightning_dnc.search.core.settings import SearchSettings
from lightning_dnc.search.core.trial import Proposal, config_key
from lightning_dnc.space.config import DEFAULT_BATCH_SIZE, DEFAULT_LR, complete_config

CompleterFactory = Callable[[SearchState, "int | None"], bo.Completer]
"""Builds the completer of a BO stage when it starts, from the trial handed on to it."""


class BayesianStage(Stage):
    """Prior points, then one EI pick per proposal over a pool of random candidates.

    Parameters
    ----------
    number : int
        1 or 3.
    space : SearchSpace
        The stage's variables.
    prior_points, steps, explore, seed : int
        Budget and pool size (see :class:`~lightning_dnc.search.core.settings.SearchSettings`).
    completer : callable
        ``completer(state, handed_on)`` gives the function that turns a sample of ``space`` into
        the complete configuration to train.

    Attributes
    ----------
    prior_seed : int or None
        Seed of the scrambled Sobol prior points (:func:`~lightning_dnc.search.stages.bo.prior_seed`); None
        (the class default, the paper's strategy) keeps the unscrambled sequence.
    """

    prior_seed: int | None = None

    def __init__(self, number: int, space: Any, prior_points: int, steps: int, explore: int, seed: int,
                 completer: CompleterFactory) -> None:
        self.number = number
        self.space = space
        self.budget = prior_points + steps
        self.prior_points = prior_points
        self.explore = explore
        self.seed = seed
        self._completer_factory = completer
        self._complete: bo.Completer | None = None
        self._priors: list[dict[str, Any]] | None = None
        self._gp = bo.StageGP(space)
        self._known: dict[int, Hashable | None] = {}  # trial id -> its stage variables, if a completion here
        self.exhausted = False

    def start(self, state: SearchState, handed_on: int | None) -> None:
        self._complete = self._completer_factory(state, handed_on)

    def use_composite(self, family: str | None = None, data_shape: Any = None) -> None:
        """Model the stage with the composite model (:mod:`~lightning_dnc.search.stages.composite`):
        an accuracy GP over the same space and a cost model, instead of one GP on the loss (when
        ``family`` and ``data_shape`` are given: an exact one for ``n_params``, ``flops`` and CPU
        ``memory``, a regression on exact features for ``t_tr`` and ``latency``)."""
        from lightning_dnc.search.stages.composite import CompositeGP

        self._gp = CompositeGP(self._gp.space, family=family, data_shape=data_shape)

    @property
    def started(self) -> bool:
        """True once :meth:`start` ran (the stage can complete its samples)."""
        return self._complete is not None

    @property
    def priors(self) -> list[dict[str, Any]]:
        """The stage's distinct Sobol prior configurations (once started)."""
        if self._priors is None:
            if self._complete is None:
                raise RuntimeError(f"Stage {self.number} has not started: its configurations cannot be completed yet.")
            self._priors = bo.prior_configs(self.space, self.prior_points, self._complete, self.prior_seed)
        return self._priors

    def propose(self, state: SearchState, trial_id: int) -> Proposal | None:
        index = len(self.own_trials(state))
        if index >= self.planned(state, started=True, finished=False) or self.exhausted:
            return None
        priors = self.priors
        if index < len(priors) and not state.is_known(priors[index]):
            return Proposal(trial_id, self.number, priors[index])
        assert self._complete is not None  # started, since the priors exist
        candidates = bo.candidate_samples(self.space, self.explore, self.seed, self.number, index,
                                          self._known_samples(state))
        if not candidates:
            self.exhausted = True
            return None
        observed, pending = self._gp_data(state)
        self._gp.prepare(state, self._complete)
        return Proposal(trial_id, self.number, self._complete(self._pick(candidates, observed, pending)))

    def _pick(self, candidates: Sequence[dict[str, Any]], observed: list[tuple[int, dict[str, Any], float]],
              pending: list[dict[str, Any]]) -> dict[str, Any]:
        """The sample of ``candidates`` the stage's GP picks (a hook for stages whose GP sees more)."""
        return self._gp.pick(candidates, observed, pending)

    def complete(self, state: SearchState) -> bool:
        trials = self.own_trials(state)
        proposed_all = len(trials) >= self.planned(state, started=True, finished=False) or self.exhausted
        return proposed_all and all(t.evaluation is not None for t in trials)

    def winner(self, state: SearchState) -> int | None:
        return best_of(state, (t.trial_id for t in self.own_trials(state)))

    def planned(self, state: SearchState, started: bool, finished: bool) -> int:
        if self.exhausted or finished:
            return len(self.own_trials(state))
        return self.budget

    def _known_samples(self, state: SearchState) -> set[Hashable]:
        """Stage variables of every proposed config that a sample of this stage completes to.

        A sample is new exactly when its variables are not in this set: completion keeps the
        variables and depends on nothing else, so each trial is checked once.
        """
        assert self._complete is not None
        for trial in state.trials[len(self._known):]:
            sample = {key: trial.config[key] for key in self.space.keys if key in trial.config}
            ok = len(sample) == len(self.space.keys)
            completes = ok and config_key(self._complete(sample)) == config_key(trial.config)
            self._known[trial.trial_id] = bo.projection_key(self.space, sample) if completes else None
        return {key for key in self._known.values() if key is not None}

    def _gp_data(self, state: SearchState) -> tuple[list[tuple[int, dict[str, Any], float]], list[dict[str, Any]]]:
        """Told trials with their loss (failed ones: the pessimistic stand-in) and pending configs."""
        trials = self.own_trials(state)
        losses = {t.trial_id: state.loss_of(t) for t in trials}
        stage_losses = [loss for loss in losses.values() if loss is not None]
        other = [loss for t in state.trials if t.stage != self.number and (loss := state.loss_of(t)) is not None]
        stand_in = pessimistic_loss(stage_losses, other)
        observed, pending = [], []
        for t in trials:
            if t.evaluation is None:
                pending.append(t.config)
            else:
                loss = losses[t.trial_id]
                observed.append((t.trial_id, t.config, stand_in if loss is None else loss))
        return observed, pending


def architecture_completer(settings: SearchSettings) -> CompleterFactory:
    """Stage 1: a skeleton sample + the stage-2 defaults + the default training (SPEC §4)."""
    base = {"lr": DEFAULT_LR, "weight_decay": "auto", "batch_size": DEFAULT_BATCH_SIZE, "epochs": settings.search_epochs}

    def factory(state: SearchState, handed_on: int | None) -> bo.Completer:
        return lambda sample: complete_config({**sample, **base}, family=settings.family)

    return factory


def training_completer(settings: SearchSettings) -> CompleterFactory:
    """Stage 3: the architecture of the trial handed on + a training sample."""

    def factory(state: SearchState, handed_on: int | None) -> bo.Completer:
        architecture = dict(state.trials[handed_on].config)  # type: ignore[index]
        epochs = {"epochs": settings.search_epochs}
        return lambda sample: complete_config({**architecture, **sample, **epochs}, family=settings.family)

    return factory
