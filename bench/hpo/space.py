"""The reduced LCBench space every method of ``bench/hpo_bench.py`` searches, and its mappings.

LCBench (YAHPO Gym) trains funnel-shaped MLPs with SGD: ``num_layers`` 1-5, ``max_units``
64-1024, ``batch_size`` 16-512, ``learning_rate`` 1e-4-0.1, ``weight_decay`` 1e-5-0.1,
``momentum`` 0.1-0.99, ``max_dropout`` 0-1, fidelity ``epoch`` 1-52. The benchmark searches this
reduced space (:data:`SPACE`):

========================  =================================================================
``num_layers``            integer 1-5
``max_units``             integer 64-1024
``batch_size``            integer 16-512, uniform on a linear scale for every method (SPEC §4's
                          integer rule, lightning-dnc's own sampling; LCBench itself draws it
                          log-uniformly)
``learning_rate``         1e-4-0.1
``weight_decay``          1e-5, or 1e-4-0.1 (the lowest decade is one value: SPEC §4's rule
                          "below 10 x the lower end -> no weight decay", with LCBench's lower
                          end 1e-5 standing for "none")
``max_dropout``           one of 0, 0.1, 0.2, 0.3, 0.4, 0.5 (lightning-dnc's MLP dropout grid)
``momentum``              fixed at the centre of LCBench's range, 0.545
========================  =================================================================

How each method reaches it
--------------------------
* lightning-dnc (:func:`dnc_spaces`, :func:`dnc_to_lcbench`): stage 1 searches ``MLPSpace``
  (1-5 hidden layers of 64-1024 units each, ``widths="equal"``, ``width_scale="log"``: one width
  for every layer, log-uniform, which is LCBench's own parameterisation of ``max_units``); an MLP
  maps to ``num_layers = len(hidden_mlp)`` and ``max_units = round(mean(hidden_mlp))`` (the
  funnel with the same layers and total hidden units, which is what the engine's MLP kernel
  compares). Until issue 14 the space drew each layer's width uniformly: the mean of 3-5 such
  widths is rarely below 300, so narrow networks (the cheap ones that win at wc > 0) were
  almost never proposed. Stage 2 runs only the ``do`` group
  (``max_dropout`` = the hidden layers' common dropout; stage 1's default 0.2); the ``ac`` group is
  left out because LCBench's networks are ReLU only. Stage 3 searches ``TrainingSpace(lr=(1e-4,
  0.1), weight_decay=(1e-5, 0.1), batch_size=(16, 512))``, whose "0" weight decay maps to 1e-5.
  Stages 1 and 2 train with lightning-dnc's defaults, lr 1e-3 and batch size 256; their weight
  decay ``"auto"`` (1e-9 x parameters) needs a parameter count the surrogate does not give, so it
  maps to 1e-5 ("none").
* Optuna (random, TPE, TPE multivariate, TPE + Hyperband, ASHA): :func:`suggest` -- ``max_units``
  and lr on a log scale as LCBench defines them, ``num_layers`` and ``batch_size`` uniform
  integers (linear), ``log10(weight_decay)`` uniform in [-5, -1] with the lowest decade mapped to
  1e-5 (the same rule), ``max_dropout`` categorical.
* DEHB, SMAC and SMAC-Hyperband: :func:`config_space` (ConfigSpace, the same parameters, ranges
  and scales) and :func:`from_values`.
* The reference sample and the one-epoch-top-k baseline: :func:`sample` (the same
  parameterisation as :func:`suggest`; the reference sample draws stream :data:`REFERENCE_STREAM`
  of its seed, a method's run stream :data:`RUN_STREAM`, so no run re-draws the reference).

Batch size: until issue 23 lightning-dnc drew it linearly (SPEC §4) while every peer drew it
log-uniformly (LCBench's scale), so the methods searched different distributions; now every method
draws it uniformly on the linear integer scale, lightning-dnc's own rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Ranges of the searched LCBench parameters (all methods).
SPACE: dict[str, tuple[float, float]] = {
    "num_layers": (1, 5),
    "max_units": (64, 1024),
    "batch_size": (16, 512),
    "learning_rate": (1e-4, 1e-1),
    "weight_decay": (1e-5, 1e-1),
}
#: ``max_dropout`` choices: lightning-dnc's MLP stage-2 dropout grid (0 .. 0.5).
DROPOUT_CHOICES: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
#: LCBench parameters held fixed (the centre of LCBench's momentum range).
FIXED: dict[str, float] = {"momentum": 0.545}
#: Weight decay standing for "none" (LCBench's lower end); values below 10x it collapse to it.
NO_WEIGHT_DECAY = 1e-5
#: lightning-dnc's stage-1/2 training defaults (SPEC §5) and its MLP stage-1 dropout.
DNC_DEFAULT_LR, DNC_DEFAULT_BATCH, DNC_DEFAULT_DROPOUT = 1e-3, 256, 0.2
#: The centre configuration: ``t_tr_ref`` of every task is its time per epoch (LCBench's own
#: defaults for the log-scaled parameters, lightning-dnc's default dropout).
CENTRE: dict[str, Any] = {"num_layers": 3, "max_units": 256, "batch_size": 91, "learning_rate": 10 ** -2.5,
                          "weight_decay": NO_WEIGHT_DECAY, "max_dropout": DNC_DEFAULT_DROPOUT, **FIXED}
#: ``numpy.random.default_rng([seed, stream])`` streams of :func:`sample`.
REFERENCE_STREAM, RUN_STREAM = 5000, 6000
KEYS = ("num_layers", "max_units", "batch_size", "learning_rate", "weight_decay", "max_dropout", "momentum")
REL_TOL = 1e-9


def weight_decay_from_exponent(exponent: float) -> float:
    """``10**exponent``, or :data:`NO_WEIGHT_DECAY` in the lowest decade (SPEC §4's rule)."""
    lo, hi = (math.log10(v) for v in SPACE["weight_decay"])
    if exponent < lo + 1.0:
        return NO_WEIGHT_DECAY
    return float(min(max(10.0**exponent, SPACE["weight_decay"][0]), SPACE["weight_decay"][1]))


def from_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """An LCBench configuration from the shared parameterisation (``log10_weight_decay``)."""
    return {
        "num_layers": int(values["num_layers"]),
        "max_units": int(values["max_units"]),
        "batch_size": int(values["batch_size"]),
        "learning_rate": float(values["learning_rate"]),
        "weight_decay": weight_decay_from_exponent(float(values["log10_weight_decay"])),
        "max_dropout": float(values["max_dropout"]),
        **FIXED,
    }


def suggest(trial: Any) -> dict[str, Any]:
    """The configuration of an Optuna trial (define-by-run, the shared parameterisation)."""
    lo_wd, hi_wd = (math.log10(v) for v in SPACE["weight_decay"])
    return from_values({
        "num_layers": trial.suggest_int("num_layers", *SPACE["num_layers"]),
        "max_units": trial.suggest_int("max_units", *SPACE["max_units"], log=True),
        "batch_size": trial.suggest_int("batch_size", *SPACE["batch_size"]),
        "learning_rate": trial.suggest_float("learning_rate", *SPACE["learning_rate"], log=True),
        "log10_weight_decay": trial.suggest_float("log10_weight_decay", lo_wd, hi_wd),
        "max_dropout": trial.suggest_categorical("max_dropout", DROPOUT_CHOICES),
    })


def config_space(seed: int) -> Any:
    """The shared parameterisation as a ConfigSpace space (for DEHB and SMAC; ConfigSpace 0.6 or 1.x)."""
    import ConfigSpace as CS

    lo_wd, hi_wd = (math.log10(v) for v in SPACE["weight_decay"])
    cs = CS.ConfigurationSpace(seed=seed)
    add = getattr(cs, "add", None) or cs.add_hyperparameters
    add([
        CS.UniformIntegerHyperparameter("num_layers", *SPACE["num_layers"]),
        CS.UniformIntegerHyperparameter("max_units", *SPACE["max_units"], log=True),
        CS.UniformIntegerHyperparameter("batch_size", *SPACE["batch_size"]),
        CS.UniformFloatHyperparameter("learning_rate", *SPACE["learning_rate"], log=True),
        CS.UniformFloatHyperparameter("log10_weight_decay", lo_wd, hi_wd),
        CS.OrdinalHyperparameter("max_dropout", list(DROPOUT_CHOICES)),
    ])
    return cs


def sample(n: int, seed: int, stream: int = REFERENCE_STREAM) -> list[dict[str, Any]]:
    """``n`` configurations drawn uniformly in the shared parameterisation (``stream``: the
    reference sample's, or :data:`RUN_STREAM` for a method's run)."""
    rng = np.random.default_rng([seed, stream])
    lo_wd, hi_wd = (math.log10(v) for v in SPACE["weight_decay"])

    def log_int(name: str) -> np.ndarray:
        lo, hi = SPACE[name]
        return np.clip(np.round(np.exp(rng.uniform(math.log(lo - 0.5), math.log(hi + 0.5), n))), lo, hi)

    layers = rng.integers(SPACE["num_layers"][0], SPACE["num_layers"][1] + 1, n)
    units = log_int("max_units")
    batch = rng.integers(SPACE["batch_size"][0], SPACE["batch_size"][1] + 1, n)
    lr = np.exp(rng.uniform(*(math.log(v) for v in SPACE["learning_rate"]), n))
    wd = rng.uniform(lo_wd, hi_wd, n)
    dropout = rng.integers(0, len(DROPOUT_CHOICES), n)
    return [from_values({"num_layers": layers[i], "max_units": units[i], "batch_size": batch[i],
                         "learning_rate": lr[i], "log10_weight_decay": wd[i],
                         "max_dropout": DROPOUT_CHOICES[dropout[i]]}) for i in range(n)]


def validate(config: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` unless ``config`` lies in the reduced space (keys, ranges, fixed values)."""
    if set(config) != set(KEYS):
        raise ValueError(f"An LCBench config needs exactly the keys {sorted(KEYS)}, got {sorted(config)}.")
    for name in ("num_layers", "max_units", "batch_size"):
        value = config[name]
        lo, hi = SPACE[name]
        if not isinstance(value, int) or not lo <= value <= hi:
            raise ValueError(f"`{name}` must be an integer in [{lo}, {hi}], got {value!r}.")
    lo, hi = SPACE["learning_rate"]
    if not lo * (1 - REL_TOL) <= config["learning_rate"] <= hi * (1 + REL_TOL):
        raise ValueError(f"`learning_rate` must be in [{lo:g}, {hi:g}], got {config['learning_rate']!r}.")
    wd = config["weight_decay"]
    if wd != NO_WEIGHT_DECAY and not 10 * NO_WEIGHT_DECAY * (1 - REL_TOL) <= wd <= SPACE["weight_decay"][1] * (1 + REL_TOL):
        raise ValueError(f"`weight_decay` must be {NO_WEIGHT_DECAY:g} or in [1e-4, 0.1], got {wd!r}.")
    if config["max_dropout"] not in DROPOUT_CHOICES:
        raise ValueError(f"`max_dropout` must be one of {list(DROPOUT_CHOICES)}, got {config['max_dropout']!r}.")
    for name, value in FIXED.items():
        if config[name] != value:
            raise ValueError(f"`{name}` is fixed at {value!r} in the reduced space, got {config[name]!r}.")


# --------------------------------------------------------------------------- lightning-dnc's view
def dnc_spaces() -> tuple[Any, Any]:
    """lightning-dnc's stage-1 ``MLPSpace`` and stage-3 ``TrainingSpace`` for the reduced space."""
    from lightning_dnc.space import MLPSpace, TrainingSpace

    return (MLPSpace(num_hidden_layers=SPACE["num_layers"], hidden_nodes=SPACE["max_units"], widths="equal",
                     width_scale="log"),
            TrainingSpace(lr=SPACE["learning_rate"], weight_decay=SPACE["weight_decay"],
                          batch_size=SPACE["batch_size"]))


#: lightning-dnc's stage-2 groups on LCBench (dropout only: LCBench's MLPs are ReLU only).
DNC_STAGE2_ORDER = ("do",)


def dnc_to_lcbench(config: Mapping[str, Any]) -> dict[str, Any]:
    """The LCBench configuration of a complete lightning-dnc MLP configuration (see module doc)."""
    from lightning_dnc.space import complete_config

    config = complete_config(config, family="mlp")
    hidden: Sequence[int] = config["hidden_mlp"]
    if not hidden:
        raise ValueError("LCBench networks have at least one hidden layer; got `hidden_mlp` = [].")
    if config["act"] != "relu":
        raise ValueError(f"LCBench networks are ReLU only; got `act` = {config['act']!r}.")
    probs = set(config["dropout_probs_mlp"])
    if len(probs) != 1:
        raise ValueError(f"One dropout for every hidden layer is expected, got {config['dropout_probs_mlp']!r}.")
    wd = config["weight_decay"]
    return {
        "num_layers": len(hidden),
        "max_units": int(min(max(round(sum(hidden) / len(hidden)), SPACE["max_units"][0]), SPACE["max_units"][1])),
        "batch_size": int(config["batch_size"]),
        "learning_rate": float(config["lr"]),
        "weight_decay": NO_WEIGHT_DECAY if wd == "auto" or float(wd) < 10 * NO_WEIGHT_DECAY else float(wd),
        "max_dropout": float(probs.pop()),
        **FIXED,
    }


def describe() -> dict[str, Any]:
    """The reduced space as plain data (stored in the JSON output's settings)."""
    return {"ranges": {k: list(v) for k, v in SPACE.items()}, "max_dropout": list(DROPOUT_CHOICES),
            "fixed": dict(FIXED), "no_weight_decay": NO_WEIGHT_DECAY, "centre": dict(CENTRE),
            "dnc_stage2_order": list(DNC_STAGE2_ORDER), "batch_size_scale": "linear"}
