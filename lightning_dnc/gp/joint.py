"""Configurations of two spaces at once (e.g. architecture and training) and their kernel.

A joint configuration is encoded part by part, each part with its own space's layout
(:class:`~lightning_dnc.gp.arrays.EncodedConfigs`). The joint kernel is the mean of the parts'
kernels (each already a weighted mean over its variables, SPEC §7):

    k(a, b) = (1 / P) * sum_p k_p(a_p, b_p)

so ``k(x, x) = 1`` still holds, every part counts as much as the others whatever its number of
variables, and a candidate close to an observation in one part but not in the other is half
correlated with it. ``omega`` and ``weights`` arrays run over the parts' variables in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lightning_dnc.gp.arrays import EncodedConfigs


@dataclass(frozen=True, eq=False)
class JointEncoded:
    """A batch of joint configurations: one :class:`EncodedConfigs` per part, same rows.

    Parameters
    ----------
    parts : tuple of EncodedConfigs
        At least two; every part has the same number of rows.
    """

    parts: tuple[EncodedConfigs, ...]
    kind: str = "joint"

    def __post_init__(self) -> None:
        if len(self.parts) < 2:
            raise ValueError(f"A joint batch needs at least two parts, got {len(self.parts)}.")
        rows = {len(part) for part in self.parts}
        if len(rows) != 1:
            raise ValueError(f"Every part of a joint batch must have the same rows, got {sorted(rows)}.")

    def __len__(self) -> int:
        return len(self.parts[0])

    @property
    def n_variables(self) -> int:
        """Kernel variables of all parts together (length of the omega and weights arrays)."""
        return sum(part.n_variables for part in self.parts)

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(name for part in self.parts for name in part.variables)

    def same_layout(self, other: object) -> bool:
        """True if ``other`` is a joint batch whose parts have this batch's layouts."""
        return (isinstance(other, JointEncoded) and len(other.parts) == len(self.parts)
                and all(a.same_layout(b) for a, b in zip(self.parts, other.parts)))

    def check_same_layout(self, other: object, what: str = "configs") -> None:
        """Raise ``ValueError`` unless ``other`` has the same layout as ``self``."""
        if not self.same_layout(other):
            raise ValueError(
                f"The encoded {what} do not come from the same joint space ({len(self.parts)} parts expected); "
                "encode every batch with the same space."
            )

    def take(self, index: Sequence[int] | np.ndarray | slice) -> JointEncoded:
        """Rows ``index`` as a new batch."""
        return JointEncoded(tuple(part.take(index) for part in self.parts))

    def concat(self, other: JointEncoded) -> JointEncoded:
        """This batch followed by ``other`` (same layout required)."""
        self.check_same_layout(other)
        return JointEncoded(tuple(a.concat(b) for a, b in zip(self.parts, other.parts)))

    def split(self, array: np.ndarray) -> list[np.ndarray]:
        """A per-variable ``array`` (omega or weights) cut into the parts' pieces."""
        out, start = [], 0
        for part in self.parts:
            out.append(np.ascontiguousarray(array[start:start + part.n_variables]))
            start += part.n_variables
        return out


def joint_cross_covariance(a: JointEncoded, b: JointEncoded, omega: np.ndarray, weights: np.ndarray,
                           parallel: bool | None, cross_covariance: Callable[..., np.ndarray]) -> np.ndarray:
    """``K[i, j] = mean over parts of k_p(a_i, b_j)`` (validated ``omega``/``weights`` arrays);
    ``cross_covariance`` computes one part's (:func:`lightning_dnc.gp.kernels.cross_covariance`)."""
    out = np.zeros((len(a), len(b)), dtype=np.float64)
    for part_a, part_b, om, w in zip(a.parts, b.parts, a.split(omega), a.split(weights)):
        if not w.sum() > 0:
            raise ValueError("Every part of a joint space needs a positive sum of weights.")
        out += cross_covariance(part_a, part_b, om, w, parallel=parallel)
    out /= len(a.parts)
    return out


__all__ = ["JointEncoded", "joint_cross_covariance"]
