"""``DnCModel``: a searchable LightningModule whose network is whatever the search found."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch

from lightning_dnc.data.targets import target_statistics
from lightning_dnc.models import CandidateModule, build_network
from lightning_dnc.models.inputs import check_input_stats
from lightning_dnc.models.module import LR_GAMMA, TASKS, check_target_stats, lr_milestones
from lightning_dnc.space import FAMILIES, CNNSpace, MLPSpace, complete_config


def default_config(family: str) -> dict[str, Any]:
    """The configuration trained before any search: the centre of the family's SPEC space."""
    space = CNNSpace() if family == "cnn" else MLPSpace()
    return complete_config({**space.sample(1, seed=0, method="sobol")[0], "family": family})


class DnCModel(CandidateModule):
    """A LightningModule whose architecture and training settings Deep-n-Cheap searches.

    Before a search it trains the centre of the family's space; ``trainer.tune(model, ...)``
    leaves it rebuilt with the best configuration found. A checkpoint rebuilds itself with
    ``DnCModel.load_from_checkpoint(path)``.

    Parameters
    ----------
    family : {"cnn", "mlp"}, default "cnn"
    config : mapping, optional
        A (partial) configuration to start from; the SPEC default of the family otherwise.
    datamodule : LightningDataModule, optional
        Data the model carries, so ``trainer.tune(model, dnc=...)`` and ``trainer.fit(model)``
        work without passing it again. Not saved in checkpoints.
    input_shape, num_outputs, task : optional
        Read from the datamodule when omitted (``input_shape``, ``num_outputs``, ``task``
        attributes); the network is built as soon as they are known.
    epochs : int, optional
        ``N`` of the learning-rate schedule; the trainer's ``max_epochs`` when omitted.
    target_stats : mapping, optional
        Regression: ``{"mean": [...], "std": [...]}`` of the training targets; read from the
        datamodule's training split when omitted (see :class:`~lightning_dnc.models.CandidateModule`).
    input_stats : mapping, optional
        ``{"scale": s, "mean": m, "std": d}``: the model normalises its inputs, so it takes them in
        the user's units; read from the datamodule's ``input_stats`` when omitted (none: inputs go
        to the network as the datamodule serves them).

    Attributes
    ----------
    threads : "auto", int or None
        Torch threads of ``trainer.fit(model)`` on a CPU; ``None`` (torch's own count) until a
        search sets it to the tuner's ``threads``, so the final training races the thread counts as
        the candidates did (:class:`~lightning_dnc.lightning.candidate.candidate_threads.CandidateThreads`).

    Examples
    --------
    After ``trainer.tune(model, dnc=...)`` and ``trainer.fit(model)``: ``trainer.test(model)``,
    ``trainer.predict(model)`` (the datamodule's test split), ``model.to_onnx(...)``.
    """

    def __init__(
        self,
        family: str = "cnn",
        config: Mapping[str, Any] | None = None,
        datamodule: pl.LightningDataModule | None = None,
        input_shape: Sequence[int] | None = None,
        num_outputs: int | None = None,
        task: str | None = None,
        epochs: int | None = None,
        target_stats: Mapping[str, Sequence[float]] | None = None,
        input_stats: Mapping[str, Any] | None = None,
    ) -> None:
        pl.LightningModule.__init__(self)
        if family not in FAMILIES:
            raise ValueError(f"`family` must be one of {list(FAMILIES)}, got {family!r}.")
        self.family = family
        self.datamodule = datamodule
        input_shape = input_shape if input_shape is not None else getattr(datamodule, "input_shape", None)
        num_outputs = num_outputs if num_outputs is not None else getattr(datamodule, "num_outputs", None)
        task = task if task is not None else getattr(datamodule, "task", "classification")
        if task not in TASKS:
            raise ValueError(f"`task` must be one of {list(TASKS)}, got {task!r}.")
        if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
            raise ValueError(f"`epochs` must be an int >= 1, got {epochs!r}.")
        full = complete_config({**config, "family": family}) if config is not None else default_config(family)
        self.task = task
        self.epochs = epochs
        self.config = full
        self.net: torch.nn.Module | None = None
        self.normalize: torch.nn.Module = torch.nn.Identity()
        self.destandardise = False
        if input_stats is None:
            input_stats = getattr(datamodule, "input_stats", None)
        self.save_hyperparameters({
            "family": family, "config": full,
            "input_shape": list(input_shape) if input_shape is not None else None,
            "num_outputs": num_outputs, "task": task, "epochs": epochs,
            "target_stats": target_stats if target_stats is None else dict(target_stats),
            "input_stats": input_stats if input_stats is None else dict(input_stats),
        })
        self._init_history()
        self._build_if_possible()

    # -- configuration ------------------------------------------------------------------------
    def apply_config(self, config: Mapping[str, Any]) -> None:
        """Rebuild the network from ``config`` (fresh weights) and keep it for checkpoints."""
        full = complete_config({**config, "family": self.family})
        self.config = full
        self.hparams["config"] = full
        if "epochs" in full:
            self.epochs = full["epochs"]
            self.hparams["epochs"] = self.epochs
        self.net = None
        self._init_history()
        self._build_if_possible()

    def _build_if_possible(self) -> None:
        shape, outputs = self.hparams.get("input_shape"), self.hparams.get("num_outputs")
        if self.net is None and shape is not None and outputs is not None:
            stats = check_target_stats(self.hparams.get("target_stats"), self.task, outputs)
            self.hparams["target_stats"] = stats
            inputs = check_input_stats(self.hparams.get("input_stats"), shape)
            self.hparams["input_stats"] = inputs
            self.net = build_network(self.config, shape, outputs)
            self._init_inputs(shape, inputs)
            self._init_targets(self.task, outputs, stats)

    def learn_data_info(self, datamodule: Any) -> None:
        """Take ``input_shape``, ``num_outputs`` and ``task`` from ``datamodule`` where unknown; build the net."""
        for name in ("input_shape", "num_outputs", "task"):
            if self.hparams.get(name) is None and getattr(datamodule, name, None) is not None:
                value = getattr(datamodule, name)
                self.hparams[name] = list(value) if name == "input_shape" else value
        self.task = self.hparams.get("task") or self.task
        if self.hparams.get("input_stats") is None and getattr(datamodule, "input_stats", None) is not None:
            self.hparams["input_stats"] = check_input_stats(datamodule.input_stats, self.hparams["input_shape"])
            if self.net is not None:
                self._init_inputs(self.hparams["input_shape"], self.hparams["input_stats"])
        if self.task == "regression" and self.hparams.get("target_stats") is None:
            self.hparams["target_stats"] = target_statistics(datamodule)
            if self.net is not None:
                stats = check_target_stats(self.hparams["target_stats"], self.task, self.hparams["num_outputs"])
                self._init_targets(self.task, self.hparams["num_outputs"], stats)
        self._init_history()
        self._build_if_possible()

    __jit_unused_properties__ = CandidateModule.__jit_unused_properties__

    @property
    def num_params(self) -> int:
        """Trainable parameter count ``N_p`` of the current network."""
        self._require_network()
        return super().num_params

    def _require_network(self) -> None:
        if self.net is None:
            raise ValueError(
                "The network is not built yet: DnCModel needs `input_shape` and `num_outputs`. Pass "
                "`datamodule=` (or both values) to DnCModel, or call `trainer.fit(model, datamodule=dm)`."
            )

    # -- Lightning hooks ------------------------------------------------------------------------
    def configure_callbacks(self) -> list[Any]:  # noqa: D102
        threads = getattr(self, "threads", None)
        if threads is None:
            return []
        from lightning_dnc.lightning.candidate.candidate_threads import CandidateThreads

        return [CandidateThreads(threads)]

    def setup(self, stage: str) -> None:  # noqa: D102
        datamodule = self._trainer.datamodule if self._trainer is not None else None
        if datamodule is None and self.datamodule is not None:
            datamodule = self.datamodule
            datamodule.prepare_data()
            datamodule.setup(stage)
        if datamodule is not None:
            self.learn_data_info(datamodule)
        self._require_network()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs ``(B, num_outputs)``: class logits, or regression values in the user's units."""
        if not torch.jit.is_scripting():
            self._require_network()
        outputs = self.net(self.normalize(x))  # type: ignore[misc]
        if self.destandardise:
            outputs = outputs * self.target_std + self.target_mean
        return outputs

    def configure_optimizers(self) -> dict[str, Any]:  # noqa: D102
        epochs = self.epochs
        if epochs is None:
            max_epochs = self.trainer.max_epochs if self._trainer is not None else None
            epochs = max_epochs if max_epochs is not None and max_epochs > 0 else 100
        optimizer = torch.optim.Adam(self.parameters(), lr=self.config["lr"], weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, lr_milestones(epochs), gamma=LR_GAMMA)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    # -- data the model carries -----------------------------------------------------------------
    def _carried(self, split: str) -> Any:
        if self.datamodule is None:
            raise ValueError(
                "DnCModel carries no data: pass `DnCModel(family=..., datamodule=dm)` or "
                "`trainer.fit(model, datamodule=dm)`."
            )
        return getattr(self.datamodule, f"{split}_dataloader")()

    def train_dataloader(self) -> Any:  # noqa: D102
        return self._carried("train")

    def val_dataloader(self) -> Any:  # noqa: D102
        return self._carried("val")

    def test_dataloader(self) -> Any:  # noqa: D102
        return self._carried("test")

    def predict_dataloader(self) -> Any:  # noqa: D102
        return self._carried("predict")
