"""MLP search on Fashion-MNIST, penalising training time (the paper's Fashion-MNIST experiment).

Downloads Fashion-MNIST into ./data the first time (needs internet). As in the paper, MLP inputs
are not augmented (the datamodule's default ``augment="auto"`` augments CNN inputs only).

    python examples/fashion_mnist_mlp.py --wc 0.1
"""

import argparse

import lightning_dnc as dnc
from lightning_dnc.data import FashionMNISTDataModule

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--wc", type=float, default=0.1)
    parser.add_argument("--search_epochs", type=int, default=20)
    args = parser.parse_args()
    dm = FashionMNISTDataModule(root="data", download=True)
    model = dnc.DnCModel(family="mlp")
    trainer = dnc.Trainer(max_epochs=100, accelerator="auto", logger=False)
    result = trainer.tune(model, datamodule=dm, dnc=dnc.DeepNCheapTuner(wc=args.wc, search_epochs=args.search_epochs))
    print(result.best_config)
    trainer.fit(model, datamodule=dm)
