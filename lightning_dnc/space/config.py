"""Configuration dictionaries: the names, the SPEC defaults and their validation.

A *configuration* is a plain JSON-serialisable ``dict``. This module is the single place that
knows which keys exist, what their defaults are (SPEC §3–§4) and how lengths must agree. Every
other room (models, search, CLI) completes and validates configs through :func:`complete_config`.

Keys
----
family : {"cnn", "mlp"}
    Model family. Inferred from ``out_channels`` when absent.
out_channels : list of int, length n (CNN only)
    Channels of each conv layer.
apply_maxpools, strides, apply_bns, apply_dropouts, shortcuts : list of int, length n (CNN only)
    Per conv layer flags (``strides`` entries are 1 or 2).
dropout_probs : list of float, length n (CNN only)
    Dropout probability of each conv layer; used only where ``apply_dropouts`` is 1.
act : {"relu", "tanh", "sigmoid"}
    Activation of every layer.
hidden_mlp : list of int
    Widths of the hidden Linear layers (the whole MLP, or the CNN's head).
dropout_probs_mlp : list of float, same length as ``hidden_mlp``
    Dropout probability after each hidden Linear layer.
lr : float > 0
weight_decay : float >= 0 or "auto"
    ``"auto"`` resolves to the SPEC §2 rule once the parameter count is known.
batch_size : int >= 1
epochs : int >= 1, optional
    Training epochs of the candidate (the search's ``epochs`` when absent).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lightning_dnc.validation import is_finite_number
from lightning_dnc.vocabulary import FAMILIES
ACTIVATIONS = ("relu", "tanh", "sigmoid")

CNN_LAYER_KEYS = (
    "out_channels",
    "apply_maxpools",
    "strides",
    "apply_bns",
    "apply_dropouts",
    "dropout_probs",
    "shortcuts",
)
HEAD_KEYS = ("hidden_mlp", "dropout_probs_mlp")
TRAINING_KEYS = ("lr", "weight_decay", "batch_size", "epochs")
CNN_KEYS = ("family", *CNN_LAYER_KEYS, "act", *HEAD_KEYS, *TRAINING_KEYS)
MLP_KEYS = ("family", "act", *HEAD_KEYS, *TRAINING_KEYS)

DEFAULT_LR = 1e-3
DEFAULT_BATCH_SIZE = 256
DEFAULT_MLP_DROPOUT = 0.2
DEFAULT_FIRST_CONV_DROPOUT = 0.1
DEFAULT_CONV_DROPOUT = 0.3
MAXPOOL_THRESHOLDS = (64, 128, 256)


def infer_family(config: Mapping[str, Any]) -> str:
    """Return the family of ``config``: its ``family`` key, else ``"cnn"`` if it has conv layers."""
    family = config.get("family")
    if family is None:
        return "cnn" if "out_channels" in config else "mlp"
    if family not in FAMILIES:
        raise ValueError(f"`family` must be one of {list(FAMILIES)}, got {family!r}.")
    return str(family)


def derive_maxpools(out_channels: Sequence[int]) -> list[int]:
    """Max-pool flags derived from channel growth (SPEC §4).

    A max-pool goes after layer ``i - 1`` where ``out_channels[i]`` first exceeds 64, then 128,
    then 256 (at most three).

    Parameters
    ----------
    out_channels : sequence of int
        Channels per conv layer, length n.

    Returns
    -------
    list of int
        Length n, 1 where a max-pool follows the layer.
    """
    flags = [0] * len(out_channels)
    for threshold in MAXPOOL_THRESHOLDS:
        for i in range(1, len(out_channels)):
            if out_channels[i] > threshold:
                flags[i - 1] = 1
                break
    return flags


def shortcut_spacing_for_depth(num_layers: int) -> int:
    """Default shortcut spacing from depth (SPEC §4): 0 (none) for n <= 8, 4 for 9..14, else 2."""
    if num_layers <= 8:
        return 0
    if num_layers <= 14:
        return 4
    return 2


def shortcuts_with_spacing(num_layers: int, spacing: int) -> list[int]:
    """Shortcut flags at indices 0, e, 2e, ... up to n - 3 (``spacing`` e = 0 means none)."""
    flags = [0] * num_layers
    if spacing > 0:
        for j in range(0, num_layers - 2, spacing):
            flags[j] = 1
    return flags


def default_conv_dropout_probs(num_layers: int) -> list[float]:
    """SPEC §4 dropout: 0.1 on the first conv layer, 0.3 on the others."""
    return [DEFAULT_FIRST_CONV_DROPOUT if i == 0 else DEFAULT_CONV_DROPOUT for i in range(num_layers)]


def auto_weight_decay(family: str, num_params: int) -> float:
    """SPEC §2 default weight decay when it is not searched.

    CNN: ``1e-11 * N_p`` if ``N_p >= 1e6`` else 0; MLP: ``1e-9 * N_p`` if ``N_p >= 1e4`` else 0.
    """
    if family == "cnn":
        return 1e-11 * num_params if num_params >= 1_000_000 else 0.0
    return 1e-9 * num_params if num_params >= 10_000 else 0.0


def complete_config(config: Mapping[str, Any], family: str | None = None) -> dict[str, Any]:
    """Fill every missing key with its SPEC default and validate the result.

    Parameters
    ----------
    config : mapping
        A partial or full configuration (see the module docstring for the keys).
    family : {"cnn", "mlp"}, optional
        Overrides the family inferred from ``config``.

    Returns
    -------
    dict
        A new dict with every key of the family, plain Python ints/floats/strings.

    Raises
    ------
    ValueError
        On an unknown key (the message lists the valid keys), a list of the wrong length, or a
        value outside its allowed range.
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"A configuration must be a dict, got {type(config).__name__}.")
    fam = family if family is not None else infer_family(config)
    if fam not in FAMILIES:
        raise ValueError(f"`family` must be one of {list(FAMILIES)}, got {fam!r}.")
    valid = CNN_KEYS if fam == "cnn" else MLP_KEYS
    unknown = sorted(set(config) - set(valid))
    if unknown:
        raise ValueError(
            f"Unknown configuration key(s) {unknown} for family {fam!r}; valid keys are {list(valid)}."
        )
    out: dict[str, Any] = {"family": fam}
    if fam == "cnn":
        if "out_channels" not in config:
            raise ValueError("A CNN configuration needs `out_channels` (a list of ints, one per conv layer).")
        channels = _int_list(config["out_channels"], "out_channels", lo=1)
        if not channels:
            raise ValueError("`out_channels` must list at least one conv layer, got [].")
        n = len(channels)
        out["out_channels"] = channels
        defaults = {
            "apply_maxpools": derive_maxpools(channels),
            "strides": [1] * n,
            "apply_bns": [1] * n,
            "apply_dropouts": [1] * n,
            "dropout_probs": default_conv_dropout_probs(n),
            "shortcuts": shortcuts_with_spacing(n, shortcut_spacing_for_depth(n)),
        }
        for key, default in defaults.items():
            value = config.get(key, default)
            if key == "dropout_probs":
                out[key] = _prob_list(value, key)
            elif key == "strides":
                out[key] = _int_list(value, key, allowed=(1, 2))
            else:
                out[key] = _int_list(value, key, allowed=(0, 1))
            if len(out[key]) != n:
                raise ValueError(
                    f"`{key}` must have one entry per conv layer (length {n}, like `out_channels`), "
                    f"got length {len(out[key])}: {list(out[key])!r}."
                )
        _check_shortcuts(out["shortcuts"])
        default_hidden: list[int] = []
        default_head_dropout: float = DEFAULT_MLP_DROPOUT
    else:
        default_hidden = []
        default_head_dropout = DEFAULT_MLP_DROPOUT
    out["act"] = config.get("act", "relu")
    if out["act"] not in ACTIVATIONS:
        raise ValueError(f"`act` must be one of {list(ACTIVATIONS)}, got {out['act']!r}.")
    out["hidden_mlp"] = _int_list(config.get("hidden_mlp", default_hidden), "hidden_mlp", lo=1)
    head_dropout = config.get("dropout_probs_mlp", [default_head_dropout] * len(out["hidden_mlp"]))
    out["dropout_probs_mlp"] = _prob_list(head_dropout, "dropout_probs_mlp")
    if len(out["dropout_probs_mlp"]) != len(out["hidden_mlp"]):
        raise ValueError(
            f"`dropout_probs_mlp` must have one entry per hidden layer (length "
            f"{len(out['hidden_mlp'])}, like `hidden_mlp`), got {out['dropout_probs_mlp']!r}."
        )
    out["lr"] = _positive_float(config.get("lr", DEFAULT_LR), "lr")
    wd = config.get("weight_decay", "auto")
    if wd == "auto":
        out["weight_decay"] = "auto"
    else:
        out["weight_decay"] = _float(wd, "weight_decay")
        if out["weight_decay"] < 0:
            raise ValueError(f"`weight_decay` must be >= 0 or 'auto', got {wd!r}.")
    out["batch_size"] = _positive_int(config.get("batch_size", DEFAULT_BATCH_SIZE), "batch_size")
    if "epochs" in config and config["epochs"] is not None:
        out["epochs"] = _positive_int(config["epochs"], "epochs")
    return out


def _check_shortcuts(flags: Sequence[int]) -> None:
    n = len(flags)
    for j in range(n - 1):
        if flags[j] and flags[j + 1]:
            raise ValueError(
                f"`shortcuts` may not have two consecutive 1s (layers {j} and {j + 1}): {list(flags)!r}."
            )
    if n and any(flags[max(0, n - 2):]):
        raise ValueError(
            f"The last two entries of `shortcuts` must be 0 (a shortcut skips two layers): {list(flags)!r}."
        )


def _int_list(value: Any, key: str, lo: int | None = None, allowed: tuple[int, ...] | None = None) -> list[int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"`{key}` must be a list of ints, got {value!r}.")
    out = []
    for v in value:
        if not is_finite_number(v) or not float(v).is_integer():
            raise ValueError(f"`{key}` must be a list of ints, got {list(value)!r}.")
        iv = int(v)
        if lo is not None and iv < lo:
            raise ValueError(f"Every entry of `{key}` must be >= {lo}, got {list(value)!r}.")
        if allowed is not None and iv not in allowed:
            raise ValueError(f"Every entry of `{key}` must be one of {list(allowed)}, got {list(value)!r}.")
        out.append(iv)
    return out


def _prob_list(value: Any, key: str) -> list[float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"`{key}` must be a list of probabilities in [0, 1), got {value!r}.")
    out = []
    for v in value:
        if not is_finite_number(v) or not (0.0 <= float(v) < 1.0):
            raise ValueError(f"Every entry of `{key}` must be a probability in [0, 1), got {list(value)!r}.")
        out.append(float(v))
    return out


def _float(value: Any, key: str) -> float:
    if not is_finite_number(value):
        raise ValueError(f"`{key}` must be a finite number, got {value!r}.")
    return float(value)


def _positive_float(value: Any, key: str) -> float:
    v = _float(value, key)
    if v <= 0:
        raise ValueError(f"`{key}` must be > 0, got {value!r}.")
    return v


def _positive_int(value: Any, key: str) -> int:
    if not is_finite_number(value) or not float(value).is_integer() or int(value) < 1:
        raise ValueError(f"`{key}` must be an integer >= 1, got {value!r}.")
    return int(value)
