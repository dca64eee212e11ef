"""Rungs(stage) around every strategy, and the engine with a made-up stage that only implements
the Stage interface (issue 24): budgets, kill/resume at any rung, final ranking, checkpoints."""

from __future__ import annotations

import dataclasses

import pytest
from search_driving import drive
from test_golden_proposals import synthetic_evaluation

from lightning_dnc.search import SearchSettings, StagedSearch
from lightning_dnc.search.core import engine as engine_module
from lightning_dnc.search.core.trial import Proposal
from lightning_dnc.search.fidelity.rung_stage import Rungs
from lightning_dnc.search.fidelity.rungs import RUNG_MODELS
from lightning_dnc.search.stages.stage import SearchState, Stage, best_of
from lightning_dnc.space import MLPSpace, TrainingSpace
from lightning_dnc.vocabulary import STRATEGIES

EPOCHS = 9  # rungs 1, 3, 9


def settings(**changes):
    base = dict(family="mlp", prior_points=3, steps=3, training_prior_points=2, training_steps=2, search_epochs=EPOCHS,
                fidelity="asha", min_epochs=1, explore=40)
    return SearchSettings(**{**base, **changes})


def evaluate(proposal):
    """Accuracy rising with the epochs reached (rung results rank mostly like final ones)."""
    ev = synthetic_evaluation(proposal.config, False)
    epochs = EPOCHS if proposal.rung is None else proposal.rung.epochs
    return dataclasses.replace(ev, best_val_acc=ev.best_val_acc * (1 - 0.3 / epochs))


def run(search, batch=1, stop_after=None):
    return drive(search, evaluate, batch, stop_after)


def new_search(journal=None, **changes):
    return StagedSearch.from_settings(settings(**changes), MLPSpace(num_hidden_layers=(0, 2)), TrainingSpace(),
                                      journal=journal)


# ---------------------------------------------------------------------------------- every strategy
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_with_rungs_finishes_within_its_budget(strategy):
    search = run(new_search(strategy=strategy), batch=2)
    fixed = run(new_search(strategy=strategy, fidelity=None, min_epochs=None), batch=2)
    assert search.finished
    for number in {t.stage for t in fixed.trials} - {2}:  # the BO stages: the same number of candidates
        candidates = [t for t in search.trials if t.stage == number and t.rung.rung == 0]
        assert len(candidates) == sum(1 for t in fixed.trials if t.stage == number), f"stage {number}"
    rungs = search.result().meta["rungs"]
    assert rungs["epochs"] == [1, 3, 9] and rungs["epochs_trained"] < rungs["fixed_epoch_equivalent"]
    ranked = [r.trial for r in search.result().ranking]
    assert ranked and all(t.at_top for t in ranked), "only top-rung runs are ranked"
    assert search.released_checkpoints() == {t.trial_id for t in search.trials if t.rung.save}


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("stop_after", [3, 11, 19])
def test_kill_and_resume_at_any_rung_gives_the_same_promotions_and_best(tmp_path, strategy, stop_after):
    reference = run(new_search(tmp_path / "a.jsonl", strategy=strategy), batch=2)
    run(new_search(tmp_path / "b.jsonl", strategy=strategy), batch=2, stop_after=stop_after)
    resumed = run(StagedSearch.from_journal(tmp_path / "b.jsonl"), batch=2)
    assert [(t.config, t.rung) for t in resumed.trials] == [(t.config, t.rung) for t in reference.trials]
    assert resumed.result().best_config == reference.result().best_config


@pytest.mark.parametrize("model", RUNG_MODELS)
def test_every_rung_model_runs_and_is_recorded(model):
    search = run(new_search(strategy="joint", rung_model=model))
    assert search.finished and search.result().meta["rungs"]["rung_model"] == model


def test_a_rung_model_needs_a_fidelity_and_a_known_name():
    with pytest.raises(ValueError, match=r"`rung_model` \('top'\) applies only with fidelity='asha'"):
        settings(fidelity=None, min_epochs=None, rung_model="top")
    with pytest.raises(ValueError, match=r"`rung_model` must be one of \['highest', 'shifted', 'top'\]"):
        settings(rung_model="bohb")


# ---------------------------------------------------------------------------------- a made-up stage
class Countdown(Stage):
    """Proposes ``count`` MLPs of growing width, one at a time, and nothing else: only the interface."""

    def __init__(self, number: int, count: int, final: bool) -> None:
        self.number = number
        self.count = count
        self.final = final
        self._base: dict | None = None

    def start(self, state: SearchState, handed_on: int | None) -> None:
        self._base = {"family": "mlp", "hidden_mlp": [], "act": "relu", "dropout_probs_mlp": [], "lr": 1e-3,
                      "weight_decay": 0.0, "batch_size": 256, "epochs": EPOCHS}
        if handed_on is not None:
            self._base = dict(state.trials[handed_on].config)

    def propose(self, state: SearchState, trial_id: int) -> Proposal | None:
        index = len(self.own_trials(state))
        if index >= self.count:
            return None
        width = 50 * (index + 1) + 7 * self.number
        config = {**self._base, "hidden_mlp": [width], "dropout_probs_mlp": [0.0]}
        return Proposal(trial_id, self.number, config)

    def complete(self, state: SearchState) -> bool:
        trials = self.own_trials(state)
        return len(trials) >= self.count and all(t.evaluation is not None for t in trials)

    def winner(self, state: SearchState) -> int | None:
        return best_of(state, (t.trial_id for t in self.own_trials(state)))

    def planned(self, state: SearchState, started: bool, finished: bool) -> int:
        return self.count


@pytest.fixture
def made_up_stages(monkeypatch):
    """The engine builds the made-up stages instead of a strategy's (wrapped in rungs with a fidelity)."""
    from lightning_dnc.search.fidelity import rungs as rr

    def build(settings, space, training_space):
        stages = {1: Countdown(1, 5, False), 3: Countdown(3, 4, True)}
        if settings.fidelity is None:
            return stages
        ladder = rr.rung_epochs(settings.search_epochs, settings.min_epochs, settings.reduction_factor)
        return {n: Rungs(s, ladder, settings.reduction_factor, settings.rung_model) for n, s in stages.items()}

    monkeypatch.setattr(engine_module, "build_stages", build)


@pytest.mark.parametrize("fidelity", [None, "asha"])
def test_the_engine_runs_a_made_up_stage_through_the_interface_only(made_up_stages, tmp_path, fidelity):
    changes = {} if fidelity else {"fidelity": None, "min_epochs": None}
    search = run(new_search(tmp_path / "j.jsonl", **changes), batch=2)
    assert search.finished and search.stage == 4
    stage3 = [t for t in search.trials if t.stage == 3 and t.at_top and search.loss_of(t) is not None]
    assert {r.trial.trial_id for r in search.result().ranking} == {t.trial_id for t in stage3}, \
        "only the stage that says it is final is ranked, and only at the top rung"
    assert search.progress.group is None and ("rungs" in search.result().meta) == (fidelity is not None)
    if fidelity is None:
        assert search.released_checkpoints() == set() and len(search.trials) == 9
    else:
        assert max(t.rung.rung for t in search.trials) == 2
    resumed = run(StagedSearch.from_journal(tmp_path / "j.jsonl"))
    assert [t.config for t in resumed.trials] == [t.config for t in search.trials]
