"""``lightning_dnc.Trainer``: a ``lightning.Trainer`` that can also run a Deep-n-Cheap search."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from lightning_dnc.lightning.tuner import DeepNCheapTuner, tune
from lightning_dnc.search import SearchResult


class Trainer(pl.Trainer):
    """``lightning.Trainer`` plus :meth:`tune`; everything else is unchanged."""

    def tune(
        self,
        model: pl.LightningModule,
        datamodule: pl.LightningDataModule | None = None,
        dnc: DeepNCheapTuner | None = None,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
    ) -> SearchResult:
        """Search architecture and training hyperparameters for ``model`` on this trainer's hardware.

        Parameters
        ----------
        model : LightningModule
            A :class:`~lightning_dnc.DnCModel` (or your module taking ``config``); left rebuilt
            with the best configuration, ready for ``trainer.fit(model, ...)``.
        datamodule : LightningDataModule, optional
            Data to search on; its ``batch_size`` is left at the best value found. Optional when
            the model carries its data.
        dnc : DeepNCheapTuner, optional
            Search settings, e.g. ``DeepNCheapTuner(wc=0.1)``.
        train_dataloaders, val_dataloaders : DataLoader, optional
            Plain loaders instead of a datamodule.

        Returns
        -------
        SearchResult
            ``best_config``, ``top_k``, every trial, the Pareto front, ``rescore(...)``.
        """
        return tune(self, model, datamodule=datamodule, dnc=dnc,
                    train_dataloaders=train_dataloaders, val_dataloaders=val_dataloaders)
