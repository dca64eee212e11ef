"""bench/hpo_bench.py: the reduced space, the surrogate access, the metrics, and --quick runs of both suites."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import _hpo_lcbench as lc  # noqa: E402
import _hpo_methods as hm  # noqa: E402
import _hpo_space as hs  # noqa: E402
from _hpo_metrics import head_to_head, hypervolume, regret, summarise_run  # noqa: E402
from _hpo_trace import Event  # noqa: E402

DATA = lc.data_path()
needs_data = pytest.mark.skipif(lc.missing(DATA) is not None, reason=f"LCBench suite unavailable: {lc.missing(DATA)}")


# --------------------------------------------------------------------------- space and mappings
def test_dnc_configs_map_onto_the_reduced_space():
    from lightning_dnc.space import complete_config

    base = {"hidden_mlp": [100, 300, 200], "lr": 3e-3, "weight_decay": 0.0, "batch_size": 40, "epochs": 52}
    config = hs.dnc_to_lcbench(complete_config(base, family="mlp"))
    assert config == {"num_layers": 3, "max_units": 200, "batch_size": 40, "learning_rate": 3e-3,
                      "weight_decay": hs.NO_WEIGHT_DECAY, "max_dropout": 0.2, "momentum": 0.545}
    hs.validate(config)
    auto = hs.dnc_to_lcbench(complete_config({**base, "weight_decay": "auto", "dropout_probs_mlp": [0.4] * 3},
                                             family="mlp"))
    assert auto["weight_decay"] == hs.NO_WEIGHT_DECAY and auto["max_dropout"] == 0.4
    with pytest.raises(ValueError, match="ReLU only"):
        hs.dnc_to_lcbench(complete_config({**base, "act": "tanh"}, family="mlp"))
    with pytest.raises(ValueError, match="at least one hidden layer"):
        hs.dnc_to_lcbench(complete_config({**base, "hidden_mlp": []}, family="mlp"))


def test_every_parameterisation_spans_the_same_space():
    space, training = hs.dnc_spaces()
    assert space.num_hidden_layers == hs.SPACE["num_layers"] and space.hidden_nodes == hs.SPACE["max_units"]
    assert training.lr == hs.SPACE["learning_rate"] and training.batch_size == hs.SPACE["batch_size"]
    assert training.weight_decay == hs.SPACE["weight_decay"]
    cs = hs.config_space(seed=0)
    for name in ("num_layers", "max_units", "batch_size", "learning_rate"):
        hp = cs.get_hyperparameter(name)
        assert (hp.lower, hp.upper) == pytest.approx(hs.SPACE[name])
    assert tuple(cs.get_hyperparameter("max_dropout").sequence) == hs.DROPOUT_CHOICES
    assert (cs.get_hyperparameter("log10_weight_decay").lower, cs.get_hyperparameter("log10_weight_decay").upper) \
        == pytest.approx((-5.0, -1.0))
    configs = hs.sample(400, seed=1)
    for config in configs:
        hs.validate(config)
    assert {c["num_layers"] for c in configs} == set(range(1, 6))
    assert {c["max_dropout"] for c in configs} == set(hs.DROPOUT_CHOICES)
    assert min(c["max_units"] for c in configs) < 80 and max(c["max_units"] for c in configs) > 900
    assert any(c["weight_decay"] == hs.NO_WEIGHT_DECAY for c in configs)
    with pytest.raises(ValueError, match="momentum"):
        hs.validate({**configs[0], "momentum": 0.9})
    with pytest.raises(ValueError, match="weight_decay"):
        hs.validate({**configs[0], "weight_decay": 5e-5})


def test_weight_decay_rule_and_stage_sizes():
    assert hs.weight_decay_from_exponent(-4.5) == hs.NO_WEIGHT_DECAY
    assert hs.weight_decay_from_exponent(-2.0) == pytest.approx(0.01)
    for budget in (7, 10, 30, 100):
        sizes = hm.stage_sizes(budget)
        assert sum(sizes.values()) + hm.DNC_STAGE2_OPTIONS == budget
        assert sizes["prior_points"] >= 1
    assert hm.stage_sizes(30) == {"prior_points": 7, "steps": 6, "training_prior_points": 6, "training_steps": 6}
    assert hm.settings_of("dnc", 30)["explore"] == hm.EXPLORE == hm.settings_of("dnc-paper", 30)["explore"]


# --------------------------------------------------------------------------- metrics
def _brute_hypervolume(points, ref, n=400):
    """Monte-Carlo-free grid twin: fraction of a fine grid dominated by some point."""
    xs = (np.arange(n) + 0.5) / n * ref[0]
    ys = (np.arange(n) + 0.5) / n * ref[1]
    gx, gy = np.meshgrid(xs, ys)
    dominated = np.zeros_like(gx, dtype=bool)
    for x, y in points:
        dominated |= (gx >= x) & (gy >= y)
    return dominated.mean() * ref[0] * ref[1]


def test_hypervolume_matches_a_grid_twin():
    rng = np.random.default_rng(0)
    for _ in range(5):
        points = rng.uniform(0, 1, (12, 2)) * [1.2, 12.0]
        assert hypervolume(points, (1.0, 10.0)) == pytest.approx(_brute_hypervolume(points, (1.0, 10.0)), abs=0.06)
    assert hypervolume(np.array([[0.5, 5.0]]), (1.0, 10.0)) == pytest.approx(2.5)
    assert hypervolume(np.array([[1.5, 5.0]]), (1.0, 10.0)) == 0.0
    assert hypervolume(np.array([[0.2, 9.0], [0.5, 2.0], [0.6, 3.0]]), (1.0, 10.0)) == pytest.approx(0.8 + 0.5 * 7)


def test_regret_curve_and_budget_checkpoints():
    ref = {"best": -2.0, "median": -1.0}
    assert regret(-1.5, ref) == pytest.approx(0.5) and regret(-2.5, ref) == pytest.approx(-0.5)
    events = [Event(52, 100.0, 0.1, -1.2, 0.1, 1.0), Event(520, 900.0, 0.5, -1.6, 0.05, 2.0),
              Event(1560, 3000.0, 1.0, -1.9, 0.02, 1.5)]
    m = summarise_run(events, ref, full_time=100.0, budget=30, epochs_per_training=52, ref_hv=1.0)
    assert m["best_objective"] == -1.9 and m["regret"] == pytest.approx(0.1)
    assert m["regret_at"] == {"10": pytest.approx(0.4), "30": pytest.approx(0.1), "100": None}
    curve = [c for c in m["curve"] if c is not None]
    assert curve[0] == pytest.approx(0.8) and curve[-1] == pytest.approx(0.1)
    assert all(b <= a for a, b in zip(curve, curve[1:]))


def test_head_to_head_counts_tasks_and_tests_them():
    runs = []
    for t, (a, b) in enumerate([(0.1, 0.5), (0.2, 0.6), (0.3, 0.2), (0.4, 0.405), (0.0, 0.3), (0.1, 0.9)]):
        for seed in (0, 1):
            runs += [{"method": "dnc", "task": str(t), "seed": seed, "regret": a},
                     {"method": "tpe", "task": str(t), "seed": seed, "regret": b}]
    h = head_to_head(runs, "dnc", "tpe")
    assert (h["win"], h["tie"], h["loss"], h["tasks"]) == (4, 1, 1, 6)
    from scipy.stats import wilcoxon

    assert h["wilcoxon_p"] == pytest.approx(wilcoxon([-0.4, -0.4, 0.1, -0.005, -0.3, -0.8]).pvalue)


# --------------------------------------------------------------------------- the surrogate
@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        mp.setenv("YAHPO_LOCAL_CONFIG", str(home / "yahpo.yaml"))
        yield lc.benchmark(DATA, "3945", home / "yahpo.yaml")


@needs_data
def test_fast_queries_equal_yahpo_objective_function(bench):
    task = lc.Task(bench, "3945")
    for config in [hs.CENTRE, *hs.sample(3, seed=4)]:
        acc, seconds = task.curve(config, 7)
        expected = bench.objective_function([{**config, "OpenML_task_id": "3945", "epoch": e} for e in range(1, 8)])
        # float32 inference: results differ in the last digits with the batch's make-up
        assert acc == pytest.approx([min(max(r["val_accuracy"], 0), 100) / 100 for r in expected], rel=1e-3)
        assert seconds == pytest.approx(np.maximum.accumulate([r["time"] for r in expected]), rel=1e-3)
        full_acc, full_seconds = task.full_curves([config])
        assert full_acc[0, :7] == pytest.approx(acc, rel=1e-3) and full_seconds[0, :7] == pytest.approx(seconds, rel=1e-3)
    assert task.t_tr_ref == pytest.approx(task.curve(hs.CENTRE, 52)[1][-1] / 52)


@needs_data
@pytest.mark.parametrize("method", hm.METHODS)
def test_every_method_searches_the_reduced_space_within_budget(bench, method):
    from _hpo_trace import Trace

    task = lc.Task(bench, "3945")
    trace = Trace(task, wc=0.1, budget=3)
    hm.run_method(method, trace, seed=0)
    assert trace.configs, method
    for config in trace.configs:
        hs.validate(config)
    if method.startswith("dnc-asha"):  # multi-fidelity: ends with its stages, may leave budget unspent
        assert 0 < trace.epochs < trace.budget_epochs + lc.MAX_EPOCHS
    else:
        assert trace.budget_epochs <= trace.epochs < trace.budget_epochs + lc.MAX_EPOCHS
    assert trace.decision_s > 0 and trace.train_s > 0
    if method.startswith("dnc") and not method.startswith("dnc-asha"):
        assert trace.epochs == 3 * lc.MAX_EPOCHS


# --------------------------------------------------------------------------- end to end
def _env(tmp_path):
    return {**os.environ, "HOME": str(tmp_path), "YAHPO_LOCAL_CONFIG": str(tmp_path / "yahpo.yaml")}


@needs_data
def test_quick_lcbench_suite(tmp_path):
    out = tmp_path / "quick.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "hpo_bench.py"), "--suite", "lcbench", "--quick", "--json", str(out),
         "--plot", str(tmp_path / "quick.png"), "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env=_env(tmp_path),  # ~20 s on a quiet 2-core CPU
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    runs = report["runs"]
    keys = {"suite", "task", "seed", "method", "wc", "budget", "best_objective", "regret", "simulated_time",
            "decision_time", "evaluations", "settings"}
    assert all(keys <= set(r) for r in runs)
    assert len({r["task"] for r in runs}) == 3 and {r["seed"] for r in runs} == {0, 1}
    assert len(runs) == 3 * 2 * 2 * len(hm.METHODS) and not report["skipped"]
    for r in runs:
        least = 1 if r["method"].startswith("dnc-asha") else 520  # multi-fidelity may end before the budget
        assert r["budget"] == 10 and least <= r["epochs"] < 520 + 52, (r["method"], r["epochs"])
        assert r["simulated_time"] == pytest.approx(r["training_time"] + r["decision_time"])
        assert r["decision_time"] > 0 and math.isfinite(r["regret"])
    assert "explore" in runs[0]["settings"] and "note" in runs[0]["settings"]
    for wc, table in report["summary"]["by_wc"].items():
        medians = {m: e["regret"]["median"] for m, e in table.items()}
        others = [v for m, v in medians.items() if m != "random"]
        assert min(others) <= medians["random"], (wc, medians)  # random search is not best of all
        assert table["tpe"]["vs_ours"]["tasks"] == 3
    for a, b in itertools.combinations([r for r in runs if r["method"] == "dnc"], 2):
        assert (a["task"], a["seed"], a["wc"]) != (b["task"], b["seed"], b["wc"])
    assert (tmp_path / "quick.png").stat().st_size > 5000
    assert "| dnc |" in proc.stdout and "regret at 10" in proc.stdout
    assert list((tmp_path / "cache").glob("lcbench-*-1000-seed0.npz"))


def test_quick_real_suite(tmp_path):
    out = tmp_path / "real.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "hpo_bench.py"), "--suite", "real", "--tasks", "digits-mlp",
         "--seeds", "1", "--wc", "0.1", "--budget", "4", "--methods", "dnc", "random", "tpe", "asha",
         "--json", str(out), "--plot", str(tmp_path / "real.png")],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env=_env(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert {r["method"] for r in report["runs"]} == {"dnc", "random", "tpe"}
    assert "per-epoch reports" in report["skipped"]["asha"]
    counts = {r["method"]: r["evaluations"] for r in report["runs"]}
    assert counts["dnc"] == counts["random"] == counts["tpe"] == 4
    assert min(r["regret"] for r in report["runs"]) == pytest.approx(0.0)
    assert "| dnc |" in proc.stdout
