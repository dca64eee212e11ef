"""SearchResult: ranking, Pareto front, rescoring without training, JSON round trip."""

from __future__ import annotations

import itertools

import pytest

from lightning_dnc.search import Evaluation, Objective, SearchResult, Trial
from lightning_dnc.space.config import complete_config


def trial(i, acc, t_tr, n_params, status="ok", stage=1):
    config = complete_config({"family": "mlp", "hidden_mlp": [10 + i], "epochs": 2})
    if status == "pending":
        return Trial(i, stage, config)
    ev = Evaluation(config=config, status=status, best_val_acc=acc, t_tr=t_tr, n_params=n_params,
                    failure_reason=None if status == "ok" else "oom")
    return Trial(i, stage, config, ev)


TRIALS = [
    trial(0, 0.90, 2.0, 1000),
    trial(1, 0.95, 4.0, 8000),   # most accurate, expensive
    trial(2, 0.80, 1.0, 200),    # cheapest
    trial(3, 0.85, 3.0, 5000),   # dominated by trial 0
    trial(4, 0.99, 0.5, 10, status="failed"),
    trial(5, None, None, None, status="pending"),
]


def result(**kw):
    return SearchResult(TRIALS, Objective(wc=0.1).with_references(t.evaluation for t in TRIALS if t.evaluation), **kw)


def test_ranking_sorted_and_failed_or_pending_never_ranked():
    r = result(k=2)
    assert [x.trial_id for x in r.ranking] == sorted(
        [0, 1, 2, 3], key=lambda i: r.objective.loss(TRIALS[i].evaluation)
    )
    assert 4 not in [x.trial_id for x in r.ranking] and len(r.top_k) == 2
    # What a final training uses: the trained config without the search's epochs, "auto" resolved.
    trained = {k: v for k, v in TRIALS[r.best.trial_id].config.items() if k != "epochs"}
    assert r.best_config == {**trained, "weight_decay": 0.0}


def test_candidate_ids_restrict_the_ranking():
    r = result(candidate_ids=[2, 3, 4])
    assert [x.trial_id for x in r.ranking] == [2, 3]  # log10(0.2 + 0.05) < log10(0.15 + 0.15)
    with pytest.raises(ValueError, match="nothing to rank"):
        result(candidate_ids=[4, 5])
    with pytest.raises(ValueError, match=r"`candidate_ids` \[9\] are not trial ids"):
        result(candidate_ids=[9])


def test_pareto_front_matches_brute_force():
    front = result().pareto_front()
    points = {t.trial_id: (1 - t.evaluation.best_val_acc, t.evaluation.t_tr, t.evaluation.n_params) for t in TRIALS[:4]}
    dominated = {
        a for a, b in itertools.permutations(points, 2)
        if all(x <= y for x, y in zip(points[b], points[a])) and points[a] != points[b]
    }
    assert [t.trial_id for t in front] == sorted(set(points) - dominated, key=lambda i: points[i])
    assert 3 not in [t.trial_id for t in front]


def test_rescore_changes_the_winner_without_training():
    r = SearchResult(TRIALS, Objective(wc=0.1, t_tr_ref=2.0, n_params_ref=20000.0))
    accurate = r.rescore(wc=0.0)
    assert accurate.best.trial_id == 1
    cheap = r.rescore(wc=10, penalize="n_params")
    assert cheap.best.trial_id == 2
    assert cheap.objective.n_params_ref == 20000.0  # the searched space's largest network, never a trial's
    assert r.best.trial_id == SearchResult(TRIALS, r.objective).best.trial_id  # the original is unchanged


def test_rescore_by_n_params_needs_the_space_reference():
    legacy = SearchResult(TRIALS, Objective(wc=0.1, t_tr_ref=2.0))  # a 0.1.0 result of a t_tr search
    with pytest.raises(ValueError, match="largest network of its space"):
        legacy.rescore(penalize="n_params")
    assert legacy.rescore(penalize="n_params", n_params_ref=20000.0).objective.n_params_ref == 20000.0


def test_json_round_trip_and_summary():
    r = result(k=3, family="mlp", meta={"stage2_winner": 0})
    back = SearchResult.from_json(r.to_json())
    assert back.to_dict() == r.to_dict()
    assert [x.trial_id for x in back.top_k] == [x.trial_id for x in r.top_k]
    assert back.trials[4].state == "failed" and back.trials[5].state == "pending"
    summary = r.summary()
    assert (summary["ok"], summary["failed"], summary["pending"]) == (4, 1, 1)
    assert summary["best"]["trial_id"] == r.best.trial_id and len(summary["top_k"]) == 3
    with pytest.raises(ValueError, match="format version"):
        SearchResult.from_dict({**r.to_dict(), "version": 99})


def costly(i, acc, flops, latency, memory):
    config = complete_config({"family": "mlp", "hidden_mlp": [10 + i], "epochs": 2})
    return Trial(i, 1, config, Evaluation(config=config, best_val_acc=acc, t_tr=1.0, n_params=100, flops=flops,
                                          latency=latency, memory=memory))


def test_pareto_front_over_chosen_costs_matches_brute_force_and_exports_configs():
    trials = [costly(i, acc, f, lat, m) for i, (acc, f, lat, m) in enumerate([
        (0.90, 10, 3.0, 5), (0.95, 30, 1.0, 9), (0.80, 5, 5.0, 5), (0.85, 20, 4.0, 6), (0.90, 10, 3.0, 4)])]
    r = SearchResult(trials, Objective(wc=0.1, penalize="flops").with_references(t.evaluation for t in trials))
    costs = ["flops", "latency", "memory"]
    values = {t.trial_id: (1 - t.evaluation.best_val_acc, t.evaluation.flops, t.evaluation.latency,
                           t.evaluation.memory) for t in trials}
    dominated = {a for a, b in itertools.permutations(values, 2)
                 if all(x <= y for x, y in zip(values[b], values[a])) and values[a] != values[b]}
    assert {t.trial_id for t in r.pareto_front(costs)} == set(values) - dominated == {1, 2, 4}
    points = r.pareto_points(costs)
    assert [p["trial_id"] for p in points] == [1, 4, 2]  # by f_p
    assert points[0]["config"]["hidden_mlp"] == [11] and points[0]["latency"] == 1.0
    assert {t.trial_id for t in r.pareto_front(["flops"])} == {0, 1, 2, 4}  # 0 and 4 tie in (f_p, flops)
    with pytest.raises(ValueError, match=r"`costs` must name items of"):
        r.pareto_front(["watts"])


def test_rescore_by_another_cost_or_t_tr_mode():
    trials = [costly(i, acc, f, 1e-3, 10) for i, (acc, f) in enumerate([(0.9, 100), (0.92, 1000)])]
    r = SearchResult(trials, Objective(wc=0.0).with_references(t.evaluation for t in trials))
    assert r.best.trial_id == 1
    assert r.rescore(wc=10, penalize="flops", flops_ref=1000).best.trial_id == 0
    assert r.rescore(t_tr_mode="epoch").objective.t_tr_mode == "epoch"
    legacy = SearchResult(TRIALS, Objective(wc=0.1).with_references(t.evaluation for t in TRIALS if t.evaluation))
    with pytest.raises(ValueError, match="recorded only t_tr and n_params"):
        legacy.rescore(penalize="latency")


def test_evaluation_round_trip_keeps_the_costs():
    ev = Evaluation(config={}, best_val_acc=0.5, t_tr=0.1, t_tr_step=0.1, t_tr_epoch=0.2, flops=1e3, flops_train=3e6,
                    latency=1e-4, memory=2e5, spread={"t_tr_step": 0.01, "t_tr_epoch": float("nan")})
    back = Evaluation.from_dict(ev.to_dict())
    assert back.spread == {"t_tr_step": 0.01} and back.flops == 1e3 and back.t_tr_epoch == 0.2
    assert Evaluation.from_dict({"config": {}, "t_tr": 1.0}).t_tr_step is None  # a 0.1.0 record
