"""Search strategies (issue 14): the joint kernel, each strategy's stages, budgets, resume, settings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lightning_dnc.search import Objective, StagedSearch
from lightning_dnc.search.core.settings import DEFAULT_STRATEGY, SearchSettings
from lightning_dnc.search.stages.strategies import carry_choices
from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace
from lightning_dnc.space.joint import JointSpace
from lightning_dnc.vocabulary import STRATEGIES
from tests.test_search_engine import by_stage, drive, synthetic

BUDGET = dict(prior_points=3, steps=4, training_prior_points=3, training_steps=3, explore=40, epochs=2, seed=0)


def mlp_search(strategy, journal=None, **kw):
    settings = {**BUDGET, **kw}
    return StagedSearch("mlp", MLPSpace(num_hidden_layers=(1, 2)), TrainingSpace(), Objective(wc=0.1),
                        strategy=strategy, journal=journal, **settings)


# ---------------------------------------------------------------------- joint space and kernel
@pytest.mark.parametrize("arch", [MLPSpace(), CNNSpace(num_conv_layers=(4, 6))])
def test_joint_kernel_is_the_mean_of_the_architecture_and_training_kernels(arch):
    training = TrainingSpace()
    joint = JointSpace(arch, training)
    configs = joint.sample(6, seed=3, method="random")
    assert all(set(c) == set(arch.keys) | set(training.keys) for c in configs)
    from lightning_dnc.gp.kernels import cross_covariance

    om, w = joint.hyperparameter_arrays()
    k = cross_covariance(joint.encode(configs), joint.encode(configs), om, w)
    expected = 0.5 * (arch.covariance(configs) + training.covariance(configs))
    np.testing.assert_allclose(k, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.diag(k), 1.0)
    # A config sharing the architecture but not the training is half correlated at most.
    other = {**configs[0], **training.sample(1, seed=99, method="random")[0]}
    assert 0.5 <= cross_covariance(joint.encode([configs[0]]), joint.encode([other]), om, w)[0, 0] < 1.0


def test_joint_space_samples_both_centres_first_and_rejects_overlapping_spaces():
    joint = JointSpace(MLPSpace(), TrainingSpace())
    first = joint.sample(1, method="sobol")[0]
    assert first == {**MLPSpace().centre(), **TrainingSpace().centre()}
    with pytest.raises(ValueError, match="distinct keys"):
        JointSpace(TrainingSpace(), TrainingSpace())


# ---------------------------------------------------------------------- the strategies
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_finishes_within_the_paper_budget_with_complete_distinct_configs(strategy):
    search = mlp_search(strategy)
    drive(search)
    paper = mlp_search("paper")
    drive(paper)
    assert search.finished and search.search_settings.strategy == strategy
    grid = len(by_stage(search, 2))
    assert len(search.trials) - grid <= len(paper.trials) - len(by_stage(paper, 2))
    keys = [json.dumps(t.config, sort_keys=True) for t in search.trials]
    assert len(set(keys)) == len(keys)
    result = search.result()
    finals = {t.trial_id for t in search.trials if t.stage in (3, 4)}
    assert set(result.candidate_ids) <= finals | {result.meta["stage2_winner"]}


def test_joint_stage_one_varies_training_with_the_architecture():
    search = mlp_search("joint")
    drive(search)
    stage1 = by_stage(search, 1)
    assert len({t.config["lr"] for t in stage1}) > 1 and len({t.config["batch_size"] for t in stage1}) > 1
    paper = mlp_search("paper")
    drive(paper)
    assert {t.config["lr"] for t in by_stage(paper, 1)} == {1e-3}  # SPEC §5: the default training


def test_joint_finds_the_better_learning_rate_that_the_paper_stage_one_never_tries():
    # synthetic() penalises lr away from 1e-3 ... so make the best lr another one.
    def evaluate(config):
        out = synthetic(config)
        acc = out.best_val_acc - 0.2 * abs(np.log10(config["lr"]) + 1.5)
        return type(out)(config=config, best_val_acc=acc, t_tr=out.t_tr, n_params=out.n_params)

    joint, paper = mlp_search("joint"), mlp_search("paper")
    drive(joint, evaluate)
    drive(paper, evaluate)
    best_stage1 = lambda s: min(s.loss_of(t) for t in by_stage(s, 1))  # noqa: E731
    assert best_stage1(joint) < best_stage1(paper)


def test_train_first_runs_stage_zero_on_the_centre_and_stage_one_with_its_winner():
    search = mlp_search("train-first")
    drive(search)
    stage0, stage1 = by_stage(search, 0), by_stage(search, 1)
    assert stage0 and len({json.dumps(t.config["hidden_mlp"]) for t in stage0}) == 1
    winner = search.trials[search._winners[0]].config
    assert all(t.config["lr"] == winner["lr"] and t.config["batch_size"] == winner["batch_size"] for t in stage1)
    assert search.trials[0].stage == 0


def test_revisit_stage_four_uses_the_tuned_training_and_enters_the_final_ranking():
    search = mlp_search("revisit")
    drive(search)
    stage4 = by_stage(search, 4)
    assert len(stage4) == 2  # ceil(4 steps / 2) moved from stage 1
    assert len(by_stage(search, 1)) == 3 + 2
    winner3 = search.trials[search._winners[3]].config
    assert all(t.config["lr"] == winner3["lr"] and t.config["act"] == winner3["act"] for t in stage4)
    assert {t.trial_id for t in stage4} <= set(search.result().candidate_ids)
    assert search.progress.stage_name == "finished" and search.stage == 5


def test_carry_choices_repeats_uniform_per_layer_choices_for_the_new_depth():
    winner = {"family": "mlp", "act": "tanh", "epochs": 3, "lr": 0.01, "weight_decay": 0.0, "batch_size": 64,
              "hidden_mlp": [10], "dropout_probs_mlp": [0.3]}
    out = carry_choices(winner, {"hidden_mlp": [20, 30]})
    assert out["dropout_probs_mlp"] == [0.3, 0.3] and out["act"] == "tanh" and out["hidden_mlp"] == [20, 30]


@pytest.mark.parametrize("strategy", ["joint", "revisit", "train-first"])
def test_a_resumed_strategy_makes_the_proposals_of_an_uninterrupted_run(tmp_path, strategy):
    full = mlp_search(strategy)
    drive(full)
    path = tmp_path / "trials.jsonl"
    part = mlp_search(strategy, journal=path)
    for _ in range(9):  # stop mid-search
        for proposal in part.ask(1):
            part.tell(proposal.trial_id, synthetic(proposal.config))
    resumed = StagedSearch.from_journal(path)
    assert resumed.search_settings.strategy == strategy
    drive(resumed)
    assert [t.config for t in resumed.trials] == [t.config for t in full.trials]


def test_journals_without_a_strategy_resume_as_the_paper(tmp_path):
    path = tmp_path / "trials.jsonl"
    search = mlp_search("paper", journal=path)
    search.tell(search.ask(1)[0].trial_id, synthetic(search.trials[0].config))
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    del header["settings"]["strategy"]
    path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    assert StagedSearch.from_journal(path).search_settings.strategy == "paper"


def test_strategy_setting_is_checked_and_defaults_when_the_search_starts():
    with pytest.raises(ValueError, match=r"`strategy` must be one of \['paper', 'joint', 'revisit', 'train-first'\]"):
        SearchSettings(strategy="greedy")
    assert SearchSettings().strategy is None
    assert mlp_search(None).search_settings.strategy == DEFAULT_STRATEGY


def test_train_first_without_a_stage_zero_success_searches_stage_one_with_the_default_training():
    search = mlp_search("train-first")
    calls = []

    def evaluate(config):  # every stage-0 candidate (the first three) fails
        calls.append(config)
        return synthetic(config, fail=lambda c: len(calls) <= 3)

    drive(search, evaluate)
    assert len(by_stage(search, 0)) == 3
    stage1 = by_stage(search, 1)
    assert all(t.state == "failed" for t in by_stage(search, 0))
    assert stage1 and all(t.config["lr"] == 1e-3 and t.config["batch_size"] == 256 for t in stage1)
    assert search.finished and by_stage(search, 3)


def test_train_first_with_no_training_budget_to_share_runs_the_paper_stages():
    search = mlp_search("train-first", training_prior_points=1, training_steps=0)
    drive(search)
    assert not by_stage(search, 0) and {t.config["lr"] for t in by_stage(search, 1)} == {1e-3}


@pytest.mark.parametrize(("training", "stage1", "stage3"), [((3, 3), 3 + 4 + 3, 3), ((1, 1), 3 + 4 + 1, 1), ((0, 1), 3 + 4, 1)])
def test_joint_moves_half_of_stage_three_into_stage_one(training, stage1, stage3):
    search = mlp_search("joint", stage2_order=[], training_prior_points=training[0], training_steps=training[1])
    drive(search)
    assert len(by_stage(search, 1)) == stage1 and len(by_stage(search, 3)) == stage3
    assert len(search.trials) == 3 + 4 + sum(training)  # the paper's total


def test_every_strategy_takes_a_fidelity_and_the_default_is_the_same_with_one():
    assert all(SearchSettings(fidelity="asha", search_epochs=9, strategy=s).strategy == s for s in STRATEGIES)
    search = StagedSearch.from_settings(SearchSettings(family="mlp", fidelity="asha", search_epochs=9, prior_points=2,
                                                       steps=0, explore=10), MLPSpace(), TrainingSpace())
    assert search.search_settings.strategy == DEFAULT_STRATEGY
