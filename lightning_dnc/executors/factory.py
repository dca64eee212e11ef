"""``make_executor``: the executor a search asked for, by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning_dnc.executors.base import Executor
from lightning_dnc.executors.inprocess import InProcessExecutor
from lightning_dnc.vocabulary import EXECUTORS



def make_executor(kind: str | Executor | None, evaluator: Any, max_concurrent: int = 1,
                  resources_per_trial: Mapping[str, float] | None = None,
                  ray_address: str | None = None) -> Executor:
    """Build the executor for ``kind``.

    Parameters
    ----------
    kind : {"inprocess", "ray"}, Executor or None
        None and ``"inprocess"`` train in this process, one candidate at a time; an
        :class:`Executor` instance is used as it is.
    evaluator : CandidateEvaluator
        Trains one configuration (``evaluator.evaluate(config) -> Evaluation``).
    max_concurrent : int, default 1
        Candidates in flight at once; must be 1 in process.
    resources_per_trial : dict, optional
        Ray resources of one candidate (default ``{"cpu": 1}``), see
        :class:`~lightning_dnc.executors.ray_executor.RayExecutor`.
    ray_address : str, optional
        Existing Ray cluster to join; a local one is started otherwise.

    Raises
    ------
    ValueError
        For an unknown ``kind``, or Ray settings with the in-process executor.
    ModuleNotFoundError
        For ``kind="ray"`` without Ray installed (the message gives the ``pip install`` line).
    """
    if isinstance(kind, Executor):
        return kind
    if kind is None or kind == "inprocess":
        if max_concurrent != 1:
            raise ValueError(
                f"`max_concurrent={max_concurrent}` needs `executor='ray'`; the in-process executor trains one "
                "candidate at a time."
            )
        if resources_per_trial is not None or ray_address is not None:
            raise ValueError(
                "`resources_per_trial` and `ray_address` are Ray settings; pass `executor='ray'` to use them "
                f"(got executor={kind!r})."
            )
        return InProcessExecutor(evaluator.evaluate)
    if kind == "ray":
        from lightning_dnc.executors.ray_executor import RayExecutor

        return RayExecutor(evaluator, max_concurrent=max_concurrent, resources_per_trial=resources_per_trial,
                           ray_address=ray_address)
    raise ValueError(f"`executor` must be one of {list(EXECUTORS)} or an Executor, got {kind!r}.")
