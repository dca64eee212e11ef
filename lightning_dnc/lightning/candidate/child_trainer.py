"""The short-lived child ``lightning.Trainer`` every candidate and the final training run in."""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib.metadata import entry_points
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
    with _external_callbacks_read_once():
        return pl.Trainer(**kwargs)


@functools.cache
def _callback_factories(group: str) -> tuple[Callable[[], Any], ...]:
    """The factories installed packages register for ``group`` (read once per process)."""
    return tuple(point.load() for point in entry_points(group=group))


def _external_callbacks(group: str) -> list[Any]:
    """What Lightning's ``_load_external_callbacks`` returns, from factories found once per process."""
    callbacks: list[Any] = []
    for factory in _callback_factories(group):
        made = factory()
        callbacks.extend(made if isinstance(made, list) else [made])
    return callbacks


@contextlib.contextmanager
def _external_callbacks_read_once() -> Iterator[None]:
    """Build a ``Trainer`` without re-reading the metadata of every installed package.

    Each ``Trainer.__init__`` looks up callback factories by entry point, which reads the metadata
    of every installed distribution (~45 ms with a few hundred packages): most of a candidate's
    fixed cost. The factories are looked up once per process instead and called for every trainer
    as Lightning does; nothing else changes.
    """
    module = importlib.import_module("lightning.pytorch.trainer.connectors.callback_connector")
    original = getattr(module, "_load_external_callbacks", None)
    if original is None:  # another Lightning version: leave it alone
        yield
        return
    module._load_external_callbacks = _external_callbacks  # noqa: SLF001
    try:
        yield
    finally:
        module._load_external_callbacks = original  # noqa: SLF001


_quiet_depth = 0


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's per-run info logs and tips while a child trainer runs.

    Nested uses cost nothing: only the outermost sets and restores the logger levels (each
    ``setLevel`` clears the cache of every logger), so a search wraps all its candidates once.
    """
    global _quiet_depth
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS] if _quiet_depth == 0 else []
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    _quiet_depth += 1
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated.*")
            warnings.filterwarnings("ignore", message=".*barebones=True.*")
            warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
            yield
    finally:
        _quiet_depth -= 1
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@functools.cache
def _no_nvidia_driver() -> bool:
    """True when this machine has no NVIDIA driver (NVML cannot be loaded) and no CUDA device."""
    import torch

    try:
        import ctypes

        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return torch.cuda.is_available() is False
    return False


@contextlib.contextmanager
def cheap_cuda_checks() -> Iterator[None]:
    """Skip the NVML probe ``torch.cuda.is_available()`` makes on every optimizer step, where there is no GPU.

    Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` (so availability checks never initialise CUDA
    before a fork), and every ``Adam.step`` asks ``torch.cuda.is_available()``, which then loads the
    NVML library each time (~0.1 ms per step). On a machine without an NVIDIA driver there is no CUDA
    to initialise, so the runtime check is used while the block runs; elsewhere nothing changes.
    """
    import os

    if not _no_nvidia_driver():
        yield
        return
    name = "PYTORCH_NVML_BASED_CUDA_CHECK"
    before = os.environ.get(name)
    os.environ[name] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
