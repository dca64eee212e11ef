"""bench/search_bench.py: the joint space, the drivers, the overhead clock, and a --quick run."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _joint import centre_config, random_joint_config, suggest_joint_config  # noqa: E402
from _methods import optuna_missing, run_optuna, run_random  # noqa: E402
from _overhead import PhaseClock, evaluation_phases, instrument, overhead_summary  # noqa: E402
from _report import spread, summarise  # noqa: E402

from lightning_dnc.search import Evaluation, Objective, config_key, group_options  # noqa: E402
from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace  # noqa: E402

SPACE = CNNSpace(num_conv_layers=(4, 6), channels_first=(8, 16), channels_upper=256)
TRAINING = TrainingSpace()


class ScriptedTrial:
    """Optuna-like trial answering from ``values`` (else the lowest choice), recording what was asked."""

    def __init__(self, values: dict | None = None) -> None:
        self.values = dict(values or {})
        self.asked: list[str] = []

    def suggest_int(self, name, low, high):
        self.asked.append(name)
        return int(self.values.get(name, low))

    def suggest_float(self, name, low, high, log=False):
        self.asked.append(name)
        return float(self.values.get(name, low))

    def suggest_categorical(self, name, choices):
        self.asked.append(name)
        value = self.values.get(name, choices[0])
        assert value in choices, (name, value, choices)
        return value


def fake_evaluate(config):
    """Accuracy grows with the first layer's width and falls with lr distance from 1e-3; no training."""
    width = config["out_channels"][0] if config["family"] == "cnn" else sum(config["hidden_mlp"]) or 1
    acc = min(0.99, 0.5 + width / 100 - 0.05 * abs(np.log10(config["lr"]) + 3))
    return Evaluation(config=dict(config), best_val_acc=acc, best_val_loss=1 - acc, t_tr=0.01 * width,
                      n_params=100 * width, wall_time=0.01, extra={"epoch_times": [0.004, 0.004]})


# --------------------------------------------------------------------------- overhead clock
def test_phase_clock_counts_nested_phases_exclusively():
    clock = PhaseClock()
    with clock.phase("outer"):
        time.sleep(0.02)
        with clock.phase("inner"):
            time.sleep(0.03)
    assert clock.seconds["inner"] >= 0.03
    assert 0.015 <= clock.seconds["outer"] < 0.03  # the inner 30 ms are not counted twice
    assert clock.calls == {"outer": 1, "inner": 1}


def test_instrument_times_calls_and_restores_methods():
    class Engine:
        def ask(self):
            time.sleep(0.01)
            return 1

    original = Engine.__dict__["ask"]
    clock = PhaseClock()
    with instrument(clock, [(Engine, "ask", "acquisition")]):
        assert Engine().ask() == 1
    assert Engine.__dict__["ask"] is original
    assert clock.calls["acquisition"] == 1 and clock.seconds["acquisition"] >= 0.01
    with pytest.raises(ValueError, match="defines no method 'tell'"):
        with instrument(clock, [(Engine, "tell", "x")]):
            pass


def test_evaluation_phases_and_overhead_shares():
    ev = Evaluation(config={}, best_val_acc=0.5, wall_time=2.0, extra={"epoch_times": [0.5, 0.7]})
    phases = evaluation_phases(ev, validation_s=0.3)
    assert phases == pytest.approx({"training": 1.2, "validation": 0.3, "setup_teardown": 0.5})
    shares = overhead_summary(10.0, {"training": 8.0, "validation": 1.0})
    assert shares["framework_s"] == pytest.approx(1.0) and shares["framework_frac"] == pytest.approx(0.1)
    assert shares["non_training_frac"] == pytest.approx(0.2)


# --------------------------------------------------------------------------- joint space
def test_random_joint_configs_lie_in_the_spaces_and_vary_every_group():
    rng = np.random.default_rng(0)
    configs = [random_joint_config(SPACE, TRAINING, rng, epochs=3) for _ in range(60)]
    for config in configs:
        SPACE.validate({k: v for k, v in config.items()})
        TRAINING.validate(config)
        assert config["epochs"] == 3
    assert {c["act"] for c in configs} == {"relu", "tanh", "sigmoid"}
    assert len({tuple(c["apply_bns"]) for c in configs}) > 3
    assert len({c["batch_size"] for c in configs}) > 30
    assert any(c["weight_decay"] == 0.0 for c in configs) and any(c["weight_decay"] > 0 for c in configs)


@pytest.mark.parametrize("group", ["ac", "ds", "bn", "do", "sc"])
def test_optuna_parameterisation_reaches_exactly_the_grid_settings(group):
    # A fixed skeleton with two derived max-pools: 16 -> 32 -> 64 -> 128 (> 64) -> 256 (> 128).
    growth = {"depth": 5, "channels_first": 16, "growth_1": 0.999, "growth_2": 0.999, "growth_3": 0.999,
              "growth_4": 0.999}
    centre = suggest_joint_config(ScriptedTrial(growth), SPACE, TRAINING, epochs=2)
    base = {**centre, "act": "relu"}
    keys = {"ac": ("act",), "ds": ("strides", "apply_maxpools"), "bn": ("apply_bns",),
            "do": ("apply_dropouts", "dropout_probs"), "sc": ("shortcuts",)}[group]
    default = suggest_joint_config(ScriptedTrial({**growth, "bn_fraction": 1.0, "do_fraction": 1.0, "do_p": 0.3,
                                                  "do_p_first": 0.1, "shortcut_spacing": 0}), SPACE, TRAINING, 2)
    grid = {tuple(str(o[k]) for k in keys) for o in [default, *group_options(group, default)]}
    choices = {"act": ("relu", "tanh", "sigmoid"), "downsample_0": ("maxpool", "stride2"),
               "downsample_1": ("maxpool", "stride2"), "bn_fraction": (0.0, 0.25, 0.5, 0.75, 1.0),
               "do_fraction": (0.0, 0.25, 0.5, 0.75, 1.0), "do_p": (0.15, 0.3, 0.45), "do_p_first": (0.1, 0.2),
               "shortcut_spacing": (0, 4, 2)}
    params = {"ac": ["act"], "ds": ["downsample_0", "downsample_1"], "bn": ["bn_fraction"],
              "do": ["do_fraction", "do_p", "do_p_first"], "sc": ["shortcut_spacing"]}[group]
    fixed = {"bn_fraction": 1.0, "do_fraction": 1.0, "do_p": 0.3, "do_p_first": 0.1, "shortcut_spacing": 0}
    reached = set()
    for combo in itertools.product(*(choices[p] for p in params)):
        values = {**growth, **fixed, **dict(zip(params, combo))}
        reached.add(tuple(str(suggest_joint_config(ScriptedTrial(values), SPACE, TRAINING, 2)[k]) for k in keys))
    assert sum(base["apply_maxpools"]) == 2
    assert reached == grid


def test_suggested_configs_are_valid_and_mlp_is_supported():
    rng = np.random.default_rng(1)
    for _ in range(40):
        values = {"depth": int(rng.integers(4, 7)), "channels_first": int(rng.integers(8, 17)),
                  **{f"growth_{i}": float(rng.random()) for i in range(1, 6)},
                  "lr": 1e-3, "log10_weight_decay": float(rng.uniform(-6, -3)), "batch_size": 100}
        config = suggest_joint_config(ScriptedTrial(values), SPACE, TRAINING, epochs=1)
        SPACE.validate(config)
        TRAINING.validate(config)
    mlp = suggest_joint_config(ScriptedTrial({"hidden_layers": 2, "width_0": 30, "width_1": 40, "do_p": 0.4}),
                               MLPSpace(), TRAINING, epochs=1)
    assert mlp["hidden_mlp"] == [30, 40] and mlp["dropout_probs_mlp"] == [0.4, 0.4]
    empty = suggest_joint_config(ScriptedTrial({"hidden_layers": 0}), MLPSpace(), TRAINING, epochs=1)
    assert empty["hidden_mlp"] == []
    assert centre_config(SPACE, 2)["lr"] == 1e-3


# --------------------------------------------------------------------------- drivers and report
def test_random_search_trains_distinct_configs_and_truncates():
    run = run_random(fake_evaluate, SPACE, TRAINING, n=12, seed=3, epochs=1)
    assert len(run.evaluations) == 12
    assert len({config_key(e.config) for e in run.evaluations}) == 12
    assert run.phases["training"] == pytest.approx(12 * 0.008)
    short = run.truncated(5)
    assert len(short.evaluations) == 5 and short.wall_s == pytest.approx(sum(run.trial_seconds[:5]))
    summary = short.summary(Objective(wc=0.1, t_tr_ref=0.1))
    curve = summary["best_so_far"]
    assert all(b <= a for a, b in zip(curve, curve[1:]))
    assert summary["best_objective"] == curve[-1] and summary["trainings"] == 5
    again = run_random(fake_evaluate, SPACE, TRAINING, n=12, seed=3, epochs=1)
    assert [e.config for e in again.evaluations] == [e.config for e in run.evaluations]


def test_optuna_driver_asks_and_tells_failures():
    if optuna_missing() is not None:
        pytest.skip(optuna_missing())
    calls = []

    def evaluate(config):
        calls.append(config)
        if len(calls) == 2:
            return Evaluation(config=config, status="failed", failure_reason="nan", wall_time=0.01)
        return fake_evaluate(config)

    run = run_optuna(evaluate, SPACE, TRAINING, Objective(wc=0.1, t_tr_ref=0.1), sampler="tpe", n=6, seed=0,
                     epochs=1)
    assert len(run.evaluations) == 6 == len(calls) and run.method == "optuna-tpe"
    summary = run.summary(Objective(wc=0.1, t_tr_ref=0.1))
    assert summary["failed"] == 1 and summary["best_objective"] is not None
    assert run.phases["sampling"] > 0


def test_summarise_counts_head_to_head_per_seed():
    runs = [
        {"method": "lightning-dnc", "wc": 0.1, "seed": 0, "best_objective": -1.0},
        {"method": "lightning-dnc", "wc": 0.1, "seed": 1, "best_objective": -0.5},
        {"method": "random", "wc": 0.1, "seed": 0, "best_objective": -0.8},
        {"method": "random", "wc": 0.1, "seed": 1, "best_objective": -0.9},
    ]
    table = summarise(runs)["0.1"]
    assert table["random"]["vs_ours"] == {"ours_better": 1, "tie": 0, "ours_worse": 1}
    assert table["lightning-dnc"]["best_objective"]["median"] == pytest.approx(-0.75)
    assert spread([None])["median"] is None


# --------------------------------------------------------------------------- end to end
def test_quick_json_runs_without_optuna(tmp_path):
    blocker = tmp_path / "blocked"
    blocker.mkdir()
    (blocker / "optuna.py").write_text("raise ImportError('optuna hidden by the test')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "search_bench.py"), "--quick", "--json", "--wc", "0.1",
         "--threads", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=240, cwd=ROOT, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    pip_line = "pip install 'lightning-dnc[bench]'  # or: pip install 'optuna>=3.5'"
    assert report["skipped"]["optuna-tpe"].endswith(pip_line)
    methods = {(r["method"], r["seed"]): r for r in report["runs"]}
    assert set(methods) == {("lightning-dnc", 0), ("lightning-dnc", 1), ("random", 0), ("random", 1)}
    for seed in (0, 1):
        ours, rand = methods[("lightning-dnc", seed)], methods[("random", seed)]
        assert ours["trainings"] == rand["trainings"] == 2 + 1 + 2 + 2 + 1  # stage 1, ac grid, stage 3
        phases = ours["phases"]
        assert {"training", "validation", "setup_teardown", "acquisition", "journal", "engine_tell"} <= set(phases)
        assert sum(phases.values()) == pytest.approx(ours["wall_s"], rel=1e-6)
        assert 0 < ours["framework_frac"] < ours["non_training_frac"] < 1
    assert report["summary"]["0.1"]["random"]["vs_ours"] is not None
    assert (out / "search_bench.png").stat().st_size > 1000
    assert json.loads((out / "search_bench.json").read_text())["settings"]["quick"] is True
