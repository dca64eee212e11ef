"""Train the configuration a search found, evaluate it and save its checkpoint."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities.seed import isolate_rng

from lightning_dnc.data.targets import target_statistics
from lightning_dnc.lightning.candidate.candidate_logs import CandidateLogs
from lightning_dnc.lightning.candidate.candidate_threads import CandidateThreads
from lightning_dnc.lightning.candidate.child_trainer import cheap_cuda_checks, make_child_trainer, quiet_lightning
from lightning_dnc.lightning.candidate.timing import EpochTimer
from lightning_dnc.models import CandidateModule
from lightning_dnc.vocabulary import FINAL_EPOCH_KEY


def train_final_model(config: Mapping[str, Any], datamodule: Any, epochs: int, hardware: Mapping[str, Any],
                      seed: int = 0, checkpoint: Path | None = None,
                      logs: CandidateLogs | None = None, threads: str | int | None = "auto") -> dict[str, Any]:
    """Train ``config`` for ``epochs`` on the training split and measure it.

    Parameters
    ----------
    logs : CandidateLogs, optional
        Log the curves as version ``final`` (beside the candidates' ``trial_000``, ...).
    threads : "auto", int or None, default "auto"
        Torch threads of the training on a CPU, as for the candidates
        (:class:`~lightning_dnc.lightning.candidate.candidate_threads.CandidateThreads`); ``None`` leaves torch's.

    Returns
    -------
    dict
        ``val_*`` and ``test_*`` metrics of the final weights (``acc``/``loss`` for
        classification; ``loss`` (standardised MSE), ``rmse``, ``mae``, ``r2`` in the targets'
        units for regression; test metrics only when the datamodule has a test split),
        ``final_epoch_s`` (the final training's mean epoch in seconds, epochs 2..N, its whole loop:
        not the search's ``t_tr``, which times the training step in a tight loop by default),
        ``n_params``, ``epochs``, ``wall_time`` and the ``checkpoint`` path.
    """
    started = time.perf_counter()
    datamodule.batch_size = int(config["batch_size"])
    timer = EpochTimer()
    with isolate_rng(), quiet_lightning(), cheap_cuda_checks():
        torch.manual_seed(seed)
        module = CandidateModule({**config, "epochs": epochs}, datamodule.input_shape, datamodule.num_outputs,
                                 task=datamodule.task, epochs=epochs,
                                 target_stats=target_statistics(datamodule),
                                 input_stats=getattr(datamodule, "input_stats", None))
        logger = {"logger": logs.logger("final")} if logs is not None else {}
        racer = CandidateThreads(threads) if threads is not None else None
        trainer = make_child_trainer(epochs, hardware, [timer, *([racer] if racer else [])], **logger)
        trainer.fit(module, datamodule=datamodule)
        metrics: dict[str, Any] = {}
        val = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
        metrics.update({k: float(v) for k, v in val.items() if k.startswith("val_")})
        if _has_test_split(datamodule):
            test = trainer.test(module, datamodule=datamodule, verbose=False)[0]
            metrics.update({k: float(v) for k, v in test.items() if k.startswith("test_")})
    if checkpoint is not None:
        trainer.save_checkpoint(checkpoint, weights_only=False)
        metrics["checkpoint"] = str(checkpoint)
    if racer is not None and racer.record is not None:
        metrics["threads"] = racer.record
    metrics.update({FINAL_EPOCH_KEY: timer.t_tr, "n_params": module.num_params, "epochs": epochs,
                    "wall_time": time.perf_counter() - started})
    if logs is not None:
        metrics["log_dir"] = str(logs.root / "final")
    return metrics


def _has_test_split(datamodule: Any) -> bool:
    count = getattr(datamodule, "num_samples", None)
    if callable(count):
        return count("test") > 0
    return type(datamodule).test_dataloader is not pl.LightningDataModule.test_dataloader
