"""Candidate networks: every sampled config builds and trains a step, parameter counts, shortcuts."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from lightning_dnc.models import (
    CandidateModule,
    build_network,
    count_parameters,
    lr_milestones,
    plan_conv_layers,
    regression_loss,
)
from lightning_dnc.models.cnn import Shortcut
from lightning_dnc.space import CNNSpace, MLPSpace, complete_config


def _stage2_variant(config: dict, rng: random.Random) -> dict:
    """Randomise the stage-2 keys of a stage-1 CNN config (act, ds, bn, do, sc) like the grid does."""
    n = len(config["out_channels"])
    pools = config["apply_maxpools"]
    strides = [2 if (p and rng.random() < 0.5) else 1 for p in pools]
    spacing = rng.choice([0, 2, 4])
    shortcuts = [1 if spacing and j % spacing == 0 and j <= n - 3 else 0 for j in range(n)]
    hidden = rng.choice([[], [12], [12, 7]])
    return {
        **config,
        "dropout_probs_mlp": [0.2] * len(hidden),
        "act": rng.choice(["relu", "tanh", "sigmoid"]),
        "strides": strides,
        "apply_maxpools": [p if s == 1 else 0 for p, s in zip(pools, strides)],
        "apply_bns": [rng.randint(0, 1) for _ in range(n)],
        "apply_dropouts": [rng.randint(0, 1) for _ in range(n)],
        "shortcuts": shortcuts,
        "hidden_mlp": hidden,
    }


def _sampled_cnn_configs(space: CNNSpace, n_random: int) -> list[dict]:
    rng = random.Random(0)
    configs = [space.centre(), space.largest_config(), *space.sample(n_random, seed=1, method="random")]
    return configs + [_stage2_variant(complete_config(c), rng) for c in configs]


# A narrower channel range than SPEC's keeps the test fast on CPU while still reaching the 64/128/256
# thresholds that derive max-pools, at every depth from 4 to 16.
SMALL_SPACE = CNNSpace(channels_first=(4, 16), channels_upper=300)


@pytest.mark.parametrize("space,input_shape,n_random", [
    (SMALL_SPACE, (1, 8, 8), 3),
    (SMALL_SPACE, (3, 32, 32), 0),
    (CNNSpace(), (1, 8, 8), 0),
])
def test_every_sampled_cnn_config_builds_runs_forward_and_backward(space, input_shape, n_random):
    torch.manual_seed(0)
    for config in _sampled_cnn_configs(space, n_random):
        net = build_network(config, input_shape, num_outputs=5)
        x = torch.randn(3, *input_shape)
        out = net(x)
        assert out.shape == (3, 5)
        out.sum().backward()
        grads = [p.grad for p in net.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert count_parameters(config, input_shape, 5) == sum(p.numel() for p in net.parameters())


def test_every_sampled_mlp_config_builds_runs_forward_and_backward():
    for config in [MLPSpace().centre(), *MLPSpace().sample(6, seed=3, method="random")]:
        for shape in [(64,), (1, 8, 8)]:
            net = build_network({**config, "family": "mlp"}, shape, num_outputs=3)
            out = net(torch.randn(4, *shape))
            assert out.shape == (4, 3)
            out.pow(2).mean().backward()


def test_mlp_parameter_count_matches_hand_count():
    config = {"family": "mlp", "hidden_mlp": [20, 7]}
    expected = (64 * 20 + 20) + (20 * 7 + 7) + (7 * 10 + 10)
    assert count_parameters(config, (64,), 10) == expected
    assert count_parameters({"family": "mlp"}, (1, 8, 8), 10) == 64 * 10 + 10
    assert CandidateModule(config, (64,), 10).num_params == expected


def test_cnn_parameter_count_matches_hand_count():
    # conv: 9 * c_in * c_out + c_out; BN: 2 * c; shortcuts and pools are parameter-free.
    config = {"out_channels": [4, 6, 6], "apply_bns": [1, 0, 1], "hidden_mlp": [5]}
    conv = (9 * 2 * 4 + 4) + (9 * 4 * 6 + 6) + (9 * 6 * 6 + 6)
    bn = 2 * 4 + 2 * 6
    head = (6 * 5 + 5) + (5 * 3 + 3)
    assert count_parameters(config, (2, 7, 7), 3) == conv + bn + head


def test_layer_order_and_init():
    config = {"out_channels": [4, 8, 8, 8], "apply_maxpools": [1, 0, 0, 0], "hidden_mlp": [6]}
    net = build_network(config, (1, 8, 8), 2)
    block = net.blocks[0]
    assert isinstance(block.conv, nn.Conv2d) and block.conv.kernel_size == (3, 3) and block.conv.padding == (1, 1)
    assert isinstance(block.pool, nn.MaxPool2d) and block.pool.ceil_mode
    assert isinstance(block.bn, nn.BatchNorm2d)
    assert isinstance(block.drop, nn.Dropout) and block.drop.p == pytest.approx(0.1)
    assert net.blocks[1].drop.p == pytest.approx(0.3)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 2
    assert all(torch.all(m.bias == 0.1) for m in linears)
    # Kaiming-normal (fan_in, ReLU gain): std = sqrt(2 / fan_in)
    big = build_network({"family": "mlp", "hidden_mlp": [400]}, (1000,), 2)
    w = big.layers[0].weight.detach()
    assert float(w.std()) == pytest.approx((2 / 1000) ** 0.5, rel=0.05)


def test_shortcut_without_downsampling_only_pads_channels():
    config = {"out_channels": [4, 4, 8, 8, 8], "shortcuts": [1, 0, 0, 0, 0], "apply_maxpools": [0] * 5}
    net = build_network(config, (3, 6, 6), 2)
    sc = net.shortcut_into(2)
    assert isinstance(sc, Shortcut) and sc.pools == 0 and sc.pad_channels == 4
    x = torch.randn(2, 4, 6, 6)
    y = sc(x)
    assert y.shape == (2, 8, 6, 6)
    assert torch.equal(y[:, :4], x) and torch.all(y[:, 4:] == 0)


def test_shortcut_with_downsampling_average_pools_once_per_halving():
    config = {"out_channels": [4, 8, 8, 8, 8], "shortcuts": [1, 0, 0, 0, 0],
              "apply_maxpools": [0, 1, 0, 0, 0], "strides": [1, 1, 2, 1, 1]}
    net = build_network(config, (1, 7, 7), 2)
    plans = plan_conv_layers(complete_config(config), (1, 7, 7))
    assert [p.out_hw for p in plans] == [(7, 7), (4, 4), (2, 2), (2, 2), (2, 2)]
    sc = net.shortcut_into(2)
    assert sc.pools == 2 and sc.pad_channels == 4
    x = torch.arange(2 * 4 * 7 * 7, dtype=torch.float32).reshape(2, 4, 7, 7)
    expected = nn.functional.avg_pool2d(nn.functional.avg_pool2d(x, 2, ceil_mode=True), 2, ceil_mode=True)
    assert torch.equal(sc(x)[:, :4], expected)
    assert net(torch.randn(2, 1, 7, 7)).shape == (2, 2)


def test_shortcut_into_fewer_channels_is_rejected():
    with pytest.raises(ValueError, match="must not decrease across a shortcut"):
        build_network({"out_channels": [8, 4, 4, 4], "shortcuts": [1, 0, 0, 0]}, (1, 8, 8), 2)


def test_downsampling_is_capped_at_one_by_one():
    config = {"out_channels": [16, 16, 16, 16, 16, 16], "strides": [2] * 6, "apply_maxpools": [1] * 6}
    plans = plan_conv_layers(complete_config(config), (1, 4, 4))
    assert plans[-1].out_hw == (1, 1)
    assert sum(p.downsamplings for p in plans) == 2
    assert build_network(config, (1, 4, 4), 3)(torch.randn(2, 1, 4, 4)).shape == (2, 3)
    assert build_network(config, (1, 1, 1), 3)(torch.randn(2, 1, 1, 1)).shape == (2, 3)


def test_eval_mode_is_deterministic_and_training_mode_is_not():
    net = build_network({"out_channels": [8, 8, 8, 8], "hidden_mlp": [16]}, (1, 8, 8), 4)
    x = torch.randn(5, 1, 8, 8)
    net.train()
    net(x)  # update BN running statistics once
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), net(x))
    net.train()
    with torch.no_grad():
        assert not torch.equal(net(x), net(x))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="Unknown configuration key"):
        build_network({"out_channels": [4], "bogus": 1}, (1, 8, 8), 2)
    with pytest.raises(ValueError, match="`apply_bns` must have one entry per conv layer"):
        build_network({"out_channels": [4, 4], "apply_bns": [1]}, (1, 8, 8), 2)
    with pytest.raises(ValueError, match=r"A CNN needs `input_shape` = \(channels, height, width\)"):
        build_network({"out_channels": [4]}, (64,), 2)
    with pytest.raises(ValueError, match="`num_outputs` must be an int >= 1"):
        build_network({"family": "mlp"}, (64,), 0)
    with pytest.raises(ValueError, match="`task` must be one of"):
        CandidateModule({"family": "mlp"}, (4,), 2, task="ranking")


def test_candidate_module_optimizer_schedule_and_weight_decay():
    module = CandidateModule({"family": "mlp", "hidden_mlp": [200], "lr": 0.01}, (100,), 10, epochs=8)
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert isinstance(opt, torch.optim.Adam) and conf["lr_scheduler"]["interval"] == "epoch"
    n_p = module.num_params
    assert n_p == 100 * 200 + 200 + 200 * 10 + 10
    assert opt.param_groups[0]["weight_decay"] == pytest.approx(1e-9 * n_p)
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.01] * 4 + [0.002] * 2 + [0.0004] * 2)
    assert lr_milestones(100) == [50, 75] and lr_milestones(1) == []
    small = CandidateModule({"out_channels": [4, 4, 4, 4], "weight_decay": 0.5}, (1, 8, 8), 2)
    assert small.configure_optimizers()["optimizer"].param_groups[0]["weight_decay"] == 0.5
    assert CandidateModule({"out_channels": [4, 4, 4, 4]}, (1, 8, 8), 2).weight_decay == 0.0


def test_epochs_default_and_hparams():
    module = CandidateModule({"family": "mlp", "epochs": 7}, (4,), 2)
    assert module.epochs == 7
    assert CandidateModule({"family": "mlp"}, (4,), 2).epochs == 100
    assert module.hparams["config"]["epochs"] == 7 and module.hparams["input_shape"] == [4]


def test_regression_loss_never_broadcasts():
    out = torch.tensor([[1.0], [2.0], [3.0]])
    assert regression_loss(out, torch.tensor([1.0, 2.0, 5.0])) == pytest.approx(4.0 / 3)
    assert regression_loss(out, torch.tensor([[1.0], [2.0], [5.0]])) == pytest.approx(4.0 / 3)
    with pytest.raises(ValueError, match="need outputs of shape"):
        regression_loss(torch.zeros(3, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="differ"):
        regression_loss(torch.zeros(3, 2), torch.zeros(3, 1))


def test_checkpoint_rebuilds_itself(tmp_path):
    import lightning.pytorch as pl

    module = CandidateModule({"out_channels": [4, 4, 4, 4]}, (1, 8, 8), 3, epochs=2)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.strategy.connect(module)
    path = tmp_path / "c.ckpt"
    trainer.save_checkpoint(path)
    restored = CandidateModule.load_from_checkpoint(path)
    assert restored.config == module.config and restored.epochs == 2
    for a, b in zip(module.state_dict().values(), restored.state_dict().values()):
        assert torch.equal(a, b)
