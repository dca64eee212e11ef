"""Search spaces: SPEC §4 defaults, sampling rules, validation, serialisation."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from lightning_dnc.space import (
    CNNSpace,
    MLPSpace,
    TrainingSpace,
    derive_maxpools,
    shortcut_spacing_for_depth,
    shortcuts_with_spacing,
    space_from_dict,
)

N_SAMPLES = 3000


def _plain(value: object) -> bool:
    """True if ``value`` is built only from Python ints/floats/lists (JSON-able, no numpy)."""
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return type(value) in (int, float)


# ---------------------------------------------------------------- defaults and validation
def test_constructor_defaults_are_the_spec_defaults():
    cnn, mlp, trn = CNNSpace(), MLPSpace(), TrainingSpace()
    assert cnn.num_conv_layers == (4, 16) and cnn.channels_first == (16, 64) and cnn.channels_upper == 512
    assert mlp.num_hidden_layers == (0, 2) and mlp.hidden_nodes == (20, 400)
    assert trn.lr == (1e-5, 1e-1) and trn.weight_decay == (1e-6, 1e-3) and trn.batch_size == (32, 512)
    for space in (cnn, mlp, trn):
        assert set(space.omega.values()) == {3.0}
        assert len(set(space.weights.values())) == 1


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (CNNSpace, {"num_conv_layers": (5, 4)}, r"`num_conv_layers`.*1 <= lo <= hi.*\(5, 4\)"),
        (CNNSpace, {"num_conv_layers": (0, 4)}, r"`num_conv_layers`.*\(0, 4\)"),
        (CNNSpace, {"num_conv_layers": (4.5, 8)}, r"`num_conv_layers`.*integers"),
        (CNNSpace, {"num_conv_layers": (True, 8)}, r"`num_conv_layers`"),
        (CNNSpace, {"num_conv_layers": 8}, r"`num_conv_layers`.*pair.*got 8"),
        (CNNSpace, {"channels_first": (0, 64)}, r"`channels_first`.*\(0, 64\)"),
        (CNNSpace, {"channels_first": (64, 16)}, r"`channels_first`.*\(64, 16\)"),
        (CNNSpace, {"channels_upper": 0}, r"`channels_upper`.*>= 1.*got 0"),
        (CNNSpace, {"channels_upper": 32}, r"`channels_upper`.*>= .*64.*got 32"),
        (CNNSpace, {"input_size": -3}, r"`input_size`.*got -3"),
        (CNNSpace, {"omega": -1.0}, r"`omega`.*> 0.*-1.0"),
        (CNNSpace, {"omega": {"lr": 2.0}}, r"`omega`.*unknown variable.*'lr'.*\['out_channels'\]"),
        (MLPSpace, {"num_hidden_layers": (-1, 2)}, r"`num_hidden_layers`.*0 <= lo <= hi.*\(-1, 2\)"),
        (MLPSpace, {"num_hidden_layers": (3, 2)}, r"`num_hidden_layers`.*\(3, 2\)"),
        (MLPSpace, {"hidden_nodes": (0, 400)}, r"`hidden_nodes`.*1 <= lo <= hi.*\(0, 400\)"),
        (MLPSpace, {"hidden_nodes": (400, 20)}, r"`hidden_nodes`.*\(400, 20\)"),
        (TrainingSpace, {"lr": (0.0, 0.1)}, r"`lr`.*0 < lo <= hi.*\(0.0, 0.1\)"),
        (TrainingSpace, {"lr": (1e-1, 1e-5)}, r"`lr`.*0 < lo <= hi"),
        (TrainingSpace, {"lr": (1e-5, float("inf"))}, r"`lr`.*finite"),
        (TrainingSpace, {"weight_decay": (-1e-6, 1e-3)}, r"`weight_decay`.*0 < lo"),
        (TrainingSpace, {"batch_size": (0, 512)}, r"`batch_size`.*1 <= lo <= hi.*\(0, 512\)"),
        (TrainingSpace, {"batch_size": (64, 32)}, r"`batch_size`.*\(64, 32\)"),
        (TrainingSpace, {"weights": {"lr": 0.0, "weight_decay": 0.0, "batch_size": 0.0}}, r"`weights`.*positive sum"),
        (TrainingSpace, {"weights": {"lr": -1.0}}, r"`weights`.*>= 0.*-1.0.*'lr'"),
    ],
)
def test_constructor_rejects_invalid_limits(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


# ---------------------------------------------------------------- CNN sampling
def _check_cnn_rules(space: CNNSpace, config: dict) -> None:
    ch = config["out_channels"]
    n = len(ch)
    assert space.num_conv_layers[0] <= n <= space.num_conv_layers[1]
    assert space.channels_first[0] <= ch[0] <= space.channels_first[1]
    for i in range(1, n):
        assert ch[i - 1] <= ch[i] <= min(2 * ch[i - 1], space.channels_upper)
    pools = config["apply_maxpools"]
    assert len(pools) == n and sum(pools) <= space.max_downsamples
    expected = derive_maxpools(ch)
    kept = [i for i, f in enumerate(expected) if f][: space.max_downsamples]
    assert pools == [1 if i in kept else 0 for i in range(n)]
    assert config["shortcuts"] == shortcuts_with_spacing(n, shortcut_spacing_for_depth(n))
    assert set(config) == set(space.keys)
    assert all(_plain(v) for v in config.values())


@pytest.mark.parametrize("method", ["random", "sobol"])
def test_cnn_samples_obey_spec_rules(method):
    space = CNNSpace()
    configs = space.sample(N_SAMPLES, seed=3, method=method)
    assert len(configs) == N_SAMPLES
    for config in configs:
        _check_cnn_rules(space, config)
        space.validate(config)
    json.dumps(configs)
    depths = Counter(len(c["out_channels"]) for c in configs)
    assert sorted(depths) == list(range(4, 17))  # every depth reachable
    assert max(depths.values()) / min(depths.values()) < 1.5  # integer mapping is uniform
    firsts = Counter(c["out_channels"][0] for c in configs)
    assert min(firsts) == 16 and max(firsts) == 64


def test_cnn_maxpool_positions_follow_thresholds():
    space = CNNSpace()
    config = space._skeleton([16, 32, 64, 65, 100, 129, 200, 257, 300])
    assert config["apply_maxpools"] == [0, 0, 1, 0, 1, 0, 1, 0, 0]
    assert config["shortcuts"] == [1, 0, 0, 0, 1, 0, 0, 0, 0]


def test_cnn_input_size_caps_the_pools():
    assert CNNSpace(input_size=4).max_downsamples == 2
    assert CNNSpace(input_size=1).max_downsamples == 0
    assert CNNSpace(input_size=32).max_downsamples == 3
    space = CNNSpace(input_size=4)
    for config in space.sample(500, seed=1, method="random"):
        _check_cnn_rules(space, config)
    big = CNNSpace().largest_config()
    assert sum(big["apply_maxpools"]) == 3
    with pytest.raises(ValueError, match=r"downsamples 3 times.*2 this space allows.*input_size=4"):
        space.validate(big)


def test_cnn_custom_and_degenerate_limits():
    space = CNNSpace(num_conv_layers=(1, 3), channels_first=(8, 8), channels_upper=8)
    for config in space.sample(200, seed=0, method="random"):
        _check_cnn_rules(space, config)
        assert set(config["out_channels"]) == {8}
        assert config["shortcuts"] == [0] * len(config["out_channels"])


# ---------------------------------------------------------------- MLP and training sampling
@pytest.mark.parametrize("method", ["random", "sobol"])
def test_mlp_samples_obey_spec_rules(method):
    space = MLPSpace()
    configs = space.sample(N_SAMPLES, seed=5, method=method)
    counts = Counter(len(c["hidden_mlp"]) for c in configs)
    assert sorted(counts) == [0, 1, 2]
    assert max(counts.values()) / min(counts.values()) < 1.3
    widths = [w for c in configs for w in c["hidden_mlp"]]
    assert all(20 <= w <= 400 and type(w) is int for w in widths)
    if method == "random":
        assert {20, 400} <= set(widths)  # both ends of the integer range are reachable
    for config in configs:
        assert set(config) == {"hidden_mlp"}
        space.validate(config)
    json.dumps(configs)


@pytest.mark.parametrize("method", ["random", "sobol"])
def test_training_samples_obey_spec_rules(method):
    space = TrainingSpace()
    configs = space.sample(N_SAMPLES, seed=7, method=method)
    lrs = np.array([c["lr"] for c in configs])
    wds = np.array([c["weight_decay"] for c in configs])
    bss = [c["batch_size"] for c in configs]
    assert np.all((lrs >= 1e-5) & (lrs <= 1e-1))
    assert abs(np.mean(lrs < 1e-3) - 0.5) < 0.05  # log-uniform: half below the middle decade
    zero = wds == 0
    assert abs(zero.mean() - 1 / 3) < 0.05  # lowest of three decades -> exactly 0
    assert np.all(wds[~zero] >= 1e-5 * (1 - 1e-12)) and np.all(wds <= 1e-3)
    assert all(type(b) is int and 32 <= b <= 512 for b in bss)
    assert min(bss) == 32 and max(bss) >= 510
    for config in configs:
        assert set(config) == {"lr", "weight_decay", "batch_size"}
        assert all(_plain(v) for v in config.values())
        space.validate(config)


def test_training_weight_decay_all_zero_when_range_under_a_decade():
    space = TrainingSpace(weight_decay=(1e-6, 5e-6))
    assert {c["weight_decay"] for c in space.sample(200, method="random")} == {0.0}


# ---------------------------------------------------------------- Sobol / random behaviour
def test_sobol_first_point_is_the_centre():
    cnn = CNNSpace()
    first = cnn.sample(1)[0]
    assert first == cnn.centre()
    # u = 0.5 everywhere: depth floor(4 + 0.5 * 13) = 10, c1 = floor(16 + 0.5 * 49) = 40, c2 = floor(40 + 0.5 * 41)
    assert len(first["out_channels"]) == 10
    assert first["out_channels"][:3] == [40, 60, 90]
    assert MLPSpace().sample(1)[0] == {"hidden_mlp": [210]}
    trn = TrainingSpace().sample(3)[0]
    assert trn["lr"] == pytest.approx(1e-3, rel=1e-12)
    assert trn["weight_decay"] == pytest.approx(10**-4.5, rel=1e-12)
    assert trn["batch_size"] == 272


def test_sobol_is_deterministic_and_random_is_seeded():
    space = CNNSpace()
    assert space.sample(16, seed=0) == space.sample(16, seed=99)
    assert space.sample(16) != space.sample(16, method="random")
    assert space.sample(16, seed=4, method="random") == space.sample(16, seed=4, method="random")
    assert space.sample(16, seed=4, method="random") != space.sample(16, seed=5, method="random")
    assert space.sample(0) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": -1}, r"`n`.*>= 0.*-1"),
        ({"n": 2.5}, r"`n`.*2.5"),
        ({"n": 4, "method": "grid"}, r"`method`.*\['sobol', 'scrambled-sobol', 'random'\].*'grid'"),
        ({"n": 4, "method": "random", "seed": -2}, r"`seed`.*-2"),
    ],
)
def test_sample_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLPSpace().sample(**kwargs)


# ---------------------------------------------------------------- validate
@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"out_channels": [32, 64, 100, 90]}, r"`out_channels\[3\]` must be in \[100, 200\].*got 90"),
        ({"out_channels": [32, 64, 200, 200]}, r"`out_channels\[2\]` must be in \[64, 128\]"),
        ({"out_channels": [32, 64, 64]}, r"`out_channels` must have between 4 and 16 layers.*got 3"),
        ({"out_channels": [65, 65, 65, 65]}, r"`out_channels\[0\]` must be in \[16, 64\].*got 65"),
        ({"out_channels": [32] * 4, "colour": 1}, r"Unknown configuration key.*'colour'.*valid keys.*'out_channels'"),
        ({"out_channels": [32] * 4, "shortcuts": [1, 1, 0, 0]}, r"`shortcuts`.*consecutive"),
        ({"out_channels": [32] * 4, "apply_maxpools": [0, 1]}, r"`apply_maxpools`.*length 4"),
        ({"hidden_mlp": [20]}, r"Unknown configuration key.*'hidden_mlp'|lacks \['out_channels'\]"),
    ],
)
def test_cnn_validate_names_the_bad_key(config, match):
    with pytest.raises(ValueError, match=match):
        CNNSpace().validate(config)


def test_cnn_validate_accepts_stage2_changes():
    space = CNNSpace()
    config = dict(space.centre())
    config["shortcuts"] = shortcuts_with_spacing(10, 2)
    config["strides"] = [1] * 10
    space.validate(config)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"hidden_mlp": [20, 20, 20]}, r"`hidden_mlp` must have between 0 and 2 hidden layers.*got 3"),
        ({"hidden_mlp": [19]}, r"`hidden_mlp\[0\]` must be in \[20, 400\].*got 19"),
        ({"hidden_mlp": [20, 401]}, r"`hidden_mlp\[1\]`.*got 401"),
        ({"out_channels": [32] * 4}, r"Unknown configuration key.*'out_channels'"),
        ({}, r"lacks \['hidden_mlp'\]"),
        ("not a dict", r"must be a dict"),
    ],
)
def test_mlp_validate_names_the_bad_key(config, match):
    with pytest.raises(ValueError, match=match):
        MLPSpace().validate(config)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"lr": 1.0, "weight_decay": 0.0, "batch_size": 64}, r"`lr` must be a number in \[1e-05, 0.1\], got 1.0"),
        ({"lr": 1e-3, "weight_decay": "auto", "batch_size": 64}, r"`weight_decay` must be 0 or.*'auto'"),
        ({"lr": 1e-3, "weight_decay": 1e-2, "batch_size": 64}, r"`weight_decay`.*\[1e-06, 0.001\].*0.01"),
        ({"lr": 1e-3, "weight_decay": 0.0, "batch_size": 64.5}, r"`batch_size` must be an integer in \[32, 512\]"),
        ({"lr": 1e-3, "weight_decay": 0.0, "batch_size": 1024}, r"`batch_size`.*1024"),
        ({"lr": 1e-3, "weight_decay": 0.0}, r"lacks \['batch_size'\]"),
    ],
)
def test_training_validate_names_the_bad_key(config, match):
    with pytest.raises(ValueError, match=match):
        TrainingSpace().validate(config)


def test_training_validate_accepts_full_configs():
    TrainingSpace().validate({"out_channels": [16] * 4, "act": "relu", "lr": 1e-5, "weight_decay": 0, "batch_size": 32})


# ---------------------------------------------------------------- largest config, encode, serialisation
def test_largest_configs():
    cnn = CNNSpace()
    big = cnn.largest_config()
    assert big["out_channels"] == [64, 128, 256] + [512] * 13
    cnn.validate(big)
    assert MLPSpace().largest_config() == {"hidden_mlp": [400, 400]}
    assert MLPSpace(num_hidden_layers=(0, 0)).largest_config() == {"hidden_mlp": []}
    assert TrainingSpace().largest_config() == {"lr": 0.1, "weight_decay": 0.001, "batch_size": 512}


def test_encode_layouts():
    cnn = CNNSpace()
    enc = cnn.encode([{"out_channels": [16, 32, 64, 64]}, cnn.largest_config()])
    assert enc.kind == "layered" and enc.values.shape == (2, 16) and enc.values.dtype == np.int64
    assert enc.lengths.tolist() == [4, 16] and enc.values[0, 4:].tolist() == [0] * 12
    assert enc.root.tolist() == [1, 2, 3] + [4] * 13
    assert enc.inv_span[0] == 1 / 48 and enc.inv_span[1] == 1 / (128 - 16) and enc.inv_span[-1] == 1 / (512 - 16)
    mlp = MLPSpace().encode([{"hidden_mlp": []}, {"hidden_mlp": [20, 30]}])
    assert mlp.values.tolist() == [[0, 0], [50, 2]]
    trn = TrainingSpace().encode([{"lr": 1e-3, "weight_decay": 0.0, "batch_size": 64}])
    assert trn.values.tolist() == [[-3.0, -6.0, 64.0]]


@pytest.mark.parametrize(
    ("space", "configs", "match"),
    [
        (CNNSpace(), [{"hidden_mlp": [20]}], r"Config 0 has no `out_channels`"),
        (CNNSpace(), [{"out_channels": [16] * 17}], r"Config 0: `out_channels` must have 1..16 layers.*17"),
        (CNNSpace(), [{"out_channels": [16, 0, 16, 16]}], r"`out_channels` must be an integer >= 1"),
        (MLPSpace(), [{"out_channels": [16]}], r"Config 0 has no `hidden_mlp`"),
        (TrainingSpace(), [{"lr": 1e-3, "weight_decay": "auto", "batch_size": 8}], r"`weight_decay`.*resolve 'auto'"),
        (TrainingSpace(), [{"lr": 0.0, "weight_decay": 0.0, "batch_size": 8}], r"`lr` must be a number > 0"),
    ],
)
def test_encode_rejects_foreign_configs(space, configs, match):
    with pytest.raises(ValueError, match=match):
        space.encode(configs)


@pytest.mark.parametrize(
    "space",
    [
        CNNSpace(num_conv_layers=(2, 6), channels_first=(8, 32), channels_upper=256, input_size=28, omega=2.0),
        MLPSpace(num_hidden_layers=(1, 3), hidden_nodes=(10, 50), omega={"hidden_mlp": 1.5}),
        TrainingSpace(lr=(1e-4, 1e-2), batch_size=(16, 128), weights={"lr": 2.0, "weight_decay": 1.0, "batch_size": 0.5}),
    ],
)
def test_to_dict_round_trips_through_json(space):
    d = json.loads(json.dumps(space.to_dict()))
    assert d["family"] == space.family
    assert space_from_dict(d) == space
    assert type(space).from_dict(d) == space
    assert space != type(space)()
    assert repr(space).startswith(type(space).__name__ + "(")


def test_from_dict_rejects_wrong_family():
    with pytest.raises(ValueError, match=r"MLPSpace.from_dict needs family 'mlp', got 'cnn'"):
        MLPSpace.from_dict(CNNSpace().to_dict())
    with pytest.raises(ValueError, match=r"`family` of a space dict must be one of \['cnn', 'mlp', 'training'\]"):
        space_from_dict({"family": "rnn"})


def test_covariance_uses_settable_omega_and_weights():
    space = TrainingSpace()
    a = space.sample(5, method="random", seed=1)
    k3 = space.covariance(a)
    assert k3.shape == (5, 5) and k3.dtype == np.float64
    k1 = space.covariance(a, omega=1.0)
    assert np.all(k1[~np.eye(5, dtype=bool)] > k3[~np.eye(5, dtype=bool)])  # shorter distances
    kw = space.covariance(a, weights={"lr": 1.0, "weight_decay": 0.0, "batch_size": 0.0})
    d = 3.0 * np.abs(np.subtract.outer(np.log10([c["lr"] for c in a]), np.log10([c["lr"] for c in a]))) / 4.0
    assert np.allclose(kw, np.exp(-(d**2) / 2), rtol=0, atol=1e-14)
    assert TrainingSpace(omega=1.0) != space
    assert np.array_equal(TrainingSpace(omega=1.0).covariance(a), k1)


def test_importing_space_does_not_load_numba_or_torch():
    code = (
        "import sys, lightning_dnc.space as s; s.CNNSpace().sample(3, method='random');"
        "print(sorted(m for m in ('numba', 'torch', 'lightning', 'scipy.stats') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_mlp_space_can_draw_one_log_uniform_width_for_every_layer():
    space = MLPSpace(num_hidden_layers=(1, 5), hidden_nodes=(64, 1024), widths="equal", width_scale="log")
    configs = space.sample(400, seed=0, method="random")
    assert all(len(set(c["hidden_mlp"])) == 1 and 64 <= c["hidden_mlp"][0] <= 1024 for c in configs)
    widths = [c["hidden_mlp"][0] for c in configs]
    narrow = sum(w < 256 for w in widths) / len(widths)  # log-uniform: half the decades -> ~half the samples
    assert 0.4 < narrow < 0.6
    spec = MLPSpace(num_hidden_layers=(1, 5), hidden_nodes=(64, 1024)).sample(400, seed=0, method="random")
    assert sum(sum(c["hidden_mlp"]) / len(c["hidden_mlp"]) < 256 for c in spec) / 400 < 0.25
    assert MLPSpace.from_dict(space.to_dict()) == space
    assert "widths" not in MLPSpace().to_dict()  # SPEC's space keeps the dict earlier journals stored
    with pytest.raises(ValueError, match=r"`width_scale` must be one of \['linear', 'log'\]"):
        MLPSpace(width_scale="exp")
