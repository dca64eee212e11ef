"""``CandidateEvaluator``: train one candidate configuration and measure it (SPEC §1–§2).

Every evaluation trains in a fresh, short-lived ``lightning.Trainer`` (a logger only when ``logs``
is given, no checkpoints, no model summary, no sanity validation, progress bar only on request),
with the global RNG state of the caller left as it was, and returns an immutable
:class:`~lightning_dnc.search.core.records.Evaluation`. A candidate that raises, diverges (NaN/inf
loss) or runs out of memory yields a record with ``status="failed"``; ``KeyboardInterrupt`` and
``SystemExit`` (Lightning turns Ctrl+C during ``fit`` into ``SystemExit``) propagate after clean-up.
"""

from __future__ import annotations

import gc
import inspect
import math
import signal
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping
from lightning.pytorch.utilities.seed import isolate_rng

from lightning_dnc.data.base import DatasetInfo, check_datamodule
from lightning_dnc.data.targets import target_statistics
from lightning_dnc.lightning.candidate.candidate_logs import CandidateLogs, trial_version
from lightning_dnc.lightning.candidate.candidate_threads import CandidateThreads
from lightning_dnc.lightning.candidate.candidate_watch import CandidateStopped, CandidateWatch
from lightning_dnc.lightning.candidate.child_trainer import cheap_cuda_checks, make_child_trainer, quiet_lightning
from lightning_dnc.lightning.candidate.cost_probe import CostProbe
from lightning_dnc.lightning.candidate.rung_runs import (RungState, carried_costs, checkpoint_in, checkpoint_out, split_run,
                                               with_carried_costs)
from lightning_dnc.lightning.candidate.timing import EpochTimer
from lightning_dnc.lightning.candidate.user_metrics import user_unit_metrics
from lightning_dnc.measure import CandidateCosts, StepPlan
from lightning_dnc.measure.steps import COST_THREADS
from lightning_dnc.models.layers import count_trainable
from lightning_dnc.models.module import CandidateModule, NonFiniteMetricError
from lightning_dnc.search.core.records import STATUS_FAILED, STATUS_OK, Evaluation
from lightning_dnc.search.core.settings import DEFAULT_SEARCH_EPOCHS
from lightning_dnc.space.config import complete_config
from lightning_dnc.validation import check_choice, check_threads
from lightning_dnc.vocabulary import T_TR_MODES

_NOT_BAREBONES = {"logger", "enable_checkpointing", "enable_progress_bar", "log_every_n_steps", "enable_model_summary",
                  "num_sanity_val_steps", "fast_dev_run", "detect_anomaly", "profiler"}
"""``Trainer`` arguments a user may pass that Lightning's barebones mode refuses."""


class _MetricRecorder(Callback):
    """Per-epoch ``val_acc``/``val_loss``/``train_loss`` from ``callback_metrics`` (modules without ``history``)."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "val_acc": []}

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        if trainer.sanity_checking:
            return
        for key in ("val_loss", "val_acc"):
            if key in trainer.callback_metrics:
                self.history[key].append(float(trainer.callback_metrics[key]))
                if not math.isfinite(self.history[key][-1]):
                    trainer.should_stop = True  # diverged: the epochs before it are what counts

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        if "train_loss" in trainer.callback_metrics:
            self.history["train_loss"].append(float(trainer.callback_metrics["train_loss"]))


class CandidateEvaluator:
    """Train candidates on one datamodule and report what SPEC §1 measures.

    Parameters
    ----------
    datamodule : LightningDataModule
        Must expose a settable ``batch_size`` and ``input_shape``, ``num_outputs``, ``task``
        (see :func:`lightning_dnc.data.check_datamodule`), unless given below.
    epochs : int, default :data:`~lightning_dnc.search.core.settings.DEFAULT_SEARCH_EPOCHS`
        Epochs of a config without an ``epochs`` key (the search puts its ``search_epochs`` in
        every proposed config, so this applies only to direct calls).
    accelerator, devices, precision
        Passed to every child ``lightning.Trainer``.
    enable_progress_bar : bool
        Show Lightning's progress bar while a candidate trains.
    patience : int, optional
        Stop a candidate after this many epochs without improvement of ``val_acc``
        (classification) or ``val_loss`` (regression). None: train all epochs (SPEC §2).
    seed : int
        Seed of every candidate's weight init and dropout (same seed, same candidate, same run).
    input_shape, num_outputs, task : optional
        Override what the datamodule exposes.
    module_class : type, optional
        The LightningModule class to train; it receives ``config`` and whichever of
        ``input_shape``, ``num_outputs``, ``task``, ``epochs``, ``target_stats`` and ``input_stats``
        (the datamodule's, see :class:`~lightning_dnc.models.CandidateModule`) its ``__init__`` accepts.
        Default :class:`~lightning_dnc.models.CandidateModule`.
    trainer_kwargs : mapping, optional
        Extra ``lightning.Trainer`` arguments (e.g. ``strategy``); they override the defaults.
    t_tr_mode : {"step", "epoch"}, default "step"
        Which measurement the record's ``t_tr`` holds: the training step timed in a tight loop
        at the start of training (``t_tr_step``; the epoch loop's when it could not be timed) or
        the epoch loop's mean over epochs 2..N (``t_tr_epoch``, SPEC §1). Both are recorded.
    step_plan : StepPlan, optional
        How the training step is timed (warm-up, repeats, time budget, statistic).
    measure_costs : bool, default True
        Measure the costs at training start (see Notes). Without it only ``t_tr_epoch`` and
        ``n_params`` are recorded and ``t_tr`` is the epoch loop's whatever ``t_tr_mode``.
    cost_threads : int or None, default :data:`~lightning_dnc.measure.steps.COST_THREADS` (1)
        Torch threads while the training step and the latency are timed (the
        ``torch.utils.benchmark`` convention); ``None``: the training's count. One thread keeps
        the timings of small networks free of thread contention with other processes.

    Notes
    -----
    Every candidate is measured by :class:`~lightning_dnc.lightning.candidate.cost_probe.CostProbe` when
    its training starts (step-mode ``t_tr``, FLOPs, latency, memory); the probe restores every
    state it changed, so the candidate's metrics are those of a run without it. Its warm-up steps
    also warm the process up before the first timed epoch.
    logs : CandidateLogs, optional
        Where each candidate's curves are logged (one logger version per trial); none by default.
    target_stats : mapping, optional
        Regression: mean/std of the training targets, given to modules whose ``__init__`` takes
        ``target_stats`` (targets are standardised while training); read from the datamodule
        when omitted.
    checkpoint_dir : path, optional
        Multi-fidelity searches: where rung checkpoints are written and read
        (:mod:`lightning_dnc.lightning.candidate.rung_runs`).
    threads : "auto", int or None, default None
        Torch intra-op threads each candidate trains with (CPU): ``"auto"`` races every count up to
        ``max_threads`` on the candidate's first training batches and trains on with the fastest
        (:mod:`lightning_dnc.lightning.candidate.candidate_threads`); an int fixes it; ``None`` leaves torch's
        count. Recorded per trial in ``extra["threads"]``; the process's count is restored after
        each candidate.
    max_threads : int, optional
        Most threads ``"auto"`` tries: this process's torch thread count by default (a Ray
        worker's share of the cores).
    deadline : float, optional
        ``time.time()`` at which a running candidate is stopped (the search's ``max_time``); it is
        returned as ``failure_reason="interrupted"`` with ``extra["stopped_by"] = "max_time"``.
    epoch_lines : bool, default False
        Print a line per finished epoch of a candidate that has trained for more than 10 s.
    """

    def __init__(self, datamodule: Any, epochs: int = DEFAULT_SEARCH_EPOCHS, accelerator: str = "auto", devices: Any = 1,
                 precision: Any = None, enable_progress_bar: bool = False, patience: int | None = None,
                 seed: int = 0, input_shape: Sequence[int] | None = None, num_outputs: int | None = None,
                 task: str | None = None, module_class: type[pl.LightningModule] | None = None,
                 trainer_kwargs: Mapping[str, Any] | None = None, t_tr_mode: str = "step",
                 step_plan: StepPlan | None = None, cost_threads: int | None = COST_THREADS,
                 logs: CandidateLogs | None = None, target_stats: Mapping[str, Any] | None = None,
                 measure_costs: bool = True, checkpoint_dir: Any = None, threads: str | int | None = None,
                 max_threads: int | None = None, deadline: float | None = None, epoch_lines: bool = False) -> None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"`epochs` must be an int >= 1, got {epochs!r}.")
        if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
            raise ValueError(f"`patience` must be None or an int >= 1, got {patience!r}.")
        self.datamodule = datamodule
        self.info: DatasetInfo = check_datamodule(datamodule, input_shape, num_outputs, task)
        self.epochs = epochs
        self.accelerator = accelerator
        self.devices = devices
        self.precision = precision
        self.enable_progress_bar = bool(enable_progress_bar)
        self.patience = patience
        self.seed = int(seed)
        self.module_class = module_class or CandidateModule
        self.trainer_kwargs = dict(trainer_kwargs or {})
        self.t_tr_mode = check_choice("t_tr_mode", t_tr_mode, T_TR_MODES)
        self.step_plan = step_plan
        self.cost_threads = cost_threads
        self.logs = logs
        self.target_stats = target_stats if target_stats is not None else target_statistics(datamodule, self.info.task)
        self.measure_costs = bool(measure_costs)
        self.checkpoint_dir = checkpoint_dir
        self.threads = check_threads(threads)
        self.max_threads = max_threads
        self.deadline = deadline
        self.epoch_lines = bool(epoch_lines)
        self._last_threads: int | None = None  # the previous candidate's choice: the next one races it first

    # -- public -----------------------------------------------------------------------------
    def evaluate(self, config: Mapping[str, Any], trial_id: int | None = None,
                 run: Mapping[str, Any] | None = None) -> Evaluation:
        """Train ``config`` once and return its measurements.

        Parameters
        ----------
        config : mapping
            A (partial) configuration; completed with SPEC defaults. Invalid configs raise
            ``ValueError`` before anything trains.
        trial_id : int, optional
            Names the candidate's logger version (``trial_007``) when :attr:`logs` is set.
        run : mapping, optional
            A multi-fidelity run (:attr:`~lightning_dnc.search.core.trial.Proposal.run`): the rung's
            epochs and the checkpoints to load and save; ``None`` trains ``epochs`` from scratch.

        Returns
        -------
        Evaluation
            ``status="ok"`` with the metrics, or ``status="failed"`` with ``failure_reason`` in
            ``("exception", "nan", "oom")`` and the error text (partial curves kept).
        """
        started = time.perf_counter()
        config, run = split_run(config, run)
        full = complete_config(config)
        epochs = int(full.get("epochs", self.epochs))
        resume = checkpoint_in(run, self.checkpoint_dir)
        save = checkpoint_out(run, self.checkpoint_dir)
        rung_state = RungState() if run is not None else None
        self.datamodule.batch_size = int(full["batch_size"])
        timer = EpochTimer()
        measure = self.measure_costs and resume is None
        probe = CostProbe(epochs, self.step_plan, self.cost_threads)
        threads = (CandidateThreads(self.threads, self.max_threads, prefer=self._last_threads)
                   if self.threads is not None else None)
        watch = CandidateWatch(self.deadline, self.epoch_lines, trial_id, epochs)
        threads_before = torch.get_num_threads()
        recorder = _MetricRecorder()
        module: pl.LightningModule | None = None
        trainer: pl.Trainer | None = None
        status, reason, error = STATUS_OK, None, None
        sigint = _current_sigint_handler()
        try:
            with isolate_rng(), quiet_lightning(), cheap_cuda_checks():
                torch.manual_seed(self.seed)
                module = self._make_module(full, epochs)
                callbacks: list[Callback] = [*([probe] if measure else []), *([threads] if threads else []), timer,
                                             watch, *self._early_stopping(),
                                             *([rung_state] if rung_state is not None else [])]
                keeps_history = isinstance(getattr(module, "history", None), Mapping)
                if not keeps_history:
                    callbacks.append(recorder)  # modules without `history` report through logged metrics
                trainer = self._make_trainer(epochs if run is None else int(run["epochs"]), callbacks, trial_id,
                                             barebones=keeps_history and self.patience is None)
                trainer.fit(module, datamodule=self.datamodule, ckpt_path=resume)
                if rung_state is not None and resume is None:
                    rung_state.costs = carried_costs(self._cost_fields(timer, probe.costs))
                if save is not None:
                    trainer.save_checkpoint(save)
        except (KeyboardInterrupt, SystemExit):
            raise
        except CandidateStopped as err:
            status, reason, error = STATUS_FAILED, "interrupted", str(err)
        except torch.cuda.OutOfMemoryError as err:
            status, reason, error = STATUS_FAILED, "oom", _error_text(err)
        except NonFiniteMetricError as err:
            status, reason, error = STATUS_FAILED, "nan", _error_text(err)
        except Exception as err:  # noqa: BLE001 - any candidate failure becomes a failed record
            oom = isinstance(err, RuntimeError) and "out of memory" in str(err).lower()
            status, reason, error = STATUS_FAILED, "oom" if oom else "exception", _error_text(err)
        finally:
            _restore_sigint_handler(sigint)
            if torch.get_num_threads() != threads_before:
                torch.set_num_threads(threads_before)
            fields = self._measurements(module, trainer, timer, recorder, probe.costs)
            fields["extra"].update(user_unit_metrics(module, recorder.history))
            if threads is not None and threads.record is not None:
                fields["extra"]["threads"] = threads.record
                self._last_threads = threads.record.get("threads")
            if reason == "interrupted":
                fields["extra"]["stopped_by"] = "max_time"
            if rung_state is not None:
                if resume is not None:
                    fields = with_carried_costs(fields, rung_state.costs, self.t_tr_mode)
                fields["extra"]["rung"] = {**run, "continued": resume is not None,  # type: ignore[dict-item]
                                           "saved_bytes": save.stat().st_size if save and save.is_file() else None}
            _break_references(module, trainer, self.datamodule)
            del module, trainer
            _release_memory()
        diverged = False
        if reason == "nan" or (status == STATUS_OK and not _all_finite(fields)):
            error = error or "A validation metric is NaN or infinite."
            kept = _before_divergence(fields, self.info.task)
            if kept is None:  # NaN in the first epoch: nothing to score
                status, reason = STATUS_FAILED, "nan"
            else:  # diverged later: scored with what it reached before (the original method's rule)
                fields, diverged = kept, True
                fields["extra"] = {**fields["extra"], "diverged": {"epoch": len(fields["val_loss_curve"]) + 1,
                                                                   "error": error}}
                status, reason, error = STATUS_OK, None, None
        return Evaluation(
            config=full, status=status, task=self.info.task, failure_reason=reason, error=error,
            wall_time=time.perf_counter() - started, diverged=diverged, **fields,
        )

    # -- pieces -----------------------------------------------------------------------------
    def _make_module(self, config: dict[str, Any], epochs: int) -> pl.LightningModule:
        offered = {"input_shape": self.info.input_shape, "num_outputs": self.info.num_outputs,
                   "task": self.info.task, "epochs": epochs, "target_stats": self.target_stats,
                   "input_stats": getattr(self.datamodule, "input_stats", None)}
        if all(getattr(self.module_class, name, None) is getattr(CandidateModule, name)
               for name in ("training_step", "configure_optimizers")):
            # CandidateModule's own steps skip the automatic loop's per-step hooks; a subclass that
            # changes the step or the optimizers keeps Lightning's loop.
            offered["own_steps"] = True
        params = inspect.signature(self.module_class.__init__).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        kwargs = {k: v for k, v in offered.items() if takes_any or k in params}
        return self.module_class(config=config, **kwargs)

    def _early_stopping(self) -> list[Callback]:
        if self.patience is None:
            return []
        monitor, mode = ("val_acc", "max") if self.info.task == "classification" else ("val_loss", "min")
        return [EarlyStopping(monitor=monitor, mode=mode, patience=self.patience, check_finite=False)]

    def _make_trainer(self, epochs: int, callbacks: list[Callback], trial_id: int | None = None,
                      barebones: bool = False) -> pl.Trainer:
        """A child trainer logging to the candidate's logger when there are ``logs``; else ``barebones``
        (Lightning's raw-speed mode, no logger, no ``self.log``) when nothing reads logged metrics: the
        module keeps its own ``history``, no early stopping, no progress bar."""
        hardware = {"accelerator": self.accelerator, "devices": self.devices, "precision": self.precision}
        kwargs = dict(self.trainer_kwargs)
        if self.logs is not None:
            kwargs.setdefault("logger", self.logs.logger(trial_version(trial_id)))
        elif barebones and not self.enable_progress_bar and not set(kwargs) & _NOT_BAREBONES:
            kwargs.setdefault("barebones", True)
        return make_child_trainer(epochs, hardware, callbacks, enable_progress_bar=self.enable_progress_bar, **kwargs)

    def _measurements(self, module: pl.LightningModule | None, trainer: pl.Trainer | None, timer: EpochTimer,
                      recorder: _MetricRecorder, costs: CandidateCosts | None) -> dict[str, Any]:
        history = getattr(module, "history", None) if module is not None else None
        if not isinstance(history, Mapping) or not history.get("val_loss"):
            history = recorder.history
        val_acc = tuple(float(v) for v in history.get("val_acc", ()))
        val_loss = tuple(float(v) for v in history.get("val_loss", ()))
        train_loss = tuple(float(v) for v in history.get("train_loss", ()))
        n_params = None
        if module is not None:
            try:
                n_params = int(getattr(module, "num_params"))
            except (AttributeError, ValueError, TypeError):
                n_params = count_trainable(module)
        return {
            "best_val_acc": _best(val_acc, max) if self.info.task == "classification" else None,
            "best_val_loss": _best(val_loss, min),
            "val_acc_curve": val_acc,
            "val_loss_curve": val_loss,
            "train_loss_curve": train_loss,
            "n_params": n_params,
            "epochs_run": len(timer.epoch_times),
            "device": _device_name(trainer),
            **self._cost_fields(timer, costs),
            "extra": {"epoch_times": list(timer.epoch_times),
                      "world_size": int(trainer.world_size) if trainer is not None else 1,
                      "costs": None if costs is None else costs.to_dict()},
        }

    def _cost_fields(self, timer: EpochTimer, costs: CandidateCosts | None) -> dict[str, Any]:
        costs = costs or CandidateCosts()
        t_tr_epoch = timer.t_tr
        t_tr = costs.t_tr_step if self.t_tr_mode == "step" and costs.t_tr_step is not None else t_tr_epoch
        spread = {"t_tr_epoch": timer.spread, "t_tr_step": costs.t_tr_step_spread}
        return {
            "t_tr": t_tr, "t_tr_epoch": t_tr_epoch, "t_tr_step": costs.t_tr_step, "flops": costs.flops_infer,
            "flops_train": costs.flops_train, "latency": costs.latency, "memory": costs.memory,
            "spread": {k: float(v) for k, v in spread.items() if v is not None},
        }


def _best(values: Sequence[float], pick: Any) -> float | None:
    if not values:
        return None
    if any(not math.isfinite(v) for v in values):
        return math.nan
    return float(pick(values))


def _before_divergence(fields: Mapping[str, Any], task: str) -> dict[str, Any] | None:
    """``fields`` cut to the epochs before the first non-finite loss or metric; None if there are none."""
    curves = ("val_acc_curve", "val_loss_curve", "train_loss_curve")
    epochs = len(fields["val_loss_curve"])
    for epoch in range(epochs):
        if not all(math.isfinite(fields[c][epoch]) for c in curves if epoch < len(fields[c])):
            epochs = epoch
            break
    if epochs == 0:
        return None
    kept = {**fields, **{c: tuple(fields[c][:epochs]) for c in curves}}
    kept["best_val_loss"] = _best(kept["val_loss_curve"], min)
    kept["best_val_acc"] = _best(kept["val_acc_curve"], max) if task == "classification" else None
    return kept


def _all_finite(fields: Mapping[str, Any]) -> bool:
    values = [*fields["val_acc_curve"], *fields["val_loss_curve"], *fields["train_loss_curve"]]
    return all(math.isfinite(v) for v in values) and bool(fields["val_loss_curve"])


def _device_name(trainer: pl.Trainer | None) -> str:
    if trainer is None:
        return "cpu"
    try:
        device = trainer.strategy.root_device
    except Exception:  # noqa: BLE001 - a trainer that failed to set up has no device yet
        return "cpu"
    name = str(device)
    if device.type == "cuda":
        name = f"{name} ({torch.cuda.get_device_name(device)})"
    if trainer.world_size > 1:
        name = f"{name} x{trainer.world_size}"
    return name


def _error_text(err: BaseException) -> str:
    lines = traceback.format_exception_only(type(err), err)
    return "".join(lines).strip()


def _current_sigint_handler() -> Any:
    return signal.getsignal(signal.SIGINT)


def _restore_sigint_handler(handler: Any) -> None:
    """Lightning ignores SIGINT after a Ctrl+C in ``fit``; give the caller its handler back."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not handler:
        signal.signal(signal.SIGINT, handler)


def _break_references(module: pl.LightningModule | None, trainer: pl.Trainer | None, datamodule: Any) -> None:
    """Unlink trainer, module, optimizers and datamodule so reference counting frees them.

    Lightning keeps cycles (module <-> trainer <-> strategy) and the datamodule keeps the last
    trainer; without this the network and the optimizer state would live until the next full
    garbage collection, which costs ~0.2 s with torch loaded.
    """
    if trainer is not None:
        strategy = trainer.strategy
        strategy._lightning_module = None  # noqa: SLF001 - Lightning has no public "detach"
        strategy._model = None  # noqa: SLF001
        strategy.optimizers = []
        strategy.lr_scheduler_configs = []
    if module is not None:
        module._trainer = None  # noqa: SLF001
    if getattr(datamodule, "trainer", None) is trainer and trainer is not None:
        datamodule.trainer = None


def _release_memory() -> None:
    gc.collect(1)
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
