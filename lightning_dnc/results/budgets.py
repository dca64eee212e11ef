"""Named search budgets of the command line (``--budget``)."""

from __future__ import annotations

from dataclasses import dataclass


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
    """

    prior_points: int
    steps: int
    explore: int
    search_epochs: int
    epochs: int


BUDGETS: dict[str, Budget] = {
    # A few minutes on a 2-core CPU with the embedded digits data.
    "quick": Budget(prior_points=4, steps=4, explore=300, search_epochs=8, epochs=40),
    # The paper's stage structure and budget (SPEC §5): hours on a GPU for CIFAR-10.
    "paper": Budget(prior_points=15, steps=15, explore=1000, search_epochs=100, epochs=100),
}
