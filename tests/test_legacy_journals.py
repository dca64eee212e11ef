"""Journals written by lightning-dnc 0.1.0 still resume (fixtures under tests/golden/)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_golden_proposals import run_case, synthetic_evaluation

from lightning_dnc.search import StagedSearch

GOLDEN = Path(__file__).resolve().parent / "golden"
REPO = Path(__file__).resolve().parents[1]


def test_engine_journal_of_0_1_0_resumes_to_the_golden_proposals(tmp_path):
    journal = tmp_path / "trials.jsonl"
    shutil.copy(GOLDEN / "journal_v0.1.0.jsonl", journal)
    search = StagedSearch.from_journal(journal)
    pending = search.pending
    assert [p.trial_id for p in pending] == [14], "the proposed but untold trial is handed out again"
    proposals = [{"trial_id": p.trial_id, "stage": p.stage, "group": p.group, "config": p.config}
                 for p in search.trials[:14]] + [
        {"trial_id": p.trial_id, "stage": p.stage, "group": p.group, "config": p.config} for p in pending]
    for p in pending:
        search.tell(p.trial_id, synthetic_evaluation(p.config, False))
    while not search.finished:
        for p in search.ask(1):
            proposals.append({"trial_id": p.trial_id, "stage": p.stage, "group": p.group, "config": p.config})
            search.tell(p.trial_id, synthetic_evaluation(p.config, False))
    expected = run_case("cnn", 0, 1, False)
    assert json.dumps(proposals, sort_keys=True) == json.dumps(expected[:-1], sort_keys=True)
    assert [r.trial.trial_id for r in search.result().top_k] == expected[-1]["top_k"]
    lines = journal.read_text().splitlines()
    assert json.loads(lines[0])["settings"]["epochs"] == 3, "the old header stays as it was written"


def test_cli_run_folder_of_0_1_0_resumes(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(GOLDEN / "cli_run_v0.1.0", run)
    before = (run / "trials.jsonl").read_bytes()
    done = subprocess.run([sys.executable, "-m", "lightning_dnc.cli", "search", "--resume", str(run), "--quiet", "true"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    after = (run / "trials.jsonl").read_bytes()
    assert after.startswith(before), "finished trials are kept, never re-run"
    events = [json.loads(line) for line in after.splitlines()]
    proposed = [e for e in events if e["event"] == "proposed"]
    finished = [e for e in events if e["event"] == "finished"]
    assert len(proposed) == len(finished) == 7  # 2 + 1 stage 1, 2 activations, 1 + 1 stage 3
    result = json.loads((run / "result.json").read_text())
    assert result["meta"]["earlier_session_trials"] == [0, 1, 2, 3]
    assert "in earlier sessions" in (run / "report.md").read_text(), "the search cost counts every session"


def _asha_evaluation(proposal):
    """The evaluation the fixture was written with: accuracy rising with the rung's epochs."""
    import dataclasses

    ev = synthetic_evaluation(proposal.config, False)
    return dataclasses.replace(ev, best_val_acc=ev.best_val_acc * (1 - 0.3 / proposal.rung.epochs))


@pytest.mark.parametrize("strategy_key", [True, False])
def test_asha_journal_from_before_the_rungs_wrapper_resumes_as_it_ran(tmp_path, strategy_key):
    """Written by the code before Rungs(stage) (fidelity='asha' ran the paper's stages), stopped in
    stage 2 with a promotion in flight; without a strategy key it is read as 'paper'."""
    journal = tmp_path / "trials.jsonl"
    lines = (GOLDEN / "journal_asha_paper_before_rungs.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    if not strategy_key:
        del header["settings"]["strategy"]
    journal.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    search = StagedSearch.from_journal(journal)
    inflight = list(search.pending)
    while not search.finished or inflight:
        if not search.finished and len(inflight) < 2:
            inflight += search.ask(2 - len(inflight))
        if not inflight:
            break
        proposal = inflight.pop(0)
        search.tell(proposal.trial_id, _asha_evaluation(proposal))
    reference = json.loads((GOLDEN / "asha_paper_before_rungs_reference.json").read_text())
    assert [{"config": t.config, "rung": t.rung.to_dict()} for t in search.trials] == reference["trials"]
    assert search.result().best_config == reference["best_config"]
