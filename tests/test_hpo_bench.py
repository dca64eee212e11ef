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

import hpo.lcbench as lc  # noqa: E402
import hpo.methods as hm  # noqa: E402
import hpo.space as hs  # noqa: E402
from hpo.metrics import head_to_head, hypervolume, regret, summarise_run  # noqa: E402
from hpo.trace import Event  # noqa: E402

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
    assert not cs.get_hyperparameter("batch_size").log and cs.get_hyperparameter("max_units").log
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


def test_every_method_draws_batch_size_on_the_same_linear_scale():
    """lightning-dnc's TrainingSpace, Optuna's suggest, ConfigSpace and the reference sample: the
    median of uniform integers in [16, 512] is 264 (log-uniform would give about 91)."""
    import optuna

    n = 1500
    _, training = hs.dnc_spaces()
    draws = {"dnc": [c["batch_size"] for c in training.sample(n, seed=3, method="random")],
             "sample": [c["batch_size"] for c in hs.sample(n, seed=3, stream=hs.RUN_STREAM)]}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    draws["optuna"] = [hs.suggest(study.ask())["batch_size"] for _ in range(n)]
    cs = hs.config_space(seed=3)
    draws["configspace"] = [int(c["batch_size"]) for c in cs.sample_configuration(n)]
    for name, values in draws.items():
        assert min(values) >= 16 and max(values) <= 512, name
        assert 240 <= np.median(values) <= 290, (name, np.median(values))
        assert np.mean(np.array(values) < 91) < 0.2, name  # log-uniform puts half of them there


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


def test_a_run_stopped_before_52_epochs_never_becomes_the_best():
    ref = {"best": -2.0, "median": -1.0}
    events = [Event(52, 100.0, 0.1, -1.2, 0.1, 1.0), Event(58, 110.0, 0.2, -3.0, 0.001, 0.1, epoch=6),
              Event(110, 200.0, 0.3, -1.4, 0.08, 1.0), Event(111, 202.0, 0.3, -2.5, 0.003, 0.2, epoch=1)]
    m = summarise_run(events, ref, full_time=100.0, budget=10, epochs_per_training=52, ref_hv=1.0)
    assert m["best_objective"] == -1.4 and m["full_results"] == 2
    assert m["regret_at"]["10"] == pytest.approx(0.6)
    assert min(c for c in m["curve"] if c is not None) == pytest.approx(0.6)
    assert m["hypervolume"] == pytest.approx(hypervolume(np.array([[0.1, 1.0], [0.08, 1.0]])))
    early = summarise_run(events[1:2], ref, full_time=100.0, budget=10, epochs_per_training=52, ref_hv=1.0)
    assert early["best_objective"] is None and early["regret"] is None


def test_the_split_is_stable_and_balanced():
    import hpo.split as sp

    assert sp.split(sp.CENTRE_SECONDS) == (list(sp.TUNE), list(sp.TEST))
    assert len(sp.TUNE) == len(sp.TEST) == 17 and not set(sp.TUNE) & set(sp.TEST)
    assert set(sp.TUNE) | set(sp.TEST) == set(sp.CENTRE_SECONDS)
    assert sp.split(sp.CENTRE_SECONDS, seed=sp.SPLIT_SEED + 1) != sp.split(sp.CENTRE_SECONDS)
    ordered = sorted(sp.CENTRE_SECONDS, key=lambda t: (sp.CENTRE_SECONDS[t], int(t)))
    for a, b in zip(ordered[::2], ordered[1::2]):  # one of each size pair in each half
        assert {sp.half_of(a), sp.half_of(b)} == {"tune", "test"}
    assert sp.select("test", ["3945", "34539", "7593"]) == ["3945", "7593"]
    assert sp.select("all", ["3945", "34539"]) == ["3945", "34539"]


def test_two_seeds_of_dnc_give_different_prior_points():
    from lightning_dnc.search import Objective, StagedSearch

    def priors(method, seed):
        space, training = hs.dnc_spaces()
        sizes = hm.stage_sizes(30)
        search = StagedSearch("mlp", space, training, Objective(wc=0.1), explore=50, epochs=52, seed=seed,
                              stage2_order=list(hs.DNC_STAGE2_ORDER), **sizes, **hm.DNC_SETTINGS[method]["kwargs"])
        return [hs.dnc_to_lcbench(p.config) for p in search.ask(sizes["prior_points"])]

    first, second = priors("dnc", 0), priors("dnc", 1)
    assert len(first) == 7 and all(a != b for a, b in zip(first, second))
    assert priors("dnc", 0) == first  # seeded, not random
    assert priors("dnc-paper", 0) == priors("dnc-paper", 1)  # the paper's unscrambled sequence (documented)


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
    import ConfigSpace

    if int(ConfigSpace.__version__.split(".")[0]) >= 1:  # beside smac: see bench/hpo/cs.py
        pytest.skip("yahpo-gym 1.0.2's objective_function needs ConfigSpace<=0.6.1")
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
@pytest.mark.parametrize("method", hm.METHODS + ("dnc-composite", "dnc-scalar"))
def test_every_method_searches_the_reduced_space_within_budget(bench, method, monkeypatch):
    from hpo.trace import Trace

    if hm.missing(method):
        pytest.skip(hm.missing(method))
    trained = []
    original = Trace.train

    def checked(self, config, to_epoch, from_epoch=0, observe=True):
        hs.validate(config)  # every training, continuations included, lies in the shared space
        assert from_epoch == 0 or lc.Task.key(config) in {lc.Task.key(c) for c in self.configs}
        trained.append((to_epoch, from_epoch))
        return original(self, config, to_epoch, from_epoch, observe)

    monkeypatch.setattr(Trace, "train", checked)
    task = lc.Task(bench, "3945")
    trace = Trace(task, wc=0.1, budget=4)
    hm.run_method(method, trace, seed=0)
    assert trace.configs and trained, method
    assert trace.epochs == sum(to - start for to, start in trained)
    least = lc.MAX_EPOCHS if method.startswith("dnc-asha") else trace.budget_epochs  # ends with its stages
    assert least <= trace.epochs < trace.budget_epochs + lc.MAX_EPOCHS, (method, trace.epochs)
    assert trace.decision_s > 0 and trace.train_s > 0
    assert any(e.epoch == lc.MAX_EPOCHS for e in trace.events), method  # a full-budget result to report
    if method in hm.DNC_SETTINGS:
        assert trace.epochs == 4 * lc.MAX_EPOCHS


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
    from hpo import split as hpo_split

    assert {r["task"] for r in runs} == set(hpo_split.TUNE[:3]) and {r["seed"] for r in runs} == {0, 1}
    ran = [m for m in hm.METHODS if m not in report["skipped"]]
    assert set(report["skipped"]) <= {"smac", "smac-hb"}  # the only methods outside the [bench] extra
    assert len(runs) == 3 * 2 * 2 * len(ran)
    for r in runs:
        # dnc-asha ends with its stages and may leave budget unspent (never more than the budget)
        least = 52 if r["method"].startswith("dnc-asha") else 520
        assert r["budget"] == 10 and least <= r["epochs"] < 520 + 52, (r["method"], r["epochs"])
        assert r["full_results"] >= 1 and r["split"] == "tune"
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
    assert list((tmp_path / "cache").glob("lcbench-*-1000-seed0-v2.npz"))


def test_quick_real_suite(tmp_path):
    out = tmp_path / "real.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "hpo_bench.py"), "--suite", "real", "--tasks", "synth-mlp",
         "--seeds", "1", "--wc", "0", "--budget", "4", "--methods", "dnc", "random", "tpe", "tpe-mv",
         "one-epoch-topk", "asha", "--json", str(out), "--plot", str(tmp_path / "real.png")],
        capture_output=True, text=True, timeout=900, cwd=ROOT, env=_env(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    runs = {r["method"]: r for r in report["runs"]}
    assert set(runs) == {"dnc", "random", "tpe", "tpe-mv", "one-epoch-topk"}
    assert "per-epoch reports" in report["skipped"]["asha"]
    from hpo import real as hpo_real

    count = runs["dnc"]["evaluations"]  # the peers get the trainings lightning-dnc used
    assert all(runs[m]["evaluations"] == count for m in ("random", "tpe", "tpe-mv"))
    sizes = hpo_real.topk_sizes(count)
    assert runs["one-epoch-topk"]["evaluations"] == sizes["n"] + sizes["k"]
    assert {r["epochs"] for r in runs.values()} == {count * hpo_real.EPOCHS}  # the same epochs for every method
    for r in runs.values():  # wc = 0: 10**loss is the validation error; chance is 0.9 on 10 classes
        assert 10 ** r["best_objective"] < 0.85, (r["method"], r["best_objective"])
    assert runs["one-epoch-topk"]["full_results"] == sizes["k"]  # the one-epoch screens never count as a best
    assert "| dnc |" in proc.stdout


def test_tables_print_the_test_half_beside_the_tune_half(tmp_path):
    import tables
    from hpo.metrics import summarise

    def doc(split, offset):
        runs = [{"task": t, "seed": s, "wc": 0.1, "method": m, "regret": base + offset + 0.01 * s,
                 "regret_at": {"10": None}, "simulated_time_full": 1.0, "simulated_time": 1.0, "decision_time": 0.1,
                 "evaluations": 30, "epochs": 1560, "hv_ratio": 0.9}
                for t in ("a", "b") for s in (0, 1) for m, base in (("dnc", 0.1), ("tpe", 0.3), ("dnc-asha-paper", 0.2),
                                                                   ("dnc-paper", 0.4))]
        return {"command": f"python bench/hpo_bench.py --tasks {split}", "elapsed_s": 60.0, "runs": len(runs),
                "settings": {"suite": "lcbench", "split": split, "tasks": ["a", "b"], "seeds": 2, "budget": 30.0},
                "machine": {"cpus": 2}, "skipped": {}, "summary": summarise(runs, "dnc", hm.TWIN)}

    paths = []
    for split, offset in (("test", 0.0), ("tune", 0.5)):
        paths.append(tmp_path / f"{split}.json")
        paths[-1].write_text(json.dumps(doc(split, offset)))
    text = tables.render(paths)
    assert "| 0.1 | tpe | 0.305 [0.300, 0.310] | 0.805 | 2/0/0 |" in text
    assert "| 0.1 | dnc-asha-paper | 0.205 [0.200, 0.210] | 0.705 | 0/0/2 (dnc-paper) |" in text
    assert "--tasks test" in text and "--tasks tune" in text
