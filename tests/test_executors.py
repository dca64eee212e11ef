"""Executors without Ray: the factory, the Ray gate, and asynchronous batch driving of the search."""

from __future__ import annotations

import json

import pytest

import lightning_dnc.executors.ray_executor as ray_executor
from lightning_dnc.executors import Executor, InProcessExecutor, make_executor
from lightning_dnc.executors.ray_executor import check_resources, require_ray
from lightning_dnc.lightning.progress import SearchProgress
from lightning_dnc.executors import drive
from lightning_dnc.search import Evaluation, Journal, Objective, StagedSearch, config_key
from lightning_dnc.space import MLPSpace, TrainingSpace


def synthetic(config):
    """Deterministic fake evaluation: accuracy peaks at 300 hidden nodes and lr 1e-3."""
    size = sum(config["hidden_mlp"]) + 1
    acc = 0.9 - abs(size - 300) / 3000 - 0.02 * abs(__import__("math").log10(config["lr"]) + 3)
    acc += {"relu": 0.0, "tanh": 0.01, "sigmoid": -0.05}[config["act"]]
    return Evaluation(config=config, best_val_acc=acc, t_tr=1.0 + size / 1000, n_params=100 * size)


class ScriptedParallelExecutor(Executor):
    """K slots; ``collect`` finishes the most recently submitted trial first (out of order)."""

    def __init__(self, max_concurrent):
        self.max_concurrent = max_concurrent
        self.running: list[tuple[int, dict]] = []
        self.peak = 0

    @property
    def num_running(self):
        return len(self.running)

    def submit(self, trial_id, config):
        if self.num_free == 0:
            raise RuntimeError("no free slot")
        self.running.append((trial_id, config))
        self.peak = max(self.peak, len(self.running))

    def collect(self):
        if not self.running:
            return []
        trial_id, config = self.running.pop()
        return [(trial_id, synthetic(config))]


def new_search(journal=None, seed=0):
    return StagedSearch("mlp", MLPSpace(num_hidden_layers=(1, 2)), TrainingSpace(), Objective(wc=0.1),
                        prior_points=4, steps=3, explore=50, epochs=1, seed=seed, journal=journal)


def run(executor, journal=None, seed=0):
    search = new_search(journal, seed)
    drive(search, executor, SearchProgress(enabled=False))
    return search


def per_stage(search):
    return [sum(1 for t in search.trials if t.stage == s) for s in (1, 2, 3)]


def test_batch_driving_keeps_stage_counts_no_duplicates_and_a_complete_journal(tmp_path):
    sequential = run(InProcessExecutor(synthetic))
    parallel_executor = ScriptedParallelExecutor(3)
    parallel = run(parallel_executor, journal=tmp_path / "journal.jsonl")
    assert parallel_executor.peak == 3  # batches really were in flight
    assert per_stage(parallel) == per_stage(sequential)
    keys = [config_key(t.config) for t in parallel.trials]
    assert len(keys) == len(set(keys))
    events = Journal(tmp_path / "journal.jsonl").read()
    proposed = [e["trial_id"] for e in events if e["event"] == "proposed"]
    finished = [e["trial_id"] for e in events if e["event"] == "finished"]
    assert sorted(proposed) == sorted(finished) == list(range(len(parallel.trials)))
    assert parallel.finished and parallel.result().best_config is not None


def test_batch_driving_is_a_deterministic_function_of_seed_and_finished_trials():
    first = run(ScriptedParallelExecutor(2), seed=3)
    second = run(ScriptedParallelExecutor(2), seed=3)
    assert [t.config for t in first.trials] == [t.config for t in second.trials]
    other = run(ScriptedParallelExecutor(2), seed=4)
    assert [t.config for t in first.trials] != [t.config for t in other.trials]


def test_batch_proposals_depend_only_on_told_trials():
    """Two engines told the same results propose the same next batch, whatever happened before."""
    a, b = new_search(seed=1), new_search(seed=1)
    for search in (a, b):
        for p in search.ask(4):  # the Sobol prior points
            search.tell(p.trial_id, synthetic(p.config))
    batch_a, batch_b = a.ask(3), b.ask(3)
    assert [p.config for p in batch_a] == [p.config for p in batch_b]
    assert len({config_key(p.config) for p in batch_a}) == 3


def test_interrupted_collect_marks_running_trials_interrupted(tmp_path):
    class Interrupting(ScriptedParallelExecutor):
        def collect(self):
            raise KeyboardInterrupt

    search = new_search(tmp_path / "j.jsonl")
    with pytest.raises(KeyboardInterrupt):
        drive(search, Interrupting(2), SearchProgress(enabled=False))
    events = [json.loads(line) for line in (tmp_path / "j.jsonl").read_text().splitlines()]
    reasons = [e["evaluation"]["failure_reason"] for e in events if e["event"] == "finished"]
    assert reasons == ["interrupted", "interrupted"]
    assert len(search.pending) == 2


# -- factory --------------------------------------------------------------------------------
class _Evaluator:
    def evaluate(self, config):
        return synthetic(config)


def test_factory_defaults_to_in_process_and_passes_executors_through():
    assert isinstance(make_executor(None, _Evaluator()), InProcessExecutor)
    assert isinstance(make_executor("inprocess", _Evaluator()), InProcessExecutor)
    mine = ScriptedParallelExecutor(2)
    assert make_executor(mine, _Evaluator(), max_concurrent=5) is mine


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(kind="dask"), r"`executor` must be one of \['inprocess', 'ray'\].*'dask'"),
        (dict(kind="inprocess", max_concurrent=2), r"`max_concurrent=2` needs `executor='ray'`"),
        (dict(kind=None, resources_per_trial={"cpu": 1}), r"Ray settings; pass `executor='ray'`"),
        (dict(kind="inprocess", ray_address="auto"), r"Ray settings; pass `executor='ray'`"),
    ],
)
def test_factory_rejects_bad_settings(kwargs, match):
    kind = kwargs.pop("kind")
    with pytest.raises(ValueError, match=match):
        make_executor(kind, _Evaluator(), **kwargs)


def test_ray_missing_gives_the_install_line(monkeypatch):
    class Missing:
        message = "ModuleNotFoundError: No module named 'ray'"

        def __bool__(self):
            return False

    monkeypatch.setattr(ray_executor, "RAY_AVAILABLE", Missing())
    with pytest.raises(ModuleNotFoundError, match=r'pip install "lightning-dnc\[ray\]"$'):
        require_ray()
    with pytest.raises(ModuleNotFoundError, match=r'pip install "lightning-dnc\[ray\]"$'):
        make_executor("ray", _Evaluator(), max_concurrent=2)


def test_resources_per_trial_validation():
    assert check_resources(None) == {"cpu": 1.0, "gpu": 0.0}
    assert check_resources({"CPU": 2, "gpu": 1, "accel_x": 0.5}) == {"cpu": 2.0, "gpu": 1.0, "accel_x": 0.5}
    with pytest.raises(ValueError, match=r"`resources_per_trial\['gpu'\]` must be a finite number >= 0.*-1"):
        check_resources({"gpu": -1})
    with pytest.raises(ValueError, match=r"`resources_per_trial\['cpu'\]`.*'two'"):
        check_resources({"cpu": "two"})
    with pytest.raises(ValueError, match=r"must reserve some CPU or GPU"):
        check_resources({"cpu": 0})
    with pytest.raises(ValueError, match=r"must be a dict"):
        check_resources([("cpu", 1)])
