"""Kill the CLI mid-search (SIGINT, SIGTERM, SIGKILL) in a subprocess, then ``--resume`` it.

Every killed run is compared with one uninterrupted run of the same settings and seed. The cost
penalised is ``n_params`` so the losses, and therefore the proposals, do not depend on timings.
The killed subprocesses are started together (one fixture) to overlap their start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lightning_dnc import cli
from lightning_dnc.search import SearchResult

HERE = Path(__file__).parent
SEARCH = ["--family", "mlp", "--prior_points", "1", "--steps", "1", "--explore", "20", "--search_epochs", "1",
          "--epochs", "1", "--penalize", "n_params", "--stage2_order", "[]", "--quiet", "true"]
TRIALS = 4  # 1 Sobol + 1 BO in stage 1, no grid, 1 + 1 in stage 3
# name -> (command, fault, trial)
KILLS = {
    "sigint": ("search", "sigint", 1),
    "sigterm": ("fit", "sigterm", 3),
    "kill_after_0": ("search", "sigkill_after", 0),
    "kill_after_2": ("search", "sigkill_after", 2),
    "kill_after_last": ("search", "sigkill_after", -1),
}


def _events(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "trials.jsonl").read_bytes().splitlines()]


def _summary(run: Path) -> tuple[list, list, dict]:
    """Proposed configs in order, ids of trials finished (not interrupted) in order, best config."""
    events = _events(run)
    proposed = [(e["trial_id"], e["config"]) for e in events if e["event"] == "proposed"]
    finished = [e["trial_id"] for e in events
                if e["event"] == "finished" and e["evaluation"]["failure_reason"] != "interrupted"]
    best = SearchResult.from_json((run / "result.json").read_text()).best_config
    return proposed, finished, best


holding: dict = {}  # the "hold" subprocess of test_two_processes_on_one_folder, started with the others


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, dict[str, tuple[Path, subprocess.CompletedProcess, bytes]]]:
    """The uninterrupted reference run (in this process) and the killed runs (subprocesses, started first)."""
    base = tmp_path_factory.mktemp("killed")
    procs = {}
    for name, (command, fault, k) in KILLS.items():
        out = base / name
        args = [sys.executable, str(HERE / "fault_injection.py"), fault, str(k), str(base), "--", command,
                "--out", str(out), *SEARCH]
        procs[name] = (out, subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    hold_dir = base / "hold"
    hold_dir.mkdir()
    hold_args = [sys.executable, str(HERE / "fault_injection.py"), "hold", "1", str(hold_dir), "--", "search", "--out",
                 str(hold_dir / "run"), *SEARCH]
    holding["proc"] = subprocess.Popen(hold_args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    holding["dir"] = hold_dir
    reference = base / "reference"
    assert cli.main(["search", "--out", str(reference), *SEARCH]) == 0
    done = {}
    for name, (out, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        completed = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        done[name] = (out, completed, (out / "trials.jsonl").read_bytes())
    return reference, done


def _resume_and_compare(reference: Path, out: Path, journal_before: bytes, command: str = "search") -> list[dict]:
    assert cli.main([command, "--resume", str(out), "--quiet", "true"]) == 0
    after = (out / "trials.jsonl").read_bytes()
    committed = journal_before[: journal_before.rfind(b"\n") + 1]
    assert after.startswith(committed), "resume must never rewrite earlier journal records"
    ref_proposed, ref_finished, ref_best = _summary(reference)
    proposed, finished, best = _summary(out)
    assert proposed == ref_proposed, "proposals after resume must equal the uninterrupted run's"
    assert sorted(finished) == sorted(ref_finished) == list(range(TRIALS)), "each trial finished exactly once"
    assert best == ref_best
    return _events(out)


@pytest.mark.parametrize("name", ["sigint", "sigterm"])
def test_signal_during_trial_records_interrupted_then_resume_reruns_it_once(runs, name):
    reference, killed = runs
    out, proc, before = killed[name]
    command, fault, k = KILLS[name]
    expected_code = 130 if fault == "sigint" else 143
    assert proc.returncode == expected_code, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if "Resume with" in line]
    assert lines and f"python -m lightning_dnc.cli {command} --resume {out}" in lines[0]
    interrupted = [e for e in map(json.loads, before.splitlines())
                   if e["event"] == "finished" and e["evaluation"]["failure_reason"] == "interrupted"]
    assert [e["trial_id"] for e in interrupted] == [k]
    assert not (out / "trials.jsonl.lock").exists(), "the lock is released on interruption"
    events = _resume_and_compare(reference, out, before, command)
    reruns = [e for e in events if e["event"] == "finished" and e["trial_id"] == k]
    assert [e["evaluation"]["status"] for e in reruns] == ["failed", "ok"]
    assert reruns[1]["evaluation"]["config"] == reruns[0]["evaluation"]["config"], "re-run with the same config"
    if command == "fit":
        assert (out / "final.json").is_file() and (out / "best.ckpt").is_file()


@pytest.mark.parametrize("name", ["kill_after_0", "kill_after_2", "kill_after_last"])
def test_sigkill_after_trial_k_then_resume_matches_uninterrupted_run(runs, name):
    reference, killed = runs
    out, proc, before = killed[name]
    assert proc.returncode == -9, proc.stdout + proc.stderr
    k = KILLS[name][2]
    finished_before = [e["trial_id"] for e in map(json.loads, before.splitlines()) if e["event"] == "finished"]
    assert finished_before == list(range(TRIALS if k == -1 else k + 1))
    assert not (out / "result.json").exists()
    assert (out / "trials.jsonl.lock").exists(), "a killed run leaves its lock behind"
    with pytest.warns(Warning, match="stale lock"):
        _resume_and_compare(reference, out, before)


def test_two_processes_on_one_folder(runs, capsys):
    proc, marker = holding["proc"], holding["dir"]
    out = marker / "run"
    try:
        deadline = time.monotonic() + 120
        while not (marker / "started").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert (marker / "started").exists(), proc.communicate()[1] if proc.poll() is not None else "never started"
        journal = (out / "trials.jsonl").read_bytes()
        code = cli.main(["search", "--resume", str(out), "--quiet", "true"])
        message = capsys.readouterr().err
        assert code == 2 and "in use by another search" in message and f"pid {proc.pid}" in message
        code = cli.main(["search", "--out", str(out), "--overwrite", "true", *SEARCH])
        assert code == 2
        assert (out / "trials.jsonl").read_bytes() == journal, "the refused runs wrote nothing"
    finally:
        (marker / "release").write_text("go")
        stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout + stderr
    assert not (out / "trials.jsonl.lock").exists()
    assert os.path.isfile(out / "result.json")
