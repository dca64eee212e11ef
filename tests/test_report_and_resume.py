"""The report ranks as the search did unless the trade-off changes; N_p_ref is the space's; resumes keep books."""

from __future__ import annotations

import json
import shutil

import pytest

import lightning_dnc as dnc
from lightning_dnc import cli
from lightning_dnc.data import DigitsDataModule
from lightning_dnc.executors import InProcessExecutor
from lightning_dnc.models import largest_network_params
from lightning_dnc.search import Evaluation, Journal
from lightning_dnc.space import space_from_dict

SEARCH = ["--family", "mlp", "--prior_points", "2", "--steps", "0", "--explore", "20", "--search_epochs", "1",
          "--stage2_order", "[ac]", "--training_prior_points", "1", "--training_steps", "1", "--quiet", "true"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "run"
    assert cli.main(["search", "--out", str(out), *SEARCH]) == 0
    return out


def _space_reference(run_dir):
    header = Journal(run_dir / "trials.jsonl").read()[0]
    dataset = header["metadata"]["dataset"]
    return largest_network_params(space_from_dict(header["space"]), dataset["input_shape"], dataset["num_outputs"])


def test_a_t_tr_search_stores_the_n_p_of_its_largest_network(run):
    result = dnc.SearchResult.from_json((run / "result.json").read_text())
    assert result.objective.penalize == "t_tr"
    assert result.objective.n_params_ref == _space_reference(run)
    cheap = result.rescore(wc=10, penalize="n_params")
    assert cheap.objective.n_params_ref == _space_reference(run)


def test_report_with_the_searchs_trade_off_shows_its_own_ranking(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    result = dnc.SearchResult.from_json((copy / "result.json").read_text())
    assert cli.main(["report", str(copy), "--wc", "0.1", "--penalize", "t_tr"]) == 0
    text = (copy / "report_wc0.1_t_tr.md").read_text()
    assert "the search's own final ranking" in text
    top = text.split("## Top 1")[1].splitlines()[4]
    assert top.startswith(f"| 1 | {result.best.trial_id} |")
    assert cli.main(["report", str(copy), "--wc", "10", "--penalize", "n_params"]) == 0
    other = (copy / "report_wc10_n_params.md").read_text()
    assert "every successful trial re-ranked" in other and f"N_p_ref {_space_reference(run):,}" in other


def test_report_of_a_result_without_n_p_ref_computes_it_from_the_journal(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    data = json.loads((copy / "result.json").read_text())
    data["objective"]["n_params_ref"] = None  # as 0.1.0 saved a t_tr search
    (copy / "result.json").write_text(json.dumps(data))
    assert cli.main(["report", str(copy), "--wc", "10", "--penalize", "n_params"]) == 0
    assert f"N_p_ref {_space_reference(run):,}" in (copy / "report_wc10_n_params.md").read_text()


def _instant(config):
    return Evaluation(config=dict(config), best_val_acc=0.5 + sum(config["hidden_mlp"]) / 1e4, t_tr=0.1,
                      n_params=sum(config["hidden_mlp"]) + 1, wall_time=2.0)


def test_forced_resume_onto_other_data_records_the_new_fingerprint(tmp_path):
    journal = tmp_path / "trials.jsonl"
    settings = dict(family="mlp", prior_points=2, steps=1, explore=20, search_epochs=1, stage2_order=[],
                    progress=False, executor=InProcessExecutor(_instant))
    trainer = dnc.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu")
    dnc.tune(trainer, dnc.DnCModel(family="mlp"), DigitsDataModule(flatten=True),
             dnc=dnc.DeepNCheapTuner(journal=journal, **settings))
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(lines[:3]))  # header, trial 0 proposed and finished: stopped there
    other = DigitsDataModule(flatten=True, val_split=0.3)
    forced = dnc.tune(trainer, dnc.DnCModel(family="mlp"), other,
                      dnc=dnc.DeepNCheapTuner(resume=journal, force_resume=True, **settings))
    assert forced.meta["earlier_session_trials"] == [0]
    headers = [e for e in Journal(journal).read() if e["event"] == "header"]
    assert len(headers) == 2 and headers[0]["metadata"] != headers[1]["metadata"]
    again = dnc.tune(trainer, dnc.DnCModel(family="mlp"), DigitsDataModule(flatten=True, val_split=0.3),
                     dnc=dnc.DeepNCheapTuner(resume=journal, **settings))  # no force needed any more
    assert again.best.trial_id == forced.best.trial_id
