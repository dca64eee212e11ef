"""Continue a multi-fidelity candidate from its rung checkpoint (``fidelity="asha"``).

A rung trial arrives at the evaluator as its config and the explicit ``run`` argument
(:attr:`lightning_dnc.search.core.trial.Proposal.run`; earlier versions put it in the config under
``rung_run``, still read): train until ``epochs`` (the rung), with
the module built for the config's own ``epochs`` (the full search budget, so the MultiStepLR
milestones are those of an uninterrupted run), continue from the checkpoint ``load`` if given and
write ``save_as`` at the end.

The checkpoint is Lightning's (weights, optimizer, scheduler, loop counters, callback states, among
them :class:`~lightning_dnc.lightning.candidate.timing.EpochTimer`'s epoch times) plus :class:`RungState`'s:
the global random states at the end of the rung (restored when the next epoch starts, before its
data loader shuffles), the module's per-epoch history and the costs measured at the candidate's
first rung. So a continued candidate draws the same shuffles and dropout masks as an uninterrupted
run with the same seed, reports its whole curve (``f_p`` from the best validation accuracy up to the
rung) and ``t_tr`` over epochs 2..e, and its costs are measured once. Everything in the file is
tensors and plain Python data: ``torch.load(path, weights_only=True)`` reads it.

A missing checkpoint (deleted, or a worker that died before writing it) is not an error: the rung is
trained from scratch, which gives the same result with the same seed, and ``extra["rung"]`` says so.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from lightning_dnc.search.core.trial import RUN_KEY

COST_FIELDS = ("t_tr_step", "flops", "flops_train", "latency", "memory")
"""Evaluation fields measured once, at a candidate's first rung, and carried by its checkpoints."""


def split_run(config: Mapping[str, Any], run: Mapping[str, Any] | None = None
              ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``config`` without the legacy ``rung_run`` entry, and the rung run: ``run`` when given, else
    that entry (``None`` for a fixed-epoch trial)."""
    out = dict(config)
    legacy = out.pop(RUN_KEY, None)
    run = legacy if run is None else run
    return out, None if run is None else dict(run)


def checkpoint_in(run: Mapping[str, Any] | None, folder: Path | None) -> Path | None:
    """The checkpoint to continue from, when the run names one and it exists."""
    if run is None or not run.get("load") or folder is None:
        return None
    path = Path(folder) / str(run["load"])
    return path if path.is_file() else None


def checkpoint_out(run: Mapping[str, Any] | None, folder: Path | None) -> Path | None:
    """Where to write the rung's checkpoint (``None``: the top rung writes none).

    Raises
    ------
    ValueError
        When a checkpoint must be written but the evaluator has no ``checkpoint_dir``.
    """
    if run is None or not run.get("save_as"):
        return None
    if folder is None:
        raise ValueError("A multi-fidelity trial must save its rung checkpoint but the evaluator has no "
                         "`checkpoint_dir`; pass CandidateEvaluator(checkpoint_dir=...) (run_search sets it to "
                         "the results folder's checkpoints/).")
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder) / str(run["save_as"])


def _rng_state() -> dict[str, Any]:
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    version, internal, python_gauss = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": [str(kind), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(position), int(has_gauss),
                       float(gauss)],
             "python": [int(version), list(internal), python_gauss]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    version, internal, python_gauss = state["python"]
    random.setstate((version, tuple(internal), python_gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RungState(Callback):
    """Carries random states, history and costs through a rung checkpoint (see the module notes).

    Parameters
    ----------
    costs : dict, optional
        The cost fields measured at the candidate's first rung (set after training, before saving).
    """

    def __init__(self) -> None:
        self.costs: dict[str, Any] = {}
        self.loaded: dict[str, Any] | None = None
        self._applied = False
        self._module: pl.LightningModule | None = None
        self._trainer: pl.Trainer | None = None

    def state_dict(self) -> dict[str, Any]:  # noqa: D102
        history = getattr(self._module, "history", None)
        loader = _loader_generator(self._trainer)
        return {"rng": _rng_state(), "costs": dict(self.costs),
                "loader_rng": None if loader is None else loader.get_state(),
                "history": {k: [float(v) for v in values] for k, values in (history or {}).items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # noqa: D102
        self.loaded = dict(state_dict)
        self.costs = dict(state_dict.get("costs") or {})

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        self._module = pl_module
        self._trainer = trainer

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        """The training loader's own generator (shuffles, augmentation) goes on where the rung left it;
        the loader exists now and draws its first permutation when the epoch starts."""
        loader = _loader_generator(trainer)
        if self.loaded is not None and loader is not None and self.loaded.get("loader_rng") is not None:
            loader.set_state(self.loaded["loader_rng"])

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        if self.loaded is None or self._applied:
            return
        self._applied = True
        history = getattr(pl_module, "history", None)
        if isinstance(history, dict):
            for key, values in self.loaded.get("history", {}).items():
                history[key] = [float(v) for v in values]
        _set_rng_state(self.loaded["rng"])


def _loader_generator(trainer: pl.Trainer | None) -> torch.Generator | None:
    """The ``torch.Generator`` of the training loader (``TensorLoader`` or a ``DataLoader`` given one)."""
    if trainer is None:
        return None
    try:
        loader = trainer.train_dataloader
    except Exception:  # noqa: BLE001 - no loader yet
        return None
    generator = getattr(loader, "generator", None)
    return generator if isinstance(generator, torch.Generator) else None


def carried_costs(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The cost fields of a first-rung measurement, to store in its checkpoint."""
    spread = fields.get("spread") or {}
    return {**{k: fields.get(k) for k in COST_FIELDS},
            "t_tr_step_spread": spread.get("t_tr_step")}


def with_carried_costs(fields: dict[str, Any], costs: Mapping[str, Any], t_tr_mode: str) -> dict[str, Any]:
    """``fields`` of a continued rung with the costs measured at the candidate's first rung."""
    out = {**fields, **{k: costs.get(k) for k in COST_FIELDS}}
    if costs.get("t_tr_step_spread") is not None:
        out["spread"] = {**out.get("spread", {}), "t_tr_step": float(costs["t_tr_step_spread"])}
    if t_tr_mode == "step" and costs.get("t_tr_step") is not None:
        out["t_tr"] = costs["t_tr_step"]
    return out


__all__ = ["COST_FIELDS", "RungState", "carried_costs", "checkpoint_in", "checkpoint_out", "split_run",
           "with_carried_costs"]
