"""Multi-fidelity search (fidelity="asha"): settings, rungs, promotions, grid halving, final ranking,
journal replay and checkpoint release, with a synthetic objective (no training)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from search_driving import drive
from test_golden_proposals import synthetic_evaluation

from lightning_dnc.search import JournalMismatchError, SearchSettings, StagedSearch
from lightning_dnc.search.fidelity.rungs import default_min_epochs, rung_epochs
from lightning_dnc.search.core.settings import SettingError
from lightning_dnc.space import MLPSpace, TrainingSpace


def settings(**changes):
    base = dict(family="mlp", prior_points=4, steps=4, training_prior_points=3, training_steps=3, search_epochs=27,
                fidelity="asha", min_epochs=1, explore=50, strategy="paper")
    return SearchSettings(**{**base, **changes})


def evaluate(proposal):
    """Accuracy rising with the epochs reached, so rung results rank like final ones (mostly)."""
    ev = synthetic_evaluation(proposal.config, False)
    return dataclasses.replace(ev, best_val_acc=ev.best_val_acc * (1 - 0.3 / proposal.rung.epochs))


def run(search, batch=1, stop_after=None, on_tell=None):
    return drive(search, evaluate, batch, stop_after, on_tell)


def new_search(journal=None, **changes):
    return StagedSearch.from_settings(settings(**changes), MLPSpace(num_hidden_layers=(0, 2)), TrainingSpace(),
                                      journal=journal)


# ---------------------------------------------------------------------------------- settings and rungs
def test_rungs_and_default_lowest_rung():
    assert rung_epochs(100, default_min_epochs(100, 3), 3) == (4, 12, 36, 100)
    assert rung_epochs(52, 2, 3) == (2, 6, 18, 52)
    assert rung_epochs(10, 1, 3) == (1, 3, 10), "9 is too close to the top rung to be worth a comparison"
    assert rung_epochs(5, 5, 3) == (5,)


@pytest.mark.parametrize(("changes", "name", "match"), [
    ({"fidelity": "hyperband"}, "fidelity", r"`fidelity` must be one of \['asha'\]"),
    ({"fidelity": None, "min_epochs": 2}, "min_epochs", "applies only with fidelity='asha'"),
    ({"min_epochs": 30}, "min_epochs", r"between 1 and `search_epochs` \(27\)"),
    ({"min_epochs": 0}, "min_epochs", ">= 1"),
    ({"reduction_factor": 1}, "reduction_factor", ">= 2"),
    ({"rung_model": "all"}, "rung_model", "must be one of"),
    ({"patience": 2}, "patience", "cannot be combined with fidelity='asha'"),
])
def test_invalid_fidelity_settings_name_the_field(changes, name, match):
    with pytest.raises(SettingError, match=match) as info:
        settings(**changes)
    assert info.value.name == name


def test_fixed_epoch_header_has_no_fidelity_keys_and_asha_header_round_trips():
    plain = SearchSettings(family="mlp").header_settings()
    assert not {"fidelity", "min_epochs", "reduction_factor", "rung_model"} & set(plain), "old headers stay equal"
    asha = settings()
    assert SearchSettings.from_header(asha.header_settings()) == asha
    assert SearchSettings.from_header(plain) == SearchSettings(family="mlp")


# ---------------------------------------------------------------------------------- promotions
@pytest.mark.parametrize("batch", [1, 3])
def test_every_candidate_starts_low_and_promotions_follow_the_asha_rule(batch):
    search = run(new_search(), batch=batch)
    trials = search.trials
    eta = 3
    for trial in trials:
        run_ = trial.rung
        assert run_ is not None and trial.config["epochs"] == 27
        if run_.rung == 0:
            assert run_.candidate == trial.trial_id and run_.resume is None and run_.from_epoch == 0
            continue
        before = trials[run_.resume]
        assert before.rung.candidate == run_.candidate and before.rung.rung == run_.rung - 1
        assert run_.from_epoch == before.rung.epochs and before.config == trial.config
        if trial.stage != 2 and batch == 1:  # ASHA: in the top 1/eta of its rung's results told before it
            told = [t for t in trials[:trial.trial_id] if t.rung.rung == before.rung.rung and t.stage == trial.stage
                    and t.evaluation is not None]
            ranked = sorted(told, key=lambda t: (search.loss_of(t), t.trial_id))
            top = [t.trial_id for t in ranked[:max(1, len(told) // eta)]]
            assert before.trial_id in top
    assert max(t.rung.rung for t in trials if t.stage == 1) == 3
    result = search.result()
    ranked = [r.trial for r in result.ranking]
    assert ranked and all(t.rung.epochs == 27 for t in ranked), "only top-rung trials are ranked"
    rungs = result.meta["rungs"]
    assert rungs["epochs"] == [1, 3, 9, 27] and rungs["candidates_per_rung"][0] == rungs["candidates"]
    assert rungs["epochs_trained"] < rungs["fixed_epoch_equivalent"] / 2


def test_grid_group_is_halved_and_its_best_compared_at_the_top_rung():
    search = run(new_search(stage2_order=("do",)))
    stage2 = [t for t in search.trials if t.stage == 2]
    per_rung = [sum(1 for t in stage2 if t.rung.rung == k) for k in range(4)]
    assert per_rung == [5, 1, 1, 1], "5 dropout options, then max(1, floor(n / 3)) per rung"
    decision = search.result().meta["stage2_decisions"][0]
    assert search.trials[decision["best_trial"]].rung.epochs == 27


def test_fixed_epoch_search_has_no_rungs():
    search = run_fixed = StagedSearch.from_settings(SearchSettings(family="mlp", prior_points=2, steps=0,
                                                                   training_prior_points=1, training_steps=0,
                                                                   search_epochs=2, explore=10),
                                                    MLPSpace(num_hidden_layers=(0, 2)), TrainingSpace())
    proposal = search.ask(1)[0]
    assert proposal.rung is None and proposal.run is None
    assert run_fixed.released_checkpoints() == set()


# ---------------------------------------------------------------------------------- journal and checkpoints
@pytest.mark.parametrize("stop_after", [1, 4, 9, 15, 24, 33])
def test_resume_at_any_point_gives_the_same_promotions_and_best(tmp_path, stop_after):
    reference = run(new_search(tmp_path / "a.jsonl"), batch=2)
    run(new_search(tmp_path / "b.jsonl"), batch=2, stop_after=stop_after)
    resumed = run(StagedSearch.from_journal(tmp_path / "b.jsonl"), batch=2)
    assert [(t.config, t.rung) for t in resumed.trials] == [(t.config, t.rung) for t in reference.trials]
    assert resumed.result().best_config == reference.result().best_config
    events = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    promotions = [e for e in events if e["event"] == "proposed" and e["rung"]["rung"] > 0]
    assert len(promotions) == reference.result().meta["rungs"]["promotions"], "every promotion is journaled"


def test_a_journal_with_another_rung_is_refused(tmp_path):
    run(new_search(tmp_path / "a.jsonl"), stop_after=12)
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    index = next(i for i, e in enumerate(events) if e["event"] == "proposed" and e["rung"]["rung"] == 1)
    events[index]["rung"]["epochs"] = 4
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    with pytest.raises(JournalMismatchError, match="rung"):
        StagedSearch.from_journal(tmp_path / "a.jsonl")


def test_released_checkpoints_are_never_needed_again():
    released_when: dict[int, int] = {}

    def check(search, proposal):
        for trial_id in search.released_checkpoints():
            released_when.setdefault(trial_id, len(search.trials))
        for trial in search.trials:
            if trial.rung.resume is not None and trial.rung.resume in released_when:
                assert released_when[trial.rung.resume] > trial.trial_id, "a released checkpoint was needed later"

    search = run(new_search(), batch=2, on_tell=check)
    saved = {t.trial_id for t in search.trials if t.rung.save}
    assert search.released_checkpoints() == saved, "at the end every checkpoint is released"


def test_a_single_rung_search_proposes_what_the_fixed_epoch_search_proposes():
    """With min_epochs == search_epochs there is one rung: the rung stages must make the paper's decisions."""
    fixed = StagedSearch.from_settings(settings(fidelity=None, min_epochs=None, strategy="paper"),
                                       MLPSpace(num_hidden_layers=(0, 2)),
                                       TrainingSpace())
    single = new_search(min_epochs=27)
    for search in (fixed, single):
        while not search.finished:
            for proposal in search.ask(2):
                ev = synthetic_evaluation(proposal.config, False)
                search.tell(proposal.trial_id, ev)
    assert [t.config for t in single.trials] == [t.config for t in fixed.trials]
    assert all(t.rung.rung == 0 and not t.rung.save for t in single.trials)
    assert single.result().best_config == fixed.result().best_config


def test_out_of_memory_retry_keeps_the_rung_run():
    from lightning_dnc.executors import OomRetry
    from lightning_dnc.search import Evaluation
    from lightning_dnc.search.core.trial import RUN_KEY

    seen = []

    class Evaluator:
        def evaluate(self, config):
            seen.append(dict(config))
            if len(seen) == 1:
                full = {k: v for k, v in config.items() if k != RUN_KEY}
                return Evaluation(config=full, status="failed", failure_reason="oom", error="out of memory")
            return Evaluation(config=dict(config), best_val_acc=0.5)

    class RunEvaluator:  # takes the explicit `run` argument
        def evaluate(self, config, trial_id=None, run=None):
            seen.append({**config, "run": run})
            if len(seen) == 3:
                return Evaluation(config=dict(config), status="failed", failure_reason="oom", error="out of memory")
            return Evaluation(config=dict(config), best_val_acc=0.5)

    proposal = new_search().ask(1)[0]
    OomRetry(Evaluator()).evaluate(proposal.config, proposal.trial_id, proposal.run)
    assert seen[0][RUN_KEY] == proposal.run, "an evaluator without `run` gets it inside the config, as before"
    assert seen[1][RUN_KEY] == seen[0][RUN_KEY] and seen[1]["batch_size"] == seen[0]["batch_size"] // 2
    OomRetry(RunEvaluator()).evaluate(proposal.config, proposal.trial_id, proposal.run)
    assert RUN_KEY not in seen[2] and seen[2]["run"] == seen[3]["run"] == proposal.run
    assert seen[3]["batch_size"] == seen[2]["batch_size"] // 2
