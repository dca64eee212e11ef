"""Where candidates run: in this process (default) or on Ray workers."""

from lightning_dnc.executors.base import EvaluateFn, Executor
from lightning_dnc.executors.factory import EXECUTOR_NAMES, make_executor
from lightning_dnc.executors.inprocess import InProcessExecutor
from lightning_dnc.executors.ray_executor import RAY_AVAILABLE, RayExecutor

__all__ = ["EXECUTOR_NAMES", "RAY_AVAILABLE", "EvaluateFn", "Executor", "InProcessExecutor", "RayExecutor",
           "make_executor"]
