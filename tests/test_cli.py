"""The command line end to end on digits with a tiny budget, and its refusals of bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lightning_dnc import cli

TINY = ["--prior_points", "2", "--steps", "1", "--explore", "20", "--search_epochs", "1", "--epochs", "2",
        "--num_conv_layers", "[2, 3]", "--channels_first", "[8, 12]", "--channels_upper", "24", "--quiet", "true"]
RESULT_FILES = ("config.yaml", "trials.jsonl", "result.json", "best.yaml", "best.ckpt", "final.json", "report.md",
                "pareto.png", "history.png")


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lightning_dnc.cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    proc = _run("fit", "--out", str(out), *TINY)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_fit_writes_every_result_file(finished_run):
    for name in RESULT_FILES:
        assert (finished_run / name).is_file(), name
    events = [json.loads(line) for line in (finished_run / "trials.jsonl").read_text().splitlines()]
    assert any(e.get("event") == "finished" for e in events)
    best = yaml.safe_load((finished_run / "best.yaml").read_text())
    assert best["family"] == "cnn" and "out_channels" in best["candidate"]
    settings = yaml.safe_load((finished_run / "config.yaml").read_text())
    assert settings["wc"] == 0.1 and settings["search_epochs"] == 1
    report = (finished_run / "report.md").read_text()
    assert "## Stage 1" in report and "## Final model" in report and "Search cost" in report


def test_checkpoint_reloads_and_reproduces_validation_accuracy(finished_run):
    import lightning.pytorch as pl

    from lightning_dnc.data import DigitsDataModule
    from lightning_dnc.models import CandidateModule

    final = json.loads((finished_run / "final.json").read_text())
    module = CandidateModule.load_from_checkpoint(finished_run / "best.ckpt", weights_only=True)
    best = yaml.safe_load((finished_run / "best.yaml").read_text())
    assert module.config["out_channels"] == best["candidate"]["out_channels"]
    dm = DigitsDataModule(batch_size=best["candidate"]["batch_size"])
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    metrics = trainer.validate(module, datamodule=dm, verbose=False)[0]
    assert metrics["val_acc"] == pytest.approx(final["val_acc"], abs=1e-6)
    assert 0.0 <= final["test_acc"] <= 1.0


def test_report_reranks_without_training(finished_run, monkeypatch, capsys):
    import lightning.pytorch as pl

    def no_training(*args, **kwargs):
        raise AssertionError("report must not train anything")

    monkeypatch.setattr(pl.Trainer, "fit", no_training)
    journal_before = (finished_run / "trials.jsonl").read_bytes()
    code = cli.main(["report", str(finished_run), "--wc", "10", "--penalize", "n_params"])
    assert code == 0
    assert (finished_run / "report_wc10_n_params.md").is_file()
    assert (finished_run / "trials.jsonl").read_bytes() == journal_before
    text = (finished_run / "report_wc10_n_params.md").read_text()
    assert "log10(f_p + 10 * f_c)" in text and "`n_params`" in text


def test_fit_with_found_config_retrains_without_search(finished_run, tmp_path):
    out = tmp_path / "again"
    proc = _run("fit", "--config", str(finished_run / "best.yaml"), "--out", str(out), "--epochs", "1", "--quiet", "true")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "best.ckpt").is_file()
    assert not (out / "trials.jsonl").exists(), "a given configuration is trained without a search"


def test_help_lists_every_option_with_its_default():
    proc = _run("fit", "--help")
    assert proc.returncode == 0
    for option in ("--data", "--family", "--wc", "--penalize", "--search_epochs", "--epochs", "--budget",
                   "--prior_points", "--steps", "--explore", "--top_k", "--accelerator", "--devices", "--out",
                   "--seed", "--overwrite", "--print_config"):
        assert option in proc.stdout, option
    assert "default: 0.1" in proc.stdout and "default: digits" in proc.stdout


def test_print_config_round_trips(tmp_path):
    proc = _run("fit", "--wc", "0.5", "--family", "mlp", "--print_config")
    assert proc.returncode == 0, proc.stderr
    settings = yaml.safe_load(proc.stdout)
    assert settings["wc"] == 0.5 and settings["family"] == "mlp"
    path = tmp_path / "search.yaml"
    path.write_text(proc.stdout)
    again = _run("fit", "--config", str(path), "--print_config")
    assert again.returncode == 0, again.stderr
    reloaded = yaml.safe_load(again.stdout)
    assert reloaded["wc"] == 0.5 and reloaded["family"] == "mlp"


def test_existing_folder_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code = cli.main(["fit", "--out", str(out), *TINY])
    assert code == 2 and "--overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
