"""Budget limits of one search invocation: at most ``max_trials`` trials, at most ``max_time`` seconds.

Why here and not in :class:`~lightning_dnc.search.core.settings.SearchSettings`: neither limit changes
*which* configuration trial ``i`` is; they only cut the same deterministic sequence of proposals
short. So they are run options, enforced by the driver loop, and a resume may change them:

- ``max_trials`` counts every trial of the search, the journal's included, so an interrupted and
  resumed search with the same limit stops at the same trial as an uninterrupted one, and a larger
  limit continues the sequence exactly.
- ``max_time`` counts the wall time of this invocation's search loop (a resume starts a fresh
  clock). Once it has passed no new trial starts, and a trial still training is stopped at its
  next batch (:mod:`lightning_dnc.lightning.candidate.candidate_watch`): it is journaled as interrupted by
  the budget, never ranked, and a resume trains it again.

When a limit ends the search, the current stage ends early, the remaining stages are skipped and
the result ranks every successful trial; ``SearchResult.meta["budget_ended"]`` says which limit
ended it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SearchBudget:
    """The limits and the clock of one invocation.

    Parameters
    ----------
    max_trials : int, optional
        Trials the whole search may have proposed.
    max_time : float, optional
        Seconds this invocation may start new trials for.
    """

    max_trials: int | None = None
    max_time: float | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        """Seconds since the invocation's search loop started."""
        return time.monotonic() - self.started

    def remaining_trials(self, proposed: int) -> int | None:
        """How many more trials may be proposed (None: no limit)."""
        return None if self.max_trials is None else max(0, self.max_trials - proposed)

    def exhausted(self, proposed: int) -> str | None:
        """``"max_time"`` or ``"max_trials"`` once that limit allows no new trial, else None."""
        if self.max_time is not None and self.elapsed >= self.max_time:
            return "max_time"
        if self.max_trials is not None and proposed >= self.max_trials:
            return "max_trials"
        return None

    def capped(self, planned_total: int, proposed: int) -> int:
        """``planned_total`` cut to ``max_trials`` (never below the trials already proposed)."""
        if self.max_trials is None:
            return planned_total
        return max(proposed, min(planned_total, self.max_trials))

    def describe(self, reason: str, trials: int, stage: int) -> dict[str, Any]:
        """Plain facts for ``SearchResult.meta["budget_ended"]``."""
        limit = self.max_time if reason == "max_time" else self.max_trials
        return {"by": reason, "limit": limit, "trials": trials, "stage": stage,
                "elapsed_seconds": round(self.elapsed, 3)}


__all__ = ["SearchBudget"]
