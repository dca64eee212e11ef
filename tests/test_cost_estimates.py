"""Decisions on a denoised cost: the composite model ranks and decides on each trial's estimated t_tr."""

from __future__ import annotations

import json
import math
import zlib

import numpy as np
import pytest

from lightning_dnc.gp.cost_regression import BayesianLinearCost
from lightning_dnc.search import Evaluation, Objective, SearchResult, StagedSearch
from lightning_dnc.gp.cost_regression import ROBUST_DOF
from lightning_dnc.search.core.cost_estimates import CostEstimates, estimate_costs
from lightning_dnc.search.core.settings import SearchSettings
from lightning_dnc.search.core.trial import Trial, config_key
from lightning_dnc.space import MLPSpace, TrainingSpace, complete_config
from lightning_dnc.space.cost_features import cost_features
from lightning_dnc.space.exact_costs import DataShape, exact_costs

DATA = DataShape((64,), 10, 1000)


def true_t_tr(config):
    """A machine whose epoch time is a power law of training FLOPs and steps (what the features model)."""
    flops = float(exact_costs("mlp", [complete_config(config)], DATA, "flops_train")[0])
    steps = math.ceil(DATA.train_samples / config.get("batch_size", 256))
    return 2e-9 * flops ** 0.9 * steps ** 0.3


def noisy(config, salt, cv=0.15):
    """``true_t_tr`` times a deterministic +-cv factor that depends on the run (``salt``) and the config."""
    u = zlib.crc32(f"{salt}:{config_key(config)}".encode()) / 2**32
    return true_t_tr(config) * (1.0 + cv * (2.0 * u - 1.0))


def evaluation(config, salt=0, spread=0.1):
    size = sum(config["hidden_mlp"]) + 1
    acc = min(0.95 - abs(size - 300) / 3000, 0.999)
    t_tr = noisy(config, salt)
    return Evaluation(config=config, best_val_acc=acc, t_tr=t_tr, t_tr_step=t_tr, spread={"t_tr_step": spread * t_tr},
                      n_params=int(exact_costs("mlp", [complete_config(config)], DATA, "n_params")[0]))


def settings(**kw):
    base = dict(family="mlp", objective=Objective(wc=1.0, penalize="t_tr"), prior_points=3, steps=3, explore=100,
                search_epochs=2, seed=1, stage2_order=("ac", "do"), training_prior_points=2, training_steps=2,
                model="composite", space=MLPSpace(), training_space=TrainingSpace(), strategy="joint", data_shape=DATA)
    base.update(kw)
    return SearchSettings(**base)


def run(search, salt=0, stop_after=None):
    told = 0
    while not search.finished and (stop_after is None or told < stop_after):
        for p in search.ask(1):
            search.tell(p.trial_id, evaluation(p.config, salt))
            told += 1
    return search


def trials_of(configs, salt=0, spread=0.1):
    return [Trial(i, 1, c, evaluation(c, salt, spread)) for i, c in enumerate(configs)]


def configs(n=12, seed=3):
    return [complete_config({**c, "family": "mlp", "batch_size": 64 * (1 + i % 4)})
            for i, c in enumerate(MLPSpace().sample(n, seed=seed, method="random"))]


# ------------------------------------------------------------------ the estimates
def test_estimates_shrink_noise_onto_the_regression_line():
    cs = configs(40)
    est = estimate_costs(trials_of(cs), Objective(wc=1.0, penalize="t_tr"), "mlp", DATA)
    features = cost_features("mlp", cs, DATA)[:, :2]
    y = np.log10([noisy(c, 0) for c in cs])
    line = BayesianLinearCost(robust_dof=ROBUST_DOF).fit(features, y).predict(features)[0]
    # the timing spread (10%, 0.041 log10) covers the +-15% uniform noise (sd 0.038): no deviation is left,
    # so an estimate keeps only what the line's own uncertainty allows
    assert est.deviation_sd == 0.0 and est.weight < 0.15 and est.reference_trial == 0
    estimate = np.log10([est.estimate[i] for i in range(len(cs))])
    assert np.all(np.abs(estimate - line) <= 0.3 * np.abs(y - line) + 1e-12)
    raw = np.abs(np.log10([est.measured[i] / true_t_tr(c) for i, c in enumerate(cs)]))
    denoised = np.abs(np.log10([est.estimate[i] / true_t_tr(c) for i, c in enumerate(cs)]))
    assert np.sqrt(np.mean(denoised ** 2)) < 0.5 * np.sqrt(np.mean(raw ** 2))  # closer to the machine's true times


def test_few_trials_keep_more_of_their_measurements_than_many():
    cs = configs(40)
    few = estimate_costs(trials_of(cs[:5]), Objective(wc=1.0, penalize="t_tr"), "mlp", DATA)
    many = estimate_costs(trials_of(cs), Objective(wc=1.0, penalize="t_tr"), "mlp", DATA)
    assert few.weight > 2 * many.weight  # a line through 5 points is not sure enough to overrule a clock


def test_a_configuration_off_the_line_keeps_its_own_measurement_when_the_timing_is_precise():
    cs = configs()
    trials = trials_of(cs, spread=1e-4)  # a precise clock: a deviation from the line is the configuration's own
    est = estimate_costs(trials, Objective(wc=1.0, penalize="t_tr"), "mlp", DATA)
    assert est.weight > 0.99
    for i in range(len(cs)):
        assert est.estimate[i] == pytest.approx(est.measured[i], rel=0.01)


def test_without_a_recorded_spread_decisions_read_the_measurement():
    cs = configs(6)
    trials = [Trial(i, 1, c, Evaluation(config=c, best_val_acc=0.9, t_tr=noisy(c, 0))) for i, c in enumerate(cs)]
    est = estimate_costs(trials, Objective(wc=1.0, penalize="t_tr"), "mlp", DATA)
    assert est.weight == 1.0 and est.estimate == pytest.approx(est.measured)


@pytest.mark.parametrize("objective, family, data", [
    (Objective(wc=0.0, penalize="t_tr"), "mlp", DATA),  # accuracy only
    (Objective(wc=1.0, penalize="n_params", n_params_ref=1e5), "mlp", DATA),  # an exact count
    (Objective(wc=1.0, penalize="t_tr"), "mlp", None),  # no data shape: a user's own data or network
])
def test_no_estimates_where_the_cost_is_exact_unpenalised_or_not_featured(objective, family, data):
    assert estimate_costs(trials_of(configs(6)), objective, family, data) is None


def test_held_out_prediction_is_the_regression_without_the_trial():
    cs = configs(8)
    est = estimate_costs(trials_of(cs), Objective(wc=1.0, penalize="t_tr"), "mlp", DATA)
    model = BayesianLinearCost(robust_dof=ROBUST_DOF).fit(cost_features("mlp", cs, DATA)[:, :2], np.log10([noisy(c, 0) for c in cs]))
    loo = model.leave_one_out()[0]
    assert [math.log10(est.held_out[i]) for i in range(len(cs))] == pytest.approx(list(loo))


# ------------------------------------------------------------------ decisions and the ranking
def test_the_ranking_reads_estimates_and_keeps_the_raw_measurements():
    cs = configs(10)
    trials = trials_of(cs)
    objective = Objective(wc=1.0, penalize="t_tr").with_references(t.evaluation for t in trials)
    est = estimate_costs(trials, Objective(wc=1.0, penalize="t_tr"), "mlp", DATA)
    result = SearchResult(trials, objective, cost_estimates=est)
    for ranked in result.ranking:
        ev = ranked.trial.evaluation
        f_c = est.estimate[ranked.trial_id] / est.estimate[0]
        assert ranked.loss == pytest.approx(math.log10(1 - ev.best_val_acc + f_c))
        assert ranked.to_dict()["cost_estimate"]["measured"] == ev.t_tr  # raw measurement kept
    assert [r.loss for r in result.ranking] == sorted(r.loss for r in result.ranking)
    again = SearchResult.from_json(result.to_json())
    assert again.cost_estimates == est and [r.trial_id for r in again.ranking] == [r.trial_id for r in result.ranking]
    assert result.rescore(wc=0.5).cost_estimates is est  # the same measurements, another weight
    assert result.rescore(penalize="n_params", n_params_ref=1e5).cost_estimates is None


def test_search_decides_on_estimates_and_a_resume_makes_the_same_decisions(tmp_path):
    path = tmp_path / "journal.jsonl"
    reference = run(StagedSearch.from_settings(settings(), MLPSpace(), TrainingSpace()))
    est = reference.cost_estimates
    assert isinstance(est, CostEstimates) and len(est.estimate) == sum(t.evaluation is not None for t in reference.trials)
    for trial in reference.trials:  # every decision reads the denoised loss
        f_c = est.estimate[trial.trial_id] / est.estimate[est.reference_trial]
        assert reference.loss_of(trial) == pytest.approx(math.log10(1 - trial.evaluation.best_val_acc + f_c))
    interrupted = run(StagedSearch.from_settings(settings(), MLPSpace(), TrainingSpace(), journal=path), stop_after=7)
    assert not interrupted.finished
    events = [json.loads(line) for line in path.read_text().splitlines()]
    resumed = StagedSearch.resume(events, settings(), MLPSpace(), TrainingSpace())
    for p in resumed.pending:
        resumed.tell(p.trial_id, evaluation(p.config))
    run(resumed)
    assert [t.config for t in resumed.trials] == [t.config for t in reference.trials]
    assert resumed.result().meta["stage2_decisions"] == reference.result().meta["stage2_decisions"]
    assert resumed.result().cost_estimates == reference.result().cost_estimates
    assert [r.trial_id for r in resumed.result().ranking] == [r.trial_id for r in reference.result().ranking]


def test_scalar_model_and_unknown_data_decide_on_the_measurement():
    for search in (StagedSearch.from_settings(settings(model="scalar"), MLPSpace(), TrainingSpace()),
                   StagedSearch.from_settings(settings(data_shape=None), MLPSpace(), TrainingSpace())):
        run(search)
        assert search.cost_estimates is None and search.result().cost_estimates is None
        trial = next(t for t in search.trials if t.evaluation is not None)
        assert search.loss_of(trial) == search.bound_objective.loss(trial.evaluation)


def test_report_shows_measured_predicted_and_used_cost_of_the_top_trials(tmp_path):
    from lightning_dnc.results.report import write_report

    result = run(StagedSearch.from_settings(settings(), MLPSpace(), TrainingSpace())).result()
    text = write_report(tmp_path, result, None, search_seconds=1.0, wc=1.0, penalize="t_tr").read_text()
    section = text.split("## Measured and modelled t_tr")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| rank")]
    assert len(rows) == min(5, len(result.ranking))
    best = result.cost_estimate(result.best.trial_id)
    assert rows[0].split(" | ")[1] == str(result.best.trial_id)
    assert f"{best['measured']:.4g}" in rows[0] and f"{best['held_out']:.4g}" in rows[0]
    assert f"{best['estimate']:.4g}" in rows[0] and f"{result.best.loss:.4f}" in rows[0]


def test_a_journal_from_before_the_time_model_resumes_as_it_ran(tmp_path):
    from lightning_dnc.search.core.settings import normalise_header_settings
    from lightning_dnc.search.stages.composite import GPCostModel

    path = tmp_path / "journal.jsonl"
    old = settings(time_model="gp")  # what composite searches ran before the regression: GP times, raw costs
    reference = run(StagedSearch.from_settings(old, MLPSpace(), TrainingSpace()))
    assert reference.cost_estimates is None
    assert all(isinstance(s._gp.cost_model, GPCostModel) for s in reference._stages.values()
               if getattr(getattr(s, "_gp", None), "cost_model", None) is not None)
    run(StagedSearch.from_settings(old, MLPSpace(), TrainingSpace(), journal=path), stop_after=7)
    events = [json.loads(line) for line in path.read_text().splitlines()]
    del events[0]["settings"]["time_model"]  # a header written before the setting existed
    stored = SearchSettings.from_header(events[0]["settings"], events[0]["objective"])
    assert normalise_header_settings(events[0]["settings"])["time_model"] == "gp" and stored.time_model == "gp"
    resumed = StagedSearch.resume(events, stored.replace(data_shape=DATA), MLPSpace(), TrainingSpace())
    for p in resumed.pending:
        resumed.tell(p.trial_id, evaluation(p.config))
    run(resumed)
    assert [t.config for t in resumed.trials] == [t.config for t in reference.trials]
    assert StagedSearch.from_settings(settings(time_model=None), MLPSpace(), TrainingSpace()).search_settings.time_model == "features"
