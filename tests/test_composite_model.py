"""The composite model (issue 22): composite EI, the shared-factor cost model, settings, resume."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lightning_dnc.gp import GaussianProcess
from lightning_dnc.gp.composite import composite_expected_improvement, composite_values
from lightning_dnc.search import Evaluation, Objective, StagedSearch
from lightning_dnc.search.core.settings import SearchSettings, normalise_header_settings
from lightning_dnc.search.journal.same_search import header_changes
from lightning_dnc.search.stages.composite import COST_VARIANCE_FACTOR, CompositeGP, CostQuery, GPCostModel, SharedFactor
from lightning_dnc.space import MLPSpace, TrainingSpace
from lightning_dnc.validation import SettingError


def synthetic(config):
    """Accuracy peaks at ~300 hidden units; cost grows with size and shrinks with the batch size."""
    size = sum(config["hidden_mlp"]) + 1
    acc = 0.9 - abs(size - 300) / 3000 - 0.05 * abs(math.log10(config["lr"]) + 3) / 4
    t_tr = (1.0 + size / 200) * 256 / config["batch_size"]
    return Evaluation(config=config, best_val_acc=min(acc, 0.999), t_tr=t_tr, n_params=100 * size)


def make(path=None, **kw):
    settings = dict(prior_points=4, steps=4, explore=200, epochs=2, seed=3, journal=path, stage2_order=[],
                    training_prior_points=2, training_steps=3, model="composite")
    settings.update(kw)
    return StagedSearch("mlp", MLPSpace(), TrainingSpace(), Objective(wc=1.0), **settings)


def run(search, stop_after=None, batch=1):
    told = 0
    while not search.finished:
        for p in search.ask(batch):
            if stop_after is not None and told >= stop_after:
                return
            search.tell(p.trial_id, synthetic(p.config))
            told += 1


# ------------------------------------------------------------------ the numbers
def test_composite_ei_equals_a_brute_force_monte_carlo_reference():
    rng = np.random.default_rng(0)
    mean_a, mean_c = rng.uniform(-2, -0.5, 8), rng.uniform(-1.5, 0.0, 8)
    var_a, var_c = rng.uniform(0.01, 0.3, 8), rng.uniform(0.0, 0.05, 8)
    var_c[0] = 0.0  # an exactly known cost
    wc, best, xi = 0.3, -0.9, 1e-4
    ei = composite_expected_improvement(mean_a, var_a, mean_c, var_c, wc, best, xi)
    z = np.random.default_rng(1).standard_normal((2, 2_000_000))
    ref = np.array([np.maximum(best - xi - np.log10(10 ** (ma + math.sqrt(va) * z[0]) + wc * 10 ** (mc + math.sqrt(vc) * z[1])),
                               0).mean() for ma, va, mc, vc in zip(mean_a, var_a, mean_c, var_c)])
    assert np.sum(ref > 1e-3) >= 3  # the toy case has candidates that improve
    np.testing.assert_allclose(ei, ref, rtol=0.03, atol=2e-5)
    assert int(np.argmax(ei)) == int(np.argmax(ref))
    pruned = composite_expected_improvement(mean_a, var_a, mean_c, var_c, wc, best, xi, best_only=True)
    assert int(np.nanargmax(pruned)) == int(np.argmax(ei)) and np.nanmax(pruned) == ei.max()


def test_composite_ei_without_cost_weight_is_the_exact_ei_of_the_error():
    mean, var = np.array([-1.0, -1.3, -0.2]), np.array([0.1, 0.02, 0.5])
    ei = composite_expected_improvement(mean, var, np.zeros(3), np.ones(3), 0.0, -1.2, 1e-4)
    z = (-1.2 - 1e-4 - mean) / np.sqrt(var)
    from scipy.stats import norm

    np.testing.assert_allclose(ei, (-1.2 - 1e-4 - mean) * norm.cdf(z) + np.sqrt(var) * norm.pdf(z), atol=1e-12)
    assert composite_values(np.array([-1.0]), np.array([0.0]), 0.1)[0] == pytest.approx(math.log10(0.1 + 0.1))


def test_gp_cost_model_is_a_second_target_on_the_same_factor():
    space = TrainingSpace()
    configs = space.sample(8, seed=1, method="random")
    candidates = space.sample(30, seed=2, method="random")
    losses = np.linspace(-1.5, -0.5, 8)
    log_costs = np.log10([c["batch_size"] for c in configs]) - 2
    gp = GaussianProcess(space)
    gp.observe(configs, losses)
    k_star = gp.cross(candidates)
    unit_var = gp.moments(k_star)[1]
    query = CostQuery(candidates=candidates, complete=None, observed=configs, log_costs=log_costs,
                      shared=SharedFactor(gp, k_star, unit_var))
    mean, var = GPCostModel().predict(query)
    alone = GaussianProcess(space)  # the same kernel fitted to the costs alone: the same mean
    alone.observe(configs, log_costs)
    alone_mean, alone_var = alone.predict(candidates)
    np.testing.assert_allclose(mean, alone_mean, atol=1e-10)
    np.testing.assert_allclose(var, alone_var * max(alone.signal_variance(), 1e-3) * COST_VARIANCE_FACTOR, atol=1e-10)
    # an unmeasured row (failed trial) is neutral, not an error
    log_costs[3] = np.nan
    assert np.all(np.isfinite(GPCostModel().predict(
        CostQuery(candidates, None, configs, log_costs, SharedFactor(gp, k_star, unit_var)))[0]))


# ------------------------------------------------------------------ the search
def test_composite_search_runs_with_batches_and_uses_its_model():
    search = make()
    assert search.search_settings.model == "composite"
    gp = search._stages[1]._gp  # noqa: SLF001 - the stage's model
    assert isinstance(gp, CompositeGP)
    run(search, batch=3)
    configs = [str(t.config) for t in search.trials]
    assert len(configs) == len(set(configs))  # pending fantasies keep a batch distinct
    assert search.result().best_config is not None
    scalar = make(model="scalar")
    run(scalar, batch=3)
    assert [t.config for t in scalar.trials] != [t.config for t in search.trials]


def test_composite_search_with_failed_trials_and_other_strategies_finishes():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_golden_proposals import synthetic_evaluation

    for strategy in ("joint", "revisit", "train-first"):
        search = StagedSearch("mlp", MLPSpace(num_hidden_layers=(0, 2)), TrainingSpace(), Objective(wc=0.1),
                              prior_points=3, steps=3, explore=60, epochs=2, seed=2, training_prior_points=2,
                              training_steps=3, strategy=strategy, model="composite")
        while not search.finished:
            for p in search.ask(2):
                search.tell(p.trial_id, synthetic_evaluation(p.config, True))
        assert any(t.state == "failed" for t in search.trials)
        assert search.result().best_config is not None


def test_composite_at_wc_zero_proposes_what_the_scalar_model_proposes():
    configs = {}
    for model in ("composite", "scalar"):
        search = StagedSearch("mlp", MLPSpace(), TrainingSpace(), Objective(wc=0.0), prior_points=3, steps=4,
                              explore=200, epochs=2, seed=1, stage2_order=[], training_prior_points=2,
                              training_steps=2, model=model)
        run(search)
        configs[model] = [t.config for t in search.trials]
    assert configs["composite"] == configs["scalar"]


@pytest.mark.parametrize("stop_after", [5, 9])
def test_resume_of_a_composite_search_replays_the_same_picks(tmp_path, stop_after):
    reference = make(None)
    run(reference)
    path = tmp_path / "journal.jsonl"
    interrupted = make(path)
    run(interrupted, stop_after=stop_after)
    resumed = StagedSearch.from_journal(path)
    assert resumed.search_settings.model == "composite"
    for p in resumed.pending:
        resumed.tell(p.trial_id, synthetic(p.config))
    run(resumed)
    assert [t.config for t in resumed.trials] == [t.config for t in reference.trials]


def test_resume_of_a_composite_search_with_a_pending_batch(tmp_path):
    path = tmp_path / "journal.jsonl"
    search = make(path)
    for p in search.ask(6):  # past the prior points: BO picks with pending fantasies follow
        search.tell(p.trial_id, synthetic(p.config))
    batch = search.ask(3)
    search.tell(batch[1].trial_id, synthetic(batch[1].config))
    resumed = StagedSearch.from_journal(path)
    assert [p.trial_id for p in resumed.pending] == [batch[0].trial_id, batch[2].trial_id]
    assert resumed.ask(2) == search.ask(2)


# ------------------------------------------------------------------ settings
def test_model_setting_is_validated_and_defaulted():
    with pytest.raises(SettingError, match=r"`model` must be one of \['composite', 'scalar'\]") as err:
        SearchSettings(model="gp")
    assert err.value.name == "model"
    with pytest.raises(SettingError, match="strategy other than 'paper'"):
        SearchSettings(model="composite", strategy="paper")
    with pytest.raises(SettingError, match="`model='composite'`"):
        SearchSettings(model="composite", fidelity="asha", search_epochs=9)
    paper = StagedSearch("mlp", MLPSpace(), TrainingSpace(), strategy="paper", prior_points=2, steps=0)
    assert paper.search_settings.model == "scalar"
    assert make().header()["settings"]["model"] == "composite"


def test_journals_without_a_model_resume_as_scalar():
    assert normalise_header_settings({"strategy": "joint"})["model"] == "scalar"
    old = {"settings": {"strategy": "joint"}}
    assert header_changes(old, {"settings": {"strategy": "joint", "model": "scalar"}}) == []
    changes = header_changes(old, {"settings": {"strategy": "joint", "model": "composite"}})
    assert [(c.name, c.stored, c.now) for c in changes] == [("model", "scalar", "composite")]


# ------------------------------------------------------------------ the front doors
def test_cli_accepts_model_and_rejects_bad_values(tmp_path, capsys):
    from lightning_dnc import cli
    from lightning_dnc.cli.parser import build_parser
    from lightning_dnc.cli.plan import resolve_run

    args = build_parser().parse_args(["fit", "--family", "mlp", "--model", "composite", "--out", str(tmp_path / "a")])
    assert resolve_run(args.fit).settings.model == "composite"
    args = build_parser().parse_args(["fit", "--family", "mlp", "--out", str(tmp_path / "b")])
    assert resolve_run(args.fit).settings.model is None  # the package default, filled in when the search starts
    assert cli.main(["fit", "--out", str(tmp_path / "never"), "--model", "gp"]) == 2
    assert "expected one of composite, scalar" in capsys.readouterr().err
    assert cli.main(["fit", "--out", str(tmp_path / "never"), "--model", "composite", "--strategy", "paper"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--model" in err[0] and "paper" in err[0]
    assert not (tmp_path / "never").exists()


def test_tuner_passes_model_to_the_settings():
    import lightning_dnc as dnc

    assert dnc.DeepNCheapTuner(model="composite").settings.model == "composite"
    with pytest.raises(SettingError, match="`model` must be one of"):
        dnc.DeepNCheapTuner(model="gp")
