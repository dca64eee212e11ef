"""Named search budgets (``budget=`` / ``--budget``), and ``"auto"``: the one that fits the hardware and data.

A budget sets how much a search trains when the user does not say: the BO budget of stages 1 and
3, the epochs per candidate, the epochs of the final training, and limits of the architecture
space. ``"paper"`` is the paper's (SPEC §5: hours on a GPU for CIFAR-10); ``"quick"`` finishes in
minutes on a 2-core CPU with small data (smaller networks: the SPEC space's centre alone is an
8M-parameter CNN). ``"auto"`` (the default) picks ``"paper"`` on an accelerator with at least
:data:`SMALL_DATA` training samples and ``"quick"`` otherwise. Settings the user gives override the
budget's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lightning_dnc.validation import check_choice


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
        Epochs of the final training of the best configuration (command line).
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

    def limits(self, family: str) -> dict[str, Any]:
        """The space limits of ``family`` (``"cnn"`` or ``"mlp"``)."""
        return dict(self.cnn_limits if family == "cnn" else self.mlp_limits)


BUDGETS: dict[str, Budget] = {
    # A few minutes on a 2-core CPU with the embedded digits data.
    # Smaller networks than the SPEC space (whose centre alone is an 8M-parameter CNN).
    "quick": Budget(prior_points=4, steps=4, explore=300, search_epochs=10, epochs=40,
                    cnn_limits={"num_conv_layers": (2, 6), "channels_first": (8, 32), "channels_upper": 128},
                    mlp_limits={"num_hidden_layers": (0, 2), "hidden_nodes": (20, 200)}),
    # The paper's stage structure and budget (SPEC §5): hours on a GPU for CIFAR-10.
    "paper": Budget(prior_points=15, steps=15, explore=1000, search_epochs=100, epochs=100),
}
"""The named budgets."""

BUDGET_CHOICES = ("auto", *BUDGETS)
"""What ``budget=`` / ``--budget`` accept."""

BUDGET_SETTINGS = ("prior_points", "steps", "explore", "search_epochs")
"""Search settings a budget fills when the user leaves them unset."""

SMALL_DATA = 10_000
"""Fewer training samples than this count as small data: ``"auto"`` picks ``"quick"`` even on a GPU."""


def choose_budget(budget: str, accelerator: str, train_samples: int | None) -> tuple[str, str]:
    """The named budget ``budget`` stands for, and why.

    Parameters
    ----------
    budget : {"auto", "quick", "paper"}
    accelerator : str
        Where candidates train (``"cpu"``, ``"gpu"``, ``"cuda"``, ``"mps"``, ...), resolved (not ``"auto"``).
    train_samples : int, optional
        Training samples of the data (unknown: judged by the accelerator alone).

    Returns
    -------
    name, reason : str
        ``reason`` is empty for a budget the user named.
    """
    check_choice("budget", budget, BUDGET_CHOICES)
    if budget != "auto":
        return budget, ""
    data = "" if train_samples is None else f", {train_samples:,} training samples"
    if accelerator == "cpu":
        return "quick", f"auto: CPU{data}"
    if train_samples is not None and train_samples < SMALL_DATA:
        return "quick", f"auto: {accelerator}{data} (small data)"
    return "paper", f"auto: {accelerator}{data}"


def budget_line(name: str, reason: str, search_epochs: int, prior_points: int, steps: int,
                change: str) -> str:
    """One line that says which budget a search runs and how to change it (printed at its start)."""
    why = f" ({reason})" if reason else ""
    return (f"lightning-dnc budget '{name}'{why}: {prior_points} prior points + {steps} BO steps per BO stage, "
            f"{search_epochs} epochs per candidate; {change}")


def resolved_accelerator(accelerator: str) -> str:
    """``accelerator`` with ``"auto"`` resolved the way Lightning does it on this machine (gpu, mps or cpu)."""
    if accelerator != "auto":
        return {"cuda": "gpu"}.get(accelerator, accelerator)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return "cpu"
    if torch.cuda.is_available():
        return "gpu"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


__all__ = ["BUDGETS", "BUDGET_CHOICES", "BUDGET_SETTINGS", "SMALL_DATA", "Budget", "budget_line", "choose_budget",
           "resolved_accelerator"]
