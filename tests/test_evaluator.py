"""CandidateEvaluator: records, failure paths, RNG isolation, clean-up and fixed cost."""

from __future__ import annotations

import gc
import math
import signal
import weakref

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from lightning_dnc.data import DigitsDataModule, NpzDataModule
from lightning_dnc.lightning.candidate.evaluator import CandidateEvaluator
from lightning_dnc.models import CandidateModule, count_parameters
from lightning_dnc.search.core.records import Evaluation

MLP = {"family": "mlp", "hidden_mlp": [16], "batch_size": 128}


@pytest.fixture(scope="module")
def digits_flat():
    return DigitsDataModule(flatten=True)


def test_ok_evaluation_record(digits_flat):
    evaluator = CandidateEvaluator(digits_flat, epochs=2, accelerator="cpu")
    ev = evaluator.evaluate(MLP)
    assert isinstance(ev, Evaluation) and ev.ok and ev.failure_reason is None
    assert digits_flat.batch_size == 128
    assert ev.epochs_run == 2 and len(ev.val_acc_curve) == len(ev.val_loss_curve) == len(ev.train_loss_curve) == 2
    assert ev.best_val_acc == max(ev.val_acc_curve) and 0.0 <= ev.best_val_acc <= 1.0
    assert ev.best_val_loss == min(ev.val_loss_curve)
    assert ev.n_params == count_parameters(MLP, (64,), 10)
    assert ev.t_tr_epoch == ev.extra["epoch_times"][1] and ev.t_tr == ev.t_tr_step > 0  # SPEC §1 kept beside it
    assert ev.device == "cpu" and ev.wall_time >= sum(ev.extra["epoch_times"])
    assert ev.config["weight_decay"] == "auto" and ev.config["dropout_probs_mlp"] == [0.2]
    assert Evaluation.from_dict(ev.to_dict()) == ev


def test_cnn_candidate_and_config_epochs(tmp_path):
    dm = DigitsDataModule()
    ev = CandidateEvaluator(dm, epochs=5, accelerator="cpu").evaluate(
        {"out_channels": [8, 8, 16, 16], "epochs": 1, "batch_size": 512})
    assert ev.ok and ev.epochs_run == 1 and ev.t_tr_epoch == ev.extra["epoch_times"][0]


def test_same_seed_same_result_and_caller_rng_untouched(digits_flat):
    evaluator = CandidateEvaluator(digits_flat, epochs=2, accelerator="cpu", seed=7)
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    a = evaluator.evaluate(MLP)
    b = evaluator.evaluate(MLP)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert a.val_loss_curve == b.val_loss_curve and a.train_loss_curve == b.train_loss_curve
    c = CandidateEvaluator(digits_flat, epochs=2, accelerator="cpu", seed=8).evaluate(MLP)
    assert c.train_loss_curve != a.train_loss_curve


class _Raises(CandidateModule):
    error: BaseException = RuntimeError("boom in training_step")

    def training_step(self, batch, batch_idx):
        raise type(self).error


class _Exception(_Raises):
    error = RuntimeError("boom in training_step")


class _Oom(_Raises):
    error = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


class _Interrupt(_Raises):
    error = KeyboardInterrupt()


class _NanLoss(CandidateModule):
    def training_step(self, batch, batch_idx):
        return super().training_step(batch, batch_idx) * float("nan")


@pytest.mark.parametrize("module_class,reason,text", [
    (_Exception, "exception", "boom in training_step"),
    (_Oom, "oom", "OutOfMemoryError: CUDA out of memory"),
    (_NanLoss, "nan", "loss is nan"),
])
def test_failures_return_failed_records(digits_flat, module_class, reason, text):
    evaluator = CandidateEvaluator(digits_flat, epochs=2, accelerator="cpu", module_class=module_class)
    ev = evaluator.evaluate(MLP)
    assert ev.status == "failed" and not ev.ok
    assert ev.failure_reason == reason
    assert text in ev.error
    assert ev.n_params == count_parameters(MLP, (64,), 10)
    assert Evaluation.from_dict(ev.to_dict()).failure_reason == reason


def test_interrupt_propagates_and_sigint_handler_is_restored(digits_flat):
    def handler(signum, frame):  # pragma: no cover - never delivered
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        evaluator = CandidateEvaluator(digits_flat, epochs=1, accelerator="cpu", module_class=_Interrupt)
        with pytest.raises((KeyboardInterrupt, SystemExit)):
            evaluator.evaluate(MLP)
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, previous)


class _Tracked(CandidateModule):
    instances: list[weakref.ref] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        type(self).instances.append(weakref.ref(self))


def test_everything_is_released_after_an_evaluation(digits_flat):
    gc.collect()
    CandidateEvaluator(digits_flat, epochs=1, accelerator="cpu", module_class=_Tracked).evaluate(MLP)
    assert _Tracked.instances and _Tracked.instances[-1]() is None
    assert digits_flat.trainer is None


def test_fixed_cost_per_candidate_is_small(digits_flat):
    evaluator = CandidateEvaluator(digits_flat, epochs=1, accelerator="cpu")
    config = {**MLP, "batch_size": 2048}
    evaluator.evaluate(config)
    costs = []
    for _ in range(3):
        ev = evaluator.evaluate(config)
        costs.append(ev.wall_time - ev.extra["epoch_times"][0])
    assert min(costs) < 0.5


def test_early_stopping_with_patience(digits_flat):
    evaluator = CandidateEvaluator(digits_flat, epochs=6, accelerator="cpu", patience=1)
    ev = evaluator.evaluate({**MLP, "lr": 1e-12})
    assert ev.ok and ev.epochs_run == 2


@pytest.mark.parametrize("target_shape", [(40,), (40, 1)])
def test_regression_evaluation(tmp_path, target_shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], dtype=np.float32)).reshape(target_shape)
    np.savez(tmp_path / "r.npz", xtr=x, ytr=y, xte=x[:5], yte=y[:5])
    dm = NpzDataModule(tmp_path / "r.npz")
    ev = CandidateEvaluator(dm, epochs=2, accelerator="cpu").evaluate({"family": "mlp", "batch_size": 8})
    assert ev.ok and ev.task == "regression" and ev.best_val_acc is None and ev.val_acc_curve == ()
    assert math.isfinite(ev.best_val_loss) and ev.best_val_loss == min(ev.val_loss_curve)


class _UserModule(pl.LightningModule):
    """A user module without `history`: metrics come from what it logs."""

    def __init__(self, config, num_outputs):
        super().__init__()
        self.net = torch.nn.Linear(64, num_outputs)
        self.lr = config["lr"]

    def training_step(self, batch, batch_idx):
        loss = torch.nn.functional.cross_entropy(self.net(batch[0]), batch[1])
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        out = self.net(batch[0])
        self.log("val_loss", torch.nn.functional.cross_entropy(out, batch[1]))
        self.log("val_acc", (out.argmax(1) == batch[1]).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def test_user_module_class_reports_logged_metrics(digits_flat):
    ev = CandidateEvaluator(digits_flat, epochs=2, accelerator="cpu", module_class=_UserModule).evaluate(MLP)
    assert ev.ok and len(ev.val_acc_curve) == 2 and len(ev.train_loss_curve) == 2
    assert ev.n_params == 64 * 10 + 10
    # Its own training_step is timed (self.log silenced); without `forward` there is no inference latency.
    forward_and_weight_gradient = 2 * (2 * 64 * 10)  # per sample; the data needs no gradient
    assert ev.t_tr == ev.t_tr_step > 0
    assert ev.flops_train == digits_flat.num_samples("train") * forward_and_weight_gradient
    assert ev.latency is None and "latency" in ev.extra["costs"]["error"]


def test_datamodule_without_batch_size_is_rejected():
    class Bare(pl.LightningDataModule):
        input_shape, num_outputs, task = (4,), 2, "classification"

    with pytest.raises(TypeError, match="no `batch_size` attribute"):
        CandidateEvaluator(Bare())
    with pytest.raises(ValueError, match="`epochs` must be an int >= 1"):
        CandidateEvaluator(DigitsDataModule(), epochs=0)


class _DivergesAtEpoch3(CandidateModule):
    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        return loss * float("nan") if self.current_epoch >= 2 else loss


def test_a_candidate_that_diverges_later_is_scored_before_it_and_stopped(digits_flat):
    evaluator = CandidateEvaluator(digits_flat, epochs=5, accelerator="cpu", module_class=_DivergesAtEpoch3)
    ev = evaluator.evaluate(MLP)
    assert ev.ok and ev.diverged and ev.failure_reason is None
    assert len(ev.val_acc_curve) == len(ev.val_loss_curve) == len(ev.train_loss_curve) == 2
    assert ev.best_val_acc == max(ev.val_acc_curve) and ev.best_val_loss == min(ev.val_loss_curve)
    assert ev.epochs_run == 2, "training stopped in the epoch that diverged (of 5)"
    assert ev.extra["diverged"]["epoch"] == 3 and "nan" in ev.extra["diverged"]["error"].lower()
    back = Evaluation.from_dict(ev.to_dict())
    assert back.diverged and back.ok
