"""Named search budgets of the command line (``--budget``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Budget:
    """How much a search may train.

    Attributes
    ----------
    prior_points, steps, explore : int
        Sobol prior points, BO steps, and random candidates scored per step, in stages 1 and 3.
    search_epochs : int
        Epochs each candidate trains during the search.
    epochs : int
        Epochs of the final training of the best configuration.
    cnn_limits, mlp_limits : dict
        Space limits used when the user gives none (``CNNSpace``/``MLPSpace`` arguments); empty
        means the SPEC defaults.
    """

    prior_points: int
    steps: int
    explore: int
    search_epochs: int
    epochs: int
    cnn_limits: dict[str, Any] = field(default_factory=dict)
    mlp_limits: dict[str, Any] = field(default_factory=dict)


BUDGETS: dict[str, Budget] = {
    # A few minutes on a 2-core CPU with the embedded digits data.
    # Smaller networks than the SPEC space (whose centre alone is an 8M-parameter CNN).
    "quick": Budget(prior_points=4, steps=4, explore=300, search_epochs=10, epochs=40,
                    cnn_limits={"num_conv_layers": (2, 6), "channels_first": (8, 32), "channels_upper": 128},
                    mlp_limits={"num_hidden_layers": (0, 2), "hidden_nodes": (20, 200)}),
    # The paper's stage structure and budget (SPEC §5): hours on a GPU for CIFAR-10.
    "paper": Budget(prior_points=15, steps=15, explore=1000, search_epochs=100, epochs=100),
}
