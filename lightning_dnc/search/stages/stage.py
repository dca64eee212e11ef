"""The interface of a search stage, and what a stage may read of the search.

The engine (:class:`~lightning_dnc.search.core.engine.StagedSearch`) owns the trials, the journal
events and the order of the stages; a stage decides only what to propose next and when it is
done. A new way to search a stage (e.g. one that runs candidates at several fidelities) is a new
:class:`Stage`, not new branches in the engine.

Life of a stage
---------------
1. :meth:`Stage.start` once, with the trial the previous stage handed on (``None`` for the first).
2. Repeatedly, until :meth:`Stage.complete`: :meth:`Stage.advance` (move through internal steps
   that the told trials allow, e.g. the next grid group), then :meth:`Stage.propose` (the next
   proposal, or ``None`` while the stage waits for pending trials); the engine registers each
   proposal and calls :meth:`Stage.registered`.
3. :meth:`Stage.winner`: the trial the next stage starts from (``None`` ends the search).

What else the engine reads, each with a default: :attr:`Stage.current_group` (progress),
:meth:`Stage.released` (checkpoints no longer needed), :meth:`Stage.summary` (the result's
``meta``) and :meth:`Stage.ranked` (the trials the stage puts into the final ranking). A stage
gets what it depends on as values when it is built (:func:`~lightning_dnc.search.stages.strategies.build_stages`),
never by reaching into another stage.

Candidates and runs
-------------------
A stage counts *candidates*. In a fixed-epoch search every trial is one; under rungs
(:class:`~lightning_dnc.search.fidelity.rung_stage.Rungs`) a candidate's promotions are further
runs of the same candidate, which :meth:`Stage.own_trials` leaves out (:attr:`Trial.is_candidate`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, Protocol

from lightning_dnc.search.core.settings import SearchSettings
from lightning_dnc.search.core.trial import Proposal, Trial


class SearchState(Protocol):
    """What a stage reads of the search (read-only by convention)."""

    settings: SearchSettings

    @property
    def trials(self) -> tuple[Trial, ...]:
        """Every trial so far, by trial id."""

    def is_known(self, config: dict[str, Any]) -> bool:
        """True when ``config`` was proposed before (in any stage)."""

    def known_keys(self) -> set[str]:
        """The :func:`~lightning_dnc.search.core.trial.config_key` of every proposed config."""

    def loss_of(self, trial: Trial | int) -> float | None:
        """The loss of a trial (``None`` while pending, failed or unscorable)."""


class Stage(ABC):
    """One stage of the staged search.

    Attributes
    ----------
    number : int
        1, 2 or 3 (SPEC §5; 0 and 4 in some strategies); proposals and trials carry it.
    """

    number: int
    needs_winner: bool = True
    """False when the stage can start without a trial handed on (the previous stage had no success)."""
    final: bool = False
    """True when the stage's successful trials enter the final ranking (:meth:`ranked`)."""
    waits_for_final: bool = False
    """True when the stage decides on final results only (the grid's greedy adoption): under rungs it
    sees a candidate once its successive halving is settled, with its top-rung result."""

    @property
    def current_group(self) -> str | None:
        """The running group of a grid stage (for progress displays); ``None`` by default."""
        return None

    def start(self, state: SearchState, handed_on: int | None) -> None:  # noqa: B027 - optional hook
        """Begin, from the trial id the previous stage chose (``None`` for the first stage)."""

    def advance(self, state: SearchState) -> bool:
        """Make the internal moves the told trials allow; True when something moved."""
        return False

    @abstractmethod
    def propose(self, state: SearchState, trial_id: int) -> Proposal | None:
        """The next proposal (with ``trial_id``), or ``None`` while waiting or when all are proposed."""

    def registered(self, proposal: Proposal) -> None:  # noqa: B027 - optional hook
        """The engine recorded ``proposal`` (asked, or replayed from a journal)."""

    @abstractmethod
    def complete(self, state: SearchState) -> bool:
        """True when every trial of the stage was proposed and told."""

    @abstractmethod
    def winner(self, state: SearchState) -> int | None:
        """The trial the next stage starts from (called once, after :meth:`complete`)."""

    @abstractmethod
    def planned(self, state: SearchState, started: bool, finished: bool) -> int:
        """Trials this stage will have run (an estimate while it has not finished)."""

    def proposals_left(self, state: SearchState) -> int:
        """Candidates the stage will still propose before it waits for its trials or ends."""
        return max(0, self.planned(state, True, False) - len(self.own_trials(state)))

    def summary(self, state: SearchState) -> dict[str, Any]:
        """Plain facts for the result's ``meta`` (e.g. the grid decisions)."""
        return {}

    def released(self, state: SearchState, done: bool) -> set[int]:
        """Trials whose checkpoints are no longer needed (``done``: the stage has ended); none by default."""
        return set()

    def ranked(self, state: SearchState) -> list[int]:
        """Trials this stage puts into the final ranking: its own when :attr:`final`, else none."""
        return [t.trial_id for t in self.own_trials(state)] if self.final else []

    # ------------------------------------------------------------------ shared helpers
    def own_trials(self, state: SearchState) -> list[Trial]:
        """The candidates of this stage (a candidate's promotions left out), by trial id."""
        return [t for t in state.trials if t.stage == self.number and t.is_candidate]


def best_of(state: SearchState, trial_ids: Iterable[int]) -> int | None:
    """The trial with the lowest loss among ``trial_ids`` (ties: lower id); ``None`` if none scored."""
    scored = [(loss, i) for i in trial_ids if (loss := state.loss_of(i)) is not None]
    return min(scored)[1] if scored else None


__all__ = ["SearchState", "Stage", "best_of"]
