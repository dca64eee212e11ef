"""CNN search on CIFAR-10 with augmentation, used as a callback (search first, then train the winner).

Downloads CIFAR-10 into ./data the first time. The paper's budget takes GPU hours; use a GPU.

    python examples/cifar10_cnn.py --wc 0.1
"""

import argparse

import lightning_dnc as dnc
from lightning_dnc.data import CIFAR10DataModule

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--wc", type=float, default=0.1)
    parser.add_argument("--search_epochs", type=int, default=100)
    args = parser.parse_args()
    dm = CIFAR10DataModule(root="data", download=True)
    model = dnc.DnCModel(family="cnn")
    tuner = dnc.DeepNCheapTuner(wc=args.wc, search_epochs=args.search_epochs, journal="cifar10_trials.jsonl")
    trainer = dnc.Trainer(max_epochs=100, accelerator="auto", callbacks=[tuner])
    trainer.fit(model, datamodule=dm)
    print("searched and trained:", tuner.best_config)
