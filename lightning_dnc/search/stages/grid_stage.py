"""Stage 2 (SPEC §5): grid fine-tuning, one group at a time, greedy adoption on strict improvement.

A group's options (:func:`~lightning_dnc.search.stages.grid.group_options` of the incumbent, minus
configurations already proposed) are fixed when the group starts; the next group starts only when
every option of the current one is told. A group's best option becomes the incumbent only when its
loss is strictly lower; a group with nothing new to try is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning_dnc.search.stages import grid
from lightning_dnc.search.stages.stage import SearchState, Stage, best_of
from lightning_dnc.search.core.trial import Proposal


class GridStage(Stage):
    """The stage-2 grid groups in ``order`` around the incumbent.

    Parameters
    ----------
    order : sequence of str
        Group names (``ac``, ``ds``, ``bn``, ``do``, ``sc``); empty skips the stage.
    fallback_base : dict, optional
        The configuration to estimate the stage's size from before it starts (the first stage-1
        prior point), or ``None``.
    """

    number = 2
    waits_for_final = True

    def __init__(self, order: Sequence[str], fallback_base: dict[str, Any] | None) -> None:
        self.order = tuple(order)
        self._fallback_base = fallback_base
        self._incumbent: int | None = None
        self._position = 0
        self._options: list[dict[str, Any]] | None = None
        self._group_ids: list[int] = []
        self.decisions: list[dict[str, Any]] = []

    @property
    def current_group(self) -> str | None:
        """The running group, ``None`` once every group is decided."""
        return self.order[self._position] if self._position < len(self.order) else None

    def start(self, state: SearchState, handed_on: int | None) -> None:
        self._incumbent = handed_on

    def advance(self, state: SearchState) -> bool:
        group = self.current_group
        if group is None:
            return False
        if self._options is None:
            options = grid.group_options(group, state.trials[self._incumbent].config)  # type: ignore[index]
            self._options = [o for o in options if not state.is_known(o)]
            self._group_ids = []
            if not self._options:
                self.decisions.append({"group": group, "options": 0, "best_trial": None, "adopted": False})
                self._next_group()
            return True
        if len(self._group_ids) < len(self._options) or any(
            state.trials[i].evaluation is None for i in self._group_ids
        ):
            return False
        best = best_of(state, self._group_ids)
        best_loss = None if best is None else state.loss_of(best)
        incumbent_loss = state.loss_of(self._incumbent)  # type: ignore[arg-type]
        adopted = best_loss is not None and incumbent_loss is not None and best_loss < incumbent_loss
        self.decisions.append(
            {"group": group, "options": len(self._group_ids), "best_trial": best, "adopted": bool(adopted)}
        )
        if adopted:
            self._incumbent = best
        self._next_group()
        return True

    def propose(self, state: SearchState, trial_id: int) -> Proposal | None:
        if self._options is None or len(self._group_ids) >= len(self._options):
            return None
        return Proposal(trial_id, 2, dict(self._options[len(self._group_ids)]), self.current_group)

    def registered(self, proposal: Proposal) -> None:
        self._group_ids.append(proposal.trial_id)

    def complete(self, state: SearchState) -> bool:
        return self.current_group is None

    def winner(self, state: SearchState) -> int | None:
        return self._incumbent

    def planned(self, state: SearchState, started: bool, finished: bool) -> int:
        done = len(self.own_trials(state))
        if finished:
            return done
        start = self._position
        if self._options is not None:
            done += len(self._options) - len(self._group_ids)
            start += 1
        base = state.trials[self._incumbent].config if self._incumbent is not None else self._fallback_base
        if base is None:
            return done
        return done + sum(len(grid.group_options(g, base)) for g in self.order[start:])

    def proposals_left(self, state: SearchState) -> int:
        """Options of the running group not proposed yet (the next group waits for its decision)."""
        return 0 if self._options is None else len(self._options) - len(self._group_ids)

    def summary(self, state: SearchState) -> dict[str, Any]:
        return {"stage2_decisions": list(self.decisions)}

    def ranked(self, state: SearchState) -> list[int]:
        """The stage's winner (the incumbent after the last group) enters the final ranking."""
        return [] if self._incumbent is None else [self._incumbent]

    def _next_group(self) -> None:
        self._position += 1
        self._options = None
        self._group_ids = []

