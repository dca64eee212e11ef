"""The shared machinery of every search space: sampling, covariance, (de)serialisation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from lightning_dnc.gp.arrays import EncodedConfigs
from lightning_dnc.space._checks import DEFAULT_OMEGA, per_variable
from lightning_dnc.space._sampling import unit_points


class SearchSpace(ABC):
    """Base class of :class:`CNNSpace`, :class:`MLPSpace` and :class:`TrainingSpace`.

    Subclasses define the unit-cube dimension, the map from a unit point to a config, the encoding
    to flat arrays, validation and the largest config. Kernel hyperparameters (``omega``,
    ``weights``) are per *kernel variable* (``variables``), SPEC §7.

    Attributes
    ----------
    family : str
        ``"cnn"``, ``"mlp"`` or ``"training"``.
    keys : tuple of str
        The config keys a sample holds.
    variables : tuple of str
        The kernel variables, in the order of the omega and weights arrays.
    """

    family: ClassVar[str]
    keys: ClassVar[tuple[str, ...]]
    variables: ClassVar[tuple[str, ...]]

    def __init__(self, omega: float | Mapping[str, float] = DEFAULT_OMEGA, weights: Mapping[str, float] | None = None):
        self.omega: dict[str, float] = per_variable("omega", omega, self.variables, DEFAULT_OMEGA, allow_zero=False)
        self.weights: dict[str, float] = per_variable("weights", weights, self.variables, 1.0, allow_zero=True)

    # ------------------------------------------------------------------ to implement
    @abstractmethod
    def _unit_dimension(self) -> int:
        """Dimension of the unit cube a config is drawn from."""

    @abstractmethod
    def _config_from_unit(self, u: Sequence[float]) -> dict[str, Any]:
        """The config for one unit point ``u`` (plain floats in [0, 1), SPEC §4 mapping)."""

    @abstractmethod
    def _limits(self) -> dict[str, Any]:
        """Constructor arguments other than ``omega``/``weights``, JSON-able."""

    @abstractmethod
    def encode(self, configs: Sequence[Mapping[str, Any]]) -> EncodedConfigs:
        """Configs as the flat arrays the GP kernels read (see :mod:`lightning_dnc.gp.arrays`)."""

    @abstractmethod
    def validate(self, config: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` naming the bad key unless ``config`` lies in this space."""

    @abstractmethod
    def largest_config(self) -> dict[str, Any]:
        """The stage config of the biggest network this space allows."""

    # ------------------------------------------------------------------ shared API
    def sample(self, n: int, seed: int | None = 0, method: str = "sobol") -> list[dict[str, Any]]:
        """``n`` configs (plain dicts of ``keys``) following SPEC §4.

        Parameters
        ----------
        n : int
            Number of configs.
        seed : int or None, default 0
            Seed of the uniform pool (``method="random"``); ignored by the deterministic Sobol
            sequence.
        method : {"sobol", "random"}, default "sobol"
            ``"sobol"``: unscrambled Sobol points after the all-zeros one (the first config is the
            centre of the box); ``"random"``: uniform random points.
        """
        return self._configs_from_units(unit_points(n, self._unit_dimension(), seed, method))

    def _configs_from_units(self, points: np.ndarray) -> list[dict[str, Any]]:
        """One config per row of ``points`` (spaces may override with a vectorised twin)."""
        return [self._config_from_unit(u) for u in points.tolist()]  # plain Python floats

    def centre(self) -> dict[str, Any]:
        """The config at the centre of the unit box (the first Sobol prior point)."""
        return self._config_from_unit([0.5] * self._unit_dimension())

    def hyperparameter_arrays(
        self, omega: float | Mapping[str, float] | None = None, weights: Mapping[str, float] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(omega, weights)`` as float64 arrays in ``variables`` order (overrides optional)."""
        om = self.omega if omega is None else per_variable("omega", omega, self.variables, DEFAULT_OMEGA, False)
        w = self.weights if weights is None else per_variable("weights", weights, self.variables, 1.0, True)
        return (np.array([om[v] for v in self.variables]), np.array([w[v] for v in self.variables]))

    def covariance(
        self,
        configs_a: Sequence[Mapping[str, Any]] | EncodedConfigs,
        configs_b: Sequence[Mapping[str, Any]] | EncodedConfigs | None = None,
        *,
        omega: float | Mapping[str, float] | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> np.ndarray:
        """SPEC §7 kernel matrix between two lists of configs, shape (len(a), len(b)), float64.

        ``configs_b`` defaults to ``configs_a``. ``omega``/``weights`` override the space's.
        """
        from lightning_dnc.gp.kernels import cross_covariance  # loads numba on first use

        a = configs_a if isinstance(configs_a, EncodedConfigs) else self.encode(configs_a)
        if configs_b is None:
            b = a
        else:
            b = configs_b if isinstance(configs_b, EncodedConfigs) else self.encode(configs_b)
        om, w = self.hyperparameter_arrays(omega, weights)
        return cross_covariance(a, b, om, w)

    def to_dict(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-able dict (plus ``family``); see :meth:`from_dict`."""
        return {"family": self.family, **self._limits(), "omega": dict(self.omega), "weights": dict(self.weights)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SearchSpace":
        """Rebuild a space from :meth:`to_dict` output (``family`` must match the class)."""
        args = dict(d)
        family = args.pop("family", cls.family)
        if family != cls.family:
            raise ValueError(f"{cls.__name__}.from_dict needs family {cls.family!r}, got {family!r}.")
        return cls(**args)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SearchSpace):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable-looking value object: compare, don't hash

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "family")
        return f"{type(self).__name__}({args})"

    def _check_keys(self, config: Mapping[str, Any], allowed: Sequence[str]) -> None:
        if not isinstance(config, Mapping):
            raise ValueError(f"A configuration must be a dict, got {type(config).__name__}.")
        unknown = sorted(set(config) - set(allowed))
        if unknown:
            raise ValueError(f"Unknown configuration key(s) {unknown} for {type(self).__name__}; valid keys are {list(allowed)}.")
        missing = [k for k in self.keys if k not in config and k not in self._optional_keys()]
        if missing:
            raise ValueError(f"The configuration lacks {missing} needed by {type(self).__name__}; it has {sorted(config)}.")

    def _optional_keys(self) -> tuple[str, ...]:
        return ()
