"""Searches penalising machine-independent costs: the same decisions beside a CPU-burning process, and
``fit --penalize flops`` / ``report --penalize ...`` end to end on digits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_dnc import cli
from lightning_dnc.data import DigitsDataModule
from lightning_dnc.executors import RunOptions
from lightning_dnc.lightning.search_loop import run_search
from lightning_dnc.search import Evaluation, Journal, Objective, SearchResult, SearchSettings, Trial
from lightning_dnc.space import MLPSpace

GOLDEN = Path(__file__).resolve().parent / "golden"
TINY_MLP = ["--family", "mlp", "--prior_points", "2", "--steps", "1", "--explore", "20", "--search_epochs", "1",
            "--epochs", "1", "--training_prior_points", "1", "--training_steps", "1", "--stage2_order", "[ac]",
            "--quiet", "true"]


def proposals(journal: Path) -> list[tuple[int, dict]]:
    return [(e["trial_id"], e["config"]) for e in Journal(journal).read() if e["event"] == "proposed"]


def flops_search(journal: Path):
    settings = SearchSettings(family="mlp", objective=Objective(wc=1.0, penalize="flops"), prior_points=3, steps=1,
                              explore=30, search_epochs=1, stage2_order=("ac",), training_prior_points=1,
                              training_steps=1, seed=3, space=MLPSpace(num_hidden_layers=(1, 2), hidden_nodes=(20, 120)))
    options = RunOptions(journal=journal, progress=False)
    return run_search(settings, options, DigitsDataModule(flatten=True), {"accelerator": "cpu"})


def test_flops_search_makes_the_same_decisions_beside_a_cpu_burner(tmp_path):
    quiet = flops_search(tmp_path / "quiet.jsonl")
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = flops_search(tmp_path / "busy.jsonl")
    finally:
        burner.kill()
        burner.wait()
    assert proposals(tmp_path / "quiet.jsonl") == proposals(tmp_path / "busy.jsonl")
    assert quiet.best_config == busy.best_config
    assert [r.trial_id for r in quiet.ranking] == [r.trial_id for r in busy.ranking]
    assert quiet.objective.flops_ref == busy.objective.flops_ref > 0  # the largest network's FLOPs


@pytest.fixture(scope="module")
def flops_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("costs") / "run"
    assert cli.main(["fit", "--penalize", "flops", "--out", str(out), *TINY_MLP]) == 0
    return out


def test_fit_penalize_flops_reports_every_cost_of_the_top_trials(flops_run):
    report = (flops_run / "report.md").read_text()
    assert "penalising `flops`" in report
    top = report[report.index("## Top"):report.index("## Pareto")]
    assert "FLOPs/sample" in top and "latency (ms)" in top and "memory" in top and "t_tr (s)" in top
    row = top.splitlines()[4]
    assert " ± " in row and " k " in row and "B |" in row  # t_tr with its spread, FLOPs and memory with units
    front = json.loads((flops_run / "pareto.json").read_text())
    assert front["costs"] == ["flops", "n_params"] and front["points"]
    assert all("hidden_mlp" in p["config"] and p["flops"] > 0 for p in front["points"])
    header = Journal(flops_run / "trials.jsonl").read()[0]
    assert header["objective"]["t_tr_mode"] == "step" and header["objective"]["flops_ref"] > 0


@pytest.mark.parametrize("penalize", ["flops", "latency", "memory", "t_tr"])
def test_report_reranks_by_any_cost_without_training(flops_run, monkeypatch, penalize):
    import lightning.pytorch as pl

    def no_training(*args, **kwargs):
        raise AssertionError("report must not train anything")

    monkeypatch.setattr(pl.Trainer, "fit", no_training)
    before = (flops_run / "trials.jsonl").read_bytes()
    code = cli.main(["report", str(flops_run), "--wc", "10", "--penalize", penalize,
                     "--pareto_costs", "[flops, latency, memory]"])
    assert code == 0
    assert (flops_run / "trials.jsonl").read_bytes() == before
    text = (flops_run / f"report_wc10_{penalize}.md").read_text()
    assert f"penalising `{penalize}`" in text and "Pareto front of (f_p, flops, latency, memory)" in text
    assert (flops_run / f"pareto_matrix_wc10_{penalize}.png").is_file()


def test_report_by_the_other_t_tr_mode(flops_run):
    assert cli.main(["report", str(flops_run), "--t_tr_mode", "epoch"]) == 0
    text = (flops_run / "report_wc0.1_t_tr_epoch.md").read_text()
    assert "the loop's mean epoch (SPEC §1)" in text


def test_report_of_a_0_1_0_run_explains_the_missing_costs(tmp_path, capsys):
    events = Journal(GOLDEN / "cli_run_v0.1.0" / "trials.jsonl").read()
    header = events[0]
    finished = {e["trial_id"]: Evaluation.from_dict(e["evaluation"]) for e in events if e["event"] == "finished"}
    trials = [Trial(e["trial_id"], e["stage"], e["config"], finished.get(e["trial_id"]), e.get("group"))
              for e in events if e["event"] == "proposed"]
    old = SearchResult(trials, Objective.from_dict(header["objective"]).with_references(finished.values()))
    assert old.objective.t_tr_mode == "epoch"  # what 0.1.0 measured
    run = tmp_path / "old"
    run.mkdir()
    (run / "result.json").write_text(old.to_json())
    assert cli.main(["report", str(run), "--penalize", "flops"]) == 2
    assert "recorded only t_tr and n_params" in capsys.readouterr().err
    assert cli.main(["report", str(run), "--penalize", "n_params"]) == 0
