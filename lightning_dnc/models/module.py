"""``CandidateModule``: one Deep-n-Cheap candidate as a LightningModule (SPEC §2 training protocol)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from lightning_dnc.models.factory import build_network
from lightning_dnc.models.layers import count_trainable
from lightning_dnc.space.config import auto_weight_decay, complete_config

TASKS = ("classification", "regression")
DEFAULT_EPOCHS = 100
LR_GAMMA = 0.2


class NonFiniteMetricError(RuntimeError):
    """Raised at the end of an epoch whose training or validation loss is NaN or infinite."""


def lr_milestones(epochs: int) -> list[int]:
    """SPEC §2 MultiStepLR milestones ``[int(0.5 N), int(0.75 N)]``.

    Milestones at epoch 0 are dropped: they would shrink the learning rate before the first
    epoch (only happens for ``N == 1``). Repeated milestones are kept, so for ``N == 2`` the rate
    drops by ``gamma ** 2`` after the first epoch, as ``MultiStepLR`` defines it.
    """
    return [m for m in (int(0.5 * epochs), int(0.75 * epochs)) if m > 0]


def regression_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error that never broadcasts ``(N, 1)`` against ``(N,)``.

    Parameters
    ----------
    outputs : torch.Tensor
        ``(N, d)`` network outputs.
    targets : torch.Tensor
        ``(N,)`` (then ``d`` must be 1) or ``(N, d)``.
    """
    if targets.dim() == 1:
        if outputs.dim() != 2 or outputs.shape[1] != 1:
            raise ValueError(
                f"Regression targets of shape {tuple(targets.shape)} need outputs of shape (N, 1), got "
                f"{tuple(outputs.shape)}; set `num_outputs=1` or give (N, d) targets."
            )
        outputs = outputs[:, 0]
    elif outputs.shape != targets.shape:
        raise ValueError(
            f"Regression outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} differ; "
            "`num_outputs` must equal the target dimension."
        )
    return F.mse_loss(outputs.float(), targets.float())


class CandidateModule(pl.LightningModule):
    """One candidate network trained as SPEC §2 prescribes.

    Adam (coupled L2 weight decay, default betas/eps), MultiStepLR with milestones
    ``int(0.5 N)``, ``int(0.75 N)`` and gamma 0.2 stepped per epoch, cross entropy or MSE.
    Logs ``val_acc`` (classification) and ``val_loss`` once per validation epoch and keeps the
    per-epoch curves in :attr:`history`.

    Parameters
    ----------
    config : mapping
        Partial or complete configuration; completed with SPEC defaults. ``weight_decay="auto"``
        resolves to :func:`lightning_dnc.space.config.auto_weight_decay` of ``N_p``.
    input_shape : sequence of int
        Shape of one input sample, e.g. ``(1, 28, 28)``.
    num_outputs : int
        Number of classes, or target dimension for regression.
    task : {"classification", "regression"}
    epochs : int, optional
        ``N`` for the learning-rate schedule; defaults to ``config["epochs"]``, else 100.
    own_steps : bool, default False
        Take the optimizer and scheduler steps in :meth:`training_step` (Lightning's manual
        optimisation) instead of Lightning's automatic loop: the same updates in the same order,
        without the loop's per-step closure and hooks. The search's evaluator uses it; keep the
        default where ``Trainer`` options such as gradient clipping or accumulation are wanted.

    Attributes
    ----------
    config : dict
        The complete configuration.
    history : dict of list of float
        ``train_loss``, ``val_loss`` and ``val_acc`` (classification) per epoch.
    """

    def __init__(self, config: Mapping[str, Any], input_shape: Sequence[int], num_outputs: int,
                 task: str = "classification", epochs: int | None = None, own_steps: bool = False) -> None:
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"`task` must be one of {list(TASKS)}, got {task!r}.")
        full = complete_config(config)
        if epochs is None:
            epochs = full.get("epochs", DEFAULT_EPOCHS)
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"`epochs` must be an int >= 1, got {epochs!r}.")
        self.save_hyperparameters({"config": full, "input_shape": list(input_shape),
                                   "num_outputs": num_outputs, "task": task, "epochs": epochs})
        self.config = full
        self.task = task
        self.epochs = epochs
        self.net = build_network(full, input_shape, num_outputs)
        self.history: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
        if task == "classification":
            self.history["val_acc"] = []
        self._sums: dict[str, list[torch.Tensor]] = {}  # per-batch means of the running epoch
        self._counts: dict[str, list[int]] = {}  # their sample counts
        self.automatic_optimization = not own_steps

    # -- properties -------------------------------------------------------------------------
    @property
    def num_params(self) -> int:
        """Trainable parameter count ``N_p`` (SPEC §1)."""
        return count_trainable(self.net)

    @property
    def weight_decay(self) -> float:
        """The weight decay Adam uses: the config's value, or the SPEC §2 rule for ``"auto"``."""
        wd = self.config["weight_decay"]
        return auto_weight_decay(self.config["family"], self.num_params) if wd == "auto" else float(wd)

    # -- model ------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Network outputs ``(B, num_outputs)``."""
        return self.net(x)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross entropy (classification, integer targets ``(N,)``) or MSE (regression)."""
        if self.task == "classification":
            return F.cross_entropy(outputs.float(), targets)
        return regression_loss(outputs, targets)

    def configure_optimizers(self) -> dict[str, Any]:  # noqa: D102
        optimizer = torch.optim.Adam(self.parameters(), lr=self.config["lr"], weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, lr_milestones(self.epochs), gamma=LR_GAMMA)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    # -- running sums kept on the device; read once per epoch (no per-step host sync) ----------
    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets `_current_fx_name` around every hook call (dozens per training step) and
        # nn.Module.__setattr__ runs slow isinstance checks on every assignment. This attribute is
        # never a parameter, buffer or submodule, so it is stored directly (~0.1 ms per step on CPU).
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _add(self, name: str, batch_mean: torch.Tensor, count: int) -> None:
        """Remember a batch's mean of ``name`` over ``count`` samples (no kernel launched, no sync)."""
        self._sums.setdefault(name, []).append(batch_mean.detach())
        self._counts.setdefault(name, []).append(count)

    def _epoch_means(self, names: Sequence[str]) -> dict[str, float]:
        """Sample-weighted epoch means of ``names`` (summed over ranks), then forget the batches."""
        totals, counts = [], []
        for name in names:
            means = self._sums.pop(name, [])
            sizes = self._counts.pop(name, [])
            if means:
                weights = torch.tensor(sizes, dtype=torch.float32, device=means[0].device)
                totals.append((torch.stack(means).float().reshape(-1) * weights).sum().to(self.device))
            else:
                totals.append(torch.zeros((), device=self.device))
            counts.append(float(sum(sizes)))
        stacked = torch.cat([torch.stack(totals), torch.tensor(counts, device=self.device)])
        if self._trainer is not None and self.trainer.world_size > 1:
            stacked = self.trainer.strategy.reduce(stacked, reduce_op="sum")
        values = stacked.tolist()
        k = len(names)
        return {n: (values[i] / values[k + i] if values[k + i] > 0 else math.nan) for i, n in enumerate(names)}

    # -- training ---------------------------------------------------------------------------
    def step_loss(self, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        """The training loss of one ``(x, y)`` batch: forward and loss, nothing recorded.

        The cost measurement (:class:`~lightning_dnc.lightning.cost_probe.CostProbe`) times
        training steps with it; :meth:`training_step` adds the epoch bookkeeping.
        """
        return self.loss(self(batch[0]), batch[1])

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:  # noqa: D102
        loss = self.step_loss(batch)
        self._add("train_loss", loss, int(batch[1].shape[0]))
        if not self.automatic_optimization:
            self._own_step(loss)
        return loss

    def _own_step(self, loss: torch.Tensor) -> None:
        """Zero the gradients, backward, optimizer step: what Lightning's automatic loop does, minus its hooks.

        With 32-bit or bfloat16 precision on one device the raw optimizer is stepped; otherwise
        (a gradient scaler, several devices) through Lightning, which scales and synchronises.
        """
        optimizer = self.optimizers()
        if self.trainer.world_size == 1 and getattr(self.trainer.precision_plugin, "scaler", None) is None:
            raw = optimizer.optimizer
            raw.zero_grad(set_to_none=True)
            loss.backward()
            raw.step()
        else:
            optimizer.zero_grad()
            self.manual_backward(loss)
            optimizer.step()

    def on_train_epoch_end(self) -> None:  # noqa: D102
        value = self._epoch_means(["train_loss"])["train_loss"]
        self.history["train_loss"].append(value)
        if not math.isfinite(value):
            raise NonFiniteMetricError(f"Training loss is {value} at epoch {self.current_epoch + 1}.")
        if not self.automatic_optimization:
            self.lr_schedulers().step()  # SPEC §2: MultiStepLR stepped once per epoch

    # -- validation -------------------------------------------------------------------------
    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:  # noqa: D102
        x, y = batch[0], batch[1]
        outputs = self(x)
        n = int(y.shape[0])
        self._add("val_loss", self.loss(outputs, y), n)
        if self.task == "classification":
            self._add("val_correct", (outputs.argmax(dim=1) == y).float().mean(), n)

    def on_validation_epoch_end(self) -> None:  # noqa: D102
        names = ["val_loss", "val_correct"] if self.task == "classification" else ["val_loss"]
        means = self._epoch_means(names)
        if self.trainer is not None and self.trainer.sanity_checking:
            return
        logs = self._trainer is None or not self.trainer.barebones  # barebones trainers forbid self.log
        self.history["val_loss"].append(means["val_loss"])
        if logs:
            self.log("val_loss", means["val_loss"])
        if self.task == "classification":
            self.history["val_acc"].append(means["val_correct"])
            if logs:
                self.log("val_acc", means["val_correct"])
        if not math.isfinite(means["val_loss"]):
            raise NonFiniteMetricError(f"Validation loss is {means['val_loss']} at epoch {self.current_epoch + 1}.")
