"""``Rungs(stage)``: asynchronous successive halving around any stage (``fidelity="asha"``).

The wrapper owns the rungs; the stage inside it owns what to try. Whenever a worker asks:

1. a promotion, if the ASHA rule allows one (:func:`~lightning_dnc.search.fidelity.rungs.next_promotion`,
   highest rung first, within the candidate's *bracket*: the candidates proposed in the same grid
   group, or all of a BO stage's); when the inner stage has nothing more for the bracket and no
   candidate reached the top rung, its best is promoted anyway
   (:func:`~lightning_dnc.search.fidelity.rungs.forced_promotion`);
2. otherwise the inner stage proposes, and that candidate starts at the lowest rung.

A stage that decides on final results (the grid, whose group's options are all known when the group
starts) halves each bracket in synchronous waves instead
(:func:`~lightning_dnc.search.fidelity.rungs.synchronous_promotion`): with every option known there
is nothing to gain from promoting early, and the best ``1/eta`` of a complete rung is exact. (It is
also what searches with a fidelity did before the wrapper, so their journals resume.)

The inner stage reads the search through a :class:`CandidateView`: one trial per candidate, whose
evaluation and loss are the candidate's point under ``rung_model``
(:func:`~lightning_dnc.search.fidelity.rungs.candidate_points`); its promotions are further runs
that :meth:`~lightning_dnc.search.stages.stage.Stage.own_trials` leaves out. Winners and rankings
are judged on final (top-rung) results only, through the ``"top"`` view.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning_dnc.search.core.trial import Proposal, Trial
from lightning_dnc.search.fidelity import rungs as rr
from lightning_dnc.search.stages.stage import SearchState, Stage

FINAL_VIEW = "top"
"""The view of settled, top-rung results (what winners, rankings and the grid are judged on)."""


class CandidateView:
    """The search as a stage inside :class:`Rungs` reads it (a :class:`~lightning_dnc.search.stages.stage.SearchState`).

    Every trial id keeps its slot; a candidate's first run carries the candidate's point, its
    promotions stay as they are (and are not candidates).
    """

    def __init__(self, state: SearchState, points: dict[int, tuple[Any, float | None]]) -> None:
        self.settings = state.settings
        self._state = state
        trials = list(state.trials)
        for candidate, (evaluation, _) in points.items():
            trials[candidate] = trials[candidate].with_evaluation(evaluation)
        self._trials = tuple(trials)
        self._losses = {candidate: loss for candidate, (_, loss) in points.items()}

    @property
    def trials(self) -> tuple[Trial, ...]:
        """Every trial by id, each candidate's first run carrying its point."""
        return self._trials

    def is_known(self, config: dict[str, Any]) -> bool:
        """As the search's."""
        return self._state.is_known(config)

    def known_keys(self) -> set[str]:
        """As the search's."""
        return self._state.known_keys()

    def loss_of(self, trial: Trial | int) -> float | None:
        """A candidate's point loss; any other trial's own loss."""
        trial_id = trial if isinstance(trial, int) else trial.trial_id
        if trial_id in self._losses:
            return self._losses[trial_id]
        return self._state.loss_of(trial_id)


class Rungs(Stage):
    """Any stage with asynchronous successive halving over its candidates (see the module notes).

    Parameters
    ----------
    inner : Stage
        The stage that proposes candidates (its ``number``, ``final`` and ``needs_winner`` are
        the wrapper's).
    ladder : sequence of int
        Epochs of every rung, the last the search's epochs (:func:`~lightning_dnc.search.fidelity.rungs.rung_epochs`).
    eta : int
        Reduction factor.
    rung_model : {"highest", "shifted", "top"}
        The point the inner stage sees per candidate (:data:`~lightning_dnc.search.fidelity.rungs.RUNG_MODELS`).
    """

    def __init__(self, inner: Stage, ladder: Sequence[int], eta: int, rung_model: str) -> None:
        self.inner = inner
        self.number = inner.number
        self.needs_winner = inner.needs_winner
        self.final = inner.final
        self.ladder = tuple(ladder)
        self.eta = eta
        self.rung_model = rung_model
        self._sees = FINAL_VIEW if inner.waits_for_final else rung_model
        self._synchronous = inner.waits_for_final

    @property
    def top(self) -> int:
        """Index of the top rung."""
        return len(self.ladder) - 1

    @property
    def current_group(self) -> str | None:  # noqa: D102
        return self.inner.current_group

    # ------------------------------------------------------------------ the stage's life
    def start(self, state: SearchState, handed_on: int | None) -> None:  # noqa: D102
        self.inner.start(self.view(state, self._sees), handed_on)

    def advance(self, state: SearchState) -> bool:  # noqa: D102
        return self.inner.advance(self.view(state, self._sees))

    def propose(self, state: SearchState, trial_id: int) -> Proposal | None:  # noqa: D102
        for runs in reversed(self._brackets(state)):
            promote = self._due(state, runs)
            if promote is not None:
                return self._promote(promote, trial_id)
        proposal = self.inner.propose(self.view(state, self._sees), trial_id)
        if proposal is None:
            return None
        return Proposal(trial_id, self.number, proposal.config, proposal.group, rr.first_run(trial_id, self.ladder))

    def registered(self, proposal: Proposal) -> None:  # noqa: D102
        if proposal.rung is None or proposal.rung.rung == 0:
            self.inner.registered(proposal)

    def complete(self, state: SearchState) -> bool:  # noqa: D102
        brackets = self._brackets(state)
        if any(t.evaluation is None for runs in brackets for t in runs):
            return False
        if any(self._due(state, runs) is not None for runs in brackets):
            return False
        return self.inner.complete(self.view(state, self._sees))

    def winner(self, state: SearchState) -> int | None:  # noqa: D102
        return self._top_run(state, self.inner.winner(self.view(state, FINAL_VIEW)))

    def planned(self, state: SearchState, started: bool, finished: bool) -> int:  # noqa: D102
        if finished:
            return len(self._runs(state))
        candidates = self.inner.planned(state, started, finished)
        return candidates + sum(max(1, candidates // self.eta**k) for k in range(1, len(self.ladder)) if candidates)

    def proposals_left(self, state: SearchState) -> int:  # noqa: D102
        return self.inner.proposals_left(state)

    # ------------------------------------------------------------------ what the engine reads
    def summary(self, state: SearchState) -> dict[str, Any]:
        """The inner stage's summary (a trial under a ``*_trial`` key named by its top-rung run) plus
        ``"rungs"`` (:func:`~lightning_dnc.search.fidelity.rungs.rung_summary`)."""
        inner = self._name_top_runs(state, self.inner.summary(self.view(state, FINAL_VIEW)))
        return {**inner, "rungs": rr.rung_summary(self.ladder, self.eta, self.rung_model, state.trials)}

    def released(self, state: SearchState, done: bool) -> set[int]:
        """Checkpoints of this stage's runs that no promotion will continue from."""
        out: set[int] = set()
        for runs in self._brackets(state):
            live = not done and runs[0].group == self.inner.current_group
            out |= rr.released_checkpoints(runs, self.top, self.eta, state.loss_of, self._left(state, runs), not live)
        return out

    def ranked(self, state: SearchState) -> list[int]:
        """The inner stage's ranked candidates, each as its top-rung run."""
        return [self._top_run(state, i) for i in self.inner.ranked(self.view(state, FINAL_VIEW))]  # type: ignore[misc]

    # ------------------------------------------------------------------ views
    def view(self, state: SearchState, model: str) -> CandidateView:
        """The search with one point per candidate under ``model`` (see the module notes)."""
        final: set[int] = set()
        if model == FINAL_VIEW:
            own = {t.rung.candidate for t in self._runs(state)}  # type: ignore[union-attr]
            final = {t.trial_id for t in state.trials if t.rung is not None and t.is_candidate} - own
            for runs in self._brackets(state):
                final |= rr.settled(runs, self.top, self.eta, state.loss_of, self._left(state, runs), self._synchronous)
        points = rr.candidate_points(state.trials, self.top, model, state.loss_of, final)
        return CandidateView(state, points)

    def _left(self, state: SearchState, runs: list[Trial]) -> int:
        """Candidates the inner stage will still add to the bracket of ``runs`` (only the running one grows)."""
        return self.inner.proposals_left(state) if runs[0].group == self.inner.current_group else 0

    def _due(self, state: SearchState, runs: list[Trial]) -> Trial | None:
        return rr.promotion_due(runs, self.top, self.eta, state.loss_of, self._left(state, runs), self._synchronous)

    def _runs(self, state: SearchState) -> list[Trial]:
        return [t for t in state.trials if t.stage == self.number]

    def _brackets(self, state: SearchState) -> list[list[Trial]]:
        """The stage's runs by bracket (grid group), in the order the brackets began."""
        out: dict[str | None, list[Trial]] = {}
        for trial in self._runs(state):
            out.setdefault(trial.group, []).append(trial)
        return list(out.values())

    def _promote(self, trial: Trial, trial_id: int) -> Proposal:
        return Proposal(trial_id, self.number, dict(trial.config), trial.group, rr.promotion(trial, self.ladder))

    def _name_top_runs(self, state: SearchState, value: Any, key: str = "") -> Any:
        """``value`` with every trial id under a ``*_trial`` key named by its candidate's top-rung run."""
        if isinstance(value, dict):
            return {k: self._name_top_runs(state, v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self._name_top_runs(state, v, key) for v in value]
        if key.endswith("_trial") and isinstance(value, int) and not isinstance(value, bool):
            return self._top_run(state, value)
        return value

    def _top_run(self, state: SearchState, trial_id: int | None) -> int | None:
        """A candidate of this stage as its top-rung run (when it has one); any other trial as it is."""
        if trial_id is None:
            return None
        trial = state.trials[trial_id]
        if trial.stage != self.number or trial.rung is None:
            return trial_id
        last = rr.by_candidate(self._runs(state))[trial.rung.candidate][-1]
        return last.trial_id if last.rung.rung == self.top else trial_id  # type: ignore[union-attr]


def with_rungs(stages: dict[int, Stage], ladder: Sequence[int], eta: int, rung_model: str) -> dict[int, Stage]:
    """Every stage of ``stages`` wrapped in :class:`Rungs`."""
    return {number: Rungs(stage, ladder, eta, rung_model) for number, stage in stages.items()}


__all__ = ["CandidateView", "FINAL_VIEW", "Rungs", "with_rungs"]
