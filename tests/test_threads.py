"""``threads="auto"``: each candidate trains with the thread count its own batches say is fastest now."""

from __future__ import annotations

import time

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_dnc.data import DigitsDataModule
from lightning_dnc.executors import RunOptions
from lightning_dnc.lightning.candidate.candidate_threads import DRIFT_WINDOW, CandidateThreads
from lightning_dnc.lightning.candidate.evaluator import CandidateEvaluator
from lightning_dnc.measure.threads import ThreadRace, thread_counts
from lightning_dnc.validation import SettingError


def test_thread_counts_try_every_small_count_then_powers_of_two():
    assert thread_counts(1) == (1,)
    assert thread_counts(2) == (1, 2)
    assert thread_counts(6) == (1, 2, 3, 4, 6)
    assert thread_counts(16) == (1, 2, 3, 4, 8, 16)


def _run_race(race: ThreadRace, seconds: dict[int, float]) -> list[int]:
    order = []
    while not race.decided:
        count = race.next_count()
        order.append(count)
        race.record(count, seconds[count])
    return order


def test_race_picks_the_faster_count_and_alternates_the_order():
    race = ThreadRace([1, 2], rounds=4, min_rounds=2)
    order = _run_race(race, {1: 0.010, 2: 0.015})
    assert race.threads == 1
    assert order == [1, 2, 2, 1]  # the order is reversed every round; clearly apart after two rounds

    race = ThreadRace([1, 2], rounds=4, min_rounds=2)
    _run_race(race, {1: 0.015, 2: 0.010})
    assert race.threads == 2


def test_a_far_slower_count_costs_one_batch_and_the_preferred_count_goes_first():
    race = ThreadRace([1, 2, 3, 4], prefer=3)
    order = _run_race(race, {1: 0.010, 2: 0.05, 3: 0.08, 4: 0.1})
    assert order == [3, 1, 2, 4]  # the preferred count first; every other count far slower than 1: out at once
    assert race.threads == 1
    assert race.to_dict()["timed_batches"] == 4


def test_race_keeps_fewer_threads_when_more_are_not_clearly_faster():
    race = ThreadRace([1, 2], rounds=3, min_rounds=2, tie_tolerance=0.05)
    order = _run_race(race, {1: 0.0100, 2: 0.0098})
    assert race.threads == 1
    assert len(order) == 6  # never clearly apart: every round is run
    assert race.to_dict()["threads"] == 1 and set(race.to_dict()["batch_seconds"]) == {"1", "2"}


def test_one_count_is_decided_without_a_race():
    race = ThreadRace([3])
    assert race.decided and race.threads == 3


class _ThreadSensitive(pl.LightningModule):
    """Its training batch is slow with ``slow_count`` threads: a stand-in for thread contention."""

    def __init__(self, slow_count: int, slow_after: int = 0, other_delay: float = 0.0) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 2)
        self.slow_count = slow_count
        self.slow_after = slow_after
        self.other_delay = other_delay  # seconds of a batch with any other count (a mild, steady cost)
        self.batches = 0
        self.threads_seen: list[int] = []

    def training_step(self, batch, batch_idx):
        self.batches += 1
        threads = torch.get_num_threads()
        self.threads_seen.append(threads)
        if threads == self.slow_count and self.batches > self.slow_after:
            time.sleep(0.15)  # far above what thread contention on a loaded CI machine costs
        elif threads != self.slow_count:
            time.sleep(self.other_delay)
        x, y = batch
        return F.cross_entropy(self.layer(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(module: pl.LightningModule, callback: CandidateThreads, batches: int = 24) -> None:
    data = TensorDataset(torch.randn(8 * batches, 4), torch.randint(0, 2, (8 * batches,)))
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[callback])
    trainer.fit(module, DataLoader(data, batch_size=8))


@pytest.mark.parametrize("slow_count, expected", [(2, 1), (1, 2)])
def test_auto_trains_on_with_the_count_whose_batches_are_faster(slow_count, expected):
    before = torch.get_num_threads()
    module = _ThreadSensitive(slow_count)
    callback = CandidateThreads("auto", max_threads=2)
    _fit(module, callback)
    assert callback.record["threads"] == expected and callback.record["mode"] == "auto"
    assert set(module.threads_seen[:5]) == {1, 2}  # the first batches raced both counts
    assert set(module.threads_seen[-10:]) == {expected}  # the rest trained with the winner
    assert torch.get_num_threads() == before  # the process's own count is back after fit


def test_auto_races_again_when_the_load_changes():
    # 1 thread is the faster count at first (2 threads cost 30 ms a batch), then 1 thread turns slow
    module = _ThreadSensitive(slow_count=1, slow_after=20, other_delay=0.03)
    callback = CandidateThreads("auto", max_threads=2)
    _fit(module, callback, batches=20 + 4 * DRIFT_WINDOW + 10)
    assert callback.races and callback.races[0]["threads"] == 1
    assert callback.record["threads"] == 2
    assert set(module.threads_seen[-5:]) == {2}


def test_a_fixed_count_is_set_for_the_training_and_recorded():
    module = _ThreadSensitive(slow_count=0)
    callback = CandidateThreads(1)
    _fit(module, callback, batches=4)
    assert set(module.threads_seen) == {1}
    assert callback.record == {"threads": 1, "mode": "fixed"}


def test_every_candidate_records_its_threads_and_leaves_the_process_count_alone():
    dm = DigitsDataModule()
    before = torch.get_num_threads()
    evaluator = CandidateEvaluator(dm, epochs=1, accelerator="cpu", threads="auto", max_threads=2)
    evaluation = evaluator.evaluate({"family": "mlp", "hidden_mlp": [32], "batch_size": 64})
    assert evaluation.ok
    record = evaluation.extra["threads"]
    assert record["mode"] == "auto" and record["threads"] in (1, 2)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("value", [0, -1, "many", 1.5])
def test_bad_threads_are_refused_naming_the_setting(value):
    with pytest.raises(SettingError, match="`threads` must be 'auto' or a number of threads >= 1"):
        RunOptions(threads=value)


def test_ray_candidates_share_the_cores():
    assert RunOptions().threads_per_candidate() is None  # in-process: torch's own count
    assert RunOptions(executor="ray", resources_per_trial={"cpu": 3}).threads_per_candidate() == 3
    assert RunOptions(executor="ray", max_concurrent=2).threads_per_candidate() == 1  # Ray's default: 1 CPU a trial


def test_the_final_fit_of_a_tuned_model_races_the_threads_too():
    import lightning_dnc as dnc

    model = dnc.DnCModel(family="mlp", datamodule=DigitsDataModule())
    assert model.configure_callbacks() == []  # untuned: torch's own threads
    trainer = dnc.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                          enable_model_summary=False)
    trainer.tune(model, dnc=dnc.DeepNCheapTuner(search_epochs=1, prior_points=1, steps=0, explore=10,
                                                 progress=False, stage2_order=[], training_prior_points=1,
                                                 training_steps=0, threads=1))
    (callback,) = model.configure_callbacks()
    assert isinstance(callback, CandidateThreads) and callback.threads == 1
    trainer.fit(model)
    (used,) = [c for c in trainer.callbacks if isinstance(c, CandidateThreads)]
    assert used.record == {"threads": 1, "mode": "fixed"}
