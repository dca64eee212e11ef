"""Frozen records of the search: what was proposed (:class:`Proposal`) and what came of it
(:class:`Trial`). Strategies read them; nothing mutates them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from lightning_dnc.search.core.records import Evaluation

STAGES = (0, 1, 2, 3, 4)  # 1-3: SPEC §5; 0 and 4: extra stages of some strategies

STATE_PENDING = "pending"
STATE_OK = "ok"
STATE_FAILED = "failed"
RUN_KEY = "rung_run"
"""Legacy: the key under which a rung run travelled inside the config (before it became the explicit
``run`` argument of ``evaluate``); still read, and still used for an evaluator without ``run``."""


def config_key(config: Mapping[str, Any]) -> str:
    """Canonical text of a configuration: two configs are the same trial iff their keys are equal."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class RungRun:
    """How far a multi-fidelity trial trains, and from where (``fidelity="asha"`` only).

    Attributes
    ----------
    rung : int
        0 for a candidate's first run, k for its k-th promotion.
    epochs : int
        Train until this epoch (the rung's epochs); the learning-rate schedule is still the one of
        the config's ``epochs`` (the full search budget).
    from_epoch : int
        0 for a new candidate, else the epochs its previous rung reached.
    resume : int or None
        The trial (the candidate's previous rung) whose checkpoint this run continues from.
    candidate : int
        The trial id of the candidate's first run: every rung of one candidate shares it.
    save : bool
        Write a checkpoint at ``epochs`` (every rung below the top).
    """

    rung: int
    epochs: int
    from_epoch: int
    resume: int | None
    candidate: int
    save: bool

    @property
    def load_checkpoint(self) -> str | None:
        """File name of the checkpoint to continue from (``None``: train from scratch)."""
        return None if self.resume is None else checkpoint_name(self.resume)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {"rung": self.rung, "epochs": self.epochs, "from_epoch": self.from_epoch, "resume": self.resume,
                "candidate": self.candidate, "save": self.save}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RungRun:
        """Inverse of :meth:`to_dict`."""
        resume = data.get("resume")
        return cls(int(data["rung"]), int(data["epochs"]), int(data["from_epoch"]),
                   None if resume is None else int(resume), int(data["candidate"]), bool(data["save"]))


def at_top(rung: RungRun | Mapping[str, Any] | None, config: Mapping[str, Any]) -> bool:
    """The one rule for "this run trained the full budget": every fixed-epoch run (``rung`` None),
    and a rung run whose epochs are the config's ``epochs`` (the top rung). Only such runs win a
    stage, are ranked or are shown as the best so far.

    Parameters
    ----------
    rung : RungRun, dict or None
        The run's rung (a dict: :meth:`RungRun.to_dict`, e.g. an evaluation's ``extra["rung"]``).
    config : dict
        The run's configuration (its ``epochs`` is the search budget).
    """
    if rung is None:
        return True
    epochs = rung.epochs if isinstance(rung, RungRun) else rung.get("epochs")
    return bool(epochs == config.get("epochs"))


def checkpoint_name(trial_id: int) -> str:
    """File name of the checkpoint a rung trial writes (inside the search's checkpoint folder)."""
    return f"trial_{int(trial_id):05d}.ckpt"


@dataclass(frozen=True)
class Proposal:
    """One configuration the search asks to have evaluated.

    Attributes
    ----------
    trial_id : int
        Pass it back with the evaluation: ``search.tell(proposal.trial_id, evaluation)``.
    stage : int
        1 (architecture BO), 2 (grid) or 3 (training BO).
    config : dict
        The complete configuration to train (``complete_config`` output, with ``epochs``).
    group : str or None
        The stage-2 grid group (``"ac"``, ``"ds"``, ``"bn"``, ``"do"``, ``"sc"``), else ``None``.
    rung : RungRun or None
        Multi-fidelity searches: the rung to train to and the checkpoint to continue from.
    """

    trial_id: int
    stage: int
    config: dict[str, Any]
    group: str | None = None
    rung: RungRun | None = None

    @property
    def run(self) -> dict[str, Any] | None:
        """The ``run`` argument of the evaluator: the :class:`RungRun` as plain data with the
        checkpoint file names (``load``, ``save_as``); ``None`` for a fixed-epoch trial."""
        if self.rung is None:
            return None
        return {**self.rung.to_dict(), "load": self.rung.load_checkpoint,
                "save_as": checkpoint_name(self.trial_id) if self.rung.save else None}


@dataclass(frozen=True)
class Trial:
    """A proposed configuration and, once told, its evaluation.

    Attributes
    ----------
    trial_id : int
        Position in the search, from 0.
    stage : int
        1, 2 or 3.
    config : dict
        The complete configuration proposed.
    evaluation : Evaluation or None
        ``None`` while the trial is pending.
    group : str or None
        The stage-2 grid group.
    rung : RungRun or None
        Multi-fidelity searches: the rung this trial trained to.
    """

    trial_id: int
    stage: int
    config: dict[str, Any]
    evaluation: Evaluation | None = None
    group: str | None = None
    rung: RungRun | None = None

    @property
    def state(self) -> str:
        """``"pending"``, ``"ok"`` or ``"failed"``."""
        if self.evaluation is None:
            return STATE_PENDING
        return STATE_OK if self.evaluation.ok else STATE_FAILED

    @property
    def finished(self) -> bool:
        """True once an evaluation was told."""
        return self.evaluation is not None

    @property
    def at_top(self) -> bool:
        """True when this run trained the full budget (:func:`at_top`)."""
        return at_top(self.rung, self.config)

    @property
    def is_candidate(self) -> bool:
        """True for a candidate's first run (every fixed-epoch trial); False for its promotions."""
        return self.rung is None or self.rung.rung == 0

    @property
    def trained_config(self) -> dict[str, Any]:
        """The configuration that was actually trained (the evaluation's, e.g. after an
        out-of-memory retry at a smaller batch size), else the proposed one."""
        if self.evaluation is not None and self.evaluation.config:
            return dict(self.evaluation.config)
        return dict(self.config)

    def __repr__(self) -> str:
        """A one-row table: id, stage, state, metric, t_tr, N_p and the configuration in one line."""
        from lightning_dnc.search.core.tables import header_for, text_table, trial_row

        return text_table(header_for([self.evaluation]), [trial_row(self, None)])

    def as_proposal(self) -> Proposal:
        """The :class:`Proposal` this trial was created from."""
        return Proposal(self.trial_id, self.stage, dict(self.config), self.group, self.rung)

    def with_evaluation(self, evaluation: Evaluation | None) -> Trial:
        """A copy carrying ``evaluation``."""
        return replace(self, evaluation=evaluation)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (``rung`` only in multi-fidelity searches)."""
        out = {
            "trial_id": self.trial_id,
            "stage": self.stage,
            "group": self.group,
            "config": dict(self.config),
            "evaluation": None if self.evaluation is None else self.evaluation.to_dict(),
        }
        if self.rung is not None:
            out["rung"] = self.rung.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trial:
        """Inverse of :meth:`to_dict`."""
        evaluation = data.get("evaluation")
        return cls(
            trial_id=int(data["trial_id"]),
            stage=int(data["stage"]),
            config=dict(data["config"]),
            evaluation=None if evaluation is None else Evaluation.from_dict(evaluation),
            group=data.get("group"),
            rung=None if data.get("rung") is None else RungRun.from_dict(data["rung"]),
        )


@dataclass(frozen=True)
class Progress:
    """Where the search stands, for progress displays.

    Attributes
    ----------
    stage : int
        1, 2 or 3; 4 once finished.
    stage_name : str
    index : int
        Trials proposed so far in this stage.
    planned : int
        Trials planned in this stage (stage 2: the option counts of every group, estimated from
        the current best for groups not started yet).
    group : str or None
        The running stage-2 group.
    finished_trials : int
        Trials told so far in the whole search.
    planned_total : int
        Planned trials of the whole search (the same estimate for stages not started).
    """

    stage: int
    stage_name: str
    index: int
    planned: int
    group: str | None
    finished_trials: int
    planned_total: int
