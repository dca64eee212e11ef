"""Immutable records that cross the boundary between training and search.

The Lightning evaluator produces an :class:`Evaluation` for one trained candidate; the search
engine is told it and never sees torch or lightning. Every field is plain data so a record
round-trips through JSON (the journal) unchanged.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

STATUS_OK = "ok"
STATUS_FAILED = "failed"
FAILURE_REASONS = ("exception", "nan", "oom", "timeout", "interrupted")
MEASURES = ("t_tr_epoch", "t_tr_step", "flops", "flops_train", "latency", "memory")
"""Cost fields recorded since lightning-dnc 0.2 (absent, i.e. None, in older journals)."""


@dataclass(frozen=True)
class Evaluation:
    """What training one candidate measured.

    Attributes
    ----------
    config : dict
        The complete configuration that was trained (``space.complete_config`` output).
    status : {"ok", "failed"}
        ``"failed"`` when training raised, diverged (NaN/inf) or ran out of memory.
    task : {"classification", "regression"}
    best_val_acc : float or None
        Maximum validation accuracy over epochs, a fraction in [0, 1] (classification).
    best_val_loss : float or None
        Minimum validation loss over epochs (MSE for regression, cross entropy otherwise).
    val_acc_curve, val_loss_curve, train_loss_curve : tuple of float
        One value per epoch run.
    t_tr : float or None
        Training seconds per epoch as the search measured them: ``t_tr_step`` in step mode (the
        epoch loop's when the step could not be timed), ``t_tr_epoch`` in epoch mode.
    n_params : int or None
        Trainable parameter count.
    t_tr_epoch : float or None
        SPEC §1: mean seconds of one training epoch of the loop over epochs 2..N (epoch 1 when
        N == 1), validation excluded.
    t_tr_step : float or None
        Step mode: the candidate's training step timed in a tight loop after a warm-up, times the
        steps per epoch (:mod:`lightning_dnc.measure.steps`).
    flops : float or None
        Inference FLOPs per sample (forward pass; a multiply-add counts two).
    flops_train : float or None
        Training FLOPs per epoch (forward and backward of every training sample).
    latency : float or None
        Inference seconds per sample at batch 1 (median of timed blocks).
    memory : float or None
        Peak training bytes (CUDA: measured; elsewhere an estimate, see
        :mod:`lightning_dnc.measure.memory`).
    spread : dict of str to float
        Standard deviations behind the measured values, seconds: ``t_tr_epoch`` (over epochs
        2..N), ``t_tr_step`` (over timed repeats), ``latency`` (over timed blocks).
    epochs_run : int
    wall_time : float
        Seconds for the whole evaluation (set-up, training, validation, teardown).
    device : str
        Where it trained, e.g. ``"cpu"`` or ``"cuda:0 (NVIDIA H100)"``.
    failure_reason : str or None
        One of ``FAILURE_REASONS`` when ``status == "failed"``.
    diverged : bool
        The loss became NaN/inf after at least one finite epoch: training stopped there and the
        metrics are those reached before (``status`` stays ``"ok"``; a candidate that is NaN in its
        first epoch is failed with ``"nan"``).
    error : str or None
        The error text of a failed evaluation.
    extra : dict
        Free-form plain data (e.g. worker id, timings breakdown).
    """

    config: dict[str, Any]
    status: str = STATUS_OK
    task: str = "classification"
    best_val_acc: float | None = None
    best_val_loss: float | None = None
    val_acc_curve: tuple[float, ...] = ()
    val_loss_curve: tuple[float, ...] = ()
    train_loss_curve: tuple[float, ...] = ()
    t_tr: float | None = None
    n_params: int | None = None
    epochs_run: int = 0
    wall_time: float = 0.0
    t_tr_epoch: float | None = None
    t_tr_step: float | None = None
    flops: float | None = None
    flops_train: float | None = None
    latency: float | None = None
    memory: float | None = None
    spread: dict[str, float] = field(default_factory=dict)
    device: str = "cpu"
    failure_reason: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    diverged: bool = False

    @property
    def ok(self) -> bool:
        """True when the candidate trained and produced finite metrics."""
        return self.status == STATUS_OK

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (NaN/inf floats become None)."""
        data = asdict(self)
        for key in ("val_acc_curve", "val_loss_curve", "train_loss_curve"):
            data[key] = [_finite_or_none(v) for v in data[key]]
        for key in ("best_val_acc", "best_val_loss", "t_tr", "wall_time", *MEASURES):
            data[key] = _finite_or_none(data[key])
        data["spread"] = {k: v for k, v in data["spread"].items() if _finite_or_none(v) is not None}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        for key in ("val_acc_curve", "val_loss_curve", "train_loss_curve"):
            values[key] = tuple(float("nan") if v is None else float(v) for v in values.get(key, ()))
        if values.get("wall_time") is None:
            values["wall_time"] = 0.0
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
