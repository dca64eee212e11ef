"""The settings records: one validation each, the resume diff, and the command line's spelling."""

from __future__ import annotations

import pytest

from lightning_dnc.executors import RunOptions
from lightning_dnc.search import (
    DEFAULT_SEARCH_EPOCHS,
    JournalMismatchError,
    Objective,
    SearchSettings,
    StagedSearch,
    check_same_search,
    header_changes,
)
from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace
from lightning_dnc.validation import SettingError


def test_defaults_are_the_papers_and_stage3_follows_stage1():
    settings = SearchSettings(prior_points=4, steps=2)
    assert settings.search_epochs == DEFAULT_SEARCH_EPOCHS == 100
    assert (settings.training_prior_points, settings.training_steps) == (4, 2)
    assert settings.for_family("cnn").stage2_order == ("ac", "ds", "bn", "do", "sc")
    assert settings.for_family("mlp").stage2_order == ("ac", "do")


@pytest.mark.parametrize(
    ("kwargs", "name", "match"),
    [
        ({"prior_points": -1}, "prior_points", r"`prior_points` must be an integer >= 0, got -1"),
        ({"prior_points": 0, "steps": 0}, "prior_points", "Stage 1 needs at least one evaluation"),
        ({"search_epochs": 0}, "search_epochs", r"`search_epochs` must be an integer >= 1, got 0"),
        ({"explore": 2.5}, "explore", r"`explore` must be an integer >= 1"),
        ({"family": "rnn"}, "family", r"`family` must be one of \['cnn', 'mlp'\]"),
        ({"family": "mlp", "stage2_order": ["ds"]}, "stage2_order", "does not have"),
        ({"family": "mlp", "space": CNNSpace()}, "space", "`space` is a cnn space but `family` is 'mlp'"),
        ({"training_space": MLPSpace()}, "training_space", "must be a TrainingSpace"),
    ],
)
def test_every_setting_is_checked_once_and_named(kwargs, name, match):
    with pytest.raises(SettingError, match=match) as caught:
        SearchSettings(**kwargs)
    assert caught.value.name == name
    assert caught.value.renamed(f"--{name}").startswith(("--", "Stage 1"))


def test_objective_errors_name_the_setting():
    with pytest.raises(SettingError, match=r"`wc` must be a finite number >= 0") as caught:
        Objective(wc=-1)
    assert caught.value.renamed("--wc").startswith("--wc must be")


def test_engine_keeps_its_epochs_keyword_and_names_it_in_errors():
    with pytest.raises(ValueError, match=r"`epochs` must be an integer >= 1, got 1.5"):
        StagedSearch("mlp", MLPSpace(), TrainingSpace(), epochs=1.5)
    search = StagedSearch("mlp", MLPSpace(), TrainingSpace(), epochs=3, prior_points=1, steps=0)
    assert search.epochs == 3 == search.search_settings.search_epochs
    assert search.ask(1)[0].config["epochs"] == 3


def test_header_diff_separates_fixed_settings_from_forceable_space_and_data():
    def header(**changes):
        search = StagedSearch("mlp", changes.pop("space", MLPSpace()), TrainingSpace(), Objective(wc=0.1),
                              prior_points=2, steps=1, metadata={"dataset": {"sha256": changes.pop("sha", "a")}},
                              **changes)
        return search.header()

    base = header()
    assert header_changes(base, header()) == []
    changes = header_changes(base, header(seed=1, space=MLPSpace(hidden_nodes=(20, 100)), sha="b"))
    assert [(c.name, c.forceable) for c in changes] == [("seed", False), ("space", True), ("dataset", True)]
    with pytest.raises(JournalMismatchError, match=r"search settings differ.*seed: journal 0, now 1"):
        check_same_search(base, header(seed=1), "j.jsonl", force=True)
    with pytest.raises(JournalMismatchError, match="the dataset differs from the one the search started on"):
        check_same_search(base, header(sha="b"), "j.jsonl")
    check_same_search(base, header(sha="b"), "j.jsonl", force=True)


def test_header_of_0_1_0_with_epochs_is_the_same_search():
    now = StagedSearch("mlp", MLPSpace(), TrainingSpace(), epochs=7, prior_points=2, steps=1).header()
    legacy = {**now, "settings": {("epochs" if k == "search_epochs" else k): v for k, v in now["settings"].items()}}
    assert header_changes(legacy, now) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"executor": "dask"}, r"`executor` must be one of \['inprocess', 'ray'\]"),
        ({"max_concurrent": 0}, r"`max_concurrent` must be an integer >= 1"),
        ({"retry_oom": "yes"}, r"`retry_oom` must be True or False"),
        ({"resume": "no/such/run"}, "does not exist"),
    ],
)
def test_run_options_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RunOptions(**kwargs)


def test_resume_names_the_journal_it_appends_to(tmp_path):
    journal = tmp_path / "trials.jsonl"
    StagedSearch("mlp", MLPSpace(), TrainingSpace(), prior_points=1, steps=0, journal=journal)
    options = RunOptions(resume=tmp_path)
    assert options.resume == options.journal == journal.resolve()
    with pytest.raises(SettingError, match="name different journals"):
        RunOptions(resume=tmp_path, journal=tmp_path / "other.jsonl")


def test_cli_shows_a_record_error_with_its_option(tmp_path, capsys):
    from lightning_dnc import cli

    code = cli.main(["search", "--family", "mlp", "--prior_points", "0", "--steps", "0", "--out", str(tmp_path / "o")])
    assert code == 2
    out = capsys.readouterr().err
    assert "--prior_points" in out and "--steps" in out and not (tmp_path / "o").exists()
