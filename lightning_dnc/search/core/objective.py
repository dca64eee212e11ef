"""The Deep-n-Cheap objective (SPEC §1): ``loss = log10(f_p + wc * f_c)``.

The objective is never stored as the only truth: every trial keeps its raw ``best_val_acc`` /
``best_val_loss`` and every cost it measured (``t_tr`` both ways, ``n_params``, ``flops``,
``latency``, ``memory``), and :meth:`Objective.loss` recomputes the loss from them, so a finished
search can be re-ranked for another ``wc``, penalty or ``t_tr_mode`` without training.

Costs
-----
``f_c = measure / reference`` for the penalised measure (:data:`~lightning_dnc.vocabulary.PENALTIES`):
``t_tr`` (training seconds per epoch; ``t_tr_mode`` picks the step-mode or the epoch-loop value),
``n_params``, ``flops`` (inference FLOPs per sample), ``latency`` (inference seconds per sample at
batch 1) and ``memory`` (peak training bytes). ``n_params`` and ``flops`` are exact counts that do
not depend on the machine; ``t_tr`` and ``latency`` are measured times, ``memory`` is measured on
CUDA and an exact estimate elsewhere.

Failed trials
-------------
A trial that failed (``status == "failed"``), or an ``ok`` one whose metrics cannot be scored
(missing or non-finite accuracy/loss, or a missing penalised measure), has loss ``None``: it is
never ranked and never chosen as best. The GP of a BO stage must still learn that its region is
bad, so it is told the pessimistic stand-in of :func:`pessimistic_loss`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from lightning_dnc.search.core.records import Evaluation
from lightning_dnc.validation import check_choice, check_number, is_finite_number
from lightning_dnc.vocabulary import COSTS, PENALTIES, T_TR_MODES

LOSS_FLOOR = 1e-6
"""``f_p + wc * f_c`` is floored here before the log, so a perfect score (accuracy 1 with
``wc = 0``) gives a finite loss of -6 instead of ``-inf``."""

FAILED_LOSS_MARGIN = 0.5
"""Added to the worst finished loss to make the GP's stand-in for a failed trial (about 3x worse
in ``f_p + wc * f_c``)."""

FAILED_LOSS_DEFAULT = 1.0
"""The GP's stand-in for a failed trial when no trial has a loss yet: ``f_p + wc f_c = 10``."""

LEGACY_OBJECTIVE_DEFAULTS = {"t_tr_mode": "epoch"}
"""Objective settings absent from journals and results of lightning-dnc 0.1.0, as those runs had them."""

REFERENCE_FIELDS = {name: cost.reference for name, cost in COSTS.items()}
"""The reference setting of each penalised measure."""


def normalise_objective_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    """A stored objective with the settings 0.1.0 did not write filled in as 0.1.0 behaved."""
    return {**LEGACY_OBJECTIVE_DEFAULTS, **data}


@dataclass(frozen=True)
class Objective:
    """``loss(x) = log10(f_p(x) + wc * f_c(x))`` of SPEC §1.

    Parameters
    ----------
    wc : float, default 0.1
        Weight of the cost term, >= 0 (0: accuracy only, 0.1: balanced, 10: cheapness first).
    penalize : {"t_tr", "n_params", "flops", "latency", "memory"}, default "t_tr"
        The measure in ``f_c = measure / reference`` (see the module docstring).
    t_tr_ref : float, optional
        Reference seconds per epoch, > 0. ``None``: the ``t_tr`` of the first successfully
        evaluated candidate, the centre of the stage-1 space (see :meth:`with_references`).
    n_params_ref, flops_ref, latency_ref, memory_ref : float, optional
        References of the other measures, > 0. ``None``: the search loop passes the value of the
        space's largest network (the engine cannot build models); failing that,
        :meth:`with_references` uses the first successful candidate's value.
    regression_scale : float, default 10.0
        Regression ``f_p = regression_scale * best_val_loss`` (validation MSE), > 0.
    t_tr_mode : {"step", "epoch"} or None, default "step"
        Which ``t_tr`` is penalised: ``"step"``, the candidate's training step timed in a tight
        loop (robust to load); ``"epoch"``, the Lightning loop's mean epoch (SPEC §1 exactly).
        ``None``: not chosen yet (the search loop fills in the journal's mode on resume, else
        ``"step"``); scored as ``"step"``. A record without the chosen value (older journals)
        is scored by its ``t_tr``.

    Examples
    --------
    >>> obj = Objective(wc=0.1, t_tr_ref=2.0)
    >>> ev = Evaluation(config={}, best_val_acc=0.9, t_tr=2.0, n_params=10)
    >>> round(obj.loss(ev), 6)  # log10(0.1 + 0.1 * 1.0)
    -0.69897
    """

    wc: float = 0.1
    penalize: str = "t_tr"
    t_tr_ref: float | None = None
    n_params_ref: float | None = None
    regression_scale: float = 10.0
    t_tr_mode: str | None = "step"
    flops_ref: float | None = None
    latency_ref: float | None = None
    memory_ref: float | None = None

    def __post_init__(self) -> None:
        wc = check_number("wc", self.wc, 0.0, hint=" (0 = accuracy only, 0.1 = balanced, 10 = cheapness first)")
        check_choice("penalize", self.penalize, PENALTIES)
        if self.t_tr_mode is not None:
            check_choice("t_tr_mode", self.t_tr_mode, T_TR_MODES)
        for name in REFERENCE_FIELDS.values():
            if getattr(self, name) is not None:
                check_number(name, getattr(self, name), 0.0, strict=True, hint=" or None (measured)")
        object.__setattr__(self, "wc", wc)
        object.__setattr__(self, "regression_scale", check_number("regression_scale", self.regression_scale, 0.0,
                                                                  strict=True))

    # ------------------------------------------------------------------ references
    @property
    def reference(self) -> float | None:
        """The reference of the penalised measure (e.g. ``t_tr_ref``)."""
        return getattr(self, REFERENCE_FIELDS[self.penalize])

    def measure(self, evaluation: Evaluation, name: str | None = None) -> float | None:
        """The raw value of measure ``name`` (default: the penalised one) of ``evaluation``.

        ``t_tr`` is the step-mode or epoch-loop value as :attr:`t_tr_mode` says, the record's
        ``t_tr`` when it lacks that value. ``None`` when not measured or not finite.
        """
        name = self.penalize if name is None else check_choice("name", name, PENALTIES)
        if name == "t_tr":
            value = evaluation.t_tr_epoch if self.t_tr_mode == "epoch" else evaluation.t_tr_step
            if value is None:
                value = evaluation.t_tr
        else:
            value = getattr(evaluation, name)
        return float(value) if is_finite_number(value) else None

    def with_references(self, evaluations: Iterable[Evaluation]) -> Objective:
        """A copy whose missing references are taken from ``evaluations``.

        Each ``None`` reference becomes the measure of the first evaluation (in the given order)
        that succeeded and has a positive value of it. References already set are kept.

        Parameters
        ----------
        evaluations : iterable of Evaluation
            In evaluation order (the search passes its trials by trial id).
        """
        refs = {name: getattr(self, field) for name, field in REFERENCE_FIELDS.items()}
        missing = [name for name, value in refs.items() if value is None]
        for ev in evaluations:
            if not missing:
                break
            if not ev.ok:
                continue
            for name in list(missing):
                value = self.measure(ev, name)
                if value is not None and value > 0:
                    refs[name] = value
                    missing.remove(name)
        return replace(self, **{REFERENCE_FIELDS[name]: value for name, value in refs.items()})

    # ------------------------------------------------------------------ terms
    def performance(self, evaluation: Evaluation) -> float | None:
        """``f_p``: ``1 - best_val_acc`` (classification) or ``regression_scale * best_val_loss``.

        ``None`` for a failed evaluation or a missing/non-finite metric.
        """
        if not evaluation.ok:
            return None
        if evaluation.task == "regression":
            value = evaluation.best_val_loss
            return self.regression_scale * float(value) if is_finite_number(value) and value >= 0 else None
        value = evaluation.best_val_acc
        return 1.0 - float(value) if is_finite_number(value) and 0 <= value <= 1 else None

    def cost(self, evaluation: Evaluation) -> float | None:
        """``f_c``: the penalised measure over its reference; ``None`` when it was not measured.

        Raises
        ------
        ValueError
            When the reference is still unknown (use :meth:`with_references` first).
        """
        reference = self.reference
        if reference is None:
            raise ValueError(
                f"The reference of `penalize={self.penalize!r}` is unknown; pass `{self.penalize}_ref` or "
                "call `Objective.with_references(evaluations)` first."
            )
        measure = self.measure(evaluation)
        if not evaluation.ok or measure is None or measure < 0:
            return None
        return measure / reference

    def loss(self, evaluation: Evaluation) -> float | None:
        """``log10(max(f_p + wc * f_c, LOSS_FLOOR))``, or ``None`` when it cannot be scored.

        With ``wc == 0`` the cost term (and its reference) is not needed.
        """
        f_p = self.performance(evaluation)
        if f_p is None:
            return None
        value = f_p
        if self.wc > 0:
            f_c = self.cost(evaluation)
            if f_c is None:
                return None
            value += self.wc * f_c
        return math.log10(max(value, LOSS_FLOOR))

    def loss_at(self, evaluation: Evaluation, f_c: float) -> float | None:
        """:meth:`loss` with the cost term ``f_c`` given (e.g. an estimate instead of the measurement).

        ``None`` when the performance cannot be scored or ``f_c`` is not a finite number >= 0.
        """
        f_p = self.performance(evaluation)
        if f_p is None or not is_finite_number(f_c) or f_c < 0:
            return None
        return math.log10(max(f_p + self.wc * float(f_c), LOSS_FLOOR))

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the settings (references as set, ``None`` when measured)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Objective:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` listing the valid ones.

        Settings missing from objectives stored by 0.1.0 take the values those runs used
        (:data:`LEGACY_OBJECTIVE_DEFAULTS`: ``t_tr_mode="epoch"``).
        """
        valid = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ValueError(f"Unknown objective key(s) {unknown}; valid keys are {sorted(valid)}.")
        return cls(**normalise_objective_dict(data))


def pessimistic_loss(finished_losses: Iterable[float], fallback: Iterable[float] = ()) -> float:
    """The loss the GP is told for a failed trial.

    Rule: the worst (largest) finished loss of the same stage plus :data:`FAILED_LOSS_MARGIN`;
    when the stage has none, the worst loss in ``fallback`` (the other stages) plus the margin;
    when there is no loss at all, :data:`FAILED_LOSS_DEFAULT`. The value only steers the GP away
    from the region; a failed trial is never ranked.

    Parameters
    ----------
    finished_losses : iterable of float
        Losses of the successful trials of the stage.
    fallback : iterable of float
        Losses of successful trials elsewhere in the search.
    """
    for losses in (list(finished_losses), list(fallback)):
        if losses:
            return max(losses) + FAILED_LOSS_MARGIN
    return FAILED_LOSS_DEFAULT


