"""What a search prints: plain lines with ``--quiet``, one trial counter across stages and resumes (item 7)."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from lightning_dnc.executors import InProcessExecutor, drive
from lightning_dnc.lightning.progress import SearchProgress
from lightning_dnc.search import Evaluation, Objective, StagedSearch
from lightning_dnc.space import MLPSpace, TrainingSpace

BOX = re.compile("[\u2500-\u257f]")  # box-drawing characters of rich tables
COUNTER = re.compile(r"\((\d+)/(~?)(\d+)\)")


def synthetic(config: dict) -> Evaluation:
    size = sum(config["hidden_mlp"]) + 1
    return Evaluation(config=dict(config), best_val_acc=0.9 - abs(size - 300) / 3000, t_tr=0.1 + size / 1e4,
                      n_params=10 * size)


def new_search(journal=None) -> StagedSearch:
    return StagedSearch("mlp", MLPSpace(num_hidden_layers=(1, 2)), TrainingSpace(), Objective(wc=0.1),
                        prior_points=3, steps=1, explore=30, epochs=2, journal=journal, training_prior_points=2,
                        training_steps=1, strategy="paper")


def _progress(buffer: io.StringIO) -> SearchProgress:
    return SearchProgress(console=Console(file=buffer, width=200, force_terminal=False), live=False, plain=True)


def _counters(text: str) -> list[tuple[int, bool, int]]:
    return [(int(i), bool(t), int(n)) for i, t, n in COUNTER.findall(text)]


def test_plain_output_has_no_box_tables_and_one_counter():
    buffer = io.StringIO()
    search = new_search()
    with _progress(buffer) as progress:
        drive(search, InProcessExecutor(synthetic), progress)
    text = buffer.getvalue()
    assert not BOX.search(text), "plain lines only"
    assert text.count("stage 1 (architecture skeleton (BO)) done: 4 trials, 0 failed; best trial") == 1
    assert "stage 2 (fine-tuning (grid)) done" in text and "stage 3 (training hyperparameters (BO)) done" in text
    counters = _counters(text)
    total = len(search.trials)
    assert [i for i, _, _ in counters] == list(range(1, total + 1)), "one counter over every stage"
    assert counters[-1] == (total, False, total)
    # The total is marked as an estimate while stage 1 runs (stage 2's size depends on its winner) and is exact
    # from then on; it never drops below the trials already finished.
    stage1 = [c for c, line in zip(counters, (ln for ln in text.splitlines() if COUNTER.search(ln)))
              if line.startswith("[stage 1]")]
    assert all(estimate for _, estimate, _ in stage1[:-1])
    assert all(not estimate and n == total for i, estimate, n in counters[len(stage1):])
    assert all(n >= i for i, _, n in counters)


def test_rich_tables_stay_without_quiet():
    buffer = io.StringIO()
    progress = SearchProgress(console=Console(file=buffer, width=200, force_terminal=False), live=False)
    with progress:
        drive(new_search(), InProcessExecutor(synthetic), progress)
    assert BOX.search(buffer.getvalue()), "the default output keeps its stage tables"


def test_counter_goes_on_after_a_resume(tmp_path):
    journal = tmp_path / "trials.jsonl"
    calls = {"n": 0}

    def interrupted_at_the_sixth(config: dict) -> Evaluation:
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return synthetic(config)

    first = io.StringIO()
    with pytest.raises(KeyboardInterrupt), _progress(first) as progress:
        drive(new_search(journal), InProcessExecutor(interrupted_at_the_sixth), progress)
    before = _counters(first.getvalue())
    assert [i for i, _, _ in before] == [1, 2, 3, 4, 5]

    second = io.StringIO()
    resumed = StagedSearch.from_journal(journal)
    with _progress(second) as progress:
        drive(resumed, InProcessExecutor(synthetic), progress)
    after = _counters(second.getvalue())
    total = len(resumed.trials)
    assert [i for i, _, _ in after] == list(range(6, total + 1)), "numbering continues from the journal"
    assert after[-1][2] == total


@pytest.mark.parametrize(("penalize", "shown", "hidden"), [
    ("flops", "FLOPs 1.23 M  N_p 5,000", "t_tr"),
    ("latency", "latency 0.500ms  N_p 5,000", "t_tr"),
    ("memory", "memory 3.4 MB  N_p 5,000", "t_tr"),
    ("n_params", "N_p 5,000", "t_tr"),
    ("t_tr", "t_tr 0.200s  N_p 5,000", "FLOPs"),
])
def test_progress_line_shows_the_penalised_cost(penalize, shown, hidden):
    ev = Evaluation(config={"hidden_mlp": [8]}, best_val_acc=0.9, t_tr=0.2, n_params=5000, flops=1.23e6,
                    latency=5e-4, memory=3.4e6, wall_time=1.0)
    buffer = io.StringIO()
    progress = SearchProgress(console=Console(file=buffer, width=200, force_terminal=False), live=False, plain=True,
                              penalize=penalize)
    with progress:
        progress.trial_finished(0, 1, ev, -0.5, planned_total=3)
        progress.stage_finished(1, [(0, -0.5, ev)])
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert shown in line and hidden not in line, line


def test_stage_table_has_a_column_for_the_penalised_cost():
    ev = Evaluation(config={"hidden_mlp": [8]}, best_val_acc=0.9, t_tr=0.2, n_params=5000, flops=1.23e6,
                    wall_time=1.0)
    buffer = io.StringIO()
    progress = SearchProgress(console=Console(file=buffer, width=200, force_terminal=False), live=False,
                              penalize="flops")
    progress.stage_finished(1, [(0, -0.5, ev)])
    text = buffer.getvalue()
    assert "FLOPs/sample" in text and "1.23 M" in text and "t_tr" not in text


def test_unknown_penalty_is_refused():
    with pytest.raises(ValueError, match="`penalize` must be one of"):
        SearchProgress(penalize="watts")
