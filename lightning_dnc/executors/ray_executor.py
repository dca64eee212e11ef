"""``RayExecutor``: train candidates in parallel, one Ray task per candidate.

The driver keeps the search state and the journal; each Ray task runs the *same*
:class:`~lightning_dnc.lightning.candidate.evaluator.CandidateEvaluator` on one configuration. The evaluator
(with its datamodule and data) is shipped once with ``ray.put`` and cached in each worker process.

Policies
--------
- Asynchronous: :meth:`RayExecutor.collect` returns as soon as one task finishes (plus any others
  already done), so the driver refills a free worker at once.
- Worker death (process exit such as ``os._exit``, ``sys.exit``, a killed worker, node loss):
  the trial is resubmitted once (a dead worker process is never reused, so it runs on another
  worker), then recorded as a failed :class:`Evaluation` with ``failure_reason="exception"`` and an
  error saying the worker died. An error raised by the evaluator itself is not retried.
- Comparable ``t_tr``: every task reserves ``resources_per_trial`` (default one CPU) and the worker
  limits torch to that many intra-op threads (``torch.set_num_threads``), so K candidates sharing
  a machine do not oversubscribe its cores; with ``{"gpu": 1}`` Ray gives each task its own GPU.
  Worker id, node, pid, thread count and GPU ids are recorded in ``Evaluation.extra["worker"]``.
- Cluster: with ``ray_address=None`` and no Ray session running, a local, single-node instance is
  started with ``num_cpus = max_concurrent * cpu per trial`` and no dashboard, and shut down by
  :meth:`RayExecutor.shutdown`. A session the caller started (or ``ray_address="auto"``, an
  existing cluster) is joined and left running.
"""

from __future__ import annotations

import contextlib

import copy
import dataclasses
import math
import os
import socket
from collections.abc import Mapping
from typing import Any

from lightning_utilities.core.imports import RequirementCache

from lightning_dnc.executors.base import Executor, evaluate_trial
from lightning_dnc.search.core.records import STATUS_FAILED, Evaluation

RAY_AVAILABLE = RequirementCache("ray")
RAY_INSTALL_HINT = 'pip install "lightning-dnc[ray]"'
MAX_WORKER_DEATHS = 2  # first death -> one retry on another worker; second -> failed record

_CACHED_EVALUATOR: dict[str, Any] = {}


def require_ray() -> Any:
    """Import and return ``ray``, or raise ``ModuleNotFoundError`` ending with the install line."""
    if not RAY_AVAILABLE:
        raise ModuleNotFoundError(
            "`executor='ray'` needs the optional dependency Ray, which is not installed "
            f"({RAY_AVAILABLE.message}). Install it with:\n    {RAY_INSTALL_HINT}"
        )
    import ray

    return ray


def check_resources(resources_per_trial: Mapping[str, float] | None) -> dict[str, float]:
    """Validate Ray resources of one candidate; returns them with ``cpu`` (default 1) and ``gpu`` (default 0).

    Raises
    ------
    ValueError
        For a non-mapping, a non-string key or a negative/non-finite amount, naming the key.
    """
    if resources_per_trial is None:
        resources_per_trial = {}
    if not isinstance(resources_per_trial, Mapping):
        raise ValueError(
            f"`resources_per_trial` must be a dict such as {{'cpu': 1, 'gpu': 1}}, got {resources_per_trial!r}."
        )
    out: dict[str, float] = {"cpu": 1.0, "gpu": 0.0}
    for key, value in resources_per_trial.items():
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
        if not isinstance(key, str) or not ok:
            raise ValueError(
                f"`resources_per_trial[{key!r}]` must be a finite number >= 0 (Ray resource amount), got {value!r}."
            )
        out[key.lower() if key.lower() in ("cpu", "gpu") else key] = float(value)
    if out["cpu"] == 0 and out["gpu"] == 0:
        raise ValueError(
            f"`resources_per_trial` must reserve some CPU or GPU for a candidate, got {dict(resources_per_trial)!r}."
        )
    return out


class RayExecutor(Executor):
    """Evaluate up to ``max_concurrent`` candidates at once as Ray tasks.

    Parameters
    ----------
    evaluator : CandidateEvaluator
        Anything with ``evaluate(config) -> Evaluation`` that pickles (cloudpickle); shipped once.
        A ``datamodule`` attribute is shipped without its ``trainer`` link.
    max_concurrent : int, default 1
        Tasks in flight at once (K workers).
    resources_per_trial : dict, optional
        Ray resources of one task, e.g. ``{"cpu": 1}`` (default) or ``{"cpu": 2, "gpu": 1}``; other
        keys are custom Ray resources. ``cpu`` also sets the worker's torch thread count.
    ray_address : str, optional
        Join this cluster (``"auto"``: the one ``ray start`` launched on this machine). None: use the
        running Ray session, else start a local one (no dashboard).

    Raises
    ------
    ModuleNotFoundError
        When Ray is not installed (the message ends with ``pip install "lightning-dnc[ray]"``).
    """

    def __init__(self, evaluator: Any, max_concurrent: int = 1, resources_per_trial: Mapping[str, float] | None = None,
                 ray_address: str | None = None) -> None:
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise ValueError(f"`max_concurrent` must be an integer >= 1, got {max_concurrent!r}.")
        if ray_address is not None and (not isinstance(ray_address, str) or not ray_address.strip()):
            raise ValueError(f"`ray_address` must be None or a Ray address such as 'auto', got {ray_address!r}.")
        if not callable(getattr(evaluator, "evaluate", None)):
            raise ValueError(f"`evaluator` must have an `evaluate(config)` method, got {type(evaluator).__name__}.")
        self._ray = require_ray()
        self.max_concurrent = max_concurrent
        self.resources = check_resources(resources_per_trial)
        self.ray_address = ray_address
        self._owns_ray = False
        self._running: dict[Any, tuple[int, dict[str, Any], int, list[str]]] = {}
        self._closed = False
        self._connect()
        try:
            self._evaluator_ref = self._ray.put(_shippable(evaluator))
            self._remote = self._ray.remote(_train_candidate).options(**self._task_options())
        except BaseException:
            self.shutdown()
            raise

    # -- Executor -----------------------------------------------------------------------------
    @property
    def num_running(self) -> int:
        return len(self._running)

    def submit(self, trial_id: int, config: dict[str, Any], run: dict[str, Any] | None = None) -> None:
        if self._closed:
            raise RuntimeError("RayExecutor was shut down; create a new one to submit trials.")
        if self.num_free == 0:
            running = sorted(t for t, *_ in self._running.values())
            raise RuntimeError(
                f"RayExecutor runs at most `max_concurrent={self.max_concurrent}` candidates; trials {running} are "
                f"running. Collect one before submitting trial {trial_id}."
            )
        self._launch(trial_id, dict(config), attempt=1, deaths=[], run=run)

    def collect(self) -> list[tuple[int, Evaluation]]:
        finished: list[tuple[int, Evaluation]] = []
        while self._running and not finished:
            refs = list(self._running)
            self._ray.wait(refs, num_returns=1)  # blocks until the first one finishes
            ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)  # and any others already done
            for ref in ready:
                done = self._settle(ref)
                if done is not None:
                    finished.append(done)
        return sorted(finished, key=lambda item: item[0])

    def shutdown(self) -> None:
        """Cancel running tasks and stop the Ray instance this executor started (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for ref in list(self._running):
            with contextlib.suppress(Exception):  # a task that already finished cannot be cancelled
                self._ray.cancel(ref, force=True)
        self._running.clear()
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()

    # -- pieces -------------------------------------------------------------------------------
    def _connect(self) -> None:
        ray = self._ray
        if ray.is_initialized():
            return
        if self.ray_address is not None:
            ray.init(address=self.ray_address, log_to_driver=False, configure_logging=False)
        else:
            resources = {k: v for k, v in self.resources.items() if k not in ("cpu", "gpu")}
            kwargs: dict[str, Any] = dict(
                num_cpus=max(1, math.ceil(self.max_concurrent * self.resources["cpu"])),
                include_dashboard=False, log_to_driver=False, configure_logging=False,
            )
            if self.resources["gpu"] == 0:
                kwargs["num_gpus"] = 0
            if resources:
                kwargs["resources"] = {k: self.max_concurrent * v for k, v in resources.items()}
            ray.init(**kwargs)
        self._owns_ray = True

    def _task_options(self) -> dict[str, Any]:
        custom = {k: v for k, v in self.resources.items() if k not in ("cpu", "gpu")}
        options: dict[str, Any] = dict(num_cpus=self.resources["cpu"], num_gpus=self.resources["gpu"], max_retries=0,
                                       retry_exceptions=False)
        if custom:
            options["resources"] = custom
        return options

    def _launch(self, trial_id: int, config: dict[str, Any], attempt: int, deaths: list[str],
                run: dict[str, Any] | None = None) -> None:
        threads = max(1, int(self.resources["cpu"]))
        ref = self._remote.remote([self._evaluator_ref], config, threads, trial_id, run)
        self._running[ref] = (trial_id, config, attempt, deaths, run)

    def _settle(self, ref: Any) -> tuple[int, Evaluation] | None:
        """The record of a finished task, or None when it was resubmitted after a worker death."""
        ray = self._ray
        trial_id, config, attempt, deaths, run = self._running.pop(ref)
        try:
            evaluation = ray.get(ref)
        except ray.exceptions.OutOfMemoryError as err:
            return trial_id, _failed(config, "oom", _short(err), attempt, deaths)
        except BaseException as err:  # noqa: BLE001 - classified below; driver interrupts re-raise
            if isinstance(err, (KeyboardInterrupt, SystemExit)):
                self._running[ref] = (trial_id, config, attempt, deaths, run)
                raise
            if not _is_worker_death(ray, err):
                return trial_id, _failed(config, "exception", _short(err), attempt, deaths)
            deaths = [*deaths, _short(err)]
            if len(deaths) < MAX_WORKER_DEATHS:
                self._launch(trial_id, config, attempt + 1, deaths, run)
                return None
            error = (f"The Ray worker died while training this candidate, {len(deaths)} times (retried once on "
                     f"another worker): {deaths[-1]}")
            return trial_id, _failed(config, "exception", error, attempt, deaths)
        worker = dict(evaluation.extra.get("worker", {}))
        worker.update(attempts=attempt, worker_deaths=deaths)
        return trial_id, dataclasses.replace(evaluation, extra={**evaluation.extra, "worker": worker})


def _train_candidate(evaluator_box: list[Any], config: dict[str, Any], threads: int,
                     trial_id: int | None = None, run: dict[str, Any] | None = None) -> Evaluation:
    """Body of the Ray task: limit threads, fetch the (cached) evaluator, train, tag the record."""
    import sys

    import ray

    ref = evaluator_box[0]
    key = ref.hex()
    if key not in _CACHED_EVALUATOR:
        _CACHED_EVALUATOR.clear()  # one search's evaluator per worker process
        _CACHED_EVALUATOR[key] = ray.get(ref)
    torch = sys.modules.get("torch")  # imported by unpickling a CandidateEvaluator; not forced on others
    if torch is not None:
        torch.set_num_threads(threads)
    evaluation = evaluate_trial(_CACHED_EVALUATOR[key].evaluate, config, trial_id, run)  # type: ignore[arg-type]
    context = ray.get_runtime_context()
    worker = {
        "executor": "ray",
        "worker_id": context.get_worker_id(),
        "node_id": context.get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
    }
    return dataclasses.replace(evaluation, extra={**evaluation.extra, "worker": worker})


def _shippable(evaluator: Any) -> Any:
    """A shallow copy of ``evaluator`` whose datamodule no longer links the host ``Trainer``."""
    datamodule = getattr(evaluator, "datamodule", None)
    if datamodule is None or getattr(datamodule, "trainer", None) is None:
        return evaluator
    shipped = copy.copy(evaluator)
    shipped.datamodule = copy.copy(datamodule)
    shipped.datamodule.trainer = None
    return shipped


def _is_worker_death(ray: Any, err: BaseException) -> bool:
    exc = ray.exceptions
    deaths = (exc.WorkerCrashedError, exc.NodeDiedError, exc.ObjectLostError, exc.LocalRayletDiedError,
              exc.TaskCancelledError)
    if isinstance(err, deaths):
        return True
    if isinstance(err, exc.RayTaskError):
        cause = getattr(err, "cause", None)
        return isinstance(cause, (SystemExit, KeyboardInterrupt, *deaths))
    return False


def _failed(config: dict[str, Any], reason: str, error: str, attempts: int, deaths: list[str]) -> Evaluation:
    from lightning_dnc.space.config import complete_config

    try:
        full = complete_config(config)
    except ValueError:
        full = dict(config)
    return Evaluation(config=full, status=STATUS_FAILED, failure_reason=reason, error=error,
                      extra={"worker": {"executor": "ray", "attempts": attempts, "worker_deaths": deaths}})


def _short(err: BaseException, limit: int = 2000) -> str:
    text = f"{type(err).__name__}: {err}".strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = ["RAY_AVAILABLE", "RAY_INSTALL_HINT", "RayExecutor", "check_resources", "require_ray"]
