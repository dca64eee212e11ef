"""The staged engine driven by a synthetic objective (no training): every SPEC §5 rule."""

from __future__ import annotations

import math

import pytest

from lightning_dnc.search import Evaluation, Objective, StagedSearch, config_key, group_options
from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace
from lightning_dnc.space.config import auto_weight_decay

ACT_BONUS = {"relu": 0.0, "tanh": 0.01, "sigmoid": -0.05}


def synthetic(config, act_bonus=ACT_BONUS, training_penalty=0.0, fail=None):
    """A deterministic fake evaluation: accuracy from the config, cost from its size."""
    if fail is not None and fail(config):
        return Evaluation(config=config, status="failed", failure_reason="exception", error="boom")
    if config["family"] == "cnn":
        size = sum(config["out_channels"])
        acc = 0.80 + 0.01 * min(len(config["out_channels"]), 8) + 0.002 * sum(s == 2 for s in config["strides"])
        acc -= 0.001 * sum(1 for a in config["apply_bns"] if not a)
    else:
        size = sum(config["hidden_mlp"]) + 1
        acc = 0.85 - abs(size - 300) / 3000
    acc += act_bonus[config["act"]]
    acc -= 0.1 * abs(math.log10(config["lr"]) + 3) / 4
    if config["weight_decay"] != "auto":
        acc -= training_penalty + config["weight_decay"] * 50
    return Evaluation(config=config, best_val_acc=min(acc, 0.999), t_tr=1.0 + size / 1000, n_params=100 * size + 10)


def drive(search, evaluate=synthetic, batch=1):
    """Ask/tell until finished; returns the number of asks."""
    asks = 0
    while not search.finished:
        proposals = search.ask(batch)
        asks += 1
        assert proposals, "ask returned nothing although nothing is pending"
        for p in proposals:
            search.tell(p.trial_id, evaluate(p.config))
    return asks


def small_cnn(**kw):
    settings = dict(prior_points=3, steps=2, explore=40, epochs=2, seed=0, strategy="paper")  # SPEC §5's stages
    settings.update(kw)
    return StagedSearch("cnn", CNNSpace(num_conv_layers=(4, 6)), TrainingSpace(), Objective(wc=0.1), **settings)


def small_mlp(space=None, **kw):
    settings = dict(prior_points=3, steps=2, explore=40, epochs=2, seed=0, strategy="paper")  # SPEC §5's stages
    settings.update(kw)
    return StagedSearch("mlp", space or MLPSpace(num_hidden_layers=(1, 2)), TrainingSpace(), Objective(wc=0.1), **settings)


def by_stage(search, stage):
    return [t for t in search.trials if t.stage == stage]


def test_cnn_evaluation_counts_per_stage_and_group():
    search = small_cnn(training_prior_points=2, training_steps=3)
    drive(search)
    assert len(by_stage(search, 1)) == 5
    assert len(by_stage(search, 3)) == 5
    decisions = search.result().meta["stage2_decisions"]
    assert [d["group"] for d in decisions] == ["ac", "ds", "bn", "do", "sc"]
    # Recompute each group's options from the incumbent the engine had at that group.
    incumbent = search.trials[search.result().meta["stage1_best"]].config
    seen = {config_key(t.config) for t in by_stage(search, 1)}
    for decision in decisions:
        trials = [t for t in by_stage(search, 2) if t.group == decision["group"]]
        expected = [o for o in group_options(decision["group"], incumbent) if config_key(o) not in seen]
        assert [t.config for t in trials] == expected
        assert decision["options"] == len(expected)
        seen |= {config_key(o) for o in expected}
        if decision["adopted"]:
            incumbent = search.trials[decision["best_trial"]].config
    do_trials = [t for t in by_stage(search, 2) if t.group == "do"]
    assert len(do_trials) == 15
    assert [t.config["act"] for t in by_stage(search, 2) if t.group == "ac"] == ["tanh", "sigmoid"]


def test_stage1_configs_have_default_stage2_and_training_settings():
    search = small_cnn()
    drive(search)
    for trial in by_stage(search, 1):
        c = trial.config
        n = len(c["out_channels"])
        assert (c["lr"], c["weight_decay"], c["batch_size"], c["epochs"]) == (1e-3, "auto", 256, 2)
        assert c["act"] == "relu" and c["strides"] == [1] * n and c["apply_bns"] == [1] * n
        assert c["dropout_probs"] == [0.1] + [0.3] * (n - 1)
    assert all(t.config["epochs"] == 2 for t in search.trials)
    first = search.trials[0].config
    assert {k: first[k] for k in ("out_channels", "apply_maxpools", "shortcuts")} == CNNSpace(num_conv_layers=(4, 6)).centre()


def test_stage3_keeps_the_stage2_winner_architecture():
    search = small_cnn()
    drive(search)
    winner = search.trials[search.result().meta["stage2_winner"]].config
    arch = {k: v for k, v in winner.items() if k not in ("lr", "weight_decay", "batch_size")}
    for trial in by_stage(search, 3):
        assert {k: v for k, v in trial.config.items() if k not in ("lr", "weight_decay", "batch_size")} == arch
        assert trial.config["weight_decay"] != "auto"


def test_mlp_without_hidden_layers_skips_every_group():
    search = small_mlp(space=MLPSpace(num_hidden_layers=(0, 0)), training_prior_points=1, training_steps=1)
    drive(search)
    assert len(by_stage(search, 1)) == 1  # one distinct config: stage 1 stops, it does not repeat it
    assert by_stage(search, 2) == []
    assert [(d["group"], d["options"]) for d in search.result().meta["stage2_decisions"]] == [("ac", 0), ("do", 0)]
    assert len(by_stage(search, 3)) == 2


def test_mlp_group_option_counts():
    search = small_mlp(training_prior_points=0, training_steps=0)
    drive(search)
    groups = [t.group for t in by_stage(search, 2)]
    assert groups == ["ac"] * 2 + ["do"] * 5
    assert by_stage(search, 3) == []


def test_adoption_only_on_strict_improvement():
    ties = dict(ACT_BONUS, tanh=0.0)  # tanh exactly as good as relu: not adopted
    search = small_mlp(training_prior_points=0, training_steps=0)
    drive(search, lambda c: synthetic(c, act_bonus=ties))
    ac = search.result().meta["stage2_decisions"][0]
    assert ac["group"] == "ac" and not ac["adopted"]
    assert all(t.config["act"] == "relu" for t in by_stage(search, 2) if t.group == "do")

    better = small_mlp(training_prior_points=0, training_steps=0)
    drive(better)
    ac = better.result().meta["stage2_decisions"][0]
    assert ac["adopted"] and better.trials[ac["best_trial"]].config["act"] == "tanh"
    assert all(t.config["act"] == "tanh" for t in by_stage(better, 2) if t.group == "do")


def test_final_ranking_includes_stage2_winner_with_default_training():
    search = small_mlp(top_k=3, training_prior_points=2, training_steps=1)
    drive(search, lambda c: synthetic(c, training_penalty=0.2))
    result = search.result()
    winner = result.meta["stage2_winner"]
    assert set(result.candidate_ids) == {winner, *(t.trial_id for t in by_stage(search, 3))}
    assert result.best.trial_id == winner
    # The winner trained with default training settings; best_config states the weight decay that meant.
    assert result.best.trial.config["weight_decay"] == "auto"
    n_params = result.best.trial.evaluation.n_params
    assert (result.best_config["lr"], result.best_config["weight_decay"], result.best_config["batch_size"]) == (
        1e-3,
        auto_weight_decay("mlp", n_params),
        256,
    )
    assert len(result.top_k) == 3 and [r.loss for r in result.top_k] == sorted(r.loss for r in result.top_k)


def test_stage3_winner_when_training_helps():
    search = small_mlp(training_prior_points=3, training_steps=3)
    drive(search, lambda c: synthetic(c, training_penalty=-0.2))
    assert search.result().best.trial.stage == 3
    assert search.result().best_config["weight_decay"] != "auto"


def test_no_configuration_is_ever_repeated():
    tiny = MLPSpace(num_hidden_layers=(0, 1), hidden_nodes=(20, 23))  # 5 distinct skeletons
    search = small_mlp(space=tiny, prior_points=4, steps=10, training_prior_points=2, training_steps=2)
    drive(search)
    keys = [config_key(t.config) for t in search.trials]
    assert len(keys) == len(set(keys))
    assert len(by_stage(search, 1)) == 5
    cnn = small_cnn()
    drive(cnn)
    keys = [config_key(t.config) for t in cnn.trials]
    assert len(keys) == len(set(keys))


def test_seeded_runs_reproduce_and_seeds_matter():
    runs = []
    for seed in (3, 3, 4):
        search = small_cnn(seed=seed, steps=4)
        drive(search)
        runs.append([t.config for t in search.trials])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_batch_ask_is_distinct_deterministic_and_equals_sequential_asks():
    batches = []
    for _ in range(2):
        search = small_cnn(prior_points=2, steps=6)
        first = search.ask(2)
        for p in first:
            search.tell(p.trial_id, synthetic(p.config))
        batches.append(search.ask(4))
    assert [p.config for p in batches[0]] == [p.config for p in batches[1]]
    assert len({config_key(p.config) for p in batches[0]}) == 4
    sequential = small_cnn(prior_points=2, steps=6)
    for p in sequential.ask(2):
        sequential.tell(p.trial_id, synthetic(p.config))
    singles = [sequential.ask(1)[0] for _ in range(4)]
    assert [p.config for p in singles] == [p.config for p in batches[0]]


def test_batch_ask_stops_at_stage_end_and_waits_for_pending():
    search = small_cnn(prior_points=2, steps=1)
    proposals = search.ask(10)
    assert [p.stage for p in proposals] == [1, 1, 1]
    assert search.ask(5) == [] and not search.finished
    for p in proposals:
        search.tell(p.trial_id, synthetic(p.config))
    ac = search.ask(10)
    assert [p.group for p in ac] == ["ac", "ac"]  # a grid batch never spans two groups
    search.tell(ac[0].trial_id, synthetic(ac[0].config))
    assert search.ask(3) == []
    search.tell(ac[1].trial_id, synthetic(ac[1].config))
    assert search.ask(1)[0].group == "ds"


def test_whole_search_in_batches_matches_counts():
    search = small_cnn()
    drive(search, batch=4)
    assert len(by_stage(search, 1)) == 5 and len(by_stage(search, 3)) == 5


def test_failed_trials_are_never_best_and_search_goes_on():
    def fail_big(config):
        return config["family"] == "mlp" and sum(config["hidden_mlp"]) > 300 or config.get("batch_size", 0) > 300

    search = small_mlp(prior_points=4, steps=4)
    drive(search, lambda c: synthetic(c, fail=fail_big))
    failed = [t for t in search.trials if t.state == "failed"]
    assert failed, "the synthetic objective should have failed some trials"
    result = search.result()
    assert all(r.trial.state == "ok" for r in result.ranking)
    assert search.best_trial.state == "ok"
    assert search.finished


def test_every_stage1_trial_failing_ends_the_search_with_a_clear_error():
    search = small_mlp()
    drive(search, lambda c: synthetic(c, fail=lambda _: True))
    assert search.finished and len(search.trials) == 5
    with pytest.raises(RuntimeError, match=r"No successful trial to rank yet \(5 proposed, 5 failed\)"):
        search.result()


def test_interrupted_trial_stays_pending_and_is_told_again():
    search = small_mlp()
    (p,) = search.ask()
    search.tell(p.trial_id, Evaluation(config=p.config, status="failed", failure_reason="interrupted"))
    assert [q.trial_id for q in search.pending] == [p.trial_id]
    assert not search.is_told(p.trial_id)
    search.tell(p.trial_id, synthetic(p.config))
    assert search.pending == [] and search.is_told(p.trial_id)
    (q,) = search.ask()
    search.mark_interrupted(q.trial_id, error="KeyboardInterrupt")
    assert [r.trial_id for r in search.pending] == [q.trial_id] and not search.is_told(q.trial_id)


def test_tell_errors():
    search = small_mlp()
    (p,) = search.ask()
    with pytest.raises(ValueError, match=r"`trial_id` must be the id of a proposed trial \(0..0\), got 7"):
        search.tell(7, synthetic(p.config))
    with pytest.raises(ValueError, match="must be an Evaluation record, got dict"):
        search.tell(p.trial_id, {"best_val_acc": 1})
    search.tell(p.trial_id, synthetic(p.config))
    with pytest.raises(ValueError, match="Trial 0 was already told"):
        search.tell(p.trial_id, synthetic(p.config))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prior_points": -1}, r"`prior_points` must be an integer >= 0, got -1"),
        ({"prior_points": 0, "steps": 0}, r"Stage 1 needs at least one evaluation"),
        ({"explore": 0}, r"`explore` must be an integer >= 1, got 0"),
        ({"epochs": 1.5}, r"`epochs` must be an integer >= 1, got 1.5"),
        ({"top_k": 0}, r"`top_k` must be an integer >= 1"),
        ({"stage2_order": ["ac", "zz"]}, r"\['zz'\] that the 'mlp' family does not have"),
        ({"seed": -2}, r"`seed` must be an integer >= 0"),
    ],
)
def test_invalid_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        small_mlp(**kwargs)


def test_space_family_mismatch():
    with pytest.raises(ValueError, match=r"`space` must be the 'cnn' stage-1 space \(CNNSpace\)"):
        StagedSearch("cnn", MLPSpace(), TrainingSpace())
    with pytest.raises(ValueError, match="`training_space` must be a TrainingSpace"):
        StagedSearch("mlp", MLPSpace(), MLPSpace())
    with pytest.raises(ValueError, match=r"`family` must be one of \['cnn', 'mlp'\], got 'rnn'"):
        StagedSearch("rnn", MLPSpace(), TrainingSpace())


def test_custom_group_order_and_empty_stage2():
    search = small_cnn(stage2_order=["sc", "ac"], training_prior_points=0, training_steps=0)
    drive(search)
    assert [d["group"] for d in search.result().meta["stage2_decisions"]] == ["sc", "ac"]
    none = small_cnn(stage2_order=[], training_prior_points=0, training_steps=0)
    drive(none)
    assert by_stage(none, 2) == [] and none.result().best.trial.stage == 1


def test_progress_counts_up_to_the_plan():
    search = small_mlp(training_prior_points=1, training_steps=1)
    assert search.progress.stage == 1 and search.progress.planned == 5
    assert search.progress.planned_total == 5 + 7 + 2
    seen = []
    while not search.finished:
        (p,) = search.ask()
        progress = search.progress
        seen.append((progress.stage, progress.index, progress.group))
        assert progress.index <= progress.planned
        search.tell(p.trial_id, synthetic(p.config))
    assert seen[0] == (1, 1, None) and seen[5] == (2, 1, "ac") and seen[-1] == (3, 2, None)
    assert search.progress.stage_name == "finished"
    assert search.progress.planned_total == len(search.trials) == search.progress.finished_trials


def test_t_tr_reference_is_the_first_successful_trial():
    search = small_mlp()
    drive(search)
    assert search.bound_objective.t_tr_ref == search.trials[0].evaluation.t_tr


def test_failed_grid_option_is_never_adopted():
    huge = dict(ACT_BONUS, tanh=0.5)  # tanh would win by far, but every tanh trial fails
    search = small_mlp(training_prior_points=0, training_steps=0)
    drive(search, lambda c: synthetic(c, act_bonus=huge, fail=lambda cfg: cfg["act"] == "tanh"))
    ac = search.result().meta["stage2_decisions"][0]
    assert not ac["adopted"] and search.trials[ac["best_trial"]].config["act"] == "sigmoid"
    assert search.result().best.trial.config["act"] == "relu"


def test_metadata_travels_in_the_header(tmp_path):
    path = tmp_path / "journal.jsonl"
    small_mlp(journal=path, metadata={"dataset": "digits", "fingerprint": "abc"})
    assert StagedSearch.from_journal(path).metadata == {"dataset": "digits", "fingerprint": "abc"}
    with pytest.raises(ValueError, match="`metadata` must be a dict"):
        small_mlp(metadata=[1])


def test_search_room_imports_neither_torch_nor_lightning():
    import subprocess
    import sys

    code = (
        "import sys, lightning_dnc.search, lightning_dnc.search.core.engine;"
        "bad = [m for m in ('torch', 'lightning', 'pytorch_lightning') if m in sys.modules];"
        "sys.exit(str(bad) if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
