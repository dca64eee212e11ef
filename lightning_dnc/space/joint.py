"""Two spaces searched as one: e.g. the architecture skeleton and the training hyperparameters.

Used by the ``"joint"`` search strategy (stage 1 over architecture, learning rate, weight decay and
batch size together). A sample draws one unit point over both spaces' dimensions, so Sobol prior
points cover the pair (the first one is both centres) and random pools are uniform in both. The
GP kernel is the mean of the two spaces' SPEC §7 kernels (:mod:`lightning_dnc.gp.joint`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from lightning_dnc.gp.joint import JointEncoded
from lightning_dnc.space._sampling import unit_points
from lightning_dnc.space.base import SearchSpace
from lightning_dnc.space.pool import ArrayPool


class JointSpace:
    """The product of two search spaces with disjoint keys.

    Parameters
    ----------
    first, second : SearchSpace
        E.g. ``MLPSpace()`` and ``TrainingSpace()``; their ``keys`` and ``variables`` must not overlap.

    Attributes
    ----------
    keys, variables : tuple of str
        The first space's, then the second's.
    """

    family = "joint"

    def __init__(self, first: SearchSpace, second: SearchSpace) -> None:
        for name, a, b in (("keys", first.keys, second.keys), ("variables", first.variables, second.variables)):
            shared = sorted(set(a) & set(b))
            if shared:
                raise ValueError(f"A joint space needs spaces with distinct {name}; both have {shared}.")
        self.parts = (first, second)
        self.keys = (*first.keys, *second.keys)
        self.variables = (*first.variables, *second.variables)
        self._dims = (first._unit_dimension(), second._unit_dimension())  # noqa: SLF001 - same package
        if all(hasattr(part, "_pool_from_units") for part in self.parts):
            self.pool_arrays = self._pool_arrays  # the BO pick keeps the pool as arrays (search/bo.py)

    def sample(self, n: int, seed: int | None = 0, method: str = "sobol") -> list[dict[str, Any]]:
        """``n`` joint configs (see :meth:`SearchSpace.sample`); each part from its share of one unit point."""
        points = unit_points(n, sum(self._dims), seed, method)
        first = self.parts[0]._configs_from_units(np.ascontiguousarray(points[:, :self._dims[0]]))  # noqa: SLF001
        second = self.parts[1]._configs_from_units(np.ascontiguousarray(points[:, self._dims[0]:]))  # noqa: SLF001
        return [{**a, **b} for a, b in zip(first, second)]

    def _pool_arrays(self, n: int, seed: int) -> ArrayPool:
        """The samples of ``sample(n, seed=seed, method="random")`` as arrays: both parts' key
        rows side by side, both encodings, and a builder of any one sample's dict."""
        points = unit_points(n, sum(self._dims), seed, "random")
        first = self.parts[0]._pool_from_units(np.ascontiguousarray(points[:, :self._dims[0]]))  # type: ignore[attr-defined] # noqa: SLF001
        second = self.parts[1]._pool_from_units(np.ascontiguousarray(points[:, self._dims[0]:]))  # type: ignore[attr-defined] # noqa: SLF001
        return ArrayPool(keys=np.concatenate([first.keys, second.keys], axis=1),
                         encoded=JointEncoded((first.encoded, second.encoded)),
                         build=lambda row: {**first.build(row), **second.build(row)})

    def key_row(self, key: Hashable) -> np.ndarray | None:
        """Both parts' key rows of a projection key over :attr:`keys`; None when either has none."""
        try:
            split = len(self.parts[0].keys)
            rows = [part.key_row(tuple(k)) for part, k in zip(self.parts, (key[:split], key[split:]))]  # type: ignore[attr-defined,index]
        except TypeError:
            return None
        if any(row is None for row in rows):
            return None
        return np.concatenate(rows)

    def encode(self, configs: Sequence[Mapping[str, Any]]) -> JointEncoded:
        """Each part encoded by its own space."""
        configs = list(configs)
        return JointEncoded(tuple(part.encode(configs) for part in self.parts))

    def validate(self, config: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` unless both parts of ``config`` lie in their spaces."""
        for part in self.parts:
            part.validate(config)

    def hyperparameter_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(omega, weights)`` over the first space's variables, then the second's."""
        arrays = [part.hyperparameter_arrays() for part in self.parts]
        return np.concatenate([a[0] for a in arrays]), np.concatenate([a[1] for a in arrays])

    def __repr__(self) -> str:
        return f"JointSpace({self.parts[0]!r}, {self.parts[1]!r})"


__all__ = ["JointSpace"]
