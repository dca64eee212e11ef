"""Search your own LightningModule: its ``__init__`` takes a ``config`` dict and builds from it.

The search fills ``config`` with the keys of :func:`lightning_dnc.space.complete_config`
(``hidden_mlp``, ``act``, ``dropout_probs_mlp``, ``lr``, ``weight_decay``, ``batch_size`` for an
MLP). Log ``val_acc`` (classification) or ``val_loss`` (regression) once per validation epoch:
that is what candidates are ranked by. A key your module ignores is reported before the search
(a ``SetupWarning`` naming it) and the stage-2 groups that only change it are skipped.

    python examples/own_module.py
"""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

import lightning_dnc as dnc
from lightning_dnc.data import DigitsDataModule


class MyMLP(pl.LightningModule):
    family = "mlp"

    def __init__(self, config: dict, num_outputs: int = 10):
        super().__init__()
        self.save_hyperparameters()
        activation = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[config.get("act", "relu")]
        hidden = config.get("hidden_mlp", [64])
        dropouts = config.get("dropout_probs_mlp", [0.2] * len(hidden))
        layers, width = [nn.Flatten()], 64
        for units, p in zip(hidden, dropouts):
            layers += [nn.Linear(width, units), activation(), nn.Dropout(p)]
            width = units
        layers.append(nn.Linear(width, num_outputs))
        self.net = nn.Sequential(*layers)
        self.lr = config.get("lr", 1e-3)
        wd = config.get("weight_decay", "auto")
        self.weight_decay = 0.0 if wd == "auto" else float(wd)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


if __name__ == "__main__":
    dm = DigitsDataModule()
    model = MyMLP(config={"hidden_mlp": [64]})
    trainer = dnc.Trainer(max_epochs=10, logger=False, enable_checkpointing=False)
    result = trainer.tune(model, datamodule=dm, dnc=dnc.DeepNCheapTuner(
        wc=0.1, search_epochs=3, prior_points=2, steps=2, explore=100))
    print(result.best_config)
    trainer.fit(model, datamodule=dm)  # the model was rebuilt with the best configuration
