"""Small building blocks shared by the CNN and the MLP: activations, the dense head, Linear init."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

LINEAR_BIAS_INIT = 0.1


def make_activation(name: str) -> nn.Module:
    """Return a fresh activation module for ``name`` in {"relu", "tanh", "sigmoid"}."""
    if name == "relu":
        return nn.ReLU()
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    raise ValueError(f"`act` must be one of ['relu', 'tanh', 'sigmoid'], got {name!r}.")


def make_dropout(p: float) -> nn.Module:
    """``nn.Dropout(p)``, or ``nn.Identity()`` when ``p == 0`` (no op, no RNG use)."""
    return nn.Dropout(p) if p > 0 else nn.Identity()


def dense_stack(in_features: int, hidden: Sequence[int], dropout_probs: Sequence[float], act: str,
                num_outputs: int) -> nn.Sequential:
    """``[Linear -> act -> Dropout(p)]`` per hidden width, then ``Linear`` to ``num_outputs``.

    Parameters
    ----------
    in_features : int
        Width of the (already flattened) input.
    hidden : sequence of int
        Hidden widths, possibly empty.
    dropout_probs : sequence of float
        One dropout probability per hidden layer.
    act : str
        Activation name.
    num_outputs : int
        Width of the final Linear layer.
    """
    layers: list[nn.Module] = []
    width = in_features
    for units, p in zip(hidden, dropout_probs):
        layers += [nn.Linear(width, units), make_activation(act), make_dropout(p)]
        width = units
    layers.append(nn.Linear(width, num_outputs))
    return nn.Sequential(*layers)


def init_linear_layers(module: nn.Module) -> None:
    """SPEC §2 init: every ``nn.Linear`` gets Kaiming-normal weights and bias 0.1 (convs untouched)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.kaiming_normal_(layer.weight)
            if layer.bias is not None:
                nn.init.constant_(layer.bias, LINEAR_BIAS_INIT)


def count_trainable(module: nn.Module) -> int:
    """``sum(p.numel() for p in module.parameters() if p.requires_grad)`` (SPEC §1 ``N_p``)."""
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))


def _product(shape: Sequence[int]) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out


def flat_features(input_shape: Sequence[int]) -> int:
    """Number of features of one flattened sample of ``input_shape``."""
    return _product(input_shape)


__all__ = ["count_trainable", "dense_stack", "flat_features", "init_linear_layers", "make_activation",
           "make_dropout"]
