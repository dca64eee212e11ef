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
    r = result()
    accurate = r.rescore(wc=0.0)
    assert accurate.best.trial_id == 1
    cheap = r.rescore(wc=10, penalize="n_params")
    assert cheap.best.trial_id == 2
    assert cheap.objective.n_params_ref == 1000.0  # first successful trial
    assert r.best.trial_id == result().best.trial_id  # the original is unchanged


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
