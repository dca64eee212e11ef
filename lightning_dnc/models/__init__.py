"""Candidate networks (SPEC §3) and the LightningModule that trains one (SPEC §2)."""

from lightning_dnc.models.cnn import CNN, plan_conv_layers
from lightning_dnc.models.factory import build_network, count_parameters, largest_network_params
from lightning_dnc.models.inputs import InputNormalization
from lightning_dnc.models.mlp import MLP
from lightning_dnc.models.module import CandidateModule, NonFiniteMetricError, lr_milestones, regression_loss

__all__ = [
    "CNN",
    "MLP",
    "CandidateModule",
    "InputNormalization",
    "NonFiniteMetricError",
    "build_network",
    "count_parameters",
    "largest_network_params",
    "lr_milestones",
    "plan_conv_layers",
    "regression_loss",
]
