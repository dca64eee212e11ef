"""GP core: kernels vs naive twins, kernel properties, Cholesky updates, posterior, EI, fitting."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal

import naive
from lightning_dnc.gp import CholeskyFallbackWarning, EncodedConfigs, GaussianProcess, GrowingCholesky, cross_covariance
from lightning_dnc.gp import _compiled, cholesky
from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace

ATOL = 1e-12

SPACES = {
    "cnn": CNNSpace(),
    "cnn-small": CNNSpace(num_conv_layers=(1, 5), channels_first=(3, 10), channels_upper=40, omega=1.7),
    "mlp": MLPSpace(),
    "mlp-wide": MLPSpace(num_hidden_layers=(1, 4), hidden_nodes=(1, 1000), omega=0.5),
    "training": TrainingSpace(),
    "training-weighted": TrainingSpace(
        lr=(1e-4, 1e-2), omega={"lr": 1.0, "batch_size": 5.0}, weights={"lr": 3.0, "weight_decay": 1.0, "batch_size": 0.5}
    ),
}


def _both(space, n_a, n_b, seed):
    return space.sample(n_a, seed=seed, method="random"), space.sample(n_b, seed=seed + 1, method="random")


# ---------------------------------------------------------------- kernels vs twins
@pytest.mark.parametrize("name", list(SPACES))
def test_kernel_matches_naive_twins(name):
    space = SPACES[name]
    a, b = _both(space, 60, 45, seed=11)
    a += space.sample(20)  # Sobol points too
    got = space.covariance(a, b)
    assert got.shape == (80, 45) and got.dtype == np.float64
    np.testing.assert_allclose(got, naive.covariance_pairwise(space, a, b), rtol=0, atol=ATOL)
    np.testing.assert_allclose(
        got, naive.covariance_numpy(space, naive.numpy_arrays(space, a), naive.numpy_arrays(space, b)), rtol=0, atol=ATOL
    )


@pytest.mark.parametrize("name", list(SPACES))
def test_serial_and_parallel_kernels_agree_exactly(name):
    space = SPACES[name]
    a, b = _both(space, 150, 170, seed=2)
    ea, eb = space.encode(a), space.encode(b)
    om, w = space.hyperparameter_arrays()
    serial = cross_covariance(ea, eb, om, w, parallel=False)
    assert np.array_equal(serial, cross_covariance(ea, eb, om, w, parallel=True))
    assert np.array_equal(serial, cross_covariance(ea, eb, om, w))


@pytest.mark.parametrize("name", list(SPACES))
def test_kernel_properties_symmetric_psd_unit_diagonal(name):
    space = SPACES[name]
    x = space.sample(120, seed=5, method="random") + space.sample(30)
    x.append(x[0])  # a duplicate
    k = space.covariance(x)
    assert np.array_equal(k, k.T)  # exactly symmetric
    assert np.all(np.diag(k) == 1.0)  # exactly 1 on identical configs
    assert k[0, -1] == 1.0
    assert np.all((k > 0) & (k <= 1.0))
    assert np.linalg.eigvalsh(k).min() > -1e-9


def test_cnn_kernel_edge_cases():
    space = CNNSpace()
    short, long = {"out_channels": [16] * 4}, {"out_channels": [16] * 8}
    k = space.covariance([short], [long])[0, 0]
    assert k == pytest.approx((4 + 4 * math.exp(-4.5)) / 8, abs=1e-15)
    assert k == pytest.approx(naive.cnn_kernel_pair(space, short, long), abs=1e-15)
    # the per-layer range doubles: the same difference matters less in later layers
    a, b = {"out_channels": [16, 32, 64, 128]}, {"out_channels": [26, 42, 74, 138]}
    assert space.covariance([a], [b])[0, 0] == pytest.approx(naive.cnn_kernel_pair(space, a, b), abs=1e-15)
    # degenerate ranges (lo == hi on every layer): only depth differences matter
    flat = CNNSpace(num_conv_layers=(2, 4), channels_first=(8, 8), channels_upper=8)
    cfgs = [{"out_channels": [8] * n} for n in (2, 3, 4)]
    k = flat.covariance(cfgs)
    assert k[0, 0] == 1.0 and k[0, 2] == pytest.approx((2 + 2 * math.exp(-4.5)) / 4, abs=1e-15)
    np.testing.assert_allclose(k, naive.covariance_pairwise(flat, cfgs, cfgs), rtol=0, atol=ATOL)


def test_mlp_kernel_edge_cases():
    space = MLPSpace()
    none, one = {"hidden_mlp": []}, {"hidden_mlp": [20]}
    k = space.covariance([none, none, one])
    assert k[0, 1] == 1.0 and k[0, 0] == 1.0
    assert k[0, 2] == pytest.approx(naive.mlp_kernel_pair(space, none, one), abs=1e-15)
    # same total, different layer counts: only the layer-count kernel differs
    a, b = {"hidden_mlp": [200, 200]}, {"hidden_mlp": [400]}
    assert space.covariance([a], [b])[0, 0] == pytest.approx((1 + math.exp(-9 / 2 / 4)) / 2, abs=1e-15)
    fixed = MLPSpace(num_hidden_layers=(0, 0))
    assert np.array_equal(fixed.covariance([none, none]), np.ones((2, 2)))
    fixed2 = MLPSpace(num_hidden_layers=(2, 2), hidden_nodes=(50, 50))
    assert fixed2.covariance([{"hidden_mlp": [50, 50]}], [{"hidden_mlp": [50, 40]}])[0, 0] == pytest.approx(
        naive.mlp_kernel_pair(fixed2, {"hidden_mlp": [50, 50]}, {"hidden_mlp": [50, 40]}), abs=1e-15
    )


def test_training_kernel_edge_cases():
    space = TrainingSpace()
    zero = {"lr": 1e-3, "weight_decay": 0.0, "batch_size": 64}
    lowest = {"lr": 1e-3, "weight_decay": 1e-6, "batch_size": 64}
    assert space.covariance([zero], [lowest])[0, 0] == 1.0  # weight decay 0 maps to the lower end
    other = {"lr": 1e-2, "weight_decay": 1e-4, "batch_size": 500}
    assert space.covariance([zero], [other])[0, 0] == pytest.approx(naive.training_kernel_pair(space, zero, other), abs=1e-15)
    degenerate = TrainingSpace(lr=(1e-3, 1e-3), weight_decay=(1e-4, 1e-4), batch_size=(64, 64))
    cfgs = degenerate.sample(4, method="random") + [{"lr": 1e-3, "weight_decay": 0.0, "batch_size": 64}]
    assert np.array_equal(degenerate.covariance(cfgs), np.ones((5, 5)))


def test_kernel_rejects_bad_hyperparameters_and_mixed_layouts():
    space = TrainingSpace()
    enc = space.encode(space.sample(3))
    with pytest.raises(ValueError, match=r"`omega` must be a positive number or 3 positive numbers.*\[1.0, 2.0\]"):
        cross_covariance(enc, enc, [1.0, 2.0])
    with pytest.raises(ValueError, match=r"`omega`.*-1.0"):
        cross_covariance(enc, enc, -1.0)
    with pytest.raises(ValueError, match=r"`weights` must be 3 non-negative numbers with a positive sum"):
        cross_covariance(enc, enc, 3.0, [0.0, 0.0, 0.0])
    other = MLPSpace().encode(MLPSpace().sample(3))
    with pytest.raises(ValueError, match=r"different search space.*encode every batch with the same space"):
        cross_covariance(enc, other)
    assert cross_covariance(enc, enc.take([])).shape == (3, 0)


def test_encoded_configs_take_and_concat():
    space = CNNSpace()
    enc = space.encode(space.sample(5))
    both = enc.take([0, 1]).concat(enc.take(slice(2, 5)))
    assert np.array_equal(both.values, enc.values) and np.array_equal(both.lengths, enc.lengths)
    assert len(both) == 5 and both.n_variables == 1
    with pytest.raises(ValueError, match=r"`kind` must be one of"):
        EncodedConfigs("tree", enc.values, enc.lengths, enc.inv_span, enc.root, enc.variable_of, enc.share)


def test_decorator_policy_distinct_serial_and_parallel_kernels():
    pairs = [
        (_compiled.layered_cross_serial, _compiled.layered_cross_parallel),
        (_compiled.columns_cross_serial, _compiled.columns_cross_parallel),
    ]
    for serial, parallel in pairs:
        assert serial.py_func.__name__ != parallel.py_func.__name__
        assert serial.targetoptions.get("parallel") in (None, False) and parallel.targetoptions["parallel"] is True
        assert serial._cache.__class__.__name__ != "NullCache" and parallel._cache.__class__.__name__ != "NullCache"


# ---------------------------------------------------------------- Cholesky
@pytest.mark.parametrize("name", ["cnn", "mlp", "training"])
def test_incremental_cholesky_equals_factor_from_scratch(name):
    space = SPACES[name]
    configs = space.sample(150, seed=8, method="random")
    losses = np.random.default_rng(0).normal(size=150)
    gp = GaussianProcess(space)
    start = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", CholeskyFallbackWarning)  # no fallback on a healthy problem
        for size in (1, 1, 5, 20, 3, 60, 60):  # crosses the initial capacity of 64
            gp.observe(configs[start : start + size], losses[start : start + size])
            start += size
            k = naive.covariance_pairwise(space, configs[:start], configs[:start])
            expected = np.linalg.cholesky(k + 1e-4 * np.eye(start))
            np.testing.assert_allclose(gp.cholesky_factor, expected, rtol=0, atol=1e-9)
    assert gp.n_observed == 150 and np.array_equal(gp.y, losses)


def test_failed_extension_falls_back_to_refactorisation(monkeypatch):
    space = MLPSpace()
    configs = space.sample(6, seed=1, method="random")
    gp = GaussianProcess(space)
    gp.observe(configs[:3], [0.1, 0.2, 0.3])
    monkeypatch.setattr(cholesky._compiled, "cholesky_append_row", lambda *args: 1)
    with pytest.warns(CholeskyFallbackWarning, match=r"Extending the Cholesky factor by observation 3 failed"):
        gp.observe(configs[3:], [0.4, 0.5, 0.6])
    k = naive.covariance_pairwise(space, configs, configs) + 1e-4 * np.eye(6)
    np.testing.assert_allclose(gp.cholesky_factor, np.linalg.cholesky(k), rtol=0, atol=1e-12)


def test_failed_factorisation_leaves_the_gp_unchanged(monkeypatch):
    space = MLPSpace()
    configs = space.sample(5, seed=1, method="random")
    gp = GaussianProcess(space)
    gp.observe(configs[:3], [0.1, 0.2, 0.3])
    factor, mean = gp.cholesky_factor, gp.predict(configs)

    def broken(matrix):
        raise np.linalg.LinAlgError("forced")

    monkeypatch.setattr(cholesky._compiled, "cholesky_append_row", lambda *args: 1)
    monkeypatch.setattr(cholesky.np.linalg, "cholesky", broken)
    with pytest.warns(CholeskyFallbackWarning), pytest.raises(np.linalg.LinAlgError, match=r"increase `noise_var`"):
        gp.observe(configs[3:], [0.4, 0.5])
    monkeypatch.undo()
    assert gp.n_observed == 3 and len(gp.X) == 3
    np.testing.assert_array_equal(gp.cholesky_factor, factor)
    np.testing.assert_array_equal(gp.predict(configs)[0], mean[0])
    gp.observe(configs[3:], [0.4, 0.5])  # and it still works afterwards
    k = naive.covariance_pairwise(space, configs, configs) + 1e-4 * np.eye(5)
    np.testing.assert_allclose(gp.cholesky_factor, np.linalg.cholesky(k), rtol=0, atol=1e-12)


def test_append_row_reports_a_non_positive_pivot():
    buf = np.zeros((2, 2))
    buf[0, 0] = 1.0
    assert _compiled.cholesky_append_row(buf, 1, np.array([1.0]), 1.0, 1e-12) == 1  # [[1,1],[1,1]] is singular
    assert _compiled.cholesky_append_row(buf, 1, np.array([0.5]), 1.0, 1e-12) == 0
    assert buf[1].tolist() == [0.5, math.sqrt(0.75)]


def test_refactorisation_failure_names_the_fix():
    with pytest.raises(np.linalg.LinAlgError, match=r"not positive definite.*increase `noise_var`"):
        GrowingCholesky().reset(np.array([[1.0, 2.0], [2.0, 1.0]]))


# ---------------------------------------------------------------- posterior and EI
@pytest.mark.parametrize("name", list(SPACES))
def test_posterior_matches_dense_solve(name):
    space = SPACES[name]
    obs, cand = _both(space, 25, 200, seed=21)
    y = np.random.default_rng(1).normal(size=25)
    gp = GaussianProcess(space)
    gp.observe(obs[:10], y[:10])
    gp.observe(obs[10:], y[10:])
    assert gp.mean_value == pytest.approx(y.mean(), abs=1e-15)
    mean, var = gp.predict(cand)
    k_xx = naive.covariance_pairwise(space, obs, obs)
    k_sx = naive.covariance_pairwise(space, cand, obs)
    exp_mean, exp_var = naive.posterior_dense(k_xx, k_sx, y, 1e-4)
    np.testing.assert_allclose(mean, exp_mean, rtol=0, atol=1e-8)
    np.testing.assert_allclose(var, exp_var, rtol=0, atol=1e-8)
    assert mean.shape == var.shape == (200,) and np.all(var >= 0)
    ei = gp.expected_improvement(cand)
    np.testing.assert_allclose(ei, naive.expected_improvement_closed_form(mean, var, y.min(), 1e-4), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(ei, gp.expected_improvement(space.encode(cand)), rtol=0, atol=0)
    assert np.all(ei >= -1e-4)


def test_mean_is_recomputed_on_every_observe():
    space = MLPSpace()
    gp = GaussianProcess(space)
    mean, var = gp.predict(space.sample(3))
    assert np.array_equal(mean, np.zeros(3)) and np.array_equal(var, np.ones(3))  # the prior
    first, second = space.sample(2), space.sample(1, method="random")
    gp.observe(first, [1.0, 3.0])
    assert gp.mean_value == 2.0
    gp.observe(second, [10.0])
    assert gp.mean_value == pytest.approx(14 / 3)
    far = [{"hidden_mlp": [400, 400]}]
    obs = first + second
    expected, _ = naive.posterior_dense(
        naive.covariance_pairwise(space, obs, obs), naive.covariance_pairwise(space, far, obs), np.array([1.0, 3.0, 10.0]), 1e-4
    )
    assert gp.predict(far)[0][0] == pytest.approx(expected[0], abs=1e-10)


def test_observe_refuses_nan_inf_and_length_mismatch():
    space = TrainingSpace()
    gp = GaussianProcess(space)
    gp.observe(space.sample(2), [0.5, 0.4])
    with pytest.raises(ValueError, match=r"`losses` must be finite; got \[nan, inf\] at positions \[1, 2\]"):
        gp.observe(space.sample(3, method="random"), [0.1, float("nan"), float("inf")])
    with pytest.raises(ValueError, match=r"one value per configuration \(2\), got 3"):
        gp.observe(space.sample(2, method="random"), [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"single dict"):
        gp.observe(space.sample(1)[0], [0.1])
    with pytest.raises(ValueError, match=r"different search space"):
        gp.predict(MLPSpace().encode(MLPSpace().sample(2)))
    assert gp.n_observed == 2 and len(gp.X) == 2  # refused calls leave the GP unchanged
    gp.observe([], [])
    assert gp.n_observed == 2


def test_variance_is_clipped_at_zero_and_small_at_observations():
    space = CNNSpace()
    obs = space.sample(8)
    gp = GaussianProcess(space, noise_var=0.0)
    gp.observe(obs, np.linspace(0, 1, 8))
    mean, var = gp.predict(obs)
    assert np.all(var >= 0) and np.all(var < 1e-8)
    np.testing.assert_allclose(mean, np.linspace(0, 1, 8), atol=1e-6)


def test_expected_improvement_closed_form_and_zero_sigma():
    mean = np.array([0.0, 0.5, 1.0, 0.2, -1.0])
    var = np.array([0.0, 0.0, 0.25, 1e-3, 4.0])
    got = _compiled.expected_improvement_from_moments(mean, var, 0.3, 1e-4)
    np.testing.assert_allclose(got, naive.expected_improvement_closed_form(mean, var, 0.3, 1e-4), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got, naive.expected_improvement_pairwise(mean, var, 0.3, 1e-4), rtol=1e-12, atol=1e-15)
    assert got[0] == pytest.approx((0.3 - 1e-4) / 2)  # sigma = 0: Z = 0, EI = imp * Phi(0)
    with pytest.raises(ValueError, match=r"needs at least one observation"):
        GaussianProcess(MLPSpace()).expected_improvement(MLPSpace().sample(2))


def test_gp_constructor_validation():
    with pytest.raises(ValueError, match=r"`noise_var` must be a finite number >= 0, got -1.0"):
        GaussianProcess(MLPSpace(), noise_var=-1.0)
    with pytest.raises(ValueError, match=r"`omega_bounds`.*\(0.0, 1.0\)"):
        GaussianProcess(MLPSpace(), omega_bounds=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"`omega` must be a positive number or 3"):
        GaussianProcess(TrainingSpace(), omega=[1.0, 2.0])
    gp = GaussianProcess(TrainingSpace(), omega=[1.0, 2.0, 3.0])
    assert gp.omega.tolist() == [1.0, 2.0, 3.0] and gp.weights.tolist() == [1.0, 1.0, 1.0]


def test_fantasies_and_copies_leave_the_original_unchanged():
    space = CNNSpace()
    gp = GaussianProcess(space)
    gp.observe(space.sample(5), [0.1, 0.2, 0.3, 0.4, 0.5])
    cand = space.sample(50, method="random")
    before = gp.predict(cand)
    pending = cand[:2]
    fantasy = gp.with_fantasies(pending, gp.predict(pending)[0])
    assert fantasy.n_observed == 7 and gp.n_observed == 5
    np.testing.assert_array_equal(gp.predict(cand)[0], before[0])
    assert np.all(fantasy.predict(pending)[1] < 1e-3)  # pending points no longer uncertain


def test_log_marginal_likelihood_and_omega_fit():
    space = TrainingSpace()
    x = space.sample(30, seed=3, method="random")
    enc = space.encode(x)
    truth = 0.8 * np.ones(3)
    k = cross_covariance(enc, enc, truth) + 1e-4 * np.eye(30)
    y = np.random.default_rng(4).multivariate_normal(np.zeros(30), k)
    gp = GaussianProcess(space)
    gp.observe(x, y)
    direct = multivariate_normal(mean=np.full(30, y.mean()), cov=space.covariance(x) + 1e-4 * np.eye(30)).logpdf(y)
    assert gp.log_marginal_likelihood() == pytest.approx(direct, rel=1e-9)
    before = gp.log_marginal_likelihood()
    fitted = gp.refit()
    assert np.all((fitted >= 0.1) & (fitted <= 30.0))
    assert gp.log_marginal_likelihood() >= before
    auto = GaussianProcess(space, fit_omega=True)
    auto.observe(x, y)
    np.testing.assert_allclose(auto.omega, fitted, rtol=1e-6)
    with pytest.raises(ValueError, match=r"at least 2 observations"):
        GaussianProcess(space).refit()


def test_gp_package_never_imports_torch_or_lightning():
    code = (
        "import sys\n"
        "from lightning_dnc.gp import GaussianProcess\n"
        "from lightning_dnc.space import CNNSpace\n"
        "s = CNNSpace(); gp = GaussianProcess(s); gp.observe(s.sample(3), [1.0, 2.0, 3.0])\n"
        "gp.expected_improvement(s.sample(10, method='random'))\n"
        "print([m for m in ('torch', 'lightning', 'sklearn') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
