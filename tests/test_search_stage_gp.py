"""The search keeps one GP per BO stage: one Cholesky row per told trial, fresh targets per pick."""

from __future__ import annotations

import numpy as np
import pytest
from test_golden_proposals import synthetic_evaluation

from lightning_dnc.gp import GaussianProcess
from lightning_dnc.search.stages import bo
from lightning_dnc.search import Objective, StagedSearch
from lightning_dnc.gp.joint import JointEncoded
from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace
from lightning_dnc.space.joint import JointSpace
from lightning_dnc.space._sampling import unit_points


def test_retarget_equals_a_gp_observed_from_scratch():
    space = MLPSpace()
    configs = space.sample(12, seed=4, method="random")
    gp = GaussianProcess(space)
    gp.observe(configs, np.zeros(12))
    losses = np.random.default_rng(0).normal(size=12)
    gp.retarget(losses)
    fresh = GaussianProcess(space)
    fresh.observe(configs, losses)
    candidates = space.sample(50, seed=5, method="random")
    for a, b in zip(gp.predict(candidates), fresh.predict(candidates)):
        np.testing.assert_allclose(a, b, atol=1e-10)
    with pytest.raises(ValueError, match="one value per observation"):
        gp.retarget(losses[:3])


@pytest.mark.parametrize("batch", [1, 3])
def test_stage_gp_grows_by_one_row_per_told_trial_and_keeps_no_fantasies(batch):
    search = StagedSearch("cnn", CNNSpace(num_conv_layers=(3, 6)), TrainingSpace(), Objective(wc=0.1),
                          prior_points=3, steps=6, explore=80, epochs=2, seed=1, stage2_order=[], strategy="paper")
    stage = search._stages[1]
    while search.stage == 1:
        proposals = search.ask(batch)
        for p in proposals:
            search.tell(p.trial_id, synthetic_evaluation(p.config, False))
    gp = stage._gp._gp
    told = [t for t in search.trials if t.stage == 1]
    # Rows are added when the next pick needs them: every trial told before the last pick, no pending fantasy.
    assert 3 <= gp.n_observed < len(told)
    rows = sorted(stage._gp._rows, key=stage._gp._rows.get)
    configs = [{k: search.trials[i].config[k] for k in stage.space.keys} for i in rows]
    k = stage.space.covariance(configs) + gp.noise_var * np.eye(len(configs))
    np.testing.assert_allclose(gp.cholesky_factor, np.linalg.cholesky(k), atol=1e-12)


@pytest.mark.parametrize(
    "space",
    [CNNSpace(), CNNSpace(num_conv_layers=(2, 6), channels_first=(8, 32), channels_upper=128), CNNSpace(input_size=8),
     TrainingSpace(), TrainingSpace(lr=(1e-4, 0.1), weight_decay=(1e-5, 0.1), batch_size=(16, 512))],
)
def test_vectorised_sampling_gives_the_row_by_row_configs(space):
    for seed in range(5):
        points = unit_points(300, space._unit_dimension(), seed, "random")
        assert space._configs_from_units(points) == [space._config_from_unit(u) for u in points.tolist()]


class _DictsOnly:
    """A space without ``pool_arrays``: the pool goes through sample dicts."""

    def __init__(self, space):
        self._space = space
        self.keys = space.keys

    def sample(self, *args, **kwargs):
        return self._space.sample(*args, **kwargs)


TINY_CNN = dict(num_conv_layers=(1, 3), channels_first=(2, 3), channels_upper=4, input_size=8)
POOL_SPACES = {
    "cnn": CNNSpace(),
    "cnn-few-configs": CNNSpace(**TINY_CNN),
    "mlp": MLPSpace(),
    "mlp-equal-log": MLPSpace(num_hidden_layers=(1, 5), hidden_nodes=(64, 1024), widths="equal", width_scale="log"),
    "mlp-few-configs": MLPSpace(num_hidden_layers=(0, 2), hidden_nodes=(1, 3)),
    "training": TrainingSpace(),
    "training-few-batch-sizes": TrainingSpace(batch_size=(1, 3)),
    "joint-cnn": JointSpace(CNNSpace(), TrainingSpace()),
    "joint-mlp": JointSpace(MLPSpace(), TrainingSpace()),
}


def _parts(encoded):
    return encoded.parts if isinstance(encoded, JointEncoded) else (encoded,)


@pytest.mark.parametrize("name", POOL_SPACES)
def test_pool_arrays_are_the_sampled_configs_and_their_encoding(name):
    space = POOL_SPACES[name]
    samples = space.sample(300, seed=7, method="random")
    pool = space.pool_arrays(300, 7)
    assert [pool.build(row) for row in range(300)] == samples
    for got, expected in zip(_parts(pool.encoded), _parts(space.encode(samples)), strict=True):
        np.testing.assert_array_equal(got.values, expected.values)
        np.testing.assert_array_equal(got.lengths, expected.lengths)
        assert got.same_layout(expected)
    for row, sample in enumerate(samples):
        np.testing.assert_array_equal(space.key_row(bo.projection_key(space, sample)), pool.keys[row])
    same_keys = (pool.keys[:, None, :] == pool.keys[None, :, :]).all(axis=2)
    same_configs = np.array([[a == b for b in samples] for a in samples])
    np.testing.assert_array_equal(same_keys, same_configs)


def test_key_row_is_none_for_keys_no_sample_has():
    space = CNNSpace(num_conv_layers=(3, 6))
    sample = space.sample(1, seed=0, method="random")[0]
    channels, pools, shortcuts = sample["out_channels"], sample["apply_maxpools"], sample["shortcuts"]
    assert space.key_row((tuple(channels), tuple(pools), tuple(shortcuts))) is not None
    assert space.key_row((tuple(channels), tuple(pools), tuple(1 - s for s in shortcuts))) is None  # not derived
    assert space.key_row((tuple(channels), tuple(pools[:-1]), tuple(shortcuts))) is None
    assert space.key_row(((16,), (0,), (0,))) is None  # shallower than the space allows
    assert space.key_row((tuple(c + 0.5 for c in channels), tuple(pools), tuple(shortcuts))) is None
    assert space.key_row(("16",) * 3) is None
    mlp = MLPSpace()
    np.testing.assert_array_equal(mlp.key_row(((64.0, 32),)), mlp.key_row(((64, 32),)))  # 64.0 == 64 in Python
    assert mlp.key_row(((64.5,),)) is None and mlp.key_row(((1, 2, 3),)) is None and mlp.key_row(("a",)) is None
    training = TrainingSpace()
    assert training.key_row((1e-3, "auto", 256)) is None and training.key_row((1e-3, 0.0, 256.5)) is None
    np.testing.assert_array_equal(training.key_row((1e-3, -0.0, 256)), training.key_row((1e-3, 0, 256.0)))
    joint = JointSpace(MLPSpace(), TrainingSpace())
    assert joint.key_row(((64,), 1e-3, "auto", 256)) is None and joint.key_row(5) is None


@pytest.mark.parametrize("name", POOL_SPACES)
def test_array_pool_keeps_the_candidates_the_dict_pool_keeps(name):
    """Same samples in the same order, duplicates and known configs dropped the same way."""
    space = POOL_SPACES[name]
    first_pool = space.sample(200, seed=bo.pool_seed(0, 1, 4, 0), method="random")
    known = {bo.projection_key(space, c) for c in space.sample(3, seed=3, method="random") + first_pool[:5]}
    fast = bo.candidate_samples(space, 200, 0, 1, 4, known)
    slow = bo.candidate_samples(_DictsOnly(space), 200, 0, 1, 4, known)
    assert isinstance(fast, bo.PoolCandidates) and len(slow) > 0
    assert list(fast) == slow and fast[:3] == slow[:3] and fast[-1] == slow[-1]
    for got, expected in zip(_parts(fast.encoded), _parts(space.encode(slow)), strict=True):
        np.testing.assert_array_equal(got.values, expected.values)
    everything = {bo.projection_key(space, c) for c in space.sample(5000, seed=1, method="random")}
    if len(everything) < 50:  # a space this small is used up by its known configs: both give up alike
        assert len(bo.candidate_samples(space, 200, 0, 1, 4, everything)) == 0
        assert bo.candidate_samples(_DictsOnly(space), 200, 0, 1, 4, everything) == []


def test_candidates_with_a_fixed_part_encode_as_the_merged_dicts():
    joint = JointSpace(CNNSpace(), TrainingSpace())
    fixed = CNNSpace().sample(1, seed=2, method="random")[0]
    candidates = bo.candidate_samples(TrainingSpace(), 50, 0, 3, 0, set())
    merged = bo.WithFixedPart(fixed, joint.parts[0], candidates)
    assert list(merged) == [{**fixed, **c} for c in candidates] and merged[:2] == [{**fixed, **c} for c in candidates[:2]]
    for got, expected in zip(merged.encoded.parts, joint.encode(list(merged)).parts, strict=True):
        np.testing.assert_array_equal(got.values, expected.values)
        np.testing.assert_array_equal(got.lengths, expected.lengths)
    assert bo.WithFixedPart(fixed, joint.parts[0], list(candidates)).encoded is None
