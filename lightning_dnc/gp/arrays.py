"""The flat-array form of a batch of configurations: the only thing the GP kernels read.

A search space (:mod:`lightning_dnc.space`) turns a list of config dicts into one
:class:`EncodedConfigs`; the kernels in :mod:`lightning_dnc.gp.kernels` never see a dict. Two
layouts exist:

``kind == "layered"`` (CNN ``out_channels``, SPEC §7)
    ``values``: (m, L_max) int64, the channels of each conv layer, zero-padded after the last
    layer; ``lengths``: (m,) int64, the number of conv layers; ``inv_span``: (L_max,) float64,
    ``1 / (u_l - l_l)`` of layer l's range (0 for a degenerate range); ``root``: (L_max,) float64,
    the root ``r_l``. One kernel variable.
``kind == "columns"`` (MLP ``hidden_mlp``, training hyperparameters)
    ``values``: (m, k) float64, one column per scalar kernel; ``lengths``: empty; ``inv_span``,
    ``root``: (k,) float64 as above; ``variable_of``: (k,) int64, the kernel variable each column
    belongs to (omega and the combination weight are per variable); ``share``: (k,) float64, the
    column's share of its variable's weight (two columns of one variable averaged: 0.5 each).

This module imports only numpy, so spaces can build encodings without loading numba.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

KINDS = ("layered", "columns")


@dataclass(frozen=True, eq=False)
class EncodedConfigs:
    """A batch of configurations as flat arrays (see the module docstring for the layouts).

    Parameters
    ----------
    kind : {"layered", "columns"}
    values : ndarray
        (m, L_max) int64 for ``"layered"``, (m, k) float64 for ``"columns"``.
    lengths : ndarray
        (m,) int64 for ``"layered"``; shape (0,) for ``"columns"``.
    inv_span, root : ndarray
        float64, one entry per layer / column.
    variable_of : ndarray
        int64, the kernel variable of each column (``[0]`` for ``"layered"``).
    share : ndarray
        float64, each column's share of its variable's weight (``[1.0]`` for ``"layered"``).
    variables : tuple of str
        Names of the kernel variables, in the order omega and weights arrays use.
    """

    kind: str
    values: np.ndarray
    lengths: np.ndarray
    inv_span: np.ndarray
    root: np.ndarray
    variable_of: np.ndarray
    share: np.ndarray
    variables: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"`kind` must be one of {list(KINDS)}, got {self.kind!r}.")
        if self.values.ndim != 2:
            raise ValueError(f"`values` must be 2-D (m, width), got shape {self.values.shape}.")
        width = self.values.shape[1]
        if self.inv_span.shape != (width,) or self.root.shape != (width,):
            raise ValueError(
                f"`inv_span` and `root` must have shape ({width},) like the columns of `values`, got "
                f"{self.inv_span.shape} and {self.root.shape}."
            )
        if self.kind == "layered" and self.lengths.shape != (self.values.shape[0],):
            raise ValueError(
                f"`lengths` must have shape ({self.values.shape[0]},) for kind 'layered', got {self.lengths.shape}."
            )
        if self.kind == "columns" and (self.variable_of.shape != (width,) or self.share.shape != (width,)):
            raise ValueError(
                f"`variable_of` and `share` must have shape ({width},) for kind 'columns', got "
                f"{self.variable_of.shape} and {self.share.shape}."
            )

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_variables(self) -> int:
        """Number of kernel variables (length of the omega and weights arrays)."""
        return 1 if self.kind == "layered" else int(self.variable_of.max(initial=-1)) + 1

    def same_layout(self, other: "EncodedConfigs") -> bool:
        """True if ``other`` comes from the same space layout (same kind, ranges and roots)."""
        return (
            self.kind == other.kind
            and self.values.shape[1] == other.values.shape[1]
            and np.array_equal(self.inv_span, other.inv_span)
            and np.array_equal(self.root, other.root)
            and np.array_equal(self.variable_of, other.variable_of)
            and np.array_equal(self.share, other.share)
        )

    def check_same_layout(self, other: "EncodedConfigs", what: str = "configs") -> None:
        """Raise ``ValueError`` unless ``other`` has the same layout as ``self``."""
        if not self.same_layout(other):
            raise ValueError(
                f"The encoded {what} come from a different search space (kind {other.kind!r}, width "
                f"{other.values.shape[1]}) than expected (kind {self.kind!r}, width {self.values.shape[1]}); "
                "encode every batch with the same space."
            )

    def take(self, index: Sequence[int] | np.ndarray | slice) -> "EncodedConfigs":
        """Rows ``index`` as a new batch (same layout)."""
        values = np.ascontiguousarray(self.values[index])
        lengths = np.ascontiguousarray(self.lengths[index]) if self.kind == "layered" else self.lengths
        return self._with_rows(values, lengths)

    def concat(self, other: "EncodedConfigs") -> "EncodedConfigs":
        """This batch followed by ``other`` (same layout required)."""
        self.check_same_layout(other)
        values = np.ascontiguousarray(np.concatenate([self.values, other.values], axis=0))
        if self.kind == "layered":
            lengths = np.ascontiguousarray(np.concatenate([self.lengths, other.lengths]))
        else:
            lengths = self.lengths
        return self._with_rows(values, lengths)

    def _with_rows(self, values: np.ndarray, lengths: np.ndarray) -> "EncodedConfigs":
        return EncodedConfigs(
            kind=self.kind,
            values=values,
            lengths=lengths,
            inv_span=self.inv_span,
            root=self.root,
            variable_of=self.variable_of,
            share=self.share,
            variables=self.variables,
        )
