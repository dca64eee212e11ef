"""A multi-fidelity search (``--fidelity asha``) killed with SIGKILL mid-search, then ``--resume``d, makes
the promotions and finds the best configuration of an uninterrupted run; promoted candidates continue
from the checkpoints in the results folder, which are gone once the search ends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_dnc import cli
from lightning_dnc.search import SearchResult

HERE = Path(__file__).parent
SEARCH = ["--family", "mlp", "--prior_points", "3", "--steps", "1", "--training_prior_points", "2",
          "--training_steps", "0", "--explore", "20", "--search_epochs", "3", "--min_epochs", "1", "--fidelity", "asha",
          "--epochs", "1", "--penalize", "n_params", "--stage2_order", "[]", "--quiet", "true"]
KILL_AFTER = (2, 5)  # after stage 1's fourth candidate (before its promotion), after the promoted run


def _proposed(run: Path) -> list:
    events = [json.loads(line) for line in (run / "trials.jsonl").read_bytes().splitlines()]
    return [(e["trial_id"], e["config"], e.get("rung")) for e in events if e["event"] == "proposed"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("asha_killed")
    procs = {}
    for k in KILL_AFTER:
        out = base / f"kill_{k}"
        args = [sys.executable, str(HERE / "fault_injection.py"), "sigkill_after", str(k), str(base), "--", "search",
                "--out", str(out), *SEARCH]
        procs[k] = (out, subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    reference = base / "reference"
    assert cli.main(["search", "--out", str(reference), *SEARCH]) == 0
    done = {}
    for k, (out, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == -9, stdout + stderr
        done[k] = out
    return reference, done


def test_reference_run_promotes_and_cleans_up(runs):
    reference, _ = runs
    result = SearchResult.from_json((reference / "result.json").read_text())
    rungs = result.meta["rungs"]
    assert rungs["epochs"] == [1, 3] and rungs["promotions"] >= 2
    assert rungs["checkpoints"]["peak_files"] >= 1 and rungs["checkpoints"]["peak_bytes"] > 0
    assert not list((reference / "checkpoints").glob("*.ckpt")), "no checkpoint outlives the search"
    assert all(r.trial.rung.epochs == 3 for r in result.ranking), "only full-budget candidates are ranked"
    report = (reference / "report.md").read_text()
    assert "## Rungs" in report and "Epochs trained:" in report and (reference / "rungs.png").is_file()
    promoted = [t for t in result.trials if t.rung.rung == 1]
    assert all(t.evaluation.extra["rung"]["continued"] for t in promoted), "promotions continue from checkpoints"


@pytest.mark.parametrize("k", KILL_AFTER)
def test_sigkill_then_resume_gives_the_same_promotions_and_best(runs, k):
    reference, killed = runs
    out = killed[k]
    with pytest.warns(Warning, match="stale lock"):
        assert cli.main(["search", "--resume", str(out), "--quiet", "true"]) == 0
    assert _proposed(out) == _proposed(reference)
    best = SearchResult.from_json((out / "result.json").read_text()).best_config
    assert best == SearchResult.from_json((reference / "result.json").read_text()).best_config
