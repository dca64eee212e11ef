"""Sizes that fit the hardware (``budget="auto"``), ``max_time`` inside a candidate, epoch lines."""

from __future__ import annotations

import io
import json
import time

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_dnc as dnc
from lightning_dnc import cli
from lightning_dnc.budgets import BUDGETS, SMALL_DATA, choose_budget
from lightning_dnc.data import DigitsDataModule
from lightning_dnc.executors import SearchAborted
from lightning_dnc.lightning.candidate.candidate_watch import CandidateWatch
from lightning_dnc.lightning.candidate.evaluator import CandidateEvaluator
from lightning_dnc.lightning.tuner import settings_for_budget
from lightning_dnc.space import MLPSpace
from lightning_dnc.validation import SettingError


def test_auto_budget_is_quick_on_a_cpu_or_with_small_data_and_the_papers_on_a_gpu_with_enough():
    assert choose_budget("auto", "cpu", 60_000)[0] == "quick"
    assert choose_budget("auto", "gpu", SMALL_DATA - 1)[0] == "quick"
    assert choose_budget("auto", "gpu", 50_000) == ("paper", "auto: gpu, 50,000 training samples")
    assert choose_budget("paper", "cpu", 100) == ("paper", "")
    with pytest.raises(SettingError, match="`budget` must be one of"):
        choose_budget("huge", "cpu", 100)


class _Sized(DigitsDataModule):
    def __init__(self, samples: int) -> None:
        super().__init__()
        self.samples = samples

    def num_samples(self, stage: str) -> int:
        return self.samples if stage == "train" else super().num_samples(stage)


def test_tuner_fills_what_the_user_left_unset_from_the_budget_and_says_so(capsys):
    tuner = dnc.DeepNCheapTuner(steps=7)
    settings = settings_for_budget(tuner, tuner.settings.for_family("cnn"), {"accelerator": "cpu"}, DigitsDataModule())
    quick = BUDGETS["quick"]
    assert (settings.prior_points, settings.steps, settings.search_epochs, settings.explore) == (
        quick.prior_points, 7, quick.search_epochs, quick.explore)
    assert settings.space.num_conv_layers == quick.cnn_limits["num_conv_layers"]
    line = capsys.readouterr().out
    assert "budget 'quick' (auto: CPU" in line and "budget='paper'" in line

    on_gpu = settings_for_budget(tuner, tuner.settings.for_family("cnn"), {"accelerator": "gpu"}, _Sized(50_000))
    assert (on_gpu.prior_points, on_gpu.search_epochs, on_gpu.steps) == (15, 100, 7)
    assert "budget 'paper' (auto: gpu, 50,000 training samples)" in capsys.readouterr().out

    own_space = MLPSpace(num_hidden_layers=(1, 1))
    named = dnc.DeepNCheapTuner(budget="quick", space=own_space, progress=False)
    settings = settings_for_budget(named, named.settings.for_family("mlp"), {"accelerator": "gpu"}, _Sized(50_000))
    assert settings.space == own_space and settings.search_epochs == quick.search_epochs
    assert capsys.readouterr().out == ""  # progress off: nothing printed


def test_max_time_stops_a_running_candidate_and_records_why():
    evaluator = CandidateEvaluator(DigitsDataModule(), epochs=1000, accelerator="cpu", deadline=time.time() + 1.5)
    started = time.perf_counter()
    evaluation = evaluator.evaluate({"family": "mlp", "hidden_mlp": [64], "batch_size": 64, "epochs": 1000})
    assert time.perf_counter() - started < 20
    assert not evaluation.ok and evaluation.failure_reason == "interrupted"
    assert evaluation.extra["stopped_by"] == "max_time" and "max_time" in evaluation.error


def test_a_search_whose_max_time_passes_inside_its_first_candidate_ends_with_a_clear_error(tmp_path):
    model = dnc.DnCModel(family="mlp", datamodule=DigitsDataModule())
    trainer = dnc.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    tuner = dnc.DeepNCheapTuner(search_epochs=2000, prior_points=2, steps=1, explore=20, progress=False,
                                max_time="2s", journal=tmp_path / "trials.jsonl", threads=1)
    started = time.perf_counter()
    with pytest.raises(SearchAborted, match="max_time.*before any candidate finished"):
        trainer.tune(model, dnc=tuner)
    assert time.perf_counter() - started < 60
    finished = [json.loads(line) for line in (tmp_path / "trials.jsonl").read_text().splitlines()
                if json.loads(line).get("event") == "finished"]
    assert finished and finished[-1]["evaluation"]["extra"]["stopped_by"] == "max_time"


def test_cli_max_time_stops_inside_a_candidate(tmp_path, capsys):
    out = tmp_path / "run"
    started = time.perf_counter()
    code = cli.main(["fit", "--family", "mlp", "--search_epochs", "3000", "--max_time", "3s", "--out", str(out),
                     "--quiet", "true", "--threads", "1"])
    assert time.perf_counter() - started < 90
    assert code != 0  # no candidate could finish in 3 s of 3000 epochs
    text = capsys.readouterr()
    assert "max_time" in text.out + text.err
    events = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert any(e.get("event") == "finished" and e["evaluation"]["extra"].get("stopped_by") == "max_time"
               for e in events)


class _Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 2)
        self.history = {"val_acc": []}

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self.layer(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        acc = (self.layer(batch[0]).argmax(1) == batch[1]).float().mean()
        self.history["val_acc"].append(float(acc))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_long_candidate_prints_a_line_per_finished_epoch():
    data = TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))
    loader = DataLoader(data, batch_size=8)
    stream = io.StringIO()
    watch = CandidateWatch(epoch_lines=True, trial_id=3, epochs=3, quiet_s=0.0, stream=stream)
    trainer = pl.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[watch],
                         num_sanity_val_steps=0)
    trainer.fit(_Tiny(), loader, loader)
    lines = stream.getvalue().splitlines()
    assert [line.split("  val_acc")[0].strip() for line in lines] == [
        "trial 3  epoch 1/3", "trial 3  epoch 2/3", "trial 3  epoch 3/3"]

    quiet = io.StringIO()  # a short candidate stays quiet
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         callbacks=[CandidateWatch(epoch_lines=True, quiet_s=60.0, stream=quiet)])
    trainer.fit(_Tiny(), loader, loader)
    assert quiet.getvalue() == ""


def test_first_hour_bench_runs_the_readme_snippet_as_written_and_judges_every_target():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import first_hour

    snippet = first_hour.readme_snippet()
    compile(snippet + first_hour.TEST_LINES, "README snippet", "exec")
    assert "trainer.tune(model, dnc=dnc.DeepNCheapTuner(" in snippet and "trainer.fit(model)" in snippet
    rows = [{"job": "cli", "condition": "quiet", "burners": 0, "wall_s": 100.0, "test_acc": 0.97, "load_before": 0.5},
            {"job": "cli", "condition": "busy", "burners": 2, "wall_s": 300.0, "test_acc": 0.94, "load_before": 2.0}]
    lines = first_hour.verdicts(rows, 2)
    assert "quiet 100 s (target <= 180 s: met)" in lines[0] and "3.00 x quiet (target <= 2.5: MISSED)" in lines[0]
    assert lines[-1].endswith("MISSED)")  # 94% is below the 95% target
    table = first_hour.markdown({"rows": rows, "verdicts": lines})
    assert "| cli | 2 CPU burners | 300 | 3.00 | 94.0 | 2.00 |" in table
