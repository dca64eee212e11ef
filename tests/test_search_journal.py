"""JSON-lines journal: durability, torn tail, corrupt middle line, and resume by replay."""

from __future__ import annotations

import json
import os

import pytest

from lightning_dnc.search import (
    Evaluation,
    Journal,
    JournalCorruptError,
    JournalMismatchError,
    Objective,
    StagedSearch,
    TornJournalWarning,
)
from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace


def synthetic(config):
    size = sum(config.get("out_channels", config["hidden_mlp"])) + 1
    acc = 0.9 - abs(size - 250) / 4000 - 0.02 * abs(config["batch_size"] - 128) / 512
    if config["act"] == "tanh":
        acc += 0.01
    return Evaluation(config=config, best_val_acc=acc, t_tr=1.0 + size / 1000, n_params=100 * size)


def make(path=None, family="cnn", **kw):
    space = CNNSpace(num_conv_layers=(4, 6)) if family == "cnn" else MLPSpace()
    settings = dict(prior_points=3, steps=3, explore=40, epochs=2, seed=5, journal=path)
    settings.update(kw)
    return StagedSearch(family, space, TrainingSpace(), Objective(wc=0.1), **settings)


def run(search, stop_after=None, batch=1):
    """Drive the search; stop (leaving the last asked batch pending) after ``stop_after`` tells."""
    told = 0
    while not search.finished:
        proposals = search.ask(batch)
        for p in proposals:
            if stop_after is not None and told >= stop_after:
                return
            search.tell(p.trial_id, synthetic(p.config))
            told += 1


# ------------------------------------------------------------------ the file format
def test_append_read_round_trip_and_fsync(tmp_path, monkeypatch):
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd)))
    journal = Journal(tmp_path / "run" / "journal.jsonl")
    events = [{"event": "proposed", "trial_id": i, "config": {"lr": 0.1 * i}} for i in range(3)]
    for e in events:
        journal.append(e)
    assert journal.read() == events
    assert len(calls) == 3
    assert journal.path.read_text().count("\n") == 3


def test_append_rejects_bad_events(tmp_path):
    journal = Journal(tmp_path / "j.jsonl")
    with pytest.raises(ValueError, match="'event' in"):
        journal.append({"trial_id": 1})
    with pytest.raises(ValueError, match="not plain JSON data"):
        journal.append({"event": "finished", "x": float("nan")})
    assert not journal.path.exists() or journal.read() == []


def test_torn_tail_is_ignored_then_moved_aside_before_the_next_append(tmp_path):
    journal = Journal(tmp_path / "j.jsonl")
    journal.append({"event": "proposed", "trial_id": 0})
    with open(journal.path, "ab") as fh:
        fh.write(b'{"event":"finished","trial_id":0,"evalu')
    assert journal.read() == [{"event": "proposed", "trial_id": 0}]
    with pytest.warns(TornJournalWarning, match="torn line"):
        journal.append({"event": "proposed", "trial_id": 1})
    assert journal.read() == [{"event": "proposed", "trial_id": 0}, {"event": "proposed", "trial_id": 1}]
    assert journal.corrupt_path.read_bytes() == b'{"event":"finished","trial_id":0,"evalu\n'
    lines = journal.path.read_bytes().split(b"\n")
    assert all(json.loads(line) for line in lines if line)


def test_corrupt_middle_line_names_file_and_line(tmp_path):
    journal = Journal(tmp_path / "j.jsonl")
    journal.append({"event": "proposed", "trial_id": 0})
    with open(journal.path, "ab") as fh:
        fh.write(b"{garbage\n")
    journal.append({"event": "proposed", "trial_id": 1})
    with pytest.raises(JournalCorruptError, match=r"j\.jsonl' line 2 is not valid JSON"):
        journal.read()


def test_unknown_event_line_is_corrupt(tmp_path):
    journal = Journal(tmp_path / "j.jsonl")
    journal.path.write_text('{"event": "proposed"}\n[1, 2]\n')
    with pytest.raises(JournalCorruptError, match="line 2 is not a journal event"):
        journal.read()


def test_missing_journal_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No journal at"):
        Journal(tmp_path / "none.jsonl").read()


# ------------------------------------------------------------------ what the engine writes
def test_engine_journals_header_proposals_and_results(tmp_path):
    path = tmp_path / "journal.jsonl"
    search = make(path, family="mlp", training_prior_points=1, training_steps=1)
    run(search)
    events = Journal(path).read()
    assert events[0]["event"] == "header" and events[0]["settings"] == search.settings()
    assert events[0]["space"] == search.space.to_dict()
    proposed = [e for e in events if e["event"] == "proposed"]
    finished = [e for e in events if e["event"] == "finished"]
    assert [e["trial_id"] for e in proposed] == list(range(len(search.trials)))
    assert [e["config"] for e in proposed] == [t.config for t in search.trials]
    assert sorted(e["trial_id"] for e in finished) == list(range(len(search.trials)))
    with pytest.raises(ValueError, match="already holds a search; continue it with StagedSearch.from_journal"):
        make(path, family="mlp")


# ------------------------------------------------------------------ resume
@pytest.mark.parametrize("stop_after", [0, 4, 9, 20])
def test_resume_gives_the_same_proposals_and_result(tmp_path, stop_after):
    reference = make(None)
    run(reference)

    path = tmp_path / "journal.jsonl"
    interrupted = make(path)
    run(interrupted, stop_after=stop_after)
    resumed = StagedSearch.from_journal(path)
    assert [t.config for t in resumed.trials] == [t.config for t in reference.trials[: len(resumed.trials)]]
    for p in resumed.pending:
        assert p.config == reference.trials[p.trial_id].config
        resumed.tell(p.trial_id, synthetic(p.config))
    run(resumed)
    assert [t.config for t in resumed.trials] == [t.config for t in reference.trials]
    assert resumed.result().best_config == reference.result().best_config
    # the resumed run kept appending to the same journal: a second resume has nothing left to do
    again = StagedSearch.from_journal(path)
    assert again.finished and again.pending == [] and len(again.trials) == len(reference.trials)


def test_resume_with_a_pending_batch(tmp_path):
    path = tmp_path / "journal.jsonl"
    search = make(path)
    first = search.ask(3)
    for p in first:
        search.tell(p.trial_id, synthetic(p.config))
    batch = search.ask(2)
    search.tell(batch[1].trial_id, synthetic(batch[1].config))
    resumed = StagedSearch.from_journal(path)
    assert [p.trial_id for p in resumed.pending] == [batch[0].trial_id]
    assert resumed.ask(2) == search.ask(2)


def test_interrupted_trial_is_rerun_once_after_resume(tmp_path):
    path = tmp_path / "journal.jsonl"
    search = make(path)
    (p,) = search.ask()
    search.tell(p.trial_id, Evaluation(config=p.config, status="failed", failure_reason="interrupted"))
    resumed = StagedSearch.from_journal(path)
    assert [q.config for q in resumed.pending] == [p.config]
    resumed.tell(p.trial_id, synthetic(p.config))
    assert StagedSearch.from_journal(path).pending == []


def test_resume_refuses_a_changed_space_unless_forced(tmp_path):
    path = tmp_path / "journal.jsonl"
    search = make(path)
    run(search, stop_after=2)
    with pytest.raises(JournalMismatchError, match="`space` .* differs from the journal's"):
        StagedSearch.from_journal(path, space=CNNSpace(num_conv_layers=(4, 8)))
    with pytest.raises(JournalMismatchError, match="was proposed as"):
        StagedSearch.from_journal(path, space=CNNSpace(num_conv_layers=(4, 8)), force=True)
    forced = StagedSearch.from_journal(path, space=CNNSpace(num_conv_layers=(4, 8)), force=True, strict=False)
    assert len(forced.trials) == len(search.trials)
    same = StagedSearch.from_journal(path, space=CNNSpace(num_conv_layers=(4, 6)))
    assert [t.config for t in same.trials] == [t.config for t in search.trials]


def test_replay_rejects_foreign_events():
    search = make(None)
    with pytest.raises(JournalMismatchError, match="expects trial 0 in stage 1"):
        search.replay([{"event": "proposed", "trial_id": 3, "stage": 1, "config": {}}])
    with pytest.raises(ValueError, match="Event 1: `trial_id` must be the id of a proposed trial"):
        make(None).replay([{"event": "finished", "trial_id": 0, "evaluation": {"config": {}}}])
    with pytest.raises(JournalMismatchError, match="settings"):
        make(None).replay([{"event": "header", "settings": {"seed": 1}}])


def test_journal_without_header_is_refused(tmp_path):
    journal = Journal(tmp_path / "j.jsonl")
    journal.append({"event": "proposed", "trial_id": 0})
    with pytest.raises(JournalMismatchError, match="does not start with a header"):
        StagedSearch.from_journal(journal.path)


def test_resume_after_a_torn_tail_continues_cleanly(tmp_path):
    path = tmp_path / "journal.jsonl"
    search = make(path)
    run(search, stop_after=3)
    with open(path, "ab") as fh:
        fh.write(b'{"event":"finished","trial_id":3,"eval')  # killed mid-write
    resumed = StagedSearch.from_journal(path)
    assert [p.trial_id for p in resumed.pending] == [3]
    with pytest.warns(TornJournalWarning):
        resumed.tell(3, synthetic(resumed.pending[0].config))
    run(resumed)
    assert StagedSearch.from_journal(path).finished
    assert Journal(path).corrupt_path.exists()
