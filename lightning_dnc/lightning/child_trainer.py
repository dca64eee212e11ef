"""The short-lived child ``lightning.Trainer`` every candidate and the final training run in."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

_QUIET_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")


def make_child_trainer(max_epochs: int, hardware: Mapping[str, Any], callbacks: Sequence[Callback] = (),
                       enable_progress_bar: bool = False, **overrides: Any) -> pl.Trainer:
    """A fresh ``Trainer`` on ``hardware`` with no logger, checkpoints, model summary or sanity check.

    Parameters
    ----------
    max_epochs : int
    hardware : mapping
        ``accelerator``, ``devices`` and ``precision`` (``None``: Lightning's default).
    callbacks : sequence of Callback
    enable_progress_bar : bool, default False
    **overrides
        Further ``Trainer`` arguments; they win over the defaults above.
    """
    kwargs: dict[str, Any] = dict(
        max_epochs=max_epochs, accelerator=hardware.get("accelerator", "auto"), devices=hardware.get("devices", 1),
        logger=False, enable_checkpointing=False, enable_progress_bar=enable_progress_bar,
        enable_model_summary=False, num_sanity_val_steps=0, callbacks=list(callbacks), check_val_every_n_epoch=1,
        deterministic=False,
    )
    if hardware.get("precision") is not None:
        kwargs["precision"] = hardware["precision"]
    kwargs.update(overrides)
    return pl.Trainer(**kwargs)


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's per-run info logs and tips while a child trainer runs."""
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated.*")
            warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
