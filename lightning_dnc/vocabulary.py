"""The words every room of lightning-dnc shares, defined once.

Model families, penalised costs, executors, stage names and the journal's file name are used by
the search, the Lightning glue, the command line and the results folder; they live here so that
one edit changes them everywhere.
"""

from __future__ import annotations

from typing import NamedTuple

FAMILIES: tuple[str, ...] = ("cnn", "mlp")
"""Model families a search can build: convolutional networks and multilayer perceptrons."""

class Cost(NamedTuple):
    """One cost the objective can penalise (a row of :data:`COSTS`)."""

    name: str
    """The ``Evaluation`` field and the value of ``penalize``."""
    label: str
    """How tables and progress lines name it."""
    unit: str
    """Unit of the value shown (``""``: a count)."""
    measured: bool
    """True when timed on the machine (noisy), False when computed from the architecture (deterministic)."""
    reference: str
    """The ``Objective`` field holding its reference (``f_c = value / reference``, SPEC §1)."""
    log_scale: bool
    """Spans orders of magnitude across a space (plots use a log axis)."""


COSTS: dict[str, Cost] = {c.name: c for c in (
    Cost("t_tr", "t_tr", "s", True, "t_tr_ref", False),  # training seconds per epoch
    Cost("n_params", "N_p", "", False, "n_params_ref", True),  # trainable parameters
    Cost("flops", "FLOPs", "", False, "flops_ref", True),  # inference FLOPs per sample
    Cost("latency", "latency", "ms", True, "latency_ref", False),  # inference seconds per sample at batch 1
    Cost("memory", "memory", "B", True, "memory_ref", True),  # peak training bytes
)}
"""The one table of costs every place reads: name, label, unit, measured or deterministic, reference."""

PENALTIES: tuple[str, ...] = tuple(COSTS)
"""Costs the objective can penalise (the names of :data:`COSTS`): training seconds per epoch,
trainable parameter count, inference FLOPs per sample, inference seconds per sample at batch 1,
peak training bytes."""

T_TR_MODES: tuple[str, ...] = ("step", "epoch")
"""How ``t_tr`` is measured: the candidate's training step timed in a tight loop, or the mean
training epoch of the Lightning loop (SPEC §1)."""

EXECUTORS: tuple[str, ...] = ("inprocess", "ray")
"""Where candidates train: in this process, or on Ray workers."""

LOGGERS: tuple[str, ...] = ("csv", "tensorboard", "none")
"""Lightning loggers each candidate's curves can go to (one version per trial), or none."""

STAGE_NAMES: dict[int, str] = {
    1: "architecture skeleton (BO)",
    2: "fine-tuning (grid)",
    3: "training hyperparameters (BO)",
    0: "training hyperparameters first (BO)",
    4: "architecture again, tuned training (BO)",
}
"""The three stages of SPEC §5 (and the extra stages 0 and 4 of some strategies), as progress displays
and reports name them."""

STRATEGIES = ("paper", "joint", "revisit", "train-first")
"""Search strategies (:mod:`lightning_dnc.search.stages.strategies`); ``"paper"`` is SPEC §5 exactly."""

MODELS = ("composite", "scalar")
"""What the GP of a BO stage learns (:mod:`lightning_dnc.search.stages.composite`): ``"scalar"``, one GP
on the whole loss (the paper's); ``"composite"``, a GP on the error and a cost model, combined exactly."""

FINAL_EPOCH_KEY = "final_epoch_s"
"""Key of the final training's mean epoch seconds in ``final.json`` (its whole epoch loop). Distinct from
``t_tr``, the search's measure of each candidate (a timed training step by default), which it can exceed
many times over; earlier results stored it as ``"t_tr"`` (read back by
:func:`lightning_dnc.results.outcome.final_metrics`)."""

JOURNAL_NAME = "trials.jsonl"
"""File name of a search's journal inside a results folder."""

__all__ = ["COSTS", "Cost", "EXECUTORS", "FAMILIES", "FINAL_EPOCH_KEY", "JOURNAL_NAME", "LOGGERS", "MODELS", "PENALTIES",
           "STAGE_NAMES", "STRATEGIES", "T_TR_MODES"]
