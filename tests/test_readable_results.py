"""Trials and results print as short tables; ``to_dataframe()``; ``best_config`` is what a final training uses."""

from __future__ import annotations

import pytest

from lightning_dnc import _optional
from lightning_dnc.search import Evaluation, Objective, SearchResult, Trial
from lightning_dnc.space.config import auto_weight_decay, complete_config


def _trial(i: int, acc: float | None, n_params: int, stage: int = 1, status: str = "ok", wd="auto",
           task: str = "classification") -> Trial:
    config = complete_config({"family": "mlp", "hidden_mlp": [30 + 10 * i] * 2, "weight_decay": wd, "epochs": 5})
    if status == "pending":
        return Trial(i, stage, config)
    extra = {"regression": {"rmse": 50.0 + i, "mae": 40.0 + i, "r2": 0.5 - 0.01 * i}} if task == "regression" else {}
    ev = Evaluation(config=config, status=status, task=task, best_val_acc=acc if task == "classification" else None,
                    best_val_loss=0.3 + 0.01 * i, t_tr=0.1 * (i + 1), n_params=n_params, flops=1000.0 * (i + 1),
                    failure_reason=None if status == "ok" else "exception", error=None if status == "ok" else "boom",
                    extra=extra)
    return Trial(i, stage, config, ev, "do" if stage == 2 else None)


def _result(n: int = 14, task: str = "classification") -> SearchResult:
    trials = [_trial(i, 0.80 + 0.01 * (i % 7), 20_000 + 500 * i, stage=1 + (i > 8), task=task) for i in range(n)]
    trials.append(_trial(n, None, 0, status="failed"))
    trials.append(_trial(n + 1, None, 0, status="pending"))
    objective = Objective(wc=0.1).with_references(t.evaluation for t in trials if t.evaluation)
    return SearchResult(trials, objective, k=3, family="mlp")


def test_result_prints_a_short_table_of_the_best_trials():
    result = _result()
    text = repr(result)
    lines = text.splitlines()
    assert lines[0].startswith("SearchResult: mlp family, 16 trials (1 failed)")
    assert lines[1].split() == ["rank", "id", "stage", "loss", "val_acc", "t_tr", "(s)", "N_p", "configuration"]
    assert len(lines) == 2 + 10 + 1 and lines[-1].startswith("... 4 more ranked trials")
    best = result.best
    first = lines[2].split()
    assert first[:3] == ["1", str(best.trial_id), str(best.trial.stage)] and first[3] == f"{best.loss:.4f}"
    assert "hidden [" in lines[2] and "lr 0.001" in lines[2]
    assert len(text) < 2000, "a result prints a screenful, not every record"
    assert str(result) == text


def test_trial_and_ranked_trial_print_one_row():
    result = _result()
    failed = result.trials[-2]
    assert "failed:exception" in repr(failed) and len(repr(failed).splitlines()) == 2
    assert "pending" in repr(result.trials[-1])
    ranked = repr(result.best).splitlines()
    assert ranked[0].split()[:3] == ["rank", "id", "stage"] and ranked[1].split()[0] == "1"


def test_regression_results_show_r2():
    result = _result(n=4, task="regression")
    text = repr(result)
    assert "val_r2" in text.splitlines()[1] and "0.5000" in text
    assert result.summary()["best"]["regression"] == {"rmse": 50.0, "mae": 40.0, "r2": 0.5}


def test_best_config_is_what_the_final_training_uses_even_after_rescore():
    result = _result()
    for ranked in (result, result.rescore(wc=10, penalize="n_params"), result.rescore(wc=0)):
        best = ranked.best_config
        assert "epochs" not in best, "the final training states its own epochs"
        n_params = ranked.best.trial.evaluation.n_params
        assert best["weight_decay"] == auto_weight_decay("mlp", n_params) and best["weight_decay"] > 0
        assert ranked.best.trial.trained_config["weight_decay"] == "auto"  # the record keeps what was trained
    numeric = SearchResult([_trial(0, 0.9, 100, wd=1e-4)], Objective(wc=0.0))
    assert numeric.best_config["weight_decay"] == 1e-4


def test_to_dataframe_has_one_row_per_trial():
    pytest.importorskip("pandas")
    result = _result()
    frame = result.to_dataframe()
    assert list(frame.index) == [t.trial_id for t in result.trials]
    for column in ("stage", "state", "rank", "loss", "val_acc", "t_tr", "n_params", "config"):
        assert column in frame.columns, column
    assert frame.loc[result.best.trial_id, "rank"] == 1, "ranks are 1-based, as every table prints them"
    assert frame.loc[14, "state"] == "failed" and frame.loc[15, "state"] == "pending"
    assert frame["rank"].isna().sum() == 2
    assert frame.loc[result.best.trial_id, "loss"] == pytest.approx(result.best.loss)


def test_to_dataframe_has_every_cost_and_ranks_match_the_printed_table():
    pytest.importorskip("pandas")
    from lightning_dnc.search.core.records import MEASURES
    from lightning_dnc.vocabulary import PENALTIES

    result = _result()
    frame = result.to_dataframe()
    for column in (*PENALTIES, *MEASURES):
        assert column in frame.columns, column
    best = result.best
    assert frame.loc[best.trial_id, "flops"] == best.trial.evaluation.flops
    assert best.rank == 1 and result.summary()["best"]["rank"] == 1
    assert [r["rank"] for r in result.summary()["top_k"]] == [1, 2, 3]
    printed = repr(result).splitlines()[2].split()
    assert printed[:2] == ["1", str(best.trial_id)], "the printed table's first row is rank 1"
    assert repr(best).splitlines()[1].split()[0] == "1"


def test_to_dataframe_without_pandas_says_how_to_install(monkeypatch):
    monkeypatch.setattr(_optional, "missing", lambda extra: ["pandas"] if extra == "pandas" else [])
    with pytest.raises(ModuleNotFoundError, match=r'pip install "lightning-dnc\[pandas\]"$'):
        _result().to_dataframe()


def test_summary_is_plain_data_with_the_documented_keys():
    summary = _result().summary()
    assert {"family", "objective", "trials", "ok", "failed", "pending", "per_stage", "best", "top_k", "pareto_front",
            "budget_ended"} <= set(summary)
    assert summary["trials"] == 16 and summary["failed"] == 1 and summary["pending"] == 1
    assert len(summary["top_k"]) == 3 and "epochs" not in summary["best"]["config"]
