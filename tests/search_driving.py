"""Drive a search to its end the way an executor with ``batch`` workers would (shared by the rung tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def drive(search: Any, evaluate: Callable[[Any], Any], batch: int = 1, stop_after: int | None = None,
          on_tell: Callable[[Any, Any], None] | None = None) -> Any:
    """Keep ``batch`` proposals in flight (the pending ones first), tell ``evaluate(proposal)`` for the
    oldest one at a time, and stop when the search is finished or after ``stop_after`` tells."""
    inflight = list(search.pending)
    told = 0
    while not search.finished or inflight:
        if not search.finished and len(inflight) < batch:
            inflight += search.ask(batch - len(inflight))
        if not inflight:
            break
        proposal = inflight.pop(0)
        search.tell(proposal.trial_id, evaluate(proposal))
        told += 1
        if on_tell is not None:
            on_tell(search, proposal)
        if stop_after is not None and told >= stop_after:
            break
    return search
