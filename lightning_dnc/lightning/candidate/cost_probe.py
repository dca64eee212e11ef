"""``CostProbe``: measure a candidate's costs at the start of its training, outside Lightning's loop.

At ``on_train_start`` the model sits on its device with its optimizer, and the loaders exist. The
probe takes the first batch of the real training loader (its shuffling generator and the global
RNG are put back afterwards, so epoch 1 sees the same batches), moves it to the device the way
the loop would, and hands plain PyTorch pieces to :func:`lightning_dnc.measure.measure_costs`:
a training step that is the candidate's own forward, loss, backward and optimizer step (under the
trainer's precision context, through its gradient scaler if any) with none of the loop's hooks.
Everything the steps change is restored, so the candidate then trains exactly as without the probe.

The training step uses ``step_loss(batch)`` when the module has it (``CandidateModule`` does),
else its ``training_step(batch, 0)`` with ``self.log`` silenced; any other module with manual
optimisation is stepped by its own ``training_step``. Runs with more than one process (DDP) are not probed
(their costs are ``None``; step-mode ``t_tr`` falls back to the epoch loop's).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning_utilities.core.apply_func import apply_to_collection

from lightning_dnc.measure import CandidateCosts, EpochShape, StepPlan, measure_costs


class CostProbe(Callback):
    """Measure step-mode ``t_tr``, FLOPs, latency and memory once, when training starts.

    Parameters
    ----------
    epochs : int
        The candidate's planned epochs (the measurement's time budget scales with them).
    step_plan : StepPlan, optional
        How the training step is timed.
    num_threads : int, optional
        Torch threads while timing (the training's count by default).

    Attributes
    ----------
    costs : CandidateCosts or None
        Set at ``on_train_start``; its ``error`` says why a part is missing.
    """

    def __init__(self, epochs: int, step_plan: StepPlan | None = None, num_threads: int | None = None) -> None:
        super().__init__()
        self.epochs = int(epochs)
        self.step_plan = step_plan
        self.num_threads = num_threads
        self.costs: CandidateCosts | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        if trainer.world_size > 1:
            self.costs = CandidateCosts(error="not measured in multi-process (DDP) runs")
            return
        try:
            self.costs = self._measure(trainer, pl_module)
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as err:  # noqa: BLE001 - costs that cannot be measured stay None; training goes on
            self.costs = CandidateCosts(error=f"{type(err).__name__}: {err}")

    def _measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> CandidateCosts:
        loader = trainer.train_dataloader
        generators = [g for g in (getattr(loader, "generator", None),) if isinstance(g, torch.Generator)]
        with torch.random.fork_rng(devices=[]):
            states = [g.get_state() for g in generators]
            try:
                batch = next(iter(loader))
            finally:
                for g, state in zip(generators, states):
                    g.set_state(state)
        batch = trainer.strategy.batch_to_device(batch)
        optimizers = list(trainer.optimizers)
        plugin = trainer.precision_plugin
        scaler = getattr(plugin, "scaler", None)
        has_step_loss = callable(getattr(pl_module, "step_loss", None))
        loss_of = _loss_function(pl_module) if pl_module.automatic_optimization or has_step_loss else None
        if loss_of is None:
            def train_step(b: Any) -> None:
                with _silenced_logging(pl_module), plugin.forward_context():
                    pl_module.training_step(b, 0)
        else:
            def train_step(b: Any) -> None:
                for optimizer in optimizers:
                    optimizer.zero_grad(set_to_none=True)
                with plugin.forward_context():
                    loss = loss_of(b)
                (scaler.scale(loss) if scaler is not None else loss).backward()
                for optimizer in optimizers:
                    if scaler is not None:
                        scaler.step(optimizer)
                    else:
                        optimizer.step()
                if scaler is not None:
                    scaler.update()

        pl_module.train()
        return measure_costs(
            pl_module, optimizers, train_step, loss_of, batch, _slice, _inputs, epoch_shape(loader, batch),
            self.epochs, eval_batch_size(trainer.val_dataloaders, _inputs(batch).shape[0]),
            trainer.strategy.root_device, self.step_plan, self.num_threads, generators,
            [scaler] if scaler is not None else [],
        )


def _loss_function(pl_module: pl.LightningModule) -> Any:
    step_loss = getattr(pl_module, "step_loss", None)
    if callable(step_loss):
        return step_loss

    def loss_of(batch: Any) -> torch.Tensor:
        with _silenced_logging(pl_module):
            out = pl_module.training_step(batch, 0)
        return out["loss"] if isinstance(out, Mapping) else out

    return loss_of


@contextlib.contextmanager
def _silenced_logging(pl_module: pl.LightningModule) -> Iterator[None]:
    """``self.log``/``self.log_dict`` do nothing inside the block (the probe's steps are not the loop's)."""
    pl_module.__dict__["log"] = lambda *args, **kwargs: None
    pl_module.__dict__["log_dict"] = lambda *args, **kwargs: None
    try:
        yield
    finally:
        pl_module.__dict__.pop("log", None)
        pl_module.__dict__.pop("log_dict", None)


def _inputs(batch: Any) -> torch.Tensor:
    if torch.is_tensor(batch):
        return batch
    if isinstance(batch, Sequence) and batch and torch.is_tensor(batch[0]):
        return batch[0]
    raise TypeError(f"Cannot tell the inputs of a batch of type {type(batch).__name__}; expected (x, y, ...).")


def _slice(batch: Any, n: int) -> Any:
    return apply_to_collection(batch, torch.Tensor, lambda t: t[:n])


def _samples(loader: Any) -> int | None:
    samples = getattr(loader, "samples_per_epoch", None)
    if isinstance(samples, int):
        return samples
    sampler = getattr(loader, "sampler", None)
    if getattr(loader, "drop_last", False) or sampler is None:
        return None
    try:
        return len(sampler)
    except TypeError:
        return None


def epoch_shape(loader: Any, batch: Any) -> EpochShape:
    """The full and last batch sizes of one epoch of ``loader`` (``batch``: its first batch)."""
    batch_size = getattr(loader, "batch_size", None) or int(_inputs(batch).shape[0])
    samples = _samples(loader)
    if samples is None:
        samples = len(loader) * batch_size
    return EpochShape(samples=int(samples), batch_size=int(batch_size))


def eval_batch_size(val_loaders: Any, fallback: int) -> int:
    """Samples in the first validation batch (the training batch size without a validation loader)."""
    loader = val_loaders[0] if isinstance(val_loaders, Sequence) and val_loaders else val_loaders
    size = getattr(loader, "batch_size", None)
    if not size:
        return int(fallback)
    samples = _samples(loader)
    return int(min(size, samples) if samples else size)


__all__ = ["CostProbe", "epoch_shape", "eval_batch_size"]
