"""``CandidateModule``: one Deep-n-Cheap candidate as a LightningModule (SPEC §2 training protocol).

It fits, validates, tests and predicts with any ``lightning.Trainer`` (``trainer.test(model,
datamodule=dm)``, ``trainer.predict(model, dataloaders=...)``) and exports with
``to_torchscript()``, ``torch.export.export`` and ``to_onnx()``.

Regression targets
------------------
Given ``target_stats={"mean": [...], "std": [...]}`` (the training split's statistics, which the
search passes), the network learns standardised targets ``(y - mean) / std``: the loss and
``val_loss`` are the MSE in those units (about ``1 - R²``), so ``f_p`` and the cost ``f_c`` of the
objective are on comparable scales whatever the targets' units. :meth:`CandidateModule.forward`
(and so ``predict`` and every export) returns values in the user's units, and ``val_rmse``,
``val_mae``, ``val_r2`` (and ``test_*``) are logged in the user's units.

Inputs
------
Given ``input_stats={"scale": s, "mean": m, "std": d}`` (a datamodule's
:attr:`~lightning_dnc.data.base.InMemoryDataModule.input_stats`, which the search passes), the
module normalises its inputs itself, ``(x * s - m) / d`` before the network
(:class:`~lightning_dnc.models.inputs.InputNormalization`), and takes inputs in the user's units:
its ``expects_raw_inputs`` is true, so the datamodule's loaders serve it raw batches, and
predictions and exports (TorchScript, ``torch.export``, ONNX) need no separate preprocessing.
``example_input_array`` (a batch of one zero sample) is set, so ``to_onnx(path)`` and the model
summary's FLOPs work without an input.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from lightning_dnc._optional import require
from lightning_dnc.models.factory import build_network
from lightning_dnc.models.inputs import check_input_stats, input_layer
from lightning_dnc.models.layers import count_trainable
from lightning_dnc.models.metrics import RegressionMeter
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
    Logs, once per epoch, ``train_loss``, ``val_loss`` and ``val_acc`` (classification) or
    ``val_rmse``, ``val_mae``, ``val_r2`` (regression, in the user's units), and keeps the
    per-epoch curves in :attr:`history`. ``trainer.test`` logs the same metrics with a ``test_``
    prefix; ``trainer.predict`` returns the outputs of :meth:`forward` per batch.

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
    target_stats : mapping, optional
        Regression only: ``{"mean": [...], "std": [...]}``, one value per output, of the training
        targets; the network then learns standardised targets (see the module docstring).
    input_stats : mapping, optional
        ``{"scale": s, "mean": m, "std": d}``: the module normalises its inputs (see the module
        docstring); ``None``: inputs go to the network as they come.

    Attributes
    ----------
    config : dict
        The complete configuration.
    history : dict of list of float
        ``train_loss``, ``val_loss`` and ``val_acc`` (classification) or ``val_rmse``,
        ``val_mae``, ``val_r2`` (regression) per epoch.
    """

    # TorchScript compiles properties unless they are listed here.
    __jit_unused_properties__ = [*pl.LightningModule.__jit_unused_properties__, "num_params", "weight_decay",
                                 "expects_raw_inputs"]

    def __init__(self, config: Mapping[str, Any], input_shape: Sequence[int], num_outputs: int,
                 task: str = "classification", epochs: int | None = None,
                 target_stats: Mapping[str, Sequence[float]] | None = None, own_steps: bool = False,
                 input_stats: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"`task` must be one of {list(TASKS)}, got {task!r}.")
        full = complete_config(config)
        if epochs is None:
            epochs = full.get("epochs", DEFAULT_EPOCHS)
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"`epochs` must be an int >= 1, got {epochs!r}.")
        stats = check_target_stats(target_stats, task, num_outputs)
        inputs = check_input_stats(input_stats, input_shape)
        self.save_hyperparameters({"config": full, "input_shape": list(input_shape),
                                   "num_outputs": num_outputs, "task": task, "epochs": epochs,
                                   "target_stats": stats, "input_stats": inputs})
        self.config = full
        self.task = task
        self.epochs = epochs
        self.net = build_network(full, input_shape, num_outputs)
        self._init_inputs(input_shape, inputs)
        self._init_targets(task, num_outputs, stats)
        self._init_history()
        self.automatic_optimization = not own_steps

    def _init_inputs(self, input_shape: Sequence[int], stats: Mapping[str, Any] | None) -> None:
        """The input normalisation (identity without ``stats``) and ``example_input_array``."""
        self.normalize = input_layer(stats)
        self.example_input_array = torch.zeros(1, *(int(s) for s in input_shape))

    def _init_targets(self, task: str, num_outputs: int, stats: Mapping[str, Sequence[float]] | None) -> None:
        """Register the target statistics (regression; saved with the weights and exported)."""
        self.destandardise = task == "regression"
        mean = stats["mean"] if stats else [0.0] * num_outputs
        std = stats["std"] if stats else [1.0] * num_outputs
        # Not in the state dict: ``hparams["target_stats"]`` rebuilds them (older checkpoints load too).
        self.register_buffer("target_mean", torch.tensor(mean, dtype=torch.float32), persistent=False)
        self.register_buffer("target_std", torch.tensor(std, dtype=torch.float32), persistent=False)

    def _init_history(self) -> None:
        self.history: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
        for name in (["val_acc"] if self.task == "classification" else [f"val_{m}" for m in RegressionMeter.NAMES]):
            self.history[name] = []
        self._sums: dict[str, list[torch.Tensor]] = {}  # per-batch means of the running epoch
        self._counts: dict[str, list[int]] = {}  # their sample counts

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

    @property
    def expects_raw_inputs(self) -> bool:
        """True when the module normalises its inputs itself (loaders then serve them in the user's units)."""
        return not isinstance(getattr(self, "normalize", None), (torch.nn.Identity, type(None)))

    # -- model ------------------------------------------------------------------------------
    def network(self, x: torch.Tensor) -> torch.Tensor:
        """The network's raw outputs (logits; standardised values for regression) for inputs ``x``."""
        return self.net(self.normalize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs ``(B, num_outputs)`` for inputs in the user's units: class logits, or regression values
        in the user's units."""
        outputs = self.network(x)
        if self.destandardise:
            outputs = outputs * self.target_std + self.target_mean
        return outputs

    def _standardised(self, targets: torch.Tensor) -> torch.Tensor:
        """Regression targets in the units the network learns (classification targets unchanged)."""
        if self.task != "regression":
            return targets
        mean, std = self.target_mean, self.target_std
        if targets.dim() == 1:
            mean, std = mean[0], std[0]
        return (targets.float() - mean) / std

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross entropy (classification, integer targets ``(N,)``) or MSE (regression).

        For regression ``outputs`` are the network's (standardised) outputs and ``targets`` the
        user's; the MSE is taken in standardised units.
        """
        if self.task == "classification":
            return F.cross_entropy(outputs.float(), targets)
        return regression_loss(outputs, self._standardised(targets))

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

        The cost measurement (:class:`~lightning_dnc.lightning.candidate.cost_probe.CostProbe`) times
        training steps with it; :meth:`training_step` adds the epoch bookkeeping.
        """
        return self.loss(self.network(batch[0]), batch[1])

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
        if self._trainer is not None and not self.trainer.barebones:
            self.log("train_loss", value)
        if not math.isfinite(value):
            raise NonFiniteMetricError(f"Training loss is {value} at epoch {self.current_epoch + 1}.")
        if not self.automatic_optimization:
            self.lr_schedulers().step()  # SPEC §2: MultiStepLR stepped once per epoch

    # -- validation and test ------------------------------------------------------------------
    def _evaluation_step(self, prefix: str, batch: Sequence[torch.Tensor]) -> None:
        x, y = batch[0], batch[1]
        outputs = self.network(x)
        n = int(y.shape[0])
        self._add(f"{prefix}_loss", self.loss(outputs, y), n)
        if self.task == "classification":
            self._add(f"{prefix}_correct", (outputs.argmax(dim=1) == y).float().mean(), n)
        else:
            predictions = outputs * self.target_std + self.target_mean
            for name, value in RegressionMeter.batch_terms(predictions, y, self.target_mean).items():
                self._add(f"{prefix}_{name}", value, n)

    def _evaluation_metrics(self, prefix: str) -> dict[str, float]:
        """The epoch's metrics of ``prefix`` (``val``/``test``), as logged."""
        if self.task == "classification":
            means = self._epoch_means([f"{prefix}_loss", f"{prefix}_correct"])
            return {f"{prefix}_loss": means[f"{prefix}_loss"], f"{prefix}_acc": means[f"{prefix}_correct"]}
        terms = RegressionMeter.term_names(self.hparams["num_outputs"])
        means = self._epoch_means([f"{prefix}_loss", *(f"{prefix}_{t}" for t in terms)])
        metrics = RegressionMeter.metrics({t: means[f"{prefix}_{t}"] for t in terms})
        return {f"{prefix}_loss": means[f"{prefix}_loss"], **{f"{prefix}_{k}": v for k, v in metrics.items()}}

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:  # noqa: D102
        self._evaluation_step("val", batch)

    def on_validation_epoch_end(self) -> None:  # noqa: D102
        metrics = self._evaluation_metrics("val")
        if self.trainer is not None and self.trainer.sanity_checking:
            return
        logs = self._trainer is None or not self.trainer.barebones  # barebones trainers forbid self.log
        for name, value in metrics.items():
            self.history[name].append(value)
            if logs:
                self.log(name, value)
        if not math.isfinite(metrics["val_loss"]):
            raise NonFiniteMetricError(f"Validation loss is {metrics['val_loss']} at epoch {self.current_epoch + 1}.")

    def test_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:  # noqa: D102
        self._evaluation_step("test", batch)

    def on_test_epoch_end(self) -> None:  # noqa: D102
        for name, value in self._evaluation_metrics("test").items():
            self.log(name, value)

    def to_onnx(self, file_path: Any = None, input_sample: Any = None, **kwargs: Any) -> Any:
        """Export :meth:`forward` to ONNX (``LightningModule.to_onnx``); needs the ``onnx`` extra.

        Without ``input_sample`` the export traces ``example_input_array`` (inputs in the user's
        units) and, unless ``dynamic_shapes`` or ``dynamic_axes`` are given, the program takes any
        batch size.

        Raises
        ------
        ModuleNotFoundError
            When ``onnx``/``onnxscript`` are missing; the message ends with the ``pip install`` line.
        """
        require("onnx", "`to_onnx`")
        example = self.example_input_array
        if input_sample is None and torch.is_tensor(example) and not {"dynamic_shapes", "dynamic_axes"} & set(kwargs):
            if _onnx_exports_with_dynamo(kwargs):
                # torch.export takes a batch of one for a constant; two samples keep the batch axis free.
                input_sample = example.expand(2, *example.shape[1:]).contiguous()
                kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch")},)
            else:
                kwargs.setdefault("input_names", ["input"])
                kwargs.setdefault("output_names", ["output"])
                kwargs["dynamic_axes"] = {kwargs["input_names"][0]: {0: "batch"},
                                          kwargs["output_names"][0]: {0: "batch"}}
        return super().to_onnx(file_path, input_sample, **kwargs)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """Outputs of :meth:`forward` for a batch ``x`` or ``(x, ...)``: logits, or values in the user's units."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(x)


def _onnx_exports_with_dynamo(kwargs: Mapping[str, Any]) -> bool:
    """Whether ``torch.onnx.export`` with ``kwargs`` uses the ``torch.export``-based exporter."""
    params = inspect.signature(torch.onnx.export).parameters
    if "dynamic_shapes" not in params:
        return False
    default = params["dynamo"].default if "dynamo" in params else False
    return bool(kwargs.get("dynamo", default))


def check_target_stats(stats: Mapping[str, Sequence[float]] | None, task: str,
                       num_outputs: int) -> dict[str, list[float]] | None:
    """``stats`` as plain lists after checking them; None for classification or when not given."""
    if stats is None or task != "regression":
        return None
    try:
        mean = [float(v) for v in stats["mean"]]
        std = [float(v) for v in stats["std"]]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"`target_stats` must be {{'mean': [...], 'std': [...]}}, got {stats!r}.") from None
    if len(mean) != num_outputs or len(std) != num_outputs:
        raise ValueError(f"`target_stats` needs {num_outputs} mean(s) and std(s), got {stats!r}.")
    if not all(math.isfinite(m) for m in mean) or not all(math.isfinite(s) and s > 0 for s in std):
        raise ValueError(f"`target_stats` must hold finite means and positive stds, got {stats!r}.")
    return {"mean": mean, "std": std}
