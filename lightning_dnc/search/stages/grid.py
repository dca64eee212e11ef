"""Stage-2 grid groups (SPEC §5): the options of one group around the current best config.

Every option is a complete configuration that differs from the current best *only* in the
group's keys; the current setting itself is never an option, and options are de-duplicated in
a fixed order, so the same current best always gives the same list. Options that were already
evaluated elsewhere in the search are removed by the engine, not here.

Groups
------
ac
    Activation of every layer: relu, tanh, sigmoid. (An MLP with no hidden layer has no
    activation, so the group is empty for it.)
ds (CNN)
    At the m downsampling positions (layers with a max-pool after them, or with a stride-2
    conv), every mix of "stride-2 conv in that layer" and "max-pool after it" except
    all-max-pool: 2^m - 1 options when the current config uses max-pools only.
bn (CNN)
    Batch norm on k = ceil(f n) layers for f in {0, .25, .5, .75}, at the 1-indexed positions
    ceil(j n / k), j = 1..k (as late as possible; the last layer always has one).
do (CNN)
    Dropout on the layers placed like ``bn`` for f in {0, .25, .5, .75, 1}; the non-first layers
    share p in {0.15, 0.3, 0.45}; layer 1, when it has dropout, has its own p in {0.1, 0.2}.
    15 options for n >= 4 around the stage-1 default.
do (MLP)
    One p in {0, .1, .2, .3, .4, .5} on every hidden layer (empty with no hidden layer).
sc (CNN)
    Shortcut spacing in {none, every 4, every 2}.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lightning_dnc.search.core.trial import config_key
from lightning_dnc.space.config import ACTIVATIONS, complete_config, shortcuts_with_spacing
from lightning_dnc.validation import SettingError

CNN_GROUPS = ("ac", "ds", "bn", "do", "sc")
MLP_GROUPS = ("ac", "do")
GROUPS = {"cnn": CNN_GROUPS, "mlp": MLP_GROUPS}

BN_FRACTIONS = (0.0, 0.25, 0.5, 0.75)
DO_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)
DO_PROBS = (0.15, 0.3, 0.45)
DO_FIRST_PROBS = (0.1, 0.2)
MLP_DO_PROBS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
SHORTCUT_SPACINGS = (0, 4, 2)


def default_order(family: str) -> tuple[str, ...]:
    """The SPEC §5 group order: ``ac, ds, bn, do, sc`` (CNN) or ``ac, do`` (MLP)."""
    if family not in GROUPS:
        raise ValueError(f"`family` must be one of {sorted(GROUPS)}, got {family!r}.")
    return GROUPS[family]


def validate_order(family: str, order: Sequence[str] | None) -> tuple[str, ...]:
    """Check a user's stage-2 group order; ``None`` gives :func:`default_order`.

    Raises
    ------
    ValueError
        On an unknown or repeated group (the message lists the groups of the family).
    """
    allowed = default_order(family)
    if order is None:
        return allowed
    if isinstance(order, str) or not isinstance(order, Sequence):
        raise SettingError("stage2_order", f"`stage2_order` must be a list of group names from {list(allowed)}, got {order!r}.")
    out = tuple(order)
    unknown = [g for g in out if g not in allowed]
    if unknown:
        raise SettingError(
            "stage2_order",
            f"`stage2_order` has group(s) {unknown} that the {family!r} family does not have; "
            f"choose from {list(allowed)}."
        )
    repeated = sorted({g for g in out if out.count(g) > 1})
    if repeated:
        raise SettingError("stage2_order", f"`stage2_order` lists group(s) {repeated} more than once: {list(out)!r}.")
    return out


def placed_flags(num_layers: int, fraction: float) -> list[int]:
    """Flags for ``k = ceil(fraction * n)`` layers at 1-indexed positions ``ceil(j n / k)``.

    >>> placed_flags(4, 0.5)
    [0, 1, 0, 1]
    >>> placed_flags(4, 0.75)
    [0, 1, 1, 1]
    """
    flags = [0] * num_layers
    k = math.ceil(fraction * num_layers)
    for j in range(1, k + 1):
        position = -(-j * num_layers // k)  # ceil(j n / k), exact integer arithmetic
        flags[position - 1] = 1
    return flags


def group_options(group: str, config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The options of ``group`` around ``config`` (see the module docstring).

    Parameters
    ----------
    group : str
        A group name of the config's family.
    config : dict
        The current best complete configuration.

    Returns
    -------
    list of dict
        Complete configurations (via ``complete_config``), in a fixed order, without the current
        setting and without duplicates; empty when the group has nothing to change.
    """
    current = complete_config(config)
    family = current["family"]
    allowed = default_order(family)
    if group not in allowed:
        raise ValueError(f"`group` must be one of {list(allowed)} for family {family!r}, got {group!r}.")
    builder = _BUILDERS[(family, group)]
    out: list[dict[str, Any]] = []
    seen = {config_key(_canonical(current))}
    for change in builder(current):
        option = _canonical(complete_config({**current, **change}))
        key = config_key(option)
        if key not in seen:
            seen.add(key)
            out.append(option)
    return out


def _canonical(config: dict[str, Any]) -> dict[str, Any]:
    """Zero the dropout probabilities of layers without dropout, so equal networks compare equal."""
    if config["family"] == "cnn":
        config = dict(config)
        config["dropout_probs"] = [p if a else 0.0 for p, a in zip(config["dropout_probs"], config["apply_dropouts"])]
    return config


def _activation(config: dict[str, Any]) -> list[dict[str, Any]]:
    if config["family"] == "mlp" and not config["hidden_mlp"]:
        return []
    return [{"act": act} for act in ACTIVATIONS]


def _downsampling(config: dict[str, Any]) -> list[dict[str, Any]]:
    positions = [
        i for i, (pool, stride) in enumerate(zip(config["apply_maxpools"], config["strides"])) if pool or stride == 2
    ]
    out = []
    for mix in itertools.product((0, 1), repeat=len(positions)):  # 1 = stride-2 conv, 0 = max-pool
        if not any(mix):
            continue
        strides, pools = list(config["strides"]), list(config["apply_maxpools"])
        for position, use_stride in zip(positions, mix):
            strides[position] = 2 if use_stride else 1
            pools[position] = 0 if use_stride else 1
        out.append({"strides": strides, "apply_maxpools": pools})
    return out


def _batch_norm(config: dict[str, Any]) -> list[dict[str, Any]]:
    n = len(config["out_channels"])
    return [{"apply_bns": placed_flags(n, f)} for f in BN_FRACTIONS]


def _conv_dropout(config: dict[str, Any]) -> list[dict[str, Any]]:
    n = len(config["out_channels"])
    out = []
    for fraction in DO_FRACTIONS:
        flags = placed_flags(n, fraction)
        if not any(flags):
            out.append({"apply_dropouts": flags, "dropout_probs": [0.0] * n})
            continue
        for p in DO_PROBS:
            for p_first in DO_FIRST_PROBS if flags[0] else (None,):
                probs = [(p_first if i == 0 else p) if flag else 0.0 for i, flag in enumerate(flags)]
                out.append({"apply_dropouts": flags, "dropout_probs": probs})
    return out


def _shortcuts(config: dict[str, Any]) -> list[dict[str, Any]]:
    n = len(config["out_channels"])
    return [{"shortcuts": shortcuts_with_spacing(n, spacing)} for spacing in SHORTCUT_SPACINGS]


def _mlp_dropout(config: dict[str, Any]) -> list[dict[str, Any]]:
    h = len(config["hidden_mlp"])
    if h == 0:
        return []
    return [{"dropout_probs_mlp": [p] * h} for p in MLP_DO_PROBS]


_BUILDERS: dict[tuple[str, str], Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
    ("cnn", "ac"): _activation,
    ("cnn", "ds"): _downsampling,
    ("cnn", "bn"): _batch_norm,
    ("cnn", "do"): _conv_dropout,
    ("cnn", "sc"): _shortcuts,
    ("mlp", "ac"): _activation,
    ("mlp", "do"): _mlp_dropout,
}
