"""Crash-safe journal, lock, resume and hostile input, through the CLI in this process.

Each test starts from one tiny finished search (MLP, 4 trials, ``n_params`` penalised so results do
not depend on timings) and damages a copy of it.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import lightning_dnc as dnc
from lightning_dnc import cli
from lightning_dnc.data import DigitsDataModule
from lightning_dnc.lightning.candidate.evaluator import CandidateEvaluator
from lightning_dnc.search import Journal, JournalMismatchError, SearchResult, TornJournalWarning
from lightning_dnc.search.journal.lock import LockHeldError, RunLock, StaleLockWarning

SEARCH = ["--family", "mlp", "--prior_points", "1", "--steps", "1", "--explore", "20", "--search_epochs", "1",
          "--epochs", "1", "--penalize", "n_params", "--stage2_order", "[]", "--quiet", "true"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished search written with ``--out ../../finished`` from a nested working directory."""
    base = tmp_path_factory.mktemp("rel")
    nested = base / "a" / "b"
    nested.mkdir(parents=True)
    cwd = os.getcwd()
    os.chdir(nested)
    try:
        assert cli.main(["search", "--out", "../../finished", *SEARCH]) == 0
    finally:
        os.chdir(cwd)
    return base / "finished"


def _copy(run: Path, tmp_path: Path, drop_result: bool = True) -> Path:
    out = tmp_path / "run"
    shutil.copytree(run, out)
    if drop_result:
        (out / "result.json").unlink()
    return out


def _lines(run: Path) -> list[bytes]:
    return (run / "trials.jsonl").read_bytes().splitlines(keepends=True)


def _outcome(run: Path) -> tuple[list, dict]:
    events = [json.loads(line) for line in _lines(run)]
    proposed = [e["config"] for e in events if e["event"] == "proposed"]
    return proposed, SearchResult.from_json((run / "result.json").read_text()).best_config


def _no_training(monkeypatch) -> None:
    def refuse(self, config):  # noqa: ANN001, ANN202
        raise AssertionError("nothing may be trained here")

    monkeypatch.setattr(CandidateEvaluator, "evaluate", refuse)


# -- output folder -----------------------------------------------------------------------------
def test_relative_out_is_resolved_reported_and_kept_under_it(finished, capsys):
    assert (finished / "result.json").is_file() and (finished / "trials.jsonl").is_file()
    assert not (finished.parent / "a" / "finished").exists()


def test_symlinked_out_folder_is_refused(tmp_path, capsys):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    assert cli.main(["search", "--out", str(link), *SEARCH]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert list(real.iterdir()) == []


# -- journal damage ----------------------------------------------------------------------------
def test_torn_tail_is_moved_aside_and_resume_completes(finished, tmp_path):
    run = _copy(finished, tmp_path)
    lines = _lines(finished)
    kept = b"".join(lines[:4])  # header, trial 0 proposed+finished, trial 1 proposed
    torn = lines[4][: len(lines[4]) // 2]
    (run / "trials.jsonl").write_bytes(kept + torn)
    with pytest.warns(TornJournalWarning, match="torn line"):
        assert cli.main(["search", "--resume", str(run), "--quiet", "true"]) == 0
    assert (run / "trials.jsonl").read_bytes().startswith(kept)
    assert (run / "trials.jsonl.corrupt").read_bytes() == torn + b"\n"
    assert _outcome(run) == _outcome(finished)


def test_corrupt_middle_line_is_a_hard_error_naming_file_and_line(finished, tmp_path, capsys):
    run = _copy(finished, tmp_path)
    lines = _lines(finished)
    lines[2] = b'{"event": "finished", "trial_id": 0, oops\n'
    (run / "trials.jsonl").write_bytes(b"".join(lines))
    before = (run / "trials.jsonl").read_bytes()
    assert cli.main(["search", "--resume", str(run), "--quiet", "true"]) == 2
    message = capsys.readouterr().err
    assert "line 3" in message and "trials.jsonl" in message
    assert (run / "trials.jsonl").read_bytes() == before


def test_disk_full_while_journaling_then_resume(finished, tmp_path, monkeypatch, capsys):
    out = tmp_path / "full"
    original = Journal.append
    calls = {"n": 0}

    def append(self, event):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] == 6:  # header, p0, f0, p1, f1, then the disk is full mid-line
            with open(self.path, "ab") as fh:
                fh.write(json.dumps(dict(event)).encode()[:20])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return original(self, event)

    monkeypatch.setattr(Journal, "append", append)
    assert cli.main(["search", "--out", str(out), *SEARCH]) == 1
    message = capsys.readouterr().err
    assert "No space left on device" in message and f"--resume {out}" in message
    assert not (out / "trials.jsonl.lock").exists()
    monkeypatch.setattr(Journal, "append", original)
    with pytest.warns(TornJournalWarning):
        assert cli.main(["search", "--resume", str(out), "--quiet", "true"]) == 0
    assert _outcome(out) == _outcome(finished)


# -- resume rules ------------------------------------------------------------------------------
def test_resume_of_a_finished_search_does_nothing(finished, tmp_path, monkeypatch, capsys):
    run = _copy(finished, tmp_path, drop_result=False)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    _no_training(monkeypatch)
    assert cli.main(["search", "--resume", str(run), "--quiet", "true"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hidden_nodes", "[20, 60]"], "--hidden_nodes"),
        (["--val_split", "0.3"], "--val_split"),
        (["--seed", "1"], "--seed"),
        (["--wc", "1"], "--wc"),
    ],
)
def test_resume_with_changed_space_data_or_settings_is_refused(finished, tmp_path, monkeypatch, capsys, args, message):
    run = _copy(finished, tmp_path)
    before = (run / "trials.jsonl").read_bytes()
    _no_training(monkeypatch)
    assert cli.main(["search", "--resume", str(run), *args, "--quiet", "true"]) == 2
    text = capsys.readouterr().err
    assert message in text and "Cannot resume" in text
    assert (run / "trials.jsonl").read_bytes() == before


def test_python_api_resume_refuses_other_space_or_dataset(finished, tmp_path, monkeypatch):
    run = _copy(finished, tmp_path)
    _no_training(monkeypatch)
    trainer = dnc.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu")
    settings = dict(family="mlp", prior_points=1, steps=1, explore=20, search_epochs=1, penalize="n_params",
                    stage2_order=[], progress=False)
    other_space = dnc.DeepNCheapTuner(resume=run, space=dnc.MLPSpace(hidden_nodes=(20, 60)), **settings)
    with pytest.raises(JournalMismatchError, match="space"):
        dnc.tune(trainer, dnc.DnCModel(family="mlp"), DigitsDataModule(flatten=True), dnc=other_space)
    other_data = dnc.DeepNCheapTuner(resume=run / "trials.jsonl", **settings)
    with pytest.raises(JournalMismatchError, match="dataset differs"):
        dnc.tune(trainer, dnc.DnCModel(family="mlp"), DigitsDataModule(flatten=True, val_split=0.3), dnc=other_data)
    with pytest.raises(ValueError, match="never loaded"):
        dnc.DeepNCheapTuner(resume=_evil_pickle(tmp_path, tmp_path / "pwned"), **settings)


# -- lock ----------------------------------------------------------------------------------------
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_refuses_a_live_holder_and_takes_over_a_stale_one(tmp_path):
    lock = RunLock.for_journal(tmp_path / "trials.jsonl")
    assert lock.path.name == "trials.jsonl.lock"
    lock.path.write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname()}))
    with pytest.raises(LockHeldError, match=f"pid {os.getppid()}"):
        lock.acquire()
    lock.path.write_text(json.dumps({"pid": 4242, "host": "another-machine"}))
    with pytest.raises(LockHeldError, match="another-machine"):
        lock.acquire()
    lock.path.write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname()}))
    with pytest.warns(StaleLockWarning, match="no longer running"):
        lock.acquire()
    assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    with pytest.raises(LockHeldError):
        RunLock(lock.path).acquire()  # a second search in this very process
    lock.release()
    assert not lock.path.exists()


def test_stale_lock_in_a_run_folder_is_taken_over_on_resume(finished, tmp_path):
    run = _copy(finished, tmp_path)
    (run / "trials.jsonl.lock").write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname()}))
    with pytest.warns(StaleLockWarning):
        assert cli.main(["search", "--resume", str(run), "--quiet", "true"]) == 0
    assert not (run / "trials.jsonl.lock").exists()


# -- hostile files -------------------------------------------------------------------------------
def _evil_pickle(tmp_path: Path, marker: Path) -> Path:
    class Payload:
        def __reduce__(self):  # noqa: ANN204
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"state_dict": Payload()}))
    return path


def test_malicious_yaml_tag_is_refused(tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f'wc: !!python/object/apply:os.system ["touch {marker}"]\n')
    assert cli.main(["search", "--config", str(evil), "--out", str(tmp_path / "never")]) == 2
    assert "python/object/apply" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "never").exists()


def test_malicious_yaml_in_a_run_config_is_refused_on_resume(finished, tmp_path, capsys):
    run = _copy(finished, tmp_path)
    marker = tmp_path / "pwned"
    with open(run / "config.yaml", "a", encoding="utf-8") as fh:
        fh.write(f'extra: !!python/object/apply:os.system ["touch {marker}"]\n')
    assert cli.main(["search", "--resume", str(run)]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1 and not marker.exists()


@pytest.mark.parametrize("flag", ["--config", "--resume"])
def test_malicious_pickle_is_never_loaded(tmp_path, capsys, flag):
    marker = tmp_path / "pwned"
    evil = _evil_pickle(tmp_path, marker)
    assert cli.main(["fit", flag, str(evil), "--out", str(tmp_path / "never")]) == 2
    text = capsys.readouterr().err
    assert ("binary file" in text) if flag == "--config" else ("is a file, not a results folder" in text)
    assert not marker.exists() and not (tmp_path / "never").exists()


# -- bad command-line values ---------------------------------------------------------------------
def _npz_without_ytr(tmp_path: Path) -> str:
    path = tmp_path / "bad.npz"
    np.savez(path, xtr=np.zeros((10, 4), "float32"), xte=np.zeros((4, 4), "float32"), yte=np.zeros(4, "int64"))
    return str(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "imagenet"], "imagenet"),
        (["--wc", "-1"], "--wc"),
        (["--num_conv_layers", "[8, 4]"], "num_conv_layers"),
        (["--data", "missing.npz"], "missing.npz"),
        (["--data", "NPZ_WITHOUT_YTR"], "ytr"),
        (["--family", "rnn"], "--family"),
        (["--penalize", "watts"], "--penalize"),
        (["--t_tr_mode", "wall"], "--t_tr_mode must be one of ['step', 'epoch']"),
        (["--pareto_costs", "[flops, watts]"], "--pareto_costs must name items of"),
        (["--devices", "2"], "--devices 2"),
        (["--max_consecutive_failures", "0"], "--max_consecutive_failures"),
        (["--executor", "dask"], "--executor"),
        (["--max_concurrent", "2"], "--executor ray"),
        (["--ray_address", "auto"], "--executor ray"),
        (["--force", "true"], "--force"),
        (["--resume", "no/such/run"], "--resume"),
        (["--stage2_order", "[xx]"], "stage2_order"),
    ],
)
def test_bad_arguments_exit_2_and_write_nothing(tmp_path, capsys, args, message):
    args = [_npz_without_ytr(tmp_path) if a == "NPZ_WITHOUT_YTR" else a for a in args]
    out = tmp_path / "never"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no half-done work behind a warning either
        code = cli.main(["fit", "--out", str(out), *args])
    captured = capsys.readouterr()
    assert code == 2, captured.out
    assert message in captured.out + captured.err
    assert not out.exists()


def test_cli_stops_after_consecutive_failures_with_a_summary(tmp_path, monkeypatch, capsys):
    from lightning_dnc.search import Evaluation

    def fail(self, config):  # noqa: ANN001, ANN202
        return Evaluation(config=dict(config), status="failed", failure_reason="exception",
                          error="RuntimeError: injected")

    monkeypatch.setattr(CandidateEvaluator, "evaluate", fail)
    out = tmp_path / "run"
    assert cli.main(["search", "--out", str(out), *SEARCH, "--max_consecutive_failures", "1"]) == 3
    text = capsys.readouterr().err
    assert "1 candidates in a row failed" in text and "injected" in text and f"--resume {out}" in text
    assert not (out / "result.json").exists() and not (out / "trials.jsonl.lock").exists()
