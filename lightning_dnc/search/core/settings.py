"""The settings record of a search: everything that decides which candidates it proposes.

:class:`SearchSettings` is frozen, torch-free and validated once, here. The Python API
(``DeepNCheapTuner``) and the command line both pack their arguments into it; the engine, the
search loop and resume read it. Two searches with equal records (and equal spaces) propose the
same candidates, so a resume compares the journal's record with the one asked for, field by
field (:func:`lightning_dnc.search.journal.same_search.header_changes`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lightning_dnc.search.stages.grid import validate_order
from lightning_dnc.search.core.objective import Objective
from lightning_dnc.search.fidelity.rungs import FIDELITY_KEYS, check_fidelity
from lightning_dnc.space.exact_costs import DataShape
from lightning_dnc.validation import SettingError, check_choice, check_int, check_optional_int
from lightning_dnc.vocabulary import FAMILIES, MODELS, STRATEGIES

DEFAULT_SEARCH_EPOCHS = 100
"""Epochs each candidate trains during the search (SPEC §2: the paper's 100)."""

LEGACY_HEADER_KEYS = {"epochs": "search_epochs"}
"""Setting names of journals written by lightning-dnc 0.1.0 -> today's names."""
DEFAULT_STRATEGY = "joint"
"""The strategy of a new search when none is asked for (with or without ``fidelity``)."""
DEFAULT_MODEL = "composite"
"""The model of a new search's BO stages when none is asked for (``"paper"`` and a fidelity: always
``"scalar"``). Chosen on LCBench's held-out half (17 tasks x 5 seeds, budget 30;
``bench/results/hpo_composite_test.json``): median regret <= multivariate TPE's on 12/17 tasks at
wc 0.1 and 13/17 at wc 1 (scalar: 10/17 and 10/17), the same search as the scalar model at wc 0;
the scalar model ended lower at wc 10 (0.039 vs 0.049, not significant)."""
LEGACY_MODEL = "scalar"
"""The model of a journal header without one: every search before the composite model existed."""


def default_model(strategy: str | None, fidelity: str | None = None) -> str:
    """The model of a search without one: ``"scalar"`` for the paper's strategy or with a fidelity
    (the rung stages feed their GP a view of rung results), else :data:`DEFAULT_MODEL`."""
    return "scalar" if strategy == "paper" or fidelity is not None else DEFAULT_MODEL


TIME_MODELS = ("features", "gp")
"""How the composite model treats a measured time (``t_tr``, ``latency``) when it knows the data's
shape: ``"features"``, a regression on exact features for its picks and denoised times for its
decisions; ``"gp"``, the accuracy GP's second target and the raw measurements."""
DEFAULT_TIME_MODEL = "features"
"""The time model of a new search."""
LEGACY_TIME_MODEL = "gp"
"""The time model of a journal header without one: composite searches before the regression ran it."""

LEGACY_STRATEGY = "paper"
"""The strategy of a journal header without one (written before strategies existed, or with
``fidelity`` when a fidelity ran only the paper's stages): such journals resume as they ran."""
NOT_IN_HEADER = ("objective", "space", "training_space", "data_shape")
"""Fields the journal header stores in sections of their own."""


@dataclass(frozen=True)
class SearchSettings:
    """What a search proposes, and how many: budgets, objective, order, seed.

    Parameters
    ----------
    family : {"cnn", "mlp"}, optional
        ``None`` until the model tells it (:meth:`for_family`).
    objective : Objective
        The objective with the user's references (``None`` references are measured).
    prior_points, steps : int, default 15, 15
        Stage-1 Sobol prior points and BO steps (>= 0, at least one in total).
    training_prior_points, training_steps : int, optional
        Stage-3 budget (>= 0); ``prior_points`` / ``steps`` when not given.
    explore : int, default 1000
        Random candidates scored by expected improvement per BO pick (>= 1).
    search_epochs : int, default :data:`DEFAULT_SEARCH_EPOCHS`
        Epochs each candidate trains (>= 1); every proposed config carries it as ``epochs``.
    stage2_order : sequence of str, optional
        Stage-2 grid groups in order; default ``ac ds bn do sc`` (CNN) or ``ac do`` (MLP);
        ``[]`` skips stage 2.
    top_k : int, default 1
        Configurations returned by the final ranking (>= 1).
    seed : int, default 0
        Seeds the BO candidate pools and every candidate's training (>= 0).
    space : CNNSpace or MLPSpace, optional
        The stage-1 space; ``None``: the journal's on resume, else the SPEC space of the family.
    training_space : TrainingSpace, optional
        The stage-3 space; ``None`` as for ``space``.
    patience : int, optional
        Stop a candidate after this many epochs without a better ``val_acc`` (classification)
        or ``val_loss`` (regression); ``None`` trains every epoch (SPEC §2).
    strategy : {"paper", "joint", "revisit", "train-first"}, optional
        Which stages run (:mod:`lightning_dnc.search.stages.strategies`); ``"paper"`` is SPEC §5 exactly.
        ``None``: the journal's on resume, else :data:`DEFAULT_STRATEGY`, filled in when the
        search starts. Every strategy runs with every ``fidelity``.
    fidelity : {None, "asha"}, default None
        ``None`` trains every candidate ``search_epochs`` epochs (the paper). ``"asha"``: candidates
        start at the lowest rung and are promoted by asynchronous successive halving
        (:mod:`lightning_dnc.search.fidelity.rungs`).
    min_epochs : int, optional
        Epochs of the lowest rung (>= 1, < ``search_epochs``); default
        :func:`~lightning_dnc.search.fidelity.rungs.default_min_epochs`. Only with ``fidelity="asha"``.
    reduction_factor : int, default 3
        ``eta`` of successive halving (>= 2): rungs at ``min_epochs * eta**k``, the top one at
        ``search_epochs``; the best ``1/eta`` of a rung are promoted.
    rung_model : {"highest", "shifted", "top"}, optional
        The point each stage (its GP) sees per candidate from its rung results (see
        :mod:`lightning_dnc.search.fidelity.rungs`); default
        :data:`~lightning_dnc.search.fidelity.rungs.DEFAULT_RUNG_MODEL`.
    model : {"composite", "scalar"}, optional
        What the GP of the BO stages learns: ``"scalar"``, one GP on the whole loss (the paper's);
        ``"composite"``, a GP on the error and a cost model, with the expected improvement of the
        loss computed from both (:mod:`lightning_dnc.search.stages.composite`). ``"paper"`` (and
        ``fidelity="asha"``) runs ``"scalar"`` only. ``None``: the journal's on resume, else
        :func:`default_model` of the strategy, filled in once the strategy is known.
    time_model : {"features", "gp"}, optional
        With ``model="composite"``, a measured time's model when the data's shape is known
        (:data:`TIME_MODELS`); ``None``: the journal's on resume (``"gp"`` for journals written
        before the regression), else :data:`DEFAULT_TIME_MODEL`. Kept so a search resumes as it ran.
    data_shape : DataShape, optional
        The training data's shape (:class:`~lightning_dnc.space.exact_costs.DataShape`), filled in
        by ``run_search`` for the built-in datamodules and network: with it the composite model
        computes ``n_params``, ``flops`` and CPU ``memory`` exactly instead of learning them, and
        (``time_model="features"``) regresses the measured times on exact features and decides on
        denoised times. Not stored in the journal (it follows from the data, which the journal's
        fingerprint checks).

    Raises
    ------
    SettingError
        A ``ValueError`` naming the setting, the value and what is allowed.
    """

    family: str | None = None
    objective: Objective = field(default_factory=Objective)
    prior_points: int = 15
    steps: int = 15
    training_prior_points: int | None = None
    training_steps: int | None = None
    explore: int = 1000
    search_epochs: int = DEFAULT_SEARCH_EPOCHS
    stage2_order: tuple[str, ...] | None = None
    top_k: int = 1
    seed: int = 0
    space: Any = None
    training_space: Any = None
    patience: int | None = None
    strategy: str | None = None
    fidelity: str | None = None
    min_epochs: int | None = None
    reduction_factor: int = 3
    rung_model: str | None = None
    model: str | None = None
    time_model: str | None = None
    data_shape: Any = None

    def __post_init__(self) -> None:
        if self.data_shape is not None and not isinstance(self.data_shape, DataShape):
            raise SettingError("data_shape", f"`data_shape` must be a DataShape or None, got {self.data_shape!r}.")
        if self.family is not None:
            check_choice("family", self.family, FAMILIES)
        if self.space is not None and getattr(self.space, "family", None) not in FAMILIES:
            raise SettingError("space", f"`space` must be a CNNSpace or MLPSpace, got {type(self.space).__name__}.")
        if self.space is not None and self.family is not None and self.space.family != self.family:
            raise SettingError(
                "space", f"`space` is a {self.space.family} space but `family` is {self.family!r}; make them agree."
            )
        if self.training_space is not None and getattr(self.training_space, "family", None) != "training":
            raise SettingError(
                "training_space", f"`training_space` must be a TrainingSpace, got {type(self.training_space).__name__}."
            )
        if not isinstance(self.objective, Objective):
            raise SettingError("objective", f"`objective` must be an Objective, got {self.objective!r}.")
        counts = {"prior_points": 0, "steps": 0, "explore": 1, "search_epochs": 1, "top_k": 1, "seed": 0}
        for name, minimum in counts.items():
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum))
        if self.prior_points + self.steps < 1:
            raise SettingError(
                "prior_points",
                f"Stage 1 needs at least one evaluation: `prior_points` + `steps` must be >= 1, got "
                f"{self.prior_points!r} + {self.steps!r}.",
                others=("steps",),
            )
        object.__setattr__(self, "patience", check_optional_int("patience", self.patience, 1))
        if self.strategy is not None:
            check_choice("strategy", self.strategy, STRATEGIES)
        if self.model is not None:
            check_choice("model", self.model, MODELS)
        if self.time_model is not None:
            check_choice("time_model", self.time_model, TIME_MODELS)
        if self.model == "composite" and (self.strategy == "paper" or self.fidelity is not None):
            raise SettingError(
                "model", f"`model='composite'` needs a strategy other than 'paper' and fidelity=None (the paper's "
                f"procedure and the rung stages run the scalar model); got strategy {self.strategy!r}, fidelity "
                f"{self.fidelity!r}: set `model` to 'scalar' (or leave it unset), or change `strategy` / `fidelity`.",
                others=("strategy", "fidelity"))
        for name, fallback in (("training_prior_points", self.prior_points), ("training_steps", self.steps)):
            value = getattr(self, name)
            object.__setattr__(self, name, fallback if value is None else check_int(name, value, 0))
        order = self.stage2_order
        if order is not None:
            if isinstance(order, str) or not isinstance(order, Sequence):
                raise SettingError("stage2_order", f"`stage2_order` must be a list of group names, got {order!r}.")
            order = tuple(order)
        if self.family is not None:
            order = validate_order(self.family, order)
        object.__setattr__(self, "stage2_order", order)
        for name, value in check_fidelity(self.fidelity, self.min_epochs, self.reduction_factor, self.rung_model,
                                          self.search_epochs, self.patience).items():
            object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ derived records
    def for_family(self, family: str) -> SearchSettings:
        """This record for ``family`` (its stage-2 order checked or defaulted for that family)."""
        if self.family is not None and self.family != family:
            raise SettingError("family", f"`family` is {self.family!r} in the settings but {family!r} was asked for.")
        if self.space is not None and self.space.family != family:
            raise SettingError("space", f"`space` is a {self.space.family} space but the model family is {family!r}.")
        return dataclasses.replace(self, family=family)

    def replace(self, **changes: Any) -> SearchSettings:
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ plain data
    def header_settings(self) -> dict[str, Any]:
        """The plain settings stored in a journal header (the objective and spaces have their own sections)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in NOT_IN_HEADER}
        out["stage2_order"] = None if self.stage2_order is None else list(self.stage2_order)
        if self.fidelity is None:  # the paper's search: headers as before multi-fidelity existed
            for key in FIDELITY_KEYS:
                out.pop(key)
        return out


    @classmethod
    def from_header(cls, settings: Mapping[str, Any], objective: Mapping[str, Any] | None = None) -> SearchSettings:
        """Inverse of :meth:`header_settings` (also for 0.1.0 journals, which said ``epochs``)."""
        return cls(**normalise_header_settings(settings),
                   objective=Objective() if objective is None else Objective.from_dict(objective))


def normalise_header_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A header's settings with today's names (0.1.0 journals said ``epochs`` for ``search_epochs``)."""
    out = {LEGACY_HEADER_KEYS.get(key, key): value for key, value in settings.items()}
    out.setdefault("strategy", LEGACY_STRATEGY)  # journals from before strategies ran the paper's stages
    out.setdefault("model", LEGACY_MODEL)  # journals from before the composite model ran the scalar one
    out.setdefault("time_model", LEGACY_TIME_MODEL)  # and before the regression, the GP's second target
    return out


__all__ = ["DEFAULT_MODEL", "DEFAULT_SEARCH_EPOCHS", "DEFAULT_STRATEGY", "DEFAULT_TIME_MODEL", "TIME_MODELS", "SearchSettings", "default_model",
           "normalise_header_settings"]
