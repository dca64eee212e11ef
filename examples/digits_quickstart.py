"""Deep-n-Cheap on the embedded handwritten digits (offline, a few minutes on a laptop CPU).

    python examples/digits_quickstart.py
"""

import lightning_dnc as dnc
from lightning_dnc.data import DigitsDataModule

if __name__ == "__main__":
    dm = DigitsDataModule()
    model = dnc.DnCModel(family="cnn", datamodule=dm)
    trainer = dnc.Trainer(max_epochs=30, accelerator="auto", logger=False, enable_checkpointing=False)
    # The design's call: the model carries its data.
    result = trainer.tune(model, dnc=dnc.DeepNCheapTuner(
        wc=0.1, search_epochs=10, prior_points=4, steps=4, explore=300,
        space=dnc.CNNSpace(num_conv_layers=(2, 6), channels_first=(8, 32), channels_upper=128)))
    print("best configuration:", result.best_config)
    trainer.fit(model)  # trains the architecture and hyperparameters found
    print(trainer.validate(model, verbose=False))
