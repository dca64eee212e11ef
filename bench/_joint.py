"""The joint search space (architecture + stage-2 choices + training) for the baseline searches.

Deep-n-Cheap searches three stages one after the other; a baseline searches the same set of
configurations in one go:

* architecture skeleton: the stage-1 space (``CNNSpace`` / ``MLPSpace``);
* the stage-2 grid choices: for every group of :func:`lightning_dnc.search.default_order`, the
  stage-1 default setting or any of the group's options (:func:`lightning_dnc.search.group_options`);
* training hyperparameters: the ``TrainingSpace`` (lr, weight decay, batch size).

:func:`random_joint_config` draws one configuration with the spaces' own random sampler and a
uniform pick among each group's settings. :func:`suggest_joint_config` builds the same set of
configurations from an Optuna trial's ``suggest_*`` calls, with the same parameterisation as the
samplers (channel growth through the SPEC §4 integer map, weight decay on a log scale with the
lowest decade mapped to 0), so every configuration one method can reach the others can too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from lightning_dnc.search import default_order, group_options
from lightning_dnc.search.stages.grid import (
    BN_FRACTIONS,
    DO_FIRST_PROBS,
    DO_FRACTIONS,
    DO_PROBS,
    MLP_DO_PROBS,
    SHORTCUT_SPACINGS,
    placed_flags,
)
from lightning_dnc.space import TrainingSpace
from lightning_dnc.space._sampling import int_from_unit
from lightning_dnc.space.config import (
    ACTIVATIONS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_LR,
    complete_config,
    shortcuts_with_spacing,
)

#: Batch-norm fractions a joint config may use: the grid's plus the stage-1 default (every layer).
JOINT_BN_FRACTIONS = (*BN_FRACTIONS, 1.0)


def default_training() -> dict[str, Any]:
    """The training hyperparameters of stage 1 and 2 (SPEC §5): lr 1e-3, weight decay "auto", batch 256."""
    return {"lr": DEFAULT_LR, "weight_decay": "auto", "batch_size": DEFAULT_BATCH_SIZE}


def centre_config(space: Any, epochs: int) -> dict[str, Any]:
    """The first candidate Deep-n-Cheap trains: the centre of the stage-1 space, default training."""
    return complete_config({**space.centre(), **default_training(), "epochs": int(epochs)}, family=space.family)


def random_joint_config(space: Any, training_space: TrainingSpace, rng: np.random.Generator,
                        epochs: int) -> dict[str, Any]:
    """One configuration drawn uniformly from the joint space.

    Parameters
    ----------
    space : CNNSpace or MLPSpace
        Stage-1 space; its ``sample(1, seed, method="random")`` draws the skeleton.
    training_space : TrainingSpace
        Drawn the same way for lr, weight decay and batch size.
    rng : numpy.random.Generator
        Source of the per-draw seeds and of the stage-2 picks.
    epochs : int
        Put in the config as ``epochs``.

    Returns
    -------
    dict
        A complete configuration (``complete_config`` output).
    """
    skeleton = space.sample(1, seed=_draw_seed(rng), method="random")[0]
    training = training_space.sample(1, seed=_draw_seed(rng), method="random")[0]
    config = complete_config({**skeleton, **default_training(), "epochs": int(epochs)}, family=space.family)
    for group in default_order(space.family):
        settings = [config, *group_options(group, config)]
        config = settings[int(rng.integers(len(settings)))]
    return complete_config({**config, **training, "epochs": int(epochs)}, family=space.family)


def suggest_joint_config(trial: Any, space: Any, training_space: TrainingSpace, epochs: int) -> dict[str, Any]:
    """Build a joint configuration from an Optuna trial (define-by-run: depth-dependent parameters).

    Parameters
    ----------
    trial : optuna.trial.Trial
        Anything with Optuna's ``suggest_int``, ``suggest_float`` and ``suggest_categorical``.
    space : CNNSpace or MLPSpace
    training_space : TrainingSpace
    epochs : int

    Returns
    -------
    dict
        A complete configuration in the same set :func:`random_joint_config` draws from.
    """
    if space.family == "cnn":
        architecture = _suggest_cnn(trial, space)
    elif space.family == "mlp":
        architecture = _suggest_mlp(trial, space)
    else:
        raise ValueError(f"`space` must be a CNNSpace or MLPSpace, got {space!r}.")
    lr = trial.suggest_float("lr", training_space.lr[0], training_space.lr[1], log=True)
    wd_lo, wd_hi = (math.log10(v) for v in training_space.weight_decay)
    exponent = trial.suggest_float("log10_weight_decay", wd_lo, wd_hi)
    weight_decay = 0.0 if exponent < wd_lo + 1.0 else min(max(10.0**exponent, training_space.weight_decay[0]),
                                                          training_space.weight_decay[1])
    batch_size = trial.suggest_int("batch_size", *training_space.batch_size)
    return complete_config(
        {**architecture, "lr": lr, "weight_decay": weight_decay, "batch_size": batch_size, "epochs": int(epochs)},
        family=space.family,
    )


def _suggest_cnn(trial: Any, space: Any) -> dict[str, Any]:
    depth = trial.suggest_int("depth", *space.num_conv_layers)
    channels = [trial.suggest_int("channels_first", *space.channels_first)]
    for layer in range(1, depth):
        prev = channels[-1]
        growth = trial.suggest_float(f"growth_{layer}", 0.0, 1.0)
        channels.append(int_from_unit(growth, prev, min(2 * prev, space.channels_upper)))
    pools = space.derived_maxpools(channels)
    strides = [1] * depth
    for k, position in enumerate(i for i, flag in enumerate(pools) if flag):
        if trial.suggest_categorical(f"downsample_{k}", ("maxpool", "stride2")) == "stride2":
            pools[position], strides[position] = 0, 2
    bns = placed_flags(depth, trial.suggest_categorical("bn_fraction", JOINT_BN_FRACTIONS))
    dropouts = placed_flags(depth, trial.suggest_categorical("do_fraction", DO_FRACTIONS))
    probs = [0.0] * depth
    if any(dropouts):
        p = trial.suggest_categorical("do_p", DO_PROBS)
        p_first = trial.suggest_categorical("do_p_first", DO_FIRST_PROBS) if dropouts[0] else 0.0
        probs = [(p_first if i == 0 else p) if flag else 0.0 for i, flag in enumerate(dropouts)]
    spacing = trial.suggest_categorical("shortcut_spacing", SHORTCUT_SPACINGS)
    return {
        "out_channels": channels,
        "apply_maxpools": pools,
        "strides": strides,
        "apply_bns": bns,
        "apply_dropouts": dropouts,
        "dropout_probs": probs,
        "shortcuts": shortcuts_with_spacing(depth, spacing),
        "act": trial.suggest_categorical("act", ACTIVATIONS),
    }


def _suggest_mlp(trial: Any, space: Any) -> dict[str, Any]:
    layers = trial.suggest_int("hidden_layers", *space.num_hidden_layers)
    widths = [trial.suggest_int(f"width_{i}", *space.hidden_nodes) for i in range(layers)]
    if not widths:
        return {"hidden_mlp": [], "dropout_probs_mlp": []}
    p = trial.suggest_categorical("do_p", MLP_DO_PROBS)
    act = trial.suggest_categorical("act", ACTIVATIONS)
    return {"hidden_mlp": widths, "dropout_probs_mlp": [p] * layers, "act": act}


def _draw_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31 - 1))


def describe(config: Mapping[str, Any]) -> str:
    """A short human description of a config (layers, widths, batch size) for progress lines."""
    if config.get("family") == "cnn":
        return f"cnn {list(config['out_channels'])} bs {config['batch_size']}"
    return f"mlp {list(config['hidden_mlp'])} bs {config['batch_size']}"
