"""Where candidates run (in this process or on Ray workers), the run options, and the driver loop."""

from lightning_dnc.executors.base import EvaluateFn, Executor, evaluate_trial
from lightning_dnc.executors.budget import SearchBudget
from lightning_dnc.executors.driver import OomRetry, SearchAborted, drive
from lightning_dnc.executors.factory import make_executor
from lightning_dnc.executors.inprocess import InProcessExecutor
from lightning_dnc.executors.options import RunOptions
from lightning_dnc.executors.ray_executor import RAY_AVAILABLE, RayExecutor

__all__ = ["RAY_AVAILABLE", "EvaluateFn", "Executor", "InProcessExecutor", "OomRetry", "RayExecutor", "RunOptions",
           "SearchAborted", "SearchBudget", "drive", "evaluate_trial", "make_executor"]
