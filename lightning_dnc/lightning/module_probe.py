"""Which searched keys does a user's LightningModule ignore? Build it twice and compare.

A user module receives the whole searched ``config`` but may build its network from only part of
it (``examples/own_module.py`` reads ``hidden_mlp`` and ``lr`` only). Searching keys it ignores
wastes trials: every option of such a stage-2 group trains the same network. Before the search,
:func:`ignored_settings` builds the module from the starting configuration and from one that
differs in a single group (or in ``lr`` / ``weight_decay``) and compares what they do:

- the module's structure (``repr``) and its outputs on one fixed input in training mode (same
  seed for both, so dropout masks match): a change of network or forward;
- the learning rate and weight decay of ``configure_optimizers()``.

A group that changes none of them is reported ignored. Nothing that fails to build or run is
reported (the evaluation of the candidates reports real failures).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch.utilities.seed import isolate_rng

from lightning_dnc.search.stages import grid
from lightning_dnc.space.config import complete_config

GROUP_KEYS = {
    ("cnn", "ac"): ("act",),
    ("cnn", "ds"): ("strides", "apply_maxpools"),
    ("cnn", "bn"): ("apply_bns",),
    ("cnn", "do"): ("apply_dropouts", "dropout_probs"),
    ("cnn", "sc"): ("shortcuts",),
    ("mlp", "ac"): ("act",),
    ("mlp", "do"): ("dropout_probs_mlp",),
}
"""The configuration keys each stage-2 group changes."""

TRAINING_CHANGES = {"lr": {"lr": 3.7e-2}, "weight_decay": {"weight_decay": 3.7e-4}}
"""Stage-3 settings probed, with a value unlike any default."""


def ignored_settings(module_class: type, base: Mapping[str, Any], groups: Sequence[str],
                     offered: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """The stage-2 groups and stage-3 settings ``module_class`` ignores, with the keys they change.

    Parameters
    ----------
    module_class : type
        The user's LightningModule class; built as ``module_class(config=..., **kwargs)`` with
        the ``offered`` keyword arguments its ``__init__`` accepts.
    base : mapping
        The configuration the search starts from (complete).
    groups : sequence of str
        Stage-2 groups to probe.
    offered : mapping
        ``input_shape`` (required), ``num_outputs``, ``task``, ``epochs``, ...

    Returns
    -------
    dict
        Group name (``"ac"``, ...) or ``"lr"`` / ``"weight_decay"`` -> the keys it changes; only
        the ignored ones.
    """
    base = complete_config(base)
    family = base["family"]
    shape = tuple(int(s) for s in offered["input_shape"])
    with isolate_rng():
        sample = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
        reference = _fingerprint(module_class, base, offered, sample)
        if reference is None:
            return {}
        ignored: dict[str, tuple[str, ...]] = {}
        for group in groups:
            options = grid.group_options(group, base)
            if options and _fingerprint(module_class, options[0], offered, sample) == reference:
                ignored[group] = GROUP_KEYS[(family, group)]
        for name, change in TRAINING_CHANGES.items():
            if _fingerprint(module_class, {**base, **change}, offered, sample) == reference:
                ignored[name] = (name,)
    return ignored


def _fingerprint(module_class: type, config: Mapping[str, Any], offered: Mapping[str, Any],
                 sample: torch.Tensor) -> tuple[Any, ...] | None:
    """``(structure, outputs, optimizer settings)`` of the module built from ``config``; None on error."""
    try:
        torch.manual_seed(0)
        module = _build(module_class, dict(config), offered)
        module.train()
        torch.manual_seed(1)
        with torch.no_grad():
            outputs = module(sample)
        outputs_key = tuple(torch.as_tensor(outputs).detach().float().reshape(-1).tolist())
    except Exception:  # noqa: BLE001 - a module we cannot probe is not reported
        return None
    return repr(module), outputs_key, _optimizer_settings(module)


def _build(module_class: type, config: dict[str, Any], offered: Mapping[str, Any]) -> Any:
    params = inspect.signature(module_class.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in offered.items() if takes_any or k in params}
    return module_class(config=config, **kwargs)


def _optimizer_settings(module: Any) -> tuple[Any, ...] | None:
    """``(lr, weight_decay)`` of every parameter group of the first optimizer; None when unknown."""
    try:
        value = module.configure_optimizers()
    except Exception:  # noqa: BLE001 - e.g. it needs an attached Trainer
        return None
    while not isinstance(value, torch.optim.Optimizer):
        if isinstance(value, Mapping):
            value = value.get("optimizer")
        elif isinstance(value, (list, tuple)) and value:
            value = value[0]
        else:
            return None
    return tuple((group.get("lr"), group.get("weight_decay")) for group in value.param_groups)


def ignored_message(class_name: str, ignored: Mapping[str, Sequence[str]], skipped: Sequence[str]) -> str:
    """One line naming the keys ``class_name`` ignores and the stage-2 groups skipped."""
    keys = sorted({key for names in ignored.values() for key in names})
    text = (f"{class_name} ignores the searched setting(s) {keys}: building it with other values of them gives the "
            "same network, forward and optimizer.")
    if skipped:
        text += f" Stage-2 group(s) {list(skipped)} are skipped."
    rest = [name for name in ignored if name in TRAINING_CHANGES]
    if rest:
        text += f" Stage 3 still searches {rest}, which have no effect; read them from `config` in __init__."
    return text


__all__ = ["GROUP_KEYS", "ignored_message", "ignored_settings"]
