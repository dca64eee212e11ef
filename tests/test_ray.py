"""The Ray executor on a local 2-CPU cluster: parallelism, worker death, and a digits search.

Skipped when Ray is not installed (``pip install "lightning-dnc[ray]"``). One local Ray instance
(``num_cpus=2``, no dashboard) serves the whole module and is shut down at the end.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

from lightning_dnc.executors.ray_executor import RAY_AVAILABLE

if not RAY_AVAILABLE:
    pytest.skip('Ray is not installed; `pip install "lightning-dnc[ray]"` to run these tests.', allow_module_level=True)

import ray  # noqa: E402
from ray import cloudpickle  # noqa: E402

from lightning_dnc.data import DigitsDataModule  # noqa: E402
from lightning_dnc.executors import InProcessExecutor, RayExecutor, make_executor  # noqa: E402
from lightning_dnc.lightning.progress import SearchProgress  # noqa: E402
from lightning_dnc.executors import drive  # noqa: E402
from lightning_dnc.lightning.search_loop import run_search  # noqa: E402
from lightning_dnc.lightning.tuner import DeepNCheapTuner  # noqa: E402
from lightning_dnc.search import Evaluation, Journal, Objective, StagedSearch, config_key  # noqa: E402
from lightning_dnc.space import MLPSpace, TrainingSpace  # noqa: E402

CPU = {"accelerator": "cpu", "devices": 1, "precision": None}
MLP = {"family": "mlp", "hidden_mlp": [32]}


@pytest.fixture(scope="module", autouse=True)
def local_cluster():
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test file
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


class SleepEvaluator:
    """No training: sleeps ``config['hidden_mlp'][0] / 100`` seconds and reports a fixed record."""

    def evaluate(self, config):
        time.sleep(config["hidden_mlp"][0] / 100)
        return Evaluation(config=dict(config), best_val_acc=0.5, t_tr=0.1, n_params=10)


class DieOnceEvaluator(SleepEvaluator):
    """The first call in any worker kills its worker process; later calls work."""

    def __init__(self, marker):
        self.marker = str(marker)

    def evaluate(self, config):
        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)
        return super().evaluate(config)


class AlwaysDieEvaluator(SleepEvaluator):
    def evaluate(self, config):
        os._exit(1)


class RaisingEvaluator(SleepEvaluator):
    def evaluate(self, config):
        raise ValueError("bad config from the evaluator")


def _collect_all(executor):
    out = []
    while executor.num_running:
        out.extend(executor.collect())
    return dict(out)


def test_two_candidates_run_at_once_with_one_thread_each():
    with RayExecutor(SleepEvaluator(), max_concurrent=2, resources_per_trial={"cpu": 1}) as executor:
        for i in range(2):  # warm the two workers up (process start, imports)
            executor.submit(i, {**MLP, "hidden_mlp": [1]})
        _collect_all(executor)
        started = time.perf_counter()
        executor.submit(2, {**MLP, "hidden_mlp": [150]})
        executor.submit(3, {**MLP, "hidden_mlp": [150]})
        assert executor.num_free == 0
        with pytest.raises(RuntimeError, match="at most `max_concurrent=2`"):
            executor.submit(4, MLP)
        records = _collect_all(executor)
        elapsed = time.perf_counter() - started
    assert elapsed < 2.6, f"two 1.5 s candidates took {elapsed:.2f} s: they did not run in parallel"
    workers = [records[i].extra["worker"] for i in (2, 3)]
    assert len({w["pid"] for w in workers}) == 2
    assert all(w["attempts"] == 1 and w["node_id"] and w["worker_id"] for w in workers)


def test_collect_returns_as_soon_as_one_finishes():
    with RayExecutor(SleepEvaluator(), max_concurrent=2) as executor:
        executor.submit(0, {**MLP, "hidden_mlp": [150]})
        executor.submit(1, {**MLP, "hidden_mlp": [1]})
        first = executor.collect()
        assert [trial_id for trial_id, _ in first] == [1]
        assert executor.num_running == 1 and executor.num_free == 1
        assert [trial_id for trial_id, _ in executor.collect()] == [0]
        assert executor.collect() == []


def test_worker_that_exits_once_is_retried_on_another_worker(tmp_path):
    with RayExecutor(DieOnceEvaluator(tmp_path / "died"), max_concurrent=1) as executor:
        executor.submit(7, MLP)
        records = _collect_all(executor)
    record = records[7]
    assert record.ok
    worker = record.extra["worker"]
    assert worker["attempts"] == 2
    assert len(worker["worker_deaths"]) == 1 and "WorkerCrashedError" in worker["worker_deaths"][0]


def test_worker_that_always_dies_becomes_a_failed_trial():
    with RayExecutor(AlwaysDieEvaluator(), max_concurrent=1) as executor:
        executor.submit(0, MLP)
        record = _collect_all(executor)[0]
    assert record.status == "failed" and record.failure_reason == "exception"
    assert "worker died" in record.error and "2 times" in record.error
    assert record.config["hidden_mlp"] == [32] and record.config["act"] == "relu"  # completed config


def test_evaluator_errors_are_not_retried():
    with RayExecutor(RaisingEvaluator(), max_concurrent=1) as executor:
        executor.submit(0, MLP)
        record = _collect_all(executor)[0]
    assert record.failure_reason == "exception" and "bad config from the evaluator" in record.error
    assert record.extra["worker"]["attempts"] == 1


def _instant(config):
    return Evaluation(config=dict(config), best_val_acc=0.5, t_tr=0.1, n_params=10)


def _tiny_tuner(**kwargs):
    return DeepNCheapTuner(search_epochs=1, prior_points=2, steps=1, explore=20, stage2_order=["ac"],
                           progress=False, family="mlp", **kwargs)


def test_digits_search_on_ray_matches_in_process_counts_and_journal(tmp_path):
    # The in-process executor on the same engine settings, with instant fake training (the stage
    # counts of this budget do not depend on the losses).
    tuner = _tiny_tuner(executor=InProcessExecutor(_instant))
    inprocess = run_search(tuner.settings, tuner.run_options, DigitsDataModule(flatten=True), CPU)
    journal = tmp_path / "ray.jsonl"
    tuner = _tiny_tuner(executor="ray", max_concurrent=2, journal=journal)
    on_ray = run_search(tuner.settings, tuner.run_options, DigitsDataModule(flatten=True), CPU)
    stages = [[t.stage for t in result.trials] for result in (inprocess, on_ray)]
    assert [stages[0].count(k) for k in (1, 2, 3)] == [stages[1].count(k) for k in (1, 2, 3)]
    keys = [config_key(t.config) for t in on_ray.trials]
    assert len(keys) == len(set(keys))
    events = Journal(journal).read()
    finished = [e["trial_id"] for e in events if e["event"] == "finished"]
    assert sorted(finished) == [t.trial_id for t in on_ray.trials]
    assert all(t.evaluation.ok and t.evaluation.t_tr > 0 for t in on_ray.trials)
    workers = [t.evaluation.extra["worker"] for t in on_ray.trials]
    assert all(w["executor"] == "ray" and w["torch_threads"] == 1 for w in workers)
    assert all(t.evaluation.device == "cpu" for t in on_ray.trials)
    assert 0.0 < on_ray.best.trial.evaluation.best_val_acc <= 1.0


def test_driver_killed_mid_search_resumes_from_the_journal(tmp_path):
    """The driver dies (KeyboardInterrupt) after 3 finished trials; a new driver resumes on Ray."""
    path = tmp_path / "journal.jsonl"

    def new_search():
        return StagedSearch("mlp", MLPSpace(num_hidden_layers=(1, 1), hidden_nodes=(1, 40)), TrainingSpace(),
                            Objective(wc=0.1), prior_points=3, steps=1, explore=20, epochs=1,
                            stage2_order=["ac"], seed=0, journal=path, strategy="paper")

    class DiesAfterThree(RayExecutor):
        told = 0

        def collect(self):
            if DiesAfterThree.told >= 3:
                raise KeyboardInterrupt
            out = super().collect()
            DiesAfterThree.told += len(out)
            return out

    with pytest.raises(KeyboardInterrupt):
        with DiesAfterThree(SleepEvaluator(), max_concurrent=2) as executor:
            drive(new_search(), executor, SearchProgress(enabled=False))
    before = path.read_bytes()
    resumed = StagedSearch.from_journal(path)
    told_before = sum(1 for t in resumed.trials if t.evaluation is not None)
    assert told_before >= 3 and resumed.pending  # the trials running at the kill are re-run
    with RayExecutor(SleepEvaluator(), max_concurrent=2) as executor:
        for proposal in resumed.pending:
            executor.submit(proposal.trial_id, proposal.config)
        for trial_id, evaluation in _collect_all(executor).items():
            resumed.tell(trial_id, evaluation)
        drive(resumed, executor, SearchProgress(enabled=False))
    assert path.read_bytes().startswith(before)  # earlier records unchanged
    assert resumed.finished
    keys = [config_key(t.config) for t in resumed.trials]
    assert len(keys) == len(set(keys))
    assert [sum(1 for t in resumed.trials if t.stage == s) for s in (1, 3)] == [4, 4]


def test_factory_builds_a_ray_executor_that_joins_the_running_session():
    executor = make_executor("ray", SleepEvaluator(), max_concurrent=2, resources_per_trial={"cpu": 1})
    assert isinstance(executor, RayExecutor) and not executor._owns_ray  # noqa: SLF001
    executor.shutdown()
    assert ray.is_initialized()  # the caller's session is left running
