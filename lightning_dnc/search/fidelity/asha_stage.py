"""The stages of a multi-fidelity search (``fidelity="asha"``, :mod:`lightning_dnc.search.fidelity.rungs`).

* :class:`AshaBayesStage` (stages 1 and 3): the BO stage's candidates, each started at the lowest
  rung and promoted by asynchronous successive halving; promotions go before new candidates.
* :class:`HalvingGridStage` (stage 2): each grid group's options by synchronous successive
  halving, the best ``max(1, floor(n / eta))`` of a rung going on; the group's best at the top
  rung is compared with the incumbent's top-rung result (strict improvement, SPEC §5).

Only top-rung trials win a stage or enter the final ranking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lightning_dnc.search.fidelity import rungs as rr
from lightning_dnc.search.stages.bo import StageGP
from lightning_dnc.search.stages.bo_stage import BayesianStage, CompleterFactory, architecture_completer, training_completer
from lightning_dnc.search.stages.grid_stage import GridStage
from lightning_dnc.search.core.objective import pessimistic_loss
from lightning_dnc.search.core.settings import SearchSettings
from lightning_dnc.search.stages.stage import SearchState, Stage, best_of
from lightning_dnc.search.core.trial import Proposal, RungRun, Trial


def fidelity_stages(settings: SearchSettings, space: Any, training_space: Any) -> dict[int, Stage]:
    """Stages 1-3 of a multi-fidelity search with ``settings``."""
    ladder = rr.rung_epochs(settings.search_epochs, settings.min_epochs, settings.reduction_factor)  # type: ignore[arg-type]
    eta, model = settings.reduction_factor, settings.rung_model
    architecture = AshaBayesStage(1, space, settings.prior_points, settings.steps, settings.explore, settings.seed,
                                  architecture_completer(settings), ladder, eta, model)
    return {
        1: architecture,
        2: HalvingGridStage(settings.stage2_order or (),
                            lambda: architecture.priors[0] if architecture.priors else None, ladder, eta),
        3: AshaBayesStage(3, training_space, settings.training_prior_points, settings.training_steps,
                          settings.explore, settings.seed, training_completer(settings), ladder, eta, model),
    }


def at_top(trial: Trial) -> bool:
    """True for a trial that trained the full ``search_epochs`` (every trial of a fixed-epoch search)."""
    return trial.rung is None or trial.rung.epochs == trial.config.get("epochs")


def rung_summary(settings: SearchSettings, trials: Sequence[Trial]) -> dict[str, Any]:
    """Plain facts for the result's ``meta["rungs"]``: the rungs, how many candidates reached each,
    and the epochs trained against a fixed-epoch search of the same candidates."""
    ladder = rr.rung_epochs(settings.search_epochs, settings.min_epochs, settings.reduction_factor)  # type: ignore[arg-type]
    told = [t for t in trials if t.rung is not None and t.evaluation is not None]
    reached = [sum(1 for t in told if t.rung.rung == k) for k in range(len(ladder))]  # type: ignore[union-attr]
    candidates = len({t.rung.candidate for t in told})  # type: ignore[union-attr]
    trained = sum(t.rung.epochs - t.rung.from_epoch for t in told)  # type: ignore[union-attr]
    return {"epochs": list(ladder), "reduction_factor": settings.reduction_factor, "rung_model": settings.rung_model,
            "candidates_per_rung": reached, "candidates": candidates, "epochs_trained": trained,
            "fixed_epoch_equivalent": candidates * settings.search_epochs,
            "promotions": sum(1 for t in trials if t.rung is not None and t.rung.rung > 0)}


def _first_run(trial_id: int, ladder: Sequence[int]) -> RungRun:
    return RungRun(0, ladder[0], 0, None, trial_id, save=len(ladder) > 1)


def _promotion(trial: Trial, ladder: Sequence[int]) -> RungRun:
    run = trial.rung
    assert run is not None
    rung = run.rung + 1
    return RungRun(rung, ladder[rung], run.epochs, trial.trial_id, run.candidate, save=rung < len(ladder) - 1)


class AshaBayesStage(BayesianStage):
    """Stage 1 or 3 with asynchronous successive halving over its candidates.

    Parameters
    ----------
    number, space, prior_points, steps, explore, seed, completer
        As :class:`~lightning_dnc.search.stages.bo_stage.BayesianStage`; ``prior_points + steps`` counts
        candidates (each started at the lowest rung).
    ladder : sequence of int
        Epochs of every rung (:func:`~lightning_dnc.search.fidelity.rungs.rung_epochs`).
    eta : int
        Reduction factor.
    model : {"highest", "top", "bohb"}
        What the GP learns from rung results (:mod:`lightning_dnc.search.fidelity.rungs`).
    """

    def __init__(self, number: int, space: Any, prior_points: int, steps: int, explore: int, seed: int,
                 completer: CompleterFactory, ladder: Sequence[int], eta: int, model: str) -> None:
        super().__init__(number, space, prior_points, steps, explore, seed, completer)
        self.ladder = tuple(ladder)
        self.eta = eta
        self.model = model
        self._gps: dict[int, StageGP] = {}

    @property
    def top(self) -> int:
        """Index of the top rung."""
        return len(self.ladder) - 1

    def own_trials(self, state: SearchState) -> list[Trial]:
        """The stage's candidates: their first runs (the budget counts these)."""
        return [t for t in state.trials if t.stage == self.number and t.rung is not None and t.rung.rung == 0]

    def stage_trials(self, state: SearchState) -> list[Trial]:
        """Every run of the stage (all rungs)."""
        return [t for t in state.trials if t.stage == self.number]

    def propose(self, state: SearchState, trial_id: int) -> Proposal | None:  # noqa: D102
        runs = self.stage_trials(state)
        promote = rr.next_promotion(runs, self.top, self.eta, state.loss_of)
        if promote is None and self._started_all(state) and all(t.evaluation is not None for t in runs):
            promote = rr.forced_promotion(runs, self.top, state.loss_of)
        if promote is not None:
            return Proposal(trial_id, self.number, dict(promote.config), None, _promotion(promote, self.ladder))
        proposal = None if self._started_all(state) else super().propose(state, trial_id)
        if proposal is None:
            return None
        return Proposal(trial_id, self.number, proposal.config, None, _first_run(trial_id, self.ladder))

    def complete(self, state: SearchState) -> bool:
        runs = self.stage_trials(state)
        if not self._started_all(state) or any(t.evaluation is None for t in runs):
            return False
        return (rr.next_promotion(runs, self.top, self.eta, state.loss_of) is None
                and rr.forced_promotion(runs, self.top, state.loss_of) is None)

    def winner(self, state: SearchState) -> int | None:
        return best_of(state, (t.trial_id for t in self.stage_trials(state) if t.rung.rung == self.top))  # type: ignore[union-attr]

    def planned(self, state: SearchState, started: bool, finished: bool) -> int:
        if finished:
            return len(self.stage_trials(state))
        candidates = len(self.own_trials(state)) if self.exhausted else self.budget
        return candidates + sum(candidates // self.eta**k for k in range(1, len(self.ladder)))

    def released(self, state: SearchState, done: bool) -> set[int]:
        """Trials of this stage whose checkpoints are no longer needed."""
        left = 0 if self.exhausted else max(0, self.budget - len(self.own_trials(state)))
        return rr.released_checkpoints(self.stage_trials(state), self.top, self.eta, state.loss_of, left, done)

    def _started_all(self, state: SearchState) -> bool:
        return self.exhausted or len(self.own_trials(state)) >= self.budget

    def _gp_data(self, state: SearchState) -> tuple[list[tuple[int, dict[str, Any], float]], list[dict[str, Any]]]:
        """Per :attr:`model`: one point per candidate, keyed by its first trial (see :mod:`~lightning_dnc.search.fidelity.rungs`).

        Also selects the GP of the rung used (``"bohb"``), which the pick that follows uses.
        """
        runs = self.stage_trials(state)
        ladder = rr.by_candidate(runs)
        rung = self._model_rung(runs, state)
        self._gp = self._gps.setdefault(-1 if rung is None else rung, StageGP(self.space))
        losses = [loss for t in runs if (loss := state.loss_of(t)) is not None]
        other = [loss for t in state.trials if t.stage != self.number and (loss := state.loss_of(t)) is not None]
        stand_in = pessimistic_loss(losses, other)
        observed, pending = [], []
        for candidate, chain in ladder.items():
            done = [t for t in chain if t.evaluation is not None and (rung is None or t.rung.rung == rung)]  # type: ignore[union-attr]
            if done:
                loss = state.loss_of(done[-1])
                observed.append((candidate, chain[0].config, stand_in if loss is None else loss))
            elif chain[-1].evaluation is None and len(chain) == 1:
                pending.append(chain[0].config)  # a new candidate in flight: the constant liar
        return observed, pending

    def _model_rung(self, runs: list[Trial], state: SearchState) -> int | None:
        """The rung whose results the GP learns (``None``: each candidate's highest)."""
        if self.model == "highest":
            return None
        if self.model == "top":
            return self.top
        counts = [len(rr.rung_results(runs, k, state.loss_of)) for k in range(len(self.ladder))]
        usable = [k for k, n in enumerate(counts) if n >= rr.BOHB_MIN_POINTS]
        return usable[-1] if usable else 0


class HalvingGridStage(GridStage):
    """Stage 2 with successive halving inside each group (see the module notes).

    Parameters
    ----------
    order, fallback_base
        As :class:`~lightning_dnc.search.stages.grid_stage.GridStage`.
    ladder : sequence of int
        Epochs of every rung.
    eta : int
        Reduction factor.
    """

    def __init__(self, order: Sequence[str], fallback_base: Callable[[], dict[str, Any] | None],
                 ladder: Sequence[int], eta: int) -> None:
        super().__init__(order, fallback_base)
        self.ladder = tuple(ladder)
        self.eta = eta
        self._queue: list[Proposal] = []  # promotions of the current group waiting to be handed out
        self._rung_ids: dict[int, list[int]] = {}

    def advance(self, state: SearchState) -> bool:
        group = self.current_group
        if group is None or self._options is None or len(self._group_ids) < len(self._options):
            return super().advance(state) if self._options is None else False
        if self._queue or any(state.trials[i].evaluation is None for ids in self._rung_ids.values() for i in ids):
            return False
        rung = max(self._rung_ids)
        ids = self._rung_ids[rung]
        if rung < len(self.ladder) - 1:
            ranked = sorted((loss, i) for i in ids if (loss := state.loss_of(i)) is not None)
            keep = [state.trials[i] for _, i in ranked[: max(1, len(ids) // self.eta)]]
            if keep:
                self._queue = [Proposal(-1, 2, dict(t.config), group, _promotion(t, self.ladder)) for t in keep]
                self._rung_ids[rung + 1] = []
                return True
        self._decide(state, group, ids, len(self._group_ids))
        return True

    def propose(self, state: SearchState, trial_id: int) -> Proposal | None:
        if self._queue:
            waiting = self._queue[0]
            return Proposal(trial_id, 2, waiting.config, waiting.group, waiting.rung)
        proposal = super().propose(state, trial_id)
        if proposal is None:
            return None
        return Proposal(trial_id, 2, proposal.config, proposal.group, _first_run(trial_id, self.ladder))

    def registered(self, proposal: Proposal) -> None:
        rung = proposal.rung.rung if proposal.rung is not None else 0
        if rung == 0:
            self._group_ids.append(proposal.trial_id)
        else:
            self._queue.pop(0)
        self._rung_ids.setdefault(rung, []).append(proposal.trial_id)

    def planned(self, state: SearchState, started: bool, finished: bool) -> int:
        options = super().planned(state, started, finished)
        if finished:
            return options
        return options + sum(max(1, options // self.eta**k) for k in range(1, len(self.ladder)))

    def released(self, state: SearchState, done: bool) -> set[int]:
        """Trials of this stage whose checkpoints are no longer needed (the next rung started from
        them and finished, or the rung was decided without them)."""
        runs = [t for t in state.trials if t.stage == 2]
        ladder = rr.by_candidate(runs)
        queued = {p.rung.resume for p in self._queue if p.rung is not None}
        out: set[int] = set()
        for trial in runs:
            if trial.rung is None or not trial.rung.save or trial.evaluation is None or trial.trial_id in queued:
                continue
            chain = ladder[trial.rung.candidate]
            later = chain[chain.index(trial) + 1:]
            current = trial.group == self.current_group and not done and trial.rung.rung + 1 not in self._rung_ids
            if (later and later[0].evaluation is not None) or (not later and not current):
                out.add(trial.trial_id)
        return out

    def _decide(self, state: SearchState, group: str, ids: list[int], options: int) -> None:
        top = [i for i in ids if state.trials[i].rung is None or state.trials[i].rung.rung == len(self.ladder) - 1]  # type: ignore[union-attr]
        best = best_of(state, top)
        best_loss = None if best is None else state.loss_of(best)
        incumbent_loss = state.loss_of(self._incumbent)  # type: ignore[arg-type]
        adopted = best_loss is not None and incumbent_loss is not None and best_loss < incumbent_loss
        self.decisions.append({"group": group, "options": options, "best_trial": best, "adopted": bool(adopted),
                               "runs": len(self.own_trials(state)) - sum(d.get("runs", 0) for d in self.decisions)})
        if adopted:
            self._incumbent = best
        self._next_group()
        self._rung_ids = {}


__all__ = ["AshaBayesStage", "HalvingGridStage", "at_top", "fidelity_stages", "rung_summary"]
