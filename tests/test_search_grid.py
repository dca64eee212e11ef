"""SPEC §5 stage-2 grid groups: option counts, placements, exclusions."""

from __future__ import annotations

import pytest

from lightning_dnc.search.stages.grid import default_order, group_options, placed_flags, validate_order
from lightning_dnc.search.core.trial import config_key
from lightning_dnc.space.config import complete_config, derive_maxpools

GROUP_KEYS = {
    "ac": {"act"},
    "ds": {"strides", "apply_maxpools"},
    "bn": {"apply_bns"},
    "do": {"apply_dropouts", "dropout_probs", "dropout_probs_mlp"},
    "sc": {"shortcuts"},
}


def cnn(channels, **kw):
    return complete_config({"out_channels": channels, "epochs": 3, **kw})


def changed_keys(a, b):
    return {k for k in set(a) | set(b) if a.get(k) != b.get(k)}


@pytest.mark.parametrize("group", ["ac", "ds", "bn", "do", "sc"])
@pytest.mark.parametrize("channels", [[16, 32, 80, 100], [20, 40, 70, 140, 260, 300, 300, 300, 300, 300, 400, 400, 512, 512, 512]])
def test_options_differ_from_current_only_in_their_group(group, channels):
    base = cnn(channels)
    options = group_options(group, base)
    keys = [config_key(o) for o in options]
    assert len(keys) == len(set(keys)), "options repeat"
    assert config_key(base) not in keys
    for option in options:
        diff = changed_keys(base, option)
        assert diff and diff <= GROUP_KEYS[group], diff
        assert option["epochs"] == 3
        assert complete_config(option) == option


def test_activation_options():
    assert [o["act"] for o in group_options("ac", cnn([16, 16, 16, 16]))] == ["tanh", "sigmoid"]
    assert [o["act"] for o in group_options("ac", cnn([16, 16, 16, 16], act="tanh"))] == ["relu", "sigmoid"]


@pytest.mark.parametrize("channels", [[16, 16, 16, 16], [32, 64, 100, 100], [32, 64, 100, 200], [40, 80, 160, 300, 300]])
def test_downsampling_mixes_stride_and_maxpool_at_current_positions(channels):
    base = cnn(channels)
    positions = [i for i, f in enumerate(derive_maxpools(channels)) if f]
    options = group_options("ds", base)
    assert len(options) == 2 ** len(positions) - 1
    for option in options:
        for i in range(len(channels)):
            if i in positions:
                assert (option["strides"][i], option["apply_maxpools"][i]) in {(2, 0), (1, 1)}
            else:
                assert (option["strides"][i], option["apply_maxpools"][i]) == (1, 0)
        assert any(s == 2 for s in option["strides"]), "all-max-pool is the current setting, never an option"


def test_bn_positions_are_late_and_one_indexed():
    assert placed_flags(4, 0.25) == [0, 0, 0, 1]
    assert placed_flags(4, 0.5) == [0, 1, 0, 1]
    assert placed_flags(4, 0.75) == [0, 1, 1, 1]
    assert placed_flags(8, 0.75) == [0, 1, 1, 1, 0, 1, 1, 1]  # k = 6 at ceil(8j/6) = 2, 3, 4, 6, 7, 8
    assert placed_flags(5, 0.0) == [0] * 5
    options = [o["apply_bns"] for o in group_options("bn", cnn([16] * 8))]
    assert options == [[0] * 8, placed_flags(8, 0.25), placed_flags(8, 0.5), placed_flags(8, 0.75)]


@pytest.mark.parametrize("n", range(1, 17))
def test_placed_flags_count_and_last_layer(n):
    for f in (0.25, 0.5, 0.75, 1.0):
        flags = placed_flags(n, f)
        assert sum(flags) == -(-int(f * 100) * n // 100)
        assert flags[-1] == 1


@pytest.mark.parametrize("n", range(4, 17))
def test_conv_dropout_has_fifteen_options_for_four_or_more_layers(n):
    options = group_options("do", cnn([16] * n))
    assert len(options) == 15
    first_probs = {o["dropout_probs"][0] for o in options if o["apply_dropouts"][0]}
    assert first_probs == {0.1, 0.2}
    for o in options:
        later = {p for p, a in zip(o["dropout_probs"][1:], o["apply_dropouts"][1:]) if a}
        assert len(later) <= 1 and later <= {0.15, 0.3, 0.45}
    default = ([1] * n, [0.1] + [0.3] * (n - 1))
    assert all((o["apply_dropouts"], o["dropout_probs"]) != default for o in options)


def test_shortcut_spacing_options_exclude_current():
    nine = cnn([16] * 9)  # default spacing 4
    assert [o["shortcuts"] for o in group_options("sc", nine)] == [[0] * 9, [1, 0, 1, 0, 1, 0, 1, 0, 0]]
    four = cnn([16] * 4)  # spacing none; spacing 4 and 2 coincide for n = 4
    assert [o["shortcuts"] for o in group_options("sc", four)] == [[1, 0, 0, 0]]
    assert group_options("sc", cnn([16, 16])) == []


def test_mlp_groups():
    mlp = complete_config({"family": "mlp", "hidden_mlp": [100, 50]})
    assert [o["dropout_probs_mlp"] for o in group_options("do", mlp)] == [[p, p] for p in (0.0, 0.1, 0.3, 0.4, 0.5)]
    assert len(group_options("ac", mlp)) == 2
    empty = complete_config({"family": "mlp", "hidden_mlp": []})
    assert group_options("do", empty) == [] and group_options("ac", empty) == []


def test_orders():
    assert default_order("cnn") == ("ac", "ds", "bn", "do", "sc")
    assert default_order("mlp") == ("ac", "do")
    assert validate_order("cnn", ["sc", "ac"]) == ("sc", "ac")
    with pytest.raises(ValueError, match=r"group\(s\) \['ds'\] that the 'mlp' family does not have"):
        validate_order("mlp", ["ds"])
    with pytest.raises(ValueError, match=r"lists group\(s\) \['ac'\] more than once"):
        validate_order("cnn", ["ac", "ac"])
    with pytest.raises(ValueError, match="must be one of"):
        group_options("ds", complete_config({"family": "mlp"}))
