"""Deep-n-Cheap on the embedded handwritten digits (offline, a few minutes on a laptop CPU).

Search, then the model's way on: train -> test -> save -> load -> predict -> export.

    python examples/digits_quickstart.py
"""

import torch

import lightning_dnc as dnc
from lightning_dnc.data import DigitsDataModule

if __name__ == "__main__":
    dm = DigitsDataModule()
    model = dnc.DnCModel(family="cnn", datamodule=dm)
    trainer = dnc.Trainer(max_epochs=30, accelerator="auto", logger=False, enable_checkpointing=False,
                          enable_progress_bar=False)
    # The design's call: the model carries its data.
    result = trainer.tune(model, dnc=dnc.DeepNCheapTuner(
        wc=0.1, search_epochs=10, prior_points=4, steps=4, explore=300, max_time="30m",
        space=dnc.CNNSpace(num_conv_layers=(2, 6), channels_first=(8, 32), channels_upper=128)))
    print(result)
    trainer.fit(model)  # trains the architecture and hyperparameters found
    print(trainer.test(model, verbose=False))
    trainer.save_checkpoint("digits_best.ckpt")
    loaded = dnc.DnCModel.load_from_checkpoint("digits_best.ckpt", weights_only=True)
    predictions = torch.cat(trainer.predict(loaded, datamodule=dm)).argmax(1)
    print("test accuracy of the loaded model:", (predictions == dm.targets("test")).float().mean().item())
    loaded.eval()
    x = dm.arrays("test")[0][:8]  # raw pixels (0..16): the model normalises its inputs itself
    program = torch.export.export(loaded, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    print("exported program, first 3 test samples:", program.module()(x[:3]).argmax(1).tolist())
