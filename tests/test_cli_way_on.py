"""The command line after the refactor: budget, plain output, candidate logs, cost references (items 3, 4, 7, 8)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil

import pytest
import yaml

from lightning_dnc import cli
from lightning_dnc.search import SearchResult

BOX = re.compile("[\u2500-\u257f]")
TINY = ["--family", "mlp", "--prior_points", "3", "--steps", "1", "--explore", "20", "--search_epochs", "1",
        "--epochs", "1", "--training_prior_points", "1", "--training_steps", "1", "--quiet", "true"]


@pytest.fixture(scope="module")
def budget_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("way_on") / "run"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = cli.main(["fit", "--out", str(out), "--max_trials", "3", "--t_tr_ref", "0.5", "--n_params_ref", "1e5",
                         *TINY])
    assert code == 0, buffer.getvalue()
    return out, buffer.getvalue()


def test_quiet_prints_plain_lines_with_one_counter(budget_run):
    _, text = budget_run
    assert not BOX.search(text), "--quiet true prints no box tables"
    assert [m for m in re.findall(r"\((\d+)/~?\d+\)", text)] == ["1", "2", "3"]
    assert "Deep-n-Cheap summary" in text and "  best trial: #" in text


def test_budget_ends_the_search_ranks_and_trains_the_final_model(budget_run):
    out, text = budget_run
    result = SearchResult.from_json((out / "result.json").read_text())
    assert len(result.trials) == 3 and result.meta["budget_ended"]["by"] == "max_trials"
    assert "Search ended early by its budget: max_trials (3 trials)" in text
    assert "ended by budget: max_trials = 3 after 3 trials (stage 1)" in text
    assert "Search ended early by its budget" in (out / "report.md").read_text()
    final = json.loads((out / "final.json").read_text())
    assert final["epochs"] == 1 and (out / "best.ckpt").is_file()
    best = yaml.safe_load((out / "best.yaml").read_text())["candidate"]
    assert best == result.best_config and best["weight_decay"] != "auto"


def test_cost_references_come_from_the_command_line(budget_run):
    out, _ = budget_run
    result = SearchResult.from_json((out / "result.json").read_text())
    assert result.objective.t_tr_ref == 0.5 and result.objective.n_params_ref == 1e5
    assert yaml.safe_load((out / "config.yaml").read_text())["t_tr_ref"] == 0.5


def test_candidates_and_final_training_log_csv_versions(budget_run):
    out, _ = budget_run
    versions = sorted(p.name for p in (out / "logs").iterdir())
    assert versions == ["final", "trial_000", "trial_001", "trial_002"]
    for version in versions:
        header = (out / "logs" / version / "metrics.csv").read_text().splitlines()[0]
        assert "val_acc" in header and "train_loss" in header
    assert "test_acc" in (out / "logs" / "final" / "metrics.csv").read_text().splitlines()[0]


def test_resume_with_a_larger_budget_continues_then_retrains(budget_run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(budget_run[0], out)
    (out / "config.yaml").write_text((out / "config.yaml").read_text().replace(str(budget_run[0]), str(out)))
    assert cli.main(["fit", "--resume", str(out)]) == 0
    assert "nothing to do" in capsys.readouterr().out, "the same budget: the run is complete"
    assert cli.main(["fit", "--resume", str(out), "--max_trials", "5"]) == 0
    result = SearchResult.from_json((out / "result.json").read_text())
    first = SearchResult.from_json((budget_run[0] / "result.json").read_text())
    assert len(result.trials) == 5 and result.meta["budget_ended"]["limit"] == 5
    assert [t.config for t in result.trials[:3]] == [t.config for t in first.trials]
    assert (out / "logs" / "trial_004" / "metrics.csv").is_file()


@pytest.mark.parametrize(("args", "match"), [
    (["--t_tr_ref", "-1"], "--t_tr_ref must be a finite number > 0"),
    (["--n_params_ref", "0"], "--n_params_ref must be a finite number > 0"),
])
def test_bad_cost_references_exit_2_naming_the_option(args, match, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["fit", "--out", str(out), *args]) == 2
    assert match in capsys.readouterr().err
    assert not out.exists()


def test_unknown_logger_is_refused_by_the_parser(tmp_path, capsys):
    assert cli.main(["fit", "--out", str(tmp_path / "run"), "--logger", "wandb"]) == 2
    assert "wandb" in capsys.readouterr().err
