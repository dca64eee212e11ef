"""Checks of the set-up that run before any candidate trains.

- :func:`check_hardware`: the accelerator, devices and precision can be used on this machine.
- :func:`check_namespaces`: the user's objects come from ``lightning.pytorch``, which the child
  trainers are (``pytorch_lightning`` classes are a different package to Lightning).
- :func:`warn_small_data`: a :class:`~lightning_dnc.validation.SetupWarning` for data too small
  to rank candidates (fewer validation samples than classes; batch sizes above the training set).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from typing import Any

from lightning_dnc.lightning.candidate.child_trainer import quiet_lightning
from lightning_dnc.space.config import DEFAULT_BATCH_SIZE
from lightning_dnc.validation import SettingError, SetupWarning

ACCELERATOR_NAMES = {"gpu": "cuda"}
"""Accelerator flags that Lightning's registry knows under another name."""


def check_hardware(hardware: Mapping[str, Any]) -> None:
    """Raise :class:`SettingError` unless a ``Trainer`` with ``hardware`` can be built here.

    Parameters
    ----------
    hardware : mapping
        ``accelerator``, ``devices``, ``precision`` (``None``: Lightning's default).
    """
    import lightning.pytorch as pl
    from lightning.pytorch.accelerators import AcceleratorRegistry

    accelerator = hardware.get("accelerator", "auto")
    if isinstance(accelerator, str) and accelerator not in ("auto",):
        name = ACCELERATOR_NAMES.get(accelerator, accelerator)
        known = sorted(AcceleratorRegistry.available_accelerators())
        if name not in known:
            allowed = ["auto", "gpu", *known]
            raise SettingError("accelerator", f"`accelerator` must be one of {allowed}, got {accelerator!r}.")
        if not _usable(name):
            usable = [a for a in known if _usable(a)]
            raise SettingError(
                "accelerator",
                f"`accelerator` {accelerator!r} is not available on this machine (usable here: {usable}); pass "
                f"{usable[0]!r} or 'auto'.",
            )
    kwargs = {"accelerator": accelerator, "devices": hardware.get("devices", 1)}
    if hardware.get("precision") is not None:
        kwargs["precision"] = hardware["precision"]
    try:
        with quiet_lightning():
            pl.Trainer(**kwargs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                       enable_model_summary=False)
    except Exception as err:  # noqa: BLE001 - Lightning raises several types for a bad set-up
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        name = "precision" if "precision" in first.lower() else "devices"
        raise SettingError(name, f"`{name}` {kwargs.get(name)!r} cannot be used here: {first}") from None


def _usable(accelerator: str) -> bool:
    from lightning.pytorch.accelerators import AcceleratorRegistry

    try:
        return bool(AcceleratorRegistry.get(accelerator).is_available())
    except Exception:  # noqa: BLE001 - e.g. the TPU accelerator raises when torch_xla is missing
        return False


def check_namespaces(**objects: Any) -> None:
    """Raise ``TypeError`` for a module, datamodule or callback host from ``pytorch_lightning``.

    Candidates train in ``lightning.pytorch`` trainers, which refuse ``pytorch_lightning``
    classes; say so before anything trains. ``objects`` maps an argument name to the object.
    """
    legacy = sys.modules.get("pytorch_lightning")
    if legacy is None:
        return
    for argument, value in objects.items():
        if value is None:
            continue
        for base_name in ("LightningModule", "LightningDataModule", "Trainer", "Callback"):
            base = getattr(legacy, base_name, None)
            if base is not None and isinstance(value, base):
                raise TypeError(
                    f"`{argument}` is a `pytorch_lightning.{base_name}` ({type(value).__name__}); lightning-dnc "
                    f"trains with `lightning.pytorch`: import it with `from lightning.pytorch import {base_name}` "
                    "(or `import lightning.pytorch as pl`)."
                )


def warn_small_data(datamodule: Any, training_space: Any = None, strategy: str | None = "paper") -> list[str]:
    """Warn (:class:`SetupWarning`) when the data is too small to rank candidates well.

    Returns the warning texts (also emitted with ``warnings.warn``).
    """
    texts: list[str] = []
    n_train, n_val = count_samples(datamodule, "train"), count_samples(datamodule, "val")
    classes = getattr(datamodule, "num_outputs", None)
    if getattr(datamodule, "task", None) == "classification" and n_val is not None and classes and n_val < classes:
        texts.append(
            f"The validation split has {n_val} samples for {classes} classes: validation accuracy moves in steps of "
            f"{1 / max(n_val, 1):.0%} and cannot tell candidates apart; use more data or a larger `val_split`."
        )
    if n_train is not None:
        largest = max(DEFAULT_BATCH_SIZE, int(training_space.batch_size[1]) if training_space is not None else 0)
        if largest > n_train:
            used = (f"stages 1-2: {DEFAULT_BATCH_SIZE}, stage 3: up to {largest}" if strategy == "paper"
                    else f"up to {largest}")
            texts.append(
                f"The training split has {n_train} samples, fewer than the batch sizes the search uses ({used}): "
                f"every epoch is one batch of at most {n_train}, so those batch sizes all train alike; lower "
                "`batch_size_range` (--batch_size_range) or use more data."
            )
    for text in texts:
        warnings.warn(text, SetupWarning, stacklevel=3)
    return texts


def count_samples(datamodule: Any, stage: str) -> int | None:
    """Samples of ``stage`` (``"train"``, ``"val"``) of a set-up datamodule; ``None`` when it cannot tell."""
    counter = getattr(datamodule, "num_samples", None)
    if callable(counter):
        return int(counter(stage))
    try:
        loader = getattr(datamodule, f"{stage}_dataloader")()
        return len(loader.dataset)
    except Exception:  # noqa: BLE001 - a loader without a sized dataset: nothing to say
        return None


__all__ = ["check_hardware", "check_namespaces", "count_samples", "warn_small_data"]
