"""The search keeps one GP per BO stage: one Cholesky row per told trial, fresh targets per pick."""

from __future__ import annotations

import numpy as np
import pytest
from test_golden_proposals import synthetic_evaluation

from lightning_dnc.gp import GaussianProcess
from lightning_dnc.search import Objective, StagedSearch
from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace
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
