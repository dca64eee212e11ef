"""Failed candidates: through the tuner (exception, OOM, NaN loss, NaN metric, OOM retry, too many
failures in a row) and through the evaluator (nothing of a failed trial stays alive, memory flat)."""

from __future__ import annotations

import gc
import json
import sys
import weakref
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

import lightning_dnc as dnc
from lightning_dnc.data import DigitsDataModule, NpzDataModule
from lightning_dnc.lightning.candidate.evaluator import CandidateEvaluator
from lightning_dnc.lightning.search_loop import SearchAborted
from lightning_dnc.models import CandidateModule
from lightning_dnc.space import MLPSpace, TrainingSpace

SPACE = MLPSpace(num_hidden_layers=(1, 1), hidden_nodes=(16, 32))
TINY = dict(search_epochs=1, prior_points=2, steps=1, explore=20, stage2_order=[], progress=False, family="mlp",
            space=SPACE, training_space=TrainingSpace(batch_size=(200, 300)))


class FaultyMLP(CandidateModule):
    """A candidate whose n-th construction misbehaves as ``plan[n]`` says."""

    plan: dict[int, str] = {}
    built = 0
    built_refs: list[weakref.ref] = []
    trainers: list[weakref.ref] = []

    def __init__(self, config, input_shape, num_outputs, task="classification", epochs=None):  # noqa: ANN001
        super().__init__(config, input_shape, num_outputs, task=task, epochs=epochs)
        cls = type(self)
        self.fault = cls.plan.get(cls.built)
        cls.built += 1
        cls.built_refs.append(weakref.ref(self))

    @classmethod
    def reset(cls, plan: dict[int, str]) -> None:
        cls.plan, cls.built, cls.built_refs, cls.trainers = dict(plan), 0, [], []

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        type(self).trainers.append(weakref.ref(self.trainer))
        x, y = batch[0], batch[1]
        if self.fault == "exception":
            raise RuntimeError("injected failure in training_step")
        if self.fault == "oom" or (self.fault == "oom_big" and self.config["batch_size"] > 128):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected). Tried to allocate 20.00 GiB")
        if self.fault == "nan_loss":
            x = x * float("nan")
        return super().training_step((x, y), batch_idx)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self.fault == "nan_metric":
            self.history["val_acc"][-1] = float("nan")


def _search(plan: dict[int, str], tmp_path: Path, **settings) -> dnc.DeepNCheapTuner:
    dm = DigitsDataModule(flatten=True)
    model = FaultyMLP({"family": "mlp", "hidden_mlp": [16]}, (64,), 10)
    FaultyMLP.reset(plan)
    # the paper's stages: stage 1 trains at batch 256, which the OOM cases below halve
    tuner = dnc.DeepNCheapTuner(journal=tmp_path / "trials.jsonl", **{**TINY, "strategy": "paper", **settings})
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu")
    dnc.tune(trainer, model, datamodule=dm, dnc=tuner)
    return tuner


def test_failed_candidates_are_recorded_and_the_search_goes_on(tmp_path):
    # Constructions (a retry builds a new module): trial 0 = 0 (OOM at batch 256) + 1 (retry at 128, ok);
    # trial 1 = 2 (exception); trial 2 = 3 + 4 (OOM twice); trial 3 = 5 (ok); trial 4 = 6; trial 5 = 7.
    plan = {0: "oom_big", 2: "exception", 3: "oom", 4: "oom", 6: "nan_loss", 7: "nan_metric"}
    tuner = _search(plan, tmp_path)
    result = tuner.result
    assert result.meta["finished"]
    evaluations = [t.evaluation for t in result.trials]
    assert [e.failure_reason for e in evaluations] == [None, "exception", "oom", None, "nan", "nan"]
    assert "injected failure in training_step" in evaluations[1].error
    assert "out of memory" in evaluations[2].error and evaluations[2].extra["oom_retry"]["proposed_batch_size"]
    assert "nan" in evaluations[4].error.lower() and "nan" in evaluations[5].error.lower()
    # The OOM retry trained trial 0 at half its batch size, and the record says so.
    assert evaluations[0].ok and evaluations[0].config["batch_size"] == 128
    assert result.trials[0].config["batch_size"] == 256 and result.trials[0].trained_config["batch_size"] == 128
    assert evaluations[0].extra["oom_retry"] == {"proposed_batch_size": 256, "trained_batch_size": 128,
                                                 "first_error": evaluations[0].extra["oom_retry"]["first_error"]}
    # A failed trial is never best, never ranked.
    ranked = {r.trial_id for r in result.rescore(wc=0.1, k=6).ranking}
    assert result.best.trial_id in (0, 3)
    assert not ranked & {1, 2, 4, 5}
    # Every failure is in the journal with its reason and error text.
    events = [json.loads(line) for line in (tmp_path / "trials.jsonl").read_text().splitlines()]
    failed = {e["trial_id"]: e["evaluation"] for e in events if e["event"] == "finished"
              and e["evaluation"]["status"] == "failed"}
    assert {i: f["failure_reason"] for i, f in failed.items()} == {1: "exception", 2: "oom", 4: "nan", 5: "nan"}
    assert all(f["error"] for f in failed.values())


def test_consecutive_failures_stop_the_search_with_a_summary(tmp_path):
    with pytest.raises(SearchAborted, match=r"2 candidates in a row failed .*exception x2.*injected") as info:
        _search({n: "exception" for n in range(10)}, tmp_path, max_consecutive_failures=2, retry_oom=False)
    err = info.value
    assert err.result is None and [f[0] for f in err.failures] == [0, 1]
    assert err.journal == tmp_path / "trials.jsonl"
    assert not (tmp_path / "trials.jsonl.lock").exists()
    events = [json.loads(line) for line in (tmp_path / "trials.jsonl").read_text().splitlines()]
    assert [e["evaluation"]["failure_reason"] for e in events if e["event"] == "finished"] == ["exception"] * 2


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("npz") / "tiny.npz"
    np.savez(path, xtr=rng.normal(size=(96, 6)).astype("float32"), ytr=rng.integers(0, 3, 96),
             xte=rng.normal(size=(16, 6)).astype("float32"), yte=rng.integers(0, 3, 16))
    return path


def _tiny_evaluator(path: Path) -> CandidateEvaluator:
    return CandidateEvaluator(NpzDataModule(path), epochs=1, accelerator="cpu", module_class=FaultyMLP)


CONFIG = {"family": "mlp", "hidden_mlp": [8], "batch_size": 32}


def test_nothing_of_a_failed_trial_stays_alive(tiny_npz):
    evaluator = _tiny_evaluator(tiny_npz)
    FaultyMLP.reset({0: "exception"})
    evaluation = evaluator.evaluate(CONFIG)
    assert evaluation.failure_reason == "exception"
    assert FaultyMLP.built_refs[0]() is None, "the failed trial's model must be freed"
    assert FaultyMLP.trainers and all(ref() is None for ref in FaultyMLP.trainers), "and its trainer"
    assert sys.exc_info() == (None, None, None)
    assert getattr(sys, "last_traceback", None) is None
    assert evaluator.datamodule.trainer is None


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status on this system")


def test_memory_stays_flat_over_alternating_ok_and_failing_trials(tiny_npz):
    evaluator = _tiny_evaluator(tiny_npz)
    faults = ["exception", "oom", "nan_loss", "nan_metric"]
    FaultyMLP.reset({n: faults[(n // 2) % 4] for n in range(1, 40, 2)})  # odd trials fail, each kind in turn
    for _ in range(6):  # warm-up: allocator pools, lazy imports, compiled kernels
        evaluator.evaluate(CONFIG)
    gc.collect()
    before = _rss_mb()
    outcomes = [evaluator.evaluate(CONFIG).ok for _ in range(30)]
    gc.collect()
    growth = _rss_mb() - before
    assert outcomes.count(False) == 15 and outcomes.count(True) == 15
    assert growth < 50, f"RSS grew by {growth:.1f} MB over 30 trials"
    assert sum(ref() is not None for ref in FaultyMLP.built_refs) == 0
