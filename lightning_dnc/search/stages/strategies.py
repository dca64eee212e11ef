"""Search strategies: which stages a search runs, over which spaces, with which budgets.

``"paper"``
    SPEC §5 exactly: stage 1 BO over the architecture skeleton with the default training (lr
    1e-3, batch 256), stage 2 grid, stage 3 BO over lr, weight decay and batch size.
``"joint"`` (the default)
    Stage 1 searches the skeleton *and* lr, weight decay and batch size together (the GP kernel is
    the mean of the architecture and training kernels, :mod:`lightning_dnc.gp.joint`), so an
    architecture is judged with training settings that suit it; stage 2 refines around the
    winner (its training included) and stage 3 re-tunes the training of the stage-2 winner with
    BO steps only, its GP over the joint space warm-started with the stage-1 trials. The total
    budget is the paper's, but half of stage 3's (``(training_prior_points + training_steps) //
    2``) moves to stage 1 as BO steps: with the defaults 15 Sobol points and 30 BO steps in
    stage 1, 15 BO steps in stage 3.
``"revisit"``
    The paper's stages, then stage 4: a second architecture BO with the stage-3 winner's tuned
    training and fine-tuning choices, warm-started from the stage-1 observations (their losses
    shifted so that the stage-1 best equals the stage-3 winner's loss). Stage 1 gives up
    ``ceil(steps / 2)`` BO steps to stage 4, so the budget is the paper's.
``"train-first"``
    Stage 0: BO over the training hyperparameters on the centre architecture, then stage 1 with
    the stage-0 winner's training instead of the defaults (the defaults when stage 0 had no
    success), stage 2, stage 3. Stage 0 takes half of stage 3's budget (none when that is 0:
    then the stages are the paper's).

Every strategy proposes only complete configurations, and its final ranking is the stage-3 (and
stage-4) trials plus the stage-2 winner. The Sobol prior points of ``"paper"`` are the unscrambled
sequence (the same for every seed, so its golden proposals stay fixed); every other strategy
scrambles them from the search seed, so two seeds start from different points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from lightning_dnc.search.stages import bo
from lightning_dnc.search.stages.bo_stage import BayesianStage, CompleterFactory, architecture_completer, training_completer
from lightning_dnc.search.stages.grid_stage import GridStage
from lightning_dnc.search.core.settings import SearchSettings
from lightning_dnc.search.fidelity import rungs
from lightning_dnc.search.fidelity.rung_stage import with_rungs
from lightning_dnc.search.stages.stage import SearchState, Stage
from lightning_dnc.space.config import complete_config
from lightning_dnc.space.joint import JointSpace
from lightning_dnc.vocabulary import STRATEGIES

FINAL_STAGES = (3, 4)
"""Stages whose successful trials enter the final ranking (with the stage-2 winner)."""


def build_stages(settings: SearchSettings, space: Any, training_space: Any) -> dict[int, Stage]:
    """The stages of ``settings.strategy`` x ``settings.fidelity``, keyed by stage number in the
    order they run: the strategy's stages (:func:`strategy_stages`), each wrapped in
    :class:`~lightning_dnc.search.fidelity.rung_stage.Rungs` when ``fidelity="asha"``."""
    stages = strategy_stages(settings, space, training_space)
    if settings.fidelity is None:
        return stages
    ladder = rungs.rung_epochs(settings.search_epochs, settings.min_epochs, settings.reduction_factor)  # type: ignore[arg-type]
    return with_rungs(stages, ladder, settings.reduction_factor, settings.rung_model)


def strategy_stages(settings: SearchSettings, space: Any, training_space: Any) -> dict[int, Stage]:
    """The stages of ``settings.strategy`` at fixed epochs, keyed by stage number in the order they run."""
    strategy = settings.strategy
    if strategy not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {list(STRATEGIES)}, got {strategy!r}.")
    s = settings
    train_priors, train_steps = s.training_prior_points, s.training_steps
    stages: dict[int, Stage] = {}
    first = (train_priors + train_steps) // 2 if strategy == "train-first" else 0
    if first:
        first_priors = math.ceil(first / 2)
        stages[0] = BayesianStage(0, training_space, first_priors, first - first_priors, s.explore, s.seed,
                                  centre_training_completer(settings, space))
        train_priors, train_steps = _remove(train_priors, train_steps, first)
    steps = s.steps
    if strategy == "joint":  # half of stage 3's budget moves to stage 1 as BO steps
        moved = (train_priors + train_steps) // 2
        steps += moved
        train_priors, train_steps = 0, train_priors + train_steps - moved
    if strategy == "revisit":
        revisit = math.ceil(steps / 2)
        steps -= revisit
    if strategy == "joint":
        architecture_space, factory = JointSpace(space, training_space), joint_completer(settings)
    elif first:
        architecture_space, factory = space, tuned_architecture_completer(settings)
    else:
        architecture_space, factory = space, architecture_completer(settings)
    architecture = BayesianStage(1, architecture_space, s.prior_points, steps, s.explore, s.seed, factory)
    architecture.needs_winner = not first  # train-first without a stage-0 success: the default training
    stages[1] = architecture
    if strategy == "joint":
        stages[3] = WarmTrainingStage(training_space, JointSpace(space, training_space), train_steps,
                                      s.explore, s.seed, training_completer(settings))
    else:
        stages[3] = BayesianStage(3, training_space, train_priors, train_steps, s.explore, s.seed,
                                  training_completer(settings))
    if strategy == "revisit":
        stages[4] = RevisitStage(space, revisit, s.explore, s.seed, revisit_completer(settings))
    if strategy != "paper":
        for number, stage in stages.items():
            if isinstance(stage, BayesianStage):
                stage.prior_seed = bo.prior_seed(s.seed, number)
                if s.model == "composite":
                    stage.use_composite(s.family, s.data_shape)
    stages[2] = GridStage(s.stage2_order or (), _first_prior(architecture, factory))
    for number in FINAL_STAGES:
        if number in stages:
            stages[number].final = True
    return dict(sorted(stages.items()))


def _first_prior(stage: BayesianStage, factory: CompleterFactory) -> dict[str, Any] | None:
    """The stage's first Sobol prior configuration completed without a trial handed on (what the
    grid estimates its size from before it starts), or ``None`` without prior points."""
    if stage.prior_points < 1:
        return None
    configs = bo.prior_configs(stage.space, 1, factory(None, None), stage.prior_seed)  # type: ignore[arg-type]
    return configs[0] if configs else None


def _remove(priors: int, steps: int, count: int) -> tuple[int, int]:
    """Take ``count`` trials from a (priors, steps) budget, BO steps first."""
    from_steps = min(steps, count)
    return max(priors - (count - from_steps), 0), steps - from_steps


# ---------------------------------------------------------------------- completers
def joint_completer(settings: SearchSettings) -> CompleterFactory:
    """Stage 1 of ``"joint"``: a skeleton + training sample + the stage-2 defaults."""
    epochs = {"epochs": settings.search_epochs}

    def factory(state: SearchState, handed_on: int | None) -> bo.Completer:
        return lambda sample: complete_config({**sample, **epochs}, family=settings.family)

    return factory


def centre_training_completer(settings: SearchSettings, space: Any) -> CompleterFactory:
    """Stage 0 of ``"train-first"``: the centre of the architecture space + a training sample."""
    epochs = {"epochs": settings.search_epochs}

    def factory(state: SearchState, handed_on: int | None) -> bo.Completer:
        centre = space.sample(1, method="sobol")[0]
        return lambda sample: complete_config({**centre, **sample, **epochs}, family=settings.family)

    return factory


def tuned_architecture_completer(settings: SearchSettings) -> CompleterFactory:
    """Stage 1 of ``"train-first"``: a skeleton sample + the stage-0 winner's training."""
    epochs = {"epochs": settings.search_epochs}

    def factory(state: SearchState, handed_on: int | None) -> bo.Completer:
        if handed_on is None:  # stage 0 had no success
            return architecture_completer(settings)(state, None)
        winner = state.trials[handed_on].config
        training = {key: winner[key] for key in ("lr", "weight_decay", "batch_size")}
        return lambda sample: complete_config({**sample, **training, **epochs}, family=settings.family)

    return factory


def revisit_completer(settings: SearchSettings) -> CompleterFactory:
    """Stage 4 of ``"revisit"``: a skeleton sample + the stage-3 winner's training and activation
    (and its per-layer fine-tuning flags where they are the same for every layer)."""

    def factory(state: SearchState, handed_on: int | None) -> bo.Completer:
        winner = state.trials[handed_on].config  # type: ignore[index]
        return lambda sample: complete_config(carry_choices(winner, sample), family=settings.family)

    return factory


_UNIFORM_LISTS = {"mlp": ("dropout_probs_mlp",), "cnn": ("apply_bns", "apply_dropouts", "strides")}


def carry_choices(winner: dict[str, Any], sample: dict[str, Any]) -> dict[str, Any]:
    """``sample``'s skeleton with the winner's training, activation and uniform per-layer choices."""
    out = {**sample, "act": winner["act"], "epochs": winner["epochs"]}
    out.update({key: winner[key] for key in ("lr", "weight_decay", "batch_size")})
    family = winner["family"]
    length = len(sample["hidden_mlp"]) if family == "mlp" else len(sample["out_channels"])
    for key in _UNIFORM_LISTS[family]:
        values = winner.get(key) or []
        if values and len(set(values)) == 1:
            out[key] = [values[0]] * length
    return out


# ---------------------------------------------------------------------- stage 4
class RevisitStage(BayesianStage):
    """Stage 4 of ``"revisit"``: architecture BO whose GP also knows the stage-1 trials.

    A stage-1 trial trained with the default training; its loss enters this stage's GP shifted by
    (stage-3 winner's loss - stage-1 best loss), the improvement the tuned training brought to the
    stage-1 winner's line, so the GP's scale matches this stage's trials.
    """

    def __init__(self, space: Any, budget: int, explore: int, seed: int, completer: CompleterFactory) -> None:
        super().__init__(4, space, 0, budget, explore, seed, completer)
        self._handed_on: int | None = None

    def start(self, state: SearchState, handed_on: int | None) -> None:
        super().start(state, handed_on)
        self._handed_on = handed_on

    def _gp_data(self, state: SearchState) -> tuple[list[tuple[int, dict[str, Any], float]], list[dict[str, Any]]]:
        observed, pending = super()._gp_data(state)
        first = [(t.trial_id, t.config, loss) for t in state.trials if t.stage == 1 and t.is_candidate
                 and (loss := state.loss_of(t)) is not None]
        incumbent = state.loss_of(self._handed_on) if self._handed_on is not None else None
        if not first or incumbent is None:
            return observed, pending
        shift = incumbent - min(loss for _, _, loss in first)
        return [(i, config, loss + shift) for i, config, loss in first] + observed, pending


class WarmTrainingStage(BayesianStage):
    """Stage 3 of ``"joint"``: BO of the training settings of the handed-on architecture, whose GP
    is over architecture and training together and holds the stage-1 trials too (no prior points:
    the GP already knows where good training settings lie for similar architectures).
    """

    def __init__(self, training_space: Any, joint_space: JointSpace, budget: int, explore: int, seed: int,
                 completer: CompleterFactory) -> None:
        super().__init__(3, training_space, 0, budget, explore, seed, completer)
        self._gp = bo.StageGP(joint_space)
        self._architecture_keys = joint_space.parts[0].keys
        self._fixed: dict[str, Any] = {}

    def start(self, state: SearchState, handed_on: int | None) -> None:
        super().start(state, handed_on)
        config = state.trials[handed_on].config  # type: ignore[index]
        self._fixed = {key: config[key] for key in self._architecture_keys}

    def _pick(self, candidates: Sequence[dict[str, Any]], observed: list[tuple[int, dict[str, Any], float]],
              pending: list[dict[str, Any]]) -> dict[str, Any]:
        pick = self._gp.pick(bo.WithFixedPart(self._fixed, self._gp.space.parts[0], candidates), observed, pending)
        return {key: pick[key] for key in self.space.keys}

    def _gp_data(self, state: SearchState) -> tuple[list[tuple[int, dict[str, Any], float]], list[dict[str, Any]]]:
        observed, pending = super()._gp_data(state)
        first = [(t.trial_id, t.config, loss) for t in state.trials if t.stage == 1 and t.is_candidate
                 and (loss := state.loss_of(t)) is not None]
        return first + observed, pending


__all__ = ["FINAL_STAGES", "RevisitStage", "WarmTrainingStage", "build_stages", "carry_choices", "strategy_stages"]
