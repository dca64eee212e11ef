"""The cost model of measured costs (gp/cost_regression) and its exact features (space/cost_features)."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_dnc.gp.cost_regression import BayesianLinearCost
from lightning_dnc.space.cost_features import FEATURE_NAMES, cost_features
from lightning_dnc.space.exact_costs import DataShape, exact_costs


def test_recovers_a_noisy_linear_map_with_calibrated_variance() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    w = np.array([1.0, -0.5, 0.0])
    y = 2.0 + X @ w + rng.normal(scale=0.1, size=400)
    model = BayesianLinearCost().fit(X[:300], y[:300])
    mean, var = model.predict(X[300:])
    assert np.sqrt(np.mean((mean - y[300:]) ** 2)) < 0.12
    assert 0.9 <= np.mean(np.abs(mean - y[300:]) <= 2 * np.sqrt(var)) <= 1.0
    assert 1 / model.beta == pytest.approx(0.01, rel=0.3)  # the noise variance it estimated


def test_few_points_are_uncertain_and_one_point_predicts_its_value() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 5))
    y = X[:, 0] + rng.normal(scale=0.05, size=40)
    few = BayesianLinearCost().fit(X[:4], y[:4]).predict(X[20:])[1]
    many = BayesianLinearCost().fit(X[:20], y[:20]).predict(X[20:])[1]
    assert few.mean() > many.mean()
    mean, var = BayesianLinearCost(prior_var=0.5).fit(X[:1], y[:1]).predict(X[1:3])
    assert np.all(mean == y[0]) and np.all(var == 0.5)
    constant = BayesianLinearCost(noise_floor=1e-4).fit(X[:10], np.full(10, 3.0)).predict(X[10:12])
    assert np.allclose(constant[0], 3.0) and np.all(constant[1] >= 1e-4)  # the noise floor


def test_bad_input_is_refused() -> None:
    model = BayesianLinearCost()
    with pytest.raises(ValueError, match="fit"):
        model.predict(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="finite"):
        model.fit(np.array([[np.nan]]), np.array([1.0]))
    with pytest.raises(ValueError, match="features"):
        model.fit(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="noise_floor"):
        BayesianLinearCost(noise_floor=0.0)
    model.fit(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match=r"\(m, 2\)"):
        model.predict(np.zeros((1, 3)))


def test_features_are_the_exact_counts() -> None:
    data = DataShape((1, 8, 8), 10, 1000)
    configs = [{"hidden_mlp": [30, 20], "batch_size": 64}, {"hidden_mlp": [], "batch_size": 1000}]
    X = cost_features("mlp", configs, data, "t_tr")
    assert X.shape == (2, len(FEATURE_NAMES["t_tr"]))
    assert np.array_equal(X[:, 0], np.log10(exact_costs("mlp", configs, data, "flops_train")))
    assert np.array_equal(X[:, 1], np.log10([16, 1]))  # ceil(1000 / 64) steps, then one
    assert np.array_equal(X[:, 4], [3, 1])  # Linear layers
    cnn = cost_features("cnn", [{"out_channels": [4, 8, 8, 8]}], data, "latency")
    assert cnn.shape == (1, len(FEATURE_NAMES["latency"])) and cnn[0, 2] == 5
    with pytest.raises(ValueError, match="target"):
        cost_features("mlp", configs, data, "memory")


@pytest.mark.parametrize("family", ["cnn", "mlp"])
def test_pool_table_of_key_rows_equals_the_table_of_the_samples(family: str) -> None:
    from lightning_dnc.space import CNNSpace, MLPSpace
    from lightning_dnc.space.cost_features import pool_table
    from lightning_dnc.space.exact_costs import EXACT_MEASURES, config_table, costs_from_table

    space = CNNSpace(input_size=16) if family == "cnn" else MLPSpace()
    data = DataShape((3, 16, 16), 10, 500) if family == "cnn" else DataShape((20,), 4, 500)
    head = [7] if family == "cnn" else []
    samples = [{**s, "batch_size": 64, "hidden_mlp": head} if family == "cnn" else {**s, "batch_size": 64}
               for s in space.sample(200, seed=3, method="random")]
    from_keys = pool_table(space, space.pool_arrays(200, seed=3).keys, batch_size=64, head=head)
    from_dicts = config_table(family, samples)
    for measure in EXACT_MEASURES:
        assert np.array_equal(costs_from_table(from_keys, data, measure), costs_from_table(from_dicts, data, measure))


def test_with_batch_sizes_is_the_table_of_the_configs_at_those_batch_sizes() -> None:
    from lightning_dnc.space.cost_features import with_batch_sizes
    from lightning_dnc.space.exact_costs import EXACT_MEASURES, config_table, costs_from_table

    data = DataShape((3, 8, 8), 10, 300)
    arch = {"out_channels": [4, 8, 8, 16], "strides": [1, 2, 1, 1], "shortcuts": [1, 0, 0, 0], "hidden_mlp": [9]}
    sizes = np.array([32, 100, 299, 512])
    table = with_batch_sizes(config_table("cnn", [arch]), sizes)
    for measure in EXACT_MEASURES:
        expected = exact_costs("cnn", [{**arch, "batch_size": int(b)} for b in sizes], data, measure)
        assert np.array_equal(costs_from_table(table, data, measure), expected)
    with pytest.raises(ValueError, match="batch_sizes"):
        with_batch_sizes(table, np.array([0.5]))


def test_leave_one_out_equals_refitting_without_the_row() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(15, 2))
    y = X @ np.array([0.5, -0.3]) + rng.normal(scale=0.1, size=15)
    for model in (BayesianLinearCost().fit(X, y), BayesianLinearCost(robust_dof=4.0).fit(X, y)):
        Z = (X - model._center) / model._scale  # the fitted scaling, weights and precisions held fixed
        expected, variances = [], []
        for i in range(15):
            keep = np.arange(15) != i
            A = np.column_stack([np.ones(14), Z[keep]])
            W = model._weights[keep]
            precision = model.beta * (A.T * W) @ A
            precision[1:, 1:] += model.alpha * np.eye(2)  # flat prior on the intercept
            coef = np.linalg.solve(precision, model.beta * (A.T * W) @ y[keep])
            a = np.concatenate([[1.0], Z[i]])
            expected.append(a @ coef)
            variances.append(a @ np.linalg.solve(precision, a))
        mean, var = model.leave_one_out()
        np.testing.assert_allclose(mean, expected, atol=1e-10)
        np.testing.assert_allclose(var, variances, rtol=1e-8)


def test_student_t_noise_keeps_an_outlier_from_pulling_the_line() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(12, 2))
    y = 1.0 + X @ np.array([0.8, 0.2]) + rng.normal(scale=0.02, size=12)
    busy = y.copy()
    busy[3] += np.log10(2.0)  # measured while the machine was busy: twice as slow
    clean = BayesianLinearCost().fit(X, y).predict(X)[0]
    normal = BayesianLinearCost().fit(X, busy).predict(X)[0]
    robust = BayesianLinearCost(robust_dof=4.0).fit(X, busy).predict(X)[0]
    assert np.max(np.abs(robust - clean)) < 0.2 * np.max(np.abs(normal - clean))
    with pytest.raises(ValueError, match="robust_dof"):
        BayesianLinearCost(robust_dof=0.0)


def test_a_constant_target_shrinks_every_weight_and_stops_early():
    X = np.column_stack([np.full(8, 13.0), np.linspace(2.0, 2.9, 8)])
    model = BayesianLinearCost().fit(X, np.full(8, -0.4864))
    assert model.alpha == 1e12 and model.beta == 1e4  # the bounds: no weight, noise at its floor
    mean, var = model.predict(np.array([[13.0, 2.5], [14.0, 1.0]]))
    np.testing.assert_allclose(mean, -0.4864, atol=1e-9)
    assert np.all(var < 2e-4)
