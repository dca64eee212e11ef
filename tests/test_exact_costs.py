"""Closed-form costs (lightning_dnc.space.exact_costs) equal the costs measured on built networks.

The reference is what the evaluator records: a ``CandidateModule`` with its Adam optimizer, measured
by :func:`lightning_dnc.measure.measure_costs` on a fresh float32 batch, as ``CostProbe`` does.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_dnc.data import DigitsDataModule
from lightning_dnc.lightning.candidate.evaluator import CandidateEvaluator
from lightning_dnc.measure import EpochShape, StepPlan, measure_costs
from lightning_dnc.measure.flops import inference_flops_per_sample
from lightning_dnc.models import CandidateModule, build_network, count_parameters
from lightning_dnc.space import CNNSpace, MLPSpace
from lightning_dnc.space.exact_costs import DataShape, config_table, costs_from_table, exact_costs

MEASURES = ("n_params", "flops", "flops_train", "memory")
TINY_PLAN = StepPlan(warmup=1, repeats=1, min_repeats=1, partial_repeats=1, budget_fraction=0.0, min_block_s=0.0)


def _measured(config: dict, data: DataShape, stats: dict | None) -> dict[str, float]:
    """The four costs the evaluator records for ``config``, measured on the built module."""
    torch.manual_seed(0)
    module = CandidateModule(config=config, input_shape=data.input_shape, num_outputs=data.num_outputs,
                             task=data.task, epochs=1, input_stats=stats)
    optimizer = module.configure_optimizers()["optimizer"]
    batch_size = int(config.get("batch_size", 256))
    counted = min(batch_size, data.train_samples)
    pool = torch.randn(counted + 3, *data.input_shape)
    x = pool.index_select(0, torch.randperm(counted + 3)[:counted])  # a fresh batch, as a shuffling loader serves
    if data.task == "classification":
        y = torch.randint(0, data.num_outputs, (counted,))
    else:
        y = torch.randn(counted) if data.num_outputs == 1 else torch.randn(counted, data.num_outputs)

    def train_step(b: tuple) -> None:
        optimizer.zero_grad(set_to_none=True)
        module.step_loss(b).backward()
        optimizer.step()

    module.train()
    costs = measure_costs(module, [optimizer], train_step, module.step_loss, (x, y),
                          lambda b, n: (b[0][:n], b[1][:n]), lambda b: b[0],
                          EpochShape(data.train_samples, batch_size), 1, 4, torch.device("cpu"), TINY_PLAN, 1)
    assert costs.error is None, costs.error
    assert costs.memory_method == "estimate"
    return {"n_params": module.num_params, "flops": costs.flops_infer, "flops_train": costs.flops_train,
            "memory": costs.memory}


def _random_cnn(rng: np.random.Generator, skeleton: dict) -> dict:
    """A default-space skeleton with channels scaled down 8x (fast), every stage-2 option drawn at random."""
    channels = [max(1, c // 8) for c in skeleton["out_channels"]]
    n = len(channels)
    pools = list(skeleton["apply_maxpools"])
    strides = [1] * n
    for i in np.flatnonzero(pools):  # SPEC ds: a max-pool position becomes a stride-2 conv or stays a max-pool
        if rng.random() < 0.5:
            pools[i], strides[i] = 0, 2
    pools = [int(p or rng.random() < 0.15) for p in pools]  # and a few more downsamplings anywhere
    strides = [2 if s == 2 or rng.random() < 0.1 else 1 for s in strides]
    spacing = int(rng.choice([0, 2, 4]))
    shortcuts = [0] * n
    if spacing:
        for j in range(0, n - 2, spacing):
            shortcuts[j] = 1
    return {"out_channels": channels, "apply_maxpools": pools, "strides": strides,
            "apply_bns": rng.integers(0, 2, n).tolist(), "apply_dropouts": rng.integers(0, 2, n).tolist(),
            "dropout_probs": rng.choice([0.0, 0.1, 0.3], n).tolist(), "shortcuts": shortcuts,
            "act": str(rng.choice(["relu", "tanh", "sigmoid"])),
            "hidden_mlp": rng.integers(1, 12, rng.integers(0, 3)).tolist() if rng.random() < 0.5 else [],
            "batch_size": int(rng.choice([8, 12, 16, 20, 40]))}


def _with_head_dropout(rng: np.random.Generator, config: dict) -> dict:
    if config["hidden_mlp"] and rng.random() < 0.7:
        config["dropout_probs_mlp"] = rng.choice([0.0, 0.2, 0.5], len(config["hidden_mlp"])).tolist()
    return config


def test_cnn_counts_equal_measured_counts_on_random_configs() -> None:
    rng = np.random.default_rng(3)
    skeletons = CNNSpace().sample(20, seed=11, method="random")
    configs = [_with_head_dropout(rng, _random_cnn(rng, s)) for s in skeletons]
    configs[0] = {"out_channels": [2, 3, 3, 5], "apply_maxpools": [1, 1, 1, 1], "strides": [2, 2, 1, 2],
                  "shortcuts": [1, 0, 0, 0], "batch_size": 64}  # more downsampling than the 9x7 map allows
    configs[10] = {**configs[0], "shortcuts": [0, 1, 0, 0], "apply_maxpools": [0, 1, 1, 0]}  # 2 pools on a shortcut
    assert any(sum(c["shortcuts"]) for c in configs) and any(sum(c["strides"]) > len(c["strides"]) for c in configs)
    cases = (((3, 9, 7), {"scale": 0.5, "mean": [[[0.1]], [[0.2]], [[0.3]]], "std": [[[1.0]], [[2.0]], [[3.0]]]}),
             ((2, 6, 6), None))
    for k, (shape, stats) in enumerate(cases):  # ten configs on each input shape
        data = DataShape(shape, num_outputs=4, train_samples=30, input_stats=None if stats is None else (3, 3))
        part = configs[10 * k:10 * k + 10]
        table = config_table("cnn", part)
        exact = {m: costs_from_table(table, data, m) for m in MEASURES}
        for i, config in enumerate(part):
            measured = _measured({**config, "family": "cnn"}, data, stats)
            for m in MEASURES:
                assert exact[m][i] == measured[m], (m, i, config, exact[m][i], measured[m])


def test_mlp_counts_equal_measured_counts_on_random_configs() -> None:
    rng = np.random.default_rng(4)
    configs = MLPSpace().sample(12, seed=5, method="random")
    for config in configs:
        config["hidden_mlp"] = [max(1, h // 10) for h in config["hidden_mlp"]]
        _with_head_dropout(rng, config)
        config["act"] = str(rng.choice(["relu", "tanh", "sigmoid"]))
        config["batch_size"] = int(rng.choice([8, 12, 16, 20, 40]))
    cases = [(DataShape((1, 8, 8), 10, 25), None),
             (DataShape((7,), 3, 40, input_stats=(7, 1)), {"scale": 2.0, "mean": [0.5] * 7, "std": None}),
             (DataShape((5,), 1, 30, task="regression"), None),
             (DataShape((5,), 2, 30, task="regression", input_stats=(1, 1)),
              {"scale": 0.5, "mean": None, "std": None})]
    for data, stats in cases:
        exact = {m: exact_costs("mlp", configs, data, m) for m in MEASURES}
        for i, config in enumerate(configs):
            measured = _measured({**config, "family": "mlp"}, data, stats)
            for m in MEASURES:
                assert exact[m][i] == measured[m], (m, i, config, data, exact[m][i], measured[m])


def test_full_size_default_space_counts_on_the_meta_device() -> None:
    """Unscaled default-space skeletons on 32x32 inputs: parameters and inference FLOPs."""
    configs = CNNSpace(input_size=32).sample(15, seed=2)
    data = DataShape((3, 32, 32), num_outputs=10, train_samples=50_000)
    n_params = exact_costs("cnn", configs, data, "n_params")
    flops = exact_costs("cnn", configs, data, "flops")
    for i, config in enumerate(configs):
        assert n_params[i] == count_parameters(config, (3, 32, 32), 10)
        with torch.device("meta"):
            net = build_network(config, (3, 32, 32), 10)
            assert flops[i] == inference_flops_per_sample(net, torch.zeros(1, 3, 32, 32))


def test_evaluator_records_the_exact_costs() -> None:
    """End to end: the evaluator's record on digits equals the closed form from the datamodule's shape."""
    dm = DigitsDataModule(flatten=True, batch_size=64)
    data = DataShape.from_datamodule(dm)
    assert data == DataShape((64,), 10, dm.num_samples("train"), input_stats=(1, 1))
    assert DataShape.from_datamodule(DigitsDataModule(flatten=False)).input_shape == (1, 8, 8)
    config = {"hidden_mlp": [24, 12], "batch_size": 512}
    ev = CandidateEvaluator(dm, epochs=1, accelerator="cpu").evaluate({"family": "mlp", **config})
    assert ev.status == "ok", ev.error
    for measure in MEASURES:
        assert getattr(ev, measure) == exact_costs("mlp", [config], data, measure)[0], measure


def test_unbuildable_configs_are_nan_and_times_raise() -> None:
    data = DataShape((1, 8, 8), 10, 100)
    configs = [{"out_channels": [8, 4, 4, 4], "shortcuts": [1, 0, 0, 0]},  # fewer channels after the shortcut
               {"out_channels": [4, 4, 4], "shortcuts": [0, 1, 0]},  # a shortcut past the last layer
               {"out_channels": [4, 4, 4, 4, 4], "shortcuts": [1, 1, 0, 0, 0]},  # two in a row: complete_config refuses
               {"out_channels": [4, 4, 4, 4]}]
    values = exact_costs("cnn", configs, data, "memory")
    assert np.isnan(values[:3]).all() and np.isfinite(values[3])
    with pytest.raises(ValueError, match="t_tr"):
        exact_costs("cnn", configs, data, "t_tr")
    with pytest.raises(ValueError, match="measure"):
        exact_costs("cnn", configs, data, "accuracy")
    with pytest.raises(ValueError, match="out_channels"):
        exact_costs("mlp", configs, data, "n_params")
    with pytest.raises(ValueError, match="input_shape"):
        exact_costs("cnn", configs, DataShape((64,), 10, 100), "flops")
    with pytest.raises(ValueError, match="train_samples"):
        DataShape((64,), 10, 0)
