"""Budget controls: ``max_trials``, ``max_time``, candidate ``patience`` and ``--budget`` choices (item 4)."""

from __future__ import annotations

import time

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lightning_dnc as dnc
from lightning_dnc import cli
from lightning_dnc.data import DigitsDataModule
from lightning_dnc.executors import InProcessExecutor, RunOptions, SearchBudget, drive
from lightning_dnc.executors.driver import final_result
from lightning_dnc.search import Evaluation, Objective, StagedSearch
from lightning_dnc.space import MLPSpace, TrainingSpace
from lightning_dnc.validation import SettingError


class Quiet:
    def trial_started(self, *args): pass
    def trial_finished(self, *args): pass
    def stage_finished(self, *args): pass


def synthetic(config: dict, delay: float = 0.0) -> Evaluation:
    time.sleep(delay)
    size = sum(config["hidden_mlp"]) + 1
    return Evaluation(config=dict(config), best_val_acc=0.9 - abs(size - 300) / 3000 - abs(config["lr"] - 1e-3),
                      t_tr=0.1 + size / 1e4, n_params=10 * size)


def new_search(journal=None) -> StagedSearch:
    return StagedSearch("mlp", MLPSpace(num_hidden_layers=(1, 2)), TrainingSpace(), Objective(wc=0.1),
                        prior_points=3, steps=2, explore=30, epochs=2, journal=journal, training_prior_points=2,
                        training_steps=2, strategy="paper")


def test_max_trials_ends_the_search_early_and_still_ranks():
    full = new_search()
    assert drive(full, InProcessExecutor(synthetic), Quiet()) is None
    assert len(full.trials) > 6 and "budget_ended" not in final_result(full, None).meta

    cut = new_search()
    budget = SearchBudget(max_trials=6)
    assert drive(cut, InProcessExecutor(synthetic), Quiet(), budget=budget) == "max_trials"
    assert len(cut.trials) == 6 and not cut.finished
    assert [t.config for t in cut.trials] == [t.config for t in full.trials[:6]], "the same sequence, cut short"
    result = final_result(cut, None, "max_trials", budget)
    assert result.meta["budget_ended"]["by"] == "max_trials" and result.meta["budget_ended"]["limit"] == 6
    assert result.meta["budget_ended"]["stage"] == cut.stage == 2
    assert {r.trial_id for r in result.ranking} == {t.trial_id for t in cut.trials}, "every successful trial ranks"
    assert "ended early by max_trials = 6 after 6 trials (in stage 2)" in repr(result)


def test_max_trials_counts_the_journal_so_resume_continues_the_same_sequence(tmp_path):
    reference = new_search()
    drive(reference, InProcessExecutor(synthetic), Quiet(), budget=SearchBudget(max_trials=8))

    journal = tmp_path / "trials.jsonl"
    first = new_search(journal)
    assert drive(first, InProcessExecutor(synthetic), Quiet(), budget=SearchBudget(max_trials=5)) == "max_trials"
    resumed = StagedSearch.from_journal(journal)
    assert drive(resumed, InProcessExecutor(synthetic), Quiet(), budget=SearchBudget(max_trials=5)) == "max_trials"
    assert len(resumed.trials) == 5, "the same limit after a resume trains nothing more"
    assert drive(resumed, InProcessExecutor(synthetic), Quiet(), budget=SearchBudget(max_trials=8)) == "max_trials"
    assert [t.config for t in resumed.trials] == [t.config for t in reference.trials]


def test_max_time_starts_no_new_trial_once_it_has_passed():
    search = new_search()
    started = time.perf_counter()
    ended = drive(search, InProcessExecutor(lambda c: synthetic(c, delay=0.2)), Quiet(),
                  budget=SearchBudget(max_time=0.5))
    assert ended == "max_time"
    assert 1 <= len(search.trials) <= 4 and time.perf_counter() - started < 5.0
    assert all(t.evaluation is not None for t in search.trials), "the running trial finished"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_time": "soon"}, r'`max_time` must be a positive duration \("90s", "30m", "1h"'),
        ({"max_time": -5}, "`max_time` must be a positive duration"),
        ({"max_trials": 0}, "`max_trials` must be an integer >= 1, got 0"),
    ],
)
def test_bad_budgets_name_the_setting(kwargs, match):
    with pytest.raises(SettingError, match=match):
        RunOptions(**kwargs)
    with pytest.raises(SettingError, match=match):
        dnc.DeepNCheapTuner(**kwargs)


def test_durations_are_read_as_seconds():
    assert RunOptions(max_time="1h").max_time == 3600.0
    assert RunOptions(max_time="1h30m").max_time == 5400.0
    assert RunOptions(max_time="00:00:02:00").max_time == 120.0
    assert RunOptions(max_time=90).max_time == 90.0


def test_tune_with_max_trials_returns_a_ranked_result_and_a_trainable_model():
    dm = DigitsDataModule(flatten=True)
    model = dnc.DnCModel(family="mlp", datamodule=dm)
    trainer = dnc.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                          enable_model_summary=False)
    tuner = dnc.DeepNCheapTuner(wc=0.1, search_epochs=1, prior_points=3, steps=2, explore=20, max_trials=2,
                                progress=False)
    result = trainer.tune(model, dnc=tuner)
    assert len(result.trials) == 2 and result.meta["budget_ended"]["by"] == "max_trials"
    assert model.config["hidden_mlp"] == result.best_config["hidden_mlp"]
    trainer.fit(model)
    assert trainer.current_epoch == 1


class ConstantAccuracy(pl.LightningModule):
    """Logs the same val_acc every epoch: early stopping with patience 1 stops it after two epochs."""

    family = "mlp"

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.net = nn.Linear(64, 10)
        self.lr = config["lr"]

    def forward(self, x):
        return self.net(x.flatten(1))

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.log("val_acc", 0.5)
        self.log("val_loss", 1.0)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def test_patience_stops_candidates_early():
    trainer = dnc.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    tuner = dnc.DeepNCheapTuner(wc=0.0, search_epochs=5, prior_points=1, steps=0, explore=10, stage2_order=[],
                                training_prior_points=1, training_steps=0, patience=1, progress=False)
    with pytest.warns(UserWarning):  # it ignores most searched keys (see test_setup_checks)
        result = trainer.tune(ConstantAccuracy(config={"lr": 1e-3}), datamodule=DigitsDataModule(), dnc=tuner)
    assert [t.evaluation.epochs_run for t in result.trials] == [2, 2]
    assert result.meta["settings"]["patience"] == 1
    with pytest.raises(SettingError, match="`patience` must be an integer >= 1"):
        dnc.DeepNCheapTuner(patience=0)


def test_budget_choices_and_limits_are_in_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["fit", "--help"])
    text = capsys.readouterr().out
    assert "--budget {auto,quick,paper}" in text and "--threads" in text
    for option in ("--max_trials", "--max_time", "--patience", "--logger", "--t_tr_ref", "--n_params_ref"):
        assert option in text, option


def test_cli_refuses_a_bad_max_time_before_writing(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["fit", "--out", str(out), "--max_time", "soon"]) == 2
    text = capsys.readouterr().err
    assert "--max_time" in text and "positive duration" in text
    assert not out.exists()
