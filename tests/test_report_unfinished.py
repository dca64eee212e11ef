"""``report RUN_DIR`` on a killed run and on a running one: read only, says which, never disturbs the search.

Both runs are CLI subprocesses with an injected fault (tests/fault_injection.py): one is SIGKILLed
after its second trial, the other waits inside its second trial until the test releases it.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lightning_dnc import cli
from lightning_dnc.results.run_state import read_run

HERE = Path(__file__).parent
SEARCH = ["--family", "mlp", "--prior_points", "1", "--steps", "1", "--explore", "20", "--search_epochs", "1",
          "--epochs", "1", "--penalize", "n_params", "--stage2_order", "[]", "--quiet", "true"]


def _start(fault: str, k: int, marker: Path, command: str = "fit") -> tuple[Path, subprocess.Popen]:
    marker.mkdir(parents=True)
    out = marker / "run"
    args = [sys.executable, str(HERE / "fault_injection.py"), fault, str(k), str(marker), "--", command, "--out",
            str(out), *SEARCH]
    return out, subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run killed after trial 1 (two trials journaled) and a run held inside trial 1 (both started together)."""
    base = tmp_path_factory.mktemp("unfinished")
    killed, killer = _start("sigkill_after", 1, base / "killed")
    held, holder = _start("hold", 1, base / "held")
    killer.communicate(timeout=600)
    assert killer.returncode == -9
    deadline = time.monotonic() + 300
    while not (base / "held" / "started").exists() and holder.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (base / "held" / "started").exists(), holder.communicate()[1] if holder.poll() is not None else "no start"
    yield killed, (held, holder, base / "held")
    (base / "held" / "release").write_text("go")
    if holder.poll() is None:
        holder.communicate(timeout=600)


def test_report_on_a_killed_run_says_interrupted_and_writes_nothing(runs, capsys):
    killed, _ = runs
    before = _files(killed)
    assert cli.main(["report", str(killed), "--wc", "0.1", "--penalize", "n_params", "--quiet", "true"]) == 0
    text = capsys.readouterr().out
    first = text.splitlines()[0]
    assert first.startswith("interrupted: 2 trials finished, no final model"), text
    assert f"--resume {killed}" in first
    assert "Deep-n-Cheap summary" in text and "best trial: #" in text
    assert _files(killed) == before, "an interrupted run is only read (its stale lock stays where it is)"
    state = read_run(killed)
    assert state.state == "interrupted" and state.read_only and state.result is not None
    assert {t.trial_id for t in state.result.trials if t.evaluation is not None} == {0, 1}


def test_report_on_a_running_run_says_running_and_the_search_goes_on(runs, capsys):
    _, (held, holder, marker) = runs
    journal = (held / "trials.jsonl").read_bytes()
    lock = (held / "trials.jsonl.lock").read_bytes()
    assert cli.main(["report", str(held), "--quiet", "true"]) == 0
    text = capsys.readouterr().out
    first = text.splitlines()[0]
    assert first.startswith(f"running (pid {holder.pid}") and "1 trial finished so far" in first, text
    assert (held / "trials.jsonl").read_bytes() == journal and (held / "trials.jsonl.lock").read_bytes() == lock
    assert not list(held.glob("report*")), "nothing written into a running run's folder"
    (marker / "release").write_text("go")
    stdout, stderr = holder.communicate(timeout=600)
    assert holder.returncode == 0, stdout + stderr
    assert (held / "result.json").is_file() and (held / "final.json").is_file()
    final = json.loads((held / "final.json").read_text())
    assert final["final_epoch_s"] > 0 and "t_tr" not in final, "the final training's epoch time has its own name"
    assert cli.main(["report", str(held), "--quiet", "true"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("finished: 4 trials finished, final model trained.")
    assert "epoch time (final training) / N_p" in text and "final t_tr" not in text
    assert (held / "report_wc0.1_t_tr.md").is_file()


def test_report_of_a_folder_that_is_not_a_run_is_one_line(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "is not a results folder" in lines[0]


def test_final_json_of_older_runs_is_read_under_the_new_name():
    from rich.console import Console

    from lightning_dnc.results.outcome import final_metrics
    from lightning_dnc.results.report import print_summary

    old = {"val_acc": 0.9, "t_tr": 2.5, "n_params": 1234, "epochs": 3, "wall_time": 9.0}
    assert final_metrics(old) == {"val_acc": 0.9, "final_epoch_s": 2.5, "n_params": 1234, "epochs": 3,
                                  "wall_time": 9.0}
    buffer = io.StringIO()
    print_summary(Console(file=buffer, width=200), None, old, None, None, plain=True)
    text = buffer.getvalue()
    assert "epoch time (final training) / N_p: 2.500 s / 1,234" in text and "t_tr" not in text
