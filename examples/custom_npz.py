"""Search on your own data saved as a .npz file with arrays xtr, ytr, xte, yte.

Images are channels-first (N, C, H, W) or flat features (N, F); integer labels make a
classification task, float targets a regression task. This script writes a small example file
from scikit-learn's digits first, so it runs offline.

    python examples/custom_npz.py
"""

import numpy as np
from sklearn.datasets import load_digits

import lightning_dnc as dnc
from lightning_dnc.data import NpzDataModule

if __name__ == "__main__":
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    np.savez("my_data.npz", xtr=x[:1500], ytr=y[:1500], xte=x[1500:], yte=y[1500:])
    dm = NpzDataModule("my_data.npz")
    model = dnc.DnCModel(family="mlp")
    trainer = dnc.Trainer(max_epochs=20, logger=False, enable_checkpointing=False)
    result = trainer.tune(model, datamodule=dm, dnc=dnc.DeepNCheapTuner(
        wc=0.1, search_epochs=5, prior_points=3, steps=3, explore=200))
    print(result.best_config)
    trainer.fit(model, datamodule=dm)
