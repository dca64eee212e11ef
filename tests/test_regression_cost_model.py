"""The composite model regresses measured times (t_tr, latency) on exact features when it knows the data's shape."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lightning_dnc.gp.cost_regression import BayesianLinearCost
from lightning_dnc.search import Evaluation, Objective, StagedSearch
from lightning_dnc.search.core.settings import SearchSettings
from lightning_dnc.search.journal.event_log import Journal
from lightning_dnc.search.stages import regression_cost_model as rcm
from lightning_dnc.search.stages.composite import CompositeGP, CostQuery, GPCostModel, cost_model_for
from lightning_dnc.search.stages.exact_cost_model import UNBUILDABLE_LOG_COST, ExactCostModel
from lightning_dnc.search.stages.regression_cost_model import REGRESSION_FEATURES, RegressionCostModel
from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace, complete_config
from lightning_dnc.space.cost_features import FEATURE_NAMES, cost_features
from lightning_dnc.space.exact_costs import DataShape, exact_costs

MLP_DATA = DataShape((64,), 10, 1000)
CNN_DATA = DataShape((1, 8, 8), 10, 500)


def data_of(family):
    return CNN_DATA if family == "cnn" else MLP_DATA


def timing(config):
    """A stand-in training: t_tr from training FLOPs and steps (with noise from the config), latency from FLOPs."""
    family = config["family"]
    data = data_of(family)
    flops_train = float(exact_costs(family, [config], data, "flops_train")[0])
    flops = float(exact_costs(family, [config], data, "flops")[0])
    steps = math.ceil(data.train_samples / config["batch_size"])
    jitter = 1.0 + 0.05 * math.sin(len(str(config)))
    size = sum(config["out_channels"]) if family == "cnn" else sum(config["hidden_mlp"]) + 1
    acc = 0.95 - abs(size - 300) / 3000 - 0.02 * abs(math.log10(config["lr"]) + 3)
    return Evaluation(config=config, best_val_acc=min(acc, 0.999), t_tr=(1e-9 * flops_train + 1e-3 * steps) * jitter,
                      latency=(1e-8 * flops + 1e-5) * jitter)


def settings(family="mlp", penalize="t_tr", **kw):
    refs = {"t_tr_ref": 0.05} if penalize == "t_tr" else {"latency_ref": 1e-4}
    base = dict(family=family, objective=Objective(wc=1.0, penalize=penalize, **refs), prior_points=3, steps=3,
                explore=120, search_epochs=2, seed=1, stage2_order=(), training_prior_points=2, training_steps=2,
                model="composite", space=CNNSpace(num_conv_layers=(3, 6)) if family == "cnn" else MLPSpace(),
                training_space=TrainingSpace(), strategy="joint", data_shape=data_of(family))
    base.update(kw)
    return SearchSettings(**base)


def run(search, stop_after=None):
    told = 0
    while not search.finished:
        for p in search.ask(1):
            if stop_after is not None and told >= stop_after:
                return
            search.tell(p.trial_id, timing(p.config))
            told += 1


def mlp_configs(n, seed):
    space, training = MLPSpace(), TrainingSpace()
    return [complete_config({**a, **b, "family": "mlp"})
            for a, b in zip(space.sample(n, seed=seed, method="random"), training.sample(n, seed=seed + 1, method="random"))]


# ------------------------------------------------------------------ the model
@pytest.mark.parametrize("penalize", ["t_tr", "latency"])
def test_predictions_equal_a_regression_fitted_by_hand(penalize):
    observed, candidates = mlp_configs(12, 0), mlp_configs(30, 5)
    y = np.log10([getattr(timing(c), penalize) for c in observed])
    y[3] = np.nan  # a failed trial: not in the fit
    model = RegressionCostModel("mlp", MLP_DATA, penalize)
    query = CostQuery(candidates=candidates, complete=None, observed=observed, log_costs=y, shared=None)
    mean, var = model.predict(query)
    columns = [FEATURE_NAMES[penalize].index(name) for name in REGRESSION_FEATURES[penalize]]
    X = cost_features("mlp", observed, MLP_DATA, penalize)[:, columns]
    keep = np.isfinite(y)
    hand = BayesianLinearCost().fit(X[keep], y[keep])
    expected_mean, expected_var = hand.predict(cost_features("mlp", candidates, MLP_DATA, penalize)[:, columns])
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(var, expected_var, rtol=1e-12, atol=1e-12)
    assert model.predict(query)[0].tolist() == mean.tolist()  # the cached features of the rows give the same


def test_t_tr_uses_the_first_two_features_and_latency_all_three():
    assert REGRESSION_FEATURES["t_tr"] == FEATURE_NAMES["t_tr"][:2]
    assert REGRESSION_FEATURES["latency"] == FEATURE_NAMES["latency"]
    with pytest.raises(ValueError, match="penalize"):
        RegressionCostModel("mlp", MLP_DATA, "n_params")
    with pytest.raises(ValueError, match="columns"):
        RegressionCostModel("mlp", MLP_DATA, "latency", columns=("log10_steps",))


def test_few_measurements_give_the_prior_and_unbuildable_candidates_a_prohibitive_cost():
    observed, candidates = mlp_configs(3, 0), mlp_configs(5, 5)
    model = RegressionCostModel("mlp", MLP_DATA, "t_tr")
    query = CostQuery(candidates=candidates, complete=None, observed=observed, log_costs=np.full(3, np.nan), shared=None)
    mean, var = model.predict(query)
    assert mean.tolist() == [0.0] * 5 and var.tolist() == [1.0] * 5
    one = CostQuery(candidates=candidates, complete=None, observed=observed, log_costs=np.array([np.nan, -0.5, np.nan]),
                    shared=None)
    mean, var = model.predict(one)
    assert mean.tolist() == [-0.5] * 5 and var.tolist() == [1.0] * 5
    cnn = RegressionCostModel("cnn", CNN_DATA, "t_tr")
    good = complete_config({"family": "cnn", "out_channels": [8, 16, 16]})
    bad = {**good, "shortcuts": [0, 0, 1]}  # a shortcut past the last layer: cannot be built
    query = CostQuery(candidates=[good, bad], complete=None, observed=[good, {**good, "batch_size": 64}],
                      log_costs=np.array([-1.0, -0.5]), shared=None)
    mean, var = cnn.predict(query)
    assert mean[1] == UNBUILDABLE_LOG_COST and var[1] == 0 and math.isfinite(mean[0]) and var[0] > 0


def test_cost_model_choice_for_measured_times():
    t_tr, latency = Objective(wc=1.0, penalize="t_tr"), Objective(wc=1.0, penalize="latency")
    assert isinstance(cost_model_for(t_tr, "mlp", MLP_DATA), RegressionCostModel)  # no reference needed
    assert isinstance(cost_model_for(latency, "cnn", CNN_DATA), RegressionCostModel)
    assert isinstance(cost_model_for(t_tr), GPCostModel)  # no family or data shape (LCBench, ask/tell)
    assert isinstance(cost_model_for(t_tr, "mlp", None), GPCostModel)
    assert isinstance(cost_model_for(Objective(wc=1.0, penalize="n_params", n_params_ref=1e5), "mlp", MLP_DATA),
                      ExactCostModel)


# ------------------------------------------------------------------ pool shortcuts
@pytest.mark.parametrize("family", ["mlp", "cnn"])
@pytest.mark.parametrize("strategy", ["joint", "revisit", "train-first"])
def test_pool_shortcuts_equal_the_features_of_the_complete_configurations(strategy, family, monkeypatch):
    used, shortcut = {}, rcm.checked_pool_values

    def compared(query, fam, of_table, of_configs):
        values = shortcut(query, fam, of_table, of_configs)
        kind = type(query.candidates).__name__ + "/" + getattr(query.space, "family", "?")
        used.setdefault(kind, []).append(values is not None)
        if values is not None:
            slow = of_configs(rcm.complete_configs(query, range(len(query.candidates))))
            np.testing.assert_array_equal(values, slow)
        return values

    monkeypatch.setattr(rcm, "checked_pool_values", compared)
    for penalize in ("t_tr", "latency"):
        search = StagedSearch.from_settings(settings(family, penalize, strategy=strategy), settings(family).space,
                                            TrainingSpace())
        run(search)
    assert all(any(flags) for flags in used.values()), used  # every kind of pool took its shortcut at least once
    expected = {"joint": {"PoolCandidates/joint", "WithFixedPart/joint"},
                "revisit": {"PoolCandidates/" + family, "PoolCandidates/training"},
                "train-first": {"PoolCandidates/" + family, "PoolCandidates/training"}}[strategy]
    assert expected <= set(used), used


def test_a_composite_search_with_a_data_shape_regresses_its_times():
    search = StagedSearch.from_settings(settings(), MLPSpace(), TrainingSpace())
    run(search)
    models = [stage._gp.cost_model for stage in search._stages.values() if isinstance(getattr(stage, "_gp", None), CompositeGP)]
    assert models and all(isinstance(m, RegressionCostModel) for m in models if m is not None)
    assert any(isinstance(m, RegressionCostModel) for m in models)
    assert math.isfinite(search.result().best.loss)
    without = StagedSearch.from_settings(settings(data_shape=None), MLPSpace(), TrainingSpace())
    run(without)
    assert [t.config for t in without.trials] != [t.config for t in search.trials]  # the model changes the picks


@pytest.mark.parametrize("stop_after", [5, 9])
def test_resume_of_a_search_with_the_regression_model_replays_the_same_picks(tmp_path, stop_after):
    s = settings(family="cnn", penalize="t_tr", strategy="joint")
    reference = StagedSearch.from_settings(s, s.space, TrainingSpace())
    run(reference)
    path = tmp_path / "journal.jsonl"
    interrupted = StagedSearch.from_settings(s, s.space, TrainingSpace(), journal=path)
    run(interrupted, stop_after=stop_after)
    resumed = StagedSearch.resume(Journal(path).read(), s, s.space, TrainingSpace(), journal=path)  # strict replay
    for p in resumed.pending:
        resumed.tell(p.trial_id, timing(p.config))
    run(resumed)
    assert [t.config for t in resumed.trials] == [t.config for t in reference.trials]


def test_resume_with_a_pending_batch_under_the_regression_model(tmp_path):
    s = settings(family="mlp", penalize="latency", strategy="joint")
    path = tmp_path / "journal.jsonl"
    search = StagedSearch.from_settings(s, s.space, TrainingSpace(), journal=path)
    for p in search.ask(4):  # past the prior points: BO picks with pending fantasies (believed costs) follow
        search.tell(p.trial_id, timing(p.config))
    batch = search.ask(3)
    assert len(batch) == 3 and len({str(p.config) for p in batch}) == 3
    search.tell(batch[1].trial_id, timing(batch[1].config))
    resumed = StagedSearch.resume(Journal(path).read(), s, s.space, TrainingSpace(), journal=path)
    assert [p.trial_id for p in resumed.pending] == [batch[0].trial_id, batch[2].trial_id]
    assert resumed.ask(2) == search.ask(2)
    assert isinstance(search._stages[1]._gp.cost_model, RegressionCostModel)


@pytest.mark.parametrize("layers", [(2, 1, 1), (1, 0, 0), (1, 1, 0)])
def test_a_revisit_pool_with_carried_layer_choices_takes_the_shortcut(layers):
    from lightning_dnc.search.stages.bo import PoolCandidates
    from lightning_dnc.search.stages.exact_cost_model import checked_pool_values, complete_configs
    from lightning_dnc.search.stages.strategies import carry_choices
    from lightning_dnc.space.cost_features import table_features
    from lightning_dnc.space.exact_costs import costs_from_table

    stride, bn, dropout = layers
    space, data = CNNSpace(num_conv_layers=(3, 6)), DataShape((3, 32, 32), 10, 5000)
    winner = complete_config({"family": "cnn", "out_channels": [16, 32, 32], "strides": [stride] * 3,
                              "apply_bns": [bn] * 3, "apply_dropouts": [dropout] * 3, "act": "tanh", "lr": 0.01,
                              "weight_decay": 0.0, "batch_size": 77, "epochs": 2})
    pool = space.pool_arrays(200, 3)
    query = CostQuery(candidates=PoolCandidates(pool, list(range(200))), observed=[], log_costs=np.zeros(0),
                      complete=lambda sample: complete_config(carry_choices(winner, sample), family="cnn"),
                      shared=None, space=space)
    every = complete_configs(query, range(200))
    for penalize in ("t_tr", "latency"):
        model = RegressionCostModel("cnn", data, penalize)
        fast = checked_pool_values(query, "cnn", lambda t: table_features(t, data, penalize, model.columns),
                                   model.features)
        assert fast is not None
        np.testing.assert_array_equal(fast, model.features(every))
    for measure in ("n_params", "flops"):
        fast = checked_pool_values(query, "cnn", lambda t: costs_from_table(t, data, measure),
                                   lambda configs: exact_costs("cnn", configs, data, measure))
        assert fast is not None
        np.testing.assert_array_equal(fast, exact_costs("cnn", every, data, measure))
